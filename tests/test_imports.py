"""Imports of employees and results: all rows or none, errors that name file/row/column."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import imports
from engine.errors import ImportFileError
from engine.imports import ImportReport, import_employees, import_results
from engine.models import AuditLog, Employee, Period, ResultRow, Team
from tests.stored import stored_value, stored_values, value_count

D = Decimal

EMPLOYEES = """code,name,email,team,region,level,manager_code,hire_date,team_stage
M1,Mei Lin,mei@example.com,North,Beijing,M1,,2019-03-01,startup
E1,Ann Wu,ann@example.com,North,Beijing,S1,M1,2024-01-15,
E2,Bo Li,bo@example.com,North,Beijing,S2,M1,2023-06-01,
E3,Cai Xu,cai@example.com,South,Shenzhen,S3,,2022-02-01,mature
"""


def counts(session: Session) -> dict[str, int]:
    """Rows of every table an import writes, as the database (this transaction) sees them."""
    return {"values": value_count(session),
            **{m.__tablename__: session.scalar(select(func.count()).select_from(m))
               for m in (ResultRow, Employee, Team, Period, AuditLog)}}


@pytest.fixture()
def org(session: Session) -> Session:
    """A session whose database has the EMPLOYEES organisation and one month of results."""
    import_employees(session, "employees.csv", data=EMPLOYEES.encode())
    import_results(session, "seed.csv", data=b"period,employee_code,quota\n2026-01,E1,100\n")
    session.flush()
    return session


def rejects(session: Session, call: Callable[[], object], row: int | None,
            column: str | None, reason: str, file: str) -> ImportFileError:
    """Assert the import fails naming file, row and column, and changes nothing."""
    before = counts(session)
    with pytest.raises(ImportFileError) as info:
        call()
    err = info.value
    message = str(err)
    assert err.file == file and message.startswith(file)
    if row is not None:
        assert err.row == row and f"row {row}" in message
    if column is not None:
        assert err.column == column and f"column {column}" in message
    assert re.search(reason, message), message
    session.flush()
    assert counts(session) == before
    return err


def bad_results(session: Session, text: str, row: int | None, column: str | None,
                reason: str) -> ImportFileError:
    return rejects(session, lambda: import_results(session, "bad.csv", data=text.encode()),
                   row, column, reason, "bad.csv")


def bad_employees(session: Session, text: str, row: int | None, column: str | None,
                  reason: str) -> ImportFileError:
    return rejects(session, lambda: import_employees(session, "emp.csv", data=text.encode()),
                   row, column, reason, "emp.csv")


# --- results: bad input -------------------------------------------------------------------


def test_unknown_employee(org: Session) -> None:
    bad_results(org, "period,employee_code,quota\n2026-02,E1,100\n2026-02,NOBODY,100\n",
                3, "employee_code", "unknown employee 'NOBODY'")


def test_unknown_metric_column(org: Session) -> None:
    bad_results(org, "period,employee_code,quota,bonus_points\n2026-02,E1,100,5\n",
                1, "bonus_points", "unknown metric column")


def test_derived_metric_column(org: Session) -> None:
    bad_results(org, "period,employee_code,attainment\n2026-02,E1,1.2\n",
                1, "attainment", "derived metric")


@pytest.mark.parametrize("value", ["1,000", "abc", "NaN", "nan", "Infinity", "-inf", "1.2.3",
                                   "12%", "¥100", "1 000"])
def test_value_that_is_not_a_number(org: Session, value: str) -> None:
    cell = f'"{value}"' if "," in value else value
    bad_results(org, f"period,employee_code,leads,quota\n2026-02,E1,3,100\n2026-03,E1,4,{cell}\n",
                3, "quota", "is not a number")


def test_count_with_decimals(org: Session) -> None:
    bad_results(org, "period,employee_code,quota,new_customers\n2026-02,E1,100,2.5\n",
                2, "new_customers", "not a whole number")


def test_count_with_a_zero_fraction_is_a_whole_number(org: Session) -> None:
    import_results(org, "ok.csv", data=b"period,employee_code,new_customers\n2026-02,E1,2.0\n")
    assert stored_value(org, "new_customers") == D(2)


@pytest.mark.parametrize("text", ["-0", "-0.00", "-000.000000"])
def test_a_negative_zero_is_stored_as_zero(org: Session, text: str) -> None:
    import_results(org, "z.csv", data=f"period,employee_code,quota\n2026-02,E1,{text}\n"
                   .encode())
    value = stored_value(org, "quota", "2026-02")
    assert value == 0 and not str(value).startswith("-")


def test_same_employee_and_period_twice(org: Session) -> None:
    err = bad_results(org, "period,employee_code,quota\n2026-02,E1,100\n2026-02,E2,100\n"
                      "2026-02,E1,200\n", 4, "employee_code", "appear twice")
    assert "rows 2 and 4" in str(err)


@pytest.mark.parametrize("code", ["2026-13", "2026/02", "Q1-2026", "2026-Q5", "26-02"])
def test_malformed_period_code(org: Session, code: str) -> None:
    bad_results(org, f"period,employee_code,quota\n2026-02,E1,1\n{code},E2,100\n",
                3, "period", "malformed period code")


def test_empty_period(org: Session) -> None:
    bad_results(org, "period,employee_code,quota\n,E1,100\n", 2, "period", "period is empty")


def test_locked_period(org: Session) -> None:
    org.scalar(select(Period).where(Period.code == "2026-01")).status = "locked"
    org.flush()
    bad_results(org, "period,employee_code,quota\n2026-02,E2,100\n2026-01,E2,100\n",
                3, "period", "period 2026-01 is locked")


def test_month_inside_a_locked_quarter(org: Session) -> None:
    org.scalar(select(Period).where(Period.code == "2026-Q1")).status = "locked"
    org.flush()
    bad_results(org, "period,employee_code,quota\n2026-04,E1,100\n2026-03,E2,100\n",
                3, "period", "2026-03 is in 2026-Q1, which is locked")


def test_month_inside_a_locked_year(org: Session) -> None:
    org.scalar(select(Period).where(Period.code == "2026")).status = "locked"
    org.flush()
    bad_results(org, "period,employee_code,quota\n2026-11,E1,100\n",
                2, "period", "2026-11 is in 2026, which is locked")


def test_missing_required_column(org: Session) -> None:
    bad_results(org, "period,quota\n2026-02,100\n", 1, "employee_code", "required column")
    bad_results(org, "employee_code,quota\nE1,100\n", 1, "period", "required column")


def test_duplicate_column(org: Session) -> None:
    bad_results(org, "period,employee_code,quota,quota\n2026-02,E1,1,2\n", 1, "quota",
                "appears twice")


def test_more_cells_than_columns(org: Session) -> None:
    bad_results(org, "period,employee_code,quota\n2026-02,E1,100,7\n", 2, None,
                "3 columns")


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff"])
def test_empty_results_file(org: Session, text: str) -> None:
    # An empty file has no row or column to name: the message names the file.
    bad_results(org, text, None, None, "is empty")


def test_header_only_results_file(org: Session) -> None:
    bad_results(org, "period,employee_code,quota\n\n", None, None, "no data rows")


def test_not_utf8(org: Session) -> None:
    rejects(org, lambda: import_results(org, "bad.csv", data="period,employee_code,quota\n"
                                        "2026-02,E1,一百\n".encode("gb18030")),
            None, None, "not UTF-8", "bad.csv")


def test_error_on_the_last_row_writes_nothing(org: Session) -> None:
    rows = "".join(f"2026-{m:02d},E{e},{m * 100}\n" for m in range(2, 13) for e in (1, 2, 3))
    bad_results(org, f"period,employee_code,quota\n{rows}2026-12,E9,1\n", 35,
                "employee_code", "unknown employee")
    assert org.scalar(select(func.count()).select_from(Period).where(
        Period.code == "2026-12")) == 0


def test_an_employee_deleted_while_a_file_is_read_is_refused_by_name(
        org: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows' foreign keys hold: an employee deleted after the file's codes were matched
    is refused as unknown, at its row (on PostgreSQL, where the keys are checked once for
    all rows, engine.bulk; SQLite's constraint refuses the row), and nothing is written."""
    import_employees(org, "more.csv", data=b"code,name,team,level\nE9,Eva,North,S1\n")
    locked_between = imports._locked_between

    def deleting(session: Session, codes: set[str]) -> dict[str, str]:
        session.execute(delete(Employee).where(Employee.code == "E9"))
        return locked_between(session, codes)

    monkeypatch.setattr(imports, "_locked_between", deleting)
    data = b"period,employee_code,quota\n2026-02,E1,1\n2026-02,E9,2\n"
    with pytest.raises((ImportFileError, IntegrityError)) as info, org.begin_nested():
        import_results(org, "late.csv", data=data)
    if org.get_bind().dialect.name == "postgresql":
        assert str(info.value) == "late.csv, row 3, column employee_code: unknown employee 'E9'"
    assert org.scalar(select(func.count()).select_from(ResultRow).join(Period)
                      .where(Period.code == "2026-02")) == 0


