"""The tables as SQLModel classes: the commands', the web's and the planner's view of
them, mapped onto the Core tables of `scheduler.tables` (the schema's one definition,
which the daemon uses without SQLModel). The `post` table is the only record of what is
due; `event` is the audit trail with one row per state transition."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from scheduler import tables
from scheduler.approval import text_hash as text_hash  # re-exported

# re-exported: the migrations name them here
from scheduler.sqltypes import StateColumn as StateColumn
from scheduler.sqltypes import UTCDateTime as UTCDateTime
from scheduler.states import CANCELABLE_STATES as CANCELABLE_STATES  # re-exported
from scheduler.states import FINAL_STATES as FINAL_STATES  # re-exported
from scheduler.states import ActivityKind as ActivityKind  # re-exported
from scheduler.states import PauseScope as PauseScope  # re-exported
from scheduler.states import PostState as PostState  # re-exported: where the code takes it from


class _Table(SQLModel):
    """The base of every table. Rows are built from the database and from our code, never
    validated by pydantic: its validators are built on first use, not when this module is
    imported (every command imports it; building 16 tables' schemas was a sixth of that)."""

    model_config = SQLModelConfig(defer_build=True)

    @classmethod
    def __table_cls__(cls, name: str, metadata: sa.MetaData, *declared: Any, **kw: Any
                      ) -> sa.Table:
        """The class is mapped onto the Core table of its name (`scheduler.tables`, the
        schema's one definition, which the daemon uses without this module). What the
        fields declare is kept in DECLARED for `tests/test_tables.py` to compare."""
        DECLARED[name] = (declared, kw)
        return tables.metadata.tables[name]


# table name -> the columns and table arguments its class's fields declare
DECLARED: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
# the schema, for Alembic and create_all (the classes add nothing to SQLModel.metadata)
metadata = tables.metadata


def _utc(**kw: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kw))


def _state(**kw: Any) -> Any:
    return Field(sa_column=Column(StateColumn(), **kw))


