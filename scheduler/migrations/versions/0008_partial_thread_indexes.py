"""the indexes on post.parent_id and post.thread_root_id hold only thread posts

Most posts are in no thread (both columns NULL), and the indexes exist only to find a
post's followers (equality: a deleted post's, a thread's by its root), which a NULL never
is. Partial indexes (WHERE ... IS NOT NULL) hold just the thread posts: the same
look-ups use them, and a plan's 100,000 new posts, none yet in a thread when inserted,
add nothing to them (the planner keeps them through its insert instead of making them
again after it: `transitions.indexes_set_aside`).

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_COLUMNS = {'ix_post_parent_id': 'parent_id', 'ix_post_thread_root_id': 'thread_root_id'}


def upgrade() -> None:
    # plain DROP/CREATE INDEX (no batch mode): nothing else of the table changes
    for name, column in _COLUMNS.items():
        op.drop_index(name, table_name='post')
        where = sa.text(f'{column} IS NOT NULL')
        op.create_index(name, 'post', [column], unique=False,
                        sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, column in _COLUMNS.items():
        op.drop_index(name, table_name='post')
        op.create_index(name, 'post', [column], unique=False)
