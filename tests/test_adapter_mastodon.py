"""MastodonPublisher against the fake Mastodon, through the real Mastodon.py."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs.adapters.mastodon import MastodonPublisher, html_to_text
from jobs.errors import AuthError, PermanentError, TransientError, UnknownOutcome
from jobs.outgoing import Media, Outgoing, Receipt
from tests.conftest import build_adapter
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import mastodon as fm

# generous: on a busy machine (the suite runs on several workers) a fake's answer can
# take a while
TIMEOUT = 2.0
SLOW = TIMEOUT + 1.0  # an injected delay past TIMEOUT
STATUSES = r"^/api/v1/statuses$"
MEDIA = r"^/api/v[12]/media$"
LISTING = r"^/api/v1/accounts/[^/]+/statuses$"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def fake() -> Iterator[FakePlatformServer]:
    with FakePlatformServer() as server:
        yield server


@pytest.fixture
def pub(fake: FakePlatformServer) -> MastodonPublisher:
    return build_adapter(
        MastodonPublisher, "org_masto", {"INSTANCE": fake.url, "ACCESS_TOKEN": fm.TOKEN}, timeout=TIMEOUT)


def outgoing(text: str = "4 days left. Call 202-456-1111 #HereToStay", **kw: Any) -> Outgoing:
    fields: dict[str, Any] = {"post_id": 1, "account": "org_masto", "platform": "mastodon", "text": text,
                                  "idempotency_key": f"tminus-{uuid.uuid4()}",
                                  "due_at": datetime.now(UTC)}
    fields.update(kw)
    return Outgoing(**fields)


def count(fake: FakePlatformServer, method: str, pattern: str) -> int:
    return len(fake.requests_to(method, pattern))


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


# -- success -------------------------------------------------------------------------------


def test_constructing_sends_nothing(fake: FakePlatformServer) -> None:
    build_adapter(MastodonPublisher, "a", {"INSTANCE": fake.url, "ACCESS_TOKEN": fm.TOKEN},
                  timeout=TIMEOUT)
    assert fake.requests == []


def test_publish_text_with_language_visibility_and_cw(fake: FakePlatformServer,
                                                      pub: MastodonPublisher) -> None:
    post = outgoing(language="es", visibility="unlisted", content_warning="countdown")
    receipt = pub.publish(post)
    [status] = fm.statuses(fake)
    assert receipt.remote_id == status["id"]
    assert receipt.url == f"https://{fm.DOMAIN}/@{fm.USERNAME}/{status['id']}"
    assert status["text"] == post.text
    assert (status["language"], status["visibility"], status["spoiler_text"]) == (
        "es", "unlisted", "countdown")
    [request] = fake.requests
    assert request.path == "/api/v1/statuses"
    assert request.header("Idempotency-Key") == post.idempotency_key
    assert request.header("Authorization") == f"Bearer {fm.TOKEN}"


def test_the_sdk_casts_only_what_the_receipt_reads_of_a_created_status(
        fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    # Mastodon.py casts every field of an answer into typed entities (half its CPU a
    # post): the adapter's transport hands it only id, uri and url of a new status
    status = pub._api.status_post("one field at a time", idempotency_key=str(uuid.uuid4()))
    [stored] = fm.statuses(fake)
    assert {k for k, v in status.items() if v is not None} == {"id", "uri", "url"}
    assert (status["id"], status["url"]) == (stored["id"],
                                             f"https://{fm.DOMAIN}/@{fm.USERNAME}/{stored['id']}")
    # every other answer reaches it whole: find() reads content and times of statuses
    [listed] = pub._api.account_statuses(fm.ACCOUNT_ID)
    assert listed["content"] and listed["account"]["username"] == fm.USERNAME
    assert pub._api.account_verify_credentials()["username"] == fm.USERNAME


@pytest.mark.parametrize("body", [b"<html>gateway says ok</html>", b"{}", b"[]"])
def test_a_2xx_create_without_a_status_is_unknown(fake: FakePlatformServer,
                                                  pub: MastodonPublisher, body: bytes) -> None:
    fake.fault("POST", STATUSES, status_after=200, body=body,
               headers={"Content-Type": "application/json"})
    with pytest.raises(UnknownOutcome, match="the status may exist"):
        pub.publish(outgoing())
    assert len(fm.statuses(fake)) == 1


def test_thread_of_three_replies_to_the_previous_post(fake: FakePlatformServer,
                                                      pub: MastodonPublisher) -> None:
    first = pub.publish(outgoing("1/3 the deadline is near"))
    second = pub.publish(outgoing("2/3 call today", reply_to=first, thread_root=first))
    third = pub.publish(outgoing("3/3 thank you", reply_to=second, thread_root=first))
    by_id = {s["id"]: s for s in fm.statuses(fake)}
    assert by_id[first.remote_id]["in_reply_to_id"] is None
    assert by_id[second.remote_id]["in_reply_to_id"] == first.remote_id
    assert by_id[third.remote_id]["in_reply_to_id"] == second.remote_id
    assert count(fake, "POST", STATUSES) == 3


def test_media_uploaded_with_alt_text(fake: FakePlatformServer, pub: MastodonPublisher,
                                      tmp_path: Path) -> None:
    paths = []
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(PNG)
        paths.append(str(tmp_path / name))
    post = outgoing(media=(Media(paths[0], "A clock at five to midnight"),
                           Media(paths[1], "The Capitol at dawn")))
    receipt = pub.publish(post)
    uploads = fm.media(fake)
    assert [m["description"] for m in uploads] == ["A clock at five to midnight",
                                                   "The Capitol at dawn"]
    assert all(m["content_type"] == "image/png" and m["size"] == len(PNG) for m in uploads)
    [status] = fm.statuses(fake)
    assert status["id"] == receipt.remote_id
    assert status["media_ids"] == [m["id"] for m in uploads]
    # Mastodon.py reads the instance once to choose the v2 media endpoint.
    assert count(fake, "GET", r"^/api/v1/instance/?$") == 1
    assert count(fake, "GET", r"^/api/v2/instance/?$") == 1
    assert count(fake, "POST", r"^/api/v2/media$") == 2
    assert count(fake, "POST", STATUSES) == 1


def test_unreadable_media_file_is_permanent_and_sends_nothing(fake: FakePlatformServer,
                                                              pub: MastodonPublisher,
                                                              tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cannot read media file gone.png"):
        pub.publish(outgoing(media=(Media(str(tmp_path / "gone.png"), "alt"),)))
    assert fake.requests == []


def test_check_returns_identity(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    identity = pub.check()
    assert identity.platform == "mastodon"
    assert identity.handle == f"@{fm.USERNAME}@127.0.0.1"
    assert identity.remote_id == fm.ACCOUNT_ID
    assert identity.display_name == "T-minus test"
    assert count(fake, "GET", r"^/api/v1/accounts/verify_credentials$") == 1


def test_missing_credentials_are_an_auth_error() -> None:
    with pytest.raises(AuthError, match="ACCESS_TOKEN"):
        build_adapter(MastodonPublisher, "org_masto", {"INSTANCE": "mastodon.social"},
                      timeout=TIMEOUT)


# -- max_characters ------------------------------------------------------------------------


def test_max_characters_read_once_and_respected(fake: FakePlatformServer,
                                                pub: MastodonPublisher) -> None:
    fm.set_max_characters(fake, 1000)
    assert pub.max_characters() == 1000
    assert pub.max_characters() == 1000
    assert count(fake, "GET", r"^/api/v2/instance/?$") == 1
    pub.publish(outgoing("x" * 1000))
    with pytest.raises(PermanentError, match="Text character limit of 1000 exceeded"):
        pub.publish(outgoing("y" * 1001))
    assert len(fm.statuses(fake)) == 1


def test_max_characters_falls_back_to_v1_before_mastodon_4(fake: FakePlatformServer,
                                                           pub: MastodonPublisher) -> None:
    fm.set_max_characters(fake, 640)
    fake.fault("GET", r"^/api/v2/instance/?$", status=404, body={"error": "Not Found"})
    assert pub.max_characters() == 640
    assert count(fake, "GET", r"^/api/v1/instance/?$") == 1


def test_max_characters_failure_is_not_cached(fake: FakePlatformServer,
                                              pub: MastodonPublisher) -> None:
    fake.fault("GET", r"^/api/v2/instance/?$", status=503)
    with pytest.raises(TransientError, match="HTTP 503"):
        pub.max_characters()
    assert pub.max_characters() == 500
    assert count(fake, "GET", r"^/api/v2/instance/?$") == 2


# -- faults on publish ---------------------------------------------------------------------


def test_429_reads_the_reset_header(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    reset = datetime.now(UTC) + timedelta(seconds=120)
    fake.fault("POST", STATUSES, status=429, body={"error": "Too many requests"},
               headers=fm.ratelimit_headers(reset))
    with pytest.raises(TransientError, match="HTTP 429") as info:
        pub.publish(outgoing())
    err = info.value
    assert err.resume_at is not None and err.retry_after is not None
    # The SDK corrects the reset by the server's Date header (whole seconds).
    assert abs((err.resume_at - reset).total_seconds()) < 2
    assert 117 < err.retry_after < 122
    assert count(fake, "POST", STATUSES) == 1
    assert fm.statuses(fake) == []


def test_429_without_headers_has_no_resume_at(fake: FakePlatformServer,
                                              pub: MastodonPublisher) -> None:
    # An earlier answer's reset must not be reused for this one.
    fake.fault("GET", r"^/api/v1/accounts/verify_credentials$",
               headers=fm.ratelimit_headers(datetime.now(UTC) + timedelta(seconds=300),
                                            remaining=299))
    pub.check()
    fake.fault("POST", STATUSES, status=429, body={"error": "Too many requests"})
    with pytest.raises(TransientError) as info:
        pub.publish(outgoing())
    assert info.value.resume_at is None and info.value.retry_after is None


def test_429_on_media_upload(fake: FakePlatformServer, pub: MastodonPublisher,
                             tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    reset = datetime.now(UTC) + timedelta(minutes=30)
    fake.fault("POST", MEDIA, status=429, body={"error": "Too many requests"},
               headers=fm.ratelimit_headers(reset, limit=30))
    with pytest.raises(TransientError) as info:
        pub.publish(outgoing(media=(Media(str(tmp_path / "a.png"), "alt"),)))
    assert info.value.resume_at is not None
    assert abs((info.value.resume_at - reset).total_seconds()) < 2
    assert count(fake, "POST", MEDIA) == 1
    assert count(fake, "POST", STATUSES) == 0


def test_401_is_an_auth_error_without_the_token(fake: FakePlatformServer) -> None:
    pub = build_adapter(
        MastodonPublisher, "org_masto", {"INSTANCE": fake.url, "ACCESS_TOKEN": "wrong-secret-token"},
        timeout=TIMEOUT)
    with pytest.raises(AuthError, match="HTTP 401 The access token is invalid") as info:
        pub.publish(outgoing())
    assert "wrong-secret-token" not in str(info.value)
    assert count(fake, "POST", STATUSES) == 1
    with pytest.raises(AuthError):
        pub.check()


def test_text_too_long_is_permanent(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    with pytest.raises(PermanentError, match="HTTP 422 Validation failed: Text character "
                                             "limit of 500 exceeded") as info:
        pub.publish(outgoing("x" * 501))
    assert not isinstance(info.value, AuthError)
    assert count(fake, "POST", STATUSES) == 1


def test_urls_count_23_so_a_long_url_fits(fake: FakePlatformServer,
                                          pub: MastodonPublisher) -> None:
    pub.publish(outgoing("x" * 470 + " https://example.org/" + "p" * 200))
    assert len(fm.statuses(fake)) == 1


def test_reply_to_a_deleted_post_is_permanent(fake: FakePlatformServer,
                                              pub: MastodonPublisher) -> None:
    with pytest.raises(PermanentError, match="HTTP 404 The post you are trying to reply to"):
        pub.publish(outgoing(reply_to=Receipt(remote_id="1234")))


def test_media_still_processing_is_transient(fake: FakePlatformServer,
                                             pub: MastodonPublisher) -> None:
    fake.fault("POST", STATUSES, status=422, body={
        "error": "Cannot attach files that have not finished processing. Try again in a moment!"})
    with pytest.raises(TransientError) as info:
        pub.publish(outgoing())
    assert info.value.retry_after == 5.0


def test_slow_before_acting_is_unknown(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    # The request reached the server; from here that is all one can know.
    fake.fault("POST", STATUSES, delay=SLOW)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match="no answer after sending"):
        pub.publish(outgoing())
    assert time.monotonic() - started < SLOW
    assert count(fake, "POST", STATUSES) == 1


def test_slow_after_acting_is_unknown_and_the_retry_makes_no_copy(
        fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    fake.fault("POST", STATUSES, delay_after=SLOW)
    post = outgoing()
    since = datetime.now(UTC)
    with pytest.raises(UnknownOutcome):
        pub.publish(post)
    [status] = fm.statuses(fake)
    assert pub.find(post, since) == Receipt(
        remote_id=status["id"], url=f"https://{fm.DOMAIN}/@{fm.USERNAME}/{status['id']}")
    retried = pub.publish(Outgoing(**{**post.__dict__, "attempt": 2}))
    assert retried.remote_id == status["id"]
    assert len(fm.statuses(fake)) == 1
    assert count(fake, "POST", STATUSES) == 2



def test_dropped_before_acting_is_unknown_and_find_says_absent(
        fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    fake.fault("POST", STATUSES, drop=True)
    post = outgoing()
    since = datetime.now(UTC)
    with pytest.raises(UnknownOutcome):
        pub.publish(post)
    assert fm.statuses(fake) == []
    assert pub.find(post, since) is None
    assert count(fake, "POST", STATUSES) == 1


def test_dropped_after_acting_is_unknown_and_find_finds_it(
        fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    fake.fault("POST", STATUSES, drop_after=True)
    post = outgoing()
    since = datetime.now(UTC)
    with pytest.raises(UnknownOutcome):
        pub.publish(post)
    [status] = fm.statuses(fake)
    found = pub.find(post, since)
    assert found is not None and found.remote_id == status["id"]
    assert count(fake, "POST", STATUSES) == 1


@pytest.mark.parametrize("fault", [{"delay": SLOW}, {"drop": True}, {"delay_after": SLOW}])
def test_media_upload_failures_are_transient(fake: FakePlatformServer, pub: MastodonPublisher,
                                             tmp_path: Path, fault: dict[str, Any]) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    fake.fault("POST", MEDIA, **fault)
    with pytest.raises(TransientError, match="uploading a.png"):
        pub.publish(outgoing(media=(Media(str(tmp_path / "a.png"), "alt"),)))
    assert count(fake, "POST", MEDIA) == 1
    assert count(fake, "POST", STATUSES) == 0


def test_connection_refused_is_transient() -> None:
    pub = build_adapter(
        MastodonPublisher, "org_masto", {"INSTANCE": f"http://127.0.0.1:{closed_port()}", "ACCESS_TOKEN": "t"},
        timeout=TIMEOUT)
    with pytest.raises(TransientError, match="could not connect"):
        pub.publish(outgoing())
    with pytest.raises(TransientError, match="could not connect"):
        pub.check()
    with pytest.raises(UnknownOutcome, match="could not connect"):
        pub.find(outgoing(), datetime.now(UTC))


# -- find ----------------------------------------------------------------------------------


def test_find_absent_on_an_empty_account(fake: FakePlatformServer,
                                         pub: MastodonPublisher) -> None:
    assert pub.find(outgoing(), datetime.now(UTC) - timedelta(minutes=1)) is None
    assert count(fake, "GET", r"^/api/v1/accounts/verify_credentials$") == 1
    assert count(fake, "GET", LISTING) == 1
    # The account id is cached.
    pub.find(outgoing(), datetime.now(UTC))
    assert count(fake, "GET", r"^/api/v1/accounts/verify_credentials$") == 1


def test_find_matches_rendered_html(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    text = ("Rock & roll <3 — 4 days left!\n"
            "Read https://example.org/a/rather/long/path/that/mastodon/cuts?x=1&y=2 then "
            "call @senator@gov.example #HereToStay\n\nSecond paragraph.")
    post = outgoing(text, content_warning="politics")
    since = datetime.now(UTC)
    receipt = pub.publish(post)
    fm.add_status(fake, "Rock & roll <3 — 4 days left! a different post")
    assert pub.find(post, since) == receipt
    # Same text without the content warning, or as a reply elsewhere, is not the post.
    assert pub.find(outgoing(text), since) is None
    assert pub.find(outgoing(text, content_warning="politics",
                             reply_to=Receipt(remote_id="1")), since) is None


def test_find_a_reply_in_a_thread(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    since = datetime.now(UTC)
    first = pub.publish(outgoing("1/2 start"))
    second_post = outgoing("2/2 end", reply_to=first, thread_root=first)
    second = pub.publish(second_post)
    assert pub.find(second_post, since) == second


def test_find_ignores_the_same_text_from_before_since(fake: FakePlatformServer,
                                                      pub: MastodonPublisher) -> None:
    post = outgoing("an old friend")
    now = datetime.now(UTC)
    fm.add_status(fake, post.text, created_at=now - timedelta(hours=2))
    assert pub.find(post, now - timedelta(minutes=30)) is None
    assert count(fake, "GET", LISTING) == 1


def test_find_ignores_boosts(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    post = outgoing("boosted, not posted")
    since = datetime.now(UTC) - timedelta(minutes=1)
    fm.add_status(fake, post.text, reblog=True)
    assert pub.find(post, since) is None


def test_find_pages_back_to_since(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    now = datetime.now(UTC)
    since = now - timedelta(hours=3)
    fm.add_status(fake, "before the window", created_at=now - timedelta(hours=4))
    target = outgoing("the one we look for")
    found = fm.add_status(fake, target.text, created_at=now - timedelta(hours=2))
    for i in range(100):
        fm.add_status(fake, f"filler {i}", created_at=now - timedelta(minutes=100 - i))
    receipt = pub.find(target, since)
    assert receipt is not None and receipt.remote_id == found["id"]
    assert count(fake, "GET", LISTING) == 3
    assert pub.find(outgoing("never posted"), since) is None
    assert count(fake, "GET", LISTING) == 6


def test_find_gives_up_past_twenty_pages(fake: FakePlatformServer, pub: MastodonPublisher) -> None:
    now = datetime.now(UTC)
    for i in range(801):
        fm.add_status(fake, f"filler {i}", created_at=now - timedelta(seconds=900 - i))
    with pytest.raises(UnknownOutcome, match="more than 800 statuses"):
        pub.find(outgoing("needle"), now - timedelta(hours=1))
    assert count(fake, "GET", LISTING) == 20


def test_find_short_last_page_proves_absence(fake: FakePlatformServer,
                                             pub: MastodonPublisher) -> None:
    # 170 statuses, all inside the window: the fifth page holds 10, the end of the
    # account's statuses, so the post is provably not there (it once went to review)
    now = datetime.now(UTC)
    for i in range(170):
        fm.add_status(fake, f"filler {i}", created_at=now - timedelta(seconds=300 - i))
    assert pub.find(outgoing("needle"), now - timedelta(hours=1)) is None
    assert count(fake, "GET", LISTING) == 5


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"delay": SLOW},
                                   {"status": 429, "body": {"error": "Too many requests"}}])
def test_find_lookup_failure_is_unknown(fake: FakePlatformServer, pub: MastodonPublisher,
                                        fault: dict[str, Any]) -> None:
    fake.fault("GET", LISTING, **fault)
    with pytest.raises(UnknownOutcome, match="cannot tell"):
        pub.find(outgoing(), datetime.now(UTC))
    assert count(fake, "GET", LISTING) == 1


def test_html_to_text_uses_href_for_a_cut_link() -> None:
    content = ('<p>see <a href="https://example.org/a/long/path">example.org/a/lo…</a>'
               '<br/>and <a href="https://x.example/@bob" class="u-url mention">@<span>bob'
               '</span></a> &amp; <a href="https://x.example/tags/t" class="mention hashtag">'
               '#<span>t</span></a></p><p>end</p>')
    assert html_to_text(content) == "see https://example.org/a/long/path\nand @bob & #t\n\nend"


def test_unusable_instance_or_token_is_an_auth_error(fake: FakePlatformServer) -> None:
    with pytest.raises(AuthError, match="INSTANCE is not a server URL"):
        build_adapter(MastodonPublisher, "org_masto",
                      {"INSTANCE": "https://", "ACCESS_TOKEN": fm.TOKEN}, timeout=TIMEOUT)
    pub = build_adapter(MastodonPublisher, "org_masto",
                        {"INSTANCE": fake.url, "ACCESS_TOKEN": "half\nsecret"}, timeout=TIMEOUT)
    with pytest.raises(AuthError, match="credentials unusable") as info:
        pub.publish(outgoing())
    assert "secret" not in info.value.message
    assert fake.requests == []


def test_find_many_looks_a_round_of_posts_up_in_one_listing(fake: FakePlatformServer,
                                                            pub: MastodonPublisher) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    out = [outgoing(f"post {i} #HereToStay", post_id=i) for i in range(1, 4)]
    sent = {p.post_id: pub.publish(p) for p in out[:2]}
    before = count(fake, "GET", LISTING)
    found = pub.find_many([(p, since) for p in out])
    assert count(fake, "GET", LISTING) == before + 1
    assert {k: (v.remote_id if isinstance(v, Receipt) else v) for k, v in found.items()} == {
        1: sent[1].remote_id, 2: sent[2].remote_id, 3: None}
    fake.fault("GET", LISTING, status=503)
    failed = pub.find_many([(p, since) for p in out])
    assert all(isinstance(v, UnknownOutcome) and "HTTP 503" in v.message
               for v in failed.values())
