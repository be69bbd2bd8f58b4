"""Performance improvement plans: the spans that PIP records cover."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import periods
from engine.models import Pip, Run


def span(start: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """A PIP of N months from its start: 2026-04-01 for 3 months runs to 2026-06-30."""
    return start, periods.add_months(start, months) - dt.timedelta(days=1)


def spans(session: Session, exclude_period_id: int | None = None, first: int | None = None,
          last: int | None = None) -> dict[int, list[tuple[dt.date, dt.date]]]:
    """Each employee's PIPs (start, end): every PIP record that is not discarded (of the
    employees of an id range when given).

    The PIPs started by runs of the period being run are left out: a new run of that
    period discards them.
    """
    stmt = (select(Pip.employee_id, Pip.start, Pip.end).join(Run, Run.id == Pip.run_id)
            .where(Pip.status != "discarded"))
    if exclude_period_id is not None:
        stmt = stmt.where(Run.period_id != exclude_period_id)
    if first is not None:
        stmt = stmt.where(Pip.employee_id.between(first, last))
    out: dict[int, list[tuple[dt.date, dt.date]]] = defaultdict(list)
    for emp, start, end in session.execute(stmt):
        out[emp].append((start, end))
    return out
