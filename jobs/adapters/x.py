"""The X adapter: tweepy's v2 `Client` with OAuth 1.0a user context, one attempt per call.

Endpoints (all on api.twitter.com, signed with the account's OAuth 1.0a credentials):

- `POST /2/tweets` (`Client.create_tweet`): the post; `reply.in_reply_to_tweet_id` for
  threads, `media.media_ids` for images.
- `POST /2/media/upload` (simple upload, multipart `media` + `media_category=tweet_image`,
  answer `data.id`) and `POST /2/media/metadata` (alt text). tweepy 4.17 only knows the
  retired v1.1 upload, so these two go through the Client's own `session`, signed by
  the account's signer as `Client.request()` signs (see `_Client` below).
- `GET /2/users/me` (`check()`, and the user id `find()` needs; cached with the username,
  which also makes receipt URLs `https://x.com/<username>/status/<id>`).
- `GET /2/users/:id/tweets` with `start_time` (`find()`).

tweepy's `Client` hard-codes `https://api.twitter.com` and passes no timeout, so a
transport adapter is mounted on its session for "https://": it applies our timeout to
every request (cut to the time left of a publish attempt, `post.deadline`; no request
starts once it has passed: "could not connect", nothing created) and, when `API_BASE`
is set (tests, a fake server), rewrites the api.twitter.com host to it, so nothing then
reaches the real X. Its connections come from the process's one pool shared by every
account (`jobs/adapters/pools.py`); the session, with its cookies, stays the account's.

`Client.request`, which every endpoint method of tweepy's goes through, builds the
account's OAuth 1.0a signer anew for each request (an `OAuth1UserHandler`, which makes
a whole `requests.Session` of its own, then requests-oauthlib's `OAuth1`) and formats
two debug messages, the answer's headers and body among them, whether debug logging is
on or not: about a tenth of a post's CPU. `_Client` is tweepy's `Client` with that one
method in its own words: the signer `OAuth1UserHandler(...).apply_auth()` made once per
account (it keeps no state between requests: each signature has its own nonce and
timestamp), one lazy debug line, and every answer raised as the same tweepy exception
`Client.request` raises for it (`tests/test_adapter_x.py` compares the two).

Error rule (every failure becomes one of `jobs.errors`):

- 401 -> AuthError. 400 (text too long: "Your Tweet text is too long..."), 403, 404 and
  any other 4xx -> PermanentError, except the duplicate-content 403 below.
- 429 -> TransientError. `resume_at` is `x-rate-limit-reset` (Unix seconds) or, when
  `x-user-limit-24hour-remaining` / `x-app-limit-24hour-remaining` is 0, the later of the
  matching `...-24hour-reset` headers (tweepy ignores those); `retry_after` is the
  seconds from now until then.
- 5xx on `POST /2/tweets` (500, 502, 503, 504, any other, and a proxy's HTML error
  page) -> UnknownOutcome: none of them proves X turned the request away before it
  acted (a 503 answered after the tweet was made was seen), so the scheduler looks the
  tweet up with `find()` before any retry or expiry. (Where X answers 503 to every
  create of an app, as it has since early 2026, tweepy issue #2237, that costs one
  timeline read per attempt, and the attempts back off as after any failure.) A 5xx on
  any other request -> TransientError (nothing is created by an upload or a read).
- Duplicate content (403, detail "You are not allowed to create a Tweet with duplicate
  content.", no api code, so the message is matched): `publish()` calls `find()` from
  10 minutes before `post.due_at` (clock skew margin; an attempt never starts before
  the post is due) and returns that receipt when the tweet is already out, else raises
  PermanentError (an identical, older tweet blocks this one).
- Network: no connection made (refused, connect timeout, TLS failure) -> TransientError.
  A read timeout or a connection dropped after the request was written -> UnknownOutcome
  for `POST /2/tweets` (a timeout before X acted looks the same from here), and
  TransientError for everything else: a media upload that may have landed only leaves
  an unused media id that X expires after a day.
- `find()` raises UnknownOutcome for any failure of its own requests; `check()` maps
  failures like a publish that created nothing.

`find()` matches a tweet exactly. The timeline does not return the text we sent: X
replaces every link (with or without a scheme) by a t.co link, appends a t.co link to
the media of a tweet with images, and HTML-escapes `&`, `<` and `>`. So `find()` asks
for `entities` and puts each t.co link's `expanded_url` back in its place (a media
link, one with a `media_key`, is dropped), unescapes the three, and compares that with
the text we sent: both NFC-normalised, whitespace collapsed, and in links only what X
may rewrite set aside (the scheme, which X adds to a bare domain; the host's case; a
lone "/" path). Two posts that differ in a link's path never match. A tweet that
would match with its links masked but whose t.co links X gave no `expanded_url` for
cannot be told apart: `find()` raises UnknownOutcome rather than say absent. For a
reply, the `replied_to` reference must name `post.reply_to`. Threads reply to our own
tweets, so X prepends no @mention. The timeline can lag a freshly created tweet by a
few seconds: a `find()` at once after a timeout may say absent for a tweet that is
about to appear.

X has no per-post language (it detects it), visibility or content warning:
`post.language`, `post.visibility` and `post.content_warning` are not sent.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
import tweepy
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from content.media import sniff
from content.platforms import PLATFORMS, XCredentials
from jobs.adapters.base import AttemptBound, Clock, Publisher, SessionStore, env_once
from jobs.adapters.pools import SharedPoolAdapter
from jobs.errors import (
    AuthError,
    PermanentError,
    PublishError,
    TransientError,
    UnknownOutcome,
)
from jobs.outgoing import Engagement, Identity, Media, Outgoing, Receipt

API_HOST = "api.twitter.com"
API_ROOT = f"https://{API_HOST}"
MAX_MEDIA = PLATFORMS["x"].media.max_count     # images per tweet
TIMELINE_PAGE = 100           # max_results allowed by GET /2/users/:id/tweets
GET_TWEETS_AT_ONCE = 100      # the most ids GET /2/tweets takes
TIMELINE_PAGES = 5            # find() reads at most this many pages before giving up
DUPLICATE_LOOKBACK = timedelta(minutes=10)
DUPLICATE_DETAIL = "duplicate content"

log = logging.getLogger(__name__)


class _XTransport(SharedPoolAdapter):
    """Gives every request our timeout and, with `api_base`, sends api.twitter.com
    requests there instead. The OAuth signature was computed for the original URL,
    which is what the real X would check; a fake server does not check it."""

    def __init__(self, timeout: float, api_base: str | None,
                 bound: AttemptBound | None = None) -> None:
        super().__init__(max_retries=0)  # one attempt: no silent retry inside urllib3
        self.timeout = timeout
        self.api_base = api_base.rstrip("/") if api_base else None
        self.bound = bound

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float, float] | tuple[float, None] | None = None,
             verify: bool | str = True,
             cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        if self.api_base and request.url:
            parts = urlsplit(request.url)
            if parts.hostname == API_HOST:
                query = f"?{parts.query}" if parts.query else ""
                request.url = f"{self.api_base}{parts.path}{query}"
        limit = self.bound.timeout(self.timeout) if self.bound else self.timeout
        if limit is None:       # the attempt's time is up: this request never leaves
            raise requests.ConnectTimeout("the attempt's time bound ran out before this "
                                          "request", request=request)
        return super().send(request, stream=stream, timeout=limit, verify=verify,
                            cert=cert, proxies=proxies)


class _Client(tweepy.Client):  # type: ignore[misc]  # tweepy has no types
    """tweepy's `Client`, its `request` with the account's signer made once (module
    docstring). Rate limits are never waited on (`wait_on_rate_limit` is refused)."""

    def __init__(self, *, consumer_key: str, consumer_secret: str, access_token: str,
                 access_token_secret: str) -> None:
        super().__init__(consumer_key=consumer_key, consumer_secret=consumer_secret,
                         access_token=access_token, access_token_secret=access_token_secret,
                         return_type=dict, wait_on_rate_limit=False)
        # requests-oauthlib's OAuth1, as tweepy builds it for every request
        self.signer = tweepy.OAuth1UserHandler(
            consumer_key, consumer_secret, access_token, access_token_secret).apply_auth()

    def request(self, method: str, route: str, params: Mapping[str, Any] | None = None,
                json: Any = None, user_auth: bool = False) -> requests.Response:
        if self.wait_on_rate_limit:     # one attempt per call: never sleeps here
            raise TypeError("XPublisher's client never waits on a rate limit")
        headers = {"User-Agent": self.user_agent}
        if not user_auth:               # app-only calls: none of ours makes one
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        with self.session.request(method, API_ROOT + route, params=params, json=json,
                                  headers=headers,
                                  auth=self.signer if user_auth else None) as response:
            status = response.status_code
            log.debug("X %s %s answered %s", method, route, status)
            if 200 <= status < 300:
                return response  # type: ignore[no-any-return]  # tweepy has no types
            raise _tweepy_error(response)


def _tweepy_error(response: requests.Response) -> tweepy.HTTPException:
    """The exception tweepy's `Client.request` raises for a non-2xx answer."""
    status = response.status_code
    if status == 429:
        reset = response.headers.get("x-rate-limit-reset")
        return tweepy.TooManyRequests(response, reset_time=None if reset is None
                                      else int(reset))
    kind = {400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden,
            404: tweepy.NotFound}.get(status)
    if kind is None:
        kind = tweepy.TwitterServerError if status >= 500 else tweepy.HTTPException
    return kind(response)


