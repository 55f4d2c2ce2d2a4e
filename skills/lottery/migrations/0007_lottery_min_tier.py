"""lotteries.min_tier

Revision ID: 0007
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lotteries') as batch:
        batch.add_column(sa.Column('min_tier', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lotteries') as batch:
        batch.drop_column('min_tier')
