"""The crisis button: a pause holds posts in the claim itself, a post whose not_after
passes during it expires "paused", and resuming says what goes out and what expired.
On SQLite and PostgreSQL, through the real tick code on a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from content.errors import FieldError, TminusError
from jobs.outgoing import Outgoing, Receipt
from scheduler.clock import VirtualClock
from scheduler.db import session
from scheduler.models import Activity, Event, Post, PostState
from scheduler.planner import plan
from scheduler.queue import next_due
from scheduler.service import approve
from scheduler.service.activity import recent_activity
from scheduler.service.pauses import Target, pause, pauses_in_force, resume
from tests.conftest import CampaignFactory, simple_toml
from tests.test_queue import _worker

S = PostState
DEADLINE = datetime(2099, 1, 20, 17, 0, tzinfo=UTC)
START = DEADLINE - timedelta(days=4)
LAST_CALL = DEADLINE - timedelta(hours=2)       # both accounts' "last call" posts
EVERYTHING = Target(everything=True)


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    return any_engine


def _approved(engine: Engine, make_campaign: CampaignFactory, **kw: str) -> None:
    plan(engine, make_campaign(simple_toml(**kw)), now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)


def _states(engine: Engine) -> dict[int, PostState]:
    with session(engine) as s:
        return {p.id: p.state for p in s.exec(select(Post)).all() if p.id is not None}


def _last_reason(engine: Engine, post_id: int) -> str:
    with session(engine) as s:
        e = s.exec(select(Event).where(Event.post_id == post_id).order_by(col(Event.id).desc())).first()
        assert e is not None
        return e.reason


def test_nothing_is_claimed_while_everything_is_paused(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL)
    worker, pub = _worker(engine, clock)
    p = pause(engine, EVERYTHING, reason="news broke", by="Ana", now=clock.now())
    assert p.pause.what == "everything" and not p.already
    # the two last calls and the morning's daily (the earlier dailies are past their time)
    assert p.waiting == 3
    assert worker.tick().sent == 0 and pub.calls == 0
    assert next_due(engine, clock.now()) is None   # the daemon does not even wake for them
    r = resume(engine, EVERYTHING, by="Ben", now=clock.now())
    assert sorted(b.account for b in r.going_now) == ["org", "org", "partner"]
    assert r.going_total == 3 and r.later == 0 and r.expired == []
    assert worker.tick().sent == 3


def test_a_post_whose_time_passes_during_the_pause_expires_paused_never_late(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _approved(engine, make_campaign)
    clock = VirtualClock(DEADLINE - timedelta(hours=3, minutes=1))   # before the day's daily
    worker, pub = _worker(engine, clock)
    worker.tick()                                  # the dailies of earlier days expire as usual
    before = {pid for pid, st in _states(engine).items() if st == S.EXPIRED}
    assert len(before) == 2 and pub.calls == 0
    pause(engine, EVERYTHING, reason="news broke", by="Ana", now=clock.now())
    clock.set(DEADLINE - timedelta(minutes=1))     # past the daily's and last calls' times
    worker.tick()
    clock.set(DEADLINE + timedelta(seconds=1))
    worker.tick()                                  # the last calls' not_after is the deadline
    expired = {pid for pid, st in _states(engine).items() if st == S.EXPIRED} - before
    assert len(expired) == 3
    assert all(_last_reason(engine, pid).startswith("paused: not sent by its not_after")
               for pid in expired)
    assert not any(_last_reason(engine, pid).startswith("paused") for pid in before)
    r = resume(engine, EVERYTHING, by="Ben", now=clock.now())
    assert r.going_now == [] and {b.id for b in r.expired} == expired
    assert pub.calls == 0                          # never went out late


def test_resume_expires_what_passed_its_time_in_the_same_step(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _approved(engine, make_campaign)
    pause(engine, EVERYTHING, reason="news broke", by="Ana", now=LAST_CALL - timedelta(minutes=5))
    # no daemon ran during the pause: the resume itself expires the stale posts, "paused"
    r = resume(engine, EVERYTHING, by="Ben", now=DEADLINE + timedelta(minutes=1))
    # the day's daily and both last calls; the earlier dailies were past their time
    # before the pause began, and expire with their own reason
    assert r.expired_total == 3 and r.going_total == 0
    assert all(_last_reason(engine, b.id).startswith("paused") for b in r.expired)
    assert sorted(b.account for b in r.expired) == ["org", "org", "partner"]
    assert sum(st == S.EXPIRED for st in _states(engine).values()) == 5


def test_a_campaign_or_account_pause_holds_only_its_posts(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL)
    worker, pub = _worker(engine, clock)
    pause(engine, Target(account="org"), reason="password reset", by="Ana", now=clock.now())
    assert worker.tick().sent == 1                 # partner's last call only
    assert pub.inner.sent[0]["account"] == "partner"
    pause(engine, Target(campaign="testcamp"), reason="hold", by="Ana", now=clock.now())
    assert [p.what for p in pauses_in_force(engine)] == ["account org", "campaign testcamp"]
    resume(engine, Target(account="org"), by="Ana", now=clock.now())
    assert worker.tick().sent == 0                 # the campaign pause still holds it
    r = resume(engine, Target(campaign="testcamp"), by="Ana", now=clock.now())
    assert r.going_total == 2 and r.still_paused == []   # org's daily and last call
    assert worker.tick().sent == 2


def test_a_pause_begun_mid_batch_stops_the_rest_of_the_batch(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    posts = "".join(f"""
        [[posts]]
        key = "p{i}"
        text = "post {i} {{{{ hashtags }}}}"
        accounts = ["org"]
        schedule = {{ at = "T-1h" }}
    """ for i in range(5))
    _approved(engine, make_campaign, posts=posts)
    clock = VirtualClock(DEADLINE - timedelta(hours=1))
    worker, pub = _worker(engine, clock)
    worker.pause_check = 0.0                       # read the pauses before every request
    real = pub.publish

    def first_then_pause(post: Outgoing) -> Receipt:
        receipt = real(post)
        if pub.calls == 1:                         # a person presses pause meanwhile
            pause(engine, EVERYTHING, reason="stop", by="Ana", now=clock.now())
        return receipt

    pub.publish = first_then_pause  # type: ignore[method-assign]
    worker.tick()
    assert pub.calls == 1
    states = sorted(_states(engine).values())
    assert states == [S.PUBLISHED, S.QUEUED, S.QUEUED, S.QUEUED, S.QUEUED]
    with session(engine) as s:
        assert all(p.attempt == 0 for p in s.exec(select(Post).where(Post.state == S.QUEUED)).all())


def test_pausing_twice_is_harmless_and_resuming_what_is_not_paused_says_what_is(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _approved(engine, make_campaign)
    pause(engine, Target(campaign="testcamp"), reason="hold", by="Ana", now=START)
    again = pause(engine, Target(campaign="testcamp"), reason="hold again", by="Ben", now=START)
    assert again.already and again.pause.reason == "hold" and again.pause.by == "Ana"
    with pytest.raises(TminusError, match="everything is not paused; paused now: campaign testcamp"):
        resume(engine, EVERYTHING, by="Ana", now=START)
    with pytest.raises(FieldError, match="--reason is needed"):
        pause(engine, EVERYTHING, reason="  ", by="Ana", now=START)
    with pytest.raises(TminusError, match="no campaign 'nope'"):
        pause(engine, Target(campaign="nope"), reason="x", by="Ana", now=START)
    with pytest.raises(TminusError, match="no account 'nope'"):
        pause(engine, Target(account="nope"), reason="x", by="Ana", now=START)
    with pytest.raises(TminusError, match="name a campaign"):
        Target()


def test_pauses_and_resumes_are_in_the_activity_log(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _approved(engine, make_campaign)
    pause(engine, EVERYTHING, reason="news broke", by="Ana", now=START)
    resume(engine, EVERYTHING, by="Ben", now=START + timedelta(minutes=5))
    log = recent_activity(engine, campaign="testcamp")
    assert [(e.kind, e.actor) for e in log] == [("resumed", "Ben"), ("paused", "Ana")]
    assert log[1].message == "paused everything: news broke"
    assert log[0].message == "resumed everything (paused 5m by Ana: news broke)"
    with session(engine) as s:
        assert len(s.exec(select(Activity)).all()) == 2
