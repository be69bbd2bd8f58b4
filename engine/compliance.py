"""The compliance review of flags, and how its decisions move money.

A case is one flag of one employee in one period: open -> in review (assigned to a
compliance officer) -> confirmed or dismissed, always with a written reason; a new run of
the period attaches to it with its history (carry_cases), and one that no longer raises
the flag closes it as "cleared" (no longer raised). A payout held by flags
is forfeited when any of its holding flags is confirmed, held while any is still open or
in review, and payable once all of them are dismissed. A run that is locked does not
change: a hold dismissed after the lock is paid as a "released hold" line in the
employee's next run of the same period kind; one confirmed after the lock pays nothing.
A released hold is paid once: by the live run that paid it first (``released_in_run_id``),
be it a later period's "released hold" line or a new run of its own period once reopened;
the other keeps the payout held, saying where it is paid.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import delete, exists, false, func, insert, literal, select, update
from sqlalchemy.orm import Session

from engine import bulk, periods, statements
from engine.db import audit, audit_all
from engine.errors import LaurelError, NotFound
from engine.messages import msg
from engine.models import (
    FLAG_STATUSES,
    LIVE_RUN,
    Employee,
    FlagCase,
    FlagCount,
    FlagNote,
    Outcome,
    Period,
    Run,
    User,
)
from engine.users import get_user, require_role

DECIDERS = ("compliance_officer",)
MAX_EVIDENCE = 10 * 1024 * 1024


def carry_cases(session: Session, run: Run, rules: Iterable[dict[str, Any]],
                actor: str = "system", analysed: bool = False) -> dict[str, Any]:
    """Attach the flags of a newly stored run to their cases, in the same transaction.

    A case is the employee's, the rule's and the period's: a flag raised again attaches to
    its case (history, notes, evidence, assignee and decision kept); a confirmed case keeps
    the payouts it holds forfeited and a dismissed one keeps them payable, with no second
    review. A case whose flag this run no longer raises is closed as "cleared" (no longer
    raised) by this run; raised again later, it returns to its decision, else to review.
    A flag raised for the first time opens a case. Set-based: a statement for each of these
    whatever the number of cases, and the counts of the period's runs kept (recount).

    Audited as an auditor reads a case: each change of a case's status (cleared, reopened)
    is an entry of its own, in the case's history; a case carried over as it was (its
    status, assignee and decision unchanged, only its run and flag outcome follow the new
    run) is counted in the run's entry (engine.runs.settle), as the run's entry counts the
    cases it opened: the runs that raised a case are its flag outcomes in the period's runs.
    Returns {"opened": {"count", "first_id", "last_id"} (the period's cases in that range),
    "carried": {status: count}, "reopened": count, "cleared": count, "cases_before": the
    period's highest case id before the run (the cases carried are the period's cases up to
    it whose flag the run raises), "from_runs": the runs the cases carried or reopened were
    attached to}; what is none left out.
    """
    holds = holding(rules)
    period_cases = FlagCase.period_id == run.period_id
    # the cases of the period's earlier runs (the run's own, where its chunks opened them,
    # are new: open_chunk_cases)
    before = session.scalar(select(func.max(FlagCase.id)).where(
        period_cases, FlagCase.run_id != run.id))
    done: dict[str, Any] = {}
    if before is not None:
        done = _carry_existing(session, run, holds, actor)
        done["cases_before"] = before
    opened = _open_cases(session, run, holds, first=before is None)
    if opened:
        done["opened"] = opened
    # what follows, the queue and the checklist read the run's cases by run and status at
    # once: without fresh statistics PostgreSQL reads a run of 171,039 cases as empty and
    # joins them with themselves in a nested loop (minutes). ``analysed``: a chunk of the
    # run refreshed them with half its cases in, which plans as well, where the run only
    # opened cases (its chunks did: open_chunk_cases)
    if not (analysed and set(done) <= {"opened"}):
        bulk.analyze(session, FlagCase.__table__, rows=cases_touched(done),
                     sample=bulk.RUN_SAMPLE)
    recount(session, run.period_id)
    if changes_outcomes(done):
        decided = select(FlagCase.employee_id).where(
            FlagCase.run_id == run.id, FlagCase.holds,
            FlagCase.status.in_(("confirmed", "dismissed")))
        apply_holds(session, run.id, decided)
        _pay_releases_here(session, run, set(session.scalars(decided)))
    return done


def changes_outcomes(done: dict[str, Any]) -> bool:
    """Whether carry_cases (of what it returned) set the status of the run's outcomes:
    cases carried or reopened hold or release the payouts of their decisions."""
    return bool(done.get("carried") or done.get("reopened"))


def cases_touched(done: dict[str, Any]) -> int:
    """How many cases a run's carry_cases opened, carried, reopened or cleared."""
    return (sum(done.get("carried", {}).values()) + done.get("reopened", 0)
            + done.get("cleared", 0) + (done.get("opened") or {}).get("count", 0))


