"""sdkcpu: the CPU one real post costs, per SDK, and what the fake platforms spend on it.

    .venv/bin/python -m bench.sdkcpu [--accounts 200] [--burst] [--profile DIR]
                                     [--rounds N] [--only PLATFORM]

The fake X, Mastodon and Bluesky run in a process of their own (no latency). For each
platform, `--accounts` adapters are built and warmed as the daemon builds them
(`from_credentials`, `prime()`, `warm()`: timed apart), then each publishes one post, one
after another on one thread, as a burst's lanes do: the first request of an account.
Then each publishes a second post (its connection, where kept, already open), and with
`--rounds N` N posts more in all (rounds of one post each; the median and the least of the
warm rounds are printed: a machine's load only ever adds). With
`--burst`, the fake answers after 250 ms and every account publishes on a thread of its
own at once, as the daemon's lanes do in a burst: the CPU then includes what hundreds of
threads cost each other (the interpreter lock handed back and forth).

Printed per platform and round: this process's CPU (user+sys) per post and the fake
process's, from /proc. With `--profile DIR`, a cProfile of each first round is written
to DIR/<platform>.prof (`python -m pstats`). Not a figure of `python -m bench`: a tool
for the CPU accounting of issue 12 (CPU time, so comparable under load).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PLATFORMS = ("x", "mastodon", "bluesky")


def _proc_cpu(pid: int) -> float:
    """user+sys seconds of process `pid` (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _primed(platform: str) -> Any:
    """The adapter class, imported (its SDK with it) and primed, as the daemon starts."""
    from content.platforms import platform as entry_of
    from jobs.adapters.base import Primes, adapter_class
    cls = adapter_class(entry_of(platform))
    if isinstance(cls, Primes):
        cls.prime()
    return cls


def _adapters(platform: str, n: int, url: str) -> list[Any]:
    from content.platforms import platform as entry_of
    from jobs.adapters.base import MemorySessionStore, Warms
    from tests.fakeplatform import accounts
    entry = entry_of(platform)
    cls = _primed(platform)
    built = []
    for i in range(1, n + 1):
        credentials = entry.credentials(**{k.lower(): v for k, v in
                                           accounts.credentials(platform, i, url).items()})
        pub = cls.from_credentials(f"{platform}{i}", credentials, timeout=10.0,
                                   now=lambda: datetime.now(UTC),
                                   session_store=MemorySessionStore())
        if isinstance(pub, Warms):
            pub.warm()
        built.append(pub)
    return built


def _round(adapters: list[Any], platform: str, tag: str, profile: Path | None,
           burst: bool = False) -> None:
    from jobs.outgoing import Outgoing
    now = datetime.now(UTC)
    posts = [Outgoing(post_id=i, account=f"{platform}{i}", platform=platform,
                      text=f"{tag} #{i}: the deadline is coming, call 202-555-0100 today #Bench",
                      idempotency_key=f"{tag}-{i}", due_at=now,
                      deadline=now + timedelta(minutes=5))
             for i in range(len(adapters))]
    # CPU time, not wall time: the waits for the fake are no cost of the SDK
    profiler = cProfile.Profile(time.thread_time) if profile else None
    if profiler:
        profiler.enable()
    if burst:
        import threading
        lanes = [threading.Thread(target=pub.publish, args=(post,))
                 for pub, post in zip(adapters, posts, strict=True)]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            lane.join()
    else:
        for pub, post in zip(adapters, posts, strict=True):
            pub.publish(post)
    if profiler:
        profiler.disable()
        assert profile is not None
        profiler.dump_stats(profile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sdkcpu", description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--burst", action="store_true",
                        help="every account at once on its own thread, 250 ms answers")
    parser.add_argument("--profile", type=Path, help="write DIR/<platform>.prof "
                        "(the main thread only: not with --burst)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="warm rounds after the first (default 1); with more, "
                        "the median and the least are printed")
    parser.add_argument("--only", choices=PLATFORMS, action="append",
                        help="this platform only (repeat for more)")
    args = parser.parse_args(argv)
    from tests.fakeplatform.remote import fake_process
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    n = args.accounts
    with fake_process(accounts=n, latency=0.25 if args.burst else 0.0) as fake:
        pid = fake.pid
        assert pid is not None, "python -m tests.fakeplatform names its pid"
        print(f"{n} posts a round; CPU ms per post (user+sys); load {os.getloadavg()[0]:.2f}")
        for platform in args.only or PLATFORMS:
            _primed(platform)
            ours, theirs = time.process_time(), _proc_cpu(pid)
            adapters = _adapters(platform, n, fake.url)
            ours, theirs = time.process_time() - ours, _proc_cpu(pid) - theirs
            print(f"{platform:9} build+warm sdk {ours / n * 1000:6.2f} ms  "
                  f"fake {theirs / n * 1000:6.2f} ms  (an account, before any post)")
            warm: list[float] = []
            for label in ("first", *["second"] * max(1, args.rounds)):
                tag = f"[{uuid.uuid4().hex[:8]}]"
                where = (args.profile / f"{platform}.prof"
                         if args.profile and label == "first" else None)
                ours, theirs = time.process_time(), _proc_cpu(pid)
                _round(adapters, platform, tag, where, args.burst)
                ours, theirs = time.process_time() - ours, _proc_cpu(pid) - theirs
                on = len([p for p in fake.posts(platform=platform) if tag in p.text])
                if label == "second":
                    warm.append(ours / n * 1000)
                if label == "first" or args.rounds <= 1:
                    print(f"{platform:9} {label:6} sdk {ours / n * 1000:6.2f} ms  "
                          f"fake {theirs / n * 1000:6.2f} ms  ({on} of {n} on the platform)")
                elif on != n:
                    print(f"{platform:9} {label:6} only {on} of {n} on the platform")
            if args.rounds > 1:
                print(f"{platform:9} warm   sdk {statistics.median(warm):6.2f} ms median, "
                      f"{min(warm):6.2f} ms least of {len(warm)} rounds")
            for pub in adapters:
                pub.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
