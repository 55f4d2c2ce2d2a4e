"""member tiers, tier history and the rollups behind the dashboard

Revision ID: 0300 ("0300_tiers" before the skills owned their migrations)
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0300'
down_revision = '0001'
branch_labels = ('tiers',)
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('member_tiers',
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('since', storage.types.UTCDateTime(), nullable=False),
    sa.Column('joined_day', sa.String(length=10), nullable=True),
    sa.Column('last_active_day', sa.String(length=10), nullable=True),
    sa.Column('active_days_7', sa.Integer(), nullable=False),
    sa.Column('active_days_window', sa.Integer(), nullable=False),
    sa.Column('messages_window', sa.Integer(), nullable=False),
    sa.Column('checkins_window', sa.Integer(), nullable=False),
    sa.Column('orders_window', sa.Integer(), nullable=False),
    sa.Column('amount_window', sa.Float(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('r', sa.Integer(), nullable=False),
    sa.Column('f', sa.Integer(), nullable=False),
    sa.Column('m', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('member_id'),
    sqlite_with_rowid=False
    )
    op.create_index('ix_member_tiers_tier', 'member_tiers', ['tier'])
    op.create_table('tier_changes',
    sa.Column('id', PK, autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('from_tier', sa.String(length=16), nullable=True),
    sa.Column('to_tier', sa.String(length=16), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_tier_changes_member_at', 'tier_changes', ['member_id', 'at'])
    op.create_index('ix_tier_changes_at', 'tier_changes', ['at'])
    op.create_table('tier_daily',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'tier'),
    sqlite_with_rowid=False
    )
    op.create_table('member_days',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('actions', sa.Integer(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('checkins', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'member_id'),
    sqlite_with_rowid=False
    )
    op.create_table('member_windows',
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('days_window', sa.Integer(), nullable=False),
    sa.Column('days_recent', sa.Integer(), nullable=False),
    sa.Column('messages_window', sa.Integer(), nullable=False),
    sa.Column('checkins_window', sa.Integer(), nullable=False),
    sa.Column('last_active_day', sa.String(length=10), nullable=True),
    sa.PrimaryKeyConstraint('member_id'),
    sqlite_with_rowid=False
    )
    op.create_table('window_days',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('in_window', sa.Integer(), nullable=False),
    sa.Column('in_recent', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('room_days',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('active_members', sa.Integer(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('checkins', sa.Integer(), nullable=False),
    sa.Column('faq_answered', sa.Integer(), nullable=False),
    sa.Column('faq_missed', sa.Integer(), nullable=False),
    sa.Column('joins', sa.Integer(), nullable=False),
    sa.Column('leaves', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'room_id'),
    sqlite_with_rowid=False
    )
    op.create_table('tier_orders',
    sa.Column('order_id', sa.String(length=128), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('group_buy', sa.String(length=128), nullable=True),
    sa.Column('placed_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('updated_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('order_id'),
    sqlite_with_rowid=False
    )
    op.create_index('ix_tier_orders_member', 'tier_orders', ['member_id'])
    op.create_table('tier_runs',
    sa.Column('id', PK, autoincrement=True, nullable=False),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('rolled_through', sa.String(length=10), nullable=True),
    sa.Column('activity_id', sa.BigInteger(), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    for table in ('tier_runs', 'tier_orders', 'room_days', 'window_days', 'member_windows', 'member_days', 'tier_daily', 'tier_changes',
                  'member_tiers'):
        op.drop_table(table)
