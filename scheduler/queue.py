"""Reading the queue: what may be sent now, when the next post falls due, and the
expiry of posts that can no longer go out on time.

`sendable(now)` is the one definition of "a daemon may send this post now" (apart from
its own `next_attempt_at`): the claim and every next-wake-up query (the daemon's and the
rehearsal's) use it, so the daemon never wakes for a post the claim would refuse. A
pause in force (`tminus pause`, the web's pause button) is one of its conditions, so the
claim checks it in the same transaction that takes the posts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.engine import Engine

from content.errors import NotFound, TminusError
from scheduler.db import connection_of, transaction
from scheduler.localtime import local
from scheduler.sqltypes import UTCDateTime
from scheduler.states import PauseScope, PostState
from scheduler.tables import account, campaign, pause, post
from scheduler.transitions import Seen, change

if TYPE_CHECKING:   # the daemon runs on Core; only the commands' look-ups have the ORM
    from sqlmodel import Session

    from scheduler.db import Bind
    from scheduler.models import Account, Campaign

S = PostState
_PARENT = post.alias("parent")
# how the reason of a post that expired while a pause held it begins
PAUSED_REASON = "paused"

# The daemon's statements are built once, with these parameters for what changes from
# one tick to the next, and reused: SQLAlchemy then computes each one's cache key and
# compiles it once per engine, instead of building the same tree again every tick
# (that was half of a rehearsal's ticks). `NOW`, `CUTOFF`: see `sendable`.
NOW = sa.bindparam("now", type_=UTCDateTime())
CUTOFF = sa.bindparam("cutoff", type_=UTCDateTime())
When = datetime | sa.BindParameter[datetime]


def blocked_accounts(now: When) -> sa.Select[int | None]:
    """Accounts that may not post at `now`: paused, or waiting out a rate limit."""
    return sa.select(account.c.id).where(
        account.c.paused_reason.is_not(None) | (account.c.resume_at > now))


@dataclass(frozen=True)
class Scope:
    """Which posts a daemon may touch: all, or (a dry run) only those of dry-run
    accounts, so that a rehearsal through the outbox never uses up a real post."""

    dry_run_only: bool = False

    def accounts(self) -> sa.ColumnElement[bool]:
        if not self.dry_run_only:
            return sa.true()
        # NOT IN the other accounts, not IN the dry-run ones (the same posts: account_id
        # and platform are never null): PostgreSQL turns an IN into a join that drives
        # the scan from the account table, and on a fresh burst walks every due post
        # once per account (a claim of 100 out of 10,000 due on 1,000 accounts took
        # half a second); a NOT IN stays one hashed subquery, read once per statement.
        return post.c.account_id.not_in(
            sa.select(account.c.id).where(account.c.platform != "dryrun"))


ALL = Scope()


def paused(*, before_not_after: bool = False) -> sa.ColumnElement[bool]:
    """Posts held by a pause in force: of everything, of their campaign or of their
    account (with `before_not_after`: by a pause begun before the post's not_after, the
    ones it made expire). The pause table is tiny; its subqueries are cheap."""
    in_force: sa.ColumnElement[bool] = pause.c.resumed_at.is_(None)
    if before_not_after:
        in_force = in_force & (pause.c.paused_at < post.c.not_after)
    return (sa.exists().where(in_force, pause.c.scope == PauseScope.ALL)
            | post.c.campaign_id.in_(sa.select(pause.c.campaign_id).where(
                in_force, pause.c.scope == PauseScope.CAMPAIGN,
                pause.c.campaign_id.is_not(None)))
            | post.c.account_id.in_(sa.select(pause.c.account_id).where(
                in_force, pause.c.scope == PauseScope.ACCOUNT,
                pause.c.account_id.is_not(None))))


@dataclass(frozen=True)
class Held:
    """What the pauses in force hold, for a daemon to check again right before each
    request of a batch it claimed before a pause began."""

    everything: bool = False
    campaigns: frozenset[int] = frozenset()
    accounts: frozenset[int] = frozenset()

    def holds(self, campaign_id: int, account_id: int | None) -> bool:
        return self.everything or campaign_id in self.campaigns or account_id in self.accounts


@functools.cache
def _in_force() -> sa.Select[str, int | None, int | None]:
    return (sa.select(pause.c.scope, pause.c.campaign_id, pause.c.account_id)
            .where(pause.c.resumed_at.is_(None)))


def held(engine: Engine) -> Held:
    with transaction(engine) as conn:
        rows = conn.execute(_in_force()).all()
    return Held(any(r.scope == PauseScope.ALL for r in rows),
                frozenset(r.campaign_id for r in rows if r.scope == PauseScope.CAMPAIGN),
                frozenset(r.account_id for r in rows if r.scope == PauseScope.ACCOUNT))


def sendable(now: When, *, cutoff: When | None = None, scope: Scope = ALL
             ) -> list[sa.ColumnElement[bool]]:
    """Conditions on `post` for "may go out at `now`, once its next_attempt_at comes":
    queued and approved, inside its not_after, its campaign's deadline not passed, no
    pause in force over it, its account neither paused nor rate limited, and (a
    thread's reply) the post it answers already published. `cutoff` (the later of the
    daemon's and its host's clocks) is the time not_after and the deadline are held to:
    nothing goes out once either clock says it is too late.

    The post table alone is walked, in due order on its (state, next_attempt_at) index;
    accounts and campaigns are small and only filter it (a join lets PostgreSQL pick a
    plan per account that costs 300 ms a claim on fresh rows). not_after is compared
    through coalesce() so that no planner walks the (state, not_after) index instead:
    SQLite did, for the next wake-up, over every queued post (250 ms of CPU a wake-up at
    200,000 queued, against 0.3 ms in due order).

    `now` and `cutoff` may be the parameters NOW and CUTOFF (a statement built once);
    the caller then gives `cutoff` as the later of the two itself (`cutoff_of`)."""
    if cutoff is None:
        cutoff = now
    elif isinstance(now, datetime) and isinstance(cutoff, datetime):
        cutoff = max(now, cutoff)
    live = sa.select(campaign.c.id).where(campaign.c.deadline > cutoff)
    return [
        post.c.state == S.QUEUED,
        func.coalesce(post.c.not_after, post.c.not_after) > cutoff,
        post.c.account_id.not_in(blocked_accounts(now)),
        post.c.campaign_id.in_(live),
        ~paused(),
        post.c.parent_id.is_(None) | sa.exists().where(
            _PARENT.c.id == post.c.parent_id, _PARENT.c.state == S.PUBLISHED),
        scope.accounts(),
    ]


def cutoff_of(now: datetime, cutoff: datetime | None) -> datetime:
    """The value of CUTOFF in a statement built with `sendable(NOW, cutoff=CUTOFF)`."""
    return now if cutoff is None else max(now, cutoff)


@functools.cache
def _next_due_statements(scope: Scope) -> tuple[sa.Select[Any], sa.Select[Any]]:
    due = sa.select(func.min(post.c.next_attempt_at)).where(*sendable(NOW, cutoff=CUTOFF,
                                                                    scope=scope))
    resume = sa.select(func.min(account.c.resume_at)).where(
        account.c.paused_reason.is_(None), account.c.resume_at > NOW)
    return due, resume


def next_due(engine: Engine, now: datetime, *, cutoff: datetime | None = None,
             scope: Scope = ALL) -> datetime | None:
    """The earliest time a daemon has something to do: the first sendable post's
    next_attempt_at, or the end of an account's rate-limit wait (None: nothing)."""
    due_q, resume_q = _next_due_statements(scope)
    params = {"now": now, "cutoff": cutoff_of(now, cutoff)}
    with transaction(engine) as conn:
        due = conn.execute(due_q, params).scalar()
        resume = conn.execute(resume_q, params).scalar()
    return min((t for t in (due, resume) if t is not None), default=None)


