"""The import page: a good file is imported whole, a bad one names row and column."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from sqlalchemy import select

from engine.models import AuditLog, Employee

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

Org = support.Org
login = support.login
text_of = support.text_of
count = support.count
pytest_plugins = [support.__name__]


def _upload(client: FlaskClient, kind: str, name: str, data: bytes) -> object:
    return client.post("/admin/imports/", data={"kind": kind, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_a_good_results_file_is_imported_and_reported(client: FlaskClient, org: Org) -> None:
    login(client, "comp_analyst")
    data = b"period,employee_code,visits\n2026-02,N1,12\n2026-02,S1,7\n"
    response = _upload(client, "results", "feb.csv", data)
    assert response.status_code == 200
    text = text_of(response)
    assert "Imported." in text and "2 rows: 2 values created, 0 updated." in text
    assert "2026-02" in text
    assert support.result_count(org) == 18
    with org.session() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "import")
                          .order_by(AuditLog.id.desc()).limit(1)).one()
    assert entry.actor == "analyst@example.com" and "feb.csv" in entry.summary


def test_a_bad_file_names_row_and_column_and_changes_nothing(client: FlaskClient,
                                                            org: Org) -> None:
    login(client, "comp_analyst")
    before = (support.result_count(org), count(org, AuditLog))
    data = b"period,employee_code,visits\n2026-02,N1,12\n2026-02,S1,1\xef\xbc\x8c5\n"
    response = _upload(client, "results", "bad.csv", data)
    assert response.status_code == 400
    text = text_of(response)
    assert "Nothing was imported." in text
    assert "bad.csv, row 3, column visits" in text
    assert (support.result_count(org), count(org, AuditLog)) == before


def test_hr_imports_employees_from_xlsx(client: FlaskClient, org: Org) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["code", "name", "email", "team", "region", "level", "manager_code",
                  "hire_date", "team_stage"])
    sheet.append(["E1", "Eve East", "eve@example.com", "East", "East", "S1", "", "2024-01-02",
                  "startup"])
    buffer = io.BytesIO()
    book.save(buffer)
    login(client, "hr_admin")
    response = _upload(client, "employees", "people.xlsx", buffer.getvalue())
    assert response.status_code == 200, text_of(response)[-600:]
    assert "1 row: 1 created, 0 updated." in text_of(response)
    assert count(org, Employee, Employee.code == "E1") == 1

    bad = _upload(client, "employees", "people.csv",
                  b"code,name,team,level\nE2,Ed,East,Z9\n")
    assert bad.status_code == 400
    assert "people.csv, row 2, column level" in text_of(bad)
    assert count(org, Employee, Employee.code == "E2") == 0


def test_who_may_import_what(client: FlaskClient, org: Org) -> None:
    employees = b"code,name,team,level\nE3,Ed,East,S1\n"
    login(client, "comp_analyst")
    page = client.get("/admin/imports/").get_data(as_text=True)
    assert 'value="results"' in page and 'value="employees"' not in page
    refused = _upload(client, "employees", "e.csv", employees)
    assert refused.status_code in (400, 403)
    assert count(org, Employee, Employee.code == "E3") == 0
    for role in ("auditor", "compliance_officer", "sales_manager"):
        login(client, role)
        assert _upload(client, "results", "r.csv", b"period,employee_code\n").status_code \
            == 403
    assert count(org, Employee, Employee.code == "E3") == 0


def test_a_file_of_another_type_is_refused(client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    response = _upload(client, "employees", "people.pdf", b"%PDF-1.4")
    assert response.status_code == 400
    assert "Only CSV or XLSX files can be imported." in text_of(response)
    zh = client.post("/admin/imports/?lang=zh", data={"kind": "employees"},
                     content_type="multipart/form-data")
    assert zh.status_code == 400 and "请选择文件。" in zh.get_data(as_text=True)


def test_a_refused_file_is_explained_in_chinese(client: FlaskClient, org: Org) -> None:
    login(client, "comp_analyst")
    client.get("/admin/?lang=zh")
    data = b"period,employee_code,visits\n2026-02,N1,12\n2026-02,S1,1\xef\xbc\x8c5\n"
    text = text_of(_upload(client, "results", "bad.csv", data))
    assert "bad.csv，第 3 行，列 visits：&#39;1，5&#39; 不是数字（请使用数字 0-9" in text
    missing = text_of(_upload(client, "results", "nope.csv", b"employee_code,visits\nN1,3\n"))
    assert "nope.csv，第 1 行，列 period：缺少必需的列 &#39;period&#39;" in missing
    assert "is missing" not in missing and "row 1" not in missing


def test_a_refused_employees_row_is_explained_in_chinese(client: FlaskClient,
                                                         org: Org) -> None:
    """The row checks' own reasons (a date, an e-mail, a missing cell, a stage, an unknown
    column) read in Chinese as the rest of the message does, and in English as before."""
    login(client, "hr_admin")
    head = b"code,name,email,team,level,hire_date,team_stage\n"
    rows = {b"E9,Ed,,North,S1,2026-13-01,\n": ("hire_date", "Not a valid date", "不是有效的日期"),
            b"E9,Ed,ed-at-example,North,S1,,\n": ("email", "Not a valid email address",
                                                   "不是有效的电子邮件地址"),
            b"E9,Ed,,North,S1,,scaleup\n": ("team_stage",
                                            "must be one of startup, growth, mature",
                                            "必须是 startup、growth 或 mature 之一")}
    for row, (column, english, chinese) in rows.items():
        client.get("/admin/?lang=en")
        text = text_of(_upload(client, "employees", "people.csv", head + row))
        assert f"people.csv, row 2, column {column}: {english}" in text
        client.get("/admin/?lang=zh")
        text = text_of(_upload(client, "employees", "people.csv", head + row))
        assert f"people.csv，第 2 行，列 {column}：{chinese}" in text and english not in text
    text = text_of(_upload(client, "employees", "people.csv", b"code,name,team,level,shoe\n"))
    assert "未知的列 &#39;shoe&#39;" in text and "unknown column" not in text
    assert count(org, Employee, Employee.code == "E9") == 0


def test_the_page_explains_the_files_its_reader_imports(client: FlaskClient,
                                                        org: support.Org) -> None:
    """An analyst, who imports results only, was shown the employees file's layout too; a
    reader who imports nothing is shown both."""
    employees = "code,name,email,team,region,level,manager_code,hire_date,team_stage"
    for role, shown in (("comp_analyst", {"results"}), ("hr_admin", {"employees", "results"}),
                        ("auditor", {"employees", "results"})):
        login(client, role)
        html = client.get("/admin/imports/").get_data(as_text=True)
        assert (employees in html) is ("employees" in shown), role
        assert ("period,employee_code," in html) is ("results" in shown), role
