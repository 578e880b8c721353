"""The endpoints for machines: /healthz, /readyz (503 with reasons), and /metrics,
parsed back with prometheus_client's own parser, equal to the database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.engine import Engine
from sqlmodel import select

from jobs.errors import AuthError, PermanentError
from scheduler.clock import VirtualClock
from scheduler.db import session
from scheduler.models import Account
from scheduler.models import Daemon as DaemonRow
from scheduler.service import approve
from scheduler.service.pauses import Target, pause, resume
from tests.test_queue import Scripted, _worker
from tests.webfixtures import DEADLINE, NOW, app_for, setup

LAST_CALL = DEADLINE - timedelta(hours=2)


def _samples(text: str) -> dict[str, list[Sample]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _beat(engine: Engine, clock: VirtualClock) -> None:
    with session(engine) as s:
        s.add(DaemonRow(id="d1", hostname="h", pid=1, started_at=clock.now(), beat_at=clock.now()))


def test_readyz_says_why_not(engine: Engine, tmp_path: Path) -> None:
    setup(engine, tmp_path)
    clock = VirtualClock(NOW)
    web = app_for(engine, clock)
    assert web.get("/healthz").text == "ok"
    r = web.get("/readyz")
    assert r.status_code == 503 and r.json()["reasons"] == ["no daemon alive (none beat within 15 s)"]
    _beat(engine, clock)
    assert web.get("/readyz").json() == {"ready": True, "reasons": [], "notes": []}
    # a person's pause is intended: said, still ready
    pause(engine, Target(campaign="testcamp"), reason="news broke", by="Ana", now=clock.now())
    r = web.get("/readyz")
    assert r.status_code == 200 and r.json()["notes"] == ["campaign testcamp paused by Ana: news broke"]
    # a refused login is not
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=clock.now())
    clock.set(DEADLINE - timedelta(hours=3))
    worker, _ = _worker(engine, clock, Scripted(clock, [AuthError("401 bad token")]))
    resume(engine, Target(campaign="testcamp"), by="Ana", now=clock.now())
    worker.tick()
    _beat_again(engine, clock)
    r = web.get("/readyz")
    assert r.status_code == 503
    assert [x for x in r.json()["reasons"] if x.startswith("account org paused")]
    # twenty seconds without a beat: dead
    clock.advance(20)
    assert "no daemon alive (none beat within 15 s)" in web.get("/readyz").json()["reasons"]


def _beat_again(engine: Engine, clock: VirtualClock) -> None:
    with session(engine) as s:
        row = s.get(DaemonRow, "d1")
        assert row is not None
        row.beat_at = clock.now()
        s.add(row)


def test_metrics_expose_the_named_series_equal_to_the_database(engine: Engine, tmp_path: Path) -> None:
    setup(engine, tmp_path)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=NOW)
    clock = VirtualClock(LAST_CALL + timedelta(seconds=90))     # the last calls, 90 s late
    _beat(engine, clock)
    worker, _ = _worker(engine, clock, Scripted(clock, [PermanentError("refused")]))
    worker.tick()            # the day's daily fails; the two last calls go out; two expired
    web = app_for(engine, clock)
    r = web.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = _samples(r.text)
    posts = {(s.labels["state"], s.labels["platform"]): s.value for s in m["tminus_posts"]}
    assert posts == {("published", "dryrun"): 2, ("failed", "dryrun"): 1, ("expired", "dryrun"): 2}
    outcomes = {s.labels["outcome"]: s.value for s in m["tminus_publish_outcomes"]
                if s.name.endswith("_total")}
    assert outcomes == {"published": 2, "failed": 1}
    late = {s.labels["le"]: s.value for s in m["tminus_publish_lateness_seconds"]
            if s.name.endswith("_bucket")}
    assert late["60"] == 0 and late["300"] == 2 and late["+Inf"] == 2
    total = [s.value for s in m["tminus_publish_lateness_seconds"] if s.name.endswith("_sum")]
    assert total == [180.0]
    assert [s.value for s in m["tminus_deadline_seconds"]] == [
        (DEADLINE - clock.now()).total_seconds()]
    assert [s.value for s in m["tminus_daemon_last_heartbeat_timestamp_seconds"]] == [
        clock.now().timestamp()]
    assert [s.value for s in m["tminus_daemons_alive"]] == [1]
    # the dry-run tier's 1,000 a minute, less the last call each sent this minute (the
    # failed daily was refused: it used no room)
    left = {s.labels["account"]: s.value for s in m["tminus_rate_budget_remaining"]}
    assert left == {"org": 999, "partner": 999}


def test_rate_budget_left_per_account(engine: Engine, tmp_path: Path) -> None:
    setup(engine, tmp_path)
    with session(engine) as s:
        for a in s.exec(select(Account)).all():
            a.budget_posts, a.budget_seconds = 5, 3600
            s.add(a)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=NOW)
    clock = VirtualClock(LAST_CALL)
    worker, _ = _worker(engine, clock)
    worker.tick()
    m = _samples(app_for(engine, clock).get("/metrics").text)
    left = {s.labels["account"]: s.value for s in m["tminus_rate_budget_remaining"]}
    # org sent the day's daily and its last call within the hour, partner its last call
    assert left == {"org": 3, "partner": 4}


def test_metrics_token(engine: Engine, tmp_path: Path) -> None:
    setup(engine, tmp_path)
    web = app_for(engine, VirtualClock(NOW), TMINUS_METRICS_TOKEN="scrape-me-1234")
    assert web.get("/metrics").status_code == 401
    assert web.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    r = web.get("/metrics", headers={"authorization": "Bearer scrape-me-1234"})
    assert r.status_code == 200 and "tminus_posts" in r.text
