"""Reading stored results in tests: rows of results keep their values by metric id."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Employee, Metric, Period, ResultRow
from engine.rollup import row_values


def _keys(session: Session) -> dict[str, str]:
    return {str(i): k for i, k in session.execute(select(Metric.id, Metric.key))}


def stored_values(session: Session, employee: str, period: str) -> dict[str, Decimal]:
    """The values stored on the employee's row of results for the period, by metric key."""
    values = session.scalar(
        select(ResultRow.values).join(ResultRow.employee).join(ResultRow.period)
        .where(Employee.code == employee, Period.code == period))
    return row_values(values or {}, _keys(session))


def stored_value(session: Session, metric: str, period: str | None = None,
                 employee: str | None = None) -> Decimal | None:
    """The one stored value of the metric (in the period, of the employee), or None."""
    stmt = select(ResultRow.values).join(ResultRow.employee).join(ResultRow.period)
    if period is not None:
        stmt = stmt.where(Period.code == period)
    if employee is not None:
        stmt = stmt.where(Employee.code == employee)
    keys = _keys(session)
    found = [v for values in session.scalars(stmt)
             if (v := row_values(values, keys).get(metric)) is not None]
    assert len(found) <= 1, f"{metric}: {len(found)} values"
    return found[0] if found else None


def value_count(session: Session) -> int:
    """How many values are stored, in all rows of results."""
    return sum(len(values) for values in session.scalars(select(ResultRow.values)))


def row_form(session: Session, row: ResultRow, **changes: str) -> dict[str, str]:
    """What the back office's edit form of a row of results posts: its period, employee,
    and every input metric's field as the page shows it (the stored value, else empty);
    ``changes`` by metric key."""
    form = {"period": str(row.period_id), "employee": str(row.employee_id)}
    for metric in session.scalars(select(Metric).where(Metric.formula.is_(None))):
        form[f"metric_{metric.id}"] = changes.get(metric.key,
                                                  row.values.get(str(metric.id), ""))
    return form
