"""orders, their events and reminders, group buys, member bindings

Revision ID: 0201
Revises: 0001
Branch: orders

Databases made before the skills owned their migrations have these tables already (they came with revision
"0200_gentle_orders"): each is created only where it is missing.
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0201'
down_revision = '0001'
branch_labels = ('orders',)
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'group_buys' not in existing:
        op.create_table('group_buys',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('cutoff_at', storage.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sqlite_with_rowid=False
        )
    if 'member_bindings' not in existing:
        op.create_table('member_bindings',
        sa.Column('external_id', sa.String(length=128), nullable=False),
        sa.Column('wechat_id', sa.String(length=128), nullable=False),
        sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('external_id'),
        sqlite_with_rowid=False
        )
        with op.batch_alter_table('member_bindings', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_member_bindings_wechat_id'), ['wechat_id'], unique=False)
    if 'order_events' not in existing:
        op.create_table('order_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('order_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('received_at', storage.types.UTCDateTime(), nullable=False),
        sa.Column('applied', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('order_id', 'status', name='uq_order_events_order_status')
        )
    if 'orders' not in existing:
        op.create_table('orders',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('member_id', sa.String(length=128), nullable=True),
        sa.Column('external_member_id', sa.String(length=128), nullable=True),
        sa.Column('items', sa.JSON(), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('pay_by', storage.types.UTCDateTime(), nullable=True),
        sa.Column('pickup_by', storage.types.UTCDateTime(), nullable=True),
        sa.Column('group_buy_id', sa.String(length=64), nullable=True),
        sa.Column('room_id', sa.String(length=128), nullable=True),
        sa.Column('tracking', sa.Text(), nullable=True),
        sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
        sa.Column('updated_at', storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('orders', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_orders_external_member_id'), ['external_member_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_orders_group_buy_id'), ['group_buy_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_orders_member_id'), ['member_id'], unique=False)
    if 'reminders_sent' not in existing:
        op.create_table('reminders_sent',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('ref', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('target', sa.String(length=140), nullable=False),
        sa.Column('decided_at', storage.types.UTCDateTime(), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ref', 'kind', 'target', name='uq_reminders_sent')
        )


def downgrade() -> None:
    op.drop_table('reminders_sent')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_member_id'))
        batch_op.drop_index(batch_op.f('ix_orders_group_buy_id'))
        batch_op.drop_index(batch_op.f('ix_orders_external_member_id'))
    op.drop_table('orders')
    op.drop_table('order_events')
    with op.batch_alter_table('member_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_bindings_wechat_id'))
    op.drop_table('member_bindings')
    op.drop_table('group_buys')
