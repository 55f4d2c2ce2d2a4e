"""welcomes

Revision ID: 0005
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0005'
down_revision = '0002'
branch_labels = ('welcome',)
depends_on = None


def upgrade() -> None:
    op.create_table('welcomes',
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('welcomed_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('room_id', 'member_id'),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    op.drop_table('welcomes')
