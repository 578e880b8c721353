"""The one contract every `Publisher` keeps, run over every implementation: the dry-run
adapter (a tmp outbox) and the X, Mastodon and Bluesky adapters through their real SDKs
against one fake platform server.

Each platform contributes a `Helpers` that answers, from the fake's own state, what is
on the platform; the cases themselves know nothing of any platform.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs.adapters.base import MemorySessionStore, Publisher
from jobs.adapters.bluesky import BlueskyPublisher
from jobs.adapters.dryrun import DryRunPublisher
from jobs.adapters.mastodon import MastodonPublisher
from jobs.adapters.x import XPublisher
from jobs.errors import UnknownOutcome
from jobs.outgoing import Identity, Outgoing, Receipt
from tests.conftest import build_adapter, utcnow
from tests.fakeplatform import FakePlatformServer, Fault
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx

TIMEOUT = 0.5
PLATFORMS = ["dryrun", "x", "mastodon", "bluesky"]


@dataclass
class Helpers:
    """What a contract case may ask about the platform behind a publisher."""

    platform: str
    texts: Callable[[], list[str]]                  # every post's text on the platform
    parent_of: Callable[[Receipt], str | None]      # the remote id it was recorded replying to
    # The next create acts but its answer is lost; returns the injected fault (None for
    # the dry run, whose answer is a line written to a file and cannot be lost).
    lose_next_answer: Callable[[], Fault | None]

    def outgoing(self, text: str, **kw: Any) -> Outgoing:
        return Outgoing(post_id=kw.pop("post_id", 1), account="contract",
                        platform=self.platform, text=text,
                        idempotency_key=f"tminus-{uuid.uuid4()}",
                        due_at=datetime.now(UTC) - timedelta(minutes=1), **kw)

    def copies(self, text: str) -> int:
        return self.texts().count(text)


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


# -- one builder per implementation ------------------------------------------------------


def _dryrun(fake: FakePlatformServer, tmp_path: Path) -> tuple[Publisher, Helpers]:
    outbox = tmp_path / "outbox.jsonl"
    pub = DryRunPublisher(outbox, account="contract", now=utcnow)

    def lines() -> list[dict[str, Any]]:
        if not outbox.exists():
            return []
        return [json.loads(raw) for raw in outbox.read_text("utf-8").splitlines() if raw]

    def parent_of(receipt: Receipt) -> str | None:
        [line] = [x for x in lines() if x["id"] == receipt.remote_id]
        parent = line.get("reply_to")
        return None if parent is None else str(parent)

    return pub, Helpers("dryrun", lambda: [x["text"] for x in lines()], parent_of,
                        lambda: None)


def _x(fake: FakePlatformServer, tmp_path: Path) -> tuple[Publisher, Helpers]:
    pub = build_adapter(XPublisher, "contract", {
        "API_KEY": "contract-key", "API_SECRET": "contract-secret",
        "ACCESS_TOKEN": fx.VALID_TOKEN, "ACCESS_SECRET": "contract-access-secret",
        "API_BASE": fake.url}, timeout=TIMEOUT)

    def parent_of(receipt: Receipt) -> str | None:
        [tweet] = [t for t in fx.tweets(fake) if t["id"] == receipt.remote_id]
        parent = tweet["in_reply_to"]
        return None if parent is None else str(parent)

    return pub, Helpers("x", lambda: [t["text"] for t in fx.tweets(fake)], parent_of,
                        lambda: _drop_after(fake, "POST", r"^/2/tweets$"))


def _mastodon(fake: FakePlatformServer, tmp_path: Path) -> tuple[Publisher, Helpers]:
    pub = build_adapter(
        MastodonPublisher, "contract", {"INSTANCE": fake.url, "ACCESS_TOKEN": fm.TOKEN}, timeout=TIMEOUT)

    def parent_of(receipt: Receipt) -> str | None:
        [status] = [s for s in fm.statuses(fake) if s["id"] == receipt.remote_id]
        parent = status["in_reply_to_id"]
        return None if parent is None else str(parent)

    return pub, Helpers("mastodon", lambda: [s["text"] for s in fm.statuses(fake)], parent_of,
                        lambda: _drop_after(fake, "POST", r"^/api/v1/statuses$"))


def _bluesky(fake: FakePlatformServer, tmp_path: Path) -> tuple[Publisher, Helpers]:
    pub = build_adapter(
        BlueskyPublisher, "contract", {"HANDLE": fb.HANDLE, "APP_PASSWORD": fb.PASSWORD, "PDS": fake.url},
        timeout=TIMEOUT, session_store=MemorySessionStore())

    def parent_of(receipt: Receipt) -> str | None:
        [record] = [r for r in fb.posts(fake) if r["uri"] == receipt.remote_id]
        reply = record["value"].get("reply")
        return None if reply is None else str(reply["parent"]["uri"])

    return pub, Helpers("bluesky", lambda: [r["value"]["text"] for r in fb.posts(fake)],
                        parent_of,
                        lambda: _drop_after(fake, "POST",
                                            r"^/xrpc/com\.atproto\.repo\.createRecord$"))


def _drop_after(fake: FakePlatformServer, method: str, pattern: str) -> Fault:
    return fake.fault(method, pattern, drop_after=True)


BUILDERS: dict[str, Callable[[FakePlatformServer, Path], tuple[Publisher, Helpers]]] = {
    "dryrun": _dryrun, "x": _x, "mastodon": _mastodon, "bluesky": _bluesky}


@pytest.fixture(params=PLATFORMS)
def contract(request: pytest.FixtureRequest,
             tmp_path: Path) -> Iterator[tuple[Publisher, Helpers]]:
    with FakePlatformServer() as fake:
        pub, helpers = BUILDERS[request.param](fake, tmp_path)
        yield pub, helpers
        close = getattr(pub, "close", None)
        if close is not None:
            close()


# -- the contract --------------------------------------------------------------------------


def test_platform_attribute(contract: tuple[Publisher, Helpers]) -> None:
    pub, h = contract
    assert isinstance(pub, Publisher)
    assert pub.platform == h.platform


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
