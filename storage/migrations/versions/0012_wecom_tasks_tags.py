"""wecom: the targets of per-owner 企业群发 tasks, and the corp tags the bot made for the tiers

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wecom_task_targets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('chat_type', sa.String(length=8), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('queued_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('msgid', sa.String(length=64), nullable=True),
    sa.Column('finished_at', storage.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_wecom_task_targets_status', 'wecom_task_targets', ['status'])
    op.create_index('ix_wecom_task_targets_msgid', 'wecom_task_targets', ['msgid'])
    op.create_table('wecom_corp_tags',
    sa.Column('tier', sa.String(length=64), nullable=False),
    sa.Column('tag_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.String(length=128), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tier'),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    op.drop_table('wecom_corp_tags')
    op.drop_index('ix_wecom_task_targets_msgid', table_name='wecom_task_targets')
    op.drop_index('ix_wecom_task_targets_status', table_name='wecom_task_targets')
    op.drop_table('wecom_task_targets')