def _carry_existing(session: Session, run: Run, holds: list[str], actor: str
                    ) -> dict[str, Any]:
    """The period's existing cases follow the new run: those it raises again attach to
    its flag outcomes (a cleared one reopens), the others are cleared; what happened,
    counted (carry_cases), the status changes audited case by case."""
    raised = (Outcome.run_id == run.id, Outcome.kind == "flag",
              Outcome.employee_id == FlagCase.employee_id, Outcome.rule_key == FlagCase.rule_key)
    period_cases = FlagCase.period_id == run.period_id
    reopened = session.execute(select(FlagCase.id, FlagCase.rule_key, FlagCase.run_id,
                                      _reopened_status())
                               .where(period_cases, FlagCase.status == "cleared", *raised)
                               .order_by(FlagCase.id)).all()
    cleared = session.execute(select(FlagCase.id, FlagCase.rule_key, FlagCase.run_id,
                                     FlagCase.status)
                              .where(period_cases, FlagCase.status != "cleared",
                                     ~exists().where(*raised))
                              .order_by(FlagCase.id)).all()
    carried = session.execute(select(FlagCase.status, FlagCase.run_id, func.count())
                              .where(period_cases, FlagCase.status != "cleared", *raised)
                              .group_by(FlagCase.status, FlagCase.run_id)).all()
    session.execute(update(FlagCase).where(period_cases, *raised).values(
        run_id=run.id, outcome_id=Outcome.id, severity=Outcome.value,
        holds=Outcome.rule_key.in_(holds),
        status=sql_case((FlagCase.status == "cleared", _reopened_status()),
                        else_=FlagCase.status)))
    # every case raised again is the new run's now: the rest that are not cleared yet are
    session.execute(update(FlagCase).where(period_cases, FlagCase.run_id != run.id,
                                           FlagCase.status != "cleared")
                    .values(status="cleared", run_id=run.id))
    audit_all(session, "carry", "flag", (
        (cid, _reopened_words(status in ("confirmed", "dismissed"), id=cid, key=key,
                              run=run.id, status=status),
         {"status": "cleared", "run": was}, {"status": status, "run": run.id})
        for cid, key, was, status in reopened), actor=actor)
    audit_all(session, "clear", "flag", (
        (cid, msg("flag %(id)s (%(key)s) no longer raised: run %(run)s cleared it", id=cid,
                  key=key, run=run.id),
         {"status": status, "run": was}, {"status": "cleared", "run": run.id})
        for cid, key, was, status in cleared), actor=actor)
    by_status: dict[str, int] = defaultdict(int)
    for status, _was, n in carried:
        by_status[status] += n
    out: dict[str, Any] = {"carried": dict(sorted(by_status.items())),
                           "reopened": len(reopened), "cleared": len(cleared),
                           "from_runs": sorted({was for _s, was, _n in carried}
                                               | {was for _c, _k, was, _s in reopened})}
    return {k: v for k, v in out.items() if v}


def _reopened_status() -> Any:
    """What a cleared case raised again returns to: its decision, else in review when it
    has an assignee, else open."""
    return sql_case((FlagCase.decision.is_not(None), FlagCase.decision),
                    (FlagCase.assignee.is_not(None), literal("in_review")),
                    else_=literal("open"))


def holding(rules: Iterable[dict[str, Any]]) -> list[str]:
    """The keys of the rules whose flags hold pay."""
    return sorted({r["key"] for r in rules if r.get("hold")})


