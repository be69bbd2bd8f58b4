"""Any bytes an importer is given import, or are refused with one ImportFileError.

Hypothesis writes CSV and XLSX files from cells that are mostly almost right (real column
names, employee codes, periods and numbers next to control characters, odd digits, huge
exponents, formulas, booleans and dates), sometimes damaged byte by byte. No other
exception may come out, and a refused file leaves the database as it was.

Bounded for CI: a fixed seed and LAUREL_FUZZ_EXAMPLES examples per test (100); set it
higher, and LAUREL_FUZZ_RANDOM=1, to search longer.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import ImportFileError
from engine.imports import EMPLOYEE_COLUMNS, import_employees, import_results
from engine.models import AuditLog, Employee, Period, ResultRow, Team

FUZZ = settings(
    max_examples=int(os.environ.get("LAUREL_FUZZ_EXAMPLES", "100")),
    derandomize=not os.environ.get("LAUREL_FUZZ_RANDOM"),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
IMPORTERS: dict[str, Callable[..., Any]] = {"employees": import_employees,
                                            "results": import_results}
COLUMNS = {
    "results": ["period", "employee_code", "visits", "quota", "satisfaction", "nps",
                "max_discount_pct", "revenue_total", "bogus", ""],
    "employees": [*EMPLOYEE_COLUMNS, "salary", ""],
}
NEARLY = st.sampled_from([
    "2026-02", "2026-Q1", "2026", "0000-01", "２０２６-05", "١٩٩٩-05", "1899-12", "9999-12",
    "N1", "N2", "S1", "S2", "E9", "North", "South", "M1", "S3", "growth", "startup",
    "a@example.com", "2024-01-02", "0001-01-01", "２０２４-01-01",
    "=1+2", "@SUM(A1)", "+1", "-3", "1e999999999", "1e-999999999", "1e9999999999999999999",
    "1_000", "NaN", "-Infinity", "１２３", "1.5", "100", "1E+3", "0.0000001", "", " ",
    "a\x00b", "a\tb", "a\nb", "\u2028", "x" * 1001,
])
CELL = st.one_of(NEARLY, NEARLY, st.text(max_size=6), st.integers(-10**20, 10**20).map(str),
                 st.decimals(places=3).map(str))
XLSX_CELL = st.one_of(
    CELL.map(lambda text: ILLEGAL_CHARACTERS_RE.sub("", text)),
    st.integers(-10**20, 10**20), st.floats(), st.booleans(), st.none(),
    st.dates(dt.date(1900, 3, 1), dt.date(9999, 12, 31)),
    st.sampled_from(["=1+2", "=A1*2", "=#REF!"]))


# What each column mostly holds: right, so that a file gets past its first rows.
RIGHT: dict[str, st.SearchStrategy[Any]] = {
    "period": st.sampled_from(["2026-02", "2026-03", "2026-Q2", "2027"]),
    "employee_code": st.sampled_from(["N1", "N2", "S1"]),
    "visits": st.integers(0, 40),
    "quota": st.decimals(0, 10**6, places=2),
    "satisfaction": st.integers(0, 100),
    "nps": st.integers(-100, 100),
    "max_discount_pct": st.decimals(0, 1, places=2),
    "code": st.sampled_from(["N1", "N3", "E7", "E8"]),
    "name": st.text(st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=8),
    "email": st.sampled_from(["", "a@example.com"]),
    "team": st.sampled_from(["North", "South", "East"]),
    "region": st.sampled_from(["", "Beijing"]),
    "level": st.sampled_from(["S1", "S2", "M1"]),
    "manager_code": st.sampled_from(["", "N1", "S1"]),
    "hire_date": st.dates(dt.date(1900, 1, 1)).map(dt.date.isoformat),
    "team_stage": st.sampled_from(["", "growth", "mature"]),
}


def header(kind: str) -> st.SearchStrategy[list[str]]:
    names = COLUMNS[kind]
    usual = names[:4] if kind == "results" else ["code", "name", "team", "level"]
    return st.one_of(st.just(usual), st.just(usual), st.lists(st.sampled_from(names),
                                                               max_size=6),
                     st.lists(st.sampled_from(names[:-1]), max_size=4, unique=True).map(
                         lambda h: usual + [c for c in h if c not in usual]))


@st.composite
def rows(draw: st.DrawFn, top: list[str], wild: st.SearchStrategy[Any]) -> list[list[Any]]:
    """Rows of mostly right cells under this header, a wild one now and then."""
    out = []
    for _ in range(draw(st.integers(0, 4))):
        row = [draw(wild) if draw(st.integers(0, 15)) == 0 else draw(RIGHT.get(name, wild))
               for name in top]
        if draw(st.integers(0, 15)) == 0:
            row.append(draw(wild))
        out.append(row)
    return out


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """The bytes, now and then with a few bytes put in or overwritten somewhere."""
    if draw(st.integers(0, 5)):
        return data
    for _ in range(draw(st.integers(1, 2))):
        # a place drawn apart from the length: an XLSX file's length varies with its time
        at = draw(st.integers(0, 1000)) * len(data) // 1000
        piece = draw(st.binary(min_size=1, max_size=3))
        data = data[:at] + piece + data[at + draw(st.integers(0, 1)) * len(piece):]
    return data


@st.composite
def csv_files(draw: st.DrawFn, kind: str) -> bytes:
    top = draw(header(kind))
    out = io.StringIO()
    csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows(
        [top, *draw(rows(top, CELL))])
    return draw(damaged(out.getvalue().encode()))


@st.composite
def xlsx_files(draw: st.DrawFn, kind: str) -> bytes:
    top = draw(header(kind))
    book = openpyxl.Workbook()
    for row in [top, *draw(rows(top, XLSX_CELL))]:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return draw(damaged(out.getvalue()))


def state(session: Session) -> dict[str, list[tuple[str, ...]]]:
    return {m.__tablename__: sorted(tuple(map(str, r)) for r in session.execute(
        select(m.__table__)).all())
        for m in (Employee, Team, Period, ResultRow, AuditLog)}


@pytest.fixture()
def seeded(session: Session) -> Session:
    import_employees(session, "e.csv", data=b"code,name,team,level,manager_code\n"
                     b"N1,Nora,North,M1,\nN2,Ned,North,S1,N1\nS1,Sam,South,M1,\n")
    import_results(session, "r.csv", data=b"period,employee_code,quota\n2026-01,N1,100\n")
    session.commit()
    return session


def imports_or_refuses(session: Session, kind: str, name: str, data: bytes) -> None:
    before = state(session)
    try:
        IMPORTERS[kind](session, name, data=data)
        event("imported")
    except ImportFileError as err:
        event(f"refused: {err.reason[:24]}")
        assert "\n" not in str(err) and str(err).startswith(name)
        assert state(session) == before
    finally:
        session.rollback()


FILES = {"csv": csv_files, "xlsx": xlsx_files}


@pytest.mark.parametrize("kind", ["results", "employees"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@FUZZ
@given(data=st.data())
def test_any_file_imports_or_is_refused(seeded: Session, kind: str, fmt: str,
                                        data: st.DataObject) -> None:
    imports_or_refuses(seeded, kind, f"fuzz.{fmt}", data.draw(FILES[fmt](kind)))
