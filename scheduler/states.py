"""A post's states, apart from the tables: the command line names them in its help,
which must not wait for SQLModel and every table to be built (`scheduler.models`
re-exports them, where most of the code takes them from; the Core paths — the daemon,
the planner, a rehearsal — take them from here)."""

from __future__ import annotations

from enum import StrEnum


class PostState(StrEnum):
    """A post's place in its life; the allowed moves are `scheduler.transitions.ALLOWED`."""

    DRAFT = "draft"
    QUEUED = "queued"
    SENDING = "sending"
    PUBLISHED = "published"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REVIEW = "review"
    EXPIRED = "expired"
    CANCELED = "canceled"


# no move leads out of these
FINAL_STATES = frozenset({PostState.PUBLISHED, PostState.FAILED, PostState.EXPIRED,
                          PostState.CANCELED})
# a person can cancel a post in these: anything before it is handed to a platform
CANCELABLE_STATES = (PostState.DRAFT, PostState.QUEUED, PostState.REVIEW)


class PauseScope(StrEnum):
    """What a pause (`tminus pause`, the dashboard) holds."""

    ALL = "all"
    CAMPAIGN = "campaign"
    ACCOUNT = "account"


class ActivityKind(StrEnum):
    """What an `activity` row records: what happened that is not a post's move."""

    PAUSED = "paused"
    RESUMED = "resumed"
    PERSON_ADDED = "person added"
    PERSON_REMOVED = "person removed"
    PASSWORD_SET = "password set"
    ROLE_SET = "role set"
    ACCOUNT_RESUMED = "account resumed"
    LOGGED_IN = "logged in"
