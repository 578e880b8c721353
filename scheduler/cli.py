"""The `tminus` command line: parse the arguments, call one service function, print.

It holds no queries and no state changes: every use case is in `scheduler.service`,
which the web dashboard calls too. A `TminusError` (any user mistake) becomes one red
line and exit code 2; no traceback. `.env` is read here, at the edge, and nowhere else.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import gc
import json
import shlex
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from content.countdown import about, duration, t_minus
from content.errors import CampaignErrors, FieldError, TminusError, Unconfirmed
from content.paths import is_folder
from scheduler import cliargs, defaults, logs, service
from scheduler.clock import SystemClock
from scheduler.entry import start_process
from scheduler.localtime import local
from scheduler.states import PostState

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from scheduler.service.zones import Zones
    from scheduler.settings import Settings

# `tminus --help` and every command start by importing this module: what only some
# commands need (the tables, the length rules, the SDKs, the web stack) is imported
# where it is used, or when `service` is first asked for it (tests/test_startup.py).


def _plain_help() -> None:
    """Help a person reads: typer ≥ 0.20 prints a type tag beside every parameter
    (`<bool>`, `<str>`, `<list[int]>`, `[1<=x<=9223372036854775807]`); here an option
    shows its value's name (POST, SLUG, or its metavar), a flag nothing, an argument its
    name in capitals, and each help text names the valid values. Older typers print no
    tags and have none of these methods: then nothing changes."""
    from typer.core import TyperArgument, TyperOption

    names = {"by": "NAME", "account": "NAME", "post": "ID", "at": "WHEN", "as_of": "WHEN",
             "campaign": "SLUG", "expires": "DURATION", "output": "FILE", "host": "ADDRESS"}

    def option_type(self: Any, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return str(self.metavar or names.get(self.name or "") or (self.name or "value").upper())

    def argument_name(self: Any) -> str:
        return str(self.metavar or (self.name or "value").upper())

    def argument_usage(self: Any) -> str:
        name = argument_name(self) + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def no_range(self: Any) -> None:
        return None

    for cls, attr, fn in [(TyperOption, "display_type_rich", option_type),
                          (TyperOption, "_get_number_range_help_str", no_range),
                          (TyperArgument, "display_type_rich", lambda self, ctx: None),
                          (TyperArgument, "_get_number_range_help_str", no_range),
                          (TyperArgument, "display_name_raw", property(argument_name)),
                          (TyperArgument, "_usage_display_name", argument_usage),
                          # errors keep naming it as before: "Invalid value for 'post'"
                          (TyperArgument, "get_error_hint", lambda self, *a: f"'{self.name}'")]:
        if hasattr(cls, attr):
            setattr(cls, attr, fn)


_plain_help()


def _coercion_without_pydantic() -> None:
    """Typer ≥ 0.29 coerces every parameter's value through a pydantic TypeAdapter,
    made when the parameter is first given a value — even `--help`'s, when it is None.
    Where the adapter does nothing but typer's own work that is done here: None (a
    parameter not given) stays None, and a path is typer's `coerce_cli_path` (its
    checks, its errors) given the `Path` pydantic would have made. Any other value gets
    typer's own coercion, built then. So a command whose parameters are paths — a
    rehearsal — never imports pydantic and the `importlib.metadata` it brings, a sixth
    of its start (tests/test_startup.py). These are typer's private internals, so only
    the minor version they were checked against (0.29; tests/test_startup.py compares
    every parameter's coercion with typer's own) is changed; any other typer: no change."""
    if not typer.__version__.startswith("0.29."):
        return
    try:
        from typer._coercion import build_runtime_param
        from typer._param_types import coerce_cli_path
        from typer.core import _TyperParameter
    except ImportError:
        return

    class Coercion:
        def __init__(self, param: Any) -> None:
            self.descriptor = param.type_descriptor
            annotation, info = self.descriptor.annotation, self.descriptor.parameter_info
            self.path: type[Path] | None = (
                annotation if isinstance(annotation, type) and issubclass(annotation, Path)
                and info.path_type in (None, annotation) and info.parser is None
                and self.descriptor.file_annotation is None else None)
            self.single = param.nargs == 1 and not param.multiple
            self.typers: Any = None

        def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
            if value is None and self.single:
                return None
            if self.path is not None and self.single and isinstance(value, str):
                return coerce_cli_path(self.path(value), self.descriptor.parameter_info,
                                       path_type=self.path, param=param, ctx=ctx)
            if self.typers is None:
                self.typers = build_runtime_param(self.descriptor)
            return self.typers.coerce(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            self._runtime_param = Coercion(self)
        return self._runtime_param

    setattr(_TyperParameter, "get_runtime_param", get_runtime_param)  # noqa: B010


_coercion_without_pydantic()

app = typer.Typer(help="tminus: plan, preview, approve and publish countdown campaigns.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
queue_app = typer.Typer(help="One-off posts.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="The accounts tminus posts as.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")

out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)
# Post ids are 64-bit signed integers in both databases; a larger one is a typo.
MAX_ID = 2**63 - 1
# Usage mistakes are click's exceptions; typer ≥ 0.20 carries its own copy of click, so
# they are taken from wherever typer's BadParameter lives.
_usage = sys.modules[typer.BadParameter.__module__]


def _post_id(value: str) -> int:
    """A post id as typed: typer's own check would say "Input should be a valid integer,
    unable to parse string as an integer"; this says what a post id is."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_ID:
        raise typer.BadParameter(f"{value!r} is not a post id: give the number `tminus list` "
                                 "shows, e.g. 12")
    return number


def _settings() -> Settings:
    from scheduler.settings import Settings
    return Settings.from_env()


def _engine(settings: Settings | None = None) -> Engine:
    """The database, created at the newest schema if there is none: for commands that
    write (plan, queue, run, pause, …)."""
    return service.open_database(settings or _settings())


def _existing(settings: Settings | None = None) -> Engine:
    """The database, for commands that read or change what is in it (status, list, log,
    approve, …): none yet is an error saying to plan first, and no file is created."""
    return service.open_database(settings or _settings(), create=False)


def _now() -> datetime:
    return SystemClock().now()


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError("as-of", f"{value!r} is not an ISO date-time like "
                         "2017-01-16T09:00:00-05:00") from None
    if parsed.tzinfo is None:
        raise FieldError("as-of", "needs a UTC offset, e.g. 2017-01-16T09:00:00-05:00")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:   # year 1 at +14:00 is before any date Python can hold
        raise FieldError("as-of", f"{value!r} is out of range; write an instant like "
                         "2017-01-16T09:00:00-05:00") from None


def _one_line(text: str) -> str:
    return escape(text.replace("\n", " "))


# Every time a person reads is in the campaign's own timezone, with its abbreviation
# ("Tue 17 Jan 09:00 EST"); `--utc` shows UTC instead, for comparing with logs. A time
# of no campaign (a person added, a pause of everything) is in this machine's local
# timezone (`TZ`): `tz=None` (see `scheduler.service.zones`).
UTC_HELP = "show times in UTC instead of each campaign's own timezone"
JSON_HELP = "print JSON (times in ISO 8601 UTC) for scripts, instead of the text"


_UTC = ZoneInfo("UTC")


def _at(at: datetime, tz: str | ZoneInfo | None, utc: bool = False, *, year: bool = False,
        seconds: bool = False) -> str:
    """A time as the terminal shows it ("Tue 09 Mar 12:00 EST"): `local()`'s format, with
    the year or the seconds where a command needs them, in UTC with `--utc`."""
    fmt = ("%a %d %b %Y" if year else "%a %d %b") + (" %H:%M:%S" if seconds else " %H:%M")
    return local(at, _UTC if utc else tz, fmt)


def _zones(engine: Engine) -> Zones:
    """Each campaign's and account's timezone, for times that are not a post's."""
    from scheduler.service.zones import zones
    return zones(engine)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, ZoneInfo):
        return value.key
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _print_json(value: Any) -> None:
    data = dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(
        value, type) else [dataclasses.asdict(v) for v in value]
    sys.stdout.write(json.dumps(data, default=_jsonable, ensure_ascii=False) + "\n")


