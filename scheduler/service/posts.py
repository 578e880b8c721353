"""Use cases on posts: cancel, queue a one-off post, review, list, log (approve is
`approving`'s, on Core: a rehearsal approves without the ORM)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from content.campaign import DEFAULT_EXPIRES
from content.chars import forbidden_character
from content.entities import glued_links
from content.errors import FieldError, NotFound, TminusError, Unconfirmed
from content.expand import duplicate_key, hashtag_warnings, may_not_repeat
from content.rules import check_length
from content.schedule import ScheduleError, parse_duration, parse_instant, parse_relative
from scheduler import approval
from scheduler.db import session
from scheduler.models import CANCELABLE_STATES, Account, Campaign, Event, Post, PostState, text_hash
from scheduler.queue import find_campaign, parse_states, select_posts
from scheduler.service.approving import person as _person
from scheduler.transitions import Seen, change, record_created, transition

S = PostState
# States in which a post still counts for the duplicate rule: it is out, or may go out.
_LIVE_STATES = (S.DRAFT, S.QUEUED, S.SENDING, S.UNKNOWN, S.REVIEW, S.PUBLISHED)


# -- cancel ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cancellation:
    canceled: list[int]


def cancel(engine: Engine, *, campaign: str | None, post_ids: Sequence[int], by: str,
           now: datetime, reason: str | None = None, confirmed: bool = False) -> Cancellation:
    """Cancel pending posts (draft, queued or review): all of a campaign's, or the ones
    named (each must be pending). A whole campaign is canceled only once `confirmed`;
    before, `Unconfirmed` says how many posts it would cancel."""
    if campaign is None and not post_ids:
        raise TminusError("name a campaign or give --post ID")
    by = _person(by)
    with session(engine) as s:
        rows = select_posts(s, campaign, post_ids)
        if post_ids:
            wrong = [r for r in rows if r.state not in CANCELABLE_STATES]
            if wrong:
                raise TminusError(f"post {wrong[0].id} is {wrong[0].state}; only draft, queued "
                                  "or review posts can be canceled")
        elif not confirmed:
            pending = [r for r in rows if r.state in CANCELABLE_STATES]
            approved = sum(1 for r in pending if r.state != S.DRAFT)
            if pending:
                what = (f"every pending post of {campaign}: {len(pending):,} post(s), "
                        f"{approved:,} of them approved")
                raise Unconfirmed(f"this would cancel {what}; nothing was written — run it "
                                  "again with --yes to cancel them (or --post ID for some)",
                                  f"Cancel {what}?")
        done = change(s, [Seen(r.id, r.state) for r in rows if r.state in CANCELABLE_STATES],
                      S.CANCELED, reason=reason or f"canceled by {by}", now=now, actor=by)
    return Cancellation(sorted(done))


# -- one-off posts -----------------------------------------------------------------------


@dataclass(frozen=True)
class OneOff:
    """A one-off post to queue: `at` is `T-3h` (before the deadline), `+10m` (from now),
    `now`, or an ISO date-time (local to the campaign's timezone without an offset)."""

    account: str
    at: str
    text: str
    campaign: str | None = None
    expires: str | None = None       # e.g. "30m"; the campaign default when None
    by: str | None = None            # approve it at once, as this person
    author: str | None = None        # who queued it, when not approved at once (recorded)
    media: tuple[tuple[str, str], ...] = ()   # (image path, alt text)
    language: str | None = None
    key: str | None = None           # a stable plan key (an imported row); random when None


@dataclass(frozen=True)
class Queued:
    post_id: int
    state: PostState
    account: str
    campaign: str
    timezone: str
    due_at: datetime
    length: int
    limit: int
    warnings: tuple[str, ...] = ()    # what `validate` (and `edit`) would warn about


class Known:
    """What checking a one-off post reads from the database — the accounts, the
    campaigns, the live posts of a platform (for the duplicate rule) — read once and kept
    for the session, so that an import of 2,000 rows reads them once, not per row (three
    queries a row were most of its CPU). Valid while nothing else changes them: within
    one transaction that only adds one-off posts, checked among themselves by the caller."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.accounts = {a.name: a for a in s.exec(select(Account)).all()}
        self.campaigns = list(s.exec(select(Campaign)).all())
        self._live: dict[str, dict[str, list[tuple[int, str]]]] = {}

    def account(self, name: str) -> Account:
        acc = self.accounts.get(name)
        if acc is None:
            known = ", ".join(sorted(self.accounts))
            raise FieldError("account", f"{name!r} is unknown; known accounts: "
                             f"{known or 'none yet; plan a campaign first'}")
        return acc

    def campaign_for(self, acc: Account, slug: str | None) -> Campaign:
        if slug:
            camp = next((c for c in self.campaigns if c.slug == slug), None) or find_campaign(
                self.s, slug)      # (not there: find_campaign's error names the known ones)
            if acc.name not in camp.account_names:
                raise FieldError("campaign", f"{slug}: account {acc.name!r} is not in it")
            return camp
        camps = [c for c in self.campaigns if acc.name in c.account_names]
        if len(camps) != 1:
            raise FieldError("campaign", f"is needed: account {acc.name!r} is in {len(camps)} "
                             "campaigns; say which")
        return camps[0]

    def forget_live(self) -> None:
        """A post's text changed (an import's edit): read the live posts again."""
        self._live.clear()

    def no_duplicate(self, acc: Account, text: str) -> None:
        """`_no_duplicate`, against the live posts of the account's platform read once."""
        live = self._live.get(acc.platform)
        if live is None:
            live = self._live[acc.platform] = _live_posts(self.s, acc.platform)
        _refuse_repeat(acc, text, live)


