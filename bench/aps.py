"""APScheduler's own process, as the obvious program would be: APScheduler, its job
store and the job, nothing of the benchmark (no argparse, no `bench.common`; they cost
this process 2.5 MB, which its peak RSS, compared with `tminus run`'s, must not carry).

    python -m bench.aps --url URL --expect N [--timeout S] [--preload]

starts a `BackgroundScheduler` on the SQLAlchemyJobStore at URL, waits until N jobs ran
(or were missed) and prints one JSON line: the seconds from building the scheduler, the
counts, and the peak RSS (VmHWM). `send` is the job of the start, accuracy and burst
benchmarks (bench/baselines.py fills the stores with it).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_write_lock = threading.Lock()


def append_line(outbox: Path, line: dict[str, Any]) -> None:
    """What the dry-run adapter does for each post: one line, flushed and fsynced."""
    with _write_lock, outbox.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def send(outbox: str, post_id: int, account: str, due: str, text: str) -> None:
    """The APScheduler job: send one post through the 'dry-run adapter'."""
    append_line(Path(outbox), {"at": datetime.now(UTC).isoformat(), "post_id": post_id,
                               "account": account, "platform": "dryrun", "due": due,
                               "text": text})


def aps_run(url: str, expect: int, timeout: float) -> dict[str, Any]:
    """Start a scheduler on the store and wait until `expect` jobs ran (or were
    missed); returns how long that took from the scheduler's construction."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    counts = {"executed": 0, "error": 0, "missed": 0}
    lock = threading.Lock()
    done = threading.Event()

    def listen(event: Any) -> None:
        with lock:
            kind = ("executed" if event.code == EVENT_JOB_EXECUTED else
                    "missed" if event.code == EVENT_JOB_MISSED else "error")
            counts[kind] += 1
            if sum(counts.values()) >= expect:
                done.set()

    t0 = time.perf_counter()
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)},
                                    timezone=UTC)
    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start()
    started = time.perf_counter() - t0
    finished = done.wait(timeout) or expect == 0
    seconds = time.perf_counter() - t0
    scheduler.shutdown(wait=True)
    return {"start_s": started, "until_expected_s": seconds, "finished": finished, **counts,
            "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    """VmHWM, as bench.common.peak_rss_mb reads it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> None:
    known = {"--url", "--expect", "--timeout"}
    preload = "--preload" in argv
    rest = [a for a in argv if a != "--preload"]
    options = dict(zip(rest[::2], rest[1::2], strict=False))
    if len(rest) % 2 or not {"--url", "--expect"} <= options.keys() <= known:
        sys.exit("usage: python -m bench.aps --url URL --expect N [--timeout S] [--preload]")
    if preload:     # the latency benchmark's job sends through tminus's adapters
        import jobs.adapters.bluesky
        import jobs.adapters.mastodon
        import jobs.adapters.x  # noqa: F401
    result = aps_run(options["--url"], int(options["--expect"]),
                     float(options.get("--timeout", 600)))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
