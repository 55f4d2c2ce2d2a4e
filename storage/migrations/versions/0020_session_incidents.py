"""session_incidents: alerted session incidents still open, kept across restarts

Revision ID: 0020
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0020'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('session_incidents',
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('slot', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('since', storage.types.UTCDateTime(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'slot'),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    op.drop_table('session_incidents')