def queue_post(engine: Engine, request: OneOff, *, now: datetime) -> Queued:
    """Queue a one-off post, checked like a campaign's posts; approved at once when the
    request names who approves it."""
    with session(engine) as s:
        return add_one_off(s, prepare_one_off(s, request, now=now), request, now=now)


def prepare_one_off(s: Session, request: OneOff, *, now: datetime,
                    known: Known | None = None) -> Post:
    """The post `request` asks for, every check done (a `TminusError` or `FieldError`
    naming the input at fault), not yet added to the session. `known`: what is read
    for the checks, kept from the post before (an import)."""
    text = request.text.strip()
    problem = "is empty" if not text else forbidden_character(text)
    if problem:   # the same character rules as a campaign's texts (content/chars.py)
        raise TminusError(f"the post's text {problem}")
    known = known or Known(s)
    acc = known.account(request.account)
    camp = known.campaign_for(acc, request.campaign)
    tz = ZoneInfo(camp.timezone)
    due = _when(request.at, now=now, deadline=camp.deadline, tz=tz)
    # said in the campaign's timezone, as the person wrote or reads the campaign's times
    if due >= camp.deadline:
        raise FieldError("at", f"{request.at}: {due.astimezone(tz):%Y-%m-%d %H:%M:%S %Z} is not "
                         f"before the deadline of {camp.slug} "
                         f"({camp.deadline.astimezone(tz):%Y-%m-%d %H:%M %Z})")
    if due < now - timedelta(seconds=5):
        raise FieldError("at", f"{request.at}: {due.astimezone(tz):%Y-%m-%d %H:%M:%S %Z} is in "
                         "the past")
    life = DEFAULT_EXPIRES
    if request.expires is not None:
        try:
            life = parse_duration(request.expires)
        except ScheduleError as e:
            raise FieldError("expires", str(e)) from None
    fit = check_length(acc.platform, text, limit=acc.max_characters)
    if not fit.ok:
        raise TminusError(f"{fit.length} {fit.unit} is over {acc.platform}'s limit of "
                          f"{fit.limit}; shorten the text")
    known.no_duplicate(acc, text)
    options: dict[str, object] = {}
    if request.media:
        options["media"] = [{"path": path, "alt": alt} for path, alt in request.media]
    if request.language:
        options["language"] = request.language
    return Post(campaign_id=camp.id or 0, account_id=acc.id or 0,
                plan_key=request.key or f"adhoc@{uuid.uuid4().hex[:12]}", post_key="adhoc",
                origin="cli", state=S.DRAFT, text=text, text_hash=text_hash(text), due_at=due,
                not_after=min(due + life, camp.deadline), next_attempt_at=due,
                idempotency_key=uuid.uuid4().hex, length=fit.length, length_limit=fit.limit,
                options=options, created_at=now, updated_at=now,
                # warned as `validate` and `edit` warn, and kept for the preview and dashboard
                warnings=hashtag_warnings(text, camp.hashtags) + glued_links(text, camp.hashtags))


def add_one_off(s: Session, post: Post, request: OneOff, *, now: datetime) -> Queued:
    """Add a post `prepare_one_off` made: a draft, or queued at once when `request.by`."""
    return add_one_offs(s, [(post, request)], now=now)[0]


