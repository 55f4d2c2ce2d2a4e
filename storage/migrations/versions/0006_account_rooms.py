"""account rooms; scheduled_jobs.room_id

Revision ID: 0006
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0006'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_rooms',
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('last_seen', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'room_id'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('scheduled_jobs') as batch:
        batch.add_column(sa.Column('room_id', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scheduled_jobs') as batch:
        batch.drop_column('room_id')
    op.drop_table('account_rooms')
