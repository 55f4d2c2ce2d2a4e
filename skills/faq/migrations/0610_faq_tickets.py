"""faq: handoff tickets (人工接管)

Revision ID: 0610
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0610'
down_revision = '0001'
branch_labels = ('faq',)
depends_on = None


def upgrade() -> None:
    op.create_table('faq_tickets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('member_name', sa.String(length=256), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=True),
    sa.Column('room_topic', sa.String(length=256), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('follow_ups', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('waiting_since', storage.types.UTCDateTime(), nullable=False),
    sa.Column('first_reply_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('last_reply_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('replied_by', sa.String(length=128), nullable=True),
    sa.Column('renotified_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('closed_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('closed_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('faq_tickets', schema=None) as batch_op:
        batch_op.create_index('ix_faq_tickets_member', ['member_id', 'status'], unique=False)
        batch_op.create_index('ix_faq_tickets_status', ['status', 'waiting_since'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('faq_tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_faq_tickets_status')
        batch_op.drop_index('ix_faq_tickets_member')
    op.drop_table('faq_tickets')
