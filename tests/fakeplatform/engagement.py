"""Engagement counts the fake platforms report for a post (for the report of issue 16):
likes, reposts and replies, 0 until a test sets them."""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakeplatform import FakePlatformServer


@dataclass(frozen=True)
class Counts:
    likes: int = 0
    reposts: int = 0
    replies: int = 0


def set_counts(server: FakePlatformServer, platform: str, remote_id: str, *, likes: int = 0,
               reposts: int = 0, replies: int = 0) -> None:
    """What `platform` reports for its post `remote_id` (a tweet id, a status id, an
    at:// URI) from now on."""
    with server._lock:
        server.state.setdefault("engagement", {})[(platform, remote_id)] = Counts(
            likes, reposts, replies)


def counts(server: FakePlatformServer, platform: str, remote_id: str) -> Counts:
    found: Counts = server.state.get("engagement", {}).get((platform, remote_id), Counts())
    return found
