"""A run's lifecycle after it is calculated: approve, lock, and the payroll export.

A run is approved by a comp_analyst or hr_admin other than the one who started it (the
built-in system user never approves); locking needs the approval first and locks the
run's period: its results and outcomes can no longer change. Approving, locking, adjusting
and reopening take the period's lock (periods.serialise) and read the run again under it:
a run discarded meanwhile, approved or locked by someone else meanwhile, or stale (its
results changed after it read them) is refused.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, or_, select
from sqlalchemy.orm import Session

from engine import bulk, clawbacks, compliance, followup, periods, rollup, runs, statements, wording
from engine.cells import CellError, csv_text, typed_amount
from engine.db import audit
from engine.errors import LaurelError, PermissionDenied
from engine.messages import msg
from engine.models import (
    LIVE_RUN,
    OPEN_FLAG_STATUSES,
    ORGANISATION_ENTRY,
    Adjustment,
    AuditLog,
    Employee,
    FlagCase,
    Level,
    Metric,
    Outcome,
    PayCode,
    Period,
    Rule,
    Run,
    Team,
)
from engine.runs import get_run, staleness
from engine.users import require_role

APPROVERS = ("comp_analyst", "hr_admin")
EXPORT_COLUMNS = ["run_id", "period", "employee_code", "employee_name", "rule_key", "kind",
                  "amount", "currency", "status"]


def _approver(session: Session, email: str | None, what: str) -> str:
    return require_role(session, email, APPROVERS, f"{what} a run").email


def _serialised(session: Session, run: Run) -> None:
    """Take the run's period lock and read the run again under it.

    Whatever happened before the lock (a newer run stored, another approval) is seen here.
    """
    periods.serialise(session, run.period_id)
    session.refresh(run)


def _not_live(session: Session, run: Run, verb: str, rule: str) -> LaurelError | None:
    """The refusal of a run that is not live (discarded, or of a locked period), or None."""
    period = run.period
    if run.status == "discarded":
        live = session.scalar(select(Run.id).where(
            Run.period_id == run.period_id, Run.status.in_(LIVE_RUN)).order_by(Run.id.desc()))
        by = msg(" (run %(live)s of period %(code)s replaced it)", live=live,
                 code=period.code) if live else ""
        return LaurelError(msg("run %(id)s is discarded%(by)s; %(rule)s", id=run.id, by=by,
                               rule=rule))
    if period.status == "locked" and run.status != "locked":
        return LaurelError(msg("period %(code)s is locked: run %(id)s cannot be %(verb)s",
                               code=period.code, id=run.id, verb=verb))
    return None


def _live_run(session: Session, run: Run, verb: str, rule: str) -> None:
    """Take the run's period lock, read the run again and refuse a run that is not live."""
    _serialised(session, run)
    refusal = _not_live(session, run, verb, rule)
    if refusal:
        raise refusal


def approval_refusal(session: Session, run: Run, email: str) -> LaurelError | None:
    """Why ``email`` may not approve the run as it is (approve raises it), or None.

    Only a live, calculated run is approved, by someone other than who started it, while
    its period's results are as it read them. The back office disables its button with this
    reason beside it.
    """
    refusal = _not_live(session, run, msg("approved"),
                        msg("only a calculated run can be approved"))
    if refusal:
        return refusal
    if run.status != "calculated":
        return LaurelError(msg("run %(id)s is %(status)s; only a calculated run can be approved",
                               id=run.id, status=run.status))
    if email.lower() == (run.started_by or "").lower():
        return PermissionDenied(msg("run %(id)s was started by %(email)s: another person must "
                                    "approve it", id=run.id, email=email))
    return staleness(session, run)


def approve(session: Session, run_id: int, actor: str | None) -> Run:
    """Approve a calculated run; refused to the user who started it, and when it is stale
    (approval_refusal)."""
    run = get_run(session, run_id)
    email = _approver(session, actor, "approve")
    _serialised(session, run)
    refusal = approval_refusal(session, run, email)
    if refusal:
        raise refusal
    run.status, run.approved_by = "approved", email
    followup.on_approve(session, run)
    audit(session, "approve", "run", run.id, summary=msg("run %(id)s approved", id=run.id),
          before={"status": "calculated"}, after={"status": "approved", "approved_by": email},
          actor=email)
    session.flush()
    return run


def _open_now(run: Run) -> tuple[Any, ...]:
    return FlagCase.run_id == run.id, FlagCase.status.in_(OPEN_FLAG_STATUSES)


def open_flags(session: Session, run: Run, limit: int | None = None) -> list[FlagCase]:
    """The run's flags still open or in review (the first ``limit`` of them, by id)."""
    stmt = select(FlagCase).where(*_open_now(run)).order_by(FlagCase.id)
    return list(session.scalars(stmt if limit is None else stmt.limit(limit)))