def _flag_rows(run_id: int, period_id: int, holds: list[str]) -> tuple[tuple[str, ...], Any]:
    """(columns, query) of a new case for each flag outcome of the run, in the outcomes'
    order."""
    columns = ("outcome_id", "run_id", "period_id", "employee_id", "rule_key", "severity",
               "holds", "status", "decided_after_lock")
    flags = (select(Outcome.id, literal(run_id), literal(period_id), Outcome.employee_id,
                    Outcome.rule_key, Outcome.value, Outcome.rule_key.in_(holds),
                    literal("open"), false())
             .where(Outcome.run_id == run_id, Outcome.kind == "flag").order_by(Outcome.id))
    return columns, flags


def _open_cases(session: Session, run: Run, holds: list[str], first: bool
                ) -> dict[str, Any] | None:
    """A case for each flag of the run that has none, inserted from the outcomes in one
    statement, their ids in the outcomes' order (a case's id then says something of its
    employee and rule); how many, and the first and last id: the period's cases in that
    range are these (the period's lock). ``first``: the period's first flags, which the
    run's chunks may have opened already (open_chunk_cases); all the run's cases are new.
    None when there are none."""
    run_cases = select(func.count(), func.min(FlagCase.id), func.max(FlagCase.id)) \
        .where(FlagCase.run_id == run.id)
    if first:  # every flag has its case when there are as many cases (one a flag at most)
        count, low, high = session.execute(run_cases).one()
        if count and count == session.scalar(select(func.count()).select_from(Outcome).where(
                Outcome.run_id == run.id, Outcome.kind == "flag")):
            return {"count": count, "first_id": low, "last_id": high}
    columns, flags = _flag_rows(run.id, run.period_id, holds)
    # those that have none: a flag raised again is attached to its case by now
    # (_carry_existing), and the period's first may have been opened by the run's chunks
    flags = flags.where(~exists().where(FlagCase.outcome_id == Outcome.id))
    top = None if first else session.scalar(select(func.max(FlagCase.id)))
    # Every reference is held already: the outcomes are this run's, which none may delete
    # while the run's row is locked (this transaction updated it), their employees cannot
    # go while outcomes refer to them, and the run and its period are locked. So their
    # foreign keys' per-row checks are skipped where the session may (855,468 cases of a
    # 1,000,000-employee run: 26 s with them, 9 s without).
    with bulk.references_held(session, FlagCase.__table__):
        session.execute(insert(FlagCase).from_select(columns, flags))
    count, low, high = session.execute(run_cases.where(FlagCase.id > (top or 0))).one()
    return {"count": count, "first_id": low, "last_id": high} if count else None


def opens_cases_early(session: Session, run_id: int, period_id: int) -> bool:
    """Whether a run's chunks open its flags' cases as they store them: where the period
    has no case of another run (its first flags, nothing to carry over: carry_cases),
    else its last step opens them. No other run of the period runs meanwhile (the job's
    period), so no case of another run can come in between."""
    # each of the period's other runs looked up in the cases' index of runs (a period has
    # a few): asked as one query of the period's cases, PostgreSQL read every case the run
    # opened so far, in each chunk (53 ms with 800,000 cases, growing as the run went)
    others = session.scalars(select(Run.id).where(
        Run.period_id == period_id, Run.id != run_id,
        Run.status.not_in(("failed", "cancelled")))).all()  # those keep no outcome
    return not any(session.scalar(select(FlagCase.id).where(FlagCase.run_id == other)
                                  .limit(1)) is not None for other in others)


def open_chunk_cases(session: Session, run_id: int, period_id: int, holds: list[str],
                     first: int, last: int, chunk: int, skip: bool | None = None) -> None:
    """A case for each flag of a chunk's outcomes just stored (employees ``first`` to
    ``last``), in the chunk's transaction, where the run opens them early
    (opens_cases_early): the work spread among the workers, not done by the last step
    every worker waits for (855,468 cases: 9 s). Invisible until the run is stored (a
    case of a running run is nobody's to read or decide: visible); removed with the
    chunk's outcomes when the chunk is redone or the run fails."""
    columns, flags = _flag_rows(run_id, period_id, holds)
    # the chunk's outcomes, just stored: none has a case (nothing to look up in the cases,
    # which a chunk of a million-employee run would read whole)
    flags = flags.where(Outcome.employee_id.between(first, last), Outcome.chunk == chunk)
    # the chunk's outcomes are this transaction's, their employees locked (FOR KEY SHARE)
    # by _write_chunk where the checks are skipped; the run and its period stay (``skip``:
    # whether the session may skip them, bulk.may_skip_key_checks, asked already)
    with bulk.references_held(session, FlagCase.__table__, allowed=skip):
        session.execute(insert(FlagCase).from_select(columns, flags))


