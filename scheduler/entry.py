"""The `tminus` program: `tminus run` goes straight to the daemon; every other command
line goes to typer's (`scheduler.cli`).

The daemon lives for days in a process of its own, and what its command line imports
stays resident all that time: typer, click, rich and the pydantic typer imports were 14
of its 58 MB with 1,000,000 posts queued (docs/DESIGN.md, "The daemon's process"). So
a command line that is exactly `run` with `--once` and `--dry-run` each given at most
once, in either order, runs `run_command` here without any of them. Anything
else — `--help`, a misspelt option, a repeated flag, `--` — is parsed by typer as before,
whose `run` calls the same `run_command`: the command does the same and says the same
either way (tests/test_entry.py runs both and compares what they print and exit with).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# A line as a list of (text, style) parts: rich's style name, or None for plain text.
Line = Sequence[tuple[str, str | None]]
Say = Callable[[Line], None]

RUN_FLAGS = frozenset({"--once", "--dry-run"})


def plain_run(args: Sequence[str]) -> bool:
    """`args` is `run` with nothing but `--once` and `--dry-run`, each at most once."""
    return (bool(args) and args[0] == "run" and len(set(args[1:])) == len(args) - 1
            and RUN_FLAGS.issuperset(args[1:]))


def run_command(*, once: bool, dry_run: bool, say: Say) -> None:
    """`tminus run`: the daemon publishes approved posts at their time until stopped
    (SIGTERM/Ctrl-C); with `once`, what is due now, then exit. Only the daemon's own
    modules are imported here (docs/DESIGN.md, "The daemon runs on Core")."""
    from scheduler import logs
    from scheduler.db import DAEMON_PAGE_CACHE_KIB
    from scheduler.service.database import open_database
    from scheduler.service.readiness import not_ready
    from scheduler.service.run import run_daemon, run_once, worker
    from scheduler.settings import Settings

    settings = Settings.from_env()
    logs.configure(settings)
    # the sending processes' fork server imports the SDKs meanwhile, on another core
    from scheduler.publishers import early_fork_server
    server = early_fork_server(settings, dry_run=dry_run)
    engine = open_database(settings, page_cache_kib=DAEMON_PAGE_CACHE_KIB)
    w = worker(engine, settings, dry_run=dry_run, server=server)
    dry = w.publishers.dry_run
    if dry:
        say([(f"dry run: posts go to {settings.dryrun_outbox}, nothing leaves this machine", None)])
    for a in not_ready(engine, settings.env, verified=False):
        if not a.missing:
            continue
        then = ("it would need them to post for real" if dry else
                "its posts will not go out (the account is paused when the first falls due)")
        say([("note:", None) if dry else ("warning:", "yellow"),
             (f" account {a.name} ({a.platform}) has no credentials: "
              f"{', '.join(a.missing)} not set in the environment or .env; {then}", None)])
    if once:
        r = run_once(w)
        say([(f"sent {r.sent}, expired {r.expired}, failed {r.failed}, retrying {r.retried}, "
              f"unknown {r.unknown}" + (f", held back {r.held_back}" if r.held_back else ""), None)])
        return
    run_daemon(w)


def rich_text(line: Line) -> Text:
    """The line as rich's Text (what the command line's consoles print)."""
    from rich.text import Text
    return Text.assemble(*((part, style) if style else part for part, style in line))


class Printer:
    """Prints lines as the command line's rich consoles print them (no highlighting, no
    emoji codes, soft wrap), without importing rich where rich would print the plain
    text anyway: to a file or pipe (a service's log, the benchmark), when no variable
    makes rich treat it as a terminal, for a line of printable ASCII (rich would remove
    control characters and expand tabs). Any other line is printed by rich itself."""

    def __init__(self, stream: IO[str], *, stderr: bool = False) -> None:
        self.stream = stream
        self.stderr = stderr
        self._rich: Console | None = None

    def say(self, line: Line) -> None:
        text = "".join(part for part, _ in line)
        if self._plain() and text.isascii() and text.isprintable():
            self.stream.write(text + "\n")
            self.stream.flush()
            return
        self._console().print(rich_text(line))

    def _plain(self) -> bool:
        if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
            return False
        try:
            return not self.stream.isatty()
        except ValueError:      # closed
            return False

    def _console(self) -> Console:
        if self._rich is None:
            from rich.console import Console
            self._rich = Console(file=self.stream, stderr=self.stderr, highlight=False,
                                 soft_wrap=True, emoji=False)
        return self._rich


def run_main(args: Sequence[str]) -> NoReturn:
    """`tminus run [--once] [--dry-run]` without typer, ending as the command line does
    (`scheduler.cli.main` around typer's own `main`): a TminusError is one red line and
    exit 2; Ctrl-C while starting (before the daemon handles it) exits 130; a closed
    pipe on stdout exits 1."""
    from content.errors import TminusError

    out, err = Printer(sys.stdout), Printer(sys.stderr, stderr=True)
    try:
        run_command(once="--once" in args, dry_run="--dry-run" in args, say=out.say)
    except TminusError as e:
        err.say([("error:", "red"), (f" {e}", None)])
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except EOFError:
        sys.stderr.write("\n")
        err.say([("no answer (end of input); nothing was written", "red")])
        sys.exit(1)
    except BrokenPipeError:
        # whoever read stdout is gone: what is left in its buffer goes nowhere at exit
        # (Python's documented way, "Note on SIGPIPE" in the signal module's docs)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(0)


def main() -> None:
    """The `tminus` console script."""
    args = sys.argv[1:]
    # (typer answers shell completion first, whatever the arguments)
    if not plain_run(args) or "_TMINUS_COMPLETE" in os.environ:
        if args[:1] == ["rehearse"] and "_TMINUS_COMPLETE" not in os.environ:
            # its database half starts now, beside typer's import (service/rehearsal.py)
            from scheduler.service.rehearsal import start_early
            start_early(args)
        from scheduler.cli import main as cli_main
        cli_main()
        return
    start_process()
    run_main(args)


def start_process() -> None:
    """What every command does first, typer's or not. Python's last full garbage
    collection at exit walks every object the command left (a sixth of a rehearsal's
    CPU): frozen first, they are simply freed with the process (registered once, however
    often it runs in one process). `.env` is read with python-dotenv only where there is
    one."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    if (dotenv := Path.cwd() / ".env").is_file():
        from dotenv import load_dotenv
        load_dotenv(dotenv)


if __name__ == "__main__":
    main()
