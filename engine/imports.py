"""Imports of employees and period results from CSV or XLSX (CONTRACT.md, Files).

A file is validated whole before anything is written: one bad row rejects the file and
the error names the file, the row (as a spreadsheet shows it: the header is row 1) and the
column. The caller's transaction is left untouched on error.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine import periods
from engine.db import audit
from engine.errors import ImportFileError, PeriodError
from engine.metrics import DECIMALS, range_problem
from engine.models import (
    TEAM_STAGES,
    Employee,
    Level,
    Metric,
    Period,
    Result,
    ResultRow,
    Team,
)

EMPLOYEE_COLUMNS = ["code", "name", "email", "team", "region", "level", "manager_code",
                    "hire_date", "team_stage"]
EMPLOYEE_REQUIRED = ["code", "name", "team", "level"]


@dataclass
class ImportReport:
    """What an import did, for the CLI and the back office."""

    kind: str
    file: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    periods: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.file}: {self.rows} rows, {self.created} created, {self.updated} updated"
        if self.periods:
            text += f"; periods {', '.join(self.periods)}"
        return text


# --- reading ------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value).strip()


def read_table(name: str, data: bytes | None = None, path: str | Path | None = None
               ) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Return the header and (row number, cells) of a CSV or XLSX file."""
    if data is None:
        try:
            data = Path(path or name).read_bytes()
        except OSError as exc:
            raise ImportFileError(name, f"cannot be read: {exc.strerror}") from None
    if name.lower().endswith((".xlsx", ".xlsm")):
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise ImportFileError(name, f"is not a readable XLSX workbook ({exc})") from None
        sheet = book.worksheets[0]
        rows = ([_cell_text(v) for v in r] for r in sheet.iter_rows(values_only=True))
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportFileError(name, "is not UTF-8 text (save it as CSV UTF-8)") from None
        rows = ([c.strip() for c in r] for r in csv.reader(io.StringIO(text)))
    try:
        header = next(rows)
    except StopIteration:
        raise ImportFileError(name, "is empty: a header row is needed") from None
    if not any(header):
        if not any(any(cells) for cells in rows):
            raise ImportFileError(name, "is empty: a header row is needed")
        raise ImportFileError(name, "the header row is empty", row=1)
    while header and header[-1] == "":
        header.pop()
    header = [h.strip() for h in header]

    def body() -> Iterator[tuple[int, list[str]]]:
        for number, cells in enumerate(rows, start=2):
            if not any(cells):
                continue
            if len(cells) > len(header) and any(cells[len(header):]):
                raise ImportFileError(name, f"has {len(cells)} cells but the header has "
                                      f"{len(header)} columns", row=number)
            yield number, (cells + [""] * len(header))[: len(header)]

    return header, body()


def _first_error(name: str, number: int, err: ValidationError) -> ImportFileError:
    messages = err.normalized_messages()
    column, reasons = next(iter(messages.items()))
    reason = reasons[0] if isinstance(reasons, list) else str(reasons)
    return ImportFileError(name, reason.rstrip("."), row=number, column=column)


# --- employees ----------------------------------------------------------------------------


class EmployeeRowSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    # The lengths are the columns' sizes: PostgreSQL would refuse a longer value only at
    # flush, after other rows were written.
    email = fields.Email(load_default="", validate=validate.Length(max=200))
    team = fields.String(required=True, validate=validate.Length(min=1, max=100))
    region = fields.String(load_default="", validate=validate.Length(max=100))
    level = fields.String(required=True)
    manager_code = fields.String(load_default="", validate=validate.Length(max=40))
    hire_date = fields.Date(load_default=None)
    team_stage = fields.String(load_default="", validate=validate.OneOf(
        ("",) + TEAM_STAGES, error="must be one of startup, growth, mature"))


