"""The commands the dashboard shares with the terminal: pause and resume, edit (with
--text and with $EDITOR), and the people who log in — run in-process."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from tests.conftest import CampaignFactory, CliResult
from tests.test_cli import _one_line_error, _planned

Cli = Callable[..., CliResult]


def _first_draft(cli: Cli) -> dict[str, object]:
    rows = json.loads(cli("preview", "testcamp", "--format", "json").out)[0]["rows"]
    return next(r for r in rows if r["state"] == "draft")


def test_pause_and_resume_everything_and_status_shows_it(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    _planned(cli, make_campaign)
    assert cli("approve", "testcamp", "--by", "Ana").code == 0
    r = cli("pause", "--all", "--reason", "news broke", "--by", "Ana")
    assert r.code == 0, r.err
    assert "paused everything: 5 queued post(s) wait until `tminus resume --all`" in r.out
    again = cli("pause", "--all", "--reason", "again", "--by", "Ben")
    assert "was already paused" in again.out and "by Ana: news broke" in again.out
    st = cli("status")
    assert "everything paused since" in st.out and "by Ana: news broke" in st.out
    assert "Ana: paused everything: news broke" in st.out       # the activity log
    r = cli("resume", "--all", "--by", "Ben")
    assert r.code == 0, r.err
    assert "resumed everything" in r.out and "going out now: 0; later at their time: 5" in r.out
    assert "paused" not in cli("status").out.split("latest:")[0]
    _one_line_error(cli("resume", "--all"), "everything is not paused; nothing is paused")
    _one_line_error(cli("pause", "--reason", "x"), "name a campaign, or give --account NAME or --all")
    _one_line_error(cli("pause", "testcamp"), "--reason is needed")
    _one_line_error(cli("pause", "--account", "nobody", "--reason", "x"), "no account 'nobody'")


def test_edit_with_text_and_with_the_editor(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _planned(cli, make_campaign)
    post = _first_draft(cli)
    r = cli("edit", str(post["id"]), "--text", "Call now. #TestTag", "--by", "Ben")
    assert r.code == 0, r.err
    assert "+Call now. #TestTag" in r.out and f"post {post['id']} is draft, 18/280" in r.out
    log = cli("log", str(post["id"])).out
    assert "edited by Ben; approve it again" in log and "Ben: edited by Ben" not in log
    monkeypatch.setenv("EDITOR", "sed -i s/now/tonight/")
    monkeypatch.delenv("VISUAL", raising=False)
    r = cli("edit", str(post["id"]), "--editor", "--by", "Ben")
    assert r.code == 0, r.err
    assert "-Call now. #TestTag" in r.out and "+Call tonight. #TestTag" in r.out
    _one_line_error(cli("edit", str(post["id"]), "--text", "x" * 300),
                    "--text is 300 weighted chars, over dryrun's limit of 280")
    _one_line_error(cli("edit", str(post["id"])), "give exactly one of --text TEXT, --editor")
    _one_line_error(cli("edit", "999", "--text", "x"), "no post 999")


def test_plan_reports_a_conflict_with_an_edit_and_edit_settles_it(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = _planned(cli, make_campaign)
    rows = json.loads(cli("preview", "testcamp", "--format", "json").out)[0]["rows"]
    last_call = next(r for r in rows if r["text"].startswith("Last call from org"))
    assert cli("edit", str(last_call["id"]), "--text", "Last call! #TestTag", "--by", "Ben").code == 0
    toml = (folder / "campaign.toml").read_text().replace("Last call from", "Final call from")
    (folder / "campaign.toml").write_text(toml)
    r = cli("plan", str(folder))
    assert f"post {last_call['id']} was edited by a person and the campaign file changed it too" in r.out
    assert "+Final call from org: 2 hours. #TestTag" in r.out
    r = cli("edit", str(last_call["id"]), "--use-file", "--by", "Ben")
    assert r.code == 0 and "+Final call from org" in r.out
    assert "was edited by a person" not in cli("plan", str(folder)).out


def test_users_add_list_remove(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "upgrade").code == 0
    assert cli("users", "list").out == ("nobody may log in yet: add the first admin with "
                                        "`tminus users add NAME --role admin`\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    r = cli("users", "add", "Ana Ruiz", "--role", "admin", "--by", "setup")
    assert r.code == 0, r.err
    assert "added Ana Ruiz as admin" in r.out
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    _one_line_error(cli("users", "add", "Ben", "--role", "editor"),
                    "the password has 5 characters; use at least 8")
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough pass\n"))
    _one_line_error(cli("users", "add", "Ben", "--role", "boss"),
                    "--role 'boss' is not a role; roles are viewer, editor, approver, admin")
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough pass\n"))
    _one_line_error(cli("users", "add", "ana ruiz", "--role", "viewer"), "'ana ruiz' already exists")
    listed = cli("users", "list")
    assert "Ana Ruiz" in listed.out and "admin" in listed.out and "1 person(s)" in listed.out
    assert "correct horse" not in listed.out
    _one_line_error(cli("users", "remove", "Ana Ruiz"), "Ana Ruiz is the last admin")
    _one_line_error(cli("users", "remove", "Nobody"), "NAME 'Nobody' is not a person here")


def test_users_role_changes_a_role_but_keeps_the_last_admin(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, role in (("Ana Ruiz", "admin"), ("Ben", "viewer")):
        monkeypatch.setattr(sys, "stdin", io.StringIO("long enough pass\n"))
        assert cli("users", "add", name, "--role", role).code == 0
    r = cli("users", "role", "ben", "approver", "--by", "Ana Ruiz")
    assert r.code == 0 and "Ben is now an approver" in r.out, r.err
    assert "Ana Ruiz: made Ben an approver (was a viewer)" in cli("status").out
    _one_line_error(cli("users", "role", "Ana Ruiz", "editor"),
                    "Ana Ruiz is the last admin and stays one; make another person admin first")
    _one_line_error(cli("users", "role", "Ben", "boss"),
                    "ROLE 'boss' is not a role; roles are viewer, editor, approver, admin")
    _one_line_error(cli("users", "role", "Nobody", "viewer"), "NAME 'Nobody' is not a person here")
    assert cli("users", "role", "Ben", "admin").code == 0
    assert cli("users", "role", "Ana Ruiz", "editor").code == 0       # Ben is an admin now
    listed = cli("users", "list").out
    assert [ln.split()[:3] for ln in listed.splitlines()[:2]] == [["Ana", "Ruiz", "editor"],
                                                                   ["Ben", "admin", "added"]]


def test_accounts_resume_is_in_the_activity_log_with_who(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    from scheduler.db import make_engine, session
    from scheduler.models import Account
    _planned(cli, make_campaign)
    r = cli("accounts", "resume", "org", "--by", "Ana")
    assert r.code == 0 and "account org was not paused or rate limited; nothing changed" in r.out
    engine = make_engine(f"sqlite:///{tmp_path}/tminus.db")
    with session(engine) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        acc.paused_reason, acc.paused_at = "the platform refused the login (401)", datetime.now(UTC)
        s.add(acc)
    engine.dispose()
    r = cli("accounts", "resume", "org", "--by", "Ana")
    assert r.code == 0 and "account org resumed (it was paused" in r.out, r.err
    st = cli("status").out
    assert "Ana: resumed account org (paused" in st and "refused the login (401))" in st
    assert "account org paused" not in st


def test_users_password_sets_a_new_one_and_ends_the_old_logins(
        cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The last admin who forgot the password can be given a new one (removing and
    adding them is refused for the last admin); the old password stops working and
    every login made with it ends."""
    from scheduler.db import make_engine
    from scheduler.service.people import LoginRefused, log_in, session_person
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    assert cli("users", "add", "Ana Ruiz", "--role", "admin").code == 0
    engine = make_engine(f"sqlite:///{tmp_path}/tminus.db")
    now = datetime.now(UTC)
    old = log_in(engine, name="Ana Ruiz", password="correct horse battery", address="a", now=now)
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    _one_line_error(cli("users", "password", "Ana Ruiz"),
                    "the password has 5 characters; use at least 8")
    assert session_person(engine, old.token, now=now) is not None     # nothing changed
    monkeypatch.setattr(sys, "stdin", io.StringIO("a whole new phrase\n"))
    r = cli("users", "password", "ana ruiz", "--by", "it desk")
    assert r.code == 0 and "new password set for Ana Ruiz" in r.out, r.err
    assert "a whole new phrase" not in r.out + r.err
    assert session_person(engine, old.token, now=now) is None        # logged out
    with pytest.raises(LoginRefused):
        log_in(engine, name="Ana Ruiz", password="correct horse battery", address="a", now=now)
    assert log_in(engine, name="Ana Ruiz", password="a whole new phrase", address="a", now=now)
    assert "it desk: set a new password for Ana Ruiz" in cli("status").out
    monkeypatch.setattr(sys, "stdin", io.StringIO("a whole new phrase\n"))
    _one_line_error(cli("users", "password", "Nobody"), "NAME 'Nobody' is not a person here")
    engine.dispose()


