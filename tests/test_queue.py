"""The queue's state machine, planning and the tick, on a fresh SQLite per test with
a virtual clock and the dry-run adapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from content.errors import CampaignErrors, TminusError, Unconfirmed
from jobs.adapters.dryrun import DryRunPublisher
from jobs.errors import AuthError, PermanentError, TransientError, UnknownOutcome
from jobs.outgoing import Identity, Outgoing, Receipt
from scheduler import approval
from scheduler.clock import VirtualClock
from scheduler.daemon import Worker
from scheduler.db import session
from scheduler.dispatch import claim, reap_leases
from scheduler.models import Account, Event, Post, PostState
from scheduler.planner import plan
from scheduler.publishers import Publishers
from scheduler.service import approve, cancel
from scheduler.settings import Settings
from scheduler.transitions import ALLOWED, fenced_update, transition
from tests.conftest import CampaignFactory, simple_toml

S = PostState
DEADLINE = datetime(2099, 1, 20, 17, 0, tzinfo=UTC)        # noon New York
START = DEADLINE - timedelta(days=4)


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_engine


def _posts(engine: Engine) -> list[Post]:
    with session(engine) as s:
        return list(s.exec(select(Post).order_by(col(Post.due_at), col(Post.id))).all())


def _events(engine: Engine, post_id: int) -> list[Event]:
    with session(engine) as s:
        return list(s.exec(select(Event).where(Event.post_id == post_id).order_by(col(Event.id))).all())


class Scripted:
    """A publisher that raises the scripted errors first, then publishes for real
    through the dry-run adapter."""

    platform = "dryrun"

    def __init__(self, clock: VirtualClock, errors: list[Exception] | None = None) -> None:
        self.inner = DryRunPublisher(None, now=clock.now)
        self.errors = list(errors or [])
        self.calls = 0
        self.found: Receipt | Exception | None = None

    def publish(self, post: Outgoing) -> Receipt:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.inner.publish(post)

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        if isinstance(self.found, Exception):
            raise self.found
        return self.found

    def check(self) -> Identity:
        return self.inner.check()


def _worker(engine: Engine, clock: VirtualClock, publisher: Scripted | None = None,
            **settings: object) -> tuple[Worker, Scripted]:
    pub = publisher or Scripted(clock)
    cfg = Settings(dry_run=True, **settings)  # type: ignore[arg-type]
    pubs = Publishers(engine, cfg, now=clock.now, dry_run=True)
    pubs.dryrun = pub  # type: ignore[assignment]
    return Worker(engine, cfg, clock, pubs, owner="test"), pub


def _planned(engine: Engine, make_campaign: CampaignFactory, **kw: str) -> Path:
    folder = make_campaign(simple_toml(**kw))
    plan(engine, folder, now=START)
    return folder


# -- planning ------------------------------------------------------------------------


def test_plan_creates_drafts_with_an_event_each(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    posts = _posts(engine)
    # daily 09:00 from T-3d (Jan 17 12:00 NY) to the deadline: Jan 18, 19, 20 -> 3, plus
    # the last call on two accounts
    assert len(posts) == 5
    assert {p.state for p in posts} == {S.DRAFT}
    for p in posts:
        assert p.id is not None
        [ev] = _events(engine, p.id)
        assert (ev.from_state, ev.to_state) == (None, S.DRAFT)
    daily = [p for p in posts if p.post_key == "daily"]
    assert [p.due_at.hour for p in daily] == [14, 14, 14]       # 09:00 EST = 14:00 UTC
    assert daily[0].text.startswith("2 days 3 hours left")     # rendered for its own time
    assert all(p.not_after == min(p.due_at + timedelta(hours=2), DEADLINE) for p in posts)


def test_replan_is_idempotent(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = _planned(engine, make_campaign)
    before = [(p.id, p.text, p.idempotency_key) for p in _posts(engine)]
    report = plan(engine, folder, now=START)
    assert (report.created, report.updated, report.canceled) == (0, 0, 0)
    assert [(p.id, p.text, p.idempotency_key) for p in _posts(engine)] == before


def test_replan_after_edit_updates_drafts_and_returns_approved_to_draft(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    toml = (folder / "campaign.toml").read_text()
    (folder / "campaign.toml").write_text(toml.replace("Call {{ call_line }}", "Phone {{ call_line }}"))
    report = plan(engine, folder, now=START)
    assert report.updated == 3 and len(report.returned_to_draft) == 3
    post_id, diff = report.returned_to_draft[0]
    assert "-" in diff and "+" in diff and "Phone" in diff
    daily = [p for p in _posts(engine) if p.post_key == "daily"]
    assert all(p.state == S.DRAFT and "Phone" in p.text and p.approved_hash is None for p in daily)
    last = _events(engine, post_id)[-1]
    assert (last.from_state, last.to_state) == (S.QUEUED, S.DRAFT)
    untouched = [p for p in _posts(engine) if p.post_key == "last-call"]
    assert all(p.state == S.QUEUED for p in untouched)


def test_replan_cancels_removed_posts_but_keeps_sent_ones(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(START)
    worker, _ = _worker(engine, clock)
    first = _posts(engine)[0]
    clock.set(first.due_at)
    assert worker.tick().sent == 1
    toml = (folder / "campaign.toml").read_text()
    (folder / "campaign.toml").write_text(toml.split("[[posts]]")[0] + "[[posts]]" + toml.split("[[posts]]")[2])
    with pytest.raises(Unconfirmed, match=r"would cancel 2 approved post\(s\)"):
        plan(engine, folder, now=clock.now())      # approved posts go only once confirmed
    assert sorted(p.state for p in _posts(engine) if p.post_key == "daily") == sorted(
        [S.QUEUED, S.QUEUED, S.PUBLISHED])
    report = plan(engine, folder, now=clock.now(), cancel_ok=True)
    states = {p.id: p.state for p in _posts(engine) if p.post_key == "daily"}
    assert states[first.id] == S.PUBLISHED
    assert sorted(states.values()) == [S.CANCELED, S.CANCELED, S.PUBLISHED]
    assert report.canceled == 2 and report.kept_sent == 1


def test_plan_with_errors_writes_nothing(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "bad"
        text = "{{ not_defined }}"
        accounts = ["org"]
        schedule = { at = "T-1h" }
    """))
    with pytest.raises(CampaignErrors):
        plan(engine, folder, now=START)
    assert _posts(engine) == []


