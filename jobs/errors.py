"""What went wrong with one publish attempt, and so what happens next.

```
PublishError
├── TransientError(retry_after)   429, no connection made, a 5xx or timeout on an
│                                 upload or read -> queued after max(retry_after, backoff)
├── PermanentError                400, 403, 404, text rejected -> failed
│   └── AuthError                 401 -> failed attempt is not counted; account paused
└── UnknownOutcome                a create answered by anything short of a refusal
                                  (5xx, proxy page, timeout or reset after sending)
                                  -> unknown, then reconcile with the adapter's find()
```

Messages never contain credentials: adapters build them from status codes and the
platform's own error text only.
"""

from __future__ import annotations

from datetime import datetime


class PublishError(Exception):
    """Base of every failure of a publish attempt."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class TransientError(PublishError):
    """Try again later. `retry_after` is seconds the platform asked us to wait, if any;
    `resume_at` is the instant the whole account may post again (rate limits)."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 resume_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.resume_at = resume_at


class PermanentError(PublishError):
    """Retrying cannot help: the platform refused this post."""


class AuthError(PermanentError):
    """The account's credentials were refused: pause the account until a human acts."""


class UnknownOutcome(PublishError):
    """The request may have reached the platform; only a lookup can tell."""
