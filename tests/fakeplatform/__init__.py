"""A fake X / Mastodon / Bluesky server for the tests: one threaded local HTTP server.

It speaks the subset of each API that tminus uses (see `x.py`, `mastodon.py`,
`bluesky.py` beside this file), records every request it receives, and injects faults
on demand. The real SDKs talk to it over HTTP.

    with FakePlatformServer() as fake:
        fake.fault("POST", r"^/2/tweets$", status=429, headers={...})
        ...
        fake.requests_to("POST", "/2/tweets")

`fake.on_request = fn` calls `fn(request)` for every request as it arrives, after it is
recorded and before any fault or handler (crash tests kill the client there: the
request left, the platform acts on it, the answer reaches no one). It runs on the
server's request thread; None (the default) does nothing.

Fault kinds (each consumed once per matching request, `times` times):
- `status=N` (+ `body`, `headers`): answer N without touching state;
- `delay=S`: sleep S seconds before handling (past the client's timeout: a timeout
  before the platform acted);
- `delay_after=S`: handle the request (state changes!), then sleep S seconds before
  answering (a timeout after the platform acted);
- `drop=True`: close the connection without an answer, before handling;
- `drop_after=True`: handle the request, then close without an answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8", "replace"))

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class Response:
    status: int = 200
    body: Any = None                     # dict/list -> JSON; bytes -> raw
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            return self.body, headers
        if self.body is None:
            return b"", headers
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return json.dumps(self.body).encode(), headers


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    times: int = 1
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    delay_after: float = 0.0
    drop: bool = False
    drop_after: bool = False


class FakePlatformServer:
    """Start with `with FakePlatformServer() as fake:`; `fake.url` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self.requests: list[Request] = []
        self.state: dict[str, Any] = {}   # each platform module keeps its data here
        self.on_request: Callable[[Request], None] | None = None
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: with Nagle on, each answer
            # waits 40 ms for the client's delayed ACK
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                outer._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._httpd = ThreadingHTTPServer((host, port), _H)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        from tests.fakeplatform import bluesky, mastodon, x
        for module in (x, mastodon, bluesky):
            module.register(self)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakePlatformServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- configuration ---------------------------------------------------------------

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self._routes.append((method.upper(), re.compile(pattern), fn))
            return fn
        return deco

    def fault(self, method: str, pattern: str, **kwargs: Any) -> Fault:
        f = Fault(method=method.upper(), path=re.compile(pattern), **kwargs)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests_to(self, method: str, pattern: str) -> list[Request]:
        rx = re.compile(pattern)
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and rx.search(r.path)]

    # -- serving ---------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.method == method and f.path.search(path) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Request(method=h.command, path=split.path, query=parse_qs(split.query),
                      headers=dict(h.headers.items()), body=body)
        with self._lock:
            self.requests.append(req)
        hook = self.on_request
        if hook is not None:
            hook(req)
        fault = self._take_fault(req.method, req.path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop:
            self._drop(h)
            return
        if fault and fault.status is not None:
            self._send(h, Response(fault.status, fault.body, fault.headers))
            return
        resp = self._dispatch(req)
        if fault and fault.drop_after:
            self._drop(h)
            return
        if fault and fault.delay_after:
            time.sleep(fault.delay_after)
        if fault and fault.headers:
            resp.headers.update(fault.headers)
        self._send(h, resp)

    def _dispatch(self, req: Request) -> Response:
        for method, rx, fn in self._routes:
            if method != req.method:
                continue
            m = rx.search(req.path)
            if m:
                with self._lock:  # handlers mutate shared state
                    return fn(req, m)
        return Response(404, {"error": f"fake platform: no route for {req.method} {req.path}"})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, resp: Response) -> None:
        payload, headers = resp.encode()
        try:
            h.send_response(resp.status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): what it would see on a real platform

    @staticmethod
    def _drop(h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_RDWR)
