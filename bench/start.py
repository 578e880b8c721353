"""start: the daemon starting on a big queue.

Posts are inserted straight into a SQLite table (not planned): a few due now, so the
first tick has real work, the rest spread over the next weeks. A fresh process then
builds the daemon as `tminus run --dry-run` does (engine, schema check, publishers,
Worker, Daemon) and runs it; the figures are the time from the start of that setup to
the end of the first `tick()` and the first tick's own duration. The peak RSS is the
real command's: `tminus run --dry-run` itself, the console script a person or a service
starts, on the same queue until it has sent the due posts (VmHWM, read from /proc
before it is stopped). The same is done for a small and a big queue: memory should not
grow with it.

Baselines, each in its own process on the same machine:
- APScheduler: a `SQLAlchemyJobStore` holding as many jobs (the same few due now);
  time from building the scheduler to the due jobs having run, and peak RSS;
- the polling daemon: time to its first poll's end on the same table, and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.baselines import Job, aps_fill
from bench.common import (
    Baseline,
    Figure,
    Sizes,
    Stopwatch,
    count_lines,
    fresh_engine,
    peak_rss_mb,
    post_text,
    print_json,
    run_child,
    seed_queue,
    sqlite_url,
    wait_for_lines,
    workdir,
)
from bench.daemons import Daemons

TARGET_SECONDS = 1.0
TARGET_MB = 150.0
FLAT_MB = 15.0          # "flat": the big queue's peak RSS within this of the small one's
SPREAD = timedelta(days=30)


def _dues(n: int, due_now: int, now: datetime) -> list[datetime]:
    later = n - due_now
    step = SPREAD / max(later, 1)
    return ([now - timedelta(seconds=1)] * due_now
            + [now + timedelta(hours=1) + i * step for i in range(later)])


def _reset(path: Path, due_now: int) -> None:
    """Put the due posts back in the queue, so the next daemon finds the same work."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE post SET state = 'queued', attempt = 0, lease_owner = NULL, "
                     "lease_until = NULL, claimed_at = NULL, published_at = NULL, remote_id = NULL, "
                     "remote_url = NULL, receipt = NULL, last_error = NULL WHERE id <= ?", (due_now,))
        conn.execute("DELETE FROM event WHERE post_id <= ?", (due_now,))
        conn.execute("DELETE FROM daemon")


def run(sizes: Sizes, tmp: Path) -> list[Figure]:
    per_size: dict[int, dict[str, Any]] = {}
    with workdir(tmp, "start") as wd:
        for n in sizes.start_queues:
            db = wd / f"queue-{n}.db"
            engine = fresh_engine(sqlite_url(db))
            with Stopwatch() as seeded:
                seed_queue(engine, _dues(n, sizes.start_due, datetime.now(UTC)),
                           accounts=sizes.start_accounts)
            engine.dispose()
            launched = time.time()
            tminus = run_child("bench.start", "--child", sqlite_url(db), str(wd / f"out-{n}.jsonl"))
            tminus["process_to_first_tick_s"] = tminus["first_tick_end_epoch"] - launched
            assert tminus["sent"] == sizes.start_due, tminus
            _reset(db, sizes.start_due)
            tminus["command"] = _command(sqlite_url(db), wd, n, sizes.start_due)
            per_size[n] = {"tminus": tminus, "seed_s": seeded.seconds,
                           "db_mb": db.stat().st_size / 1e6}
            if n == max(sizes.start_queues):
                _reset(db, sizes.start_due)
                per_size[n]["polling"] = run_child("bench.baselines", "poll-once", "--url",
                                                   sqlite_url(db), "--outbox", str(wd / f"poll-{n}.jsonl"))
            for f in wd.glob(f"queue-{n}.db*"):
                f.unlink()

        m = sizes.aps_start_jobs
        now = datetime.now(UTC)
        jobs = (Job(i + 1, f"acct{i % sizes.start_accounts:04d}", due,
                    post_text(i % sizes.start_accounts, i + 1))
                for i, due in enumerate(_dues(m, sizes.start_due, now)))
        with Stopwatch() as filled:
            aps_fill(sqlite_url(wd / "aps.db"), wd / "aps-out.jsonl", jobs)
        aps = run_child("bench.aps", "--url", sqlite_url(wd / "aps.db"),
                        "--expect", str(sizes.start_due), "--timeout", "300")
        aps.update(jobs=m, fill_s=filled.seconds)

    small, big = min(per_size), max(per_size)
    t_big, t_small = per_size[big]["tminus"], per_size[small]["tminus"]
    rss_big, rss_small = t_big["command"]["peak_rss_mb"], t_small["command"]["peak_rss_mb"]
    growth = rss_big - rss_small
    raw = {"queues": per_size, "apscheduler": aps, "due_at_start": sizes.start_due}
    aps_note = f"{m:,} jobs in its store" + ("" if m == big else f" (not {big:,})")
    return [
        Figure("start.first_tick", f"daemon start, {big:,} posts queued: setup → end of first tick",
               t_big["setup_to_first_tick_s"], "s", target=f"< {TARGET_SECONDS:g} s",
               met=t_big["setup_to_first_tick_s"] < TARGET_SECONDS,
               baselines={"apscheduler": Baseline(aps["until_expected_s"], "s",
                                                  f"{aps_note}: start → {sizes.start_due} due jobs ran"),
                          "polling": Baseline(per_size[big]["polling"]["setup_to_first_poll_s"], "s",
                                              "setup → end of first poll")},
               note=(f"{sizes.start_due} posts due at start; from process launch "
                     f"(imports included): {t_big['process_to_first_tick_s']:.2f} s; "
                     f"{small:,} queued: {t_small['setup_to_first_tick_s']:.3f} s"),
               raw=raw),
        Figure("start.tick", f"daemon start, {big:,} queued: the first tick alone",
               t_big["first_tick_s"], "s",
               note=f"{small:,} queued: {t_small['first_tick_s'] * 1000:.1f} ms", raw=raw),
        Figure("start.rss", f"`tminus run --dry-run` peak RSS, {big:,} posts queued", rss_big, "MB",
               target=f"< {TARGET_MB:g} MB, +< {FLAT_MB:g} MB from {small:,}, ≤ APScheduler's",
               met=(rss_big < TARGET_MB and growth < FLAT_MB
                    and aps.get("peak_rss_mb") is not None and rss_big <= aps["peak_rss_mb"]),
               baselines={"apscheduler": Baseline(aps["peak_rss_mb"], "MB", aps_note),
                          "polling": Baseline(per_size[big]["polling"]["peak_rss_mb"], "MB")},
               note=(f"{small:,} queued: {rss_small:.1f} MB (growth {growth:+.1f} MB); the "
                     f"daemon built in the benchmark's own process: {t_big['peak_rss_mb']:.1f} MB"),
               raw=raw),
    ]


