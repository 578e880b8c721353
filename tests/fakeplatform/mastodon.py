"""Fake Mastodon API: the subset Mastodon.py 2.3 uses for tminus, in Mastodon's shapes.

Routes (all under `server.url`, which the adapter takes as its INSTANCE):

- `GET /api/v1/instance[/]`, `GET /api/v2/instance[/]`: instance information. Mastodon.py
  reads both (version and `api_versions`) before its first media upload; the adapter reads
  `configuration.statuses.max_characters` from v2. No token needed, as on Mastodon.
- `GET /api/v1/accounts/verify_credentials`: the one account of this fake.
- `GET /api/v1/accounts/:id/statuses`: newest first, `limit` (≤ 40), `max_id`, `since_id`,
  `min_id`, `exclude_reblogs`, with a `Link` header as Mastodon sends.
- `POST /api/v1/statuses` (form, as Mastodon.py sends it; JSON accepted too): honours
  `Idempotency-Key` like Mastodon (same key and account within an hour -> the stored
  status is returned as is, before any validation, nothing is created; after an hour on
  the fake's clock the key is forgotten, as Mastodon's one-hour Redis entry expires);
  422 "Validation failed: Text character limit of N exceeded" past `max_characters`; 404
  for an unknown `in_reply_to_id`; 422 for unknown or more than 4 `media_ids[]`.
- `GET /api/v1/statuses/:id`, with the `favourites_count`, `reblogs_count` and
  `replies_count` a test set (`engagement.set_counts`).
- `POST /api/v2/media` and `POST /api/v1/media` (multipart: `file`, `description`).

Every route but the instance ones wants `Authorization: Bearer <token>` of an account of
the fake (the main one, `TOKEN`, or one from `add_account`); a wrong token is answered
401 `{"error": "The access token is invalid"}` as Doorkeeper does.

Status ids are snowflakes like Mastodon's (milliseconds << 16), so ids sort by time.
`content` is rendered to HTML the way Mastodon's TextFormatter does it: paragraphs and
`<br />`, links split into invisible/ellipsis spans (display text cut at 30 characters),
`@user@domain` shown as `@user`, hashtags as links.

Helpers for tests: `state`, `statuses`, `media`, `set_token`, `set_max_characters`,
`add_account`, `add_status` (seed the timeline), `ratelimit_headers` (the headers of a
real 429).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any
from urllib.parse import urlencode

import regex

from tests.fakeplatform import FakePlatformServer, Posted, Request, Response, engagement

TOKEN = "masto-test-token"
ACCOUNT_ID = "109000000000000001"
USERNAME = "tminus"
DOMAIN = "mastodon.example"
VERSION = "4.3.2"
DEFAULT_MAX_CHARACTERS = 500
URL_LENGTH = 23  # configuration.statuses.characters_reserved_per_url
# Mastodon keeps an Idempotency-Key for an hour: PostStatusService stores it in Redis
# with a 3,600-second expiry (app/services/post_status_service.rb).
IDEMPOTENCY_TTL = timedelta(hours=1)

# -- helpers for tests -------------------------------------------------------------------


def state(server: FakePlatformServer) -> dict[str, Any]:
    st: dict[str, Any] = server.state["mastodon"]
    return st


def statuses(server: FakePlatformServer) -> list[dict[str, Any]]:
    """Every status of every account, oldest first (internal records: `text` is the raw
    text, `account_id` whose it is)."""
    return sorted(state(server)["statuses"].values(), key=lambda s: int(s["id"]))


def media(server: FakePlatformServer) -> list[dict[str, Any]]:
    return sorted(state(server)["media"].values(), key=lambda m: int(m["id"]))


def set_token(server: FakePlatformServer, token: str) -> None:
    """The main account's token from now on (the old one is refused: 401)."""
    st = state(server)
    with server._lock:
        st["tokens"] = {t: a for t, a in st["tokens"].items() if a != ACCOUNT_ID}
        st["tokens"][token] = ACCOUNT_ID


