"""Every bad import file gets one line naming the file, row and column; nothing is stored.

Each kind of bad file is refused at each door: the engine function (ImportFileError),
``laurel import`` (exit code 1, the same line on stderr) and the back office's import page
(400 and the same line, never a 500). The database is the same afterwards.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from admin.cli import main
from engine import imports
from engine.errors import ImportFileError
from engine.imports import import_employees, import_results
from engine.models import (
    AuditLog,
    Employee,
    Level,
    Metric,
    Period,
    ResultRow,
    Team,
)
from engine.rollup import has_value
from tests.stored import row_form, stored_values

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

Org = support.Org
pytest_plugins = [support.__name__]

IMPORTERS = {"employees": import_employees, "results": import_results}
RESULTS = "period,employee_code,visits,quota\n"
EMPLOYEES = "code,name,email,team,region,level,manager_code,hire_date,team_stage\n"


def state(org: Org) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table an import writes."""
    with org.session() as s:
        return {m.__tablename__: sorted(tuple(map(str, r)) for r in s.execute(
            select(m.__table__)).all())
            for m in (Employee, Team, Period, ResultRow, AuditLog)}


def xlsx(rows: list[list[Any]], sheet_xml: Callable[[str], str] | None = None,
         workbook_xml: Callable[[str], str] | None = None) -> bytes:
    """An XLSX file of these rows; the two callables rewrite its parts' XML."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    changes = {"xl/worksheets/sheet1.xml": sheet_xml, "xl/workbook.xml": workbook_xml}
    source = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            change = changes.get(info.filename)
            if change is not None:
                body = change(body.decode()).encode()
            target.writestr(info.filename, body)
    return rewritten.getvalue()


def sub(pattern: str, replacement: str) -> Callable[[str], str]:
    def change(xml: str) -> str:
        new, n = re.subn(pattern, replacement, xml)
        assert n, f"{pattern} is not in the part"
        return new

    return change


def later_zip(data: bytes) -> bytes:
    """The zip with its first entry needing a zip version Python does not read (6.4)."""
    at = data.index(b"PK\x01\x02") + 6
    return data[:at] + bytes([64, 0]) + data[at + 2:]


@dataclass
class Bad:
    id: str
    kind: str
    name: str
    data: bytes
    row: int | None
    column: str | None
    reason: str


def results(text: str, name: str = "bad.csv") -> tuple[str, str, bytes]:
    return "results", name, text.encode()


def employees(line: str, name: str = "emp.csv") -> tuple[str, str, bytes]:
    return "employees", name, (EMPLOYEES + "E9,Eve,,North,,S1,,,\n" + line + "\n").encode()


def bad(id: str, file: tuple[str, str, bytes], row: int | None, column: str | None,
        reason: str) -> Bad:
    return Bad(id, *file, row, column, reason)


BAD = [
    # cells too long for any column, past the csv module's own limit too
    bad("cell-over-csv-limit", results(RESULTS + "2026-02,N1,3," + "1" * 131_073 + "\n"),
        2, "quota", "more than 131,072 characters; a cell holds at most 1,000"),
    bad("quoted-cell-over-csv-limit", results(
        RESULTS + '2026-02,N1,"' + "x" * 140_000 + '",5\n'), 2, "visits",
        "more than 131,072 characters"),
    bad("long-name", employees("E8," + "n" * 2000 + ",,North,,S1,,,"), 3, "name",
        "2,000 characters; a cell holds at most 1,000"),
    bad("long-header", results("period,employee_code," + "q" * 1001 + "\n2026-02,N1,1\n"),
        1, "C", "1,001 characters"),
    # periods
    bad("period-0000", results(RESULTS + "0000-01,N1,3,\n"), 2, "period",
        "malformed period code '0000-01'"),
    bad("period-arabic-indic-digits", results(RESULTS + "١٩٩٩-05,N1,3,\n"), 2, "period",
        "malformed period code"),
    bad("period-full-width-digits", results(RESULTS + "２０２６-05,N1,3,\n"), 2, "period",
        "malformed period code"),
    # numbers
    bad("exponent-huge", results(RESULTS + "2026-02,N1,,1e999999999\n"), 2, "quota",
        "outside the accepted range"),
    bad("exponent-past-decimal", results(RESULTS + "2026-02,N1,,1e9999999999999999999\n"),
        2, "quota", "outside any accepted range"),
    bad("exponent-tiny", results(RESULTS + "2026-02,N1,,1e-999999999\n"), 2, "quota",
        "more than 6 decimals"),
    bad("full-width-digits", results(RESULTS + "2026-02,N1,１２３,\n"), 2, "visits",
        "is not a number"),
    bad("underscore", results(RESULTS + "2026-02,N1,,1_000\n"), 2, "quota", "is not a number"),
    bad("nan", results(RESULTS + "2026-02,N1,,NaN\n"), 2, "quota", "is not a number"),
    bad("money-past-range", results(RESULTS + "2026-02,N1,,1e18\n"), 2, "quota",
        "outside the accepted range"),
    # text
    bad("nul-in-name", employees("E8,Ann\x00Wu,,North,,S1,,,"), 3, "name",
        "control character U\\+0000"),
    bad("nul-in-results", results(RESULTS + "2026-02,N1\x00,3,\n"), 2, "employee_code",
        "control character U\\+0000"),
    bad("tab-in-name", employees("E8,Ann\tWu,,North,,S1,,,"), 3, "name", "U\\+0009"),
    bad("line-break-in-quoted-name", employees('E8,"Ann\nWu",,North,,S1,,,'), 3, "name",
        "U\\+000A"),
    bad("control-in-header", results("period,employee_code,vis\x07its\n2026-02,N1,3\n"), 1,
        "C", "U\\+0007"),
    bad("formula-code", employees("=1+2,Eve,,North,,S1,,,"), 3, "code",
        "must not begin with =, \\+, - or @"),
    bad("formula-manager-code", employees("E8,Eve,,North,,S1,@SUM(A1),,"), 3, "manager_code",
        "must not begin with"),
    # headers
    bad("duplicate-employee-column", "employees emp.csv".split() + [
        b"code,name,team,level,name\nE8,Eve,North,S1,Eva\n"], 1, "name", "appears twice"),
    bad("unnamed-column", results("period,,visits\n2026-02,3,4\n"), 1, "B", "no name"),
    bad("too-many-columns", results(",".join(["period", "employee_code"] + [
        f"m{i}" for i in range(600)]) + "\n"), 1, None, "at most 500"),
    # dates
    bad("hire-date-year-1", employees("E8,Eve,,North,,S1,,0001-01-01,"), 3, "hire_date",
        "from 1900-01-01 to 9999-12-31"),
    bad("hire-date-full-width", employees("E8,Eve,,North,,S1,,２０２４-01-01,"), 3,
        "hire_date", "Not a valid date"),
    # XLSX
    bad("xlsx-without-worksheet", ("results", "none.xlsx", xlsx(
        [["period"]], workbook_xml=sub(r"<sheets>.*</sheets>", "<sheets/>"))),
        None, None, "has no worksheet"),
    bad("xlsx-formula-without-saved-value", ("results", "f.xlsx", xlsx(
        [["period", "employee_code", "visits"], ["2026-02", "N1", 1],
         ["2026-02", "N2", "=1+2"]])), 3, "visits", "a formula without a saved value; open the "
        "file in a spreadsheet and save it again"),
    bad("xlsx-boolean-number", ("results", "b.xlsx", xlsx(
        [["period", "employee_code", "visits"], ["2026-02", "N1", True]])), 2, "visits",
        "'TRUE' is not a number"),
    bad("xlsx-date-number", ("results", "d.xlsx", xlsx(
        [["period", "employee_code", "visits"], ["2026-02", "N1", dt.date(2026, 1, 5)]])),
        2, "visits", "'2026-01-05' is not a number"),
    bad("xlsx-date-past-9999", ("employees", "d.xlsx", xlsx(
        [["code", "name", "team", "level", "hire_date"],
         ["E8", "Eve", "North", "S1", dt.date(2026, 1, 5)]],
        sheet_xml=sub(r"<v>46027</v>", "<v>99999999</v>"))), 2, "hire_date",
        "holds the error #VALUE!"),
    bad("xlsx-error-cell", ("results", "e.xlsx", xlsx(
        [["period", "employee_code", "quota"], ["2026-02", "N1", 5]],
        sheet_xml=sub(r'<c r="C2" t="n"><v>5</v></c>', '<c r="C2" t="e"><v>#DIV/0!</v></c>'))),
        2, "quota", "holds the error #DIV/0!"),
    bad("xlsx-value-past-500-columns", ("results", "w.xlsx", xlsx(
        [["period", "employee_code", "visits"], ["2026-02", "N1", 3]],
        sheet_xml=sub(r'<c r="C2" t="n"><v>3</v></c>',
                      '<c r="C2" t="n"><v>3</v></c><c r="XFD2" t="n"><v>1</v></c>'))),
        2, "XFD", "at most 500 columns"),
    bad("xlsx-nan", ("results", "n.xlsx", xlsx(
        [["period", "employee_code", "quota"], ["2026-02", "N1", 5]],
        sheet_xml=sub(r"<v>5</v>", "<v>1e999</v>"))), 2, "quota",
        "'1e999' is outside the accepted range"),
    bad("xlsx-exponent-huge", ("results", "h.xlsx", xlsx(
        [["period", "employee_code", "quota"], ["2026-02", "N1", 5]],
        sheet_xml=sub(r"<v>5</v>", "<v>1e999999999</v>"))), 2, "quota",
        "'1e999999999' is outside"),
    bad("xlsx-exponent-tiny", ("results", "t.xlsx", xlsx(
        [["period", "employee_code", "quota"], ["2026-02", "N1", 5]],
        sheet_xml=sub(r"<v>5</v>", "<v>1e-999999999</v>"))), 2, "quota",
        "more than 6 decimals"),
    # what str.strip() took away: control characters at a cell's ends, a no-break space
    bad("tab-after-a-number", results(RESULTS + "2026-02,N1,50\t,\n"), 2, "visits",
        "U\\+0009"),
    bad("vertical-tab-before", results(RESULTS + "2026-02,N1,\x0b81,\n"), 2, "visits",
        "U\\+000B"),
    bad("quoted-line-break-after", results(RESULTS + '2026-02,N1,"79\n",\n'), 2, "visits",
        "U\\+000A"),
    bad("no-break-space-after", results(RESULTS + "2026-02,N1,82\u00a0,\n"), 2, "visits",
        "is not a number"),
    # quotes that do not close, or text after the closing one
    bad("quote-left-open", results(RESULTS + '2026-02,N1,"77\n'), 2, None,
        "cannot be read as CSV"),
    bad("text-after-closing-quote", results(RESULTS + '2026-02,N1,"8"0,\n'), 2, None,
        "cannot be read as CSV"),
    bad("xlsx-control-character", ("employees", "c.xlsx", xlsx(
        [["code", "name", "team", "level"], ["E8", "Ann\tWu", "North", "S1"]])), 2, "name",
        "U\\+0009"),
    bad("xlsx-damaged", ("results", "x.xlsx", b"PK\x03\x04 not really"), None, None,
        "is not a readable XLSX workbook"),
    bad("xlsx-zip-of-a-later-version", ("results", "v.xlsx", later_zip(xlsx([["period"]])),
                                        ), None, None, "zip file version 6.4"),
]


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_a_bad_file_is_refused_in_one_line_at_every_door(
        case: Bad, org: Org, client: FlaskClient, tmp_path: Path) -> None:
    before = state(org)
    with org.session() as s, pytest.raises(ImportFileError) as info:
        IMPORTERS[case.kind](s, case.name, data=case.data)
    err = info.value
    message = str(err)
    assert "\n" not in message and message.startswith(case.name), message
    assert (err.file, err.row, err.column) == (case.name, case.row, case.column), message
    assert re.search(case.reason, message), message
    assert state(org) == before

    path = tmp_path / case.name
    path.write_bytes(case.data)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        cli = CliRunner().invoke(main, ["import", case.kind, case.name])
    assert cli.exit_code == 1, cli.output
    assert cli.stderr == f"error: {message}\n"
    assert state(org) == before

    support.login(client, "hr_admin")
    page = client.post("/admin/imports/", data={
        "kind": case.kind, "file": (io.BytesIO(case.data), case.name)},
        content_type="multipart/form-data")
    assert page.status_code == 400
    text = html.unescape(support.text_of(page))
    assert "Nothing was imported." in text
    assert " ".join(message.split()) in text
    assert state(org) == before


@pytest.mark.parametrize("case", [c for c in BAD if c.id in (
    "xlsx-formula-without-saved-value", "xlsx-error-cell", "xlsx-value-past-500-columns")],
    ids=lambda c: c.id)
def test_a_refused_workbook_cell_reads_in_chinese(case: Bad, org: Org,
                                                  client: FlaskClient) -> None:
    support.login(client, "hr_admin")
    page = client.post("/admin/imports/?lang=zh", data={
        "kind": case.kind, "file": (io.BytesIO(case.data), case.name)},
        content_type="multipart/form-data")
    text = html.unescape(support.text_of(page))
    assert page.status_code == 400 and case.name in text
    assert not re.search(case.reason, text) and re.search("[单公列]", text), text


# --- the limits: size, rows, unpacked size -----------------------------------------------


def test_files_past_the_limits_are_refused_with_the_limit(org: Org, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    before = state(org)
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 2 * 1024 * 1024)
    big = (RESULTS + "2026-02,N1,3,100\n" * 150_000).encode()
    with org.session() as s:
        with pytest.raises(ImportFileError, match=r"^big.csv: is 2.4 MB; a file may be at "
                           r"most 2 MB"):
            import_results(s, "big.csv", data=big)
        (tmp_path / "big.csv").write_bytes(big)
        with pytest.raises(ImportFileError, match="is 2.4 MB"):
            import_results(s, "big.csv", path=tmp_path / "big.csv")
        monkeypatch.setattr(imports, "MAX_ROWS", 3)
        rows = RESULTS + "2026-02,N1,3,\n2026-03,N1,3,\n\n2026-04,N1,3,\n2026-05,N1,3,\n"
        with pytest.raises(ImportFileError, match="row 6: has more than 3 rows"):
            import_results(s, "rows.csv", data=rows.encode())
        monkeypatch.setattr(imports, "MAX_UNPACKED_BYTES", 1000)
        with pytest.raises(ImportFileError, match="a workbook may unpack to at most 0 MB"):
            import_results(s, "r.xlsx", data=xlsx([["period"]]))
    assert state(org) == before


def test_an_upload_past_the_request_limit_says_so(org: Org, client: FlaskClient) -> None:
    client.application.config["MAX_CONTENT_LENGTH"] = 1000
    support.login(client, "comp_analyst")
    page = client.post("/admin/imports/", data={
        "kind": "results", "file": (io.BytesIO(b"x" * 5000), "r.csv")},
        content_type="multipart/form-data")
    assert page.status_code == 413
    assert "the upload is larger than 50 MB" in support.text_of(page)


# --- what is accepted ----------------------------------------------------------------------


def values(org: Org, code: str, period: str) -> dict[str, Decimal]:
    with org.session() as s:
        return stored_values(s, code, period)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_lines_may_end_in_lf_crlf_or_a_bare_cr(org: Org, end: str) -> None:
    text = end.join([RESULTS.strip(), "2026-02,N1,3,100", "2026-02,N2,4,1E+3", ""])
    with org.session() as s:
        report = import_results(s, "r.csv", data=text.encode())
        s.commit()
    assert report.rows == 2
    assert values(org, "N2", "2026-02") == {"visits": 4, "quota": 1000}


@pytest.mark.parametrize(("text", "value"), [
    ("1234.5", "1234.5"), ("-3", "-3"), ("+3", "3"), (".5", "0.5"), ("5.", "5"),
    ("1e3", "1000"), ("1.5E-3", "0.0015"), ("100e-2", "1"), ("0.1000000", "0.1")])
def test_numbers_as_spreadsheets_write_them(org: Org, text: str, value: str) -> None:
    with org.session() as s:
        import_results(s, "r.csv", data=f"{RESULTS}2026-02,N1,,{text}\n".encode())
        s.commit()
    assert values(org, "N1", "2026-02") == {"quota": Decimal(value)}


def test_a_declared_dimension_is_not_walked(org: Org) -> None:
    """A 5 KB file that declares A1:XFD200000 reads as the cells it holds, at once."""
    data = xlsx([["period", "employee_code", "visits"], ["2026-02", "N1", 3]],
                sheet_xml=sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD200000"'))
    assert len(data) < 10_000
    done: list = []

    def load() -> None:
        with org.session() as s:
            done.append(import_results(s, "huge.xlsx", data=data))
            s.commit()

    # walking 200,000 x 16,384 declared cells would never end: a liveness bound, no timing
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert done, "the import did not finish: it walked the declared range"
    assert done[0].rows == 1 and values(org, "N1", "2026-02") == {"visits": 3}


def test_xlsx_reads_saved_formula_values_and_skips_missing_rows(org: Org) -> None:
    data = xlsx([["period", "employee_code", "visits", "quota"],
                 ["2026-02", "N1", "=1+2", 0.1 + 0.2], [], ["2026-02", "N2", 7, ""]],
                sheet_xml=sub(r"<f>1\+2</f><v\s*/>", "<f>1+2</f><v>3</v>"))
    with org.session() as s:
        report = import_results(s, "f.xlsx", data=data)
        s.commit()
    assert report.rows == 2
    # 0.1 + 0.2 is read as a spreadsheet shows it, to 15 significant digits
    assert values(org, "N1", "2026-02") == {"visits": 3, "quota": Decimal("0.3")}
    assert values(org, "N2", "2026-02") == {"visits": 7}


def test_names_that_look_like_formulas_are_kept(org: Org) -> None:
    with org.session() as s:
        import_employees(s, "e.csv", data=(EMPLOYEES + "E8,=HYPERLINK(\"x\"),,+Team,@here,"
                                           "S1,,,\n").encode())
        s.commit()
        e8 = s.scalar(select(Employee).where(Employee.code == "E8"))
        assert (e8.name, e8.team.name, e8.team.region) == ('=HYPERLINK("x")', "+Team", "@here")


# --- the back office's result form reads a value as an import does -----------------------


def _satisfaction_row(s: Any) -> tuple[ResultRow, int]:
    metric_id = s.scalar(select(Metric.id).where(Metric.key == "satisfaction"))
    row = s.scalars(select(ResultRow).where(has_value(metric_id))
                    .order_by(ResultRow.id).limit(1)).one()
    return row, metric_id


@pytest.mark.parametrize(("text", "reason"), [
    ("NaN", "is not a number"), ("１２３", "is not a number"), ("1_000", "is not a number"),
    ("1e999999999", "outside 0 to 100"), ("0.0000001", "more than 6 decimals"),
    ("101", "outside 0 to 100")])
def test_the_result_form_refuses_what_an_import_refuses(
        org: Org, client: FlaskClient, text: str, reason: str) -> None:
    support.login(client, "comp_analyst")
    with org.session() as s:
        row, metric_id = _satisfaction_row(s)
        rid, before = row.id, dict(row.values)
        form = row_form(s, row)
    field = f"metric_{metric_id}"
    form[field] = text
    page = client.post(f"/admin/result/edit/?id={rid}", data=form)
    assert page.status_code == 200
    assert reason in html.unescape(support.text_of(page))
    assert f'value="{html.escape(text)}"' in page.get_data(as_text=True)
    with org.session() as s:
        assert s.get(ResultRow, rid).values == before
    form[field] = "88.5"
    assert client.post(f"/admin/result/edit/?id={rid}", data=form).status_code == 302
    with org.session() as s:
        after = s.get(ResultRow, rid).values
    assert Decimal(after[str(metric_id)]) == Decimal("88.5")
    assert {k: v for k, v in after.items() if k != str(metric_id)} == \
        {k: v for k, v in before.items() if k != str(metric_id)}


def test_an_emptied_field_makes_the_value_undefined_and_keeps_the_row(
        org: Org, client: FlaskClient) -> None:
    support.login(client, "comp_analyst")
    with org.session() as s:
        row, metric_id = _satisfaction_row(s)
        rid, before = row.id, dict(row.values)
        form = row_form(s, row)
    form[f"metric_{metric_id}"] = ""
    assert client.post(f"/admin/result/edit/?id={rid}", data=form).status_code == 302
    with org.session() as s:
        after = s.get(ResultRow, rid).values
        audit = s.scalars(select(AuditLog).where(AuditLog.entity == "result")
                          .order_by(AuditLog.id.desc()).limit(1)).one()
    assert str(metric_id) not in after and len(after) == len(before) - 1
    assert "satisfaction" in audit.before["values"]
    assert "satisfaction" not in audit.after["values"]


def test_the_employee_form_refuses_a_code_that_looks_like_a_formula(
        org: Org, client: FlaskClient) -> None:
    support.login(client, "hr_admin")
    page = client.post("/admin/employee/new/", data={
        "code": "=1+2", "name": "Eve", "email": "", "team": str(org.north), "level": "1"})
    assert page.status_code == 200
    assert "A code must not begin with =, +, - or @" in html.unescape(support.text_of(page))
    assert support.count(org, Employee, Employee.code == "=1+2") == 0


@pytest.mark.parametrize("text", ["NaN", "sNaN", "-Infinity", "１２３", "1_000",
                                  "1e9999999999999999999"])
def test_the_metric_and_level_forms_refuse_what_is_not_a_number(
        org: Org, client: FlaskClient, text: str) -> None:
    support.login(client, "hr_admin")
    metric = {"key": "market_share", "label_en": "Market share", "label_zh": "市场份额",
              "type": "ratio", "rollup": "mean", "formula": "", "min_value": text,
              "max_value": "1", "description": ""}
    page = client.post("/admin/metric/new/", data=metric)
    assert page.status_code == 200
    assert re.search("is not a number|is outside any accepted range",
                     html.unescape(support.text_of(page)))
    assert support.count(org, Metric, Metric.key == "market_share") == 0
    level = client.post("/admin/level/new/", data={"code": "S9", "name": "Sales 9",
                                                   "discount_authority": text})
    assert level.status_code == 200
    with org.session() as s:
        assert s.scalar(select(Level).where(Level.code == "S9")) is None
