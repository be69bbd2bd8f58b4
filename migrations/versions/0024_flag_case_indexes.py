"""indexes of flag cases: a run's open ones, their rules and severities

The period-close checklist counts a run's open flags and reads the first 20: with only an
index by run, a run of 1,000,000 employees read every one of its flag cases for both. The
compliance queue lists the rules and the severities of the flags in its filters: read
from every flag case (SELECT DISTINCT), now a look-up of an index for each value.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status IN ('open', 'in_review')")


def upgrade() -> None:
    op.create_index("ix_flag_case_open", "flag_case", ["run_id", "id"], sqlite_where=OPEN,
                    postgresql_where=OPEN)
    op.create_index("ix_flag_case_rule_key", "flag_case", ["rule_key"])
    op.create_index("ix_flag_case_severity", "flag_case", ["severity"])


def downgrade() -> None:
    for name in ("ix_flag_case_severity", "ix_flag_case_rule_key", "ix_flag_case_open"):
        op.drop_index(name, table_name="flag_case")
