"""Driving a fake platform server in another process (`python -m tests.fakeplatform`)
over its `/_fake/...` routes (see `control.py`).

    with fake_process(latency=0.25, accounts=1000) as fake:
        fake.fault("POST", r"^/2/tweets$", status_after=503)
        ... run tminus against fake.url ...
        fake.posts(platform="x")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.fakeplatform import Posted

ROOT = Path(__file__).resolve().parents[2]


class RemoteFake:
    def __init__(self, url: str, pid: int | None = None) -> None:
        self.url = url.rstrip("/")
        self.pid = pid          # the server's process, where known (its CPU in /proc)
        self._http = httpx.Client(base_url=self.url, timeout=10.0)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/_fake/{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def posts(self, *, platform: str | None = None, account: str | None = None) -> list[Posted]:
        params = {k: v for k, v in (("platform", platform), ("account", account)) if v}
        return [Posted.from_dict(d) for d in self._call("GET", "posts", params=params)]

    def requests(self, method: str = "", path: str = "") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "requests",
                                                 params={"method": method, "path": path})
        return found

    def fault(self, method: str, path: str, **kwargs: Any) -> None:
        self._call("POST", "faults", json={"method": method, "path": path, **kwargs})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "clock", json={"advance": seconds})

    def set_counts(self, platform: str, remote_id: str, *, likes: int = 0, reposts: int = 0,
                   replies: int = 0) -> None:
        self._call("POST", "engagement", json={"platform": platform, "id": remote_id,
                                               "likes": likes, "reposts": reposts,
                                               "replies": replies})

    def add_accounts(self, platform: str, count: int) -> None:
        self._call("POST", "accounts", json={"platform": platform, "count": count})

    def set_latency(self, seconds: float) -> None:
        self._call("POST", "latency", json={"seconds": seconds})


@contextmanager
def fake_process(*, latency: float = 0.0, accounts: int = 0) -> Iterator[RemoteFake]:
    """A fake platform server in a process of its own, stopped (SIGTERM) at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeplatform", "--latency", str(latency),
         "--accounts", str(accounts)],
        cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake platform process exited ({proc.wait()})")
        started = json.loads(line)
        fake = RemoteFake(started["url"], started.get("pid"))
        try:
            yield fake
        finally:
            fake.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
