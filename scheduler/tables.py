"""The tables, as SQLAlchemy Core `Table`s: the one definition of the schema.

The daemon reads and writes them through Core alone: importing SQLModel (and with it
pydantic and the ORM) would cost its process more memory than APScheduler's whole one.
The SQLModel classes of `scheduler.models` — the commands', the web's and the
planner's — are mapped onto these very `Table`s (`_Table.__table_cls__` there), so a
statement may mix `Post.state` and `post.c.state`: they are one column. The classes
still declare their fields for pydantic; `tests/test_tables.py` checks that what they
declare makes exactly these tables (columns, types, nullability, keys, indexes,
defaults) on SQLite and PostgreSQL. A change here is a migration
(`scheduler/migrations`), as before.

Only the daemon's six tables are built here (account, campaign, daemon, event, pause,
post); the other eleven, which only the commands, the web and the alerts use, are in
`scheduler.tables_rest`, built the first time one of them — or `metadata`, which holds
all seventeen — is asked for (`tables.web_session`, `from scheduler.tables import
metadata`): a `Table` costs about 4 KB a column, and the daemon's process never builds
those 58 columns (0.3 MB; docs/DESIGN.md, "The daemon's process").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from scheduler.sqltypes import StateColumn, UTCDateTime
from scheduler.states import PostState

if TYPE_CHECKING:     # (built by `__getattr__` below)
    metadata: sa.MetaData
    activity: sa.Table
    alert_delivery: sa.Table
    alert_item: sa.Table
    alert_message: sa.Table
    calendar_entry: sa.Table
    login_failure: sa.Table
    ops_cursor: sa.Table
    person: sa.Table
    post_engagement: sa.Table
    web_config: sa.Table
    web_session: sa.Table

# Every table's MetaData: `metadata` once `scheduler.tables_rest` has added the rest.
_metadata = sa.MetaData()

# The tables of `scheduler.tables_rest`, built when first asked for.
REST = frozenset({
    'activity',
    'alert_delivery',
    'alert_item',
    'alert_message',
    'calendar_entry',
    'login_failure',
    'ops_cursor',
    'person',
    'post_engagement',
    'web_config',
    'web_session',
})


if not TYPE_CHECKING:      # (mypy: the names above, typo-checked)
    def __getattr__(name: str) -> Any:
        if name in REST or name == "metadata":
            from scheduler import tables_rest
            globals()["metadata"] = _metadata
            return getattr(tables_rest, name) if name in REST else _metadata
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# (Alphabetical. A post's columns are explained in `scheduler.models`.)


account = sa.Table(
    'account', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('name', sa.String(64), nullable=False, unique=True),
    sa.Column('platform', sa.String(), nullable=False),
    sa.Column('credentials', sa.String(), nullable=False),
    sa.Column('tier', sa.String(), nullable=False),
    sa.Column('budget_posts', sa.Integer(), nullable=True),
    sa.Column('budget_seconds', sa.Integer(), nullable=True),
    sa.Column('max_characters', sa.Integer(), nullable=True),
    sa.Column('handle', sa.String(), nullable=True),
    sa.Column('paused_reason', sa.String(), nullable=True),
    sa.Column('paused_at', UTCDateTime(), nullable=True),
    sa.Column('resume_at', UTCDateTime(), nullable=True),
    sa.Column('session', sa.String(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
)

campaign = sa.Table(
    'campaign', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('slug', sa.String(64), nullable=False, unique=True),
    sa.Column('title', sa.String(), nullable=False),
    sa.Column('deadline', UTCDateTime(), nullable=False),
    sa.Column('timezone', sa.String(), nullable=False),
    sa.Column('folder', sa.String(), nullable=True),
    sa.Column('hashtags', sa.JSON(), nullable=False),
    sa.Column('account_names', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
)

daemon = sa.Table(
    'daemon', _metadata,
    sa.Column('id', sa.String(), primary_key=True, nullable=False),
    sa.Column('hostname', sa.String(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('beat_at', UTCDateTime(), nullable=False),
    sa.Column('stopped_at', UTCDateTime(), nullable=True),
    sa.Column('sent', sa.Integer(), nullable=False, default=0),
    sa.Column('dry_run', sa.Boolean(), nullable=False, default=False),
    sa.Column('skew_seconds', sa.Float(), nullable=True),
)

event = sa.Table(
    'event', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('post_id', sa.Integer(), sa.ForeignKey('post.id'), nullable=False, index=True),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('from_state', StateColumn(), nullable=True),
    sa.Column('to_state', StateColumn(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('actor', sa.String(), nullable=False),
)

pause = sa.Table(
    'pause', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('scope', sa.String(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), sa.ForeignKey('campaign.id'), nullable=True),
    sa.Column('account_id', sa.Integer(), sa.ForeignKey('account.id'), nullable=True),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('paused_by', sa.String(), nullable=False),
    sa.Column('paused_at', UTCDateTime(), nullable=False),
    sa.Column('resumed_by', sa.String(), nullable=True),
    sa.Column('resumed_at', UTCDateTime(), nullable=True, index=True),
)

post = sa.Table(
    'post', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('campaign_id', sa.Integer(), sa.ForeignKey('campaign.id'), nullable=False, index=True),
    sa.Column('account_id', sa.Integer(), sa.ForeignKey('account.id'), nullable=False, index=True),
    sa.Column('plan_key', sa.String(), nullable=False),
    sa.Column('post_key', sa.String(), nullable=False),
    sa.Column('origin', sa.String(), nullable=False, default='plan'),
    sa.Column('parent_id', sa.Integer(), sa.ForeignKey('post.id'), nullable=True),
    sa.Column('thread_root_id', sa.Integer(), sa.ForeignKey('post.id'), nullable=True),
    sa.Column('state', StateColumn(), nullable=False, default=PostState.DRAFT),
    sa.Column('text', sa.String(), nullable=False),
    sa.Column('text_hash', sa.String(), nullable=False),
    sa.Column('approved_hash', sa.String(), nullable=True),
    sa.Column('approved', sa.JSON(), nullable=True),
    sa.Column('approved_by', sa.String(), nullable=True),
    sa.Column('approved_at', UTCDateTime(), nullable=True),
    sa.Column('due_at', UTCDateTime(), nullable=False),
    sa.Column('not_after', UTCDateTime(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
    sa.Column('idempotency_key', sa.String(64), nullable=False, unique=True),
    sa.Column('attempt', sa.Integer(), nullable=False, default=0),
    sa.Column('lease_owner', sa.String(), nullable=True),
    sa.Column('lease_until', UTCDateTime(), nullable=True),
    sa.Column('claimed_at', UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('unknown_at', UTCDateTime(), nullable=True),
    sa.Column('remote_id', sa.String(), nullable=True),
    sa.Column('remote_url', sa.String(), nullable=True),
    sa.Column('receipt', sa.JSON(), nullable=True),
    sa.Column('published_at', UTCDateTime(), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('length', sa.Integer(), nullable=False, default=0),
    sa.Column('length_limit', sa.Integer(), nullable=False, default=0),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('edited_by', sa.String(), nullable=True),
    sa.Column('edited_at', UTCDateTime(), nullable=True),
    sa.Column('planned_text', sa.String(), nullable=True),
    sa.Column('plan_conflict', sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.UniqueConstraint('campaign_id', 'plan_key', name='uq_post_campaign_plan_key'),
    sa.Index('ix_post_due', 'state', 'next_attempt_at'),
    sa.Index('ix_post_expiry', 'state', 'not_after'),
    sa.Index('ix_post_window', 'account_id', 'claimed_at'),
    # thread posts only (migration 0008): a plan's new posts add nothing to them
    *(sa.Index(f'ix_post_{name}', name, sqlite_where=sa.text(f'{name} IS NOT NULL'),
               postgresql_where=sa.text(f'{name} IS NOT NULL'))
      for name in ('parent_id', 'thread_root_id')),
)
