"""The benchmark harness keeps working: it runs at its smallest sizes and reports every
figure with a number. Benchmarks are not tests: no timing target is asserted here
(`python -m bench` prints whether each was met); behaviour is, e.g. no duplicates."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bench.baselines import next_poll_lateness
from bench.common import percentile, seed_queue
from scheduler.db import session
from scheduler.models import Post
from scheduler.queue import next_due
from tests.conftest import ROOT

FIGURES = {
    "plan.seconds", "plan.replan", "plan.speedup",
    "start.first_tick", "start.tick", "start.rss",
    "accuracy.p99", "accuracy.max",
    "burst.all_out", "burst.p99",
    "postgres.daemons_1.posts_per_s", "postgres.daemons_2.posts_per_s",
    "postgres.daemons_4.posts_per_s", "postgres.duplicates",
    "latency.large", "latency.small", "latency.in_process", "latency.postgres_2",
    "rehearse.call", "rehearse.command",
}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.xdist_group("bench")    # a worker of its own: it starts with the suite (conftest)
def test_quick_bench_reports_every_figure(tmp_path: Path, pg_server: str) -> None:
    results = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    env["TMINUS_BENCH_POSTGRES_URL"] = f"{pg_server}/postgres"   # the tests' own server
    # three at a time, each in its own process: the figures disturb each other, which
    # does not matter here
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--jobs", "3",
                           "--json", str(results), "--tmp", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| what" in done.stdout and "APScheduler" in done.stdout

    data = json.loads(results.read_text(encoding="utf-8"))
    assert {k: r["error"] for k, r in data["benchmarks"].items()} == dict.fromkeys(("plan", "start", "accuracy", "burst", "postgres", "latency", "rehearse"))
    assert _number(data["machine"]["cores"]) and data["machine"]["python"] and data["machine"]["sqlite"]
    figures = {f["key"]: f for f in data["figures"]}
    assert set(figures) == FIGURES
    for key, f in figures.items():
        assert _number(f["value"]), key
        for name, b in f["baselines"].items():
            assert _number(b["value"]), (key, name)
    assert figures["plan.seconds"]["baselines"]["apscheduler"]["note"]   # says it extrapolates

    # never twice, never lost: every post of every PostgreSQL run once, whatever the
    # number of daemons
    assert figures["postgres.duplicates"]["value"] == 0
    runs = figures["postgres.duplicates"]["raw"]["runs"]
    assert set(runs) == {"1", "2", "4"}
    for run in runs.values():
        assert run["duplicates"] == 0 and run["missing"] == 0
        assert run["published_in_db"] == run["posts"]
        assert run["daemons"]["error_lines"] == []

    # the latency bursts through the real SDKs: every post on the fake platforms once
    latency = figures["latency.large"]["raw"]
    for run in [*latency["tminus"].values(), *latency["postgres"].values()]:
        assert run["duplicates"] == 0 and run["missing"] == 0
        assert run["on_platform"] == run["published_in_db"] == run["posts"]
        assert run["daemons"]["error_lines"] == []
    for run in latency["apscheduler"].values():
        assert run["on_platform"] == run["posts"]


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(map(float, range(101))), 99) == 99.0


def test_polling_lateness_is_the_wait_for_the_next_poll() -> None:
    assert next_poll_lateness([0.0, 1.0, 29.0, 31.0], phase=0.0, period=30.0) == [0.0, 29.0, 1.0, 29.0]
    assert next_poll_lateness([10.0], phase=12.5, period=30.0) == [2.5]


def test_seeded_posts_read_back_through_the_models(engine: Engine) -> None:
    """The fast SQLite path writes what SQLAlchemy's own types would."""
    now = datetime(2099, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)
    dues = [now + timedelta(seconds=i * 1.5) for i in range(5)]
    queued = seed_queue(engine, dues, accounts=2)
    assert [q.post_id for q in queued] == [1, 2, 3, 4, 5]
    with session(engine) as s:
        posts = s.exec(select(Post).order_by(Post.id)).all()  # type: ignore[arg-type]
    assert [p.due_at for p in posts] == dues
    assert all(p.state == "queued" and p.approved is not None for p in posts)
    assert [p.account_id for p in posts] == [1, 2, 1, 2, 1]
    assert next_due(engine, dues[0] - timedelta(minutes=1)) == dues[0]
