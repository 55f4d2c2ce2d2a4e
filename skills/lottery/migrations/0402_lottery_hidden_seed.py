"""lottery: the seed derived from a key in the environment (nonce), published entrant aliases and their hash

Revision ID: 0402
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = '0402'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Open lotteries from before keep their stored seed (nonce stays NULL): they draw by the legacy procedure.
    with op.batch_alter_table('lotteries') as batch:
        batch.alter_column('seed', existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column('nonce', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('alias_salt', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('entrants_hash', sa.String(length=64), nullable=True))
    with op.batch_alter_table('lottery_entries') as batch:
        batch.add_column(sa.Column('alias', sa.String(length=16), nullable=True))
    op.create_index('uq_lottery_entries_alias', 'lottery_entries', ['lottery_id', 'alias'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_lottery_entries_alias', table_name='lottery_entries')
    with op.batch_alter_table('lottery_entries') as batch:
        batch.drop_column('alias')
    # a lottery started after the upgrade has no stored seed until it ends: downgrading loses its draw
    op.execute("UPDATE lotteries SET status = 'cancelled' WHERE seed IS NULL AND status = 'open'")
    op.execute("UPDATE lotteries SET seed = '' WHERE seed IS NULL")
    with op.batch_alter_table('lotteries') as batch:
        batch.drop_column('entrants_hash')
        batch.drop_column('alias_salt')
        batch.drop_column('nonce')
        batch.alter_column('seed', existing_type=sa.String(length=64), nullable=False)
