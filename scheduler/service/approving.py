"""approve: drafts become queued, each with the manifest of exactly what was approved.

On Core statements and plain rows, as the daemon's path is: a rehearsal approves its
whole campaign in a process that never imports SQLModel, pydantic or the models
(tests/test_startup.py). The command line and the web call it through `service` as
any other use case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from content.errors import FieldError, TminusError
from scheduler import approval
from scheduler.db import transaction
from scheduler.queue import select_posts
from scheduler.states import PostState
from scheduler.transitions import Seen, change

S = PostState


def person(by: str, option: str = "by") -> str:
    """The name of who does something, which is recorded: never empty."""
    name = by.strip()
    if not name:
        raise FieldError(option, "needs the name of the person (it is recorded)")
    return name


@dataclass(frozen=True)
class Approval:
    approved: list[int]        # now queued
    expired: list[int]         # drafts already past their not_after: expired instead
    by: str


def approve(engine: Engine, *, campaign: str | None, post_ids: Sequence[int], by: str,
            now: datetime, expect: str | None = None) -> Approval:
    """Approve drafts (all of a campaign's, or the ones named): they become queued, and
    the hash of their text is recorded so that a later change cannot slip out. With
    `expect`, the digest of what was shown (`approvals.digest_of`): nothing is approved
    unless the drafts are exactly that."""
    by = person(by)
    with transaction(engine) as conn:
        rows = select_posts(conn, campaign, post_ids)
        if post_ids:
            wrong = [r for r in rows if r.state != S.DRAFT]
            if wrong:
                raise TminusError(f"post {wrong[0].id} is {wrong[0].state}, not draft; "
                                  "only drafts are approved")
        drafts = [r for r in rows if r.state == S.DRAFT]
        got = approval.digests(conn, [r.id for r in drafts], lock=True)
        if expect is not None:
            approval.check_digest(got, expect)
        late = change(conn, [Seen(r.id, r.state) for r in drafts if r.not_after <= now],
                      S.EXPIRED, reason="not approved before its not_after", now=now, actor=by)
        fresh = [r for r in drafts if r.not_after > now]
        done = change(conn, [Seen(r.id, r.state) for r in fresh], S.QUEUED,
                      reason=f"approved by {by}", now=now, actor=by,
                      values={"approved_by": by, "approved_at": now},
                      each={r.id: {"approved": got.manifests[r.id],
                                   "approved_hash": approval.digest(got.manifests[r.id])}
                            for r in fresh})
    return Approval(done, late, by)
