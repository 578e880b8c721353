"""latency: a burst at a real API's round trip, through the real SDKs.

The project's fake X, Mastodon and Bluesky (`python -m tests.fakeplatform`) run in a
process of their own and answer every request after `LATENCY` (250 ms, a real API's
round trip). N tminus accounts, a third on each platform (tweepy, Mastodon.py and
atproto through tminus's adapters; Bluesky logs in first: createSession), each with
one post due at one whole second; `tminus run` (not a dry run), default settings.
"All out" is the due second to the last post on the platform, from the fake's own
record (its clock is this host's). Every run uses fake accounts of its own, so no
record key or text repeats between runs. Each run also notes the CPU the daemon used
from its start and the fake's over the same time (`python -m bench.sdkcpu` splits a
post's CPU by SDK).

- SQLite, one daemon: the large and the small burst (1,000 and 200 accounts), and
  the large one again with TMINUS_SEND_PROCESS=0 (the requests made in the daemon
  itself, not in its sending processes, by default one per core shared by the host's
  daemons: `scheduler.sendproc`; reported beside the default);
- PostgreSQL: the large burst with 2 and 4 daemons on one database (reported), started
  together (their shares of the host's cores agreed before any forks a sending
  process: `publishers.Publishers._agree`); the note says how long until all had
  started and the CPU each used.

Baseline: APScheduler 3, one date job per post in a SQLAlchemyJobStore, run by a
BackgroundScheduler with its default executor (10 threads), in its own process; the
job makes the same request through the same adapter (`bench.baselines.send_sdk`),
the adapters imported before the scheduler starts (as tminus imports them at start).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import pg
from bench.baselines import SDK_JOB_FUNC, Job, aps_fill
from bench.common import (
    Baseline,
    Figure,
    Sizes,
    fresh_engine,
    next_whole_second,
    run_child,
    sealed_approval,
    seed_queue,
    spread,
    sqlite_url,
    table,
    workdir,
)
from bench.daemons import Daemons, retime

LATENCY = 0.25
PLATFORMS = ("x", "mastodon", "bluesky")
LEAD = 3.0              # > the daemon's 2 s poll cap: it has seen the new due time before it
LEAD_POSTGRES = 1.5     # PostgreSQL daemons are woken by NOTIFY at once
TARGETS = {"large": 3.0, "small": 1.5}
_SETUP = threading.Lock()


class FakeAccounts:
    """Hands out fake accounts (per platform, numbered from 1) so that no two runs
    share one."""

    def __init__(self) -> None:
        self.next = dict.fromkeys(PLATFORMS, 1)

    def take(self, n: int) -> list[tuple[str, int]]:
        """n accounts, the platforms taken in turn."""
        out = []
        for a in range(n):
            platform = PLATFORMS[a % len(PLATFORMS)]
            out.append((platform, self.next[platform]))
            self.next[platform] += 1
        return out


def needed(sizes: Sizes) -> int:
    """Fake accounts per platform for every run of this size."""
    large, small = sizes.latency_accounts
    runs = [large, small, large, *[large] * len(sizes.latency_pg_daemons)]
    return sum(-(-n // len(PLATFORMS)) for n in runs)   # each run: its first platform's share


def _text(tag: str) -> Callable[[int, int], str]:
    return lambda a, post_id: (f"{tag} acct{a:04d} #{post_id}: the deadline is coming, "
                               "call 202-555-0100 today #Bench")


def tminus_burst(url: str, wd: Path, fake: Any, accounts: list[tuple[str, int]], *,
                 daemons: int = 1, timeout: float = 300,
                 settings: dict[str, str] | None = None) -> dict[str, Any]:
    """Seed one post on each of `accounts` (real platforms, credentials pointing at the
    fake), start `daemons` processes, make every post due at one second, wait until
    the database says all are published; what the fake holds decides the figures."""
    import sqlalchemy as sa

    from scheduler.models import Account, Post
    from tests.fakeplatform import accounts as fake_accounts
    n = len(accounts)
    tag = f"[{uuid.uuid4().hex[:8]}]"
    # one at a time: the schema's migration is not safe in two threads of a process
    with _SETUP:
        engine = fresh_engine(url)
        seeded = seed_queue(engine, [datetime.now(UTC) + timedelta(hours=1)] * n, accounts=n,
                            text=_text(tag))
        env: dict[str, str] = dict(settings or {})
        acc = table(Account)
        with engine.begin() as conn:
            ids = conn.execute(sa.select(acc.c.id).order_by(acc.c.id)).scalars().all()
            rows = []
            for aid, (platform, number) in zip(ids, accounts, strict=True):
                prefix = f"L{aid:05d}"
                env.update(fake_accounts.env(platform, number, prefix, fake.url))
                rows.append({"aid": aid, "p": platform, "c": prefix})
            conn.execute(sa.update(acc).where(acc.c.id == sa.bindparam("aid"))
                         .values(platform=sa.bindparam("p"), credentials=sa.bindparam("c")), rows)
            # the approval covers the account: seal it again for the platform it now is on
            post = table(Post)
            names = dict(conn.execute(sa.select(acc.c.id, acc.c.name)).tuples().all())
            on = {r["aid"]: r for r in rows}
            sealed = []
            for pid, aid, text in conn.execute(sa.select(post.c.id, post.c.account_id, post.c.text)):
                record, digest = sealed_approval(text, names[aid], on[aid]["p"], on[aid]["c"])
                sealed.append({"pid": pid, "a": record, "h": digest})
            conn.execute(sa.update(post).where(post.c.id == sa.bindparam("pid"))
                         .values(approved=sa.bindparam("a"), approved_hash=sa.bindparam("h")), sealed)
    procs = Daemons(url, wd, daemons, tag=f"lat{daemons}-{tag[1:-1]}-", dry_run=False, env=env)
    startup = procs.start()
    threads = [0] * daemons
    # CPU from the daemons' start (imports, warm-up, Bluesky logins included) to the last
    # post: each daemon's own process (sending children not counted), and the fake's
    # from the same moment (all runs' together when they go side by side)
    fake_cpu = _cpu(fake.pid)
    cpu = [0.0] * daemons
    try:
        due = next_whole_second(LEAD_POSTGRES if url.startswith("postgresql") else LEAD)
        retime(engine, [(q.post_id, 0.0) for q in seeded], due)
        limit = time.monotonic() + timeout
        published = 0
        while time.monotonic() < limit and procs.alive():
            threads = [max(t, _threads(p.pid)) for t, p in zip(threads, procs.procs, strict=True)]
            published = _published(engine)
            if published >= n:
                break
            time.sleep(0.1)
        cpu = [_tree_cpu(p.pid) for p in procs.procs]
        fake_cpu = (_cpu(fake.pid) or 0.0) - (fake_cpu or 0.0)
    finally:
        stopped = procs.stop()
    engine.dispose()
    posted = [p for p in fake.posts() if tag in p.text]
    return {**_summary(posted, due, n), "published_in_db": published, "startup_s": startup,
            "daemons": stopped, "peak_threads": threads, "daemon_cpu_s": cpu,
            "fake_cpu_s": fake_cpu}


def _cpu(pid: int | None) -> float | None:
    """user+sys seconds of process `pid` so far, None if it cannot be read."""
    import os
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """user+sys seconds of process `pid` and of the processes under it that still run
    (a daemon's sending processes and their fork server)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree} - tree
        tree, grew = tree | more, bool(more)
    return sum(_cpu(p) or 0.0 for p in tree)


def _published(engine: Any) -> int:
    import sqlalchemy as sa

    from scheduler.models import Post
    post = table(Post)
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(post)
                                .where(post.c.state == "published")).scalar_one())


