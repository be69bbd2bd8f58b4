"""Dated assignments: who belonged where on each day of a period, and for how many days.

An employee's team, level and manager are effective-dated (engine.models.Assignment): each
assignment holds from its effective date until the next one, and the employee is paid up
to their leave date (Employee.leave_date). An employee with no dated assignment and no
leave date holds their team, level and manager on every day, as before dates existed.

A run reads the days: ``presences`` gives, for the employees with dates, the days of the
period they were employed and in which team; team figures count a member for the share of
the period they belonged (a transfer splits the period, and the member's revenue and quota
with it, between the two teams); the facts ``active_days``, ``period_days`` and
``active_share`` let a rule prorate an amount (``prorate: true``). An employee with no day
in the period (left before it, joined after it) is out of its population.

The employees import writes the dates (``effective_date``, ``leave_date``): ``record``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import periods
from engine.exact import exact, from_fraction, quotient
from engine.models import Assignment, Employee

# The facts a rule reads to prorate (engine.conditions.CONTEXT_FACTS).
DAY_FACTS = ("active_days", "period_days", "active_share")
# The date an employee's assignment holds from when it was recorded before any date was
# given (their team when the first dated row came): the first day a period may have.
SINCE_EVER = dt.date(periods.FIRST_YEAR, 1, 1)


@dataclass
class Presence:
    """One employee's days in a period: in all, and in each team, in date order."""

    active_days: int
    period_days: int
    teams: dict[int, int] = field(default_factory=dict)  # team id -> days
    team_id: int | None = None  # in force on the last day employed in the period
    level_id: int | None = None
    manager_id: int | None = None

    @property
    def share(self) -> Fraction:
        return Fraction(self.active_days, self.period_days)


def period_days(period: Any) -> int:
    return (period.end - period.start).days + 1


def _overlap(start: dt.date, end: dt.date | None, period: Any) -> tuple[dt.date, dt.date] | None:
    lo = max(start, period.start)
    hi = period.end if end is None else min(end, period.end)
    return (lo, hi) if lo <= hi else None


Spans = dict[int, list[tuple[dt.date, int, int, int | None]]]


def _spans(session: Session, first: int | None = None, last: int | None = None
           ) -> tuple[Spans, dict[int, dt.date]]:
    """The dated assignments of each employee with any (or a leave date), in date order,
    and the leave dates."""
    stmt = select(Assignment.employee_id, Assignment.effective_date, Assignment.team_id,
                  Assignment.level_id, Assignment.manager_id)
    left = select(Employee.id, Employee.leave_date, Employee.team_id, Employee.level_id,
                  Employee.manager_id).where(Employee.leave_date.is_not(None))
    if first is not None:
        stmt = stmt.where(Assignment.employee_id.between(first, last))
        left = left.where(Employee.id.between(first, last))
    dated: Spans = {}
    for emp, date, team, level, manager in session.execute(
            stmt.order_by(Assignment.employee_id, Assignment.effective_date)):
        dated.setdefault(emp, []).append((date, team, level, manager))
    leaves: dict[int, dt.date] = {}
    for emp, leave, team, level, manager in session.execute(left):
        leaves[emp] = leave
        dated.setdefault(emp, [(SINCE_EVER, team, level, manager)])
    return dated, leaves


def _presences(dated: Spans, leaves: dict[int, dt.date], period: Any) -> dict[int, Presence]:
    days = period_days(period)
    out: dict[int, Presence] = {}
    for emp, spans in dated.items():
        presence = Presence(0, days)
        leave = leaves.get(emp)
        for i, (date, team, level, manager) in enumerate(spans):
            end = spans[i + 1][0] - dt.timedelta(days=1) if i + 1 < len(spans) else None
            if leave is not None and (end is None or leave < end):
                end = leave
            inside = _overlap(date, end, period)
            if inside is None:
                continue
            n = (inside[1] - inside[0]).days + 1
            presence.active_days += n
            presence.teams[team] = presence.teams.get(team, 0) + n
            presence.team_id, presence.level_id, presence.manager_id = team, level, manager
        out[emp] = presence
    return out


def presences(session: Session, period: Any, first: int | None = None,
              last: int | None = None) -> dict[int, Presence]:
    """The days of the period of each employee with a dated assignment or a leave date
    (of an id range when given); the others are employed every day, as they stand."""
    return _presences(*_spans(session, first, last), period)


def presences_in(session: Session, codes: Iterable[str]) -> dict[str, dict[int, Presence]]:
    """presences of each period code (the assignments read once)."""
    dated, leaves = _spans(session)
    out = {}
    for code in codes:
        _kind, start, end = periods.parse(code)
        out[code] = _presences(dated, leaves, _Days(start, end))
    return out


@dataclass(frozen=True)
class _Days:
    start: dt.date
    end: dt.date


def in_period(session: Session, period: Any, ids: list[int]) -> list[int]:
    """The employees of ``ids`` employed on at least one day of the period."""
    if not ids:
        return ids
    away = {e for e, p in presences(session, period, ids[0], ids[-1]).items()
            if p.active_days == 0}
    return [i for i in ids if i not in away] if away else ids