def visible(session: Session, case: FlagCase) -> bool:
    """Whether a case may be read or acted on: not one a running run opened early
    (open_chunk_cases), which is the run's once it is stored."""
    run = session.get(Run, case.run_id)
    return run is not None and run.status != "running"


def recount(session: Session, period_id: int) -> None:
    """Count the cases of the period's runs by status, rule and severity again
    (FlagCount): of every rule and severity a run holds a case of, every status, zero or
    not (count_move then only adds)."""
    runs = list(session.scalars(select(Run.id).where(Run.period_id == period_id)))
    if not runs:
        return
    session.execute(delete(FlagCount).where(FlagCount.run_id.in_(runs)))
    found = session.execute(
        select(FlagCase.run_id, FlagCase.rule_key, func.coalesce(FlagCase.severity, ""),
               FlagCase.status, func.count())
        .where(FlagCase.period_id == period_id)
        .group_by(FlagCase.run_id, FlagCase.rule_key, FlagCase.severity, FlagCase.status)
    ).all()
    counts = {(r, s, k, v): 0 for r, k, v in {(r, k, v) for r, k, v, _, _ in found}
              for s in FLAG_STATUSES}
    counts.update({(r, s, k, v): n for r, k, v, s, n in found})
    if counts:
        session.execute(insert(FlagCount), [
            {"run_id": r, "status": s, "rule_key": k, "severity": v, "cases": n}
            for (r, s, k, v), n in sorted(counts.items())])


def count_move(session: Session, case: FlagCase, old: str) -> None:
    """Keep the counts of the case's run in step with a change of its status from ``old``
    (one case: its run's count of ``old`` for its rule and severity less one, of its
    status now one more)."""
    if old == case.status:
        return
    for status, step in ((old, -1), (case.status, 1)):
        moved = session.execute(update(FlagCount).where(
            FlagCount.run_id == case.run_id, FlagCount.status == status,
            FlagCount.rule_key == case.rule_key,
            FlagCount.severity == (case.severity or ""))
            .values(cases=FlagCount.cases + step)).rowcount
        if not moved:  # counted before this status was one (recount writes every status)
            session.flush()
            recount(session, case.period_id)
            return


def counted(session: Session, statuses: Iterable[str] = FLAG_STATUSES,
            runs: Any = None, rule_key: str | None = None, severity: str | None = None
            ) -> int:
    """How many flag cases of these runs (a query of run ids; default: the live runs) are
    in these statuses, of the rule and the severity when given, from the kept counts
    (FlagCount): a sum of a few rows."""
    if runs is None:
        runs = select(Run.id).where(Run.status.in_(LIVE_RUN))
    where = [FlagCount.run_id.in_(runs), FlagCount.status.in_(list(statuses))]
    if rule_key is not None:
        where.append(FlagCount.rule_key == rule_key)
    if severity is not None:
        where.append(FlagCount.severity == severity)
    return session.scalar(select(func.coalesce(func.sum(FlagCount.cases), 0))
                          .where(*where)) or 0


def paid_elsewhere(session: Session, case: FlagCase, period_id: int) -> bool:
    """Whether a hold this case released after the lock is paid by a live run of another
    period than ``period_id`` (a "released hold" line there)."""
    if not (case.status == "dismissed" and case.decided_after_lock
            and case.released_in_run_id):
        return False
    paid = session.get(Run, case.released_in_run_id)
    return paid is not None and paid.status in LIVE_RUN and paid.period_id != period_id


def _pay_releases_here(session: Session, run: Run, employees: set[int]) -> None:
    """A new run of a reopened period that pays a hold released after the lock itself
    (no other live run pays it) becomes the run that pays it: a later period's run does
    not pay it again."""
    if not employees:
        return
    for case in session.scalars(select(FlagCase).where(
            FlagCase.run_id == run.id, FlagCase.holds, FlagCase.status == "dismissed",
            FlagCase.decided_after_lock)):
        if case.employee_id in employees and not paid_elsewhere(session, case, run.period_id):
            case.released_in_run_id = run.id
    session.flush()


