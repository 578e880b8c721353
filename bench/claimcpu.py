"""claimcpu: the daemon's own CPU per post on its database path, and its statements.

    .venv/bin/python -m bench.claimcpu [--posts 1000] [--rounds 5] [--profile FILE]

A burst as the daemon takes it, without the platforms: `--posts` posts on as many
accounts (X, Mastodon and Bluesky in turn; SQLite, a fresh file), all due now; the
Worker's calls in the daemon's order: `claim` CLAIM_BATCH at a time, `prove` each
batch, then `record_many` RECORD_BATCH publications at a time (receipts as Mastodon's).
Printed per step: this process's CPU (user+sys, `resource`) per post and the
statements sent to the database per post (an executemany counts once, BEGIN counts),
best of `--rounds`. With `--profile FILE`, a cProfile (CPU time) of the last round.
Not a figure of `python -m bench`: a tool for issue 12's CPU accounting (CPU time, so
comparable under load).
"""

from __future__ import annotations

import argparse
import cProfile
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PLATFORMS = ("x", "mastodon", "bluesky")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_round(posts: int, wd: Path, profile: cProfile.Profile | None = None) -> dict[str, Any]:
    import sqlalchemy as sa

    from bench.common import seed_queue
    from jobs.outgoing import Receipt
    from scheduler import defaults
    from scheduler.db import make_engine, upgrade
    from scheduler.dispatch import Delivered, claim, prove, record_many
    from scheduler.tables import account

    url = f"sqlite:///{wd / f'claim-{time.monotonic_ns()}.db'}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    seed_queue(engine, [now - timedelta(seconds=1)] * posts, accounts=posts,
               platform="mastodon")
    # X, Mastodon and Bluesky in turn, as in the latency burst: four budget windows
    with engine.begin() as conn:
        ids = conn.execute(sa.select(account.c.id).order_by(account.c.id)).scalars().all()
        conn.execute(sa.update(account).where(account.c.id == sa.bindparam("aid"))
                     .values(platform=sa.bindparam("p")),
                     [{"aid": a, "p": PLATFORMS[i % 3]} for i, a in enumerate(ids)])
    statements = [0]

    def count(*_a: Any) -> None:
        statements[0] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    lease, owner = timedelta(seconds=60), "bench:1:claimcpu"
    cpu: dict[str, float] = {"claim": 0.0, "prove": 0.0, "record": 0.0}
    sent: dict[str, int] = dict.fromkeys(cpu, 0)
    claimed = []
    if profile:
        profile.enable()
    while True:
        n0, c0 = statements[0], _cpu()
        batch = claim(engine, now=now, owner=owner, lease=lease, limit=defaults.CLAIM_BATCH)
        cpu["claim"] += _cpu() - c0
        sent["claim"] += statements[0] - n0
        if not batch:
            break
        n0, c0 = statements[0], _cpu()
        ours = prove(engine, batch, now=now, owner=owner, lease=lease)
        cpu["prove"] += _cpu() - c0
        sent["prove"] += statements[0] - n0
        assert len(ours) == len(batch)
        claimed.extend(batch)
    at = datetime.now(UTC)
    done = [(c, Delivered(Receipt(f"1{c.post_id:017d}", f"https://mastodon.example/@a/1{c.post_id:017d}"),
                          at)) for c in claimed]
    for i in range(0, len(done), defaults.RECORD_BATCH):
        n0, c0 = statements[0], _cpu()
        got = record_many(engine, done[i:i + defaults.RECORD_BATCH], owner=owner)
        cpu["record"] += _cpu() - c0
        sent["record"] += statements[0] - n0
        assert len(got) == len(done[i:i + defaults.RECORD_BATCH])
    if profile:
        profile.disable()
    engine.dispose()
    assert len(claimed) == posts, len(claimed)
    return {"cpu_ms": {k: v / posts * 1000 for k, v in cpu.items()},
            "statements": {k: v / posts for k, v in sent.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tminus-claimcpu-") as tmp:
        one_round(min(args.posts, 100), Path(tmp))      # imports and caches warmed
        runs = []
        for r in range(args.rounds):
            prof = (cProfile.Profile(time.process_time)
                    if args.profile and r == args.rounds - 1 else None)
            runs.append(one_round(args.posts, Path(tmp), prof))
            if prof:
                prof.dump_stats(str(args.profile))
    best = {k: min(r["cpu_ms"][k] for r in runs) for k in runs[0]["cpu_ms"]}
    print(f"{args.posts:,} posts, best of {args.rounds} rounds: CPU per post (ms) and "
          "statements per post")
    for k in best:
        print(f"  {k:7s} {best[k]:6.3f} ms   {runs[-1]['statements'][k]:.3f} statements")
    print(f"  {'total':7s} {sum(best.values()):6.3f} ms   "
          f"{sum(runs[-1]['statements'].values()):.3f} statements")


if __name__ == "__main__":
    main()
