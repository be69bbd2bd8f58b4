"""result rows, metric ranges, wider amounts

An empty results row keeps its employee in the period's population (result_row); input
metrics carry their accepted range; amounts hold 24 digits before the point, so the
largest money value an import accepts times a rate of up to 100 fits.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The ranges POLICIES.md gives the catalog's scores and its discount ratio.
BOUNDS = {
    "satisfaction": ("0", "100"), "self_score": ("0", "100"), "manager_score": ("0", "100"),
    "customer_score": ("0", "100"), "teamwork_score": ("0", "100"),
    "renewal_intent": ("0", "100"), "nps": ("-100", "100"), "max_discount_pct": ("0", "1"),
}


def _decimal() -> sa.types.TypeEngine:
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(48)
    return sa.Numeric(26, 6)


def upgrade() -> None:
    op.create_table(
        "result_row",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["employee.id"]),
        sa.ForeignKeyConstraint(["period_id"], ["period.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("employee_id", "period_id", name="uq_result_row"),
    )
    op.create_index("ix_result_row_period", "result_row", ["period_id"])
    op.execute("INSERT INTO result_row (employee_id, period_id) "
               "SELECT DISTINCT employee_id, period_id FROM result")
    with op.batch_alter_table("metric", schema=None) as batch_op:
        batch_op.add_column(sa.Column("min_value", _decimal(), nullable=True))
        batch_op.add_column(sa.Column("max_value", _decimal(), nullable=True))
    metric = sa.table("metric", sa.column("key", sa.String), sa.column("min_value", _decimal()),
                      sa.column("max_value", _decimal()))
    for key, (low, high) in BOUNDS.items():
        op.execute(metric.update().where(metric.c.key == key)
                   .values(min_value=low, max_value=high))
    if op.get_bind().dialect.name != "sqlite":
        for table in ("outcome", "adjustment"):
            op.alter_column(table, "amount", existing_type=sa.Numeric(18, 2),
                            type_=sa.Numeric(26, 2))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table in ("outcome", "adjustment"):
            op.alter_column(table, "amount", existing_type=sa.Numeric(26, 2),
                            type_=sa.Numeric(18, 2))
    with op.batch_alter_table("metric", schema=None) as batch_op:
        batch_op.drop_column("max_value")
        batch_op.drop_column("min_value")
    op.drop_index("ix_result_row_period", table_name="result_row")
    op.drop_table("result_row")
