"""Imports of employees and period results from CSV or XLSX (CONTRACT.md, Files).

A file is validated whole before anything is written: one bad row rejects the file and
the error names the file, the row (as a spreadsheet shows it: the header is row 1) and the
column. The caller's transaction is left untouched on error.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import assignments, bulk, periods
from engine.cells import (
    MAX_TEXT,
    CellError,
    formula_problem,
    metric_column,
    metric_value,
    quoted,
    text_problem,
)
from engine.db import audit
from engine.errors import ImportFileError, PeriodError
from engine.messages import msg
from engine.models import (
    TEAM_STAGES,
    Employee,
    Level,
    Metric,
    Period,
    ResultRow,
    Team,
)
from engine.rollup import value_text

EMPLOYEE_COLUMNS = ["code", "name", "email", "team", "region", "level", "manager_code",
                    "hire_date", "team_stage", "effective_date", "leave_date"]
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
        counts = {"file": self.file, "rows": f"{self.rows:,}", "created": f"{self.created:,}",
                  "updated": f"{self.updated:,}"}
        if self.rows == 1:  # "1 rows" was said
            if self.periods:
                return msg("%(file)s: 1 row, %(created)s created, %(updated)s updated; "
                           "period %(periods)s", periods=", ".join(self.periods), **counts)
            return msg("%(file)s: 1 row, %(created)s created, %(updated)s updated", **counts)
        if self.periods:
            return msg("%(file)s: %(rows)s rows, %(created)s created, %(updated)s updated; "
                       "periods %(periods)s", periods=", ".join(self.periods), **counts)
        return msg("%(file)s: %(rows)s rows, %(created)s created, %(updated)s updated",
                   **counts)


# --- reading ------------------------------------------------------------------------------

# The largest file any door takes (the back office, the command line): about 500,000 rows
# of ten metrics, more than a month of a 50,000-person sales force; split a larger one.
MAX_FILE_BYTES = 50 * 1024 * 1024
# An XLSX file is a zip: what its parts declare unpacked (zipfile holds them to it).
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
MAX_ROWS = 1_000_000
MAX_COLUMNS = 500


_SUSPECT = re.compile('["\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]')


class _BadCell(Exception):
    """A refused cell, raised where the header's names are not known yet."""

    def __init__(self, row: int, index: int, reason: str) -> None:
        super().__init__(reason)
        self.row, self.index, self.reason = row, index, reason


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _check_cells(number: int, cells: list[str]) -> None:
    for index, text in enumerate(cells):
        problem = text_problem(text)
        if problem:
            raise _BadCell(number, index, problem)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        # As the spreadsheet shows it: a double holds 15 significant digits, so 0.1 + 0.2
        # is 0.3, not 0.30000000000000004.
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    return str(value).strip()


class Columns:
    """A table's rows read column by column (read_table's body for a plain CSV file):
    ``numbers`` are the rows' numbers, ``columns`` each column's cells in the header's
    order. Iterated, it gives (row number, cells) as a body read row by row does."""

    def __init__(self, numbers: Sequence[int], columns: list[list[str]]) -> None:
        self.numbers, self.columns = numbers, columns

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        return zip(self.numbers, map(list, zip(*self.columns, strict=True)), strict=True)


def _csv_text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(name, msg("is not UTF-8 text (save it as CSV UTF-8)")) from None


def _suspect(text: str) -> bool:
    """Whether the text has a control character other than a line's end, or a quote (a
    quoted cell may hold a line break): only then are cells checked one by one."""
    if text.isascii():  # one pass in C: delete every byte that is fine, see what is left
        return bool(text.encode("ascii").translate(None, _FINE_ASCII))
    return _SUSPECT.search(text) is not None


_FINE_ASCII = bytes(range(0x20, 0x7F)).replace(b'"', b"") + b"\n\r"


