"""`tminus run` straight from the console script (scheduler/entry.py), without typer, rich
or click: it must do and say exactly what typer's `tminus run` does. Each case runs both
in this process, on the same database, and compares what they print and exit with.
(That the fast path imports none of typer, click, rich or pydantic is checked in a fresh
process by tests/test_daemon_imports.py.)"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler import entry
from tests.conftest import CampaignFactory, CliResult, simple_toml

Run = Callable[..., CliResult]

MIXED = simple_toml(accounts="""
    [accounts.org]
    platform = "dryrun"

    [accounts.partner]
    platform = "mastodon"
    credentials = "PARTNER_M"
""")


@pytest.fixture
def both(cli: Run, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[CliResult, CliResult]]:
    """`both(*args)`: (typer's result, the console script's) for `tminus ARGS`."""
    def script(*args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["tminus", *args])
        with pytest.raises(SystemExit) as exc:
            entry.main()
        captured = capsys.readouterr()
        code = exc.value.code
        return CliResult(int(code) if isinstance(code, int) else (0 if code is None else 1),
                         captured.out, captured.err)

    def run(*args: str) -> tuple[CliResult, CliResult]:
        return cli(*args), script(*args)

    return run


@pytest.mark.parametrize(("args", "fast"), [
    (["run"], True), (["run", "--once"], True), (["run", "--dry-run"], True),
    (["run", "--dry-run", "--once"], True), (["run", "--once", "--dry-run"], True),
    ([], False), (["--help"], False), (["run", "--help"], False), (["run", "-h"], False),
    (["run", "--once", "--once"], False), (["run", "--once=1"], False), (["run", "--"], False),
    (["run", "now"], False), (["run", "--bogus"], False), (["rehearse", "run"], False),
    (["Run"], False), (["run", "--dry"], False),
])
def test_only_run_and_its_two_flags_skip_typer(args: list[str], fast: bool) -> None:
    assert entry.plain_run(args) is fast


@pytest.mark.parametrize("color", [False, True], ids=["plain", "FORCE_COLOR"])
def test_run_once_says_the_same_either_way(both: Callable[..., tuple[CliResult, CliResult]],
                                           cli: Run, make_campaign: CampaignFactory,
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           color: bool) -> None:
    assert cli("plan", str(make_campaign(MIXED))).code == 0
    assert cli("approve", "testcamp", "--by", "ana").code == 0
    if color:       # rich prints styles here: the console script hands the line to rich
        monkeypatch.setenv("FORCE_COLOR", "1")
    for args in (["run", "--once"], ["run", "--once", "--dry-run"], ["run", "--dry-run", "--once"]):
        typer_run, script = both(*args)
        assert typer_run == script
        assert typer_run.code == 0 and "sent 0, expired 0" in typer_run.out, typer_run
        assert "account partner (mastodon) has no credentials" in typer_run.out
        # styled: the warning (a note, in a dry run, is plain)
        assert ("\x1b[33mwarning:\x1b[0m" in typer_run.out) is (color and "--dry-run" not in args)
    assert "note: account partner" in script.out and "dry run: posts go to" in script.out


def test_a_line_rich_would_change_is_printed_by_rich(
        both: Callable[..., tuple[CliResult, CliResult]], cli: Run,
        make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    for name in ("[/]é.jsonl", "tab\there.jsonl", "[bold]x[/].jsonl"):
        monkeypatch.setenv("TMINUS_DRYRUN_OUTBOX", str(tmp_path / name))
        typer_run, script = both("run", "--dry-run", "--once")
        assert typer_run == script and typer_run.code == 0
    assert "[bold]x[/].jsonl" in script.out


@pytest.mark.parametrize("color", [False, True], ids=["plain", "FORCE_COLOR"])
@pytest.mark.parametrize(("var", "value", "says"), [
    ("TMINUS_LOG_LEVEL", "LOUD", "TMINUS_LOG_LEVEL='LOUD'"),
    ("TMINUS_DATABASE_URL", "mysql://nobody@nowhere/x", "not a usable database URL"),
])
def test_a_mistake_is_the_same_one_red_line(both: Callable[..., tuple[CliResult, CliResult]],
                                            monkeypatch: pytest.MonkeyPatch, var: str,
                                            value: str, says: str, color: bool) -> None:
    monkeypatch.setenv(var, value)
    if color:
        monkeypatch.setenv("FORCE_COLOR", "1")
    typer_run, script = both("run", "--once")
    assert typer_run == script
    assert script.code == 2 and says in script.err and len(script.err.splitlines()) == 1
    assert script.err.startswith("\x1b[31merror:\x1b[0m " if color else "error: ")


def test_a_database_behind_is_refused_the_same_way(
        both: Callable[..., tuple[CliResult, CliResult]], tmp_path: Path) -> None:
    import sqlalchemy as sa

    from scheduler import tables
    engine = sa.create_engine(f"sqlite:///{tmp_path}/tminus.db")
    tables.metadata.create_all(engine)       # tables, but no Alembic version
    engine.dispose()
    typer_run, script = both("run")
    assert typer_run == script
    assert script.code == 2 and "run `tminus db upgrade` first" in script.err


def test_ctrl_c_while_starting_ends_the_same_way(
        both: Callable[..., tuple[CliResult, CliResult]], monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.service import run

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "worker", interrupted)
    typer_run, script = both("run", "--dry-run")
    assert typer_run == script and script.code == 130


def test_everything_else_is_typer_s(both: Callable[..., tuple[CliResult, CliResult]]) -> None:
    for args in (["run", "--help"], ["run", "--bogus"], ["run", "--once", "--once", "--dry-run"]):
        typer_run, script = both(*args)
        assert typer_run == script
    assert "--dry-run" in both("run", "--help")[1].out
    assert "No such option: --bogus" in both("run", "--bogus")[1].err
