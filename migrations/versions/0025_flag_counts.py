"""how many flag cases each run holds in each status

The compliance queue counted every flag of the live runs on each view (130 ms for the
855,000 flags of a run of 1,000,000 employees), the period-close checklist every open flag
of its run (100 ms). The counts are kept with the runs now (engine.compliance: recount when
a run carries its period's cases, count_move on each assignment and decision): counted here
once for the runs already stored.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flag_count",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "status"),
    )
    # every status of every run, zero or not (in SQL: the engine's recount counts by what
    # the later revisions keep)
    for status in ("open", "in_review", "confirmed", "dismissed", "cleared"):
        op.get_bind().execute(sa.text(
            "INSERT INTO flag_count (run_id, status, cases) SELECT r.id, CAST(:s AS VARCHAR), "
            "(SELECT count(*) FROM flag_case c WHERE c.run_id = r.id AND c.status = :s) "
            "FROM run r"),
            {"s": status})


def downgrade() -> None:
    op.drop_table("flag_count")
