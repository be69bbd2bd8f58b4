"""when a run's outcomes were analysed by one of its chunks

PostgreSQL's statistics of the outcomes are refreshed by the chunk that brings half the
run's employees in, while the other chunks are still worked on, rather than in the last
step every other process waits for; the job notes when, and the last step analyses them
only where no chunk did (engine.chunks).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-01 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run_job") as batch:
        batch.add_column(sa.Column("analysed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_job") as batch:
        batch.drop_column("analysed_at")
