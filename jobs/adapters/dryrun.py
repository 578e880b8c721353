"""The dry-run adapter: a real implementation that publishes to a JSON-lines file.

Used by `tminus run --dry-run`, rehearsal, the demo and the tests alike. Each post is
one line `{"at", "post_id", "account", "platform", "text", "id", ...}`. The id is made
up but stable for a post (derived from its idempotency key), so `find()` can answer
whether a post already went out — the same question real adapters answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from content.platforms import DryRunCredentials
from jobs.adapters.base import Clock, Publisher, SessionStore
from jobs.outgoing import Identity, Outgoing, Receipt


class DryRunPublisher:
    """Appends posts to `outbox` (a path), or to `self.sent` alone when `outbox` is None."""

    platform: ClassVar[str] = "dryrun"
    CREDENTIALS: ClassVar[type[DryRunCredentials]] = DryRunCredentials

    def __init__(self, outbox: Path | None = None, *, account: str = "dryrun",
                 now: Clock) -> None:
        self.outbox = outbox
        self.account = account
        self._now = now
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._fh: TextIO | None = None

    @classmethod
    def from_credentials(cls, account: str, credentials: DryRunCredentials, *,
                         timeout: float, now: Clock,
                         session_store: SessionStore) -> DryRunPublisher:
        """A dry run of its own that keeps its posts in memory (`sent`). The daemon
        does not build one per account: `Publishers` sends every dry-run post to the
        one outbox of `TMINUS_DRYRUN_OUTBOX`."""
        return cls(None, account=account, now=now)

    @staticmethod
    def remote_id(post: Outgoing) -> str:
        return "dry-" + hashlib.sha256(post.idempotency_key.encode()).hexdigest()[:16]

    def publish(self, post: Outgoing) -> Receipt:
        remote_id = self.remote_id(post)
        receipt = Receipt(remote_id=remote_id, url=f"dryrun://{post.account}/{remote_id}")
        line: dict[str, Any] = {
            "at": "",
            "post_id": post.post_id,
            "account": post.account,
            "platform": post.platform,
            "due": post.due_at.isoformat(),
            "text": post.text,
            "id": receipt.remote_id,
            "key": post.idempotency_key,
        }
        if post.reply_to is not None:
            line["reply_to"] = post.reply_to.remote_id
        with self._lock:
            # the time is read under the lock: the outbox is in the order of its times
            # even when several accounts' posts go out side by side
            line["at"] = self._now().isoformat()
            self.sent.append(line)
            if self.outbox is not None:
                # One write of one line per post, handed to the OS before we report
                # success: a killed daemon cannot lose it, and find() sees it. (No
                # fsync: that guards against power loss, and costs a burst seconds.)
                if self._fh is None:
                    self.outbox.parent.mkdir(parents=True, exist_ok=True)
                    # Created readable by its owner only, like the database: it holds
                    # every post, approved or not, before any of them is public.
                    fd = os.open(self.outbox, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    self._fh = os.fdopen(fd, "a", encoding="utf-8")
                self._fh.write(json.dumps(line, ensure_ascii=False) + "\n")
                self._fh.flush()
        return receipt

    def _lines(self) -> list[dict[str, Any]]:
        if self.outbox is None:
            return list(self.sent)
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
        if not self.outbox.exists():
            return []
        out = []
        with self.outbox.open(encoding="utf-8") as fh:
            for raw in fh:
                raw = raw.strip()
                if raw:
                    try:
                        out.append(json.loads(raw))
                    except json.JSONDecodeError:
                        continue  # a line torn by a crash mid-write was never a post
        return out

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        for line in self._lines():
            if line.get("key") == post.idempotency_key:
                return Receipt(remote_id=str(line["id"]), url=f"dryrun://{post.account}/{line['id']}")
        return None

    def check(self) -> Identity:
        return Identity(platform="dryrun", handle=self.account, remote_id=self.account,
                        display_name="dry run (nothing leaves this machine)")

    def max_characters(self) -> int | None:
        return None

    def close(self) -> None:
        """Close the outbox file (a later post opens it again)."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


if TYPE_CHECKING:
    _contract: type[Publisher[DryRunCredentials]] = DryRunPublisher