def add_account(server: FakePlatformServer, token: str, username: str,
                account_id: str | None = None) -> str:
    """Another account of the fake, reached with `token`; its id."""
    st = state(server)
    with server._lock:
        aid = account_id or str(110000000000000000 + len(st["accounts"]))
        st["accounts"][aid] = _account(aid, username)
        st["tokens"][token] = aid
    return aid


def set_max_characters(server: FakePlatformServer, limit: int) -> None:
    state(server)["max_characters"] = limit


def add_status(server: FakePlatformServer, text: str, *, created_at: datetime | None = None,
               in_reply_to_id: str | None = None, spoiler_text: str = "",
               visibility: str = "public", reblog: bool = False,
               account_id: str = ACCOUNT_ID) -> dict[str, Any]:
    """Put a status on a timeline directly (posted "by someone else" than the adapter)."""
    with server._lock:
        return _create(state(server), account_id, text=text,
                       created_at=created_at or server.now(),
                       in_reply_to_id=in_reply_to_id, spoiler_text=spoiler_text,
                       visibility=visibility, language=None, sensitive=False,
                       media_ids=[], reblog=reblog)


def ratelimit_headers(reset_at: datetime, *, limit: int = 300, remaining: int = 0) -> dict[str, str]:
    """What Mastodon sends with a 429: the reset as ISO 8601 with microseconds."""
    reset = reset_at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset}


# -- state -------------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _account(aid: str, username: str, display_name: str | None = None) -> dict[str, Any]:
    return {
        "id": aid, "username": username, "acct": username,
        "display_name": display_name or username, "locked": False, "bot": True,
        "created_at": "2024-01-01T00:00:00.000Z", "note": "", "group": False,
        "url": f"https://{DOMAIN}/@{username}", "uri": f"https://{DOMAIN}/users/{username}",
        "avatar": f"https://{DOMAIN}/avatars/original/missing.png",
        "header": f"https://{DOMAIN}/headers/original/missing.png",
        "followers_count": 0, "following_count": 0, "statuses_count": 0,
        "last_status_at": None, "emojis": [], "fields": [],
    }


def _new_state() -> dict[str, Any]:
    return {
        "tokens": {TOKEN: ACCOUNT_ID},
        "max_characters": DEFAULT_MAX_CHARACTERS,
        "accounts": {ACCOUNT_ID: _account(ACCOUNT_ID, USERNAME, "T-minus test")},
        "statuses": {},          # id -> internal record
        "counts": {},            # account id -> its statuses (every answer shows it)
        "media": {},             # id -> internal record
        "idempotency": {},       # (account id, key) -> (status id, when it was stored)
        "used_ids": set(),
    }


def _next_id(st: dict[str, Any], at: datetime) -> str:
    # Mastodon's snowflake: milliseconds since the epoch in the high bits, a sequence below.
    candidate = int(at.timestamp() * 1000) << 16
    while candidate in st["used_ids"]:
        candidate += 1
    st["used_ids"].add(candidate)
    return str(candidate)


def _account_json(st: dict[str, Any], account_id: str, *,
                  with_source: bool = False) -> dict[str, Any]:
    account = dict(st["accounts"][account_id])
    account["statuses_count"] = st["counts"].get(account_id, 0)
    if with_source:
        account["source"] = {"privacy": "public", "sensitive": False, "language": None,
                             "note": "", "fields": [], "follow_requests_count": 0}
    return account


def _create(st: dict[str, Any], account_id: str, *, text: str, created_at: datetime,
            in_reply_to_id: str | None,
            spoiler_text: str, visibility: str, language: str | None, sensitive: bool,
            media_ids: list[str], reblog: bool = False,
            idempotency_key: str | None = None) -> dict[str, Any]:
    sid = _next_id(st, created_at)
    for mid in media_ids:
        st["media"][mid]["status_id"] = sid
    record = {
        "id": sid, "account_id": account_id, "created_at": created_at, "text": text,
        "in_reply_to_id": in_reply_to_id,
        "spoiler_text": spoiler_text, "visibility": visibility, "language": language,
        "sensitive": sensitive or bool(spoiler_text), "media_ids": list(media_ids),
        "reblog": reblog, "idempotency_key": idempotency_key,
    }
    st["statuses"][sid] = record
    st["counts"][account_id] = st["counts"].get(account_id, 0) + 1
    return record