def lock_refusal(session: Session, run: Run) -> LaurelError | None:
    """Why the run may not be locked as it is (lock raises it), or None: only a live,
    approved run is locked, while its period's results are as it read them. The back office
    disables its button with this reason beside it.
    """
    refusal = _not_live(session, run, msg("locked"), msg("only an approved run can be locked"))
    if refusal:
        return refusal
    if run.status == "locked":
        return LaurelError(msg("run %(id)s is locked already", id=run.id))
    if run.status != "approved":
        return LaurelError(msg("run %(id)s is %(status)s; approve it before locking", id=run.id,
                               status=run.status))
    return staleness(session, run)


def lock(session: Session, run_id: int, actor: str | None,
         open_flags_reason: str | None = None) -> Run:
    """Lock an approved run and its period; refused when the run is stale.

    A run with flags still open or in review locks only "with open flags": with a written
    reason, kept in the audit log with the flags it left open. Their holds then wait for a
    decision after the lock (a dismissal is paid in the next run of the period kind).
    """
    run = get_run(session, run_id)
    email = _approver(session, actor, "lock")
    _serialised(session, run)
    refusal = lock_refusal(session, run)
    if refusal:
        raise refusal
    still_open = open_flags(session, run)
    reason = (open_flags_reason or "").strip()
    if still_open and not reason:
        raise LaurelError(
            msg("run %(id)s, field open_flags_reason: %(still_open)s flag(s) still open (flag "
                "%(value)s); lock with open flags and give a reason, or decide them first",
                id=run.id, still_open=len(still_open),
                value=', '.join(str(c.id) for c in still_open)))
    run.status, run.locked_by = "locked", email
    run.period.status = "locked"
    after: dict[str, Any] = {"status": "locked", "locked_by": email,
                             "period": run.period.code}
    if still_open:
        after.update(open_flags=[c.id for c in still_open], open_flags_reason=reason)
    audit(session, "lock", "run", run.id,
          summary=msg("run %(id)s and period %(period)s locked with %(n)s open flag(s): "
                      "%(reason)s", id=run.id, period=run.period.code, n=len(still_open),
                      reason=reason) if still_open else
          msg("run %(id)s and period %(period)s locked", id=run.id, period=run.period.code),
          before={"status": "approved"}, after=after, actor=email)
    session.flush()
    return run


@dataclass
class OrgChange:
    """A change to the organisation made since a run began: its audit entry, and the id of
    the record it changed while that record is there (its page)."""

    entry: AuditLog
    record_id: int | None = None


@dataclass
class Checklist:
    """What a person closing the period checks before approving or locking a run."""

    run: Run
    # the first open flags (by id) and how many there are in all
    open_flags: list[FlagCase] = field(default_factory=list)
    open_flag_count: int = 0
    drafts: list[Rule] = field(default_factory=list)
    warnings: int = 0
    warning_lines: list[tuple[str, str, str]] = field(default_factory=list)
    # the first employees with no results (by code) and how many there are in all
    missing: list[Employee] = field(default_factory=list)
    missing_count: int = 0
    previous: Run | None = None
    # False when the runs are too large to compare on every view of the page
    # (COMPARED_ON_PAGE): the comparison has its own page.
    changes_compared: bool = True
    # What this run carried over from the runs it discarded (its audit entry):
    # {"runs": [...], "flags": {"carried": n, "reopened": n, "cleared": n, "opened": n}
    #  (flags_carried), "pips": {"carried": [...], "dropped": [...]}, "adjustments": [...]}
    carried: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    change_totals: dict[str, Decimal] = field(default_factory=dict)
    # Salespeople's inquiries about the period still open or in review (engine.inquiries).
    inquiries: list[Any] = field(default_factory=list)
    # Rules whose version in force for the period is no longer the one the run used
    # (published, changed or retired since): {"key", "name", "was", "now"}, a version or
    # None; a new run of the period would use the "now" versions.
    rules_changed: list[dict[str, Any]] = field(default_factory=list)
    # Employees, teams, levels and metrics changed since the run began (org_changed_since):
    # the first ones and how many there are in all; a new run would read them as they are.
    org_changed: list[OrgChange] = field(default_factory=list)
    org_changed_count: int = 0

    @property
    def clear(self) -> bool:
        return not (self.open_flags or self.drafts or self.warnings or self.missing
                    or self.inquiries or self.rules_changed or self.org_changed_count)

    def rule_keys(self) -> set[str]:
        """The rule keys its lists name (flags, warnings, inquiries): a page names them
        (engine.plain.rule_names)."""
        return ({c.rule_key for c in self.open_flags} | {k for _c, k, _v in self.warning_lines}
                | {q.rule_key for q in self.inquiries if q.rule_key})


# Runs of more employees than this are not compared line by line on every view of their
# page (a run of 1,000,000 employees has millions of lines): the checklist links to the
# comparison instead.
COMPARED_ON_PAGE = 20_000


