"""The three-view review of a quarter: self, manager and customer assessment.

HR opens a review cycle for a quarter with two deadlines (self-assessments, then the
managers'). Each salesperson enters their score (0-100, the self_score metric's range)
and comments; each sales manager enters one for every member of their team; customer
scores come from a file or the API. Until the cycle closes an entry can be changed, each
change audited. Closing writes the scores as the quarter's ``self_score``,
``manager_score`` and ``customer_score`` results through the results import
(engine.imports: the same checks, and the quarter's runs become stale); a score nobody
entered is not written, so it stays as the results give it (undefined when none do), and
the rating reads the evaluation score as it does from imported results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine import periods
from engine.cells import CellError, metric_value
from engine.db import audit
from engine.errors import ImportFileError, LaurelError, NotFound, PermissionDenied
from engine.imports import ImportReport, import_result_table, read_table
from engine.messages import msg
from engine.models import REVIEW_KINDS, Employee, Metric, ReviewCycle, ReviewEntry, User
from engine.users import get_user, require_role

METRIC_OF = {"self": "self_score", "manager": "manager_score", "customer": "customer_score"}
# Who enters which score (besides the salesperson's own and the team's manager).
CUSTOMER_SCORERS = ("hr_admin", "comp_analyst")


def get_cycle(session: Session, cycle_id: int) -> ReviewCycle:
    cycle = session.get(ReviewCycle, cycle_id)
    if cycle is None:
        raise NotFound(msg("review cycle %(cycle_id)s does not exist", cycle_id=cycle_id))
    return cycle


def quarter(period_code: str) -> str:
    """The quarter a review cycle is opened for, as typed (trimmed); refused, naming the
    field, when it is empty or not a quarter."""
    period_code = (period_code or "").strip()
    if not period_code:
        raise LaurelError(msg("field %(field)s: %(reason)s", field="period",
                              reason=msg("give a quarter (YYYY-Qn), such as 2026-Q2")))
    kind, _start, _end = periods.parse(period_code)
    if kind != "quarter":
        raise LaurelError(msg("review cycle, field period: %(period_code)s is not a quarter "
                              "(YYYY-Qn)", period_code=period_code))
    return period_code


def open_cycle(session: Session, period_code: str, self_due: dt.date, manager_due: dt.date,
               actor: str | None) -> ReviewCycle:
    """Open the review cycle of a quarter (HR), with its two deadlines."""
    user = require_role(session, actor, ("hr_admin",), "open a review cycle")
    period_code = quarter(period_code)
    if manager_due < self_due:
        raise LaurelError(msg("review cycle, field manager_due: the managers' deadline comes "
                              "after the self-assessments'"))
    period = periods.get_or_create(session, period_code)
    if period.status == "locked":  # its close writes the scores as the quarter's results
        raise LaurelError(msg("review cycle, field period: %(code)s is locked: the scores "
                              "could not be written as its results; reopen it first",
                              code=period.code))
    if session.scalar(select(ReviewCycle.id).where(ReviewCycle.period_id == period.id)):
        raise LaurelError(msg("review cycle, field period: %(code)s has a review cycle already",
                              code=period.code))
    cycle = ReviewCycle(period_id=period.id, status="open", self_due=self_due,
                        manager_due=manager_due, opened_by=user.email,
                        opened_at=dt.datetime.now(dt.UTC))
    session.add(cycle)
    session.flush()
    audit(session, "open", "review_cycle", cycle.id,
          summary=msg("review cycle of %(period)s opened", period=period.code),
          after={"period": period.code, "self_due": self_due.isoformat(),
                 "manager_due": manager_due.isoformat()}, actor=user.email)
    return cycle


def members(session: Session, cycle: ReviewCycle, team_id: int | None = None
            ) -> list[Employee]:
    """The employees the cycle reviews: hired by the quarter's end (or no hire date)."""
    stmt = select(Employee).where(or_(Employee.hire_date.is_(None),
                                      Employee.hire_date <= cycle.period.end))
    if team_id is not None:
        stmt = stmt.where(Employee.team_id == team_id)
    return list(session.scalars(stmt.order_by(Employee.code)))


def _score(session: Session, kind: str, text: str | Decimal, what: str) -> Decimal:
    metric = session.scalar(select(Metric).where(Metric.key == METRIC_OF[kind]))
    low, high = (metric.min_value, metric.max_value) if metric else (None, None)
    try:
        return metric_value(str(text).strip(), "score", low, high)
    except CellError as err:
        raise LaurelError(msg("%(what)s, field score: %(reason)s", what=what,
                              reason=err.reason)) from None


