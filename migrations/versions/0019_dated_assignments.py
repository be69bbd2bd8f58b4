"""dated assignments: an employee's team, level and manager from a date on; a leave date

Revision ID: 0019
Revises: 0017
Create Date: 2026-11-30 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "employee_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("level_id", sa.Integer(), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["employee_id"], ["employee.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.ForeignKeyConstraint(["level_id"], ["level.id"]),
        sa.ForeignKeyConstraint(["manager_id"], ["employee.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("employee_id", "effective_date", name="uq_employee_assignment"),
    )
    op.create_index("ix_employee_assignment_employee_id", "employee_assignment",
                    ["employee_id"])
    with op.batch_alter_table("employee") as batch:
        batch.add_column(sa.Column("leave_date", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("employee") as batch:
        batch.drop_column("leave_date")
    op.drop_index("ix_employee_assignment_employee_id", table_name="employee_assignment")
    op.drop_table("employee_assignment")
