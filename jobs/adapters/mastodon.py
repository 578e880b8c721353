"""The Mastodon adapter, through Mastodon.py 2.3.

Credentials: INSTANCE (the server's base URL, e.g. https://mastodon.social; a bare host
gets https://) and ACCESS_TOKEN (an application token with the scopes write:statuses,
write:media, read:accounts and read:statuses). Tokens do not expire, so the session store
is not used.

Endpoints:
- publish: `POST /api/v2/media` per image (description = alt text; before its first upload
  Mastodon.py itself reads `GET /api/v1/instance/` and `/api/v2/instance/` to pick the
  media endpoint), then `POST /api/v1/statuses` with the post's idempotency key in the
  `Idempotency-Key` header on every attempt. Mastodon remembers the key for about an hour
  and answers a repeat with the status it already made, so a retry within that hour
  never makes a second copy.
- find: `GET /api/v1/accounts/verify_credentials` (the account id, cached), then
  `GET /api/v1/accounts/:id/statuses?limit=40&exclude_reblogs=true`, paging back with
  `max_id`; `find_many` looks a round of posts up in one such walk. The
  Idempotency-Key cannot serve as a lookup: a repeat would create the post.
- check: `GET /api/v1/accounts/verify_credentials`.
- max_characters: `GET /api/v2/instance/` (`GET /api/v1/instance/` before Mastodon 4.0),
  once per adapter instance.

The SDK is built with `ratelimit_method="throw"` (it would otherwise sleep up to five
minutes on a 429), `request_timeout=timeout` on every request, and
`version_check_mode="none"` so that constructing it sends nothing. A transport adapter
on its session cuts each request's timeout to the time left of a publish attempt
(`post.deadline`) and sends nothing once that has passed (nothing created: "could not
connect", TransientError); its connections come from the process's one pool shared by
every account (`jobs/adapters/pools.py`; the session, with its cookies, stays the
account's). The same adapter spares the SDK casting all of a created status and parsing
rate-limit times of 2xx answers (`_lighter`): about half its CPU a post.

Error rule (one attempt, nothing retried here):
- 429 -> TransientError; `resume_at`/`retry_after` from X-RateLimit-Reset (Mastodon sends
  ISO 8601; the SDK parses it into `ratelimit_reset`, corrected by the Date header).
- 5xx (or a proxy's HTML error page) on the status create -> UnknownOutcome: it does
  not prove the status was not made (a 502/504 may come after Mastodon made it), so
  the scheduler looks it up with find() before any retry or expiry; a retry later still
  carries the Idempotency-Key. On uploads and reads, 5xx -> TransientError.
- 401 -> AuthError. Other 4xx (400, 403, 404 for a deleted reply target, 422 text too
  long or media refused) -> PermanentError, except 422 "not finished processing" on
  media, which is TransientError.
- No connection (refused, DNS, TLS, connect timeout): nothing was sent -> TransientError.
- Sent but no answer (read timeout, connection dropped) or an unreadable 2xx: on the
  status create -> UnknownOutcome (the status may exist; the scheduler reconciles with
  find(), and a later retry still carries the key); on uploads and reads ->
  TransientError (an orphaned upload is invisible and Mastodon deletes it).
- A media file that cannot be read or typed -> PermanentError. An INSTANCE or token
  that requests cannot even put in a request (bad URL, control characters) -> AuthError.
Messages carry the HTTP status and Mastodon's own error text, never the token.

find() matching: a status is the post when its reply target and content warning are the
post's and its text is the post's. `content` is HTML, so tags are stripped and entities
unescaped, paragraphs and line breaks count as whitespace and whitespace is compared
collapsed. Links: Mastodon shows a link cut at 30 characters but keeps the rest in
invisible spans, so the anchor's whole text is the URL as posted; where a server shows
only a cut text (ending in "…" or without its scheme) the href is taken instead.
Mentions: Mastodon shows `@user@domain` as `@user`, so both sides compare `@user`. A
status older than `since` minus five minutes (clock skew between us and the server) is
not considered. The post is absent when the listing reaches past that point or ends;
after five pages (200 statuses) without either, find() cannot tell.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
)
from mastodon.return_types import Status
from mastodon.types_base import try_cast_recurse

from content.media import sniff
from content.platforms import MastodonCredentials
from jobs.adapters.base import AttemptBound, Clock, Publisher, SessionStore, env_once
from jobs.adapters.pools import SharedPoolAdapter
from jobs.errors import AuthError, PermanentError, PublishError, TransientError, UnknownOutcome
from jobs.outgoing import Engagement, Identity, Media, Outgoing, Receipt

DEFAULT_MAX_CHARACTERS = 500        # Mastodon's default, when the instance says nothing
PAGE_SIZE = 40                      # the most account_statuses gives in one page
# An account may post 300 times in 5 minutes (its rate limit), and a lookup reaches
# 7 minutes back from the claim: 20 pages of 40 cover that with room to spare.
MAX_PAGES = 20
CLOCK_SKEW = timedelta(minutes=5)
MEDIA_PROCESSING_RETRY = 5.0        # seconds: an image still being processed

# The SDK raises these for any failure it could not complete; what lies under the
# MastodonNetworkError tells whether the request ever left.
_NOT_SENT = (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError,
             requests.exceptions.ProxyError, urllib3.exceptions.NewConnectionError,
             urllib3.exceptions.ConnectTimeoutError, ConnectionRefusedError)
# requests refusing to build the request at all: a malformed INSTANCE or token.
_UNUSABLE = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
             requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)


class _OutOfTime(requests.exceptions.ConnectTimeout):
    """The attempt's time bound ran out before this request: it was never sent."""