@pytest.mark.parametrize("args, fragment", [
    (["--port", "99999"], "--port 99999: choose a port from 1024 to 65535"),
    (["--host", "example..org", "--port", "0"], "--port 0: choose a port"),
    # a typo that fails before any DNS lookup (an empty label)
    (["--host", "example..org"], "--host example..org: not an address of this "
     "machine"),
])
def test_web_with_a_wrong_port_or_host_is_one_line(
        cli: Cli, monkeypatch: pytest.MonkeyPatch, args: list[str], fragment: str) -> None:
    """Not uvicorn's log lines and exit 3, nor an OverflowError traceback."""
    _someone(cli, monkeypatch)
    r = cli("web", *args)
    _one_line_error(r, fragment)
    assert "dashboard on" not in r.out                       # it never said it was up


def test_web_on_a_port_in_use_is_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second `tminus web` (or `make web-demo` running) on the same port."""
    _someone(cli, monkeypatch)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli("web", "--port", str(port))
    _one_line_error(r, f"--port {port}: cannot listen on 127.0.0.1:{port}", "another `tminus web`")
    assert "dashboard on" not in r.out


def _someone(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    assert cli("users", "add", "Ana", "--role", "admin").code == 0


def test_web_serves_on_the_socket_it_bound(tmp_path: Path) -> None:
    """The real command, as a process: it binds the port itself, says so, answers
    /healthz, and stops on SIGTERM."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TMINUS_DATABASE_URL": f"sqlite:///{tmp_path}/tminus.db"}
    proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "web", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:         # the line comes once the socket is bound
            if "dashboard on" in line:
                assert f"http://127.0.0.1:{port}/" in line
                break
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    assert r.read() == b"ok"
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"tminus web exited with {proc.returncode}")
                time.sleep(0.05)         # the server's start-up, not a timed expectation
        else:
            pytest.fail("tminus web never answered /healthz")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
