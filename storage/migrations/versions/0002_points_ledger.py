"""points ledger

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('points_balances',
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('balance', sa.Integer(), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('member_id'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('points_balances', schema=None) as batch_op:
        batch_op.create_index('ix_points_balances_balance', ['balance'], unique=False)

    op.create_table('points_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('ref_id', sa.String(length=200), nullable=True),
    sa.Column('actor_id', sa.String(length=128), nullable=True),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'ref_id', name='uq_points_ledger_source_ref')
    )
    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_points_ledger_member_at', ['member_id', 'at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_points_ledger_member_at')

    op.drop_table('points_ledger')
    with op.batch_alter_table('points_balances', schema=None) as batch_op:
        batch_op.drop_index('ix_points_balances_balance')

    op.drop_table('points_balances')
