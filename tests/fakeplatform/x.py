"""Fake X API v2: the subset tminus uses, in X's own answer shapes, so real tweepy works.

Routes: `POST /2/tweets`, `GET /2/tweets?ids=...` (with `tweet.fields=public_metrics`:
the engagement counts a test set), `GET /2/users/me`, `GET /2/users/:id/tweets`,
`POST /2/media/upload` (multipart simple upload), `POST /2/media/metadata` (alt text).

Authentication: OAuth 1.0a signatures are not verified, but every request needs an
`Authorization: OAuth ...` header whose `oauth_token` is the access token of a user
of the fake: the main test user (`VALID_TOKEN`, changed by `set_valid_token`) or one
added by `add_user`; anything else gets X's 401 problem document.

Like X, the fake refuses a text over 280 characters (plain `len`, not X's weighting),
a text identical to any earlier tweet of the same user (403 duplicate content), and
more tweets per user than the 15-minute or 24-hour caps, answering 429 with X's header
names. The timeline shows what X shows: links replaced by t.co links, a t.co link
appended for media, `&`, `<`, `>` HTML-escaped, newest first; with
`tweet.fields=entities`, `entities.urls` maps each t.co link back to its
`expanded_url`. Times are the fake's
clock (`server.now()`).
"""

from __future__ import annotations

import email.parser
import email.policy
import html
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.fakeplatform import FakePlatformServer, Posted, Request, Response, engagement

VALID_TOKEN = "x-access-token-valid"
USER_ID = "1500000000000000001"
USERNAME = "tminus_test"
NAME = "T-Minus Test"
MAX_CHARS = 280
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
TOO_LONG = ("Your Tweet text is too long. For more information on how Twitter determines "
            "text length see https://github.com/twitter/twitter-text.")

_LINK = re.compile(r"https?://\S+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/\S*)?", re.IGNORECASE)


# -- helpers for tests -------------------------------------------------------------------

def state(server: FakePlatformServer) -> dict[str, Any]:
    st: dict[str, Any] = server.state["x"]
    return st


def set_valid_token(server: FakePlatformServer, token: str) -> None:
    """The main user's access token from now on (the old one is refused: 401)."""
    st = state(server)
    with server._lock:
        st["tokens"] = {t: uid for t, uid in st["tokens"].items() if uid != USER_ID}
        st["tokens"][token] = USER_ID


def add_user(server: FakePlatformServer, token: str, username: str,
             user_id: str | None = None) -> str:
    """Another account of the fake, posting with access token `token`; its user id."""
    st = state(server)
    with server._lock:
        uid = user_id or str(1600000000000000000 + len(st["users"]))
        st["users"][uid] = {"id": uid, "username": username, "name": username}
        st["tokens"][token] = uid
    return uid


def set_caps(server: FakePlatformServer, *, per_15min: int | None = None,
             per_24h: int | None = None) -> None:
    """Tweets the user may create per fixed 15-minute window / rolling 24 hours."""
    st = state(server)
    if per_15min is not None:
        st["cap_15min"] = per_15min
    if per_24h is not None:
        st["cap_24h"] = per_24h


def tweets(server: FakePlatformServer) -> list[dict[str, Any]]:
    """Stored tweets, oldest first: id, text, author_id, created_at (aware datetime),
    in_reply_to, media_ids."""
    with server._lock:
        return [dict(t) for t in state(server)["tweets"]]


def media(server: FakePlatformServer) -> dict[str, dict[str, Any]]:
    """Uploaded media by id: size, content_type, category, alt_text."""
    with server._lock:
        return {k: dict(v) for k, v in state(server)["media"].items()}


def add_tweet(server: FakePlatformServer, text: str, *, created_at: datetime | None = None,
              in_reply_to: str | None = None, user_id: str = USER_ID) -> dict[str, Any]:
    """Put a tweet on a user's timeline directly (e.g. an old one)."""
    with server._lock:
        return _store(state(server), user_id, text, created_at or server.now(),
                      in_reply_to, [])


# -- the API -----------------------------------------------------------------------------

