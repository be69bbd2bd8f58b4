"""One-to-ones: a manager's feedback talk with a team member.

The manager of the employee's team (or HR) records a talk: strengths, gaps, the actions
agreed with their dates, and a coach (a senior colleague). The employee reads it on the
portal and acknowledges it. A talk held while the employee has a PIP running is that
PIP's check-in for the month: the PIP's page lists its months with their talks
(engine.portal.checkins). Every record and acknowledgement is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db import audit
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.messages import msg
from engine.models import Employee, Pip, Talk, User
from engine.users import get_user

RECORDERS = ("sales_manager", "hr_admin")
READERS = (*RECORDERS, "auditor")


def _employee(session: Session, code: str, field: str) -> Employee:
    employee = session.scalar(select(Employee).where(Employee.code == (code or "").strip()))
    if employee is None:
        raise LaurelError(msg("one-to-one, field %(field)s: no employee has the code %(code)s",
                              field=field, code=repr(code)))
    return employee


def _may_record(user: User, employee: Employee) -> None:
    if user.role == "hr_admin":
        return
    if user.role == "sales_manager" and user.team_id == employee.team_id \
            and (user.email or "").lower() != (employee.email or "").lower():
        return
    raise PermissionDenied(msg("%(email)s cannot record a one-to-one with %(code)s: the manager "
                               "of the employee's team does", email=user.email,
                               code=employee.code))


def actions_from(pairs: Iterable[tuple[str, str]], first: int = 1) -> list[dict[str, str]]:
    """Agreed actions from (text, ISO date) pairs, numbered from ``first`` (the field a
    refusal names); blank pairs are left out."""
    out = []
    for number, (text, due) in enumerate(pairs, start=first):
        text, due = (text or "").strip(), (due or "").strip()
        if not text and not due:
            continue
        if not text:
            raise LaurelError(msg("one-to-one, field action_%(number)s: say what was agreed",
                                  number=number))
        try:
            day = dt.date.fromisoformat(due)
        except ValueError:
            raise LaurelError(msg("one-to-one, field due_%(number)s: give the date it is due "
                                  "(YYYY-MM-DD)", number=number)) from None
        out.append({"text": text, "due": day.isoformat()})
    return out


def record(session: Session, actor: str | None, employee_code: str, held_on: dt.date,
           strengths: str, gaps: str, actions: list[dict[str, str]],
           coach_code: str | None = None) -> Talk:
    """Record a one-to-one; one held during a running PIP is its check-in."""
    if not actor or actor == "system":
        raise PermissionDenied(msg("the system user records no one-to-one: use --as EMAIL"))
    user = get_user(session, actor)
    employee = _employee(session, employee_code, "employee")
    _may_record(user, employee)
    if not (strengths or "").strip() and not (gaps or "").strip():
        raise LaurelError(msg("one-to-one, field strengths: write the strengths or the gaps "
                              "talked about"))
    coach = _employee(session, coach_code, "coach") if (coach_code or "").strip() else None
    if coach is not None and coach.id == employee.id:
        raise LaurelError(msg("one-to-one, field coach: the coach is someone else"))
    pip = session.scalar(select(Pip).where(
        Pip.employee_id == employee.id, Pip.status.in_(("active", "extended")),
        Pip.start <= held_on, Pip.end >= held_on).order_by(Pip.id.desc()).limit(1))
    talk = Talk(employee_id=employee.id, held_on=held_on, held_by=user.email,
                strengths=(strengths or "").strip(), gaps=(gaps or "").strip(),
                actions=actions, coach_id=coach.id if coach else None,
                pip_id=pip.id if pip else None)
    session.add(talk)
    session.flush()
    audit(session, "record", "talk", talk.id,
          summary=msg("one-to-one %(id)s with %(code)s on %(day)s (check-in of PIP %(pip)s)",
                      id=talk.id, code=employee.code, day=held_on.isoformat(), pip=pip.id)
          if pip else msg("one-to-one %(id)s with %(code)s on %(day)s", id=talk.id,
                          code=employee.code, day=held_on.isoformat()),
          after={"employee": employee.code, "held_on": held_on.isoformat(),
                 "actions": len(actions), "coach": coach.code if coach else None,
                 "pip": pip.id if pip else None}, actor=user.email)
    return talk


def get(session: Session, talk_id: int, actor: str | None) -> Talk:
    """The talk, for its employee, the team's manager, HR or the auditor; else NotFound."""
    talk = session.get(Talk, talk_id)
    if talk is None or not actor or actor == "system":
        raise NotFound(msg("one-to-one %(talk_id)s does not exist", talk_id=talk_id))
    user = get_user(session, actor)
    employee = talk.employee
    if user.role == "sales_rep" and user.employee_id == employee.id:
        return talk
    if user.role in ("hr_admin", "auditor"):
        return talk
    if user.role == "sales_manager" and user.team_id == employee.team_id:
        return talk
    raise NotFound(msg("one-to-one %(talk_id)s does not exist", talk_id=talk_id))


def acknowledge(session: Session, talk_id: int, actor: str | None) -> Talk:
    """The employee acknowledges the talk (once)."""
    talk = get(session, talk_id, actor)
    user = get_user(session, actor)  # type: ignore[arg-type]
    if user.role != "sales_rep" or user.employee_id != talk.employee_id:
        raise PermissionDenied(msg("only the employee acknowledges their one-to-one"))
    if talk.acknowledged_at is not None:
        raise LaurelError(msg("one-to-one %(id)s was acknowledged already", id=talk.id))
    talk.acknowledged_at, talk.acknowledged_by = dt.datetime.now(dt.UTC), user.email
    audit(session, "acknowledge", "talk", talk.id,
          summary=msg("one-to-one %(id)s acknowledged by %(email)s", id=talk.id,
                      email=user.email),
          after={"acknowledged_at": talk.acknowledged_at.isoformat()}, actor=user.email)
    session.flush()
    return talk


def listing(session: Session, team_id: int | None = None, employee_id: int | None = None
            ) -> list[Talk]:
    stmt = select(Talk).join(Employee, Employee.id == Talk.employee_id)
    if team_id is not None:
        stmt = stmt.where(Employee.team_id == team_id)
    if employee_id is not None:
        stmt = stmt.where(Talk.employee_id == employee_id)
    return list(session.scalars(stmt.order_by(Talk.held_on.desc(), Talk.id.desc())))

