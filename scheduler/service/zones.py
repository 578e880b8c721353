"""Which timezone a person reads a time in.

A time that belongs to a campaign (a post's, a campaign pause's, an alert about it) is
read in that campaign's timezone; an account's rate-limit wait in the timezone of the
campaign that declared the account. A time that belongs to no one campaign (a person
added, a pause of an account or of everything — the activity log records those with no
campaign — an alert about the daemon) has no campaign to take one from: it is read in
this machine's local timezone (`TZ`), which the caller resolves (`None` here).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from scheduler.db import session
from scheduler.models import Account, Campaign


@dataclass(frozen=True)
class Zones:
    campaigns: dict[str, str]     # slug -> IANA timezone
    accounts: dict[str, str]      # account name -> its declaring campaign's timezone

    def of(self, *, campaign: str | None = None, account: str | None = None) -> str | None:
        """The timezone for a time of this campaign (or else account); None: the
        machine's local one."""
        if campaign is not None and campaign in self.campaigns:
            return self.campaigns[campaign]
        if account is not None:
            return self.accounts.get(account)
        return None


def zones(engine: Engine) -> Zones:
    with session(engine) as s:
        camps = s.execute(sa.select(col(Campaign.id), col(Campaign.slug),
                                    col(Campaign.timezone))).all()
        by_id = {cid: tz for cid, _, tz in camps}
        accounts = {name: by_id[cid] for name, cid in s.execute(
            sa.select(col(Account.name), col(Account.campaign_id))).all() if cid in by_id}
    return Zones({slug: tz for _, slug, tz in camps}, accounts)