def register(server: FakePlatformServer) -> None:
    server.state["x"] = {
        "users": {USER_ID: {"id": USER_ID, "username": USERNAME, "name": NAME}},
        "tokens": {VALID_TOKEN: USER_ID},
        "tweets": [],
        # the same tweets by id and by author: a burst's creates look up their user's
        # tweets, and a scan of every tweet (thousands in a benchmark) under the
        # server's lock made the fake the bottleneck
        "by_id": {},
        "by_author": {},
        "media": {},
        "ids": itertools.count(1860000000000000000),
        "cap_15min": 100,
        "cap_24h": 10000,
    }
    server.ledgers["x"] = lambda: _posted(state(server))

    @server.route("GET", r"^/2/users/me$")
    def me(req: Request, m: re.Match[str]) -> Response:
        user, denied = _user(req, state(server))
        return denied or Response(200, {"data": dict(user)})

    @server.route("POST", r"^/2/tweets$")
    def create(req: Request, m: re.Match[str]) -> Response:
        st = state(server)
        user, denied = _user(req, st)
        if denied is not None:
            return denied
        try:
            body = req.json()
        except ValueError:
            return _invalid("body", "Request body is not valid JSON")
        text = body.get("text")
        media_ids = [str(i) for i in (body.get("media") or {}).get("media_ids") or []]
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if not text and not media_ids:
            return _invalid("text", "Tweet text or media is required")
        text = text or ""
        if len(text) > MAX_CHARS:
            return _invalid("text", TOO_LONG)
        if len(media_ids) > 4 or any(i not in st["media"] for i in media_ids):
            return _invalid("media.media_ids", "Your media IDs are invalid.")
        if reply_to is not None and str(reply_to) not in st["by_id"]:
            return _problem(403, "Forbidden", "You attempted to reply to a Tweet that is "
                            "deleted or not visible to you.")
        now = server.now()
        limited = _rate_limit(st, user["id"], now)
        if limited is not None:
            return limited
        if any(t["text"] == text for t in st["by_author"].get(user["id"], ())):
            return _problem(403, "Forbidden", DUPLICATE_DETAIL)
        tweet = _store(st, user["id"], text, now, str(reply_to) if reply_to else None,
                       media_ids)
        return Response(201, {"data": {"id": tweet["id"], "text": _shown(tweet),
                                       "edit_history_tweet_ids": [tweet["id"]]}},
                        headers=_limit_headers(st, user["id"], now))

    @server.route("GET", r"^/2/tweets$")
    def lookup(req: Request, m: re.Match[str]) -> Response:
        st = state(server)
        _, denied = _user(req, st)
        if denied is not None:
            return denied
        ids = [i for v in req.query.get("ids", []) for i in v.split(",") if i]
        if not 1 <= len(ids) <= 100:
            return _invalid("ids", "The `ids` query parameter value must hold 1 to 100 ids")
        fields = set(",".join(req.query.get("tweet.fields", [])).split(","))
        by_id = st["by_id"]
        found = [_public(by_id[i], fields, server) for i in ids if i in by_id]
        missing = [{"value": i, "detail": f"Could not find tweet with ids: [{i}].",
                    "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                    "resource_id": i, "type": "https://api.twitter.com/2/problems/resource-not-found"}
                   for i in ids if i not in by_id]
        answer: dict[str, Any] = {"data": found} if found else {}
        if missing:
            answer["errors"] = missing
        return Response(200, answer)

    @server.route("GET", r"^/2/users/(?P<id>\d+)/tweets$")
    def timeline(req: Request, m: re.Match[str]) -> Response:
        st = state(server)
        _, denied = _user(req, st)
        if denied is not None:
            return denied
        if m["id"] not in st["users"]:
            return Response(200, {"errors": [{
                "value": m["id"], "detail": f"Could not find user with id: [{m['id']}].",
                "title": "Not Found Error", "resource_type": "user", "parameter": "id",
                "resource_id": m["id"],
                "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
        q = {k: v[-1] for k, v in req.query.items()}
        try:
            max_results = int(q.get("max_results", "10"))
            start = _parse_time(q["start_time"]) if "start_time" in q else None
            offset = int(q.get("pagination_token", "0"))
        except ValueError:
            return _invalid("start_time", "Invalid request parameters")
        if not 5 <= max_results <= 100:
            return _invalid("max_results", f"The `max_results` query parameter value "
                            f"[{max_results}] is not between 5 and 100")
        if start is not None and start > server.now():
            return _invalid("start_time", "Invalid 'start_time'; must be a time in the past.")
        fields = set(q.get("tweet.fields", "").split(","))
        mine = [t for t in st["by_author"].get(m["id"], ())
                if start is None or t["created_at"] >= start]
        mine.sort(key=lambda t: t["created_at"], reverse=True)
        page = mine[offset:offset + max_results]
        if not page:
            return Response(200, {"meta": {"result_count": 0}})
        meta: dict[str, Any] = {"result_count": len(page), "newest_id": page[0]["id"],
                                "oldest_id": page[-1]["id"]}
        if offset + max_results < len(mine):
            meta["next_token"] = str(offset + max_results)
        return Response(200, {"data": [_public(t, fields, server) for t in page], "meta": meta})

    @server.route("POST", r"^/2/media/upload$")
    def upload(req: Request, m: re.Match[str]) -> Response:
        st = state(server)
        _, denied = _user(req, st)
        if denied is not None:
            return denied
        fields = _multipart(req)
        if "media" not in fields:
            return _invalid("media", "The `media` field is required")
        category = fields.get("media_category", (None, b""))[1].decode() or "tweet_image"
        if category != "tweet_image":
            return _invalid("media_category", f"Unsupported media_category {category}")
        content_type, content = fields["media"]
        media_id = str(next(st["ids"]))
        st["media"][media_id] = {"size": len(content), "content_type": content_type,
                                 "category": category, "alt_text": None}
        return Response(200, {"data": {
            "id": media_id, "media_key": f"3_{media_id}", "size": len(content),
            "expires_after_secs": 86400,
            "image": {"image_type": content_type or "image/png", "w": 1, "h": 1}}})

    @server.route("POST", r"^/2/media/metadata$")
    def metadata(req: Request, m: re.Match[str]) -> Response:
        st = state(server)
        _, denied = _user(req, st)
        if denied is not None:
            return denied
        body = req.json()
        media_id = str(body.get("id"))
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if media_id not in st["media"]:
            return _invalid("id", f"Media id {media_id} not found")
        if alt is not None and len(alt) > 1000:
            return _invalid("metadata.alt_text.text", "Alt text must be at most 1000 characters")
        st["media"][media_id]["alt_text"] = alt
        return Response(200, {"data": {"id": media_id, "associated_metadata": {
            "alt_text": {"text": alt}}}})


# -- internals ---------------------------------------------------------------------------

def _store(st: dict[str, Any], user_id: str, text: str, at: datetime, in_reply_to: str | None,
           media_ids: list[str]) -> dict[str, Any]:
    tweet = {"id": str(next(st["ids"])), "text": text, "author_id": user_id,
             "created_at": at, "in_reply_to": in_reply_to, "media_ids": media_ids}
    st["tweets"].append(tweet)
    st["by_id"][tweet["id"]] = tweet
    st["by_author"].setdefault(user_id, []).append(tweet)
    return tweet


def _posted(st: dict[str, Any]) -> list[Posted]:
    return [Posted("x", st["users"][t["author_id"]]["username"], t["id"], t["text"],
                   t["created_at"], t["in_reply_to"]) for t in st["tweets"]]


def _shown(tweet: dict[str, Any]) -> str:
    """The text as X returns it: t.co links, a media link, `&<>` escaped."""
    return _rendered(tweet)[0]


def _rendered(tweet: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text as X returns it and its `entities.urls`: each link (with or without a
    scheme) replaced by a t.co link whose `expanded_url` is the link as written (with
    `http://` where it had no scheme), a t.co link appended for media (its entity
    carries a `media_key`), then `&<>` escaped. `start`/`end` count code points in the
    escaped text, as X's v2 does."""
    short = f"https://t.co/{tweet['id'][-6:]}"
    parts: list[str] = []
    links: list[tuple[str, str, str | None]] = []     # t.co url, expanded, media key
    last = 0
    for i, m in enumerate(_LINK.finditer(tweet["text"])):
        link = m.group()
        parts += [html.escape(tweet["text"][last:m.start()], quote=False), f"{short}{i}"]
        links.append((f"{short}{i}", link if "://" in link else f"http://{link}", None))
        last = m.end()
    parts.append(html.escape(tweet["text"][last:], quote=False))
    text = "".join(parts)
    if tweet["media_ids"]:
        links.append((f"{short}m", f"https://x.com/i/web/status/{tweet['id']}/photo/1",
                      f"3_{tweet['media_ids'][0]}"))
        text = f"{text} {short}m".strip()
    entities, pos = [], 0
    for url, expanded, media_key in links:
        start = text.index(url, pos)
        pos = start + len(url)
        entity: dict[str, Any] = {"start": start, "end": pos, "url": url,
                                  "expanded_url": expanded,
                                  "display_url": expanded.split("://", 1)[1][:26]}
        if media_key:
            entity["media_key"] = media_key
        entities.append(entity)
    return text, entities


def _public(tweet: dict[str, Any], fields: set[str], server: FakePlatformServer) -> dict[str, Any]:
    text, urls = _rendered(tweet)
    out: dict[str, Any] = {"id": tweet["id"], "text": text,
                           "edit_history_tweet_ids": [tweet["id"]]}
    if "entities" in fields and urls:
        out["entities"] = {"urls": urls}
    if "public_metrics" in fields:
        c = engagement.counts(server, "x", tweet["id"])
        out["public_metrics"] = {"retweet_count": c.reposts, "reply_count": c.replies,
                                 "like_count": c.likes, "quote_count": 0,
                                 "bookmark_count": 0, "impression_count": 0}
    if "author_id" in fields:
        out["author_id"] = tweet["author_id"]
    if "created_at" in fields:
        out["created_at"] = tweet["created_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if "referenced_tweets" in fields and tweet["in_reply_to"]:
        out["referenced_tweets"] = [{"type": "replied_to", "id": tweet["in_reply_to"]}]
    return out


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _user(req: Request, st: dict[str, Any]) -> tuple[dict[str, Any], Response | None]:
    """The user whose access token signed the request, or X's 401."""
    header = req.header("Authorization") or ""
    params = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}
    uid = st["tokens"].get(params.get("oauth_token", "")) if header.startswith("OAuth ") else None
    if uid is None:
        return {}, _problem(401, "Unauthorized", "Unauthorized")
    user: dict[str, Any] = st["users"][uid]
    return user, None


def _problem(status: int, title: str, detail: str,
             headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"title": title, "type": "about:blank", "status": status,
                             "detail": detail}, headers=headers or {})


def _invalid(parameter: str, message: str) -> Response:
    return Response(400, {
        "errors": [{"parameters": {parameter: []}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request"})


def _limit_headers(st: dict[str, Any], user_id: str, now: datetime) -> dict[str, str]:
    """X's rate limit headers for POST /2/tweets after this request, for one user."""
    window_start = int(now.timestamp()) // 900 * 900
    mine = [t["created_at"] for t in st["by_author"].get(user_id, ())]
    in_window = [at for at in mine if at.timestamp() >= window_start]
    day_ago = now - timedelta(hours=24)
    in_day = sorted(at for at in mine if at > day_ago)
    day_reset = int(((in_day[0] if in_day else now) + timedelta(hours=24)).timestamp())
    day_left = str(max(0, st["cap_24h"] - len(in_day)))
    return {
        "x-rate-limit-limit": str(st["cap_15min"]),
        "x-rate-limit-remaining": str(max(0, st["cap_15min"] - len(in_window))),
        "x-rate-limit-reset": str(window_start + 900),
        "x-user-limit-24hour-limit": str(st["cap_24h"]),
        "x-user-limit-24hour-remaining": day_left,
        "x-user-limit-24hour-reset": str(day_reset),
        "x-app-limit-24hour-limit": str(st["cap_24h"]),
        "x-app-limit-24hour-remaining": day_left,
        "x-app-limit-24hour-reset": str(day_reset),
    }


def _rate_limit(st: dict[str, Any], user_id: str, now: datetime) -> Response | None:
    headers = _limit_headers(st, user_id, now)
    if headers["x-rate-limit-remaining"] == "0" or headers["x-user-limit-24hour-remaining"] == "0":
        return _problem(429, "Too Many Requests", "Too Many Requests", headers)
    return None


def _multipart(req: Request) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a multipart/form-data body: name -> (content type, bytes)."""
    content_type = req.header("Content-Type") or ""
    if not content_type.startswith("multipart/form-data"):
        return {}
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + req.body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            part_type = part.get_content_type() if part.get("Content-Type") else None
            fields[name] = (part_type, payload)
    return fields

