"""feedback loop: response events, API tokens, engagement and preferences; merges the
template workflow (0002) and segments (0003) branches (issue 5)

Revision ID: 0004
Revises: 0002, 0003
Create Date: 2026-11-29 23:00:00
"""
from alembic import op
import sqlalchemy as sa
import ccm.column_types
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = ('0002', '0003')
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('name', name=op.f('uq_api_tokens_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('response_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('communication', sa.String(length=100), nullable=True),
    sa.Column('variant', sa.String(length=100), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('amount', ccm.column_types.Money(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('bot', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.String(length=300), nullable=True),
    sa.Column('data', JSON, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_response_events_customer_id_customers')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_response_events_message_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_response_events')),
    sa.UniqueConstraint('event_key', name=op.f('uq_response_events_event_key'))
    )
    op.create_index('ix_response_events_customer_time', 'response_events', ['customer_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_response_events_message_id'), 'response_events', ['message_id'], unique=False)
    op.create_index('ix_response_events_run_type', 'response_events', ['run_id', 'type'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_open_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_click_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('open_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('click_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('response_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('preferences', JSON, server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('links', JSON, server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('links')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        for column in ('erased_at', 'preferences', 'response_count', 'click_count', 'open_count', 'last_click_at', 'last_open_at'):
            batch_op.drop_column(column)
    op.drop_table('response_events')
    op.drop_table('api_tokens')
