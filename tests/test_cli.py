"""The command line, run in-process: each command, its output, and one-line errors
with exit code 2 for user mistakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import CampaignFactory, CliResult, simple_toml

Cli = Callable[..., CliResult]


def _planned(cli: Cli, make_campaign: CampaignFactory) -> Path:
    folder = make_campaign(simple_toml())
    r = cli("plan", str(folder))
    assert r.code == 0, r.err
    return folder


def _one_line_error(r: CliResult, *fragments: str) -> None:
    assert r.code == 2
    assert "Traceback" not in r.out + r.err
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:")
    for f in fragments:
        assert f in r.err, (f, r.err)


def test_count_json_has_the_documented_shape(cli: Cli) -> None:
    r = cli("count", "--json", "4 days. 1 action. https://example.org/pardon #POTUSpardon")
    assert r.code == 0
    data = json.loads(r.out)
    assert set(data) == {"x", "mastodon", "bluesky"}
    # 17 + 1 + 23 (the link) + 1 + 12 on X and Mastodon; Bluesky counts the link as written
    assert data["x"] == {"length": 54, "limit": 280, "ok": True}
    assert data["mastodon"] == {"length": 54, "limit": 500, "ok": True}
    assert data["bluesky"]["length"] == 17 + 1 + 26 + 1 + 12 and data["bluesky"]["limit"] == 300


def test_count_table_says_too_long(cli: Cli) -> None:
    r = cli("count", "é" * 290)
    assert r.code == 0
    x_line = next(ln for ln in r.out.splitlines() if ln.startswith("x "))
    assert "290" in x_line and "too long" in x_line
    assert "fits" in next(ln for ln in r.out.splitlines() if ln.startswith("mastodon"))


@pytest.mark.parametrize("args", [("-5 days",), ("--", "-5 days"), ("--json", "-5 days"),
                                  ("-5 days", "--json"), ("--json", "--", "-5 days")])
def test_count_takes_a_text_that_starts_with_a_dash(cli: Cli, args: tuple[str, ...]) -> None:
    r = cli("count", *args)
    assert r.code == 0, r.err
    if "--json" in args:
        assert json.loads(r.out)["x"] == {"length": 7, "limit": 280, "ok": True}
    else:
        assert next(ln for ln in r.out.splitlines() if ln.startswith("x ")).split()[1] == "7"


def test_count_after_a_double_dash_measures_even_an_option_name(cli: Cli) -> None:
    r = cli("count", "--", "--json")
    assert r.code == 0, r.err
    assert next(ln for ln in r.out.splitlines() if ln.startswith("x ")).split()[1] == "6"


def test_plan_then_list_preview_approve_log(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = _planned(cli, make_campaign)
    again = cli("plan", str(folder))
    assert "0 new" in again.out and "5 unchanged" in again.out

    listed = cli("list", "--state", "draft")
    assert "5 post(s)" in listed.out

    rows = json.loads(cli("preview", "testcamp", "--format", "json").out)[0]["rows"]
    assert len(rows) == 5
    assert {r["account"] for r in rows} == {"org", "partner"}
    assert all(r["t_minus"].startswith("T-") and r["limit"] == 280 for r in rows)
    assert rows[-1]["t_minus"] == "T-2h"

    first = rows[0]["id"]
    r = cli("approve", "testcamp", "--by", "Ana Ruiz", "--post", str(first))
    assert r.code == 0 and "approved 1" in r.out
    log = cli("log", str(first))
    assert "draft → queued" in log.out.replace("   ", " ") or "queued" in log.out
    assert "approved by Ana Ruiz" in log.out

    r = cli("cancel", "--post", str(rows[1]["id"]), "--by", "ben")
    assert r.code == 0 and "canceled 1" in r.out
    assert "1 post(s)" in cli("list", "--state", "canceled").out


def test_preview_html_is_a_page_with_every_post(cli: Cli, make_campaign: CampaignFactory,
                                                tmp_path: Path) -> None:
    _planned(cli, make_campaign)
    out = tmp_path / "preview.html"
    r = cli("preview", "testcamp", "--format", "html", "--output", str(out))
    assert r.code == 0
    page = out.read_text()

    class Texts(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.articles = 0
            self.title = ""
            self._in_title = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.articles += tag == "article"
            self._in_title = tag == "title"

        def handle_data(self, data: str) -> None:
            if self._in_title:
                self.title += data

    parsed = Texts()
    parsed.feed(page)
    assert parsed.articles == 5
    assert "Test campaign" in parsed.title
    assert "Call 202-555-0100" in page and "#TestTag" in page


def test_preview_escapes_html_in_post_text(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "markup"
        text = "<script>alert(1)</script> & more {{ hashtags }}"
        accounts = ["org"]
        schedule = { at = "T-1h" }
    """))
    r = cli("preview", str(folder), "--format", "html")
    assert r.code == 0
    assert "<script>alert" not in r.out and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in r.out