def test_a_results_import_leaves_the_foreign_keys_checked_row_by_row_after(
        org: Session) -> None:
    """After an import that checked its rows' keys once, the session's inserts are checked
    by the constraint again."""
    import_results(org, "r.csv", data=b"period,employee_code,quota\n2026-02,E1,1\n")
    period = org.scalar(select(Period.id).where(Period.code == "2026-02"))
    with pytest.raises(IntegrityError), org.begin_nested():
        org.execute(insert(ResultRow).values(employee_id=10**6, period_id=period, values={}))


def test_unreadable_file(tmp_path: Path, org: Session) -> None:
    missing = str(tmp_path / "nope.csv")
    rejects(org, lambda: import_results(org, missing, path=missing), None, None,
            "cannot be read", missing)


def test_damaged_xlsx(org: Session) -> None:
    rejects(org, lambda: import_results(org, "bad.xlsx", data=b"not a zip"), None, None,
            "not a readable XLSX", "bad.xlsx")


# --- employees: bad input -----------------------------------------------------------------

HEAD = "code,name,email,team,region,level,manager_code,hire_date,team_stage\n"


def test_unknown_level(org: Session) -> None:
    bad_employees(org, HEAD + "E9,Dan,d@example.com,North,,S1,,,\n"
                  "E8,Eve,e@example.com,North,,S9,,,\n", 3, "level", "unknown level 'S9'")


