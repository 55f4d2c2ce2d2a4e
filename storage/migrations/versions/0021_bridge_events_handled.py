"""bridge_events, wecom_callbacks: the accepted event's (微信客服 message's) cleaned payload and when it was handled
(or dropped, and why), so one accepted but not handled before a crash is handled after the restart

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


TABLES = (('bridge_events', 'ix_bridge_events_pending'), ('wecom_callbacks', 'ix_wecom_callbacks_pending'))


def upgrade() -> None:
    for table, index in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('payload', sa.Text(), nullable=True))
            batch.add_column(sa.Column('handled_at', storage.types.UTCDateTime(), nullable=True))
            batch.add_column(sa.Column('dropped', sa.String(length=64), nullable=True))
        # what was accepted before this revision was handled from memory: nothing to hand on
        op.execute(f"UPDATE {table} SET handled_at = received_at")
        op.create_index(index, table, ['received_at'],
                        sqlite_where=sa.text('handled_at IS NULL'), postgresql_where=sa.text('handled_at IS NULL'))


def downgrade() -> None:
    for table, index in TABLES:
        op.drop_index(index, table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column('dropped')
            batch.drop_column('handled_at')
            batch.drop_column('payload')
