"""Period figures: imported values, and quarter/year figures rolled up from below.

A quarter's figures that were not imported are built from the employee's month rows of
that quarter; a year's from its quarters' figures (each quarter as imported or rolled up).
A mean counts only the periods where the value is defined; a metric imported on the
quarter (year) row wins over the roll-up, metric by metric. An employee with no row for
the period and none below it is not in that period's population.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Text, cast, exists, func, select
from sqlalchemy.orm import Session

from engine import exact, periods
from engine.models import Employee, Metric, Period, ResultRow

Figures = dict[int, dict[str, Decimal]]

# Values come back at the scale the per-value column had (26, 6): the same Decimal,
# exponent included, whether a value was imported as "1200.5" or "1200.500000".
_QUANTUM = Decimal("0.000001")


def value_text(value: Decimal) -> str:
    """A value as a row of results keeps it (ResultRow.values); a negative zero is 0."""
    return format(value if value else abs(value), "f")


def stored_value(text: str) -> Decimal:
    """A value of a row of results (ResultRow.values) as the engine reads it."""
    return Decimal(text).quantize(_QUANTUM)


def has_value(metric_id: int) -> ColumnElement[bool]:
    """Where a row of results has a value for the metric (its id is a key of the JSON:
    the only quoted text followed by a colon)."""
    return cast(ResultRow.values, Text).like(f'%"{int(metric_id)}":%')


def row_values(values: dict[str, str], keys: dict[str, str],
               seen: dict[str, Decimal] | None = None) -> dict[str, Decimal]:
    """{metric key: value} of a row's stored values; ``keys`` maps str(metric id) to key
    (a metric missing from it is left out). ``seen``: the values of the texts converted
    so far by the same read (a Decimal is immutable: rows with the same text share it)."""
    out = {}
    if seen is None:
        seen = {}
    for metric_id, text in values.items():
        key = keys.get(metric_id)
        if key is not None:
            value = seen.get(text)
            if value is None:
                value = seen[text] = Decimal(text).quantize(_QUANTUM)
            out[key] = value
    return out


def _imported(session: Session, codes: list[str], keys: dict[str, str],
              first: int | None = None, last: int | None = None) -> dict[str, Figures]:
    out: dict[str, Figures] = {c: {} for c in codes}
    # A row whose every cell was empty still puts its employee in the population. Read
    # through the tables, not the mapped classes (the ORM's processing of each row took
    # as long as converting its values), the values as the JSON text stored, parsed by
    # orjson (a third of the time the JSON column's own reading took).
    period, row = Period.__table__.c, ResultRow.__table__.c
    stmt = (select(period.code, row.employee_id, cast(row.metric_values, Text))
            .join_from(ResultRow.__table__, Period.__table__, period.id == row.period_id)
            .where(period.code.in_(codes)))
    if first is not None:
        stmt = stmt.where(row.employee_id.between(first, last))
    seen: dict[str, Decimal] = {}
    loads = orjson.loads
    for code, emp, text in session.execute(stmt).all():  # fetched at once, not a row a call
        out[code][emp] = row_values(loads(text), keys, seen)
    return out


def combine(rollup: str, values: list[Decimal]) -> Decimal | None:
    """Roll defined values up by sum, mean or max; undefined when none is defined."""
    if not values:
        return None
    if rollup == "sum":
        return exact.total(values)
    if rollup == "max":
        return max(values, key=exact.exact)
    return exact.mean(values)


def _roll(imported: Figures, parts: list[Figures], rollups: dict[str, str]) -> Figures:
    employees = set(imported)
    for part in parts:
        employees.update(part)
    out: Figures = {}
    for emp in employees:
        own = dict(imported.get(emp, {}))
        for key, how in rollups.items():
            if key in own:
                continue
            defined = [p[emp][key] for p in parts if emp in p and key in p[emp]]
            value = combine(how, defined)
            if value is not None:
                own[key] = value
        out[emp] = own
    return out


def _codes(code: str) -> list[str]:
    """The period and every period below it."""
    below = periods.children(code)
    return [code, *below, *(m for q in below for m in periods.children(q))]


def period_employees(session: Session, code: str) -> list[int]:
    """The ids of the period's population, in order: employees with a row for the period
    or a period below it."""
    codes = _codes(code)
    rows = select(ResultRow.employee_id).join(Period, Period.id == ResultRow.period_id) \
        .where(Period.code.in_(codes)).distinct()
    return sorted(session.scalars(rows))


# The employees without results a run keeps by name (its checklist lists as many).
MISSING_KEPT = 20


def with_results(code: str, employee: ColumnElement[Any] = Employee.id
                 ) -> ColumnElement[bool]:
    """Where an employee (``employee``: their id, by default Employee.id) has a row of
    results for the period or a period below it."""
    rows = (select(ResultRow.employee_id).join(Period, Period.id == ResultRow.period_id)
            .where(Period.code.in_(_codes(code)), ResultRow.employee_id == employee))
    return exists(rows)


def without_results(code: str) -> ColumnElement[bool]:
    """Where an employee has no row of results for the period nor a period below it."""
    return ~with_results(code)


def results_cover(session: Session, period: Period) -> dict[str, Any]:
    """How many employees have results for the period (or below it) as its results stand
    now, and the first MISSING_KEPT without (ids, by code): what a run keeps
    (Run.figures["results"]) so that its checklist need not go through every employee.

    Right while the period's ``results_version`` is the one kept: rows of results change
    only with it, and an employee with rows cannot be deleted. Employees added since
    (ids above "last_employee") are looked at on their own.
    """
    version = session.scalar(select(Period.results_version).where(Period.id == period.id))
    with_results = session.scalar(
        select(func.count(ResultRow.employee_id.distinct()))
        .join(Period, Period.id == ResultRow.period_id)
        .where(Period.code.in_(_codes(period.code)))) or 0
    employees, last = session.execute(select(func.count(), func.max(Employee.id))).one()
    missing = employees - with_results
    first = list(session.scalars(select(Employee.id).where(without_results(period.code))
                                 .order_by(Employee.code).limit(MISSING_KEPT))) if missing else []
    return {"version": version, "with_results": with_results, "last_employee": last or 0,
            "missing": missing, "first_missing": first}


def period_figures(session: Session, code: str, employee_id: int | None = None,
                   first: int | None = None, last: int | None = None,
                   only: Iterable[str] | None = None) -> Figures:
    """Return {employee_id: {metric_key: value}} of the input metrics of a period.

    Undefined values are absent. Employees with nothing for the period or below it are
    absent too. ``employee_id`` limits the figures to one employee, ``first`` and ``last``
    to a range of employee ids (a run's chunk); ``only`` to those input metrics (a run
    reads a few of them: the others are left out, not converted).
    """
    if employee_id is not None:
        first = last = employee_id
    kind, _, _ = periods.parse(code)
    metrics = list(session.scalars(select(Metric).where(Metric.formula.is_(None))))
    if only is not None:
        wanted = set(only)
        metrics = [m for m in metrics if m.key in wanted]
    keys = {str(m.id): m.key for m in metrics}
    rollups = {m.key: m.rollup for m in metrics}
    if kind == "month":
        return dict(_imported(session, [code], keys, first, last)[code])
    if kind == "quarter":
        months = periods.children(code)
        data = _imported(session, [code, *months], keys, first, last)
        return _roll(data[code], [data[m] for m in months], rollups)
    quarters = periods.children(code)
    months = [m for q in quarters for m in periods.children(q)]
    data = _imported(session, [code, *quarters, *months], keys, first, last)
    rolled_quarters = [
        _roll(data[q], [data[m] for m in periods.children(q)], rollups) for q in quarters
    ]
    return _roll(data[code], rolled_quarters, rollups)
