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
    """
    CREATE TRIGGER template_versions_born_draft BEFORE INSERT ON template_versions
    WHEN NEW.state != 'draft' AND NEW.author != 'library'
    BEGIN SELECT RAISE(ABORT, 'a new template version starts as a draft'); END
    """,
    """
    CREATE TRIGGER template_versions_checker BEFORE UPDATE OF state, approved_by ON template_versions
    WHEN NEW.state = 'approved' AND NEW.author != 'library' AND (NEW.approved_by IS NULL OR NEW.approved_by = NEW.author)
    BEGIN SELECT RAISE(ABORT, 'the approver of a template version must not be its author'); END
    """,
    """
    CREATE TRIGGER templates_identity BEFORE UPDATE OF name, kind ON templates
    WHEN (NEW.name != OLD.name OR NEW.kind != OLD.kind)
      AND EXISTS (SELECT 1 FROM template_versions WHERE template_id = OLD.id AND state IN ('approved', 'retired'))
    BEGIN SELECT RAISE(ABORT, 'a template with approved versions keeps its name and kind'); END
    """,
]
SQLITE_TRIGGER_NAMES = ('template_versions_frozen', 'template_versions_states', 'template_versions_kept',
                        'template_versions_born_draft', 'template_versions_checker', 'templates_identity')

POSTGRES_FUNCTION = f"""
CREATE FUNCTION template_versions_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.state <> 'draft' AND NEW.author <> 'library' THEN
      RAISE EXCEPTION 'a new template version starts as a draft';
    END IF;
    RETURN NEW;
  END IF;
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
  IF NEW.state = 'approved' AND NEW.author <> 'library' AND (NEW.approved_by IS NULL OR NEW.approved_by = NEW.author) THEN
    RAISE EXCEPTION 'the approver of a template version must not be its author';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""

POSTGRES_TEMPLATES_FUNCTION = """
CREATE FUNCTION templates_identity_guard() RETURNS trigger AS $$
BEGIN
  IF (NEW.name IS DISTINCT FROM OLD.name OR NEW.kind IS DISTINCT FROM OLD.kind)
     AND EXISTS (SELECT 1 FROM template_versions WHERE template_id = OLD.id AND state IN ('approved', 'retired')) THEN
    RAISE EXCEPTION 'a template with approved versions keeps its name and kind';
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
        op.execute("CREATE TRIGGER template_versions_guard BEFORE INSERT OR UPDATE OR DELETE ON template_versions "
                   "FOR EACH ROW EXECUTE FUNCTION template_versions_guard()")
        op.execute(POSTGRES_TEMPLATES_FUNCTION)
        op.execute("CREATE TRIGGER templates_identity_guard BEFORE UPDATE ON templates "
                   "FOR EACH ROW EXECUTE FUNCTION templates_identity_guard()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS templates_identity_guard ON templates")
        op.execute("DROP FUNCTION IF EXISTS templates_identity_guard()")
        op.execute("DROP TRIGGER IF EXISTS template_versions_guard ON template_versions")
        op.execute("DROP FUNCTION IF EXISTS template_versions_guard()")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_object')
        batch_op.drop_index('ix_audit_log_at')

    op.drop_table('audit_log')
