"""template workflow: audit log; approved template versions immutable in the database

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 07:40:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

FROZEN = ("template_id", "version", "source", "source_hash", "meta", "author", "approved_by", "approved_at", "effective_from")

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER template_versions_frozen BEFORE UPDATE ON template_versions
    WHEN OLD.state IN ('approved', 'retired') AND ({' OR '.join(f'NEW.{c} IS NOT OLD.{c}' for c in FROZEN)})
    BEGIN SELECT RAISE(ABORT, 'approved template versions are immutable; a change is a new draft'); END
    """,
    """
    CREATE TRIGGER template_versions_states BEFORE UPDATE OF state ON template_versions
    WHEN (OLD.state = 'approved' AND NEW.state NOT IN ('approved', 'retired'))
      OR (OLD.state = 'retired' AND NEW.state != 'retired')
    BEGIN SELECT RAISE(ABORT, 'an approved template version can only be retired'); END
    """,
    """
    CREATE TRIGGER template_versions_kept BEFORE DELETE ON template_versions
    WHEN OLD.state IN ('approved', 'retired')
    BEGIN SELECT RAISE(ABORT, 'approved template versions cannot be deleted'); END
    """,
]

POSTGRES_FUNCTION = f"""
CREATE FUNCTION template_versions_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.state IN ('approved', 'retired') THEN
      RAISE EXCEPTION 'approved template versions cannot be deleted';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.state IN ('approved', 'retired') AND ({' OR '.join(f'NEW.{c} IS DISTINCT FROM OLD.{c}' for c in FROZEN)}) THEN
    RAISE EXCEPTION 'approved template versions are immutable; a change is a new draft';
  END IF;
  IF (OLD.state = 'approved' AND NEW.state NOT IN ('approved', 'retired'))
     OR (OLD.state = 'retired' AND NEW.state <> 'retired') THEN
    RAISE EXCEPTION 'an approved template version can only be retired';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_log_object', ['object_type', 'object_name'], unique=False)

    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    elif dialect == 'postgresql':
        op.execute(POSTGRES_FUNCTION)
        op.execute("CREATE TRIGGER template_versions_guard BEFORE UPDATE OR DELETE ON template_versions "
                   "FOR EACH ROW EXECUTE FUNCTION template_versions_guard()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for name in ('template_versions_frozen', 'template_versions_states', 'template_versions_kept'):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS template_versions_guard ON template_versions")
        op.execute("DROP FUNCTION IF EXISTS template_versions_guard()")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_object')
        batch_op.drop_index('ix_audit_log_at')

    op.drop_table('audit_log')
