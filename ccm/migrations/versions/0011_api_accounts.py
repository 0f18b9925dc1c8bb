"""The REST API v1 (issue 17): service accounts (users of kind "service", whose keys are
api_tokens of scope "key"), the answers kept for Idempotency-Key, and the decisions shown
to customers in real time (exposures, for the experiments' reports)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 16:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=10), server_default='person', nullable=False))
    op.create_table(
        'idempotency_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('caller', sa.String(length=100), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('content_type', sa.String(length=100), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('caller', 'key'),
    )
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'], unique=False)
    op.create_table(
        'decision_exposures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('communication', sa.String(length=100), nullable=False),
        sa.Column('slot', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('rule', sa.String(length=100), nullable=False),
        sa.Column('content', sa.String(length=200), nullable=True),
        sa.Column('experiment', sa.String(length=100), nullable=True),
        sa.Column('variant', sa.String(length=100), nullable=True),
        sa.Column('via', sa.String(length=100), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_decision_exposures_customer_id', 'decision_exposures', ['customer_id'], unique=False)
    op.create_index('ix_decision_exposures_experiment', 'decision_exposures', ['experiment', 'variant'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_decision_exposures_experiment', table_name='decision_exposures')
    op.drop_index('ix_decision_exposures_customer_id', table_name='decision_exposures')
    op.drop_table('decision_exposures')
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('kind')
