"""The README's walkthrough ("A campaign, start to finish"), run command by command on
the examples as they are: the test reads the README's code block, so it fails when the
README and the program disagree. Two commands cannot run as written in a test: the
daemon (`tminus run`) sends what is due once (`--once`), and the web dashboard
(`tminus web ...`) is parsed (`--help` appended) instead of serving."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, CliResult

Cli = Callable[..., CliResult]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def walkthrough() -> list[list[str]]:
    section = README.split("## A campaign, start to finish", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the walkthrough's ```sh block is gone from the README"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] == "tminus", line
            commands.append(words[1:])
    return commands


def test_the_walkthrough_has_the_commands_a_person_needs() -> None:
    names = [c[0] for c in walkthrough()]
    for needed in ("validate", "plan", "queue", "preview", "approve", "run", "status", "list",
                   "log", "web"):
        assert needed in names, needed


def test_the_readme_walkthrough_runs_as_written(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")   # cli runs in tmp_path
    for args in walkthrough():
        if args[0] == "run":
            args = [*args, "--once"]
        if "--expect" in args:
            # the README writes the digest its preview printed as "3f9c…": use the real one
            at = args.index("--expect") + 1
            shown = json.loads(cli("preview", args[1], "--format", "json").out)
            args = [*args[:at], shown[0]["digest"], *args[at + 1:]]
        if args[0] == "web":
            args = [*args, "--help"]
        r = cli(*args)
        assert r.code == 0, (args, r.out, r.err)
        assert "Traceback" not in r.out + r.err
        if args[0] == "status":
            assert r.out.startswith("Keep the overnight Owl buses (keep-the-owl) — ")
            assert "20 queued" in r.out.splitlines()[0]
        if args[0] == "list":
            assert r.out.splitlines()[-1] == "20 post(s)"
        if args[0] == "log":
            assert "approved by Ana Ruiz" in r.out
    assert (tmp_path / "preview.html").exists()