def _may_enter(session: Session, user: User, employee: Employee, kind: str) -> None:
    if kind == "self":
        if user.role != "sales_rep" or user.employee_id != employee.id:
            raise PermissionDenied(msg("%(email)s cannot enter %(code)s's self-assessment: each "
                                       "salesperson enters their own", email=user.email,
                                       code=employee.code))
    elif kind == "manager":
        own = (user.email or "").lower() == (employee.email or "").lower()
        if not (user.role == "hr_admin" or (user.role == "sales_manager"
                                            and user.team_id == employee.team_id)) or own:
            raise PermissionDenied(msg("%(email)s cannot assess %(code)s: the manager of the "
                                       "employee's team does", email=user.email,
                                       code=employee.code))
    elif user.role not in CUSTOMER_SCORERS:
        raise PermissionDenied(msg("%(email)s is a %(role)s: customer scores come from HR or an "
                                   "analyst (a file or the API)", email=user.email,
                                   role=user.role))


def enter(session: Session, cycle_id: int, actor: str | None, employee_code: str, kind: str,
          score: str | Decimal, comments: str = "") -> ReviewEntry:
    """Enter (or change) one score of an open cycle; each kind by whom it belongs to."""
    if kind not in REVIEW_KINDS:
        raise LaurelError(msg("review entry, field kind: one of %(value)s",
                              value=', '.join(REVIEW_KINDS)))
    if not actor or actor == "system":
        raise PermissionDenied(msg("the system user enters no review score: use --as EMAIL"))
    user = get_user(session, actor)
    cycle = get_cycle(session, cycle_id)
    if cycle.status != "open":
        raise LaurelError(msg("review cycle %(id)s (%(code)s) is closed", id=cycle.id,
                              code=cycle.period.code))
    employee = session.scalar(select(Employee).where(Employee.code == employee_code))
    if employee is None or employee.id not in {e.id for e in members(session, cycle,
                                                                     employee.team_id)}:
        raise NotFound(msg("employee %(employee_code)s is not reviewed in this cycle",
                           employee_code=employee_code))
    _may_enter(session, user, employee, kind)
    value = _score(session, kind, score, "review entry")
    entry = session.scalar(select(ReviewEntry).where(
        ReviewEntry.cycle_id == cycle.id, ReviewEntry.employee_id == employee.id,
        ReviewEntry.kind == kind))
    before = None
    if entry is None:
        entry = ReviewEntry(cycle_id=cycle.id, employee_id=employee.id, kind=kind)
        session.add(entry)
    else:
        before = {"score": str(entry.score), "comments": entry.comments,
                  "by": entry.entered_by}
    entry.score, entry.comments = value, (comments or "").strip()
    entry.entered_by, entry.entered_at = user.email, dt.datetime.now(dt.UTC)
    session.flush()
    audit(session, "enter", "review_cycle", cycle.id,
          summary=msg("%(period)s: %(kind)s score of %(code)s", period=cycle.period.code,
                      kind=kind, code=employee.code), before=before,
          after={"employee": employee.code, "kind": kind, "score": str(value),
                 "comments": entry.comments}, actor=user.email)
    return entry


def import_customer_scores(session: Session, cycle_id: int, name: str, data: bytes,
                           actor: str | None) -> int:
    """Customer scores from a file (CSV or XLSX: ``employee_code,customer_score``, an
    optional ``comments``); all rows or none. Return the number of rows."""
    header, body = read_table(name, data)
    return import_customer_score_table(session, cycle_id, name, header, body, actor)


def import_customer_score_table(session: Session, cycle_id: int, name: str, header: list[str],
                                body: Iterable[tuple[int, list[str]]], actor: str | None
                                ) -> int:
    """Customer scores given as a table (a header, then numbered rows of cells as text):
    what import_customer_scores does with a file's table, and what the API's batches of
    scores go through."""
    for col in ("employee_code", "customer_score"):
        if col not in header:
            raise ImportFileError(name, msg("required column %(col)s is missing", col=repr(col)),
                                  row=1,
                                  column=col)
    unknown = [c for c in header if c not in ("employee_code", "customer_score", "comments")]
    if unknown:
        raise ImportFileError(name, msg("unknown column %(unknown)s", unknown=repr(unknown[0])),
                              row=1, column=unknown[0])
    e_idx, s_idx = header.index("employee_code"), header.index("customer_score")
    c_idx = header.index("comments") if "comments" in header else None
    rows = 0
    for number, cells in body:
        if not cells[s_idx]:
            continue
        try:
            enter(session, cycle_id, actor, cells[e_idx], "customer", cells[s_idx],
                  cells[c_idx] if c_idx is not None else "")
        except LaurelError as exc:
            column = "customer_score" if "field score" in str(exc) else "employee_code"
            raise ImportFileError(name, str(exc).split(": ", 1)[-1], row=number,
                                  column=column) from None
        rows += 1
    if not rows:
        raise ImportFileError(name, msg("has no customer score"))
    return rows


