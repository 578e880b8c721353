"""File names inside a campaign folder: templates, their includes, media.

A campaign folder is copied around and shared, so a name in it may only reach files
in it: no absolute path, no `..`, no symbolic link pointing out, and not the campaign
file itself (a template that includes `campaign.toml` would print its contents, and
hidden files like `.env` hold credentials). Every refusal says why in one line.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from content.limits import MAX_PATH_CHARS, MAX_PATH_COMPONENT

CAMPAIGN_FILE = "campaign.toml"


class PathProblem(ValueError):
    """A name that does not lead to a usable file in the campaign folder."""


def inside(folder: Path, name: object, *, what: str = "file") -> Path:
    """The file `name` (relative, with / between folders) in `folder`, resolved; a
    `PathProblem` saying what is wrong otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise PathProblem(f"the {what} must be a file name in quotes, e.g. \"countdown.txt.j2\"")
    shown = name if len(name) <= 80 else name[:60] + f"… ({len(name)} characters)"
    if len(name) > MAX_PATH_CHARS or any(len(p.encode()) > MAX_PATH_COMPONENT
                                         for p in name.split("/")):
        raise PathProblem(f"{what} name {shown!r} is too long; keep names under "
                          f"{MAX_PATH_COMPONENT} characters")
    if "\\" in name or "\0" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise PathProblem(f"{what} {shown!r} must be a name inside the campaign folder, "
                          "written with / (not an absolute path)")
    parts = PurePosixPath(name).parts
    if any(p.startswith(".") for p in parts):
        raise PathProblem(f"{what} {shown!r}: names starting with a dot (.., .env) are not "
                          "allowed; put the file inside the campaign folder")
    if parts == (CAMPAIGN_FILE,):
        raise PathProblem(f"{what} {shown!r} is the campaign file itself; name a template")
    root = folder.resolve()
    try:
        path = (root / name).resolve()
    except (OSError, RuntimeError) as e:   # a symlink loop, a name the OS refuses
        raise PathProblem(f"{what} {shown!r} cannot be opened ({type(e).__name__})") from None
    if not path.is_relative_to(root):
        raise PathProblem(f"{what} {shown!r} is a link to a file outside the campaign "
                          "folder; copy the file into the folder instead")
    if _same(path, root / CAMPAIGN_FILE):   # also as "Campaign.toml" where case is ignored
        raise PathProblem(f"{what} {shown!r} leads to the campaign file itself; name a template")
    try:
        is_file = path.is_file()
    except OSError as e:
        raise PathProblem(f"{what} {shown!r} cannot be opened ({e.strerror})") from None
    if not is_file:
        raise PathProblem(f"{what} {shown!r} not found in {folder}")
    return path


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def is_folder(name: str) -> bool:
    """Is `name` an existing folder? False, not an error, for a name the OS refuses
    (5,000 characters): the command line then reads it as a campaign's slug."""
    try:
        return Path(name).is_dir()
    except (OSError, ValueError):
        return False
