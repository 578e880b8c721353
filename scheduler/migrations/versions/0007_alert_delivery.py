"""alert_delivery: each alert message's delivery to each TMINUS_NOTIFY destination

A message was one unit for every destination: while one refused it, each retry went to
all of them again and the working ones got copies. With a row per destination, a retry
goes only to those that have not taken it. Messages from before keep no rows: the next
try of one still undelivered makes them, for every destination then configured.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scheduler.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_delivery',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('destination', sa.String(length=500), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', scheduler.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['alert_message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', 'destination')
    )


def downgrade() -> None:
    op.drop_table('alert_delivery')
