"""schedule history: executions outlive their schedule (by name; schedule_id NULL once it is
removed, and for the built-in retry sweeper), every run an execution made, and a lease per
execution so a running one is not performed again by another scheduler (issue 6)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
FK = 'fk_schedule_runs_schedule_id_schedules'


def upgrade() -> None:
    op.add_column('schedule_runs', sa.Column('schedule_name', sa.String(length=100), nullable=True))
    op.add_column('schedule_runs', sa.Column('run_ids', JSON, server_default='[]', nullable=False))
    op.add_column('schedule_runs', sa.Column('lease_until', sa.DateTime(), nullable=True))
    op.execute("UPDATE schedule_runs SET schedule_name = (SELECT name FROM schedules WHERE schedules.id = schedule_runs.schedule_id)")
    op.execute("UPDATE schedule_runs SET run_ids = '[' || CAST(run_id AS VARCHAR(20)) || ']' WHERE run_id IS NOT NULL"
               if op.get_bind().dialect.name == 'sqlite' else
               "UPDATE schedule_runs SET run_ids = jsonb_build_array(run_id) WHERE run_id IS NOT NULL")
    # SQLite rebuilds the table here (the child table only: the schedules it points to stay put).
    with op.batch_alter_table('schedule_runs', schema=None) as batch_op:
        batch_op.alter_column('schedule_name', existing_type=sa.String(length=100), nullable=False)
        batch_op.alter_column('schedule_id', existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.create_foreign_key(FK, 'schedules', ['schedule_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_schedule_runs_name', ['schedule_name', 'fire_time'], unique=False)


def downgrade() -> None:
    # Executions of removed schedules and of the built-in sweeper have no schedule to belong to.
    op.execute("DELETE FROM schedule_runs WHERE schedule_id IS NULL")
    with op.batch_alter_table('schedule_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_schedule_runs_name')
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.create_foreign_key(FK, 'schedules', ['schedule_id'], ['id'], ondelete='CASCADE')
        batch_op.alter_column('schedule_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('lease_until')
        batch_op.drop_column('run_ids')
        batch_op.drop_column('schedule_name')
