"""the daemon's clock skew; when a post's outcome was last unknown

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scheduler.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('daemon', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skew_seconds', sa.Float(), nullable=True))
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unknown_at', scheduler.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('unknown_at')
    with op.batch_alter_table('daemon', schema=None) as batch_op:
        batch_op.drop_column('skew_seconds')
