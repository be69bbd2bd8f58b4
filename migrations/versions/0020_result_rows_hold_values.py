"""results: one row an employee and period, holding its values (result_row.metric_values)

The table of one row a value (result) goes: an import of 18 metrics wrote 18 rows with
three foreign keys each, about 2,000 file rows a second on PostgreSQL (issue 13). A row of
results now keeps its defined values as JSON, {str(metric id): decimal text}; an undefined
value has no key. Values are moved as the old column gave them (scale 6).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 17:30:00
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20000


def _value_type() -> sa.types.TypeEngine:
    # 0006: SQLite keeps the exact decimal as text.
    return sa.String(48) if op.get_bind().dialect.name == "sqlite" else sa.Numeric(26, 6)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("result_row") as batch:
        batch.add_column(sa.Column("metric_values", sa.JSON(), nullable=True))
    # Every value's row exists (0007 made them, imports and edits kept them); a row made
    # for a value that lacks one is added all the same.
    bind.execute(sa.text(
        "INSERT INTO result_row (employee_id, period_id) "
        "SELECT DISTINCT r.employee_id, r.period_id FROM result r WHERE NOT EXISTS "
        "(SELECT 1 FROM result_row w WHERE w.employee_id = r.employee_id "
        "AND w.period_id = r.period_id)"))
    result = sa.table("result", sa.column("employee_id", sa.Integer),
                      sa.column("period_id", sa.Integer), sa.column("metric_id", sa.Integer),
                      sa.column("value", _value_type()))
    row = sa.table("result_row", sa.column("id", sa.Integer),
                   sa.column("employee_id", sa.Integer), sa.column("period_id", sa.Integer),
                   sa.column("metric_values", sa.JSON))
    ids = {(e, p): i for i, e, p in bind.execute(
        sa.select(row.c.id, row.c.employee_id, row.c.period_id))}
    values: dict[int, dict[str, str]] = defaultdict(dict)
    for e, p, m, v in bind.execute(sa.select(result.c.employee_id, result.c.period_id,
                                             result.c.metric_id, result.c.value)):
        values[ids[(e, p)]][str(m)] = format(Decimal(str(v)), "f")
    update = sa.update(row).where(row.c.id == sa.bindparam("rid")) \
        .values(metric_values=sa.bindparam("v"))
    todo = [{"rid": i, "v": values.get(i, {})} for i in ids.values()]
    for start in range(0, len(todo), BATCH):
        bind.execute(update, todo[start:start + BATCH])
    with op.batch_alter_table("result_row") as batch:
        batch.alter_column("metric_values", existing_type=sa.JSON(), nullable=False)
    op.drop_index("ix_result_period_employee", table_name="result")
    op.drop_table("result")


def downgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("value", _value_type(), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["employee.id"]),
        sa.ForeignKeyConstraint(["metric_id"], ["metric.id"]),
        sa.ForeignKeyConstraint(["period_id"], ["period.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("employee_id", "period_id", "metric_id", name="uq_result"),
    )
    op.create_index("ix_result_period_employee", "result", ["period_id", "employee_id"])
    result = sa.table("result", sa.column("employee_id", sa.Integer),
                      sa.column("period_id", sa.Integer), sa.column("metric_id", sa.Integer),
                      sa.column("value", _value_type()))
    metrics = set(bind.scalars(sa.text("SELECT id FROM metric")))
    rows = []
    for e, p, text in bind.execute(sa.text(
            "SELECT employee_id, period_id, metric_values FROM result_row")):
        data = json.loads(text) if isinstance(text, str) else (text or {})
        for m, v in data.items():
            if int(m) in metrics:
                value = Decimal(v).quantize(Decimal("0.000001"))
                rows.append({"employee_id": e, "period_id": p, "metric_id": int(m),
                             "value": format(value, "f") if bind.dialect.name == "sqlite"
                             else value})
    for start in range(0, len(rows), BATCH):
        bind.execute(sa.insert(result), rows[start:start + BATCH])
    with op.batch_alter_table("result_row") as batch:
        batch.drop_column("metric_values")
