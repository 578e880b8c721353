"""postgres: the burst (10,000 posts due at one second on 1,000 accounts) on one
PostgreSQL database with 1, 2 and 4 `tminus run --dry-run` processes.

Each daemon writes its own outbox (TMINUS_DRYRUN_OUTBOX); throughput is the posts sent
divided by the time from the due second to the last one out; a duplicate is a post id
in more than one line across all the outboxes. A fresh database per daemon count, on
a private server started from the machine's PostgreSQL binaries (fsync off).

No baseline: APScheduler 3 does not support several schedulers on one job store, and
several polling daemons on one table would each send what they see.
"""

from __future__ import annotations

from pathlib import Path

from bench import pg
from bench.burst import burst_with_daemons, summary
from bench.common import Figure, Sizes, workdir


def run(sizes: Sizes, tmp: Path) -> list[Figure]:
    n, accounts = sizes.burst_posts, sizes.burst_accounts
    per_count = {}
    with workdir(tmp, "postgres") as wd, pg.server() as base:
        server_version = pg.version(base)
        for count in sizes.pg_daemons:
            url = pg.create_database(base)
            try:
                per_count[count] = summary(burst_with_daemons(url, wd, n, accounts, count), n)
            finally:
                pg.drop_database(url)

    raw = {"server": server_version, "runs": per_count}
    figures = []
    for count, r in per_count.items():
        lat = r["lateness"]
        figures.append(Figure(
            f"postgres.daemons_{count}.posts_per_s",
            f"PostgreSQL burst, {count} daemon{'s' if count > 1 else ''}: throughput",
            r["posts_per_s"], "posts/s", target="reported",
            note=(f"all out {r['all_out_s']:.2f} s, p99 lateness {lat.get('p99', float('nan')):.2f} s, "
                  f"split {'/'.join(map(str, r['per_daemon']))}, missing {r['missing']}"),
            raw=raw))
    duplicates = sum(r["duplicates"] for r in per_count.values())
    missing = sum(r["missing"] for r in per_count.values())
    hung = sum(r["daemons"]["hung_on_sigterm"] for r in per_count.values())
    figures.append(Figure(
        "postgres.duplicates", f"PostgreSQL, {'/'.join(map(str, per_count))} daemons: duplicates",
        duplicates, "count", target="0", met=duplicates == 0,
        note=(f"missing (never sent): {missing}; hung after SIGTERM: {hung} of "
              f"{sum(per_count)} daemons; server {server_version}"), raw=raw))
    return figures
