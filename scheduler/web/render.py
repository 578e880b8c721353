"""Pages from templates: the context every page shares (who is logged in, their CSRF
token, the pauses in force for the banner, a message carried over a redirect), and the
error pages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from content.countdown import about
from scheduler.localtime import local
from scheduler.service.pauses import pauses_in_force
from scheduler.service.people import Action, PersonInfo, may
from scheduler.web.auth import Ctx

TEMPLATES = Path(__file__).parent / "templates"
# What each state means to a comms person, in a few words (the timeline's legend).
STATE_WORDS = {
    "draft": "waiting for approval", "queued": "approved, goes out at its time",
    "sending": "being sent now", "published": "out", "failed": "refused by the platform",
    "unknown": "being looked up", "review": "needs a person", "expired": "not sent in time",
    "canceled": "canceled",
}


def _in(at: datetime, now: datetime) -> str:
    left = at - now
    return f"in {about(left)}" if left.total_seconds() >= 1 else "now"


def _ago(at: datetime, now: datetime) -> str:
    return f"{about(now - at)} ago" if (now - at).total_seconds() >= 1 else "just now"



def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class Render:
    def __init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        env = self.templates.env
        env.trim_blocks = env.lstrip_blocks = True
        env.filters["iso"] = _iso
        env.globals.update(in_=_in, ago=_ago, about=about, local=local,
                           STATE_WORDS=STATE_WORDS,
                           Action=Action)

    async def page(self, ctx: Ctx, template: str, status: int = 200, **context: Any) -> Response:
        engine = ctx.request.app.state.engine
        pauses = await run_in_threadpool(pauses_in_force, engine)
        return self._render(ctx.request, template, status, person=ctx.person, csrf=ctx.csrf,
                            flash=ctx.flash, now=ctx.now, pauses=pauses, **context)

    def _render(self, request: Request, template: str, status: int, **context: Any) -> Response:
        person: PersonInfo | None = context.get("person")
        context["can"] = (lambda action: person is not None and may(person.role, action))
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def error(self, ctx: Ctx, message: str, status: int) -> Response:
        return self._render(ctx.request, "error.html", status, person=ctx.person, csrf=ctx.csrf,
                            flash=None, now=ctx.now, pauses=[], message=message)

    def refused(self, request: Request, person: PersonInfo | None, csrf: str) -> Response:
        """A POST without this session's CSRF token: not from one of our forms."""
        return self._render(request, "error.html", 403, person=person, csrf=csrf, flash=None,
                            now=request.app.state.clock.now(), pauses=[],
                            message="This form was not sent from a tminus page of your session "
                                    "(or it is out of date). Nothing was done. Go back, reload "
                                    "the page and try again.")

    def bare(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """A page for someone not logged in (the login page)."""
        return self._render(request, template, status, person=None, csrf="", flash=None,
                            now=request.app.state.clock.now(), pauses=[], **context)
