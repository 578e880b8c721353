"""The fake platforms as a process of their own, for tests and benchmarks that run
tminus (or several) against one server in another process:

    python -m tests.fakeplatform [--host 127.0.0.1] [--port 0] [--latency 0.25]
                                 [--accounts 1000]

It prints one JSON line, `{"url": "http://127.0.0.1:PORT", "pid": N}`, once it is
listening, and serves until SIGTERM or SIGINT. `--latency` delays every answer (a real
API's round trip); `--accounts N` creates accounts 1..N on each platform (credentials
in `tests/fakeplatform/accounts.py`). Drive it and read its record over HTTP with
`tests.fakeplatform.remote.RemoteFake`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from tests.fakeplatform import FakePlatformServer, accounts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeplatform",
                                     description="fake X, Mastodon and Bluesky servers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds every answer is delayed by")
    parser.add_argument("--accounts", type=int, default=0,
                        help="accounts 1..N on each platform besides the test accounts")
    args = parser.parse_args(argv)
    if args.latency < 0 or args.accounts < 0:
        parser.error("--latency and --accounts must not be negative")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with FakePlatformServer(args.host, args.port, latency=args.latency) as fake:
        for platform in accounts.PLATFORMS:
            accounts.add(fake, platform, args.accounts)
        print(json.dumps({"url": fake.url, "pid": os.getpid()}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