def test_preview_of_a_folder_does_not_plan_it(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml())
    r = cli("preview", str(folder), "--format", "json")
    assert r.code == 0 and len(json.loads(r.out)[0]["rows"]) == 5
    assert "no tminus database yet" in cli("list").err     # nothing planned, nothing made
    assert cli("db", "upgrade").code == 0
    assert "0 post(s)" in cli("list").out


def test_queue_add_one_off_post(cli: Cli, make_campaign: CampaignFactory) -> None:
    _planned(cli, make_campaign)
    r = cli("queue", "add", "--account", "org", "--at", "T-30m", "--by", "ana",
            "A one-off reminder #TestTag")
    assert r.code == 0, r.err
    assert "queued" in r.out
    rows = json.loads(cli("preview", "testcamp", "-f", "json").out)[0]["rows"]
    adhoc = [x for x in rows if x["text"] == "A one-off reminder #TestTag"]
    assert len(adhoc) == 1 and adhoc[0]["t_minus"] == "T-30m" and adhoc[0]["state"] == "queued"


@pytest.mark.parametrize("args, fragment", [
    (["--account", "nobody", "--at", "T-1h", "hi"], "--account 'nobody' is unknown"),
    # every form --at takes, with an example date-time of this campaign (a day before its deadline)
    (["--account", "org", "--at", "tomorrow", "hi"], "--at 'tomorrow' is not a time; write now, "
     "+10m, T-3h or a date-time like 2099-01-19T12:00 (local to the campaign without an offset)"),
    (["--account", "org", "--at", "T+1h", "hi"], "not before the deadline"),
    (["--account", "org", "--at", "T-1h", "x" * 300], "over dryrun's limit of 280"),
    (["--account", "org", "--at", "T-1h", "--expires", "soon", "hi"], "--expires"),
])
def test_queue_add_rejects_bad_input(cli: Cli, make_campaign: CampaignFactory,
                                     args: list[str], fragment: str) -> None:
    _planned(cli, make_campaign)
    r = cli("queue", "add", *args)
    _one_line_error(r, fragment)
    assert "5 post(s)" in cli("list").out          # nothing written


def test_queue_add_warns_as_validate_and_edit_do(cli: Cli, make_campaign: CampaignFactory) -> None:
    """A one-off post with a link glued to a hashtag, or without the campaign's hashtag,
    is queued with the warnings `validate` and `edit` give such a text, and they stay
    on the post (the preview shows them); a clean text gets none."""
    _planned(cli, make_campaign)
    r = cli("queue", "add", "--account", "org", "--at", "T-1h", "Sign https://example.org/a#TestTag")
    assert r.code == 0, r.err
    assert 'warning: the link https://example.org/a runs into #TestTag' in r.out
    r = cli("queue", "add", "--account", "org", "--at", "T-2h", "No tag in this one")
    assert r.code == 0 and "warning: none of the campaign's hashtags is in this post" in r.out
    r = cli("queue", "add", "--account", "org", "--at", "T-3h", "A clean one #TestTag")
    assert r.code == 0 and "warning" not in r.out
    rows = json.loads(cli("preview", "testcamp", "-f", "json").out)[0]["rows"]
    warned = {x["text"]: x["warnings"] for x in rows}
    assert warned["No tag in this one"] == ["none of the campaign's hashtags is in this post"]
    assert warned["A clean one #TestTag"] == []


def test_queue_add_refuses_a_duplicate(cli: Cli, make_campaign: CampaignFactory) -> None:
    _planned(cli, make_campaign)
    assert cli("queue", "add", "--account", "org", "--at", "T-1h", "same words").code == 0
    _one_line_error(cli("queue", "add", "--account", "org", "--at", "T-50m", "same words"),
                    "same text")


@pytest.mark.parametrize("args, fragment", [
    (["approve", "nope", "--by", "x"], "no campaign 'nope'"),
    (["approve", "testcamp", "--by", "x", "--post", "999"], "no post 999"),
    (["log", "424242"], "no post 424242"),
    (["list", "--state", "flying"], "unknown state flying"),
    (["preview", "testcamp", "--format", "pdf"], "--format 'pdf'"),
    (["review", "1", "--requeue"], "not review"),
    (["cancel"], "name a campaign"),
    (["accounts", "resume", "ghost"], "no account 'ghost'"),
])
def test_user_mistakes_are_one_line_errors(cli: Cli, make_campaign: CampaignFactory,
                                           args: list[str], fragment: str) -> None:
    _planned(cli, make_campaign)
    _one_line_error(cli(*args), fragment)