@dataclass
class Progress:
    """Who has entered what in a cycle, and who has not yet."""

    cycle: ReviewCycle
    rows: list[dict[str, Any]] = field(default_factory=list)

    def missing(self, kind: str) -> list[Employee]:
        return [r["employee"] for r in self.rows if r[kind] is None]


def progress(session: Session, cycle: ReviewCycle, team_id: int | None = None) -> Progress:
    """Each member of the cycle (of one team) with their three entries or None."""
    entries: dict[tuple[int, str], ReviewEntry] = {
        (e.employee_id, e.kind): e for e in session.scalars(
            select(ReviewEntry).where(ReviewEntry.cycle_id == cycle.id))}
    out = Progress(cycle)
    for employee in members(session, cycle, team_id):
        out.rows.append({"employee": employee,
                         **{k: entries.get((employee.id, k)) for k in REVIEW_KINDS}})
    return out


def close_cycle(session: Session, cycle_id: int, actor: str | None) -> ImportReport | None:
    """Close the cycle: its scores become the quarter's results (engine.imports)."""
    user = require_role(session, actor, ("hr_admin",), "close a review cycle")
    cycle = get_cycle(session, cycle_id)
    if cycle.status != "open":
        raise LaurelError(msg("review cycle %(id)s (%(code)s) is closed already", id=cycle.id,
                              code=cycle.period.code))
    by_employee: dict[int, dict[str, Decimal]] = {}
    for entry in session.scalars(select(ReviewEntry).where(ReviewEntry.cycle_id == cycle.id)):
        by_employee.setdefault(entry.employee_id, {})[METRIC_OF[entry.kind]] = entry.score
    codes = dict(session.execute(select(Employee.id, Employee.code).where(
        Employee.id.in_(select(ReviewEntry.employee_id)
                        .where(ReviewEntry.cycle_id == cycle.id)))).all())
    header = ["period", "employee_code", *METRIC_OF.values()]
    body = [(number, [cycle.period.code, codes[emp],
                      *(format(scores[m], "f") if m in scores else "" for m in header[2:])])
            for number, (emp, scores) in enumerate(
                sorted(by_employee.items(), key=lambda kv: codes[kv[0]]), start=2)]
    report = None
    if body:
        previous = session.info.get("actor")
        session.info["actor"] = user.email
        try:
            report = import_result_table(session, f"review cycle {cycle.period.code}",
                                         header, body)
        finally:
            session.info["actor"] = previous
    cycle.status, cycle.closed_by = "closed", user.email
    cycle.closed_at = dt.datetime.now(dt.UTC)
    audit(session, "close", "review_cycle", cycle.id,
          summary=msg("review cycle of %(period)s closed: %(n)s employees' scores written as "
                      "the quarter's results", period=cycle.period.code, n=len(body)),
          before={"status": "open"}, after={"status": "closed", "employees": len(body)},
          actor=user.email)
    session.flush()
    return report


def open_cycles(session: Session) -> list[ReviewCycle]:
    return list(session.scalars(select(ReviewCycle).where(ReviewCycle.status == "open")
                                .order_by(ReviewCycle.id)))


def waiting(session: Session, user: User) -> list[dict[str, Any]]:
    """What a person still has to enter in the open cycles: a salesperson their own
    score, a manager their team's; HR the cycles whose managers' deadline has passed."""
    out = []
    today = dt.date.today()
    for cycle in open_cycles(session):
        if user.role == "sales_rep" and user.employee_id:
            done = session.scalar(select(func.count()).select_from(ReviewEntry).where(
                ReviewEntry.cycle_id == cycle.id, ReviewEntry.kind == "self",
                ReviewEntry.employee_id == user.employee_id))
            if not done:
                out.append({"cycle_id": cycle.id, "period": cycle.period.code,
                            "due": cycle.self_due, "count": 1})
        elif user.role == "sales_manager" and user.team_id:
            missing = [e for e in progress(session, cycle, user.team_id).missing("manager")
                       if (e.email or "").lower() != user.email.lower()]
            if missing:
                out.append({"cycle_id": cycle.id, "period": cycle.period.code,
                            "due": cycle.manager_due, "count": len(missing)})
        elif user.role == "hr_admin" and cycle.manager_due < today:
            out.append({"cycle_id": cycle.id, "period": cycle.period.code,
                        "due": cycle.manager_due, "count": 1})
    return out
