"""The Bluesky adapter: atproto 0.0.73's `Client`, one attempt per call.

Endpoints (XRPC on the account's PDS, `PDS` or https://bsky.social):

- `com.atproto.server.createSession`: log in with the handle and an app password. It is
  limited to about 30 per 5 minutes and 300 per day per account, so it runs once per
  session store, not once per post: the session string is saved in the `SessionStore`
  (on the SDK's `on_session_change` CREATE and REFRESH events) and restored with
  `login(session_string=..., fetch_bsky_profile=False)`, which sends nothing (the
  default would call getProfile on every restore).
- `com.atproto.server.refreshSession`: sent by the SDK itself before a request when the
  access token has under 15 minutes left, or by `warm()` when it has under 20 (the
  scheduler warms accounts with posts due soon); the new tokens are saved the same way.
  `warm()` also makes the login (restore or createSession) ahead of the due second.
- `com.atproto.identity.resolveHandle`: `@handle.domain` mentions to DIDs. A handle
  that does not resolve (400) stays plain text.
- `com.atproto.repo.uploadBlob`: images, embedded as `app.bsky.embed.images` with alt.
- `com.atproto.repo.createRecord`: the post (`app.bsky.feed.post`) under our own key.
- `com.atproto.repo.getRecord`: `find()`, and settling a create whose outcome is unclear.
- `app.bsky.actor.getProfile`: `check()` (display name).

Record key: a TID computed from the post alone (53 bits of microseconds since the
epoch: the whole seconds of `due_at` plus a sub-second part from a hash of
`idempotency_key`; 10 bits of clock id from the same hash). Every attempt
at a post writes the same key, so a retry can never create a second copy: the
reference PDS answers a create on an existing key with 500 InternalServerError
(bluesky-social/atproto#3718), and getRecord then finds the first copy.

Error rule:

- Anything before createRecord is sent (login, mentions, uploads, a refresh, a refused
  connection) has posted nothing: 429 -> TransientError (`resume_at` from
  `ratelimit-reset`, Unix seconds), 5xx and network failures -> TransientError, 401 ->
  AuthError, other 4xx -> PermanentError (a 4xx from createSession -> AuthError).
- createRecord answered below 500: refused, nothing written. 429 -> TransientError,
  401 -> AuthError, 400 (e.g. "Invalid app.bsky.feed.post record: Record/text must not
  be longer than 300 graphemes"), 403, 413 ... -> PermanentError.
- createRecord answered 5xx, timed out or lost its connection after it was sent, or
  answered something unreadable: the record may exist (500 is also the duplicate-key
  answer), so getRecord for our key decides. Found with our text -> published, its
  receipt. RecordNotFound -> TransientError: a create still in flight can't turn the
  retry into a duplicate, the retry uses the same key. getRecord failing ->
  UnknownOutcome. Found with another text -> PermanentError (another post owns the key).
- A saved session that is refused (401, or 400 ExpiredToken / InvalidToken, also from
  the SDK's refresh) is replaced by one fresh login, and the refused request, which
  did nothing, is sent again once. Refused again -> AuthError. At most one
  createSession per publish/find/check.
- `find()`: getRecord for the post's key. Found with the same text -> its receipt;
  RecordNotFound (or another text) -> None; any other failure -> UnknownOutcome.

Messages carry the HTTP status and the PDS's error text; never the password, a token
or the session string.

Bluesky has no visibility (everything is public), so `post.visibility` is not sent. A
`content_warning` becomes a self-label only when it is one of the label values Bluesky
knows ("sexual", "nudity", "porn", "graphic-media"); free-text warnings have no place
in a Bluesky post and are dropped with a log warning.
"""

from __future__ import annotations

import hashlib
import logging
import re
import ssl
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