def _reopened_words(decided: bool, **params: Any) -> str:
    """The audit summary of a cleared flag raised again by a new run. (Entries written
    before a carried case was counted in its run's entry say "carried over" in the same
    way: the catalogue keeps their words.)"""
    return (msg("flag %(id)s (%(key)s) raised again by run %(run)s: reopened, "
                "%(status)s (no second review)", **params) if decided else
            msg("flag %(id)s (%(key)s) raised again by run %(run)s: reopened, %(status)s",
                **params))


def _officer(session: Session, actor: str | None) -> User:
    return require_role(session, actor, DECIDERS, "work flags")


def _serialise(session: Session, case_ids: list[int]) -> None:
    """Take the locks of the cases' periods (in the order of their ids: two officers never
    wait on each other in a circle) and read the cases as the last holder left them.

    A run stored, approved, locked or reopened takes its period's lock too: a decision sees
    the case where that run left it, and whether its run is locked; two decisions at once
    on one case are one after the other, the second refused (the case is decided), and two
    on one run move its counts (FlagCount) and its figures one after the other.
    """
    period_ids = session.scalars(select(FlagCase.period_id).distinct()
                                 .where(FlagCase.id.in_(case_ids)))
    for period_id in sorted(period_ids):
        periods.serialise(session, period_id)
    session.execute(select(FlagCase).where(FlagCase.id.in_(case_ids))
                    .execution_options(populate_existing=True)).all()


def get_case(session: Session, case_id: int) -> FlagCase:
    case = session.get(FlagCase, case_id)
    if case is None or not visible(session, case):
        raise NotFound(msg("flag %(case_id)s does not exist", case_id=case_id))
    return case


def assign(session: Session, case_ids: Iterable[int], assignee: str, actor: str | None
           ) -> list[FlagCase]:
    """Assign open (or in-review) flags to a compliance officer: they go in review."""
    user = _officer(session, actor)
    case_ids = list(case_ids)
    if not case_ids:
        raise LaurelError(msg("flag, field flags: choose at least one flag"))
    if not (assignee or "").strip():
        raise LaurelError(msg("flag, field assignee: choose a compliance officer"))
    target = get_user(session, assignee)
    if target.role not in DECIDERS:
        raise LaurelError(msg("flag, field assignee: %(email)s is not a compliance officer",
                              email=target.email))
    cases = []
    for case_id in case_ids:
        get_case(session, case_id)  # an unknown one refused before any lock is taken
    _serialise(session, case_ids)
    for case_id in case_ids:
        case = get_case(session, case_id)
        if case.status not in ("open", "in_review"):
            raise LaurelError(msg("flag %(id)s is %(status)s: it cannot be assigned", id=case.id,
                                  status=case.status))
        run = session.get(Run, case.run_id)
        if run.status in ("discarded", "failed"):
            raise LaurelError(msg("flag %(id)s belongs to run %(id2)s, which is %(status)s",
                                  id=case.id, id2=run.id, status=run.status))
        before = {"status": case.status, "assignee": case.assignee}
        case.status, case.assignee = "in_review", target.email
        count_move(session, case, before["status"])
        audit(session, "assign", "flag", case.id,
              summary=msg("flag %(id)s (%(key)s) assigned to %(email)s", id=case.id,
                          key=case.rule_key, email=target.email),
              before=before, after={"status": case.status, "assignee": target.email},
              actor=user.email)
        cases.append(case)
    session.flush()
    return cases


def add_note(session: Session, case_id: int, actor: str | None, text: str = "",
             filename: str | None = None, content: bytes | None = None,
             content_type: str | None = None) -> FlagNote:
    """Attach a note or an evidence file to a flag."""
    user = _officer(session, actor)
    case = get_case(session, case_id)
    if not (text or "").strip() and not content:
        raise LaurelError(msg("flag note, field text: write a note or attach a file"))
    if content is not None and not filename:
        raise LaurelError(msg("flag note, field file: the file has no name"))
    if content is not None and len(content) > MAX_EVIDENCE:
        raise LaurelError(msg("flag note, field file: %(filename)s is larger than 10 MB",
                              filename=filename))
    note = FlagNote(case_id=case.id, author=user.email, text=(text or "").strip(),
                    filename=filename, content=content, content_type=content_type)
    session.add(note)
    audit(session, "note", "flag", case.id,
          summary=msg("note on flag %(id)s with evidence %(file)s", id=case.id, file=filename)
          if filename else msg("note on flag %(id)s", id=case.id),
          after={"text": note.text, "file": filename}, actor=user.email)
    session.flush()
    return note


