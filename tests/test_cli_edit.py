"""`tminus edit POST [--text TEXT | --editor]`, point by point against issue 13: one
queued or draft post changed; checked like any post; back to draft with the
difference shown; approval needed again; `--editor` runs $VISUAL or $EDITOR (here a
script standing in for the person). The re-plan conflict is in test_cli_dashboard.py
and test_edit.py (the service the dashboard calls too)."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CampaignFactory, CliResult, simple_toml
from tests.test_cli import _one_line_error

Cli = Callable[..., CliResult]


def _editor(tmp_path: Path, name: str, body: str) -> str:
    """An executable that edits the file it is given as a person would: `body` is
    Python with `text` (the file's text) to change, and `path`."""
    script = tmp_path / name
    script.write_text(f"#!{sys.executable}\nimport sys, pathlib\npath = pathlib.Path(sys.argv[1])\n"
                      f"text = path.read_text()\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _posts(cli: Cli) -> list[dict[str, object]]:
    return list(json.loads(cli("list", "--json").out))


@pytest.fixture
def queued(cli: Cli, make_campaign: CampaignFactory) -> int:
    """A planned campaign, every post approved; the id of the first."""
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    assert cli("approve", "testcamp", "--by", "Ana").code == 0
    first = _posts(cli)[0]
    assert first["state"] == "queued"
    return int(str(first["id"]))


def test_an_edit_of_a_queued_post_shows_the_difference_and_needs_approval_again(
        cli: Cli, queued: int) -> None:
    old = str(_posts(cli)[0]["text"])
    r = cli("edit", str(queued), "--text", "Call 202-555-0100 tonight. #TestTag", "--by", "Ben")
    assert r.code == 0, r.err
    assert f"  -{old}" in r.out and "  +Call 202-555-0100 tonight. #TestTag" in r.out
    assert (f"post {queued} is draft (it was queued: back to draft), 35/280 weighted chars; "
            f"approve it again with `tminus approve testcamp --post {queued} --by NAME`") in r.out
    post = _posts(cli)[0]
    assert post["state"] == "draft" and post["text"] == "Call 202-555-0100 tonight. #TestTag"
    log = cli("log", str(queued)).out
    assert "queued → draft" in log and "edited by Ben; approve it again" in log
    assert str(queued) not in [str(p["id"]) for p in json.loads(
        cli("list", "--json", "--state", "queued").out)]
    assert cli("approve", "testcamp", "--post", str(queued), "--by", "Ana").code == 0
    assert _posts(cli)[0]["state"] == "queued"


def test_an_edit_is_checked_like_any_post_and_a_refused_one_writes_nothing(
        cli: Cli, queued: int) -> None:
    before = cli("log", str(queued), "--json").out
    other = str(_posts(cli)[1]["text"])
    _one_line_error(cli("edit", str(queued), "--text", "x" * 281),
                    "--text is 281 weighted chars, over dryrun's limit of 280")
    _one_line_error(cli("edit", str(queued), "--text", other.upper()), "the same text is already post")
    _one_line_error(cli("edit", str(queued), "--text", "Call\u200b now"), "--text")
    _one_line_error(cli("edit", str(queued), "--text", "   "), "--text is empty")
    assert cli("log", str(queued), "--json").out == before      # nothing written
    # a link glued to the campaign's hashtag: a warning, as `validate` gives it
    r = cli("edit", str(queued), "--text", "Sign at https://example.org/owl#TestTag")
    assert r.code == 0, r.err
    assert ("warning: the link https://example.org/owl runs into #TestTag: a platform links "
            "\"https://example.org/owl#TestTag\" as one address") in r.out
    assert "warning:" not in cli("edit", str(queued), "--text",
                                 "Sign at https://example.org/owl #TestTag").out


def test_only_a_draft_or_queued_post_can_be_edited_and_the_editor_is_not_opened(
        cli: Cli, queued: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("cancel", "--post", str(queued)).code == 0
    opened = tmp_path / "opened"
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "ed", f"pathlib.Path({str(opened)!r}).touch()"))
    monkeypatch.delenv("VISUAL", raising=False)
    _one_line_error(cli("edit", str(queued), "--editor"),
                    f"post {queued} is canceled; only a draft or queued post can be edited")
    assert not opened.exists()
    _one_line_error(cli("edit", str(queued), "--text", "x"), "is canceled")
    # an id no database holds is a usage mistake, never a traceback
    for wrong in ("99999999999999999999", "0"):
        r = cli("edit", wrong, "--text", "x")
        assert r.code == 2 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_editor_runs_visual_or_editor_on_the_posts_text(
        cli: Cli, queued: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tmp_path / "seen.txt"
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "editor", "raise SystemExit('EDITOR is not used')"))
    monkeypatch.setenv("VISUAL", _editor(
        tmp_path, "visual", f"pathlib.Path({str(seen)!r}).write_text(text)\n"
        "path.write_text('Edited in the editor.\\nCall 202-555-0100. #TestTag\\n')"))
    old = str(_posts(cli)[0]["text"])
    r = cli("edit", str(queued), "--editor", "--by", "Ben")
    assert r.code == 0, r.err
    assert seen.read_text() == old + "\n"                   # the editor got the text as it is
    assert "  +Edited in the editor." in r.out and "  +Call 202-555-0100. #TestTag" in r.out
    assert _posts(cli)[0]["text"] == "Edited in the editor.\nCall 202-555-0100. #TestTag"


def test_an_editor_that_changes_nothing_or_fails_writes_nothing(
        cli: Cli, queued: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    before = cli("log", str(queued), "--json").out
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "quit", "pass"))       # closed unsaved
    r = cli("edit", str(queued), "--editor")
    assert r.code == 0 and "no change" in r.out and "nothing was written" in r.out
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "same", "path.write_text(text)"))  # saved as is
    assert "no change" in cli("edit", str(queued), "--editor").out
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "crash", "raise SystemExit(3)"))
    r = cli("edit", str(queued), "--editor")
    _one_line_error(r, "crash: Editing failed", "nothing was written")
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "long", "path.write_text('x' * 300)"))
    _one_line_error(cli("edit", str(queued), "--editor"), "over dryrun's limit of 280")
    assert cli("log", str(queued), "--json").out == before


@pytest.mark.parametrize("columns", ["80", "200"])
def test_the_difference_is_never_cut_or_broken_at_any_width(
        cli: Cli, queued: int, monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    text = ("Call (202) 456 1111 tonight and say the Owl must stay: "
            "https://example.org/keep-the-owl/comments-close-on-friday-at-midnight #TestTag")
    r = cli("edit", str(queued), "--text", text)
    assert r.code == 0, r.err
    assert f"  +{text}" in r.out.splitlines()            # one whole line, however wide
