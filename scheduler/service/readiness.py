"""Whether accounts can post: their credentials in the environment, and verified. On
SQLAlchemy Core: `tminus run` asks it before the daemon starts, in the daemon's own
process, which imports no ORM (see docs/DESIGN.md, "The daemon runs on Core")."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from content.platforms import PLATFORMS
from scheduler.db import transaction
from scheduler.states import PostState
from scheduler.tables import account, post


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
    pending = (sa.select(post.c.account_id, sa.func.count()).where(
        post.c.state.in_([PostState.DRAFT, PostState.QUEUED])).group_by(post.c.account_id))
    with transaction(engine) as conn:
        counts: dict[int, int] = {r[0]: r[1] for r in conn.execute(pending)}
        accounts = list(conn.execute(sa.select(account).order_by(account.c.name)))
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
