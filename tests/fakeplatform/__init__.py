"""A fake X / Mastodon / Bluesky server for the tests: one threaded local HTTP server.

It speaks the subset of each API that tminus uses (see `x.py`, `mastodon.py`,
`bluesky.py` beside this file), for any number of accounts per platform, records every
request it receives and every post it holds, and plays the platforms at their worst
on demand. The real SDKs talk to it over HTTP.

    with FakePlatformServer() as fake:
        fake.fault("POST", r"^/2/tweets$", status_after=503)   # the tweet exists
        ...
        fake.requests_to("POST", "/2/tweets"); fake.posts(platform="x")

The same server runs as a process of its own (`python -m tests.fakeplatform`, see
`__main__.py`), driven over HTTP through `/_fake/...` (see `control.py`; the client
is `remote.RemoteFake`).

Faults (`fake.fault(method, path_regex, ...)`), each consumed by one matching request,
`times` times. "Before" means the platform never acts on the request (nothing is
created); "after" means it handles it first (the post exists) and then:
- `status=N` / `status_after=N` (+ `body`, `headers`): answers N; `proxy_page(N)` gives
  the HTML error page a proxy in front of the platform would send;
- `hang=True` / `hang_after=True`: holds the connection, answering nothing, until the
  client gives up (longer than any client timeout) or the server stops;
- `delay=S`: handles the request S seconds late (a timeout after which the post still
  appears); `delay_after=S`: handles it, then answers S seconds late;
- `drop=True` / `drop_after=True`: closes the connection without an answer;
- `reset=True` / `reset_after=True`: resets the connection (TCP RST).

`latency=S` delays every answer by S seconds (a real API's round trip); each request
has its own thread, so many are served at once (`peak_in_flight` says how many were;
`connections` how many connections were accepted).

`fake.clock` is the platform's own clock (real time plus whatever a test moved it by,
`fake.clock.advance(s)`): post times, rate-limit windows and Mastodon's one-hour
memory of Idempotency-Keys follow it.

`fake.on_request = fn` calls `fn(request)` for every request as it arrives, after it is
recorded and before any fault or handler (crash tests kill the client there: the
request left, the platform acts on it, the answer reaches no one). It runs on the
server's request thread; None (the default) does nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# A hanging request is released after this long at the latest (or when the server
# stops): past every client timeout the tests use.
HANG_SECONDS = 30.0


class FakeClock:
    """The fake platform's clock: real time moved by `advance()` (never backwards
    unless told). Thread-safe."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)   # Unix seconds, on the fake's clock

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
    status_after: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    delay_after: float = 0.0
    hang: bool = False
    hang_after: bool = False
    drop: bool = False
    drop_after: bool = False
    reset: bool = False
    reset_after: bool = False


def proxy_page(status: int) -> dict[str, Any]:
    """`fault(...)` arguments for the HTML page a proxy or load balancer answers with
    (`fake.fault("POST", path, status_after=502, **proxy_page(502))`)."""
    title = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
             504: "Gateway Time-out"}.get(status, "Error")
    page = (f"<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n")
    return {"body": page.encode(), "headers": {"Content-Type": "text/html"}}


@dataclass(frozen=True)
class Posted:
    """One post as the platform holds it: the platform's own record, to compare with
    tminus's post by post."""

    platform: str
    account: str                 # the handle / username it was posted as
    remote_id: str               # what tminus stores as the post's remote id
    text: str
    at: datetime                 # when the platform made it, on its clock
    reply_to: str | None = None  # the remote id it replies to
    key: str | None = None       # Mastodon's Idempotency-Key, Bluesky's record key

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "account": self.account,
                "remote_id": self.remote_id, "text": self.text, "at": self.at.isoformat(),
                "reply_to": self.reply_to, "key": self.key}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Posted:
        return cls(d["platform"], d["account"], d["remote_id"], d["text"],
                   datetime.fromisoformat(d["at"]), d.get("reply_to"), d.get("key"))


