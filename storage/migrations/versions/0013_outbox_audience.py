"""outbox.audience: a held note to staff (an operator) stays one after a restart

Revision ID: 0013
Revises: 0020
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbox', sa.Column('audience', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('audience')