def checklist(session: Session, run: Run, most: int = rollup.MISSING_KEPT) -> Checklist:
    """The period-close checklist of a run: open flags, drafts awaiting approval that take
    effect in the period, warnings, employees with no results, changes since the last run,
    salespeople's inquiries about the period still open, rules and the organisation
    changed since the run was made.

    ``most`` bounds the lists of flags, warnings, employees and changes to the organisation
    shown (the counts are whole): the page of a run of any size reads a bounded number of
    rows.
    """
    from engine.authoring import awaiting_approval

    period = run.period
    from engine.inquiries import queue as inquiry_queue

    out = Checklist(run, open_flags=open_flags(session, run, limit=most),
        open_flag_count=compliance.counted(session, OPEN_FLAG_STATUSES, [run.id]),
        inquiries=inquiry_queue(session, "active", period_id=run.period_id))
    out.rules_changed = rules_changed_since(session, run)
    out.org_changed_count, out.org_changed = org_changed_since(session, run, most)
    out.drafts = [r for r in awaiting_approval(session) if r.period_kind == period.kind
                  and (r.effective_from is None or r.effective_from <= period.end)
                  and (r.effective_to is None or r.effective_to >= period.start)]
    stored = ((run.summary or {}).get("totals") or {}).get("counts")
    out.warnings = stored.get("warning", 0) if stored is not None else session.scalar(
        select(func.count()).select_from(Outcome).where(
            Outcome.run_id == run.id, Outcome.kind == "warning")) or 0
    out.warning_lines = [tuple(r) for r in session.execute(
        select(Employee.code, Outcome.rule_key, Outcome.value)
        .join(Employee, Employee.id == Outcome.employee_id)
        .where(Outcome.run_id == run.id, Outcome.kind == "warning")
        .order_by(Employee.code, Outcome.rule_key).limit(most))]
    out.missing_count, out.missing = missing_results(session, run, most)
    out.previous = session.scalar(select(Run).where(
        Run.period_id == run.period_id, Run.id < run.id, Run.status != "failed")
        .order_by(Run.id.desc()).limit(1))
    # The run's audit entry names every flag case it opened (855,468 ids in a run of
    # 1,000,000 employees): read only where an earlier run of the period was discarded.
    stored: dict[str, Any] = {}
    if session.scalar(select(Run.id).where(Run.period_id == run.period_id, Run.id < run.id,
                                           Run.status == "discarded").limit(1)):
        stored = session.scalar(select(AuditLog.after).where(
            AuditLog.entity == "run", AuditLog.action == "run",
            AuditLog.entity_id == str(run.id)).limit(1)) or {}
    if stored.get("discarded_runs"):
        out.carried = {"runs": stored["discarded_runs"],
                       "flags": flags_carried(stored.get("flags") or {}),
                       "pips": stored.get("pips") or {},
                       "adjustments": stored.get("adjustments_carried") or []}
    if out.previous is not None and max(run.employee_count or 0,
                                        out.previous.employee_count or 0) > COMPARED_ON_PAGE:
        out.changes_compared = False
    elif out.previous is not None:
        rows = statements.diff_runs(session, out.previous, run)
        out.changes = {c: sum(1 for r in rows if r["change"] == c)
                       for c in ("added", "removed", "changed")}
        out.change_totals = statements.diff_totals(rows)
    return out


def flags_carried(flags: dict[str, Any]) -> dict[str, int]:
    """How many flag cases a run's audit entry says it carried over, reopened, cleared
    and opened (engine.compliance.carry_cases): counted there, or, in the entries of runs
    stored before, listed by id."""
    def count(value: Any) -> int:
        if isinstance(value, list):
            return len(value)
        if isinstance(value, dict):  # carried: by status; opened: {"count", ...}
            return value["count"] if "count" in value else sum(value.values())
        return int(value or 0)
    return {k: count(flags.get(k)) for k in ("carried", "reopened", "cleared", "opened")}


