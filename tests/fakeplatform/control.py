"""The fake's own HTTP routes, `/_fake/...`, for a test in another process.

They are never faulted, delayed or recorded as platform requests.

- `GET /_fake/posts[?platform=x&account=NAME]`: the platforms' record of what was
  posted (`Posted.as_dict()` each), oldest first.
- `GET /_fake/requests[?method=POST&path=REGEX]`: the requests received (method, path,
  at, and the Idempotency-Key header where one was sent).
- `POST /_fake/faults` with a JSON body `{"method", "path", ...}` and any `Fault` field
  (`status_after`, `hang`, `reset`, `times`, ...); `"body_text"` for a raw body,
  `"proxy_page": true` for a proxy's HTML page. `DELETE /_fake/faults` clears them.
- `POST /_fake/clock` `{"advance": seconds}`: moves the platforms' clock on.
- `POST /_fake/engagement` `{"platform", "id", "likes", "reposts", "replies"}`: the
  counts the engagement endpoints report for one post.
- `POST /_fake/accounts` `{"platform", "count"}`: creates accounts 1..count (see
  `accounts.credentials`).
- `POST /_fake/latency` `{"seconds": S}`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tests.fakeplatform import FakePlatformServer, Fault, Request, Response, proxy_page

_FAULT_FIELDS = {f.name for f in dataclasses.fields(Fault)} - {"method", "path"}


def register(server: FakePlatformServer) -> None:
    from tests.fakeplatform import accounts, engagement

    @server.control_route("GET", r"^/_fake/posts$")
    def posts(req: Request, m: re.Match[str]) -> Response:
        q = {k: v[-1] for k, v in req.query.items()}
        found = server.posts(platform=q.get("platform"), account=q.get("account"))
        return Response(200, [p.as_dict() for p in found])

    @server.control_route("GET", r"^/_fake/requests$")
    def requests(req: Request, m: re.Match[str]) -> Response:
        q = {k: v[-1] for k, v in req.query.items()}
        method, rx = q.get("method", "").upper(), re.compile(q.get("path", ""))
        with server._lock:
            found = [r for r in server.requests
                     if method in ("", r.method) and rx.search(r.path)]
        return Response(200, [{"method": r.method, "path": r.path, "at": r.at,
                               "idempotency_key": r.header("Idempotency-Key")}
                              for r in found])

    @server.control_route("POST", r"^/_fake/faults$")
    def add_fault(req: Request, m: re.Match[str]) -> Response:
        spec: dict[str, Any] = req.json()
        unknown = set(spec) - _FAULT_FIELDS - {"method", "path", "body_text", "proxy_page"}
        if unknown or "method" not in spec or "path" not in spec:
            return Response(400, {"error": f"a fault needs method and path; unknown: "
                                           f"{sorted(unknown)}"})
        kwargs = {k: v for k, v in spec.items() if k in _FAULT_FIELDS}
        if "body_text" in spec:
            kwargs["body"] = str(spec["body_text"]).encode()
        if spec.get("proxy_page"):
            status = kwargs.get("status_after") or kwargs.get("status") or 502
            kwargs.update(proxy_page(int(status)))
        server.fault(spec["method"], spec["path"], **kwargs)
        return Response(201, {"ok": True})

    @server.control_route("DELETE", r"^/_fake/faults$")
    def clear_faults(req: Request, m: re.Match[str]) -> Response:
        server.clear_faults()
        return Response(200, {"ok": True})

    @server.control_route("POST", r"^/_fake/clock$")
    def clock(req: Request, m: re.Match[str]) -> Response:
        server.clock.advance(float(req.json().get("advance", 0)))
        return Response(200, {"now": server.now().isoformat()})

    @server.control_route("POST", r"^/_fake/engagement$")
    def set_engagement(req: Request, m: re.Match[str]) -> Response:
        body = req.json()
        engagement.set_counts(server, body["platform"], str(body["id"]),
                              likes=int(body.get("likes", 0)),
                              reposts=int(body.get("reposts", 0)),
                              replies=int(body.get("replies", 0)))
        return Response(200, {"ok": True})

    @server.control_route("POST", r"^/_fake/accounts$")
    def add_accounts(req: Request, m: re.Match[str]) -> Response:
        body = req.json()
        accounts.add(server, str(body["platform"]), int(body["count"]))
        return Response(201, {"ok": True})

    @server.control_route("POST", r"^/_fake/latency$")
    def latency(req: Request, m: re.Match[str]) -> Response:
        server.latency = float(req.json().get("seconds", 0))
        return Response(200, {"ok": True})
