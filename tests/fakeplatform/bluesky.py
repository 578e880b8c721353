"""Fake Bluesky PDS: the XRPC subset tminus uses, in the reference PDS's answer shapes, so
the real atproto SDK works against it unmodified.

Routes (all under /xrpc/):
- com.atproto.server.createSession / refreshSession / getSession
- com.atproto.identity.resolveHandle
- com.atproto.repo.createRecord / getRecord / uploadBlob
- app.bsky.actor.getProfile
- app.bsky.feed.getPosts (post views with the likeCount, repostCount and replyCount a
  test set with `engagement.set_counts`)

Any number of accounts: the main test account (`HANDLE`, `PASSWORD`) and those added by
`add_user(server, handle, password=...)`, each posting to its own repo.

Like the reference PDS:
- createSession returns no `didDoc` (the SDK would move to the PDS named there) and
  JWT-shaped tokens, base64url(header).base64url(payload).signature, with an integer
  `exp` (unsigned: the SDK only reads the payload). Every JSON answer says
  `Content-Type: application/json`.
- Authenticated calls want `Authorization: Bearer <access token>`: none -> 401
  AuthenticationRequired; an unknown token -> 400 InvalidToken; an expired one -> 400
  ExpiredToken. refreshSession wants the refresh token and rotates it.
- createRecord honours `rkey` (for app.bsky.feed.post it must look like a TID), answers
  a second create on an existing key with 500 InternalServerError (bluesky-social/
  atproto#3718), and validates posts: text at most 3000 UTF-8 bytes and 300 graphemes
  (`regex`'s \\X), embedded blobs uploaded, reply refs complete. It answers with the
  `ratelimit-*` headers the PDS sends on writes.
- getRecord for a missing record -> 400 RecordNotFound.

Faults come from `server.fault(...)`; `rate_limit` and `fail` below build the PDS's
own 429 / 5xx answers for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from typing import Any

import regex

from tests.fakeplatform import FakePlatformServer, Fault, Posted, Request, Response, engagement

HANDLE = "tminus.bsky.social"
DID = "did:plc:tminus4test5account6abcd"
PASSWORD = "abcd-efgh-ijkl-mnop"
DISPLAY_NAME = "T-Minus Test"
MAX_GRAPHEMES = 300
MAX_BYTES = 3000

_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


# -- helpers for tests -------------------------------------------------------------------

def state(server: FakePlatformServer) -> dict[str, Any]:
    st: dict[str, Any] = server.state["bluesky"]
    return st


def account(server: FakePlatformServer) -> dict[str, Any]:
    """The test account: handle, did, password, display_name."""
    acct: dict[str, Any] = state(server)["users"][DID]
    return acct


def add_user(server: FakePlatformServer, handle: str, display_name: str | None = None, *,
             password: str | None = None) -> str:
    """Another account: with a `password` one that can log in and post, without one
    an account to @mention. Returns its DID."""
    did = "did:plc:" + base64.b32encode(hashlib.sha256(handle.encode()).digest()).decode().lower()[:24]
    with server._lock:
        state(server)["users"][did] = {"handle": handle, "did": did, "password": password,
                                       "display_name": display_name}
    return did


def set_password(server: FakePlatformServer, password: str) -> None:
    account(server)["password"] = password


def set_token_ttl(server: FakePlatformServer, *, access: int | None = None,
                  refresh: int | None = None) -> None:
    """Lifetime in seconds of tokens issued from now on (negative: born expired)."""
    st = state(server)
    if access is not None:
        st["access_ttl"] = access
    if refresh is not None:
        st["refresh_ttl"] = refresh


def revoke_sessions(server: FakePlatformServer) -> None:
    """Forget every token issued so far (the app password was revoked and re-created)."""
    state(server)["tokens"].clear()


def posts(server: FakePlatformServer) -> list[dict[str, Any]]:
    """Stored app.bsky.feed.post records, oldest first: uri, cid, repo, rkey, value,
    indexed_at (when the PDS wrote it, on the fake's clock)."""
    return [dict(r) for r in state(server)["records"].values()
            if r["collection"] == "app.bsky.feed.post"]


def _posted(st: dict[str, Any]) -> list[Posted]:
    out = []
    for r in st["records"].values():
        if r["collection"] == "app.bsky.feed.post":
            reply = (r["value"].get("reply") or {}).get("parent") or {}
            out.append(Posted("bluesky", st["users"][r["repo"]]["handle"], r["uri"],
                              r["value"].get("text", ""), r["indexed_at"], reply.get("uri"),
                              r["rkey"]))
    return out


def blobs(server: FakePlatformServer) -> dict[str, dict[str, Any]]:
    """Uploaded blobs by CID: mimeType, size, data."""
    b: dict[str, dict[str, Any]] = state(server)["blobs"]
    return b


def calls(server: FakePlatformServer, nsid: str) -> int:
    """How many requests reached /xrpc/<nsid>."""
    return len(server.requests_to("GET", rf"^/xrpc/{re.escape(nsid)}$")
               + server.requests_to("POST", rf"^/xrpc/{re.escape(nsid)}$"))


def rate_limit(server: FakePlatformServer, nsid: str, *, reset_at: int, method: str = "POST",
               limit: int = 5000, policy: str = "5000;w=3600", times: int = 1) -> Fault:
    """The PDS's 429 on `nsid`, with its headers; `reset_at` in Unix seconds."""
    return server.fault(method, rf"^/xrpc/{re.escape(nsid)}$", times=times, status=429,
                        body={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                        headers={"ratelimit-limit": str(limit), "ratelimit-remaining": "0",
                                 "ratelimit-reset": str(reset_at), "ratelimit-policy": policy})


def fail(server: FakePlatformServer, nsid: str, status: int, *, method: str = "POST",
         times: int = 1) -> Fault:
    """A 5xx on `nsid` as the PDS (500) or its gateway (502/503, plain text) answers it."""
    body: Any = ({"error": "InternalServerError", "message": "Internal Server Error"}
                 if status == 500 else f"{status} upstream unavailable".encode())
    return server.fault(method, rf"^/xrpc/{re.escape(nsid)}$", times=times, status=status,
                        body=body)


# -- answers ------------------------------------------------------------------------------

def _error(status: int, error: str, message: str) -> Response:
    return Response(status, {"error": error, "message": message})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(typ: str, payload: dict[str, Any]) -> str:
    header = {"typ": typ, "alg": "ES256K"}
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()),
                     _b64url(secrets.token_bytes(32))])


