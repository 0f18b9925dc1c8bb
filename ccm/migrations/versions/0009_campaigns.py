"""campaigns (issue 16): the marketers' campaign records with owner, goal, audience,
channels, communication, schedule, dates, budget and forecast

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:10:00
"""
from alembic import op
import sqlalchemy as sa

import ccm.column_types
from ccm.column_types import JsonDoc

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaigns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=False),
        sa.Column('goal', sa.Text(), nullable=False),
        sa.Column('communication', sa.String(length=100), nullable=False),
        sa.Column('audience', sa.String(length=100), nullable=True),
        sa.Column('channels', JsonDoc, nullable=False),
        sa.Column('schedule', sa.String(length=100), nullable=True),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=True),
        sa.Column('budget', ccm.column_types.Money(), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('forecast_responses', sa.Integer(), nullable=True),
        sa.Column('forecast_revenue', ccm.column_types.Money(), nullable=True),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
        sa.UniqueConstraint('name', name=op.f('uq_campaigns_name')),
    )


def downgrade() -> None:
    op.drop_table('campaigns')
