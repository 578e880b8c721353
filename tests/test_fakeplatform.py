"""The fake platforms themselves: faults before and after the platform acts, hangs,
resets, latency with many requests at once, Mastodon's one-hour Idempotency-Key, the
engagement endpoints (through the real SDKs), the platforms' own record of what was
posted, and the same server run as a process of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import tweepy
from atproto import Client
from mastodon import Mastodon

from jobs.adapters.mastodon import MastodonPublisher
from jobs.adapters.x import XPublisher
from jobs.outgoing import Outgoing
from tests.conftest import build_adapter, utcnow
from tests.fakeplatform import FakePlatformServer, accounts, engagement, proxy_page
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx
from tests.fakeplatform.remote import fake_process

TIMEOUT = 0.3
STATUSES = r"^/api/v1/statuses$"


@pytest.fixture
def fake() -> Iterator[FakePlatformServer]:
    with FakePlatformServer() as server:
        yield server


def post_status(fake: FakePlatformServer, text: str = "hello", *, key: str | None = None,
                token: str = fm.TOKEN, timeout: float = TIMEOUT) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    return httpx.post(f"{fake.url}/api/v1/statuses", data={"status": text}, headers=headers,
                      timeout=timeout)


def outgoing(text: str, platform: str, key: str = "k1") -> Outgoing:
    return Outgoing(post_id=1, account="a", platform=platform, text=text,
                    idempotency_key=key, due_at=utcnow())


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "status", "exists"), [
    ({"status": 503}, 503, False),
    ({"status_after": 503}, 503, True),
    ({"status": 502, **proxy_page(502)}, 502, False),
    ({"status_after": 504, **proxy_page(504)}, 504, True),
])
def test_an_error_answered_before_or_after_the_platform_acted(
        fake: FakePlatformServer, fault: dict[str, object], status: int, exists: bool) -> None:
    fake.fault("POST", STATUSES, **fault)
    answer = post_status(fake)
    assert answer.status_code == status
    assert len(fm.statuses(fake)) == (1 if exists else 0)
    if "body" in fault:
        assert answer.headers["content-type"] == "text/html"
        assert f"<h1>{status} " in answer.text
    assert post_status(fake).status_code == 200     # consumed once


@pytest.mark.parametrize(("fault", "error", "exists"), [
    ({"hang": True}, httpx.ReadTimeout, False),
    ({"hang_after": True}, httpx.ReadTimeout, True),
    ({"drop": True}, httpx.RemoteProtocolError, False),
    ({"drop_after": True}, httpx.RemoteProtocolError, True),
    ({"reset": True}, httpx.ReadError, False),
    ({"reset_after": True}, httpx.ReadError, True),
])
def test_no_answer_before_or_after_the_platform_acted(
        fake: FakePlatformServer, fault: dict[str, object], error: type[Exception],
        exists: bool) -> None:
    fake.fault("POST", STATUSES, **fault)
    with pytest.raises(error) as info:
        post_status(fake)
    if "reset" in str(fault):
        assert "reset" in str(info.value).lower()
    assert len(fm.statuses(fake)) == (1 if exists else 0)


def test_a_hanging_request_is_let_go_when_the_server_stops() -> None:
    server = FakePlatformServer()
    server.start()
    server.fault("POST", STATUSES, hang=True)
    done = threading.Event()

    def call() -> None:
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"{server.url}/api/v1/statuses", data={"status": "x"}, timeout=30,
                       headers={"Authorization": f"Bearer {fm.TOKEN}"})
        done.set()

    caller = threading.Thread(target=call)
    caller.start()
    while server.in_flight == 0:
        done.wait(0.01)
    server.stop()
    caller.join(10)
    assert done.is_set()


# -- Mastodon's Idempotency-Key, on the fake's clock -------------------------------------------


def test_an_idempotency_key_is_remembered_for_an_hour_then_forgotten(
        fake: FakePlatformServer) -> None:
    first = post_status(fake, "T-1 day", key="key-1").json()
    fake.clock.advance(59 * 60)
    assert post_status(fake, "T-1 day", key="key-1").json()["id"] == first["id"]
    assert len(fm.statuses(fake)) == 1
    fake.clock.advance(2 * 60)                      # 61 minutes after the first
    second = post_status(fake, "T-1 day", key="key-1").json()
    assert second["id"] != first["id"]
    assert [s["text"] for s in fm.statuses(fake)] == ["T-1 day", "T-1 day"]
    assert fm.statuses(fake)[1]["created_at"] - fm.statuses(fake)[0]["created_at"] >= \
        timedelta(minutes=61)


# -- latency and many requests at once -----------------------------------------------------------


def test_latency_comes_after_the_platform_acted() -> None:
    with FakePlatformServer(latency=5.0) as server:
        with pytest.raises(httpx.ReadTimeout):       # the answer is later than 0.3 s
            post_status(server, "slow network")
        assert [p.text for p in server.posts()] == ["slow network"]


def test_with_latency_every_request_waits_at_once() -> None:
    """Sixty accounts post at the same moment to a fake whose answers take long: all
    sixty are in flight together (the fake serves each on its own thread), and each
    is answered once the wait is over (here: when the server stops)."""
    n = 60
    server = FakePlatformServer(latency=60.0)
    server.start()
    accounts.add(server, "mastodon", n)
    answers: list[int | str] = []
    with httpx.Client(limits=httpx.Limits(max_connections=n), timeout=60) as client:

        def call(i: int) -> None:
            token = accounts.credentials("mastodon", i, server.url)["ACCESS_TOKEN"]
            try:
                answers.append(client.post(f"{server.url}/api/v1/statuses",
                                           data={"status": f"post {i}"},
                                           headers={"Authorization": f"Bearer {token}"}
                                           ).status_code)
            except httpx.HTTPError as e:
                answers.append(repr(e))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(1, n + 1)]
        for t in threads:
            t.start()
        waited = threading.Event()
        for _ in range(3000):                    # at most 30 s for the clients to connect
            if server.in_flight == n:
                break
            waited.wait(0.01)
        in_flight = server.in_flight
        server.stop()
        for t in threads:
            t.join(30)
    assert in_flight == n and server.peak_in_flight == n
    assert answers == [200] * n
    assert {p.account for p in server.posts(platform="mastodon")} == {
        accounts.username(i) for i in range(1, n + 1)}


# -- engagement, through the SDKs issue 16 will use ----------------------------------------------


def test_engagement_counts_through_the_real_sdks(fake: FakePlatformServer) -> None:
    tweet = fx.add_tweet(fake, "counted")
    engagement.set_counts(fake, "x", tweet["id"], likes=12, reposts=3, replies=2)
    client = tweepy.Client(consumer_key="k", consumer_secret="s", access_token=fx.VALID_TOKEN,
                           access_token_secret="a", return_type=dict)
    client.session.mount("https://", XPublisher(
        api_key="k", api_secret="s", access_token=fx.VALID_TOKEN, access_secret="a",
        api_base=fake.url, now=utcnow)._transport)
    answer = client.get_tweets([tweet["id"]], tweet_fields=["public_metrics"], user_auth=True)
    metrics = answer["data"][0]["public_metrics"]
    assert (metrics["like_count"], metrics["retweet_count"], metrics["reply_count"]) == (12, 3, 2)

    status = fm.add_status(fake, "counted too")
    engagement.set_counts(fake, "mastodon", status["id"], likes=7, reposts=1, replies=4)
    api = Mastodon(access_token=fm.TOKEN, api_base_url=fake.url, version_check_mode="none")
    seen = api.status(status["id"])
    assert (seen["favourites_count"], seen["reblogs_count"], seen["replies_count"]) == (7, 1, 4)

    bsky = Client(base_url=fake.url)
    bsky.login(fb.HANDLE, fb.PASSWORD)
    created = bsky.send_post("counted three")
    engagement.set_counts(fake, "bluesky", created.uri, likes=5, reposts=6, replies=1)
    [view] = bsky.get_posts([created.uri, f"at://{fb.DID}/app.bsky.feed.post/3zzzzzzzzzzzz"]).posts
    assert (view.like_count, view.repost_count, view.reply_count) == (5, 6, 1)
    assert view.author.handle == fb.HANDLE


# -- the platforms' record, per account ---------------------------------------------------------


def test_the_record_of_what_was_posted_per_account(fake: FakePlatformServer) -> None:
    accounts.add(fake, "x", 2)
    for i in (1, 2):
        pub = build_adapter(XPublisher, "a", accounts.credentials("x", i, fake.url),
                            timeout=TIMEOUT)
        pub.publish(outgoing(f"from account {i}", "x"))
    masto = build_adapter(MastodonPublisher, "m", {"INSTANCE": fake.url,
                                                   "ACCESS_TOKEN": fm.TOKEN}, timeout=TIMEOUT)
    receipt = masto.publish(outgoing("on mastodon", "mastodon", key="masto-key"))
    assert [(p.account, p.text) for p in fake.posts(platform="x")] == [
        ("acct0001", "from account 1"), ("acct0002", "from account 2")]
    [mine] = fake.posts(account=fm.USERNAME)
    assert (mine.platform, mine.remote_id, mine.key) == ("mastodon", receipt.remote_id,
                                                         "masto-key")
    assert len(fake.posts()) == 3


# -- a process of its own ------------------------------------------------------------------------


def test_the_fake_as_a_process_driven_over_http() -> None:
    with fake_process(accounts=2) as fake:
        creds = accounts.credentials("mastodon", 2, fake.url)
        pub = build_adapter(MastodonPublisher, "m", creds, timeout=TIMEOUT)
        fake.fault("POST", STATUSES, status_after=502, proxy_page=True)
        with pytest.raises(Exception, match="502"):
            pub.publish(outgoing("T-3 days", "mastodon", key="remote-1"))
        [posted] = fake.posts(platform="mastodon")         # the 502 came after it was made
        assert (posted.account, posted.text, posted.key) == ("acct0002", "T-3 days", "remote-1")
        fake.set_counts("mastodon", posted.remote_id, likes=9)
        status = httpx.get(f"{fake.url}/api/v1/statuses/{posted.remote_id}",
                           headers={"Authorization": f"Bearer {creds['ACCESS_TOKEN']}"}).json()
        assert status["favourites_count"] == 9
        fake.advance_clock(3601)                           # the key is forgotten
        pub.publish(outgoing("T-3 days", "mastodon", key="remote-1"))
        assert len(fake.posts(platform="mastodon")) == 2
        assert [r["idempotency_key"] for r in fake.requests("POST", STATUSES)] == [
            "remote-1", "remote-1"]
