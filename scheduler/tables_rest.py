"""The tables the daemon never uses — the alerts', the web's, the activity log's, the
calendar feed's, the engagement figures' — on `scheduler.tables`'s MetaData. Imported
the first time `scheduler.tables` is asked for one of them or for `metadata` (see that
module); the daemon's process never builds them."""

from __future__ import annotations

import sqlalchemy as sa

from scheduler.sqltypes import UTCDateTime
from scheduler.tables import _metadata

# (Alphabetical.)

activity = sa.Table(
    'activity', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False, index=True),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('actor', sa.String(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), sa.ForeignKey('campaign.id'), nullable=True, index=True),
    sa.Column('message', sa.String(), nullable=False),
)

alert_item = sa.Table(
    'alert_item', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('key', sa.String(200), nullable=False, unique=True),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), sa.ForeignKey('campaign.id'), nullable=True),
    sa.Column('post_id', sa.Integer(), nullable=True),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('text', sa.String(), nullable=False),
    sa.Column('message_id', sa.Integer(), sa.ForeignKey('alert_message.id'), nullable=True, index=True),
)

alert_message = sa.Table(
    'alert_message', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), sa.ForeignKey('campaign.id'), nullable=True),
    sa.Column('title', sa.String(), nullable=False),
    sa.Column('body', sa.String(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('next_try_at', UTCDateTime(), nullable=False, index=True),
    sa.Column('attempts', sa.Integer(), nullable=False, default=0),
    sa.Column('sent_at', UTCDateTime(), nullable=True),
    sa.Column('gave_up_at', UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Index('ix_alert_message_group', 'kind', 'campaign_id', 'created_at'),
)

alert_delivery = sa.Table(
    'alert_delivery', _metadata,
    sa.Column('message_id', sa.Integer(), sa.ForeignKey('alert_message.id', ondelete='CASCADE'),
              primary_key=True, nullable=False),
    sa.Column('destination', sa.String(500), primary_key=True, nullable=False),
    sa.Column('position', sa.Integer(), nullable=False, default=0),
    sa.Column('attempts', sa.Integer(), nullable=False, default=0),
    sa.Column('sent_at', UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
)

calendar_entry = sa.Table(
    'calendar_entry', _metadata,
    sa.Column('post_id', sa.Integer(), sa.ForeignKey('post.id', ondelete='CASCADE'),
              primary_key=True, nullable=False),
    sa.Column('fingerprint', sa.String(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False, default=0),
)

login_failure = sa.Table(
    'login_failure', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False, index=True),
    sa.Column('login', sa.String(64), nullable=False, index=True),
    sa.Column('address', sa.String(64), nullable=False, index=True),
)

ops_cursor = sa.Table(
    'ops_cursor', _metadata,
    sa.Column('name', sa.String(64), primary_key=True, nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False, default=0),
)

person = sa.Table(
    'person', _metadata,
    sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('login', sa.String(64), nullable=False, unique=True),
    sa.Column('role', sa.String(), nullable=False),
    sa.Column('password_hash', sa.String(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(), nullable=False),
)

post_engagement = sa.Table(
    'post_engagement', _metadata,
    sa.Column('post_id', sa.Integer(), sa.ForeignKey('post.id', ondelete='CASCADE'),
              primary_key=True, nullable=False),
    sa.Column('likes', sa.Integer(), nullable=False, default=0),
    sa.Column('reposts', sa.Integer(), nullable=False, default=0),
    sa.Column('replies', sa.Integer(), nullable=False, default=0),
    sa.Column('fetched_at', UTCDateTime(), nullable=False, index=True),
)

web_config = sa.Table(
    'web_config', _metadata,
    sa.Column('key', sa.String(64), primary_key=True, nullable=False),
    sa.Column('value', sa.String(), nullable=False),
)

web_session = sa.Table(
    'web_session', _metadata,
    sa.Column('token_hash', sa.String(64), primary_key=True, nullable=False),
    sa.Column('person_id', sa.Integer(), sa.ForeignKey('person.id', ondelete='CASCADE'),
              nullable=False, index=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
)