# -- transitions -----------------------------------------------------------------------


def test_every_transition_is_checked_and_recorded(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    post = _posts(engine)[0]
    with session(engine) as s:
        p = s.get(Post, post.id)
        assert p is not None
        with pytest.raises(TminusError, match="cannot become published"):
            transition(s, p, S.PUBLISHED, "skip the queue", START, "test")
    assert S.PUBLISHED not in ALLOWED[S.DRAFT]
    assert all(not ALLOWED[f] for f in (S.PUBLISHED, S.FAILED, S.EXPIRED))


def test_approve_records_who_and_the_hash(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    first = _posts(engine)[0]
    assert first.id is not None
    done = approve(engine, campaign="testcamp", post_ids=[first.id], by="ana", now=START).approved
    assert done == [first.id]
    p = _posts(engine)[0]
    assert (p.state, p.approved_by) == (S.QUEUED, "ana")
    # the approval stores what it covers, and its digest
    assert p.approved is not None and p.approved["text"] == p.text
    assert p.approved["account"]["name"] == "org" and p.approved_hash == approval.digest(p.approved)
    assert _events(engine, first.id)[-1].reason == "approved by ana"
    with pytest.raises(TminusError, match="not draft"):
        approve(engine, campaign="testcamp", post_ids=[first.id], by="ana", now=START)
    with pytest.raises(TminusError, match="no post 999"):
        approve(engine, campaign="testcamp", post_ids=[999], by="ana", now=START)


def test_cancel_only_before_sending(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    ids = [p.id for p in _posts(engine) if p.id is not None]
    cancel(engine, campaign=None, post_ids=ids[:1], by="ben", now=START)
    assert _posts(engine)[0].state == S.CANCELED
    with pytest.raises(TminusError, match="only draft, queued or review"):
        cancel(engine, campaign=None, post_ids=ids[:1], by="ben", now=START)


def test_fence_refuses_a_stale_attempt(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    [item] = claim(engine, now=first.due_at, owner="a", lease=timedelta(minutes=2), limit=1)
    with session(engine) as s:
        assert not fenced_update(s, item.post_id, item.attempt + 1, S.SENDING, S.PUBLISHED,
                                 "stale", first.due_at, "b")
        assert fenced_update(s, item.post_id, item.attempt, S.SENDING, S.PUBLISHED,
                             "ok", first.due_at, "a")
    assert _posts(engine)[0].state == S.PUBLISHED


# -- the tick ----------------------------------------------------------------------------


def test_tick_sends_each_post_at_its_time_once_in_order(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(START)
    worker, pub = _worker(engine, clock)
    assert worker.tick().sent == 0                          # nothing due yet
    dues = sorted({p.due_at for p in _posts(engine)})
    for due in dues:
        clock.set(due - timedelta(seconds=1))
        before = len(pub.inner.sent)
        worker.tick()
        assert len(pub.inner.sent) == before                # not a second early
        clock.set(due)
        worker.tick()
    sent = pub.inner.sent
    assert len(sent) == 5 and len({line["post_id"] for line in sent}) == 5
    assert [line["at"] for line in sent] == sorted(line["at"] for line in sent)
    assert all(datetime.fromisoformat(line["at"]) < DEADLINE for line in sent)
    assert {p.state for p in _posts(engine)} == {S.PUBLISHED}
    clock.set(DEADLINE + timedelta(hours=1))
    worker.tick()
    assert len(pub.inner.sent) == 5                         # never twice


def test_nothing_goes_out_after_not_after_or_the_deadline(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(DEADLINE - timedelta(minutes=30))   # the daemon was down until now
    worker, pub = _worker(engine, clock)
    result = worker.tick()
    # the last calls (T-2h, not_after = deadline) are late but allowed; the dailies expired
    assert result.sent == 2 and result.expired == 3
    expired = [p for p in _posts(engine) if p.state == S.EXPIRED]
    assert all(p.id is not None and "not sent by its not_after" in _events(engine, p.id)[-1].reason
               for p in expired)
    # the reason is read later, by a person: its times are in the campaign's timezone
    ny = ZoneInfo("America/New_York")
    for p in expired:
        assert p.id is not None
        reason = _events(engine, p.id)[-1].reason or ""
        due = p.due_at.replace(tzinfo=p.due_at.tzinfo or UTC).astimezone(ny)
        assert f"due {due:%Y-%m-%d %H:%M:%S} {due.tzname()}," in reason and "UTC" not in reason
    clock.set(DEADLINE)
    worker.tick()
    assert all(datetime.fromisoformat(x["at"]) < DEADLINE for x in pub.inner.sent)


def test_text_changed_after_approval_is_not_sent(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    with session(engine) as s:
        p = s.get(Post, first.id)
        assert p is not None
        p.text = p.text + " (edited behind our back)"
        p.text_hash = "0" * 64
        s.add(p)
    clock = VirtualClock(first.due_at)
    worker, pub = _worker(engine, clock)
    worker.tick()
    assert first.id not in [x["post_id"] for x in pub.inner.sent]
    assert _posts(engine)[0].state == S.DRAFT


def test_transient_error_backs_off_then_sends(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    clock = VirtualClock(first.due_at)
    worker, pub = _worker(engine, clock, Scripted(clock, [TransientError("503", retry_after=45)]))
    worker.tick()
    p = _posts(engine)[0]
    assert p.state == S.QUEUED and p.next_attempt_at == first.due_at + timedelta(seconds=45)
    clock.advance(44)
    worker.tick()
    assert pub.calls == 1                                   # no retry storm
    clock.advance(1)
    worker.tick()
    assert _posts(engine)[0].state == S.PUBLISHED and pub.calls == 2


def test_rate_limit_sets_the_accounts_resume_time(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    clock = VirtualClock(first.due_at)
    resume = first.due_at + timedelta(minutes=10)
    worker, _ = _worker(engine, clock, Scripted(clock, [TransientError("429", resume_at=resume)]))
    worker.tick()
    with session(engine) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        assert acc.resume_at == resume
    assert _posts(engine)[0].next_attempt_at >= resume


def test_permanent_error_fails_the_post(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    clock = VirtualClock(first.due_at)
    worker, pub = _worker(engine, clock, Scripted(clock, [PermanentError("400 text too long")]))
    worker.tick()
    p = _posts(engine)[0]
    assert p.state == S.FAILED and "text too long" in (p.last_error or "")
    clock.advance(600)
    worker.tick()
    assert pub.calls == 1


def test_auth_error_pauses_the_account_and_its_posts_wait(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    clock = VirtualClock(first.due_at)
    worker, pub = _worker(engine, clock, Scripted(clock, [AuthError("401 Unauthorized")]))
    worker.tick()
    with session(engine) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        assert acc.paused_reason and "401" in acc.paused_reason
        acc.paused_reason = None                            # `tminus accounts resume org`
        s.add(acc)
    p = _posts(engine)[0]
    assert p.state == S.QUEUED and p.attempt == 0
    worker.tick()
    assert _posts(engine)[0].state == S.PUBLISHED and pub.calls == 2


def test_unknown_outcome_is_reconciled_not_retried_blindly(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    clock = VirtualClock(first.due_at)
    pub = Scripted(clock, [UnknownOutcome("read timeout after sending")])
    pub.found = Receipt("remote-1", "https://example.test/1")
    worker, _ = _worker(engine, clock, pub)
    worker.tick()
    assert _posts(engine)[0].state == S.UNKNOWN
    worker.housekeeping()
    assert _posts(engine)[0].state == S.UNKNOWN             # looked up a moment later
    clock.advance(5)
    worker.housekeeping()
    p = _posts(engine)[0]
    assert (p.state, p.remote_id, pub.calls) == (S.PUBLISHED, "remote-1", 1)


@pytest.mark.parametrize("found, state", [(None, S.QUEUED), (UnknownOutcome("lookup failed"), S.REVIEW)])
def test_reconcile_absent_requeues_and_cant_tell_goes_to_review(
        engine: Engine, make_campaign: CampaignFactory, found: object, state: str) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    clock = VirtualClock(first.due_at)
    pub = Scripted(clock, [UnknownOutcome("dropped")])
    pub.found = found  # type: ignore[assignment]
    worker, _ = _worker(engine, clock, pub)
    worker.tick()
    clock.advance(5)
    worker.housekeeping()
    assert _posts(engine)[0].state == state


def test_expired_lease_is_looked_up_not_resent(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    claim(engine, now=first.due_at, owner="dead-daemon", lease=timedelta(minutes=2), limit=1)
    assert reap_leases(engine, now=first.due_at + timedelta(minutes=1), owner="x") == 0
    assert reap_leases(engine, now=first.due_at + timedelta(minutes=2), owner="x") == 1
    assert _posts(engine)[0].state == S.UNKNOWN


def test_budget_holds_posts_beyond_the_window(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(accounts="""
        [accounts.org]
        platform = "dryrun"
        budget = { posts = 2, per = "1h" }
    """, posts="""
        [[posts]]
        key = "burst"
        text = "{{ minutes_left }} minutes left {{ hashtags }}"
        accounts = ["org"]
        schedule = { at = ["T-3h", "T-2h59m", "T-2h58m", "T-2h57m"] }
        expires = "3h"
    """))
    plan(engine, folder, now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(DEADLINE - timedelta(hours=2, minutes=57))
    worker, pub = _worker(engine, clock)
    worker.tick()
    assert len(pub.inner.sent) == 2
    held = [p for p in _posts(engine) if p.state == S.QUEUED]
    # both went out at T-2h57m, so the window frees a slot an hour later
    free = DEADLINE - timedelta(hours=1, minutes=57)
    assert len(held) == 2 and all(p.next_attempt_at == free for p in held)
    clock.set(free - timedelta(seconds=1))
    worker.tick()
    assert len(pub.inner.sent) == 2
    clock.set(free)
    worker.tick()
    assert len(pub.inner.sent) == 4


def test_dry_run_outbox_lines_are_json(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    pub = DryRunPublisher(tmp_path / "out.jsonl", now=clock.now)
    post = Outgoing(post_id=1, account="org", platform="x", text="hola", idempotency_key="k1",
                    due_at=START)
    receipt = pub.publish(post)
    [line] = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert line["text"] == "hola" and line["id"] == receipt.remote_id
    assert pub.find(post, START) == receipt
    assert pub.find(Outgoing(2, "org", "x", "x", "k2", START), START) is None


# -- threads ---------------------------------------------------------------------------

THREAD = """
    [[posts]]
    key = "explainer"
    text = "A thread on why {{ time_left }} matters. 1/3 {{ hashtags }}"
    thread = ["The pardon covers green-card holders. 2/3", "Call {{ call_line }} today. 3/3"]
    accounts = ["org"]
    schedule = { at = "T-2h" }
"""


def test_a_thread_goes_out_in_order_each_a_reply_to_the_one_before(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts=THREAD))
    report = plan(engine, folder, now=START)
    assert report.created == 3
    posts = _posts(engine)
    first, second, third = sorted(posts, key=lambda p: p.id or 0)
    assert (second.parent_id, third.parent_id) == (first.id, second.id)
    assert second.thread_root_id == third.thread_root_id == first.id
    assert third.text == "Call 202-555-0100 today. 3/3"
    assert plan(engine, folder, now=START).unchanged == 3           # stable keys

    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(first.due_at)
    worker, pub = _worker(engine, clock)
    worker.tick()
    sent = pub.inner.sent
    assert [line["post_id"] for line in sent] == [first.id, second.id, third.id]
    assert "reply_to" not in sent[0]
    assert sent[1]["reply_to"] == sent[0]["id"] and sent[2]["reply_to"] == sent[1]["id"]


def test_a_reply_waits_for_the_post_it_answers(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts=THREAD))
    plan(engine, folder, now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    first = _posts(engine)[0]
    clock = VirtualClock(first.due_at)
    worker, pub = _worker(engine, clock, Scripted(clock, [TransientError("503", retry_after=60)]))
    worker.tick()
    assert pub.calls == 1 and pub.inner.sent == []               # the replies did not jump ahead
    from scheduler.queue import next_due
    assert next_due(engine, clock.now()) == first.due_at + timedelta(seconds=60)
    clock.advance(60)
    worker.tick()
    assert len(pub.inner.sent) == 3


def test_paused_accounts_do_not_wake_the_daemon(engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    from scheduler.queue import next_due
    first = _posts(engine)[0]
    with session(engine) as s:
        for acc in s.exec(select(Account)).all():
            acc.paused_reason = "401"
            s.add(acc)
    assert next_due(engine, first.due_at) is None
    with session(engine) as s:
        for acc in s.exec(select(Account)).all():
            acc.paused_reason = None
            acc.resume_at = first.due_at + timedelta(hours=5)
            s.add(acc)
    assert next_due(engine, first.due_at) == first.due_at + timedelta(hours=5)


def _same_time_posts(n: int) -> str:
    """`n` posts on one account, all due at T-1h."""
    return "".join(f"""
        [[posts]]
        key = "p{i}"
        text = "post {i} {{{{ hashtags }}}}"
        accounts = ["org"]
        schedule = {{ at = "T-1h" }}
    """ for i in range(n))


def test_a_long_batch_renews_its_lease_so_no_other_daemon_resends_it(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts=_same_time_posts(10)))
    plan(engine, folder, now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    due = DEADLINE - timedelta(hours=1)
    clock = VirtualClock(due)
    a, pub_a = _worker(engine, clock, lease_seconds=2.0, request_timeout=0.5)
    b, pub_b = _worker(engine, clock, lease_seconds=2.0, request_timeout=0.5)
    b.owner = "daemon-b"
    real = pub_a.publish
    calls = 0

    def slow(post: Outgoing) -> Receipt:
        # each request takes 0.4 s (under the timeout); meanwhile daemon B ticks
        nonlocal calls
        calls += 1
        clock.advance(0.4)
        b.tick()
        return real(post)

    pub_a.publish = slow  # type: ignore[method-assign]
    a.tick()                                       # ten posts take 4 s: two leases' worth
    assert calls == 10 and pub_b.calls == 0        # B never took one over
    assert len({line["post_id"] for line in pub_a.inner.sent}) == 10 == len(pub_a.inner.sent)
    assert {p.state for p in _posts(engine)} == {S.PUBLISHED}


@pytest.mark.parametrize("error", [TransientError("429", resume_at=DEADLINE - timedelta(minutes=30)),
                                   AuthError("401 Unauthorized")])
def test_a_rate_limit_or_refused_login_stops_the_rest_of_the_batch(
        engine: Engine, make_campaign: CampaignFactory, error: Exception) -> None:
    folder = make_campaign(simple_toml(posts=_same_time_posts(5)))
    plan(engine, folder, now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(DEADLINE - timedelta(hours=1))
    worker, pub = _worker(engine, clock, Scripted(clock, [error]))
    worker.tick()
    worker.tick()
    assert pub.calls == 1                                  # not five requests into a wall
    posts = _posts(engine)
    assert all(p.state == S.QUEUED for p in posts)
    # only the one that was tried counts an attempt (a refused login counts none)
    assert sum(p.attempt for p in posts) == (1 if isinstance(error, TransientError) else 0)


def test_a_state_change_reuses_its_statement_only_for_the_very_same_expressions(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    from scheduler.transitions import Seen, _move_statement, change
    # plain values are parameters: one statement for every owner
    assert _move_statement(False, True, False, {"lease_owner": "a"}) is _move_statement(
        False, True, False, {"lease_owner": "b"})
    plus_one, plus_five = col(Post.attempt) + 1, col(Post.attempt) + 5
    first = _move_statement(False, True, False, {"attempt": plus_one})
    assert _move_statement(False, True, False, {"attempt": plus_one}) is first
    assert _move_statement(False, True, False, {"attempt": plus_five}) is not first
    # and in the database: each change sets what its own expression says
    plan(engine, make_campaign(simple_toml(posts=_same_time_posts(2))), now=START)
    a, b = (p.id for p in _posts(engine))
    assert a is not None and b is not None
    with session(engine) as s:
        assert change(s, [Seen(a, S.DRAFT)], S.QUEUED, reason="t", now=START, actor="t",
                      values={"attempt": col(Post.attempt) + 1}) == [a]
        assert change(s, [Seen(b, S.DRAFT)], S.QUEUED, reason="t", now=START, actor="t",
                      values={"attempt": col(Post.attempt) + 5}) == [b]
    assert {p.id: p.attempt for p in _posts(engine)} == {a: 1, b: 5}


def test_the_ticks_statements_are_built_once_per_scope() -> None:
    from scheduler import dispatch, queue
    dry = queue.Scope(dry_run_only=True)
    assert dispatch._candidates(queue.ALL, False) is dispatch._candidates(queue.ALL, False)
    assert dispatch._candidates(dry, False) is not dispatch._candidates(queue.ALL, False)
    assert queue._next_due_statements(dry) is queue._next_due_statements(queue.Scope(True))
