"""A CSV file of one-off posts (`tminus queue import`), as comms teams export them from
Buffer or Hootsuite: one row per post, columns `account`, `at`, `text`, and optionally
`media` (an image path, relative to the CSV file's folder), `alt` (its alt text),
`expires` (e.g. 30m), `language` (e.g. en) and `campaign` (a slug, where the account
is in several).

Reading only: each row as written, with its line, or a `CampaignError` per problem
naming the file, the line and the column. What a value must be (a known account, a time
before the deadline, a text that fits) is checked by the service layer, the same code
as `tminus queue add`. The file is bounded: a hostile one costs seconds, not memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from content.errors import CampaignError
from content.limits import MAX_CAMPAIGN_FILE_BYTES, MAX_TEXT_CHARS

REQUIRED = ("account", "at", "text")
OPTIONAL = ("media", "alt", "expires", "language", "campaign")
MAX_ROWS = 10_000                 # far beyond a campaign's one-off posts
MAX_CSV_BYTES = 5 * MAX_CAMPAIGN_FILE_BYTES


@dataclass(frozen=True)
class CsvPost:
    line: int                      # where the row starts in the file (1 = the header)
    account: str
    at: str
    text: str
    media: str | None = None       # as written: a path relative to the CSV's folder
    alt: str | None = None
    expires: str | None = None
    language: str | None = None
    campaign: str | None = None

    @property
    def key(self) -> str:
        """A row's identity: its account and its time as written (`T-1d`, `+10m`,
        `2027-03-13T18:00`). Imported again with another text it is the same post,
        edited — as a Buffer or Hootsuite user expects of a corrected export."""
        digest = hashlib.sha256("\x1f".join(["at", self.account, self.at.casefold()]).encode())
        return f"csv@{digest.hexdigest()[:20]}"

    @property
    def content_key(self) -> str:
        """The key rows had before identity was (account, at): the whole row's content.
        A post imported then is still found when the same row comes again."""
        digest = hashlib.sha256("\x1f".join(
            [self.account, self.at, self.text, str(self.media or ""), self.alt or ""]).encode())
        return f"csv@{digest.hexdigest()[:20]}"


def read_posts(path: Path) -> tuple[list[CsvPost], list[CampaignError]]:
    """The rows of `path`, and every problem found in reading them."""
    file = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CSV_BYTES + 1)
    except OSError as e:
        return [], [CampaignError(f"cannot be read ({e.strerror or type(e).__name__})", file=file)]
    if len(raw) > MAX_CSV_BYTES:
        return [], [CampaignError(f"is larger than {MAX_CSV_BYTES:,} bytes; split it", file=file)]
    try:
        text = raw.decode("utf-8-sig")      # Excel writes a byte-order mark
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        return [], [CampaignError("is not UTF-8; save it as \"CSV UTF-8\"", file=file, line=line)]
    reader = csv.reader(io.StringIO(text, newline=""))
    errors: list[CampaignError] = []
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [CampaignError(f"is empty; the first line names the columns: "
                                  f"{', '.join(REQUIRED)}", file=file)]
    except csv.Error as e:
        return [], [CampaignError(f"is not CSV ({e})", file=file, line=1)]
    for name in header:
        if name not in REQUIRED + OPTIONAL:
            errors.append(CampaignError(
                f"unknown column {name!r}; columns are {', '.join(REQUIRED + OPTIONAL)}",
                file=file, line=1, key=name or "(empty)"))
    for name in REQUIRED:
        if name not in header:
            errors.append(CampaignError(f"the column {name!r} is missing; the first line names "
                                        f"the columns: {', '.join(REQUIRED)}", file=file, line=1))
    if len(set(header)) != len(header):
        errors.append(CampaignError("a column is named twice", file=file, line=1))
    if errors:
        return [], errors
    posts: list[CsvPost] = []
    line = reader.line_num + 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(posts) >= MAX_ROWS:
                errors.append(CampaignError(f"more than {MAX_ROWS:,} posts; split the file",
                                            file=file, line=start))
                break
            post = _row(dict(zip(header, row, strict=False)), len(row) - len(header), file, start,
                        errors)
            if post is not None:
                posts.append(post)
    except csv.Error as e:
        errors.append(CampaignError(f"is not CSV ({e})", file=file, line=line))
    if not posts and not errors:
        errors.append(CampaignError("has no posts below its header", file=file))
    return posts, errors


def _row(cells: dict[str, str], extra: int, file: str, line: int,
         errors: list[CampaignError]) -> CsvPost | None:
    before = len(errors)
    if extra > 0:
        errors.append(CampaignError(f"{extra} cell(s) more than the header has columns; a text "
                                    "with commas needs quotes around it", file=file, line=line))
    values = {k: v.strip() for k, v in cells.items()}
    for name in REQUIRED:
        if not values.get(name):
            errors.append(CampaignError("is empty", file=file, line=line, key=name))
    text = cells.get("text", "").strip()
    if len(text) > MAX_TEXT_CHARS:
        errors.append(CampaignError(f"is longer than {MAX_TEXT_CHARS:,} characters", file=file,
                                    line=line, key="text"))
    media = values.get("media") or None
    alt = values.get("alt") or None
    if media and not alt:
        errors.append(CampaignError("is empty: an image needs alt text for people using screen "
                                    "readers", file=file, line=line, key="alt"))
    if alt and not media:
        errors.append(CampaignError("alt text without an image (media)", file=file, line=line,
                                    key="alt"))
    if len(errors) > before:
        return None
    return CsvPost(line, values["account"], values["at"], text, media, alt, values.get("expires") or None,
                   values.get("language") or None, values.get("campaign") or None)
