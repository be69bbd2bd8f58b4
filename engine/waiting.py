"""What waits for a person: the work of their role that nobody has done yet.

Each role's home page lists it with counts: rule drafts to approve, runs to approve or
lock, salespeople's inquiries to answer, flags assigned to them or to nobody, PIPs whose
end needs a decision, promotion candidates to nominate or decide, review scores to enter
and review cycles to close. Nothing here changes anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import compliance
from engine.models import (
    LIVE_RUN,
    OPEN_INQUIRY_STATUSES,
    Candidate,
    Employee,
    FlagCase,
    Inquiry,
    Pip,
    Rule,
    Run,
    User,
)


@dataclass
class Waiting:
    """One kind of work: how much of it waits, and the first few of it."""

    key: str
    count: int
    items: list[dict[str, Any]] = field(default_factory=list)


def what_waits(session: Session, user: User, today: dt.date | None = None,
               most: int = 5) -> list[Waiting]:
    """The work waiting for this user's role, in the order of a period's close."""
    from engine.lifecycle import approval_refusal, lock_refusal

    today = today or dt.date.today()
    role, email = user.role, user.email.lower()
    out: list[Waiting] = []
    if role == "hr_admin":
        drafts = list(session.scalars(select(Rule).where(
            Rule.status == "draft", Rule.publish_requested_by.is_not(None))
            .order_by(Rule.publish_requested_at)))
        mine = [r for r in drafts if email in ((r.publish_requested_by or "").lower(),
                                               (r.created_by or "").lower())]
        others = [r for r in drafts if r not in mine]
        out.append(Waiting("drafts_to_approve", len(others), [
            {"key": r.key, "version": r.version, "name": r.name,
             "name_zh": (r.definition or {}).get("name_zh") or "",
             "by": r.publish_requested_by} for r in others[:most]]))
    if role in ("hr_admin", "comp_analyst"):
        runs = list(session.scalars(select(Run).where(Run.status.in_(("calculated",
                                                                      "approved")))
                                    .order_by(Run.id)))
        # what the engine would let them do (the same refusals as the steps)
        to_approve = [r for r in runs if approval_refusal(session, r, email) is None]
        to_lock = [r for r in runs if lock_refusal(session, r) is None]
        for key, found in (("runs_to_approve", to_approve), ("runs_to_lock", to_lock)):
            out.append(Waiting(key, len(found), [
                {"run_id": r.id, "period": r.period.code, "by": r.started_by}
                for r in found[:most]]))
    if role in ("hr_admin", "comp_analyst"):
        for key, where in (
                ("inquiries_assigned", (Inquiry.status == "in_review",
                                        func.lower(Inquiry.assignee) == email)),
                ("inquiries_unassigned", (Inquiry.status.in_(OPEN_INQUIRY_STATUSES),
                                          Inquiry.assignee.is_(None)))):
            found = list(session.scalars(select(Inquiry).where(*where).order_by(Inquiry.id)))
            out.append(Waiting(key, len(found), [
                {"inquiry_id": q.id, "code": q.employee.code, "name": q.employee.name,
                 "rule_key": q.rule_key, "run_id": q.run_id, "period": q.period.code}
                for q in found[:most]]))
    if role in ("hr_admin", "sales_manager"):
        from engine.reviews import waiting as reviews_waiting

        found_reviews = reviews_waiting(session, user)
        out.append(Waiting("review_cycles_to_close" if role == "hr_admin"
                           else "reviews_to_enter",
                           sum(r["count"] for r in found_reviews), found_reviews[:most]))
    if role == "compliance_officer":
        live = select(Run.id).where(Run.status.in_(LIVE_RUN))
        for key, where in (
                ("flags_assigned", (FlagCase.status == "in_review",
                                    func.lower(FlagCase.assignee) == email)),
                ("flags_unassigned", (FlagCase.status == "open",))):
            stmt = select(FlagCase).where(FlagCase.run_id.in_(live), *where)
            # the open ones of every live run: the counts kept with the runs
            count = compliance.counted(session, ["open"]) if key == "flags_unassigned" \
                else session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            out.append(Waiting(key, count, [
                {"case_id": c.id, "code": c.employee.code, "name": c.employee.name,
                 "rule_key": c.rule_key, "run_id": c.run_id, "period": c.period.code}
                for c in session.scalars(stmt.order_by(FlagCase.id).limit(most))]))
    if role == "hr_admin":
        ended = list(session.scalars(select(Pip).where(
            Pip.status.in_(("active", "extended")), Pip.end < today).order_by(Pip.end)))
        out.append(Waiting("pip_decisions", len(ended), [
            {"pip_id": p.id, "code": p.employee.code, "name": p.employee.name,
             "end": p.end} for p in ended[:most]]))
    if role in ("hr_admin", "sales_manager"):
        status = "nominated" if role == "hr_admin" else "eligible"
        stmt = (select(Candidate).join(Run, Run.id == Candidate.run_id)
                .join(Employee, Employee.id == Candidate.employee_id)
                .where(Run.status.in_(("approved", "locked")), Candidate.status == status))
        if role == "sales_manager":
            stmt = stmt.where(Employee.team_id == (user.team_id or -1))
        found = list(session.scalars(stmt.order_by(Candidate.id)))
        out.append(Waiting("candidates_to_decide" if role == "hr_admin"
                           else "candidates_to_nominate", len(found), [
            {"candidate_id": c.id, "code": c.employee.code, "name": c.employee.name,
             "program": c.program} for c in found[:most]]))
    return out
