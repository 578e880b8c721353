"""The pages that show: every campaign, one campaign's overview, its timeline, a post
with its audit trail, the campaign's audit, the posts waiting for review."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from content.errors import NotFound, TminusError
from scheduler import service
from scheduler.service import overview as ov
from scheduler.service import timeline as tl
from scheduler.service.edits import edit_sheet
from scheduler.service.people import Action
from scheduler.web.auth import Ctx, guard
from scheduler.web.render import Render

T = TypeVar("T")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A service function, off the event loop (they use blocking database calls)."""
    return await run_in_threadpool(fn, *args, **kwargs)


def _engine(ctx: Ctx) -> Engine:
    engine: Engine = ctx.request.app.state.engine
    return engine


MAX_ID = 2**63 - 1      # the largest post id a database column holds


def path_id(ctx: Ctx) -> int:
    """The post id in the path, within what the database can hold."""
    value = int(ctx.request.path_params["id"])
    if not 0 < value <= MAX_ID:
        raise NotFound(f"no post {value}; see the campaign's timeline")
    return value


def _render(ctx: Ctx) -> Render:
    render: Render = ctx.request.app.state.render
    return render


@guard(Action.VIEW)
async def home(ctx: Ctx) -> Response:
    o = await call(ov.overview, _engine(ctx), now=ctx.now)
    return await _render(ctx).page(ctx, "home.html", o=o,
                                   alerts_on=bool(ctx.request.app.state.settings.notify_urls))


@guard(Action.VIEW)
async def campaign(ctx: Ctx) -> Response:
    c = await call(ov.campaign_overview, _engine(ctx), ctx.request.path_params["slug"], now=ctx.now)
    return await _render(ctx).page(ctx, "campaign.html", c=c, head=c.head,
                                                   tab="overview")


@guard(Action.VIEW)
async def timeline(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    filters = tl.Filters(account=q.get("account") or None, platform=q.get("platform") or None,
                         state=q.get("state") or None, language=q.get("language") or None)
    t = await call(tl.timeline, _engine(ctx), ctx.request.path_params["slug"], now=ctx.now,
                   filters=filters)
    return await _render(ctx).page(ctx, "timeline.html", t=t, head=t.head,
                                                   tab="timeline")


@guard(Action.VIEW)
async def post(ctx: Ctx) -> Response:
    pid = path_id(ctx)
    card = await call(tl.post_card, _engine(ctx), pid)
    log = await call(service.post_log, _engine(ctx), pid)
    sheet = await call(edit_sheet, _engine(ctx), pid)
    return await _render(ctx).page(ctx, "post.html", card=card, log=log, sheet=sheet)


@guard(Action.VIEW)
async def audit(ctx: Ctx) -> Response:
    a = await call(ov.campaign_audit, _engine(ctx), ctx.request.path_params["slug"], now=ctx.now)
    return await _render(ctx).page(ctx, "audit.html", a=a, head=a.head, tab="audit")


@guard(Action.VIEW)
async def review(ctx: Ctx) -> Response:
    """Every post whose outcome tminus could not tell, with the evidence it has."""
    posts = await call(service.list_posts, _engine(ctx), states=["review", "unknown"])
    logs = [await call(service.post_log, _engine(ctx), p.id) for p in posts[:50]]
    return await _render(ctx).page(ctx, "review.html", logs=logs, total=len(posts))


@guard(Action.VIEW)
async def media(ctx: Ctx) -> Response:
    path = await call(tl.media_file, _engine(ctx), path_id(ctx), ctx.request.path_params["n"])
    kind = mimetypes.guess_type(path.name)[0]
    if kind not in IMAGE_TYPES:
        raise TminusError(f"{path.name} is not an image the platforms take")
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, max-age=300"})
