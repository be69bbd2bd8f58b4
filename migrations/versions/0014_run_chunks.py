"""run chunks: runs as Celery work in chunks, with a context computed once

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-30 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_chunk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("first_employee", sa.Integer(), nullable=False),
        sa.Column("last_employee", sa.Integer(), nullable=False),
        sa.Column("employees", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("beat", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "index", name="uq_run_chunk"),
    )
    op.create_table(
        "run_context",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    # a plain ADD COLUMN: SQLite's batch mode would copy the outcome table, which other
    # tables' keys point to
    op.add_column("outcome", sa.Column("chunk", sa.Integer(), nullable=True))
    op.add_column("run_job", sa.Column("host", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_job", schema=None) as batch_op:
        batch_op.drop_column("host")
    with op.batch_alter_table("outcome", schema=None) as batch_op:
        batch_op.drop_column("chunk")
    op.drop_table("run_context")
    op.drop_table("run_chunk")