def _threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _summary(posted: list[Any], due: datetime, n: int) -> dict[str, Any]:
    late = [(p.at - due).total_seconds() for p in posted]
    texts = [p.text for p in posted]
    by_platform: dict[str, float] = {}
    for p, s in zip(posted, late, strict=True):
        by_platform[p.platform] = max(by_platform.get(p.platform, s), s)
    return {"posts": n, "on_platform": len(posted), "duplicates": len(texts) - len(set(texts)),
            "missing": n - len(set(texts)), "all_out_s": max(late) if late else None,
            "lateness": spread(late), "all_out_by_platform_s": by_platform}


def aps_burst(wd: Path, fake: Any, accounts: list[tuple[str, int]]) -> dict[str, Any]:
    """The same burst through APScheduler's default pool of 10 threads."""
    n = len(accounts)
    tag = f"[{uuid.uuid4().hex[:8]}]"
    text = _text(tag)
    store = sqlite_url(wd / f"aps-{tag[1:-1]}.db")
    due = next_whole_second(2.0)
    aps_fill(store, fake.url, [Job(i + 1, f"{platform}:{number}", due, text(i, i + 1))
                               for i, (platform, number) in enumerate(accounts)],
             func=SDK_JOB_FUNC)
    ran = run_child("bench.aps", "--url", store, "--expect", str(n),
                    "--timeout", "600", "--preload")
    posted = [p for p in fake.posts() if tag in p.text]
    return {**_summary(posted, due, n), "run": ran}


