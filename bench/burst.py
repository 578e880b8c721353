"""burst: 10,000 posts on 1,000 dry-run accounts, all due at the same second, on SQLite.

tminus: one `tminus run --dry-run` process with default settings. The posts are seeded
an hour ahead, the daemon started, then all moved to one whole second a few seconds
ahead. "All out" is the last outbox line's "at" minus that second.

Baselines:
- APScheduler: as many date jobs due at one second in a SQLAlchemyJobStore, run by a
  BackgroundScheduler with its default executor (10 threads), in its own process.
- polling every 30 s: one real poll over the same posts, already due, timed in its own
  process; the wait until that poll is not run but added: on average half the period
  (15 s), at worst all of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.baselines import POLL_PERIOD, Job, aps_fill
from bench.common import (
    Baseline,
    Figure,
    Sizes,
    fresh_engine,
    lateness,
    next_whole_second,
    post_text,
    read_lines,
    run_child,
    seed_queue,
    spread,
    sqlite_url,
    table,
    wait_for_lines,
    workdir,
)
from bench.daemons import Daemons, retime

TARGET_SECONDS = 5.0
LEAD = 3.0          # > the daemon's 2 s poll cap: it has seen the new due time before it
LEAD_POSTGRES = 1.5  # PostgreSQL daemons are woken by NOTIFY at once


def burst_with_daemons(url: str, wd: Path, n: int, accounts: int, daemons: int = 1,
                       timeout: float = 600) -> dict[str, Any]:
    """Seed `n` posts, start `daemons` processes, make every post due at one second;
    returns what came out of the outboxes."""
    engine = fresh_engine(url)
    seeded = seed_queue(engine, [datetime.now(UTC) + timedelta(hours=1)] * n, accounts=accounts)
    procs = Daemons(url, wd, daemons, tag=f"n{daemons}-")
    startup = procs.start()
    try:
        due = next_whole_second(LEAD_POSTGRES if url.startswith("postgresql") else LEAD)
        retime(engine, [(q.post_id, 0.0) for q in seeded], due)
        complete = wait_for_lines(procs.outboxes, n, timeout=timeout, alive=procs.alive)
    finally:
        stopped = procs.stop()
    published = _published(engine)
    engine.dispose()
    lines = read_lines(procs.outboxes)
    return {"due": due, "lines": lines, "complete": complete, "startup_s": startup,
            "daemons": stopped, "published_in_db": published,
            "per_daemon": [len(read_lines([o])) for o in procs.outboxes]}


def _published(engine: Any) -> int:
    import sqlalchemy as sa

    from scheduler.models import Post
    with engine.connect() as conn:
        post = table(Post)
        return int(conn.execute(sa.select(sa.func.count()).select_from(post)
                                .where(post.c.state == "published")).scalar_one())


def summary(run: dict[str, Any], n: int) -> dict[str, Any]:
    """All-out time, throughput, lateness and duplicates of one burst."""
    lines = run["lines"]
    ats = [datetime.fromisoformat(x["at"]) for x in lines]
    all_out = (max(ats) - run["due"]).total_seconds() if ats else float("nan")
    ids = [x["post_id"] for x in lines]
    return {"posts": n, "sent_lines": len(lines), "unique_posts": len(set(ids)),
            "duplicates": len(ids) - len(set(ids)), "missing": n - len(set(ids)),
            "all_out_s": all_out, "posts_per_s": len(set(ids)) / all_out if all_out > 0 else None,
            "lateness": spread(lateness(lines)), "complete": run["complete"],
            "published_in_db": run["published_in_db"], "per_daemon": run["per_daemon"],
            "startup_s": run["startup_s"], "daemons": run["daemons"]}


def run(sizes: Sizes, tmp: Path) -> list[Figure]:
    n, accounts = sizes.burst_posts, sizes.burst_accounts
    with workdir(tmp, "burst") as wd:
        ours = summary(burst_with_daemons(sqlite_url(wd / "tminus.db"), wd, n, accounts), n)
        assert ours["complete"], ours

        aps_out = wd / "aps-outbox.jsonl"
        due = next_whole_second(LEAD)
        aps_fill(sqlite_url(wd / "aps.db"), aps_out,
                 (Job(i + 1, f"acct{i % accounts:04d}", due, post_text(i % accounts, i + 1))
                  for i in range(n)))
        aps_run = run_child("bench.aps", "--url", sqlite_url(wd / "aps.db"),
                            "--expect", str(n), "--timeout", "900")
        aps_lines = read_lines([aps_out])
        aps_ats = [datetime.fromisoformat(x["at"]) for x in aps_lines]
        aps: dict[str, Any] = {"ran": len(aps_lines), "run": aps_run, "lateness": spread(lateness(aps_lines)),
               "all_out_s": (max(aps_ats) - due).total_seconds() if aps_ats else None}

        engine = fresh_engine(sqlite_url(wd / "poll.db"))
        seed_queue(engine, [datetime.now(UTC) - timedelta(seconds=1)] * n, accounts=accounts)
        engine.dispose()
        poll_out = wd / "poll-outbox.jsonl"
        poll = run_child("bench.baselines", "poll-once", "--url", sqlite_url(wd / "poll.db"),
                         "--outbox", str(poll_out))
        started = datetime.fromisoformat(poll["poll_started"])
        work = [(datetime.fromisoformat(x["at"]) - started).total_seconds()
                for x in read_lines([poll_out])]
        wait = POLL_PERIOD / 2
        polled: dict[str, Any] = {"poll": poll, "work": spread(work), "mean_wait_s": wait,
                  "all_out_s": wait + max(work), "p99_s": wait + spread(work)["p99"],
                  "worst_all_out_s": POLL_PERIOD + max(work)}

    raw = {"tminus": ours, "apscheduler": aps, "polling": polled}
    aps_note = f"{aps['ran']:,} of {n:,} ran"
    return [
        Figure("burst.all_out", f"burst: {n:,} posts due at one second on {accounts:,} accounts "
               "(SQLite): all out", ours["all_out_s"], "s", target=f"< {TARGET_SECONDS:g} s",
               met=ours["all_out_s"] < TARGET_SECONDS,
               baselines={"apscheduler": Baseline(aps["all_out_s"], "s", aps_note),
                          "polling": Baseline(polled["all_out_s"], "s",
                                              "15 s mean wait (simulated) + one real poll")},
               note=f"{ours['posts_per_s']:,.0f} posts/s; daemon peak RSS "
                    f"{ours['daemons']['peak_rss_mb'][0] or 0:.0f} MB", raw=raw),
        Figure("burst.p99", "burst: lateness p99", ours["lateness"]["p99"], "s", target="reported",
               baselines={"apscheduler": Baseline(aps["lateness"].get("p99"), "s", aps_note),
                          "polling": Baseline(polled["p99_s"], "s", "15 s mean wait + real poll")},
               note=f"p50 {ours['lateness']['p50']:.2f} s", raw=raw),
    ]
