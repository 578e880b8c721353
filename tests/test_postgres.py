"""PostgreSQL: the schema through Alembic, claims with SKIP LOCKED, LISTEN/NOTIFY."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from scheduler.db import current_revision, head_revision, make_engine, upgrade
from scheduler.dispatch import claim
from scheduler.notify import Listener, notify
from scheduler.planner import plan
from scheduler.service import approve
from tests.conftest import CampaignFactory, simple_toml
from tests.test_queue import START, _posts

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url: str) -> Engine:
    eng = make_engine(pg_url)
    upgrade(eng)
    return eng


def test_alembic_brings_postgres_to_head(pg: Engine) -> None:
    assert current_revision(pg) == head_revision()


def test_concurrent_claims_never_take_the_same_post(pg: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts="""
        [[posts]]
        key = "many"
        text = "{{ minutes_left }} minutes {{ account }} {{ hashtags }}"
        accounts = ["org", "partner"]
        schedule = { cron = "*/5 * * * *", from = "T-20h" }
        expires = "1d"
    """))
    plan(pg, folder, now=START)
    approve(pg, campaign="testcamp", post_ids=[], by="ana", now=START)
    total = len(_posts(pg))
    assert total == 2 * 240
    now = max(p.due_at for p in _posts(pg))
    taken: list[list[int]] = [[] for _ in range(4)]

    def worker(i: int) -> None:
        eng = make_engine(str(pg.url.render_as_string(hide_password=False)))
        while batch := claim(eng, now=now, owner=f"w{i}", lease=timedelta(minutes=2), limit=7):
            taken[i].extend(c.post_id for c in batch)
        eng.dispose()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [pid for part in taken for pid in part]
    assert len(every) == total and len(set(every)) == total      # all claimed, none twice
    assert sum(1 for part in taken if part) >= 2                   # the work was shared


def test_listen_notify_wakes_a_listener(pg: Engine) -> None:
    woke = threading.Event()
    listener = Listener(pg, woke.set)
    listener.start()
    try:
        # the listener needs a moment to LISTEN; notify until it hears one (bounded)
        for _ in range(50):
            notify(pg)
            if woke.wait(0.1):
                break
        assert woke.is_set()
    finally:
        listener.stop()
        listener.join(5)