def decision_refusal(session: Session, case: FlagCase) -> LaurelError | None:
    """Why the case may not be decided as it is (decide raises it), or None: only a flag in
    review is decided, and not on a run discarded or failed. The back office disables its
    button with this reason beside it.
    """
    if case.status != "in_review":
        return LaurelError(msg("flag %(id)s is %(status)s; it must be in review (assigned) "
                               "before a decision", id=case.id, status=case.status))
    run = session.get(Run, case.run_id, populate_existing=True)  # as the period's lock left it
    if run.status in ("discarded", "failed"):
        return LaurelError(msg("flag %(id)s belongs to run %(id2)s, which is %(status)s",
                               id=case.id, id2=run.id, status=run.status))
    return None


def decide(session: Session, case_id: int, decision: str, reason: str, actor: str | None
           ) -> FlagCase:
    """Confirm or dismiss a flag in review, with a written reason; money follows."""
    user = _officer(session, actor)
    _serialise(session, [get_case(session, case_id).id])
    case = get_case(session, case_id)
    if decision not in ("confirmed", "dismissed"):
        raise LaurelError(msg("flag %(id)s, field decision: confirm or dismiss", id=case.id))
    refusal = decision_refusal(session, case)
    if refusal:
        raise refusal
    if not (reason or "").strip():
        raise LaurelError(msg("flag %(id)s, field reason: a written reason is required",
                              id=case.id))
    run = session.get(Run, case.run_id)  # as decision_refusal read it, under the lock
    before = {"status": case.status}
    case.status, case.decision, case.reason = decision, decision, reason.strip()
    case.decided_by, case.decided_at = user.email, dt.datetime.now(dt.UTC)
    case.decided_after_lock = run.status == "locked"
    count_move(session, case, before["status"])
    audit(session, "decide", "flag", case.id,
          summary=msg("flag %(id)s (%(key)s) %(decision)s: %(reason)s", id=case.id,
                      key=case.rule_key, decision=decision, reason=case.reason),
          before=before, after={"status": decision, "reason": case.reason,
                                "after_lock": case.decided_after_lock}, actor=user.email)
    session.flush()
    if case.holds and run.status != "locked":
        apply_holds(session, run.id, [case.employee_id])
    return case


def hold_status(holding: list[str], cases: dict[str, str]) -> str:
    """The status of a payout held by these flags, given each flag's case status."""
    states = [cases.get(k, "open") for k in holding]
    if any(s == "confirmed" for s in states):
        return "forfeited"
    if all(s == "dismissed" for s in states):
        return "payable"
    return "held"


def apply_holds(session: Session, run_id: int, employees: Any) -> None:
    """Set the status of the employees' held payouts in the run from the flag decisions:
    ``employees`` their ids, or a query of them (a run carrying thousands of decided cases
    binds no list), read and written in a statement each whatever their number.

    A hold released after an earlier lock of the period and already paid by another
    period's run stays held here (paid_elsewhere).
    """
    period_id = session.scalar(select(Run.period_id).where(Run.id == run_id))
    cases: dict[int, dict[str, str]] = defaultdict(dict)
    for c in session.scalars(select(FlagCase).where(
            FlagCase.run_id == run_id, FlagCase.employee_id.in_(employees), FlagCase.holds)):
        cases[c.employee_id][c.rule_key] = ("paid_elsewhere"
                                            if paid_elsewhere(session, c, period_id)
                                            else c.status)
    moves, changed = [], []
    held_before: dict[int, bool] = defaultdict(bool)
    held_after: dict[int, bool] = defaultdict(bool)
    for oid, emp, amount, was, exp in session.execute(
            select(Outcome.id, Outcome.employee_id, Outcome.amount, Outcome.status,
                   Outcome.explanation)
            .where(Outcome.run_id == run_id, Outcome.employee_id.in_(employees),
                   Outcome.amount.is_not(None))):
        held_before[emp] |= was == "held"
        holding = (exp or {}).get("held_by")
        status = hold_status(holding, cases[emp]) if holding else was
        held_after[emp] |= status == "held"
        if was != status:
            moves.append((amount, was, status))
            changed.append({"id": oid, "status": status})
    if changed:
        session.execute(update(Outcome), changed)
    statements.move_status(session.get(Run, run_id), moves,
                           sum(held_after.values()) - sum(held_before.values()))
    session.flush()


