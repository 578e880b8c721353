"""`tminus queue import FILE.csv`: many one-off posts at once, all or nothing.

Each row is checked by the same code as `tminus queue add` (`posts.prepare_one_off`),
inside one transaction: if any row is wrong, every problem is reported with its CSV
line and column and nothing is written.

A row's identity is its account and its time as written (`CsvPost.key`), so importing
a corrected export does what a Buffer or Hootsuite user expects: a row imported before
with the same text is left as it is; with another text its post is edited through the
edit service (`edits.edit_in`: checked, back to draft with the difference, to approve
again), never queued a second time. What an edit cannot change — the image, its alt
text, the language, the expiry — or a post already sent is refused with the row's line.

The identity holds across files: an edited export is often saved under another name
("posts (2).csv"), and one account has one post at one campaign time (`T-1d`, a date-
time). A time relative to the import (`now`, `+10m`) is no identity: it names another
instant at each import, so such a row is always a new post (a repeat of a live post's
text is then refused by the duplicate rule, as for `queue add`), never a match for a
post another import made at its own "now".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from content.campaign import DEFAULT_EXPIRES
from content.csvposts import CsvPost, read_posts
from content.errors import CampaignError, CampaignErrors, FieldError, TminusError
from content.expand import duplicate_key
from content.paths import PathProblem, inside
from content.platforms import platform
from content.schedule import ScheduleError, parse_duration
from scheduler.db import session
from scheduler.models import Campaign, Post
from scheduler.service.edits import EDITABLE, Edited, edit_in
from scheduler.service.posts import Known, OneOff, Queued, add_one_offs, prepare_one_off


@dataclass(frozen=True)
class Imported:
    file: str
    added: list[Queued]
    already: int                 # rows imported before, unchanged: left as they are
    edited: list[tuple[int, Edited]] = field(default_factory=list)   # (CSV line, the edit)


def import_csv(engine: Engine, path: Path, *, by: str | None, author: str, now: datetime
               ) -> Imported:
    """Import the posts of the CSV file at `path`: drafts, or queued at once as approved
    by `by`; a row imported before with another text edits its post (back to draft).
    Raises `CampaignErrors` naming every row's problems; writes nothing then."""
    rows, errors = read_posts(path)     # a row it could not read is left out of `rows`
    if errors and not rows:
        raise CampaignErrors(errors)
    file = str(path)
    with session(engine) as s:
        keys = [r.key for r in rows] + [r.content_key for r in rows]
        before = {p.plan_key: p for p in s.exec(select(Post).where(col(Post.plan_key).in_(keys))).all()}
        todo: list[tuple[Post, OneOff]] = []
        edited: list[tuple[int, Edited]] = []
        seen: dict[tuple[str, str], int] = {}
        lines: dict[str, int] = {}
        already = 0
        known = Known(s)        # accounts, campaigns, live posts: read once, not per row
        for row in rows:
            first = lines.setdefault(row.key, row.line)
            if first != row.line:
                errors.append(CampaignError(f"the same account and time as line {first}: a row is "
                                            "known by them; give each post its own time",
                                            file=file, line=row.line, key="at"))
                continue
            anchored = not _from_now(row.at)
            request = OneOff(account=row.account, at=row.at, text=row.text,
                             campaign=row.campaign, expires=row.expires, by=by, author=author,
                             language=row.language, key=row.key if anchored else None)
            try:
                request = _with_media(known, row, request, path.parent)
                old = (before.get(row.key) or before.get(row.content_key)) if anchored else None
                if old is None:
                    post: Post | None = prepare_one_off(s, request, now=now, known=known)
                else:
                    post, change = None, _again(s, old, row, request, by=by or author, now=now,
                                                file=file)
            except FieldError as e:
                errors.append(CampaignError(e.message, file=file, line=row.line, key=e.field))
                continue
            except TminusError as e:
                errors.append(CampaignError(str(e), file=file, line=row.line, key="text"))
                continue
            twin = seen.setdefault((row.account, duplicate_key(row.text)), row.line)
            if twin != row.line:
                errors.append(CampaignError(f"the same text as line {twin} on the same account; "
                                            "make it differ", file=file, line=row.line, key="text"))
            elif post is not None:
                todo.append((post, request))
            elif change is None:
                already += 1
            else:
                edited.append((row.line, change))
                known.forget_live()         # a text changed: the duplicate rule reads again
        if errors:   # the session rolls back: nothing written, no edit kept
            raise CampaignErrors(sorted(errors, key=lambda e: e.line or 0))
        added = add_one_offs(s, todo, now=now)
    return Imported(file, added, already, edited)