def _print_diff(diff: str) -> None:
    """A unified diff of two texts, indented, what was in red and what is now in green."""
    for line in diff.splitlines():
        style = "red" if line.startswith("-") else "green" if line.startswith("+") else ""
        out.print(f"  [{style}]{escape(line)}[/]" if style else f"  {escape(line)}")


def _fit(text: str, width: int) -> str:
    """A text cut to `width` terminal cells at a word, never inside a number or link."""
    from content.entities import shorten
    return shorten(text, max(1, width), cell_len)


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]], width: int, *,
             least: int = 12) -> list[str]:
    """Rows as lines of at most `width` cells: every column as wide as its widest cell,
    the last one (a post's text) gets what is left (`least` at the narrowest) and is cut
    by `_fit`. Plain text: the caller escapes."""
    fixed = [max(cell_len(c) for c in [h, *(r[i] for r in rows)])
             for i, h in enumerate(header[:-1])]
    room = max(least, width - sum(fixed) - 2 * len(fixed))

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - cell_len(c)) for c, w in zip(cells[:-1], fixed, strict=True)]
        return "  ".join([*padded, _fit(cells[-1], room)]).rstrip()
    return [line(header), *(line(r) for r in rows)]


# A terminal shows the first problems of a long list (a 2,000-row file past its deadline
# is not 2,000 lines to scroll back through); where the errors go to a file or a pipe,
# every one is written: that is how to see them all.
PROBLEMS_SHOWN = 20


def _on_terminal(stream: Console | None = None) -> bool:
    return (stream or err).is_terminal


@contextlib.contextmanager
def _every_problem() -> Iterator[None]:
    """A campaign's problems, one per line (not only the first): every one, or on a
    terminal the first PROBLEMS_SHOWN and how to see the rest; then exit 2."""
    try:
        yield
    except CampaignErrors as e:
        cap = len(e.errors) if not _on_terminal() else PROBLEMS_SHOWN
        # "… and 1 more" would take the line the one problem needs
        shown = e.errors if len(e.errors) <= cap + 1 else e.errors[:cap]
        for problem in shown:
            err.print(f"[red]error:[/] {escape(str(problem))}")
        if hidden := len(e.errors) - len(shown):
            again = " ".join(shlex.quote(a) for a in ["tminus", *sys.argv[1:]])
            err.print(f"[red]… and {hidden:,} more problem(s)[/]; to see every one, write "
                      f"them to a file: `{escape(again)} 2> problems.txt`", soft_wrap=True)
        err.print(f"[red]{len(e.errors):,} problem(s); nothing was written.[/]")
        raise typer.Exit(2) from None


# -- campaigns -------------------------------------------------------------------------


def _warning_room(total: int) -> int:
    """How many of `total` warnings to print: on a terminal the first PROBLEMS_SHOWN, as
    for errors; every one where the output goes to a file or a pipe."""
    # "… and 1 more" would take the line the one warning needs
    return total if not _on_terminal(out) or total <= PROBLEMS_SHOWN + 1 else PROBLEMS_SHOWN


def _campaign_warnings(warnings: Sequence[str], folder: Path) -> None:
    """A campaign's warnings, capped on a terminal, and how to see every one."""
    room = _warn(warnings, _warning_room(len(warnings)))
    if room < 0:
        again = f"tminus validate {shlex.quote(str(folder))}"
        out.print(f"[yellow]… and {-room:,} more warning(s)[/]: `{escape(again)} --json` lists "
                  f"every one (so does `{escape(again)} > warnings.txt`)", soft_wrap=True)


@app.command()
def validate(folder: Annotated[Path, typer.Argument(help="campaign folder")],
             as_of: Annotated[str | None, typer.Option(help="check as if it were this instant")] = None,
             utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False,
             as_json: Annotated[bool, typer.Option(
                 "--json", help=JSON_HELP + " (every warning, never capped)")] = False) -> None:
    """Check a campaign folder as `plan` would and print every problem (exit 2 if any)."""
    engine = service.existing_database(_settings())
    with _every_problem():
        v = service.validate(folder, now=_as_of(as_of) or _now(), engine=engine)
    if as_json:
        _print_json(v)
        return
    _campaign_warnings(v.warnings, folder)
    against = ("checked against the database's accounts" if v.with_database else
               "no database yet: accounts of other campaigns not checked")
    out.print(f"[green]ok[/] {v.slug}: {v.posts} posts on {v.accounts} accounts before "
              f"{_at(v.deadline, v.timezone, utc, year=True)} ({against})")