def test_manager_that_does_not_exist(org: Session) -> None:
    bad_employees(org, HEAD + "E9,Dan,d@example.com,North,,S1,X42,,\n", 2, "manager_code",
                  "manager X42 does not exist")


def test_manager_may_be_an_existing_employee_or_in_the_same_file(org: Session) -> None:
    import_employees(org, "emp.csv", data=(HEAD + "E9,Dan,,North,,S1,E8,,\n"
                                           "E8,Eve,,North,,S2,M1,,\n").encode())
    by = {e.code: e for e in org.scalars(select(Employee))}
    assert by["E9"].manager_id == by["E8"].id
    assert by["E8"].manager_id == by["M1"].id


def test_own_manager(org: Session) -> None:
    bad_employees(org, HEAD + "E9,Dan,,North,,S1,E9,,\n", 2, "manager_code", "own manager")


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("email", "not-an-email", "email"),
    ("hire_date", "2026-02-30", "date"),
    ("hire_date", "01/02/2026", "date"),
    ("team_stage", "scaleup", "must be one of startup, growth, mature"),
    ("name", "", "Missing data"),
    ("team", "", "Missing data"),
])
def test_bad_employee_cell(org: Session, column: str, value: str, reason: str) -> None:
    row = {"code": "E9", "name": "Dan", "email": "dan@example.com", "team": "North",
           "region": "", "level": "S1", "manager_code": "", "hire_date": "2024-01-01",
           "team_stage": ""}
    row[column] = value
    good = "E8,Eve,,North,,S1,,,\n"
    bad_employees(org, HEAD + good + ",".join(row.values()) + "\n", 3, column, reason)


def test_employee_twice_in_one_file(org: Session) -> None:
    bad_employees(org, HEAD + "E9,Dan,,North,,S1,,,\nE9,Dan,,North,,S2,,,\n", 3, "code",
                  "appears twice")


def test_one_team_given_two_stages_or_regions_in_one_file(org: Session) -> None:
    # which one the team got hung on the order of the rows (the stage decides the
    # stage-scoped bonuses); an empty cell says nothing, so it agrees with either
    bad_employees(org, HEAD + "E8,Eve,,Nine,,S1,,,startup\nE9,Dan,,Nine,,S1,,,\n"
                  "E7,Ada,,Nine,,S1,,,growth\n", 4, "team_stage",
                  "team Nine has team_stage 'growth' here but 'startup' in row 2")
    bad_employees(org, HEAD + "E8,Eve,,Nine,East,S1,,,\nE9,Dan,,Nine,West,S1,,,\n", 3,
                  "region", "team Nine has region 'West' here but 'East' in row 2")
    import_employees(org, "emp.csv", data=(HEAD + "E8,Eve,,Nine,East,S1,,,growth\n"
                                           "E9,Dan,,Nine,,S1,,,growth\n").encode())