def _from_now(at: str) -> bool:
    """`now` or `+10m`: a time counted from the moment of the import (as `_when` reads it)."""
    v = at.strip()
    return v == "now" or v.startswith("+")


def _again(s: Session, old: Post, row: CsvPost, request: OneOff, *, by: str, now: datetime,
           file: str) -> Edited | None:
    """A row imported before: None if it is as it was; its post edited if only the text
    changed; else a `FieldError` naming what an import cannot change."""
    assert old.id is not None
    options = old.options or {}
    had = [(m.get("path", ""), m.get("alt")) for m in options.get("media") or []]
    # the image as written, relative to the CSV: the same file if the export was saved
    # to another folder since
    wrote = Path(row.media).parts if row.media else ()
    same_image = (len(had) == len(request.media) and
                  all(Path(p).parts[-len(wrote):] == wrote for p, _ in had))
    for name, differs in (("media", not same_image), ("alt", [a for _, a in had] != (
            [row.alt] if row.media else []))):
        if differs:
            raise FieldError(name, f"differs from post {old.id}, imported from this row before; "
                             f"an import changes only a text — cancel post {old.id} (`tminus "
                             f"cancel --post {old.id}`) and import the row again")
    if (row.language or None) != options.get("language"):
        raise FieldError("language", f"differs from post {old.id}, imported from this row "
                         f"before; cancel post {old.id} and import the row again to change it")
    camp = s.get(Campaign, old.campaign_id)
    assert camp is not None
    try:
        life = parse_duration(row.expires) if row.expires else DEFAULT_EXPIRES
    except ScheduleError as e:
        raise FieldError("expires", str(e)) from None
    if min(old.due_at + life, camp.deadline) != old.not_after:
        raise FieldError("expires", f"differs from post {old.id}, imported from this row before; "
                         f"cancel post {old.id} and import the row again to change it")
    if old.text == row.text.strip().replace("\r\n", "\n"):
        return None
    if old.state not in EDITABLE:
        raise FieldError("text", f"differs from post {old.id}, imported from this row before, "
                         f"which is {old.state} now: its text can no longer change — give the "
                         "row another time to make it a new post")
    return edit_in(s, old.id, row.text, by=by, now=now,
                   why=f"re-imported from {file} line {row.line} by {by}")


def _with_media(known: Known, row: CsvPost, request: OneOff, folder: Path) -> OneOff:
    """The row's image, relative to the CSV's folder: inside it, a file, within the
    account's platform's size limit."""
    if row.media is None or row.alt is None:
        return request
    try:
        image = inside(folder, row.media, what="image")
    except PathProblem as e:
        raise FieldError("media", str(e).replace("campaign folder", "CSV file's folder")) from None
    if not image.is_file():
        raise FieldError("media", f"{row.media!r} is not a file in the CSV file's folder")
    acc = known.accounts.get(row.account)
    if acc is not None:
        limit = platform(acc.platform).media.max_bytes
        if image.stat().st_size > limit:
            raise FieldError("media", f"{image.name} is {image.stat().st_size:,} bytes; "
                             f"{acc.platform} takes at most {limit:,}")
    return replace(request, media=((str(image), row.alt),))