def _posted(st: dict[str, Any]) -> list[Posted]:
    return [Posted("mastodon", st["accounts"][s["account_id"]]["username"], s["id"], s["text"],
                   s["created_at"], s["in_reply_to_id"], s["idempotency_key"])
            for s in st["statuses"].values() if not s["reblog"]]


# -- rendering (Mastodon's TextFormatter, simplified) --------------------------------------

_URL_RX = re.compile(r"https?://[^\s<>\"]+", re.I)
_MENTION_RX = re.compile(
    r"(?<![\w/@])@([a-z0-9_]+(?:[a-z0-9_.-]*[a-z0-9_])?)(?:@([a-z0-9.-]*[a-z0-9]))?", re.I)
_TAG_RX = re.compile(r"(?<![\w/#&])#(\w+)")
_TRAILING_PUNCT = ".,;:!?'\")"


def _entities(text: str) -> list[tuple[int, int, str, re.Match[str]]]:
    found: list[tuple[int, int, str, re.Match[str]]] = []
    for m in _URL_RX.finditer(text):
        end = m.end()
        while end > m.start() and text[end - 1] in _TRAILING_PUNCT:
            end -= 1
        found.append((m.start(), end, "url", m))
    taken = [(s, e) for s, e, _, _ in found]

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    for kind, rx in (("mention", _MENTION_RX), ("tag", _TAG_RX)):
        for m in rx.finditer(text):
            if free(m.start(), m.end()):
                found.append((m.start(), m.end(), kind, m))
                taken.append((m.start(), m.end()))
    return sorted(found, key=lambda t: t[0])


def _link(url: str) -> str:
    prefix = re.match(r"https?://(www\.)?", url, re.I)
    head = prefix.group(0) if prefix else ""
    rest = url[len(head):]
    display, suffix = rest[:30], rest[30:]
    return (f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
            f'<span class="invisible">{html.escape(head)}</span>'
            f'<span class="{"ellipsis" if suffix else ""}">{html.escape(display)}</span>'
            f'<span class="invisible">{html.escape(suffix)}</span></a>')


def render(text: str) -> str:
    """The HTML `content` Mastodon makes of a plain-text status."""
    out: list[str] = []
    pos = 0
    for start, end, kind, m in _entities(text):
        out.append(html.escape(text[pos:start], quote=False))
        if kind == "url":
            out.append(_link(text[start:end]))
        elif kind == "mention":
            user, domain = m.group(1), m.group(2) or DOMAIN
            out.append(f'<span class="h-card" translate="no"><a href="https://{domain}/@{user}" '
                       f'class="u-url mention">@<span>{html.escape(user)}</span></a></span>')
        else:
            tag = m.group(1)
            out.append(f'<a href="https://{DOMAIN}/tags/{tag.lower()}" class="mention hashtag" '
                       f'rel="tag">#<span>{html.escape(tag)}</span></a>')
        pos = end
    out.append(html.escape(text[pos:], quote=False))
    body = "".join(out).strip()
    paragraphs = re.split(r"\n\n+", body)
    return "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in paragraphs if p)


def countable_length(text: str) -> int:
    """Mastodon's count: every URL is 23, `@user@domain` counts as `@user`, grapheme clusters."""
    pieces: list[str] = []
    pos = 0
    for start, end, kind, m in _entities(text):
        pieces.append(text[pos:start])
        if kind == "url":
            pieces.append("x" * URL_LENGTH)
        elif kind == "mention":
            pieces.append("@" + m.group(1))
        else:
            pieces.append(text[start:end])
        pos = end
    pieces.append(text[pos:])
    return len(regex.findall(r"\X", "".join(pieces)))