def _cid(data: bytes, codec: int) -> str:
    """A CIDv1 string (base32, sha2-256): codec 0x71 dag-cbor for records, 0x55 raw for blobs."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _tid_now(st: dict[str, Any]) -> str:
    micros = max(int(time.time() * 1_000_000), st["last_tid"] + 1)
    st["last_tid"] = micros
    value = micros << 10
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def _graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def _issue(st: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    access = _jwt("at+jwt", {"scope": "com.atproto.appPass", "sub": user["did"], "iat": now,
                             "exp": now + st["access_ttl"], "aud": "did:web:fake.pds"})
    refresh = _jwt("refresh+jwt", {"scope": "com.atproto.refresh", "sub": user["did"],
                                   "iat": now, "exp": now + st["refresh_ttl"],
                                   "aud": "did:web:fake.pds", "jti": secrets.token_hex(8)})
    st["tokens"][access] = {"kind": "access", "did": user["did"], "exp": now + st["access_ttl"]}
    st["tokens"][refresh] = {"kind": "refresh", "did": user["did"], "exp": now + st["refresh_ttl"]}
    # No didDoc: the SDK would switch its base URL to the PDS the document names.
    return {"accessJwt": access, "refreshJwt": refresh, "handle": user["handle"],
            "did": user["did"], "email": "comms@example.org", "emailConfirmed": True,
            "active": True}


def _bearer(st: dict[str, Any], req: Request, kind: str) -> tuple[dict[str, Any] | None, Response | None]:
    """The user a request's bearer token stands for, or the PDS's refusal."""
    auth = req.header("Authorization") or ""
    if not auth.startswith("Bearer "):
        return None, _error(401, "AuthenticationRequired", "Authentication Required")
    token = st["tokens"].get(auth.removeprefix("Bearer "))
    if token is None:
        return None, _error(400, "InvalidToken", "Token could not be verified")
    if token["kind"] != kind:
        return None, _error(400, "InvalidToken", "Bad token scope")
    if token["exp"] <= time.time():
        return None, _error(400, "ExpiredToken", "Token has expired")
    return st["users"][token["did"]], None


def _user(st: dict[str, Any], ident: str) -> dict[str, Any] | None:
    ident = ident.lower()
    # users are keyed by DID: every createRecord names its repo by DID, and a scan of
    # every user (thousands in a benchmark) under the server's lock cost the burst
    by_did: dict[str, Any] | None = st["users"].get(ident)
    if by_did is not None:
        return by_did
    # createSession names its user by handle (a burst's warm-up logs hundreds in): an
    # index of handles, built again whenever it misses or is stale (a test added a user
    # or changed a handle), so that an answer is always what a scan would give
    for attempt in range(2):
        known: dict[str, Any] | None = st["users"].get(st["handles"].get(ident, ""))
        if known is not None and known["handle"].lower() == ident:
            return known
        if attempt == 0:
            st["handles"] = {u["handle"].lower(): did for did, u in st["users"].items()}
    return None


def _invalid_post(record: dict[str, Any]) -> str | None:
    """What the lexicon validator says about an app.bsky.feed.post record, if anything."""
    text = record.get("text")
    if not isinstance(text, str):
        return 'Record must have the property "text"'
    if not isinstance(record.get("createdAt"), str):
        return 'Record must have the property "createdAt"'
    if len(text.encode("utf-8")) > MAX_BYTES:
        return f"Record/text must not be longer than {MAX_BYTES} characters"
    if _graphemes(text) > MAX_GRAPHEMES:
        return f"Record/text must not be longer than {MAX_GRAPHEMES} graphemes"
    for i, facet in enumerate(record.get("facets") or []):
        index = facet.get("index") or {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not isinstance(start, int) or not isinstance(end, int) or start < 0 or end < 0:
            return f"Record/facets/{i}/index must have byteStart and byteEnd >= 0"
    reply = record.get("reply")
    if reply is not None:
        for part in ("root", "parent"):
            ref = reply.get(part) or {}
            if not isinstance(ref.get("uri"), str) or not isinstance(ref.get("cid"), str):
                return f'Record/reply/{part} must have the properties "uri" and "cid"'
    embed = record.get("embed")
    if embed is not None and embed.get("$type") == "app.bsky.embed.images":
        for i, image in enumerate(embed.get("images") or []):
            if not isinstance(image.get("alt"), str):
                return f'Record/embed/images/{i} must have the property "alt"'
    return None


def _missing_blob(st: dict[str, Any], record: dict[str, Any]) -> str | None:
    embed = record.get("embed") or {}
    for image in embed.get("images") or []:
        link = ((image.get("image") or {}).get("ref") or {}).get("$link")
        if link not in st["blobs"]:
            return str(link)
    return None


def _ratelimit_headers(st: dict[str, Any], did: str) -> dict[str, str]:
    # a create costs 3 of an account's 5,000 points per hour
    used = st["points"][did] = st["points"].get(did, 0) + 3
    return {"ratelimit-limit": "5000", "ratelimit-remaining": str(max(0, 5000 - used)),
            "ratelimit-reset": str(int(time.time()) + 3600), "ratelimit-policy": "5000;w=3600"}


# -- routes -------------------------------------------------------------------------------

def register(server: FakePlatformServer) -> None:
    st: dict[str, Any] = {
        "users": {DID: {"handle": HANDLE, "did": DID, "password": PASSWORD,
                        "display_name": DISPLAY_NAME}},
        "tokens": {},          # token -> {kind, did, exp}
        "records": {},         # (repo did, collection, rkey) -> {uri, cid, repo, collection, rkey, value}
        "blobs": {},           # cid -> {mimeType, size, data}
        "access_ttl": 7200,    # app-password access tokens live 2 hours
        "refresh_ttl": 90 * 86400,
        "last_tid": 0,
        "points": {},          # did -> write points used
        "handles": {},         # handle (lower case) -> did, as last found (`_user`)
    }
    server.state["bluesky"] = st
    server.ledgers["bluesky"] = lambda: _posted(st)
    xrpc = "^/xrpc/"

    @server.route("POST", xrpc + r"com\.atproto\.server\.createSession$")
    def create_session(req: Request, m: re.Match[str]) -> Response:
        body = req.json()
        user = _user(st, str(body.get("identifier") or ""))
        if user is None or user["password"] is None or body.get("password") != user["password"]:
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        return Response(200, _issue(st, user))

    @server.route("POST", xrpc + r"com\.atproto\.server\.refreshSession$")
    def refresh_session(req: Request, m: re.Match[str]) -> Response:
        user, refused = _bearer(st, req, "refresh")
        if refused is not None or user is None:
            return refused or _error(401, "AuthenticationRequired", "Authentication Required")
        del st["tokens"][(req.header("Authorization") or "").removeprefix("Bearer ")]
        session = _issue(st, user)
        return Response(200, {k: session[k] for k in ("accessJwt", "refreshJwt", "handle",
                                                      "did", "active")})

    @server.route("GET", xrpc + r"com\.atproto\.server\.getSession$")
    def get_session(req: Request, m: re.Match[str]) -> Response:
        user, refused = _bearer(st, req, "access")
        if refused is not None or user is None:
            return refused or _error(401, "AuthenticationRequired", "Authentication Required")
        return Response(200, {"handle": user["handle"], "did": user["did"],
                              "email": "comms@example.org", "active": True})

    @server.route("GET", xrpc + r"com\.atproto\.identity\.resolveHandle$")
    def resolve_handle(req: Request, m: re.Match[str]) -> Response:
        user = _user(st, (req.query.get("handle") or [""])[0])
        if user is None:
            return _error(400, "InvalidRequest", "Unable to resolve handle")
        return Response(200, {"did": user["did"]})

    @server.route("GET", xrpc + r"app\.bsky\.actor\.getProfile$")
    def get_profile(req: Request, m: re.Match[str]) -> Response:
        if req.header("Authorization"):  # optional, but checked when given
            _, refused = _bearer(st, req, "access")
            if refused is not None:
                return refused
        user = _user(st, (req.query.get("actor") or [""])[0])
        if user is None:
            return _error(400, "InvalidRequest", "Profile not found")
        count = sum(1 for r in st["records"].values() if r["repo"] == user["did"]
                    and r["collection"] == "app.bsky.feed.post")
        profile = {"did": user["did"], "handle": user["handle"], "postsCount": count,
                   "followersCount": 0, "followsCount": 0,
                   "indexedAt": "2026-01-01T00:00:00.000Z"}
        if user["display_name"]:
            profile["displayName"] = user["display_name"]
        return Response(200, profile)

    @server.route("POST", xrpc + r"com\.atproto\.repo\.uploadBlob$")
    def upload_blob(req: Request, m: re.Match[str]) -> Response:
        _, refused = _bearer(st, req, "access")
        if refused is not None:
            return refused
        if not req.body:
            return _error(400, "InvalidRequest", "Empty blob")
        mime = (req.header("Content-Type") or "application/octet-stream").split(";")[0]
        cid = _cid(req.body, 0x55)
        st["blobs"][cid] = {"mimeType": mime, "size": len(req.body), "data": req.body}
        return Response(200, {"blob": {"$type": "blob", "ref": {"$link": cid},
                                       "mimeType": mime, "size": len(req.body)}})

    @server.route("POST", xrpc + r"com\.atproto\.repo\.createRecord$")
    def create_record(req: Request, m: re.Match[str]) -> Response:
        user, refused = _bearer(st, req, "access")
        if refused is not None or user is None:
            return refused or _error(401, "AuthenticationRequired", "Authentication Required")
        try:
            body = req.json()
        except ValueError:
            return _error(400, "InvalidRequest", "Invalid JSON body")
        if _user(st, str(body.get("repo") or "")) is not user:
            return _error(401, "AuthenticationRequired", "Authentication Required")
        collection, record = body.get("collection"), body.get("record")
        if not isinstance(record, dict) or record.get("$type") != collection:
            got = record.get("$type") if isinstance(record, dict) else None
            return _error(400, "InvalidRequest", f"Invalid $type: expected {collection}, got {got}")
        rkey = body.get("rkey") or _tid_now(st)
        if not _RKEY.match(rkey) or (collection == "app.bsky.feed.post" and not _TID.match(rkey)):
            return _error(400, "InvalidRequest", f"Invalid record key: {rkey}")
        if collection == "app.bsky.feed.post":
            problem = _invalid_post(record)
            if problem:
                return _error(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {problem}")
        missing = _missing_blob(st, record)
        if missing:
            return _error(400, "BlobNotFound", f"Could not find blob: {missing}")
        key = (user["did"], collection, rkey)
        if key in st["records"]:
            # The reference PDS fails inside the repo write: no clean conflict answer.
            return _error(500, "InternalServerError", "Internal Server Error")
        uri = f"at://{user['did']}/{collection}/{rkey}"
        cid = _cid(json.dumps(record, sort_keys=True).encode(), 0x71)
        st["records"][key] = {"uri": uri, "cid": cid, "repo": user["did"],
                              "collection": collection, "rkey": rkey, "value": record,
                              "indexed_at": server.now()}
        rev = _tid_now(st)
        return Response(200, {"uri": uri, "cid": cid,
                              "commit": {"cid": _cid(rev.encode(), 0x71), "rev": rev},
                              "validationStatus": "valid"},
                        headers=_ratelimit_headers(st, user["did"]))

    @server.route("GET", xrpc + r"com\.atproto\.repo\.getRecord$")
    def get_record(req: Request, m: re.Match[str]) -> Response:
        q = {k: v[0] for k, v in req.query.items()}
        user = _user(st, q.get("repo", ""))
        if user is None:
            return _error(400, "InvalidRequest", f"Could not find repo: {q.get('repo', '')}")
        uri = f"at://{user['did']}/{q.get('collection', '')}/{q.get('rkey', '')}"
        found = st["records"].get((user["did"], q.get("collection"), q.get("rkey")))
        if found is None:
            return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return Response(200, {"uri": found["uri"], "cid": found["cid"], "value": found["value"]})

    @server.route("GET", xrpc + r"app\.bsky\.feed\.getPosts$")
    def get_posts(req: Request, m: re.Match[str]) -> Response:
        if req.header("Authorization"):  # optional, but checked when given
            _, refused = _bearer(st, req, "access")
            if refused is not None:
                return refused
        uris = req.query.get("uris") or []
        if len(uris) > 25:
            return _error(400, "InvalidRequest", "uris must not have more than 25 elements")
        by_uri = {r["uri"]: r for r in st["records"].values()}
        views = []
        for uri in uris:            # unknown or deleted posts are left out, as the AppView does
            r = by_uri.get(uri)
            if r is None:
                continue
            author = st["users"][r["repo"]]
            counts = engagement.counts(server, "bluesky", uri)
            view: dict[str, Any] = {
                "uri": uri, "cid": r["cid"],
                "author": {"did": author["did"], "handle": author["handle"]},
                "record": r["value"], "replyCount": counts.replies,
                "repostCount": counts.reposts, "likeCount": counts.likes, "quoteCount": 0,
                "indexedAt": r["indexed_at"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
            if author["display_name"]:
                view["author"]["displayName"] = author["display_name"]
            views.append(view)
        return Response(200, {"posts": views})
