"""The pages that change something: log in and out, approve, edit, cancel, review,
queue a one-off post, pause and resume, people. Each calls one service function as the
logged-in person (the approver of a post is who clicked, never a form field) and shows
a field's error beside the field."""

from __future__ import annotations

import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from content.errors import FieldError, TminusError
from scheduler import defaults, service
from scheduler.service import approvals
from scheduler.service import overview as ov
from scheduler.service import timeline as tl
from scheduler.service.edits import edit_sheet
from scheduler.service.people import ROLES, Action, LoginRefused, log_in, log_out
from scheduler.service.zones import zones
from scheduler.web.auth import (
    FLASH_COOKIE,
    LOGIN_COOKIE,
    LOGIN_COOKIE_SECONDS,
    SESSION_COOKIE,
    Ctx,
    cookie_args,
    guard,
    new_login_token,
    read_flash,
    redirect,
    safe_next,
    unsign,
)
from scheduler.web.pages import MAX_ID, _engine, _render, call, path_id

# -- logging in ------------------------------------------------------------------------------


# Said on the login page after an admin set their own password: their session ended.
OWN_PASSWORD_CHANGED = "Your password was changed; log in with the new one."


async def login_form(request: Request, *, error: str | None = None, status: int = 200,
                     name: str = "", then: str | None = None) -> Response:
    """The login form; with the one-line message a redirect here carried (why the
    session ended), shown once. `then`: where to go once logged in (a refused login
    keeps the page it was going to)."""
    state = request.app.state
    token = new_login_token()
    notice = read_flash(request)
    response: Response = state.render.bare(request, "login.html", status, error=error, name=name,
                                 next=safe_next(then or request.query_params.get("next")),
                                 login_csrf=state.keys.csrf("login:" + token), notice=notice)
    response.set_cookie(LOGIN_COOKIE, state.keys.login.sign(token).decode(),
                        **cookie_args(request, LOGIN_COOKIE_SECONDS))
    if notice is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


async def login(request: Request) -> Response:
    state = request.app.state
    form = await request.form(max_files=0, max_fields=10)
    token = unsign(state.keys.login, request.cookies.get(LOGIN_COOKIE), LOGIN_COOKIE_SECONDS)
    sent = form.get("csrf")
    if (token is None or not isinstance(sent, str)
            or not hmac.compare_digest(sent, state.keys.csrf("login:" + token))):
        return await login_form(request, status=403, error="This login form is out of date; "
                                "it has been reloaded: log in again.")
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    address = request.client.host if request.client else "unknown"
    try:
        done = await run_in_threadpool(log_in, state.engine, name=name, password=password,
                                       address=address, now=state.clock.now())
    except LoginRefused as e:
        return await login_form(request, status=401, error=str(e), name=name,
                                then=str(form.get("next") or ""))
    response = RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
    response.set_cookie(SESSION_COOKIE, state.keys.session.sign(done.token).decode(),
                        **cookie_args(request, defaults.WEB_SESSION_SECONDS))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@guard(Action.VIEW, post=True)
