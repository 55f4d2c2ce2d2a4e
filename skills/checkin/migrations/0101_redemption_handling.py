"""redemptions: handled_at, handled_by (renamed from fulfilled_*: a refusal is handled too), reason

Revision ID: 0101
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0101'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('redemptions') as batch:
        batch.alter_column('fulfilled_at', new_column_name='handled_at')
        batch.alter_column('fulfilled_by', new_column_name='handled_by')
        batch.add_column(sa.Column('reason', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('redemptions') as batch:
        batch.drop_column('reason')
        batch.alter_column('handled_by', new_column_name='fulfilled_by')
        batch.alter_column('handled_at', new_column_name='fulfilled_at')