def run(sizes: Sizes, tmp: Path) -> list[Figure]:
    """Every run on one fake process: one after another (full sizes), or all at once
    (quick sizes: the harness kept working in a few seconds, the figures disturbing
    each other; APScheduler's runs left out)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.fakeplatform.remote import fake_process
    large, small = sizes.latency_accounts
    pool = FakeAccounts()
    ours: dict[str, dict[str, Any]] = {}
    aps: dict[str, dict[str, Any]] = {}
    pg_runs: dict[int, dict[str, Any]] = {}
    with (workdir(tmp, "latency") as wd,
          fake_process(latency=LATENCY, accounts=needed(sizes)) as fake,
          pg.server() as base):
        sized = {name: pool.take(n) for name, n in (("large", large), ("small", small),
                                                    ("in_process", large))}
        on_pg = {count: (pg.create_database(base), pool.take(large))
                 for count in sizes.latency_pg_daemons}

        def sqlite_run(name: str) -> None:
            extra = {"TMINUS_SEND_PROCESS": "0"} if name == "in_process" else None
            ours[name] = tminus_burst(sqlite_url(wd / f"tminus-{name}.db"), wd, fake, sized[name],
                                      settings=extra)

        def pg_run(count: int) -> None:
            url, taken = on_pg[count]
            pg_runs[count] = tminus_burst(url, wd, fake, taken, daemons=count)

        try:
            jobs: list[Callable[[], None]] = [
                *[lambda name=name: sqlite_run(name) for name in sized],
                *[lambda count=count: pg_run(count) for count in on_pg]]
            if sizes.latency_side_by_side:
                with ThreadPoolExecutor(max_workers=len(jobs)) as side_by_side:
                    for done in [side_by_side.submit(job) for job in jobs]:
                        done.result()
            else:
                for job in jobs:
                    job()
            if sizes.latency_baseline:
                # APScheduler reuses the same fake accounts: its record keys and texts differ
                for name in ("large", "small"):
                    aps[name] = aps_burst(wd, fake, sized[name])
        finally:
            for url, _ in on_pg.values():
                pg.drop_database(url)

    raw = {"latency_s": LATENCY, "tminus": ours, "apscheduler": aps, "postgres": pg_runs}
    figures = []
    for name, n in (("large", large), ("small", small)):
        r, b = ours[name], aps.get(name)
        target = TARGETS[name]
        figures.append(Figure(
            f"latency.{name}", f"burst at {LATENCY * 1000:g} ms per request: {n:,} accounts "
            "(X, Mastodon, Bluesky; real SDKs, SQLite, 1 daemon): all on the platform",
            r["all_out_s"], "s", target=f"< {target:g} s",
            met=r["all_out_s"] is not None and r["all_out_s"] < target and r["missing"] == 0,
            baselines={} if b is None else {"apscheduler": Baseline(
                b["all_out_s"], "s", f"{b['on_platform']} of {n} on the platform")},
            note=(f"{r['on_platform']} of {n} on the platform, {r['duplicates']} twice; "
                  f"p50 {r['lateness'].get('p50', float('nan')):.2f} s; daemon peak RSS "
                  f"{r['daemons']['peak_rss_mb'][0] or 0:.0f} MB, "
                  f"{r['peak_threads'][0]} threads, CPU {r['daemon_cpu_s'][0]:.1f} s from "
                  f"its start (with its sending processes); the fake's "
                  f"{r['fake_cpu_s'] or 0:.1f} s"), raw=raw))
    r = ours["in_process"]
    figures.append(Figure(
        "latency.in_process", f"the same, {large:,} accounts, SQLite, 1 daemon, "
        "TMINUS_SEND_PROCESS=0 (requests in the daemon, no sending process): all on the "
        "platform",
        r["all_out_s"], "s", target="reported",
        note=(f"{r['on_platform']} of {large} on the platform, {r['duplicates']} twice; "
              f"p50 {r['lateness'].get('p50', float('nan')):.2f} s"), raw=raw))
    for count, r in pg_runs.items():
        figures.append(Figure(
            f"latency.postgres_{count}", f"the same, {large:,} accounts, PostgreSQL, "
            f"{count} daemons: all on the platform", r["all_out_s"], "s", target="reported",
            note=(f"{r['on_platform']} of {large} on the platform, {r['duplicates']} twice; "
                  f"peak RSS {'/'.join(f'{m or 0:.0f}' for m in r['daemons']['peak_rss_mb'])} MB; "
                  f"all {count} started in {r['startup_s']:.1f} s (started together); CPU "
                  f"{'/'.join(f'{c:.1f}' for c in r['daemon_cpu_s'])} s from their start "
                  "(with their sending processes)"),
            raw=raw))
    return figures