class XPublisher:
    """Publishes to one X account."""

    platform: ClassVar[str] = "x"
    CREDENTIALS: ClassVar[type[XCredentials]] = XCredentials

    def __init__(self, *, api_key: str, api_secret: str, access_token: str,
                 access_secret: str, api_base: str | None = None, timeout: float = 10.0,
                 now: Clock) -> None:
        if api_base and not api_base.startswith(("http://", "https://")):
            raise ValueError("X API_BASE must be an http:// or https:// URL")
        self._client = _Client(consumer_key=api_key, consumer_secret=api_secret,
                               access_token=access_token, access_token_secret=access_secret)
        self._bound = AttemptBound(now)
        self._transport = _XTransport(timeout, api_base, self._bound)
        self._client.session.mount("https://", self._transport)
        env_once(self._client.session)
        self._now = now
        self._me: tuple[str, str, str | None] | None = None  # id, username, name

    @classmethod
    def from_credentials(cls, account: str, credentials: XCredentials, *, timeout: float,
                         now: Clock, session_store: SessionStore) -> XPublisher:
        # OAuth 1.0a is stateless: there is no session to store.
        missing = credentials.missing()
        if missing:
            raise AuthError(f"X account {account}: missing credentials {', '.join(missing)}")
        return cls(api_key=credentials.api_key, api_secret=credentials.api_secret,
                   access_token=credentials.access_token,
                   access_secret=credentials.access_secret,
                   api_base=credentials.api_base or None, timeout=timeout, now=now)

    def max_characters(self) -> int | None:
        return None     # X's limit is the registry's, the same for every account

    def close(self) -> None:
        self._client.session.close()

    # -- publish ---------------------------------------------------------------------

    def publish(self, post: Outgoing) -> Receipt:
        with self._bound.attempt(post):
            return self._publish(post)

    def _publish(self, post: Outgoing) -> Receipt:
        if len(post.media) > MAX_MEDIA:
            raise PermanentError(f"X takes at most {MAX_MEDIA} images, got {len(post.media)}")
        media_ids = [self._upload(media) for media in post.media]
        kwargs: dict[str, Any] = {"text": post.text}
        if post.reply_to is not None:
            kwargs["in_reply_to_tweet_id"] = post.reply_to.remote_id
        if media_ids:
            kwargs["media_ids"] = media_ids
        try:
            body = self._call("create tweet", self._client.create_tweet, creating=True,
                              **kwargs)
        except PermanentError as exc:
            if DUPLICATE_DETAIL not in exc.message.lower():
                raise
            # An earlier attempt of this very post may be out already.
            found = self.find(post, post.due_at - DUPLICATE_LOOKBACK)
            if found is not None:
                return found
            raise PermanentError(f"{exc.message} (no such tweet since the post was due: "
                                 "an older identical tweet blocks it)") from exc
        tweet_id = _data_id(body)
        if tweet_id is None:
            raise UnknownOutcome("X create tweet: 2xx answer without data.id")
        return self._receipt(tweet_id)

    def _upload(self, media: Media) -> str:
        path = Path(media.path)
        try:
            content = media.read()
        except OSError as exc:
            raise PermanentError(f"X upload media: cannot read {path.name}: "
                                 f"{exc.strerror}") from exc
        # the type the bytes are (content.media.sniff), not what the file name says
        mime = sniff(content)
        if mime is None:
            raise PermanentError(f"X upload media: {path.name} is not a PNG, JPEG, GIF or "
                                 "WebP image")
        body = self._signed_post("upload media", "/2/media/upload",
                                 files={"media": (path.name, content, mime)},
                                 data={"media_category": "tweet_image"})
        media_id = _data_id(body)
        if media_id is None:
            raise TransientError("X upload media: 2xx answer without data.id")
        if media.alt:
            self._signed_post("set alt text", "/2/media/metadata", json={
                "id": media_id, "metadata": {"alt_text": {"text": media.alt}}})
        return media_id

    def _signed_post(self, action: str, route: str, **kwargs: Any) -> dict[str, Any]:
        """POST to an endpoint tweepy lacks, signed as `Client.request()` signs."""
        client = self._client
        try:
            with client.session.post(API_ROOT + route, auth=client.signer,
                                     headers={"User-Agent": client.user_agent},
                                     **kwargs) as response:
                if not 200 <= response.status_code < 300:
                    # tweepy's exception reads X's error text out of the answer.
                    raise _http_error(tweepy.HTTPException(response), action,
                                      creating=False, now=self._now())
                body: dict[str, Any] = response.json()
                return body
        except requests.RequestException as exc:
            raise _network_error(exc, action, creating=False) from exc

    def _receipt(self, tweet_id: str) -> Receipt:
        if self._me is not None:
            return Receipt(remote_id=tweet_id, url=f"https://x.com/{self._me[1]}/status/{tweet_id}")
        return Receipt(remote_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")

    # -- find ------------------------------------------------------------------------

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        since = min(since, self._now())   # X refuses a start_time in the future
        wanted, loosely = _exact(post.text), _comparable(post.text)
        unsure: list[str] = []      # tweets that match masked but cannot be expanded
        try:
            user_id = self._whoami()[0]
            token: str | None = None
            for _ in range(TIMELINE_PAGES):
                params: dict[str, Any] = {
                    "start_time": since, "max_results": TIMELINE_PAGE,
                    "tweet_fields": ["created_at", "referenced_tweets", "entities"]}
                if token:
                    params["pagination_token"] = token
                # Replies are not excluded: every post after the first of a thread is one.
                body = self._call("read timeline", self._client.get_users_tweets, user_id,
                                  user_auth=True, **params)
                for tweet in body.get("data") or []:
                    if not _replies_to(tweet, post.reply_to):
                        continue
                    expanded = _expanded(tweet)
                    if expanded is not None and _exact(expanded) == wanted:
                        return self._receipt(str(tweet["id"]))
                    if expanded is None and _comparable(
                            _unescape(str(tweet.get("text", "")))) == loosely:
                        unsure.append(str(tweet["id"]))
                token = (body.get("meta") or {}).get("next_token")
                if not token:
                    break
            else:
                raise UnknownOutcome(f"X find: more than {TIMELINE_PAGE * TIMELINE_PAGES} "
                                     f"tweets since {since.isoformat()}, stopped looking")
        except UnknownOutcome:
            raise
        except PublishError as exc:
            raise UnknownOutcome(f"X find: {exc.message}") from exc
        if unsure:
            raise UnknownOutcome(f"X find: tweet {', '.join(unsure)} may be this post, but X "
                                 "gave no expanded links to compare")
        return None

    # -- engagement (the campaign report; X bills reads: only when enabled) -------------

    def engagement(self, remote_ids: Sequence[str]) -> dict[str, Engagement]:
        """Likes, reposts (retweets and quotes) and replies: `GET /2/tweets?ids=...`
        with `tweet.fields=public_metrics`, 100 ids a call. A deleted tweet is left out."""
        out: dict[str, Engagement] = {}
        for i in range(0, len(remote_ids), GET_TWEETS_AT_ONCE):
            ids = list(remote_ids[i:i + GET_TWEETS_AT_ONCE])
            body = self._call("read tweets' counts", self._client.get_tweets, ids,
                              tweet_fields=["public_metrics"], user_auth=True)
            for tweet in body.get("data") or []:
                m = tweet.get("public_metrics") or {}
                out[str(tweet["id"])] = Engagement(
                    likes=int(m.get("like_count") or 0),
                    reposts=int(m.get("retweet_count") or 0) + int(m.get("quote_count") or 0),
                    replies=int(m.get("reply_count") or 0))
        return out

    # -- check -----------------------------------------------------------------------

    def check(self) -> Identity:
        self._me = None   # always ask: this is the credentials check
        user_id, username, name = self._whoami()
        return Identity(platform="x", handle=f"@{username}", remote_id=user_id,
                        display_name=name)

    def _whoami(self) -> tuple[str, str, str | None]:
        if self._me is None:
            data = self._call("who am I", self._client.get_me).get("data") or {}
            if "id" not in data or "username" not in data:
                raise TransientError("X who am I: answer without data.id/username")
            self._me = (str(data["id"]), str(data["username"]), data.get("name"))
        return self._me

    # -- calls -----------------------------------------------------------------------

    def _call(self, action: str, fn: Callable[..., Any], *args: Any,
              creating: bool = False, **kwargs: Any) -> dict[str, Any]:
        """One tweepy call, its failures mapped to the error tree."""
        try:
            body = fn(*args, **kwargs)
        except tweepy.HTTPException as exc:
            raise _http_error(exc, action, creating=creating, now=self._now()) from exc
        except requests.RequestException as exc:
            raise _network_error(exc, action, creating=creating) from exc
        if not isinstance(body, dict):
            raise _network_error(requests.RequestException("answer is not a JSON object"),
                                 action, creating=creating)
        return body


def _http_error(exc: tweepy.HTTPException, action: str, *, creating: bool,
                now: datetime) -> PublishError:
    response = exc.response
    status = int(response.status_code)
    text = "; ".join(str(m) for m in exc.api_messages) or str(response.reason or "")
    message = f"X {action}: {status} {text}".rstrip()
    if status == 401:
        return AuthError(message)
    if status == 429:
        resume_at = _rate_limit_resume(response.headers, now)
        retry_after = (max(0.0, (resume_at - now).total_seconds())
                       if resume_at is not None else None)
        return TransientError(message, retry_after=retry_after, resume_at=resume_at)
    if status >= 500:
        if creating:
            return UnknownOutcome(f"{message} (the tweet may have been created)")
        return TransientError(message)
    return PermanentError(message)


def _rate_limit_resume(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When the limit that answered 429 lifts: the 15-minute window's reset, or a later
    24-hour reset when that cap is the one used up."""
    resets = [_epoch(headers.get("x-rate-limit-reset"))]
    for scope in ("user", "app"):
        if (headers.get(f"x-{scope}-limit-24hour-remaining") or "").strip() == "0":
            resets.append(_epoch(headers.get(f"x-{scope}-limit-24hour-reset")))
    known = [r for r in resets if r is not None]
    return max(known) if known else None


def _epoch(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value).strip()), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _network_error(exc: requests.RequestException, action: str, *,
                   creating: bool) -> PublishError:
    # The exception's text names host and path, never headers: no credential in it.
    detail = f"{type(exc).__name__}: {exc}"
    if _not_sent(exc):
        return TransientError(f"X {action}: could not connect ({detail})")
    if creating:
        return UnknownOutcome(f"X {action}: no usable answer after the request was sent "
                              f"({detail})")
    return TransientError(f"X {action}: no usable answer ({detail})")


def _not_sent(exc: requests.RequestException) -> bool:
    """True when requests never got to write the request: connection refused, DNS,
    connect timeout, TLS handshake. A dropped connection or a read timeout after
    connecting may come after X read the request."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError,
                        requests.exceptions.ProxyError, requests.exceptions.InvalidURL)):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = exc.args[0]
        return (isinstance(reason, MaxRetryError)
                and isinstance(reason.reason, (NewConnectionError, ConnectTimeoutError)))
    return False