def test_unknown_employee_column(org: Session) -> None:
    bad_employees(org, "code,name,team,level,salary\nE9,Dan,North,S1,100\n", 1, "salary",
                  "unknown column")


def test_missing_employee_column(org: Session) -> None:
    bad_employees(org, "code,name,team\nE9,Dan,North\n", 1, "level", "required column")


def test_empty_employees_file(org: Session) -> None:
    bad_employees(org, "", None, None, "is empty")
    bad_employees(org, HEAD, None, None, "no data rows")


def test_too_long_values_are_rejected_before_writing(org: Session) -> None:
    bad_employees(org, HEAD + f"E9,Dan,,North,{'x' * 101},S1,,,\n", 2, "region", "")
    bad_employees(org, HEAD + f"E9,{'n' * 201},,North,,S1,,,\n", 2, "name", "")


def test_number_too_large_is_rejected_before_writing(org: Session) -> None:
    bad_results(org, "period,employee_code,quota\n2026-05,E1,1e30\n", 2, "quota",
                "outside the accepted range: a money value is less than 10\\^18")


@pytest.mark.parametrize(("column", "value", "ok"), [
    ("quota", "999999999999999999.999999", True),
    ("quota", "-999999999999999999.999999", True),
    ("quota", "1000000000000000000", False),
    ("new_customers", "999999999999999", True),
    ("new_customers", "1000000000000000", False),
    ("satisfaction", "100", True),
    ("satisfaction", "100.000001", False),
])
def test_each_metric_type_accepts_its_range_to_the_edge(org: Session, column: str, value: str,
                                                         ok: bool) -> None:
    data = f"period,employee_code,{column}\n2031-05,E1,{value}\n"
    if ok:
        import_results(org, "edge.csv", data=data.encode())
        stored = stored_value(org, column, "2031-05")
        assert stored == Decimal(value)
    else:
        bad_results(org, data, 2, column, "outside")


# --- results: good input ------------------------------------------------------------------


def values(session: Session, code: str, period: str) -> dict[str, Decimal]:
    return stored_values(session, code, period)


def test_month_row_creates_month_quarter_and_year(org: Session) -> None:
    report = import_results(org, "r.csv", data=b"period,employee_code,quota\n2026-05,E1,100\n")
    got = {p.code: (p.kind, p.start, p.end, p.status) for p in org.scalars(select(Period))}
    assert got["2026-05"] == ("month", dt.date(2026, 5, 1), dt.date(2026, 5, 31), "open")
    assert got["2026-Q2"] == ("quarter", dt.date(2026, 4, 1), dt.date(2026, 6, 30), "open")
    assert got["2026"] == ("year", dt.date(2026, 1, 1), dt.date(2026, 12, 31), "open")
    assert report.periods == ["2026-05"]
    assert report.rows == 1 and report.created == 1


def test_quarter_row_creates_quarter_and_year_only(org: Session) -> None:
    import_results(org, "r.csv", data=b"period,employee_code,quota\n2027-Q3,E1,100\n")
    codes = set(org.scalars(select(Period.code)))
    assert {"2027-Q3", "2027"} <= codes
    assert not any(c.startswith("2027-0") for c in codes)


def test_reimport_replaces_only_the_metrics_the_row_gives(org: Session) -> None:
    import_results(org, "a.csv", data=b"period,employee_code,quota,revenue_new,leads\n"
                                      b"2026-02,E1,100,90,30\n2026-02,E2,200,210,40\n")
    report = import_results(org, "b.csv", data=b"period,employee_code,revenue_new,quota\n"
                                               b"2026-02,E1,95,\n")
    assert values(org, "E1", "2026-02") == {"quota": D(100), "revenue_new": D(95),
                                            "leads": D(30)}
    assert values(org, "E2", "2026-02") == {"quota": D(200), "revenue_new": D(210),
                                            "leads": D(40)}
    assert (report.created, report.updated) == (0, 1)
    report = import_results(org, "c.csv", data=b"period,employee_code,revenue_new\n"
                                               b"2026-02,E1,95\n")
    assert (report.created, report.updated) == (0, 0)