def releases_for(session: Session, period: Period, employee_ids: Callable[[], set[int]]
                 ) -> dict[int, list[dict[str, Any]]]:
    """Held amounts of locked runs of earlier periods of this kind, since released, of the
    employees the function gives (asked only where a flag was dismissed after a lock:
    reading a period's population is a query of its own).

    A payout held in the latest locked run of its period is released when every flag that
    held it was dismissed after the lock and no live run has paid the release yet (a
    reopened period's new run that paid it itself included).
    """
    rows = session.execute(
        select(FlagCase, Period).join(Period, Period.id == FlagCase.period_id)
        .where(Period.kind == period.kind, Period.start < period.start, FlagCase.holds,
               FlagCase.status == "dismissed", FlagCase.decided_after_lock)).all()
    if not rows:
        return {}
    ids = employee_ids()
    # the population's ids filter here, not in the query: one bound parameter an employee
    # broke PostgreSQL past 65,535 employees, and a temporary table (bulk.ids_in) is a
    # write, which on SQLite takes the writer's lock before the period's (test_run_races)
    rows = [r for r in rows if r[0].employee_id in ids]
    if not rows:
        return {}
    # A live run of this same period is about to be discarded by the new one: what it paid
    # is paid again by the new run.
    paid_runs = {r.id for r in session.scalars(select(Run).where(
        Run.status.in_(LIVE_RUN), Run.period_id != period.id))}
    # a reopened period keeps its locked run beside the new ones: the latest locked one is
    # what was paid for the period
    latest = dict(session.execute(
        select(Run.period_id, func.max(Run.id)).where(
            Run.status == "locked", Run.period_id.in_({p.id for _, p in rows}))
        .group_by(Run.period_id)).all())
    by_run_emp: dict[tuple[int, int], dict[str, FlagCase]] = defaultdict(dict)
    info: dict[int, Period] = {}
    for case, per in rows:
        if per.id in latest:
            by_run_emp[(latest[per.id], case.employee_id)][case.rule_key] = case
            info[latest[per.id]] = per
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (run_id, emp), cases in sorted(by_run_emp.items()):
        per = info[run_id]
        for o in session.scalars(select(Outcome).where(
                Outcome.run_id == run_id, Outcome.employee_id == emp,
                Outcome.status == "held").order_by(Outcome.id)):
            holding = (o.explanation or {}).get("held_by") or []
            released = [cases[k] for k in holding if k in cases]
            if not holding or len(released) != len(holding):
                continue
            if any(c.released_in_run_id in paid_runs for c in released):
                continue
            out[emp].append({"case_ids": [c.id for c in released], "run_id": run_id,
                             "period": per.code, "rule_key": o.rule_key, "kind": o.kind,
                             "amount": o.amount, "currency": o.currency,
                             "held_by": holding})
    return out


def release_of(session: Session, case: FlagCase) -> dict[str, Any] | None:
    """Where a hold this case released after its run's lock is paid, or None.

    {"run_id": the run that pays it (None until one is stored), "period": that run's
    period, "kind": the period kind whose next run pays it}. None too while the case's
    own live run (a reopened period's) pays it as an ordinary payable line.
    """
    if not (case.holds and case.status == "dismissed" and case.decided_after_lock):
        return None
    run = session.get(Run, case.run_id)
    if run is None:
        return None
    paid = session.get(Run, case.released_in_run_id) if case.released_in_run_id else None
    if paid is not None and paid.status not in LIVE_RUN:
        paid = None
    if paid is None and run.status != "locked":
        return None
    return {"run_id": paid.id if paid else None, "period": paid.period.code if paid else None,
            "kind": run.period.kind}


