"""A dry run's burst: what is already due is claimed and recorded DRY_RUN_BATCH at a time
(more than a claim ahead or a real platform's record takes), in due order, each post
once, and a stop in the middle of such a batch gives the rest back untried. Behaviour
only, on SQLite and PostgreSQL: nothing here is timed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from jobs.outgoing import Outgoing, Receipt
from scheduler import defaults, worker
from scheduler.clock import VirtualClock
from scheduler.models import PostState
from tests.conftest import CampaignFactory
from tests.test_queue import Scripted, _worker
from tests.test_wake import AHEAD, _approved, _states

S = PostState


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    return any_engine


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run's batch of 3, against 2 for a claim ahead and a real platform's record."""
    monkeypatch.setattr(defaults, "DRY_RUN_BATCH", 3)
    monkeypatch.setattr(defaults, "CLAIM_BATCH", 2)
    monkeypatch.setattr(defaults, "RECORD_BATCH", 2)


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """How many posts each call of the Worker's `name` (claim, record_many) dealt with."""
    sizes: list[int] = []
    real = getattr(worker, name)

    def counted(*args: Any, **kw: Any) -> Any:
        out = real(*args, **kw)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(worker, name, counted)
    return sizes


@pytest.mark.usefixtures("small_batches")
def test_a_dry_run_claims_and_records_what_is_due_a_dry_run_batch_at_a_time(
        engine: Engine, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    due = _approved(engine, make_campaign, 7)
    claims, records = _counting(monkeypatch, "claim"), _counting(monkeypatch, "record_many")
    clock = VirtualClock(due)
    w, pub = _worker(engine, clock)
    w.ahead = AHEAD                                 # as the daemon runs it
    w.tick()
    w.book_keep()
    assert _states(engine) == [S.PUBLISHED] * 7 and pub.calls == 7
    sent = [line["post_id"] for line in pub.inner.sent]
    assert sent == sorted(sent) and len(set(sent)) == 7     # in due order, each once
    assert [n for n in claims if n] == [3, 3, 1]
    assert sum(records) == 7 and max(records) == 3


@pytest.mark.usefixtures("small_batches")
def test_posts_not_yet_due_are_still_claimed_ahead_a_claim_batch_at_most(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 5)
    clock = VirtualClock(due - AHEAD / 2)
    w, pub = _worker(engine, clock)
    w.ahead = AHEAD
    w.tick()
    assert sorted(_states(engine)) == sorted([S.SENDING] * 2 + [S.QUEUED] * 3)
    assert pub.calls == 0                           # nothing before its instant
    clock.set(due)
    assert w.send_ready() == 2
    w.tick()
    w.book_keep()
    assert _states(engine) == [S.PUBLISHED] * 5 and pub.calls == 5


class _StopsAfter(Scripted):
    """Publishes `n` posts, then the daemon is told to stop (SIGTERM mid-batch)."""

    def __init__(self, clock: VirtualClock, n: int) -> None:
        super().__init__(clock)
        self.n = n
        self.worker: worker.Worker | None = None

    def publish(self, post: Outgoing) -> Receipt:
        receipt = super().publish(post)
        if self.calls == self.n and self.worker is not None:
            self.worker.stopping.set()
        return receipt


@pytest.mark.usefixtures("small_batches")
def test_a_stop_in_the_middle_of_a_dry_run_batch_gives_the_rest_back_untried(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 3)
    clock = VirtualClock(due + timedelta(seconds=1))
    pub = _StopsAfter(clock, 2)
    w, _ = _worker(engine, clock, pub)
    pub.worker = w
    w.ahead = AHEAD
    w.tick()
    w.book_keep()
    assert _states(engine) == [S.PUBLISHED, S.PUBLISHED, S.QUEUED] and pub.calls == 2
    assert not w._held                              # nothing left claimed by this daemon
