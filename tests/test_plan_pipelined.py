"""A large first plan writes the posts already rendered while a forked child renders
the rest (scheduler/planner.py, content/expand.py, content/fork.py). The rows it
writes must be exactly those of the plain path, which writes everything after the
expansion: here a campaign is planned both ways, the pipelined way in a fresh
interpreter (the test process has threads of its own, where forking is refused) into
the database under test, SQLite or PostgreSQL, and the plain way in this process into
a SQLite file, and every row of every table is compared field by field. A plan whose
last post is found too long fails with the same errors and writes nothing, although
the posts before it were written by then."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from content.errors import CampaignErrors
from scheduler.db import make_engine, upgrade
from scheduler.models import Account, Event, Post
from scheduler.models import Campaign as CampaignRow
from scheduler.planner import check, plan

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2099, 1, 20, 9, tzinfo=UTC)   # some fire times are already past

# Posts of plain and Jinja templates and of inline text, X, Mastodon and dry-run
# accounts, a thread of three, per-post options and warnings (a glued link, no hashtag).
_CAMPAIGN = '''
[campaign]
slug = "piped"
title = "Pipelined"
deadline = 2099-01-20T12:00:00-05:00
timezone = "America/New_York"
hashtags = ["#Pipe"]

[vars]
call_line = "202-555-0100"
link = "https://example.org/act"

[accounts.xa]
platform = "x"
credentials = "XA"
[accounts.xb]
platform = "x"
credentials = "XB"
[accounts.ma]
platform = "mastodon"
credentials = "MA"
language = "en"
[accounts.da]
platform = "dryrun"
[accounts.db]
platform = "dryrun"

[[posts]]
key = "plain"
template = "plain.txt.j2"
accounts = ["xa", "xb", "ma", "da", "db"]
schedule = { cron = "*/5 * * * *", from = "T-300m" }
expires = "1h"

[[posts]]
key = "jinja"
template = "jinja.txt.j2"
accounts = ["xa", "ma", "da"]
schedule = { cron = "*/10 * * * *", from = "T-300m" }
visibility = "unlisted"
content_warning = "countdown"

[[posts]]
key = "thread"
text = "{{ minutes_left }} min: {{ link }}#Pipe"
accounts = ["db", "ma"]
schedule = { cron = "*/5 * * * *", from = "T-300m" }
thread = ["and {{ minutes_left }} more", "then {{ time_left }}"]
'''

# the last post out (5 minutes before the deadline) is over Mastodon's 500 characters
_TOO_LONG = '''
[[posts]]
key = "long"
text = "{% if minutes_left == 5 %}{{ 'y' * 600 }}{% else %}{{ minutes_left }} #Pipe{% endif %}"
accounts = ["ma"]
schedule = { cron = "*/5 * * * *", from = "T-300m" }
'''

_SCRIPT = textwrap.dedent('''
    import json, sys
    from datetime import UTC, datetime
    from pathlib import Path
    import content.expand as expand
    import scheduler.planner as planner
    from content.errors import CampaignErrors
    from scheduler.db import make_engine
    from scheduler.planner import plan

    folders, url = json.loads(sys.argv[1]), sys.argv[2]
    expand.FORK_FROM, expand.CHUNK = 1, 50     # forked, in many parts, each written as it comes
    planner.BULK_FROM = 1     # on SQLite, the post table's indexes set aside while it writes
    forks = []
    real = expand.Parts
    class Counted(real):
        def parts(self):
            yield from real.parts(self)
            forks.append(self.complete)
    expand.Parts = Counted
    engine = make_engine(url)
    reports = []
    try:
        for folder in folders:   # a plan, then re-plans of the same campaign
            r = plan(engine, Path(folder), now=datetime(2099, 1, 20, 9, tzinfo=UTC),
                     actor="tester", cancel_ok=True, replace=True)
            reports.append(repr(r))
        out = {"reports": reports}
    except CampaignErrors as e:
        out = {"errors": [str(x) for x in e.errors]}
    print(json.dumps({**out, "forks": forks}))
''')


def _campaign(tmp_path: Path, extra: str = "", name: str = "c", words: str = "left") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "campaign.toml").write_text(_CAMPAIGN + extra, encoding="utf-8")
    (folder / "plain.txt.j2").write_text("{{ account }}: {{ minutes_left }} min ({{ time_left }}) "
                                         f"{words}. Call {{{{ call_line }}}} #Pipe\n",
                                         encoding="utf-8")
    (folder / "jinja.txt.j2").write_text(
        "{% if hours_left > 24 %}{{ days_left }} {{ days_left | plural('day') }}{% else %}"
        "{{ hours_left }} hours{% endif %} ({{ minutes_left }} min) - {{ account }}\n",
        encoding="utf-8")
    return folder


def _pipelined(engine: Engine, *folders: Path) -> dict[str, Any]:
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps([str(f) for f in folders]),
                           url], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout)
    # it did fork (once a plan), and the child sent every part
    assert out["forks"] == [True] * len(folders) or "errors" in out, out["forks"]
    return out


def _same_rows(got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]]
               ) -> None:
    for name in want:
        for row in (*got[name], *want[name]):
            row.pop("idempotency_key", None)   # random per plan, by design
        assert len(got[name]) == len(want[name]), name
        if name == "event":
            # the same kinds of event in the same order, and each post's history the
            # same; which of the posts a re-plan cancels is recorded first is not kept:
            # PostgreSQL's UPDATE … RETURNING gives them in the table's physical order
            assert [e["reason"] for e in got[name]] == [e["reason"] for e in want[name]]
            got[name], want[name] = ([{k: v for k, v in e.items() if k != "id"}
                                      for e in sorted(rows, key=lambda e: (e["post_id"], e["id"]))]
                                     for rows in (got[name], want[name]))
        for mine, theirs in zip(got[name], want[name], strict=True):
            assert mine == theirs, (name, mine, theirs)


def _tables(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    models: tuple[Any, ...] = (CampaignRow, Account, Post, Event)
    tables = {str(t.__tablename__): t.__table__ for t in models}
    with engine.connect() as c:
        return {name: [dict(r._mapping) for r in c.execute(sa.select(t).order_by(t.c.id))]
                for name, t in tables.items()}


def _indexes(engine: Engine) -> list[tuple[str, str]]:
    """The post table's indexes as the database holds them (each column list in order)
    and what they index by, in the query planner's eyes."""
    found = sa.inspect(engine).get_indexes("post")
    return sorted((str(i["name"]), repr((i["column_names"], bool(i["unique"])))) for i in found)