def import_employees(session: Session, name: str, data: bytes | None = None,
                     path: str | Path | None = None) -> ImportReport:
    """Create or update employees and their teams from a file; all rows or none."""
    header, body = read_table(name, data, path)
    unknown = [h for h in header if h not in EMPLOYEE_COLUMNS]
    if unknown:
        raise ImportFileError(name, f"unknown column {unknown[0]!r}; the columns are "
                              + ",".join(EMPLOYEE_COLUMNS), row=1, column=unknown[0])
    missing = [c for c in EMPLOYEE_REQUIRED if c not in header]
    if missing:
        raise ImportFileError(name, f"required column {missing[0]!r} is missing", row=1,
                              column=missing[0])
    levels = {lv.code: lv for lv in session.scalars(select(Level))}
    existing = {e.code: e for e in session.scalars(select(Employee))}
    schema = EmployeeRowSchema()
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for number, cells in body:
        raw = {h: c for h, c in zip(header, cells, strict=True) if c != ""}
        try:
            row = schema.load(raw)
        except ValidationError as err:
            raise _first_error(name, number, err) from None
        if row["code"] in seen:
            raise ImportFileError(name, f"employee {row['code']} appears twice (rows "
                                  f"{seen[row['code']]} and {number})", row=number, column="code")
        seen[row["code"]] = number
        if row["level"] not in levels:
            raise ImportFileError(name, f"unknown level {row['level']!r}; the levels are "
                                  + ", ".join(sorted(levels)), row=number, column="level")
        rows.append((number, row))
    codes = set(seen)
    for number, row in rows:
        mc = row["manager_code"]
        if mc and mc not in codes and mc not in existing:
            raise ImportFileError(name, f"manager {mc} does not exist", row=number,
                                  column="manager_code")
        if mc == row["code"]:
            raise ImportFileError(name, "an employee cannot be their own manager", row=number,
                                  column="manager_code")
    if not rows:
        raise ImportFileError(name, "has no data rows")

    report = ImportReport("employees", name, rows=len(rows))
    teams = {t.name: t for t in session.scalars(select(Team))}
    for _, row in rows:
        team = teams.get(row["team"])
        if team is None:
            team = Team(name=row["team"], region=row["region"],
                        stage=row["team_stage"] or None)
            session.add(team)
            teams[team.name] = team
        else:
            if row["region"] and team.region != row["region"]:
                team.region = row["region"]
            if row["team_stage"] and team.stage != row["team_stage"]:
                team.stage = row["team_stage"]
    session.flush()
    by_code = dict(existing)
    for _, row in rows:
        emp = by_code.get(row["code"])
        values = {"name": row["name"], "email": row["email"], "team_id": teams[row["team"]].id,
                  "level_id": levels[row["level"]].id, "hire_date": row["hire_date"]}
        if emp is None:
            emp = Employee(code=row["code"], **values)
            session.add(emp)
            by_code[emp.code] = emp
            report.created += 1
        else:
            changed = False
            for k, v in values.items():
                if getattr(emp, k) != v:
                    setattr(emp, k, v)
                    changed = True
            report.updated += changed
    session.flush()
    for _, row in rows:
        emp = by_code[row["code"]]
        manager_id = by_code[row["manager_code"]].id if row["manager_code"] else None
        if emp.manager_id != manager_id:
            emp.manager_id = manager_id
    # A team's manager: the manager most of its members report to, where that manager is in
    # the team; else the member who reports to nobody in the team.
    by_team: dict[int, list[Employee]] = {}
    for e in by_code.values():
        by_team.setdefault(e.team_id, []).append(e)
    for team_name in {r["team"] for _, r in rows}:
        team = teams[team_name]
        members = by_team.get(team.id, [])
        member_ids = {e.id for e in members}
        votes = Counter(e.manager_id for e in members if e.manager_id in member_ids)
        manager_id = votes.most_common(1)[0][0] if votes else None
        if manager_id is None:
            heads = [e for e in members if e.manager_id not in member_ids]
            manager_id = heads[0].id if len(heads) == 1 else None
        if manager_id is not None and team.manager_id != manager_id:
            team.manager_id = manager_id
    session.flush()
    audit(session, "import", "employee", summary=report.summary(),
          after={"file": name, "rows": report.rows, "created": report.created,
                 "updated": report.updated})
    session.flush()
    return report


# --- results ------------------------------------------------------------------------------


def _locked_between(session: Session, codes: set[str]) -> dict[str, str]:
    """Map each period code to the locked period (itself or one containing it), if any."""
    wanted = set(codes)
    for code in codes:
        wanted.update(periods.parents(code))
    locked = set(session.scalars(select(Period.code).where(
        Period.code.in_(wanted), Period.status == "locked")))
    out = {}
    for code in codes:
        for c in [code, *periods.parents(code)]:
            if c in locked:
                out[code] = c
                break
    return out


