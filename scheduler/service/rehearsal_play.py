"""The rehearsal played: plan the checked campaign into a throw-away database, approve
it, and run `Worker.tick` on a `VirtualClock` from one due time to the next
(`rehearsal.rehearse` is the use case; it imports this module when it is needed).

All of it runs on Core statements and plain rows, the daemon's way: the planner, the
approval and the collection of the report need neither SQLModel, pydantic nor the
models, whose import was a third of a rehearsal's start (tests/test_startup.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from content.campaign import Campaign as CampaignSpec
from content.countdown import t_minus
from content.expand import Expansion
from scheduler import tables
from scheduler.clock import VirtualClock
from scheduler.daemon import Worker
from scheduler.db import make_engine
from scheduler.planner import check, plan
from scheduler.publishers import Publishers
from scheduler.queue import expire_stale, next_due
from scheduler.service.approving import approve
from scheduler.service.readiness import missing_credentials
from scheduler.service.rehearsal import Report, Sent
from scheduler.settings import Settings
from scheduler.states import PostState


def play(folder: Path, *, start: datetime | None, skip: set[str] | None,
         env: Mapping[str, str] | None,
         expanded: tuple[CampaignSpec, Expansion] | None) -> Report:
    """`rehearsal.rehearse` in this process, once the database code is imported;
    `expanded`: the folder already loaded and expanded at `start`, or None."""
    with tempfile.TemporaryDirectory(prefix="tminus-rehearse-") as tmp:
        stage = Stage(Path(tmp))
        try:
            return stage.play(folder, start=start, skip=skip, env=env, expanded=expanded)
        finally:
            stage.close()


class Stage:
    """The throw-away database in the folder `tmp`, its tables made, and the settings
    of a rehearsal: what a rehearsal can have ready before it knows the campaign (a
    forked child makes it while the parent checks the folder)."""

    def __init__(self, tmp: Path) -> None:
        self.settings = Settings(database_url=f"sqlite:///{tmp}/rehearse.db",
                                 dryrun_outbox=tmp / "outbox.jsonl", dry_run=True)
        self.engine = make_engine(self.settings.database_url)
        # the tables straight from the models, which tests/test_migrations.py holds to
        # the migrations' schema; a new file, so no table is looked for first
        tables.metadata.create_all(self.engine, checkfirst=False)

    def close(self) -> None:
        self.engine.dispose()

    def play(self, folder: Path, *, start: datetime | None, skip: set[str] | None,
             env: Mapping[str, str] | None,
             expanded: tuple[CampaignSpec, Expansion] | None) -> Report:
        """Plan the campaign in `folder` into this database, approve it and play it."""
        # One check for the whole rehearsal: planning into the new, empty database
        # would check the folder again at `start`, with no instance limits nor known
        # accounts to check against; that is this check (the default start, a minute
        # before the first post, leaves out no post and cannot be past the deadline).
        campaign, expansion = check(folder, now=start, expanded=expanded)
        if start is None:
            first = min((p.due_at for p in expansion.posts), default=campaign.deadline)
            start = first - timedelta(minutes=1)
        clock = VirtualClock(start)
        engine, settings = self.engine, self.settings
        plan(engine, folder, now=clock.now(), actor="rehearsal", checked=(campaign, expansion))
        with engine.connect() as conn:
            ids = [r.id for r in conn.execute(
                sa.select(tables.post.c.id, tables.post.c.post_key))
                   if r.post_key not in (skip or set())]
        if ids:
            approve(engine, campaign=campaign.slug, post_ids=ids, by="rehearsal",
                    now=clock.now())
        worker = Worker(engine, settings, clock, Publishers(engine, settings, now=clock.now,
                                                            dry_run=True), owner="rehearsal")
        report = Report(slug=campaign.slug, deadline=campaign.deadline,
                        timezone=campaign.timezone)
        if env is not None:
            report.missing_credentials = {
                name: gaps for name, spec in campaign.accounts.items()
                if (gaps := missing_credentials(spec.platform, spec.credentials, env))}
        while (due := next_due(engine, clock.now())) is not None:
            stuck = due <= clock.now()
            clock.set(due)
            r = worker.tick()
            report.ticks += 1
            if stuck and not (r.sent or r.expired or r.failed or r.retried or r.unknown
                              or r.held_back):
                break  # nothing can move at this time: do not spin
        clock.set(campaign.deadline)
        expire_stale(engine, clock.now(), "rehearsal")
        _collect(engine, report)
        return report


def _collect(engine: Engine, report: Report) -> None:
    """What the rehearsal sent and what expired (with the reason of its last event), in
    due order."""
    post, event = tables.post.c, tables.event.c
    with engine.connect() as conn:
        accounts = {a.id: a for a in conn.execute(
            sa.select(tables.account.c.id, tables.account.c.name, tables.account.c.platform))}
        deadline = conn.execute(sa.select(tables.campaign.c.deadline)).scalar_one()
        last_reason = (sa.select(event.reason).where(event.post_id == sa.bindparam("id"))
                       .order_by(event.id.desc()).limit(1))
        for p in conn.execute(sa.select(post.id, post.account_id, post.state, post.text,
                                        post.due_at, post.published_at)
                              .order_by(post.due_at, post.id)).all():
            acc = accounts[p.account_id]
            if p.state == PostState.PUBLISHED and p.published_at is not None:
                report.sent.append(Sent(p.published_at, p.due_at,
                                        t_minus(deadline - p.published_at),
                                        acc.name, acc.platform, p.text))
                if p.published_at >= deadline:
                    report.after_deadline += 1
            elif p.state == PostState.EXPIRED:
                reason = conn.execute(last_reason, {"id": p.id}).scalar()
                report.expired.append((p.due_at, acc.name, reason or ""))
            else:
                report.other[p.state] = report.other.get(p.state, 0) + 1
