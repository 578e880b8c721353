"""A small world for platform faults seen from the scheduler: a real `Worker` whose
`Publishers` build each adapter from `Settings.env` credentials pointing at one fake
platform server, a campaign with one post per account (planned and approved), and a
virtual clock for the scheduler.

Each platform contributes a `Platform`: its account, create endpoint, and how to make
it fail in its own words (429 with its reset headers, a 5xx as it or its gateway
answers, text too long, credentials revoked). `Spy` wraps each adapter built, so a
test sees what `publish()` raised as well as the state the scheduler gave the post.

The adapters tell time by the real clock, so the campaign is built around the real
present (the virtual clock starts at the post's due time, a moment ago) and reset
headers are set relative to real time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from jobs.errors import PublishError
from jobs.outgoing import Engagement, Identity, Outgoing, Receipt
from scheduler import tables
from scheduler.clock import VirtualClock
from scheduler.daemon import Worker
from scheduler.db import make_engine, session
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
REQUEST_TIMEOUT = 2.0  # generous: the suite runs on several workers; a hang costs this much

# Credential values: none of them may ever appear in a post's error or an event.
X_SECRETS = {"API_KEY": "xkey-SECRET-0001", "API_SECRET": "xsecret-SECRET-0002",
             "ACCESS_TOKEN": fx.VALID_TOKEN, "ACCESS_SECRET": "xaccess-SECRET-0003"}
SECRETS = [*X_SECRETS.values(), fm.TOKEN, fb.PASSWORD]


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
    error_body: Callable[[int], dict[str, Any]]       # fault() kwargs of its own 5xx/4xx
    too_long: Callable[[FakePlatformServer], str]     # injects; returns the platform's words
    revoke: Callable[[FakePlatformServer], None]      # credentials refused from now on
    restore: Callable[[FakePlatformServer], None]


X_CREATE = r"^/2/tweets$"
MASTO_CREATE = r"^/api/v1/statuses$"
BSKY_CREATE = r"^/xrpc/com\.atproto\.repo\.createRecord$"


# X's problem documents: title and detail by status
_X_WORDS = {503: ("Service Unavailable", "Service Unavailable"),
            403: ("Forbidden", "You are not permitted to perform this action."),
            400: ("Invalid Request", "One or more parameters to your request was invalid.")}


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


def _bsky_revoke(fake: FakePlatformServer) -> None:
    fb.revoke_sessions(fake)
    fb.set_password(fake, "revoked-and-recreated")


def _masto_body(status: int) -> dict[str, Any]:
    if status == 500:
        return {"body": {"error": "Internal server error"}}
    if status >= 500:
        return {"body": f"{status} Bad Gateway".encode()}
    return {"body": {"error": "This action is not allowed" if status == 403
                     else "Validation failed: the request is malformed"}}


def _bsky_body(status: int) -> dict[str, Any]:
    if status == 500:
        return {"body": {"error": "InternalServerError", "message": "Internal Server Error"}}
    if status >= 500:
        return {"body": f"{status} upstream unavailable".encode()}
    return {"body": {"error": "Forbidden" if status == 403 else "InvalidRequest",
                     "message": "This action is not allowed"}}


PLATFORMS = {
    "x": Platform(
        name="x", account="org_x", create=X_CREATE, api=r"^/2/",
        copies=lambda fake, text: [t["id"] for t in fx.tweets(fake) if t["text"] == text],
        rate_limit=lambda fake, reset: fake.fault("POST", X_CREATE, status=429, headers={
            "x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset)},
            body=_problem(429, "Too Many Requests", "Too Many Requests")),
        error_body=lambda status: {"body": _problem(status, *_X_WORDS.get(
            status, ("Server Error", "Broken")))},
        too_long=_x_too_long,
        revoke=lambda fake: fx.set_valid_token(fake, "rotated-by-the-owner"),
        restore=lambda fake: fx.set_valid_token(fake, fx.VALID_TOKEN)),
    "mastodon": Platform(
        name="mastodon", account="org_masto", create=MASTO_CREATE, api=r"^/api/",
        copies=lambda fake, text: [s["id"] for s in fm.statuses(fake) if s["text"] == text],
        rate_limit=lambda fake, reset: fake.fault(
            "POST", MASTO_CREATE, status=429, body={"error": "Too many requests"},
            headers=fm.ratelimit_headers(datetime.fromtimestamp(reset, UTC))),
        error_body=_masto_body,
        too_long=_masto_too_long,
        revoke=lambda fake: fm.set_token(fake, "rotated-by-the-owner"),
        restore=lambda fake: fm.set_token(fake, fm.TOKEN)),
    "bluesky": Platform(
        name="bluesky", account="org_bsky", create=BSKY_CREATE, api=r"^/xrpc/",
        copies=lambda fake, text: [r["uri"] for r in fb.posts(fake)
                                   if r["value"]["text"] == text],
        rate_limit=lambda fake, reset: fb.rate_limit(
            fake, "com.atproto.repo.createRecord", reset_at=reset),
        error_body=_bsky_body,
        too_long=_bsky_too_long,
        revoke=_bsky_revoke,
        restore=lambda fake: fb.set_password(fake, fb.PASSWORD)),
}

_ACCOUNTS = {
    "x": 'platform = "x"\ncredentials = "ORG_X"\ntier = "basic"',
    "mastodon": 'platform = "mastodon"\ncredentials = "ORG_MASTO"',
    "bluesky": 'platform = "bluesky"\ncredentials = "ORG_BSKY"',
}


def env(url: str) -> dict[str, str]:
    out = {f"TMINUS_ORG_X_{k}": v for k, v in X_SECRETS.items()}
    out.update({
        "TMINUS_ORG_X_API_BASE": url,
        "TMINUS_ORG_MASTO_INSTANCE": url, "TMINUS_ORG_MASTO_ACCESS_TOKEN": fm.TOKEN,
        "TMINUS_ORG_BSKY_HANDLE": fb.HANDLE, "TMINUS_ORG_BSKY_APP_PASSWORD": fb.PASSWORD,
        "TMINUS_ORG_BSKY_PDS": url,
    })
    return out


def campaign(deadline: datetime, platforms: list[str]) -> str:
    accounts = "".join(f"\n[accounts.{PLATFORMS[p].account}]\n{_ACCOUNTS[p]}\n"
                       for p in platforms)
    names = ", ".join(f'"{PLATFORMS[p].account}"' for p in platforms)
    return f"""
