"""Many accounts on the fake platforms, with credentials anyone can derive from a
number: for a burst of a thousand tminus accounts (issue 12's latency benchmark) or a
chaos test in another process.

Account `i` (1, 2, ...) of each platform:
- x: access token `x-token-{i:04d}`, username `acct{i:04d}`;
- mastodon: token `masto-token-{i:04d}`, username `acct{i:04d}`;
- bluesky: handle `acct{i:04d}.bsky.test`, app password `app-pass-{i:04d}`.
"""

from __future__ import annotations

from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx

PLATFORMS = ("x", "mastodon", "bluesky")


def username(i: int) -> str:
    return f"acct{i:04d}"


def credentials(platform: str, i: int, url: str) -> dict[str, str]:
    """Account `i`'s credential variables by suffix ({"ACCESS_TOKEN": ...}), pointing
    at the fake at `url`."""
    if platform == "x":
        return {"API_KEY": "fake-key", "API_SECRET": "fake-secret",
                "ACCESS_TOKEN": f"x-token-{i:04d}", "ACCESS_SECRET": "fake-access-secret",
                "API_BASE": url}
    if platform == "mastodon":
        return {"INSTANCE": url, "ACCESS_TOKEN": f"masto-token-{i:04d}"}
    if platform == "bluesky":
        return {"HANDLE": f"{username(i)}.bsky.test", "APP_PASSWORD": f"app-pass-{i:04d}",
                "PDS": url}
    raise ValueError(f"no fake accounts on {platform!r}; expected one of {PLATFORMS}")


def env(platform: str, i: int, prefix: str, url: str) -> dict[str, str]:
    """The TMINUS_<prefix>_* variables of a tminus account posting as account `i`."""
    return {f"TMINUS_{prefix}_{k}": v for k, v in credentials(platform, i, url).items()}


def add(server: FakePlatformServer, platform: str, count: int) -> None:
    """Accounts 1..count of `platform` (again: already there, nothing changes)."""
    for i in range(1, count + 1):
        creds = credentials(platform, i, server.url)
        if platform == "x":
            fx.add_user(server, creds["ACCESS_TOKEN"], username(i),
                        user_id=str(1700000000000000000 + i))
        elif platform == "mastodon":
            fm.add_account(server, creds["ACCESS_TOKEN"], username(i),
                           account_id=str(111000000000000000 + i))
        else:
            fb.add_user(server, creds["HANDLE"], password=creds["APP_PASSWORD"])
