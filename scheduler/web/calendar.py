"""The calendar feed: `/calendar/TOKEN.ics` for a calendar app (no login: the token is
the key), and the page where an approver sees, regenerates or revokes that address."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from content.errors import TminusError
from scheduler.clock import Clock
from scheduler.service import calendar as cal
from scheduler.service.people import Action
from scheduler.web.auth import Ctx, guard, redirect
from scheduler.web.pages import call


async def feed(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    clock: Clock = request.app.state.clock
    try:
        body = await run_in_threadpool(cal.feed_by_token, engine,
                                       request.path_params["token"], clock.now())
    except TminusError as e:
        return PlainTextResponse(f"{e}\n", status_code=404)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"cache-control": "private, max-age=300"})


def _address(ctx: Ctx, token: str) -> str:
    base = ctx.request.app.state.settings.web_url or str(ctx.request.base_url).rstrip("/")
    return f"{base}/calendar/{token}.ics"


@guard(Action.APPROVE)
async def page(ctx: Ctx) -> Response:
    engine: Engine = ctx.request.app.state.engine
    f = await call(cal.calendar_feed, engine, ctx.request.path_params["slug"])
    render = ctx.request.app.state.render
    response: Response = await render.page(ctx, "calendar.html", slug=f.slug,
                                           address=_address(ctx, f.token) if f.token else None)
    return response


@guard(Action.APPROVE, post=True)
async def change(ctx: Ctx) -> Response:
    engine: Engine = ctx.request.app.state.engine
    slug = ctx.request.path_params["slug"]
    what = ctx.field("do")
    if what == "new":
        await call(cal.new_calendar_feed, engine, slug)
        said = "A new calendar address is made; the old one no longer works."
    elif what == "revoke":
        await call(cal.revoke_calendar_feed, engine, slug)
        said = "The calendar address is revoked."
    else:
        raise TminusError("choose to make a new address or to revoke it")
    return redirect(ctx, f"/c/{slug}/calendar", said)
