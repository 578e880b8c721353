"""The calendar: the .ics parses back with icalendar, one event per post with a stable
UID, STATUS by state, SEQUENCE bumped when a post moves, is approved or is edited, the
deadline with its alarm; and the dashboard's feed behind a secret, revocable address."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from icalendar import Calendar
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from scheduler.clock import VirtualClock
from scheduler.db import session
from scheduler.models import Post
from scheduler.planner import plan
from scheduler.service import approve, edit_post
from scheduler.service.calendar import calendar_ics
from tests.conftest import CampaignFactory, simple_toml
from tests.webfixtures import DEADLINE, HTML, NOW, app_for, csrf_of, log_in, setup


def _events(data: bytes) -> dict[str, Any]:
    cal = Calendar.from_ical(data)
    return {str(e["uid"]): e for e in cal.walk("VEVENT")}


def _posts(engine: Engine) -> list[Post]:
    with session(engine) as s:
        return list(s.exec(select(Post).order_by(col(Post.id))).all())


def test_the_ics_parses_back_and_sequence_follows_each_change(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml())
    plan(engine, folder, now=NOW)
    first = _events(calendar_ics(engine, "testcamp", NOW))
    posts = _posts(engine)
    assert len(first) == len(posts) + 1
    deadline = first[next(u for u in first if u.startswith("deadline-"))]
    assert deadline["dtstart"].dt == DEADLINE
    alarm = deadline.walk("VALARM")[0]
    assert alarm["trigger"].dt == -timedelta(hours=1) and str(alarm["action"]) == "DISPLAY"
    for p in posts:
        e = first[f"{p.idempotency_key}@tminus"]
        assert (e["dtstart"].dt, str(e["status"]), e["sequence"]) == (p.due_at, "TENTATIVE", 0)
        assert str(e["description"]).startswith(p.text)
    # nothing changed: the same sequences
    again = _events(calendar_ics(engine, "testcamp", NOW))
    assert {u: e["sequence"] for u, e in again.items()} == {u: e["sequence"] for u, e in first.items()}

    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=NOW)
    approved = _events(calendar_ics(engine, "testcamp", NOW))
    assert {str(e["status"]) for u, e in approved.items() if not u.startswith("deadline")} == {"CONFIRMED"}
    assert {e["sequence"] for u, e in approved.items() if not u.startswith("deadline")} == {1}

    # the deadline moves an hour: a planned post's time is part of what it is, so the
    # last calls at the old time are cancelled (and say so) and new ones appear at the
    # new time; the dailies' countdown text changes, and they say so too
    plan(engine, make_campaign(simple_toml("2099-01-20T13:00:00-05:00"), name=folder.name),
         now=NOW, cancel_ok=True)
    after = _events(calendar_ics(engine, "testcamp", NOW))
    now_posts = {p.id: p for p in _posts(engine)}
    for p in posts:
        e = after[f"{p.idempotency_key}@tminus"]
        assert e["sequence"] == 2                        # approved, then moved or re-worded
        if p.plan_key.startswith("last-call"):
            assert str(e["status"]) == "CANCELLED"
    new = [p for p in now_posts.values() if p.id not in {q.id for q in posts}]
    assert sorted(p.due_at for p in new) == [DEADLINE - timedelta(hours=1)] * 2
    assert all(after[f"{p.idempotency_key}@tminus"]["sequence"] == 0 for p in new)
    assert len(after) == len(now_posts) + 1

    # an edit (text) is a change too; the UID stays
    p = next(q for q in _posts(engine) if q.state == "draft" or q.state == "queued")
    before = _events(calendar_ics(engine, "testcamp", NOW))[f"{p.idempotency_key}@tminus"]["sequence"]
    edit_post(engine, p.id or 0, "A new text for this post #TestTag", by="Ed", now=NOW)
    e = _events(calendar_ics(engine, "testcamp", NOW))[f"{p.idempotency_key}@tminus"]
    assert e["sequence"] == before + 1 and str(e["description"]).startswith("A new text")


def test_calendar_command_writes_the_file(cli: Any, make_campaign: CampaignFactory,
                                          tmp_path: Path) -> None:
    folder = make_campaign(simple_toml())
    assert cli("plan", str(folder)).code == 0
    r = cli("calendar", "testcamp", "-o", str(tmp_path / "c.ics"))
    assert r.code == 0 and "5 post(s) and the deadline" in r.out
    assert len(_events((tmp_path / "c.ics").read_bytes())) == 6
    r = cli("calendar", "nosuch", "-o", str(tmp_path / "d.ics"))
    assert r.code == 2 and not (tmp_path / "d.ics").exists()
    r = cli("calendar", "testcamp", "-o", str(tmp_path / "no" / "such" / "dir.ics"))
    assert r.code == 2 and "--output" in r.err


def test_the_feed_behind_a_secret_address(engine: Engine, tmp_path: Path) -> None:
    setup(engine, tmp_path)
    clock = VirtualClock(NOW)
    web = app_for(engine, clock)
    assert web.get("/calendar/guess.ics").status_code == 404
    log_in(web, "Vi Ewer")
    assert web.get("/c/testcamp/calendar", headers=HTML).status_code == 403
    web.cookies.clear()
    log_in(web, "Ap Prover")
    assert "Calendar feed" in web.get("/c/testcamp", headers=HTML).text
    page = web.get("/c/testcamp/calendar", headers=HTML)
    assert page.status_code == 200 and "No address yet" in page.text
    r = web.post("/c/testcamp/calendar", data={"csrf": csrf_of(page.text), "do": "new"},
                 follow_redirects=True)
    address = r.text.split('class="feed-address">')[1].split("<")[0]
    path = address.replace("http://127.0.0.1", "")
    web.cookies.clear()                                      # a calendar app: no login
    feed = web.get(path)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    assert len(_events(feed.content)) == 6
    log_in(web, "Ap Prover")
    page = web.get("/c/testcamp/calendar", headers=HTML)
    web.post("/c/testcamp/calendar", data={"csrf": csrf_of(page.text), "do": "new"})
    assert web.get(path).status_code == 404                  # the old address is shut
    page = web.get("/c/testcamp/calendar", headers=HTML)
    new_path = page.text.split('class="feed-address">')[1].split("<")[0].replace("http://127.0.0.1", "")
    assert web.get(new_path).status_code == 200
    web.post("/c/testcamp/calendar", data={"csrf": csrf_of(page.text), "do": "revoke"})
    assert web.get(new_path).status_code == 404