[campaign]
slug = "faults"
title = "Faults"
deadline = {deadline.isoformat()}
timezone = "UTC"
hashtags = ["#HereToStay"]
{accounts}
[[posts]]
key = "one-day"
text = "{TEXT}"
accounts = [{names}]
schedule = {{ at = "T-1d" }}
"""


class Spy:
    """An adapter, with the last exception its `publish()` raised kept in `raised`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.platform = inner.platform
        self.raised: list[PublishError | None] = []

    def publish(self, post: Outgoing) -> Receipt:
        try:
            receipt: Receipt = self.inner.publish(post)
        except PublishError as e:
            self.raised.append(e)
            raise
        self.raised.append(None)
        return receipt

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        found: Receipt | None = self.inner.find(post, since)
        return found

    def check(self) -> Identity:
        identity: Identity = self.inner.check()
        return identity

    def engagement(self, remote_ids: Sequence[str]) -> dict[str, Engagement]:
        counts: dict[str, Engagement] = self.inner.engagement(remote_ids)
        return counts

    def max_characters(self) -> int | None:
        limit: int | None = self.inner.max_characters()
        return limit

    def close(self) -> None:
        self.inner.close()


class SpyingPublishers(Publishers):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spies: dict[str, Spy] = {}

    def build(self, account: Account) -> Any:
        spy = Spy(super().build(account))
        self.spies[account.name] = spy
        return spy


@dataclass
class World:
    fake: FakePlatformServer
    engine: Engine
    clock: VirtualClock
    worker: Worker
    publishers: SpyingPublishers

    def post(self, account: str) -> Post:
        with session(self.engine) as s:
            acc = s.exec(select(Account).where(Account.name == account)).one()
            return s.exec(select(Post).where(Post.account_id == acc.id)).one()

    def account(self, name: str) -> Account:
        with session(self.engine) as s:
            return s.exec(select(Account).where(Account.name == name)).one()

    def raised(self, p: Platform) -> list[PublishError | None]:
        return self.publishers.spies[p.account].raised

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

    def published_once(self, p: Platform) -> None:
        post = self.post(p.account)
        assert post.state == S.PUBLISHED, post.last_error
        assert p.copies(self.fake, TEXT) == [post.remote_id]

    def others_published(self, p: Platform, platforms: list[str]) -> None:
        """A fault on one platform holds up none of the others."""
        for other in platforms:
            if other != p.name:
                self.published_once(PLATFORMS[other])

    def assert_no_secrets(self) -> None:
        with session(self.engine) as s:
            texts = [e.reason for e in s.exec(select(Event)).all()]
            texts += [p.last_error or "" for p in s.exec(select(Post)).all()]
            texts += [a.paused_reason or "" for a in s.exec(select(Account)).all()]
        assert len(texts) >= 3
        for text in texts:
            for secret in SECRETS:
                assert secret not in text, f"a credential leaked into {text!r}"


@contextmanager
def world(make_campaign: CampaignFactory, tmp_path: Path,
          platforms: list[str], *, env_without: str | None = None) -> Iterator[World]:
    """A world with one account on each of `platforms`, its post due now."""
    engine = make_engine(f"sqlite:///{tmp_path}/faults.db")
    tables.metadata.create_all(engine)     # a throw-away database, as rehearsal makes
    real = datetime.now(UTC).replace(microsecond=0)
    folder = make_campaign(campaign(real + timedelta(days=1), platforms))
    plan(engine, folder, now=real - timedelta(hours=1))
    approve(engine, campaign="faults", post_ids=[], by="ana", now=real - timedelta(hours=1))
    try:
        with FakePlatformServer() as fake:
            variables = {k: v for k, v in env(fake.url).items() if k != env_without}
            settings = Settings(env=variables, request_timeout=REQUEST_TIMEOUT,
                                dryrun_outbox=tmp_path / "outbox.jsonl")
            clock = VirtualClock(real)             # the posts are due now
            publishers = SpyingPublishers(engine, settings)
            worker = Worker(engine, settings, clock, publishers, owner="faults-test")
            try:
                yield World(fake, engine, clock, worker, publishers)
            finally:
                publishers.close()
    finally:
        engine.dispose()
