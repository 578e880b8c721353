"""BlueskyPublisher against the fake PDS, through the real atproto SDK."""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto import Session

from jobs.adapters.base import MemorySessionStore
from jobs.adapters.bluesky import BlueskyPublisher, Segment, post_rkey, segments, tid
from jobs.errors import AuthError, PermanentError, TransientError, UnknownOutcome
from jobs.outgoing import Identity, Media, Outgoing, Receipt
from tests.conftest import build_adapter
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import bluesky as fb

# generous: on a busy machine (the suite runs on several workers) a fake's answer can
# take a while; a fault meant to outlast it is LATE, a second past it
TIMEOUT = 2.0
LATE = TIMEOUT + 1.0
DUE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREATE = "com.atproto.repo.createRecord"
GET = "com.atproto.repo.getRecord"
LOGIN = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


_opened: list[BlueskyPublisher] = []


@pytest.fixture
def fake() -> Iterator[FakePlatformServer]:
    with FakePlatformServer() as server:
        yield server
    while _opened:
        _opened.pop().close()


def make(fake: FakePlatformServer, store: MemorySessionStore | None = None, *,
         timeout: float = TIMEOUT, password: str = fb.PASSWORD,
         pds: str | None = None) -> BlueskyPublisher:
    pub = build_adapter(
        BlueskyPublisher, "org_bsky",
        {"HANDLE": fb.HANDLE, "APP_PASSWORD": password, "PDS": pds or fake.url},
        timeout=timeout, session_store=store)
    _opened.append(pub)
    return pub


def post(text: str = "T-3 days to the deadline #HereToStay", key: str = "p1", *,
         due: datetime = DUE, **kwargs: Any) -> Outgoing:
    return Outgoing(post_id=1, account="org_bsky", platform="bluesky", text=text,
                    idempotency_key=key, due_at=due, **kwargs)


def n(fake: FakePlatformServer, nsid: str) -> int:
    return fb.calls(fake, nsid)


def logged_in(fake: FakePlatformServer) -> MemorySessionStore:
    """A store holding a valid session, and a clean request log."""
    store = MemorySessionStore()
    make(fake, store).check()
    fake.requests.clear()
    return store


def session_string(fake: FakePlatformServer, *, access_ttl: int, refresh_ttl: int) -> str:
    """A saved session whose tokens live `*_ttl` seconds, as the SDK would export it."""
    fb.set_token_ttl(fake, access=access_ttl, refresh=refresh_ttl)
    answer = httpx.post(f"{fake.url}/xrpc/{LOGIN}",
                        json={"identifier": fb.HANDLE, "password": fb.PASSWORD}).json()
    fb.set_token_ttl(fake, access=7200, refresh=90 * 86400)
    fake.requests.clear()
    return str(Session(answer["handle"], answer["did"], answer["accessJwt"],
                       answer["refreshJwt"], f"{fake.url}/xrpc").encode())


