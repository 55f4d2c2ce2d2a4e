"""bridge_events: the accepted event's cleaned payload and when it was handled (or dropped, and why), so an event
accepted but not handled before a crash is handled after the restart

Revision ID: 0021
Revises: 0012
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0021'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bridge_events') as batch:
        batch.add_column(sa.Column('payload', sa.Text(), nullable=True))
        batch.add_column(sa.Column('handled_at', storage.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('dropped', sa.String(length=64), nullable=True))
    # the ids accepted before this revision were handled from memory: nothing to hand on
    op.execute("UPDATE bridge_events SET handled_at = received_at")
    op.create_index('ix_bridge_events_pending', 'bridge_events', ['received_at'],
                    sqlite_where=sa.text('handled_at IS NULL'), postgresql_where=sa.text('handled_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_bridge_events_pending', table_name='bridge_events')
    with op.batch_alter_table('bridge_events') as batch:
        batch.drop_column('dropped')
        batch.drop_column('handled_at')
        batch.drop_column('payload')