def _plain_csv(text: str) -> tuple[list[str], Columns] | None:
    """The header and columns of CSV text that needs no CSV reader, else None: no quote,
    no control character but line ends (LF, or CR LF), no cell longer than MAX_TEXT, no
    more than MAX_ROWS rows, and every line with the header's number of cells, none of
    them empty or blank. The cells are what read_table's row-by-row reading gives; this
    reads them in a few passes over the whole text, not a call a row (a large results
    file was read at half the speed its checks and COPY go)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    if _suspect(text):
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines or len(lines) - 1 > MAX_ROWS:
        return None
    long = max(map(len, lines)) > MAX_TEXT  # then a cell may be
    header = lines[0].split(",")
    width = len(header)
    if width > MAX_COLUMNS or set(map(str.count, lines, itertools.repeat(","))) != {width - 1}:
        return None
    rows = len(lines) - 1
    del lines
    body = text[text.index("\n") + 1:].removesuffix("\n") if rows else ""
    flat = body.replace("\n", ",").split(",") if rows else []
    columns = [flat[i::width] for i in range(width)]
    del flat, body
    if long and any(max(map(len, col), default=0) > MAX_TEXT for col in [header, *columns]):
        return None
    if " " in text:
        header = [h.strip(" ") for h in header]
        for i, col in enumerate(columns):
            joined = "\n".join(col)
            if joined[:1] == " " or joined[-1:] == " " or "\n " in joined or " \n" in joined:
                columns[i] = [c.strip(" ") for c in col]
    # a row of empty cells is skipped, and a header ending in empty names is cut short:
    # read row by row
    if header[-1] == "" or (rows and all("" in col for col in columns)):
        return None
    return header, Columns(range(2, rows + 2), columns)


def _csv_rows(name: str, text: str) -> Iterator[tuple[int, list[str]]]:
    suspect = _suspect(text)
    # Likewise spaces to strip.
    spaces = " " in text
    # newline="": a line may end in CR LF, LF or a bare CR (csv reads all three).
    # strict: a quote left open or text after a closing quote is refused, not guessed at
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    number, start = 0, 0
    try:
        for number, raw in enumerate(reader, start=1):
            # spaces only: a tab, a line break or any other control character at either
            # end is refused by the cell check, never dropped
            cells = [c.strip(" ") for c in raw] if spaces else raw
            if len(cells) > MAX_COLUMNS and any(cells[MAX_COLUMNS:]):
                raise ImportFileError(name, msg("has %(cells)s cells; a file has at most "
                                                "%(max_columns)s columns",
                                                cells=format(len(cells), ','),
                                                max_columns=MAX_COLUMNS), row=number)
            if suspect or max(map(len, cells), default=0) > MAX_TEXT:
                _check_cells(number, cells)
            start = reader.line_num
            yield number, cells
    except csv.Error as exc:
        limit = csv.field_size_limit()
        if "field limit" not in str(exc):
            raise ImportFileError(name, msg("cannot be read as CSV (%(exc)s)", exc=exc),
                                  row=number + 1
                                  ) from None
        raise _BadCell(number + 1, _long_cell(text, start), f"the cell has more than "
                       f"{limit:,} characters; a cell holds at most {MAX_TEXT:,}") from None


def _long_cell(text: str, start: int) -> int:
    """The index of the first cell longer than MAX_TEXT of the record at line ``start``."""
    lines = io.StringIO(text, newline="")
    for _ in range(start):
        next(lines)
    index, length, quoted = 0, 0, False
    for line in lines:
        for ch in line:
            if ch == '"':
                quoted = not quoted
            elif ch == "," and not quoted:
                index, length = index + 1, 0
            else:
                length += 1
                if length > MAX_TEXT:
                    return index
    return index


def _xlsx_rows(name: str, data: bytes) -> Iterator[tuple[int, list[str]]]:
    """The first worksheet's rows, from the cells the file holds.

    The declared dimension is ignored: a 5 KB file may declare A1:XFD200000, and openpyxl's
    own iteration pads every row to it. A formula is read as its saved value; one without a
    saved value (written by a program, never opened in a spreadsheet) is refused, not read
    as empty.
    """
    import zipfile

    import openpyxl
    from openpyxl.worksheet._reader import FORMULA_TAG, VALUE_TAG, WorkSheetParser

    unreadable = "is not a readable XLSX workbook"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except Exception as exc:  # zipfile too raises many kinds (NotImplementedError...)
        raise ImportFileError(name, msg("%(unreadable)s (%(exc)s)", unreadable=unreadable,
                                        exc=_one_line(exc))) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise ImportFileError(name, msg("unpacks to %(value)s MB; a workbook may unpack to at "
                                        "most %(value2)s MB",
                                        value=format(unpacked / 2**20, ',.0f'),
                                        value2=format(MAX_UNPACKED_BYTES // 2**20, ',')))

    class Parser(WorkSheetParser):
        def parse_cell(self, element: Any) -> dict[str, Any]:
            cell = super().parse_cell(element)
            value = cell["value"]
            if isinstance(value, float) and (not math.isfinite(value) or value == 0):
                # a number no double holds (1e999999999 is inf, 1e-999999999 is 0): read
                # it as written, so that the value checks refuse it as it is
                raw = (element.findtext(VALUE_TAG) or "").strip()
                if raw and (not math.isfinite(value) or raw.strip("+-0.eE")):
                    cell["value"] = raw
            # A saved empty text is <v></v> with t="str"; openpyxl and other writers leave
            # <v/> empty, or out, in a formula nobody calculated.
            if cell["value"] is None and element.find(FORMULA_TAG) is not None \
                    and element.get("t") != "str":
                cell["data_type"] = "unsaved formula"
            return cell

    # openpyxl warns of what it drops (styles, extensions, a date past 9999, read as an
    # error cell); warnings are left alone here: catch_warnings is not thread-safe.
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ImportFileError(name, msg("%(unreadable)s (%(exc)s)", unreadable=unreadable,
                                        exc=_one_line(exc))) from None
    try:
        if not book.worksheets:
            raise ImportFileError(name,
                                  msg("has no worksheet: the first worksheet must hold the table"))
        sheet = book.worksheets[0]
        source = sheet._get_source()
    except ImportFileError:
        book.close()
        raise
    except Exception as exc:
        book.close()
        raise ImportFileError(name, msg("%(unreadable)s (%(exc)s)", unreadable=unreadable,
                                        exc=_one_line(exc))) from None
    try:
        parser = Parser(source, sheet._shared_strings, data_only=True, epoch=book.epoch,
                        date_formats=book._date_formats,
                        timedelta_formats=book._timedelta_formats)
        parsed = parser.parse()
        while True:
            try:
                number, found = next(parsed)
            except StopIteration:
                break
            except Exception as exc:
                raise ImportFileError(name, msg("%(unreadable)s (%(exc)s)", unreadable=unreadable,
                                                exc=_one_line(exc))) from None
            row = _sheet_row(number, found)
            if row:
                yield number, row
    finally:
        source.close()
        book.close()


def _sheet_row(number: int, found: list[dict[str, Any]]) -> list[str]:
    """A worksheet row's cells as text, by column; [] for a row without a value."""
    cells: dict[int, str] = {}
    for cell in found:
        index = cell["column"] - 1
        if cell["data_type"] == "unsaved formula":
            raise _BadCell(number, index, msg("a formula without a saved value; open the "
                                              "file in a spreadsheet and save it again"))
        if cell["value"] is None:
            continue
        if cell["data_type"] == "e":
            raise _BadCell(number, index, msg("the cell holds the error %(error)s",
                                              error=cell["value"]))
        text = _cell_text(cell["value"])
        if text == "":
            continue
        if index >= MAX_COLUMNS:
            raise _BadCell(number, index, msg("a value in column %(column)s; a file has at "
                                              "most %(max_columns)s columns",
                                              column=_letter(index), max_columns=MAX_COLUMNS))
        problem = text_problem(text)
        if problem:
            raise _BadCell(number, index, problem)
        cells[index] = text
    if not cells:
        return []
    row = [""] * (max(cells) + 1)
    for index, text in cells.items():
        row[index] = text
    return row


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _read_bytes(name: str, data: bytes | None, path: str | Path | None) -> bytes:
    """The file's bytes, refused past MAX_FILE_BYTES before more is read."""
    if data is None:
        file = Path(path or name)
        try:
            with file.open("rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
                size = max(len(data), os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            raise ImportFileError(name, msg("cannot be read: %(strerror)s",
                                            strerror=exc.strerror)) from None
    else:
        size = len(data)
    if size > MAX_FILE_BYTES:
        raise ImportFileError(name, msg("is %(value)s MB; a file may be at most %(value2)s MB "
                                        "(split it, by period for example)",
                                        value=format(size / 2**20, ',.1f'),
                                        value2=MAX_FILE_BYTES // 2**20))
    return data


def read_table(name: str, data: bytes | None = None, path: str | Path | None = None
               ) -> tuple[list[str], Iterable[tuple[int, list[str]]]]:
    """Return the header and (row number, cells) of a CSV or XLSX file.

    The rows come one by one, or as Columns (a plain CSV file), which give them too.
    Every cell is stripped text of at most MAX_TEXT characters with no control character;
    the header names each column once. A file of more than MAX_ROWS rows or MAX_COLUMNS
    columns is refused, and so is anything unreadable: every refusal is an ImportFileError
    naming the file, and the row and column where there is one.
    """
    data = _read_bytes(name, data, path)
    if name.lower().endswith((".xlsx", ".xlsm")):
        rows, plain = _xlsx_rows(name, data), None
    else:
        text = _csv_text(name, data)
        plain = _plain_csv(text)
        rows = iter(()) if plain else _csv_rows(name, text)
        del text
    names: list[str] = []

    def refuse(bad: _BadCell) -> ImportFileError:
        named = bad.index < len(names) and names[bad.index]
        return ImportFileError(name, bad.reason, row=bad.row,
                               column=names[bad.index] if named else _letter(bad.index))

    if plain:
        header = plain[0]
    else:
        try:
            number, header = next(rows, (0, []))
        except _BadCell as bad:
            raise refuse(bad) from None
        if number != 1 or not any(header):
            try:
                more = number > 1 or any(any(cells) for _, cells in rows)
            except _BadCell:
                more = True
            if not more:
                raise ImportFileError(name, msg("is empty: a header row is needed"))
            raise ImportFileError(name, msg("the header row is empty"), row=1)
        while header and header[-1] == "":
            header.pop()
    if len(header) > MAX_COLUMNS:
        raise ImportFileError(name, msg("has %(header)s columns; a file has at most "
                                        "%(max_columns)s", header=format(len(header), ','),
                                        max_columns=MAX_COLUMNS), row=1)
    for index, title in enumerate(header):
        if title == "":
            raise ImportFileError(name, msg("the column has no name: name it or delete it"),
                                  row=1, column=_letter(index))
    twice = [h for h, n in Counter(header).items() if n > 1]
    if twice:
        raise ImportFileError(name, msg("column %(twice)s appears twice", twice=repr(twice[0])),
                              row=1,
                              column=twice[0])
    if plain:
        return header, plain[1]
    names[:] = header
    width = len(header)

    def body() -> Iterator[tuple[int, list[str]]]:
        count = 0
        try:
            for number, cells in rows:
                if not any(cells):
                    continue
                count += 1
                if count > MAX_ROWS:
                    raise ImportFileError(name, msg("has more than %(max_rows)s rows; split it "
                                                    "(by period, for example)",
                                                    max_rows=format(MAX_ROWS, ',')), row=number)
                if len(cells) > width and any(cells[width:]):
                    raise ImportFileError(name, msg("has %(cells)s cells but the header has "
                                                    "%(width)s columns", cells=len(cells),
                                                    width=width), row=number)
                yield number, cells if len(cells) == width else (cells + [""] * width)[:width]
        except _BadCell as bad:
            raise refuse(bad) from None

    return header, body()


# The reasons the row schema gives (marshmallow's words and ours), as messages the back
# office says in the reader's language; the English stays as marshmallow writes it.
_SCHEMA_REASONS = [(re.compile(pattern), template) for pattern, template in (
    (r"Missing data for required field", "Missing data for required field"),
    (r"Not a valid date", "Not a valid date"),
    (r"Not a valid email address", "Not a valid email address"),
    (r"Not a valid string", "Not a valid string"),
    (r"Field may not be null", "Field may not be null"),
    (r"Shorter than minimum length (?P<min>\d+)", "Shorter than minimum length %(min)s"),
    (r"Longer than maximum length (?P<max>\d+)", "Longer than maximum length %(max)s"),
    (r"must be from (?P<first>\S+) to (?P<last>\S+)", "must be from %(first)s to %(last)s"),
    (r"must be one of startup, growth, mature", "must be one of startup, growth, mature"),
    (r"must not begin with =, \+, - or @: a spreadsheet would run it as a formula",
     "must not begin with =, +, - or @: a spreadsheet would run it as a formula"),
)]


def _schema_reason(reason: str) -> str:
    """A reason of the row schema as a message (engine.messages), else as it is."""
    for pattern, template in _SCHEMA_REASONS:
        found = pattern.fullmatch(reason)
        if found:
            return msg(template, **found.groupdict())
    return reason


def _first_error(name: str, number: int, err: ValidationError) -> ImportFileError:
    messages = err.normalized_messages()
    column, reasons = next(iter(messages.items()))
    reason = reasons[0] if isinstance(reasons, list) else str(reasons)
    return ImportFileError(name, _schema_reason(reason.rstrip(".")), row=number, column=column)


def table_rows(name: str, header: list[str], rows: Iterable[list[str]]
               ) -> Iterator[tuple[int, list[str]]]:
    """Rows of cells from another source than a file (the API's batches), numbered as a
    file's are (row 2 is the first after the header) and checked as a file's cells are."""
    for number, cells in enumerate(rows, start=2):
        if number - 1 > MAX_ROWS:
            raise ImportFileError(name, f"more than {MAX_ROWS:,} rows; split it", row=number)
        for index, text in enumerate(cells):
            problem = text_problem(text)
            if problem:
                raise ImportFileError(name, problem, row=number, column=header[index])
        yield number, cells


# --- employees ----------------------------------------------------------------------------


def _not_a_formula(text: str) -> None:
    problem = formula_problem(text)
    if problem:
        raise ValidationError(problem)


def _date_field() -> fields.Date:
    """An optional ISO date of the years a period may have."""
    return fields.Date(load_default=None, validate=validate.Range(
        min=dt.date(periods.FIRST_YEAR, 1, 1), max=dt.date(periods.LAST_YEAR, 12, 31),
        error=f"must be from {periods.FIRST_YEAR}-01-01 to {periods.LAST_YEAR}-12-31"))


class EmployeeRowSchema(Schema):
    # A code is matched and written to payroll files as it is: one that a spreadsheet would
    # run is refused. A name is kept as written and made harmless on export
    # (engine.cells.csv_cell).
    code = fields.String(required=True, validate=[validate.Length(min=1, max=40),
                                                  _not_a_formula])
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    # The lengths are the columns' sizes: PostgreSQL would refuse a longer value only at
    # flush, after other rows were written.
    email = fields.Email(load_default="", validate=validate.Length(max=200))
    team = fields.String(required=True, validate=validate.Length(min=1, max=100))
    region = fields.String(load_default="", validate=validate.Length(max=100))
    level = fields.String(required=True)
    manager_code = fields.String(load_default="", validate=[validate.Length(max=40),
                                                           _not_a_formula])
    hire_date = _date_field()
    team_stage = fields.String(load_default="", validate=validate.OneOf(
        ("",) + TEAM_STAGES, error="must be one of startup, growth, mature"))
    # The row's team, level and manager hold from this date (engine.assignments).
    effective_date = _date_field()
    # The last day the employee is paid for.
    leave_date = _date_field()


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_FIRST_DAY, _LAST_DAY = dt.date(periods.FIRST_YEAR, 1, 1), dt.date(periods.LAST_YEAR, 12, 31)
_EMAIL = validate.Email()


def is_email(text: str) -> bool:
    """Whether an employees file's email column takes this text (the back office's
    employee form checks the same)."""
    try:
        _EMAIL(text)
    except ValidationError:
        return False
    return True


def _plain_employee(raw: dict[str, str]) -> dict[str, Any] | None:
    """The row EmployeeRowSchema loads from ``raw`` when every cell is plainly valid, else
    None (the schema then reads the row and says what is wrong): the schema cost more than
    the rest of a large import."""
    code, person, team, level = (raw.get("code"), raw.get("name"), raw.get("team"),
                                 raw.get("level"))
    if not (code and person and team and level) or len(code) > 40 or len(person) > 200 \
            or len(team) > 100 or formula_problem(code) \
            or raw.get("effective_date") or raw.get("leave_date"):
        return None  # dated rows go through the schema
    email, region = raw.get("email", ""), raw.get("region", "")
    manager, stage, hired = (raw.get("manager_code", ""), raw.get("team_stage", ""),
                             raw.get("hire_date"))
    if len(email) > 200 or len(region) > 100 or len(manager) > 40 \
            or (manager and formula_problem(manager)) or (stage and stage not in TEAM_STAGES):
        return None
    if email:
        try:
            _EMAIL(email)
        except ValidationError:
            return None
    if hired is not None:
        if not _ISO_DATE.fullmatch(hired):
            return None
        try:
            hired = dt.date.fromisoformat(hired)
        except ValueError:
            return None
        if not _FIRST_DAY <= hired <= _LAST_DAY:
            return None
    return {"code": code, "name": person, "email": email, "team": team, "region": region,
            "level": level, "manager_code": manager, "hire_date": hired, "team_stage": stage,
            "effective_date": None, "leave_date": None}


def import_employees(session: Session, name: str, data: bytes | None = None,
                     path: str | Path | None = None) -> ImportReport:
    """Create or update employees and their teams from a file; all rows or none."""
    header, body = read_table(name, data, path)
    return import_employee_table(session, name, header, body)


@bulk.quiet_collector()
def import_employee_table(session: Session, name: str, header: list[str],
                          body: Iterable[tuple[int, list[str]]]) -> ImportReport:
    """Create or update employees and their teams given as a table (a header, then numbered
    rows of cells as text): what import_employees does with a file's table, with the same
    checks, and what the API's batches of employees go through."""
    unknown = [h for h in header if h not in EMPLOYEE_COLUMNS]
    if unknown:
        raise ImportFileError(name, msg("unknown column %(column)s; the columns are "
                                        "%(columns)s", column=repr(unknown[0]),
                                        columns=",".join(EMPLOYEE_COLUMNS)),
                              row=1, column=unknown[0])
    missing = [c for c in EMPLOYEE_REQUIRED if c not in header]
    if missing:
        raise ImportFileError(name, msg("required column %(missing)s is missing",
                                        missing=repr(missing[0])), row=1,
                              column=missing[0])
    levels = {lv.code: lv for lv in session.scalars(select(Level))}
    existing = set(session.scalars(select(Employee.code)))
    schema = EmployeeRowSchema()
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    team_said: dict[tuple[str, str], tuple[str, int]] = {}
    for number, cells in body:
        raw = {h: c for h, c in zip(header, cells, strict=True) if c != ""}
        row = _plain_employee(raw)
        if row is None:
            try:
                row = schema.load(raw)
            except ValidationError as err:
                raise _first_error(name, number, err) from None
        if row["code"] in seen:
            raise ImportFileError(name, msg("employee %(row)s appears twice (rows %(seen)s and "
                                            "%(number)s)", row=row['code'],
                                            seen=seen[row['code']], number=number),
                                  row=number, column="code")
        seen[row["code"]] = number
        if row["leave_date"] and row["effective_date"] \
                and row["leave_date"] < row["effective_date"]:
            raise ImportFileError(name, msg("employee %(code)s leaves on %(leave)s, before the "
                                            "effective date %(effective)s", code=row["code"],
                                            leave=row["leave_date"],
                                            effective=row["effective_date"]),
                                  row=number, column="leave_date")
        if row["level"] not in levels:
            raise ImportFileError(name, msg("unknown level %(level)s; the levels are "
                                            "%(levels)s", level=repr(row["level"]),
                                            levels=", ".join(sorted(levels))),
                                  row=number, column="level")
        for column in ("team_stage", "region"):  # a team has one of each: rows must agree
            value = row[column]
            if value:
                other, first = team_said.setdefault((row["team"], column), (value, number))
                if other != value:
                    raise ImportFileError(name, msg(
                        "team %(team)s has %(column)s %(value)s here but %(other)s in row "
                        "%(first)s", team=row["team"], column=column, value=repr(value),
                        other=repr(other), first=first), row=number, column=column)
        rows.append((number, row))
    codes = set(seen)
    for number, row in rows:
        mc = row["manager_code"]
        if mc and mc not in codes and mc not in existing:
            raise ImportFileError(name, msg("manager %(mc)s does not exist", mc=mc), row=number,
                                  column="manager_code")
        if mc == row["code"]:
            raise ImportFileError(name, msg("an employee cannot be their own manager"), row=number,
                                  column="manager_code")
    if not rows:
        raise ImportFileError(name, msg("has no data rows"))

    report = ImportReport("employees", name, rows=len(rows))
    # Flushed first: what follows writes around the ORM, and the import's own audit entry
    # names the counts, not one entry an employee (a 100,000-row file wrote 100,000).
    session.flush()
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
    table = Employee.__table__
    fields_ = ("name", "email", "team_id", "level_id", "hire_date")
    current = {code: (eid, values, manager) for eid, code, manager, *values in session.execute(
        select(Employee.id, Employee.code, Employee.manager_id,
               *(table.c[f] for f in fields_)))}
    # A column the file leaves out keeps what an existing employee has (a file of codes,
    # names, teams and levels does not blank their emails, hire dates and managers).
    absent = [c for c in ("email", "hire_date", "manager_code") if c not in header]
    if absent:
        code_of = {eid: code for code, (eid, _, _) in current.items()}
        for _, row in rows:
            old = current.get(row["code"])
            if old is not None:
                kept = {"email": old[1][1] or "", "hire_date": old[1][4],
                        "manager_code": code_of.get(old[2]) or ""}
                row.update({c: kept[c] for c in absent})
    inserts, updates = [], []
    for _, row in rows:
        values = (row["name"], row["email"], teams[row["team"]].id,
                  levels[row["level"]].id, row["hire_date"])
        old = current.get(row["code"])
        if old is None:
            inserts.append((row["code"], *values))
        elif tuple(old[1]) != values:
            updates.append((*values, old[0]))
    bulk.insert_rows(session, table, ("code", *fields_), inserts, check_references=True)
    bulk.update_rows(session, table, fields_, updates)
    report.created = len(inserts)
    ids = dict(session.execute(select(Employee.code, Employee.id)).all())
    managers = {eid: manager for eid, _, manager in current.values()}
    managers_before = dict(managers)
    moved = []
    for _, row in rows:
        eid = ids[row["code"]]
        manager_id = ids[row["manager_code"]] if row["manager_code"] else None
        if managers.get(eid) != manager_id:
            moved.append((manager_id, eid))
            managers[eid] = manager_id
    bulk.update_rows(session, table, ("manager_id",), moved)
    bulk.analyze(session, table, rows=len(inserts) + len(updates))
    existing_ids = {eid for eid, _, _ in current.values()}
    report.updated = len({eid for *_, eid in updates}
                         | {eid for _, eid in moved if eid in existing_ids})
    # A team's manager: the manager most of its members report to, where that manager is in
    # the team; else the member who reports to nobody in the team.
    by_team: dict[int, list[int]] = {}
    for team_id, eid in session.execute(select(Employee.team_id, Employee.id)):
        by_team.setdefault(team_id, []).append(eid)
    for team_name in {r["team"] for _, r in rows}:
        team = teams[team_name]
        members = by_team.get(team.id, [])
        member_ids = set(members)
        votes = Counter(managers.get(e) for e in members if managers.get(e) in member_ids)
        manager_id = votes.most_common(1)[0][0] if votes else None
        if manager_id is None:
            heads = [e for e in members if managers.get(e) not in member_ids]
            manager_id = heads[0] if len(heads) == 1 else None
        if manager_id is not None and team.manager_id != manager_id:
            team.manager_id = manager_id
    # The session's own copies of the employees are read again from the database.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Employee):
            session.expire(obj)
    if "effective_date" in header or "leave_date" in header or assignments.any_dated(session):
        # dated employees (engine.assignments): each stands as their assignment in force
        # says, with the leave date the file gives
        imported = bulk.ids_in(session, "import_employee_ids", (ids[c] for c in codes))
        by_code = {e.code: e for e in session.scalars(
            select(Employee).where(Employee.id.in_(imported)))}
        was = {code: {"team_id": values[2], "level_id": values[3], "manager_id": manager}
               for code, (_, values, manager) in current.items() if code in codes}
        assignments.record(session, [r for _, r in rows], by_code, was, "leave_date" in header)
    before, after = _employee_changes(rows, current, managers_before, teams, levels, ids)
    audit(session, "import", "employee", summary=report.summary(), before=before or None,
          after={"file": name, "rows": report.rows, "created": report.created,
                 "updated": report.updated, "employees": after})
    session.flush()
    return report


TEAM_FIELDS = ("region", "stage")


def upsert_team(session: Session, name: str, region: str | None = None,
                stage: str | None = None) -> tuple[Team, bool]:
    """Create the team of this name or change its region and stage; True when created.

    The same limits as a file's team columns (team, region, team_stage); a value left None
    keeps what the team has.
    """
    for field_name, value, most in (("name", name, 100), ("region", region, 100)):
        if value is not None and len(value) > most:
            raise ImportFileError("team", msg("is %(text)s characters long; at most %(most)s",
                                              text=format(len(value), ","), most=most),
                                  column=field_name)
        problem = text_problem(value) if value is not None else None
        if problem:
            raise ImportFileError("team", problem, column=field_name)
    if not name.strip():
        raise ImportFileError("team", msg("is missing"), column="name")
    if stage is not None and stage not in TEAM_STAGES:
        raise ImportFileError("team", msg("must be one of startup, growth, mature"),
                              column="stage")
    team = session.scalar(select(Team).where(Team.name == name))
    created = team is None
    if team is None:
        team = Team(name=name, region=region or "", stage=stage)
        session.add(team)
    else:
        if region is not None:
            team.region = region
        if stage is not None:
            team.stage = stage
    session.flush()
    return team, created


def _employee_changes(rows: list[tuple[int, dict[str, Any]]],
                      current: dict[str, tuple[int, Any, int | None]],
                      managers: dict[int, int | None], teams: dict[str, Team],
                      levels: dict[str, Level], ids: dict[str, int]
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the import's audit entry keeps of each employee it created or changed: the
    values before (by code, the fields that changed) and after (every field of a new
    employee), as people read them (team, level and manager by name or code)."""
    team_of = {t.id: t.name for t in teams.values()}
    level_of = {lv.id: lv.code for lv in levels.values()}
    code_of = {eid: code for code, eid in ids.items()}
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for _, row in rows:
        new = {"name": row["name"], "email": row["email"], "team": row["team"],
               "level": row["level"], "hire_date": row["hire_date"] and
               row["hire_date"].isoformat(), "manager": row["manager_code"] or None}
        old = current.get(row["code"])
        if old is None:
            after[row["code"]] = new
            continue
        eid, (person, email, team_id, level_id, hired) = old[0], old[1]
        was = {"name": person, "email": email, "team": team_of.get(team_id),
               "level": level_of.get(level_id), "hire_date": hired and hired.isoformat(),
               "manager": code_of.get(managers.get(eid))}
        changed = [k for k in new if new[k] != was[k]]
        if changed:
            before[row["code"]] = {k: was[k] for k in changed}
            after[row["code"]] = {k: new[k] for k in changed}
    return before, after


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


def locked_period_of(session: Session, code: str) -> str | None:
    """The locked period that keeps this period's results from changing (itself, or the
    quarter or year holding it), or None."""
    return _locked_between(session, {code}).get(code)


def result_snapshot(session: Session, row: ResultRow) -> dict[str, Any]:
    """A row of results as the audit log keeps it: codes, and its values by metric key."""
    keys = dict(session.execute(select(Metric.id, Metric.key)).all())
    values = {keys.get(int(mid), mid): text for mid, text in (row.values or {}).items()}
    return {"employee": row.employee.code if row.employee else None,
            "period": row.period.code if row.period else None,
            "values": {k: values[k] for k in sorted(values)}}


def _result_summary(row: ResultRow) -> str:
    return f"{row.employee.code} {row.period.code}"


def result_edited(session: Session, row: ResultRow, created: bool,
                  before: dict[str, Any] | None, old_period: str | None) -> None:
    """Record a row of results made or changed by hand (the back office's form), in the
    caller's transaction: an audit entry, and runs that read the old values stale.
    Results are not audited row by row by the session; a hand edit is, here.
    The caller has refused a locked period (locked_period_of)."""
    session.flush()
    after = result_snapshot(session, row)
    audit(session, "create" if created else "update", "result", row.id,
          summary=_result_summary(row), before=before, after=after)
    if before != after:
        periods.results_changed(session, {row.period.code}
                                | ({old_period} if old_period else set()), "edit")


def result_deleted(session: Session, row: ResultRow) -> None:
    """Record a row of results deleted by hand (its employee leaves the period's
    population): an audit entry, and runs that read it stale."""
    audit(session, "delete", "result", row.id, summary=_result_summary(row),
          before=result_snapshot(session, row))
    periods.results_changed(session, {row.period.code}, "edit")


def import_results(session: Session, name: str, data: bytes | None = None,
                   path: str | Path | None = None) -> ImportReport:
    """Load period results from a file; all rows or none (CONTRACT.md, Files)."""
    header, body = read_table(name, data, path)
    return import_result_table(session, name, header, body)


@bulk.quiet_collector()
def import_result_table(session: Session, name: str, header: list[str],
                        body: Iterable[tuple[int, list[str]]]) -> ImportReport:
    """Load results given as a table (a header, then numbered rows of cells as text):
    what import_results does with a file's table, with the same checks, and what other
    sources of results (a review cycle's scores) go through."""
    for col in ("period", "employee_code"):
        if col not in header:
            raise ImportFileError(name, msg("required column %(col)s is missing", col=repr(col)),
                                  row=1, column=col)
    metrics = {m.key: m for m in session.scalars(select(Metric))}
    metric_cols: list[tuple[int, Metric]] = []
    for idx, col in enumerate(header):
        if col in ("period", "employee_code"):
            continue
        metric = metrics.get(col)
        if metric is None:
            raise ImportFileError(name, msg("unknown metric column %(col)s", col=repr(col)),
                                  row=1, column=col)
        if metric.formula:
            raise ImportFileError(name, msg("%(col)s is a derived metric (%(formula)s) and "
                                            "cannot be imported", col=col,
                                            formula=metric.formula), row=1, column=col)
        metric_cols.append((idx, metric))
    p_idx, e_idx = header.index("period"), header.index("employee_code")
    # Plain tuples: ORM attribute access per cell was a tenth of the import's time.
    columns = [(idx, m.key, m.id, m.type, m.min_value, m.max_value) for idx, m in metric_cols]
    employees = dict(session.execute(select(Employee.code, Employee.id)).all())
    keys = _plain_keys(body, p_idx, e_idx, employees) if isinstance(body, Columns) else None
    if keys is None:
        numbers, codes, emp_ids, by_column = _result_rows(name, body, p_idx, e_idx, employees,
                                                          columns)
    else:
        numbers, codes, emp_ids, by_column = body.numbers, body.columns[p_idx], keys, \
            body.columns
    # Column by column; where a column is not all plain numbers in range, cell by cell:
    # the first refused cell, by row then column, is the error, else each cell as a row of
    # results keeps it (None: empty).
    texts_by_column: list[list[str | None]] = []
    checked, filled = False, True
    for idx, _key, _metric_id, mtype, low, high in columns:
        texts = by_column[idx]
        plain = metric_column(texts, mtype, low, high)
        if plain is None:
            if not checked:
                rows = zip(numbers, zip(*by_column, strict=True), strict=True)
                _check_values(name, rows, columns)
                checked = True
            stored = [value_text(metric_value(t, mtype, low, high)) if t else None
                      for t in texts]
            filled = filled and "" not in texts
        else:
            stored, empty = plain
            filled = filled and not empty
        texts_by_column.append(stored)
    del by_column, body  # the cells are read

    distinct = set(codes)
    locked = _locked_between(session, distinct)
    if locked:
        code = sorted(locked)[0]
        number = numbers[codes.index(code)]
        why = "is locked" if locked[code] == code else f"is in {locked[code]}, which is locked"
        raise ImportFileError(name, msg("period %(code)s %(why)s: its results cannot change",
                                        code=code, why=why),
                              row=number, column="period")

    report = ImportReport("results", name, rows=len(codes))
    period_ids: dict[str, int] = {}
    for code in sorted(distinct):
        for c in [code, *periods.parents(code)]:
            if c not in period_ids:
                period_ids[c] = periods.get_or_create(session, c).id
    report.periods = sorted(distinct)
    wanted_ids = {period_ids[c] for c in distinct}
    existing: dict[tuple[int, int], tuple[int, dict[str, str]]] = {
        (e, p): (rid, values) for rid, e, p, values in session.execute(
            select(ResultRow.id, ResultRow.employee_id, ResultRow.period_id, ResultRow.values)
            .where(ResultRow.period_id.in_(wanted_ids)))
    }
    pids = list(map(period_ids.__getitem__, codes))
    mids = [str(metric_id) for _idx, _key, metric_id, *_ in columns]
    if existing:
        inserts, updates, created, updated, changed = _merged_rows(
            emp_ids, pids, codes, mids, texts_by_column, existing)
    else:  # every row is new, and puts its employee in the period's population
        jsons, created = _row_json(mids, texts_by_column, len(codes), filled)
        inserts = zip(emp_ids, pids, jsons, strict=True)
        updates, updated, changed = [], 0, distinct
    try:
        _write_rows(session, inserts, updates,
                    len(inserts) + len(updates) if existing else len(codes))
    except bulk.MissingReference as missing:  # deleted by another transaction meanwhile
        if missing.column != "employee_id":
            raise
        emp_code = next(c for c, e in employees.items() if e == missing.value)
        raise ImportFileError(name, msg("unknown employee %(emp_code)s",
                                        emp_code=repr(emp_code)),
                              row=numbers[emp_ids.index(missing.value)],
                              column="employee_code") from None
    # Runs that read these periods, or the quarters and years containing them, are stale.
    periods.results_changed(session, changed, "import")
    report.created, report.updated = created, updated
    audit(session, "import", "result", summary=report.summary(),
          after={"file": name, "rows": report.rows, "values_created": report.created,
                 "values_updated": report.updated, "periods": report.periods})
    session.flush()
    return report


def _plain_keys(body: Columns, p_idx: int, e_idx: int, employees: dict[str, int]
                ) -> list[int] | None:
    """The employee ids of the rows, when every row names a known employee and a valid
    period, and no employee and period twice; else None (_result_rows then says which row
    is refused and why). Column by column: a call a distinct period, none a row."""
    codes = body.columns[p_idx]
    try:
        ids = list(map(employees.__getitem__, body.columns[e_idx]))
    except KeyError:
        return None
    distinct = set(codes)
    if not codes or "" in distinct:
        return None
    for code in distinct:
        try:
            periods.parse(code)
        except PeriodError:
            return None
    if len(distinct) == 1:
        pairs: set[Any] = set(ids)
    else:
        index = {code: i for i, code in enumerate(distinct)}
        pairs = set(zip(ids, map(index.__getitem__, codes), strict=True))
    return ids if len(pairs) == len(ids) else None


def _result_rows(name: str, body: Iterable[tuple[int, list[str]]], p_idx: int, e_idx: int,
                 employees: dict[str, int], columns: list[tuple[int, str, int, str, Any, Any]]
                 ) -> tuple[list[int], list[str], list[int], list[list[str]]]:
    """Read the rows one by one: their numbers, period codes, employee ids and cells by
    column; raise the first refused row (by row: its period, employee, a pair twice, or a
    value of an earlier row)."""
    numbered: list[tuple[int, list[str]]] = []
    codes: list[str] = []
    emp_ids: list[int] = []
    seen: dict[tuple[str, str], int] = {}
    valid_codes: set[str] = set()

    def refuse(error: ImportFileError) -> ImportFileError:
        # a value refused in an earlier row is the file's first error
        _check_values(name, numbered, columns)
        return error

    for number, cells in body:
        code = cells[p_idx]
        if not code:
            raise refuse(ImportFileError(name, msg("period is empty"), row=number,
                                         column="period"))
        if code not in valid_codes:
            try:
                periods.parse(code)
            except PeriodError:
                raise refuse(ImportFileError(
                    name, msg("malformed period code %(code)s (use YYYY-MM, YYYY-Qn or "
                              "YYYY, a year from %(first_year)s to %(last_year)s)",
                              code=quoted(code), first_year=periods.FIRST_YEAR,
                              last_year=periods.LAST_YEAR),
                    row=number, column="period")) from None
            valid_codes.add(code)
        emp_code = cells[e_idx]
        emp_id = employees.get(emp_code)
        if emp_id is None:
            raise refuse(ImportFileError(name, msg("unknown employee %(emp_code)s",
                                                   emp_code=repr(emp_code)), row=number,
                                         column="employee_code"))
        if (emp_code, code) in seen:
            raise refuse(ImportFileError(
                name, msg("employee %(emp_code)s and period %(code)s appear twice (rows "
                          "%(seen)s and %(number)s)", emp_code=emp_code, code=code,
                          seen=seen[(emp_code, code)], number=number),
                row=number, column="employee_code"))
        seen[(emp_code, code)] = number
        codes.append(code)
        emp_ids.append(emp_id)
        numbered.append((number, cells))
    if not numbered:
        raise ImportFileError(name, msg("has no data rows"))
    by_column = [list(column) for column in zip(*(cells for _, cells in numbered), strict=True)]
    return [number for number, _ in numbered], codes, emp_ids, by_column


def _row_json(mids: list[str], texts_by_column: list[list[str | None]], rows: int,
              filled: bool | None = None) -> tuple[Iterable[str], int]:
    """Each row's values as the JSON a row of results keeps (made as they are read: a
    COPY sends each batch while the next is made), and how many values there are
    (``filled``: whether no cell is None, when the caller knows). The cells are plain
    decimal text: nothing to escape."""
    if filled is None:
        filled = not any(None in texts for texts in texts_by_column)
    if filled:  # one format for every row
        full = "{" + ",".join(f'"{mid}":"%s"' for mid in mids) + "}"
        if not mids:
            return [full] * rows, 0
        return map(full.__mod__, zip(*texts_by_column, strict=True)), rows * len(mids)
    jsons, created = [], 0
    for cells in zip(*texts_by_column, strict=True):
        filled = [f'"{mid}":"{t}"' for mid, t in zip(mids, cells, strict=True) if t is not None]
        created += len(filled)
        jsons.append("{" + ",".join(filled) + "}")
    return jsons, created


def _merged_rows(emp_ids: list[int], pids: list[int], codes: list[str], mids: list[str],
                 texts_by_column: list[list[str | None]],
                 existing: dict[tuple[int, int], tuple[int, dict[str, str]]]
                 ) -> tuple[list[tuple[int, int, str]], list[tuple[str, int]], int, int, set[str]]:
    """The rows to insert and to update where some are in the database already: new rows
    as _row_json makes them, stored rows with the file's values merged in (an empty cell
    leaves a stored value as it is). Return them, the values created and updated, and the
    periods changed."""
    inserts: list[tuple[int, int, str]] = []  # employee, period, the row's values (JSON)
    updates: list[tuple[str, int]] = []  # the row's values (JSON), its id
    created = updated = 0
    changed: set[str] = set()
    new = [i for i, key in enumerate(zip(emp_ids, pids, strict=True)) if key not in existing]
    if new:
        jsons, created = _row_json(mids, [[texts[i] for i in new] for texts in texts_by_column],
                                   len(new))
        inserts = [(emp_ids[i], pids[i], j) for i, j in zip(new, jsons, strict=True)]
        changed.update(codes[i] for i in new)
    for i, key in enumerate(zip(emp_ids, pids, strict=True)):
        old = existing.get(key)
        if old is None:
            continue
        rid, values = old
        merged = dict(values)
        for mid, texts in zip(mids, texts_by_column, strict=True):
            text = texts[i]
            if text is None:  # an empty cell leaves a stored value as it is
                continue
            was = values.get(mid)
            if was is None:
                created += 1
            elif Decimal(was) != Decimal(text):
                updated += 1
            else:
                continue
            merged[mid] = text
        if merged != values:
            updates.append((json.dumps(merged, separators=(",", ":")), rid))
            changed.add(codes[i])
    return inserts, updates, created, updated, changed


def _write_rows(session: Session, inserts: Iterable[tuple[int, int, str]],
               updates: list[tuple[str, int]], rows: int) -> None:
    """Insert new rows of results and update changed ones (their values as JSON text), in
    the caller's transaction; ``rows``: how many in all.

    Straight through the driver (COPY on PostgreSQL): Core's per-row parameter processing
    was most of a large import's time, and so was a json.dumps a row (bench/bench_import.py).
    """
    table = ResultRow.__table__
    bulk.insert_rows(session, table, ("employee_id", "period_id", "metric_values"), inserts,
                     as_text=("metric_values",), plain=True, check_references=True)
    bulk.update_rows(session, table, ("metric_values",), updates, as_text=("metric_values",))
    bulk.analyze(session, table, rows=rows)


def _check_values(name: str, numbered: Iterable[tuple[int, Sequence[str]]],
                  columns: list[tuple[int, str, int, str, Any, Any]]) -> None:
    """Read every metric cell of the rows as metric_value does; raise the first refusal
    (by row, then column) naming the file, row and column."""
    for number, cells in numbered:
        for idx, key, _metric_id, mtype, low, high in columns:
            text = cells[idx]
            if text == "":
                continue
            try:
                metric_value(text, mtype, low, high)
            except CellError as err:
                raise ImportFileError(name, err.reason, row=number, column=key) from None


