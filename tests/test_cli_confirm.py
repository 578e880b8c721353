"""The question before undoing people's work (issue 13), asked on a real terminal: a
re-plan that cancels approved posts and `tminus cancel CAMPAIGN` ask, `y` goes on,
`n` (or Ctrl-D) writes nothing. `tminus` runs as a process on a pty, as a person runs
it (the rest of each test runs in-process, for speed); `--yes` and the error without a
terminal are in test_cli_checks.py."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CampaignFactory, CliResult, simple_toml

Cli = Callable[..., CliResult]

TMINUS = [sys.executable, "-m", "scheduler.cli"]
GUARD = 60.0    # seconds: only so that a broken prompt fails the test instead of hanging it


def _syscall(pid: int | str) -> str:
    """The number of the system call `pid` is blocked in (Linux's /proc), or ''."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return ""


_READ = _syscall("self")    # reading that file is itself a read(): its number here


class Terminal:
    """`tminus ARGS` on a pty of 80 columns: read what it shows, type an answer."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.proc = subprocess.Popen([*TMINUS, *args], env=env, cwd=cwd, stdin=follower,
                                     stdout=follower, stderr=follower, close_fds=True)
        os.close(follower)
        self.seen = ""

    def _read(self) -> bool:
        ready, _, _ = select.select([self.leader], [], [], GUARD)
        assert ready, f"tminus showed nothing more; so far: {self.seen!r}"
        try:
            chunk = os.read(self.leader, 65536)
        except OSError:             # the process closed its side
            return False
        self.seen += re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", chunk.decode()).replace("\r", "")
        return bool(chunk)

    def expect(self, text: str) -> None:
        while text not in self.seen:
            assert self._read(), f"{text!r} never shown; shown: {self.seen!r}"

    def type(self, keys: str) -> None:
        os.write(self.leader, keys.encode())

    def interrupt(self) -> None:
        """Ctrl-C once tminus waits for the answer, as a person's comes: a SIGINT that
        lands after the question is shown but before the process is blocked reading
        (a few instructions of C in `input()`) is only seen when input comes, in any
        Python program, so a test sending it at once sometimes waited forever."""
        deadline = time.monotonic() + GUARD
        while _syscall(self.proc.pid) != _READ:
            assert time.monotonic() < deadline, f"tminus never waited for input: {self.seen!r}"
            time.sleep(0.005)   # polling a process's state: nothing to inject
        self.proc.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str]:
        while self._read():
            pass
        code = self.proc.wait(timeout=GUARD)
        os.close(self.leader)
        return code, self.seen


@pytest.fixture
def env(cli: Cli) -> dict[str, str]:
    """The environment of the `cli` fixture (its database, in tmp_path), for a process."""
    keep = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return keep | {"TERM": "xterm-256color"}


def _posts(cli: Cli) -> list[tuple[str, str]]:
    return [(r["state"], r["text"]) for r in json.loads(cli("list", "--json").out)]


@pytest.fixture
def approved(cli: Cli, make_campaign: CampaignFactory) -> Path:
    """A planned campaign, all five posts approved; its folder."""
    folder = make_campaign(simple_toml())
    assert cli("plan", str(folder)).code == 0
    assert cli("approve", "testcamp", "--by", "ana").code == 0
    return folder


def _drop_last_call_and_change_a_text(folder: Path) -> None:
    toml = (folder / "campaign.toml").read_text()
    head, countdown, _last_call = toml.split("[[posts]]")
    (folder / "campaign.toml").write_text(
        head + "[[posts]]" + countdown.replace("Call {{ call_line }}", "Phone {{ call_line }}"))


def test_a_replan_that_cancels_approved_posts_asks_and_writes_nothing_without_a_yes(
        cli: Cli, env: dict[str, str], tmp_path: Path, approved: Path) -> None:
    before = _posts(cli)
    _drop_last_call_and_change_a_text(approved)
    for answer in ("n\n", "\n", "\x04"):          # no, the default (no), Ctrl-D
        term = Terminal(env, tmp_path, "plan", str(approved))
        term.expect("This plan cancels 2 approved post(s) (4, 5) of testcamp: they are not in "
                    "the campaign file. Cancel them? [y/N]")
        term.type(answer)
        code, shown = term.finish()
        assert code == 1, shown
        assert "nothing was written" in shown and "aborted" not in shown
        assert "Traceback" not in shown and "planned testcamp" not in shown
        assert _posts(cli) == before        # not canceled, and no text changed either
    term = Terminal(env, tmp_path, "plan", str(approved))   # and now: yes
    term.expect("Cancel them? [y/N]")
    term.type("y\n")
    code, shown = term.finish()
    assert code == 0, shown
    assert "3 approved post(s) changed and back to draft, 2 removed" in shown
    states = [st for st, _ in _posts(cli)]
    assert states == ["draft"] * 3 + ["canceled"] * 2


def test_cancel_of_a_whole_campaign_asks_on_a_terminal(
        cli: Cli, env: dict[str, str], tmp_path: Path, approved: Path) -> None:
    before = _posts(cli)
    term = Terminal(env, tmp_path, "cancel", "testcamp")
    term.expect("Cancel every pending post of testcamp: 5 post(s), 5 of them approved? [y/N]")
    term.type("n\n")
    code, shown = term.finish()
    assert code == 1 and "nothing was written" in shown and "canceled" not in shown
    assert _posts(cli) == before
    term = Terminal(env, tmp_path, "cancel", "testcamp")
    term.expect("[y/N]")
    term.type("y\n")
    code, shown = term.finish()
    assert code == 0 and "canceled 5 post(s)" in shown
    assert {st for st, _ in _posts(cli)} == {"canceled"}


@pytest.mark.parametrize("args", [("cancel", "testcamp"), ("users", "add", "Ana", "--role", "admin")],
                         ids=" ".join)
def test_ctrl_c_at_a_question_writes_nothing_and_exits_130(
        cli: Cli, env: dict[str, str], tmp_path: Path, approved: Path,
        args: tuple[str, ...]) -> None:
    """Ctrl-C (SIGINT, what the terminal sends) at a question: one line, exit 130 as
    a shell counts an interrupt, nothing written; no "aborted", no traceback."""
    before = _posts(cli)
    term = Terminal(env, tmp_path, *args)
    term.expect("[y/N]" if args[0] == "cancel" else "password:")
    term.interrupt()
    code, shown = term.finish()
    assert code == 130, shown
    said = [line for line in shown.splitlines() if line.strip()]
    assert said[-1] == "interrupted; nothing was written", shown
    assert "Traceback" not in shown and "aborted" not in shown.lower()
    assert _posts(cli) == before
    assert cli("users", "list").out.startswith("nobody may log in yet")
