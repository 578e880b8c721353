"""The one contract every `Publisher` keeps, run over every implementation: the dry-run
adapter (a tmp outbox) and the X, Mastodon and Bluesky adapters through their real SDKs
against one fake platform server.

Part one: what every adapter does when the platform works (publish, find, threads, a
lost answer, the options the registry says it sends, its clock, close). Part two: the
error mapping of every adapter in one table (`ERRORS` in `tests/error_table.py`),
each row run through the scheduler: what `publish()` raised, the post's next state,
and the end of the story once the scheduler has done its part.

Each platform contributes a `Helpers` that answers, from the fake's own state, what is
on the platform; the cases themselves know nothing of any platform.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from content.platforms import PLATFORMS as REGISTRY
from jobs.adapters.base import MemorySessionStore, Publisher
from jobs.adapters.bluesky import BlueskyPublisher
from jobs.adapters.dryrun import DryRunPublisher
from jobs.adapters.mastodon import MastodonPublisher
from jobs.adapters.x import XPublisher
from jobs.errors import AuthError, PermanentError, TransientError, UnknownOutcome
from jobs.outgoing import Identity, Outgoing, Receipt
from scheduler.clock import SystemClock
from scheduler.daemon import Daemon, TickResult, Worker
from scheduler.models import FINAL_STATES
from scheduler.publishers import Publishers
from scheduler.settings import Settings
from tests.conftest import CampaignFactory, build_adapter, utcnow
from tests.error_table import ERRORS, Row, inject
from tests.fakeplatform import FakePlatformServer, Fault
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx
from tests.platform_world import PLATFORMS as FAULTY
from tests.platform_world import RECONCILE_DELAY, TEXT, S, World, world

# generous: on a busy machine (the suite runs on several workers) a fake's answer can
# take a while; a hang waits this long
TIMEOUT = 2.0
PLATFORMS = ["dryrun", "x", "mastodon", "bluesky"]
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)   # a clock that is not the real one


@dataclass
class Helpers:
    """What a contract case may ask about the platform behind a publisher."""

    platform: str
    texts: Callable[[], list[str]]                  # every post's text on the platform
    parent_of: Callable[[Receipt], str | None]      # the remote id it was recorded replying to
    # The next create acts but its answer is lost; returns the injected fault (None for
    # the dry run, whose answer is a line written to a file and cannot be lost).
    lose_next_answer: Callable[[], Fault | None]
    sent_options: Callable[[], set[str]]            # post options the last create carried
    rate_limit: Callable[[int], object]             # the next create: 429 until Unix time

    def outgoing(self, text: str, **kw: Any) -> Outgoing:
        return Outgoing(post_id=kw.pop("post_id", 1), account="contract",
                        platform=self.platform, text=text,
                        idempotency_key=f"tminus-{uuid.uuid4()}",
                        due_at=kw.pop("due_at", datetime.now(UTC) - timedelta(minutes=1)), **kw)

    def copies(self, text: str) -> int:
        return self.texts().count(text)


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


# -- one builder per implementation ------------------------------------------------------

Clock = Callable[[], datetime]


def _dryrun(fake: FakePlatformServer, tmp_path: Path, now: Clock) -> tuple[Publisher, Helpers]:
    outbox = tmp_path / "outbox.jsonl"
    pub = DryRunPublisher(outbox, account="contract", now=now)

    def lines() -> list[dict[str, Any]]:
        if not outbox.exists():
            return []
        return [json.loads(raw) for raw in outbox.read_text("utf-8").splitlines() if raw]

    def parent_of(receipt: Receipt) -> str | None:
        [line] = [x for x in lines() if x["id"] == receipt.remote_id]
        parent = line.get("reply_to")
        return None if parent is None else str(parent)

    def sent_options() -> set[str]:
        return {"language", "visibility", "content_warning"} & set(lines()[-1])

    return pub, Helpers("dryrun", lambda: [x["text"] for x in lines()], parent_of,
                        lambda: None, sent_options, lambda reset: None)


def _x(fake: FakePlatformServer, tmp_path: Path, now: Clock) -> tuple[Publisher, Helpers]:
    pub = build_adapter(XPublisher, "contract", {
        "API_KEY": "contract-key", "API_SECRET": "contract-secret",
        "ACCESS_TOKEN": fx.VALID_TOKEN, "ACCESS_SECRET": "contract-access-secret",
        "API_BASE": fake.url}, timeout=TIMEOUT, now=now)

    def parent_of(receipt: Receipt) -> str | None:
        [tweet] = [t for t in fx.tweets(fake) if t["id"] == receipt.remote_id]
        parent = tweet["in_reply_to"]
        return None if parent is None else str(parent)

    def sent_options() -> set[str]:
        body = fake.requests_to("POST", r"^/2/tweets$")[-1].json()
        return {"language", "visibility", "content_warning"} & set(body) | (
            {"language"} if "lang" in body else set())

    return pub, Helpers("x", lambda: [t["text"] for t in fx.tweets(fake)], parent_of,
                        lambda: _drop_after(fake, "POST", r"^/2/tweets$"), sent_options,
                        lambda reset: FAULTY["x"].rate_limit(fake, reset))


def _mastodon(fake: FakePlatformServer, tmp_path: Path, now: Clock) -> tuple[Publisher, Helpers]:
    pub = build_adapter(MastodonPublisher, "contract",
                        {"INSTANCE": fake.url, "ACCESS_TOKEN": fm.TOKEN}, timeout=TIMEOUT,
                        now=now)

    def parent_of(receipt: Receipt) -> str | None:
        [status] = [s for s in fm.statuses(fake) if s["id"] == receipt.remote_id]
        parent = status["in_reply_to_id"]
        return None if parent is None else str(parent)

    def sent_options() -> set[str]:
        form = fake.requests_to("POST", r"^/api/v1/statuses$")[-1].form()
        names = {"language": "language", "visibility": "visibility",
                 "spoiler_text": "content_warning"}
        return {option for field, option in names.items() if form.get(field)}

    return pub, Helpers("mastodon", lambda: [s["text"] for s in fm.statuses(fake)], parent_of,
                        lambda: _drop_after(fake, "POST", r"^/api/v1/statuses$"), sent_options,
                        lambda reset: FAULTY["mastodon"].rate_limit(fake, reset))


def _bluesky(fake: FakePlatformServer, tmp_path: Path, now: Clock) -> tuple[Publisher, Helpers]:
    pub = build_adapter(
        BlueskyPublisher, "contract",
        {"HANDLE": fb.HANDLE, "APP_PASSWORD": fb.PASSWORD, "PDS": fake.url},
        timeout=TIMEOUT, now=now, session_store=MemorySessionStore())

    def parent_of(receipt: Receipt) -> str | None:
        [record] = [r for r in fb.posts(fake) if r["uri"] == receipt.remote_id]
        reply = record["value"].get("reply")
        return None if reply is None else str(reply["parent"]["uri"])

    def sent_options() -> set[str]:
        record = fb.posts(fake)[-1]["value"]
        return ({"language"} if record.get("langs") else set()) | (
            {"content_warning"} if record.get("labels") else set())

    return pub, Helpers("bluesky", lambda: [r["value"]["text"] for r in fb.posts(fake)],
                        parent_of,
                        lambda: _drop_after(fake, "POST",
                                            r"^/xrpc/com\.atproto\.repo\.createRecord$"),
                        sent_options, lambda reset: FAULTY["bluesky"].rate_limit(fake, reset))


def _drop_after(fake: FakePlatformServer, method: str, pattern: str) -> Fault:
    return fake.fault(method, pattern, drop_after=True)


BUILDERS: dict[str, Callable[[FakePlatformServer, Path, Clock], tuple[Publisher, Helpers]]] = {
    "dryrun": _dryrun, "x": _x, "mastodon": _mastodon, "bluesky": _bluesky}


@pytest.fixture(params=PLATFORMS)
def contract(request: pytest.FixtureRequest,
             tmp_path: Path) -> Iterator[tuple[Publisher, Helpers]]:
    with FakePlatformServer() as fake:
        pub, helpers = BUILDERS[request.param](fake, tmp_path, utcnow)
        yield pub, helpers
        pub.close()


# -- part one: the contract when the platform works -------------------------------------------


def test_platform_attribute(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    assert isinstance(pub, Publisher)
    assert pub.platform == h.platform
    assert type(pub).CREDENTIALS is REGISTRY[h.platform].credentials  # type: ignore[attr-defined]


def test_check_returns_the_identity_of_its_platform(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    identity = pub.check()
    assert isinstance(identity, Identity)
    assert identity.platform == h.platform
    assert identity.handle and identity.remote_id


def test_publish_returns_a_receipt(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    post = h.outgoing("T-minus 3 days. Call 202-555-0100 #HereToStay")
    receipt = pub.publish(post)
    assert isinstance(receipt, Receipt)
    assert receipt.remote_id
    assert h.copies(post.text) == 1


def test_find_after_publish_returns_the_same_post(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    post = h.outgoing("T-minus 2 days: write to your representative")
    receipt = pub.publish(post)
    found = pub.find(post, _since())
    assert found is not None and found.remote_id == receipt.remote_id


def test_find_of_a_post_never_published_is_none(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    pub.publish(h.outgoing("this one went out", post_id=1))
    assert pub.find(h.outgoing("this one never did", post_id=2), _since()) is None


def test_a_thread_replies_to_its_first_post(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    first = pub.publish(h.outgoing("1/2 the deadline is near", post_id=1))
    second = pub.publish(h.outgoing("2/2 call today", post_id=2, reply_to=first,
                                    thread_root=first))
    assert second.remote_id and second.remote_id != first.remote_id
    assert h.parent_of(second) == first.remote_id
    assert h.parent_of(first) is None


def test_a_lost_answer_then_the_scheduler_protocol_leaves_one_copy(
        contract: tuple[Publisher, Helpers]) -> None:
    """The create reaches the platform, its answer does not. The adapter returns a
    receipt (it settled the outcome itself) or raises UnknownOutcome; the scheduler then
    asks find() before anything else, and it must find the one copy."""
    pub, h = contract
    post = h.outgoing("T-minus 1 day: this answer is lost on the way back")
    fault = h.lose_next_answer()
    try:
        receipt: Receipt | None = pub.publish(post)
    except UnknownOutcome:
        receipt = None
    assert fault is None or fault.times == 0          # the create did meet the fault
    found = pub.find(post, _since())
    assert found is not None
    if receipt is not None:
        assert found.remote_id == receipt.remote_id
    assert h.copies(post.text) == 1


def test_it_sends_the_options_the_registry_says_it_sends(
        contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    pub.publish(h.outgoing("options", language="es", visibility="unlisted",
                           content_warning="graphic-media"))
    assert h.sent_options() == REGISTRY[h.platform].options


def test_max_characters_is_the_accounts_own_limit_or_none(
        contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    assert pub.max_characters() == (fm.DEFAULT_MAX_CHARACTERS if h.platform == "mastodon"
                                    else None)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_it_tells_time_by_the_clock_it_was_given(platform: str, tmp_path: Path) -> None:
    """Built with a clock ten years ahead: a 429 resetting ten minutes after that clock's
    now is ten minutes away (the dry run writes that clock's time in its outbox)."""
    with FakePlatformServer() as fake:
        pub, h = BUILDERS[platform](fake, tmp_path, lambda: NOW)
        try:
            h.rate_limit(int(NOW.timestamp()) + 600)
            if platform == "dryrun":
                pub.publish(h.outgoing("the time"))
                assert json.loads((tmp_path / "outbox.jsonl").read_text())["at"] == NOW.isoformat()
                return
            with pytest.raises(TransientError) as info:
                pub.publish(h.outgoing("too early", due_at=NOW - timedelta(minutes=1)))
            assert info.value.retry_after is not None
            assert abs(info.value.retry_after - 600) < 2
        finally:
            pub.close()


def test_close_may_be_called_when_the_daemon_stops(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    pub.publish(h.outgoing("before the daemon stops"))
    pub.close()
    pub.close()                       # a second stop does no harm


# -- part two: the error table, each row through the scheduler ---------------------------------


@pytest.mark.parametrize("row", ERRORS, ids=[r.id for r in ERRORS])
def test_error_mapping(row: Row, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    """One fault on the platform's create: what the adapter raised, the post's next
    state, and that the scheduler then ends it right: published exactly once (looked
    up first where the outcome was unknown, waiting out a rate limit, after the account
    is resumed), or failed with nothing on the platform. No retry storm, no secret in
    any message."""
    p = FAULTY[row.platform]
    with world(make_campaign, tmp_path, [row.platform]) as w:
        inject(w.fake, p, row.fault)
        w.ticks(1)
        [raised] = w.raised(p)
        post, acc = w.post(p.account), w.account(p.account)
        if row.raises is None:
            assert raised is None
        else:
            assert type(raised) is row.raises, raised
            assert re.search(row.match, raised.message, re.S), raised.message
        assert row.next == ("paused" if acc.paused_reason else post.state), post.last_error
        assert len(p.copies(w.fake, TEXT)) == row.copies
        assert w.creates(p) == row.sent
        if row.next in ("queued", "unknown", "failed") and row.match:
            assert re.search(row.match, post.last_error or "", re.S), post.last_error
        w.ticks(1)                                # the same instant: nothing is due again
        assert w.creates(p) == row.sent
        _then(w, row)
        _to_the_end(w, row)
        w.assert_no_secrets()


def _then(w: World, row: Row) -> None:
    """What a rate limit and a refused login promise beyond the next state."""
    p = FAULTY[row.platform]
    post, acc = w.post(p.account), w.account(p.account)
    if row.next == "queued":
        assert post.next_attempt_at > w.clock.now()
    if row.fault == "429":
        assert acc.resume_at is not None
        assert acc.resume_at > w.clock.now() + timedelta(minutes=55)
        assert post.next_attempt_at >= acc.resume_at
        w.ticks(2, advance=1500)                  # 50 minutes on, still before the reset
        assert w.clock.now() < acc.resume_at
        assert w.creates(p) == 1 and w.post(p.account).state == S.QUEUED
    if row.next == "paused":
        assert acc.paused_reason and "401" in acc.paused_reason
        assert post.state == S.QUEUED and post.attempt == 0    # the post itself is fine
        seen = w.requests(p)
        w.ticks(2, advance=1800)                  # an hour: the paused account sends nothing
        assert w.requests(p) == seen
        p.restore(w.fake)
        w.unpause(p.account)


def _to_the_end(w: World, row: Row) -> None:
    p = FAULTY[row.platform]
    for _ in range(6):
        post, acc = w.post(p.account), w.account(p.account)
        if post.state in FINAL_STATES:
            break
        w.clock.set(max(w.clock.now() + timedelta(seconds=RECONCILE_DELAY),
                        post.next_attempt_at, acc.resume_at or w.clock.now()))
        w.worker.housekeeping()                   # looks up a post whose outcome is unknown
        w.ticks(1)
    if issubclass(row.raises or object, PermanentError) and row.raises is not AuthError:
        assert w.post(p.account).state == S.FAILED
        assert p.copies(w.fake, TEXT) == []
        assert w.creates(p) == row.sent
        return
    w.published_once(p)
    assert w.creates(p) <= 2
    if row.next == "unknown" and w.creates(p) == 2:   # never retried blindly
        assert w.lookups_between_creates(p) >= 1


def test_the_table_covers_every_fault_on_every_platform() -> None:
    faults = {r.fault for r in ERRORS}
    for platform in FAULTY:
        assert {r.fault for r in ERRORS if r.platform == platform} == faults
    assert {"429", "500 before", "500 after", "hang before", "hang after", "reset before",
            "reset after", "401", "403", "400"} <= faults
    assert len(ERRORS) == 3 * len(faults)
    assert len({r.id for r in ERRORS}) == len(ERRORS)


def test_the_daemon_closes_every_adapter_when_it_stops(engine: Engine, tmp_path: Path) -> None:
    closed: list[str] = []

    class Watched(Publishers):
        def close(self) -> None:
            closed.append("publishers")
            super().close()

    settings = Settings(dryrun_outbox=tmp_path / "outbox.jsonl", dry_run=True)
    worker = Worker(engine, settings, SystemClock(), Watched(engine, settings, dry_run=True))
    dryrun = worker.publishers.dryrun
    dryrun.publish(Outgoing(post_id=1, account="a", platform="dryrun", text="out",
                            idempotency_key="k", due_at=utcnow()))
    assert dryrun._fh is not None and not dryrun._fh.closed
    daemon = Daemon(worker)
    worker.tick = lambda **kw: daemon.stop("the test is done") or TickResult()  # type: ignore[method-assign]
    daemon.run()
    assert closed == ["publishers"]
    assert dryrun._fh is None                            # the outbox file is closed
