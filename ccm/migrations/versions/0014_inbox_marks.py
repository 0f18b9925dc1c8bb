"""The customer's inbox (issue 19): read and archived marks of the messages the inbox
channel kept

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 01:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'inbox_marks',
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('read_at', sa.DateTime(), nullable=True),
        sa.Column('archived_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_inbox_marks_message_id_messages'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('message_id', name=op.f('pk_inbox_marks')),
    )


def downgrade() -> None:
    op.drop_table('inbox_marks')