# Posts expired per transaction: a daemon back after a long outage may find a whole
# campaign stale, and must not read (nor write in one go) a hundred thousand of them.
EXPIRE_BATCH = 1000


def expire_stale(engine: Engine, now: datetime, actor: str, *, scope: Scope = ALL) -> list[int]:
    """Drafts and queued posts whose `not_after` has passed become expired, each with
    its reason ("paused" when a pause held it), EXPIRE_BATCH per transaction. Returns
    their ids."""
    done: list[int] = []
    while True:
        with transaction(engine) as conn:
            got = expire(conn, now, actor, scope=scope, limit=EXPIRE_BATCH)
        done += got
        if len(got) < EXPIRE_BATCH:
            return done


def expire(s: Bind, now: datetime, actor: str,
           only: sa.ColumnElement[bool] | None = None, *, limit: int | None = None,
           scope: Scope | None = None) -> list[int]:
    """`expire_stale` in the caller's transaction, for the posts `only` selects (all
    when None; at most `limit`): a resume expires what its pause held in the same
    transaction. With `scope` and `limit` instead of `only` (a daemon's round), the
    statement is built once."""
    conn = connection_of(s)
    postgres = conn.dialect.name == "postgresql"
    if scope is not None and only is None and limit is not None:
        stale = conn.execute(_stale_cached(scope, postgres), {"now": now, "limit": limit}).all()
    else:
        # (a Session's execute: what the command changed is flushed before this reads)
        stale = s.execute(_stale(only, postgres=postgres, limit=limit), {"now": now}).all()
    return change(s, [Seen(r.id, r.state) for r in stale], S.EXPIRED, now=now, actor=actor,
                  reason={r.id: _expiry_reason(r.state, r.due_at, r.not_after, now, r.held,
                                                    r.tz)
                          for r in stale}, strict=False)


