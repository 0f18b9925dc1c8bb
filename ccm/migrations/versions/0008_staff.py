"""staff (issue 15): users with hashed passwords, lockout and an optional second factor;
roles as sets of area:action permissions; personal API tokens; follow-up tasks for
customer service, with comments

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:00:00
"""
from alembic import op
import sqlalchemy as sa

from ccm.column_types import JsonDoc

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'roles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('permissions', JsonDoc, nullable=False),
        sa.Column('built_in', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
        sa.UniqueConstraint('name', name=op.f('uq_roles_name')),
    )
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('display_name', sa.String(length=200), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('locale', sa.String(length=20), nullable=True),
        sa.Column('timezone', sa.String(length=64), nullable=True),
        sa.Column('totp_secret', sa.String(length=64), nullable=True),
        sa.Column('failed_signins', sa.Integer(), server_default='0', nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.Column('last_signin_at', sa.DateTime(), nullable=True),
        sa.Column('password_changed_at', sa.DateTime(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
        sa.UniqueConstraint('name', name=op.f('uq_users_name')),
    )
    op.create_table(
        'user_roles',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_user_roles_role_id_roles'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'role_id', name=op.f('pk_user_roles')),
    )
    op.create_table(
        'follow_up_tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('source_key', sa.String(length=200), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('summary', sa.String(length=300), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('assignee', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.Column('closed_by', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_follow_up_tasks_customer_id_customers'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['event_id'], ['response_events.id'], name=op.f('fk_follow_up_tasks_event_id_response_events'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_follow_up_tasks_message_id_messages'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up_tasks')),
        sa.UniqueConstraint('source_key', name=op.f('uq_follow_up_tasks_source_key')),
    )
    op.create_index(op.f('ix_follow_up_tasks_customer_id'), 'follow_up_tasks', ['customer_id'])
    op.create_index('ix_follow_up_tasks_state', 'follow_up_tasks', ['state', 'created_at'])
    op.create_table(
        'task_comments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('author', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['follow_up_tasks.id'], name=op.f('fk_task_comments_task_id_follow_up_tasks'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_comments')),
    )
    op.create_index(op.f('ix_task_comments_task_id'), 'task_comments', ['task_id'])
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch.create_foreign_key(op.f('fk_api_tokens_user_id_users'), 'users', ['user_id'], ['id'], ondelete='CASCADE')
        batch.create_index(op.f('ix_api_tokens_user_id'), ['user_id'])


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_index(op.f('ix_api_tokens_user_id'))
        batch.drop_constraint(op.f('fk_api_tokens_user_id_users'), type_='foreignkey')
        batch.drop_column('expires_at')
        batch.drop_column('user_id')
    op.drop_index(op.f('ix_task_comments_task_id'), table_name='task_comments')
    op.drop_table('task_comments')
    op.drop_index('ix_follow_up_tasks_state', table_name='follow_up_tasks')
    op.drop_index(op.f('ix_follow_up_tasks_customer_id'), table_name='follow_up_tasks')
    op.drop_table('follow_up_tasks')
    op.drop_table('user_roles')
    op.drop_table('users')
    op.drop_table('roles')
