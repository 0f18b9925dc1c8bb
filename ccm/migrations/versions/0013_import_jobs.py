"""Imports as jobs (issue 17): a customer file or billing feed handed over through the API,
imported in the background, with its progress, report and rejects

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'import_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('file_name', sa.String(length=200), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('owner', sa.String(length=200), nullable=True),
        sa.Column('lines_total', sa.Integer(), nullable=False),
        sa.Column('lines_done', sa.Integer(), nullable=False),
        sa.Column('report', JSON, nullable=True),
        sa.Column('rejects_path', sa.String(length=500), nullable=True),
        sa.Column('error', sa.String(length=1000), nullable=True),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs')),
    )


def downgrade() -> None:
    op.drop_table('import_jobs')
