"""`tminus queue import FILE.csv`: many one-off posts at once, all or nothing.

Each row is checked by the same code as `tminus queue add` (`posts.prepare_one_off`),
inside one transaction: if any row is wrong, every problem is reported with its CSV
line and column and nothing is written. A row's stable key (`CsvPost.key`) makes a
second import of the same file add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from content.csvposts import CsvPost, read_posts
from content.errors import CampaignError, CampaignErrors, FieldError, TminusError
from content.expand import duplicate_key
from content.paths import PathProblem, inside
from content.platforms import platform
from scheduler.db import session
from scheduler.models import Account, Post
from scheduler.service.posts import OneOff, Queued, add_one_off, prepare_one_off


@dataclass(frozen=True)
class Imported:
    file: str
    added: list[Queued]
    already: int                 # rows imported before (same key): left as they are


def import_csv(engine: Engine, path: Path, *, by: str | None, author: str, now: datetime
               ) -> Imported:
    """Import the posts of the CSV file at `path`: drafts, or queued at once as approved
    by `by`. Raises `CampaignErrors` naming every row's problems; writes nothing then."""
    rows, errors = read_posts(path)     # a row it could not read is left out of `rows`
    if errors and not rows:
        raise CampaignErrors(errors)
    file = str(path)
    with session(engine) as s:
        existing = set(s.exec(select(Post.plan_key).where(
            col(Post.plan_key).in_([r.key for r in rows]))).all())
        todo: list[tuple[Post, OneOff]] = []
        seen: dict[tuple[str, str], int] = {}
        already = 0
        for row in rows:
            if row.key in existing or row.key in {p.plan_key for p, _ in todo}:
                already += 1
                continue
            request = OneOff(account=row.account, at=row.at, text=row.text,
                             campaign=row.campaign, expires=row.expires, by=by, author=author,
                             language=row.language, key=row.key)
            try:
                request = _with_media(s, row, request, path.parent)
                post = prepare_one_off(s, request, now=now)
            except FieldError as e:
                errors.append(CampaignError(e.message, file=file, line=row.line, key=e.field))
                continue
            except TminusError as e:
                errors.append(CampaignError(str(e), file=file, line=row.line, key="text"))
                continue
            twin = seen.setdefault((row.account, duplicate_key(post.text)), row.line)
            if twin != row.line:
                errors.append(CampaignError(f"the same text as line {twin} on the same account; "
                                            "make it differ", file=file, line=row.line, key="text"))
                continue
            todo.append((post, request))
        if errors:   # the session rolls back: nothing written
            raise CampaignErrors(sorted(errors, key=lambda e: e.line or 0))
        added = [add_one_off(s, post, request, now=now) for post, request in todo]
    return Imported(file, added, already)


def _with_media(s: Session, row: CsvPost, request: OneOff, folder: Path) -> OneOff:
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
    acc = s.exec(select(Account).where(Account.name == row.account)).first()
    if acc is not None:
        limit = platform(acc.platform).media.max_bytes
        if image.stat().st_size > limit:
            raise FieldError("media", f"{image.name} is {image.stat().st_size:,} bytes; "
                             f"{acc.platform} takes at most {limit:,}")
    return replace(request, media=((str(image), row.alt),))
