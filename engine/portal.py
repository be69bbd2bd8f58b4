"""What a salesperson sees of their own pay, and nothing of anyone else's.

A ``sales_rep`` user is one employee (``User.employee_id``, matched by email when the user
is made). They read the runs of their periods that are approved or locked (never a draft
that may still change), the statements of those runs, their earnings of the period and
of the year by pay component, their ratings, PIPs with the months' progress and check-ins,
their promotion status, their one-to-ones and inquiries. Every lookup here takes the
acting user and refuses (NotFound, as if it did not exist) whatever is not theirs, so the
back office and the API ask the same question the same way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine import followup
from engine.errors import NotFound, PermissionDenied
from engine.models import (
    Adjustment,
    Candidate,
    Employee,
    Outcome,
    Period,
    Pip,
    Run,
    Talk,
)
from engine.statements import MONEY_STATUSES
from engine.users import get_user

SHOWN_RUNS = ("approved", "locked")
ZERO = Decimal("0.00")


def rep(session: Session, actor: str | None) -> Employee:
    """The employee the acting sales_rep is; PermissionDenied for anyone else."""
    if not actor or actor == "system":
        raise PermissionDenied("only a salesperson reads their own pay here")
    user = get_user(session, actor)
    if user.role != "sales_rep":
        raise PermissionDenied(f"user {user.email} is a {user.role}, not a sales_rep")
    employee = session.get(Employee, user.employee_id) if user.employee_id else None
    if employee is None:
        raise NotFound(f"user {user.email} is no employee (no employee has this email)")
    return employee


def runs_of(session: Session, employee: Employee) -> list[Run]:
    """The approved and locked runs with a line of the employee, newest period first."""
    mine = select(Outcome.run_id).where(Outcome.employee_id == employee.id).union(
        select(Adjustment.run_id).where(Adjustment.employee_id == employee.id))
    return list(session.scalars(
        select(Run).join(Period, Period.id == Run.period_id)
        .where(Run.status.in_(SHOWN_RUNS), Run.id.in_(mine))
        .order_by(Period.end.desc(), Period.start.desc(), Run.id.desc())))


def own_run(session: Session, actor: str | None, run_id: int) -> tuple[Employee, Run]:
    """The acting sales_rep and one of their shown runs; NotFound for any other run."""
    employee = rep(session, actor)
    run = session.get(Run, run_id)
    if run is None or run.status not in SHOWN_RUNS or run.id not in {
            r.id for r in runs_of(session, employee)}:
        raise NotFound(f"run {run_id} does not exist")
    return employee, run


@dataclass
class Earnings:
    """Amounts by pay component (rule key) and status, and their totals by status."""

    components: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    totals: dict[str, Decimal] = field(default_factory=lambda: {s: ZERO
                                                                 for s in MONEY_STATUSES})
    runs: list[int] = field(default_factory=list)

    def add(self, key: str, status: str, amount: Decimal) -> None:
        sums = self.components.setdefault(key, {s: ZERO for s in MONEY_STATUSES})
        sums[status] += amount
        self.totals[status] += amount


def _counted(runs: list[Run]) -> list[Run]:
    """Per period the run that counts: the newest approved or locked one."""
    seen: set[int] = set()
    out = []
    for run in sorted(runs, key=lambda r: r.id, reverse=True):
        if run.period_id not in seen:
            seen.add(run.period_id)
            out.append(run)
    return out


def earnings(session: Session, employee: Employee, runs: list[Run],
             read: dict[int, Any] | None = None) -> Earnings:
    """The employee's amounts in these runs, by component; a hold released after the
    lock counts where it is paid, not as held. ``read``: the statements already worked
    out, by run id (filled as they are)."""
    from engine import statements

    out = Earnings()
    read = {} if read is None else read
    for run in _counted(runs):
        out.runs.append(run.id)
        if run.id not in read:
            read[run.id] = statements.statement(session, run, employee.code)
        st = read[run.id]
        for line in st.lines:
            if line.amount is None or line.status not in MONEY_STATUSES:
                continue
            if line.release:  # paid in a later run, as a released hold
                continue
            key = ((line.explanation.get("released") or {}).get("rule_key")
                   or line.rule_key)
            out.add(key, line.status, line.amount)
    return out


@dataclass
class Overview:
    """The portal's first page for one salesperson."""

    employee: Employee
    runs: list[Run]
    latest: Run | None
    period: Earnings
    year: Earnings
    year_code: str
    ratings: list[dict[str, Any]]
    pips: list[dict[str, Any]]
    candidates: list[Candidate]
    talks: list[Talk]


def overview(session: Session, actor: str | None) -> Overview:
    """This period's and the year's earnings, the statements, ratings, PIPs, promotion."""
    employee = rep(session, actor)
    runs = runs_of(session, employee)
    months = [r for r in runs if r.period.kind == "month"]
    latest = months[0] if months else (runs[0] if runs else None)
    year_code = latest.period.code[:4] if latest else ""
    in_year = [r for r in runs if r.period.code[:4] == year_code]
    ratings = [{"period": r.period.code, "value": value, "run_id": r.id}
               for r in _counted(runs) for value in session.scalars(
                   select(Outcome.value).where(Outcome.run_id == r.id,
                                               Outcome.employee_id == employee.id,
                                               Outcome.kind == "rating"))]
    read: dict[int, Any] = {}  # the latest run's statement counts in the year too
    return Overview(
        employee, runs, latest,
        earnings(session, employee, [latest] if latest else [], read),
        earnings(session, employee, in_year, read), year_code, ratings,
        pips_of(session, employee), candidates_of(session, employee),
        list(session.scalars(select(Talk).where(Talk.employee_id == employee.id)
                             .order_by(Talk.held_on.desc(), Talk.id.desc()))))


def pips_of(session: Session, employee: Employee) -> list[dict[str, Any]]:
    """The employee's PIPs that started (not proposed or discarded), each month's
    progress against the target and the one-to-ones that were its check-ins."""
    out = []
    for pip in session.scalars(select(Pip).where(
            Pip.employee_id == employee.id, Pip.status.not_in(("proposed", "discarded")))
            .order_by(Pip.start.desc())):
        out.append({"pip": pip, "months": followup.progress(session, pip),
                    "checkins": checkins(session, pip)})
    return out


def checkins(session: Session, pip: Pip) -> dict[str, list[Talk]]:
    """The PIP's one-to-ones by month (YYYY-MM): the talks linked to it, and the talks
    with the employee held during it."""
    talks = session.scalars(select(Talk).where(
        Talk.employee_id == pip.employee_id,
        or_(Talk.pip_id == pip.id, Talk.held_on.between(pip.start, pip.end)))
        .order_by(Talk.held_on, Talk.id))
    out: dict[str, list[Talk]] = defaultdict(list)
    for talk in talks:
        out[f"{talk.held_on.year}-{talk.held_on.month:02d}"].append(talk)
    return dict(out)


def candidates_of(session: Session, employee: Employee) -> list[Candidate]:
    """The employee's promotion candidacies from approved or locked runs."""
    return list(session.scalars(
        select(Candidate).join(Run, Run.id == Candidate.run_id)
        .where(Candidate.employee_id == employee.id, Run.status.in_(SHOWN_RUNS))
        .order_by(Candidate.id.desc())))

