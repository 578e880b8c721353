"""The `tminus` command line: parse, call one library function, print.

A `TminusError` (any user mistake) becomes one red line and exit code 2; no
traceback. `.env` is read here, at the edge, and nowhere else.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from dotenv import load_dotenv
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from content.errors import CampaignErrors, TminusError
from content.platforms import check_all, check_length
from content.schedule import ScheduleError, parse_duration, parse_instant
from scheduler import defaults
from scheduler.clock import SystemClock
from scheduler.db import current_revision, ensure_schema, head_revision, make_engine, session, upgrade
from scheduler.models import Account, Campaign, Post, PostState
from scheduler.models import Daemon as DaemonRow
from scheduler.notify import notify
from scheduler.queue import approve as approve_posts
from scheduler.queue import cancel as cancel_posts
from scheduler.queue import events_of, find_campaign, posts_in, text_hash, transition
from scheduler.settings import Settings

app = typer.Typer(help="tminus: plan, preview, approve and publish countdown campaigns.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
queue_app = typer.Typer(help="One-off posts.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="The accounts tminus posts as.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _settings() -> Settings:
    return Settings.from_env()


def _engine(settings: Settings | None = None, *, create: bool = True) -> Engine:
    engine = make_engine((settings or _settings()).database_url)
    ensure_schema(engine, create_if_new=create)
    return engine


def _now() -> datetime:
    return SystemClock().now()


def _as_of(value: str | None) -> datetime:
    if value is None:
        return _now()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TminusError(f"--as-of {value!r} is not an ISO date-time like 2017-01-16T09:00:00-05:00") from None
    if parsed.tzinfo is None:
        raise TminusError("--as-of needs a UTC offset, e.g. 2017-01-16T09:00:00-05:00")
    return parsed.astimezone(UTC)


# -- campaigns -------------------------------------------------------------------------


@app.command()
def validate(folder: Annotated[Path, typer.Argument(help="campaign folder")],
             as_of: Annotated[str | None, typer.Option(help="check as if it were this instant")] = None) -> None:
    """Check a campaign folder and print every problem (exit 2 if any)."""
    from scheduler.planner import check
    now = _as_of(as_of)
    try:
        campaign, expansion = check(folder, now=now)
    except CampaignErrors as e:
        for problem in e.errors:
            err.print(f"[red]error:[/] {escape(str(problem))}")
        err.print(f"[red]{len(e.errors)} problem(s); nothing was written.[/]")
        raise typer.Exit(2) from None
    for w in expansion.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")
    for p in expansion.posts:
        for w in p.warnings:
            out.print(f"[yellow]warning:[/] {p.account} {p.due_at:%Y-%m-%d %H:%M} UTC: {escape(w)}")
    out.print(f"[green]ok[/] {campaign.slug}: {len(expansion.posts)} posts on "
              f"{len(campaign.accounts)} accounts before {campaign.deadline:%Y-%m-%d %H:%M} UTC")


@app.command()
def plan(folder: Annotated[Path, typer.Argument(help="campaign folder")]) -> None:
    """Expand a campaign into posts (drafts). Safe to run again after editing."""
    from scheduler.planner import plan as do_plan
    engine = _engine()
    r = do_plan(engine, folder, now=_now())
    for w in r.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")
    for post_id, diff in r.returned_to_draft:
        out.print(f"[yellow]post {post_id} changed after approval; back to draft:[/]")
        for line in diff.splitlines():
            style = "red" if line.startswith("-") else "green" if line.startswith("+") else ""
            out.print(f"  [{style}]{escape(line)}[/]" if style else f"  {escape(line)}")
    out.print(f"planned {r.campaign}: {r.created} new, {r.updated} updated, {r.unchanged} unchanged, "
              f"{len(r.returned_to_draft)} back to draft, {r.canceled} removed, "
              f"{r.kept_sent} already sent (kept)")
    if r.created or r.returned_to_draft:
        out.print(f"next: [bold]tminus preview {r.campaign}[/], then "
                  f"[bold]tminus approve {r.campaign} --by YOUR-NAME[/]")


@app.command()
def preview(campaign: Annotated[str | None, typer.Argument(help="campaign slug, or a campaign folder (not yet planned)")] = None,
            format: Annotated[str, typer.Option("--format", "-f", help="table, json or html")] = "table",
            output: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file")] = None,
            as_of: Annotated[str | None, typer.Option(help="for a folder: preview as if it were this instant")] = None) -> None:
    """Show every post exactly as it will go out: time, T-minus, account, length, text."""
    from scheduler import preview as pv
    if format not in ("table", "json", "html"):
        raise TminusError(f"--format {format!r}: choose table, json or html")
    if campaign is not None and Path(campaign).is_dir():
        from scheduler.planner import check
        spec, expansion = check(Path(campaign), now=_as_of(as_of) if as_of else None)
        timelines = [pv.from_expansion(spec, expansion)]
    else:
        timelines = pv.from_queue(_engine(), campaign)
    if format == "table":
        if output:
            raise TminusError("--output works with --format json or html")
        pv.render_table(timelines, Console(width=max(out.width, 120)))
        return
    text = pv.render_json(timelines) if format == "json" else pv.render_html(timelines, _now())
    if output:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


@app.command()
def approve(campaign: Annotated[str, typer.Argument(help="campaign slug")],
            by: Annotated[str, typer.Option("--by", help="who approves (recorded)")],
            post: Annotated[list[int] | None, typer.Option("--post", help="approve only these post ids")] = None) -> None:
    """Approve drafts: they are queued to go out at their time."""
    done = approve_posts(_engine(), campaign=campaign, post_ids=post or [], by=by, now=_now())
    out.print(f"approved {len(done)} post(s) by {escape(by)}")


@app.command()
def cancel(campaign: Annotated[str | None, typer.Argument(help="campaign slug (cancels all its pending posts)")] = None,
           post: Annotated[list[int] | None, typer.Option("--post", help="cancel only these post ids")] = None,
           by: Annotated[str, typer.Option("--by", help="who cancels (recorded)")] = "cli") -> None:
    """Cancel pending posts (draft, queued or review)."""
    if campaign is None and not post:
        raise TminusError("name a campaign or give --post ID")
    done = cancel_posts(_engine(), campaign=campaign, post_ids=post or [], by=by, now=_now())
    out.print(f"canceled {len(done)} post(s)")


# -- one-off posts ---------------------------------------------------------------------


@queue_app.command("add")
def queue_add(text: Annotated[str, typer.Argument(help="the post's text, exactly as it goes out")],
              account: Annotated[str, typer.Option("--account", help="account name from a campaign file")],
              at: Annotated[str, typer.Option("--at", help="T-3h (before the deadline), +10m (from now), now, or an ISO date-time")],
              campaign: Annotated[str | None, typer.Option(help="campaign slug (needed if the account is in several)")] = None,
              expires: Annotated[str, typer.Option(help="latest lateness, e.g. 30m")] = "2h",
              by: Annotated[str | None, typer.Option("--by", help="approve it at once, as this person")] = None) -> None:
    """Queue a one-off post, checked like campaign posts."""
    engine = _engine()
    now = _now()
    with session(engine) as s:
        acc = s.exec(select(Account).where(Account.name == account)).first()
        if acc is None:
            known = ", ".join(a for a in s.exec(select(Account.name)).all()) or "none yet; plan a campaign first"
            raise TminusError(f"--account {account!r} is unknown; known accounts: {known}")
        camp = _campaign_for(s, acc, campaign)
        tz = ZoneInfo(camp.timezone)
        due = _when(at, now=now, deadline=camp.deadline, tz=tz)
        if due >= camp.deadline:
            raise TminusError(f"--at {at}: {due:%Y-%m-%d %H:%M:%S} UTC is not before the deadline of "
                              f"{camp.slug} ({camp.deadline:%Y-%m-%d %H:%M} UTC)")
        if due < now - timedelta(seconds=5):
            raise TminusError(f"--at {at}: {due:%Y-%m-%d %H:%M:%S} UTC is in the past")
        try:
            life = parse_duration(expires)
        except ScheduleError as e:
            raise TminusError(f"--expires: {e}") from None
        text = text.strip()
        check = check_length(acc.platform, text, limit=acc.max_characters)
        if not check.ok:
            raise TminusError(f"{check.length} {check.unit} is over {acc.platform}'s limit of "
                              f"{check.limit}; shorten the text")
        _no_duplicate(s, acc, text)
        post = Post(campaign_id=camp.id or 0, account_id=acc.id or 0,
                    plan_key=f"adhoc@{uuid.uuid4().hex[:12]}", post_key="adhoc", origin="cli",
                    state=PostState.DRAFT, text=text, text_hash=text_hash(text), due_at=due,
                    not_after=min(due + life, camp.deadline), next_attempt_at=due,
                    idempotency_key=uuid.uuid4().hex, length=check.length,
                    length_limit=check.limit, created_at=now, updated_at=now)
        s.add(post)
        s.flush()
        from scheduler.queue import event
        event(s, post, PostState.DRAFT, "queued from the command line", now, by or "cli")
        if by:
            post.approved_hash, post.approved_by, post.approved_at = post.text_hash, by, now
            transition(s, post, PostState.QUEUED, f"approved by {by}", now, by)
        pid, state = post.id, post.state
    if by:
        notify(engine)
    out.print(f"post {pid} ({state}) on {account} at {due:%Y-%m-%d %H:%M:%S} UTC, "
              f"{check.length}/{check.limit}" + ("" if by else f"; approve with "
              f"`tminus approve {camp.slug} --post {pid} --by NAME`"))


def _campaign_for(s: Session, acc: Account, slug: str | None) -> Campaign:
    if slug:
        camp = find_campaign(s, slug)
        if acc.name not in camp.account_names:
            raise TminusError(f"account {acc.name!r} is not in campaign {slug!r}")
        return camp
    camps = [c for c in s.exec(select(Campaign)).all() if acc.name in c.account_names]
    if len(camps) != 1:
        raise TminusError(f"account {acc.name!r} is in {len(camps)} campaigns; say which with --campaign")
    return camps[0]


def _when(at: str, *, now: datetime, deadline: datetime, tz: ZoneInfo) -> datetime:
    v = at.strip()
    if v == "now":
        return now
    if v.startswith("+"):
        try:
            return now + parse_duration(v[1:])
        except ScheduleError:
            raise TminusError(f"--at {at!r}: write +10m, +2h or +1d3h") from None
    try:
        return parse_instant(v, deadline=deadline, tz=tz).at
    except ScheduleError as e:
        raise TminusError(f"--at: {e}") from None


def _no_duplicate(s: Session, acc: Account, text: str) -> None:
    same = s.exec(select(Post).join(Account, col(Account.id) == Post.account_id)
                  .where(Post.text_hash == text_hash(text),
                         col(Post.state).notin_([PostState.CANCELED, PostState.EXPIRED, PostState.FAILED]),
                         (Post.account_id == acc.id) | ((Account.platform == "x") & (acc.platform == "x")))
                  ).first()
    if same is not None:
        raise TminusError(f"the same text is already post {same.id}; X rejects repeats and "
                          "forbids identical posts across accounts — make it differ")


# -- looking at the queue --------------------------------------------------------------


@app.command("list")
def list_posts(state: Annotated[list[str] | None, typer.Option("--state", help="only these states (repeatable)")] = None,
               campaign: Annotated[str | None, typer.Option(help="campaign slug")] = None) -> None:
    """List posts, one line each."""
    engine = _engine()
    posts = posts_in(engine, states=state or [], campaign=campaign)
    with session(engine) as s:
        names = {a.id: a.name for a in s.exec(select(Account)).all()}
    table = Table(show_edge=False, box=None)
    for c in ("id", "due (UTC)", "state", "account", "text"):
        table.add_column(c)
    for p in posts:
        table.add_row(str(p.id), f"{p.due_at:%Y-%m-%d %H:%M:%S}", p.state, names.get(p.account_id, "?"),
                      escape(p.text.replace("\n", " ")[:70]))
    out.print(table)
    out.print(f"{len(posts)} post(s)")


@app.command()
def status() -> None:
    """Daemon heartbeat, the next posts with their countdown, and what needs a person."""
    engine = _engine()
    now = _now()
    with session(engine) as s:
        daemons = s.exec(select(DaemonRow).where(col(DaemonRow.stopped_at).is_(None))).all()
        live = [d for d in daemons if (now - d.beat_at).total_seconds() < defaults.HEARTBEAT_STALE_SECONDS]
        if live:
            for d in live:
                mode = " (dry run)" if d.dry_run else ""
                out.print(f"[green]daemon {d.id} alive{mode}[/], last beat {int((now - d.beat_at).total_seconds())} s ago, {d.sent} sent")
        else:
            out.print("[red]no daemon running[/] — start one with `tminus run`")
        counts: dict[str, int] = {}
        for st in s.exec(select(Post.state)).all():
            counts[st] = counts.get(st, 0) + 1
        out.print("posts: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
        camps = {c.id: c for c in s.exec(select(Campaign)).all()}
        accs = {a.id: a for a in s.exec(select(Account)).all()}
        nxt = s.exec(select(Post).where(Post.state == PostState.QUEUED)
                     .order_by(col(Post.next_attempt_at)).limit(5)).all()
        if nxt:
            out.print("next:")
        for p in nxt:
            c = camps[p.campaign_id]
            wait = p.next_attempt_at - now
            out.print(f"  #{p.id} in {_human(wait)} on {accs[p.account_id].name} "
                      f"({c.slug}, T-{_human(c.deadline - p.next_attempt_at)}): "
                      f"{escape(p.text.replace(chr(10), ' ')[:60])}")
        for a in accs.values():
            if a.paused_reason:
                out.print(f"[red]account {a.name} paused[/]: {escape(a.paused_reason)} — "
                          f"`tminus accounts resume {a.name}` once fixed")
            elif a.resume_at and a.resume_at > now:
                out.print(f"[yellow]account {a.name} rate limited[/] until {a.resume_at:%H:%M:%S} UTC")
        attention = s.exec(select(Post).where(col(Post.state).in_(
            [PostState.FAILED, PostState.REVIEW, PostState.UNKNOWN]))).all()
        for p in attention:
            out.print(f"[red]#{p.id} {p.state}[/]: {escape(p.last_error or '')}"
                      + (" — `tminus review` it" if p.state == PostState.REVIEW else ""))


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "now"
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d}d{h}h"
    if h:
        return f"{h}h{m}m"
    return f"{m}m{sec}s" if m else f"{sec}s"


@app.command()
def log(post: Annotated[int, typer.Argument(help="post id")]) -> None:
    """Every event of one post: its audit trail."""
    p, events = events_of(_engine(), post)
    out.print(f"post {p.id}: {p.state}, due {p.due_at:%Y-%m-%d %H:%M:%S} UTC, attempt {p.attempt}"
              + (f", {p.remote_url}" if p.remote_url else ""))
    out.print(escape(p.text))
    for e in events:
        out.print(f"  {e.at:%Y-%m-%d %H:%M:%S} {e.from_state or '-':>9} → {e.to_state:<9} "
                  f"{escape(e.actor)}: {escape(e.reason)}")


@app.command()
def review(post: Annotated[int, typer.Argument(help="post id in review")],
           published: Annotated[str | None, typer.Option("--published", help="it did go out: its URL")] = None,
           requeue: Annotated[bool, typer.Option("--requeue", help="it did not go out: send it")] = False,
           cancel_it: Annotated[bool, typer.Option("--cancel", help="do not send it")] = False,
           by: Annotated[str, typer.Option("--by")] = "cli") -> None:
    """Resolve a post whose outcome tminus could not tell."""
    if sum([published is not None, requeue, cancel_it]) != 1:
        raise TminusError("give exactly one of --published URL, --requeue or --cancel")
    now = _now()
    engine = _engine()
    with session(engine) as s:
        p = s.get(Post, post)
        if p is None:
            raise TminusError(f"no post {post}; see `tminus list --state review`")
        if p.state != PostState.REVIEW:
            raise TminusError(f"post {post} is {p.state}, not review")
        if published is not None:
            p.remote_url, p.published_at = published, now
            transition(s, p, PostState.PUBLISHED, f"marked published by {by}: {published}", now, by)
        elif requeue:
            p.next_attempt_at = now
            transition(s, p, PostState.QUEUED, f"requeued by {by}", now, by)
        else:
            transition(s, p, PostState.CANCELED, f"canceled by {by} in review", now, by)
        state = p.state
    if requeue:
        notify(engine)
    out.print(f"post {post} is now {state}")


# -- running ---------------------------------------------------------------------------


@app.command()
def run(once: Annotated[bool, typer.Option("--once", help="send what is due now, then exit")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="send every post through the dry-run adapter")] = False) -> None:
    """The daemon: publishes approved posts at their time until stopped (SIGTERM/Ctrl-C)."""
    from scheduler.daemon import Daemon, Worker
    from scheduler.publishers import Publishers
    settings = _settings()
    _logging(settings)
    engine = _engine(settings)
    publishers = Publishers(engine, settings, dry_run=dry_run or settings.dry_run)
    worker = Worker(engine, settings, SystemClock(), publishers)
    if publishers.dry_run:
        out.print(f"dry run: posts go to {settings.dryrun_outbox}, nothing leaves this machine")
    if once:
        r = worker.drain()
        out.print(f"sent {r.sent}, expired {r.expired}, failed {r.failed}, retrying {r.retried}, "
                  f"unknown {r.unknown}")
        return
    Daemon(worker).run()


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("apscheduler", "httpx", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def rehearse(folder: Annotated[Path, typer.Argument(help="campaign folder")]) -> None:
    """Play the whole campaign on a virtual clock through the real daemon code."""
    from scheduler.rehearse import rehearse as do_rehearse
    r = do_rehearse(folder)
    tz = r.timezone
    table = Table(title=f"rehearsal of {r.slug}: deadline {r.deadline.astimezone(tz):%a %d %b %H:%M %Z}",
                  show_lines=False)
    for c in ("sent (local)", "T-minus", "late", "account", "text"):
        table.add_column(c)
    for x in r.sent:
        table.add_row(f"{x.at.astimezone(tz):%a %d %H:%M:%S}", x.t_minus, f"{x.late_seconds:.0f}s",
                      f"{x.account} ({x.platform})", escape(x.text.replace("\n", " ")))
    out.print(table)
    for due, account, reason in r.expired:
        out.print(f"[yellow]expired[/] {due.astimezone(tz):%a %d %H:%M} {account}: {escape(reason)}")
    out.print(f"{len(r.sent)} sent, {len(r.expired)} expired, {r.after_deadline} after the deadline"
              + "".join(f", {v} {k}" for k, v in r.other.items()) + f" ({r.ticks} ticks)")


@app.command()
def demo(seconds: Annotated[int, typer.Option(help="how far away the demo deadline is")] = 60,
         folder: Annotated[Path, typer.Option(help="where to write the demo campaign")] = Path("tminus-demo")) -> None:
    """Write a one-minute demo campaign, plan and approve it, and run the daemon in
    dry-run mode until its deadline: countdown posts go out as you watch."""
    import threading

    from scheduler.daemon import Daemon, Worker
    from scheduler.demo import write_demo_campaign
    from scheduler.planner import plan as do_plan
    from scheduler.publishers import Publishers
    if seconds < 20:
        raise TminusError("--seconds must be at least 20")
    settings = _settings()
    _logging(settings)
    engine = _engine(settings)
    now = _now()
    with session(engine) as s:
        old = s.exec(select(Campaign).where(Campaign.slug == "demo")).first()
        if old is not None:
            for p in s.exec(select(Post).where(Post.campaign_id == old.id,
                                               col(Post.state).in_(PostState.CANCELABLE))).all():
                transition(s, p, PostState.CANCELED, "superseded by a new demo", now, "demo")
    deadline = write_demo_campaign(folder, now, seconds)
    r = do_plan(engine, folder, now=now, actor="demo")
    approve_posts(engine, campaign="demo", post_ids=[], by="demo", now=now)
    out.print(f"demo campaign written to {folder}/ — {r.created} posts, deadline in {seconds} s "
              f"({deadline:%H:%M:%S} UTC); sending through the dry-run adapter to "
              f"{settings.dryrun_outbox}\n")
    worker = Worker(engine, settings, SystemClock(), Publishers(engine, settings, dry_run=True))
    daemon = Daemon(worker)
    stop_in = (deadline - _now()).total_seconds() + 2
    timer = threading.Timer(stop_in, lambda: daemon.stop("the demo's deadline has passed"))
    timer.daemon = True
    timer.start()
    daemon.run()
    out.print(f"\n[green]demo done[/]: {worker.sent_total} posts sent. Try `tminus list`, "
              f"`tminus log 1`, `tminus rehearse examples/potuspardon`.")


@app.command()
def count(text: Annotated[str, typer.Argument(help="the text to measure")],
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Length of TEXT on each platform, its limit, and whether it fits."""
    checks = check_all(text)
    if as_json:
        sys.stdout.write(json.dumps({k: v.as_dict() for k, v in checks.items()}) + "\n")
        return
    for name, c in checks.items():
        mark = "[green]fits[/]" if c.ok else "[red]too long[/]"
        out.print(f"{name:<9} {c.length:>4} / {c.limit:<4} {c.unit:<15} {mark}")


