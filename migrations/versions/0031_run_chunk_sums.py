"""a chunk's outcomes summed up, kept with it

The last step of a run summed every outcome up again (by kind, rule, status and team, and
by employee) to keep the run's totals: the time every worker waits for. Each chunk now
sums its own outcomes as it writes them (engine.chunks.chunk_sums), and the last step adds
the chunks' sums up.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-01 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run_chunk") as batch:
        batch.add_column(sa.Column("sums", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_chunk") as batch:
        batch.drop_column("sums")