def team_shares(presence: Presence | None, team_id: int
                ) -> Iterator[tuple[int, Fraction | int]]:
    """(team, share of the period) of one member: the whole period in their team (1, an
    int: most members, whose count and sums then stay whole numbers, where adding
    Fraction(1) a member was a sixth of the population's walk), or each team they
    belonged to for its days."""
    if presence is None:
        yield team_id, 1
        return
    for team, n in presence.teams.items():
        yield team, Fraction(n, presence.period_days)


def part(value: Decimal, share: Fraction | int) -> Decimal:
    """A share of a figure, exact (the figure itself for the whole period)."""
    return value if share == 1 else from_fraction(Fraction(exact(value)) * share)


def members(count: Fraction | int) -> int | Fraction:
    """A team's member count: whole when every member belonged all period."""
    count = Fraction(count)
    return count.numerator if count.denominator == 1 else count


def member_value(count: int | Fraction) -> Decimal:
    """A member count as a fact."""
    return Decimal(count) if isinstance(count, int) else from_fraction(count)


def shown(count: int | Fraction | Decimal) -> int | str:
    """A member count as a run's figures keep it: whole, or its decimal text."""
    value = exact(count) if isinstance(count, Decimal) else Fraction(count)
    if Fraction(value).denominator == 1:
        return int(value)
    return f"{from_fraction(Fraction(value)):.2f}"


def day_facts(presence: Presence | None, period: Any) -> dict[str, Decimal]:
    """active_days, period_days and active_share of one employee."""
    days = period_days(period)
    active = days if presence is None else presence.active_days
    return {"active_days": Decimal(active), "period_days": Decimal(days),
            "active_share": quotient(Decimal(active), Decimal(days))}


# --- the employees import -------------------------------------------------------------------


def any_dated(session: Session) -> bool:
    """Whether any employee has dated assignments (most organisations have none)."""
    return session.scalar(select(Assignment.id).limit(1)) is not None


def record(session: Session, rows: Iterable[Mapping[str, Any]], by_code: Mapping[str, Employee],
           before: Mapping[str, Mapping[str, Any]], leave_given: bool) -> None:
    """Write the dates of imported employee rows (their team_id, level_id and manager_id
    already set on the employee): a row with an ``effective_date`` records an assignment
    from that date (replacing one of the same date; the first one of an employee who
    existed keeps their team until then, unless it is on their hire date: a hire); a row
    without one changes the
    assignment in force (the latest) of an employee who has dates. The employee then
    stands as their latest assignment says. ``before``: the team, level and manager of the
    employees that existed before the import, by code. ``leave_date`` is set as given when the file
    has the column (an empty cell: still employed)."""
    rows = list(rows)
    known: dict[int, dict[dt.date, Assignment]] = {}
    if any(r.get("effective_date") for r in rows) \
            or session.scalar(select(Assignment.id).limit(1)) is not None:
        for a in session.scalars(select(Assignment)):  # few: the dated ones
            known.setdefault(a.employee_id, {})[a.effective_date] = a
    for row in rows:
        emp = by_code[row["code"]]
        mine = known.setdefault(emp.id, {})
        values = {"team_id": emp.team_id, "level_id": emp.level_id,
                  "manager_id": emp.manager_id}
        date = row.get("effective_date")
        if date is None:
            if mine:
                latest = mine[max(mine)]
                for k, v in values.items():
                    setattr(latest, k, v)
        else:
            hired = emp.hire_date is not None and date <= emp.hire_date
            if not mine and row["code"] in before and date > SINCE_EVER and not hired:
                # the employee's team until now holds until the new date (an effective
                # date on the hire date is the hire: nothing before it)
                mine[SINCE_EVER] = _add(session, emp.id, SINCE_EVER, before[row["code"]])
            if date in mine:
                for k, v in values.items():
                    setattr(mine[date], k, v)
            else:
                mine[date] = _add(session, emp.id, date, values)
            latest = mine[max(mine)]
            emp.team_id, emp.level_id = latest.team_id, latest.level_id
            emp.manager_id = latest.manager_id
        if leave_given:
            emp.leave_date = row.get("leave_date")
    session.flush()


def follow_edit(session: Session, employee: Employee) -> None:
    """An employee's team, level or manager changed by hand: the assignment in force (the
    latest) of an employee who has dates changes with them, as an import row without a
    date changes it."""
    latest = session.scalar(select(Assignment).where(Assignment.employee_id == employee.id)
                            .order_by(Assignment.effective_date.desc()).limit(1))
    if latest is not None:
        latest.team_id, latest.level_id = employee.team_id, employee.level_id
        latest.manager_id = employee.manager_id


def _add(session: Session, employee_id: int, date: dt.date, values: Mapping[str, Any]
         ) -> Assignment:
    a = Assignment(employee_id=employee_id, effective_date=date, **values)
    session.add(a)
    return a