# -- accounts and database -------------------------------------------------------------


@accounts_app.command("check")
def accounts_check(name: Annotated[list[str] | None, typer.Argument(help="account names (default: all)")] = None) -> None:
    """Verify each account's credentials with its platform; print who it posts as."""
    from jobs.errors import PublishError
    from scheduler.publishers import Publishers
    settings = _settings()
    engine = _engine(settings)
    publishers = Publishers(engine, settings, dry_run=False)
    with session(engine) as s:
        accounts = list(s.exec(select(Account).order_by(col(Account.name))).all())
    if name:
        unknown = sorted(set(name) - {a.name for a in accounts})
        if unknown:
            raise TminusError(f"unknown account {', '.join(unknown)}; known: "
                              f"{', '.join(a.name for a in accounts) or 'none (plan a campaign first)'}")
        accounts = [a for a in accounts if a.name in name]
    if not accounts:
        raise TminusError("no accounts yet; plan a campaign first (`tminus plan DIR`)")
    failed = 0
    for acc in accounts:
        try:
            pub = publishers.for_account(acc)
            who = pub.check()
            max_chars = pub.max_characters()
        except (TminusError, PublishError) as e:
            failed += 1
            reason = e.message if isinstance(e, PublishError) else str(e)
            err.print(f"[red]✗ {acc.name}[/] ({acc.platform}): {escape(reason)}")
            continue
        with session(engine) as s:
            row = s.get(Account, acc.id)
            if row is not None:
                row.handle = who.handle
                if isinstance(max_chars, int):
                    row.max_characters = max_chars
                s.add(row)
        extra = f", {max_chars} characters per post" if isinstance(max_chars, int) else ""
        out.print(f"[green]✓ {acc.name}[/] ({acc.platform}) posts as {escape(who.handle)}"
                  + (f" — {escape(who.display_name)}" if who.display_name else "") + extra)
    if failed:
        raise TminusError(f"{failed} of {len(accounts)} account(s) could not be verified")


@accounts_app.command("resume")
def accounts_resume(name: Annotated[str, typer.Argument(help="account name")]) -> None:
    """Lift a pause (after fixing credentials) and any rate-limit wait."""
    engine = _engine()
    with session(engine) as s:
        acc = s.exec(select(Account).where(Account.name == name)).first()
        if acc is None:
            raise TminusError(f"no account {name!r}")
        acc.paused_reason = acc.paused_at = acc.resume_at = None
        s.add(acc)
    notify(engine)
    out.print(f"account {name} resumed")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version."""
    engine = make_engine(_settings().database_url)
    before, after = upgrade(engine)
    out.print(f"database at {after}" + (f" (was {before or 'empty'})" if before != after else " (already)"))


@db_app.command("current")
def db_current() -> None:
    """Print the schema version of the database and the newest one."""
    engine = make_engine(_settings().database_url)
    out.print(f"database {current_revision(engine) or 'empty'}, newest {head_revision()}")


def main() -> None:
    load_dotenv(Path.cwd() / ".env")
    try:
        # standalone: typer reports usage mistakes itself (one message, exit 2)
        app()
    except TminusError as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        sys.exit(2)


if __name__ == "__main__":
    main()