def _command(url: str, wd: Path, n: int, due: int) -> dict[str, Any]:
    """`tminus run --dry-run` itself on the queue: its peak RSS once it has sent the
    `due` posts (and had a second more: bench/daemons.py `Daemons.stop`)."""
    daemons = Daemons(url, wd, tag=f"run-{n}-")
    daemons.start()
    wait_for_lines(daemons.outboxes, due, timeout=300, alive=daemons.alive)
    stopped = daemons.stop()
    sent = count_lines(daemons.outboxes)
    assert sent == due and stopped["hung_on_sigterm"] == 0, (sent, stopped)
    return {"peak_rss_mb": stopped["peak_rss_mb"][0], "sent": sent}


# -- the child: one daemon start, measured from inside ----------------------------------


def child(url: str, outbox: Path) -> dict[str, Any]:
    t_import = time.perf_counter()
    from scheduler.clock import SystemClock
    from scheduler.daemon import Daemon, Worker
    from scheduler.db import DAEMON_PAGE_CACHE_KIB, ensure_schema, make_engine
    from scheduler.publishers import Publishers
    from scheduler.settings import Settings
    out: dict[str, Any] = {"import_s": time.perf_counter() - t_import}

    t0 = time.perf_counter()
    # what `tminus run --dry-run` builds
    settings = Settings(database_url=url, dryrun_outbox=outbox, dry_run=True, log_level="WARNING")
    engine = make_engine(settings.database_url, page_cache_kib=DAEMON_PAGE_CACHE_KIB)
    ensure_schema(engine)
    worker = Worker(engine, settings, SystemClock(), Publishers(engine, settings, dry_run=True))
    daemon = Daemon(worker)
    out["setup_s"] = time.perf_counter() - t0

    tick, wake = worker.tick, worker.next_wake

    def first_tick(**kw: Any) -> Any:
        started = time.perf_counter()
        try:
            result = tick(**kw)
        except BaseException:       # a broken tick ends the run instead of looping forever
            os.kill(os.getpid(), signal.SIGTERM)
            raise
        end = time.perf_counter()
        if "first_tick_s" not in out:
            out.update(first_tick_s=end - started, setup_to_first_tick_s=end - t0,
                       first_tick_end_epoch=time.time(), sent=result.sent)
            # SIGTERM, the daemon's own way to stop, half a second after the first tick:
            # the measured tick is over and its results recorded by then
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return result

    def timed_wake() -> datetime:
        started = time.perf_counter()
        at = wake()
        out.setdefault("next_wake_s", time.perf_counter() - started)
        return at

    worker.tick = first_tick            # type: ignore[method-assign]
    worker.next_wake = timed_wake       # type: ignore[method-assign]
    daemon.run()
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.start")
    p.add_argument("--child", nargs=2, metavar=("URL", "OUTBOX"), required=True)
    args = p.parse_args()
    print_json(child(args.child[0], Path(args.child[1])))


if __name__ == "__main__":
    main()
