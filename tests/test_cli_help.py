"""Help texts a person reads (issue 13): no type tags, every option explained, valid
values listed; a usage mistake is one line with the hint to `--help`, never wrapped."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import typer.main

from scheduler.models import PostState
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def _commands() -> Iterator[tuple[list[str], Any]]:
    from scheduler.cli import app

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])
    yield from walk(typer.main.get_command(app), [])


COMMANDS = [path for path, _ in _commands()]


def test_every_parameter_of_every_command_has_a_help_text() -> None:
    missing = [(" ".join(path), p.name) for path, cmd in _commands() for p in cmd.params
               if not getattr(p, "help", None)]
    assert missing == []


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "tminus")
@pytest.mark.parametrize("columns", ["80", "200"])
def test_help_has_no_type_tags(cli: Cli, monkeypatch: pytest.MonkeyPatch, path: list[str],
                               columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    r = cli(*path, "--help")
    assert r.code == 0, r.err
    assert "Usage: tminus" in r.out
    tags = re.findall(r"<(?:bool|str|int|float|path|list|int range|datetime)[^>]*>|\[\d+<=x", r.out)
    assert tags == [], tags
    assert "{" not in r.out.split("\n\n")[0] + r.out.splitlines()[1]


def test_list_help_lists_the_states(cli: Cli) -> None:
    text = " ".join(cli("list", "--help").out.split())
    assert all(st.value in text for st in PostState)


@pytest.mark.parametrize("args", [("list", "--bogus"), ("log", "abc"), ("queue", "add"),
                                  ("approve", "testcamp")])
@pytest.mark.parametrize("columns", ["40", "200"])
def test_a_usage_mistake_is_one_unwrapped_line_with_the_hint(
        cli: Cli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    r = cli(*args)
    assert r.code == 2
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: tminus ") and lines[0].endswith("--help`)")
    assert "╭" not in r.err and "Traceback" not in r.err


def test_a_long_error_is_never_wrapped(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")
    r = cli("log", "999999")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and len(r.err.strip()) > 30