import httpx
from atproto import Client, Request, Session, SessionEvent, client_utils, models
from atproto.exceptions import (
    AtProtocolError,
    BadRequestError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError

from content.media import sniff
from content.platforms import PLATFORMS, BlueskyCredentials
from jobs.adapters.base import (
    AttemptBound,
    Clock,
    MemorySessionStore,
    Publisher,
    SessionStore,
    Warms,
)
from jobs.errors import AuthError, PermanentError, PublishError, TransientError, UnknownOutcome
from jobs.outgoing import Engagement, Identity, Outgoing, Receipt

log = logging.getLogger(__name__)

DEFAULT_PDS = "https://bsky.social"
COLLECTION = "app.bsky.feed.post"
GET_POSTS_AT_ONCE = 25          # the most URIs app.bsky.feed.getPosts takes
# app.bsky.embed.images (lexicon): at most 4 images of at most 1,000,000 bytes each.
MAX_IMAGES = PLATFORMS["bluesky"].media.max_count
MAX_IMAGE_BYTES = PLATFORMS["bluesky"].media.max_bytes
# com.atproto.label.defs#selfLabel values the Bluesky app shows as content warnings.
SELF_LABELS = frozenset({"sexual", "nudity", "porn", "graphic-media"})

# The SDK refreshes the session before a request when its access token has less than
# this left (atproto_client's `SessionMethodsMixin._should_refresh_session`).
SDK_REFRESH = timedelta(minutes=15)
# `warm()` refreshes a session with less than this left on its access token: the SDK's
# own 15 minutes before expiry, plus room for the minute between two warm-ups.
WARM_REFRESH = timedelta(minutes=20)

T = TypeVar("T")

# What an SDK call can raise: its own errors, and httpx errors it lets through
# unwrapped (a connection closed without an answer is httpx.RemoteProtocolError).
_SDK_ERRORS = (AtProtocolError, httpx.HTTPError)
# Transport failures that prove the request never reached the PDS.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


# -- record keys ------------------------------------------------------------------------

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tid(micros: int, clock_id: int) -> str:
    """A TID: 64 bits (top bit 0, 53 bits of microseconds since the epoch, 10 bits of
    clock id) as 13 base32-sortable characters, most significant first."""
    if not 0 <= micros < 1 << 53:
        raise ValueError(f"TID time out of range: {micros}")
    if not 0 <= clock_id < 1 << 10:
        raise ValueError(f"TID clock id out of range: {clock_id}")
    value = (micros << 10) | clock_id
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def post_rkey(post: Outgoing) -> str:
    """The record key of `post`, the same on every attempt."""
    due = post.due_at
    if due.tzinfo is None:  # instants are stored in UTC; SQLite hands them back naive
        due = due.replace(tzinfo=UTC)
    # Whole seconds of due_at; the sub-second part and the clock id come from a hash of
    # the idempotency key, so two posts due at the same second on one account (a
    # thread, two campaigns) collide with odds of one in 2^30, not 2^10.
    seconds = (due.replace(microsecond=0) - _EPOCH) // timedelta(seconds=1)
    digest = int.from_bytes(hashlib.sha256(post.idempotency_key.encode("utf-8")).digest()[:8], "big")
    micros = seconds * 1_000_000 + (digest >> 10) % 1_000_000
    return tid(micros, digest & 0x3FF)


# -- rich text --------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A piece of a post's text: plain text, or the text of a link, #tag or @mention."""

    kind: Literal["text", "link", "tag", "mention"]
    text: str        # exactly as it appears in the post
    value: str = ""  # link: the URL; tag: the tag without "#"; mention: the handle


# A token starts the text or follows whitespace or "(": "a@b.org" is no mention and
# "x#1" no tag. Handles are domain names whose last label starts with a letter.
_TOKEN = re.compile(
    r"""(?<![^\s(])
    (?: (?P<link>https?://\S+)
      | (?P<tag>[#＃][^\s#＃]+)
      | @(?P<mention>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)
    )""",
    re.VERBOSE | re.IGNORECASE)
_MAX_TAG = 64  # app.bsky.richtext.facet#tag: 64 graphemes (code points here: stricter)


def _trim_link(url: str) -> str:
    """Drop punctuation that ends the sentence rather than the URL: "see https://a.org/x."
    links https://a.org/x; a ")" stays only when the URL opened one."""
    while url:
        if url[-1] in ".,;:!?\"'" or (url[-1] == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        else:
            break
    return url


def _trim_tag(tag: str) -> str:
    end = len(tag)
    while end > 1 and unicodedata.category(tag[end - 1]).startswith("P"):
        end -= 1
    return tag[:end]


def segments(text: str) -> list[Segment]:
    """Split a post's text into plain text and link / tag / mention candidates; joined
    back together they are `text`, unchanged."""
    out: list[Segment] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        seg: Segment | None = None
        if m["link"]:
            url = _trim_link(m["link"])
            if urlsplit(url).hostname:
                seg = Segment("link", url, url)
        elif m["tag"]:
            tag = _trim_tag(m["tag"])
            body = tag[1:]
            # A tag needs a character that is not a digit: "#1" is a number, not a tag.
            if body and not body.isdigit() and len(body) <= _MAX_TAG:
                seg = Segment("tag", tag, body)
        else:
            seg = Segment("mention", "@" + m["mention"], m["mention"])
        if seg is None:
            continue  # stays in the surrounding plain text
        if m.start() > pos:
            out.append(Segment("text", text[pos:m.start()]))
        out.append(seg)
        pos = m.start() + len(seg.text)  # trimmed punctuation goes to the next text
    if pos < len(text):
        out.append(Segment("text", text[pos:]))
    return out


# -- error mapping ----------------------------------------------------------------------


def _status(e: BaseException) -> int | None:
    response = e.response if isinstance(e, RequestErrorBase) else None
    return None if response is None else int(response.status_code)


def _xrpc_error(e: BaseException) -> str | None:
    """The XRPC error name of an answer ("RecordNotFound", "ExpiredToken", ...)."""
    if isinstance(e, RequestErrorBase) and e.response is not None:
        content = e.response.content
        if isinstance(content, XrpcError):
            return str(content.error)
    return None


def _root(e: BaseException) -> BaseException:
    """The httpx exception under an SDK transport error, or `e` itself."""
    cause: BaseException | None = e.__cause__
    if isinstance(e, RequestErrorBase) and e.response is None and cause is not None:
        return cause
    return e


def _describe(e: BaseException) -> str:
    """Status and the PDS's error text, or the transport failure; nothing from the request
    (its headers hold the access token)."""
    if isinstance(e, RequestErrorBase) and e.response is not None:
        content = e.response.content
        if isinstance(content, XrpcError):
            detail = f"{content.error}: {content.message}" if content.message else str(content.error)
        elif isinstance(content, bytes | bytearray):
            detail = bytes(content[:200]).decode("utf-8", "replace")
        else:
            detail = str(content)[:200]
        return f"HTTP {e.response.status_code} {detail}".rstrip()
    root = _root(e)
    return f"{type(root).__name__}: {root}" if str(root) else type(root).__name__


def _session_refused(e: BaseException) -> bool:
    """The PDS refused the session (not the request): 401, or 400 ExpiredToken /
    InvalidToken, which is how the reference PDS answers an expired or unknown JWT."""
    status = _status(e)
    return status == 401 or (status == 400 and _xrpc_error(e) in {"ExpiredToken", "InvalidToken"})


def _rate_limited(e: Any, message: str, now: datetime) -> TransientError:
    resume_at: datetime | None = e.reset_at          # ratelimit-reset, Unix seconds
    retry_after: float | None = e.retry_after        # retry-after, when the PDS sends it
    if retry_after is None and resume_at is not None:
        retry_after = max(0.0, (resume_at - now).total_seconds())
    if resume_at is None and retry_after is not None:
        resume_at = now + timedelta(seconds=retry_after)
    if resume_at is not None:
        message += f" (resume at {resume_at:%Y-%m-%d %H:%M:%S} UTC)"
    return TransientError(message, retry_after=retry_after, resume_at=resume_at)


def _failure(e: BaseException, what: str, now: datetime) -> PublishError:
    """A failed request that created no post (see the error rule above)."""
    message = f"bluesky {what}: {_describe(e)}"
    if isinstance(e, RateLimitExceededError):
        return _rate_limited(e, message, now)
    status = _status(e)
    if status is None:  # no answer, or one the SDK could not read
        return TransientError(message)
    if _session_refused(e):
        return AuthError(message)
    if status >= 500 or status == 408:
        return TransientError(message)
    return PermanentError(message)


# -- the adapter ------------------------------------------------------------------------


class _Found(NamedTuple):
    uri: str
    cid: str
    text: str | None


class _Bounded(httpx.HTTPTransport):
    """httpx's transport, each request's timeouts cut to the time left of the publish
    attempt under way; once none is left the request never leaves (ConnectTimeout:
    nothing was sent)."""

    def __init__(self, bound: AttemptBound) -> None:
        super().__init__(verify=_tls_context())
        self.bound = bound

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        given: dict[str, float | None] = dict(request.extensions.get("timeout") or {})
        limit = self.bound.timeout(given.get("read") or 3600.0)
        if limit is None:
            raise httpx.ConnectTimeout("the attempt's time bound ran out before this "
                                       "request", request=request)
        request.extensions = {**request.extensions, "timeout": {
            k: min(given.get(k) or limit, limit) for k in ("connect", "read", "write", "pool")}}
        return super().handle_request(request)


_TLS_LOCK = threading.Lock()


@cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (the CA bundle loaded once) for every account's client: httpx
    would build one per client, ~1 MB and 20-40 ms of CPU each, times a thousand
    accounts. Under a lock: the warm-up's threads all meet the first build at once, and
    each would build its own."""
    with _TLS_LOCK:
        return _built_tls_context()


@cache
def _built_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


# The SDK's models that a login and a publish use, built (pydantic) on their first use:
# about 70 ms of CPU, paid by every lane that meets it at the same moment.
_MODELS = (models.AppBskyFeedPost.Record, models.AppBskyRichtextFacet.Main,
           models.ComAtprotoRepoCreateRecord.Data, models.ComAtprotoRepoCreateRecord.Response,
           models.ComAtprotoServerCreateSession.Response,
           models.ComAtprotoServerRefreshSession.Response)


class _Client(Client):  # type: ignore[misc]  # atproto is untyped here
    """atproto's `Client`, deciding before each request whether to refresh the session
    as the SDK does (under `SDK_REFRESH` left on the access token), with the token's
    expiry decoded once per token. The SDK decodes the JWT (base64, JSON, a pydantic
    model) three times a request to read it, a twentieth of a post's CPU."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expiry: tuple[str, int | None] | None = None   # (access token, its exp)

    def access_expiry(self) -> int | None:
        """The `exp` (Unix seconds) of the session's access token; None without one."""
        session = self._session
        if session is None or not session.access_jwt:
            return None
        token = session.access_jwt
        known = self._expiry
        if known is None or known[0] != token:      # a new session, or a refreshed one
            known = self._expiry = (token, session.access_jwt_payload.exp)
        return known[1]

    def _should_refresh_session(self) -> bool:
        exp = self.access_expiry()
        if exp is None:     # no session or no expiry: the SDK's own answer (it raises)
            return bool(super()._should_refresh_session())
        return bool(self.get_current_time()
                    > self.get_time_from_timestamp(exp) - SDK_REFRESH)


class _Jar(CookieJar):
    """httpx hands every answer to its cookie jar, first copying all of the answer's
    headers into an `email.message.Message` for it (a twentieth of a post's CPU), though
    the jar reads only `Set-Cookie` and `Set-Cookie2`: here an answer with neither is
    not handed on. Everything else is the standard library's jar, as httpx's own."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        # httpx's stand-in for a urllib response holds the httpx.Response; where it
        # does not (another httpx), every answer is read as before
        headers = getattr(getattr(response, "response", None), "headers", None)
        if (isinstance(headers, httpx.Headers) and "set-cookie" not in headers
                and "set-cookie2" not in headers):
            return
        super().extract_cookies(response, request)


class BlueskyPublisher:
    """Publishes to one Bluesky account."""

    platform: ClassVar[str] = "bluesky"
    CREDENTIALS: ClassVar[type[BlueskyCredentials]] = BlueskyCredentials

    def __init__(self, handle: str, app_password: str, *, pds: str = DEFAULT_PDS,
                 timeout: float = 10.0, session_store: SessionStore | None = None,
                 now: Clock) -> None:
        if not pds.startswith(("http://", "https://")):
            raise ValueError("Bluesky PDS must be an http:// or https:// URL")
        self._handle = handle.strip().removeprefix("@")
        self._password = app_password
        self._store: SessionStore = (session_store if session_store is not None
                                     else MemorySessionStore())
        self._now = now
        # Every request carries the timeout (httpx's default is 5 s, the SDK sets none).
        # The hook notes the endpoint of the request going out, to tell a createRecord
        # that failed on the way from a refresh that failed before it.
        # The transport cuts each request's timeout to the time left of a publish
        # attempt (`post.deadline`) and starts none once it has passed.
        self._bound = AttemptBound(now)
        self._client: Any = _Client(base_url=pds, request=Request(
            timeout=timeout, event_hooks={"request": [self._note_request]},
            transport=_Bounded(self._bound), cookies=_Jar()))
        self._client.on_session_change(self._on_session_change)
        self._last_path = ""
        self._did: str | None = None             # set by the session events
        self._session_handle: str | None = None
        self._logged_in_now = False              # createSession already sent in this call
        # One call at a time: the session and the per-call state above are shared.
        self._lock = threading.Lock()

    @classmethod
    def from_credentials(cls, account: str, credentials: BlueskyCredentials, *,
                         timeout: float, now: Clock,
                         session_store: SessionStore) -> BlueskyPublisher:
        missing = credentials.missing()
        if missing:
            raise AuthError(f"Bluesky account {account}: missing credentials {', '.join(missing)}")
        return cls(credentials.handle, credentials.app_password,
                   pds=credentials.pds or DEFAULT_PDS, timeout=timeout,
                   session_store=session_store, now=now)

    @classmethod
    def prime(cls) -> None:
        """The TLS context, the models and the client's own lazy parts, built once."""
        _tls_context()
        for model in _MODELS:
            model.model_rebuild()
        cls("prime.invalid", "", pds="http://prime.invalid", now=lambda: datetime.now(UTC)).close()

    def max_characters(self) -> int | None:
        return None     # Bluesky's limit is the registry's, the same for every account

    def close(self) -> None:
        """Close the pooled HTTP connections; the adapter is not used afterwards."""
        self._client.request.close()

    # -- session --------------------------------------------------------------------------

    def _note_request(self, request: httpx.Request) -> None:
        self._last_path = request.url.path

    def _on_session_change(self, event: Any, session: Any) -> None:
        self._did, self._session_handle = session.did, session.handle
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            try:
                self._store.save(session.export())
            except Exception as e:  # the session still works in memory; the next process logs in
                # The class only: the message or traceback of a failed save can quote the
                # session string, access and refresh tokens included.
                log.warning("bluesky %s: could not save the session (%s)", self._handle,
                            type(e).__name__)

    def _restorable(self, saved: str) -> bool:
        """Is `saved` a session string of this account that the SDK can use?"""
        try:
            session = Session.decode(saved)
            readable = bool(session.access_jwt_payload.exp and session.refresh_jwt_payload.exp)
        except Exception:  # torn or foreign: log in instead
            return False
        # A store holding another account's session (the credentials were changed)
        # must not post as that account.
        return readable and self._handle.lower() in (session.handle.lower(), session.did.lower())

    def _login(self) -> None:
        try:
            self._client.login(self._handle, self._password, fetch_bsky_profile=False)
        except _SDK_ERRORS as e:
            error = _failure(e, "createSession", self._now())
            if type(error) is PermanentError:  # 400/403 refusing the login: the account's problem
                error = AuthError(error.message)
            raise error from e
        self._logged_in_now = True
        if self._session_handle and self._session_handle.lower() != self._handle.lower():
            log.warning("bluesky: %s logs in as %s; update the HANDLE credential, or every "
                        "new process logs in again", self._handle, self._session_handle)

    def _ensure_session(self) -> None:
        if self._did is not None:
            return
        saved = self._store.load()
        if saved and self._restorable(saved):
            self._client.login(session_string=saved, fetch_bsky_profile=False)  # sends nothing
        else:
            self._login()

    def _call(self, request: Callable[[], T]) -> T:
        """Send one authenticated request. If the session is refused and was not made in
        this call, log in once and send the request again: a refusal proves the request
        did nothing."""
        self._ensure_session()
        try:
            return request()
        except (BadRequestError, UnauthorizedError) as e:
            if self._logged_in_now or not _session_refused(e):
                raise
            log.info("bluesky %s: saved session refused (%s), logging in again",
                     self._handle, _describe(e))
        self._login()
        return request()

    def _begin(self) -> None:
        self._logged_in_now = False

    def warm(self) -> None:
        """Ready to publish with no login at the due second: the saved session restored
        or a new one made, and refreshed now if its access token has less than
        WARM_REFRESH left (the SDK would refresh it before the next request, under 15
        minutes; the scheduler warms an account again every minute while posts are due)."""
        with self._lock:
            self._begin()
            self._ensure_session()
            exp = self._client.access_expiry()
            if exp is None or datetime.fromtimestamp(exp, UTC) - self._now() >= WARM_REFRESH:
                return
            try:
                # the SDK has no public refresh; this is the call its own check makes
                self._client._refresh_and_set_session()
            except (BadRequestError, UnauthorizedError) as e:
                if self._logged_in_now or not _session_refused(e):
                    raise _failure(e, "refreshSession", self._now()) from e
                log.info("bluesky %s: saved session refused (%s), logging in again",
                         self._handle, _describe(e))
                self._login()
            except _SDK_ERRORS as e:
                raise _failure(e, "refreshSession", self._now()) from e

    # -- publish --------------------------------------------------------------------------

    def publish(self, post: Outgoing) -> Receipt:
        rkey = post_rkey(post)
        reply = _reply_ref(post)
        images = _read_images(post)
        labels = _self_labels(post)
        with self._lock, self._bound.attempt(post):
            self._begin()
            builder = self._rich_text(post.text)
            record = models.AppBskyFeedPost.Record(
                text=builder.build_text(),
                facets=builder.build_facets() or None,
                created_at=self._now().astimezone(UTC).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                langs=[post.language] if post.language else None,
                reply=reply,
                embed=self._embed(images),
                labels=labels,
            )
            return self._create(post, rkey, record)

    def _rich_text(self, text: str) -> Any:
        builder = client_utils.TextBuilder()
        dids: dict[str, str | None] = {}
        for seg in segments(text):
            if seg.kind == "link":
                builder.link(seg.text, seg.value)
            elif seg.kind == "tag":
                builder.tag(seg.text, seg.value)
            elif seg.kind == "mention":
                handle = seg.value.lower()
                if handle not in dids:
                    dids[handle] = self._resolve(handle)
                did = dids[handle]
                if did:
                    builder.mention(seg.text, did)
                else:
                    builder.text(seg.text)
            else:
                builder.text(seg.text)
        return builder

    def _resolve(self, handle: str) -> str | None:
        try:
            out = self._call(lambda: self._client.com.atproto.identity.resolve_handle(
                {"handle": handle}))
        except BadRequestError as e:
            if not _session_refused(e):
                return None  # "Unable to resolve handle": not an account, stays text
            raise _failure(e, "resolveHandle", self._now()) from e
        except _SDK_ERRORS as e:
            raise _failure(e, "resolveHandle", self._now()) from e
        return str(out.did)

    def _embed(self, images: list[tuple[bytes, str, str]]) -> Any:
        if not images:
            return None
        return models.AppBskyEmbedImages.Main(images=[
            models.AppBskyEmbedImages.Image(alt=alt, image=self._upload(data, mime))
            for data, mime, alt in images])

    def _upload(self, data: bytes, mime: str) -> Any:
        # Whatever happens, no post exists yet, and an unused blob is garbage-collected
        # by the PDS: every failure is one of a request that created nothing.
        try:
            out = self._call(lambda: self._client.com.atproto.repo.upload_blob(
                data, headers={"Content-Type": mime}))
        except _SDK_ERRORS as e:
            raise _failure(e, "uploadBlob", self._now()) from e
        return out.blob

    def _create(self, post: Outgoing, rkey: str, record: Any) -> Receipt:
        def send() -> Any:
            return self._client.com.atproto.repo.create_record(
                models.ComAtprotoRepoCreateRecord.Data(
                    repo=self._did, collection=COLLECTION, rkey=rkey, record=record))

        self._last_path = ""
        try:
            created = self._call(send)
        except _SDK_ERRORS as e:
            status = _status(e)
            sent = (self._last_path.endswith("/com.atproto.repo.createRecord")
                    and not isinstance(_root(e), _NOT_SENT))
            if (status is not None and status < 500) or (status is None and not sent):
                raise _failure(e, "createRecord", self._now()) from e
            return self._settle(post, rkey, _describe(e))
        return self._receipt(rkey, str(created.uri), str(created.cid))

    def _settle(self, post: Outgoing, rkey: str, cause: str) -> Receipt:
        """createRecord failed after it may have reached the PDS: does our key exist?"""
        try:
            found = self._get_record(rkey)
        except _SDK_ERRORS as e:
            raise UnknownOutcome(f"bluesky createRecord {rkey}: {cause}; getRecord could not "
                                 f"tell whether it exists: {_describe(e)}") from e
        if found is None:
            raise TransientError(f"bluesky createRecord {rkey}: {cause}; the record does not exist")
        if found.text != post.text:
            raise PermanentError(f"bluesky record {rkey} already holds another post "
                                 "(two posts due at the same instant share a record key)")
        log.info("bluesky createRecord %s: %s, but the record exists: published", rkey, cause)
        return self._receipt(rkey, found.uri, found.cid)

    def _get_record(self, rkey: str) -> _Found | None:
        """The record under `rkey` in our repo, or None if the PDS says there is none."""
        try:
            out = self._client.com.atproto.repo.get_record(
                {"repo": self._did, "collection": COLLECTION, "rkey": rkey})
        except BadRequestError as e:
            if _xrpc_error(e) == "RecordNotFound":
                return None
            raise
        value = out.value
        text = getattr(value, "text", None)
        if text is None and isinstance(value, Mapping):
            text = value.get("text")
        return _Found(str(out.uri), str(out.cid or ""), None if text is None else str(text))

    def _receipt(self, rkey: str, uri: str, cid: str) -> Receipt:
        handle = self._session_handle or self._handle
        return Receipt(remote_id=uri, url=f"https://bsky.app/profile/{handle}/post/{rkey}",
                       extra={"uri": uri, "cid": cid})

    # -- find, check ----------------------------------------------------------------------

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        # `since` is not needed: the post can only be under its own record key.
        rkey = post_rkey(post)
        with self._lock:
            self._begin()
            try:
                found = self._call(lambda: self._get_record(rkey))
            except PublishError as e:  # the login failed
                raise UnknownOutcome(f"bluesky find {rkey}: cannot tell: {e.message}") from e
            except _SDK_ERRORS as e:
                raise UnknownOutcome(f"bluesky getRecord {rkey}: cannot tell: {_describe(e)}") from e
            if found is None or found.text != post.text:
                return None
            return self._receipt(rkey, found.uri, found.cid)

    def engagement(self, remote_ids: Sequence[str]) -> dict[str, Engagement]:
        """Likes, reposts and replies: `app.bsky.feed.getPosts`, 25 at:// URIs a call.
        A post deleted since is not in the answer, and is left out."""
        out: dict[str, Engagement] = {}
        with self._lock:
            for i in range(0, len(remote_ids), GET_POSTS_AT_ONCE):
                self._begin()
                try:
                    answer = self._call(partial(self._client.app.bsky.feed.get_posts,
                                                {"uris": list(remote_ids[i:i + GET_POSTS_AT_ONCE])}))
                except _SDK_ERRORS as e:
                    raise _failure(e, "getPosts", self._now()) from e
                for view in answer.posts:
                    out[str(view.uri)] = Engagement(likes=int(view.like_count or 0),
                                                    reposts=int(view.repost_count or 0),
                                                    replies=int(view.reply_count or 0))
        return out

    def check(self) -> Identity:
        with self._lock:
            self._begin()
            try:
                profile = self._call(lambda: self._client.app.bsky.actor.get_profile(
                    {"actor": self._did}))
            except _SDK_ERRORS as e:
                raise _failure(e, "getProfile", self._now()) from e
            return Identity(platform="bluesky", handle=f"@{self._session_handle}",
                            remote_id=str(self._did), display_name=profile.display_name or None)


# -- parts of a post that need no request ---------------------------------------------------


def _strong_ref(receipt: Receipt, role: str) -> Any:
    uri, cid = receipt.extra.get("uri"), receipt.extra.get("cid")
    if not uri or not cid:
        raise PermanentError(f"bluesky: the {role} receipt {receipt.remote_id} has no uri and "
                             "cid to reply to")
    return models.ComAtprotoRepoStrongRef.Main(uri=str(uri), cid=str(cid))


def _reply_ref(post: Outgoing) -> Any:
    """Bluesky replies name the thread's first post (root) and the previous one (parent)."""
    if post.reply_to is None:
        return None
    root = post.thread_root if post.thread_root is not None else post.reply_to
    return models.AppBskyFeedPost.ReplyRef(root=_strong_ref(root, "thread root"),
                                           parent=_strong_ref(post.reply_to, "reply-to"))


def _read_images(post: Outgoing) -> list[tuple[bytes, str, str]]:
    """(bytes, MIME type, alt text) of each image, checked before anything is sent."""
    if len(post.media) > MAX_IMAGES:
        raise PermanentError(f"bluesky takes at most {MAX_IMAGES} images, got {len(post.media)}")
    images = []
    for media in post.media:
        try:
            data = media.read()
        except OSError as e:
            raise PermanentError(f"bluesky: cannot read {media.path}: {e.strerror}") from e
        if len(data) > MAX_IMAGE_BYTES:
            raise PermanentError(f"bluesky: {media.path} has {len(data)} bytes, "
                                 f"more than {MAX_IMAGE_BYTES}")
        mime = sniff(data)    # what the bytes are, not what the name says
        if mime is None:
            raise PermanentError(f"bluesky: {media.path} is not an image (PNG, JPEG, GIF or "
                                 "WebP)")
        images.append((data, mime, media.alt))
    return images


def _self_labels(post: Outgoing) -> Any:
    if not post.content_warning:
        return None
    value = post.content_warning.strip().lower()
    if value not in SELF_LABELS:
        log.warning("bluesky: content warning %r is not a Bluesky label; not sent",
                    post.content_warning)
        return None
    return models.ComAtprotoLabelDefs.SelfLabels(
        values=[models.ComAtprotoLabelDefs.SelfLabel(val=value)])


if TYPE_CHECKING:
    _contract: type[Publisher[BlueskyCredentials]] = BlueskyPublisher
    _warms: type[Warms] = BlueskyPublisher
