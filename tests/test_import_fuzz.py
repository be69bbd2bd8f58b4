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
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import imports
from engine.cells import metric_column
from engine.errors import ImportFileError
from engine.imports import EMPLOYEE_COLUMNS, import_employees, import_results
from engine.metrics import metric_range
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


# --- the plain CSV reading and column checks against the row-by-row ones ---------------------

PLAIN_NAMES = {"results": ["period", "employee_code", "visits", "quota", "nps"],
               "employees": ["code", "name", "team", "level", "email"]}


@st.composite
def plain_csv_files(draw: st.DrawFn, kind: str) -> bytes:
    """Files that are mostly plain (no quote, the header's cells on each line), now and then
    with a space around a cell, an empty cell or line, a row too short or too long."""
    top = draw(st.lists(st.sampled_from(PLAIN_NAMES[kind]), min_size=1, max_size=5))
    cell = st.one_of(*(RIGHT[name].map(str) for name in top), st.sampled_from(
        ["", " ", " 1", "2 ", "-0", "1.5", "E9", "2026-02"]))
    lines = [top]
    for _ in range(draw(st.integers(0, 5))):
        row = [draw(cell) for _ in top]
        if draw(st.integers(0, 9)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, draw(cell)]
        lines.append(row)
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(",".join(map(str, line)) for line in lines) + draw(
        st.sampled_from([end, "", end * 2]))
    return text.encode()


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ImportFileError as err:
        return str(err)


def read_all(name: str, data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    header, body = imports.read_table(name, data)
    return header, [(number, list(cells)) for number, cells in body]


def row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "_plain_csv", lambda text: None)


@pytest.mark.parametrize("kind", ["results", "employees"])
@FUZZ
@given(data=st.data())
def test_a_csv_file_reads_the_same_as_columns_or_row_by_row(kind: str, data: st.DataObject
                                                            ) -> None:
    """Whatever read_table gives as Columns, it gives row by row too (the csv module)."""
    file = data.draw(st.one_of(plain_csv_files(kind), csv_files(kind)))
    fast = outcome(lambda: read_all("f.csv", file))
    with pytest.MonkeyPatch.context() as mp:
        row_by_row(mp)
        assert outcome(lambda: read_all("f.csv", file)) == fast


def stored_results(session: Session) -> list[tuple[str, str, str]]:
    return sorted(session.execute(
        select(Employee.code, Period.code, ResultRow.values).join(ResultRow.employee)
        .join(ResultRow.period)).all())


@FUZZ
@given(data=st.data())
def test_a_results_file_imports_the_same_as_columns_or_row_by_row(
        seeded: Session, data: st.DataObject) -> None:
    """The same report, stored values and refusal (file, row, column, reason) either way."""
    file = data.draw(st.one_of(plain_csv_files("results"), csv_files("results")))

    def load() -> Any:
        try:
            report = import_results(seeded, "f.csv", data=file)
            return report.summary(), stored_results(seeded)
        except ImportFileError as err:
            return str(err)
        finally:
            seeded.rollback()

    fast = load()
    with pytest.MonkeyPatch.context() as mp:
        row_by_row(mp)
        assert load() == fast


# What a column of cells held before it was checked on its joined text: each cell one of
# these patterns (or empty), and in the metric's range.
PLAIN_CELL = {True: re.compile(r"[0-9]+"), False: re.compile(r"-?[0-9]+(?:\.[0-9]{1,6}0*)?")}
EDGES = st.sampled_from([
    "", "100", "100.000001", "100.0000010", "-100", "-100.0000001", "-0", "-0.00", "0.00",
    "0.0000001", "1.1234560", "999999999999999", "1000000000000000", "-1", "1.5", "-2.25",
    "999999999999999999.999999", "1000000000000000000", "99999999999999999",
    "-1000000", "1000000", "1000000.000001", "007", "0.5", "1", "0.4999999"])
ODD = st.one_of(st.sampled_from(["1e3", "١٢", "1_0", "1.2.3", "1..2", "-", ".5", "5.", "-.5",
                                 "--1", "1-2", "1\n2", " 1", "+1"]),
                st.text(alphabet="0123456789.-", max_size=9))
NUMBERISH = st.one_of(EDGES, EDGES, EDGES, st.integers(0, 7).flatmap(
    lambda places: st.decimals(-10**7, 10**7, places=places)).map(str), ODD)


@st.composite
def columns(draw: st.DrawFn) -> tuple[list[str], str, Decimal | None, Decimal | None]:
    """A metric's type and bounds, and cells: edges, numbers, odd texts, and numbers at, just
    inside and just outside the metric's range."""
    mtype = draw(st.sampled_from(["money", "count", "score", "ratio"]))
    low, high = (None if b is None else Decimal(b) for b in draw(st.sampled_from(
        [(None, None), ("0", "100"), ("-100", "100"), ("0", "1"), ("0.5", None),
         (None, "-1")])))
    lo, hi = metric_range(mtype, low, high)
    step = st.sampled_from([Decimal(0), Decimal(1), Decimal("0.000001"), Decimal("0.0000001")])
    near = st.tuples(st.sampled_from([lo, hi, -lo, -hi]), step, st.sampled_from([1, -1])).map(
        lambda b: format(b[0] + b[1] * b[2], "f"))
    texts = draw(st.lists(st.one_of(NUMBERISH, near), min_size=1, max_size=4))
    return texts, mtype, low, high


@settings(FUZZ, max_examples=10 * FUZZ.max_examples)
@given(case=columns())
def test_a_column_passes_whole_exactly_when_each_cell_is_plain_and_in_range(
        case: tuple[list[str], str, Decimal | None, Decimal | None]) -> None:
    texts, mtype, low, high = case
    lo, hi = metric_range(mtype, low, high)
    pattern = PLAIN_CELL[mtype == "count"]
    plain = all(t == "" or (pattern.fullmatch(t) and lo <= Decimal(t) <= hi) for t in texts)
    got = metric_column(texts, mtype, low, high)
    if not plain:
        assert got is None
        return
    # a negative zero is kept as 0
    assert got == ([None if t == "" else "0" if t[0] == "-" and Decimal(t) == 0 else t
                    for t in texts], "" in texts)