def missing_results(session: Session, run: Run, most: int) -> tuple[int, list[Employee]]:
    """How many employees have no results for the run's period (nor a period below it),
    and the first ``most`` of them by code. One in the run whose rows were deleted since is
    missing too (the run is stale).

    From what the run kept when it was stored (rollup.results_cover, in Run.summary) while
    the period's results are as they were then: the employees counted, and those added
    since looked at on their own. Else, or when the kept list lost an employee it needed
    (deleted), worked out from every employee.
    """
    kept = (run.summary or {}).get("results")
    version = session.scalar(select(Period.results_version).where(Period.id == run.period_id))
    if kept is not None and kept["version"] == version:
        first = kept["first_missing"]
        present = {e.id: e for e in session.scalars(select(Employee).where(
            Employee.id.in_(first)))} if first else {}
        added = (Employee.id > kept["last_employee"], rollup.without_results(run.period.code))
        complete = kept["missing"] <= len(first)  # the kept list names every one missing
        if complete:  # those of them still there, and those added since
            count = len(present) + (session.scalar(
                select(func.count()).select_from(Employee).where(*added)) or 0)
        else:
            count = (session.scalar(select(func.count()).select_from(Employee)) or 0) \
                - kept["with_results"]
        if not count:
            return 0, []
        # the kept list holds every one missing then, or the first ``most`` still exist
        if complete or (most <= len(first) and all(i in present for i in first[:most])):
            listed = list(present.values())
            listed += session.scalars(select(Employee).where(*added)
                                      .order_by(Employee.code).limit(most))
            return count, sorted(listed, key=lambda e: e.code)[:most]
    missing = rollup.without_results(run.period.code)
    count = session.scalar(select(func.count()).select_from(Employee).where(missing)) or 0
    return count, list(session.scalars(select(Employee).where(missing)
                                       .order_by(Employee.code).limit(most))) if count else []


def rules_changed_since(session: Session, run: Run) -> list[dict[str, Any]]:
    """The rules whose version in force on the run's period's last day differs from the one
    the run used: published, replaced or retired since the run was made."""
    from engine.rulebook import published_rules

    period = run.period
    used = {u["key"]: u.get("version") for u in run.rules or [] if isinstance(u, dict)}
    now = {r.key: r for r in published_rules(session, period.kind, on=period.end)}
    out = []
    for key in sorted(set(used) | set(now)):
        rule = now.get(key)
        version = rule.version if rule is not None else None
        if used.get(key) != version:
            definition = (rule.definition or {}) if rule is not None else {}
            out.append({"key": key, "name": definition.get("name") or key,
                        "name_zh": definition.get("name_zh") or "",
                        "was": used.get(key), "now": version})
    return out


# The record an audit entry of the organisation names (the entry's id, as text).
_ORGANISATION_RECORDS: dict[str, Any] = {"employee": Employee, "level": Level,
                                         "metric": Metric, "team": Team}


def org_changed_since(session: Session, run: Run, most: int = rollup.MISSING_KEPT
                      ) -> tuple[int, list[OrgChange]]:
    """How many changes to the organisation (audit entries of employees, teams, levels and
    metrics: edited, created or deleted one by one, or an import of employees) were made
    since the run began, and the first ``most`` of them in the order they were made.

    Since it began, not since it finished: a change made while it calculated may or may
    not have been read. An employee's own change counts only when they have results for
    the period (or a period below it): anyone else is in no run of it (an employee with
    results cannot be deleted). An import counts whoever it changed (one entry a file).
    """
    digits = AuditLog.entity_id.regexp_match("^[0-9]{1,18}$")
    employee = case((digits, cast(AuditLog.entity_id, BigInteger)))
    # the index's own condition, written as it is (ix_audit_log_organisation): SQLite and
    # PostgreSQL read the index only for a query that states it
    since = (ORGANISATION_ENTRY, AuditLog.at >= run.started_at,
             or_(AuditLog.entity != "employee", AuditLog.action == "import",
                 rollup.with_results(run.period.code, employee)))
    count = session.scalar(select(func.count()).select_from(AuditLog).where(*since)) or 0
    if not count:
        return 0, []
    entries = list(session.scalars(select(AuditLog).where(*since)
                                   .order_by(AuditLog.at, AuditLog.id).limit(most)))
    changes = [OrgChange(e, int(e.entity_id) if e.action != "delete"
                         and e.entity_id.isascii() and e.entity_id.isdigit() else None)
               for e in entries]
    named: dict[str, set[int]] = {}
    for c in changes:
        if c.record_id is not None:
            named.setdefault(c.entry.entity, set()).add(c.record_id)
    there = {(entity, i) for entity, ids in named.items()
             for i in session.scalars(select(_ORGANISATION_RECORDS[entity].id).where(
                 _ORGANISATION_RECORDS[entity].id.in_(ids)))}
    for c in changes:  # deleted since: no page
        if (c.entry.entity, c.record_id) not in there:
            c.record_id = None
    return count, changes


def pay_codes(session: Session) -> dict[str, str]:
    """The pay code of each rule key HR mapped (PayCode)."""
    return dict(session.execute(select(PayCode.rule_key, PayCode.code)).all())


