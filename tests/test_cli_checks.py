"""Validation and confirmations as a comms person meets them (issue 13): everything
`plan` would refuse, warnings said once with local times, a link glued to the text
after it, a deadline offset the timezone does not have, and a yes before approved work
is canceled."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from content.render import Renderer
from tests.conftest import CampaignFactory, CliResult, simple_toml

Cli = Callable[..., CliResult]


def _error(r: CliResult, *fragments: str) -> None:
    assert r.code == 2, (r.out, r.err)
    assert "Traceback" not in r.out + r.err
    assert r.err.startswith("error:")
    for f in fragments:
        assert f in r.err, (f, r.err)


def _states(cli: Cli) -> list[str]:
    return sorted(p["state"] for p in json.loads(cli("list", "--json").out))


def test_a_campaign_without_posts_is_refused(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="\n"))
    for command in ("validate", "plan"):
        r = cli(command, str(folder))
        _error(r, "campaign.toml [posts]: there is no [[posts]] table", "tminus cancel")


def test_a_replan_that_cancels_approved_posts_asks_first(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml())
    assert cli("plan", str(folder)).code == 0
    cli("approve", "testcamp", "--by", "ana")
    toml = (folder / "campaign.toml").read_text()
    (folder / "campaign.toml").write_text(toml.split("[[posts]]")[0] + "[[posts]]"
                                          + toml.split("[[posts]]")[1])   # the last call gone
    r = cli("plan", str(folder))            # not a terminal: an error with the hint
    _error(r, "would cancel 2 approved post(s)", "--yes", "nothing was written")
    assert _states(cli) == ["queued"] * 5
    r = cli("plan", str(folder), "--yes")
    assert r.code == 0, r.err
    assert "2 removed" in r.out and _states(cli) == ["canceled"] * 2 + ["queued"] * 3


def test_cancel_of_a_whole_campaign_asks_first(cli: Cli, make_campaign: CampaignFactory) -> None:
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    cli("approve", "testcamp", "--by", "ana", "--post", "1")
    _error(cli("cancel", "testcamp"), "every pending post of testcamp: 5 post(s), 1 of them approved",
           "--yes")
    assert "canceled" not in _states(cli)
    assert cli("cancel", "--post", "2").out.strip() == "canceled 1 post(s)"   # by id: no question
    r = cli("cancel", "testcamp", "-y")
    assert r.code == 0 and "canceled 4 post(s)" in r.out


def test_truthful_counts_after_approved_posts_change(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml())
    cli("plan", str(folder))
    cli("approve", "testcamp", "--by", "ana")
    toml = (folder / "campaign.toml").read_text()
    (folder / "campaign.toml").write_text(toml.replace("Call {{ call_line }}", "Phone {{ call_line }}"))
    r = cli("plan", str(folder))
    assert r.code == 0, r.err
    assert ("planned testcamp: 0 new, 0 updated, 2 unchanged, 3 approved post(s) changed and "
            "back to draft") in r.out
    assert "removed" not in r.out and "already sent" not in r.out


def test_one_bad_template_is_one_error(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "daily"
        text = "{{ time_left }} left. {{ nope }}"
        accounts = ["org", "partner"]
        schedule = { daily = "09:00", from = "T-3d" }
    """))
    r = cli("validate", str(folder))
    assert r.code == 2
    problems = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert len(problems) == 1, r.err
    assert "undefined variable: nope" in problems[0] and "(the same for 6 posts)" in problems[0]


def test_a_warning_many_posts_share_is_said_once_in_local_time(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "daily"
        text = "{{ time_left }} left."
        accounts = ["org"]
        schedule = { daily = "09:00", from = "T-3d" }
    """))
    r = cli("validate", str(folder))
    assert r.code == 0, r.err
    warnings = [ln for ln in r.out.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1, r.out
    assert "org Sun 18 Jan 2099 09:00 EST and 2 more post(s):" in warnings[0]


def test_a_link_glued_to_a_hashtag_warns(cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "glued"
        text = "Sign: https://example.org/eastside{{ hashtags }}"
        accounts = ["org"]
        schedule = { at = "T-1h" }
    """))
    r = cli("validate", str(folder))
    assert r.code == 0, r.err
    assert ("the link https://example.org/eastside runs into #TestTag: a platform links "
            "\"https://example.org/eastside#TestTag\" as one address") in r.out


def test_a_block_tag_at_the_end_of_a_line_keeps_its_newline(tmp_path: Path) -> None:
    """The README's rule: a line of only block tags goes; a line of text keeps its
    newline, also when it ends in `{% endif %}` (Jinja's trim_blocks would glue the next
    line on: "…/eastside#SaveEastside")."""
    r = Renderer(tmp_path)
    template = ("{% if url %}\nSign: {{ url }}{% endif %}\n{{ tags }}\n"
                "{% for n in [1, 2] %}\n{{ n }}\n{% endfor %}\nend")
    text = r.render("t", {"url": "https://example.org/eastside", "tags": "#SaveEastside"},
                    source=template)
    assert text == "Sign: https://example.org/eastside\n#SaveEastside\n1\n2\nend"