class _Bounded(SharedPoolAdapter):
    """Cuts each request's timeout to the time left of the publish attempt under way
    (`post.deadline`); once none is left the request never leaves ("could not connect":
    nothing was sent). And spares the SDK work on answers whose rest we never read
    (`_lighter`)."""

    def __init__(self, bound: AttemptBound) -> None:
        super().__init__(max_retries=0)
        self.bound = bound

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float, float] | tuple[float, None] | None = None,
             verify: bool | str = True,
             cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        # the SDK passes its request_timeout, a number, on every request
        limit = self.bound.timeout(float(timeout) if isinstance(timeout, (int, float))
                                   else 3600.0)
        if limit is None:
            raise _OutOfTime("the attempt's time bound ran out before this request",
                             request=request)
        response = super().send(request, stream=stream, timeout=limit, verify=verify,
                                cert=cert, proxies=proxies)
        if 200 <= response.status_code < 300 and not stream:
            _lighter(request, response)
        return response


# What `_receipt` reads of a created status: all that is kept of the SDK's answer.
_RECEIPT_FIELDS = ("id", "uri", "url")


def _lighter(request: requests.PreparedRequest, response: requests.Response) -> None:
    """Two things Mastodon.py does with every 2xx answer, and that cost more CPU than
    the rest of a post, undone before it sees the answer (it has no switch for either):

    - It casts the JSON into typed entities, every field of the status and of its
      account, recursively: 3 of the 6 ms of CPU a post costs. Of a created status
      (`POST /api/v1/statuses`) only its id, uri and url are kept (`_RECEIPT_FIELDS`,
      what the receipt needs), so there is little to cast. An answer that is not a JSON
      object with an id is left as it is: the SDK's own error for it stands.
    - It parses `X-RateLimit-Reset` and `Date` with dateutil (0.2 ms) to note when the
      limit resets. Only a 429's reset is read (`_error`; "throw" mode never paces), and
      a 429 is no 2xx: the header is dropped here.
    """
    response.headers.pop("X-RateLimit-Reset", None)
    if request.method != "POST" or not (request.path_url or "").endswith("/api/v1/statuses"):
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if isinstance(body, dict) and "id" in body:
        response._content = json.dumps(
            {k: body[k] for k in _RECEIPT_FIELDS if k in body}).encode()


