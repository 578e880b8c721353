"""The web dashboard for the comms team (`tminus web`).

A Starlette app of server-rendered pages (forms that work without JavaScript; a little
JavaScript of ours ticks the countdown and refreshes what changes), on the database the
daemon uses. Every page calls the service layer and nothing below it: the dashboard
does what the command line does, as the logged-in person. Nothing but the login page,
the static files and the endpoints for machines (`/healthz`, `/readyz`, `/metrics`:
`web/health.py`) and the calendar feed behind its secret address answer without a login.

`create_app` builds it (tests pass their own engine and clock); `serve` runs it with
uvicorn, behind a TLS proxy in production (README: "The web dashboard").
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from content.errors import TminusError
from scheduler.clock import Clock, SystemClock
from scheduler.service.people import web_secret
from scheduler.settings import Settings
from scheduler.web import actions, calendar, health, pages
from scheduler.web.auth import Keys
from scheduler.web.render import Render

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1_000_000    # a form of 500 post ids or a long post is a few kB; nothing needs more
# Our own pages load only our own files: no inline script, nothing from elsewhere.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders:
    """Headers on every response: the content policy above, no framing, no sniffing,
    no referrer to other sites, and HSTS when the dashboard is reached over TLS."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.headers = [(b"content-security-policy", CSP.encode()),
                        (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"same-origin")]
        if https:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(engine: Engine, settings: Settings, *, clock: Clock | None = None) -> Starlette:
    routes = [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics_page),
        Route("/calendar/{token}.ics", calendar.feed),
        Route("/login", actions.login_form, methods=["GET"]),
        Route("/login", actions.login, methods=["POST"]),
        Route("/logout", actions.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        Route("/", pages.home),
        Route("/c/{slug}", pages.campaign),
        Route("/c/{slug}/timeline", pages.timeline),
        Route("/c/{slug}/audit", pages.audit),
        Route("/c/{slug}/calendar", calendar.page, methods=["GET"]),
        Route("/c/{slug}/calendar", calendar.change, methods=["POST"]),
        Route("/c/{slug}/approve", actions.approve_form, methods=["GET"]),
        Route("/c/{slug}/approve", actions.approve, methods=["POST"]),
        Route("/posts/{id:int}", pages.post),
        Route("/posts/{id:int}/media/{n:int}", pages.media),
        Route("/posts/{id:int}/edit", actions.edit_form, methods=["GET"]),
        Route("/posts/{id:int}/edit", actions.edit, methods=["POST"]),
        Route("/posts/{id:int}/settle", actions.settle, methods=["POST"]),
        Route("/posts/{id:int}/cancel", actions.cancel, methods=["POST"]),
        Route("/posts/{id:int}/review", actions.review, methods=["POST"]),
        Route("/review", pages.review),
        Route("/queue", actions.queue_form, methods=["GET"]),
        Route("/queue", actions.queue, methods=["POST"]),
        Route("/pause", actions.pause_form, methods=["GET"]),
        Route("/pause", actions.pause, methods=["POST"]),
        Route("/resume", actions.resume, methods=["POST"]),
        Route("/accounts/resume", actions.resume_account, methods=["POST"]),
        Route("/people", actions.people, methods=["GET"]),
        Route("/people", actions.add_person, methods=["POST"]),
        Route("/people/remove", actions.remove_person, methods=["POST"]),
        Route("/people/role", actions.set_role, methods=["POST"]),
        Route("/people/password", actions.set_password, methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, https=settings.web_https)],
                    max_body_size=MAX_BODY)
    app.state.engine = engine
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.keys = Keys(web_secret(engine, settings.web_secret))
    app.state.render = Render()
    return app


def serve(engine: Engine, settings: Settings, *, host: str, port: int,
          listening: Callable[[], None] = lambda: None) -> None:
    """Run the dashboard with uvicorn until Ctrl-C. Forwarded client addresses and
    schemes are believed only from TMINUS_WEB_PROXIES (the TLS proxy in front)."""
    import uvicorn
    sock = listen(host, port)
    listening()
    config = uvicorn.Config(create_app(engine, settings), host=host, port=port,
                            proxy_headers=True, forwarded_allow_ips=settings.web_proxies,
                            server_header=False, log_level=settings.log_level.lower(),
                            access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """The dashboard's socket, bound here rather than by uvicorn: a port in use (another
    `tminus web`, `make web-demo`), an out-of-range port or an unknown host is one line
    naming the option, exit 2 — not uvicorn's log lines and exit 3, or a traceback."""
    if not 1 <= port <= 65535:
        raise TminusError(f"--port {port}: choose a port from 1024 to 65535, e.g. --port 8000")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise TminusError(f"--host {host}: not an address of this machine ({e}); write "
                          "127.0.0.1 (this machine only) or 0.0.0.0 (every address)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn sets it
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise TminusError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e}); "
                          "is another `tminus web` running there? Stop it or give another "
                          "--port") from None
    return sock
