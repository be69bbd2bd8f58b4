"""flag cases per employee, rule and period; pay codes; carried adjustments; run figures

A flag case belonged to one flag outcome, so every new run of a period opened a second case
for the same flag and the first one, with its notes, evidence and decision, went out of
sight with its discarded run. From here a case belongs to the employee, the rule and the
period. The cases there are merged: per employee, rule and period the case of the newest
run stays; the notes and evidence of the others move to it, and when it is still open or
in review it takes the latest decision among them (with its reason, who and when); the
payouts that decision holds in that run follow it unless the run is locked. The merged
ids are kept on the case (``former_ids``), so their audit entries stay its history, and
each merge is in the audit log.

Also: pay codes per rule (``pay_code``), the run an adjustment was carried from, and the
figures a run keeps when it is stored (``run.figures``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 12:00:00
"""

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_case = sa.table(
    "flag_case", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer),
    sa.column("period_id", sa.Integer), sa.column("employee_id", sa.Integer),
    sa.column("rule_key", sa.String), sa.column("holds", sa.Boolean),
    sa.column("status", sa.String), sa.column("assignee", sa.String),
    sa.column("reason", sa.Text), sa.column("decided_by", sa.String),
    sa.column("decided_at", sa.DateTime(timezone=True)),
    sa.column("decided_after_lock", sa.Boolean), sa.column("decision", sa.String),
    sa.column("former_ids", sa.JSON))
_run = sa.table("run", sa.column("id", sa.Integer), sa.column("period_id", sa.Integer),
                sa.column("status", sa.String))
_note = sa.table("flag_note", sa.column("case_id", sa.Integer))
_outcome = sa.table("outcome", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer),
                    sa.column("employee_id", sa.Integer), sa.column("amount", sa.Numeric),
                    sa.column("status", sa.String), sa.column("explanation", sa.JSON))
_audit = sa.table("audit_log", sa.column("at", sa.DateTime(timezone=True)),
                  sa.column("actor", sa.String), sa.column("action", sa.String),
                  sa.column("entity", sa.String), sa.column("entity_id", sa.String),
                  sa.column("summary", sa.Text), sa.column("before", sa.JSON),
                  sa.column("after", sa.JSON))
DECIDED = ("confirmed", "dismissed")


def _hold_status(holding: list[str], states: dict[str, str]) -> str:
    found = [states.get(k, "open") for k in holding]
    if "confirmed" in found:
        return "forfeited"
    if all(s == "dismissed" for s in found):
        return "payable"
    return "held"


def _merge_cases() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_case).order_by(_case.c.run_id, _case.c.id)).mappings().all()
    groups: dict[tuple[int, int, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["employee_id"], row["period_id"], row["rule_key"])].append(dict(row))
    now = dt.datetime.now(dt.UTC)
    touched: set[tuple[int, int]] = set()
    for cases in groups.values():
        if len(cases) < 2:
            continue
        keep, others = cases[-1], cases[:-1]
        values: dict = {"former_ids": [c["id"] for c in others]}
        decided = [c for c in others if c["status"] in DECIDED]
        if keep["status"] not in DECIDED and decided:
            last = max(decided, key=lambda c: (c["decided_at"] is not None, c["decided_at"]
                                               or now, c["id"]))
            values.update(status=last["status"], decision=last["status"],
                          reason=last["reason"], decided_by=last["decided_by"],
                          decided_at=last["decided_at"],
                          decided_after_lock=last["decided_after_lock"],
                          assignee=keep["assignee"] or last["assignee"])
            touched.add((keep["run_id"], keep["employee_id"]))
        elif keep["status"] not in DECIDED:
            assigned = [c for c in others if c["assignee"]]
            if assigned and not keep["assignee"]:
                values.update(status="in_review", assignee=assigned[-1]["assignee"])
        ids = values["former_ids"]
        bind.execute(_note.update().where(_note.c.case_id.in_(ids)).values(case_id=keep["id"]))
        bind.execute(_case.update().where(_case.c.id == keep["id"]).values(**values))
        bind.execute(_case.delete().where(_case.c.id.in_(ids)))
        bind.execute(_audit.insert().values(
            at=now, actor="system", action="merge", entity="flag", entity_id=str(keep["id"]),
            summary=f"flag {keep['id']} ({keep['rule_key']}) is the one case of its employee, "
                    f"rule and period; flags {', '.join(map(str, ids))} of earlier runs "
                    "merged into it with their notes, evidence and decision",
            before={"status": keep["status"]},
            after={"status": values.get("status", keep["status"]), "merged": ids}))
    # The payouts a carried decision holds, in runs that can still change.
    for run_id, emp in sorted(touched):
        status = bind.execute(sa.select(_run.c.status).where(_run.c.id == run_id)).scalar()
        if status == "locked":
            continue
        states = dict(bind.execute(sa.select(_case.c.rule_key, _case.c.status).where(
            _case.c.run_id == run_id, _case.c.employee_id == emp, _case.c.holds)).all())
        for oid, old, exp in bind.execute(sa.select(
                _outcome.c.id, _outcome.c.status, _outcome.c.explanation).where(
                _outcome.c.run_id == run_id, _outcome.c.employee_id == emp,
                _outcome.c.amount.is_not(None))).all():
            if isinstance(exp, str):
                exp = json.loads(exp)
            holding = (exp or {}).get("held_by")
            if holding and _hold_status(holding, states) != old:
                bind.execute(_outcome.update().where(_outcome.c.id == oid).values(
                    status=_hold_status(holding, states)))


def upgrade() -> None:
    with op.batch_alter_table("flag_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decision", sa.String(10), nullable=True))
        batch_op.add_column(sa.Column("former_ids", sa.JSON(), nullable=True))
    op.execute("UPDATE flag_case SET period_id = (SELECT run.period_id FROM run "
               "WHERE run.id = flag_case.run_id)")
    op.execute("UPDATE flag_case SET decision = status "
               "WHERE status IN ('confirmed', 'dismissed')")
    _merge_cases()
    with op.batch_alter_table("flag_case", schema=None) as batch_op:
        batch_op.alter_column("period_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key("fk_flag_case_period", "period", ["period_id"], ["id"])
        batch_op.create_index("ix_flag_case_period_id", ["period_id"], unique=False)
        batch_op.create_unique_constraint("uq_flag_case_period",
                                          ["employee_id", "period_id", "rule_key"])
    with op.batch_alter_table("adjustment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carried_from_run_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_adjustment_carried_from", "run",
                                    ["carried_from_run_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("figures", sa.JSON(), nullable=True))
    op.create_table(
        "pay_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_key", sa.String(length=100), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rule_key"),
    )


def downgrade() -> None:
    op.drop_table("pay_code")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("figures")
    with op.batch_alter_table("adjustment", schema=None) as batch_op:
        batch_op.drop_constraint("fk_adjustment_carried_from", type_="foreignkey")
        batch_op.drop_column("carried_from_run_id")
    # Merged cases stay merged: one case per flag outcome is still true of them.
    with op.batch_alter_table("flag_case", schema=None) as batch_op:
        batch_op.drop_constraint("uq_flag_case_period", type_="unique")
        batch_op.drop_index("ix_flag_case_period_id")
        batch_op.drop_constraint("fk_flag_case_period", type_="foreignkey")
        batch_op.drop_column("former_ids")
        batch_op.drop_column("decision")
        batch_op.drop_column("period_id")
