"""Real `tminus run --dry-run` processes for the accuracy, burst and PostgreSQL runs, and
moving seeded posts to a time chosen once the daemons are up."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import TMINUS, child_env, process_hwm_mb, table

STOP_TIMEOUT = 5.0
# Seconds a daemon gets to finish its tick before SIGTERM; one that has not exited
# STOP_TIMEOUT after it is killed and counted as hung (bench/README.md).
SETTLE = 1.0


class Daemons:
    """`count` daemons on one database, each with its own outbox file."""

    def __init__(self, url: str, workdir: Path, count: int = 1, *, tag: str = "d",
                 dry_run: bool = True, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.dry_run = dry_run
        self.env = env or {}        # more TMINUS_* variables (an account's credentials)
        self.outboxes = [workdir / f"{tag}{i}-outbox.jsonl" for i in range(count)]
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[list[str]] = []
        self._started: list[threading.Event] = []

    def start(self, timeout: float = 60) -> float:
        """Start them all; returns the seconds until every one logged "started"."""
        t0 = time.perf_counter()
        for outbox in self.outboxes:
            env = {**child_env(database_url=self.url, dryrun_outbox=str(outbox),
                               log_level="INFO"), **self.env}
            cmd = [TMINUS, "run", *(["--dry-run"] if self.dry_run else [])]
            proc = subprocess.Popen(cmd, env=env, text=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            lines: list[str] = []
            started = threading.Event()
            threading.Thread(target=_read, args=(proc, lines, started), daemon=True).start()
            self.procs.append(proc)
            self.logs.append(lines)
            self._started.append(started)
        limit = time.monotonic() + timeout
        for proc, started, lines in zip(self.procs, self._started, self.logs, strict=False):
            while not started.wait(0.05):
                if proc.poll() is not None or time.monotonic() > limit:
                    self.stop()
                    raise RuntimeError("a tminus daemon did not start:\n" + "".join(lines[-30:]))
        return time.perf_counter() - t0

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def peak_rss_mb(self) -> list[float | None]:
        return [process_hwm_mb(p.pid) for p in self.procs]

    def stop(self) -> dict[str, Any]:
        """SIGTERM each, once they have had SETTLE seconds to finish their tick; one that has
        not exited after STOP_TIMEOUT is killed and counted as hung."""
        time.sleep(SETTLE)
        rss = self.peak_rss_mb()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        hung, codes = 0, []
        for p in self.procs:
            try:
                codes.append(p.wait(STOP_TIMEOUT))
            except subprocess.TimeoutExpired:
                hung += 1
                p.kill()
                codes.append(p.wait())
        errors = [line.rstrip() for lines in self.logs for line in lines
                  if " ERROR " in line or "Traceback" in line]
        return {"peak_rss_mb": rss, "hung_on_sigterm": hung, "exit_codes": codes,
                "error_lines": errors[:20]}


def _read(proc: subprocess.Popen[str], lines: list[str], started: threading.Event) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "tminus daemon" in line and "started" in line:
            started.set()


def retime(engine: Any, ids_offsets: Sequence[tuple[int, float]], base: datetime) -> None:
    """Move seeded posts to base + offset (seconds), as one transaction: one UPDATE
    when they share an offset and their ids are consecutive (a burst), else one per
    post."""
    import sqlalchemy as sa

    from scheduler.models import Post
    post = table(Post)
    ids = [i for i, _ in ids_offsets]
    offsets = {off for _, off in ids_offsets}
    with engine.begin() as conn:
        if len(offsets) == 1 and ids == list(range(ids[0], ids[0] + len(ids))):
            due = base + timedelta(seconds=offsets.pop())
            conn.execute(sa.update(post).where(post.c.id.between(ids[0], ids[-1]))
                         .values(due_at=due, next_attempt_at=due, not_after=due + timedelta(hours=2)))
        else:
            rows = []
            for post_id, offset in ids_offsets:
                due = base + timedelta(seconds=offset)
                rows.append({"pid": post_id, "due": due, "after": due + timedelta(hours=2)})
            conn.execute(sa.update(post).where(post.c.id == sa.bindparam("pid"))
                         .values(due_at=sa.bindparam("due"), next_attempt_at=sa.bindparam("due"),
                                 not_after=sa.bindparam("after")), rows)
    from scheduler.notify import notify
    notify(engine)      # PostgreSQL: wake the daemons (SQLite: their poll cap finds it)
