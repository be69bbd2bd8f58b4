"""one unlocked live run per period, results versions

A period counts the changes of its results (results_version, and who made the latest
change, how, when and in which periods); a run records the version it read, so a run whose
results changed after it read them is known to be stale. At most one run of a period is
calculated or approved at a time (a partial unique index).

Runs stored by two starts at once before this revision can break that rule: of such a
period's calculated and approved runs the newest stays, the others are discarded (what a
later run does to the earlier ones), with their PIPs, and the audit log says so.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNLOCKED = "status IN ('calculated', 'approved')"


def _discard_doubles() -> None:
    bind = op.get_bind()
    run = sa.table("run", sa.column("id", sa.Integer), sa.column("period_id", sa.Integer),
                   sa.column("status", sa.String))
    period = sa.table("period", sa.column("id", sa.Integer), sa.column("code", sa.String))
    pip = sa.table("pip", sa.column("run_id", sa.Integer), sa.column("status", sa.String))
    audit = sa.table("audit_log", sa.column("at", sa.DateTime(timezone=True)),
                     sa.column("actor", sa.String), sa.column("action", sa.String),
                     sa.column("entity", sa.String), sa.column("entity_id", sa.String),
                     sa.column("summary", sa.Text), sa.column("before", sa.JSON),
                     sa.column("after", sa.JSON))
    rows = bind.execute(
        sa.select(run.c.id, run.c.period_id, run.c.status, period.c.code)
        .join(period, period.c.id == run.c.period_id)
        .where(run.c.status.in_(("calculated", "approved"))).order_by(run.c.id)).all()
    newest: dict[int, int] = {}
    for run_id, period_id, _status, _code in rows:
        newest[period_id] = run_id
    now = dt.datetime.now(dt.UTC)
    for run_id, period_id, status, code in rows:
        kept = newest[period_id]
        if run_id == kept:
            continue
        bind.execute(run.update().where(run.c.id == run_id).values(status="discarded"))
        bind.execute(pip.update().where(pip.c.run_id == run_id).values(status="discarded"))
        bind.execute(audit.insert().values(
            at=now, actor="system", action="discard", entity="run", entity_id=str(run_id),
            summary=f"{run_id} of {code} discarded by the upgrade: run {kept} of the same "
                    "period is newer, and one run of a period waits for approval at a time",
            before={"status": status}, after={"status": "discarded", "kept_run": kept}))


def upgrade() -> None:
    with op.batch_alter_table("period", schema=None) as batch_op:
        batch_op.add_column(sa.Column("results_version", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("results_changed_how", sa.String(10), nullable=True))
        batch_op.add_column(sa.Column("results_changed_in", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("results_changed_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("results_changed_by", sa.String(200), nullable=True))
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("results_version", sa.Integer(), nullable=True))
    # The runs there are read the results as they are now: version 0, fresh.
    op.execute("UPDATE run SET results_version = 0 WHERE status <> 'failed'")
    _discard_doubles()
    op.create_index("uq_run_unlocked_period", "run", ["period_id"], unique=True,
                    sqlite_where=sa.text(UNLOCKED), postgresql_where=sa.text(UNLOCKED))


def downgrade() -> None:
    op.drop_index("uq_run_unlocked_period", table_name="run")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("results_version")
    with op.batch_alter_table("period", schema=None) as batch_op:
        batch_op.drop_column("results_changed_by")
        batch_op.drop_column("results_changed_at")
        batch_op.drop_column("results_changed_in")
        batch_op.drop_column("results_changed_how")
        batch_op.drop_column("results_version")