async def logout(ctx: Ctx) -> Response:
    state = ctx.request.app.state
    token = unsign(state.keys.session, ctx.request.cookies.get(SESSION_COOKIE),
                   defaults.WEB_SESSION_SECONDS)
    if token:
        await run_in_threadpool(log_out, state.engine, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- approve -----------------------------------------------------------------------------------


def _ids(values: list[str]) -> list[int]:
    try:
        ids = sorted({int(v) for v in values})
    except ValueError:
        raise TminusError("a post id is a number") from None
    if any(not 0 < i <= MAX_ID for i in ids):
        raise TminusError("no such post; see the campaign's timeline")
    return ids


@guard(Action.VIEW)
async def approve_form(ctx: Ctx) -> Response:
    """Choose drafts (GET ?post=ID...), or all drafts (?all=1): the sheet shows exactly
    what will be approved, with its digest. Without a choice: every draft to choose from."""
    slug = ctx.request.path_params["slug"]
    q = ctx.request.query_params
    chosen = _ids(q.getlist("post"))
    if not chosen and not q.get("all"):
        t = await call(tl.timeline, _engine(ctx), slug, now=ctx.now,
                       filters=tl.Filters(state="draft"))
        return await _render(ctx).page(ctx, "approve_choose.html", t=t, head=t.head, tab="approve")
    sheet = await call(approvals.approval_sheet, _engine(ctx), slug,
                       post_ids=chosen or None, now=ctx.now)
    return await _render(ctx).page(ctx, "approve_sheet.html", sheet=sheet, head=sheet.head,
                                   tab="approve")


@guard(Action.APPROVE, post=True)
async def approve(ctx: Ctx) -> Response:
    slug = ctx.request.path_params["slug"]
    ids = _ids(ctx.fields("post"))
    if not ids:
        raise TminusError("no post was chosen; tick the posts to approve")
    try:
        r = await call(service.approve, _engine(ctx), campaign=slug, post_ids=ids,
                       by=ctx.person.name, now=ctx.now, expect=ctx.field("digest"))
    except approvals.Changed as e:
        sheet = await call(approvals.approval_sheet, _engine(ctx), slug, post_ids=ids, now=ctx.now)
        return await _render(ctx).page(ctx, "approve_sheet.html", 409, sheet=sheet, head=sheet.head,
                                       tab="approve", changed=str(e))
    expired = f"; {len(r.expired)} were past their time and expired" if r.expired else ""
    return redirect(ctx, f"/c/{slug}", f"Approved {len(r.approved)} post(s) as {r.by}{expired}.")


# -- edit, cancel, review -------------------------------------------------------------------------


@guard(Action.EDIT)
async def edit_form(ctx: Ctx) -> Response:
    sheet = await call(edit_sheet, _engine(ctx), path_id(ctx))
    return await _render(ctx).page(ctx, "edit.html", sheet=sheet, text=sheet.text, error=None)


@guard(Action.EDIT, post=True)
async def edit(ctx: Ctx) -> Response:
    post_id = path_id(ctx)
    text = ctx.field("text")
    try:
        r = await call(service.edit_post, _engine(ctx), post_id, text, by=ctx.person.name, now=ctx.now)
    except FieldError as e:
        sheet = await call(edit_sheet, _engine(ctx), post_id)
        return await _render(ctx).page(ctx, "edit.html", 400, sheet=sheet, text=text, error=e.message)
    return redirect(ctx, f"/posts/{post_id}",
                    f"Saved: post {post_id} is a draft again ({r.length}/{r.limit}); it needs approval.")


@guard(Action.EDIT, post=True)
async def settle(ctx: Ctx) -> Response:
    post_id = path_id(ctx)
    keep = ctx.field("choice") == "keep"
    await call(service.settle_conflict, _engine(ctx), post_id, keep=keep, by=ctx.person.name,
               now=ctx.now)
    return redirect(ctx, f"/posts/{post_id}", "Kept your edit." if keep
                    else "Took the campaign file's text; the post needs approval.")


@guard(Action.CANCEL, post=True)
async def cancel(ctx: Ctx) -> Response:
    post_id = path_id(ctx)
    if ctx.field("confirm") != "yes":
        raise FieldError("confirm", "tick the box to confirm canceling this post")
    await call(service.cancel, _engine(ctx), campaign=None, post_ids=[post_id], by=ctx.person.name,
               now=ctx.now, reason=f"canceled by {ctx.person.name} in the web dashboard")
    return redirect(ctx, f"/posts/{post_id}", f"Post {post_id} is canceled; it will not go out.")


@guard(Action.REVIEW, post=True)
async def review(ctx: Ctx) -> Response:
    post_id = path_id(ctx)
    try:
        how = service.Resolution(ctx.field("resolution"))
    except ValueError:
        raise TminusError("choose: it was published (give its URL), send it again, or cancel it") from None
    url = ctx.field("url") or None
    r = await call(service.review, _engine(ctx), post_id, how, by=ctx.person.name, now=ctx.now, url=url)
    return redirect(ctx, f"/posts/{post_id}", f"Post {post_id} is now {r.state}.")


# -- queue a one-off post --------------------------------------------------------------------------


async def _queue_page(ctx: Ctx, status: int = 200, **context: object) -> Response:
    lines = await call(service.list_posts, _engine(ctx), states=[])
    accounts = sorted({(p.account, p.platform) for p in lines})
    o = await call(ov.overview, _engine(ctx), now=ctx.now)
    return await _render(ctx).page(ctx, "queue.html", status, accounts=accounts,
                                   campaigns=[c.head for c in o.campaigns if not c.head.over],
                                   **context)


@guard(Action.QUEUE)
async def queue_form(ctx: Ctx) -> Response:
    return await _queue_page(ctx, values={"at": "+10m"}, error=None)


@guard(Action.QUEUE, post=True)
async def queue(ctx: Ctx) -> Response:
    values = {k: ctx.field(k) for k in ("account", "at", "text", "campaign", "expires", "approve")}
    approve_now = values["approve"] == "yes"
    if approve_now:
        ctx.person.require(Action.APPROVE)
    request = service.OneOff(account=values["account"], at=values["at"], text=values["text"],
                             campaign=values["campaign"] or None, expires=values["expires"] or None,
                             by=ctx.person.name if approve_now else None, author=ctx.person.name)
    try:
        q = await call(service.queue_post, _engine(ctx), request, now=ctx.now)
    except FieldError as e:
        return await _queue_page(ctx, 400, values=values, error=e)
    except TminusError as e:
        return await _queue_page(ctx, 400, values=values, error=FieldError("text", str(e)))
    what = "approved and queued" if q.state == "queued" else "queued as a draft (it needs approval)"
    return redirect(ctx, f"/posts/{q.post_id}", f"Post {q.post_id} is {what}.")


# -- pause and resume ------------------------------------------------------------------------------


def _target(ctx: Ctx) -> service.Target:
    """The form's `what`: "all", "campaign:SLUG" or "account:NAME"."""
    scope, _, value = ctx.field("what").partition(":")
    if scope == "all":
        return service.Target(everything=True)
    if scope == "campaign" and value:
        return service.Target(campaign=value)
    if scope == "account" and value:
        return service.Target(account=value)
    raise FieldError("what", "choose what to pause: everything or one campaign")


@guard(Action.VIEW)
async def pause_form(ctx: Ctx) -> Response:
    o = await call(ov.overview, _engine(ctx), now=ctx.now)
    q = ctx.request.query_params
    return await _render(ctx).page(ctx, "pause.html", o=o, what=q.get("what", "all"), reason="",
                                   error=None)


@guard(Action.PAUSE, post=True)
async def pause(ctx: Ctx) -> Response:
    try:
        if ctx.field("confirm") != "yes":
            raise FieldError("confirm", "tick the box to confirm: nothing goes out until resumed")
        r = await call(service.pause, _engine(ctx), _target(ctx), reason=ctx.field("reason"),
                       by=ctx.person.name, now=ctx.now)
    except FieldError as e:
        o = await call(ov.overview, _engine(ctx), now=ctx.now)
        return await _render(ctx).page(ctx, "pause.html", 400, o=o, what=ctx.field("what"),
                                       reason=ctx.field("reason"), error=e)
    message = (f"{r.pause.what.capitalize()} was already paused by {r.pause.by}." if r.already else
               f"Paused {r.pause.what}: {r.waiting} queued post(s) wait; nothing goes out until resumed.")
    if r.in_flight:
        message += f" {r.in_flight} post(s) were being sent at that moment and may still go out."
    return redirect(ctx, "/", message)


@guard(Action.RESUME, post=True)
async def resume(ctx: Ctx) -> Response:
    r = await call(service.resume, _engine(ctx), _target(ctx), by=ctx.person.name, now=ctx.now)
    return await _render(ctx).page(ctx, "resumed.html", r=r,
                                   zones=await call(zones, _engine(ctx)))


@guard(Action.RESUME, post=True)
async def resume_account(ctx: Ctx) -> Response:
    """An account paused on a refused login, resumed once its credentials are fixed (as
    `tminus accounts resume`): an approver's call, since its posts go out at once."""
    name = ctx.field("name")
    lifted = await call(service.resume_account, _engine(ctx), name, by=ctx.person.name,
                        now=ctx.now)
    return redirect(ctx, safe_next(ctx.field("next")),
                    f"Account {name} resumed (it was {lifted}); its due posts go out now."
                    if lifted else f"Account {name} was not paused; nothing changed.")


# -- people ----------------------------------------------------------------------------------------


async def _people_page(ctx: Ctx, status: int = 200, **context: object) -> Response:
    people = await call(service.list_people, _engine(ctx))
    return await _render(ctx).page(ctx, "people.html", status, people=people, roles=ROLES, **context)


@guard(Action.PEOPLE)
async def people(ctx: Ctx) -> Response:
    return await _people_page(ctx, values={"role": "viewer"}, error=None)


@guard(Action.PEOPLE, post=True)
async def add_person(ctx: Ctx) -> Response:
    values = {"name": ctx.field("name"), "role": ctx.field("role")}
    try:
        p = await call(service.add_person, _engine(ctx), name=values["name"], role=values["role"],
                       password=ctx.field("password"), by=ctx.person.name, now=ctx.now)
    except FieldError as e:
        return await _people_page(ctx, 400, values=values, error=e)
    return redirect(ctx, "/people", f"Added {p.name} as {p.role}.")


@guard(Action.PEOPLE, post=True)
async def remove_person(ctx: Ctx) -> Response:
    p = await call(service.remove_person, _engine(ctx), name=ctx.field("name"), by=ctx.person.name,
                   now=ctx.now)
    return redirect(ctx, "/people", f"Removed {p.name}; their logins have ended.")


@guard(Action.PEOPLE, post=True)
async def set_role(ctx: Ctx) -> Response:
    """Another role, with the CLI's rule: the last admin stays one."""
    p = await call(service.set_role, _engine(ctx), name=ctx.field("name"), role=ctx.field("role"),
                   by=ctx.person.name, now=ctx.now)
    if p.id == ctx.person.id and not p.may(Action.PEOPLE):
        return redirect(ctx, "/", f"You are now {_an(p.role)} {p.role}; an admin manages people.")
    return redirect(ctx, "/people", f"{p.name} is now {_an(p.role)} {p.role}.")


@guard(Action.PEOPLE, post=True)
async def set_password(ctx: Ctx) -> Response:
    """A new password, hashed as `tminus users password` does; the person's logins end
    (the admin's own too, when it is theirs: they log in again with it)."""
    name = ctx.field("name")
    try:
        p = await call(service.set_password, _engine(ctx), name=name,
                       password=ctx.field("password"), by=ctx.person.name, now=ctx.now)
    except FieldError as e:
        if e.field != "password":
            raise
        return await _people_page(ctx, 400, values={"role": "viewer"}, error=None,
                                  reset=name, reset_error=e)
    if p.id == ctx.person.id:           # their own: this session has ended too
        response = redirect(ctx, "/login", OWN_PASSWORD_CHANGED)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return redirect(ctx, "/people", f"New password set for {p.name}; their logins have ended: "
                    "tell them the new one in person.")


def _an(role: str) -> str:
    return "an" if role[0] in "aeiou" else "a"
