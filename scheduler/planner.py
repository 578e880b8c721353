"""Planning: a campaign folder expanded into posts in the queue.

Planning is idempotent: the same files give the same rows. Re-planning an edited
campaign updates drafts, returns approved posts whose text or time changed to draft
(with the difference shown), and cancels posts no longer in the file unless they were
already handed to a platform. Everything is checked first; on any error nothing is
written.
"""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from content.campaign import AccountSpec, Campaign, load_campaign
from content.errors import CampaignErrors, TminusError
from content.expand import Expansion, PlannedPost, expand_campaign
from scheduler.db import session
from scheduler.models import Account, Campaign as CampaignRow, Post, PostState
from scheduler.queue import text_hash, transition

S = PostState
REMOVED = "removed from the campaign file"


@dataclass
class PlanReport:
    campaign: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    returned_to_draft: list[tuple[int, str]] = field(default_factory=list)  # (post id, diff)
    canceled: int = 0
    kept_sent: int = 0
    warnings: list[str] = field(default_factory=list)


def check(folder: Path, *, now: datetime | None, limits: dict[str, int] | None = None
          ) -> tuple[Campaign, Expansion]:
    """Load and expand a campaign; raise CampaignErrors listing every problem."""
    campaign = load_campaign(folder, now=now)
    expansion = expand_campaign(campaign, limits=limits, now=now)
    if expansion.errors:
        raise CampaignErrors(expansion.errors)
    expansion.warnings.extend(budget_warnings(campaign, expansion))
    return campaign, expansion


def budget_warnings(campaign: Campaign, expansion: Expansion) -> list[str]:
    """Warn where the schedule asks more of an account than its rate budget allows in
    some window: the extra posts would wait, and may expire."""
    from scheduler.dispatch import Budget, budgets_of, over_budget
    out = []
    for name, spec in campaign.accounts.items():
        dues = sorted(p.due_at for p in expansion.posts if p.account == name)
        custom = Budget(spec.budget.posts, spec.budget.per) if spec.budget else None
        for b in budgets_of(spec.platform, spec.tier, custom):
            hit = over_budget(dues, b)
            if hit:
                start, count = hit
                out.append(f"{campaign.file} [accounts.{name}]: {count} posts within "
                           f"{_span(b.window)} from {start.astimezone(campaign.timezone):%Y-%m-%d %H:%M %Z}, "
                           f"over its budget of {b.posts} per {_span(b.window)} "
                           f"({spec.platform} {spec.tier}); the extra posts will wait and may expire")
    return out


def _span(delta: object) -> str:
    from datetime import timedelta
    assert isinstance(delta, timedelta)
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def instance_limits(engine: Engine) -> dict[str, int]:
    with session(engine) as s:
        return {a.name: a.max_characters for a in s.exec(select(Account)).all()
                if a.max_characters}


def plan(engine: Engine, folder: Path, *, now: datetime, actor: str = "plan") -> PlanReport:
    campaign, expansion = check(folder, now=now, limits=instance_limits(engine))
    report = PlanReport(campaign=campaign.slug, warnings=list(expansion.warnings))
    for p in expansion.posts:
        report.warnings.extend(f"{p.account} {p.due_at:%Y-%m-%d %H:%M} UTC: {w}" for w in p.warnings)
    with session(engine) as s:
        row = _upsert_campaign(s, campaign, now)
        accounts = {name: _upsert_account(s, spec) for name, spec in campaign.accounts.items()}
        assert row.id is not None
        existing = {p.plan_key: p for p in s.exec(select(Post).where(Post.campaign_id == row.id))}
        seen: set[str] = set()
        for planned in expansion.posts:
            seen.add(planned.plan_key)
            old = existing.get(planned.plan_key)
            if old is None:
                _insert(s, row.id, accounts[planned.account], planned, now)
                report.created += 1
            else:
                _update(s, old, planned, now, actor, report)
        for key, old in existing.items():
            if key in seen or old.origin != "plan":
                continue
            if old.state in S.CANCELABLE:
                transition(s, old, S.CANCELED, REMOVED, now, actor)
                report.canceled += 1
            elif old.state not in (S.CANCELED, S.EXPIRED):
                report.kept_sent += 1
    return report


