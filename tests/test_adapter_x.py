"""XPublisher against the fake X server, through the real tweepy and requests."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from jobs.adapters.x import XPublisher, _comparable, _exact, _not_sent, _unescape, _XTransport
from jobs.errors import AuthError, PermanentError, TransientError, UnknownOutcome
from jobs.outgoing import Media, Outgoing, Receipt
from tests.conftest import build_adapter
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import x as fx

# generous: on a busy machine (the suite runs on several workers) a fake's answer can
# take a while; a fault meant to outlast it waits twice as long
TIMEOUT = 2.0
SECRETS = ("consumer-key-1", "consumer-secret-2", "access-secret-4")
TWEETS = r"^/2/tweets$"
TIMELINE = r"^/2/users/\d+/tweets$"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)   # the adapter's clock in the 429 tests


@pytest.fixture
def fake() -> Iterator[FakePlatformServer]:
    with FakePlatformServer() as server:
        yield server


def creds(fake: FakePlatformServer, token: str = fx.VALID_TOKEN) -> dict[str, str]:
    return {"API_KEY": SECRETS[0], "API_SECRET": SECRETS[1], "ACCESS_TOKEN": token,
            "ACCESS_SECRET": SECRETS[2], "API_BASE": fake.url}


@pytest.fixture
def pub(fake: FakePlatformServer) -> XPublisher:
    return build_adapter(XPublisher, "main", creds(fake), timeout=TIMEOUT)


def fixed_clock_pub(fake: FakePlatformServer) -> XPublisher:
    c = creds(fake)
    return XPublisher(api_key=c["API_KEY"], api_secret=c["API_SECRET"],
                      access_token=c["ACCESS_TOKEN"], access_secret=c["ACCESS_SECRET"],
                      api_base=fake.url, timeout=TIMEOUT, now=lambda: NOW)  # the tests' clock


def out(text: str, **kw: Any) -> Outgoing:
    kw.setdefault("due_at", datetime.now(UTC) - timedelta(minutes=1))
    return Outgoing(post_id=kw.pop("post_id", 1), account="main", platform="x", text=text,
                    idempotency_key=kw.pop("key", "k-1"), **kw)


def count(fake: FakePlatformServer, method: str, pattern: str) -> int:
    return len(fake.requests_to(method, pattern))


def since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


def assert_clean(message: str) -> None:
    for secret in SECRETS:
        assert secret not in message


# -- success ---------------------------------------------------------------------------

def test_publish_text(fake: FakePlatformServer, pub: XPublisher) -> None:
    receipt = pub.publish(out("T-minus 10 days"))
    [tweet] = fx.tweets(fake)
    assert tweet["text"] == "T-minus 10 days"
    assert receipt.remote_id == tweet["id"]
    assert receipt.url == f"https://x.com/i/web/status/{tweet['id']}"  # username not known yet
    [req] = fake.requests_to("POST", TWEETS)
    assert req.json() == {"text": "T-minus 10 days"}
    auth = req.header("Authorization") or ""
    assert auth.startswith("OAuth ") and f'oauth_token="{fx.VALID_TOKEN}"' in auth
    assert len(fake.requests) == 1


def test_receipt_url_has_username_once_known(fake: FakePlatformServer, pub: XPublisher) -> None:
    pub.check()
    receipt = pub.publish(out("hello"))
    assert receipt.url == f"https://x.com/{fx.USERNAME}/status/{receipt.remote_id}"


def test_thread_of_three(fake: FakePlatformServer, pub: XPublisher) -> None:
    first = pub.publish(out("1/3 the deadline is near", post_id=1))
    second = pub.publish(out("2/3 write to your MP", post_id=2, reply_to=first,
                             thread_root=first))
    third = pub.publish(out("3/3 details at example.org", post_id=3, reply_to=second,
                            thread_root=first))
    tweets = fx.tweets(fake)
    assert [t["id"] for t in tweets] == [first.remote_id, second.remote_id, third.remote_id]
    assert [t["in_reply_to"] for t in tweets] == [None, first.remote_id, second.remote_id]
    assert count(fake, "POST", TWEETS) == 3


def test_media_with_alt_text(fake: FakePlatformServer, pub: XPublisher, tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    a.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    b.write_bytes(b"\xff\xd8\xff fake jpeg")
    pub.publish(out("with pictures", media=(Media(str(a), "a poster"), Media(str(b), "a map"))))
    [tweet] = fx.tweets(fake)
    stored = fx.media(fake)
    assert [stored[i]["alt_text"] for i in tweet["media_ids"]] == ["a poster", "a map"]
    assert [stored[i]["content_type"] for i in tweet["media_ids"]] == ["image/png", "image/jpeg"]
    assert [stored[i]["size"] for i in tweet["media_ids"]] == [12, 13]
    assert {stored[i]["category"] for i in tweet["media_ids"]} == {"tweet_image"}
    assert count(fake, "POST", r"^/2/media/upload$") == 2
    assert count(fake, "POST", r"^/2/media/metadata$") == 2
    for req in fake.requests:
        assert (req.header("Authorization") or "").startswith("OAuth ")


def test_more_than_four_images_is_permanent(fake: FakePlatformServer, pub: XPublisher,
                                            tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\npng")
    with pytest.raises(PermanentError):
        pub.publish(out("too many", media=tuple(Media(str(img), "x") for _ in range(5))))
    assert fake.requests == []


def test_unreadable_media_is_permanent(fake: FakePlatformServer, pub: XPublisher,
                                       tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="missing.png"):
        pub.publish(out("gone", media=(Media(str(tmp_path / "missing.png"), "x"),)))
    assert fake.requests == []


def test_language_visibility_and_cw_are_not_sent(fake: FakePlatformServer,
                                                 pub: XPublisher) -> None:
    pub.publish(out("bonjour", language="fr", visibility="unlisted", content_warning="cw"))
    [req] = fake.requests_to("POST", TWEETS)
    assert req.json() == {"text": "bonjour"}


# -- check / find -----------------------------------------------------------------------

def test_check(fake: FakePlatformServer, pub: XPublisher) -> None:
    identity = pub.check()
    assert (identity.platform, identity.handle, identity.remote_id, identity.display_name) == \
        ("x", f"@{fx.USERNAME}", fx.USER_ID, fx.NAME)
    assert count(fake, "GET", r"^/2/users/me$") == 1


def test_check_with_a_wrong_token_is_auth_error(fake: FakePlatformServer) -> None:
    pub = build_adapter(XPublisher, "main", creds(fake, token="revoked"), timeout=TIMEOUT)
    with pytest.raises(AuthError, match="401") as info:
        pub.check()
    assert_clean(info.value.message)
    assert "revoked" not in info.value.message


def test_check_slow_answer_is_transient(fake: FakePlatformServer, pub: XPublisher) -> None:
    fake.fault("GET", r"^/2/users/me$", delay=TIMEOUT * 2)
    with pytest.raises(TransientError):
        pub.check()
    assert count(fake, "GET", r"^/2/users/me$") == 1


def test_find_found(fake: FakePlatformServer, pub: XPublisher) -> None:
    post = out("T-minus 3 days")
    receipt = pub.publish(post)
    found = pub.find(post, since())
    assert found is not None and found.remote_id == receipt.remote_id
    assert found.url == f"https://x.com/{fx.USERNAME}/status/{receipt.remote_id}"
    [req] = fake.requests_to("GET", TIMELINE)
    assert req.query["start_time"][0].endswith("Z")
    assert "exclude" not in req.query   # replies (threads) must be visible


def test_find_absent(fake: FakePlatformServer, pub: XPublisher) -> None:
    pub.publish(out("another post"))
    assert pub.find(out("T-minus 3 days"), since()) is None
    assert count(fake, "GET", TIMELINE) == 1


def test_find_ignores_tweets_before_since(fake: FakePlatformServer, pub: XPublisher) -> None:
    fx.add_tweet(fake, "same words", created_at=datetime.now(UTC) - timedelta(days=2))
    assert pub.find(out("same words"), since()) is None


def test_find_sees_through_tco_media_links_and_escaping(fake: FakePlatformServer,
                                                       pub: XPublisher, tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\npng")
    post = out("Tom & Jerry <3   read https://example.org/a?b=c and example.com/x",
               media=(Media(str(img), "poster"),))
    receipt = pub.publish(post)
    shown = pub._client.get_users_tweets(fx.USER_ID, user_auth=True)["data"][0]["text"]
    assert "t.co" in shown and "&amp;" in shown   # the fake does rewrite like X
    found = pub.find(post, since())
    assert found is not None and found.remote_id == receipt.remote_id


def test_find_tells_apart_posts_that_differ_only_in_a_link_path(
        fake: FakePlatformServer, pub: XPublisher) -> None:
    a = out("Sign now: https://example.org/petition/water #Vote")
    b = out("Sign now: https://example.org/petition/air #Vote")
    bare = out("Sign now: example.org/petition/soil #Vote")
    got_a = pub.publish(a)
    assert pub.find(b, since()) is None            # b never went out: absent, not a's
    got_b = pub.publish(b)
    found_a, found_b = pub.find(a, since()), pub.find(b, since())
    assert found_a is not None and found_a.remote_id == got_a.remote_id
    assert found_b is not None and found_b.remote_id == got_b.remote_id
    assert pub.find(bare, since()) is None
    got_bare = pub.publish(bare)                   # X gives a bare domain http://
    found = pub.find(bare, since())
    assert found is not None and found.remote_id == got_bare.remote_id
    [req, *_] = fake.requests_to("GET", TIMELINE)
    assert "entities" in req.query["tweet.fields"][0]


def test_find_cannot_tell_a_tweet_without_expanded_links(fake: FakePlatformServer,
                                                         pub: XPublisher) -> None:
    # the timeline shows a tweet that matches with links masked, but no entities
    fake.fault("GET", TIMELINE, status=200, body={
        "data": [{"id": "77", "text": "Sign now: https://t.co/abc #Vote",
                  "created_at": "2030-01-01T00:00:00.000Z"}],
        "meta": {"result_count": 1}})
    with pytest.raises(UnknownOutcome, match="77 may be this post"):
        pub.find(out("Sign now: https://example.org/petition/air #Vote"), since())
    # one that differs in words is simply not the post
    fake.fault("GET", TIMELINE, status=200, body={
        "data": [{"id": "78", "text": "Other words: https://t.co/abc"}],
        "meta": {"result_count": 1}})
    assert pub.find(out("Sign now: https://example.org/petition/air #Vote"), since()) is None


def test_find_thread_reply_must_name_the_parent(fake: FakePlatformServer,
                                                pub: XPublisher) -> None:
    first = pub.publish(out("root"))
    pub.publish(out("child", reply_to=first))
    elsewhere = Receipt(remote_id="1")
    found = pub.find(out("child", reply_to=first), since())
    assert found is not None
    assert pub.find(out("child", reply_to=elsewhere), since()) is None


def test_find_pages_through_the_timeline(fake: FakePlatformServer, pub: XPublisher) -> None:
    target = fx.add_tweet(fake, "the one", created_at=datetime.now(UTC) - timedelta(minutes=2))
    for i in range(120):
        fx.add_tweet(fake, f"filler {i}", created_at=datetime.now(UTC) - timedelta(minutes=1))
    found = pub.find(out("the one"), since())
    assert found is not None and found.remote_id == target["id"]
    assert count(fake, "GET", TIMELINE) == 2


def test_find_failure_is_unknown(fake: FakePlatformServer, pub: XPublisher) -> None:
    fake.fault("GET", TIMELINE, status=503)
    with pytest.raises(UnknownOutcome, match="503"):
        pub.find(out("x"), since())
    assert count(fake, "GET", TIMELINE) == 1


def test_find_with_wrong_token_is_unknown(fake: FakePlatformServer) -> None:
    pub = build_adapter(XPublisher, "main", creds(fake, token="revoked"), timeout=TIMEOUT)
    with pytest.raises(UnknownOutcome, match="401"):
        pub.find(out("x"), since())


def test_user_id_is_cached(fake: FakePlatformServer, pub: XPublisher) -> None:
    pub.find(out("a"), since())
    pub.find(out("b"), since())
    assert count(fake, "GET", r"^/2/users/me$") == 1


# -- faults on create ------------------------------------------------------------------

def test_429_reads_reset_header(fake: FakePlatformServer) -> None:
    pub = fixed_clock_pub(fake)
    reset = int(NOW.timestamp()) + 600
    fake.fault("POST", TWEETS, status=429, headers={
        "x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(reset),
        "x-user-limit-24hour-remaining": "40", "x-user-limit-24hour-reset": str(reset + 9999)})
    with pytest.raises(TransientError) as info:
        pub.publish(out("x"))
    assert info.value.resume_at == datetime.fromtimestamp(reset, UTC)
    assert info.value.retry_after == 600
    assert count(fake, "POST", TWEETS) == 1
    assert fx.tweets(fake) == []


@pytest.mark.parametrize("scope", ["user", "app"])
def test_429_on_the_24_hour_cap_waits_for_its_reset(fake: FakePlatformServer,
                                                    scope: str) -> None:
    pub = fixed_clock_pub(fake)
    t = int(NOW.timestamp())
    fake.fault("POST", TWEETS, status=429, headers={
        "x-rate-limit-remaining": "99", "x-rate-limit-reset": str(t + 300),
        f"x-{scope}-limit-24hour-remaining": "0",
        f"x-{scope}-limit-24hour-reset": str(t + 7200)})
    with pytest.raises(TransientError) as info:
        pub.publish(out("x"))
    assert info.value.resume_at == datetime.fromtimestamp(t + 7200, UTC)
    assert info.value.retry_after == 7200


def test_429_takes_the_later_of_both_24_hour_caps(fake: FakePlatformServer) -> None:
    pub = fixed_clock_pub(fake)
    t = int(NOW.timestamp())
    fake.fault("POST", TWEETS, status=429, headers={
        "x-rate-limit-reset": str(t + 60),
        "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(t + 3600),
        "x-app-limit-24hour-remaining": "0", "x-app-limit-24hour-reset": str(t + 5400)})
    with pytest.raises(TransientError) as info:
        pub.publish(out("x"))
    assert info.value.retry_after == 5400


def test_429_without_headers_leaves_timing_to_the_scheduler(fake: FakePlatformServer,
                                                            pub: XPublisher) -> None:
    fake.fault("POST", TWEETS, status=429)
    with pytest.raises(TransientError) as info:
        pub.publish(out("x"))
    assert info.value.resume_at is None and info.value.retry_after is None


def test_fake_daily_cap_answers_429_with_real_headers(fake: FakePlatformServer,
                                                      pub: XPublisher) -> None:
    fx.set_caps(fake, per_24h=1)
    pub.publish(out("first"))
    with pytest.raises(TransientError) as info:
        pub.publish(out("second"))
    first = fx.tweets(fake)[0]["created_at"]
    assert info.value.resume_at == datetime.fromtimestamp(
        int((first + timedelta(hours=24)).timestamp()), UTC)
    assert info.value.retry_after is not None and 86000 < info.value.retry_after <= 86400



def test_connection_dropped_before_x_acted(fake: FakePlatformServer, pub: XPublisher) -> None:
    post = out("dropped")
    fake.fault("POST", TWEETS, drop=True)
    with pytest.raises(UnknownOutcome):
        pub.publish(post)
    assert count(fake, "POST", TWEETS) == 1
    assert pub.find(post, since()) is None     # reconciling says: not out, send again


def test_connection_dropped_after_x_acted(fake: FakePlatformServer, pub: XPublisher) -> None:
    post = out("dropped late")
    fake.fault("POST", TWEETS, drop_after=True)
    with pytest.raises(UnknownOutcome):
        pub.publish(post)
    assert count(fake, "POST", TWEETS) == 1
    assert pub.find(post, since()) is not None


def test_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pub = build_adapter(XPublisher, "main", {
        "API_KEY": "k", "API_SECRET": "s", "ACCESS_TOKEN": "t", "ACCESS_SECRET": "a",
        "API_BASE": f"http://127.0.0.1:{port}"}, timeout=TIMEOUT)
    with pytest.raises(TransientError, match="could not connect"):
        pub.publish(out("x"))


def test_connect_timeout_counts_as_not_sent() -> None:
    assert _not_sent(requests.ConnectTimeout("connect timed out"))
    refused = MaxRetryError(None, "/", ConnectTimeoutError())  # type: ignore[arg-type]
    assert _not_sent(requests.ConnectionError(refused))
    assert not _not_sent(requests.ReadTimeout("read timed out"))
    assert not _not_sent(requests.ConnectionError("Connection aborted."))


def test_text_too_long_is_permanent(fake: FakePlatformServer, pub: XPublisher) -> None:
    with pytest.raises(PermanentError, match="400 .*too long") as info:
        pub.publish(out("x" * 281))
    assert not isinstance(info.value, AuthError)
    assert count(fake, "POST", TWEETS) == 1


def test_reply_to_a_deleted_tweet_is_permanent(fake: FakePlatformServer,
                                               pub: XPublisher) -> None:
    with pytest.raises(PermanentError, match="403 .*deleted"):
        pub.publish(out("x", reply_to=Receipt(remote_id="42")))
    assert count(fake, "POST", TWEETS) == 1


def test_404_is_permanent(fake: FakePlatformServer, pub: XPublisher) -> None:
    fake.fault("POST", TWEETS, status=404)
    with pytest.raises(PermanentError, match="404"):
        pub.publish(out("x"))


# -- duplicate content -------------------------------------------------------------------

def test_duplicate_of_a_tweet_already_out_returns_it(fake: FakePlatformServer,
                                                     pub: XPublisher) -> None:
    post = out("T-minus 1 day")
    first = pub.publish(post)
    again = pub.publish(post)
    assert again.remote_id == first.remote_id
    assert len(fx.tweets(fake)) == 1
    assert count(fake, "POST", TWEETS) == 2
    assert count(fake, "GET", TIMELINE) == 1
    [lookup] = fake.requests_to("GET", TIMELINE)
    start = datetime.fromisoformat(lookup.query["start_time"][0].replace("Z", "+00:00"))
    assert start <= post.due_at - timedelta(minutes=10)


def test_duplicate_of_an_older_tweet_is_permanent(fake: FakePlatformServer,
                                                  pub: XPublisher) -> None:
    fx.add_tweet(fake, "T-minus 1 day", created_at=datetime.now(UTC) - timedelta(days=30))
    with pytest.raises(PermanentError, match="duplicate content") as info:
        pub.publish(out("T-minus 1 day"))
    assert not isinstance(info.value, AuthError)
    assert count(fake, "POST", TWEETS) == 1
    assert count(fake, "GET", TIMELINE) == 1


def test_duplicate_when_the_lookup_fails_is_unknown(fake: FakePlatformServer,
                                                    pub: XPublisher) -> None:
    post = out("T-minus 1 day")
    pub.publish(post)
    fake.fault("GET", TIMELINE, status=500)
    with pytest.raises(UnknownOutcome):
        pub.publish(post)


# -- media faults --------------------------------------------------------------------

def test_media_upload_failures_are_transient_and_post_nothing(
        fake: FakePlatformServer, pub: XPublisher, tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\npng")
    post = out("pic", media=(Media(str(img), "alt"),))
    fake.fault("POST", r"^/2/media/upload$", status=503)
    with pytest.raises(TransientError):
        pub.publish(post)
    fake.fault("POST", r"^/2/media/upload$", delay_after=TIMEOUT * 2)
    with pytest.raises(TransientError):      # an unused media id is harmless
        pub.publish(post)
    fake.fault("POST", r"^/2/media/metadata$", status=400, body={"detail": "bad alt"})
    with pytest.raises(PermanentError, match="400 bad alt"):
        pub.publish(post)
    assert count(fake, "POST", TWEETS) == 0
    assert fx.tweets(fake) == []


# -- wiring ------------------------------------------------------------------------------

def test_api_base_redirect_keeps_everything_off_the_real_x(
        fake: FakePlatformServer, pub: XPublisher, tmp_path: Path) -> None:
    session = pub._client.session
    transport = session.get_adapter("https://api.twitter.com/2/tweets")
    assert isinstance(transport, _XTransport)
    assert transport.api_base == fake.url and transport.timeout == TIMEOUT
    img = tmp_path / "a.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\npng")
    pub.check()
    post = out("all local", media=(Media(str(img), "alt"),))
    pub.publish(post)
    pub.find(post, since())
    # every request arrived here, and the only connection pools opened are to the fake
    assert len(fake.requests) == 5
    hosts = {key.key_host for key in transport.poolmanager.pools.keys()}  # noqa: SIM118 - the container cannot be iterated
    assert hosts == {"127.0.0.1"}


def test_from_credentials_requires_all_four(fake: FakePlatformServer) -> None:
    c = creds(fake)
    del c["ACCESS_SECRET"]
    with pytest.raises(AuthError, match="ACCESS_SECRET") as info:
        build_adapter(XPublisher, "main", c, timeout=TIMEOUT)
    assert_clean(info.value.message)
    variables = XPublisher.CREDENTIALS.variables()
    assert {v.suffix for v in variables if v.required} == {"API_KEY", "API_SECRET",
                                                           "ACCESS_TOKEN", "ACCESS_SECRET"}
    assert {v.suffix for v in variables if not v.required} == {"API_BASE"}


def test_exact_text() -> None:
    assert _exact("a  b\n c https://x.org/y") == _exact("a b c http://X.org/y")
    assert _exact("see example.org now") == _exact("see http://example.org/ now")
    assert _exact("https://x.org/petition/a") != _exact("https://x.org/petition/b")
    assert _exact("https://x.org/a?b=c") != _exact("https://x.org/a?b=d")
    assert _exact(_unescape("Tom &amp; Jerry &lt;3")) == _exact("Tom & Jerry <3")
    assert _exact(_unescape("&amp;copy;")) == _exact("&copy;")
    assert _exact("one") != _exact("two")
    # the masked comparison only spots candidates that cannot be expanded
    assert _comparable("a https://x.org/y") == _comparable("a https://t.co/abc")


def test_the_upload_carries_the_type_the_bytes_are(fake: FakePlatformServer, pub: XPublisher,
                                                   tmp_path: Path) -> None:
    # a JPEG saved as .png goes up as a JPEG; a text file named .png is refused unsent
    jpeg = tmp_path / "poster.png"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    pub.publish(out("a jpeg in disguise", media=(Media(str(jpeg), "a poster"),)))
    [tweet] = fx.tweets(fake)
    assert [fx.media(fake)[i]["content_type"] for i in tweet["media_ids"]] == ["image/jpeg"]
    text = tmp_path / "notes.png"
    text.write_bytes(b"just some notes")
    with pytest.raises(PermanentError, match="not a PNG, JPEG, GIF or WebP"):
        pub.publish(out("not an image", media=(Media(str(text), "notes"),)))
    assert count(fake, "POST", r"^/2/media/upload$") == 1


# -- the client's request: tweepy's, with the account's signer made once ----------------

ANSWERS = [
    {}, {"status": 400, "body": {"errors": [{"message": "Your Tweet text is too long."}]}},
    {"status": 401}, {"status": 403, "body": {"detail": "You are not allowed to create a "
                                                        "Tweet with duplicate content."}},
    {"status": 404}, {"status": 409}, {"status": 429, "headers": {"x-rate-limit-reset": "99"}},
    {"status": 429}, {"status": 500}, {"status": 503, "body": b"<html>busy</html>",
                                       "headers": {"Content-Type": "text/html"}},
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: str(a.get("status", 201)))
def test_the_client_answers_as_tweepy_s_own_request_does(
        fake: FakePlatformServer, pub: XPublisher, answer: dict[str, Any]) -> None:
    """`_Client.request` against tweepy's `Client.request` on the same answer: the same
    return or the same exception (class, status, messages, reset), both signed alike."""
    import tweepy

    def outcome(request: Any) -> tuple[Any, ...]:
        if answer:
            fake.fault("POST", TWEETS, **answer)
        try:
            response = request("POST", "/2/tweets", json={"text": f"t {len(fake.requests)}"},
                               user_auth=True)
        except tweepy.HTTPException as e:
            return (type(e), e.response.status_code, e.api_codes, e.api_messages,
                    getattr(e, "reset_time", None))
        return ("answer", response.status_code, sorted(response.json()["data"]))

    client = pub._client
    ours = outcome(client.request)
    theirs = outcome(partial(tweepy.Client.request, client))
    assert ours == theirs
    mine, tweepys = fake.requests_to("POST", TWEETS)
    for request in (mine, tweepys):
        assert request.header("Authorization").startswith("OAuth ")
        assert f'oauth_token="{fx.VALID_TOKEN}"' in request.header("Authorization")
        assert request.header("User-Agent") == client.user_agent
    # a nonce of its own for each signature, though the signer is the account's one
    nonce = re.compile(r'oauth_nonce="([^"]+)"')
    assert (nonce.search(mine.header("Authorization")).group(1)        # type: ignore[union-attr]
            != nonce.search(tweepys.header("Authorization")).group(1))  # type: ignore[union-attr]


def test_the_signer_is_made_once_an_account(fake: FakePlatformServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import tweepy
    made: list[object] = []
    real = tweepy.OAuth1UserHandler.apply_auth

    def counting(self: Any) -> Any:
        made.append(self)
        return real(self)

    monkeypatch.setattr(tweepy.OAuth1UserHandler, "apply_auth", counting)
    pub = build_adapter(XPublisher, "main", creds(fake), timeout=TIMEOUT)
    for i in range(3):
        pub.publish(out(f"post {i}", key=f"k-{i}"))
    pub.check()
    assert len(made) == 1
    assert len(fx.tweets(fake)) == 3