def add_one_offs(s: Session, todo: Sequence[tuple[Post, OneOff]], *, now: datetime
                 ) -> list[Queued]:
    """Add the posts `prepare_one_off` made: one INSERT for all of them and one of their
    first events (an import's thousands of rows are not thousands of round trips)."""
    whom = [(_person(r.by) if r.by is not None else None) for _, r in todo]
    posts = [post for post, _ in todo]
    for post, post_id in zip(posts, _insert_posts(s, posts), strict=True):
        post.id = post_id       # a plain object still: the row is written
    actors: dict[str, list[int]] = {}
    for (post, request), by in zip(todo, whom, strict=True):
        assert post.id is not None
        actors.setdefault(by or request.author or "cli", []).append(post.id)
    for actor, ids in actors.items():
        record_created(s, ids, S.DRAFT, "queued as a one-off post", now, actor)
    # those approved at once move through the one write path, as rows of the session
    approving = [p.id for p, by in zip(posts, whom, strict=True) if by]
    rows = {p.id: p for p in s.exec(select(Post).where(col(Post.id).in_(approving)))} \
        if approving else {}
    done: list[Queued] = []
    for post, by in zip(posts, whom, strict=True):
        camp = s.get(Campaign, post.campaign_id)     # in the session already: no query
        acc = s.get(Account, post.account_id)
        assert camp is not None and acc is not None and post.id is not None
        if by:
            post = rows[post.id]
            sealed = approval.manifest_of_row(post.text, post.options, None, acc)
            transition(s, post, S.QUEUED, f"approved by {by}", now, by,
                       approved=sealed, approved_hash=approval.digest(sealed), approved_by=by,
                       approved_at=now)
        assert post.id is not None
        done.append(Queued(post.id, post.state, acc.name, camp.slug, camp.timezone,
                           post.due_at, post.length, post.length_limit, tuple(post.warnings)))
    return done


_READ_BACK = 5000      # plan keys per query (SQLite allows 32,766 parameters)


def _insert_posts(s: Session, posts: Sequence[Post]) -> list[int]:
    """Insert new posts as one executemany; their ids, in order. Added through the ORM,
    each would be an INSERT … RETURNING of its own (the ORM needs every id, and SQLite
    cannot return a batch's in order); instead the ids are read back in one query by
    (campaign, plan key), which is unique."""
    if not posts:
        return []
    mapper = sa.inspect(Post)
    attrs = [(a.columns[0].key, a.key) for a in mapper.column_attrs if a.key != "id"]
    # the table's own INSERT (Core), with every column as the ORM would send it
    table: sa.Table = Post.__table__  # type: ignore[attr-defined]
    s.execute(sa.insert(table),
              [{column: getattr(p, attr) for column, attr in attrs} for p in posts])
    found: dict[tuple[int, str], int] = {}
    keys = sorted({p.plan_key for p in posts})
    campaigns = {p.campaign_id for p in posts}
    for start in range(0, len(keys), _READ_BACK):
        found.update(((c, k), i) for c, k, i in s.execute(
            sa.select(table.c.campaign_id, table.c.plan_key, table.c.id).where(
                table.c.campaign_id.in_(campaigns),
                table.c.plan_key.in_(keys[start:start + _READ_BACK]))).all())
    return [found[(p.campaign_id, p.plan_key)] for p in posts]


def _when(at: str, *, now: datetime, deadline: datetime, tz: ZoneInfo) -> datetime:
    v = at.strip()
    if v == "now":
        return now
    if v.startswith("+"):
        try:
            return now + parse_duration(v[1:])
        except ScheduleError:
            raise FieldError("at", f"{at!r}: write +10m, +2h or +1d3h") from None
    try:
        if parse_relative(v) is None and not _iso(v):
            # every form `--at` (and a CSV's `at`) takes, with an example of this campaign's
            example = f"{deadline.astimezone(tz) - timedelta(days=1):%Y-%m-%dT%H:%M}"
            raise FieldError("at", f"{at!r} is not a time; write now, +10m, T-3h or a date-time "
                             f"like {example} (local to the campaign without an offset)")
        return parse_instant(v, deadline=deadline, tz=tz).at
    except ScheduleError as e:
        raise FieldError("at", f"{at}: {e}") from None


