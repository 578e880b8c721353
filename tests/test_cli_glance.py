"""`tminus status`, `list` and `log` read at a glance (issue 13): one line per active
campaign, times in the campaign's timezone (UTC on request), lines that fit the
terminal — 80 and 200 columns, piped and on a real terminal (a pty) — texts cut at a
word and never inside a number or a link, and JSON for scripts."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len

from content.entities import shorten
from tests.conftest import CampaignFactory, CliResult, simple_toml

Cli = Callable[..., CliResult]
PHONE_TEXT = "202-456-1111: 71 hours left to call (202) 456 1111 about https://example.org/keep-the-owl now"


def _soon(hours: float) -> str:
    """A deadline `hours` from the real clock (the CLI reads the real clock)."""
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def _planned(cli: Cli, make_campaign: CampaignFactory, **kw: str) -> Path:
    folder = make_campaign(simple_toml(**kw))
    r = cli("plan", str(folder))
    assert r.code == 0, r.err
    return folder


@pytest.mark.parametrize("width", [40, 80, 200])
def test_shorten_cuts_at_a_word_never_inside_a_number_or_link(width: int) -> None:
    cut = shorten(PHONE_TEXT, width)
    assert cell_len(cut) <= width
    if width >= len(PHONE_TEXT):
        assert cut == PHONE_TEXT
        return
    assert cut.endswith("…")
    kept = cut.removesuffix("…").split()
    assert kept == PHONE_TEXT.split()[:len(kept)]        # whole words only
    assert "7…" not in cut and "456…" not in cut
    # the phone number written with spaces is one piece: all of it, or none of it
    assert ("(202)" in cut) == ("(202) 456 1111" in cut)
    assert ("https://" in cut) == ("https://example.org/keep-the-owl" in cut)


def _shorten_word_by_word(text: str, width: int, measure: Callable[[str], int]) -> str:
    """`shorten` as it first was: every cut measured in turn, the last that fits kept."""
    from content.entities import _NUMBER, ELLIPSIS, find_urls
    line = " ".join(text.split())
    if measure(line) <= width:
        return line
    inside: set[int] = set()
    for start, end in [*find_urls(line), *((m.start(), m.end()) for m in _NUMBER.finditer(line))]:
        inside.update(range(start + 1, end))
    best = ""
    for at, ch in enumerate(line):
        if ch != " " or at in inside:
            continue
        head = line[:at].rstrip()
        if measure(head + ELLIPSIS) > width:
            break
        best = head
    return best + ELLIPSIS if best else ELLIPSIS[:max(0, width)]


def test_shorten_finds_by_halves_the_cut_a_word_by_word_search_finds() -> None:
    texts = [PHONE_TEXT, "4 días. 1 indulto. @POTUS, le quedan 4 días 🔥🔥 y 3 horas: https://x.org/a b",
             "夜明け前 の 電話 🇺🇸 を かけて ください 👩‍👩‍👧 家族 ❤️ 202-456-1111 です",
             "one", "a b", "x" * 50 + " y"]
    for text in texts:
        for width in range(0, 120):
            for measure in (len, cell_len):
                assert shorten(text, width, measure) == _shorten_word_by_word(text, width, measure), \
                    (text, width, measure)


def test_shorten_leaves_a_fitting_text_alone_and_never_shows_half_a_word() -> None:
    assert shorten("Call now.\n#Tag", 80) == "Call now. #Tag"
    assert shorten("https://example.org/a-very-long-address", 10) == "…"


def test_status_opens_with_one_line_per_campaign_in_local_time(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _planned(cli, make_campaign)
    cli("approve", "testcamp", "--by", "ana")
    for columns in ("80", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        r = cli("status")
        assert r.code == 0, r.err
        first = r.out.splitlines()[0]
        assert first.startswith("Test campaign (testcamp) — ") and " left · 5 queued · " in first
        assert "nothing needs you" in first and "next " in first and " EST" in first
        assert "no daemon running" in r.out and "queued 5" in r.out
        for line in r.out.splitlines()[1:]:
            if line.startswith("  #"):           # the next posts fit the terminal
                assert cell_len(line) <= int(columns), line
                # days away: "in 3d 4h", as a person rounds it, no seconds
                assert re.search(r" in \d+d( \d+h)? ", line), line
                assert not re.search(r" in [\dhdm ]*\d+s ", line), line
    r = cli("status", "--utc")
    assert " UTC" in r.out.splitlines()[0] and " EST" not in r.out


def test_status_flags_drafts_due_soon_credentials_and_no_daemon(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = """
        [accounts.org]
        platform = "dryrun"

        [accounts.partner]
        platform = "mastodon"
        credentials = "PARTNER"
    """
    # only posts placed from the deadline: a daily 09:00 post would fall inside the next three
    # hours at some times of day and be a third draft due soon (CI ran at such a time)
    last_call = """
        [[posts]]
        key = "last-call"
        text = "Last call from {{ account }}: {{ hours_left }} hours. {{ hashtags }}"
        accounts = ["org", "partner"]
        schedule = { at = "T-2h" }
    """
    _planned(cli, make_campaign, deadline=_soon(3), accounts=accounts, posts=last_call)
    monkeypatch.setenv("TMINUS_PARTNER_INSTANCE", "https://mastodon.example")
    monkeypatch.delenv("TMINUS_PARTNER_ACCESS_TOKEN", raising=False)
    r = cli("status")
    assert r.code == 0, r.err
    assert "2 need(s) you" in r.out.splitlines()[0]
    assert "draft #1 on org is not approved; due in" in r.out
    assert "`tminus approve testcamp --post 1 --by NAME`" in r.out
    assert ("account partner (mastodon) has no credentials: TMINUS_PARTNER_ACCESS_TOKEN not set"
            in r.out)
    assert "https://mastodon.example" not in r.out       # names, never values
    monkeypatch.setenv("TMINUS_PARTNER_ACCESS_TOKEN", "secret-token-value")
    cli("approve", "testcamp", "--by", "ana")
    r = cli("status")
    assert "account partner (mastodon) was never verified" in r.out
    assert "secret-token-value" not in r.out
    assert "no daemon running and 2 post(s) fall due within 6h" in r.out
    data = json.loads(cli("status", "--json").out)
    assert data["campaigns"][0]["head"]["slug"] == "testcamp"
    assert data["not_ready"][0]["missing"] == [] and data["unattended"] == 2
    assert "secret-token-value" not in json.dumps(data)


@pytest.mark.parametrize("columns", [80, 200])
def test_list_is_one_line_per_post_fitting_the_terminal(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch,
        columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    _planned(cli, make_campaign)
    r = cli("list")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["id", "campaign", "due", "(local)", "T-minus", "account", "state",
                                "text"]
    assert len(lines) == 1 + 5 + 1 and lines[-1] == "5 post(s)"
    assert all(cell_len(line) <= columns for line in lines)
    row = lines[1]
    assert row.split()[:2] == ["1", "testcamp"] and " EST " in row and "T-2d3h" in row
    if columns == 80:
        assert row.endswith("…")
    else:
        assert "Call 202-555-0100. #TestTag" in row
    for line in lines[1:-1]:              # a cut never falls inside the phone number
        assert "202-" not in line or "202-555-0100" in line
    full = cli("list", "-v").out
    assert "    2 days 3 hours left. Call 202-555-0100. #TestTag" in full
    utc = cli("list", "--utc").out
    assert "due (UTC)" in utc and " 14:00 UTC " in utc and " EST " not in utc
    data = json.loads(cli("list", "--json", "--state", "draft").out)
    assert len(data) == 5 and data[0]["text"].startswith("2 days 3 hours left")


def test_log_says_the_actor_once_in_local_time(cli: Cli, make_campaign: CampaignFactory) -> None:
    _planned(cli, make_campaign)
    cli("approve", "testcamp", "--by", "Ana Ruiz", "--post", "1")
    r = cli("log", "1")
    assert "approved by Ana Ruiz" in r.out and "Ana Ruiz: approved by Ana Ruiz" not in r.out
    assert "due Sun 18 Jan 2099 09:00:00 EST" in r.out
    assert "due Sun 18 Jan 2099 14:00:00 UTC" in cli("log", "1", "--utc").out
    data = json.loads(cli("log", "1", "--json").out)
    assert [e["to_state"] for e in data["events"]] == ["draft", "queued"]


def test_list_on_a_real_terminal_fits_its_width(
        tmp_path: Path, make_campaign: CampaignFactory) -> None:
    """On a pty of 80 columns, with no COLUMNS: rich asks the terminal."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env |= {"TMINUS_DATABASE_URL": f"sqlite:///{tmp_path}/t.db", "TERM": "xterm-256color"}
    tminus = [sys.executable, "-m", "scheduler.cli"]
    folder = make_campaign(simple_toml())
    subprocess.run([*tminus, "plan", str(folder)], env=env, check=True, capture_output=True,
                   timeout=60)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([*tminus, "list"], env=env, stdin=follower, stdout=follower,
                            stderr=follower, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:                       # the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    import re
    text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())
    lines = [ln for ln in text.replace("\r", "").splitlines() if ln]
    assert lines[-1] == "5 post(s)" and len(lines) == 7
    assert all(cell_len(ln) <= 80 for ln in lines), lines


