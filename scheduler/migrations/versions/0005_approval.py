"""approval covers everything that goes out: the approved manifest of each post; the
campaign an account belongs to

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved', sa.JSON(), nullable=True))
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('campaign_id')
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('approved')
