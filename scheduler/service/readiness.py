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
    `tminus accounts check` has verified yet. Dry-run accounts need none.

    Posts are counted only for the accounts that lack something: counting every
    account's would read the whole queue (a million posts: 4 MB more at the peak of
    the daemon's process, which asks this as it starts), and where every account is
    ready, as in a dry run, nothing needs counting."""
    with transaction(engine) as conn:
        # what is asked about (not the saved sessions) of the accounts that need credentials
        accounts = list(conn.execute(
            sa.select(account.c.id, account.c.name, account.c.platform, account.c.credentials,
                      account.c.handle)
            .where(account.c.platform != "dryrun").order_by(account.c.name)))
        gaps = {a.id: missing_credentials(a.platform, a.credentials, env) for a in accounts
                if names is None or a.name in names}
        lacking = [a.id for a in accounts
                   if a.id in gaps and (gaps[a.id] or (verified and a.handle is None))]
        counts: dict[int, int] = {}
        for at in range(0, len(lacking), _IDS_AT_ONCE):
            pending = (sa.select(post.c.account_id, sa.func.count())
                       .where(post.c.account_id.in_(lacking[at:at + _IDS_AT_ONCE]),
                              post.c.state.in_([PostState.DRAFT, PostState.QUEUED]))
                       .group_by(post.c.account_id))
            counts.update((r[0], r[1]) for r in conn.execute(pending))
    out = []
    for a in accounts:
        if a.id not in gaps or (names is None and not counts.get(a.id)):
            continue
        if gaps[a.id] or (verified and a.handle is None):
            out.append(Readiness(a.name, a.platform, a.credentials, gaps[a.id],
                                 a.handle is not None, int(counts.get(a.id, 0))))
    return out


# accounts per counting query (well under SQLite's limit of bound parameters)
_IDS_AT_ONCE = 500