class MastodonPublisher:
    """Publishes to one Mastodon account; one instance per account."""

    platform: ClassVar[str] = "mastodon"
    CREDENTIALS: ClassVar[type[MastodonCredentials]] = MastodonCredentials

    def __init__(self, instance: str, access_token: str, *, account: str = "mastodon",
                 timeout: float = 10.0, now: Clock) -> None:
        self.account = account
        self.timeout = timeout
        self._now = now
        base = instance.strip()
        if not base.startswith(("http://", "https://")):
            base = "https://" + base
        base = base.rstrip("/")
        host = urlsplit(base).hostname
        if not host:
            raise AuthError(f"mastodon account {account!r}: INSTANCE is not a server URL")
        self.base_url = base
        self._host = host
        # Untyped on purpose: the SDK returns attribute-dicts whose declared unions
        # (Status | ScheduledStatus, ...) say less than the endpoints we call.
        self._api: Any = Mastodon(
            access_token=access_token.strip(), api_base_url=base,
            ratelimit_method="throw", request_timeout=timeout,
            version_check_mode="none", user_agent="tminus (Mastodon.py)")
        self._bound = AttemptBound(now)
        for scheme in ("http://", "https://"):
            self._api.session.mount(scheme, _Bounded(self._bound))
        env_once(self._api.session)
        self._account_id: str | None = None
        self._max_characters: int | None = None

    @classmethod
    def from_credentials(cls, account: str, credentials: MastodonCredentials, *,
                         timeout: float, now: Clock,
                         session_store: SessionStore) -> MastodonPublisher:
        # An access token does not expire: there is no session to store.
        missing = credentials.missing()
        if missing:
            raise AuthError(f"mastodon account {account!r}: missing credential "
                            f"{', '.join(missing)}")
        return cls(credentials.instance, credentials.access_token, account=account,
                   timeout=timeout, now=now)

    @classmethod
    def prime(cls) -> None:
        """The SDK casts every answer to its typed entities, reading each entity class's
        type hints the first time it meets it (~10 ms of CPU): a status cast once here."""
        try_cast_recurse(Status, {  # type: ignore[no-untyped-call]
            "id": "1", "created_at": "2026-01-01T00:00:00.000Z", "content": "<p>x</p>",
            "visibility": "public", "sensitive": False, "spoiler_text": "", "reblog": None,
            "account": {"id": "1", "username": "x", "acct": "x", "emojis": [], "fields": []},
            "application": {"name": "x", "website": None}, "media_attachments": [
                {"id": "1", "type": "image", "url": "https://x.invalid/1", "meta": {}}],
            "mentions": [], "tags": [], "emojis": [], "card": None, "poll": None})

    def close(self) -> None:
        self._api.session.close()

    # -- publish -------------------------------------------------------------------------

    def publish(self, post: Outgoing) -> Receipt:
        with self._bound.attempt(post):
            return self._publish(post)

    def _publish(self, post: Outgoing) -> Receipt:
        self._forget_rate_limit()
        media_ids = [self._upload(item) for item in post.media]
        try:
            status = self._api.status_post(
                post.text,
                in_reply_to_id=post.reply_to.remote_id if post.reply_to else None,
                media_ids=media_ids or None,
                sensitive=bool(post.content_warning),
                visibility=post.visibility,
                spoiler_text=post.content_warning,
                language=post.language,
                idempotency_key=post.idempotency_key)
        except (MastodonError, ValueError) as exc:
            raise self._error(exc, "posting the status", creating=True) from exc
        if not status or status.get("id") is None:
            # a 2xx without the status: the server acted, on what cannot be told
            raise UnknownOutcome("mastodon: posting the status: 2xx answer without an id; "
                                 "the status may exist")
        return _receipt(status)

    def _upload(self, item: Media) -> str:
        name = Path(item.path).name
        try:
            # the bytes the daemon checked against the approval (our own file object:
            # the SDK leaves a file it opens itself open)
            data = item.read()
        except OSError as exc:
            raise PermanentError(f"mastodon: cannot read media file {name}: "
                                 f"{exc.strerror}") from exc
        mime_type = sniff(data)     # what the bytes are, not what the name says
        if mime_type is None:
            raise PermanentError(f"mastodon: media file {name} is not a PNG, JPEG, GIF or "
                                 "WebP image")
        fh = io.BytesIO(data)
        with fh:
            try:
                attachment = self._api.media_post(fh, mime_type=mime_type,
                                                  description=item.alt, file_name=name)
            except (MastodonError, ValueError) as exc:
                raise self._error(exc, f"uploading {name}", creating=False) from exc
        return str(attachment["id"])

    # -- find ----------------------------------------------------------------------------

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        found = self.find_many([(post, since)])[post.post_id]
        if isinstance(found, UnknownOutcome):
            raise found
        return found

    def find_many(self, wanted: Sequence[tuple[Outgoing, datetime]]
                  ) -> dict[int, Receipt | UnknownOutcome | None]:
        """Several posts looked up in one walk back through the account's statuses
        (reconciliation after a crash has a round of them: one listing each would take
        minutes on a slow instance)."""
        floors = {post.post_id: (post, _aware(since) - CLOCK_SKEW) for post, since in wanted}
        out: dict[int, Receipt | UnknownOutcome | None] = {}
        if not floors:
            return out
        oldest = min(floor for _, floor in floors.values())
        self._forget_rate_limit()
        try:
            account_id = self._own_account_id()
            max_id: str | None = None
            for _ in range(MAX_PAGES):
                page = self._api.account_statuses(account_id, limit=PAGE_SIZE, max_id=max_id,
                                                  exclude_reblogs=True)
                for status in page or []:
                    for post_id, (post, floor) in list(floors.items()):
                        if _created_at(status) >= floor and _is_post(status, post):
                            out[post_id] = _receipt(status)
                            del floors[post_id]
                # newest first: a page reaching past the oldest floor, a short page (the
                # account's first status) or no page has shown everything there is
                if (not floors or not page or _created_at(page[-1]) < oldest
                        or len(page) < PAGE_SIZE):
                    return {**out, **dict.fromkeys(floors, None)}
                max_id = str(page[-1]["id"])
        except (MastodonError, ValueError) as exc:
            cause = self._error(exc, "listing the account's statuses", creating=False)
            why = cause.message.removeprefix("mastodon: ")
            return {**out, **{post_id: UnknownOutcome(
                f"mastodon: cannot tell whether post {post_id} went out: {why}")
                for post_id in floors}}
        return {**out, **{post_id: UnknownOutcome(
            f"mastodon: cannot tell whether post {post_id} went out: more than "
            f"{MAX_PAGES * PAGE_SIZE} statuses since {(floor + CLOCK_SKEW).isoformat()}")
            for post_id, (_, floor) in floors.items()}}

    # -- engagement (the campaign report) -----------------------------------------------

    def engagement(self, remote_ids: Sequence[str]) -> dict[str, Engagement]:
        """Favourites, boosts and replies of our statuses: `GET /api/v1/statuses/:id`
        each (Mastodon has no batch read). A status deleted since is left out."""
        self._forget_rate_limit()
        out: dict[str, Engagement] = {}
        for remote_id in remote_ids:
            try:
                status = self._api.status(remote_id)
            except MastodonNotFoundError:
                continue
            except (MastodonError, ValueError) as exc:
                raise self._error(exc, "reading a status's counts", creating=False) from exc
            out[remote_id] = Engagement(likes=int(status.get("favourites_count") or 0),
                                        reposts=int(status.get("reblogs_count") or 0),
                                        replies=int(status.get("replies_count") or 0))
        return out

    # -- check and limits ----------------------------------------------------------------

    def check(self) -> Identity:
        self._forget_rate_limit()
        try:
            me = self._api.account_verify_credentials()
        except (MastodonError, ValueError) as exc:
            raise self._error(exc, "verifying the credentials", creating=False) from exc
        self._account_id = str(me["id"])
        return Identity(platform=self.platform, handle=f"@{me['username']}@{self._host}",
                        remote_id=self._account_id,
                        display_name=me.get("display_name") or None)

    def max_characters(self) -> int | None:
        """The instance's own status length limit, read once per adapter instance."""
        if self._max_characters is None:
            self._max_characters = self._read_max_characters()
        return self._max_characters

    def _read_max_characters(self) -> int:
        self._forget_rate_limit()
        try:
            try:
                info = self._api.instance_v2()
            except MastodonNotFoundError:  # before Mastodon 4.0 there is only v1
                info = self._api.instance_v1()
        except (MastodonError, ValueError) as exc:
            raise self._error(exc, "reading the instance's limits", creating=False) from exc
        statuses = ((info.get("configuration") or {}).get("statuses") or {})
        for value in (statuses.get("max_characters"), info.get("max_toot_chars")):
            if isinstance(value, int) and value > 0:
                return value
        return DEFAULT_MAX_CHARACTERS

    # -- plumbing ------------------------------------------------------------------------

    def _own_account_id(self) -> str:
        if self._account_id is None:
            self._account_id = str(self._api.account_verify_credentials()["id"])
        return self._account_id

    def _forget_rate_limit(self) -> None:
        # The SDK keeps the last reset it saw; a 429 that carries none must not be
        # given an older response's.
        self._api.ratelimit_reset = None

    def _error(self, exc: BaseException, action: str, *, creating: bool) -> PublishError:
        """Map an SDK exception to the PublishError tree (see the module docstring)."""
        where = f"mastodon: {action}"
        if isinstance(exc, MastodonRatelimitError):
            reset = self._api.ratelimit_reset
            if isinstance(reset, (int, float)):
                return TransientError(f"{where}: HTTP 429 rate limited",
                                      retry_after=max(0.0, reset - self._now().timestamp()),
                                      resume_at=datetime.fromtimestamp(reset, UTC))
            return TransientError(f"{where}: HTTP 429 rate limited")
        if isinstance(exc, MastodonNetworkError):
            causes = _causes(exc)
            kind = (" / ".join(dict.fromkeys(type(c).__name__ for c in (causes[0], causes[-1])))
                    if causes else "network error")
            if any(isinstance(c, _UNUSABLE) for c in causes):
                # Nothing was sent; the INSTANCE or ACCESS_TOKEN cannot be used as given.
                return AuthError(f"{where}: credentials unusable ({kind})")
            if any(isinstance(c, _OutOfTime) for c in causes):
                return TransientError(f"{where}: not sent, the attempt's time bound ran out")
            if any(isinstance(c, _NOT_SENT) for c in causes):
                return TransientError(f"{where}: could not connect ({kind})")
            if creating:
                return UnknownOutcome(f"{where}: no answer after sending ({kind}); "
                                      "the status may exist")
            return TransientError(f"{where}: no answer ({kind})")
        if isinstance(exc, MastodonAPIError):
            args = exc.args
            if len(args) < 2 or not isinstance(args[1], int):
                # A 2xx the SDK could not read: the server did act.
                if creating:
                    return UnknownOutcome(f"{where}: unreadable answer; the status may exist")
                return TransientError(f"{where}: unreadable answer")
            status = args[1]
            text = args[3] if len(args) > 3 and args[3] else (args[2] if len(args) > 2 else "")
            message = f"{where}: HTTP {status} {text}".rstrip()
            if status == 401:
                return AuthError(message)
            if status >= 500:
                if creating:
                    return UnknownOutcome(f"{message}; the status may exist")
                return TransientError(message)
            if "not finished processing" in str(text):
                return TransientError(message, retry_after=MEDIA_PROCESSING_RETRY)
            return PermanentError(message)
        if isinstance(exc, ValueError):  # the SDK refused an argument (e.g. visibility)
            return PermanentError(f"{where}: {exc}")
        return TransientError(f"{where}: {type(exc).__name__}")


