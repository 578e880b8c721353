"""Planning many posts at once: what the bulk path writes is exactly what a campaign
says, checked against expectations computed here from the campaign's own numbers
(not by the planner's code), on SQLite and PostgreSQL; a re-plan of the same files
changes nothing; the bulk write path keeps the state machine's rules."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from content.errors import TminusError
from scheduler.models import Event, Post, PostState
from scheduler.planner import plan
from scheduler.transitions import Stored, create, indexes_set_aside, restore_indexes

S = PostState
DEADLINE = datetime(2099, 1, 20, 17, 0, tzinfo=UTC)      # 12:00 in New York
NOW = datetime(2099, 1, 1, tzinfo=UTC)
ACCOUNTS = [f"acct{a:02d}" for a in range(6)]
FIRES = 40                                                # every 5 minutes before the deadline
LINK = "example.org/act"


def _write(folder: Path, *, first_words: str = "left") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    accounts = "\n".join(f'[accounts.{a}]\nplatform = "dryrun"\n' for a in ACCOUNTS)
    names = ", ".join(f'"{a}"' for a in ACCOUNTS[:3])
    rest = ", ".join(f'"{a}"' for a in ACCOUNTS[3:])
    (folder / "campaign.toml").write_text(f"""
[campaign]
slug = "bulk"
title = "Bulk"
deadline = 2099-01-20T12:00:00-05:00
timezone = "America/New_York"
hashtags = ["#Bulk"]

[vars]
call_line = "202-555-0100"

{accounts}
[[posts]]
key = "plain"
template = "plain.txt.j2"
accounts = [{names}]
schedule = {{ cron = "*/5 * * * *", from = "T-{5 * FIRES}m" }}
expires = "1h"

