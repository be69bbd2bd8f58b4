"""A salesperson's questions about their statement, and the analysts' answers.

A salesperson asks about one line of one of their statements (or the statement as a
whole) with a message and attachments: the inquiry is open and waits in the analysts'
queue. An analyst assigns it (in review), replies, and closes it: resolved, with or
without an adjustment (added to the period's run that still takes adjustments, with the
inquiry named in its reason), or rejected with a reason. The salesperson reads every reply
and the answer. Every step is audited; open inquiries are on the period-close checklist
(engine.lifecycle.checklist).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import portal
from engine.compliance import MAX_EVIDENCE
from engine.db import audit
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.messages import msg
from engine.models import (
    OPEN_INQUIRY_STATUSES,
    Adjustment,
    Employee,
    Inquiry,
    InquiryMessage,
    Outcome,
    Run,
    User,
)
from engine.users import get_user, require_role

ANALYSTS = ("comp_analyst", "hr_admin")
# Who reads every inquiry (the auditor changes nothing).
READERS = (*ANALYSTS, "auditor")
MAX_ATTACHMENT = MAX_EVIDENCE  # an attachment is as large as a flag's evidence may be
MAX_ATTACHMENTS = 5
Attachment = tuple[str, str | None, bytes]  # file name, content type, content


def _messages(session: Session, inquiry: Inquiry, author: str, text: str,
              attachments: Iterable[Attachment], what: str) -> list[InquiryMessage]:
    files = [a for a in attachments if a[2]]
    if len(files) > MAX_ATTACHMENTS:
        raise LaurelError(msg("%(what)s, field file: at most %(max_attachments)s files at once",
                              what=what, max_attachments=MAX_ATTACHMENTS))
    for name, _type, content in files:
        if not name:
            raise LaurelError(msg("%(what)s, field file: the file has no name", what=what))
        if len(content) > MAX_ATTACHMENT:
            raise LaurelError(msg("%(what)s, field file: %(name)s is larger than 10 MB",
                                  what=what, name=name))
    text = (text or "").strip()
    out = [InquiryMessage(inquiry=inquiry, author=author, text=text)] if text else []
    out += [InquiryMessage(inquiry=inquiry, author=author, text="", filename=name[:200],
                           content_type=ctype or "application/octet-stream", content=content)
            for name, ctype, content in files]
    session.add_all(out)
    return out


def ask(session: Session, actor: str | None, run_id: int, text: str,
        outcome_id: int | None = None, adjustment_id: int | None = None,
        attachments: Iterable[Attachment] = ()) -> Inquiry:
    """A salesperson asks about a line of one of their statements."""
    employee, run = portal.own_run(session, actor, run_id)
    if not (text or "").strip():
        raise LaurelError(msg("inquiry, field text: write your question"))
    rule_key = ""
    if outcome_id is not None:
        outcome = session.get(Outcome, outcome_id)
        if outcome is None or outcome.run_id != run.id or outcome.employee_id != employee.id:
            raise NotFound(msg("line %(outcome_id)s is not on this statement",
                               outcome_id=outcome_id))
        rule_key = outcome.rule_key
    if adjustment_id is not None:
        adj = session.get(Adjustment, adjustment_id)
        if adj is None or adj.run_id != run.id or adj.employee_id != employee.id:
            raise NotFound(msg("line %(adjustment_id)s is not on this statement",
                               adjustment_id=adjustment_id))
        rule_key = "adjustment"
    email = get_user(session, actor).email  # type: ignore[arg-type]
    inquiry = Inquiry(run_id=run.id, period_id=run.period_id, employee_id=employee.id,
                      outcome_id=outcome_id, adjustment_id=adjustment_id, rule_key=rule_key,
                      status="open", asked_by=email, asked_at=dt.datetime.now(dt.UTC))
    session.add(inquiry)
    session.flush()
    _messages(session, inquiry, email, text, attachments, "inquiry")
    audit(session, "ask", "inquiry", inquiry.id,
          summary=msg("inquiry %(id)s: %(code)s asks about %(key)s of run %(run)s (%(period)s)",
                      id=inquiry.id, code=employee.code, key=rule_key, run=run.id,
                      period=run.period.code) if rule_key else
          msg("inquiry %(id)s: %(code)s asks about the statement of run %(run)s (%(period)s)",
              id=inquiry.id, code=employee.code, run=run.id, period=run.period.code),
          after={"run": run.id, "rule_key": rule_key, "text": text.strip()}, actor=email)
    session.flush()
    return inquiry


def get(session: Session, inquiry_id: int, actor: str | None) -> Inquiry:
    """The inquiry, for its salesperson or an analyst (or an auditor); NotFound otherwise."""
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None or not actor or actor == "system":
        raise NotFound(msg("inquiry %(inquiry_id)s does not exist", inquiry_id=inquiry_id))
    user = get_user(session, actor)
    if user.role == "sales_rep":
        if user.employee_id != inquiry.employee_id:
            raise NotFound(msg("inquiry %(inquiry_id)s does not exist", inquiry_id=inquiry_id))
    elif user.role not in READERS:
        raise PermissionDenied(msg("user %(email)s is a %(role)s; inquiries are read by "
                                   "analysts and HR", email=user.email, role=user.role))
    return inquiry


def _analyst(session: Session, actor: str | None, what: str) -> User:
    return require_role(session, actor, ANALYSTS, what)


def _open(inquiry: Inquiry) -> None:
    if inquiry.status not in OPEN_INQUIRY_STATUSES:
        raise LaurelError(msg("inquiry %(id)s is %(status)s: it takes no more changes",
                              id=inquiry.id, status=inquiry.status))


def add_message(session: Session, inquiry_id: int, actor: str | None, text: str,
                attachments: Iterable[Attachment] = ()) -> list[InquiryMessage]:
    """A reply of an analyst, or more from the salesperson, while the inquiry is open."""
    inquiry = get(session, inquiry_id, actor)
    user = get_user(session, actor)  # type: ignore[arg-type]
    if user.role not in (*ANALYSTS, "sales_rep"):
        raise PermissionDenied(msg("user %(email)s is a %(role)s: only the salesperson and the "
                                   "analysts write on an inquiry", email=user.email,
                                   role=user.role))
    _open(inquiry)
    files = list(attachments)
    if not (text or "").strip() and not any(c for _n, _t, c in files):
        raise LaurelError(msg("inquiry message, field text: write a message or attach a file"))
    out = _messages(session, inquiry, user.email, text, files, "inquiry message")
    audit(session, "reply", "inquiry", inquiry.id,
          summary=msg("inquiry %(id)s: message from %(email)s", id=inquiry.id,
                      email=user.email),
          after={"text": (text or "").strip(),
                 "files": [m.filename for m in out if m.filename]}, actor=user.email)
    session.flush()
    return out


def assign(session: Session, inquiry_ids: Iterable[int], assignee: str, actor: str | None
           ) -> list[Inquiry]:
    """Give open inquiries to an analyst: they are in review."""
    user = _analyst(session, actor, "assign inquiries")
    ids = list(inquiry_ids)
    if not ids:
        raise LaurelError(msg("inquiries, field inquiries: choose at least one inquiry"))
    target = get_user(session, assignee)
    if target.role not in ANALYSTS:
        raise LaurelError(msg("inquiries, field assignee: %(email)s is a %(role)s; inquiries go "
                              "to a comp_analyst or an hr_admin", email=target.email,
                              role=target.role))
    out = []
    for inquiry_id in ids:
        inquiry = get(session, inquiry_id, actor)
        _open(inquiry)
        before = {"status": inquiry.status, "assignee": inquiry.assignee}
        inquiry.status, inquiry.assignee = "in_review", target.email
        audit(session, "assign", "inquiry", inquiry.id,
              summary=msg("inquiry %(id)s assigned to %(email)s", id=inquiry.id,
                          email=target.email), before=before,
              after={"status": "in_review", "assignee": target.email}, actor=user.email)
        out.append(inquiry)
    session.flush()
    return out


def _adjustable_run(session: Session, inquiry: Inquiry) -> Run | None:
    """The run of the inquiry's period that still takes adjustments (calculated or approved,
    of an open period), if there is one."""
    run = session.scalar(select(Run).where(
        Run.period_id == inquiry.period_id, Run.status.in_(("calculated", "approved")))
        .order_by(Run.id.desc()).limit(1))
    return run if run is not None and run.period.status != "locked" else None


def adjustment_refusal(session: Session, inquiry: Inquiry) -> LaurelError | None:
    """Why the inquiry cannot be resolved with an adjustment now (resolve raises it when an
    amount is given), or None: its period has no run that takes adjustments (it is locked).
    The back office's resolve form then offers no amount, the reason beside it.
    """
    if _adjustable_run(session, inquiry) is not None:
        return None
    return LaurelError(
        msg("inquiry %(id)s, field amount: period %(code)s has no run that takes "
            "adjustments (it is locked: HR reopens it and a new run is started first)",
            id=inquiry.id, code=inquiry.period.code))


def resolve(session: Session, inquiry_id: int, actor: str | None, answer: str,
            amount: str | None = None) -> Inquiry:
    """Close an inquiry with an answer, and an adjustment when ``amount`` is given.

    The adjustment goes to the run of the inquiry's period that still takes adjustments
    (calculated or approved), with the inquiry in its reason (engine.lifecycle); a locked
    period takes none: HR reopens it first, or the answer explains.
    """
    from engine import lifecycle

    user = _analyst(session, actor, "resolve inquiries")
    inquiry = get(session, inquiry_id, actor)
    _open(inquiry)
    if not (answer or "").strip():
        raise LaurelError(msg("inquiry %(id)s, field answer: write the answer the salesperson "
                              "reads", id=inquiry.id))
    before = {"status": inquiry.status}
    adjustment = None
    if (amount or "").strip():
        refusal = adjustment_refusal(session, inquiry)
        if refusal:
            raise refusal
        run = _adjustable_run(session, inquiry)
        employee = session.get(Employee, inquiry.employee_id)
        adjustment = lifecycle.add_adjustment(
            session, run.id, employee.code, amount,  # type: ignore[arg-type, union-attr]
            f"inquiry {inquiry.id}: {answer.strip()}", user.email)
        inquiry.resolution_adjustment_id = adjustment.id
    inquiry.status, inquiry.answer = "resolved", answer.strip()
    inquiry.answered_by, inquiry.answered_at = user.email, dt.datetime.now(dt.UTC)
    after = {"status": "resolved", "answer": inquiry.answer}
    if adjustment is not None:
        after.update(adjustment=adjustment.id, run=adjustment.run_id,
                     amount=f"{adjustment.amount:.2f}")
    audit(session, "resolve", "inquiry", inquiry.id,
          summary=msg("inquiry %(id)s resolved with an adjustment of %(currency)s %(amount)s in "
                      "run %(run)s", id=inquiry.id, currency=adjustment.currency,
                      amount=f"{adjustment.amount:.2f}", run=adjustment.run_id)
          if adjustment else msg("inquiry %(id)s resolved without an adjustment", id=inquiry.id),
          before=before, after=after, actor=user.email)
    session.flush()
    return inquiry


def reject(session: Session, inquiry_id: int, actor: str | None, reason: str) -> Inquiry:
    """Close an inquiry as rejected, with the reason the salesperson reads."""
    user = _analyst(session, actor, "reject inquiries")
    inquiry = get(session, inquiry_id, actor)
    _open(inquiry)
    if not (reason or "").strip():
        raise LaurelError(msg("inquiry %(id)s, field reason: a written reason is required",
                              id=inquiry.id))
    before = {"status": inquiry.status}
    inquiry.status, inquiry.answer = "rejected", reason.strip()
    inquiry.answered_by, inquiry.answered_at = user.email, dt.datetime.now(dt.UTC)
    audit(session, "reject", "inquiry", inquiry.id,
          summary=msg("inquiry %(id)s rejected: %(answer)s", id=inquiry.id,
                      answer=inquiry.answer), before=before,
          after={"status": "rejected", "answer": inquiry.answer}, actor=user.email)
    session.flush()
    return inquiry


def queue(session: Session, status: str | None = None, assignee: str | None = None,
          period_id: int | None = None) -> list[Inquiry]:
    """Inquiries, newest first; ``status`` "active" is open or in review; ``assignee``
    "none" is nobody's."""
    stmt = select(Inquiry)
    if status == "active":
        stmt = stmt.where(Inquiry.status.in_(OPEN_INQUIRY_STATUSES))
    elif status:
        stmt = stmt.where(Inquiry.status == status)
    if assignee == "none":
        stmt = stmt.where(Inquiry.assignee.is_(None))
    elif assignee:
        stmt = stmt.where(func.lower(Inquiry.assignee) == assignee.lower())
    if period_id is not None:
        stmt = stmt.where(Inquiry.period_id == period_id)
    return list(session.scalars(stmt.order_by(Inquiry.id.desc())))


def of_employee(session: Session, employee_id: int) -> list[Inquiry]:
    return list(session.scalars(select(Inquiry).where(Inquiry.employee_id == employee_id)
                                .order_by(Inquiry.id.desc())))