def test_rehearse_at_80_columns_never_cuts_inside_a_number(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "call"
        text = "202-456-1111: {{ hours_left }} hours left to call about the pardon. {{ hashtags }}"
        accounts = ["org"]
        schedule = { at = ["T-71h", "T-7h"] }
    """))
    r = cli("rehearse", str(folder))
    assert r.code == 0, r.err
    rows = [ln for ln in r.out.splitlines() if "org (dryrun)" in ln]
    assert len(rows) == 2 and all(cell_len(ln) <= 80 for ln in rows)
    for row in rows:
        text = row.split("org (dryrun)", 1)[1].strip()
        assert text.startswith("202-456-1111: 71 hours") or text.startswith("202-456-1111: 7 hours") \
            or text == "…", row
        assert "7…" not in text and "1…" not in text


@pytest.mark.parametrize("columns", [80, 200])
def test_preview_fits_the_terminal_and_shows_every_word_of_every_post(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch,
        columns: int) -> None:
    """At 80 columns each post is a block (its facts, then its whole text wrapped at
    words); at 200 the table. Either way no line is wider than the terminal and every
    word of the text, the phone number and the link among them, is there whole."""
    monkeypatch.setenv("COLUMNS", str(columns))
    folder = make_campaign(simple_toml(posts=f"""
        [[posts]]
        key = "call"
        text = "{PHONE_TEXT} {{{{ hashtags }}}}"
        accounts = ["org"]
        schedule = {{ at = "T-2d" }}
    """))
    r = cli("preview", str(folder))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert all(cell_len(line) <= columns for line in lines)
    assert ("┃ text" in r.out) == (columns == 200)        # the table only where it fits
    words = " ".join(line.strip(" │") for line in lines).split()
    for word in PHONE_TEXT.split():
        assert word in words, word                          # never cut inside
    assert "https://example.org/keep-the-owl" in words


@pytest.mark.parametrize("columns", [80, 110])
def test_preview_prints_the_approve_command_on_one_line_to_copy(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch,
        columns: int) -> None:
    """The approve command at the end of the preview is ~110 characters: at 80 (blocks)
    and 110 columns (the table) it is one line, never broken inside, so the line a
    person copies is the whole command, and running it approves; every other line
    fits the terminal."""
    monkeypatch.setenv("COLUMNS", str(columns))
    _planned(cli, make_campaign, deadline=_soon(72))
    r = cli("preview", "testcamp")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    command = [line for line in lines if line.strip().startswith("tminus approve")]
    assert len(command) == 1 and cell_len(command[0]) > columns
    assert all(cell_len(line) <= columns for line in lines if line not in command)
    args = command[0].split()
    assert args[:2] == ["tminus", "approve"] and len(args[args.index("--expect") + 1]) == 64
    args[args.index("YOUR-NAME")] = "Ana"
    r = cli(*args[1:])
    assert r.code == 0 and "approved" in r.out, r.err


def test_preview_of_a_planned_folder_says_it_is_not_the_queue(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    """`tminus plan parks` then `tminus preview parks` (the folder, not the slug): the
    preview is of the folder as it is, with no states and no digest. Before planning
    it says "Not planned"; once the slug is planned it must not — it says the campaign
    is planned and how to see the queue and the digest to approve."""
    folder = make_campaign(simple_toml(deadline=_soon(72)))
    before = cli("preview", str(folder))
    assert before.code == 0 and "Not planned: nothing shown here is queued" in before.out
    assert not Path("tminus.db").exists()                  # previewing made no database
    assert cli("plan", str(folder)).code == 0
    after = cli("preview", str(folder))
    assert after.code == 0, after.err
    said = " ".join(after.out.split())
    assert "Not planned" not in said and "--expect" not in said
    assert ("This is the folder as it is now, not the queue. testcamp is planned: "
            "`tminus preview testcamp` shows its posts' states and the digest to approve") in said
    assert json.loads(cli("preview", str(folder), "-f", "json").out)[0]["in_queue"] is True