[[posts]]
key = "linked"
text = "{{{{ minutes_left }}}} min. {LINK} #Bulk"
accounts = [{rest}]
schedule = {{ cron = "*/5 * * * *", from = "T-{5 * FIRES}m" }}
expires = "10m"
""", encoding="utf-8")
    (folder / "plain.txt.j2").write_text(
        "{{ account }}: {{ minutes_left }} minutes " + first_words + ".\n"
        "Call {{ call_line }} today. {{ hashtags }}\n", encoding="utf-8")
    return folder


def _expected(first_words: str = "left") -> dict[str, tuple[datetime, datetime, str, int]]:
    """plan key -> (due, not_after, text, X length), from the campaign's numbers: a
    post expires after `expires`, never after the deadline."""
    out = {}
    for k in range(1, FIRES + 1):
        due = DEADLINE - timedelta(minutes=5 * k)
        stamp = f"{due:%Y%m%dT%H%M%S}Z"
        for a in ACCOUNTS[:3]:
            text = (f"{a}: {5 * k} minutes {first_words}.\n"
                    "Call 202-555-0100 today. #Bulk")
            out[f"plain@{a}@{stamp}"] = (due, min(due + timedelta(hours=1), DEADLINE), text,
                                         len(text))
        for a in ACCOUNTS[3:]:
            text = f"{5 * k} min. {LINK} #Bulk"
            # X counts a link as 23, whatever its own length
            out[f"linked@{a}@{stamp}"] = (due, min(due + timedelta(minutes=10), DEADLINE),
                                          text, len(text) - len(LINK) + 23)
    return out


def _rows(engine: Engine) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    with engine.connect() as c:
        posts = [dict(r._mapping) for r in c.execute(sa.select(Post.__table__)  # type: ignore[attr-defined]
                                                      .order_by(sa.text("id")))]
        events = [dict(r._mapping) for r in c.execute(sa.select(Event.__table__)  # type: ignore[attr-defined]
                                                       .order_by(sa.text("id")))]
    return posts, events


def test_a_generated_campaign_is_planned_as_written(any_engine: Engine, tmp_path: Path) -> None:
    folder = _write(tmp_path / "campaign")
    report = plan(any_engine, folder, now=NOW, actor="tester")
    expected = _expected()
    assert report.created == len(expected) == FIRES * len(ACCOUNTS)
    posts, events = _rows(any_engine)
    got = {p["plan_key"]: p for p in posts}
    assert got.keys() == expected.keys()
    for key, (due, not_after, text, length) in expected.items():
        p = got[key]
        assert (p["text"], p["length"], p["length_limit"]) == (text, length, 280), key
        assert p["due_at"] == due and p["next_attempt_at"] == due and p["not_after"] == not_after
        assert p["state"] == S.DRAFT and p["origin"] == "plan" and p["attempt"] == 0
        assert p["text_hash"] == hashlib.sha256(text.encode()).hexdigest()
        assert p["options"] == {"language": None, "visibility": None, "content_warning": None,
                                "media": []}
        assert p["warnings"] == [] and p["created_at"] == p["updated_at"] == NOW
    # ids in the order the posts go out (then by account), as a person reads `tminus queue`
    assert [p["plan_key"] for p in posts] == sorted(
        expected, key=lambda k: (expected[k][0], k.split("@")[1]))
    assert len({p["idempotency_key"] for p in posts}) == len(posts)
    # one "planned" event per post, nothing else
    assert [(e["post_id"], e["from_state"], e["to_state"], e["reason"], e["actor"], e["at"])
            for e in events] == [(p["id"], None, S.DRAFT, "planned", "tester", NOW) for p in posts]


def test_a_replan_of_the_same_files_changes_nothing(any_engine: Engine, tmp_path: Path) -> None:
    folder = _write(tmp_path / "campaign")
    plan(any_engine, folder, now=NOW)
    before = _rows(any_engine)
    again = plan(any_engine, folder, now=NOW + timedelta(minutes=1))
    assert (again.created, again.updated, again.canceled, again.unchanged) == (
        0, 0, 0, FIRES * len(ACCOUNTS))
    assert _rows(any_engine) == before


def test_a_replan_after_an_edit_changes_only_those_posts(any_engine: Engine,
                                                          tmp_path: Path) -> None:
    folder = _write(tmp_path / "campaign")
    plan(any_engine, folder, now=NOW)
    _, events_before = _rows(any_engine)
    _write(folder, first_words="to go")
    later = NOW + timedelta(minutes=1)
    report = plan(any_engine, folder, now=later)
    changed = 3 * FIRES                                   # the template's posts only
    assert (report.updated, report.unchanged) == (changed, 3 * FIRES)
    posts, events = _rows(any_engine)
    expected = _expected("to go")
    assert {p["plan_key"]: p["text"] for p in posts} == {k: v[2] for k, v in expected.items()}
    notes = events[len(events_before):]
    assert len(notes) == changed and all(
        e["from_state"] == e["to_state"] == S.DRAFT and e["at"] == later
        and "changed in the campaign file" in str(e["reason"]) for e in notes)


def _row(n: int) -> dict[str, object]:
    return {"campaign_id": 1, "account_id": 1, "plan_key": f"k{n}", "post_key": "k",
            "origin": "plan", "text": f"text {n}", "text_hash": "h", "due_at": NOW,
            "not_after": NOW, "next_attempt_at": NOW, "options": {}, "warnings": [],
            "length": 6, "length_limit": 280, "attempt": 0, "created_at": NOW,
            "updated_at": NOW}


@pytest.mark.parametrize("state", [s for s in S if s != S.DRAFT])
def test_new_posts_start_only_as_drafts(engine: Engine, tmp_path: Path, state: PostState) -> None:
    folder = _write(tmp_path / "campaign")
    plan(engine, folder, now=NOW)      # a campaign and accounts for the rows to point at
    before = _rows(engine)
    with Session(engine) as s, pytest.raises(TminusError, match=f"cannot start {state}"):
        create(s, [_row(1)], state, reason="x", now=NOW, actor="t")
    assert _rows(engine) == before


def test_created_posts_each_get_their_first_event(engine: Engine, tmp_path: Path) -> None:
    folder = _write(tmp_path / "campaign")
    plan(engine, folder, now=NOW)
    _, events_before = _rows(engine)
    with Session(engine) as s:
        assert create(s, [], S.DRAFT, reason="none", now=NOW, actor="t") == 0
        assert create(s, [_row(n) for n in range(3)], S.DRAFT, reason="added", now=NOW,
                      actor="t") == 3
        s.commit()
    posts, events = _rows(engine)
    new = [p for p in posts if str(p["plan_key"]).startswith("k")]
    assert [(e["post_id"], e["from_state"], e["to_state"], e["reason"])
            for e in events[len(events_before):]] == [(p["id"], None, S.DRAFT, "added") for p in new]


def _stored(rows: list[dict[str, object]]) -> Stored:
    """`rows` in SQLite's storage form, converted here, not by `create`."""
    def value(v: object) -> object:
        if isinstance(v, datetime):
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return json.dumps(v) if isinstance(v, dict | list) else v
    columns = tuple(rows[0])
    return Stored(columns, [tuple(value(r[k]) for k in columns) for r in rows])


def test_stored_rows_are_written_as_the_typed_rows(engine: Engine, tmp_path: Path) -> None:
    plan(engine, _write(tmp_path / "campaign"), now=NOW)
    later = NOW + timedelta(hours=3, microseconds=5)
    typed = [{**_row(n), "due_at": later, "options": {"language": "en"}, "warnings": ["w"]}
             for n in range(3)]
    with Session(engine) as s:
        create(s, typed, S.DRAFT, reason="typed", now=NOW, actor="t")
        create(s, _stored([{**r, "plan_key": f"s{r['plan_key']}"} for r in typed]), S.DRAFT,
               reason="stored", now=NOW, actor="t")
        s.commit()
    posts, _ = _rows(engine)
    ignored = ("id", "plan_key", "idempotency_key")
    got = {str(p["plan_key"]): {k: v for k, v in p.items() if k not in ignored} for p in posts}
    for n in range(3):
        assert got[f"sk{n}"] == got[f"k{n}"]
        assert got[f"k{n}"]["due_at"] == later and got[f"k{n}"]["warnings"] == ["w"]


