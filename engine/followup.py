"""Following ratings up: PIP records and promotion candidates.

A run's ``pip`` outcomes become PIP records, ``proposed`` until the run is approved, then
``active``; a new run of the period carries them over when it starts them again and
discards them, audited, when it does not (carry_pips). HR records the decision at the end (passed,
extended with a new end, change of role, exit) or closes an active PIP early, always with
a reason. ``eligibility`` outcomes of approved runs become candidates for the program:
eligible -> nominated -> accepted or declined.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import periods
from engine.db import audit
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.exact import exact
from engine.messages import msg
from engine.metrics import load_catalog
from engine.models import Candidate, Employee, Outcome, Pip, Run
from engine.rollup import period_figures
from engine.users import get_user, require_role
from engine.wording import PIP_TARGET

PIP_DECISIONS = ("passed", "extended", "role_change", "exit")


def carry_pips(session: Session, run: Run, discarded: list[int], actor: str = "system"
               ) -> dict[str, list[int]]:
    """PIP records of a newly stored run: carried from the runs it discards, or new.

    A pip outcome of the run for an employee whose PIP record came from a discarded run of
    the period carries that record over (its id, and any decision HR recorded on it; an
    active one waits for the new run's approval again, as "proposed"). A record of a
    discarded run that the new run does not start again is discarded, visibly: each carry
    and each drop is audited. Any other pip outcome starts a new proposed record.
    """
    old = {p.employee_id: p for p in session.scalars(
        select(Pip).where(Pip.run_id.in_(discarded), Pip.status != "discarded")
        .order_by(Pip.id))} if discarded else {}
    done: dict[str, list[int]] = {"started": [], "carried": [], "dropped": []}
    rows = session.execute(select(Outcome.id, Outcome.employee_id, Outcome.explanation)
                           .where(Outcome.run_id == run.id, Outcome.kind == "pip")
                           .order_by(Outcome.id)).all()
    for oid, emp, exp in rows:
        pip = (exp or {}).get("pip") or {}
        start = dt.date.fromisoformat(pip["start"])
        end = dt.date.fromisoformat(pip["end"])
        record = old.pop(emp, None)
        if record is None:
            record = Pip(employee_id=emp, run_id=run.id, outcome_id=oid, start=start,
                         end=end, target=pip.get("target", ""), status="proposed")
            session.add(record)
            session.flush()
            done["started"].append(record.id)
            continue
        before = {"status": record.status, "run": record.run_id}
        record.run_id, record.outcome_id = run.id, oid
        if record.status in ("proposed", "active"):
            record.status, record.start, record.end = "proposed", start, end
            record.target = pip.get("target", record.target)
        done["carried"].append(record.id)
        audit(session, "carry", "pip", record.id,
              summary=msg("PIP %(id)s carried over to run %(run)s (%(status)s)", id=record.id,
                          run=run.id, status=record.status),
              before=before, after={"status": record.status, "run": run.id}, actor=actor)
    for record in old.values():
        before = {"status": record.status, "run": record.run_id}
        record.status = "discarded"
        done["dropped"].append(record.id)
        audit(session, "drop", "pip", record.id,
              summary=msg("PIP %(id)s dropped: run %(run)s of the period no longer starts it",
                          id=record.id, run=run.id), before=before, after={"status": "discarded",
                                                         "run": run.id}, actor=actor)
    session.flush()
    return done


def on_approve(session: Session, run: Run) -> None:
    """Approval activates the run's PIPs and lists its promotion candidates."""
    session.execute(update(Pip).where(Pip.run_id == run.id, Pip.status == "proposed")
                    .values(status="active"))
    have = set(session.scalars(select(Candidate.outcome_id).where(Candidate.run_id == run.id)))
    # A candidate of an earlier run of the period, with its nomination, carries over.
    earlier = {(c.employee_id, c.program): c for c in session.scalars(
        select(Candidate).join(Run, Run.id == Candidate.run_id)
        .where(Run.period_id == run.period_id, Run.id != run.id,
               Run.status == "discarded").order_by(Candidate.id))}
    for o in session.scalars(select(Outcome).where(Outcome.run_id == run.id,
                                                   Outcome.kind == "eligibility")):
        if o.id in have:
            continue
        program = o.value or o.rule_key
        cand = earlier.get((o.employee_id, program))
        if cand is not None:
            before = {"run": cand.run_id}
            cand.run_id, cand.outcome_id = run.id, o.id
            audit(session, "carry", "candidate", cand.id,
                  summary=msg("candidate %(id)s (%(program)s) carried over to run %(run)s "
                              "(%(status)s)", id=cand.id, program=program, run=run.id,
                              status=cand.status), before=before, after={"run": run.id})
            continue
        session.add(Candidate(employee_id=o.employee_id, run_id=run.id, outcome_id=o.id,
                              program=program, status="eligible"))
    session.flush()


def _hr(session: Session, actor: str | None, what: str) -> str:
    return require_role(session, actor, ("hr_admin",), what).email


def get_pip(session: Session, pip_id: int) -> Pip:
    pip = session.get(Pip, pip_id)
    if pip is None:
        raise NotFound(msg("PIP %(pip_id)s does not exist", pip_id=pip_id))
    return pip


def decide_pip(session: Session, pip_id: int, decision: str, reason: str, actor: str | None,
               new_end: dt.date | None = None) -> Pip:
    """Record HR's decision at the end of an active PIP."""
    email = _hr(session, actor, "decide a PIP")
    pip = get_pip(session, pip_id)
    if pip.status not in ("active", "extended"):
        raise LaurelError(msg("PIP %(id)s is %(status)s; only an active PIP gets a decision",
                              id=pip.id, status=pip.status))
    if decision not in PIP_DECISIONS:
        raise LaurelError(msg("PIP %(id)s, field decision: one of %(value)s", id=pip.id,
                              value=', '.join(PIP_DECISIONS)))
    if not (reason or "").strip():
        raise LaurelError(msg("PIP %(id)s, field reason: a written reason is required", id=pip.id))
    before = {"status": pip.status, "end": pip.end.isoformat()}
    if decision == "extended":
        if new_end is None or new_end <= pip.end:
            raise LaurelError(msg("PIP %(id)s, field new_end: an extension ends after %(value)s",
                                  id=pip.id, value=pip.end.isoformat()))
        pip.end = new_end
    pip.status, pip.decision_reason = decision, reason.strip()
    pip.decided_by, pip.decided_at = email, dt.datetime.now(dt.UTC)
    audit(session, "decide", "pip", pip.id,
          summary=msg("PIP %(id)s: %(decision)s: %(reason)s", id=pip.id, decision=decision,
                      reason=reason),
          before=before, after={"status": decision, "end": pip.end.isoformat(),
                                "reason": pip.decision_reason}, actor=email)
    session.flush()
    return pip


def close_pip(session: Session, pip_id: int, reason: str, actor: str | None,
              on: dt.date | None = None) -> Pip:
    """Close an active PIP early, with a reason; it ends on that day, which is before its
    end (at its end HR decides it: decide_pip)."""
    email = _hr(session, actor, "close a PIP")
    pip = get_pip(session, pip_id)
    if pip.status not in ("active", "extended"):
        raise LaurelError(msg("PIP %(id)s is %(status)s; only an active PIP can be closed",
                              id=pip.id, status=pip.status))
    if not (reason or "").strip():
        raise LaurelError(msg("PIP %(id)s, field reason: a written reason is required", id=pip.id))
    day = on or dt.date.today()
    if day >= pip.end:  # it has run its course: what comes of it is HR's decision
        raise LaurelError(msg("PIP %(id)s, field on: it ends on %(value)s; a PIP closed early "
                              "ends before that (a PIP that has run its course gets a "
                              "decision: passed, extended, role change or exit)",
                              id=pip.id, value=pip.end.isoformat()))
    if day < pip.start:  # closed before it began: it covers no day at all
        day = pip.start - dt.timedelta(days=1)
    before = {"status": pip.status, "end": pip.end.isoformat()}
    pip.status, pip.end = "closed", day
    pip.decision_reason, pip.decided_by = reason.strip(), email
    pip.decided_at = dt.datetime.now(dt.UTC)
    audit(session, "close", "pip", pip.id,
          summary=msg("PIP %(id)s closed early: %(reason)s", id=pip.id, reason=reason),
          before=before, after={"status": "closed", "end": pip.end.isoformat(),
                                "reason": pip.decision_reason}, actor=email)
    session.flush()
    return pip


def target_of(pip: Pip) -> tuple[str, str, Decimal] | None:
    m = PIP_TARGET.match(pip.target or "")
    if not m:
        return None
    return m[1], m[2], Decimal(m[3])


def progress(session: Session, pip: Pip) -> list[dict[str, Any]]:
    """Each month of the PIP with the target metric as results arrive, and whether it met it."""
    target = target_of(pip)
    metric, op, value = target if target else ("attainment", ">=", Decimal("0.80"))
    catalog = load_catalog(session)
    out = []
    day = pip.start.replace(day=1)
    while day <= pip.end:
        code = f"{day.year}-{day.month:02d}"
        figures = period_figures(session, code, pip.employee_id).get(pip.employee_id)
        actual = catalog.derive(dict(figures)).get(metric) if figures else None
        met = None
        if actual is not None:
            a = exact(actual)  # an attainment of 2/3 is compared as 2/3
            met = {">=": a >= value, ">": a > value, "<=": a <= value, "<": a < value}[op]
        out.append({"month": code, "metric": metric, "op": op, "target": value,
                    "actual": actual, "met": met})
        day = periods.add_months(day, 1)
    return out


# --- candidates --------------------------------------------------------------------------------

_CANDIDATE_STEPS = {"eligible": ("nominated", "declined"), "nominated": ("accepted", "declined")}


def move_candidate(session: Session, candidate_id: int, status: str, reason: str,
                   actor: str | None) -> Candidate:
    """Move a candidate on (managers nominate their own team; HR decides)."""
    cand = session.get(Candidate, candidate_id)
    if cand is None:
        raise NotFound(msg("candidate %(candidate_id)s does not exist", candidate_id=candidate_id))
    if not actor or actor == "system":
        raise PermissionDenied(msg("candidates are moved by HR or the team's manager"))
    user = get_user(session, actor)
    employee = session.get(Employee, cand.employee_id)
    if user.role == "sales_manager":
        if user.team_id != employee.team_id:
            raise PermissionDenied(msg("%(code)s is not in %(email)s's team", code=employee.code,
                                       email=user.email))
        if status != "nominated":
            raise PermissionDenied(msg("a manager nominates; HR accepts or declines"))
    elif user.role != "hr_admin":
        raise PermissionDenied(msg("user %(email)s is a %(role)s; HR or the team's manager "
                                   "moves candidates", email=user.email, role=user.role))
    if status not in _CANDIDATE_STEPS.get(cand.status, ()):
        raise LaurelError(msg("candidate %(id)s is %(status)s; it cannot become %(status2)s",
                              id=cand.id, status=cand.status, status2=status))
    if not (reason or "").strip():
        raise LaurelError(msg("candidate %(id)s, field reason: a reason is required", id=cand.id))
    before = {"status": cand.status}
    cand.status, cand.reason = status, reason.strip()
    cand.updated_by, cand.updated_at = user.email, dt.datetime.now(dt.UTC)
    audit(session, status, "candidate", cand.id,
          summary=msg("%(code)s %(status)s for %(program)s: %(reason)s", code=employee.code,
                      status=status, program=cand.program, reason=reason),
          before=before, after={"status": status, "reason": cand.reason}, actor=user.email)
    session.flush()
    return cand


def candidates(session: Session, team_id: int | None = None) -> list[Candidate]:
    stmt = (select(Candidate).join(Run, Run.id == Candidate.run_id)
            .join(Employee, Employee.id == Candidate.employee_id)
            .where(Run.status.in_(("approved", "locked"))))
    if team_id:
        stmt = stmt.where(Employee.team_id == team_id)
    return list(session.scalars(stmt.order_by(Candidate.id.desc())))