def iter_export_lines(session: Session, run: Run | RunRef) -> Iterator[dict[str, Any]]:
    """One line per payable, held or forfeited amount (adjustments included), by employee
    code, an employee's adjustments after the rest; streamed (runs.STREAM_BATCH rows read
    at a time), so that memory holds a batch whatever the run's size.

    Each line carries its pay code (the one HR mapped to its rule; a released hold takes
    its rule's, a clawback the one of the rule it corrects) and a note: where a released
    hold comes from, what a clawback corrects and why, an adjustment's reason, the
    days an amount was prorated for, the floor or cap that changed an amount and by how
    much.
    """
    codes = pay_codes(session)
    run_id, period = run.id, run.period.code
    code = bulk.in_code_order(session, Employee.code)
    outcomes = session.execute(
        select(Employee.code, Employee.name, Outcome.rule_key, Outcome.kind, Outcome.amount,
               Outcome.currency, Outcome.status, Outcome.value, Outcome.explanation)
        .join(Employee, Employee.id == Outcome.employee_id)
        .where(Outcome.run_id == run_id, Outcome.amount.is_not(None))
        .order_by(code, bulk.in_code_order(session, Outcome.rule_key), Outcome.id)
        .execution_options(yield_per=runs.STREAM_BATCH))
    adjustments = session.execute(
        select(Employee.code, Employee.name, Adjustment.amount, Adjustment.currency,
               Adjustment.reason)
        .join(Employee, Employee.id == Adjustment.employee_id)
        .where(Adjustment.run_id == run_id).order_by(code, Adjustment.id)
        .execution_options(yield_per=runs.STREAM_BATCH))

    def paid() -> Iterator[dict[str, Any]]:
        for emp, name, rule_key, kind, amount, currency, status, value, explanation in outcomes:
            explanation = explanation or {}
            released = explanation.get("released") or {}
            claw = explanation.get("clawback") or {}
            collected = explanation.get("collected") or {}
            rule = released.get("rule_key") or claw.get("rule_key") or \
                collected.get("rule_key") or rule_key
            calc = explanation.get("calc") or {}
            yield {"run_id": run_id, "period": period, "employee_code": emp,
                   "employee_name": name, "rule_key": rule_key, "kind": kind,
                   "amount": amount, "currency": currency, "status": status,
                   "pay_code": codes.get(rule, ""),
                   "note": released_note(released) if released else (value or "")
                   if rule_key == "released_hold"
                   # a clawback: the payment it corrects and why
                   else clawbacks.words(claw) if claw
                   else clawbacks.release_words(collected) if collected
                   # prorated, or a floor or cap changed the amount: say so, and by how much
                   else "; ".join([*wording.prorate_words(calc), *wording.limit_words(calc),
                                   *wording.signing_words(calc)])
                   if calc.get("limits") or calc.get("prorated") or calc.get("on_signing")
                   # a draw: what it paid or recovered, and the balance owed
                   else wording.draw_words(calc) if calc.get("type") == "draw"
                   else ""}

    def adjusted() -> Iterator[dict[str, Any]]:
        for emp, name, amount, currency, reason in adjustments:
            yield {"run_id": run_id, "period": period, "employee_code": emp,
                   "employee_name": name, "rule_key": "adjustment", "kind": "adjustment",
                   "amount": amount, "currency": currency, "status": "payable",
                   "pay_code": codes.get("adjustment", ""), "note": reason}

    yield from heapq.merge(paid(), adjusted(), key=lambda line: (
        line["employee_code"], line["rule_key"] == "adjustment"))


def export_lines(session: Session, run: Run) -> list[dict[str, Any]]:
    """iter_export_lines as a list."""
    return list(iter_export_lines(session, run))


def released_note(released: dict[str, Any]) -> str:
    """Where a released hold comes from, in a payroll file's words."""
    flags = ", ".join(str(i) for i in released.get("flags") or [])
    return (f"released hold of {released.get('rule_key')} from {released.get('period')} "
            f"(run {released.get('run_id')}; flag {flags} dismissed after the lock)")


def employee_named(session: Session, text: str) -> Employee:
    """The employee a person names: by code, by "CODE name" (as a search box offers it),
    or by a name no other employee has; LaurelError (field employee) otherwise."""
    typed = " ".join((text or "").split())
    if not typed:
        raise LaurelError(msg("adjustment, field employee: choose an employee (name or code)"))
    for code in dict.fromkeys((typed, typed.split(" ", 1)[0])):
        found = session.scalar(select(Employee).where(Employee.code == code))
        if found is None:
            found = session.scalar(select(Employee).where(
                func.lower(Employee.code) == code.lower()))
        if found is not None and (code == typed or typed.lower() == str(found).lower()):
            return found
    named = list(session.scalars(select(Employee).where(
        func.lower(Employee.name) == typed.lower()).order_by(Employee.code)))
    if len(named) == 1:
        return named[0]
    if named:
        raise LaurelError(msg("adjustment, field employee: %(named)s employees are named "
                              "%(typed)s (%(value)s): give the code", named=len(named),
                              typed=repr(typed), value=', '.join(e.code for e in named)))
    raise LaurelError(msg("adjustment, field employee: no employee has the code or name "
                          "%(typed)s", typed=repr(typed)))