def _confirm(e: Unconfirmed, yes: bool) -> bool:
    """Ask a person at a terminal; elsewhere the error says to add --yes."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise e
    try:
        if typer.confirm(e.question, default=False):
            return True
    except typer.Abort as stop:
        err.print()             # the answer's line ends: what follows is a line of its own
        if isinstance(stop.__context__, KeyboardInterrupt):
            raise               # Ctrl-C: `main` says it, exit 130
        # Ctrl-D, no answer: the default, no
    out.print("nothing was written")
    raise typer.Exit(1)


YES_HELP = "do it without asking (needed where nobody can answer, e.g. in a script)"


@app.command()
def plan(folder: Annotated[Path, typer.Argument(help="campaign folder")],
         replace: Annotated[bool, typer.Option(
             "--replace", help="the campaign moved: plan its slug from this folder, though "
             "another folder planned it")] = False,
         yes: Annotated[bool, typer.Option(
             "--yes", "-y", help="cancel approved posts the file no longer has, without asking; "
             + YES_HELP)] = False) -> None:
    """Expand a campaign into posts (drafts). Safe to run again after editing."""
    engine = _engine()
    try:
        r = service.plan(engine, folder, now=_now(), replace=replace, cancel_ok=yes)
    except Unconfirmed as e:
        _confirm(e, yes)
        r = service.plan(engine, folder, now=_now(), replace=replace, cancel_ok=True)
    _campaign_warnings(r.warnings, folder)
    for post_id, diff in r.returned_to_draft:
        out.print(f"[yellow]post {post_id} changed after approval; back to draft:[/]")
        _print_diff(diff)
    for post_id, what in r.changed_drafts:
        out.print(f"[yellow]draft {post_id} changed (see `tminus log {post_id}`):[/]")
        _print_diff(what)
    for post_id, diff in r.conflicts:
        out.print(f"[yellow]post {post_id} was edited by a person and the campaign file changed it "
                  f"too; the edit is kept[/] — settle it with `tminus edit {post_id} --keep` "
                  f"or `--use-file`:")
        _print_diff(diff)
    # each post counted once: an approved post the file changed is "back to draft", not
    # also "updated"; what did not happen is not said
    back = len(r.returned_to_draft)
    out.print(f"planned {r.campaign}: {r.created} new, {r.updated_drafts} updated, "
              f"{r.unchanged} unchanged"
              + (f", {back} approved post(s) changed and back to draft" if back else "")
              + (f", {r.canceled} removed" if r.canceled else "")
              + (f", {r.kept_sent} already sent (kept)" if r.kept_sent else ""))
    if r.created or r.returned_to_draft:
        out.print(f"next: [bold]tminus preview {r.campaign}[/], then "
                  f"[bold]tminus approve {r.campaign} --by YOUR-NAME[/]")


@app.command()
def preview(campaign: Annotated[str | None, typer.Argument(
                help="campaign slug, or a campaign folder (not yet planned)")] = None,
            format: Annotated[str, typer.Option("--format", "-f", help="table, json or html")] = "table",
            output: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file")] = None,
            as_of: Annotated[str | None, typer.Option(
                help="for a folder: preview as if it were this instant")] = None) -> None:
    """Show every post exactly as it will go out: time, T-minus, account, length, text."""
    from scheduler import preview as pv
    if format not in ("table", "json", "html"):
        raise FieldError("format", f"{format!r}: choose table, json or html")
    if format == "table" and output:
        raise FieldError("output", "works with --format json or html")
    folder = campaign is not None and is_folder(campaign)
    # a folder is previewed without a database, but is said to be planned where it is
    engine = service.existing_database(_settings()) if folder else _existing()
    timelines = service.preview(engine, campaign, as_of=_as_of(as_of))
    if format == "table":
        pv.render_table(timelines, out)
        return
    text = pv.render_json(timelines) if format == "json" else pv.render_html(timelines, _now())
    if output:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as e:
            raise FieldError("output", f"{str(output)!r}: {e.strerror or type(e).__name__}; give "
                             "a file in an existing folder, e.g. -o preview.html") from None
        out.print(f"wrote {escape(str(output))}")
    else:
        sys.stdout.write(text + "\n")


@app.command()
def approve(campaign: Annotated[str, typer.Argument(help="campaign slug")],
            by: Annotated[str, typer.Option("--by", help="who approves (recorded)")],
            post: Annotated[list[int] | None, typer.Option(
                "--post", help="approve only these post ids", parser=_post_id)] = None,
            expect: Annotated[str | None, typer.Option(
                "--expect", help="the digest `tminus preview` printed: approve only if "
                "nothing changed since")] = None
            ) -> None:
    """Approve drafts: they are queued to go out at their time."""
    settings = _settings()
    engine = _existing(settings)
    r = service.approve(engine, campaign=campaign, post_ids=post or [], by=by, now=_now(),
                        expect=expect)
    out.print(f"approved {len(r.approved)} post(s) by {escape(r.by)}"
              + (f"; {len(r.expired)} draft(s) were past their time and expired" if r.expired else ""))
    _credential_warnings(service.not_ready(engine, settings.env, verified=False))


def _credential_warnings(accounts: Sequence[service.Readiness]) -> None:
    """Accounts that cannot post for lack of credentials (`tminus run` says it too, or a
    note in a dry run: scheduler/entry.py)."""
    for a in accounts:
        if not a.missing:
            continue
        out.print(f"[yellow]warning:[/] account {escape(a.name)} ({a.platform}) has no credentials: "
                  f"{', '.join(a.missing)} not set in the environment or .env; its posts will "
                  "not go out (the account is paused when the first falls due)")


@app.command()
def cancel(campaign: Annotated[str | None, typer.Argument(
               help="campaign slug (cancels all its pending posts)")] = None,
           post: Annotated[list[int] | None, typer.Option(
               "--post", help="cancel only these post ids", parser=_post_id)] = None,
           by: Annotated[str, typer.Option("--by", help="who cancels (recorded)")] = "cli",
           yes: Annotated[bool, typer.Option(
               "--yes", "-y", help="cancel a whole campaign without asking; " + YES_HELP)] = False
           ) -> None:
    """Cancel pending posts (draft, queued or review)."""
    engine, ids = _existing(), post or []
    try:
        r = service.cancel(engine, campaign=campaign, post_ids=ids, by=by, now=_now(),
                           confirmed=yes)
    except Unconfirmed as e:
        _confirm(e, yes)
        r = service.cancel(engine, campaign=campaign, post_ids=ids, by=by, now=_now(),
                           confirmed=True)
    out.print(f"canceled {len(r.canceled)} post(s)")


# -- one-off posts ---------------------------------------------------------------------


@queue_app.command("add")
def queue_add(text: Annotated[str, typer.Argument(help="the post's text, exactly as it goes out")],
              account: Annotated[str, typer.Option("--account", help="account name from a campaign file")],
              at: Annotated[str, typer.Option(
                  "--at", help="T-3h (before the deadline), +10m (from now), now, or an ISO date-time")],
              campaign: Annotated[str | None, typer.Option(
                  help="campaign slug (needed if the account is in several)")] = None,
              expires: Annotated[str | None, typer.Option(
                  help="latest lateness, e.g. 30m (default 2h)")] = None,
              by: Annotated[str | None, typer.Option(
                  "--by", help="approve it at once, as this person")] = None
              ) -> None:
    """Queue a one-off post, checked like campaign posts."""
    q = service.queue_post(_engine(), service.OneOff(account=account, at=at, text=text,
                                                     campaign=campaign, expires=expires, by=by),
                           now=_now())
    out.print(f"post {q.post_id} ({q.state}) on {q.account} at {_at(q.due_at, q.timezone, year=True)}, "
              f"{q.length}/{q.limit}"
              + ("" if q.state != "draft" else f"; approve with "
                 f"`tminus approve {q.campaign} --post {q.post_id} --by NAME`"))
    for w in q.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")


IMPORT_SHOWN = 20


@queue_app.command("import")
def queue_import(file: Annotated[Path, typer.Argument(
                     help="a CSV file with the columns account, at, text (and optionally "
                          "media, alt, expires, language, campaign)")],
                 by: Annotated[str | None, typer.Option(
                     "--by", help="approve the new posts at once, as this person (else: drafts; "
                     "an edited post is always a draft again)")] = None
                 ) -> None:
    """Queue many one-off posts from a CSV file: all or nothing. A row is known by its
    account and time: imported again, an unchanged row adds nothing and a changed text
    edits its post (back to draft)."""
    with _every_problem():
        r = service.import_csv(_engine(), file, by=by, author=_me(), now=_now())
    # a line per new post, up to IMPORT_SHOWN (a 2,000-row file is not 2,000 lines);
    # a post with a warning is shown with it, up to PROBLEMS_SHOWN warnings on a
    # terminal as for errors (every one where the output goes to a file or a pipe)
    room = _warning_room(sum(len(q.warnings) for q in r.added)
                         + sum(len(e.warnings) for _, e in r.edited))
    hidden = 0
    for n, q in enumerate(r.added):
        if n >= IMPORT_SHOWN and not (q.warnings and room > 0):
            hidden += 1
            room = _warn(q.warnings, room)      # no room left: counted, not printed
            continue
        out.print(f"post {q.post_id} ({q.state}) on {q.account} at "
                  f"{_at(q.due_at, q.timezone, year=True)}, {q.length}/{q.limit}")
        room = _warn(q.warnings, room)
    if hidden:
        out.print(f"… and {hidden:,} more new post(s): `tminus list` shows them all")
    for line, e in r.edited:
        was = " (it was queued: back to draft)" if e.was == "queued" else ""
        what = " and ".join(e.changed)
        out.print(f"[yellow]post {e.post_id} (line {line}) has a new {what}; it is a "
                  f"draft{was}:[/]")
        _print_diff(e.diff)
        room = _warn(e.warnings, room)
    if room < 0:
        slugs = sorted({q.campaign for q in r.added if q.warnings}
                       | {e.campaign for _, e in r.edited if e.warnings})
        out.print(f"[yellow]… and {-room:,} more warning(s)[/]: "
                  + ", ".join(f"`tminus preview {slug}`" for slug in slugs)
                  + " shows every post with its warnings", soft_wrap=True)
    again = f"; {r.already} already imported before (left as they are)" if r.already else ""
    changed = f"; {len(r.edited)} changed (back to draft)" if r.edited else ""
    out.print(f"imported {len(r.added)} post(s) from {escape(r.file)}{changed}{again}")
    drafts = sorted({q.campaign for q in r.added if q.state == "draft"}
                    | {e.campaign for _, e in r.edited})
    for slug in drafts:
        out.print(f"next: [bold]tminus preview {slug}[/], then "
                  f"[bold]tminus approve {slug} --by YOUR-NAME[/]")


def _warn(warnings: Sequence[str], room: int) -> int:
    """Print the warnings there is room for; the room left (below 0: that many unsaid)."""
    for w in warnings:
        if room > 0:
            out.print(f"[yellow]warning:[/] {escape(w)}")
        room -= 1
    return room


# -- looking at the queue --------------------------------------------------------------


STATES = ", ".join(st.value for st in PostState)


@app.command("list")
def list_posts(state: Annotated[list[str] | None, typer.Option(
                   "--state", metavar="STATE",
                   help=f"only posts in this state (repeat for several): {STATES}")] = None,
               campaign: Annotated[str | None, typer.Option(
                   metavar="SLUG", help="only this campaign's posts")] = None,
               verbose: Annotated[bool, typer.Option(
                   "--verbose", "-v", help="the full text of each post, under its line")] = False,
               utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False,
               as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List posts in due order, one line each, fitted to the terminal."""
    posts = service.list_posts(_existing(), states=state or [], campaign=campaign)
    if as_json:
        _print_json(posts)
        return
    rows = [[str(p.id), p.campaign, _at(p.due_at, p.timezone, utc),
             t_minus(p.deadline - p.due_at), p.account, p.state, p.text] for p in posts]
    lines = _columns(["id", "campaign", "due (UTC)" if utc else "due (local)", "T-minus",
                      "account", "state", "text"], rows, out.width)
    out.print(f"[bold]{escape(lines[0])}[/]", soft_wrap=True)
    for line, p in zip(lines[1:], posts, strict=True):
        out.print(escape(line), soft_wrap=True)
        if verbose:
            for text_line in p.text.splitlines() or [""]:
                out.print(f"    {escape(text_line)}")
    out.print(f"{len(posts)} post(s)")


