"""customer_periods and the campaigns' winner rule (issue 16): each customer's tier, ABC
code and lifecycle stage kept per reference period (they were in ``customers.attributes``
as computed_period and computed_before, lost by a re-import); a campaign may send its
experiment's winner to the rest by itself

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 15:30:00
"""
import json

from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

PERIOD, BEFORE = "computed_period", "computed_before"


def upgrade() -> None:
    op.create_table(
        'customer_periods',
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('value_tier', sa.String(length=10), nullable=True),
        sa.Column('abc_code', sa.String(length=1), nullable=True),
        sa.Column('lifecycle_stage', sa.String(length=12), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('customer_id', 'period'),
    )
    op.create_index('ix_customer_periods_period', 'customer_periods', ['period'], unique=False)
    with op.batch_alter_table('campaigns') as batch:
        batch.add_column(sa.Column('winner_experiment', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('winner_after_hours', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('winner_checked_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('winner_outcome', sa.Text(), nullable=True))
    _move_history()


def _move_history() -> None:
    """The periods kept in ``attributes`` become rows; the two keys leave ``attributes``."""
    bind = op.get_bind()
    customers = sa.table('customers', sa.column('id', sa.Integer), sa.column('attributes', sa.Text),
                         sa.column('value_tier', sa.String), sa.column('abc_code', sa.String),
                         sa.column('lifecycle_stage', sa.String))
    periods = sa.table('customer_periods', sa.column('customer_id', sa.Integer), sa.column('period', sa.String),
                       sa.column('value_tier', sa.String), sa.column('abc_code', sa.String),
                       sa.column('lifecycle_stage', sa.String))
    rows = bind.execute(sa.select(customers.c.id, sa.cast(customers.c.attributes, sa.Text), customers.c.value_tier,
                                  customers.c.abc_code, customers.c.lifecycle_stage)).all()
    kept, cleaned = [], []
    for customer_id, raw, tier, abc, stage in rows:
        attributes = json.loads(raw) if raw else {}
        if not isinstance(attributes, dict) or (PERIOD not in attributes and BEFORE not in attributes):
            continue
        current, before = attributes.pop(PERIOD, None), attributes.pop(BEFORE, None)
        if current and tier:
            kept.append({"customer_id": customer_id, "period": current[:7], "value_tier": tier, "abc_code": abc,
                         "lifecycle_stage": stage})
        if isinstance(before, dict) and before.get("period") and before.get("period") != current:
            kept.append({"customer_id": customer_id, "period": before["period"][:7], "value_tier": before.get("tier"),
                         "abc_code": before.get("abc"), "lifecycle_stage": before.get("stage")})
        cleaned.append((customer_id, attributes))
    if kept:
        bind.execute(periods.insert(), kept)
    for customer_id, attributes in cleaned:
        value = json.dumps(attributes)
        if bind.dialect.name == "postgresql":
            bind.execute(sa.text("UPDATE customers SET attributes = CAST(:value AS jsonb) WHERE id = :id"),
                         {"value": value, "id": customer_id})
        else:
            bind.execute(sa.text("UPDATE customers SET attributes = :value WHERE id = :id"), {"value": value, "id": customer_id})


def downgrade() -> None:
    with op.batch_alter_table('campaigns') as batch:
        batch.drop_column('winner_outcome')
        batch.drop_column('winner_checked_at')
        batch.drop_column('winner_after_hours')
        batch.drop_column('winner_experiment')
    op.drop_index('ix_customer_periods_period', table_name='customer_periods')
    op.drop_table('customer_periods')
