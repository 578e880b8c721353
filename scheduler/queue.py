"""The queue's state machine. Every transition goes through `transition()`, which
checks it is allowed and appends an `event` row in the same transaction.

```
draft ──approve──▶ queued ──claim──▶ sending ──ok──────────▶ published
  ▲                  ▲  │               ├──transient──▶ queued (next_attempt_at = backoff)
  │  text changed    │  │               ├──permanent──▶ failed
  └──────────────────┘  │               ├──past not_after at send time──▶ expired
                        │               └──unknown────▶ unknown ──reconcile──▶ published | queued | review
                        └──not_after passed──▶ expired            (a draft past not_after expires too)
any state before sending ──cancel──▶ canceled
```
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from content.errors import TminusError
from scheduler.db import session
from scheduler.models import Campaign, Event, Post, PostState

S = PostState
ALLOWED: dict[str, set[str]] = {
    S.DRAFT: {S.QUEUED, S.CANCELED, S.EXPIRED},
    S.QUEUED: {S.SENDING, S.DRAFT, S.EXPIRED, S.CANCELED},
    S.SENDING: {S.PUBLISHED, S.QUEUED, S.FAILED, S.UNKNOWN, S.EXPIRED},
    S.UNKNOWN: {S.PUBLISHED, S.QUEUED, S.REVIEW, S.EXPIRED},
    S.REVIEW: {S.PUBLISHED, S.QUEUED, S.CANCELED},
    S.CANCELED: {S.DRAFT},      # a post put back into the campaign file
    S.PUBLISHED: set(),
    S.FAILED: set(),
    S.EXPIRED: set(),
}


_PARENT = aliased(Post)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event(s: Session, post: Post, to: str, reason: str, now: datetime, actor: str,
          from_state: str | None = None) -> None:
    assert post.id is not None
    s.add(Event(post_id=post.id, at=now, from_state=from_state, to_state=to, reason=reason,
                actor=actor))


def transition(s: Session, post: Post, to: str, reason: str, now: datetime, actor: str) -> None:
    """Move `post` to state `to`, recording why. Raises on a transition the state
    machine does not allow (a bug, or a user asking for the impossible), and when
    another process changed the post since it was read (the update is conditional on
    the state we saw, so a daemon's claim and a person's cancel can never both win)."""
    if to not in ALLOWED[post.state]:
        raise TminusError(f"post {post.id} is {post.state}; it cannot become {to}")
    before = post.state
    s.flush()
    result = s.execute(
        update(Post).where(col(Post.id) == post.id, col(Post.state) == before)
        .values(state=to, updated_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise TminusError(f"post {post.id} changed while this command ran (it is no longer "
                          f"{before}); nothing was written — look at it again")
    post.state = to
    post.updated_at = now
    s.add(post)
    event(s, post, to, reason, now, actor, from_state=before)


def fenced_update(s: Session, post_id: int, expect_attempt: int, from_state: str, to: str,
                  reason: str, now: datetime, actor: str, **values: object) -> bool:
    """Record an outcome only if the post is still ours: same attempt, same state.
    Zero rows means another daemon took it over (our lease was lost): nothing is
    overwritten and False is returned."""
    result = s.execute(
        update(Post)
        .where(col(Post.id) == post_id, col(Post.attempt) == expect_attempt,
               col(Post.state) == from_state)
        .values(state=to, updated_at=now, **values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    s.add(Event(post_id=post_id, at=now, from_state=from_state, to_state=to, reason=reason,
                actor=actor))
    return True


def find_campaign(s: Session, slug: str) -> Campaign:
    c = s.exec(select(Campaign).where(Campaign.slug == slug)).first()
    if c is None:
        known = list(s.exec(select(Campaign.slug)).all())
        hint = f"known: {', '.join(known)}" if known else "run `tminus plan DIR` first"
        raise TminusError(f"no campaign {slug!r}; {hint}")
    return c


def _select_posts(s: Session, campaign: str | None, post_ids: Sequence[int]) -> list[Any]:
    """(id, state, not_after) of a campaign's posts, or of the ones named: plain rows,
    so approving a campaign of 100,000 posts does not build 100,000 objects."""
    q = sa.select(col(Post.id), col(Post.state), col(Post.not_after))
    if campaign is not None:
        q = q.where(col(Post.campaign_id) == find_campaign(s, campaign).id)
    if post_ids:
        q = q.where(col(Post.id).in_(list(post_ids)))
    rows = list(s.execute(q.order_by(col(Post.due_at), col(Post.id))).all())
    missing = sorted(set(post_ids) - {r.id for r in rows})
    if missing:
        where = f" in campaign {campaign!r}" if campaign else ""
        raise TminusError(f"no post {', '.join(map(str, missing))}{where}; "
                          "see `tminus list`")
    return rows


def bulk_transition(s: Session, ids: Sequence[int], from_state: str, to: str, reason: str,
                    now: datetime, actor: str, **values: Any) -> None:
    """`transition()` for many posts in one state: one UPDATE (conditional on the
    state, like `transition`) and one INSERT of their events per chunk."""
    if to not in ALLOWED[from_state]:
        raise TminusError(f"a {from_state} post cannot become {to}")
    for i in range(0, len(ids), 5000):
        chunk = list(ids[i:i + 5000])
        result = s.execute(
            update(Post).where(col(Post.id).in_(chunk), col(Post.state) == from_state)
            .values(state=to, updated_at=now, **values)
            .execution_options(synchronize_session=False))
        if result.rowcount != len(chunk):  # type: ignore[attr-defined]
            raise TminusError(f"{len(chunk) - result.rowcount} post(s) changed while this "  # type: ignore[attr-defined]
                              "command ran; nothing was written — look at them again")
        s.execute(insert(Event), [{"post_id": pid, "at": now, "from_state": from_state,
                                   "to_state": to, "reason": reason, "actor": actor}
                                  for pid in chunk])


def approve(engine: Engine, *, campaign: str | None, post_ids: Sequence[int], by: str,
            now: datetime) -> list[int]:
    """Approve drafts (all of a campaign's, or the ones named): they become queued,
    and the hash of their text is recorded so a later change cannot slip out.
    Returns the ids approved (drafts already past their not_after expire instead)."""
    if not by.strip():
        raise TminusError("--by needs the name of the person approving")
    with session(engine) as s:
        rows = _select_posts(s, campaign, post_ids)
        if post_ids:
            wrong = [r for r in rows if r.state != S.DRAFT]
            if wrong:
                raise TminusError(f"post {wrong[0].id} is {wrong[0].state}, not draft; "
                                  "only drafts are approved")
        drafts = [r for r in rows if r.state == S.DRAFT]
        late = [r.id for r in drafts if r.not_after <= now]
        done = [r.id for r in drafts if r.not_after > now]
        bulk_transition(s, late, S.DRAFT, S.EXPIRED, "not approved before its not_after", now, by)
        bulk_transition(s, done, S.DRAFT, S.QUEUED, f"approved by {by}", now, by,
                        approved_hash=col(Post.text_hash), approved_by=by, approved_at=now)
    if done:
        from scheduler.notify import notify
        notify(engine)
    return done


def cancel(engine: Engine, *, campaign: str | None, post_ids: Sequence[int], by: str,
           now: datetime, reason: str | None = None) -> list[int]:
    """Cancel pending posts (draft, queued or review); returns the ids canceled."""
    with session(engine) as s:
        rows = _select_posts(s, campaign, post_ids)
        if post_ids:
            wrong = [r for r in rows if r.state not in S.CANCELABLE]
            if wrong:
                raise TminusError(f"post {wrong[0].id} is {wrong[0].state}; only draft, queued "
                                  "or review posts can be canceled")
        done = []
        for state in S.CANCELABLE:
            ids = [r.id for r in rows if r.state == state]
            bulk_transition(s, ids, state, S.CANCELED, reason or f"canceled by {by}", now, by)
            done.extend(ids)
        return sorted(done)


def expire_stale(engine: Engine, now: datetime, actor: str) -> list[int]:
    """Drafts and queued posts whose `not_after` has passed become expired, each with
    its reason. Returns their ids."""
    with session(engine) as s:
        q = (sa.select(col(Post.id), col(Post.state), col(Post.due_at), col(Post.not_after))
             .where(col(Post.state).in_([S.DRAFT, S.QUEUED]), col(Post.not_after) <= now))
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)  # another daemon is on those
        stale = s.execute(q).all()
        for state in (S.DRAFT, S.QUEUED):
            ids = [r.id for r in stale if r.state == state]
            for i in range(0, len(ids), 5000):
                s.execute(update(Post).where(col(Post.id).in_(ids[i:i + 5000]),
                                             col(Post.state) == state)
                          .values(state=S.EXPIRED, updated_at=now)
                          .execution_options(synchronize_session=False))
        if stale:
            s.execute(insert(Event), [
                {"post_id": r.id, "at": now, "from_state": r.state, "to_state": S.EXPIRED,
                 "actor": actor, "reason": _expiry_reason(r.state, r.due_at, r.not_after, now)}
                for r in stale])
        return [r.id for r in stale]


def _expiry_reason(state: str, due: datetime, not_after: datetime, now: datetime) -> str:
    why = ("never approved" if state == S.DRAFT
           else f"not sent by its not_after ({not_after:%Y-%m-%d %H:%M:%S} UTC)")
    return f"{why}; due {due:%Y-%m-%d %H:%M:%S} UTC, {int((now - due).total_seconds())} s ago"


def posts_in(engine: Engine, *, states: Iterable[str] = (), campaign: str | None = None
             ) -> list[Post]:
    with session(engine) as s:
        q = select(Post)
        if campaign:
            q = q.where(Post.campaign_id == find_campaign(s, campaign).id)
        states = list(states)
        if states:
            bad = sorted(set(states) - set(S.ALL))
            if bad:
                raise TminusError(f"unknown state {', '.join(bad)}; states are "
                                  f"{', '.join(S.ALL)}")
            q = q.where(col(Post.state).in_(states))
        return list(s.exec(q.order_by(col(Post.due_at), col(Post.id))).all())


def events_of(engine: Engine, post_id: int) -> tuple[Post, list[Event]]:
    with session(engine) as s:
        post = s.get(Post, post_id)
        if post is None:
            raise TminusError(f"no post {post_id}; see `tminus list`")
        events = list(s.exec(select(Event).where(Event.post_id == post_id)
                             .order_by(col(Event.at), col(Event.id))).all())
        return post, events


def next_due(engine: Engine, now: datetime | None = None) -> datetime | None:
    """The earliest time a queued post may be attempted (None if none is queued).

    Posts that cannot go yet are left out — of a paused account, of an account
    waiting out a rate limit (its resume time counts instead), replies whose post is
    not out — or the daemon would wake for them again and again."""
    from scheduler.models import Account
    with session(engine) as s:
        blocked = sa.select(col(Account.id)).where(col(Account.paused_reason).is_not(None))
        if now is not None:
            blocked = sa.select(col(Account.id)).where(
                col(Account.paused_reason).is_not(None) | (col(Account.resume_at) > now))
        q = (sa.select(col(Post.next_attempt_at))
             .where(col(Post.state) == S.QUEUED, col(Post.account_id).not_in(blocked),
                    col(Post.parent_id).is_(None) | sa.exists().where(
                        col(_PARENT.id) == Post.parent_id, col(_PARENT.state) == S.PUBLISHED)))
        due = s.execute(q.order_by(col(Post.next_attempt_at)).limit(1)).scalar()
        if now is None:
            return due
        resume = s.exec(select(func.min(Account.resume_at)).where(
            col(Account.paused_reason).is_(None), col(Account.resume_at) > now)).first()
        return min((t for t in (due, resume) if t is not None), default=None)


