"""Use cases on accounts: verify credentials with the platform, lift a pause, and
say which accounts are not ready to post (credentials missing, never verified)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from content.countdown import about
from content.errors import TminusError
from content.platforms import PLATFORMS
from jobs.errors import PublishError
from scheduler.db import session
from scheduler.models import Account, ActivityKind, Post, PostState
from scheduler.notify import wake
from scheduler.publishers import Publishers
from scheduler.queue import find_account
from scheduler.service.activity import record
from scheduler.service.people import actor
from scheduler.settings import Settings


@dataclass(frozen=True)
class AccountCheck:
    name: str
    platform: str
    handle: str | None = None           # who it posts as, when verified
    display_name: str | None = None
    max_characters: int | None = None   # the instance's own limit (Mastodon)
    error: str | None = None            # why it could not be verified


def check_accounts(engine: Engine, settings: Settings, names: Sequence[str] = ()
                   ) -> list[AccountCheck]:
    """Verify each account's credentials with its platform (all accounts, or those
    named); what the platform says (handle, character limit) is stored."""
    publishers = Publishers(engine, settings, dry_run=False)
    with session(engine) as s:
        accounts = list(s.exec(select(Account).order_by(col(Account.name))).all())
    if names:
        unknown = sorted(set(names) - {a.name for a in accounts})
        if unknown:
            raise TminusError(f"unknown account {', '.join(unknown)}; known: "
                              f"{', '.join(a.name for a in accounts) or 'none (plan a campaign first)'}")
        accounts = [a for a in accounts if a.name in names]
    if not accounts:
        raise TminusError("no accounts yet; plan a campaign first (`tminus plan DIR`)")
    results = []
    for acc in accounts:
        try:
            pub = publishers.for_account(acc)
            who = pub.check()
            max_chars = pub.max_characters()
        except (TminusError, PublishError) as e:
            reason = e.message if isinstance(e, PublishError) else str(e)
            results.append(AccountCheck(acc.name, acc.platform, error=reason))
            continue
        with session(engine) as s:
            row = s.get(Account, acc.id)
            if row is not None:
                row.handle = who.handle
                if isinstance(max_chars, int):
                    row.max_characters = max_chars
                s.add(row)
        results.append(AccountCheck(acc.name, acc.platform, who.handle, who.display_name,
                                    max_chars))
    publishers.close()
    return results


def resume_account(engine: Engine, name: str, *, by: str, now: datetime) -> str | None:
    """Lift an account's pause (after its credentials were fixed) and any rate-limit
    wait; its posts go out at once if due. Recorded in the activity log under `by`.
    Returns what was lifted ("paused 2h by the platform: ..."), None if nothing held it."""
    by = actor(by)
    with session(engine) as s:
        acc = find_account(s, name)
        if acc.paused_reason:
            since = f" {about(now - acc.paused_at)}" if acc.paused_at else ""
            lifted: str | None = f"paused{since}: {acc.paused_reason}"
        elif acc.resume_at is not None and acc.resume_at > now:
            lifted = f"rate limited for {about(acc.resume_at - now)} more"
        else:
            lifted = None
        acc.paused_reason = acc.paused_at = acc.resume_at = None
        s.add(acc)
        if lifted is not None:
            record(s, ActivityKind.ACCOUNT_RESUMED, actor=by, now=now, campaign_id=acc.campaign_id,
                   message=f"resumed account {acc.name} ({lifted})")
        wake(s)
        return lifted


@dataclass(frozen=True)
class Readiness:
    """An account that is not ready to post: what it lacks, by name only (never a value)."""

    name: str
    platform: str
    prefix: str                 # credentials = "PREFIX" in its campaign file
    missing: list[str]          # TMINUS_<PREFIX>_* variables not set in the environment
    verified: bool              # `tminus accounts check` has seen who it posts as
    pending: int                # its posts still to go out (drafts and queued)

    @property
    def unverified_only(self) -> bool:
        return not self.missing and not self.verified


def missing_credentials(platform: str, prefix: str, env: Mapping[str, str]) -> list[str]:
    """The credential variables an account on `platform` needs that `env` lacks (or
    holds blank), by name: the registry's list, read the way `Settings.credentials` reads
    them. An unknown platform (an account row from an older registry) lacks nothing here:
    its publisher says so when it is built."""
    entry = PLATFORMS.get(platform)
    if entry is None:
        return []
    return [v.variable(prefix) for v in entry.credentials.variables()
            if v.required and not env.get(v.variable(prefix), "").strip()]


def not_ready(engine: Engine, env: Mapping[str, str], *, names: Collection[str] | None = None,
              verified: bool = True) -> list[Readiness]:
    """Accounts with posts still to go out (or those named) whose credentials are not
    all in `env` (the settings' TMINUS_* variables) or — with `verified` — that no
    `tminus accounts check` has verified yet. Dry-run accounts need none."""
    pending = (sa.select(col(Post.account_id), func.count()).where(
        col(Post.state).in_([PostState.DRAFT, PostState.QUEUED])).group_by(col(Post.account_id)))
    with session(engine) as s:
        counts = dict(s.execute(pending).all())
        accounts = list(s.exec(select(Account).order_by(col(Account.name))).all())
    out = []
    for a in accounts:
        if a.platform == "dryrun" or (names is None and not counts.get(a.id)) or \
                (names is not None and a.name not in names):
            continue
        gaps = missing_credentials(a.platform, a.credentials, env)
        if gaps or (verified and a.handle is None):
            out.append(Readiness(a.name, a.platform, a.credentials, gaps, a.handle is not None,
                                 int(counts.get(a.id, 0))))
    return out
