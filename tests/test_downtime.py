"""The daemon was down for two days: each overdue post is sent late in due order
within its account's budget if its not_after has not passed, or expired with the
reason; nothing goes out after the deadline, however long the downtime."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from scheduler.clock import VirtualClock
from scheduler.models import PostState
from scheduler.planner import plan
from scheduler.service import approve
from tests.conftest import CampaignFactory, simple_toml
from tests.test_queue import DEADLINE, START, _events, _posts, _worker

S = PostState


def test_two_days_down_then_back(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(accounts="""
        [accounts.org]
        platform = "dryrun"
        budget = { posts = 2, per = "1h" }
    """, posts="""
        [[posts]]
        key = "daily"
        text = "{{ time_left }} left {{ hashtags }}"
        accounts = ["org"]
        schedule = { daily = "09:00", from = "T-4d" }
        expires = "3h"

        [[posts]]
        key = "standing"
        text = "Standing ask #{{ due.strftime('%H%M') }} {{ hashtags }}"
        accounts = ["org"]
        schedule = { at = ["T-3d", "T-2d23h", "T-2d22h", "T-2d21h"] }
        expires = "4d"

        [[posts]]
        key = "final"
        text = "Final hours: {{ hours_left }} {{ hashtags }}"
        accounts = ["org"]
        schedule = { at = "T-6h" }
        expires = "10h"
    """))
    plan(engine, folder, now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(START)
    worker, pub = _worker(engine, clock)

    # up for the first morning: the first daily goes out on time
    first = min(p.due_at for p in _posts(engine))
    clock.set(first)
    assert worker.tick().sent == 1

    # down for two days: back at T-1d10h
    back = DEADLINE - timedelta(days=1, hours=10)
    clock.set(back)
    worker.tick()
    posts = {p.id: p for p in _posts(engine)}
    dailies = [p for p in posts.values() if p.post_key == "daily"]
    standing = sorted((p for p in posts.values() if p.post_key == "standing"),
                      key=lambda p: p.due_at)

    # dailies due during the downtime are past their 3 h: expired, with the reason
    missed = [p for p in dailies if first < p.due_at < back]
    assert missed and all(p.state == S.EXPIRED for p in missed)
    for p in missed:
        assert p.id is not None
        assert "not sent by its not_after" in _events(engine, p.id)[-1].reason
    # standing posts are still allowed: sent late, in due order, 2 per hour (budget)
    assert [p.state for p in standing] == [S.PUBLISHED, S.PUBLISHED, S.QUEUED, S.QUEUED]
    sent_ids = [line["post_id"] for line in pub.inner.sent]
    assert sent_ids[1:] == [standing[0].id, standing[1].id]
    assert all(p.next_attempt_at == back + timedelta(hours=1) for p in standing[2:])

    clock.set(back + timedelta(hours=1))
    worker.tick()
    assert [p.state for p in sorted((q for q in _posts(engine) if q.post_key == "standing"),
                                    key=lambda q: q.due_at)] == [S.PUBLISHED] * 4

    # down again until after the deadline: the final post (due T-6h) and the last
    # daily are never sent late past the deadline
    clock.set(DEADLINE + timedelta(hours=5))
    worker.tick()
    for p in _posts(engine):
        assert p.state in (S.PUBLISHED, S.EXPIRED)
        if p.state == S.PUBLISHED:
            assert p.published_at is not None and p.published_at < DEADLINE
    final = next(p for p in _posts(engine) if p.post_key == "final")
    assert final.state == S.EXPIRED
    assert all(datetime.fromisoformat(x["at"]) < DEADLINE for x in pub.inner.sent)