class Campaign(_Table, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    title: str
    deadline: datetime = _utc(nullable=False)
    timezone: str
    folder: str | None = None
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    account_names: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc(nullable=False)
    updated_at: datetime = _utc(nullable=False)


class Account(_Table, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    platform: str
    credentials: str
    tier: str
    budget_posts: int | None = None
    budget_seconds: int | None = None
    max_characters: int | None = None     # a Mastodon instance's own limit, once read
    handle: str | None = None             # who it posts as, from `accounts check`
    paused_reason: str | None = None      # set on 401: its posts wait for a human
    paused_at: datetime | None = _utc(nullable=True)
    resume_at: datetime | None = _utc(nullable=True)   # set on 429: no attempt before
    session: str | None = Field(default=None, repr=False)  # Bluesky login; never printed
    # the campaign that declared it (campaign.id): another campaign may not take it over.
    # No foreign key: adding one would make SQLite rebuild this table, which the posts
    # reference; a campaign row is never deleted.
    campaign_id: int | None = None


class Post(_Table, table=True):
    __tablename__ = "post"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "plan_key", name="uq_post_campaign_plan_key"),
        sa.Index("ix_post_due", "state", "next_attempt_at"),      # claim, next_due
        sa.Index("ix_post_expiry", "state", "not_after"),         # expire_stale
        sa.Index("ix_post_window", "account_id", "claimed_at"),   # rate budgets
        # thread posts only (0008): most posts are in no thread
        *(sa.Index(f"ix_post_{name}", name, sqlite_where=sa.text(f"{name} IS NOT NULL"),
                   postgresql_where=sa.text(f"{name} IS NOT NULL"))
          for name in ("parent_id", "thread_root_id")),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    plan_key: str
    post_key: str
    origin: str = "plan"                  # plan | cli
    # a thread's later post: it replies to `parent_id` and waits until that is published.
    # Indexed: every deleted post is looked up in both (they are foreign keys), and a
    # thread's posts are found by their root; unindexed, deleting n posts scans n times.
    # (Partial indexes, of the thread posts only: in __table_args__.)
    parent_id: int | None = Field(default=None, foreign_key="post.id")
    thread_root_id: int | None = Field(default=None, foreign_key="post.id")
    state: PostState = _state(nullable=False, default=PostState.DRAFT)
    text: str
    text_hash: str
    approved_hash: str | None = None      # the digest of `approved`
    # everything the approval covered (scheduler.approval.manifest): compared with what
    # is about to go out right before each request
    approved: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    approved_by: str | None = None
    approved_at: datetime | None = _utc(nullable=True)
    due_at: datetime = _utc(nullable=False)
    not_after: datetime = _utc(nullable=False)
    next_attempt_at: datetime = _utc(nullable=False)
    idempotency_key: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    attempt: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = _utc(nullable=True)
    claimed_at: datetime | None = _utc(nullable=True)
    last_error: str | None = None
    # when an attempt's outcome was last unknown (it may be out): a platform whose
    # duplicate protection is short-lived (Mastodon's Idempotency-Key, about an hour) is
    # asked again before a retry long after it
    unknown_at: datetime | None = _utc(nullable=True)
    remote_id: str | None = None
    remote_url: str | None = None
    receipt: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    published_at: datetime | None = _utc(nullable=True)
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    length: int = 0
    length_limit: int = 0
    created_at: datetime = _utc(nullable=False)
    updated_at: datetime = _utc(nullable=False)
    # A person's edit (`tminus edit`, the web): who and when, and — for a planned post —
    # the text the campaign file gives meanwhile, so a re-plan keeps the edit; a file
    # that changed after the edit is a conflict for a person to settle.
    edited_by: str | None = None
    edited_at: datetime | None = _utc(nullable=True)
    planned_text: str | None = None
    plan_conflict: bool = Field(default=False, sa_column=Column(
        sa.Boolean(), nullable=False, server_default=sa.false()))


class Event(_Table, table=True):
    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    at: datetime = _utc(nullable=False)
    from_state: PostState | None = _state(nullable=True)
    to_state: PostState = _state(nullable=False)
    reason: str
    actor: str


class Daemon(_Table, table=True):
    __tablename__ = "daemon"

    id: str = Field(primary_key=True)
    hostname: str
    pid: int
    started_at: datetime = _utc(nullable=False)
    beat_at: datetime = _utc(nullable=False)
    stopped_at: datetime | None = _utc(nullable=True)
    sent: int = 0
    dry_run: bool = False
    # how far the host's clock is from the database's (the daemon keeps the database's)
    skew_seconds: float | None = None


# -- people, pauses and what happened besides posts (the web dashboard, `tminus pause`) --


class Role(StrEnum):
    """What a person may do, each role all the one before it may: a viewer sees; an
    editor queues, edits, cancels and pauses; an approver approves, resolves reviews and
    resumes; an admin manages people."""

    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


class Person(_Table, table=True):
    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    name: str                              # as shown in the event log: "Ana Ruiz"
    login: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))  # casefolded
    role: str
    password_hash: str = Field(repr=False)  # Argon2id, never printed
    created_at: datetime = _utc(nullable=False)
    created_by: str


