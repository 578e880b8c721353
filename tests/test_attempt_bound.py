"""A publish attempt (uploads + create) has a total time bound shorter than the lease:
the daemon hands it to the adapter as `Outgoing.deadline`, and each adapter, with its
real SDK against the fake platform, cuts every request's timeout to the time left on
its own (injected) clock and sends no request once that has passed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from jobs.adapters.bluesky import BlueskyPublisher
from jobs.adapters.mastodon import MastodonPublisher
from jobs.adapters.x import XPublisher
from jobs.errors import TransientError, UnknownOutcome
from jobs.outgoing import Media, Outgoing, Receipt
from scheduler.clock import VirtualClock
from tests.conftest import CampaignFactory, build_adapter
from tests.fakeplatform import FakePlatformServer, Request
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.platform_world import PLATFORMS, X_SECRETS
from tests.test_adapter_bluesky import PNG
from tests.test_exactly_once import DUE, _ready
from tests.test_queue import Scripted, _worker

TIMEOUT = 5.0        # the adapter's own per-request timeout: far longer than the bound
UPLOAD = {"x": r"^/2/media/upload$", "mastodon": r"^/api/v2/media$",
          "bluesky": r"^/xrpc/com\.atproto\.repo\.uploadBlob$"}


@pytest.fixture
def fake() -> Iterator[FakePlatformServer]:
    with FakePlatformServer() as server:
        yield server


def _adapter(platform: str, fake: FakePlatformServer, now: Any) -> Any:
    cls, values = {
        "x": (XPublisher, {**X_SECRETS, "API_BASE": fake.url}),
        "mastodon": (MastodonPublisher, {"INSTANCE": fake.url, "ACCESS_TOKEN": fm.TOKEN}),
        "bluesky": (BlueskyPublisher, {"HANDLE": fb.HANDLE, "APP_PASSWORD": fb.PASSWORD,
                                       "PDS": fake.url}),
    }[platform]
    return build_adapter(cls, "org", values, timeout=TIMEOUT, now=now)


def _post(platform: str, deadline: datetime, media: tuple[Media, ...] = ()) -> Outgoing:
    return Outgoing(post_id=7, account="org", platform=platform, text="Two days left #Vote",
                    idempotency_key="bound-7", due_at=deadline - timedelta(minutes=1),
                    media=media, deadline=deadline)


@pytest.mark.parametrize("platform", ["x", "mastodon", "bluesky"])
def test_no_request_leaves_once_the_attempt_is_out_of_time(
        platform: str, fake: FakePlatformServer, tmp_path: Path) -> None:
    clock = VirtualClock(datetime.now(UTC))
    pub = _adapter(platform, fake, clock.now)
    image = tmp_path / "chart.png"
    image.write_bytes(PNG)
    post = _post(platform, clock.now() + timedelta(seconds=20), (Media(str(image), "a chart"),))
    upload = re.compile(UPLOAD[platform])

    def slow_upload(req: Request) -> None:
        if req.method == "POST" and upload.search(req.path):
            clock.advance(30)        # the upload ate the attempt's time, and more
    fake.on_request = slow_upload
    try:
        with pytest.raises(TransientError, match="time bound ran out"):
            pub.publish(post)
    finally:
        fake.on_request = None
    assert fake.requests_to("POST", PLATFORMS[platform].create) == []   # never sent
    assert PLATFORMS[platform].copies(fake, post.text) == []
    pub.close()


@pytest.mark.parametrize("platform", ["x", "mastodon", "bluesky"])
def test_a_create_cut_short_by_the_bound_is_an_unknown_outcome(
        platform: str, fake: FakePlatformServer) -> None:
    # the adapter's clock stands still until the create arrives: however long a loaded
    # machine takes to get the request out, it leaves with 1 s of the attempt left (on
    # the real clock that 1 s could all go before the request: the other test's case);
    # the attempt's time is over while the platform takes its time to answer
    clock = VirtualClock(datetime.now(UTC))
    pub = _adapter(platform, fake, clock.now)
    pub.check()                          # logged in (Bluesky) before the attempt starts
    # the platform makes the post, then answers 3 s late: within the adapter's own
    # 5 s timeout, not within the attempt's 1 s
    fake.fault("POST", PLATFORMS[platform].create, delay_after=3.0)
    post = _post(platform, clock.now() + timedelta(seconds=1))
    create = re.compile(PLATFORMS[platform].create)

    def time_passes(req: Request) -> None:
        if req.method == "POST" and create.search(req.path):
            clock.advance(2)
    fake.on_request = time_passes
    try:
        with pytest.raises(UnknownOutcome):
            pub.publish(post)
    finally:
        fake.on_request = None
    assert len(PLATFORMS[platform].copies(fake, post.text)) == 1   # looked up later
    pub.close()


def test_the_daemon_bounds_each_attempt_by_half_a_lease_and_the_post_s_expiry(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=1)
    clock = VirtualClock(DUE)
    seen: list[Outgoing] = []
    pub = Scripted(clock)
    real = pub.publish

    def publish(post: Outgoing) -> Receipt:
        seen.append(post)
        return real(post)

    pub.publish = publish  # type: ignore[method-assign]
    w, _ = _worker(engine, clock, pub, lease_seconds=30.0, request_timeout=2.0)
    w.tick()
    [post] = seen
    assert post.deadline == DUE + timedelta(seconds=15)     # half the lease, inside it