def test_stored_rows_are_refused_with_their_state_or_off_sqlite(any_engine: Engine) -> None:
    rows = _stored([{**_row(1), "state": "draft"}])
    with Session(any_engine) as s, pytest.raises(ValueError, match="storage form"):
        create(s, rows, S.DRAFT, reason="x", now=NOW, actor="t")
    if any_engine.dialect.name != "sqlite":
        with Session(any_engine) as s, pytest.raises(ValueError, match="storage form"):
            create(s, _stored([_row(1)]), S.DRAFT, reason="x", now=NOW, actor="t")


def _post_indexes(engine: Engine) -> list[str]:
    return sorted(str(i["name"]) for i in sa.inspect(engine).get_indexes("post"))


def test_indexes_are_set_aside_only_for_a_table_no_larger_than_what_comes(
        engine: Engine, tmp_path: Path) -> None:
    all_of_them = _post_indexes(engine)
    assert len(all_of_them) >= 7
    with Session(engine) as s:
        made = indexes_set_aside(s, 0)          # an empty table: all plain ones go
        assert len(made) == 5 and all(sql.startswith("CREATE INDEX") for sql in made)
        left = [r[0] for r in s.connection().exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'post' "
            "AND sql IS NOT NULL ORDER BY name")]
        # the partial ones (thread posts only: a new post is in no thread yet) stay
        assert left == ["ix_post_parent_id", "ix_post_thread_root_id"]
        restore_indexes(s, made)
        assert s.connection().exec_driver_sql("PRAGMA cache_size").scalar() == -2000
        s.commit()
    assert _post_indexes(engine) == all_of_them
    plan(engine, _write(tmp_path / "campaign"), now=NOW)       # 240 posts in the table
    with Session(engine) as s:
        assert indexes_set_aside(s, 239) == []
        assert len(indexes_set_aside(s, 240)) == 5
        s.rollback()                            # the drop goes with the transaction
    assert _post_indexes(engine) == all_of_them


def test_a_planned_row_is_stored_as_the_models_write_it(engine: Engine, tmp_path: Path) -> None:
    """The bulk insert binds only what varies per row (shared values are literals in
    its statement, next_attempt_at takes due_at's parameter): each planned row, as
    SQLite stores it (raw, no type conversion), is the row the ORM writes for a `Post`
    of the same values with every other column left to the model's defaults."""
    plan(engine, _write(tmp_path / "campaign"), now=NOW, actor="tester")
    with engine.connect() as c:
        planned = [dict(r._mapping) for r in c.exec_driver_sql("SELECT * FROM post ORDER BY id")]
    given = ("campaign_id", "account_id", "plan_key", "post_key", "text", "text_hash",
             "length", "length_limit")
    with Session(engine) as s:
        for p in planned[:5] + planned[-5:]:
            s.add(Post(
                **{k: p[k] for k in given} | {"plan_key": f"orm-{p['plan_key']}"},
                idempotency_key=f"orm-{p['id']}", state=S.DRAFT,
                due_at=_stored_time(p["due_at"]), not_after=_stored_time(p["not_after"]),
                next_attempt_at=_stored_time(p["due_at"]), created_at=NOW, updated_at=NOW,
                options=json.loads(p["options"]), warnings=json.loads(p["warnings"])))
        s.commit()
    with engine.connect() as c:
        orm = {r.plan_key: dict(r._mapping) for r in c.exec_driver_sql(
            "SELECT * FROM post WHERE plan_key LIKE 'orm-%'")}
        typed = {r.plan_key: dict(r._mapping) for r in c.execute(sa.select(Post.__table__))}  # type: ignore[attr-defined]
    assert len(orm) == 10
    own = {"id", "plan_key", "idempotency_key"}
    for p in planned[:5] + planned[-5:]:
        o = orm[f"orm-{p['plan_key']}"]
        # (the ORM stores an empty JSON column as JSON's null, a plan as SQL's NULL:
        # both read back as None, as the typed comparison below checks)
        differ = {k for k in p if p[k] != o[k] or type(p[k]) is not type(o[k])}
        assert differ == own | {"approved", "receipt"}, (differ, p, o)
        t, u = typed[p["plan_key"]], typed[f"orm-{p['plan_key']}"]
        assert {k for k in t if t[k] != u[k]} == own, (t, u)


def _stored_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