class WebSession(_Table, table=True):
    """A login. The browser holds a random token (signed); only its hash is here, so a
    copy of the database opens no session. Logging out deletes the row."""

    __tablename__ = "web_session"

    token_hash: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    person_id: int = Field(sa_column=Column(
        sa.Integer(), sa.ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime = _utc(nullable=False)
    expires_at: datetime = _utc(nullable=False)


class LoginFailure(_Table, table=True):
    """A refused login, kept for the throttle window (in the database, so the bound holds
    across restarts and several web workers)."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(nullable=False, index=True)
    login: str = Field(sa_column=Column(sa.String(64), nullable=False, index=True))
    address: str = Field(sa_column=Column(sa.String(64), nullable=False, index=True))


class Pause(_Table, table=True):
    """A person stopped posts going out: everything, one campaign or one account. In
    force while `resumed_at` is None; kept afterwards as the record of it."""

    __tablename__ = "pause"

    id: int | None = Field(default=None, primary_key=True)
    scope: str
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    account_id: int | None = Field(default=None, foreign_key="account.id")
    reason: str
    paused_by: str
    paused_at: datetime = _utc(nullable=False)
    resumed_by: str | None = None
    resumed_at: datetime | None = _utc(nullable=True, index=True)


class Activity(_Table, table=True):
    """What happened that is not a post's change of state: pauses, resumes, people
    added and removed. Shown on the overview and in `tminus status`."""

    __tablename__ = "activity"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(nullable=False, index=True)
    kind: str
    actor: str
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    message: str


class WebConfig(_Table, table=True):
    """Values the web dashboard keeps for itself: the session-signing secret when
    TMINUS_WEB_SECRET is not set (made once, shared by every web worker)."""

    __tablename__ = "web_config"

    key: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    value: str = Field(repr=False)


# -- alerts: what is worth a person, and the messages that told them (scheduler.alerts) --


class AlertItem(_Table, table=True):
    """One thing worth a person — a post failed, an account paused, a deadline passed —
    waiting for the next message of its kind and campaign (`message_id` set once in one).
    `key` says what it is about, so nothing is said twice: "event:123", "deadline:4"."""

    __tablename__ = "alert_item"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(sa.String(200), unique=True, nullable=False))
    kind: str
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    post_id: int | None = None
    at: datetime = _utc(nullable=False)
    text: str
    message_id: int | None = Field(default=None, foreign_key="alert_message.id", index=True)


class AlertMessage(_Table, table=True):
    """One message to TMINUS_NOTIFY, grouping items of one kind and campaign; every
    attempt to deliver it is counted, the last failure kept (never a URL: redacted)."""

    __tablename__ = "alert_message"
    __table_args__ = (sa.Index("ix_alert_message_group", "kind", "campaign_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    title: str
    body: str
    created_at: datetime = _utc(nullable=False)
    next_try_at: datetime = _utc(nullable=False, index=True)
    attempts: int = 0
    sent_at: datetime | None = _utc(nullable=True)
    gave_up_at: datetime | None = _utc(nullable=True)
    last_error: str | None = None


class AlertDelivery(_Table, table=True):
    """One message to one TMINUS_NOTIFY destination (named as `notify test` shows it,
    its secrets masked): a destination that took the message is never sent it again
    while another refuses it."""

    __tablename__ = "alert_delivery"

    message_id: int = Field(sa_column=Column(
        sa.Integer, sa.ForeignKey("alert_message.id", ondelete="CASCADE"), primary_key=True))
    destination: str = Field(sa_column=Column(sa.String(500), primary_key=True))
    position: int = 0
    attempts: int = 0
    sent_at: datetime | None = _utc(nullable=True)
    last_error: str | None = None


class OpsCursor(_Table, table=True):
    """How far a reader of an append-only table has got (the alert collector: the last
    event and activity ids it has read)."""

    __tablename__ = "ops_cursor"

    name: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    last_id: int = 0


class CalendarEntry(_Table, table=True):
    """A post as the calendar feed last showed it: its SEQUENCE goes up whenever its
    time, text or state differs from `fingerprint` (calendar apps replace an event only
    when its SEQUENCE grows)."""

    __tablename__ = "calendar_entry"

    post_id: int = Field(sa_column=Column(
        sa.Integer(), sa.ForeignKey("post.id", ondelete="CASCADE"), primary_key=True))
    fingerprint: str
    sequence: int = 0


class PostEngagement(_Table, table=True):
    """How a published post did, as its platform last counted (`tminus engagement fetch`,
    `tminus report --refresh`)."""

    __tablename__ = "post_engagement"

    post_id: int = Field(sa_column=Column(
        sa.Integer(), sa.ForeignKey("post.id", ondelete="CASCADE"), primary_key=True))
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    fetched_at: datetime = _utc(nullable=False, index=True)
