"""segments, computed customer metrics and decisions (issue 3)

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 07:30:00
"""
from alembic import op
import sqlalchemy as sa
import ccm.column_types
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('communication', sa.String(length=100), nullable=False),
    sa.Column('slot', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions')),
    sa.UniqueConstraint('communication', 'slot', name=op.f('uq_decisions_communication'))
    )
    op.create_table('segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('expression', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_segments_name'))
    )
    op.create_table('customer_metrics',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('spend', ccm.column_types.Money(), nullable=False),
    sa.Column('spend_recent', ccm.column_types.Money(), nullable=False),
    sa.Column('spend_before', ccm.column_types.Money(), nullable=False),
    sa.Column('spend_rank', sa.Integer(), nullable=False),
    sa.Column('spend_ahead', ccm.column_types.Money(), nullable=False),
    sa.Column('periods_active', sa.Integer(), nullable=False),
    sa.Column('last_active_period', sa.String(length=7), nullable=True),
    sa.Column('tenure_months', sa.Integer(), nullable=False),
    sa.Column('r_score', sa.Integer(), nullable=True),
    sa.Column('f_score', sa.Integer(), nullable=True),
    sa.Column('m_score', sa.Integer(), nullable=True),
    sa.Column('refreshed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_metrics_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_metrics'))
    )
    op.create_table('decision_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], name=op.f('fk_decision_versions_decision_id_decisions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decision_versions')),
    sa.UniqueConstraint('decision_id', 'version', name=op.f('uq_decision_versions_decision_id'))
    )
    op.create_table('segment_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_counts_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment_counts'))
    )
    op.create_index('ix_segment_counts_segment', 'segment_counts', ['segment_id', 'refreshed_at'], unique=False)
    op.create_table('segment_members',
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_segment_members_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_members_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('segment_id', 'customer_id', name=op.f('pk_segment_members'))
    )
    op.create_index('ix_segment_members_customer', 'segment_members', ['customer_id'], unique=False)
    op.create_table('segment_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('expression', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_versions_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment_versions')),
    sa.UniqueConstraint('segment_id', 'version', name=op.f('uq_segment_versions_segment_id'))
    )


def downgrade() -> None:
    op.drop_index('ix_segment_members_customer', table_name='segment_members')
    op.drop_index('ix_segment_counts_segment', table_name='segment_counts')
    op.drop_table('segment_versions')
    op.drop_table('segment_members')
    op.drop_table('segment_counts')
    op.drop_table('decision_versions')
    op.drop_table('customer_metrics')
    op.drop_table('segments')
    op.drop_table('decisions')
