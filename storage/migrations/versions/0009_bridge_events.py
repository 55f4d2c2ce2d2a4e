"""bridge_events: the ids of accepted bridge events (de-duplication across restarts)

Revision ID: 0009
Revises: 0200
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0009'
down_revision = '0200'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bridge_events',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('received_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_with_rowid=False
    )
    op.create_index('ix_bridge_events_received_at', 'bridge_events', ['received_at'])


def downgrade() -> None:
    op.drop_index('ix_bridge_events_received_at', table_name='bridge_events')
    op.drop_table('bridge_events')