class _Server(ThreadingHTTPServer):
    # A burst of a thousand accounts connects at once: the listen backlog must hold
    # them all (socketserver's default of 5 would turn the rest away for a second).
    request_queue_size = 4096
    daemon_threads = True
    accepted = 0        # connections accepted so far (the serving thread alone counts)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes (killed with -9, or gone while its keep-alive
        # connection waited) is part of the game, not an error worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakePlatformServer:
    """Start with `with FakePlatformServer() as fake:`; `fake.url` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0,
                 clock: FakeClock | None = None) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._control: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self.latency = latency
        self.clock = clock or FakeClock()
        self.requests: list[Request] = []
        self.state: dict[str, Any] = {}   # each platform module keeps its data here
        self.ledgers: dict[str, Callable[[], list[Posted]]] = {}   # platform -> its posts
        self.on_request: Callable[[Request], None] | None = None
        self.in_flight = 0
        self.peak_in_flight = 0
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

        self._httpd = _Server((host, port), _H)
        self._thread: threading.Thread | None = None
        from tests.fakeplatform import bluesky, control, mastodon, x
        for module in (x, mastodon, bluesky):
            module.register(self)
        control.register(self)

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
        # stop() waits for the serving loop to notice, up to one poll interval: short,
        # because hundreds of tests start and stop a fake
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()          # hanging requests let go
        self._httpd.shutdown()
        self._httpd.server_close()

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def connections(self) -> int:
        """Connections accepted so far (fewer than requests where clients keep them)."""
        return self._httpd.accepted

    # -- configuration ---------------------------------------------------------------

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self._routes.append((method.upper(), re.compile(pattern), fn))
            return fn
        return deco

    def control_route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """A route of the fake itself (`/_fake/...`): no fault, latency or record."""
        def deco(fn: Handler) -> Handler:
            self._control.append((method.upper(), re.compile(pattern), fn))
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

    def posts(self, *, platform: str | None = None, account: str | None = None) -> list[Posted]:
        """Every post the platforms hold, oldest first, optionally of one platform or
        account."""
        with self._lock:
            found = [p for name, ledger in self.ledgers.items()
                     if platform in (None, name) for p in ledger()]
        return sorted((p for p in found if account in (None, p.account)), key=lambda p: p.at)

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
                      headers=dict(h.headers.items()), body=body, at=self.now().timestamp())
        control = self._match(self._control, req)
        if control is not None:
            fn, m = control
            self._send(h, fn(req, m))
            return
        with self._lock:
            self.requests.append(req)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            self._answer(h, req)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        hook = self.on_request
        if hook is not None:
            hook(req)
        fault = self._take_fault(req.method, req.path) or Fault(req.method, re.compile(""))
        if fault.delay:
            time.sleep(fault.delay)
        if fault.hang:
            self._hang(h)
            return
        if fault.drop or fault.reset:
            self._cut(h, reset=fault.reset)
            return
        if fault.status is not None:
            self._reply(h, Response(fault.status, fault.body, fault.headers))
            return
        resp = self._dispatch(req)                     # the platform acts on it
        if fault.hang_after:
            self._hang(h)
            return
        if fault.drop_after or fault.reset_after:
            self._cut(h, reset=fault.reset_after)
            return
        if fault.status_after is not None:
            resp = Response(fault.status_after, fault.body, dict(fault.headers))
        elif fault.headers:
            resp.headers.update(fault.headers)
        if fault.delay_after:
            time.sleep(fault.delay_after)
        self._reply(h, resp)

    @staticmethod
    def _match(routes: list[tuple[str, re.Pattern[str], Handler]],
               req: Request) -> tuple[Handler, re.Match[str]] | None:
        for method, rx, fn in routes:
            if method == req.method and (m := rx.search(req.path)):
                return fn, m
        return None

    def _dispatch(self, req: Request) -> Response:
        found = self._match(self._routes, req)
        if found is None:
            return Response(404, {"error": f"fake platform: no route for {req.method} {req.path}"})
        fn, m = found
        with self._lock:  # handlers mutate shared state
            return fn(req, m)

    def _reply(self, h: BaseHTTPRequestHandler, resp: Response) -> None:
        if self.latency:
            # outside the lock: requests wait side by side (and stop waiting when the
            # server stops)
            self._stopped.wait(self.latency)
        self._send(h, resp)

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

    def _hang(self, h: BaseHTTPRequestHandler) -> None:
        """Answer nothing until the server stops (the client times out first)."""
        self._stopped.wait(HANG_SECONDS)
        self._cut(h, reset=False)

    @staticmethod
    def _cut(h: BaseHTTPRequestHandler, *, reset: bool) -> None:
        """Close the connection without an answer: an orderly close (the client reads
        the end of the stream), or with `reset` a TCP RST (the client's read fails
        with "connection reset by peer")."""
        h.close_connection = True
        with contextlib.suppress(OSError):
            if reset:
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                h.connection.close()
            else:
                h.connection.shutdown(socket.SHUT_RDWR)
