"""Campaign folders through `tminus validate` and `tminus plan`, run in-process.

Every mistake a person can make in a campaign folder must come back as exit code 2
and a message naming the file and the key or line, never a traceback; and `plan`
must write nothing when anything is wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from scheduler import cli

DB_NAME = "t.db"

# Noon Eastern on 1 June 2099 (EDT, UTC-4) is 16:00 UTC.
HEAD = """\
[campaign]
slug = "testcamp"
title = "Test campaign"
deadline = 2099-06-01T12:00:00-04:00
timezone = "America/New_York"
hashtags = ["#Test"]

[vars]
call_line = "202-555-0100"

[accounts.org_x]
platform = "x"
credentials = "ORG_X"

[accounts.org_masto]
platform = "mastodon"
credentials = "ORG_MASTO"
"""

VALID_POSTS = """
[[posts]]
key = "countdown"
template = "countdown.txt.j2"
accounts = ["org_x", "org_masto"]
schedule = { daily = "09:00", from = "T-4d", until = "T-1d" }

[[posts]]
key = "last"
text = "{{ time_left }} left. Call {{ vars.call_line }}. #Test"
accounts = ["org_x"]
schedule = { at = ["T-2h", "T-1h"] }
"""

COUNTDOWN = "{{ days_left }} {{ days_left|plural('day') }} to go.\nCall {{ call_line }}.\n{{ hashtags }}\n"


def one_post(body: str) -> str:
    """A [[posts]] table with key "p" on org_x at T-1h unless `body` says otherwise."""
    lines = ['key = "p"', *body.strip().splitlines()]
    if not any(ln.startswith("accounts") for ln in lines):
        lines.append('accounts = ["org_x"]')
    if not any(ln.startswith("schedule") for ln in lines):
        lines.append('schedule = { at = "T-1h" }')
    return "\n[[posts]]\n" + "\n".join(lines) + "\n"


def line_no(text: str, needle: str) -> int:
    """1-based number of the first line of `text` containing `needle`."""
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in the test's own campaign text")


def write_campaign(root: Path, toml: str | bytes, templates: dict[str, str | bytes] | None = None,
                   name: str = "camp") -> Path:
    folder = root / name
    folder.mkdir()
    for fname, content in {"campaign.toml": toml, **(templates or {})}.items():
        if isinstance(content, bytes):
            (folder / fname).write_bytes(content)
        else:
            (folder / fname).write_text(content, encoding="utf-8")
    return folder


@dataclass
class Result:
    code: int | str | None
    out: str
    err: str

    @property
    def everything(self) -> str:
        return self.out + self.err


Tminus = Callable[..., Result]


@pytest.fixture
def tminus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Tminus:
    monkeypatch.setenv("TMINUS_DATABASE_URL", f"sqlite:///{tmp_path}/{DB_NAME}")
    monkeypatch.chdir(tmp_path)
    # Off a terminal rich wraps at 80 columns, which would split long tmp paths in two.
    monkeypatch.setattr(cli.out, "soft_wrap", True)
    monkeypatch.setattr(cli.err, "soft_wrap", True)

    def run(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["tminus", *args])
        with pytest.raises(SystemExit) as exc:
            cli.main()
        captured = capsys.readouterr()
        return Result(exc.value.code, captured.out, captured.err)

    return run


def count_rows(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            if table not in sa.inspect(conn).get_table_names():
                return 0
            return int(conn.execute(sa.text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one())
    finally:
        engine.dispose()


def posts_in_db(db: Path) -> list[tuple[str, str, str, str, str]]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT p.post_key, a.name, p.due_at, p.state, p.text FROM post p "
                "JOIN account a ON a.id = p.account_id ORDER BY p.due_at, a.name")).all()
    finally:
        engine.dispose()
    return [(k, a, str(d)[:16], s, t) for k, a, d, s, t in rows]


# ------------------------------------------------------------------ bad inputs


@dataclass
class Bad:
    """A broken campaign folder and what its error must say."""

    toml: str | bytes
    templates: dict[str, str | bytes] = field(default_factory=dict)
    # "{toml}" is replaced by the path of campaign.toml as the CLI was given it
    where: str = ""
    says: tuple[str, ...] = ()


def _malformed_toml() -> Bad:
    toml = HEAD.replace('title = "Test campaign"', 'title = "Test campaign')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, 'title =')}", says=("not valid TOML",))


def _unknown_key() -> Bad:
    toml = HEAD.replace("deadline =", "deadlin =") + one_post('text = "Hello #Test"')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, 'deadlin =')} [campaign.deadlin]",
               says=("unknown key `deadlin`", "did you mean `deadline`?"))


def _unknown_post_key() -> Bad:
    toml = HEAD + one_post('text = "Hello #Test"\nshedule = { at = "T-1h" }\nschedule = { at = "T-2h" }')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, 'shedule =')} [posts.p.shedule]",
               says=("did you mean `schedule`?",))


def _bad_timezone() -> Bad:
    toml = HEAD.replace('"America/New_York"', '"America/New_Yrok"') + one_post('text = "Hi #Test"')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, 'timezone =')} [campaign.timezone]",
               says=("'America/New_Yrok'", 'did you mean "America/New_York"?'))


def _past_deadline() -> Bad:
    toml = HEAD.replace("2099-06-01T12:00:00-04:00", "2017-01-20T12:00:00-05:00") \
        + one_post('text = "Hello #Test"')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, 'deadline =')} [campaign.deadline]",
               says=("2017-01-20 12:00", "in the past"))


def _undefined_variable() -> Bad:
    template = "{{ days_left }} days left.\nCall {{ call_line }}.\nAsk {{ senator }} to act. #Test\n"
    return Bad(HEAD + one_post('template = "post.txt.j2"'), {"post.txt.j2": template},
               where="post.txt.j2:3", says=("undefined variable", "senator"))


def _template_syntax_error() -> Bad:
    template = "Line one #Test\n{{ days_left + }}\nLine three\n"
    return Bad(HEAD + one_post('template = "post.txt.j2"'), {"post.txt.j2": template},
               where="post.txt.j2:2", says=("syntax error",))


def _template_reaches_internals() -> Bad:
    template = "Hello #Test\n{{ ''.__class__.__mro__ }}\n"
    return Bad(HEAD + one_post('template = "post.txt.j2"'), {"post.txt.j2": template},
               where="post.txt.j2:2", says=("not allowed",))


def _inline_text_undefined() -> Bad:
    toml = HEAD + one_post('text = "Call {{ cal_line }} #Test"')
    # the line of the post in campaign.toml, and the line within the text
    return Bad(toml, where=f"{{toml}}:{line_no(toml, '[[posts]]')} [posts.p.text]",
               says=("undefined variable", "cal_line", "(line 1 of the text)"))


def _unknown_account() -> Bad:
    toml = HEAD + one_post('text = "Hello #Test"\naccounts = ["org_xx"]')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, '[[posts]]')} [posts.p.accounts]",
               says=("unknown account 'org_xx'", "did you mean 'org_x'?"))


def _too_long_for_x() -> Bad:
    toml = HEAD + one_post(f'text = "{"a" * 300}"')
    return Bad(toml, where="{toml} [posts.p]", says=("300", "x's limit of 280", "org_x"))


def _same_text_twice_on_one_account() -> Bad:
    toml = HEAD + one_post('text = "Call now. #Test"\nschedule = { at = ["T-2h", "T-1h"] }')
    return Bad(toml, where="{toml} [posts.p]", says=("the same text goes out 2 times on org_x",))


def _identical_text_on_two_x_accounts() -> Bad:
    toml = HEAD + '\n[accounts.org_x2]\nplatform = "x"\ncredentials = "ORG_X2"\n' \
        + one_post('text = "Call now. #Test"\naccounts = ["org_x", "org_x2"]')
    return Bad(toml, where="{toml} [posts]", says=("identical text on X accounts org_x, org_x2",))


def _missing_template_file() -> Bad:
    toml = HEAD + one_post('template = "nope.txt.j2"')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, '[[posts]]')} [posts.p.template]",
               says=("'nope.txt.j2' not found",))


def _at_after_the_deadline() -> Bad:
    toml = HEAD + one_post('text = "Hi #Test"\nschedule = { at = "T+1h" }')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, '[[posts]]')} [posts.p.schedule]",
               says=("not before the deadline",))


def _bad_cron() -> Bad:
    toml = HEAD + one_post('text = "Hi #Test"\nschedule = { cron = "0 9 * *", from = "T-2d" }')
    return Bad(toml, where=f"{{toml}}:{line_no(toml, '[[posts]]')} [posts.p.schedule]",
               says=("not a valid cron expression",))


def _campaign_file_not_utf8() -> Bad:
    toml = (HEAD + one_post('text = "Hola, se\xf1or #Test"')).encode("latin-1")
    return Bad(toml, where="{toml}", says=())


def _template_not_utf8() -> Bad:
    return Bad(HEAD + one_post('template = "post.txt.j2"'),
               {"post.txt.j2": "Hola, se\xf1or #Test\n".encode("latin-1")},
               where="post.txt.j2", says=())


BAD = {f.__name__.lstrip("_"): f for f in (
    _malformed_toml, _unknown_key, _unknown_post_key, _bad_timezone, _past_deadline,
    _undefined_variable, _template_syntax_error, _template_reaches_internals,
    _inline_text_undefined, _unknown_account, _too_long_for_x,
    _same_text_twice_on_one_account, _identical_text_on_two_x_accounts,
    _missing_template_file, _at_after_the_deadline, _bad_cron,
    _campaign_file_not_utf8, _template_not_utf8,
)}


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_campaign_is_refused_with_where_and_what(tminus: Tminus, tmp_path: Path,
                                                     command: str, case: str) -> None:
    bad = BAD[case]()
    folder = write_campaign(tmp_path, bad.toml, bad.templates)

    r = tminus(command, str(folder))

    assert r.code == 2, r.everything
    assert "Traceback" not in r.everything
    assert 'File "' not in r.everything          # no stack frames of any kind
    assert r.err.startswith("error: "), r.err
    where = bad.where.format(toml=folder / "campaign.toml")
    assert where in r.err, r.err
    for fragment in bad.says:
        assert fragment in r.err, r.err
    db = tmp_path / DB_NAME
    for table in ("campaign", "account", "post", "event"):
        assert count_rows(db, table) == 0, table
    if command == "validate":
        assert not db.exists()                    # validate never opens the database
        assert "problem(s); nothing was written." in r.err


def test_validate_lists_every_problem_and_plan_points_to_validate(tminus: Tminus,
                                                                  tmp_path: Path) -> None:
    toml = (HEAD.replace('"America/New_York"', '"Mars/Olympus"').replace("slug =", "slugg =")
            + one_post('text = "Hi #Test"\naccounts = ["nobody"]'))
    folder = write_campaign(tmp_path, toml)
    path = folder / "campaign.toml"

    r = tminus("validate", str(folder))
    assert r.code == 2
    errors = [ln for ln in r.err.splitlines() if ln.startswith("error: ")]
    # the misspelt key, the missing slug it leaves, the zone and the unknown account
    assert len(errors) == 4, r.err
    assert f"{path}:{line_no(toml, 'slugg =')} [campaign.slugg]" in r.err
    assert "[campaign.slug]" in r.err
    assert f"{path}:{line_no(toml, 'timezone =')} [campaign.timezone]" in r.err
    assert "unknown account 'nobody'" in r.err
    assert "4 problem(s); nothing was written." in r.err

    r = tminus("plan", str(folder))
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1
    assert "(and 3 more problem(s); run `tminus validate`)" in r.err
    assert count_rows(tmp_path / DB_NAME, "post") == 0


def test_no_such_folder(tminus: Tminus, tmp_path: Path) -> None:
    r = tminus("validate", str(tmp_path / "nowhere"))
    assert r.code == 2
    assert str(tmp_path / "nowhere") in r.err and "no such campaign folder" in r.err
    assert "Traceback" not in r.everything


def test_folder_without_campaign_toml(tminus: Tminus, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = tminus("plan", str(tmp_path / "empty"))
    assert r.code == 2
    assert str(tmp_path / "empty" / "campaign.toml") in r.err
    assert "Traceback" not in r.everything
    assert count_rows(tmp_path / DB_NAME, "post") == 0


# ------------------------------------------------------------------ a good one


def test_valid_campaign_validates(tminus: Tminus, tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, HEAD + VALID_POSTS, {"countdown.txt.j2": COUNTDOWN})
    r = tminus("validate", str(folder))
    assert r.code == 0, r.everything
    assert r.err == ""
    # countdown: 29, 30, 31 May at 09:00 on two accounts; last: T-2h and T-1h on one
    assert "ok testcamp: 8 posts on 2 accounts before Mon 01 Jun 2099 12:00 EDT" in r.out
    assert "warning" not in r.out
    assert not (tmp_path / DB_NAME).exists()


def test_plan_creates_posts_and_is_idempotent(tminus: Tminus, tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, HEAD + VALID_POSTS, {"countdown.txt.j2": COUNTDOWN})
    db = tmp_path / DB_NAME

    r = tminus("plan", str(folder))
    assert r.code == 0, r.everything
    assert "planned testcamp: 8 new, 0 updated, 0 unchanged" in r.out
    assert count_rows(db, "campaign") == 1
    assert count_rows(db, "account") == 2
    assert count_rows(db, "post") == 8
    events = count_rows(db, "event")

    call = "Call 202-555-0100."
    assert posts_in_db(db) == [
        ("countdown", "org_masto", "2099-05-29 13:00", "draft", f"3 days to go.\n{call}\n#Test"),
        ("countdown", "org_x", "2099-05-29 13:00", "draft", f"3 days to go.\n{call}\n#Test"),
        ("countdown", "org_masto", "2099-05-30 13:00", "draft", f"2 days to go.\n{call}\n#Test"),
        ("countdown", "org_x", "2099-05-30 13:00", "draft", f"2 days to go.\n{call}\n#Test"),
        ("countdown", "org_masto", "2099-05-31 13:00", "draft", f"1 day to go.\n{call}\n#Test"),
        ("countdown", "org_x", "2099-05-31 13:00", "draft", f"1 day to go.\n{call}\n#Test"),
        ("last", "org_x", "2099-06-01 14:00", "draft", f"2 hours left. {call} #Test"),
        ("last", "org_x", "2099-06-01 15:00", "draft", f"1 hour left. {call} #Test"),
    ]

    r = tminus("plan", str(folder))
    assert r.code == 0, r.everything
    assert "planned testcamp: 0 new, 0 updated, 8 unchanged" in r.out
    assert count_rows(db, "post") == 8
    assert count_rows(db, "campaign") == 1
    assert count_rows(db, "event") == events


def test_replanning_an_edited_text_updates_in_place(tminus: Tminus, tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, HEAD + VALID_POSTS, {"countdown.txt.j2": COUNTDOWN})
    assert tminus("plan", str(folder)).code == 0
    (folder / "countdown.txt.j2").write_text("Only {{ time_left }} left. #Test\n", encoding="utf-8")

    r = tminus("plan", str(folder))
    assert r.code == 0, r.everything
    assert "planned testcamp: 0 new, 6 updated, 2 unchanged" in r.out
    assert count_rows(tmp_path / DB_NAME, "post") == 8
    texts = {t for k, _, _, _, t in posts_in_db(tmp_path / DB_NAME) if k == "countdown"}
    assert texts == {"Only 3 days 3 hours left. #Test", "Only 2 days 3 hours left. #Test",
                     "Only 1 day 3 hours left. #Test"}


def test_a_bad_edit_after_planning_leaves_the_queue_as_it_was(tminus: Tminus, tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, HEAD + VALID_POSTS, {"countdown.txt.j2": COUNTDOWN})
    assert tminus("plan", str(folder)).code == 0
    before = posts_in_db(tmp_path / DB_NAME)
    (folder / "countdown.txt.j2").write_text("{{ days_left }} days\n{{ nope }}\n", encoding="utf-8")

    r = tminus("plan", str(folder))
    assert r.code == 2
    assert "countdown.txt.j2:2" in r.err and "nope" in r.err
    assert "Traceback" not in r.everything
    assert posts_in_db(tmp_path / DB_NAME) == before


def test_far_future_deadline_is_not_in_the_past() -> None:
    # Guard for the fixtures above: they rely on 2099 being ahead of the clock.
    assert datetime(2099, 6, 1, 16, 0, tzinfo=UTC) > datetime.now(UTC)


def test_the_two_letter_languages_are_exactly_those_langcodes_accepts() -> None:
    # content.campaign answers two-letter tags from a set, without loading langcodes:
    # the set must say what langcodes would, for every tag from "aa" to "zz"
    import string

    import langcodes

    from content.campaign import TWO_LETTER_LANGUAGES
    every = {a + b for a in string.ascii_lowercase for b in string.ascii_lowercase}
    assert every >= TWO_LETTER_LANGUAGES
    assert {tag for tag in every if langcodes.tag_is_valid(tag)} == TWO_LETTER_LANGUAGES
