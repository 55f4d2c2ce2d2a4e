"""gentle scheduling: opt-outs and the last proactive message per room (the governor's)

Revision ID: 0200
Revises: 0001

Until the skills owned their migrations this revision (then "0200_gentle_orders") also created the orders tables;
they are the orders skill's branch now (skills/orders/migrations/0201_orders.py), which skips what exists.
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0200'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('member_optouts',
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('opted_out_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('member_id'),
    sqlite_with_rowid=False
    )
    op.create_table('proactive_last',
    sa.Column('scope', sa.String(length=140), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope'),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    op.drop_table('proactive_last')
    op.drop_table('member_optouts')