def _counts(counts: dict[PostState, int]) -> str:
    return " · ".join(f"{n} {st}" for st, n in counts.items() if n) or "no posts"


@app.command()
def status(utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False,
           as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """One line per active campaign and what needs a person, then the details."""
    settings = _settings()
    engine = _existing(settings)
    g = service.glance(engine, settings.env)
    if as_json:
        _print_json(g)
        return
    z = _zones(engine)
    st, now, width = g.details, g.details.now, out.width
    for c in g.campaigns:
        needs = f"[red]{c.needs} need(s) you[/]" if c.needs else "nothing needs you"
        nxt = f" · next {_at(c.next_at, c.head.timezone, utc)}" if c.next_at else ""
        paused = " · [bold red]PAUSED[/]" if c.paused else ""
        out.print(f"[bold]{escape(c.head.title)}[/] ({escape(c.head.slug)}) — "
                  f"{c.head.time_left} left · {_counts(c.counts)} · {needs}{nxt}{paused}",
                  soft_wrap=True)
    if not g.campaigns:
        out.print("no active campaign — plan one with `tminus plan FOLDER`")
    for soon in g.due_soon:
        n = soon.need
        out.print(f"[yellow]draft #{n.post_id} on {escape(n.account)} is {escape(n.detail)}[/] "
                  f"({n.at_local}) — `tminus approve {soon.campaign} --post {n.post_id} --by NAME`",
                  soft_wrap=True)
    for acc in g.not_ready:
        waiting = f"; {acc.pending} post(s) wait for it" if acc.pending else ""
        if acc.missing:
            out.print(f"[red]account {escape(acc.name)} ({acc.platform}) has no credentials[/]: "
                      f"{', '.join(acc.missing)} not set — add them to .env{waiting}",
                      soft_wrap=True)
        else:
            out.print(f"[yellow]account {escape(acc.name)} ({acc.platform}) was never "
                      f"verified[/] — `tminus accounts check {escape(acc.name)}`{waiting}",
                      soft_wrap=True)
    for d in st.daemons:
        mode = " (dry run)" if d.dry_run else ""
        ago = int((now - d.beat_at).total_seconds())
        if d.alive:
            out.print(f"[green]daemon {d.id} alive{mode}[/], last beat {ago} s ago, {d.sent} sent")
        else:
            out.print(f"[red]daemon {d.id} dead[/]: no heartbeat for {ago} s (alive means a beat "
                      f"within {int(service.DEAD_AFTER.total_seconds())} s)")
        if d.skew_seconds is not None and abs(d.skew_seconds) > defaults.CLOCK_SKEW_WARN_SECONDS:
            out.print(f"  [yellow]its host's clock is {abs(d.skew_seconds):.1f} s "
                      f"{'ahead of' if d.skew_seconds > 0 else 'behind'} the database's[/]; it keeps "
                      "the database's time")
    if not g.daemon_alive:
        due = (f" and {g.unattended} post(s) fall due within "
               f"{duration(service.DUE_SOON)}" if g.unattended else "")
        out.print(f"[red]no daemon running{due}[/] — start one with `tminus run`")
    out.print("posts: " + (", ".join(f"{k} {v}" for k, v in st.counts.items()) or "none"))
    if st.next:
        out.print("next:")
        rows = [[f"#{p.id}", _at(p.at, p.timezone, utc),
                 "now" if p.at <= now else f"in {about(p.at - now)}", p.account,
                 t_minus(p.deadline - p.at), p.text] for p in st.next]
        for line in _columns(["", "", "", "", "", ""], rows, width - 2)[1:]:
            out.print("  " + escape(line))
    for h in st.holds:
        if h.paused_reason:
            out.print(f"[red]account {h.name} paused[/]: {escape(h.paused_reason)} — "
                      f"`tminus accounts resume {h.name}` once fixed", soft_wrap=True)
        elif h.resume_at:
            out.print(f"[yellow]account {h.name} rate limited[/] until "
                      f"{_at(h.resume_at, z.of(account=h.name), utc, seconds=True)}")
    for a in st.attention:
        out.print(f"[red]#{a.id} {a.state}[/]: {escape(a.reason)}"
                  + (" — `tminus review` it" if a.state == "review" else ""), soft_wrap=True)
    for pz in st.pauses:
        # a pause of an account or of everything is no one campaign's: as the activity
        # log below says it, in this machine's timezone
        since = _at(pz.at, z.of(campaign=pz.campaign), utc)
        out.print(f"[bold red]{pz.what} paused[/] since {since} by "
                  f"{escape(pz.by)}: {escape(pz.reason)} — `tminus resume "
                  f"{_pause_args(pz.campaign, pz.account)}` to go on", soft_wrap=True)
    _print_alerts(st.alerts, bool(settings.notify_urls), z, utc)
    if st.activity:
        out.print("latest:")
    for entry in st.activity:
        head = f"  {_at(entry.at, z.of(campaign=entry.campaign), utc)} {entry.actor}: "
        out.print(escape(head + _fit(entry.message, width - cell_len(head))), soft_wrap=True)


def _print_alerts(a: service.AlertDeliveries, on: bool, z: Zones, utc: bool) -> None:
    """The alerts' last delivery and what fails to go out since (issue 16): a person
    trusting alerts learns here that they stopped arriving."""
    if a.last_sent is not None:
        last = a.last_sent
        out.print(f"alerts: last delivered {_at(last.at, z.of(campaign=last.campaign), utc)} "
                  f"({escape(last.title)})", soft_wrap=True)
    elif on and not a.failing:
        out.print("alerts: none delivered yet (nothing to say so far; `tminus notify test` "
                  "checks the way)", soft_wrap=True)
    for f in a.failing:
        state = "given up" if f.given_up else "still being tried"
        if not f.destinations:      # tried before per-destination records (0007)
            out.print(f"[red]alert #{f.id} not delivered[/] ({escape(f.title)}; {f.attempts} "
                      f"attempt(s), {state}): {escape(f.last_error or 'no reason given')}",
                      soft_wrap=True)
            continue
        waiting = sum(d.sent_at is None for d in f.destinations)
        out.print(f"[red]alert #{f.id} not delivered to {waiting} of {len(f.destinations)} "
                  f"destination(s)[/] ({escape(f.title)}; {f.attempts} attempt(s), {state}):",
                  soft_wrap=True)
        _print_destinations(f.destinations, z.of(campaign=f.campaign), utc)
    if a.failing_total > len(a.failing):
        out.print(f"  and {a.failing_total - len(a.failing)} more not delivered — "
                  "`tminus notify status`")
    if not on:
        out.print("alerts: off — set TMINUS_NOTIFY to be told when something needs you "
                  "(see 'Alerts' in the README)", soft_wrap=True)


def _print_destinations(where: Sequence[service.AlertDestination], tz: str | None,
                        utc: bool) -> None:
    """One line per destination of an alert: when it took it, or why it has not."""
    for d in where:
        if d.sent_at:
            said = f"[green]delivered {_at(d.sent_at, tz, utc, seconds=True)}[/]"
        else:
            said = (f"[red]not delivered[/] ({d.attempts} attempt(s)): "
                    f"{escape(d.last_error or 'not tried yet')}")
        out.print(f"    to {escape(d.destination)}: {said}", soft_wrap=True)


@app.command()
def log(post: Annotated[int, typer.Argument(help="post id", parser=_post_id)],
        utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False,
        as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Every event of one post: its audit trail."""
    r = service.post_log(_existing(), post)
    if as_json:
        _print_json(r)
        return
    p = r.post
    out.print(f"post {p.id} ({p.campaign}, {p.account}): {p.state}, due "
              f"{_at(p.due_at, p.timezone, utc, year=True, seconds=True)}, attempt {r.attempt}"
              + (f", {escape(p.remote_url)}" if p.remote_url else ""), soft_wrap=True)
    out.print(escape(p.text))
    for e in r.events:
        out.print(f"  {_at(e.at, p.timezone, utc, year=True, seconds=True)} "
                  f"{e.from_state or '-':>9} → {e.to_state:<9} {escape(_reason(e.actor, e.reason))}",
                  soft_wrap=True)


def _reason(actor: str, reason: str) -> str:
    """An event's actor and reason, the actor said once: "approved by Ana Ruiz" is
    not "Ana Ruiz: approved by Ana Ruiz"."""
    said = actor and (reason.startswith(actor) or f"by {actor}" in reason)
    return reason if said else f"{actor}: {reason}"


@app.command()
def review(post: Annotated[int, typer.Argument(help="post id in review", parser=_post_id)],
           published: Annotated[str | None, typer.Option(
               "--published", metavar="URL", help="it did go out: its URL")] = None,
           requeue: Annotated[bool, typer.Option("--requeue", help="it did not go out: send it")] = False,
           cancel_it: Annotated[bool, typer.Option("--cancel", help="do not send it")] = False,
           by: Annotated[str, typer.Option("--by", metavar="NAME",
                                           help="who resolves it (recorded)")] = "cli") -> None:
    """Resolve a post whose outcome tminus could not tell."""
    if sum([published is not None, requeue, cancel_it]) != 1:
        raise TminusError("give exactly one of --published URL, --requeue or --cancel")
    how = (service.Resolution.PUBLISHED if published is not None
           else service.Resolution.REQUEUE if requeue else service.Resolution.CANCEL)
    r = service.review(_existing(), post, how, by=by, now=_now(), url=published)
    out.print(f"post {r.post_id} is now {r.state}")


# -- running ---------------------------------------------------------------------------


@app.command()
def run(once: Annotated[bool, typer.Option("--once", help="send what is due now, then exit")] = False,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="send every post through the dry-run adapter")] = False) -> None:
    """The daemon: publishes approved posts at their time until stopped (SIGTERM/Ctrl-C)."""
    # The same as the console script's own `tminus run`, which skips typer (scheduler/entry.py).
    from scheduler.entry import rich_text, run_command
    run_command(once=once, dry_run=dry_run, say=lambda line: out.print(rich_text(line)))


@app.command()
def rehearse(folder: Annotated[Path, typer.Argument(help="campaign folder")]) -> None:
    """Play the whole campaign on a virtual clock through the real daemon code."""
    # A rehearsal is short and its garbage is bounded: with the collector on, it walked
    # every object of the libraries the rehearsal imports some 260 times (a tenth of the
    # command's CPU). It is on again afterwards, as it was, with what was made meanwhile
    # moved to the oldest generation first (frozen and thawed): its first collection
    # would otherwise walk every object made while it was off (the tables, SQLAlchemy:
    # most of them live as long as the process), some 60 ms. They are looked at again
    # with the next full collection, as anything long-lived is (none, in `tminus`).
    collecting = gc.isenabled()
    gc.disable()
    try:
        r = service.rehearse(folder, env=_settings().env)
    finally:
        if collecting:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
    tz = r.timezone
    out.print(f"[bold]rehearsal of {r.slug}[/]: deadline {_at(r.deadline, tz, year=True)}")
    rows = [[_at(x.at, tz, seconds=True), x.t_minus, f"{x.late_seconds:.0f}s",
             f"{x.account} ({x.platform})", x.text] for x in r.sent]
    lines = _columns(["sent (local)", "T-minus", "late", "account", "text"], rows, out.width)
    out.print(f"[bold]{escape(lines[0])}[/]")
    for line in lines[1:]:
        out.print(escape(line))
    for due, account, reason in r.expired:
        out.print(f"[yellow]expired[/] {_at(due, tz)} {account}: {escape(reason)}")
    out.print(f"{len(r.sent)} sent, {len(r.expired)} expired, {r.after_deadline} after the deadline"
              + "".join(f", {v} {k}" for k, v in r.other.items()) + f" ({r.ticks} ticks)")
    for name, missing in r.missing_credentials.items():
        out.print(f"note: account {escape(name)} has no credentials ({', '.join(missing)} not set); "
                  "the rehearsal sent nothing real, a real run would need them")


@app.command()
def demo(seconds: Annotated[int, typer.Option(help="how far away the demo deadline is")] = 60,
         folder: Annotated[Path, typer.Option(help="where to write the demo campaign")] = Path("tminus-demo")
         ) -> None:
    """Write a one-minute demo campaign, plan and approve it, and run the daemon in
    dry-run mode until its deadline: countdown posts go out as you watch."""
    settings = _settings()
    logs.configure(settings)

    def ready(d: service.DemoReady) -> None:
        out.print(f"demo campaign written to {escape(str(d.folder))}/ — {d.posts} posts, deadline "
                  f"in {seconds} s ({d.deadline:%H:%M:%S} UTC); sending through the dry-run adapter to "
                  f"{escape(str(d.outbox))}\n")

    sent = service.demo(settings, folder=folder, seconds=seconds, now=_now(), on_ready=ready)
    db = f"TMINUS_DATABASE_URL={service.demo_database(folder)}"
    out.print(f"\n[green]demo done[/]: {sent} posts sent. The demo has its own database; look "
              f"at it with `{db} tminus list` or `{db} tminus log 1`. Then try "
              "`tminus rehearse examples/potuspardon`.")


# ignore_unknown_options: a text may start with "-" ("-5 days left"): it is the text,
# not an option.  `tminus count -- TEXT` works too, also for a text like "--json".
@app.command(context_settings={"ignore_unknown_options": True})
def count(text: Annotated[str, typer.Argument(help="the text to measure")],
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Length of TEXT on each platform, its limit, and whether it fits."""
    from content.platforms import check_all
    checks = check_all(text)
    if as_json:
        sys.stdout.write(json.dumps({k: v.as_dict() for k, v in checks.items()}) + "\n")
        return
    for name, c in checks.items():
        mark = "[green]fits[/]" if c.ok else "[red]too long[/]"
        out.print(f"{name:<9} {c.length:>4} / {c.limit:<4} {c.unit:<15} {mark}")


# -- accounts and database -------------------------------------------------------------


@accounts_app.command("check")
def accounts_check(name: Annotated[list[str] | None, typer.Argument(
                       help="account names (default: all)")] = None) -> None:
    """Verify each account's credentials with its platform; print who it posts as."""
    settings = _settings()
    checks = service.check_accounts(_existing(settings), settings, name or [])
    for c in checks:
        if c.error is not None:
            err.print(f"[red]✗ {c.name}[/] ({c.platform}): {escape(c.error)}")
            continue
        out.print(f"[green]✓ {c.name}[/] ({c.platform}) posts as {escape(c.handle or '?')}"
                  + (f" — {escape(c.display_name)}" if c.display_name else "")
                  + (f", {c.max_characters} characters per post" if c.max_characters else ""))
    failed = sum(1 for c in checks if c.error is not None)
    if failed:
        raise TminusError(f"{failed} of {len(checks)} account(s) could not be verified")


@accounts_app.command("resume")
def accounts_resume(name: Annotated[str, typer.Argument(help="account name")],
                    by: Annotated[str | None, typer.Option(
                        "--by", help="who resumes (default: your login name)")] = None) -> None:
    """Lift a pause (after fixing credentials) and any rate-limit wait."""
    lifted = service.resume_account(_existing(), name, by=by or _me(), now=_now())
    if lifted is None:
        out.print(f"account {escape(name)} was not paused or rate limited; nothing changed")
    else:
        out.print(f"account {escape(name)} resumed (it was {escape(lifted)}); its due posts go "
                  "out now")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version."""
    v = service.upgrade_database(_settings())
    was = f" (was {v.before or 'empty'})" if v.before != v.now else " (already)"
    out.print(f"database at {v.now}{was}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema version of the database and the newest one."""
    v = service.schema_version(_settings())
    if v.missing:
        out.print(f"no database file at {escape(v.missing)} yet (TMINUS_DATABASE_URL); newest "
                  f"{v.newest}: `tminus db upgrade` creates it, as `tminus plan DIR` does",
                  soft_wrap=True)
        return
    out.print(f"database {v.now or 'empty (no tminus tables yet)'}, newest {v.newest}")


# -- the supporters' toolkit ----------------------------------------------------------


class _ToolkitGroup(TyperGroup):
    """`tminus toolkit DIR ...` means `tminus toolkit build DIR ...`, as the README
    writes it; `tminus toolkit serve SITE` is the other command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's own click Context
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


toolkit_app = typer.Typer(cls=_ToolkitGroup, no_args_is_help=True,
                          help="The supporters' toolkit, a static site: `tminus toolkit DIR -o SITE "
                               "[--as-of WHEN]` writes it (the same as `toolkit build`), "
                               "`tminus toolkit serve SITE` previews it.")
app.add_typer(toolkit_app, name="toolkit")


@toolkit_app.command("build")
def toolkit_build(folder: Annotated[Path, typer.Argument(help="campaign folder with a [toolkit] section")],
                  output: Annotated[Path, typer.Option(
                      "--output", "-o", help="folder to write the site to")],
                  as_of: Annotated[str | None, typer.Option(
                      help="build as if it were this instant")] = None) -> None:
    """Write the supporters' toolkit site: countdown, share links, call lines, letter."""
    with _every_problem():
        r = service.build_toolkit(folder, output, as_of=_as_of(as_of) or _now())
    for w in r.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")
    what = ("closed: the pages say the campaign is over and offer no share links" if r.closed else
            f"{r.posts} suggested post(s) ({r.texts} texts over the countdown), {r.calls} call line(s)"
            + (", a fill-in letter" if r.letter else ""))
    out.print(f"[green]wrote[/] {escape(str(output))}/ for {r.slug} ({', '.join(r.languages)}): {what}")
    out.print(f"preview it: [bold]tminus toolkit serve {escape(str(output))}[/]; "
              "publish the folder on any web host")


@toolkit_app.command("serve")
def toolkit_serve(site: Annotated[Path, typer.Argument(help="a folder written by `tminus toolkit`")],
                  port: Annotated[int, typer.Option(
                      help="port on 127.0.0.1 (0: any free one)")] = 8000) -> None:
    """Preview a toolkit site at http://127.0.0.1:PORT/ until Ctrl-C."""
    server = service.toolkit_server(site, port=port)
    out.print(f"serving {escape(str(site))} at {service.toolkit_url(server)} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
# -- pause, edit, people, the web dashboard -----------------------------------------------


def _me() -> str:
    """Who runs the command, for the record when no --by is given."""
    import getpass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _target(campaign: str | None, account: str | None, everything: bool) -> service.Target:
    return service.Target(campaign=campaign, account=account, everything=everything)


def _pause_args(campaign: str | None, account: str | None) -> str:
    return campaign if campaign else f"--account {account}" if account else "--all"


@app.command()
def pause(campaign: Annotated[str | None, typer.Argument(help="campaign slug to pause")] = None,
          account: Annotated[str | None, typer.Option("--account", help="pause one account")] = None,
          everything: Annotated[bool, typer.Option(
              "--all", help="pause every post of every campaign")] = False,
          reason: Annotated[str, typer.Option("--reason", help="why (shown to everyone, recorded)")] = "",
          by: Annotated[str | None, typer.Option(
              "--by", help="who pauses (default: your login name)")] = None,
          utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False
          ) -> None:
    """Stop posts going out at once: a campaign, an account or everything, until resumed."""
    engine = _engine()
    r = service.pause(engine, _target(campaign, account, everything), reason=reason,
                      by=by or _me(), now=_now())
    p = r.pause
    if r.already:
        since = _at(p.at, _zones(engine).of(campaign=p.campaign), utc)
        out.print(f"{p.what} was already paused since {since} by "
                  f"{escape(p.by)}: {escape(p.reason)}")
    else:
        out.print(f"[bold red]paused {p.what}[/]: {r.waiting} queued post(s) wait until "
                  f"`tminus resume {_pause_args(p.campaign, p.account)}`; none is sent meanwhile")
    if r.in_flight:
        out.print(f"[yellow]{r.in_flight} post(s) were being sent at this moment and may still "
                  "go out[/]")


@app.command()
def resume(campaign: Annotated[str | None, typer.Argument(help="campaign slug to resume")] = None,
           account: Annotated[str | None, typer.Option("--account", help="resume one account")] = None,
           everything: Annotated[bool, typer.Option("--all", help="lift the pause of everything")] = False,
           by: Annotated[str | None, typer.Option(
               "--by", help="who resumes (default: your login name)")] = None,
           utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False
           ) -> None:
    """Lift a pause: say what goes out now and what expired while it held."""
    engine = _existing()
    r = service.resume(engine, _target(campaign, account, everything), by=by or _me(), now=_now())
    z = _zones(engine)
    out.print(f"[green]resumed {r.pause.what}[/] (paused {about(r.at - r.pause.at)} by "
              f"{escape(r.pause.by)}: {escape(r.pause.reason)})")
    out.print(f"going out now: {r.going_total}; later at their time: {r.later}; "
              f"expired while paused: {r.expired_total}")
    for b in r.going_now:
        out.print(f"  [green]now[/] #{b.id} {b.account} ({b.campaign}): {_one_line(_fit(b.text, 60))}")
    for b in r.expired:
        out.print(f"  [yellow]expired[/] #{b.id} {b.account} ({b.campaign}), due "
                  f"{_at(b.due_at, z.of(campaign=b.campaign), utc)}: {_one_line(_fit(b.text, 60))}")
    for p in r.still_paused:
        out.print(f"[red]still paused: {p.what}[/] ({escape(p.reason)})")


@app.command()
def edit(post: Annotated[int, typer.Argument(help="post id (draft or queued)", parser=_post_id)],
         text: Annotated[str | None, typer.Option(
             "--text", help="the new text, exactly as it goes out")] = None,
         editor: Annotated[bool, typer.Option(
             "--editor", help="edit the text in $VISUAL or $EDITOR")] = False,
         keep: Annotated[bool, typer.Option(
             "--keep", help="after a re-plan conflict: keep the edit over the file's change")] = False,
         use_file: Annotated[bool, typer.Option(
             "--use-file", help="after a re-plan conflict: take the campaign file's text")] = False,
         by: Annotated[str | None, typer.Option(
             "--by", help="who edits (default: your login name)")] = None
         ) -> None:
    """Change one draft or queued post; it is checked, back to draft, to approve again."""
    if sum([text is not None, editor, keep, use_file]) != 1:
        raise TminusError("give exactly one of --text TEXT, --editor, --keep or --use-file")
    who, now = by or _me(), _now()
    if keep or use_file:
        r = service.settle_conflict(_existing(), post, keep=keep, by=who, now=now)
    else:
        if editor:
            sheet = service.edit_sheet(_existing(), post)
            if not sheet.editable:      # before the editor opens, not after the work is done
                raise TminusError(f"post {post} is {sheet.state}; only a draft or queued post "
                                  "can be edited")
            # click (typer's own base) writes a temp file, runs $VISUAL or $EDITOR, reads it back
            import click  # only here: every other command's start-up does without it
            try:
                text = click.edit(sheet.text + "\n", extension=".txt", require_save=True)
            except click.ClickException as e:   # the editor exited with an error, or none ran
                raise TminusError(f"{e.format_message()} (set $VISUAL or $EDITOR to an editor "
                                  "that exits 0 once saved, or use --text); nothing was "
                                  "written") from None
            if text is None or text.strip() == sheet.text:
                out.print("no change (the editor closed without changing the text); "
                          "nothing was written")
                return
        assert text is not None
        r = service.edit_post(_existing(), post, text, by=who, now=now)
    _print_diff(r.diff)
    for w in r.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")
    back = " (it was queued: back to draft)" if r.was == "queued" and r.state == "draft" else ""
    out.print(f"post {r.post_id} is {r.state}{back}, {r.length}/{r.limit} {r.unit}"
              + (f"; approve it again with `tminus approve {r.campaign} --post "
                 f"{r.post_id} --by NAME`" if r.state == "draft" else ""))


users_app = typer.Typer(help="People who log in to the web dashboard.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(name: Annotated[str, typer.Argument(
                  help="the person's name, as the event log shows it")],
              role: Annotated[str, typer.Option(
                  "--role", help="viewer, editor, approver or admin")],
              by: Annotated[str | None, typer.Option(
                  "--by", help="who adds (default: your login name)")] = None
              ) -> None:
    """Add a person; the password is asked for (or read from stdin, one line)."""
    password = _password()
    with _person_errors():
        p = service.add_person(_engine(), name=name, role=role, password=password,
                               by=by or _me(), now=_now())
    out.print(f"added {escape(p.name)} as {p.role}; they log in at the web dashboard (`tminus web`)")


@users_app.command("password")
def users_password(name: Annotated[str, typer.Argument(help="the person's name")],
                   by: Annotated[str | None, typer.Option(
                       "--by", help="who sets it (default: your login name)")] = None
                   ) -> None:
    """Set a person's new password (asked for, or read from stdin); their logins end."""
    password = _password()
    with _person_errors():
        p = service.set_password(_existing(), name=name, password=password, by=by or _me(),
                                 now=_now())
    out.print(f"new password set for {escape(p.name)}; their logins have ended, they log in "
              "again with it")


@users_app.command("role")
def users_role(name: Annotated[str, typer.Argument(help="the person's name")],
               role: Annotated[str, typer.Argument(help="viewer, editor, approver or admin")],
               by: Annotated[str | None, typer.Option(
                   "--by", help="who changes it (default: your login name)")] = None
               ) -> None:
    """Give a person another role; it holds from their next page. The last admin stays one."""
    with _person_errors():
        try:
            p = service.set_role(_existing(), name=name, role=role, by=by or _me(), now=_now())
        except FieldError as e:
            if e.field == "role":       # the argument ROLE here, not add's --role
                raise TminusError(f"ROLE {e.message}") from None
            raise
    out.print(f"{escape(p.name)} is now {'an' if p.role[0] in 'aeiou' else 'a'} {p.role}")


def _password() -> str:
    if sys.stdin.isatty():
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@contextlib.contextmanager
def _person_errors() -> Iterator[None]:
    """The service names its fields as the web form does (`name`, `password`); on the
    command line the name is the argument NAME and the password is typed, not options."""
    try:
        yield
    except FieldError as e:
        if e.field == "name":
            raise TminusError(f"NAME {e.message}") from None
        if e.field == "password":
            raise TminusError(f"the password {e.message}") from None
        raise


@users_app.command("list")
def users_list(utc: Annotated[bool, typer.Option(
                   "--utc", help="show times in UTC instead of this machine's timezone")] = False
               ) -> None:
    """The people who may log in, with their role."""
    people = service.list_people(_existing())
    for p in people:
        # a person belongs to no campaign: this machine's timezone
        out.print(f"{escape(p.name):<30} {p.role:<9} added {_at(p.created_at, None, utc, year=True)} "
                  f"by {escape(p.created_by)}")
    out.print(f"{len(people)} person(s)" if people else "nobody may log in yet: add the first "
              "admin with `tminus users add NAME --role admin`")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="the person's name")],
                 by: Annotated[str | None, typer.Option(
                     "--by", help="who removes (default: your login name)")] = None
                 ) -> None:
    """Remove a person; their logins end at once."""
    with _person_errors():
        p = service.remove_person(_existing(), name=name, by=by or _me(), now=_now())
    out.print(f"removed {escape(p.name)} ({p.role})")