def facets(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(covered text, feature type, value) of each facet, cut out by byte offsets."""
    raw = record["text"].encode("utf-8")
    out = []
    for facet in record.get("facets") or []:
        feature = facet["features"][0]
        kind = feature["$type"].split("#")[1]
        value = feature.get("tag") or feature.get("did") or feature.get("uri")
        covered = raw[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode("utf-8")
        out.append((covered, kind, value))
    return out


def assert_no_secrets(error: Exception, store: MemorySessionStore | None = None) -> None:
    text = str(error)
    assert fb.PASSWORD not in text
    if store is not None and store.session:
        for part in store.session.split(":::")[2:4]:  # the access and refresh JWTs
            assert part not in text
    assert "eyJ" not in text  # no JWT at all


# -- record keys --------------------------------------------------------------------------

def _untid(value: str) -> tuple[int, int]:
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    number = 0
    for char in value:
        number = number * 32 + alphabet.index(char)
    assert number < 1 << 63  # top bit 0
    return number >> 10, number & 1023


def test_tid_layout() -> None:
    assert tid(0, 0) == "2222222222222"
    assert tid((1 << 53) - 1, 1023) == "bzzzzzzzzzzzz"
    # The example TID of the atproto specification survives a round trip.
    assert tid(*_untid("3jzfcijpj2z2a")) == "3jzfcijpj2z2a"
    with pytest.raises(ValueError):
        tid(1 << 53, 0)
    with pytest.raises(ValueError):
        tid(0, 1024)


def test_record_key_is_a_tid_derived_from_the_post() -> None:
    p = post(due=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC))
    rkey = post_rkey(p)
    assert TID_RE.match(rkey)
    micros, clock = _untid(rkey)
    digest = int.from_bytes(hashlib.sha256(b"p1").digest()[:8], "big")
    # whole seconds of due_at; the sub-second part and the clock id from the key's hash
    assert micros == int(p.due_at.timestamp()) * 1_000_000 + (digest >> 10) % 1_000_000
    assert clock == digest % 1024
    assert post_rkey(post(text="other text", due=p.due_at)) == rkey  # the text plays no part
    assert post_rkey(post(due=DUE.replace(tzinfo=None))) == post_rkey(post())  # naive = UTC
    assert post_rkey(post(due=DUE.astimezone(
        datetime.now().astimezone().tzinfo))) == post_rkey(post())
    assert post_rkey(post(key="p2")) != post_rkey(post())


# -- text parsing -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Quedan 3 días #HereToStay",
     [Segment("text", "Quedan 3 días "), Segment("tag", "#HereToStay", "HereToStay")]),
    ("Go #Vote! now", [Segment("text", "Go "), Segment("tag", "#Vote", "Vote"),
                       Segment("text", "! now")]),
    ("#1 and #2026 are numbers", [Segment("text", "#1 and #2026 are numbers")]),
    ("a#b is no tag", [Segment("text", "a#b is no tag")]),
    ("write bob@example.com", [Segment("text", "write bob@example.com")]),
    ("thanks @alice.bsky.social, see you",
     [Segment("text", "thanks "), Segment("mention", "@alice.bsky.social", "alice.bsky.social"),
      Segment("text", ", see you")]),
    ("@justaname is no handle", [Segment("text", "@justaname is no handle")]),
    ("(see https://en.wikipedia.org/wiki/Foo_(bar)).",
     [Segment("text", "(see "), Segment("link", "https://en.wikipedia.org/wiki/Foo_(bar)",
                                    "https://en.wikipedia.org/wiki/Foo_(bar)"),
      Segment("text", ").")]),
    ("call http://example.org/a?b=1#c, now",
     [Segment("text", "call "), Segment("link", "http://example.org/a?b=1#c",
                                        "http://example.org/a?b=1#c"),
      Segment("text", ", now")]),
    ("https:// alone", [Segment("text", "https:// alone")]),
    ("＃Fullwidth", [Segment("tag", "＃Fullwidth", "Fullwidth")]),
])
def test_segments(text: str, expected: list[Segment]) -> None:
    got = segments(text)
    assert got == expected
    assert "".join(s.text for s in got) == text


def test_facets_have_utf8_byte_offsets(fake: FakePlatformServer) -> None:
    alice = fb.add_user(fake, "alice.bsky.social")
    text = ("Quedan 3 días #HereToStay — llama a @alice.bsky.social 🗳️ "
            "https://example.org/días.")
    make(fake).publish(post(text))
    [record] = [r["value"] for r in fb.posts(fake)]
    assert record["text"] == text
    assert facets(record) == [
        ("#HereToStay", "tag", "HereToStay"),
        ("@alice.bsky.social", "mention", alice),
        ("https://example.org/días", "link", "https://example.org/días"),
    ]
    # "días" takes 5 bytes: the tag starts at byte 15, not at character 14.
    assert record["facets"][0]["index"] == {
        "byteStart": 15, "byteEnd": 26, "$type": "app.bsky.richtext.facet#byteSlice"}
    assert text.index("#") == 14


def test_unresolvable_mention_stays_plain_text(fake: FakePlatformServer) -> None:
    text = "@nobody.example.com and again @nobody.example.com #tminus"
    make(fake).publish(post(text))
    [record] = [r["value"] for r in fb.posts(fake)]
    assert facets(record) == [("#tminus", "tag", "tminus")]
    assert n(fake, "com.atproto.identity.resolveHandle") == 1  # once per handle


def test_mention_lookup_failing_is_transient(fake: FakePlatformServer) -> None:
    fb.add_user(fake, "alice.bsky.social")
    fb.fail(fake, "com.atproto.identity.resolveHandle", 500, method="GET")
    with pytest.raises(TransientError, match="resolveHandle: HTTP 500"):
        make(fake).publish(post("hi @alice.bsky.social"))
    assert n(fake, CREATE) == 0


# -- success ------------------------------------------------------------------------------

def test_publish_text(fake: FakePlatformServer) -> None:
    store = MemorySessionStore()
    p = post(language="es", visibility="unlisted")
    receipt = make(fake, store).publish(p)
    [stored] = fb.posts(fake)
    rkey = post_rkey(p)
    uri = f"at://{fb.DID}/app.bsky.feed.post/{rkey}"
    assert stored["rkey"] == rkey and stored["uri"] == uri
    assert receipt == Receipt(remote_id=uri, url=f"https://bsky.app/profile/{fb.HANDLE}/post/{rkey}",
                              extra={"uri": uri, "cid": stored["cid"]})
    value = stored["value"]
    assert value["text"] == p.text
    assert value["langs"] == ["es"]
    assert "labels" not in value and "reply" not in value and "embed" not in value
    assert datetime.fromisoformat(value["createdAt"]).tzinfo is not None
    # One login, one create: no getProfile, no refresh.
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/xrpc/{LOGIN}"), ("POST", f"/xrpc/{CREATE}")]
    assert store.saves == 1


def test_thread_of_three(fake: FakePlatformServer) -> None:
    pub = make(fake)
    first = pub.publish(post("1/3 #HereToStay", "thread-1"))
    second = pub.publish(post("2/3", "thread-2", reply_to=first, thread_root=first))
    third = pub.publish(post("3/3", "thread-3", reply_to=second, thread_root=first))
    records = {r["value"]["text"]: r for r in fb.posts(fake)}
    assert len({first.remote_id, second.remote_id, third.remote_id}) == 3
    assert "reply" not in records["1/3 #HereToStay"]["value"]
    ref = {"uri": first.extra["uri"], "cid": first.extra["cid"]}
    assert records["2/3"]["value"]["reply"] == {
        "root": {**ref, "$type": "com.atproto.repo.strongRef"},
        "parent": {**ref, "$type": "com.atproto.repo.strongRef"},
        "$type": "app.bsky.feed.post#replyRef"}
    reply3 = records["3/3"]["value"]["reply"]
    assert (reply3["root"]["uri"], reply3["root"]["cid"]) == (
        records["1/3 #HereToStay"]["uri"], records["1/3 #HereToStay"]["cid"])
    assert (reply3["parent"]["uri"], reply3["parent"]["cid"]) == (
        records["2/3"]["uri"], records["2/3"]["cid"])


def test_reply_without_uri_and_cid_is_permanent(fake: FakePlatformServer) -> None:
    with pytest.raises(PermanentError, match="no uri and cid"):
        make(fake).publish(post("2/2", reply_to=Receipt(remote_id="123")))
    assert fake.requests == []


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")  # the SDK's upload
def test_media_with_alt_text(fake: FakePlatformServer, tmp_path: Path) -> None:
    chart, photo = tmp_path / "chart.png", tmp_path / "photo.jpg"
    chart.write_bytes(PNG)
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    make(fake).publish(post(media=(Media(str(chart), "Days left, as a bar chart"),
                                   Media(str(photo), "Rally on the steps"))))
    [record] = [r["value"] for r in fb.posts(fake)]
    images = record["embed"]["images"]
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in images] == ["Days left, as a bar chart", "Rally on the steps"]
    uploaded = fb.blobs(fake)
    for image, (data, mime) in zip(images, [(PNG, "image/png"),
                                            (photo.read_bytes(), "image/jpeg")], strict=True):
        blob = uploaded[image["image"]["ref"]["$link"]]
        assert (blob["data"], blob["mimeType"]) == (data, mime)
        assert image["image"]["mimeType"] == mime


def test_media_checked_before_sending(fake: FakePlatformServer, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "big.png").write_bytes(b"\0" * 1_000_001)
    (tmp_path / "notes.txt").write_text("x")
    pub = make(fake)
    for media, message in [
        ((Media(str(tmp_path / "a.png"), "a"),) * 5, "at most 4 images"),
        ((Media(str(tmp_path / "missing.png"), "a"),), "cannot read"),
        ((Media(str(tmp_path / "notes.txt"), "a"),), "not an image"),
        ((Media(str(tmp_path / "big.png"), "a"),), "more than 1000000"),
    ]:
        with pytest.raises(PermanentError, match=message):
            pub.publish(post(media=media))
    assert fake.requests == []


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
def test_upload_failing_is_transient(fake: FakePlatformServer, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    fb.fail(fake, "com.atproto.repo.uploadBlob", 503)
    with pytest.raises(TransientError, match="uploadBlob: HTTP 503"):
        make(fake).publish(post(media=(Media(str(tmp_path / "a.png"), "a"),)))
    assert n(fake, CREATE) == 0


def test_content_warning_as_self_label(fake: FakePlatformServer,
                                       caplog: pytest.LogCaptureFixture) -> None:
    pub = make(fake)
    pub.publish(post("graphic", "cw-1", content_warning="Graphic-Media"))
    with caplog.at_level(logging.WARNING, "jobs.adapters.bluesky"):
        pub.publish(post("spoilers", "cw-2", content_warning="spoilers ahead"))
    records = {r["value"]["text"]: r["value"] for r in fb.posts(fake)}
    assert records["graphic"]["labels"]["values"] == [
        {"val": "graphic-media", "$type": "com.atproto.label.defs#selfLabel"}]
    assert "labels" not in records["spoilers"]
    assert "not a Bluesky label" in caplog.text


# -- check, find --------------------------------------------------------------------------

def test_check(fake: FakePlatformServer) -> None:
    assert make(fake).check() == Identity(platform="bluesky", handle=f"@{fb.HANDLE}",
                                          remote_id=fb.DID, display_name=fb.DISPLAY_NAME)
    assert (n(fake, LOGIN), n(fake, "app.bsky.actor.getProfile")) == (1, 1)


def test_check_refused_is_auth_error(fake: FakePlatformServer) -> None:
    fake.fault("GET", r"getProfile$", status=401,
               body={"error": "AuthenticationRequired", "message": "Authentication Required"})
    with pytest.raises(AuthError, match="HTTP 401"):
        make(fake).check()
    assert (n(fake, LOGIN), n(fake, "app.bsky.actor.getProfile")) == (1, 1)


def test_find(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    pub = make(fake, store)
    p = post()
    since = DUE - timedelta(minutes=5)
    assert pub.find(p, since) is None
    receipt = pub.publish(p)
    assert pub.find(p, since) == receipt
    assert make(fake, store).find(p, since) == receipt  # another process, same answer
    assert pub.find(post("another text, same key"), since) is None
    assert n(fake, LOGIN) == 0


@pytest.mark.parametrize("fault", [{"status": 500, "body": {"error": "InternalServerError"}},
                                   {"drop": True}, {"delay": LATE}])
def test_find_that_cannot_tell(fake: FakePlatformServer, fault: dict[str, Any]) -> None:
    store = logged_in(fake)
    fake.fault("GET", rf"{GET}$", **fault)
    with pytest.raises(UnknownOutcome, match="cannot tell"):
        make(fake, store).find(post(), DUE)
    assert n(fake, GET) == 1


def test_find_without_login_cannot_tell(fake: FakePlatformServer) -> None:
    with pytest.raises(UnknownOutcome, match="createSession: HTTP 401") as exc:
        make(fake, password="wrong-password").find(post(), DUE)
    assert "wrong-password" not in str(exc.value)


# -- the session: one login, reused --------------------------------------------------------

def test_one_login_for_many_posts_and_none_for_the_next_process(fake: FakePlatformServer) -> None:
    store = MemorySessionStore()
    first = make(fake, store)
    for i in range(5):
        first.publish(post(f"post {i}", f"first-{i}"))
    assert n(fake, LOGIN) == 1
    saved = store.session
    second = make(fake, store)
    for i in range(5):
        second.publish(post(f"later {i}", f"second-{i}"))
    assert n(fake, LOGIN) == 1  # none for the second adapter
    assert (n(fake, REFRESH), n(fake, "app.bsky.actor.getProfile")) == (0, 0)
    assert len(fb.posts(fake)) == 10
    assert store.session == saved and store.saves == 1


def test_restored_session_near_expiry_is_refreshed_and_saved(fake: FakePlatformServer) -> None:
    saved = session_string(fake, access_ttl=60, refresh_ttl=86400)  # under 15 minutes left
    store = MemorySessionStore(saved)
    make(fake, store).publish(post())
    assert (n(fake, LOGIN), n(fake, REFRESH), n(fake, CREATE)) == (0, 1, 1)
    assert store.saves == 1 and store.session != saved
    fake.requests.clear()
    make(fake, store).publish(post("next", "p2"))  # the refreshed session is the one reused
    assert (n(fake, LOGIN), n(fake, REFRESH), n(fake, CREATE)) == (0, 0, 1)


def test_expired_saved_session_means_one_new_login(fake: FakePlatformServer) -> None:
    saved = session_string(fake, access_ttl=-10, refresh_ttl=-10)
    store = MemorySessionStore(saved)
    make(fake, store).publish(post())
    # The SDK's refresh is refused (400 ExpiredToken): log in once, then create.
    assert (n(fake, REFRESH), n(fake, LOGIN), n(fake, CREATE)) == (1, 1, 1)
    assert len(fb.posts(fake)) == 1
    assert store.session != saved and store.saves == 1


def test_revoked_saved_session_means_one_new_login(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    fb.revoke_sessions(fake)  # the stored tokens look valid but the PDS forgot them
    make(fake, store).publish(post())
    # createRecord refused with 400 InvalidToken wrote nothing: log in, send it again.
    assert (n(fake, CREATE), n(fake, LOGIN)) == (2, 1)
    assert len(fb.posts(fake)) == 1


def test_revoked_session_and_password_is_auth_error(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    fb.revoke_sessions(fake)
    fb.set_password(fake, "new-app-password")
    with pytest.raises(AuthError, match="createSession: HTTP 401") as exc:
        make(fake, store).publish(post())
    assert (n(fake, CREATE), n(fake, LOGIN)) == (1, 1)
    assert_no_secrets(exc.value, store)


@pytest.mark.parametrize("saved", ["garbage", "a:::b:::c:::d:::e", None])
def test_unusable_or_foreign_saved_session_is_not_used(fake: FakePlatformServer,
                                                       saved: str | None) -> None:
    if saved is None:  # a session of another account
        fb.add_user(fake, "other.bsky.social")
        other = session_string(fake, access_ttl=7200, refresh_ttl=86400)
        saved = other.replace(fb.HANDLE, "other.bsky.social", 1)
    store = MemorySessionStore(saved)
    make(fake, store).publish(post())
    assert (n(fake, LOGIN), n(fake, CREATE)) == (1, 1)
    assert store.session != saved


def test_wrong_password_is_auth_error(fake: FakePlatformServer) -> None:
    with pytest.raises(AuthError, match="Invalid identifier or password") as exc:
        make(fake, password="wrong-password").publish(post())
    assert "wrong-password" not in str(exc.value)
    assert (n(fake, LOGIN), n(fake, CREATE)) == (1, 0)


def test_401_after_a_fresh_login_is_auth_error(fake: FakePlatformServer) -> None:
    fake.fault("POST", rf"{CREATE}$", status=401, times=2,
               body={"error": "AuthenticationRequired", "message": "Authentication Required"})
    store = MemorySessionStore()
    with pytest.raises(AuthError, match="createRecord: HTTP 401") as exc:
        make(fake, store).publish(post())
    assert (n(fake, LOGIN), n(fake, CREATE), n(fake, GET)) == (1, 1, 0)
    assert_no_secrets(exc.value, store)


def test_login_rate_limited_is_transient(fake: FakePlatformServer) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 300
    fb.rate_limit(fake, LOGIN, reset_at=reset, limit=30, policy="30;w=300")
    with pytest.raises(TransientError) as exc:
        make(fake).publish(post())
    assert exc.value.resume_at == datetime.fromtimestamp(reset, UTC)
    assert (n(fake, LOGIN), n(fake, CREATE)) == (1, 0)


def test_from_credentials() -> None:
    variables = BlueskyPublisher.CREDENTIALS.variables()
    assert {v.suffix for v in variables if v.required} == {"HANDLE", "APP_PASSWORD"}
    assert {v.suffix for v in variables if not v.required} == {"PDS"}
    with pytest.raises(AuthError, match="APP_PASSWORD"):
        build_adapter(BlueskyPublisher, "org_bsky", {"HANDLE": fb.HANDLE}, timeout=TIMEOUT)


# -- faults on createRecord ---------------------------------------------------------------

def test_rate_limited_create(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    reset = int(datetime.now(UTC).timestamp()) + 120
    fb.rate_limit(fake, CREATE, reset_at=reset)
    with pytest.raises(TransientError, match="HTTP 429 RateLimitExceeded") as exc:
        make(fake, store).publish(post())
    error = exc.value
    assert error.resume_at == datetime.fromtimestamp(reset, UTC)
    assert error.retry_after is not None and 100 < error.retry_after <= 120
    assert (n(fake, CREATE), n(fake, GET), len(fb.posts(fake))) == (1, 0, 0)
    assert_no_secrets(error, store)


def test_duplicate_record_key_returns_the_existing_post(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    p = post()
    receipt = make(fake, store).publish(p)
    # The answer was lost; the scheduler tries again: the PDS answers 500 (duplicate key).
    again = make(fake, store).publish(p)
    assert again == receipt
    assert (n(fake, CREATE), n(fake, GET), len(fb.posts(fake))) == (2, 1, 1)


def test_record_key_collision_is_permanent(fake: FakePlatformServer) -> None:
    # Two posts due at the same instant whose keys hash to the same clock id.
    keys: dict[str, str] = {}
    for i in itertools.count():
        rkey = post_rkey(post(key=f"k{i}"))
        if rkey in keys:
            a, b = keys[rkey], f"k{i}"
            break
        keys[rkey] = f"k{i}"
    pub = make(fake)
    pub.publish(post("first", a))
    with pytest.raises(PermanentError, match="already holds another post"):
        pub.publish(post("second", b))
    assert len(fb.posts(fake)) == 1


def test_timeout_before_the_pds_acted_is_transient_and_the_retry_makes_no_copy(
        fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    p = post()
    fake.fault("POST", rf"{CREATE}$", delay=LATE)  # the create lands after we gave up
    with pytest.raises(TransientError, match="ReadTimeout.*does not exist"):
        make(fake, store).publish(p)
    assert (n(fake, CREATE), n(fake, GET)) == (1, 1)
    # The retry reaches the PDS after the first create landed: 500 duplicate -> found.
    fake.fault("POST", rf"{CREATE}$", delay=LATE)
    receipt = make(fake, store, timeout=LATE + 3.0).publish(p)
    [stored] = fb.posts(fake)
    assert receipt.remote_id == stored["uri"]
    assert (n(fake, CREATE), n(fake, GET)) == (2, 2)


def test_timeout_after_acting_and_lookup_failing_is_unknown(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    fake.fault("POST", rf"{CREATE}$", delay_after=LATE)
    fb.fail(fake, GET, 500, method="GET")
    with pytest.raises(UnknownOutcome, match="ReadTimeout.*getRecord could not tell") as exc:
        make(fake, store).publish(post())
    assert (n(fake, CREATE), n(fake, GET), len(fb.posts(fake))) == (1, 1, 1)
    assert_no_secrets(exc.value, store)



def test_connection_dropped_before_the_pds_acted(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    fake.fault("POST", rf"{CREATE}$", drop=True)
    with pytest.raises(TransientError, match="does not exist"):
        make(fake, store).publish(post())
    assert (n(fake, CREATE), n(fake, GET), len(fb.posts(fake))) == (1, 1, 0)


def test_connection_dropped_after_the_pds_acted(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    fake.fault("POST", rf"{CREATE}$", drop_after=True)
    receipt = make(fake, store).publish(post())
    [stored] = fb.posts(fake)
    assert receipt.remote_id == stored["uri"]
    assert (n(fake, CREATE), n(fake, GET)) == (1, 1)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_connection_refused_is_transient(fake: FakePlatformServer) -> None:
    # Before login ...
    pub = make(fake, pds=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(TransientError, match="createSession: ConnectError"):
        pub.publish(post())
    # ... and with a saved session, on createRecord: nothing was sent, no lookup.
    with FakePlatformServer() as gone:
        store = logged_in(gone)
    with pytest.raises(TransientError, match="createRecord: ConnectError"):
        make(gone, store).publish(post())


@pytest.mark.parametrize(("text", "message"), [
    ("ñ" * 301, "Record/text must not be longer than 300 graphemes"),
    ("👍🏽" * 376, "Record/text must not be longer than 3000 characters"),  # 8 bytes each
])
def test_text_too_long_is_permanent(fake: FakePlatformServer, text: str, message: str) -> None:
    store = logged_in(fake)
    with pytest.raises(PermanentError, match=f"HTTP 400 InvalidRequest: Invalid app.bsky.feed.post "
                                             f"record: {message}") as exc:
        make(fake, store).publish(post(text))
    assert type(exc.value) is PermanentError
    assert (n(fake, CREATE), n(fake, GET), len(fb.posts(fake))) == (1, 0, 0)


def test_graphemes_not_code_points_are_counted(fake: FakePlatformServer) -> None:
    make(fake).publish(post("e\u0301" * 300))  # 600 code points, 300 graphemes
    assert len(fb.posts(fake)) == 1


# -- warm(): the login made before the post is due ------------------------------------------

def test_warm_logs_in_ahead_and_the_publish_sends_only_the_create(fake: FakePlatformServer) -> None:
    store = MemorySessionStore()
    pub = make(fake, store)
    pub.warm()
    assert (n(fake, LOGIN), n(fake, CREATE)) == (1, 0) and store.saves == 1
    pub.warm()                              # warm already: nothing sent
    assert n(fake, LOGIN) == 1 and n(fake, REFRESH) == 0
    fake.requests.clear()
    pub.publish(post())
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests] == [CREATE]


def test_warm_restores_a_saved_session_without_a_request(fake: FakePlatformServer) -> None:
    store = logged_in(fake)
    make(fake, store).warm()
    assert fake.requests == []


def test_warm_refreshes_a_session_that_would_need_it_at_the_due_second(
        fake: FakePlatformServer) -> None:
    # 18 minutes left: past the SDK's own 15 at its next request, but under warm's 20
    saved = session_string(fake, access_ttl=18 * 60, refresh_ttl=86400)
    store = MemorySessionStore(saved)
    pub = make(fake, store)
    pub.warm()
    assert (n(fake, LOGIN), n(fake, REFRESH)) == (0, 1)
    assert store.saves == 1 and store.session != saved
    fake.requests.clear()
    pub.publish(post())
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests] == [CREATE]


def test_warm_logs_in_again_when_the_saved_session_has_expired(fake: FakePlatformServer) -> None:
    saved = session_string(fake, access_ttl=-10, refresh_ttl=-10)
    store = MemorySessionStore(saved)
    pub = make(fake, store)
    pub.warm()
    # the refresh is refused (400 ExpiredToken): one new login, saved
    assert (n(fake, REFRESH), n(fake, LOGIN)) == (1, 1)
    assert store.saves == 1 and store.session != saved
    fake.requests.clear()
    pub.publish(post())
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests] == [CREATE]


def test_warm_with_a_refused_password_is_auth_error_naming_no_secret(
        fake: FakePlatformServer) -> None:
    store = MemorySessionStore()
    with pytest.raises(AuthError, match="createSession: HTTP 401") as exc:
        make(fake, store, password="wrong-app-password").warm()
    assert store.saves == 0
    assert_no_secrets(exc.value, store)


# -- what the SDK does on every request, done once -------------------------------------

@pytest.mark.parametrize("left", [-60, 0, 15 * 60 - 1, 15 * 60, 15 * 60 + 1, 7200])
def test_the_refresh_is_decided_as_the_sdk_decides(fake: FakePlatformServer,
                                                   left: int) -> None:
    """Against atproto's own `_should_refresh_session`, with the access token `left`
    seconds from its expiry, on either side of the SDK's 15 minutes."""
    from atproto import Client

    pub = make(fake, MemorySessionStore(session_string(fake, access_ttl=7200,
                                                       refresh_ttl=86400)))
    pub.warm()
    client = pub._client
    exp = client.access_expiry()
    assert exp == client._session.access_jwt_payload.exp
    client.get_current_time = lambda: datetime.fromtimestamp(exp - left, UTC)
    assert client._should_refresh_session() is Client._should_refresh_session(client)


def test_the_access_token_is_decoded_once_a_token(fake: FakePlatformServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Not three times a request: once a token (the warm-up read the restored one's),
    and the refresh comes when the SDK's margin is reached."""
    from atproto_client.client import session as sdk_session
    decoded: list[str] = []
    real = sdk_session.get_jwt_payload

    def counting(jwt: str) -> Any:
        decoded.append(jwt)
        return real(jwt)

    store = MemorySessionStore(session_string(fake, access_ttl=7200, refresh_ttl=86400))
    pub = make(fake, store)
    pub.warm()
    monkeypatch.setattr(sdk_session, "get_jwt_payload", counting)
    for i in range(3):
        pub.publish(post(f"post {i}", f"key-{i}"))
    assert decoded == []
    assert n(fake, REFRESH) == 0
    # 14 minutes before the expiry, the next request refreshes first, as the SDK would
    exp = pub._client.access_expiry()
    pub._client.get_current_time = lambda: datetime.fromtimestamp(exp - 14 * 60, UTC)
    pub.publish(post("after the margin", "key-3"))
    assert n(fake, REFRESH) == 1 and store.saves == 1
    del pub._client.get_current_time           # the real clock: the new token is fresh
    pub.publish(post("with the new token", "key-4"))
    pub.publish(post("and again", "key-5"))
    assert decoded == [store.session.split(":::")[2]]     # type: ignore[union-attr]
    assert n(fake, REFRESH) == 1
    assert len(fb.posts(fake)) == 6


def test_a_cookie_the_pds_sets_is_kept_and_answers_without_one_are_not_parsed(
        fake: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cookie jar sees only answers that set a cookie: the others' headers are not
    copied for it; a cookie set (a load balancer's) is sent back as httpx would."""
    import email.message
    copied: list[object] = []
    real = email.message.Message.__setitem__

    def counting(self: Any, name: str, value: Any) -> None:
        copied.append(name)
        real(self, name, value)

    pub = make(fake, logged_in(fake))
    pub.warm()
    monkeypatch.setattr(email.message.Message, "__setitem__", counting)
    pub.publish(post("no cookie", "c-1"))
    assert copied == []
    fake.fault("POST", rf"/{CREATE}$", headers={"Set-Cookie": "lb=pds-2; Path=/"},
               status_after=200)
    pub.publish(post("a cookie set", "c-2"))
    assert copied
    pub.publish(post("the cookie sent back", "c-3"))
    last = fake.requests_to("POST", rf"/{CREATE}$")[-1]
    assert last.header("Cookie") == "lb=pds-2"
    assert len(fb.posts(fake)) == 3