def test_empty_cell_is_undefined(org: Session) -> None:
    import_results(org, "r.csv", data=b"period,employee_code,quota,satisfaction,leads\n"
                                      b"2026-03,E2,,,0\n")
    assert values(org, "E2", "2026-03") == {"leads": D(0)}


def test_row_of_empty_cells_is_skipped(org: Session) -> None:
    report = import_results(org, "r.csv", data=b"period,employee_code,quota\n,,\n"
                                               b"2026-03,E2,5\n")
    assert report.rows == 1


def test_columns_in_any_order_and_exact_decimals(org: Session) -> None:
    import_results(org, "r.csv", data=b"max_discount_pct,quota,employee_code,period,nps\n"
                                      b"0.075,1234.56,E3,2026-04,-12\n")
    assert values(org, "E3", "2026-04") == {"max_discount_pct": D("0.075"),
                                            "quota": D("1234.56"), "nps": D(-12)}


def test_results_audit_entry_names_the_file_and_actor(org: Session) -> None:
    import_results(org, "r.csv", data=b"period,employee_code,quota\n2026-07,E1,100\n")
    entry = org.scalars(select(AuditLog).where(AuditLog.entity == "result")
                        .order_by(AuditLog.id.desc())).first()
    assert entry.action == "import"
    assert entry.actor == "tester@example.com"
    assert entry.after["file"] == "r.csv"
    assert entry.after["values_created"] == 1
    assert entry.after["periods"] == ["2026-07"]


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_results_from_xlsx(org: Session, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "results.xlsx", [
        ["period", "employee_code", "quota", "revenue_new", "max_discount_pct", "satisfaction"],
        ["2026-06", "E1", 120000, 1234.5, 0.07, None],
        [None, None, None, None, None, None],
        ["2026-06", "E2", "80000", "99.99", 0.1, 88],
    ])
    report = import_results(org, str(path), path=path)
    assert report.rows == 2
    assert values(org, "E1", "2026-06") == {"quota": D(120000), "revenue_new": D("1234.5"),
                                            "max_discount_pct": D("0.07")}
    assert values(org, "E2", "2026-06")["satisfaction"] == D(88)


def test_xlsx_errors_name_the_spreadsheet_row(org: Session, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "results.xlsx", [
        ["period", "employee_code", "leads"],
        ["2026-06", "E1", 3],
        [None, None, None],
        ["2026-06", "E2", 2.5],
    ])
    rejects(org, lambda: import_results(org, "results.xlsx", path=path), 4, "leads",
            "not a whole number", "results.xlsx")


# --- employees: good input ----------------------------------------------------------------


def test_teams_created_with_stage_region_and_manager(org: Session) -> None:
    teams = {t.name: t for t in org.scalars(select(Team))}
    assert (teams["North"].stage, teams["North"].region) == ("startup", "Beijing")
    assert (teams["South"].stage, teams["South"].region) == ("mature", "Shenzhen")
    assert teams["North"].manager.code == "M1"
    assert teams["South"].manager.code == "E3"  # the one member who reports to nobody
    e1 = org.scalar(select(Employee).where(Employee.code == "E1"))
    assert (e1.name, e1.email, e1.level.code, e1.team.name, e1.manager.code, e1.hire_date) == (
        "Ann Wu", "ann@example.com", "S1", "North", "M1", dt.date(2024, 1, 15))


def test_team_without_stage_has_no_stage(org: Session) -> None:
    """A stage nobody set is undefined: no stage-scoped bonus applies by accident."""
    import_employees(org, "e.csv", data=b"code,name,team,level\nE9,Dan,West,S1\n")
    assert org.scalar(select(Team.stage).where(Team.name == "West")) is None


def test_employees_update_on_reimport(org: Session) -> None:
    report = import_employees(org, "emp2.csv", data=(
        HEAD + "E1,Ann Wu-Li,ann.wu@example.com,South,Shenzhen,S2,E3,2024-01-15,growth\n"
        "E4,Dee Ma,,South,,S1,E3,,\n").encode())
    assert (report.rows, report.created, report.updated) == (2, 1, 1)
    e1 = org.scalar(select(Employee).where(Employee.code == "E1"))
    assert (e1.name, e1.email, e1.level.code, e1.team.name, e1.manager.code) == (
        "Ann Wu-Li", "ann.wu@example.com", "S2", "South", "E3")
    assert org.scalar(select(Team.stage).where(Team.name == "South")) == "growth"
    assert org.scalar(select(func.count()).select_from(Employee)) == 5