@app.command()
def web(host: Annotated[str, typer.Option(
            help="address to listen on (127.0.0.1: this machine only)")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port to listen on")] = 8000) -> None:
    """The web dashboard for the comms team, on the daemon's database."""
    from scheduler.web import serve
    settings = _settings()
    logs.configure(settings)
    engine = _engine(settings)
    if not service.list_people(engine):
        err.print("[yellow]nobody can log in yet[/]: add a person first with "
                  "`tminus users add NAME --role admin`")
    serve(engine, settings, host=host, port=port, listening=lambda: out.print(
        f"tminus web dashboard on http://{host}:{port}/ (Ctrl-C stops it)"))


# -- issue 16: alerts, calendar, report ---------------------------------------------------

notify_app = typer.Typer(help="Alerts to TMINUS_NOTIFY (Apprise URLs).", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


def _db_clock(engine: Engine) -> Any:
    """The database's time, as the daemons keep it."""
    from scheduler.db import database_time
    return lambda: database_time(engine)


@notify_app.command("test")
def notify_test() -> None:
    """Send a test message to every TMINUS_NOTIFY address now."""
    from scheduler.service.alerts import notify_test as run_test
    from scheduler.service.alerts import sender_for
    settings = _settings()
    logs.configure(settings)
    apprise = sender_for(settings)      # TMINUS_NOTIFY unset or wrong: said before a database is made
    engine = _engine(settings)
    r = run_test(engine, settings, _db_clock(engine), apprise=apprise)
    for d in r.outcomes:
        said = ("[green]delivered[/]" if d.sent_at else
                f"[red]not delivered[/]: {escape(d.last_error or 'no reason given')}")
        out.print(f"  to {escape(d.destination)}: {said}", soft_wrap=True)
    if not r.delivered:
        raise TminusError(f"the test message was not delivered: {r.error}")
    out.print("[green]test message delivered[/]")


# Alerts are optional: where TMINUS_NOTIFY is unset the timer's minute is not a failure
# (systemd would mark the unit failed every minute), it is said once and exits 0.
ALERTS_OFF = ("alerts are off: TMINUS_NOTIFY is not set, so nothing is collected or sent; "
              "to turn them on, set it to one or more Apprise URLs (e.g. "
              "ntfys://ntfy.sh/your-topic) in .env or the service's environment file, then "
              "run `tminus notify test`")


@notify_app.command("check")
def notify_check() -> None:
    """Collect, group and send alerts once (from a timer: notices a dead daemon)."""
    from scheduler.service.alerts import check_alerts
    settings = _settings()
    logs.configure(settings)
    if not settings.notify_urls:
        out.print(ALERTS_OFF)
        return
    # the daemon's database, never a new one: a timer in the wrong folder (or before any
    # daemon ran) would otherwise watch an empty database and say nothing, every minute
    engine = _existing(settings)
    r = check_alerts(engine, settings, _db_clock(engine))
    d = r.delivered
    out.print(f"collected {r.collected}, grouped {r.grouped} message(s), sent "
              f"{d.sent if d else 0}, failed {d.failed if d else 0}")
    if d and d.failed:
        raise typer.Exit(1)


@notify_app.command("status")
def notify_status(utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False,
                  as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False
                  ) -> None:
    """The latest alert messages: delivered, failing or given up, and why, to each
    destination."""
    from scheduler.service.alerts import alert_log
    settings = _settings()
    missing = service.no_database_at(settings)
    if missing and not settings.notify_urls:
        # two things are true and both are said: no alerts are set up, nor a database
        out.print(f"[yellow]{ALERTS_OFF}[/]")
        out.print(f"no tminus database at {escape(missing)} yet either (TMINUS_DATABASE_URL): "
                  "nothing has happened to alert about; `tminus plan DIR` makes one",
                  soft_wrap=True)
        return
    engine = _existing(settings)
    r, z = alert_log(engine), _zones(engine)
    if as_json:
        _print_json(r)
        return
    for m in r.messages:
        tz = z.of(campaign=m.campaign)     # an alert of no campaign: this machine's zone
        if m.sent_at:
            state = f"[green]sent {_at(m.sent_at, tz, utc, seconds=True)}[/]"
        elif m.gave_up_at:
            state = f"[red]given up after {m.attempts} attempts[/]"
        else:
            state = f"[yellow]not yet sent ({m.attempts} attempt(s))[/]"
        out.print(f"#{m.id} {_at(m.created_at, tz, utc, seconds=True)} {escape(m.title)}: {state}")
        if m.destinations and (not m.sent_at or m.attempts > 1):
            _print_destinations(m.destinations, tz, utc)
        elif m.last_error and not m.sent_at:
            out.print(f"    last error: {escape(m.last_error)}")
    out.print(f"{len(r.messages)} message(s) shown; {r.waiting_items} item(s) waiting for "
              "the next message of their kind")
    if not settings.notify_urls:
        out.print(f"[yellow]{ALERTS_OFF}[/]")


@app.command()
def calendar(campaign: Annotated[str, typer.Argument(help="campaign slug")],
             output: Annotated[Path, typer.Option("--output", "-o", help="the .ics file to write")]
             ) -> None:
    """Write the campaign's posts and deadline as a calendar file (.ics)."""
    from scheduler.service.calendar import calendar_ics
    engine = _existing()
    data = calendar_ics(engine, campaign, _db_clock(engine)())
    try:
        output.write_bytes(data)
    except OSError as e:
        raise FieldError("output", f"cannot write {output}: {e.strerror}") from None
    out.print(f"wrote {escape(str(output))}: {data.count(b'BEGIN:VEVENT') - 1} post(s) and the "
              "deadline")


engagement_app = typer.Typer(help="Likes, reposts and replies of published posts.",
                             no_args_is_help=True)
app.add_typer(engagement_app, name="engagement")


@engagement_app.command("fetch")
def engagement_fetch(campaign: Annotated[str | None, typer.Argument(
        help="campaign slug (default: every campaign)")] = None) -> None:
    """Read published posts' likes, reposts and replies from their platforms now."""
    from scheduler.service.report import fetch_engagement
    settings = _settings()
    engine = _existing(settings)
    _said_fetch(fetch_engagement(engine, settings, _db_clock(engine)(), campaign=campaign))


def _said_fetch(f: Any, to: Console = out) -> None:
    if f.read == f.accounts == 0 and not (f.skipped or f.errors):
        to.print("no published post to read counts of yet: they are read once posts went out")
    else:
        to.print(f"read the counts of {f.read} post(s) on {f.accounts} account(s)")
    for why in f.skipped:
        to.print(f"[yellow]skipped[/] {escape(why)}")
    for why in f.errors:
        err.print(f"[red]could not read[/] {escape(why)}")


@app.command()
def report(campaign: Annotated[str, typer.Argument(help="campaign slug")],
           fmt: Annotated[str, typer.Option("--format", help="table, json or html")] = "table",
           output: Annotated[Path | None, typer.Option("--output", "-o", help="write to FILE")] = None,
           refresh: Annotated[bool, typer.Option(
               "--refresh", help="read the engagement counts from the platforms first")] = False,
           utc: Annotated[bool, typer.Option("--utc", help=UTC_HELP)] = False
           ) -> None:
    """What went out when, on time or late, what expired or failed, and which post did best."""
    from scheduler.report import late_words, render_html, render_json
    from scheduler.service.report import campaign_report, fetch_engagement
    if fmt not in ("table", "json", "html"):
        raise FieldError("format", f"{fmt!r}: write table, json or html")
    settings = _settings()
    engine = _existing(settings)
    now = _db_clock(engine)
    if refresh:
        fetched = fetch_engagement(engine, settings, now(), campaign=campaign)
        _said_fetch(fetched, out if fmt == "table" else err)   # JSON/HTML on stdout stay clean
    r = campaign_report(engine, campaign, now())
    if fmt != "table":
        text = render_json(r) if fmt == "json" else render_html(r)
        if output is None:
            sys.stdout.write(text + "\n")
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as e:
            raise FieldError("output", f"cannot write {output}: {e.strerror}") from None
        out.print(f"wrote {escape(str(output))}")
        return
    tz = r.timezone
    out.print(f"[bold]{escape(r.title)}[/] ({r.slug}), deadline {_at(r.deadline, tz, utc, year=True)}")
    out.print("posts: " + (", ".join(f"{n} {s}" for s, n in r.counts.items()) or "none")
              + f"; {r.on_time} on time, {r.late} late"
              + (f" (the latest {late_words(r.latest_seconds)})" if r.late else ""))
    # one line per post fitted to the terminal, as `list`: nothing a person must read
    # exactly (a name, a time, a count) is folded; the text is cut at a word
    rows = [[str(row.id), row.account, _at(row.due_at, tz, utc), str(row.state),
             late_words(row.late_seconds) if row.published_at else "",
             "—" if row.likes is None else f"{row.likes}/{row.reposts}/{row.replies}",
             row.reason or row.text] for row in r.rows]
    lines = _columns(["#", "account", "due (UTC)" if utc else "due (local)", "state", "went out",
                      "engagement", "text / why"], rows, out.width, least=8)
    out.print(f"[bold]{escape(lines[0])}[/]")
    for line in lines[1:]:
        out.print(escape(line))
    out.print("engagement: likes/reposts/replies (— not read yet); the exact times: "
              "`--format html` or `--format json`")
    for b in r.best:
        out.print(f"best on {b.platform}{f' ({b.language})' if b.language else ''}: #{b.row.id} "
                  f"{escape(b.row.account)} — {b.row.likes} likes, {b.row.reposts} reposts, "
                  f"{b.row.replies} replies: {_one_line(_fit(b.row.text, 80))}")
    if not r.best:
        out.print("no engagement counts yet: `tminus report --refresh` or `tminus engagement fetch`")


def _command(args: Sequence[str]) -> Any:
    """The click command that runs `args`: `app`'s group, or for one of its own commands
    (not a group's) a group holding only that command. Typer builds a click command from
    every registered function on each run, and the other 34 cost a rehearsal a few per
    cent of its CPU. What is parsed, said and done is the same: the group only looks up
    the named command, and the whole list is shown by `tminus --help` or by a name that
    is none (the full group). (`typer.main.get_group`: one command alone would otherwise
    be built as the program itself, taking no command name.)"""
    for info in app.registered_commands if args else ():
        if info.callback is not None and (info.name or typer.main.get_command_name(
                info.callback.__name__)) == args[0]:
            only = copy.copy(app)
            only.registered_commands, only.registered_groups = [info], []
            return typer.main.get_group(only)
    return typer.main.get_command(app)


def main() -> None:
    global out, err
    # made per run: the width is the terminal's (or COLUMNS) at this moment
    # soft wrap: a line is never broken by us (a command to copy, a link, an error stay
    # whole); views that must fit cut their text themselves (`_fit`)
    # no emoji codes: a post's ":fire:" is shown as the platform will show it, ":fire:"
    out = Console(highlight=False, soft_wrap=True, emoji=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    start_process()
    try:
        args = cliargs.normalize(sys.argv[1:])
        # not standalone: a usage mistake comes back here, to be said on one line
        code = _command(args)(args=args, prog_name="tminus", standalone_mode=False)
    except _usage.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()               # `tminus` alone: the help
            sys.exit(2)
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else "tminus"
        err.print(f"[red]error:[/] {escape(where)}: {escape(e.format_message())} "
                  f"(see `{escape(where)} --help`)", soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Abort as e:
        # Ctrl-C at a question (click raises Abort `from None`: nothing was written yet)
        # or during a command (`from` the KeyboardInterrupt); exit 130 as a shell's 128 +
        # SIGINT. Ctrl-D where a password is asked is no answer: nothing written either.
        if isinstance(e.__cause__ or e.__context__, EOFError):
            err.print("[red]no answer (end of input); nothing was written[/]")
            sys.exit(1)
        err.print("[red]interrupted[/]" + ("" if e.__cause__ else "; nothing was written"))
        sys.exit(130)
    except TminusError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)   # one line, however long
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