def _upsert_campaign(s: Session, c: Campaign, now: datetime) -> CampaignRow:
    row = s.exec(select(CampaignRow).where(CampaignRow.slug == c.slug)).first()
    if row is None:
        row = CampaignRow(slug=c.slug, title=c.title, deadline=c.deadline, timezone=c.timezone.key,
                          created_at=now, updated_at=now)
    row.title, row.deadline, row.timezone = c.title, c.deadline, c.timezone.key
    row.folder = str(c.folder.resolve())
    row.hashtags = list(c.hashtags)
    row.account_names = sorted(c.accounts)
    row.updated_at = now
    s.add(row)
    s.flush()
    return row


def _upsert_account(s: Session, spec: AccountSpec) -> Account:
    acc = s.exec(select(Account).where(Account.name == spec.name)).first()
    if acc is None:
        acc = Account(name=spec.name, platform=spec.platform, credentials=spec.credentials,
                      tier=spec.tier)
    elif acc.platform != spec.platform:
        raise TminusError(f"account {spec.name!r} is already known as a {acc.platform} account; "
                          f"another campaign cannot make it {spec.platform} — rename one of them")
    acc.credentials, acc.tier = spec.credentials, spec.tier
    acc.budget_posts = spec.budget.posts if spec.budget else None
    acc.budget_seconds = int(spec.budget.per.total_seconds()) if spec.budget else None
    s.add(acc)
    s.flush()
    return acc


def _insert(s: Session, campaign_id: int, account: Account, p: PlannedPost, now: datetime) -> None:
    assert account.id is not None
    post = Post(campaign_id=campaign_id, account_id=account.id, plan_key=p.plan_key,
                post_key=p.post_key, origin="plan", state=S.DRAFT, text=p.text,
                text_hash=text_hash(p.text), due_at=p.due_at, not_after=p.not_after,
                next_attempt_at=p.due_at, idempotency_key=uuid.uuid4().hex,
                options=p.options(), warnings=list(p.warnings), length=p.length.length,
                length_limit=p.length.limit, created_at=now, updated_at=now)
    s.add(post)
    s.flush()
    transition_new(s, post, now)


def transition_new(s: Session, post: Post, now: datetime, actor: str = "plan",
                   reason: str = "planned") -> None:
    from scheduler.queue import event
    event(s, post, post.state, reason, now, actor)


def _update(s: Session, old: Post, p: PlannedPost, now: datetime, actor: str,
            report: PlanReport) -> None:
    changed = (old.text != p.text or old.not_after != p.not_after or old.options != p.options())
    revived = old.state == S.CANCELED and _last_reason_removed(s, old)
    if not changed and not revived:
        report.unchanged += 1
        return
    if old.state not in (S.DRAFT, S.QUEUED, S.CANCELED):
        report.kept_sent += 1  # already handed to a platform: history is not rewritten
        return
    if old.state == S.CANCELED and not revived:
        report.unchanged += 1  # canceled by a person: stays canceled
        return
    diff = _diff(old.text, p.text)
    old.text, old.text_hash = p.text, text_hash(p.text)
    old.not_after, old.options = p.not_after, p.options()
    old.warnings, old.length, old.length_limit = list(p.warnings), p.length.length, p.length.limit
    old.updated_at = now
    if old.state == S.QUEUED:
        old.approved_hash = None
        transition(s, old, S.DRAFT, "changed in the campaign file; approve it again"
                   + (f"\n{diff}" if diff else ""), now, actor)
        assert old.id is not None
        report.returned_to_draft.append((old.id, diff))
    elif revived:
        old.approved_hash = None
        transition(s, old, S.DRAFT, "back in the campaign file", now, actor)
    else:
        s.add(old)
    report.updated += 1


def _last_reason_removed(s: Session, post: Post) -> bool:
    from scheduler.models import Event
    from sqlmodel import col
    last = s.exec(select(Event).where(Event.post_id == post.id)
                  .order_by(col(Event.id).desc()).limit(1)).first()
    return last is not None and last.reason == REMOVED


def _diff(old: str, new: str) -> str:
    if old == new:
        return ""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "approved", "now",
                                 lineterm="", n=0)
    return "\n".join(list(lines)[2:])