# -- statuses as data ----------------------------------------------------------------------


def _receipt(status: Mapping[str, Any]) -> Receipt:
    return Receipt(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))


def _causes(exc: BaseException) -> list[BaseException]:
    """The exceptions under `exc`, outermost first (the SDK re-raises inside `except`)."""
    found: list[BaseException] = []
    current = exc.__cause__ or exc.__context__
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    # requests wraps urllib3's MaxRetryError, whose `reason` is the connection error.
    for c in list(found):
        reason = getattr(c, "reason", None)
        if isinstance(reason, BaseException) and reason not in found:
            found.append(reason)
    return found


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _created_at(status: Mapping[str, Any]) -> datetime:
    value = status["created_at"]
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"status {status.get('id')} has no readable created_at")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _is_post(status: Mapping[str, Any], post: Outgoing) -> bool:
    if status.get("reblog"):
        return False
    wanted_reply = post.reply_to.remote_id if post.reply_to else None
    reply = status.get("in_reply_to_id")
    if (str(reply) if reply is not None else None) != wanted_reply:
        return False
    if _comparable(status.get("spoiler_text") or "") != _comparable(post.content_warning or ""):
        return False
    return _comparable(html_to_text(status.get("content") or "")) == _comparable(post.text)


# Mastodon's mention pattern: `@user` or `@user@domain`, not inside a word, URL or e-mail.
_REMOTE_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+\w", re.IGNORECASE)


def _comparable(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = _REMOTE_MENTION.sub(r"@\1", text)
    return " ".join(text.split())


class _PlainText(HTMLParser):
    """Mastodon's status HTML back to the text that was posted (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._link: tuple[str, list[str]] | None = None   # (href, text seen so far)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._emit("\n")
        elif tag == "a" and self._link is None:
            a = dict(attrs)
            classes = (a.get("class") or "").split()
            if a.get("href") and "mention" not in classes and "hashtag" not in classes:
                self._link = (a["href"] or "", [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            href, seen = self._link
            self._link = None
            shown = "".join(seen)
            whole = shown.lower().startswith(("http://", "https://")) and "…" not in shown
            # Mentions and hashtags written as plain links keep their text too.
            self.parts.append(shown if whole or shown.startswith(("@", "#")) else href)
        elif tag == "p":
            self._emit("\n\n")

    def handle_data(self, data: str) -> None:
        self._emit(data)

    def _emit(self, text: str) -> None:
        if self._link is not None:
            self._link[1].append(text)
        else:
            self.parts.append(text)


def html_to_text(content: str) -> str:
    parser = _PlainText()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts).strip()


if TYPE_CHECKING:
    _contract: type[Publisher[MastodonCredentials]] = MastodonPublisher
