"""Platform faults seen from the scheduler: a real `Worker` with `Publishers` built from
`Settings.env` credentials that point every adapter at one fake platform server, a
campaign with one post on each of X, Mastodon and Bluesky (planned and approved), and a
virtual clock for the scheduler.

For each platform and fault, the post must land in the state the adapter's error rule
gives, after a bounded number of create requests across several ticks (no retry
storm), and no credential may ever reach `Post.last_error` or an event's reason.

The adapters compute `resume_at` from real time, so the campaign is built around the
real present (the virtual clock starts at the post's due time, a moment ago) and reset
headers are set relative to real time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from scheduler.clock import VirtualClock
from scheduler.daemon import Worker
from scheduler.db import session
from scheduler.models import Account, Event, Post, PostState
from scheduler.planner import plan
from scheduler.publishers import Publishers
from scheduler.service import approve
from scheduler.settings import Settings
from tests.conftest import CampaignFactory
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx

S = PostState
TEXT = "One day left. Call 202-555-0100. #HereToStay"
# Past any wait the scheduler keeps before looking up a post whose outcome is unknown.
RECONCILE_DELAY = 60.0

# Credential values: none of them may ever appear in a post's error or an event.
X_SECRETS = {"API_KEY": "xkey-SECRET-0001", "API_SECRET": "xsecret-SECRET-0002",
             "ACCESS_TOKEN": fx.VALID_TOKEN, "ACCESS_SECRET": "xaccess-SECRET-0003"}
SECRETS = [*X_SECRETS.values(), fm.TOKEN, fb.PASSWORD]


def _env(url: str) -> dict[str, str]:
    env = {f"TMINUS_ORG_X_{k}": v for k, v in X_SECRETS.items()}
    env.update({
        "TMINUS_ORG_X_API_BASE": url,
        "TMINUS_ORG_MASTO_INSTANCE": url, "TMINUS_ORG_MASTO_ACCESS_TOKEN": fm.TOKEN,
        "TMINUS_ORG_BSKY_HANDLE": fb.HANDLE, "TMINUS_ORG_BSKY_APP_PASSWORD": fb.PASSWORD,
        "TMINUS_ORG_BSKY_PDS": url,
    })
    return env


def _campaign(deadline: datetime) -> str:
    return f"""
        [campaign]
        slug = "faults"
        title = "Faults"
        deadline = {deadline.isoformat()}
        timezone = "UTC"
        hashtags = ["#HereToStay"]

        [accounts.org_x]
        platform = "x"
        credentials = "ORG_X"
        tier = "basic"

        [accounts.org_masto]
        platform = "mastodon"
        credentials = "ORG_MASTO"

        [accounts.org_bsky]
        platform = "bluesky"
        credentials = "ORG_BSKY"

        [[posts]]
        key = "one-day"
        text = "{TEXT}"
        accounts = ["org_x", "org_masto", "org_bsky"]
        schedule = {{ at = "T-1d" }}
    """


# -- each platform: its account, endpoints, copies and faults -----------------------------


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "type": "about:blank", "status": status, "detail": detail}


@dataclass(frozen=True)
class Platform:
    name: str
    account: str
    create: str                                       # path of the create endpoint (POST)
    api: str                                          # path prefix of all its requests
    copies: Callable[[FakePlatformServer, str], list[str]]   # remote ids holding a text
    rate_limit: Callable[[FakePlatformServer, int], object]  # a 429 resetting at Unix time
    server_error: Callable[[FakePlatformServer, int], object]
    too_long: Callable[[FakePlatformServer], str]     # injects; returns the platform's words
    revoke: Callable[[FakePlatformServer], None]      # credentials refused from now on
    restore: Callable[[FakePlatformServer], None]
    after_5xx: dict[int, str]                         # the state the adapter's rule gives
    after_drop: str


X_CREATE = r"^/2/tweets$"
MASTO_CREATE = r"^/api/v1/statuses$"
BSKY_CREATE = r"^/xrpc/com\.atproto\.repo\.createRecord$"


def _x_too_long(fake: FakePlatformServer) -> str:
    fake.fault("POST", X_CREATE, status=400, body={
        "errors": [{"parameters": {"text": []}, "message": fx.TOO_LONG}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request"})
    return fx.TOO_LONG


def _masto_too_long(fake: FakePlatformServer) -> str:
    fm.set_max_characters(fake, 20)      # the fake itself refuses, in Mastodon's words
    return "Validation failed: Text character limit of 20 exceeded"


def _bsky_too_long(fake: FakePlatformServer) -> str:
    message = ("Invalid app.bsky.feed.post record: Record/text must not be longer than "
               "300 graphemes")
    fake.fault("POST", BSKY_CREATE, status=400,
               body={"error": "InvalidRequest", "message": message})
    return message


PLATFORMS = {
    "x": Platform(
        name="x", account="org_x", create=X_CREATE, api=r"^/2/",
        copies=lambda fake, text: [t["id"] for t in fx.tweets(fake) if t["text"] == text],
        rate_limit=lambda fake, reset: fake.fault("POST", X_CREATE, status=429, headers={
            "x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset)},
            body=_problem(429, "Too Many Requests", "Too Many Requests")),
        server_error=lambda fake, status: fake.fault(
            "POST", X_CREATE, status=status, body=_problem(status, "Server Error", "Broken")),
        too_long=_x_too_long,
        revoke=lambda fake: fx.set_valid_token(fake, "rotated-by-the-owner"),
        restore=lambda fake: fx.set_valid_token(fake, fx.VALID_TOKEN),
        after_5xx={500: S.UNKNOWN, 502: S.UNKNOWN, 503: S.QUEUED},
        after_drop=S.UNKNOWN),
    "mastodon": Platform(
        name="mastodon", account="org_masto", create=MASTO_CREATE, api=r"^/api/",
        copies=lambda fake, text: [s["id"] for s in fm.statuses(fake) if s["text"] == text],
        rate_limit=lambda fake, reset: fake.fault(
            "POST", MASTO_CREATE, status=429, body={"error": "Too many requests"},
            headers=fm.ratelimit_headers(datetime.fromtimestamp(reset, UTC))),
        server_error=lambda fake, status: fake.fault(
            "POST", MASTO_CREATE, status=status,
            body={"error": "Internal server error"} if status == 500
            else f"{status} Bad Gateway".encode()),
        too_long=_masto_too_long,
        revoke=lambda fake: fm.set_token(fake, "rotated-by-the-owner"),
        restore=lambda fake: fm.set_token(fake, fm.TOKEN),
        after_5xx={500: S.QUEUED, 502: S.QUEUED, 503: S.QUEUED},
        after_drop=S.UNKNOWN),
    "bluesky": Platform(
        name="bluesky", account="org_bsky", create=BSKY_CREATE, api=r"^/xrpc/",
        copies=lambda fake, text: [r["uri"] for r in fb.posts(fake)
                                   if r["value"]["text"] == text],
        rate_limit=lambda fake, reset: fb.rate_limit(
            fake, "com.atproto.repo.createRecord", reset_at=reset),
        server_error=lambda fake, status: fb.fail(fake, "com.atproto.repo.createRecord",
                                                  status),
        too_long=_bsky_too_long,
        revoke=lambda fake: fb.set_password(fake, "revoked-and-recreated"),
        restore=lambda fake: fb.set_password(fake, fb.PASSWORD),
        # createRecord's outcome is settled at once by getRecord under the post's own key.
        after_5xx={500: S.QUEUED, 502: S.QUEUED, 503: S.QUEUED},
        after_drop=S.PUBLISHED),
}


# -- the world: fake server, database, campaign, worker -----------------------------------


@dataclass
class World:
    fake: FakePlatformServer
    engine: Engine
    clock: VirtualClock
    worker: Worker
    publishers: Publishers

    def post(self, account: str) -> Post:
        with session(self.engine) as s:
            acc = s.exec(select(Account).where(Account.name == account)).one()
            return s.exec(select(Post).where(Post.account_id == acc.id)).one()

    def account(self, name: str) -> Account:
        with session(self.engine) as s:
            return s.exec(select(Account).where(Account.name == name)).one()

    def creates(self, p: Platform) -> int:
        return len(self.fake.requests_to("POST", p.create))

    def requests(self, p: Platform) -> int:
        rx = re.compile(p.api)
        return sum(1 for r in list(self.fake.requests) if rx.search(r.path))

    def lookups_between_creates(self, p: Platform) -> int:
        """Lookups (GET requests) sent to the platform between its first two creates."""
        rx, create = re.compile(p.api), re.compile(p.create)
        mine = [r for r in list(self.fake.requests) if rx.search(r.path)]
        at = [i for i, r in enumerate(mine) if r.method == "POST" and create.search(r.path)]
        return sum(1 for r in mine[at[0] + 1:at[1]] if r.method == "GET")

    def ticks(self, n: int, *, advance: float = 0.0) -> None:
        for _ in range(n):
            self.clock.advance(advance)
            self.worker.tick()

    def unpause(self, name: str) -> None:
        """What `tminus accounts resume NAME` does."""
        with session(self.engine) as s:
            acc = s.exec(select(Account).where(Account.name == name)).one()
            acc.paused_reason = acc.paused_at = acc.resume_at = None
            s.add(acc)

    def assert_no_secrets(self) -> None:
        with session(self.engine) as s:
            texts = [e.reason for e in s.exec(select(Event)).all()]
            texts += [p.last_error or "" for p in s.exec(select(Post)).all()]
            texts += [a.paused_reason or "" for a in s.exec(select(Account)).all()]
        assert len(texts) > 3
        for text in texts:
            for secret in SECRETS:
                assert secret not in text, f"a credential leaked into {text!r}"


@pytest.fixture
def world(engine: Engine, make_campaign: CampaignFactory, tmp_path: Path) -> Iterator[World]:
    real = datetime.now(UTC).replace(microsecond=0)
    folder = make_campaign(_campaign(deadline=real + timedelta(days=1)))
    plan(engine, folder, now=real - timedelta(hours=1))
    approve(engine, campaign="faults", post_ids=[], by="ana", now=real - timedelta(hours=1))
    with FakePlatformServer() as fake:
        settings = Settings(env=_env(fake.url), request_timeout=0.5,
                            dryrun_outbox=tmp_path / "outbox.jsonl")
        clock = VirtualClock(real)             # the posts are due now
        publishers = Publishers(engine, settings)
        worker = Worker(engine, settings, clock, publishers, owner="faults-test")
        w = World(fake, engine, clock, worker, publishers)
        yield w
        close = getattr(publishers.for_account(w.account("org_bsky")), "close", None)
        if close is not None:
            close()


def _published_once(w: World, p: Platform) -> None:
    post = w.post(p.account)
    assert post.state == S.PUBLISHED, post.last_error
    assert p.copies(w.fake, TEXT) == [post.remote_id]


def _others_published(w: World, p: Platform) -> None:
    """A fault on one platform holds up none of the others."""
    for other in PLATFORMS.values():
        if other is not p:
            _published_once(w, other)


platforms = pytest.mark.parametrize("name", list(PLATFORMS))


# -- the faults ----------------------------------------------------------------------------


def test_all_three_publish_without_faults(world: World) -> None:
    world.ticks(3)
    for p in PLATFORMS.values():
        _published_once(world, p)
        assert world.creates(p) == 1
    world.assert_no_secrets()


@platforms
def test_429_waits_for_the_reset(world: World, name: str) -> None:
    p = PLATFORMS[name]
    p.rate_limit(world.fake, int(time.time()) + 3600)
    world.ticks(1)
    post, acc = world.post(p.account), world.account(p.account)
    assert post.state == S.QUEUED and "429" in (post.last_error or "")
    assert acc.resume_at is not None
    assert acc.resume_at > world.clock.now() + timedelta(minutes=55)
    assert post.next_attempt_at >= acc.resume_at
    world.ticks(3)
    world.ticks(5, advance=600)               # 50 minutes on, still before the reset
    assert world.clock.now() < acc.resume_at
    assert world.creates(p) == 1
    assert world.post(p.account).state == S.QUEUED
    _others_published(world, p)
    world.clock.set(max(acc.resume_at, post.next_attempt_at))
    world.ticks(2)
    _published_once(world, p)
    assert world.creates(p) == 2
    world.assert_no_secrets()


@platforms
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_follows_the_adapters_rule(world: World, name: str, status: int) -> None:
    p = PLATFORMS[name]
    p.server_error(world.fake, status)
    world.ticks(1)
    post = world.post(p.account)
    assert post.state == p.after_5xx[status], post.last_error
    assert str(status) in (post.last_error or "")
    world.ticks(3)                            # the same instant: nothing is due again
    assert world.creates(p) == 1
    if post.state == S.UNKNOWN:
        world.clock.advance(RECONCILE_DELAY)
        world.worker.housekeeping()           # find(): the 5xx made nothing
        assert world.post(p.account).state == S.QUEUED
    else:
        assert post.next_attempt_at > world.clock.now()
        world.clock.set(post.next_attempt_at)
    world.ticks(3)
    _published_once(world, p)
    assert world.creates(p) == 2
    if p.after_5xx[status] == S.UNKNOWN:      # never retried blindly: looked up in between
        assert world.lookups_between_creates(p) >= 1
    _others_published(world, p)
    world.assert_no_secrets()


@platforms
def test_connection_dropped_after_the_platform_acted(world: World, name: str) -> None:
    p = PLATFORMS[name]
    world.fake.fault("POST", p.create, drop_after=True)
    world.ticks(1)
    assert world.post(p.account).state == p.after_drop
    world.ticks(3)
    world.clock.advance(RECONCILE_DELAY)
    world.worker.housekeeping()               # find() sees the copy the platform made
    world.ticks(3, advance=120)
    _published_once(world, p)                 # exactly one copy, and it is the receipt's
    assert world.creates(p) == 1
    _others_published(world, p)
    world.assert_no_secrets()


@platforms
def test_401_pauses_the_account_until_resumed(world: World, name: str) -> None:
    p = PLATFORMS[name]
    p.revoke(world.fake)
    world.ticks(2)
    post, acc = world.post(p.account), world.account(p.account)
    assert acc.paused_reason and "401" in acc.paused_reason
    assert post.state == S.QUEUED and post.attempt == 0    # the post itself is fine
    seen = world.requests(p)
    world.ticks(4, advance=900)               # an hour: the paused account sends nothing
    assert world.requests(p) == seen
    assert world.post(p.account).state == S.QUEUED
    _others_published(world, p)
    p.restore(world.fake)
    world.unpause(p.account)
    world.ticks(2)
    _published_once(world, p)
    assert world.creates(p) <= 2
    world.assert_no_secrets()


@platforms
def test_text_too_long_fails_with_the_platforms_words(world: World, name: str) -> None:
    p = PLATFORMS[name]
    words = p.too_long(world.fake)
    world.ticks(3)
    post = world.post(p.account)
    assert post.state == S.FAILED
    assert words in (post.last_error or "")
    world.ticks(3, advance=900)
    assert world.creates(p) == 1
    assert p.copies(world.fake, TEXT) == []
    _others_published(world, p)
    world.assert_no_secrets()


def test_x_duplicate_of_a_tweet_already_out_is_published(world: World) -> None:
    """An earlier attempt's tweet is out (its answer was lost and the lookup lagged):
    X refuses the retry as duplicate content, and the adapter finds the first one."""
    p = PLATFORMS["x"]
    tweet = fx.add_tweet(world.fake, TEXT)
    world.ticks(3)
    post = world.post(p.account)
    assert post.state == S.PUBLISHED, post.last_error
    assert post.remote_id == tweet["id"]
    assert p.copies(world.fake, TEXT) == [tweet["id"]]
    assert world.creates(p) == 1
    world.assert_no_secrets()


def test_a_missing_credential_holds_up_only_its_own_account(world: World,
                                                            tmp_path: Path) -> None:
    """An account whose credential is missing from the environment cannot post, but the
    tick goes on: the other accounts' posts go out, and its own post is not left in
    `sending` (where it would be reaped, looked up and sent to review)."""
    env = {k: v for k, v in world.worker.settings.env.items()
           if k != "TMINUS_ORG_BSKY_APP_PASSWORD"}
    settings = Settings(env=env, request_timeout=0.5, dryrun_outbox=tmp_path / "out.jsonl")
    world.worker = Worker(world.engine, settings, world.clock, Publishers(world.engine, settings),
                          owner="faults-test")
    world.worker.tick()
    _others_published(world, PLATFORMS["bluesky"])
    post, acc = world.post("org_bsky"), world.account("org_bsky")
    assert post.state == S.QUEUED
    assert acc.paused_reason and "APP_PASSWORD" in acc.paused_reason
    world.assert_no_secrets()