def test_employee_import_is_audited_with_actor(org: Session) -> None:
    """One entry an import, with its counts and each employee's values before and after:
    not one entry an employee (a large file wrote as many audit rows as employees)."""
    entries = list(org.scalars(select(AuditLog).order_by(AuditLog.id)))
    created = [(e.entity, e.action) for e in entries if e.action == "create"]
    assert ("employee", "create") not in created
    assert created.count(("team", "create")) == 2
    assert {e.actor for e in entries} == {"tester@example.com"}
    summary = next(e for e in entries if e.entity == "employee" and e.action == "import")
    assert {k: v for k, v in summary.after.items() if k != "employees"} == {
        "file": "employees.csv", "rows": 4, "created": 4, "updated": 0}
    assert summary.after["employees"]["E1"] == {
        "name": "Ann Wu", "email": "ann@example.com", "team": "North", "level": "S1",
        "hire_date": "2024-01-15", "manager": "M1"}
    assert set(summary.after["employees"]) == {"M1", "E1", "E2", "E3"}
    assert summary.before is None
    # the second time: E2 changes level, E1 only its manager, E3 is as it was
    report = import_employees(org, "emp2.csv", data=(
        HEAD + "E2,Bo Li,bo@example.com,North,,S3,M1,2023-06-01,\n"
        "E1,Ann Wu,ann@example.com,North,,S1,E2,2024-01-15,\n"
        "E3,Cai Xu,cai@example.com,South,Shenzhen,S3,,2022-02-01,mature\n").encode())
    org.flush()
    assert (report.created, report.updated) == (0, 2)
    second = org.scalars(select(AuditLog).where(AuditLog.action == "import",
                                                AuditLog.entity == "employee",
                                                AuditLog.id > summary.id)).one()
    assert second.after == {"file": "emp2.csv", "rows": 3, "created": 0, "updated": 2,
                            "employees": {"E2": {"level": "S3"}, "E1": {"manager": "E2"}}}
    assert second.before == {"E2": {"level": "S2"}, "E1": {"manager": "M1"}}
    by = {e.code: e for e in org.scalars(select(Employee))}
    assert (by["E2"].level.code, by["E2"].manager.code) == ("S3", "M1")
    assert (by["E1"].level.code, by["E1"].manager.code) == ("S1", "E2")
    assert by["E3"].hire_date == dt.date(2022, 2, 1)


def test_employees_from_xlsx(session: Session, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "employees.xlsx", [
        ["code", "name", "email", "team", "region", "level", "manager_code", "hire_date",
         "team_stage"],
        ["M7", "Mo", "mo@example.com", "East", "Shanghai", "M1", None,
         dt.datetime(2020, 5, 4), "growth"],
        [1001, "Num", None, "East", "Shanghai", "S1", "M7", dt.date(2025, 1, 2), None],
    ])
    report = import_employees(session, "employees.xlsx", path=path)
    assert report.created == 2
    by = {e.code: e for e in session.scalars(select(Employee))}
    assert by["1001"].manager.code == "M7"  # a number cell is read as its text
    assert by["M7"].hire_date == dt.date(2020, 5, 4)
    assert session.scalar(select(Team).where(Team.name == "East")).manager.code == "M7"


@pytest.mark.parametrize("column,text,reason", [
    ("max_discount_pct", "0.0500001", "more than 6 decimals"),
    ("leads", "-3", "negative"),
    ("satisfaction", "200", "outside 0 to 100"),
    ("nps", "-101", "outside -100 to 100"),
    ("max_discount_pct", "1.5", "outside 0 to 1 (a ratio: 0.07 is 7%)"),
])
def test_values_that_would_be_rounded_or_are_out_of_range_are_refused(
        org: Session, column: str, text: str, reason: str) -> None:
    data = f"period,employee_code,{column}\n2026-01,E1,{text}\n".encode()
    with pytest.raises(ImportFileError) as err:
        import_results(org, "r.csv", data=data)
    assert reason in str(err.value) and err.value.row == 2 and err.value.column == column


