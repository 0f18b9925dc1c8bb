"""run outcomes (issue 12): who is executing a run and when it was last heard from (a run
whose process died shows as interrupted), and which channels a message gave up before the
one it went by (fallbacks are counted in the run report, with why)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 03:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('owner', sa.String(length=120), nullable=True))
    op.add_column('runs', sa.Column('heartbeat_at', sa.DateTime(), nullable=True))
    op.add_column('messages', sa.Column('fallback_from', sa.String(length=40), nullable=True))
    op.add_column('messages', sa.Column('fallback_why', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('fallback_why')
        batch.drop_column('fallback_from')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('heartbeat_at')
        batch.drop_column('owner')
