"""indexes on post.parent_id and post.thread_root_id

Both are foreign keys to post.id, so deleting a post makes the database look for posts
that point at it. Without an index each look is a scan of the whole table: deleting
5,000 posts of a SQLite database holding them took 10 s of CPU, 0.07 s with these.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain CREATE INDEX (no batch mode): nothing else of the table changes, so SQLite
    # need not copy it
    op.create_index('ix_post_parent_id', 'post', ['parent_id'], unique=False)
    op.create_index('ix_post_thread_root_id', 'post', ['thread_root_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_post_thread_root_id', table_name='post')
    op.drop_index('ix_post_parent_id', table_name='post')
