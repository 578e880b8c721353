"""One tick's work: claim what is due, hand each post to its adapter, record the outcome.

Claim, attempt and record are three steps with no transaction open across the
platform request:

1. claim: one short write transaction moves due posts to `sending` with a lease
   (`lease_owner`, `lease_until`, `attempt += 1`) and commits before any request;
2. attempt: the adapter publishes (no database);
3. record: a fenced update (`WHERE id AND attempt AND state='sending'`) stores the
   outcome; zero rows means the lease was lost and nothing is overwritten.

The `except` ladder in `record_failure` is the one place that maps an error class to
the next state.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from content.platforms import RateBudget
from content.platforms import platform as platform_entry
from jobs.adapters.base import Publisher
from jobs.errors import AuthError, PermanentError, PublishError, TransientError, UnknownOutcome
from jobs.outgoing import Media, Outgoing, Receipt
from scheduler import defaults
from scheduler.db import is_postgres, session
from scheduler.models import Account, Campaign, Event, Post, PostState
from scheduler.queue import fenced_update, transition

S = PostState
log = logging.getLogger("tminus.dispatch")


@dataclass(frozen=True)
class Claimed:
    post_id: int
    attempt: int
    account: Account
    outgoing: Outgoing
    not_after: datetime
    deadline: datetime
    lease_until: datetime


# A rate budget: at most `posts` per rolling `window` (the registry's type).
Budget = RateBudget


def budgets_of(platform: str, tier: str, custom: Budget | None = None) -> list[Budget]:
    """The campaign file's own budget if it gives one, else the platform tier's from the
    registry (an unknown tier gets the default tier's: never no budget)."""
    if custom is not None:
        return [custom]
    return list(platform_entry(platform).tier(tier).budgets)


def budgets_for(account: Account) -> list[Budget]:
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


def _thread_refs(s: Session, parent_id: int | None, root_id: int | None
                 ) -> tuple[Receipt | None, Receipt | None]:
    """The receipts of the post this one replies to and of its thread's first post."""
    if parent_id is None:
        return None, None
    parent = s.get(Post, parent_id)
    if parent is None or not parent.receipt:
        return None, None
    reply_to = Receipt.from_dict(parent.receipt)
    root = s.get(Post, root_id) if root_id is not None else None
    return reply_to, (Receipt.from_dict(root.receipt) if root and root.receipt else reply_to)


def outgoing_of(s: Session, post: Any, account: Account, attempt: int | None = None) -> Outgoing:
    """The post as an adapter sees it. `post` is a Post or a row with its columns;
    `attempt` overrides its attempt number (a claim has just counted one more)."""
    opts = post.options or {}
    reply_to, thread_root = _thread_refs(s, post.parent_id, post.thread_root_id)
    assert post.id is not None
    return Outgoing(
        post_id=post.id, account=account.name, platform=account.platform, text=post.text,
        idempotency_key=post.idempotency_key, due_at=post.due_at,
        attempt=post.attempt if attempt is None else attempt,
        language=opts.get("language"), visibility=opts.get("visibility"),
        content_warning=opts.get("content_warning"),
        media=tuple(Media(m["path"], m["alt"]) for m in opts.get("media") or []),
        reply_to=reply_to, thread_root=thread_root)


def _rooms(s: Session, accounts: list[Account], now: datetime
           ) -> dict[int, tuple[int | None, datetime]]:
    """For each account: how many posts it may send now, and when a post held back for
    lack of room may try again. Every account has a budget (the registry's, or the
    campaign's own), so this is one query per distinct window length in the batch,
    not one per account: a burst on a thousand accounts claims in seconds."""
    by_window: dict[timedelta, list[tuple[int, Budget]]] = {}
    for account in accounts:
        assert account.id is not None
        for b in budgets_for(account):
            by_window.setdefault(b.window, []).append((account.id, b))
    out: dict[int, tuple[int | None, datetime]] = {
        a.id: (None, now) for a in accounts if a.id is not None}
    for window, members in by_window.items():
        # posts of each account sent (or being sent) within the window, and the oldest
        used = {row[0]: (int(row[1]), row[2]) for row in s.execute(
            sa.select(col(Post.account_id), func.count(), func.min(Post.claimed_at))
            .where(col(Post.account_id).in_({aid for aid, _ in members}),
                   col(Post.state).in_([S.PUBLISHED, S.SENDING, S.UNKNOWN]),
                   col(Post.claimed_at) > now - window)
            .group_by(col(Post.account_id)))}
        for aid, b in members:
            count, oldest = used.get(aid, (0, None))
            room, retry_at = out[aid]
            left = max(0, b.posts - count)
            # the window frees its first slot when its oldest post leaves it; with
            # nothing sent yet, the posts taken now are the oldest
            out[aid] = (left if room is None else min(room, left),
                        max(retry_at, (oldest or now) + window))
    return out


_CANDIDATE_COLUMNS = (Post.id, Post.account_id, Post.campaign_id, Post.text, Post.text_hash,
                      Post.approved_hash, Post.idempotency_key, Post.due_at, Post.not_after,
                      Post.attempt, Post.options, Post.parent_id, Post.thread_root_id)
_PARENT = aliased(Post)


def claim(engine: Engine, *, now: datetime, owner: str, lease: timedelta,
          limit: int = defaults.CLAIM_BATCH) -> list[Claimed]:
    """Take up to `limit` due posts for `owner`, committing before any request.

    One query finds the candidates (locked with SKIP LOCKED on PostgreSQL; SQLite's
    BEGIN IMMEDIATE makes the whole transaction exclusive), one UPDATE claims them and
    one INSERT records their events: a burst of ten thousand posts is claimed in a few
    hundred statements, not tens of thousands."""
    with session(engine) as s:
        # The post table alone, walked in due order on its (state, next_attempt_at)
        # index; accounts and campaigns are small and only filter it. (A join lets
        # PostgreSQL pick a plan per account that costs 300 ms a claim on fresh rows.)
        blocked = sa.select(col(Account.id)).where(
            col(Account.paused_reason).is_not(None) | (col(Account.resume_at) > now))
        live = sa.select(col(Campaign.id)).where(col(Campaign.deadline) > now)
        q = (sa.select(*[col(c) for c in _CANDIDATE_COLUMNS])
             .where(col(Post.state) == S.QUEUED, col(Post.next_attempt_at) <= now,
                    col(Post.not_after) > now, col(Post.account_id).not_in(blocked),
                    col(Post.campaign_id).in_(live),
                    # a thread's reply waits until the post it replies to is out
                    col(Post.parent_id).is_(None) | sa.exists().where(
                        col(_PARENT.id) == Post.parent_id, col(_PARENT.state) == S.PUBLISHED))
             .order_by(col(Post.next_attempt_at), col(Post.id))
             .limit(limit))
        if is_postgres(engine):
            q = q.with_for_update(skip_locked=True, of=Post.__table__)  # type: ignore[attr-defined]
        rows = s.execute(q).all()
        if not rows:
            return []
        deadlines = {c.id: c.deadline for c in s.exec(
            select(Campaign).where(col(Campaign.id).in_({r.campaign_id for r in rows})))}
        accounts = {a.id: a for a in s.exec(
            select(Account).where(col(Account.id).in_({r.account_id for r in rows})))}
        rooms = _rooms(s, list(accounts.values()), now)
        take = []
        for r in rows:
            account = accounts[r.account_id]
            if r.approved_hash != r.text_hash:
                post = s.get(Post, r.id)
                assert post is not None
                post.approved_hash = None
                transition(s, post, S.DRAFT, "text changed after approval; approve it again",
                           now, owner)
                continue
            room, retry_at = rooms[r.account_id]
            if room is not None:
                if room <= 0:
                    # over budget: wait for a free slot (expiry still applies at not_after)
                    s.execute(update(Post).where(col(Post.id) == r.id).values(
                        next_attempt_at=min(retry_at, r.not_after),
                        last_error=f"held: {account.name} is at its rate budget until "
                                   f"{retry_at:%H:%M:%S} UTC").execution_options(
                        synchronize_session=False))
                    continue
                rooms[r.account_id] = (room - 1, retry_at)
            take.append(r)
        if not take:
            return []
        ids = [r.id for r in take]
        result = s.execute(
            update(Post).where(col(Post.id).in_(ids), col(Post.state) == S.QUEUED)
            .values(state=S.SENDING, attempt=col(Post.attempt) + 1, lease_owner=owner,
                    lease_until=now + lease, claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount != len(ids):  # type: ignore[attr-defined]
            # cannot happen while the rows are locked (PostgreSQL) or the database is
            # (SQLite): refuse rather than send a post someone else holds
            raise RuntimeError(f"claimed {result.rowcount} of {len(ids)} posts")  # type: ignore[attr-defined]
        s.execute(insert(Event), [
            {"post_id": r.id, "at": now, "from_state": S.QUEUED, "to_state": S.SENDING,
             "reason": f"claimed by {owner}, attempt {r.attempt + 1}", "actor": owner}
            for r in take])
        return [Claimed(r.id, r.attempt + 1, accounts[r.account_id],
                        outgoing_of(s, r, accounts[r.account_id], r.attempt + 1), r.not_after,
                        deadlines[r.campaign_id], now + lease)
                for r in take]


def renew_leases(engine: Engine, items: list[Claimed], *, now: datetime, owner: str,
                 lease: timedelta) -> list[Claimed]:
    """Extend the lease of claimed posts not yet sent; returns those still ours, with
    their new lease. A post whose lease ran out was reaped by another daemon, which
    may be sending it: it must not be sent again from here."""
    if not items:
        return []
    until = now + lease
    ids = [i.post_id for i in items]
    mine = (col(Post.id).in_(ids), col(Post.state) == S.SENDING, col(Post.lease_owner) == owner)
    with session(engine) as s:
        s.execute(update(Post).where(*mine, col(Post.lease_until) > now)
                  .values(lease_until=until).execution_options(synchronize_session=False))
        held = set(s.execute(sa.select(col(Post.id)).where(*mine, col(Post.lease_until) == until))
                   .scalars())
    lost = [i.post_id for i in items if i.post_id not in held]
    if lost:
        log.warning("lease lost on post(s) %s: another daemon has them; not sending",
                    ", ".join(map(str, lost)))
    return [dataclasses.replace(i, lease_until=until) for i in items if i.post_id in held]


def account_blocked(engine: Engine, account: Account, now: datetime) -> str | None:
    """"paused" or "rate limited" if the account may not post now, else None."""
    with session(engine) as s:
        acc = s.get(Account, account.id)
    if acc is None:
        return None
    if acc.paused_reason:
        return "paused"
    if acc.resume_at is not None and acc.resume_at > now:
        return "rate limited"
    return None


def release(engine: Engine, item: Claimed, *, now: datetime, owner: str, reason: str) -> None:
    """Give back a claimed post that was never attempted (the daemon is stopping)."""
    with session(engine) as s:
        fenced_update(s, item.post_id, item.attempt, S.SENDING, S.QUEUED, reason, now, owner,
                      attempt=item.attempt - 1, lease_owner=None, lease_until=None)


def _no_hook(point: str) -> None:
    pass


def send(engine: Engine, item: Claimed, publisher: Publisher, *,
         now: Callable[[], datetime], owner: str, max_attempts: int,
         hook: Callable[[str], None] = _no_hook) -> Receipt | str:
    """Publish one claimed post. On success return the receipt for the caller to
    record (alone with `record_published` or with others in `record_many`); on
    failure record the outcome and return the new state.
    `hook(point)` is called at "after_answer" (crash tests)."""
    sent_at = now()
    if sent_at >= item.not_after or sent_at >= item.deadline:
        # Checked with a fresh clock right before the request: never send late.
        with session(engine) as s:
            fenced_update(s, item.post_id, item.attempt, S.SENDING, S.EXPIRED,
                          f"not_after {item.not_after:%H:%M:%S} UTC passed before it could be sent",
                          sent_at, owner, lease_owner=None, lease_until=None)
        return S.EXPIRED
    try:
        receipt = publisher.publish(item.outgoing)
    except PublishError as e:
        return record_failure(engine, item, e, now=now(), owner=owner, max_attempts=max_attempts)
    except Exception as e:  # an adapter bug: the request may have gone out
        log.exception("adapter %s raised unexpectedly for post %s", publisher.platform, item.post_id)
        return record_failure(engine, item, UnknownOutcome(f"adapter error: {type(e).__name__}: {e}"),
                              now=now(), owner=owner, max_attempts=max_attempts)
    hook("after_answer")
    return receipt


def record_many(engine: Engine, done: list[tuple[Claimed, Receipt, datetime]], *, owner: str,
                hook: Callable[[str], None] = _no_hook) -> None:
    """Record several publications in one transaction (a burst sends thousands).
    Fenced like one: if any post is no longer ours, each is recorded on its own."""
    if not done:
        return
    table = Post.__table__  # type: ignore[attr-defined]
    stmt = (update(table)
            .where(table.c.id == sa.bindparam("b_id"), table.c.attempt == sa.bindparam("b_attempt"),
                   table.c.state == S.SENDING)
            .values(state=S.PUBLISHED, updated_at=sa.bindparam("b_at"),
                    published_at=sa.bindparam("b_at"), remote_id=sa.bindparam("b_remote_id"),
                    remote_url=sa.bindparam("b_url"), receipt=sa.bindparam("b_receipt"),
                    last_error=None, lease_owner=None, lease_until=None))
    try:
        with session(engine) as s:
            result = s.execute(stmt, [
                {"b_id": item.post_id, "b_attempt": item.attempt, "b_at": at,
                 "b_remote_id": receipt.remote_id, "b_url": receipt.url,
                 "b_receipt": receipt.as_dict()} for item, receipt, at in done])
            if result.rowcount != len(done):  # type: ignore[attr-defined]
                raise _LeaseLost
            s.execute(insert(Event), [
                {"post_id": item.post_id, "at": at, "from_state": S.SENDING,
                 "to_state": S.PUBLISHED, "actor": owner,
                 "reason": f"published: {receipt.url or receipt.remote_id}"}
                for item, receipt, at in done])
            hook("before_commit")
    except _LeaseLost:
        for item, receipt, at in done:
            record_published(engine, item.post_id, item.attempt, S.SENDING, receipt, now=at,
                             owner=owner, hook=hook)


class _LeaseLost(Exception):
    pass


def record_published(engine: Engine, post_id: int, attempt_no: int, from_state: str,
                     receipt: Receipt, *, now: datetime, owner: str,
                     reason: str = "published", hook: Callable[[str], None] = _no_hook) -> str:
    with session(engine) as s:
        ok = fenced_update(s, post_id, attempt_no, from_state, S.PUBLISHED,
                           f"{reason}: {receipt.url or receipt.remote_id}", now, owner,
                           remote_id=receipt.remote_id, remote_url=receipt.url,
                           receipt=receipt.as_dict(), published_at=now, last_error=None,
                           lease_owner=None, lease_until=None)
        hook("before_commit")
    if not ok:
        log.warning("post %s: lease lost before recording publication %s", post_id,
                    receipt.remote_id)
    return S.PUBLISHED


def record_failure(engine: Engine, item: Claimed, error: PublishError, *, now: datetime,
                   owner: str, max_attempts: int) -> str:
    """The except ladder: the error's class decides the next state."""
    msg = error.message[:500]
    common = {"lease_owner": None, "lease_until": None, "last_error": msg}
    with session(engine) as s:
        if isinstance(error, TransientError):
            if error.resume_at is not None:
                _set_resume(s, item.account, error.resume_at)
            if item.attempt >= max_attempts:
                to, why = S.FAILED, f"gave up after {item.attempt} attempts: {msg}"
                fenced_update(s, item.post_id, item.attempt, S.SENDING, to, why, now, owner, **common)
                return to
            wait = backoff(item.attempt)
            if error.retry_after is not None:
                wait = max(wait, timedelta(seconds=error.retry_after))
            if error.resume_at is not None:
                wait = max(wait, error.resume_at - now)
            fenced_update(s, item.post_id, item.attempt, S.SENDING, S.QUEUED,
                          f"transient: {msg}; retry in {int(wait.total_seconds())} s", now, owner,
                          next_attempt_at=now + wait, **common)
            return S.QUEUED
        if isinstance(error, AuthError):
            _pause(s, item.account, f"credentials refused: {msg}", now)
            # The post itself is fine: it waits for the account to be resumed.
            fenced_update(s, item.post_id, item.attempt, S.SENDING, S.QUEUED,
                          f"account {item.account.name} paused: {msg}", now, owner,
                          attempt=item.attempt - 1, **common)
            return S.QUEUED
        if isinstance(error, PermanentError):
            fenced_update(s, item.post_id, item.attempt, S.SENDING, S.FAILED,
                          f"refused by {item.account.platform}: {msg}", now, owner, **common)
            return S.FAILED
        fenced_update(s, item.post_id, item.attempt, S.SENDING, S.UNKNOWN,
                      f"outcome unknown: {msg}; will look it up", now, owner, **common)
        return S.UNKNOWN


def _set_resume(s: Session, account: Account, resume_at: datetime) -> None:
    acc = s.get(Account, account.id)
    if acc is not None and (acc.resume_at is None or acc.resume_at < resume_at):
        acc.resume_at = resume_at
        s.add(acc)


def _pause(s: Session, account: Account, reason: str, now: datetime) -> None:
    acc = s.get(Account, account.id)
    if acc is not None and acc.paused_reason is None:
        acc.paused_reason = reason[:300]
        acc.paused_at = now
        s.add(acc)
        log.error("account %s paused: %s", acc.name, reason)


def reap_leases(engine: Engine, *, now: datetime, owner: str) -> int:
    """Posts whose lease ran out (their daemon died mid-attempt) become unknown:
    never retried blindly, they are looked up first."""
    with session(engine) as s:
        stale = s.exec(select(Post).where(Post.state == S.SENDING,
                                          col(Post.lease_until) <= now)).all()
        for p in stale:
            assert p.id is not None
            fenced_update(s, p.id, p.attempt, S.SENDING, S.UNKNOWN,
                          f"lease of {p.lease_owner} expired mid-attempt; will look it up",
                          now, owner, lease_owner=None, lease_until=None)
        return len(stale)


def reconcile(engine: Engine, publishers: Callable[[Account], Publisher], *,
              now: datetime, owner: str, lease: timedelta, limit: int = 20,
              after: timedelta = timedelta(seconds=defaults.RECONCILE_AFTER_SECONDS),
              stopping: Callable[[], bool] = lambda: False) -> int:
    """Ask the platform about each post in `unknown`: found -> published; provably
    absent -> queued again (or expired if past not_after); can't tell -> review."""
    with session(engine) as s:
        q = (select(Post, Account).join(Account, col(Account.id) == Post.account_id)
             .where(Post.state == S.UNKNOWN,
                    col(Post.updated_at) <= now - after,
                    (col(Post.lease_until).is_(None)) | (col(Post.lease_until) <= now))
             .order_by(col(Post.id)).limit(limit))
        if is_postgres(engine):
            q = q.with_for_update(skip_locked=True, of=Post)
        rows = s.exec(q).all()
        work = []
        for post, account in rows:
            post.lease_owner, post.lease_until = owner, now + lease
            s.add(post)
            work.append((post.id, post.attempt, post.claimed_at or post.due_at, post.not_after,
                         account, outgoing_of(s, post, account)))
    for post_id, attempt_no, since, not_after, account, outgoing in work:
        assert post_id is not None
        if stopping():
            break  # the rest keep their short lease and are looked up by the next daemon
        common = {"lease_owner": None, "lease_until": None}
        try:
            found = publishers(account).find(outgoing, since - timedelta(minutes=2))
        except Exception as e:
            reason = e.message if isinstance(e, PublishError) else f"{type(e).__name__}: {e}"
            with session(engine) as s:
                fenced_update(s, post_id, attempt_no, S.UNKNOWN, S.REVIEW,
                              f"could not tell whether it went out: {reason[:300]}; "
                              "resolve with `tminus review`", now, owner, **common)
            continue
        if found is not None:
            record_published(engine, post_id, attempt_no, S.UNKNOWN, found, now=now, owner=owner,
                             reason="found on the platform")
            continue
        with session(engine) as s:
            if now >= not_after:
                fenced_update(s, post_id, attempt_no, S.UNKNOWN, S.EXPIRED,
                              "not on the platform, and its not_after has passed", now, owner,
                              **common)
            else:
                fenced_update(s, post_id, attempt_no, S.UNKNOWN, S.QUEUED,
                              "not on the platform; queued again", now, owner,
                              next_attempt_at=now, **common)
    return len(work)
