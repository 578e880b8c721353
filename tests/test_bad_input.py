"""Every bad input measured in issue 10, and its neighbours: a campaign file, a
template, a command-line argument or a setting that once gave a traceback, a hang, an
unbounded memory use or a misleading message now ends with exit 2 and one line naming
the file (and line), the key and what would be right, with nothing written.

The cases that used to hang run `tminus` in a subprocess with a timeout, so a
regression fails the test instead of stalling the suite; the timeout bounds a hang, it
does not measure speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from content import limits
from tests.conftest import ROOT
from tests.test_campaign_files import DB_NAME, HEAD, Tminus, count_rows, line_no, one_post, write_campaign
from tests.test_campaign_files import tminus as tminus  # the fixture: the CLI in-process

# HEAD declares org_x (an X account) and org_masto (a Mastodon account).


@dataclass
class Bad:
    """A broken campaign folder and what its one-line error must say."""

    toml: str | bytes
    templates: dict[str, str | bytes] = field(default_factory=dict)
    # "{toml}" is replaced by the path of campaign.toml as the CLI was given it
    where: str = ""
    says: tuple[str, ...] = ()
    hangs: bool = False      # it used to hang or eat memory: run in a subprocess


def post(body: str, template: str | None = None) -> Bad:
    """One post whose template is `template` (as post.txt.j2), or whose body is `body`."""
    if template is None:
        return Bad(HEAD + one_post(body))
    return Bad(HEAD + one_post('template = "post.txt.j2"\n' + body), {"post.txt.j2": template})


def at_line(toml: str, needle: str, key: str) -> str:
    return f"{{toml}}:{line_no(toml, needle)} [{key}]"


def _cases() -> dict[str, Bad]:
    cases: dict[str, Bad] = {}

    def add(name: str, bad: Bad, where: str, *says: str, hangs: bool = False) -> None:
        bad.where, bad.says, bad.hangs = where, says, hangs
        cases[name] = bad

    # -- campaign.toml values --------------------------------------------------------
    toml = HEAD.replace('"America/New_York"', '"America"') + one_post('text = "Hi #Test"')
    add("timezone_is_a_folder", Bad(toml), at_line(toml, "timezone =", "campaign.timezone"),
        "unknown timezone 'America'", 'a region: name a zone in it, like "America/New_York"')
    toml = HEAD.replace('"America/New_York"', '"' + "A" * 5000 + '"') + one_post('text = "Hi #Test"')
    add("timezone_5000_chars", Bad(toml), "[campaign.timezone]", "unknown timezone", "characters)")
    b = post('text = "Hi #Test"\naccounts = [["test"]]')
    add("accounts_list_of_lists", b, at_line(str(b.toml), "[[posts]]", "posts.p.accounts"),
        "names of the accounts")
    b = post('text = "Hi #Test"\naccounts = ["org_masto"]\ncontent_warning = 5')
    add("content_warning_a_number", b, at_line(str(b.toml), "[[posts]]", "posts.p.content_warning"),
        "content warning as text")
    b = post('text = "Hi #Test"\nexpires = "999999999d"')
    add("expires_999999999d", b, at_line(str(b.toml), "[[posts]]", "posts.p.expires"),
        "'999999999d' is longer than 3650d (ten years)")
    toml = HEAD.replace('hashtags = ["#Test"]', 'hashtags = ["#Test"]\nexpires = "99999999999999999999d"') \
        + one_post('text = "Hi #Test"')
    add("campaign_expires_huge", Bad(toml), "[campaign.expires]", "longer than 3650d")
    b = post('text = "Hi #Test"\nschedule = { at = "T-999999999d" }')
    add("at_T_minus_999999999d", b, at_line(str(b.toml), "[[posts]]", "posts.p.schedule"),
        "'T-999999999d' is longer than 3650d")
    toml = HEAD.replace("2099-06-01T12:00:00-04:00", "0001-01-01T00:00:00Z") + one_post('text = "Hi #Test"')
    add("deadline_in_year_1", Bad(toml), at_line(toml, "deadline =", "campaign.deadline"),
        "the year 1 is out of range", f"between {limits.MIN_YEAR} and {limits.MAX_YEAR}")
    b = post('text = "Hi #Test"\nschedule = { at = 0001-01-01T00:00:00 }')
    add("at_in_year_1", b, "[posts.p.schedule]", "more than 3650d (ten years) from the deadline")
    b = post('template = "' + "t" * 5000 + '.j2"')
    add("template_name_5000_chars", b, at_line(str(b.toml), "[[posts]]", "posts.p.template"),
        "is too long", "characters)")
    b = post('text = "Hi #Test"\nmedia = [{ path = "' + "m" * 5000 + '.png", alt = "a poster" }]')
    add("media_path_5000_chars", b, at_line(str(b.toml), "[[posts]]", "posts.p.media"), "is too long")
    b = post('text = "Hi #Test"\nlanguage = "Spanish please"')
    add("language_words", b, "[posts.p.language]", "'Spanish please' is not a language tag", '"pt-BR"')
    b = post('text = "Hi #Test"\nlanguage = 5')
    add("language_a_number", b, "[posts.p.language]", "5 is not a language tag")
    toml = HEAD.replace('credentials = "ORG_X"', 'credentials = "ORG_X"\nlanguage = "xx-nope"') \
        + one_post('text = "Hi #Test"')
    add("account_language", Bad(toml), "[accounts.org_x.language]", "'xx-nope' is not a language tag")
    b = post('text = "Hi #Test"\nschedule = { at = 09:00:00 }')
    add("at_a_time_of_day", b, "[posts.p.schedule]", "09:00 is a time of day without a date",
        'daily = "09:00"')
    b = post('text = "Hi #Test"\nschedule = { cron = "0 12 * * 5-1", from = "T-10d" }')
    add("cron_weekdays_backwards", b, "[posts.p.schedule]", "'5-1'", "runs backwards", "1-5")
    b = post('text = "Hi #Test {{ minutes_left }}"\nschedule = { cron = "* * * * *", from = "T-3650d" }')
    add("cron_every_minute_for_ten_years", b, "[posts.p.schedule]",
        f"more than {limits.MAX_FIRES_PER_SCHEDULE} posts", hangs=True)
    toml = HEAD + one_post('text = "Hi #Test"') + "\n[vars.deep]\nx = " + "[" * 5000 + "]" * 5000 + "\n"
    add("toml_arrays_nested_5000", Bad(toml), f"{{toml}}:{line_no(toml, 'x = [[')}",
        "nested 5000 deep", f"at most {limits.MAX_TOML_NESTING}")
    toml = HEAD + one_post('text = "Hi #Test"') + "\n[vars]\nx = " + "{ a = " * 3000 + "1" + " }" * 3000
    add("toml_inline_tables_nested", Bad(toml.replace("[vars]\ncall_line", "[vars.v]\ncall_line")),
        "{toml}:", "nested 3000 deep")
    add("campaign_file_too_large", Bad(HEAD + one_post('text = "Hi #Test"') + "# x\n" * 400_000),
        "{toml}", f"larger than {limits.MAX_CAMPAIGN_FILE_BYTES:,} bytes")

    # -- characters the approver cannot see ------------------------------------------
    b = post('text = "Hi\\ufeff there #Test"')
    add("text_with_bom", b, "[posts.p.text]", "U+FEFF", "byte-order mark", "delete it")
    b = post('text = "Sign \\u001b[8mhidden\\u001b[28m now #Test"')
    add("text_with_terminal_escape", b, "[posts.p.text]", "U+001B", "terminal escape")
    toml = HEAD.replace('title = "Test campaign"', 'title = "exe.\\u202etxt"') + one_post('text = "Hi #Test"')
    add("title_with_bidi_override", Bad(toml), at_line(toml, "title =", "campaign.title"),
        "U+202E RIGHT-TO-LEFT OVERRIDE", "character 5")
    toml = HEAD.replace('call_line = "202-555-0100"', 'call_line = "202\\u200b555"') + one_post('text = "Hi #Test"')
    add("var_with_zero_width_space", Bad(toml), "[vars.call_line]", "U+200B ZERO WIDTH SPACE")
    b = post('thread = ["second\\u0007 part"]\ntext = "Hi #Test"')
    add("thread_with_bell", b, "[posts.p.thread[0]]", "U+0007")
    b = post("", template="Call now\t{{ call_line }} #Test\n")
    add("template_with_tab", b, "[posts.p.template]", "U+0009 (a tab)", "write spaces instead")
    b = post("", template="Hi {{ call_line }} #Test\n")
    b.toml = str(b.toml).replace('call_line = "202-555-0100"', 'call_line = "202-555-0100"\ncta = 1')
    b.templates = {"post.txt.j2": "{{ '' if true else cta }}\n"}
    add("template_renders_empty", b, "[posts.p.template]", "comes out empty for org_x",
        "every post needs some text")

    # -- templates ---------------------------------------------------------------------
    add("recursive_macro", post("", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }} #Test\n"),
        "post.txt.j2:1", f"more than {limits.MAX_CALL_DEPTH} deep")
    b = post("", "Hi #Test {% include 'post.txt.j2' %}\n")
    add("template_includes_itself", b, "post.txt.j2:1", "post.txt.j2 includes itself")
    b = post("", "Hi #Test {% include 'campaign.toml' %}\n")
    add("template_includes_campaign_toml", b, "post.txt.j2:1", "is the campaign file itself")
    b = post("", "Hi #Test {% include '../secret.txt' %}\n")
    add("template_includes_dotdot", b, "post.txt.j2:1", "names starting with a dot")
    b = post("", "Hi #Test {% include '/etc/passwd' %}\n")
    add("template_includes_absolute", b, "post.txt.j2:1", "not an absolute path")
    b = post("", "Hi #Test {% include '.env' %}\n")
    add("template_includes_dotenv", b, "post.txt.j2:1", "names starting with a dot")
    b = post("", "Hi #Test\n" + "{% if true %}" * 300 + "x" + "{% endif %}" * 300 + "\n")
    add("if_nested_300", b, "post.txt.j2:2", f"nested more than {limits.MAX_BLOCK_NESTING} deep")
    b = post("", "Hi #Test {{ " + "(" * 5000 + "1" + ")" * 5000 + " }}\n")
    add("parentheses_nested_5000", b, "post.txt.j2:1",
        f"brackets nested more than {limits.MAX_BRACKET_NESTING} deep")
    b = post("", "#Test {% for i in range(100000) %}{% for j in range(100000) %}{{ i }}"
                 "{% endfor %}{% endfor %}\n")
    add("nested_range_100000", b, "post.txt.j2:1", "a range of more than", hangs=True)
    b = post("", "#Test {% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
                 "{% endfor %}\n")
    add("nested_range_10000_silent", b, "post.txt.j2:1",
        f"more than {limits.MAX_RENDER_OPERATIONS:,} operations", hangs=True)
    add("power_100000000", post('schedule = { at = "T-4d" }', "#Test {{ days_left ** 100000000 }}\n"),
        "post.txt.j2:1",
        "is a number too large", hangs=True)
    add("percent_width_999999999", post("", "#Test {{ '%0999999999d' % 1 }}\n"), "post.txt.j2:1",
        "a % format width is 999,999,999", hangs=True)
    add("format_width_999999999", post("", "#Test {{ '{:>999999999}'.format(1) }}\n"),
        "post.txt.j2:1", "a format width is 999,999,999", hangs=True)
    add("string_times_4000000000", post("", "#Test {{ 'a' * 4000000000 }}\n"), "post.txt.j2:1",
        "* 4,000,000,000 would make 4,000,000,000 characters", hangs=True)
    add("lipsum_1000", post("", "#Test {{ lipsum(1000, min=1000, max=1000) }}\n"), "post.txt.j2:1",
        "lipsum", hangs=True)
    b = post("", "#Test {% set ns = namespace(s='ab') %}{% for i in range(60) %}"
                 "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}\n")
    add("string_doubling", b, "post.txt.j2:1", "characters; at most", hangs=True)
    big = "#Test {{ call_line }}\n" + "x" * (20 * 1024 * 1024)
    add("template_20MB", post("", big), "post.txt.j2: template refused:",
        f"larger than {limits.MAX_TEMPLATE_BYTES:,} bytes", hangs=True)
    return cases


CASES = _cases()
QUICK = sorted(k for k, b in CASES.items() if not b.hangs)
HANGS = sorted(k for k, b in CASES.items() if b.hangs)


def _check_one_line(code: object, err: str, out: str, where: str, says: tuple[str, ...]) -> None:
    assert code == 2, out + err
    assert "Traceback" not in out + err and 'File "' not in out + err
    assert err.startswith("error: "), err
    assert "Input should be" not in err, err      # pydantic's words, through typer
    assert where in err, (where, err)
    for fragment in says:
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", QUICK)
def test_bad_input_is_one_line_and_writes_nothing(tminus: Tminus, tmp_path: Path, command: str,
                                                  case: str) -> None:
    bad = CASES[case]
    folder = write_campaign(tmp_path, bad.toml, bad.templates)
    r = tminus(command, str(folder))
    _check_one_line(r.code, r.err, r.out, bad.where.format(toml=folder / "campaign.toml"), bad.says)
    if command == "plan":
        assert len(r.err.strip().splitlines()) == 1, r.err
    for table in ("campaign", "account", "post", "event"):
        assert count_rows(tmp_path / DB_NAME, table) == 0, table


def run_tminus(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`tminus ARGS` in its own process; a timeout fails the test (it bounds a hang)."""
    environ = {**os.environ, "TMINUS_DATABASE_URL": f"sqlite:///{cwd}/{DB_NAME}",
               "TMINUS_DRYRUN_OUTBOX": str(cwd / "outbox.jsonl"), "COLUMNS": "500",
               **(env or {})}
    return subprocess.run([sys.executable, "-c", "from scheduler.cli import main; main()", *args],
                          cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.parametrize("case", HANGS)
def test_input_that_used_to_hang_is_refused(tmp_path: Path, case: str) -> None:
    bad = CASES[case]
    folder = write_campaign(tmp_path, bad.toml, bad.templates)
    r = run_tminus("validate", str(folder), cwd=tmp_path)
    _check_one_line(r.returncode, r.stderr, r.stdout,
                    bad.where.format(toml=folder / "campaign.toml"), bad.says)
    assert not (tmp_path / DB_NAME).exists()


def test_a_template_linked_from_outside_the_folder_is_refused(tminus: Tminus, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("TMINUS_ORG_X_API_SECRET=hunter2\n", encoding="utf-8")
    folder = write_campaign(tmp_path, HEAD + one_post('template = "post.txt.j2"'),
                            {"inner.j2": "{% include 'linked.txt' %}"})
    (folder / "linked.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "post.txt.j2").symlink_to(tmp_path / "secret.txt")
    r = tminus("validate", str(folder))
    _check_one_line(r.code, r.err, r.out, "[posts.p.template]", ("link to a file outside",))
    assert "hunter2" not in r.out + r.err

    (folder / "post.txt.j2").unlink()
    (folder / "post.txt.j2").write_text("Hi #Test {% include 'inner.j2' %}\n", encoding="utf-8")
    r = tminus("validate", str(folder))
    _check_one_line(r.code, r.err, r.out, "inner.j2:1", ("link to a file outside",))
    assert "hunter2" not in r.out + r.err


def test_a_campaign_over_the_post_limit_is_refused(tminus: Tminus, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("content.expand.MAX_POSTS_PER_CAMPAIGN", 10)
    toml = HEAD + one_post('text = "{{ hours_left }} #Test"\naccounts = ["org_x", "org_masto"]\n'
                           'schedule = { cron = "0 * * * *", from = "T-6h" }')
    folder = write_campaign(tmp_path, toml)
    r = tminus("plan", str(folder))
    _check_one_line(r.code, r.err, r.out, "[posts.p.schedule]", ("more than 10 posts",))


def test_what_real_text_needs_is_accepted(tminus: Tminus, tmp_path: Path) -> None:
    # ZWJ emoji, ZWNJ in Persian, a flag tag sequence, a variation selector, and a title
    # that looks like rich markup: all fine, and shown as written.
    toml = HEAD.replace('title = "Test campaign"', 'title = "Vote [yes] on Prop 5 [/]"') + one_post(
        'text = "👩\\u200d💻 می\\u200cخواهم 🏴\\U000e0067\\U000e0062\\U000e0065\\U000e006e'
        '\\U000e0067\\U000e007f ❤️ {{ time_left }} #Test"')
    folder = write_campaign(tmp_path, toml)
    assert tminus("validate", str(folder)).code == 0
    r = tminus("preview", str(folder))
    assert r.code == 0, r.everything
    assert "Vote [yes] on Prop 5 [/]" in r.out
    assert "👩\u200d💻" in r.out and "می\u200cخواهم" in r.out


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def planned(tminus: Tminus, tmp_path: Path) -> Path:
    folder = write_campaign(tmp_path, HEAD + one_post(
        'text = "{{ hours_left }} hours #Test"\nschedule = { at = ["T-3h", "T-2h", "T-1h"] }'))
    assert tminus("plan", str(folder)).code == 0
    return folder


def _db_content(tmp_path: Path) -> list[str]:
    """The database's content (its file's bytes change when SQLite checkpoints the WAL)."""
    import sqlite3
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.parametrize(("args", "says"), [
    (["preview", "testcamp", "-f", "html", "-o", "no/such/folder/x.html"],
     ("--output 'no/such/folder/x.html'", "No such file or directory")),
    (["preview", "testcamp", "-f", "html", "-o", "/tmp"], ("--output '/tmp'", "Is a directory")),
    (["approve", "testcamp", "--by", "Ana", "--post", str(2**63)],
     ("--post", f"'{2**63}' is not a post id")),
    (["edit", "abc", "--text", "Hi"], ("'post'", "'abc' is not a post id", "tminus list")),
    (["log", "0"], ("'post'", "'0' is not a post id")),
    (["cancel", "--post", "1.5"], ("--post", "'1.5' is not a post id")),
    (["approve", "testcamp", "--by", "Ana", "--post", "1", str(2**64)], ("--post",)),
    (["cancel", "--post", "99999999999999999999"], ("--post",)),
    (["log", str(2**63)], ("'post'",)),
    (["review", str(2**70), "--requeue"], ("'post'",)),
    (["queue", "add", "--account", "org_x", "--at", "+99999999999d", "Hi"],
     ("--at '+99999999999d'",)),
    (["queue", "add", "--account", "org_x", "--at", "T-999999999d", "Hi"], ("longer than 3650d",)),
    (["queue", "add", "--account", "org_x", "--at", "+1h", "--by", "   ", "Hi"],
     ("--by needs the name of the person",)),
    (["queue", "add", "--account", "org_x", "--at", "+1h", "Hi \u202e there"], ("U+202E",)),
    (["queue", "add", "--account", "org_x", "--at", "+1h", "   "], ("is empty",)),
    (["cancel", "testcamp", "--by", " "], ("--by needs the name of the person",)),
    (["demo", "--seconds", "99999999999999"], ("--seconds must be between 20 and 86400",)),
    (["validate", ".", "--as-of", "0001-01-01T00:00:00+14:00"], ("--as-of",)),
    (["nosuchcommand"], ("No such command",)),
    (["preview", "x" * 5000], ("no campaign 'xxxx",)),
    (["plan", "x" * 5000], ("cannot be opened (File name too long)",)),
    (["rehearse", "x" * 5000], ("cannot be opened",)),
    (["review", "1", "--published", "https://x.example/\x1b[8m"], ("--published", "U+001B")),
])
def test_bad_arguments_are_one_line_and_write_nothing(tminus: Tminus, planned: Path,
                                                      tmp_path: Path, args: list[str],
                                                      says: tuple[str, ...]) -> None:
    before = _db_content(tmp_path)
    r = tminus(*args)
    _check_one_line(r.code, r.err, r.out, "", says)
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert _db_content(tmp_path) == before
    assert not (tmp_path / "no").exists() and not (tmp_path / "tminus-demo").exists()


def test_a_non_utf8_argument_is_refused(planned: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", "from scheduler.cli import main; main()",
                        b"count", b"caf\xe9"], cwd=tmp_path, capture_output=True, timeout=120,
                       env={**os.environ, "TMINUS_DATABASE_URL": f"sqlite:///{tmp_path}/{DB_NAME}"},
                       check=False)
    err = r.stderr.decode("utf-8")
    _check_one_line(r.returncode, err, r.stdout.decode(), "argument 2", ("not UTF-8", "0xe9"))


def test_markup_in_what_the_user_typed_is_shown_as_written(tminus: Tminus, planned: Path,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    ids = [row["id"] for row in json.loads(tminus("preview", "testcamp", "-f", "json").out)[0]["rows"]]
    folder = tmp_path / "["             # so that the paths below read ".../[/]..."
    folder.mkdir()
    r = tminus("preview", "testcamp", "-f", "html", "-o", str(folder / "]p.html"))
    assert r.code == 0 and "[/]p.html" in r.out, r.err
    monkeypatch.setenv("TMINUS_DRYRUN_OUTBOX", str(folder / "]o.jsonl"))
    r = tminus("run", "--once", "--dry-run")
    assert r.code == 0 and "[/]o.jsonl" in r.out, r.err
    import sqlite3
    with sqlite3.connect(tmp_path / DB_NAME) as conn:   # a post marked published by a person
        conn.execute("UPDATE post SET state = 'review' WHERE id = ?", (ids[0],))
    r = tminus("review", str(ids[0]), "--published", "https://x.example/[/]", "--by", "Ana")
    assert r.code == 0, r.err
    r = tminus("log", str(ids[0]))
    assert r.code == 0 and "https://x.example/[/]" in r.out, r.err


def test_several_post_ids_after_one_post_option(tminus: Tminus, planned: Path) -> None:
    import json
    ids = [row["id"] for row in json.loads(tminus("preview", "testcamp", "-f", "json").out)[0]["rows"]]
    r = tminus("approve", "testcamp", "--by", "Ana", "--post", str(ids[0]), str(ids[1]))
    assert r.code == 0, r.err
    assert "approved 2 post(s)" in r.out
    r = tminus("cancel", "--post", str(ids[2]), "--by", "Ben")
    assert r.code == 0 and "canceled 1" in r.out
    r = tminus("cancel", "--post", str(ids[0]), "--post", str(ids[1]))
    assert r.code == 0 and "canceled 2" in r.out


@pytest.mark.parametrize(("var", "value", "says"), [
    ("TMINUS_POLL_SECONDS", "inf", "TMINUS_POLL_SECONDS='inf' is out of range"),
    ("TMINUS_LEASE_SECONDS", "nan", "TMINUS_LEASE_SECONDS='nan' is out of range"),
    ("TMINUS_MAX_ATTEMPTS", "1e400", "TMINUS_MAX_ATTEMPTS='1e400' is out of range"),
    ("TMINUS_CONCURRENCY", "many", "TMINUS_CONCURRENCY='many' is not a number"),
    ("TMINUS_LOG_LEVEL", "LOUD", "TMINUS_LOG_LEVEL='LOUD': write one of DEBUG"),
    ("TMINUS_DATABASE_URL", "sqlite:////no/such/folder/t.db", "cannot create '/no/such/folder/t.db'"),
])
def test_bad_settings_are_one_line(tminus: Tminus, planned: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, var: str, value: str,
                                   says: str) -> None:
    before = _db_content(tmp_path)
    monkeypatch.setenv(var, value)
    r = tminus("run", "--once")
    _check_one_line(r.code, r.err, r.out, "", (says,))
    assert _db_content(tmp_path) == before


def test_the_readme_walkthrough_names_the_examples_slug() -> None:
    import re
    import tomllib
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    walkthrough = readme.split("## A campaign, start to finish")[1].split("## ")[0]
    folder = re.search(r"tminus plan (examples/\S+)", walkthrough)
    assert folder is not None
    slug = tomllib.loads((ROOT / folder.group(1) / "campaign.toml").read_text("utf-8"))["campaign"]["slug"]
    named = set(re.findall(r"tminus (?:preview|approve) (\S+)", walkthrough))
    assert named == {slug}