def _media_json(m: dict[str, Any]) -> dict[str, Any]:
    return {"id": m["id"], "type": "image", "url": f"https://{DOMAIN}/media/{m['id']}.png",
            "preview_url": f"https://{DOMAIN}/media/{m['id']}_small.png", "remote_url": None,
            "description": m["description"], "blurhash": None,
            "meta": {"original": {"width": 1, "height": 1}}}


def _status_json(server: FakePlatformServer, s: dict[str, Any]) -> dict[str, Any]:
    st = state(server)
    username = st["accounts"][s["account_id"]]["username"]
    counts = engagement.counts(server, "mastodon", s["id"])
    if s["reblog"]:
        content = ""  # a boost has no text of its own; the original is under "reblog"
        reblog: dict[str, Any] | None = {
            "id": str(int(s["id"]) - 1), "created_at": _iso(s["created_at"]),
            "content": render(s["text"]), "account": {"id": "1", "acct": "someone@elsewhere"},
            "spoiler_text": "", "visibility": "public", "in_reply_to_id": None,
        }
    else:
        content, reblog = render(s["text"]), None
    parent = st["statuses"].get(s["in_reply_to_id"] or "")
    reply_account = (parent["account_id"] if parent is not None
                     else None if s["in_reply_to_id"] is None else "1")
    return {
        "id": s["id"], "created_at": _iso(s["created_at"]),
        "in_reply_to_id": s["in_reply_to_id"], "in_reply_to_account_id": reply_account,
        "sensitive": s["sensitive"], "spoiler_text": s["spoiler_text"],
        "visibility": s["visibility"], "language": s["language"],
        "uri": f"https://{DOMAIN}/users/{username}/statuses/{s['id']}",
        "url": f"https://{DOMAIN}/@{username}/{s['id']}",
        "replies_count": counts.replies, "reblogs_count": counts.reposts,
        "favourites_count": counts.likes, "edited_at": None,
        "content": content, "reblog": reblog,
        "application": {"name": "tminus", "website": None},
        "account": _account_json(st, s["account_id"]),
        "media_attachments": [_media_json(st["media"][m]) for m in s["media_ids"]],
        "mentions": [], "tags": [], "emojis": [], "card": None, "poll": None,
    }


# -- request parsing ---------------------------------------------------------------------


def _caller(st: dict[str, Any], req: Request) -> tuple[str, Response | None]:
    """The account whose token the request carries, or Doorkeeper's 401."""
    header = req.header("Authorization")
    if not header:
        return "", Response(401, {"error": "This method requires an authenticated user"})
    account_id = st["tokens"].get(header.removeprefix("Bearer ")) \
        if header.startswith("Bearer ") else None
    if account_id is None:
        return "", Response(401, {"error": "The access token is invalid"}, headers={
            "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
                                'error_description="The access token is invalid"'})
    return str(account_id), None


def _params(req: Request) -> dict[str, list[str]]:
    """Form or JSON body as {name: [values]}; `media_ids[]` and `media_ids` alike."""
    ctype = (req.header("Content-Type") or "").lower()
    if ctype.startswith("application/json"):
        data = req.json()
        out: dict[str, list[str]] = {}
        for k, v in data.items():
            if v is None:
                continue
            if isinstance(v, list):
                out[k] = [str(x) for x in v]
            elif isinstance(v, bool):
                out[k] = ["true" if v else "false"]
            else:
                out[k] = [str(v)]
        return out
    return req.form()


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "t", "on", "yes")


def _multipart(req: Request) -> dict[str, tuple[str | None, bytes, str]]:
    """name -> (filename, payload, content type) of a multipart/form-data body."""
    ctype = req.header("Content-Type") or ""
    raw = b"Content-Type: " + ctype.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + req.body
    msg = BytesParser(policy=email_policy).parsebytes(raw)
    fields: dict[str, tuple[str | None, bytes, str]] = {}
    if not msg.is_multipart():
        return fields
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"",
                        part.get_content_type())
    return fields


