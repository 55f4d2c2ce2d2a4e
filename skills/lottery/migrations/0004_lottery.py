"""lottery

Revision ID: 0004
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0004'
down_revision = '0002'
branch_labels = ('lottery',)
depends_on = None


def upgrade() -> None:
    op.create_table('lotteries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('prize', sa.String(length=200), nullable=False),
    sa.Column('winners', sa.Integer(), nullable=False),
    sa.Column('keyword', sa.String(length=64), nullable=False),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.Column('commitment', sa.String(length=64), nullable=False),
    sa.Column('seed', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('deadline', storage.types.UTCDateTime(), nullable=False),
    sa.Column('drawn_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('winner_ids', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lotteries', schema=None) as batch_op:
        batch_op.create_index('ix_lotteries_room_created', ['room_id', 'created_at'], unique=False)
        batch_op.create_index('uq_lotteries_room_open', ['room_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('lottery_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('lottery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lottery_id'], ['lotteries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lottery_id', 'member_id', name='uq_lottery_entries_member')
    )


def downgrade() -> None:
    op.drop_table('lottery_entries')
    with op.batch_alter_table('lotteries', schema=None) as batch_op:
        batch_op.drop_index('uq_lotteries_room_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_lotteries_room_created')

    op.drop_table('lotteries')