def adjustment_amount(session: Session, run: Run, amount: Decimal | str) -> tuple[Decimal,
                                                                                 str]:
    """The amount of an adjustment to the run and its currency (the run's), read as people
    type it (cells.typed_amount: ``1,500``, ``1500元``, ``CN¥1,500.00``); LaurelError (field
    amount) when it is not a non-zero amount in cents below a trillion."""
    currency = session.scalar(select(Outcome.currency).where(
        Outcome.run_id == run.id, Outcome.currency.is_not(None)).limit(1)) or "CNY"
    try:
        value = typed_amount(str(amount), currency)
    except CellError as err:
        raise LaurelError(msg("adjustment, field amount: %(reason)s", reason=err.reason)) from None
    # the exponent first: 1e999999999 overflows any arithmetic on it
    if not value.is_finite() or value == 0 or value.adjusted() >= 12:
        raise LaurelError(msg("adjustment, field amount: give a non-zero amount below "
                              "1,000,000,000,000"))
    if value != value.quantize(Decimal("0.01")):
        raise LaurelError(msg("adjustment, field amount: at most two decimals"))
    return value, currency


def adjustment_reason(reason: str) -> str:
    """The reason of an adjustment, trimmed; LaurelError (field reason) when it is empty."""
    if not (reason or "").strip():
        raise LaurelError(msg("adjustment, field reason: a reason is required"))
    return reason.strip()


def add_adjustment(session: Session, run_id: int, employee_code: str, amount: Decimal | str,
                   reason: str, actor: str | None) -> Adjustment:
    """Add a manual line (amount, reason) to a calculated or approved run.

    Each field is read by its own check, which a form may ask one by one to say every
    refused field at once: the employee by code or name (employee_named), the amount as
    people type it (adjustment_amount), the reason (adjustment_reason).
    """
    run = get_run(session, run_id)
    email = _approver(session, actor, "adjust")
    _live_run(session, run, msg("adjusted"), msg("adjustments are refused"))
    if run.status not in ("calculated", "approved"):
        raise LaurelError(msg("run %(id)s is %(status)s: adjustments are refused", id=run.id,
                              status=run.status))
    if run.period.status == "locked":
        raise LaurelError(msg("period %(code)s is locked: adjustments are refused",
                              code=run.period.code))
    employee = employee_named(session, employee_code)
    value, currency = adjustment_amount(session, run, amount)
    adj = Adjustment(run_id=run.id, employee_id=employee.id, amount=value, currency=currency,
                     reason=adjustment_reason(reason), created_by=email)
    session.add(adj)
    session.flush()
    audit(session, "adjust", "run", run.id,
          summary=msg("run %(id)s: adjustment of %(currency)s %(amount)s for %(code)s",
                      id=run.id, currency=currency, amount=f"{value:.2f}", code=employee.code),
          after={"employee": employee.code, "amount": f"{value:.2f}", "reason": adj.reason},
          actor=email)
    session.flush()
    statements.store_totals(session, run)
    return adj


def reopen_period(session: Session, code: str, actor: str | None, reason: str) -> None:
    """Reopen a locked period (hr_admin only, with a written reason)."""
    period = periods.require(session, code)
    user = require_role(session, actor, ("hr_admin",), "reopen a locked period")
    period = periods.serialise(session, period.id)
    if period.status != "locked":
        raise LaurelError(msg("period %(code)s is not locked", code=code))
    if not (reason or "").strip():
        raise LaurelError(msg("period %(code)s, field reason: a written reason is required",
                              code=code))
    period.status = "open"
    audit(session, "reopen", "period", period.id,
          summary=msg("period %(code)s reopened: %(reason)s", code=code, reason=reason),
          before={"status": "locked"}, after={"status": "open", "reason": reason.strip()},
          actor=user.email)
    session.flush()


def export_draft(session: Session, run: Run) -> str | None:
    """Why a payroll file of the run must say DRAFT ("draft": not approved yet; "stale": an
    approved run whose period's results changed after it read them), or None when it may
    be paid from. A locked run is the record of what was paid: its file stays final."""
    if run.status == "calculated":
        return "draft"
    if run.status == "approved" and staleness(session, run) is not None:
        return "stale"
    return None


def _check_exportable(session: Session, run: Run, draft: bool) -> str | None:
    """The run's draft reason (export_draft) when the export is allowed, else the refusal."""
    if run.status not in ("calculated", "approved", "locked"):
        raise LaurelError(msg("run %(id)s is %(status)s and cannot be exported", id=run.id,
                              status=run.status))
    reason = export_draft(session, run)
    if reason is None or draft:
        return reason
    if reason == "draft":
        raise LaurelError(msg("run %(id)s is not approved yet: export it as a draft with "
                              "--draft, or approve it first", id=run.id))
    stale = staleness(session, run)
    raise LaurelError(msg("run %(id)s is stale: results of %(periods)s changed after this run "
                          "read them (%(how)s at %(when)s by %(by)s); start a new run, or "
                          "export this one as a draft with --draft", id=run.id,
                          periods=stale.periods, how=stale.how, by=stale.by or "?",
                          when=stale.at.strftime("%Y-%m-%d %H:%M UTC") if stale.at else "?"))


