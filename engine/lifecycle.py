"""A run's lifecycle after it is calculated: approve, lock, and the payroll export.

A run is approved by a comp_analyst or hr_admin other than the one who started it (the
built-in system user never approves); locking needs the approval first and locks the
run's period: its results and outcomes can no longer change.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db import audit
from engine.errors import LaurelError, PermissionDenied
from engine.models import Employee, Outcome, Run
from engine.runs import get_run
from engine.users import get_user

APPROVERS = ("comp_analyst", "hr_admin")
EXPORT_COLUMNS = ["run_id", "period", "employee_code", "employee_name", "rule_key", "kind",
                  "amount", "currency", "status"]


def _approver(session: Session, email: str | None, what: str) -> str:
    if not email or email == "system":
        raise PermissionDenied(f"the system user cannot {what} a run: use --as EMAIL")
    user = get_user(session, email)
    if user.role not in APPROVERS:
        raise PermissionDenied(f"user {user.email} is a {user.role}; only a comp_analyst or "
                               f"hr_admin can {what} a run")
    return user.email


def approve(session: Session, run_id: int, actor: str | None) -> Run:
    """Approve a calculated run; refused to the user who started it."""
    run = get_run(session, run_id)
    email = _approver(session, actor, "approve")
    if run.status != "calculated":
        raise LaurelError(f"run {run.id} is {run.status}; only a calculated run can be approved")
    if email.lower() == (run.started_by or "").lower():
        raise PermissionDenied(f"run {run.id} was started by {email}: another person must "
                               "approve it")
    run.status, run.approved_by = "approved", email
    audit(session, "approve", "run", run.id, summary=f"run {run.id} approved",
          before={"status": "calculated"}, after={"status": "approved", "approved_by": email})
    session.flush()
    return run


def lock(session: Session, run_id: int, actor: str | None) -> Run:
    """Lock an approved run and its period."""
    run = get_run(session, run_id)
    email = _approver(session, actor, "lock")
    if run.status != "approved":
        raise LaurelError(f"run {run.id} is {run.status}; approve it before locking")
    run.status, run.locked_by = "locked", email
    run.period.status = "locked"
    audit(session, "lock", "run", run.id, summary=f"run {run.id} and period "
          f"{run.period.code} locked", before={"status": "approved"},
          after={"status": "locked", "locked_by": email, "period": run.period.code})
    session.flush()
    return run


def export_lines(session: Session, run: Run) -> list[dict[str, Any]]:
    """One line per payable, held or forfeited amount, by employee code and rule."""
    rows = session.execute(
        select(Outcome, Employee.code, Employee.name)
        .join(Employee, Employee.id == Outcome.employee_id)
        .where(Outcome.run_id == run.id, Outcome.amount.is_not(None))
        .order_by(Employee.code, Outcome.rule_key, Outcome.id)).all()
    return [{"run_id": run.id, "period": run.period.code, "employee_code": code,
             "employee_name": name, "rule_key": o.rule_key, "kind": o.kind, "amount": o.amount,
             "currency": o.currency, "status": o.status} for o, code, name in rows]


def _check_exportable(run: Run, draft: bool) -> None:
    if run.status in ("approved", "locked"):
        return
    if run.status == "calculated" and draft:
        return
    if run.status == "calculated":
        raise LaurelError(f"run {run.id} is not approved yet: export it as a draft with "
                          "--draft, or approve it first")
    raise LaurelError(f"run {run.id} is {run.status} and cannot be exported")


def totals(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    out = {"payable": Decimal("0.00"), "held": Decimal("0.00"), "forfeited": Decimal("0.00")}
    for line in lines:
        out[line["status"]] = out.get(line["status"], Decimal("0.00")) + line["amount"]
    return out


def export(session: Session, run_id: int, fmt: str = "csv", draft: bool = False) -> bytes:
    """The payroll export of a run as CSV or XLSX: a header, the lines, totals rows."""
    run = get_run(session, run_id)
    _check_exportable(run, draft)
    lines = export_lines(session, run)
    sums = totals(lines)
    currency = lines[0]["currency"] if lines else "CNY"
    total_rows = [[run.id, run.period.code, "", "TOTAL", "", "", f"{amount:.2f}", currency,
                   status] for status, amount in sums.items()]
    is_draft = run.status == "calculated"
    note = (f"DRAFT: run {run.id} is not approved; do not pay from this file"
            if is_draft else None)
    body = [[line[c] if c != "amount" else f"{line['amount']:.2f}" for c in EXPORT_COLUMNS]
            for line in lines]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(body)
        writer.writerows(total_rows)
        if note:
            writer.writerow([note])
        return buf.getvalue().encode("utf-8")
    if fmt == "xlsx":
        import openpyxl
        from openpyxl.styles import Font

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.title = "DRAFT" if is_draft else "Payroll"
        sheet.append(EXPORT_COLUMNS)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in body:
            row = list(row)
            row[6] = Decimal(row[6])
            sheet.append(row)
        for row in total_rows:
            row = list(row)
            row[6] = Decimal(row[6])
            sheet.append(row)
            for cell in sheet[sheet.max_row]:
                cell.font = Font(bold=True)
        for r in range(2, sheet.max_row + 1):
            sheet.cell(row=r, column=7).number_format = "#,##0.00"
        if note:
            sheet.append([note])
        book.properties.created = dt.datetime(2000, 1, 1)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    raise LaurelError(f"unknown export format {fmt!r}: use csv or xlsx")
