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
    from sqlalchemy.orm import Session

    from engine import compliance

    op.create_table(
        "flag_count",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "status"),
    )
    bind = op.get_bind()
    session = Session(bind=bind)
    for (period_id,) in bind.execute(sa.text("SELECT DISTINCT period_id FROM run "
                                             "ORDER BY period_id")).all():
        compliance.recount(session, period_id)
    session.flush()


def downgrade() -> None:
    op.drop_table("flag_count")
