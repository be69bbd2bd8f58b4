"""the people being paid: sales reps, inquiries, review cycles, one-to-ones

A user may be an employee (``user.employee_id``: a sales_rep reads their own pay on the
portal) and hold an invitation (the hash of its link's token and when it expires). A
salesperson's questions about statement lines are inquiries with their messages and
attachments; the three-view review of a quarter is a review cycle with its entries (self,
manager, customer scores); one-to-one feedback talks are kept, linked to a PIP when they
are its monthly check-in.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _decimal() -> sa.types.TypeEngine:
    # As engine.models.ExactDecimal stores it: exact text in SQLite, NUMERIC elsewhere.
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(48)
    return sa.Numeric(26, 6)


def _when(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.func.now() if now else None)


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("employee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("invite_hash", sa.String(64), nullable=True))
        batch_op.add_column(_when("invite_expires_at"))
        batch_op.create_foreign_key("fk_user_employee", "employee", ["employee_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_index("ix_user_employee_id", ["employee_id"], unique=False)
    op.create_table(
        "inquiry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("run.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("period_id", sa.Integer(), sa.ForeignKey("period.id"), nullable=False,
                  index=True),
        sa.Column("employee_id", sa.Integer(), sa.ForeignKey("employee.id"), nullable=False,
                  index=True),
        sa.Column("outcome_id", sa.Integer(),
                  sa.ForeignKey("outcome.id", ondelete="SET NULL"), nullable=True),
        sa.Column("adjustment_id", sa.Integer(),
                  sa.ForeignKey("adjustment.id", ondelete="SET NULL"), nullable=True),
        sa.Column("rule_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, index=True),
        sa.Column("asked_by", sa.String(200), nullable=False),
        _when("asked_at", nullable=False, now=True),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(200), nullable=True),
        _when("answered_at"),
        sa.Column("resolution_adjustment_id", sa.Integer(),
                  sa.ForeignKey("adjustment.id", ondelete="SET NULL"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "inquiry_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inquiry_id", sa.Integer(),
                  sa.ForeignKey("inquiry.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        _when("created_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "review_cycle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), sa.ForeignKey("period.id"), nullable=False,
                  unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("self_due", sa.Date(), nullable=False),
        sa.Column("manager_due", sa.Date(), nullable=False),
        sa.Column("opened_by", sa.String(200), nullable=False),
        _when("opened_at", nullable=False, now=True),
        sa.Column("closed_by", sa.String(200), nullable=True),
        _when("closed_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "review_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(),
                  sa.ForeignKey("review_cycle.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("employee_id", sa.Integer(), sa.ForeignKey("employee.id"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("score", _decimal(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("entered_by", sa.String(200), nullable=False),
        _when("entered_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cycle_id", "employee_id", "kind", name="uq_review_entry"),
    )
    op.create_table(
        "talk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), sa.ForeignKey("employee.id"), nullable=False,
                  index=True),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("held_by", sa.String(200), nullable=False),
        sa.Column("strengths", sa.Text(), nullable=False),
        sa.Column("gaps", sa.Text(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=True),
        sa.Column("coach_id", sa.Integer(), sa.ForeignKey("employee.id"), nullable=True),
        sa.Column("pip_id", sa.Integer(), sa.ForeignKey("pip.id", ondelete="SET NULL"),
                  nullable=True, index=True),
        _when("acknowledged_at"),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        _when("created_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("talk")
    op.drop_table("review_entry")
    op.drop_table("review_cycle")
    op.drop_table("inquiry_message")
    op.drop_table("inquiry")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index("ix_user_employee_id")
        batch_op.drop_constraint("fk_user_employee", type_="foreignkey")
        batch_op.drop_column("invite_expires_at")
        batch_op.drop_column("invite_hash")
        batch_op.drop_column("employee_id")
