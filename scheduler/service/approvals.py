"""Approving exactly what was shown.

The digest of a set of posts is a SHA-256 over each post's id, time, expiry and the
digest of its manifest (`scheduler.approval`: text, options, reply parent, media bytes
and alt text, account), in id order. A page (or `tminus preview`) shows the posts
with their digest; `approve(..., expect=digest)` recomputes it over the posts as they
are, with the rows locked, and approves nothing if anything changed since they were
shown. The manifests computed there are what each approved post stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from content.errors import NotFound
from scheduler import defaults
from scheduler.approval import Changed, Digests, check_digest, digest_of, digests
from scheduler.db import session
from scheduler.models import Post, PostState
from scheduler.queue import find_campaign

if TYPE_CHECKING:   # the sheet's cards come when a sheet is made: `approving.approve` (and so
    # a rehearsal) checks a digest and needs no card (tests/test_startup.py)
    from scheduler.service.timeline import CampaignHead, Card

S = PostState
__all__ = ["ApprovalSheet", "Changed", "Digests", "approval_sheet", "check_digest", "digest_of",
           "digests"]


@dataclass(frozen=True)
class ApprovalSheet:
    head: CampaignHead
    cards: list[Card]            # exactly what would be approved, in due order
    digest: str
    drafts: int                  # all drafts of the campaign
    more: bool                   # more drafts than one approval takes: approve these, then the rest
    not_drafts: list[int]        # chosen posts that are no longer drafts (left out)


def approval_sheet(engine: Engine, slug: str, *, post_ids: Sequence[int] | None, now: datetime
                   ) -> ApprovalSheet:
    """The drafts to approve — those chosen, or all of the campaign's (at most
    defaults.APPROVE_AT_ONCE) — as cards, with their digest."""
    from scheduler.service.timeline import cards, head_of
    with session(engine) as s:
        c = find_campaign(s, slug)
        drafts = int(s.execute(sa.select(func.count()).select_from(Post).where(
            col(Post.campaign_id) == c.id, col(Post.state) == S.DRAFT)).scalar_one())
        q = select(Post).where(Post.campaign_id == c.id)
        if post_ids is not None:
            q = q.where(col(Post.id).in_(list(post_ids)))
        chosen = list(s.exec(q.order_by(col(Post.due_at), col(Post.id))).all())
        missing = sorted(set(post_ids or ()) - {p.id for p in chosen})
        if missing:
            raise NotFound(f"no post {', '.join(map(str, missing))} in campaign {slug!r}")
        ready = [p for p in chosen if p.state == S.DRAFT and p.not_after > now]
        taken = ready[:defaults.APPROVE_AT_ONCE]
        ids = [p.id for p in taken if p.id is not None]
        return ApprovalSheet(head_of(c, now), cards(s, taken), digest_of(s, ids), drafts,
                             len(ready) > len(taken),
                             [p.id for p in chosen if p.state != S.DRAFT and p.id is not None])
