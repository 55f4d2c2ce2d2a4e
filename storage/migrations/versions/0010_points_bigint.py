"""points as 64-bit integers: on PostgreSQL an int32 balance or delta overflowed at 2,147,483,647

Revision ID: 0010
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's INTEGER is 64-bit already
    op.alter_column('points_balances', 'balance', type_=sa.BigInteger(), existing_type=sa.Integer())
    op.alter_column('points_ledger', 'delta', type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column('points_ledger', 'delta', type_=sa.Integer(), existing_type=sa.BigInteger())
    op.alter_column('points_balances', 'balance', type_=sa.Integer(), existing_type=sa.BigInteger())