def test_the_first_refused_cell_by_row_is_the_error(org: Session) -> None:
    """Cells are read column by column, but the error named is the first by row, then by
    column, whatever kind it is; numbers written otherwise than plainly still read."""
    head = "period,employee_code,quota,leads\n"
    # row 3: a count with decimals (leads); row 4: an unknown employee
    rejects(org, lambda: import_results(org, "a.csv", data=(
        head + "2026-02,E1,100,3\n2026-02,E2,100,2.5\n2026-02,NOPE,1,1\n").encode()),
        3, "leads", "not a whole number", "a.csv")
    # row 2: out of the type's range in the second column; row 3: a malformed quota
    rejects(org, lambda: import_results(org, "b.csv", data=(
        head + "2026-02,E1,100,-1\n2026-02,E2,1e2x,2\n").encode()),
        2, "leads", "negative", "b.csv")
    # the same row: the first column wins
    rejects(org, lambda: import_results(org, "c.csv", data=(
        head + "2026-02,E1,1e99,-1\n").encode()), 2, "quota", "outside", "c.csv")
    report = import_results(org, "d.csv", data=(
        head + "2026-02,E1,1E+3,+7\n2026-02,E2,.5,4.000\n2026-02,E3,-0.25,\n").encode())
    assert report.rows == 3
    assert values(org, "E1", "2026-02") == {"quota": D(1000), "leads": D(7)}
    assert values(org, "E2", "2026-02") == {"quota": D("0.5"), "leads": D(4)}
    assert values(org, "E3", "2026-02") == {"quota": D("-0.25")}


def test_a_column_the_file_leaves_out_keeps_what_employees_have(session) -> None:
    """Re-importing a file without email, hire_date and manager_code changes none of them;
    a file that has the column and an empty cell does clear it."""

    full = ("code,name,email,team,region,level,manager_code,hire_date\n"
            "M1,Mia,mia@x.com,North,N,S1,,2020-01-01\n"
            "K1,Kai,kai@x.com,North,N,S1,M1,2021-02-03\n")
    import_employees(session, "full.csv", data=full.encode())
    import_employees(session, "short.csv",
                     data=b"code,name,team,level\nM1,Mia,North,S1\nK1,Kai Li,North,S1\n")
    kai = session.scalar(select(Employee).where(Employee.code == "K1"))
    session.refresh(kai)
    assert (kai.name, kai.email, str(kai.hire_date), kai.manager.code) == (
        "Kai Li", "kai@x.com", "2021-02-03", "M1")
    import_employees(session, "blank.csv",
                     data=b"code,name,email,team,level\nK1,Kai Li,,North,S1\n")
    session.refresh(kai)
    assert kai.email in ("", None) and kai.manager.code == "M1"


def test_a_bulk_import_leaves_postgresql_statistics_of_its_rows(org: Session,
                                                                monkeypatch) -> None:
    """Without statistics PostgreSQL reads a table of fresh rows as empty and plans
    nested loops over them; a bulk write analyses its table (SQLite: nothing to do)."""
    from sqlalchemy import text

    from engine import bulk

    if org.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    monkeypatch.setattr(bulk, "ANALYZE_AFTER", 2)
    rows = "".join(f"2026-0{m},E{e},100\n" for m in (3, 4) for e in (1, 2, 3))
    import_results(org, "bulk.csv", data=f"period,employee_code,quota\n{rows}".encode())
    tuples = org.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'result_row'"))
    assert tuples >= 6
    # the columns a plan reads have statistics; the JSON document of values is not read
    analysed = set(org.scalars(text("SELECT attname FROM pg_stats "
                                    "WHERE tablename = 'result_row'")))
    assert {"employee_id", "period_id"} <= analysed
    assert "metric_values" not in analysed


@pytest.mark.parametrize(("rows", "periods", "said"), [
    (1, [], "f.csv: 1 row, 1 created, 0 updated"),
    (1, ["2026-01"], "f.csv: 1 row, 1 created, 0 updated; period 2026-01"),
    (16418, [], "f.csv: 16,418 rows, 16,418 created, 0 updated"),
    (2, ["2026-01", "2026-02"], "f.csv: 2 rows, 2 created, 0 updated; periods 2026-01, 2026-02"),
])
def test_an_imports_summary_counts_in_words_people_read(rows: int, periods: list[str],
                                                        said: str) -> None:
    """It said "1 rows" and "16418 created"."""
    report = ImportReport("results", "f.csv", rows=rows, created=rows, updated=0,
                          periods=periods)
    assert report.summary() == said