def import_results(session: Session, name: str, data: bytes | None = None,
                   path: str | Path | None = None) -> ImportReport:
    """Load period results from a file; all rows or none (CONTRACT.md, Files)."""
    header, body = read_table(name, data, path)
    for col in ("period", "employee_code"):
        if col not in header:
            raise ImportFileError(name, f"required column {col!r} is missing", row=1, column=col)
    dupes = [h for h, n in Counter(header).items() if n > 1]
    if dupes:
        raise ImportFileError(name, f"column {dupes[0]!r} appears twice", row=1,
                              column=dupes[0])
    metrics = {m.key: m for m in session.scalars(select(Metric))}
    metric_cols: list[tuple[int, Metric]] = []
    for idx, col in enumerate(header):
        if col in ("period", "employee_code"):
            continue
        metric = metrics.get(col)
        if metric is None:
            raise ImportFileError(name, f"unknown metric column {col!r}", row=1, column=col)
        if metric.formula:
            raise ImportFileError(name, f"{col} is a derived metric ({metric.formula}) and "
                                  "cannot be imported", row=1, column=col)
        metric_cols.append((idx, metric))
    p_idx, e_idx = header.index("period"), header.index("employee_code")
    # Plain tuples: ORM attribute access per cell was a tenth of the import's time.
    columns = [(idx, m.key, m.id, m.type == "count", m.type, m.min_value, m.max_value)
               for idx, m in metric_cols]
    employees = dict(session.execute(select(Employee.code, Employee.id)).all())

    parsed: list[tuple[str, int, list[tuple[int, Decimal]]]] = []
    seen: dict[tuple[str, str], int] = {}
    valid_codes: set[str] = set()
    for number, cells in body:
        code = cells[p_idx]
        if not code:
            raise ImportFileError(name, "period is empty", row=number, column="period")
        if code not in valid_codes:
            try:
                periods.parse(code)
            except PeriodError:
                raise ImportFileError(name, f"malformed period code {code!r} (use YYYY-MM, "
                                      "YYYY-Qn or YYYY)", row=number, column="period") from None
            valid_codes.add(code)
        emp_code = cells[e_idx]
        emp_id = employees.get(emp_code)
        if emp_id is None:
            raise ImportFileError(name, f"unknown employee {emp_code!r}", row=number,
                                  column="employee_code")
        if (emp_code, code) in seen:
            raise ImportFileError(name, f"employee {emp_code} and period {code} appear twice "
                                  f"(rows {seen[(emp_code, code)]} and {number})", row=number,
                                  column="employee_code")
        seen[(emp_code, code)] = number
        values = []
        for idx, key, metric_id, is_count, mtype, low, high in columns:
            text = cells[idx]
            if text == "":
                continue
            try:
                value = Decimal(text)
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite():
                raise ImportFileError(name, f"{text!r} is not a number (use . as the decimal "
                                      "mark and no thousands separator)", row=number,
                                      column=key)
            if value.as_tuple().exponent < -DECIMALS and \
                    value.normalize().as_tuple().exponent < -DECIMALS:
                raise ImportFileError(name, f"{text!r} has more than {DECIMALS} decimals",
                                      row=number, column=key)
            if is_count and value != value.to_integral_value():
                raise ImportFileError(name, f"{text!r} is not a whole number", row=number,
                                      column=key)
            if is_count and value < 0:
                raise ImportFileError(name, f"{text!r} is negative: a count is 0 or more",
                                      row=number, column=key)
            problem = range_problem(value, mtype, low, high)
            if problem:
                raise ImportFileError(name, f"{text!r} {problem}", row=number, column=key)
            values.append((metric_id, value))
        parsed.append((code, emp_id, values))
    if not parsed:
        raise ImportFileError(name, "has no data rows")

    codes = {code for code, _, _ in parsed}
    locked = _locked_between(session, codes)
    if locked:
        code = sorted(locked)[0]
        number = next(seen[k] for k in seen if k[1] == code)
        why = "is locked" if locked[code] == code else f"is in {locked[code]}, which is locked"
        raise ImportFileError(name, f"period {code} {why}: its results cannot change",
                              row=number, column="period")

    report = ImportReport("results", name, rows=len(parsed))
    period_ids: dict[str, int] = {}
    for code in sorted(codes):
        for c in [code, *periods.parents(code)]:
            if c not in period_ids:
                period_ids[c] = periods.get_or_create(session, c).id
    report.periods = sorted(codes)
    wanted_ids = {period_ids[c] for c in codes}
    existing: dict[tuple[int, int, int], tuple[int, Decimal]] = {
        (e, p, m): (rid, v) for rid, e, p, m, v in session.execute(
            select(Result.id, Result.employee_id, Result.period_id, Result.metric_id,
                   Result.value).where(Result.period_id.in_(wanted_ids)))
    }
    inserts: list[tuple[int, int, int, Decimal]] = []
    updates: list[tuple[Decimal, int]] = []
    for code, emp_id, values in parsed:
        pid = period_ids[code]
        for metric_id, value in values:
            old = existing.get((emp_id, pid, metric_id))
            if old is None:
                inserts.append((emp_id, pid, metric_id, value))
            elif old[1] != value:
                updates.append((value, old[0]))
    _write_results(session, inserts, updates)
    record_rows(session, {(emp_id, period_ids[code]) for code, emp_id, _ in parsed})
    report.created, report.updated = len(inserts), len(updates)
    audit(session, "import", "result", summary=report.summary(),
          after={"file": name, "rows": report.rows, "values_created": report.created,
                 "values_updated": report.updated, "periods": report.periods})
    session.flush()
    return report