def totals(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    out = {"payable": Decimal("0.00"), "held": Decimal("0.00"), "forfeited": Decimal("0.00")}
    for line in lines:
        out[line["status"]] = out.get(line["status"], Decimal("0.00")) + line["amount"]
    return out


# The payroll file's columns: the contract's, then the pay code (CSV and XLSX); the XLSX
# file adds a note (a released hold's origin, an adjustment's reason, a floor or cap).
PAYROLL_COLUMNS = [*EXPORT_COLUMNS, "pay_code"]
XLSX_COLUMNS = [*PAYROLL_COLUMNS, "note"]
SUMMARY_COLUMNS = ["employee_code", "employee_name", "pay_code", "rule_keys", "payable",
                   "held", "forfeited", "currency"]
# What a person reads (the back office passes them in the reader's language).
LABELS = {"run_id": "Run", "period": "Period", "employee_code": "Employee code",
          "employee_name": "Employee name", "rule_key": "Rule", "kind": "Kind",
          "amount": "Amount", "currency": "Currency", "status": "Status",
          "pay_code": "Pay code", "note": "Note", "rule_keys": "Rules",
          "payable": "Payable", "held": "Held", "forfeited": "Forfeited",
          "sheet_payable": "Payable", "sheet_held": "Held and forfeited",
          "sheet_summary": "Summary", "total": "TOTAL",
          "draft": "DRAFT: run {run} is not approved; do not pay from this file",
          "stale": "DRAFT: run {run} is stale (its period's results changed after it read "
                   "them); do not pay from this file"}


def summary_rows(lines: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    """Per employee and pay component (its pay code, else its rule): the amounts by status;
    the lines come by employee (as iter_export_lines gives them), and so do the rows."""
    for code, mine in itertools.groupby(lines, key=lambda line: line["employee_code"]):
        groups: dict[str, dict[str, Any]] = {}
        for line in mine:
            component = line["pay_code"] or line["rule_key"]
            g = groups.setdefault(component, {
                "employee_name": line["employee_name"], "pay_code": line["pay_code"],
                "rules": [], "currency": line["currency"],
                **{s: Decimal("0.00") for s in ("payable", "held", "forfeited")}})
            if line["rule_key"] not in g["rules"]:
                g["rules"].append(line["rule_key"])
            g[line["status"]] += line["amount"]
        for _component, g in sorted(groups.items()):
            yield [code, g["employee_name"], g["pay_code"], ", ".join(g["rules"]),
                   g["payable"], g["held"], g["forfeited"], g["currency"]]


def _xlsx(session: Session, run: RunRef, note: str | None, labels: dict[str, str]
          ) -> Iterator[bytes]:
    """The XLSX payroll file, written sheet by sheet as the run's lines are read (each
    sheet reads them twice: for its columns' widths, then its cells)."""
    from engine.cells import xlsx_book, xlsx_pieces, xlsx_table

    sums = totals([])
    currency = ""
    for line in iter_export_lines(session, run):
        sums[line["status"]] += line["amount"]
        currency = currency or line["currency"]
    currency = currency or "CNY"
    label = {**LABELS, **labels}
    book = xlsx_book()
    amount, cur = XLSX_COLUMNS.index("amount"), XLSX_COLUMNS.index("currency")
    for title, statuses in ((label["sheet_payable"], ("payable",)),
                            (label["sheet_held"], ("held", "forfeited"))):
        sheet = book.create_sheet((f"DRAFT {title}" if note else title)[:31])
        xlsx_table(sheet, XLSX_COLUMNS, [label[c] for c in XLSX_COLUMNS],
                   lambda statuses=statuses: ([line[c] for c in XLSX_COLUMNS]
                                              for line in iter_export_lines(session, run)
                                              if line["status"] in statuses),
                   money={amount: cur},
                   totals=[[run.id, run.period.code, "", label["total"], "", "",
                            sums[status], currency, status, "", ""] for status in statuses])
        if note:
            sheet.append([note])
    sheet = book.create_sheet((f"DRAFT {label['sheet_summary']}" if note
                               else label["sheet_summary"])[:31])
    xlsx_table(sheet, SUMMARY_COLUMNS, [label[c] for c in SUMMARY_COLUMNS],
               lambda: summary_rows(iter_export_lines(session, run)),
               money={4: 7, 5: 7, 6: 7},
               totals=[["", label["total"], "", "", sums["payable"], sums["held"],
                        sums["forfeited"], currency]])
    if note:
        sheet.append([note])
    yield from xlsx_pieces(book)


def export(session: Session, run_id: int, fmt: str = "csv", draft: bool = False,
           totals_rows: bool | None = None, labels: dict[str, str] | None = None) -> bytes:
    """The payroll export of a run as CSV, XLSX or JSON.

    CSV: the header CONTRACT.md names plus ``pay_code`` at the end, one line per amount;
    totals rows only when ``totals_rows`` asks for them, so that a payroll system reading
    it never counts a total as a payment. XLSX: a sheet of payable lines, one of held and
    forfeited lines (each ending with its totals) and a summary per employee and pay
    component; headers in ``labels`` (English by default) with the column keys in a
    hidden first row; amounts as exact numbers in the currency's format (an amount a
    spreadsheet number cannot hold exactly is written as its exact digits, as text). A
    draft says so, in the sheets' names and under each table. JSON: the run, whether it is
    a draft, the lines (amounts as exact decimal strings) and the totals per status.
    """
    return b"".join(export_stream(session, run_id, fmt, draft, totals_rows, labels))


def export_stream(session: Session, run_id: int, fmt: str = "csv", draft: bool = False,
                  totals_rows: bool | None = None, labels: dict[str, str] | None = None
                  ) -> Iterator[bytes]:
    """export's file, piece by piece: a CSV file is written as its lines are read, so that
    memory holds a batch of lines whatever the run's size. Refusals come before the first
    piece."""
    run = get_run(session, run_id)
    reason = _check_exportable(session, run, draft)
    if fmt not in ("csv", "xlsx", "json"):
        raise LaurelError(msg("unknown export format %(fmt)s: use csv, xlsx or json",
                              fmt=repr(fmt)))
    # What the pieces read of the run, read now: a web answer sent piece by piece outlives
    # the request's transaction, and the run's attributes would be expired by then.
    ref = RunRef(run.id, run.status, RunRef.Period(run.period.code), reason)
    return _export_pieces(session, ref, fmt, totals_rows, labels)


@dataclass(frozen=True)
class RunRef:
    """The run an export is of, as plain values (its id, status and period's code, and why
    its file says DRAFT: export_draft)."""

    @dataclass(frozen=True)
    class Period:
        code: str

    id: int
    status: str
    period: Period
    draft: str | None = None


def _json_pieces(session: Session, run: RunRef, is_draft: bool) -> Iterator[bytes]:
    """The JSON export, written as its lines are read: the run, whether it is a draft, the
    lines (amounts as exact decimal strings), then the currency and the totals per status."""
    sums = totals([])
    currency = "CNY"
    head = json.dumps({"run_id": run.id, "period": run.period.code, "draft": is_draft})
    yield (head[:-1] + ', "lines": [').encode("utf-8")
    for n, line in enumerate(iter_export_lines(session, run)):
        sums[line["status"]] = sums.get(line["status"], Decimal("0.00")) + line["amount"]
        currency = line["currency"] if n == 0 else currency
        item = {c: f"{line[c]:.2f}" if c == "amount" else line[c]
                for c in [*PAYROLL_COLUMNS, "note"]}
        yield (("," if n else "") + "\n " + json.dumps(item, ensure_ascii=False)).encode("utf-8")
    tail = {"currency": currency,
            "totals": {status: f"{amount:.2f}" for status, amount in sums.items()}}
    yield ("\n], " + json.dumps(tail, ensure_ascii=False)[1:] + "\n").encode("utf-8")


def _export_pieces(session: Session, run: RunRef, fmt: str, totals_rows: bool | None,
                   labels: dict[str, str] | None) -> Iterator[bytes]:
    is_draft = run.draft is not None
    if fmt == "xlsx":
        note = ({**LABELS, **(labels or {})}[run.draft].format(run=run.id) if run.draft
                else None)
        yield from _xlsx(session, run, note, labels or {})
        return
    if fmt == "json":
        yield from _json_pieces(session, run, is_draft)
        return
    sums = totals([])
    currency: list[str] = []

    def rows() -> Iterator[list[Any]]:
        yield PAYROLL_COLUMNS
        for line in iter_export_lines(session, run):
            sums[line["status"]] = sums.get(line["status"], Decimal("0.00")) + line["amount"]
            if not currency:
                currency.append(line["currency"])
            # A name is written as it was imported; one a spreadsheet would run is
            # neutralised (csv_text).
            yield [f"{line['amount']:.2f}" if c == "amount" else line[c]
                   for c in PAYROLL_COLUMNS]

    for piece in csv_text(rows(), runs.STREAM_BATCH):
        yield piece.encode("utf-8")
    end: list[list[Any]] = []
    if totals_rows:
        end += [[run.id, run.period.code, "", "TOTAL", "", "", f"{amount:.2f}",
                 (currency or ["CNY"])[0], status, ""] for status, amount in sums.items()]
    if run.draft:
        end.append([LABELS[run.draft].format(run=run.id)])
    for piece in csv_text(end):
        yield piece.encode("utf-8")
