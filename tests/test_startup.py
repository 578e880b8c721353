"""What a command imports before it does anything: `tminus --help` and `tminus rehearse`
start in a fraction of the time the whole stack takes (bench/rehearse.py measures it;
these tests only check which modules get imported, never a time).

Each check runs in a fresh interpreter, so nothing this test process imported counts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# the caller's environment, less any tminus setting (a rehearsal reads none it needs)
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")} | {"COLUMNS": "120"}
# Neither the help nor a rehearsal needs an SDK, the web stack, password hashing,
# calendars or alert delivery.
SDKS_AND_WEB = ["tweepy", "mastodon", "atproto", "atproto_client", "requests", "httpx",
                "fastapi", "starlette", "uvicorn", "argon2", "icalendar", "apprise",
                "scheduler.web", "scheduler.toolkit.site", "scheduler.preview"]
# The help needs no database, no tables, no templates and no length rules either.
HELP_NEVER = [*SDKS_AND_WEB, "sqlalchemy", "sqlmodel", "pydantic", "jinja2", "regex",
              "langcodes", "phonenumbers", "apscheduler", "scheduler.models",
              "scheduler.settings", "content.rules", "content.campaign"]


def _imported(code: str, tmp: Path) -> set[str]:
    """The top-level and tminus modules in `sys.modules` after running `code`."""
    script = textwrap.dedent(code) + textwrap.dedent("""
        import json, sys
        print(json.dumps(sorted(sys.modules)))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp, capture_output=True,
                          text=True, timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def _loaded(modules: set[str], names: list[str]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


def test_help_imports_no_database_templates_rules_or_sdks(tmp_path: Path) -> None:
    modules = _imported("""
        import sys
        from scheduler import cli
        sys.argv = ["tminus", "--help"]
        try:
            cli.main()
        except SystemExit as e:
            assert e.code == 0, e.code
    """, tmp_path)
    assert "scheduler.cli" in modules and "typer" in modules   # it did run the command line
    assert _loaded(modules, HELP_NEVER) == []


# What `tminus rehearse` does without (issue 12: under a second end to end): the real
# click (typer carries its own; only `edit --editor` needs it), rich's emoji table (the
# consoles replace no codes), langcodes (the example's tags are two letters); approving
# checks a digest and builds no approval sheet's cards (`service.timeline`). The
# planner, the approval and the report's collection run on Core, as the daemon does
# (tests/test_daemon_imports.py): no SQLModel, no ORM, no models. Typer's pydantic is
# not needed to coerce a path (`cli._coercion_without_pydantic`). The console script
# starts a child for the database half before it imports typer
# (`rehearsal.start_early`): the process that prints imports no database code at all,
# and the child neither typer, rich nor what only the check needs (Jinja2,
# phonenumbers: this process checks the folder and hands it over).
REHEARSAL_NEVER = [*SDKS_AND_WEB, "click", "rich._emoji_codes", "langcodes",
                   "scheduler.service.timeline", "sqlmodel", "sqlalchemy.orm",
                   "scheduler.models", "scheduler.service.posts",
                   "scheduler.service.approvals", "pydantic", "pydantic_core"]
PARENT_NEVER = ["sqlalchemy", "scheduler.tables", "scheduler.daemon", "scheduler.planner"]
CHILD_NEVER = ["typer", "rich", "jinja2", "phonenumbers", "content.render", "scheduler.cli"]
EXAMPLE = ROOT / "examples" / "potuspardon"
GOLDEN = ROOT / "tests" / "golden" / "rehearse-potuspardon.txt"


def _rehearse(folder: Path, tmp: Path, *, first: str = ""
              ) -> tuple[int, str, str, set[str], set[str] | None]:
    """`tminus rehearse FOLDER` in a fresh interpreter through the console script's
    `main`, after running `first`: exit code, output, errors, the modules it imported
    and those its child had when it left, or None if no child got as far as leaving
    with a report (each printed to a file, not the output)."""
    listing = tmp / f"modules-{len(list(tmp.glob('modules-*')))}.json"
    child = listing.with_suffix(".child.json")
    script = first + "\n" + textwrap.dedent(f"""
        import atexit, json, os, sys
        atexit.register(lambda: open({str(listing)!r}, "w").write(json.dumps(sorted(sys.modules))))
        from scheduler.service import rehearsal
        told = rehearsal._play_when_told
        def listed(*args):
            report = told(*args)
            open({str(child)!r}, "w").write(json.dumps(sorted(sys.modules)))
            return report
        rehearsal._play_when_told = listed
        from scheduler import entry
        sys.argv = ["tminus", "rehearse", {str(folder)!r}]
        entry.main()
    """)
    temp = tmp / "temp"         # the rehearsal's temporary folders, gone afterwards
    temp.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp, capture_output=True,
                          text=True, timeout=120, env=ENV | {"TMPDIR": str(temp)})
    assert list(temp.iterdir()) == []
    return (done.returncode, done.stdout, done.stderr, set(json.loads(listing.read_text())),
            set(json.loads(child.read_text())) if child.exists() else None)


