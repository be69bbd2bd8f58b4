"""an index of outcomes by run, kind and employee

The period-close checklist reads a run's first warnings, and pages a run's flags: without
it each read went through every outcome of the run (a run of 1,000,000 employees has
millions).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 18:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outcome_run_kind", "outcome", ["run_id", "kind", "employee_id"])


def downgrade() -> None:
    op.drop_index("ix_outcome_run_kind", table_name="outcome")
