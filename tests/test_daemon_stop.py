"""SIGTERM stops the daemon whatever it is doing, including the instant it works out
when to wake next (under APScheduler, once a deadlock: add_job waited on the job store
lock that shutdown(wait=True) held while it waited for that same job)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading, time
    from pathlib import Path
    from scheduler.clock import SystemClock
    from scheduler.daemon import Daemon, Worker
    from scheduler.db import make_engine, upgrade
    from scheduler.publishers import Publishers
    from scheduler.settings import Settings

    folder = Path(sys.argv[1])
    url = f"sqlite:///{folder}/t.db"
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(database_url=url, dryrun_outbox=folder / "o.jsonl", dry_run=True,
                        poll_seconds=0.05)
    worker = Worker(engine, settings, SystemClock(), Publishers(engine, settings, dry_run=True))
    daemon = Daemon(worker)
    inside = threading.Event()
    real_next_wake = worker.next_wake

    def slow_next_wake():
        inside.set()
        time.sleep(0.3)              # a slow query, and the signal lands meanwhile
        return real_next_wake()

    worker.next_wake = slow_next_wake

    def terminate():
        inside.wait()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate, daemon=True).start()
    daemon.run()
    print("stopped cleanly")
""")


@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_while_the_tick_re_arms_stops_the_daemon(tmp_path: Path, attempt: int) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stopped cleanly" in done.stdout
