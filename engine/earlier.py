"""What rules paid in the runs of earlier periods: the annual cap's paid amounts and a
draw's balance are read the same way.

A line counts when it is payable or held (a held line may still be paid; a forfeited one
never is) in the approved or locked run of an earlier period of the same kind. A period
has one such run at most, and the period being run never counts itself, so a re-run
counts nothing twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Outcome, Period, Run

COUNTED_RUNS = ("approved", "locked")
COUNTED_STATUSES = ("payable", "held")


def totals(session: Session, period: Any, keys: list[str], since: dt.date | None = None
           ) -> dict[tuple[int, str], dict[str, Any]]:
    """{(employee id, rule key): {"total": Decimal, "runs": [{"run_id", "period"}]}} of
    the rules' counted lines in the periods of the kind before ``period`` (from ``since``
    when given)."""
    if not keys:
        return {}
    stmt = (select(Outcome.employee_id, Outcome.rule_key, Outcome.amount, Run.id, Period.code)
            .join(Run, Run.id == Outcome.run_id).join(Period, Period.id == Run.period_id)
            .where(Outcome.rule_key.in_(keys), Outcome.amount.is_not(None),
                   Outcome.status.in_(COUNTED_STATUSES), Run.status.in_(COUNTED_RUNS),
                   Period.kind == period.kind, Period.start < period.start)
            .order_by(Period.start, Run.id))
    if since is not None:
        stmt = stmt.where(Period.start >= since)
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for employee_id, key, amount, run_id, code in session.execute(stmt):
        seen = out.setdefault((employee_id, key), {"total": Decimal(0), "runs": []})
        seen["total"] += amount  # summed here: SQLite would add the amounts as floats
        if not any(r["run_id"] == run_id for r in seen["runs"]):
            seen["runs"].append({"run_id": run_id, "period": code})
    return out