def test_a_deadline_offset_the_timezone_does_not_have_warns(
        cli: Cli, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(deadline="2099-01-20T12:00:00-06:00"))
    r = cli("validate", str(folder))
    assert r.code == 0, r.err
    assert ("the offset -06:00 is not America/New_York's at that instant (-05:00, EST): the "
            "deadline is 2099-01-20 13:00 EST") in r.out
    assert "write 2099-01-20T12:00:00-05:00" in r.out


def test_validate_refuses_what_plan_would_with_the_database(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    other = simple_toml(slug="other", accounts="""
        [accounts.org]
        platform = "mastodon"
        credentials = "ORG"

        [accounts.partner]
        platform = "dryrun"
    """)
    folder = make_campaign(other)
    r = cli("validate", str(folder))
    assert r.code == 0 and "no database yet" in r.out
    assert not (tmp_path / "tminus.db").exists()          # validate creates no database
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    r = cli("validate", str(folder))
    _error(r, "[accounts.org.platform]: account 'org' is already known as a dryrun account")
    _error(cli("plan", str(folder)), "already known as a dryrun account")


def test_approve_and_rehearse_say_which_credentials_are_missing(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMINUS_ORG_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("TMINUS_ORG_INSTANCE", "https://mastodon.example")
    folder = make_campaign(simple_toml(accounts="""
        [accounts.org]
        platform = "mastodon"
        credentials = "ORG"

        [accounts.partner]
        platform = "dryrun"
    """))
    r = cli("rehearse", str(folder))
    assert r.code == 0, r.err
    assert "note: account org has no credentials (TMINUS_ORG_ACCESS_TOKEN not set)" in r.out
    cli("plan", str(folder))
    r = cli("approve", "testcamp", "--by", "ana")
    assert ("warning: account org (mastodon) has no credentials: TMINUS_ORG_ACCESS_TOKEN not set"
            in r.out)
    r = cli("run", "--once", "--dry-run")
    assert "note: account org (mastodon) has no credentials" in r.out
    assert "https://mastodon.example" not in r.out


READERS = [("status",), ("status", "--json"), ("list",), ("list", "--json"), ("log", "1"),
           ("preview", "cmp"), ("approve", "cmp", "--by", "Ana"), ("cancel", "--post", "1"),
           ("edit", "1", "--text", "x"), ("review", "1", "--cancel"), ("report", "cmp"),
           ("calendar", "cmp", "-o", "c.ics"), ("users", "list"),
           ("accounts", "check"), ("accounts", "resume", "org"), ("resume", "--all"),
           ("engagement", "fetch")]


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_reading_commands_create_no_database(cli: Cli, tmp_path: Path,
                                              args: tuple[str, ...]) -> None:
    """In a folder with no database, a command that reads (or changes what would be in
    one) says there is none yet and what to run, exit 2, and leaves no tminus.db."""
    r = cli(*args)
    assert r.code == 2 and r.out == "", r
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert f"no tminus database yet at {tmp_path / 'tminus.db'}" in r.err
    assert "`tminus plan DIR`" in r.err
    assert not (tmp_path / "tminus.db").exists()


def test_db_current_says_there_is_no_file_and_creates_none(cli: Cli, tmp_path: Path) -> None:
    r = cli("db", "current")
    assert r.code == 0 and r.out.startswith(f"no database file at {tmp_path / 'tminus.db'} yet")
    assert "`tminus db upgrade` creates it" in r.out and "empty" not in r.out
    assert not (tmp_path / "tminus.db").exists()
    (tmp_path / "tminus.db").touch()                # a file, but nothing in it
    assert cli("db", "current").out.startswith("database empty (no tminus tables yet), newest ")


def test_notify_status_without_a_database_says_what_is_true(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts off and no database: both said, exit 0 (as `notify status` with alerts
    off); alerts on and no database: the readers' error, exit 2. No file either way."""
    monkeypatch.delenv("TMINUS_NOTIFY", raising=False)
    r = cli("notify", "status")
    assert r.code == 0 and r.err == "", r
    assert "alerts are off: TMINUS_NOTIFY is not set" in r.out
    assert f"no tminus database at {tmp_path / 'tminus.db'} yet either" in r.out
    monkeypatch.setenv("TMINUS_NOTIFY", "json://127.0.0.1:9/x")
    for command in ("status", "check"):     # the timer's check watches the daemon's, or none
        r = cli("notify", command)
        assert r.code == 2 and f"no tminus database yet at {tmp_path / 'tminus.db'}" in r.err
    assert not (tmp_path / "tminus.db").exists()


def test_notify_test_without_an_address_makes_no_database(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("", "nosuchservice://x"):
        monkeypatch.setenv("TMINUS_NOTIFY", value)
        r = cli("notify", "test")
        assert r.code == 2 and r.err.startswith("error: TMINUS_NOTIFY")
        assert not (tmp_path / "tminus.db").exists()


@pytest.mark.postgres
def test_reading_an_empty_postgres_database_creates_no_tables(
        cli: Cli, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    """An empty PostgreSQL database is "none yet" too; reading it creates no table."""
    import sqlalchemy as sa
    monkeypatch.setenv("TMINUS_DATABASE_URL", pg_url)
    r = cli("list")
    assert r.code == 2 and "no tminus database yet at postgresql+psycopg://" in r.err
    engine = sa.create_engine(pg_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