def test_validate_prints_warnings_and_ok(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "no-tag"
        text = "{{ time_left }} to go"
        accounts = ["org"]
        schedule = { at = "T-1h" }
    """))
    r = cli("validate", str(folder))
    assert r.code == 0
    assert "none of the campaign's hashtags" in r.out and "ok testcamp: 1 posts" in r.out


def test_validate_warns_when_the_schedule_exceeds_a_budget(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(accounts="""
        [accounts.org]
        platform = "x"
        credentials = "ORG_X"
        tier = "free"
    """, posts="""
        [[posts]]
        key = "hourly"
        text = "{{ hours_left }} hours left {{ hashtags }}"
        accounts = ["org"]
        schedule = { cron = "0 * * * *", from = "T-1d" }
    """))
    r = cli("validate", str(folder))
    assert r.code == 0
    assert "24 posts within 24 h" in r.out and "budget of 17 per 24 h (x free)" in r.out


def test_status_shows_next_posts_and_no_daemon(cli: Cli, make_campaign: CampaignFactory) -> None:
    _planned(cli, make_campaign)
    cli("approve", "testcamp", "--by", "ana")
    r = cli("status")
    assert r.code == 0
    assert "no daemon running" in r.out and "queued 5" in r.out and "next:" in r.out


def test_run_once_sends_nothing_early(cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    _planned(cli, make_campaign)
    cli("approve", "testcamp", "--by", "ana")
    r = cli("run", "--once", "--dry-run")
    assert r.code == 0 and "sent 0" in r.out
    assert not (tmp_path / "outbox.jsonl").exists()


def test_rehearse_reports_what_went_out(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml())
    r = cli("rehearse", str(folder))
    assert r.code == 0, r.err
    assert "5 sent, 0 expired, 0 after the deadline" in r.out


def test_a_text_is_shown_as_written_not_with_emoji_codes_replaced(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    # the platforms post ":fire:" as written; the table must not show a 🔥 instead
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "hot"
        text = "Call now :fire: :thumbs_up: 1:00:00 left {{ hashtags }}"
        accounts = ["org"]
        schedule = { at = "T-2h" }
    """))
    r = cli("rehearse", str(folder))
    assert r.code == 0, r.err
    assert "Call now :fire: :thumbs_up: 1:00:00 left" in r.out
    assert "\N{FIRE}" not in r.out and "\N{THUMBS UP SIGN}" not in r.out


def test_rehearse_the_example_campaign(cli: Cli) -> None:
    from tests.conftest import ROOT
    r = cli("rehearse", str(ROOT / "examples" / "potuspardon"))
    assert r.code == 0, r.err
    assert ", 0 after the deadline" in r.out and "0 expired" in r.out
    assert "#POTUSpardon" in r.out


def test_db_commands(cli: Cli) -> None:
    r = cli("db", "upgrade")
    assert r.code == 0 and "database at" in r.out
    r = cli("db", "current")
    newest = r.out.split("newest")[1].strip()
    assert r.out.startswith(f"database {newest}")


def test_accounts_check_names_the_missing_variable_not_a_value(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_campaign(simple_toml(accounts="""
        [accounts.org]
        platform = "mastodon"
        credentials = "ORG_M"
    """, posts="""
        [[posts]]
        key = "p"
        text = "hello {{ hashtags }}"
        accounts = ["org"]
        schedule = { at = "T-1h" }
    """))
    assert cli("plan", str(folder)).code == 0
    monkeypatch.setenv("TMINUS_ORG_M_INSTANCE", "http://127.0.0.1:9")
    r = cli("accounts", "check")
    assert r.code == 2
    assert "TMINUS_ORG_M_ACCESS_TOKEN is not set" in r.err
    assert "Traceback" not in r.err


def test_validate_caps_its_warnings_on_a_terminal_and_lists_every_one_in_json(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """30 posts whose schedules give no time: a terminal shows 20 warnings (the helper
    `queue import` uses) and how many more and how to see them; output to a file or a
    pipe, and `--json`, have all 30. `plan` caps them the same way."""
    import scheduler.cli as cli_module
    folder = make_campaign(simple_toml(posts="".join(f"""
        [[posts]]
        key = "too-late-{i}"
        text = "Post {i}: {{{{ time_left }}}} to go {{{{ hashtags }}}}"
        accounts = ["org"]
        schedule = {{ daily = "09:00", from = "T-1h" }}
    """ for i in range(1, 31))))
    no_time = "the schedule expands to no time before the deadline"
    more = (f"… and 10 more warning(s): `tminus validate {folder} --json` lists every one "
            f"(so does `tminus validate {folder} > warnings.txt`)")
    for terminal in (False, True):
        monkeypatch.setattr(cli_module, "_on_terminal", lambda *_, t=terminal: t)
        r = cli("validate", str(folder))
        assert r.code == 0 and "ok testcamp: 0 posts" in r.out
        warned = [ln for ln in r.out.splitlines() if ln.startswith("warning:")]
        assert len(warned) == (20 if terminal else 30) and all(no_time in w for w in warned)
        assert (more in r.out) == terminal
        data = json.loads(cli("validate", str(folder), "--json").out)
        assert len(data["warnings"]) == 30 and (data["slug"], data["posts"]) == ("testcamp", 0)
    r = cli("plan", str(folder))
    assert r.code == 0
    assert len([ln for ln in r.out.splitlines() if ln.startswith("warning:")]) == 20
    assert more in r.out
