"""no index of a flag case's employee alone: uq_flag_case_period starts with it

A look-up of an employee's cases reads the unique index of (employee_id, period_id,
rule_key) as well; the index of employee_id alone was one more to write for each case a
run opens (a fifth of the time of opening a run's 17,000 cases).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01 02:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_flag_case_employee_id", table_name="flag_case")


def downgrade() -> None:
    op.create_index("ix_flag_case_employee_id", "flag_case", ["employee_id"])