def test_a_pipelined_plan_writes_the_rows_of_the_plain_path(any_engine: Engine,
                                                            tmp_path: Path) -> None:
    folder = _campaign(tmp_path)
    indexes = _indexes(any_engine)
    out = _pipelined(any_engine, folder)
    assert _indexes(any_engine) == indexes   # those set aside while writing are back
    reference = make_engine(f"sqlite:///{tmp_path}/reference.db")
    upgrade(reference)
    report = plan(reference, folder, now=NOW, actor="tester", cancel_ok=True, replace=True,
                  checked=check(folder, now=NOW))   # expanded first, written after
    assert out["reports"] == [repr(report)]
    got, want = _tables(any_engine), _tables(reference)
    reference.dispose()
    assert report.created == len(want["post"]) > 500
    _same_rows(got, want)
    posts = want["post"]
    assert any(p["parent_id"] for p in posts) and any(p["warnings"] for p in posts)
    assert any(p["options"]["visibility"] == "unlisted" for p in posts)


def test_a_pipelined_plan_that_fails_at_its_last_post_writes_nothing(any_engine: Engine,
                                                                    tmp_path: Path) -> None:
    folder = _campaign(tmp_path, _TOO_LONG)
    indexes = _indexes(any_engine)
    out = _pipelined(any_engine, folder)
    with pytest.raises(CampaignErrors) as plain:
        check(folder, now=NOW)
    assert out["errors"] == [str(e) for e in plain.value.errors]
    assert any("over mastodon's limit of 500" in str(e) for e in out["errors"]), out
    assert _tables(any_engine) == {"campaign": [], "account": [], "post": [], "event": []}
    assert _indexes(any_engine) == indexes   # the indexes set aside are back


# a re-plan: the plain template's words changed (drafts updated, each with an event),
# the thread gone (its posts canceled), a new post (inserted after the updates)
_REPLANNED = _CAMPAIGN.split("[[posts]]\nkey = \"thread\"")[0] + '''
[[posts]]
key = "added"
text = "{{ minutes_left }} minutes to call {{ call_line }} #Pipe"
accounts = ["xa", "da"]
schedule = { cron = "*/15 * * * *", from = "T-300m" }
'''


def test_a_pipelined_replan_writes_the_rows_of_the_plain_path(any_engine: Engine,
                                                              tmp_path: Path) -> None:
    first = _campaign(tmp_path)
    second = _campaign(tmp_path, name="c2", words="to go")
    (second / "campaign.toml").write_text(_REPLANNED, encoding="utf-8")
    plans = [first, second]   # the second moved (--replace): a re-plan from that folder
    out = _pipelined(any_engine, *plans)
    reference = make_engine(f"sqlite:///{tmp_path}/reference.db")
    upgrade(reference)
    reports = [repr(plan(reference, f, now=NOW, actor="tester", cancel_ok=True, replace=True,
                         checked=check(f, now=NOW))) for f in plans]
    assert out["reports"] == reports
    got, want = _tables(any_engine), _tables(reference)
    reference.dispose()
    _same_rows(got, want)
    reasons = {e["reason"].split("\n")[0] for e in want["event"]}
    assert {"planned", "changed in the campaign file by a re-plan",
            "removed from the campaign file"} <= reasons, reasons
