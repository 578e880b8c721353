"""Who is asking: the session cookie, the CSRF token, and the guard every page passes.

The cookie holds a random session token signed with the dashboard's secret
(itsdangerous); the database holds only the token's hash (`service.people`). Each form
carries a CSRF token derived from the session (an HMAC under the same secret) and every
POST is refused without it. The login form, before any session, uses a signed token of
its own in a short-lived cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from content.errors import NotFound, TminusError
from scheduler import defaults
from scheduler.service.people import Action, NotAllowed, PersonInfo, session_person

SESSION_COOKIE = "tminus_session"
LOGIN_COOKIE = "tminus_login"
FLASH_COOKIE = "tminus_flash"
LOGIN_COOKIE_SECONDS = 3600
MAX_FORM_FIELDS = 2000          # an approval of APPROVE_AT_ONCE posts, with room to spare


class Keys:
    """Everything signed with the dashboard's secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.session = TimestampSigner(secret, salt="tminus-session")
        self.login = TimestampSigner(secret, salt="tminus-login")
        self.flash = URLSafeTimedSerializer(secret, salt="tminus-flash")  # any text, cookie-safe

    def csrf(self, token: str) -> str:
        return hmac.new(self.secret, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def unsign(signer: TimestampSigner, value: str | None, max_age: int) -> str | None:
    if not value:
        return None
    try:
        return signer.unsign(value, max_age=max_age).decode()
    except (BadSignature, UnicodeDecodeError):
        return None


@dataclass
class Ctx:
    """One request as a page handler sees it."""

    request: Request
    person: PersonInfo
    csrf: str
    now: datetime
    form: FormData | None = None
    flash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def fields(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [v for v in self.form.getlist(name) if isinstance(v, str)]


Handler = Callable[[Ctx], Awaitable[Response]]


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def cookie_args(request: Request, max_age: int) -> dict[str, Any]:
    https = request.app.state.settings.web_https
    return {"max_age": max_age, "httponly": True, "samesite": "lax", "secure": https, "path": "/"}


Endpoint = Callable[[Request], Awaitable[Response]]


def guard(action: Action, *, post: bool = False) -> Callable[[Handler], Endpoint]:
    """Wrap a page: the logged-in person (or the login page / 401), their role checked
    for `action`, the CSRF token of a POST checked, and a `TminusError` shown as a page."""
    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            app = request.app.state
            now = app.clock.now()
            token = unsign(app.keys.session, request.cookies.get(SESSION_COOKIE),
                           defaults.WEB_SESSION_SECONDS)
            person = (await run_in_threadpool(session_person, app.engine, token, now=now)
                      if token else None)
            if person is None or token is None:
                return unauthenticated(request)
            ctx = Ctx(request, person, app.keys.csrf(token), now)
            if post:
                ctx.form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
                sent = ctx.field("csrf")
                if not sent or not hmac.compare_digest(sent, ctx.csrf):
                    refused: Response = app.render.refused(request, person, ctx.csrf)
                    return refused
            ctx.flash = read_flash(request)
            try:
                person.require(action)
                response = await handler(ctx)
            except NotAllowed as e:
                response = app.render.error(ctx, str(e), 403)
            except NotFound as e:
                response = app.render.error(ctx, e.what, 404)
            except TminusError as e:
                response = app.render.error(ctx, str(e), 400)
            if ctx.flash is not None and FLASH_COOKIE in request.cookies:
                response.delete_cookie(FLASH_COOKIE, path="/")
            return response
        return endpoint
    return wrap


def unauthenticated(request: Request) -> Response:
    """The login page for a browser; 401 for anything else (a script, a fetch)."""
    if request.method == "GET" and wants_html(request):
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(path)}", status_code=303)
    return JSONResponse({"error": "log in first"}, status_code=401,
                        headers={"WWW-Authenticate": 'Cookie realm="tminus"'})


def _quote(path: str) -> str:
    from urllib.parse import quote
    return quote(path, safe="/")


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of this site only (never "//host")."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def redirect(ctx: Ctx, to: str, message: str | None = None) -> Response:
    """After a POST: go to `to` (a GET), carrying a one-line message to show there."""
    response = RedirectResponse(to, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, ctx.request.app.state.keys.flash.dumps(message),
                            **cookie_args(ctx.request, 60))
    return response


def read_flash(request: Request) -> str | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        message = request.app.state.keys.flash.loads(value, max_age=60)
    except BadSignature:
        return None
    return message if isinstance(message, str) else None


def new_login_token() -> str:
    return secrets.token_urlsafe(24)