def test_a_rehearsal_imports_no_sdk_and_no_web_stack(tmp_path: Path) -> None:
    code, out, err, modules, child = _rehearse(EXAMPLE, tmp_path)
    assert code == 0, err
    assert "46 sent, 0 expired" in out
    # what a person reads is what it was before the rehearsal's path moved to Core and
    # typer's pydantic went (the table as main printed it at e984c28; a change to the
    # example campaign or to the table's layout writes it anew:
    # `COLUMNS=120 tminus rehearse examples/potuspardon > tests/golden/rehearse-potuspardon.txt`)
    assert out == GOLDEN.read_text(encoding="utf-8")
    if sys.platform == "linux":     # forks on Linux: the child played it
        assert child is not None
        assert {"scheduler.daemon", "jobs.adapters.dryrun", "scheduler.planner"} <= child
        assert {"scheduler.cli", "content.render"} <= modules   # this process checked and printed
        assert _loaded(modules, [*REHEARSAL_NEVER, *PARENT_NEVER]) == []
        assert _loaded(child, [*REHEARSAL_NEVER, *CHILD_NEVER]) == []
    else:
        assert _loaded(modules, SDKS_AND_WEB) == []

    # With no child to be had (fork fails as at a limit on processes), the rehearsal is
    # checked and played in this one process. The same table, to the byte.
    inline = _rehearse(EXAMPLE, tmp_path, first=NO_FORK)
    assert inline[:3] == (code, out, err)
    assert inline[4] is None
    assert {"sqlalchemy", "scheduler.daemon", "jinja2", "content.render"} <= inline[3]
    assert _loaded(inline[3], REHEARSAL_NEVER) == []


NO_FORK = ("import os\n"
           "def fork(): raise BlockingIOError(11, 'Resource temporarily unavailable')\n"
           "os.fork = fork")


def test_a_mistake_found_with_a_child_reads_as_one_found_without(tmp_path: Path) -> None:
    # The folder's mistakes are found in this process either way; with a child, the
    # check needing the database code (here: the expansion's errors) is made here too,
    # and says what is wrong exactly as without a child: one line, exit 2, no traceback.
    bad = tmp_path / "bad"
    shutil.copytree(EXAMPLE, bad)
    toml = (bad / "campaign.toml").read_text(encoding="utf-8")
    (bad / "campaign.toml").write_text(toml.replace('language = "es"', 'language = "xx-nope"', 1)
                                       .replace('number = "202-456-1111"', 'number = "202-4"'),
                                       encoding="utf-8")
    forked = _rehearse(bad, tmp_path)
    here = _rehearse(bad, tmp_path, first=NO_FORK)
    assert forked[:3] == here[:3]
    assert forked[0] == 2 and forked[1] == ""
    assert "'xx-nope' is not a language tag" in forked[2] and "and 1 more problem" in forked[2]
    assert len(forked[2].splitlines()) == 1
    # a file that does not load at all: the same one line too
    (bad / "campaign.toml").write_text(toml + "\n[[[", encoding="utf-8")
    forked, here = _rehearse(bad, tmp_path), _rehearse(bad, tmp_path, first=NO_FORK)
    assert forked[:3] == here[:3] and forked[0] == 2 and len(forked[2].splitlines()) == 1
    assert forked[4] is None and here[4] is None
    # a command line that never gets to rehearse (a bad setting) ends the child started
    # for it and removes its temporary folder (`_rehearse` checks)
    unset = _rehearse(EXAMPLE, tmp_path, first="import os\nos.environ['TMINUS_POLL_SECONDS'] = '-1'")
    assert unset[0] == 2 and "TMINUS_POLL_SECONDS" in unset[2] and unset[4] is None