# -- routes ------------------------------------------------------------------------------


def register(server: FakePlatformServer) -> None:
    server.state["mastodon"] = _new_state()
    server.ledgers["mastodon"] = lambda: _posted(state(server))

    def st() -> dict[str, Any]:
        return state(server)

    def statuses_config() -> dict[str, Any]:
        return {"max_characters": st()["max_characters"], "max_media_attachments": 4,
                "characters_reserved_per_url": URL_LENGTH}

    @server.route("GET", r"^/api/v1/instance/?$")
    def instance_v1(req: Request, m: re.Match[str]) -> Response:
        return Response(200, {
            "uri": DOMAIN, "title": "Fake Mastodon", "short_description": "", "description": "",
            "email": "admin@" + DOMAIN, "version": VERSION, "languages": ["en"],
            "urls": {"streaming_api": f"wss://{DOMAIN}"}, "registrations": False,
            "approval_required": False, "invites_enabled": False,
            "stats": {"user_count": 1, "status_count": len(st()["statuses"]), "domain_count": 1},
            "configuration": {"statuses": statuses_config(),
                              "media_attachments": {"image_size_limit": 16777216}},
            "contact_account": None, "rules": [],
        })

    @server.route("GET", r"^/api/v2/instance/?$")
    def instance_v2(req: Request, m: re.Match[str]) -> Response:
        return Response(200, {
            "domain": DOMAIN, "title": "Fake Mastodon", "version": VERSION,
            "source_url": "https://github.com/mastodon/mastodon", "description": "",
            "usage": {"users": {"active_month": 1}}, "thumbnail": {"url": ""},
            "languages": ["en"],
            "configuration": {
                "urls": {"streaming": f"wss://{DOMAIN}"},
                "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                "statuses": statuses_config(),
                "media_attachments": {"image_size_limit": 16777216,
                                      "supported_mime_types": ["image/png", "image/jpeg"]},
                "polls": {"max_options": 4},
                "translation": {"enabled": False},
            },
            "registrations": {"enabled": False, "approval_required": False, "message": None},
            "contact": {"email": "admin@" + DOMAIN, "account": None},
            "rules": [],
            "api_versions": {"mastodon": 2},
        })

    @server.route("GET", r"^/api/v1/accounts/verify_credentials$")
    def verify_credentials(req: Request, m: re.Match[str]) -> Response:
        me, err = _caller(st(), req)
        return err or Response(200, _account_json(st(), me, with_source=True))

    @server.route("GET", r"^/api/v1/accounts/(?P<id>[^/]+)/statuses$")
    def account_statuses(req: Request, m: re.Match[str]) -> Response:
        s = st()
        _, err = _caller(s, req)
        if err is not None:
            return err
        owner = m.group("id")
        if owner not in s["accounts"]:
            return Response(404, {"error": "Record not found"})
        q = {k: v[0] for k, v in req.query.items() if v}
        limit = max(1, min(int(q.get("limit", "20")), 40))
        rows = sorted((r for r in s["statuses"].values() if r["account_id"] == owner),
                      key=lambda r: int(r["id"]), reverse=True)
        if _truthy(q.get("exclude_reblogs")):
            rows = [r for r in rows if not r["reblog"]]
        if "max_id" in q:
            rows = [r for r in rows if int(r["id"]) < int(q["max_id"])]
        if "since_id" in q:
            rows = [r for r in rows if int(r["id"]) > int(q["since_id"])]
        if "min_id" in q:
            # min_id pages forward in time: the `limit` statuses just after min_id.
            rows = [r for r in rows if int(r["id"]) > int(q["min_id"])][-limit:]
        page = rows[:limit]
        headers: dict[str, str] = {}
        if page:
            base = f"{server.url}/api/v1/accounts/{owner}/statuses"
            nxt = urlencode({"limit": limit, "max_id": page[-1]["id"]})
            prv = urlencode({"limit": limit, "min_id": page[0]["id"]})
            headers["Link"] = f'<{base}?{nxt}>; rel="next", <{base}?{prv}>; rel="prev"'
        return Response(200, [_status_json(server, r) for r in page], headers)

    @server.route("GET", r"^/api/v1/statuses/(?P<id>\d+)$")
    def get_status(req: Request, m: re.Match[str]) -> Response:
        s = st()
        _, err = _caller(s, req)
        if err is not None:
            return err
        record = s["statuses"].get(m.group("id"))
        if record is None:
            return Response(404, {"error": "Record not found"})
        return Response(200, _status_json(server, record))

    @server.route("POST", r"^/api/v1/statuses$")
    def post_status(req: Request, m: re.Match[str]) -> Response:
        s = st()
        me, err = _caller(s, req)
        if err is not None:
            return err
        key = req.header("Idempotency-Key")
        now = server.now()
        if key is not None:
            # Mastodon looks the key up before anything else, so a repeat returns the
            # first status whatever the repeat's parameters, for an hour.
            known = s["idempotency"].get((me, key))
            if known is not None and now - known[1] < IDEMPOTENCY_TTL:
                return Response(200, _status_json(server, s["statuses"][known[0]]))
            s["idempotency"].pop((me, key), None)
        p = _params(req)
        text = _one(p, "status") or ""
        spoiler = _one(p, "spoiler_text") or ""
        media_ids = p.get("media_ids[]") or p.get("media_ids") or []
        reply_to = _one(p, "in_reply_to_id")
        visibility = _one(p, "visibility") or "public"
        if not text.strip() and not media_ids:
            return Response(422, {"error": "Validation failed: Text can't be blank"})
        if len(media_ids) > 4:
            return Response(422, {"error": "Validation failed: You cannot attach more than 4 files"})
        unknown = [i for i in media_ids
                   if i not in s["media"] or s["media"][i]["status_id"] is not None]
        if unknown:
            return Response(422, {"error": f"Media {', '.join(unknown)} not found or already "
                                           "attached to another post"})
        if reply_to is not None and reply_to not in s["statuses"]:
            return Response(404, {"error": "The post you are trying to reply to does not "
                                           "appear to exist."})
        if visibility not in ("public", "unlisted", "private", "direct"):
            return Response(422, {"error": "Validation failed: Visibility is not included in "
                                           "the list"})
        limit = s["max_characters"]
        if countable_length(text) + countable_length(spoiler) > limit:
            return Response(422, {"error": f"Validation failed: Text character limit of "
                                           f"{limit} exceeded"})
        record = _create(s, me, text=text, created_at=now, in_reply_to_id=reply_to,
                         spoiler_text=spoiler, visibility=visibility,
                         language=_one(p, "language"), sensitive=_truthy(_one(p, "sensitive")),
                         media_ids=media_ids, idempotency_key=key)
        if key is not None:
            s["idempotency"][(me, key)] = (record["id"], now)
        return Response(200, _status_json(server, record))

    @server.route("POST", r"^/api/v[12]/media$")
    def post_media(req: Request, m: re.Match[str]) -> Response:
        s = st()
        _, err = _caller(s, req)
        if err is not None:
            return err
        fields = _multipart(req)
        if "file" not in fields or not fields["file"][1]:
            return Response(422, {"error": "Validation failed: File can't be blank"})
        filename, payload, ctype = fields["file"]
        if not ctype.startswith("image/"):
            return Response(422, {"error": "Validation failed: File content type is invalid, "
                                           "File is invalid"})
        description = fields["description"][1].decode() if "description" in fields else None
        now = server.now()
        mid = _next_id(s, now)
        s["media"][mid] = {"id": mid, "description": description, "filename": filename,
                           "content_type": ctype, "size": len(payload), "data": payload,
                           "status_id": None, "created_at": now}
        return Response(200, _media_json(s["media"][mid]))


__all__ = ["ACCOUNT_ID", "TOKEN", "USERNAME", "add_account", "add_status", "countable_length",
           "media",
           "ratelimit_headers", "register", "render", "set_max_characters", "set_token",
           "state", "statuses"]
