"""`tminus queue import FILE.csv`: many one-off posts at once, all or nothing.

Each row is checked by the same code as `tminus queue add` (`posts.prepare_one_off`),
inside one transaction: if any row is wrong, every problem is reported with its CSV
line and column and nothing is written.

A row's identity is its account and its time as written (`CsvPost.key`), so importing
a corrected export does what a Buffer or Hootsuite user expects: a row imported before
as it was is left as it is; with another text its post is edited through the edit
service (`edits.edit_in`: checked, back to draft with the difference, to approve
again), never queued a second time. Another image, alt text, language or expiry
changes the post the same way (back to draft, what changed as "-"/"+" lines); a post
already sent or canceled cannot change, and the row is refused with its line.

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
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from content.campaign import DEFAULT_EXPIRES
from content.csvposts import CsvPost, read_posts
from content.errors import CampaignError, CampaignErrors, FieldError, TminusError
from content.expand import duplicate_key
from content.paths import PathProblem, inside
from content.platforms import platform
from content.rules import check_length
from content.schedule import ScheduleError, parse_duration
from scheduler.db import session
from scheduler.localtime import when
from scheduler.models import Account, Campaign, Post, PostState
from scheduler.service.edits import EDITABLE, Edited, edit_in
from scheduler.service.people import actor
from scheduler.service.posts import Known, OneOff, Queued, add_one_offs, prepare_one_off
from scheduler.transitions import record_note, transition


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
    """A row imported before: None if it is as it was; else its post changed as `tminus
    edit` changes a text — checked again, back to draft with what changed, to approve
    again — whether its text, image, alt text, language or expiry changed. A post no
    longer a draft or queued cannot change: a `FieldError` names the first column."""
    assert old.id is not None
    camp = s.get(Campaign, old.campaign_id)
    assert camp is not None
    try:
        life = parse_duration(row.expires) if row.expires else DEFAULT_EXPIRES
    except ScheduleError as e:
        raise FieldError("expires", str(e)) from None
    changes = _changes(old, row, request, min(old.due_at + life, camp.deadline), camp.timezone)
    text = row.text.strip().replace("\r\n", "\n")
    if old.text == text and not changes:
        return None
    if old.state not in EDITABLE:
        column = "text" if old.text != text else changes[0].column
        raise FieldError(column, f"differs from post {old.id}, imported from this row before, "
                         f"which is {old.state} now: its {_NAMES[column]} can no longer change "
                         "— give the row another time to make it a new post")
    why = f"re-imported from {file} line {row.line} by {by}"
    lines = "\n".join(line for c in changes for line in (f"-{c.column}: {c.was}",
                                                         f"+{c.column}: {c.now}"))
    if changes:
        options = dict(old.options or {})
        for c in changes:
            c.apply(old, options)
        old.options, old.approved_hash, old.updated_at = options, None, now
        s.add(old)
    if old.text != text:
        said = f"{why}; its {', '.join(_NAMES[c.column] for c in changes)} too" if changes else why
        edited = edit_in(s, old.id, row.text, by=by, now=now, why=said)
        return replace(edited, diff=f"{edited.diff}\n{lines}" if lines else edited.diff,
                       changed=("text", *(_NAMES[c.column] for c in changes)))
    # no new text: the same way back to draft as an edit of one (`edits._apply`)
    was = old.state
    reason = f"{why}; approve it again\n{lines}"
    if was == PostState.QUEUED:
        transition(s, old, PostState.DRAFT, reason, now, actor(by))
    else:
        s.flush()
        record_note(s, [old.id], was, reason, now, actor(by))
    acc = s.get(Account, old.account_id)
    assert acc is not None
    fit = check_length(acc.platform, old.text, limit=acc.max_characters)
    return Edited(old.id, was, PostState.DRAFT, lines, fit.length, fit.limit, fit.unit, (),
                  camp.slug, tuple(_NAMES[c.column] for c in changes))


# What a person calls each column that can change, as an error or the CLI says it.
_NAMES = {"text": "text", "media": "image", "alt": "alt text", "language": "language",
          "expires": "expiry"}


@dataclass(frozen=True)
class _Change:
    column: str          # the CSV's column
    was: str             # as the person reads it
    now: str
    options: dict[str, Any] | None = None     # the post's options to set (media, language)
    not_after: datetime | None = None

    def apply(self, post: Post, options: dict[str, Any]) -> None:
        if self.options is not None:
            for key, value in self.options.items():
                if value is None:
                    options.pop(key, None)
                else:
                    options[key] = value
        if self.not_after is not None:
            post.not_after = self.not_after


def _changes(old: Post, row: CsvPost, request: OneOff, not_after: datetime, tz: str
             ) -> list[_Change]:
    """What differs, but the text, between the post and its row."""
    options = old.options or {}
    had = [(m.get("path", ""), m.get("alt")) for m in options.get("media") or []]
    media = [{"path": path, "alt": alt} for path, alt in request.media] or None
    # the image as written, relative to the CSV: the same file if the export was saved
    # to another folder since
    wrote = Path(row.media).parts if row.media else ()
    same_image = (len(had) == len(request.media) and
                  all(Path(p).parts[-len(wrote):] == wrote for p, _ in had))
    out: list[_Change] = []
    if not same_image:
        out.append(_Change("media", ", ".join(Path(p).name for p, _ in had) or "none",
                           row.media or "none", {"media": media}))
    elif [a for _, a in had] != ([row.alt] if row.media else []):
        out.append(_Change("alt", " ".join(str(a) for _, a in had) or "none", row.alt or "none",
                           {"media": media}))
    if (row.language or None) != options.get("language"):
        out.append(_Change("language", options.get("language") or "none", row.language or "none",
                           {"language": row.language or None}))
    if not_after != old.not_after:
        out.append(_Change("expires", f"until {when(old.not_after, tz)}",
                           f"until {when(not_after, tz)}", not_after=not_after))
    return out


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
