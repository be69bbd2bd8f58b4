"""close the flag cases left open on discarded runs; audit summaries in both languages

Before cases belonged to their period (0011), a flag that a newer run of its period no
longer raised kept its case open on the discarded run, out of sight of the queue; 0011
merged the cases of one flag into the case of the newest run that raised it, which could
be such a discarded run. Today a new run closes every case of its period that it does not
raise as "cleared" (no longer raised), with itself as the run that cleared it
(engine.compliance.carry_cases). Here the cases still attached to a discarded or failed
run are closed the same way by the newest live run of their period, keeping their
decision, each in the audit log. A period with no live run newer than the case's run
keeps its case as it is.

Also: ``audit_log.message``, the template and parameters of an entry's summary
(engine.messages), so that the audit log reads in each reader's language.

Revision ID: 0017
Revises: 0015
Create Date: 2026-11-30 14:40:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_case = sa.table(
    "flag_case", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer),
    sa.column("period_id", sa.Integer), sa.column("rule_key", sa.String),
    sa.column("status", sa.String))
_run = sa.table("run", sa.column("id", sa.Integer), sa.column("period_id", sa.Integer),
                sa.column("status", sa.String))
_audit = sa.table("audit_log", sa.column("at", sa.DateTime(timezone=True)),
                  sa.column("actor", sa.String), sa.column("action", sa.String),
                  sa.column("entity", sa.String), sa.column("entity_id", sa.String),
                  sa.column("summary", sa.Text), sa.column("before", sa.JSON),
                  sa.column("after", sa.JSON))
LIVE = ("calculated", "approved", "locked")


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message", sa.JSON(), nullable=True))
    bind = op.get_bind()
    newest = dict(bind.execute(
        sa.select(_run.c.period_id, sa.func.max(_run.c.id))
        .where(_run.c.status.in_(LIVE)).group_by(_run.c.period_id)).all())
    stale = bind.execute(
        sa.select(_case.c.id, _case.c.run_id, _case.c.period_id, _case.c.rule_key,
                  _case.c.status)
        .join(_run, _run.c.id == _case.c.run_id)
        .where(_run.c.status.not_in(LIVE), _case.c.status != "cleared")
        .order_by(_case.c.id)).all()
    now = dt.datetime.now(dt.UTC)
    for case_id, run_id, period_id, rule_key, status in stale:
        live = newest.get(period_id)
        if live is None or live < run_id:
            continue
        bind.execute(_case.update().where(_case.c.id == case_id)
                     .values(status="cleared", run_id=live))
        bind.execute(_audit.insert().values(
            at=now, actor="system", action="clear", entity="flag", entity_id=str(case_id),
            summary=f"flag {case_id} ({rule_key}) no longer raised: run {live} cleared it",
            before={"status": status, "run": run_id},
            after={"status": "cleared", "run": live}))


def downgrade() -> None:
    # The cleared cases stay cleared: the newest run of their period does not raise them.
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("message")