def _data_id(body: Mapping[str, Any]) -> str | None:
    data = body.get("data")
    if isinstance(data, dict) and data.get("id"):
        return str(data["id"])
    return None


_LINK = re.compile(r"https?://\S+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/\S*)?", re.IGNORECASE)
_TRAILING_LINKS = re.compile(r"(?:\s*\x00)+\s*$")


def _comparable(text: str) -> str:
    """The text with every link masked: only to spot a tweet `_exact` cannot check."""
    text = unicodedata.normalize("NFC", text)
    text = _LINK.sub("\x00", text)
    text = _TRAILING_LINKS.sub("", text)
    return " ".join(text.split())


def _unescape(text: str) -> str:
    # X escapes exactly these three in tweet text; html.unescape would also turn an
    # entity the author typed ("&copy;") into a character they did not send.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_TCO = re.compile(r"https?://t\.co/\w+", re.IGNORECASE)


def _expanded(tweet: Mapping[str, Any]) -> str | None:
    """The tweet's text with each t.co link put back as the link it stands for (media
    links dropped), unescaped; None when a t.co link in it has no `expanded_url`."""
    text = _unescape(str(tweet.get("text", "")))
    entities = tweet.get("entities")
    urls = entities.get("urls") if isinstance(entities, Mapping) else None
    links: dict[str, str] = {}
    for entity in urls if isinstance(urls, list) else []:
        if not isinstance(entity, Mapping) or not entity.get("url"):
            continue
        if entity.get("media_key"):
            links[str(entity["url"])] = ""
        elif entity.get("expanded_url"):
            links[str(entity["url"])] = str(entity["expanded_url"])
    if any(m.group() not in links for m in _TCO.finditer(text)):
        return None
    return _TCO.sub(lambda m: links[m.group()], text)


_SCHEME = re.compile(r"^https?://", re.IGNORECASE)


def _bare_link(link: str) -> str:
    """A link without what X may rewrite: scheme, the host's case, a lone "/" path."""
    host, slash, path = _SCHEME.sub("", link).partition("/")
    return host.lower() + ("" if path == "" else slash + path)


def _exact(text: str) -> str:
    """The text compared exactly but for what X rewrites in links (module docstring)."""
    text = unicodedata.normalize("NFC", text)
    text = _LINK.sub(lambda m: _bare_link(m.group()), text)
    return " ".join(text.split())


def _replies_to(tweet: Mapping[str, Any], parent: Receipt | None) -> bool:
    refs = tweet.get("referenced_tweets")
    if parent is None or refs is None:
        return True
    return any(ref.get("type") == "replied_to" and str(ref.get("id")) == parent.remote_id
               for ref in refs)


if TYPE_CHECKING:
    _contract: type[Publisher[XCredentials]] = XPublisher
