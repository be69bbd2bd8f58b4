"""the outcomes' index by run and kind leaves commissions out (PostgreSQL)

Commissions are most of a run's outcomes (at 20,000 employees, 40,000 of 63,000), and
writing their entries doubled what the index cost a run's COPY (285 ms of PostgreSQL's
time against 125 ms). The pages and the checklist read a run's flags, warnings, alerts,
ratings, PIPs and eligibilities by kind, and the API's outcome list any kind: bonuses,
which are few, keep their entries; commissions asked by kind are read in the order of
their ids (the API pages them so), where two rows in three are commissions. SQLite keeps
the whole index: its planner uses a partial one only where the query's own WHERE
repeats it.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-01 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["run_id", "kind", "employee_id"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_outcome_run_kind", table_name="outcome")
    op.create_index("ix_outcome_run_kind", "outcome", COLUMNS,
                    postgresql_where=sa.text("kind <> 'commission'"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_outcome_run_kind", table_name="outcome")
    op.create_index("ix_outcome_run_kind", "outcome", COLUMNS)
