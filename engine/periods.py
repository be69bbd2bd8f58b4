"""Period codes: YYYY-MM (month), YYYY-Qn (quarter), YYYY (year).

A code is ASCII (``２０２６-05`` is refused, not read as 2026-05: it would name a second
period) and its year is from FIRST_YEAR to LAST_YEAR: no spreadsheet date is older than
1900, and 9999 is the last year Python and both databases hold.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.db import begin_writing
from engine.errors import PeriodError
from engine.messages import msg
from engine.models import Period

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_QUARTER = re.compile(r"([0-9]{4})-Q([1-4])")
_YEAR = re.compile(r"([0-9]{4})")
FIRST_YEAR, LAST_YEAR = 1900, 9999


def parse(code: str) -> tuple[str, dt.date, dt.date]:
    """Return (kind, first day, last day) of a period code, or raise PeriodError."""
    code = (code or "").strip()
    m = _MONTH.fullmatch(code) or _QUARTER.fullmatch(code) or _YEAR.fullmatch(code)
    if m is None:
        raise PeriodError(
            msg("period %(code)s is not a period code (YYYY-MM, YYYY-Qn or YYYY in the digits "
                "0-9)", code=repr(code))
        )
    y = int(m[1])
    if not FIRST_YEAR <= y <= LAST_YEAR:
        raise PeriodError(msg("period %(code)s is out of range: the year is from %(first_year)s "
                              "to %(last_year)s", code=repr(code), first_year=FIRST_YEAR,
                              last_year=LAST_YEAR))
    if m.re is _MONTH:
        mo = int(m[2])
        return "month", dt.date(y, mo, 1), dt.date(y, mo, calendar.monthrange(y, mo)[1])
    if m.re is _QUARTER:
        first = 3 * (int(m[2]) - 1) + 1
        last = first + 2
        return "quarter", dt.date(y, first, 1), dt.date(y, last, calendar.monthrange(y, last)[1])
    return "year", dt.date(y, 1, 1), dt.date(y, 12, 31)


def is_valid(code: str) -> bool:
    try:
        parse(code)
    except PeriodError:
        return False
    return True


def parents(code: str) -> list[str]:
    """Return the codes of the periods that contain this one (month -> quarter, year)."""
    kind, start, _ = parse(code)
    if kind == "month":
        return [f"{start.year}-Q{(start.month - 1) // 3 + 1}", f"{start.year}"]
    if kind == "quarter":
        return [f"{start.year}"]
    return []


def children(code: str) -> list[str]:
    """Return the codes of the periods one level below (quarter -> months, year -> quarters)."""
    kind, start, _ = parse(code)
    if kind == "quarter":
        return [f"{start.year}-{m:02d}" for m in range(start.month, start.month + 3)]
    if kind == "year":
        return [f"{start.year}-Q{q}" for q in range(1, 5)]
    return []


def previous(code: str) -> str:
    """Return the period of the same kind just before (2026-Q1 -> 2025-Q4)."""
    kind, start, _ = parse(code)
    if kind == "month":
        y, m = (start.year, start.month - 1) if start.month > 1 else (start.year - 1, 12)
        return f"{y}-{m:02d}"
    if kind == "quarter":
        q = (start.month - 1) // 3 + 1
        return f"{start.year}-Q{q - 1}" if q > 1 else f"{start.year - 1}-Q4"
    return f"{start.year - 1}"


def add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    y, m = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


def get(session: Session, code: str) -> Period | None:
    return session.scalar(select(Period).where(Period.code == code))


def get_or_create(session: Session, code: str) -> Period:
    """Return the period, creating it (open) on first use."""
    period = get(session, code)
    if period is None:
        kind, start, end = parse(code)
        period = Period(code=code, kind=kind, start=start, end=end, status="open")
        session.add(period)
        session.flush()
    return period


def require(session: Session, code: str) -> Period:
    """Return an existing period or raise PeriodError naming it."""
    parse(code)
    code = code.strip()
    period = get(session, code)
    if period is None:
        raise PeriodError(msg("period %(code)s does not exist: import results for it first",
                              code=code))
    return period


def serialise(session: Session, period_id: int) -> Period:
    """Hold the period's lock until the transaction ends; return the period as it is now.

    Storing a run (and discarding the earlier ones), approving, locking and reopening take
    it, so they happen one at a time per period and each sees what the one before it
    committed. PostgreSQL locks the period's row (SELECT ... FOR UPDATE; an import waits on
    it too, as it counts the change of results on that row); SQLite has one writer at a time
    and the transaction becomes the writer at once (db.begin_writing).
    """
    begin_writing(session)
    return session.execute(select(Period).where(Period.id == period_id).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one()


_CHANGE_FIELDS = ["results_version", "results_changed_how", "results_changed_in",
                  "results_changed_at", "results_changed_by"]


def results_changed(session: Session, codes: Iterable[str], how: str) -> None:
    """Count a change of these periods' results on them and on the periods containing them.

    ``how`` is "import" or "edit"; the change is the session's actor's. Rows are locked in
    the order of their ids, so two imports that share a quarter never wait on each other
    in a circle. A period locked since the caller checked it (a lock that committed in
    between) refuses the change: the caller's transaction must roll back.
    """
    codes = set(codes)
    within: dict[str, set[str]] = {}
    for code in codes:
        for c in [code, *parents(code)]:
            within.setdefault(c, set()).add(code)
    if not within:
        return
    begin_writing(session)
    rows = session.execute(select(Period.id, Period.code, Period.status)
                           .where(Period.code.in_(within)).order_by(Period.id)
                           .with_for_update()).all()
    locked = sorted(code for _, code, status in rows if status == "locked")
    if locked:
        raise PeriodError(msg("period %(locked)s is locked: the results of %(value)s cannot "
                              "change", locked=locked[0],
                              value=', '.join(sorted(within[locked[0]]))))
    now, actor = dt.datetime.now(dt.UTC), session.info.get("actor", "system")
    for period_id, code, _status in rows:
        session.execute(
            update(Period).where(Period.id == period_id).values(
                results_version=Period.results_version + 1, results_changed_how=how,
                results_changed_in=", ".join(sorted(within[code]))[:200],
                results_changed_at=now, results_changed_by=actor),
            execution_options={"synchronize_session": False})
    for period in session.identity_map.values():
        if isinstance(period, Period) and period.code in within:
            session.expire(period, _CHANGE_FIELDS)
