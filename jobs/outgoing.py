"""The values that cross the line between `scheduler` and `jobs`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Media:
    """An image to attach, with the alt text every platform should get."""

    path: str
    alt: str
    # the bytes to upload, read (and hashed against the approval) by the daemon right
    # before the request; None: read from `path`
    data: bytes | None = field(default=None, repr=False, compare=False)

    def read(self) -> bytes:
        """The image's bytes: those the daemon checked, else the file's (OSError)."""
        if self.data is not None:
            return self.data
        with open(self.path, "rb") as fh:
            return fh.read()


@dataclass(frozen=True)
class Receipt:
    """Proof that a post is on the platform: its id there, a link, and whatever the
    platform needs to reply to it later (Bluesky's uri and cid)."""

    remote_id: str
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"remote_id": self.remote_id, "url": self.url, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Receipt:
        return cls(remote_id=str(data["remote_id"]), url=data.get("url"),
                   extra=dict(data.get("extra") or {}))


@dataclass(frozen=True)
class Outgoing:
    """One post, exactly as it will go out, handed to an adapter for one attempt."""

    post_id: int
    account: str
    platform: str
    text: str
    idempotency_key: str
    due_at: datetime
    attempt: int = 1
    language: str | None = None
    visibility: str | None = None
    content_warning: str | None = None
    media: tuple[Media, ...] = ()
    reply_to: Receipt | None = None     # the previous post of a thread
    thread_root: Receipt | None = None  # the first post of a thread (Bluesky needs it)
    # The attempt (uploads + create) must be over by then, on the adapter's clock: every
    # request's timeout is cut to the time left, and none goes once it has passed.
    deadline: datetime | None = None


@dataclass(frozen=True)
class Identity:
    """Who an account posts as, as the platform reports it."""

    platform: str
    handle: str
    remote_id: str
    display_name: str | None = None


@dataclass(frozen=True)
class Engagement:
    """How a published post did, as its platform counts: likes (favourites), reposts
    (boosts, retweets) and replies. Read by `engagement(remote_ids)` on the adapters of
    platforms that have counts (not the dry run)."""

    likes: int = 0
    reposts: int = 0
    replies: int = 0
