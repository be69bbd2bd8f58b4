"""the outcomes' index by run and kind leaves commissions and bonuses out (PostgreSQL)

Nothing reads a run's commissions or bonuses by their kind (the pages and the checklist
read its flags, warnings, alerts, ratings, PIPs and eligibilities by kind; the money by
employee or as a whole), and they are most of a run's outcomes: writing their entries
doubled what the index cost a run's COPY (at 20,000 employees, 63,000 outcomes, 40,000
of them commissions: 285 ms of PostgreSQL's time against 125 ms). SQLite keeps the whole
index: its planner uses a partial one only where the query's own WHERE repeats it.

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
                    postgresql_where=sa.text("kind NOT IN ('commission', 'bonus')"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_outcome_run_kind", table_name="outcome")
    op.create_index("ix_outcome_run_kind", "outcome", COLUMNS)