def _stale(only: sa.ColumnElement[bool] | None, *, postgres: bool,
           limit: int | sa.BindParameter[int] | None
           ) -> sa.Select[Any]:
    """Drafts and queued posts past their not_after (at NOW), with what their reason
    needs."""
    zone = (sa.select(campaign.c.timezone).where(campaign.c.id == post.c.campaign_id)
            .scalar_subquery())
    q = (sa.select(post.c.id, post.c.state, post.c.due_at, post.c.not_after,
                   paused(before_not_after=True).label("held"), zone.label("tz"))
         .where(post.c.state.in_([S.DRAFT, S.QUEUED]), post.c.not_after <= NOW))
    if only is not None:
        q = q.where(only)
    if limit is not None:
        q = q.limit(limit)
    if postgres:
        q = q.with_for_update(skip_locked=True, of=post)  # another daemon is on those
    return q


@functools.cache
def _stale_cached(scope: Scope, postgres: bool) -> sa.Select[Any]:
    """`_stale` for a daemon's scope, built once (LIMIT a parameter too)."""
    return _stale(scope.accounts() if scope.dry_run_only else None, postgres=postgres,
                  limit=sa.bindparam("limit", type_=sa.Integer()))


def _expiry_reason(state: PostState, due: datetime, not_after: datetime, now: datetime,
                   held: bool = False, tz: str | None = None) -> str:
    """Why a post expired, its times in its campaign's timezone (the event is read
    later, by a person); UTC for a post of no known campaign."""
    fmt, tz = "%Y-%m-%d %H:%M:%S", tz or "UTC"
    why = ("never approved" if state == S.DRAFT
           else f"not sent by its not_after ({local(not_after, tz, fmt)})")
    if held and state != S.DRAFT:
        why = f"{PAUSED_REASON}: {why}"
    return (f"{why}; due {local(due, tz, fmt)}, "
            f"{int((now - due).total_seconds())} s ago")


def find_campaign(s: Session, slug: str) -> Campaign:
    from sqlmodel import select

    from scheduler.models import Campaign
    c = s.exec(select(Campaign).where(Campaign.slug == slug)).first()
    if c is None:
        raise _no_campaign(s, slug)
    return c


def campaign_id(s: Bind, slug: str) -> int:
    """`find_campaign(s, slug).id`, on Core (a rehearsal approves without the ORM)."""
    found = connection_of(s).execute(
        sa.select(campaign.c.id).where(campaign.c.slug == slug)).scalar()
    if found is None:
        raise _no_campaign(s, slug)
    return int(found)


def _no_campaign(s: Bind, slug: str) -> NotFound:
    known = list(connection_of(s).execute(sa.select(campaign.c.slug)).scalars())
    if known:
        return NotFound(f"no campaign {slug!r}; known: {', '.join(known)}")
    return NotFound(f"no campaign {slug!r}", "run `tminus plan DIR` first")


def find_account(s: Session, name: str) -> Account:
    from sqlmodel import col, select

    from scheduler.models import Account
    acc = s.exec(select(Account).where(Account.name == name)).first()
    if acc is None:
        known = ", ".join(s.exec(select(Account.name).order_by(col(Account.name))).all())
        raise TminusError(f"no account {name!r}; known accounts: "
                          f"{known or 'none yet; plan a campaign first'}")
    return acc


def parse_states(states: Sequence[str]) -> list[PostState]:
    bad = sorted(set(states) - {st.value for st in S})
    if bad:
        raise TminusError(f"unknown state {', '.join(bad)}; states are "
                          f"{', '.join(st.value for st in S)}")
    return [PostState(st) for st in states]


def select_posts(s: Bind, campaign: str | None, post_ids: Sequence[int]
                 ) -> list[sa.Row[int, PostState, datetime]]:
    """(id, state, not_after) of a campaign's posts, or of the ones named (all must
    exist): plain rows, so approving 100,000 posts does not build 100,000 objects."""
    q = sa.select(post.c.id, post.c.state, post.c.not_after)
    if campaign is not None:
        q = q.where(post.c.campaign_id == campaign_id(s, campaign))
    if post_ids:
        q = q.where(post.c.id.in_(list(post_ids)))
    rows = list(connection_of(s).execute(q.order_by(post.c.due_at, post.c.id)).all())
    missing = sorted(set(post_ids) - {r.id for r in rows})
    if missing:
        where = f" in campaign {campaign!r}" if campaign else ""
        raise NotFound(f"no post {', '.join(map(str, missing))}{where}", "see `tminus list`")
    return rows
