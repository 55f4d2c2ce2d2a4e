"""initial schema

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0001'
down_revision = None
branch_labels = ('core',)
depends_on = None


def upgrade() -> None:
    op.create_table('activity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=True),
    sa.Column('member_id', sa.String(length=128), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('skill', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_at', ['at'], unique=False)

    op.create_table('member_names',
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('first_seen', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'name'),
    sqlite_with_rowid=False
    )
    op.create_table('members',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('first_seen', storage.types.UTCDateTime(), nullable=False),
    sa.Column('last_seen', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_last_seen'), ['last_seen'], unique=False)

    op.create_table('proactive_counts',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('scope', sa.String(length=140), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'scope', 'kind'),
    sqlite_with_rowid=False
    )
    op.create_table('room_members',
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('first_seen', storage.types.UTCDateTime(), nullable=False),
    sa.Column('last_seen', storage.types.UTCDateTime(), nullable=False),
    sa.Column('joined_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('left_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('inviter_id', sa.String(length=128), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('room_id', 'member_id'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('room_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_room_members_member_id'), ['member_id'], unique=False)

    op.create_table('rooms',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('topic', sa.String(length=256), nullable=False),
    sa.Column('first_seen', storage.types.UTCDateTime(), nullable=False),
    sa.Column('last_seen', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_with_rowid=False
    )
    op.create_table('scheduled_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('handler', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('schedule', sa.String(length=16), nullable=False),
    sa.Column('spec', sa.String(length=100), nullable=False),
    sa.Column('next_run_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('last_run_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('misfire_grace_s', sa.Integer(), nullable=False),
    sa.Column('run_count', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_jobs_due', ['status', 'next_run_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_jobs_due')

    op.drop_table('scheduled_jobs')
    op.drop_table('rooms')
    with op.batch_alter_table('room_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_room_members_member_id'))

    op.drop_table('room_members')
    op.drop_table('proactive_counts')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_last_seen'))

    op.drop_table('members')
    op.drop_table('member_names')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_at')

    op.drop_table('activity')