def mark_released(session: Session, run_id: int, releases: dict[int, list[dict[str, Any]]]
                  ) -> None:
    ids = {cid for lines in releases.values() for line in lines for cid in line["case_ids"]}
    if ids:
        session.execute(update(FlagCase).where(
            FlagCase.id.in_(bulk.ids_in(session, "laurel_released_cases", ids)))
            .values(released_in_run_id=run_id))


def queue(session: Session, status: str | None = None, severity: str | None = None,
          rule_key: str | None = None, team_id: int | None = None,
          period_code: str | None = None, employee_code: str | None = None,
          include_discarded: bool = False, assignee: str | None = None,
          limit: int | None = None, offset: int = 0) -> list[FlagCase]:
    """Every flag of every run, filtered; newest first. ``assignee`` "none": nobody's.
    ``limit`` and ``offset`` give one page of it (queue_count: how many in all)."""
    stmt = queue_query(status, severity, rule_key, team_id, period_code, employee_code,
                       include_discarded, assignee)
    stmt = stmt.order_by(FlagCase.id.desc()).offset(offset)
    return list(session.scalars(stmt if limit is None else stmt.limit(limit)))


def distinct_values(session: Session, column: Any) -> list[Any]:
    """The values a column of flag cases holds, None left out, sorted: one look-up of the
    column's index a value (a loose index scan), where SELECT DISTINCT reads every case."""
    out = []
    value = session.scalar(select(func.min(column)))
    while value is not None:
        out.append(value)
        value = session.scalar(select(func.min(column)).where(column > value))
    return out  # ascending: each the least above the one before


def queue_count(session: Session, status: str | None = None, severity: str | None = None,
                rule_key: str | None = None, team_id: int | None = None,
                period_code: str | None = None, employee_code: str | None = None,
                include_discarded: bool = False, assignee: str | None = None) -> int:
    """How many flags the queue holds with these filters: from the counts kept with the
    runs (counted) when only the status, the period, the rule or the severity filter it,
    else counted in the database (a team's, an employee's or an assignee's cases, through
    their indexes)."""
    if not (team_id or employee_code or include_discarded or assignee):
        runs = select(Run.id).where(Run.status.in_(LIVE_RUN))
        if period_code:
            runs = runs.join(Period, Period.id == Run.period_id).where(
                Period.code == period_code)
        return counted(session, [status] if status else FLAG_STATUSES, runs,
                       rule_key or None, severity or None)
    stmt = queue_query(status, severity, rule_key, team_id, period_code, employee_code,
                       include_discarded, assignee)
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def queue_query(status: str | None = None, severity: str | None = None,
                rule_key: str | None = None, team_id: int | None = None,
                period_code: str | None = None, employee_code: str | None = None,
                include_discarded: bool = False, assignee: str | None = None) -> Any:
    """The query of ``queue``, unordered (queue and queue_count; the API pages it)."""
    # Joins only for the filters that need them, runs as a set of ids: the newest page of
    # a queue of a million flags is read from the flags' own key (queue orders by id).
    stmt = select(FlagCase)
    if not include_discarded:
        stmt = stmt.where(FlagCase.run_id.in_(select(Run.id).where(Run.status.in_(LIVE_RUN))))
    else:  # not the cases a running run opened early (visible)
        stmt = stmt.where(FlagCase.run_id.not_in(select(Run.id).where(Run.status == "running")))
    if status:
        stmt = stmt.where(FlagCase.status == status)
    if severity:
        stmt = stmt.where(FlagCase.severity == severity)
    if rule_key:
        stmt = stmt.where(FlagCase.rule_key == rule_key)
    if team_id:
        stmt = stmt.where(FlagCase.employee_id.in_(
            select(Employee.id).where(Employee.team_id == team_id)))
    if period_code:
        stmt = stmt.where(FlagCase.run_id.in_(
            select(Run.id).join(Period, Period.id == Run.period_id)
            .where(Period.code == period_code)))
    if employee_code:
        stmt = stmt.where(FlagCase.employee_id.in_(
            select(Employee.id).where(Employee.code == employee_code)))
    if assignee == "none":
        stmt = stmt.where(FlagCase.assignee.is_(None))
    elif assignee:
        stmt = stmt.where(func.lower(FlagCase.assignee) == assignee.lower())
    return stmt

