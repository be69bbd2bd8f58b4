"""Exports are safe to open: no name or code in them runs as a spreadsheet formula."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.cli import main
from engine import lifecycle, runs
from engine.cells import csv_cell
from engine.imports import import_employees
from engine.models import Employee, Run
from engine.users import create_user
from tests.test_runs import load

# Names a person may really have typed, each of which a spreadsheet would run (OWASP).
RISKY = {"E000": '=HYPERLINK("http://example.com","pay")', "E001": "+1+1",
         "E002": "-2+3+cmd|' /C calc'!A0", "E003": "@SUM(A1:A9)"}
# Older data, or another door, may hold what an import now refuses.
STORED = {"E004": "\tTab", "E005": "\rReturn", "E006": "#N/A"}


@pytest.fixture()
def run(session: Session) -> Run:
    load(session)
    create_user(session, "bob@x.com", "password-123", "comp_analyst")
    teams = {e.code: (e.team.name, e.level.code) for e in session.scalars(select(Employee))}
    import_employees(session, "names.csv", data=("code,name,team,level\n" + "".join(
        f'{code},"{name.replace(chr(34), 2 * chr(34))}",{teams[code][0]},{teams[code][1]}\n'
        for code, name in RISKY.items())).encode())
    for code, name in STORED.items():
        session.scalar(select(Employee).where(Employee.code == code)).name = name
    session.scalar(select(Employee).where(Employee.code == "E007")).code = "=E007"
    run = runs.start_run(session, "2026-01").run
    for code in [*RISKY, *STORED]:
        lifecycle.add_adjustment(session, run.id, code, "-50.00", "correction", "bob@x.com")
    session.commit()
    return run


def test_csv_cells_that_would_run_get_an_apostrophe(session: Session, run: Run) -> None:
    rows = list(csv.DictReader(io.StringIO(
        lifecycle.export(session, run.id, "csv", draft=True).decode(), newline="")))
    names = {r["employee_code"]: r["employee_name"] for r in rows}
    for code, name in {**RISKY, **STORED}.items():
        expected = name if code == "E006" else "'" + name.replace("\r", "\n")
        assert names[code] == expected
    assert names["'=E007"] == "Rep 7"
    adjustments = [r["amount"] for r in rows if r["rule_key"] == "adjustment"]
    assert adjustments and set(adjustments) == {"-50.00"}  # a number stays a number
    assert all(not r["employee_name"].startswith(("=", "+", "-", "@", "\t", "\r"))
               for r in rows if r["employee_name"])


def test_xlsx_names_are_string_cells_never_formulas(session: Session, run: Run) -> None:
    book = openpyxl.load_workbook(io.BytesIO(lifecycle.export(session, run.id, "xlsx",
                                                              draft=True)))
    seen = {}
    rows = [r for sheet in book.worksheets[:2] for r in sheet.iter_rows(min_row=3)]
    for row in rows:
        code_cell, name_cell = row[2], row[3]
        if code_cell.value is None or name_cell.value == "TOTAL":
            continue
        assert code_cell.data_type == "s" and name_cell.data_type == "s"
        seen[code_cell.value] = name_cell
    for code, name in {**RISKY, **STORED}.items():
        cell = seen[code]
        # XML reads a carriage return back as a line feed; the cell is still text
        assert cell.value == name.replace("\r", "\n") and cell.data_type == "s"
        assert cell.quotePrefix == (code != "E006")
    assert seen["=E007"].data_type == "s"
    amounts = [r[6].value for r in rows if r[4].value == "adjustment"]
    assert amounts and all(a == -50 for a in amounts)


def test_outcomes_csv_neutralises_codes(db_url: str, session: Session, run: Run) -> None:
    result = CliRunner().invoke(main, ["outcomes", str(run.id), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    codes = {r["employee_code"] for r in rows}
    assert "'=E007" in codes and "=E007" not in codes


@pytest.mark.parametrize(("value", "written"), [
    ("=1+2", "'=1+2"), ("+A1", "'+A1"), ("-A1", "'-A1"), ("@A1", "'@A1"), ("\tx", "'\tx"),
    ("\rx", "'\nx"), ("a\r\nb\rc", "a\nb\nc"), ("-12.50", "-12.50"), ("+3", "+3"),
    ("1E+3", "1E+3"), ("Ann", "Ann"),
    ("", ""), (None, None), (7, 7)])
def test_csv_cell(value: object, written: object) -> None:
    assert csv_cell(value) == written
