"""Performance improvement plans: the spans that started PIPs cover."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import periods
from engine.models import Outcome, Run

LIVE_RUN = ("calculated", "approved", "locked")


def span(start: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """A PIP of N months from its start: 2026-04-01 for 3 months runs to 2026-06-30."""
    return start, periods.add_months(start, months) - dt.timedelta(days=1)


def spans(session: Session, exclude_period_id: int | None = None
          ) -> dict[int, list[tuple[dt.date, dt.date]]]:
    """Each employee's PIPs (start, end) started by the live runs of other periods."""
    stmt = (select(Outcome.employee_id, Outcome.value, Outcome.explanation)
            .join(Run, Run.id == Outcome.run_id)
            .where(Outcome.kind == "pip", Run.status.in_(LIVE_RUN)))
    if exclude_period_id is not None:
        stmt = stmt.where(Run.period_id != exclude_period_id)
    out: dict[int, list[tuple[dt.date, dt.date]]] = defaultdict(list)
    for emp, value, explanation in session.execute(stmt):
        pip = (explanation or {}).get("pip") or {}
        try:
            start = dt.date.fromisoformat(pip.get("start") or value)
            end = dt.date.fromisoformat(pip["end"]) if pip.get("end") else span(start, 3)[1]
        except (TypeError, ValueError):
            continue
        out[emp].append((start, end))
    return out
