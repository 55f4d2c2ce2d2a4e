"""wecom: callback de-duplication, shared access tokens, 微信客服 cursors and customers, the member identity table
(统一用户ID) and the monthly 企业群发 quota

Revision ID: 0011
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wecom_callbacks',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('received_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key'),
    sqlite_with_rowid=False
    )
    op.create_index('ix_wecom_callbacks_received_at', 'wecom_callbacks', ['received_at'])
    op.create_table('wecom_tokens',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('token', sa.String(length=512), nullable=False),
    sa.Column('expires_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    sqlite_with_rowid=False
    )
    op.create_table('wecom_kf_cursors',
    sa.Column('open_kfid', sa.String(length=128), nullable=False),
    sa.Column('cursor', sa.String(length=256), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('open_kfid'),
    sqlite_with_rowid=False
    )
    op.create_table('wecom_kf_customers',
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('open_kfid', sa.String(length=128), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('last_message_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('window_sent', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('external_userid'),
    sqlite_with_rowid=False
    )
    op.create_index('ix_wecom_kf_customers_member_id', 'wecom_kf_customers', ['member_id'])
    op.create_table('member_identities',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'value'),
    sqlite_with_rowid=False
    )
    op.create_index('ix_member_identities_member_id', 'member_identities', ['member_id'])
    op.create_table('wecom_group_sends',
    sa.Column('msgid', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('chat_type', sa.String(length=8), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('finished_at', storage.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('msgid'),
    sqlite_with_rowid=False
    )
    op.create_index('ix_wecom_group_sends_owner', 'wecom_group_sends', ['owner'])
    op.create_index('ix_wecom_group_sends_status', 'wecom_group_sends', ['status'])
    op.create_table('wecom_follows',
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('userid', sa.String(length=128), nullable=False),
    sa.Column('added_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('external_userid', 'userid'),
    sqlite_with_rowid=False
    )
    op.create_table('wecom_tag_marks',
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('tag_id', sa.String(length=128), nullable=False),
    sa.Column('marked_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('external_userid'),
    sqlite_with_rowid=False
    )
    op.create_table('wecom_quota',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('target', sa.String(length=160), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'target'),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    op.drop_table('wecom_quota')
    op.drop_table('wecom_tag_marks')
    op.drop_table('wecom_follows')
    op.drop_index('ix_wecom_group_sends_status', table_name='wecom_group_sends')
    op.drop_index('ix_wecom_group_sends_owner', table_name='wecom_group_sends')
    op.drop_table('wecom_group_sends')
    op.drop_index('ix_member_identities_member_id', table_name='member_identities')
    op.drop_table('member_identities')
    op.drop_index('ix_wecom_kf_customers_member_id', table_name='wecom_kf_customers')
    op.drop_table('wecom_kf_customers')
    op.drop_table('wecom_kf_cursors')
    op.drop_table('wecom_tokens')
    op.drop_index('ix_wecom_callbacks_received_at', table_name='wecom_callbacks')
    op.drop_table('wecom_callbacks')
