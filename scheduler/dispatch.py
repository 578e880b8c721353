"""One tick's work: claim what is due, hand each post to its adapter, record the outcome.

Claim, attempt and record are three steps with no transaction open across the
platform request:

1. claim: one short write transaction moves due posts to `sending` with a lease
   (`lease_owner`, `lease_until`, `attempt += 1`) and commits before any request;
2. attempt: the adapter publishes (no database);
3. record: a fenced change (`WHERE id AND attempt AND state='sending'`, through
   `scheduler.transitions.change`) stores the outcome; a post that no longer matches
   was taken over (our lease was lost) and nothing is overwritten.

The `except` ladder in `record_failure` is the one place that maps an error class to
the next state.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import func, update
from sqlalchemy.engine import Engine

from content.platforms import RateBudget
from content.platforms import platform as platform_entry
from jobs.adapters.base import FindsMany, Publisher
from jobs.errors import AuthError, PermanentError, PublishError, TransientError, UnknownOutcome
from jobs.outgoing import Media, Outgoing, Receipt
from scheduler import approval, defaults
from scheduler.db import connection_of, is_postgres, transaction
from scheduler.localtime import local
from scheduler.queue import ALL, CUTOFF, NOW, Scope, cutoff_of, sendable
from scheduler.rows import AccountLike, AccountRow
from scheduler.sqltypes import UTCDateTime
from scheduler.states import PostState
from scheduler.tables import account as _account
from scheduler.tables import campaign as _campaign
from scheduler.tables import post as _post
from scheduler.transitions import Seen, change

if TYPE_CHECKING:
    from scheduler.db import Bind

S = PostState
log = logging.getLogger("tminus.dispatch")


@dataclass(frozen=True)
class Claimed:
    post_id: int
    attempt: int
    account: AccountLike
    outgoing: Outgoing
    not_after: datetime
    deadline: datetime
    lease_until: datetime
    unknown_at: datetime | None = None   # an earlier attempt's outcome was unknown then
    campaign_id: int = 0
    parent_id: int | None = None
    approved: dict[str, Any] | None = None   # what the approval covered (scheduler.approval)
    approved_hash: str | None = None
    send_at: datetime | None = None     # its next_attempt_at: not sent before (a claim ahead)
    timezone: str = "UTC"               # its campaign's: the times in its events' reasons


# A rate budget: at most `posts` per rolling `window` (the registry's type).
Budget = RateBudget


def budgets_of(platform: str, tier: str, custom: Budget | None = None) -> list[Budget]:
    """The campaign file's own budget if it gives one, else the platform tier's from the
    registry (an unknown tier gets the default tier's: never no budget)."""
    if custom is not None:
        return [custom]
    return list(platform_entry(platform).tier(tier).budgets)


def budgets_for(account: AccountLike) -> list[Budget]:
    custom = (Budget(account.budget_posts, timedelta(seconds=account.budget_seconds))
              if account.budget_posts and account.budget_seconds else None)
    return budgets_of(account.platform, account.tier, custom)


def over_budget(dues: list[datetime], budget: Budget) -> tuple[datetime, int] | None:
    """The first window of `budget.window` holding more than `budget.posts` of the
    sorted `dues`: (its start, how many), or None if every window fits."""
    start = 0
    for end, at in enumerate(dues):
        while at - dues[start] >= budget.window:
            start += 1
        if end - start + 1 > budget.posts:
            count = sum(1 for d in dues[start:] if d - dues[start] < budget.window)
            return dues[start], count
    return None


def backoff(attempt: int) -> timedelta:
    seconds = min(defaults.BACKOFF_CAP_SECONDS, defaults.BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return timedelta(seconds=seconds)


_RECEIPT = sa.select(_post.c.receipt).where(_post.c.id == sa.bindparam("id"))


def _thread_refs(conn: sa.Connection, parent_id: int | None, root_id: int | None
                 ) -> tuple[Receipt | None, Receipt | None]:
    """The receipts of the post this one replies to and of its thread's first post."""
    if parent_id is None:
        return None, None
    parent = conn.execute(_RECEIPT, {"id": parent_id}).scalar()
    if not parent:
        return None, None
    reply_to = Receipt.from_dict(parent)
    root = conn.execute(_RECEIPT, {"id": root_id}).scalar() if root_id is not None else None
    return reply_to, (Receipt.from_dict(root) if root else reply_to)


def outgoing_of(s: Bind, post: Any, account: AccountLike, attempt: int | None = None
                ) -> Outgoing:
    """The post as an adapter sees it. `post` is a Post or a row with its columns;
    `attempt` overrides its attempt number (a claim has just counted one more)."""
    opts = post.options or {}
    reply_to, thread_root = _thread_refs(connection_of(s), post.parent_id, post.thread_root_id)
    assert post.id is not None
    return Outgoing(
        post_id=post.id, account=account.name, platform=account.platform, text=post.text,
        idempotency_key=post.idempotency_key, due_at=post.due_at,
        attempt=post.attempt if attempt is None else attempt,
        language=opts.get("language"), visibility=opts.get("visibility"),
        content_warning=opts.get("content_warning"),
        media=tuple(Media(m["path"], m["alt"]) for m in opts.get("media") or []),
        reply_to=reply_to, thread_root=thread_root)


def _rooms(s: Bind, accounts: Sequence[AccountLike], now: datetime
           ) -> dict[int, tuple[int | None, datetime]]:
    """For each account: how many posts it may send now, and when a post held back for
    lack of room may try again. Every account has a budget (the registry's, or the
    campaign's own), so this is one query for the whole batch, whatever its windows
    (`_used`), not one per account: a burst on a thousand accounts claims in seconds."""
    by_window: dict[timedelta, list[tuple[int, Budget]]] = {}
    for account in accounts:
        assert account.id is not None
        for b in budgets_for(account):
            by_window.setdefault(b.window, []).append((account.id, b))
    out: dict[int, tuple[int | None, datetime]] = {
        a.id: (None, now) for a in accounts if a.id is not None}
    if not by_window:
        return out
    windows = sorted(by_window, reverse=True)       # the longest first: since0 the earliest
    # posts of each account sent (or being sent) within each window, and the oldest
    used = {row[0]: row[1:] for row in connection_of(s).execute(_used(len(windows)), {
        "accounts": list({aid for members in by_window.values() for aid, _ in members}),
        **{f"since{i}": now - w for i, w in enumerate(windows)}})}
    for i, window in enumerate(windows):
        for aid, b in by_window[window]:
            got = used.get(aid)
            count, oldest = (int(got[2 * i]), got[2 * i + 1]) if got else (0, None)
            room, retry_at = out[aid]
            left = max(0, b.posts - count)
            # the window frees its first slot when its oldest post leaves it; with
            # nothing sent yet, the posts taken now are the oldest
            out[aid] = (left if room is None else min(room, left),
                        max(retry_at, (oldest or now) + window))
    return out


@functools.cache
def _used(windows: int) -> sa.Select[Any]:
    """`_rooms`' query for `windows` window lengths, longest first (`since0`, the
    earliest start, bounds the scan): per account, the posts claimed within each window
    and the oldest of them. One shape per number of windows, so SQLAlchemy compiles it
    once (a batch mixing X, Mastodon and Bluesky had one statement per window)."""
    columns: list[sa.ColumnElement[Any]] = [_post.c.account_id]
    for i in range(windows):
        inside = _post.c.claimed_at > sa.bindparam(f"since{i}", type_=UTCDateTime())
        columns += [func.count(sa.case((inside, 1))),
                    func.min(sa.case((inside, _post.c.claimed_at)))]
    return (sa.select(*columns)
            .where(_post.c.account_id.in_(sa.bindparam("accounts", expanding=True)),
                   _post.c.state.in_([S.PUBLISHED, S.SENDING, S.UNKNOWN]),
                   _post.c.claimed_at > sa.bindparam("since0", type_=UTCDateTime()))
            .group_by(_post.c.account_id))


_CANDIDATE_COLUMNS = tuple(_post.c[name] for name in (
    "id", "account_id", "campaign_id", "text", "approved", "approved_hash", "idempotency_key",
    "due_at", "not_after", "attempt", "options", "parent_id", "thread_root_id", "unknown_at",
    "claimed_at", "next_attempt_at"))


@functools.cache
def _candidates(scope: Scope, postgres: bool) -> sa.Select[Any]:
    """The claim's query, built once per scope and database kind (see queue.NOW): the
    sendable posts due by DUE_BY, in due order, at most LIMIT."""
    q = (sa.select(*_CANDIDATE_COLUMNS)
         .where(*sendable(NOW, cutoff=CUTOFF, scope=scope),
                _post.c.next_attempt_at <= sa.bindparam("due_by", type_=UTCDateTime()))
         .order_by(_post.c.next_attempt_at, _post.c.id)
         .limit(sa.bindparam("limit", type_=sa.Integer())))
    if postgres:
        q = q.with_for_update(skip_locked=True, of=_post)
    return q


_CAMPAIGNS = (sa.select(_campaign.c.id, _campaign.c.deadline, _campaign.c.timezone)
              .where(_campaign.c.id.in_(sa.bindparam("ids", expanding=True))))
_ACCOUNTS = sa.select(_account).where(_account.c.id.in_(sa.bindparam("ids", expanding=True)))
# the next attempt's number, in the claim's UPDATE (one object: `change` reuses the
# statement it built for it)
_NEXT_ATTEMPT = _post.c.attempt + 1
# what a look-up needs of a post in `unknown`
_LOOKUP_COLUMNS = tuple(_post.c[name] for name in (
    "id", "account_id", "attempt", "claimed_at", "due_at", "not_after", "next_attempt_at",
    "text", "idempotency_key", "options", "parent_id", "thread_root_id"))


def claim(engine: Engine, *, now: datetime, owner: str, lease: timedelta,
          limit: int = defaults.CLAIM_BATCH, cutoff: datetime | None = None,
          scope: Scope = ALL, due_by: datetime | None = None) -> list[Claimed]:
    """Take up to `limit` due posts for `owner`, committing before any request.
    With `due_by` (the daemon claiming ahead), the posts due by then: each must wait
    for its own `send_at`; everything else is judged at `now`.

    One query finds the candidates (locked with SKIP LOCKED on PostgreSQL; SQLite's
    BEGIN IMMEDIATE makes the whole transaction exclusive), one UPDATE claims them and
    one INSERT records their events: a burst of ten thousand posts is claimed in a few
    hundred statements, not tens of thousands."""
    with transaction(engine) as conn:
        rows = conn.execute(_candidates(scope, is_postgres(engine)), {
            "now": now, "cutoff": cutoff_of(now, cutoff), "due_by": max(now, due_by or now),
            "limit": limit}).all()
        if not rows:
            return []
        campaigns = {c.id: c for c in conn.execute(
            _CAMPAIGNS, {"ids": list({r.campaign_id for r in rows})})}
        accounts = {a.id: AccountRow.of(a) for a in conn.execute(
            _ACCOUNTS, {"ids": list({r.account_id for r in rows})})}
        # (whether what goes out is what was approved is checked right before each
        # request, in `send`, with the media bytes read for the upload)
        rooms = _rooms(conn, list(accounts.values()), now)
        take = []
        for r in rows:
            account = accounts[r.account_id]
            room, retry_at = rooms[r.account_id]
            tz = campaigns[r.campaign_id].timezone
            if room is not None:
                if room <= 0:
                    # over budget: wait for a free slot (expiry still applies at not_after)
                    conn.execute(update(_post).where(_post.c.id == r.id).values(
                        next_attempt_at=min(retry_at, r.not_after),
                        last_error=f"held: {account.name} is at its rate budget until "
                                   f"{local(retry_at, tz, '%H:%M:%S')}"))
                    continue
                rooms[r.account_id] = (room - 1, retry_at)
            take.append(r)
        attempts = {r.id: r.attempt + 1 for r in take}
        # The rows are locked (PostgreSQL) or the database is (SQLite): all of them move.
        # Should one not, it is simply not taken: never send a post someone else holds.
        got = set(change(
            conn, [Seen(r.id, S.QUEUED) for r in take], S.SENDING, now=now, actor=owner,
            reason={r.id: f"claimed by {owner}, attempt {attempts[r.id]}" for r in take},
            values={"attempt": _NEXT_ATTEMPT, "lease_owner": owner,
                    "lease_until": now + lease, "claimed_at": now}, strict=False))
        return [Claimed(r.id, attempts[r.id], accounts[r.account_id],
                        outgoing_of(conn, r, accounts[r.account_id], attempts[r.id]), r.not_after,
                        campaigns[r.campaign_id].deadline, now + lease, r.unknown_at,
                        r.campaign_id, r.parent_id, r.approved, r.approved_hash,
                        r.next_attempt_at, campaigns[r.campaign_id].timezone)
                for r in take if r.id in got]


def renew_leases(engine: Engine, items: list[Claimed], *, now: datetime, owner: str,
                 lease: timedelta) -> list[Claimed]:
    """Extend the lease of claimed posts not yet settled; returns those still ours, with
    their new lease. Any other was recorded meanwhile, or reaped by another daemon
    (which may be sending it: it must not be sent again from here)."""
    if not items:
        return []
    until = now + lease
    ids = [i.post_id for i in items]
    mine = (_post.c.id.in_(ids), _post.c.state == S.SENDING, _post.c.lease_owner == owner)
    with transaction(engine) as conn:
        # RETURNING, not a read-back of the new lease_until: the renewer thread may
        # renew the same posts at the same moment with a lease of its own
        held = set(conn.execute(update(_post).where(*mine, _post.c.lease_until > now)
                                .values(lease_until=until).returning(_post.c.id)).scalars())
    return [dataclasses.replace(i, lease_until=until) for i in items if i.post_id in held]


_BLOCKED = (sa.select(_account.c.paused_reason, _account.c.resume_at)
            .where(_account.c.id == sa.bindparam("id")))


def account_blocked(engine: Engine, account: AccountLike, now: datetime) -> str | None:
    """"paused" or "rate limited" if the account may not post now, else None."""
    with transaction(engine) as conn:
        acc = conn.execute(_BLOCKED, {"id": account.id}).first()
    if acc is None:
        return None
    if acc.paused_reason:
        return "paused"
    if acc.resume_at is not None and acc.resume_at > now:
        return "rate limited"
    return None


_RELEASED = {"lease_owner": None, "lease_until": None}


def release(engine: Engine, item: Claimed, *, now: datetime, owner: str, reason: str) -> None:
    """Give back a claimed post that was never attempted (the daemon is stopping)."""
    with transaction(engine) as conn:
        _settle(conn, item, S.QUEUED, reason, now, owner, attempt=item.attempt - 1, **_RELEASED)


def _settle(conn: sa.Connection, item: Claimed, to: PostState, reason: str, now: datetime, owner: str,
            **values: Any) -> bool:
    """Record the outcome of our own attempt at `item`, if it is still ours."""
    return bool(change(conn, [Seen(item.post_id, S.SENDING, item.attempt)], to, reason=reason,
                       now=now, actor=owner, values=values, strict=False))


def _no_hook(point: str) -> None:
    pass


@dataclass(frozen=True)
class Delivered:
    """The platform took the post at `at`; the caller records it (alone, or in a group
    with others: `record_many`)."""

    receipt: Receipt
    at: datetime


@dataclass(frozen=True)
class Settled:
    """The attempt did not publish (or came too late); its outcome is already recorded
    and the post is now in `state`."""

    state: PostState


SendOutcome = Delivered | Settled


def prove(engine: Engine, items: list[Claimed], *, now: datetime, owner: str,
          lease: timedelta) -> set[int]:
    """Prove, in one fenced write, that `items` are still ours before their requests
    (same id, attempt, owner, state, and a lease not yet run out), renewing their lease
    from `now`. Returns the ids proved; any other may be another daemon's by now and
    must not be sent from here."""
    if not items:
        return set()
    with transaction(engine) as conn:
        return set(conn.execute(update(_post).where(
            sa.tuple_(_post.c.id, _post.c.attempt).in_(
                [(i.post_id, i.attempt) for i in items]),
            _post.c.lease_owner == owner, _post.c.state == S.SENDING,
            _post.c.lease_until > now).values(lease_until=now + lease)
            .returning(_post.c.id)).scalars())


def send(engine: Engine, item: Claimed, publisher: Publisher, *,
         now: Callable[[], datetime], owner: str, max_attempts: int,
         cutoff: Callable[[], datetime] | None = None,
         hook: Callable[[str], None] = _no_hook, leased_until: datetime | None = None,
         attempt_for: timedelta | None = None) -> SendOutcome:
    """Publish one claimed post, freshly `prove`n ours. `now` is the daemon's clock (the
    database's time), `cutoff` the later of it and the host's own clock. `hook(point)`
    is called at "after_answer" (crash tests).

    The attempt (uploads + create) is bounded in time: it must be over by the earliest
    of `attempt_for` after it starts, the end of the lease its proof gave it
    (`leased_until`: even with no renewal, no other daemon can take it over meanwhile),
    the post's not_after and the deadline. The adapter holds every request to that
    (`Outgoing.deadline`); a create cut short by it is an unknown outcome."""
    sent_at = now()
    if sent_at >= item.not_after or sent_at >= item.deadline:
        # Checked with a fresh clock right before the request: never send late.
        with transaction(engine) as conn:
            _settle(conn, item, S.EXPIRED,
                    f"not_after {local(item.not_after, item.timezone, '%H:%M:%S')} passed "
                    "before it could be sent",
                    sent_at, owner, **_RELEASED)
        return Settled(S.EXPIRED)
    late = cutoff() if cutoff is not None else sent_at
    if late >= item.not_after or late >= item.deadline:
        # Too late by this host's own clock only: not sent from here, never expired on
        # its word; another daemon, or the expiry at not_after, decides.
        with transaction(engine) as conn:
            _settle(conn, item, S.QUEUED, "this host's clock is "
                    f"{(late - sent_at).total_seconds():.1f} s ahead of the database's and says "
                    "it is too late; given back before any attempt", sent_at, owner,
                    attempt=item.attempt - 1, **_RELEASED)
        return Settled(S.QUEUED)
    window = defaults.REPEAT_PROTECTION.get(item.account.platform)
    if item.unknown_at is not None and window is not None and sent_at - item.unknown_at > window:
        # The platform's own protection against a repeat (Mastodon's Idempotency-Key)
        # may have forgotten this post by now: look it up again before sending.
        try:
            found = publisher.find(item.outgoing, item.unknown_at - timedelta(minutes=2))
        except Exception as e:
            why = e.message if isinstance(e, PublishError) else f"{type(e).__name__}: {e}"
            return Settled(record_failure(engine, item, UnknownOutcome(
                f"could not look it up before retrying: {why}"), now=now(), owner=owner,
                max_attempts=max_attempts))
        if found is not None:
            return Delivered(found, now())
    # held back, it is so as of sent_at (one clock read less a post)
    checked = as_approved(engine, item, now=sent_at, owner=owner)
    if isinstance(checked, Settled):
        return checked
    bound = min(item.not_after, item.deadline)
    for limit in (leased_until, sent_at + attempt_for if attempt_for else None):
        if limit is not None:
            bound = min(bound, limit)
    try:
        receipt = publisher.publish(dataclasses.replace(checked, deadline=bound))
    except PublishError as e:
        return Settled(record_failure(engine, item, e, now=now(), owner=owner,
                                      max_attempts=max_attempts))
    except Exception as e:  # an adapter bug: the request may have gone out
        log.exception("adapter %s raised unexpectedly for post %s", publisher.platform, item.post_id)
        why = f"adapter error: {type(e).__name__}: {e}"
        # the post is looked up (it may be out); the account waits for a person
        pause_account(engine, item.account, why, now())
        return Settled(record_failure(engine, item, UnknownOutcome(why), now=now(), owner=owner,
                                      max_attempts=max_attempts))
    hook("after_answer")
    return Delivered(receipt, now())


def as_approved(engine: Engine, item: Claimed, *, now: datetime, owner: str
                ) -> Outgoing | Settled:
    """The post with its media bytes read (once: these bytes are hashed and uploaded),
    if it is exactly what was approved; otherwise it is held back to draft, with what
    differs as the reason, before anything is uploaded."""
    media, items = [], []
    for m in item.outgoing.media:
        try:
            data: bytes | None = Path(m.path).read_bytes()
        except OSError:
            data = None
        media.append(Media(m.path, m.alt, data))
        items.append((m.path, m.alt, None if data is None else approval.sha(data)))
    o = item.outgoing
    current = approval.manifest(
        text=o.text, options={"language": o.language, "visibility": o.visibility,
                              "content_warning": o.content_warning},
        parent_id=item.parent_id, account=item.account, media=items)
    wrong = approval.differences(item.approved, item.approved_hash, current)
    if not wrong:
        # (no media: the post as it is; a burst of text posts copies none of them)
        return dataclasses.replace(o, media=tuple(media)) if media else o
    log.warning("post %s held back: not what was approved (%s)", item.post_id,
                "; ".join(w.splitlines()[0] for w in wrong))
    with transaction(engine) as conn:
        _settle(conn, item, S.DRAFT, "not sent: what would go out is not what was approved; "
                "approve it again\n" + "\n".join(wrong), now, owner, attempt=item.attempt - 1,
                approved_hash=None, approved=None, **_RELEASED)
    return Settled(S.DRAFT)


def record_many(engine: Engine, done: list[tuple[Claimed, Delivered]], *, owner: str,
                hook: Callable[[str], None] = _no_hook) -> list[int]:
    """Record several publications in one transaction (a burst sends thousands), each
    fenced on its own attempt; returns the ids recorded. A post no longer ours (its
    lease was lost) is left as the daemon that took it over records it."""
    if not done:
        return []
    with transaction(engine) as conn:
        recorded = change(
            conn, [Seen(item.post_id, S.SENDING, item.attempt) for item, _ in done], S.PUBLISHED,
            now=max(d.at for _, d in done), actor=owner, owner=owner, strict=False,
            reason={item.post_id: f"published: {d.receipt.url or d.receipt.remote_id}"
                    for item, d in done},
            values={"last_error": None, **_RELEASED},
            each={item.post_id: {"updated_at": d.at, "published_at": d.at,
                                 "remote_id": d.receipt.remote_id, "remote_url": d.receipt.url,
                                 "receipt": d.receipt.as_dict()} for item, d in done})
        hook("before_commit")
    ours = set(recorded)    # (a dry run records a thousand at once: no list search each)
    for item, d in done:
        if item.post_id not in ours:
            log.warning("post %s: lease lost before recording publication %s", item.post_id,
                        d.receipt.remote_id)
    return recorded


def record_failure(engine: Engine, item: Claimed, error: PublishError, *, now: datetime,
                   owner: str, max_attempts: int) -> PostState:
    """The except ladder: the error's class decides the next state."""
    msg = error.message[:500]
    common = {"last_error": msg, **_RELEASED}
    with transaction(engine) as conn:
        if isinstance(error, TransientError):
            if error.resume_at is not None:
                _set_resume(conn, item.account, error.resume_at)
            if item.attempt >= max_attempts:
                _settle(conn, item, S.FAILED, f"gave up after {item.attempt} attempts: {msg}", now,
                        owner, **common)
                return S.FAILED
            wait = backoff(item.attempt)
            if error.retry_after is not None:
                wait = max(wait, timedelta(seconds=error.retry_after))
            if error.resume_at is not None:
                wait = max(wait, error.resume_at - now)
            _settle(conn, item, S.QUEUED, f"transient: {msg}; retry in {int(wait.total_seconds())} s",
                    now, owner, next_attempt_at=now + wait, **common)
            return S.QUEUED
        if isinstance(error, AuthError):
            _pause(conn, item.account, f"credentials refused: {msg}", now)
            # The post itself is fine: it waits for the account to be resumed.
            _settle(conn, item, S.QUEUED, f"account {item.account.name} paused: {msg}", now, owner,
                    attempt=item.attempt - 1, **common)
            return S.QUEUED
        if isinstance(error, PermanentError):
            _settle(conn, item, S.FAILED, f"refused by {item.account.platform}: {msg}", now, owner,
                    **common)
            return S.FAILED
        # Should the look-up find it absent, it goes again after the usual backoff, not
        # at once: a platform answering every create with a 5xx must not be hammered.
        _settle(conn, item, S.UNKNOWN, f"outcome unknown: {msg}; will look it up", now, owner,
                unknown_at=now, next_attempt_at=now + backoff(item.attempt), **common)
        return S.UNKNOWN


def _set_resume(conn: sa.Connection, account: AccountLike, resume_at: datetime) -> None:
    """No attempt on `account` before `resume_at` (a later wait already set stays)."""
    conn.execute(update(_account).where(
        _account.c.id == account.id,
        _account.c.resume_at.is_(None) | (_account.c.resume_at < resume_at))
        .values(resume_at=resume_at))


def pause_account(engine: Engine, account: AccountLike, reason: str, now: datetime) -> None:
    """Hold every post of `account` until a person resumes it (its credentials were
    refused, or its adapter cannot even be built)."""
    with transaction(engine) as conn:
        _pause(conn, account, reason, now)


def _pause(conn: sa.Connection, account: AccountLike, reason: str, now: datetime) -> None:
    """Pause `account` unless it is paused already (the first reason is kept)."""
    if conn.execute(update(_account).where(
            _account.c.id == account.id, _account.c.paused_reason.is_(None))
            .values(paused_reason=reason[:300], paused_at=now)).rowcount:
        log.error("account %s paused: %s", account.name, reason)


def reap_leases(engine: Engine, *, now: datetime, owner: str, scope: Scope = ALL) -> int:
    """Posts whose lease ran out (their daemon died mid-attempt) become unknown:
    never retried blindly, they are looked up first."""
    with transaction(engine) as conn:
        stale = conn.execute(sa.select(_post.c.id, _post.c.attempt, _post.c.lease_owner)
                             .where(_post.c.state == S.SENDING, _post.c.lease_until <= now,
                                    scope.accounts())).all()
        return len(change(
            conn, [Seen(r.id, S.SENDING, r.attempt) for r in stale], S.UNKNOWN, now=now,
            # its daemon died: found absent, it goes again at once
            actor=owner, strict=False, values={"unknown_at": now, "next_attempt_at": now,
                                               **_RELEASED},
            reason={r.id: f"lease of {r.lease_owner} expired mid-attempt; will look it up"
                    for r in stale}))


def reconcile(engine: Engine, publishers: Callable[[AccountLike], Publisher], *,
              now: datetime, owner: str, lease: timedelta,
              limit: int = defaults.RECONCILE_BATCH,
              after: timedelta = timedelta(seconds=defaults.RECONCILE_AFTER_SECONDS),
              stopping: Callable[[], bool] = lambda: False, scope: Scope = ALL) -> int:
    """Ask the platform about each post in `unknown`: found -> published; provably
    absent -> queued again (or expired if past not_after); can't tell -> review."""
    with transaction(engine) as conn:
        q = (sa.select(*_LOOKUP_COLUMNS)
             .where(_post.c.state == S.UNKNOWN,
                    _post.c.updated_at <= now - after,
                    (_post.c.lease_until.is_(None)) | (_post.c.lease_until <= now),
                    # a paused account's posts wait with it (a rate limit on creating
                    # posts does not stop reading them)
                    _post.c.account_id.not_in(sa.select(_account.c.id).where(
                        _account.c.paused_reason.is_not(None))), scope.accounts())
             .order_by(_post.c.id).limit(limit))
        if is_postgres(engine):
            q = q.with_for_update(skip_locked=True, of=_post)
        rows = conn.execute(q).all()
        if rows:
            # a short lease on the look-up, not a state change: another daemon skips them
            conn.execute(update(_post).where(_post.c.id.in_([r.id for r in rows]))
                         .values(lease_owner=owner, lease_until=now + lease))
        accounts = {a.id: AccountRow.of(a) for a in conn.execute(
            _ACCOUNTS, {"ids": list({r.account_id for r in rows})})} if rows else {}
        work = []
        for post in rows:
            acc = accounts[post.account_id]
            work.append((Seen(post.id, S.UNKNOWN, post.attempt), post.claimed_at or post.due_at,
                         post.not_after, acc, outgoing_of(conn, post, acc),
                         max(now, post.next_attempt_at)))
    by_account: dict[int | None, list[tuple[Seen, datetime, datetime, AccountLike, Outgoing,
                                            datetime]]] = {}
    for one in work:
        by_account.setdefault(one[3].id, []).append(one)
    for group in by_account.values():
        if stopping():
            break  # the rest keep their short lease and are looked up by the next daemon
        account = group[0][3]
        try:
            publisher = publishers(account)
        except Exception as e:
            # the account's adapter cannot be built: it is paused; its posts stay unknown
            pause_account(engine, account, f"cannot set up its {account.platform} adapter: {e}",
                          now)
            with transaction(engine) as conn:
                conn.execute(update(_post).where(_post.c.id.in_([g[0].id for g in group]),
                                                 _post.c.state == S.UNKNOWN).values(**_RELEASED))
            continue
        for (seen, _, not_after, _, _, retry_at), found in zip(
                group, _look_up(publisher, [(g[4], g[1] - timedelta(minutes=2)) for g in group],
                                stopping), strict=False):
            _settle_lookup(engine, seen, not_after, found, now, owner, retry_at)
    return len(work)


def _look_up(publisher: Publisher, wanted: list[tuple[Outgoing, datetime]],
             stopping: Callable[[], bool]) -> list[Receipt | Exception | None]:
    """Each (post, since) looked up, in order, until `stopping()`: its receipt, None
    (provably absent) or the exception that says the platform could not tell. Several
    posts of one account go in one listing where the adapter can (`FindsMany`: a crash
    leaves a round of them)."""
    if len(wanted) > 1 and isinstance(publisher, FindsMany):
        try:
            found = publisher.find_many(wanted)
            return [found.get(post.post_id, UnknownOutcome("not looked up"))
                    for post, _ in wanted]
        except Exception as e:
            return [e for _ in wanted]
    out: list[Receipt | Exception | None] = []
    for post, since in wanted:
        if stopping():
            break  # the rest keep their short lease and are looked up by the next daemon
        try:
            out.append(publisher.find(post, since))
        except Exception as e:
            out.append(e)
    return out


def _settle_lookup(engine: Engine, seen: Seen, not_after: datetime,
                   found: Receipt | Exception | None, now: datetime, owner: str,
                   retry_at: datetime) -> None:
    """A look-up's answer, recorded: found -> published; absent -> queued again (at
    `retry_at`), or expired past not_after; can't tell -> review, with the reason."""
    if isinstance(found, Exception):
        reason = found.message if isinstance(found, PublishError) else (
            f"{type(found).__name__}: {found}")
        _looked_up(engine, seen, S.REVIEW, f"could not tell whether it went out: "
                   f"{reason[:300]}; resolve with `tminus review`", now, owner)
    elif found is not None:
        _looked_up(engine, seen, S.PUBLISHED, f"found on the platform: "
                   f"{found.url or found.remote_id}", now, owner,
                   remote_id=found.remote_id, remote_url=found.url, receipt=found.as_dict(),
                   published_at=now, last_error=None)
    elif now >= not_after:
        _looked_up(engine, seen, S.EXPIRED, "not on the platform, and its not_after has "
                   "passed", now, owner)
    else:
        wait = f", retry in {int((retry_at - now).total_seconds())} s" if retry_at > now else ""
        _looked_up(engine, seen, S.QUEUED, f"not on the platform; queued again{wait}", now,
                   owner, next_attempt_at=retry_at)


def _looked_up(engine: Engine, seen: Seen, to: PostState, reason: str, now: datetime, owner: str,
               **values: Any) -> None:
    with transaction(engine) as conn:
        change(conn, [seen], to, reason=reason, now=now, actor=owner, strict=False,
               values={**_RELEASED, **values})