def record_rows(session: Session, rows: set[tuple[int, int]]) -> None:
    """Record (employee, period) rows of results, empty ones too (rollup reads them)."""
    period_ids = {p for _, p in rows}
    have = set(session.execute(select(ResultRow.employee_id, ResultRow.period_id)
                               .where(ResultRow.period_id.in_(period_ids))).all())
    new = sorted(rows - have)
    if new:
        session.execute(ResultRow.__table__.insert(),
                        [{"employee_id": e, "period_id": p} for e, p in new])


def _write_results(session: Session, inserts: list[tuple[int, int, int, Decimal]],
                   updates: list[tuple[Decimal, int]]) -> None:
    """Insert and update result values in bulk, in the caller's transaction.

    Goes straight to the driver: Core's per-row parameter processing made a 100,000-row
    file import at about 16,000 rows a second, psycopg's executemany at 6,500
    (bench/bench_import.py). PostgreSQL gets COPY, SQLite sqlite3's executemany; the value
    still passes through the column type's bind processor (SQLite stores floats).
    """
    if not inserts and not updates:
        return
    conn = session.connection()
    dialect = conn.dialect
    table = Result.__table__
    name = dialect.identifier_preparer.format_table(table)
    if inserts and dialect.driver == "psycopg":
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            with cursor.copy(f"COPY {name} (employee_id, period_id, metric_id, value) "
                             "FROM STDIN") as copy:
                # COPY's text format, built here: write_row per value cost 1.7 s a 100k file.
                for start in range(0, len(inserts), 20000):
                    copy.write("".join(
                        f"{e}\t{p}\t{m}\t{v}\n" for e, p, m, v in inserts[start:start + 20000]))
        finally:
            cursor.close()
        inserts = []
    to_db = table.c.value.type.dialect_impl(dialect).bind_processor(dialect)
    if dialect.paramstyle not in ("qmark", "format", "pyformat"):
        # Another driver: let Core bind the parameters (slower, same result).
        if inserts:
            conn.execute(table.insert(), [
                {"employee_id": e, "period_id": p, "metric_id": m, "value": v}
                for e, p, m, v in inserts])
        if updates:
            conn.execute(update(table).where(table.c.id == bindparam("rid"))
                         .values(value=bindparam("v")), [
                {"rid": rid, "v": v} for v, rid in updates])
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    if to_db is not None:
        inserts = [(e, p, m, to_db(v)) for e, p, m, v in inserts]
        updates = [(to_db(v), rid) for v, rid in updates]
    if inserts:
        conn.exec_driver_sql(
            f"INSERT INTO {name} (employee_id, period_id, metric_id, value) "
            f"VALUES ({mark}, {mark}, {mark}, {mark})", inserts)
    if updates:
        conn.exec_driver_sql(f"UPDATE {name} SET value = {mark} WHERE id = {mark}", updates)