def _iso(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _no_duplicate(s: Session, acc: Account, text: str, excluding: int | None = None) -> None:
    """The campaign files' duplicate rule (`content.expand.may_not_repeat`), applied to
    the posts already in the queue (but `excluding`, a post whose text is being edited)."""
    _refuse_repeat(acc, text, _live_posts(s, acc.platform, excluding))


def _live_posts(s: Session, platform: str, excluding: int | None = None
                ) -> dict[str, list[tuple[int, str]]]:
    """The live posts of a platform's accounts (an account has one platform), as
    (id, account name) by their `duplicate_key`."""
    live: dict[str, list[tuple[int, str]]] = {}
    for post_id, text, name in s.execute(
            sa.select(col(Post.id), col(Post.text), col(Account.name))
            .join(Account, col(Account.id) == Post.account_id)
            .where(col(Post.state).in_(_LIVE_STATES), col(Post.id) != (excluding or 0),
                   col(Account.platform) == platform)).all():
        live.setdefault(duplicate_key(text), []).append((post_id, name))
    return live


def _refuse_repeat(acc: Account, text: str, live: dict[str, list[tuple[int, str]]]) -> None:
    for post_id, name in live.get(duplicate_key(text), []):
        if may_not_repeat(acc.name, acc.platform, name, acc.platform):
            raise TminusError(f"the same text is already post {post_id}; X rejects repeats and "
                              "forbids identical posts across accounts — make it differ")


# -- review --------------------------------------------------------------------------------


class Resolution(StrEnum):
    PUBLISHED = "published"    # it did go out: the person gives its URL
    REQUEUE = "requeue"        # it did not go out: send it
    CANCEL = "cancel"          # do not send it


@dataclass(frozen=True)
class Reviewed:
    post_id: int
    state: PostState


def review(engine: Engine, post_id: int, resolution: Resolution, *, by: str, now: datetime,
           url: str | None = None) -> Reviewed:
    """Resolve a post whose outcome tminus could not tell."""
    by = _person(by)
    if (resolution == Resolution.PUBLISHED) != bool(url and url.strip()):
        raise FieldError("published", "needs the URL of the post on the platform")
    problem = forbidden_character(url) if url else None
    if problem:
        raise FieldError("published", f"URL {problem}")
    with session(engine) as s:
        p = s.get(Post, post_id)
        if p is None:
            raise NotFound(f"no post {post_id}", "see `tminus list --state review`")
        if p.state != S.REVIEW:
            raise TminusError(f"post {post_id} is {p.state}, not review")
        if resolution == Resolution.PUBLISHED:
            assert url is not None
            transition(s, p, S.PUBLISHED, f"marked published by {by}: {url.strip()}", now, by,
                       remote_url=url.strip(), published_at=now)
        elif resolution == Resolution.REQUEUE:
            transition(s, p, S.QUEUED, f"requeued by {by}", now, by, next_attempt_at=now)
        else:
            transition(s, p, S.CANCELED, f"canceled by {by} in review", now, by)
        return Reviewed(post_id, p.state)


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostLine:
    id: int
    campaign: str
    timezone: str
    deadline: datetime
    account: str
    platform: str
    state: PostState
    due_at: datetime
    next_attempt_at: datetime
    text: str
    last_error: str | None
    remote_url: str | None


def list_posts(engine: Engine, *, states: Sequence[str] = (), campaign: str | None = None,
               ids: Sequence[int] = ()) -> list[PostLine]:
    """Posts in due order, optionally only some states, one campaign, or given ids."""
    wanted = parse_states(states)
    with session(engine) as s:
        q = (sa.select(Post, col(Campaign.slug), col(Campaign.timezone), col(Campaign.deadline),
                       col(Account.name), col(Account.platform))
             .join(Campaign, col(Campaign.id) == Post.campaign_id)
             .join(Account, col(Account.id) == Post.account_id))
        if campaign:
            q = q.where(col(Post.campaign_id) == find_campaign(s, campaign).id)
        if wanted:
            q = q.where(col(Post.state).in_(wanted))
        if ids:
            q = q.where(col(Post.id).in_(list(ids)))
        rows = s.execute(q.order_by(col(Post.due_at), col(Post.id))).all()
        return [_line(p, slug, tz, deadline, name, platform)
                for p, slug, tz, deadline, name, platform in rows]


def _line(p: Post, slug: str, tz: str, deadline: datetime, account: str, platform: str
          ) -> PostLine:
    assert p.id is not None
    return PostLine(p.id, slug, tz, deadline, account, platform, p.state, p.due_at,
                    p.next_attempt_at, p.text, p.last_error, p.remote_url)


@dataclass(frozen=True)
class LogEntry:
    at: datetime
    from_state: PostState | None
    to_state: PostState
    actor: str
    reason: str


@dataclass(frozen=True)
class PostLog:
    post: PostLine
    attempt: int
    events: list[LogEntry]


def post_log(engine: Engine, post_id: int) -> PostLog:
    """A post's audit trail: every change of state, when, by whom and why."""
    lines = list_posts(engine, ids=[post_id])
    if not lines:
        raise NotFound(f"no post {post_id}", "see `tminus list`")
    with session(engine) as s:
        attempt = s.execute(sa.select(col(Post.attempt)).where(col(Post.id) == post_id)).scalar_one()
        events = [LogEntry(e.at, e.from_state, e.to_state, e.actor, e.reason)
                  for e in s.exec(select(Event).where(Event.post_id == post_id)
                                  .order_by(col(Event.at), col(Event.id))).all()]
    return PostLog(lines[0], attempt, events)