def test_the_status_use_case_imports_no_password_hashing(tmp_path: Path) -> None:
    # `tminus status` reaches people.py through pauses and activity; argon2-cffi is
    # only for the commands and pages that hash or check a password
    modules = _imported("""
        from scheduler import service
        service.glance, service.status, service.pause, service.list_posts
    """, tmp_path)
    assert "scheduler.service.people" in modules
    assert _loaded(modules, SDKS_AND_WEB) == []

def test_the_service_names_are_the_use_cases_whatever_was_imported_first(tmp_path: Path) -> None:
    # `scheduler.service.status` is a module and `service.status` a use case: importing
    # the module first (glance does) must not make `service.status` the module.
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import importlib, types
        import scheduler.service.glance
        from scheduler import service
        wrong = [name for name in service.__all__
                 if isinstance(getattr(service, name), types.ModuleType)
                 or getattr(service, name) is not getattr(
                     importlib.import_module("scheduler.service." + service._HOME[name]), name)]
        assert wrong == [], wrong
        assert sorted(service._HOME) == sorted(service.__all__)
        from scheduler.service import overview, timeline    # submodules stay importable
        assert isinstance(overview, types.ModuleType) and callable(timeline.timeline)
        try:
            service.no_such_use_case
        except AttributeError as e:
            print(e)
    """)], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "has no attribute 'no_such_use_case'" in out.stdout


def test_a_command_is_built_alone_and_reads_as_in_the_whole_group(
        capsys: pytest.CaptureFixture[str]) -> None:
    # `tminus rehearse` builds one click command, not all of them; its help, a usage
    # mistake and the group's own answers (no such command, a group's command) read as
    # the whole group says them
    import typer
    from typer.core import TyperGroup

    from scheduler import cli
    alone, listed, whole = (cli._command(["rehearse", "x"]), cli._command(["--help"]),
                            typer.main.get_command(cli.app))
    assert isinstance(alone, TyperGroup) and isinstance(listed, TyperGroup)
    assert isinstance(whole, TyperGroup)
    assert list(alone.commands) == ["rehearse"]
    assert len(whole.commands) > 20 and listed.commands.keys() == whole.commands.keys()

    def said(command: Any, args: list[str]) -> str:
        try:
            command.main(args=args, prog_name="tminus", standalone_mode=False)
        except cli._usage.ClickException as e:   # what `cli.main` prints of it
            return f"{type(e).__name__}: {getattr(e.ctx, 'command_path', '')} " \
                   f"{e.format_message()}"
        return capsys.readouterr().out
    for args in (["rehearse", "--help"], ["rehearse"], ["rehearse", "a", "b"],
                 ["rehearse", "--bogus"], ["rehearsee"], ["queue", "--help"]):
        assert said(cli._command(args), args) == said(whole, args), args


def test_every_parameter_is_coerced_as_typer_itself_coerces_it() -> None:
    # `cli._coercion_without_pydantic` does None and paths itself: each parameter of
    # every command gives what typer's own (pydantic) coercion gives, or the same error
    import typer
    from typer._coercion import build_runtime_param
    from typer.core import TyperGroup

    from scheduler import cli
    whole = typer.main.get_command(cli.app)
    assert isinstance(whole, TyperGroup)
    params = [(command, p) for group in [whole, *(c for c in whole.commands.values()
                                                   if isinstance(c, TyperGroup))]
              for command in group.commands.values() for p in command.params]
    paths = [p for _, p in params if isinstance(p.type_descriptor.annotation, type)
             and issubclass(p.type_descriptor.annotation, Path)]
    assert len(paths) >= 8      # validate, plan, rehearse, toolkit, calendar, ...

    def outcome(coerce: Any, param: Any, value: Any) -> tuple[str, Any]:
        try:
            return "value", coerce(value, param=param, ctx=None)
        except Exception as e:   # typer's error for the value: the same one
            return type(e).__name__, str(e)
    for command, param in params:
        mine, typers = param.get_runtime_param(), build_runtime_param(param.type_descriptor)
        assert type(mine).__name__ == "Coercion", command.name
        for value in (None, "examples/potuspardon", "-", "", "no/such/folder", "12", "x y"):
            if param.multiple or param.nargs != 1:
                value = None if value is None else [value]
            assert outcome(mine.coerce, param, value) == outcome(typers.coerce, param, value), \
                (command.name, param.name, value)
