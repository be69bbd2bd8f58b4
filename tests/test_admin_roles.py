"""Every role against every view: who reads, who writes, and a refusal changes nothing."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.models import (
    STAFF_ROLES as ROLES,
)
from engine.models import (
    AuditLog,
    Employee,
    Level,
    Metric,
    Period,
    ResultRow,
    Team,
    User,
)

HR, CA, CO, SM, AU = ROLES
ENDPOINTS = {
    "employee": Employee, "team": Team, "level": Level, "period": Period, "metric": Metric,
    "result": ResultRow, "auditlog": AuditLog, "user": User,
}
READERS = {
    "employee": set(ROLES), "team": set(ROLES), "period": set(ROLES), "metric": set(ROLES),
    "result": set(ROLES), "level": {HR, CA, CO, AU}, "auditlog": {HR, CA, CO, AU},
    "user": {HR, AU},
}
WRITERS = {"employee": {HR}, "team": {HR}, "level": {HR}, "metric": {HR}, "user": {HR},
           "result": {CA}, "period": set(), "auditlog": set()}

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

ROLE_EMAILS = support.ROLE_EMAILS
Org = support.Org
count = support.count
login = support.login
text_of = support.text_of
pytest_plugins = [support.__name__]


def _ids(org: Org) -> dict[str, int]:
    with org.session() as s:
        return {
            "level": s.scalar(select(Level.id).where(Level.code == "S1")),
            "metric": s.scalar(select(Metric.id).where(Metric.key == "visits")),
            "period": s.scalar(select(Period.id).where(Period.code == "2026-01")),
            "quarter": s.scalar(select(Period.id).where(Period.code == "2026-Q1")),
            "result": s.scalar(select(ResultRow.id).where(
                ResultRow.employee_id == org.employees["N2"]).limit(1)),
            "user": s.scalar(select(User.id).where(User.email == "auditor@example.com")),
            "auditlog": s.scalar(select(AuditLog.id).limit(1)),
        }


def _new_forms(org: Org, ids: dict[str, int]) -> dict[str, dict[str, str]]:
    return {
        "employee": {"code": "X1", "name": "New Person", "email": "x1@example.com",
                     "team": str(org.north), "level": str(ids["level"]),
                     "hire_date": "2024-05-01"},
        "team": {"name": "West", "region": "West", "stage": "startup"},
        "level": {"code": "S9", "name": "Sales 9", "discount_authority": "0.2"},
        "metric": {"key": "demo_calls", "label_en": "Demo calls", "label_zh": "演示次数",
                   "type": "count", "rollup": "sum", "formula": "", "description": ""},
        "user": {"email": "new@example.com", "name": "New", "password": "longenough1",
                 "role": "compliance_officer", "locale": "", "active": "y"},
        "result": {"period": str(ids["quarter"]), "employee": str(org.employees["N1"]),
                   f"metric_{ids['metric']}": "12"},
        "period": {"code": "2026-02", "kind": "month", "start": "2026-02-01",
                   "end": "2026-02-28", "status": "open"},
        "auditlog": {"actor": "me", "action": "create", "entity": "x"},
    }


def _edit_forms(org: Org, ids: dict[str, int]) -> dict[str, tuple[int, dict[str, str]]]:
    return {
        "employee": (org.employees["N2"], {
            "code": "N2", "name": "Renamed", "email": "ned@example.com",
            "team": str(org.north), "level": str(ids["level"]), "hire_date": "2021-02-01"}),
        "team": (org.north, {"name": "North", "region": "Renamed", "stage": "growth"}),
        "level": (ids["level"], {"code": "S1", "name": "Renamed",
                                 "discount_authority": "0.05"}),
        "metric": (ids["metric"], {"key": "visits", "label_en": "Renamed", "label_zh": "拜访",
                                   "type": "count", "rollup": "sum", "formula": "",
                                   "description": ""}),
        "user": (ids["user"], {"email": "auditor@example.com", "name": "Renamed",
                               "password": "", "role": "auditor", "locale": "",
                               "active": "y"}),
        "result": (ids["result"], {"period": str(ids["period"]),
                                   "employee": str(org.employees["N2"]),
                                   f"metric_{ids['metric']}": "777"}),
        "period": (ids["period"], {"code": "2026-01", "kind": "month",
                                   "start": "2026-01-01", "end": "2026-01-31",
                                   "status": "locked"}),
        "auditlog": (ids["auditlog"], {"actor": "someone else"}),
    }


def _snapshot(org: Org) -> dict[str, int]:
    return {name: count(org, model) for name, model in ENDPOINTS.items()}


def _renamed(org: Org) -> int:
    with org.session() as s:
        return sum(s.scalar(select(m).where(m.name == "Renamed").exists().select()) or 0
                   for m in (Employee, Level, User)) + int(
            s.scalar(select(Team.region).where(Team.id == org.north)) == "Renamed")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_against_every_view(client: FlaskClient, org: Org, role: str) -> None:
    login(client, role)
    ids = _ids(org)
    for endpoint in ENDPOINTS:
        expected = 200 if role in READERS[endpoint] else 403
        response = client.get(f"/admin/{endpoint}/")
        assert response.status_code == expected, (role, endpoint)
        form_page = client.get(f"/admin/{endpoint}/new/")
        assert form_page.status_code == (200 if role in WRITERS[endpoint] else 403), (
            role, endpoint)
    for path in ("/admin/", "/admin/help/"):
        assert client.get(path).status_code == 200
    imports = client.get("/admin/imports/")
    assert imports.status_code == (200 if role in {HR, CA, AU} else 403)

    new_forms = _new_forms(org, ids)
    for endpoint, model in ENDPOINTS.items():
        before = _snapshot(org)
        response = client.post(f"/admin/{endpoint}/new/", data=new_forms[endpoint])
        if role in WRITERS[endpoint]:
            assert response.status_code == 302, (role, endpoint, text_of(response)[:800])
            assert count(org, model) == before[endpoint] + 1, (role, endpoint)
        else:
            assert response.status_code == 403, (role, endpoint)
            assert _snapshot(org) == before, (role, endpoint)


@pytest.mark.parametrize("role", ROLES)
def test_edit_and_delete_are_refused_to_readers(client: FlaskClient, org: Org,
                                                role: str) -> None:
    login(client, role)
    ids = _ids(org)
    for endpoint, (pk, form) in _edit_forms(org, ids).items():
        before = _snapshot(org)
        renamed = _renamed(org)
        audit_rows = count(org, AuditLog)
        response = client.post(f"/admin/{endpoint}/edit/?id={pk}", data=form)
        if role in WRITERS[endpoint]:
            assert response.status_code == 302, (role, endpoint, text_of(response)[:800])
        else:
            assert response.status_code == 403, (role, endpoint)
            assert _renamed(org) == renamed and count(org, AuditLog) == audit_rows
            deleted = client.post(f"/admin/{endpoint}/delete/", data={"id": str(pk)})
            assert deleted.status_code == 403, (role, endpoint)
            assert _snapshot(org) == before and count(org, AuditLog) == audit_rows
    with org.session() as s:
        assert s.scalar(select(Period.status).where(Period.id == ids["period"])) == "open"


def test_the_auditor_reads_everything_and_changes_nothing(client: FlaskClient,
                                                          org: Org) -> None:
    login(client, AU)
    ids = _ids(org)
    for endpoint in ENDPOINTS:
        assert client.get(f"/admin/{endpoint}/").status_code == 200
        pk = ids.get(endpoint) or (org.north if endpoint == "team" else org.employees["N1"])
        assert client.get(f"/admin/{endpoint}/details/?id={pk}").status_code == 200
    before, audit_rows = _snapshot(org), count(org, AuditLog)
    posts = [f"/admin/{e}/{v}" for e in ENDPOINTS for v in
             ("new/", f"edit/?id={ids.get(e, 1)}", "delete/", "action/")]
    posts += ["/admin/imports/", "/admin/user/ajax/update/"]
    for path in posts:
        assert client.post(path, data={"id": "1", "name": "x"}).status_code == 403, path
    assert client.get("/admin/employee/ajax/lookup/?name=manager&query=N").status_code == 403
    assert _snapshot(org) == before and count(org, AuditLog) == audit_rows


def test_a_sales_manager_sees_only_their_team(client: FlaskClient, org: Org) -> None:
    login(client, SM)
    employees = text_of(client.get("/admin/employee/"))
    assert "Nora North" in employees and "Ned North" in employees
    assert "Sam South" not in employees and "Sue South" not in employees
    own = client.get(f"/admin/employee/details/?id={org.employees['N2']}")
    assert own.status_code == 200
    other = client.get(f"/admin/employee/details/?id={org.employees['S2']}")
    assert other.status_code in (403, 404)
    assert client.get(f"/admin/team/details/?id={org.south}").status_code in (403, 404)
    teams = text_of(client.get("/admin/team/"))
    assert "North" in teams and "South" not in teams

    results = text_of(client.get("/admin/result/"))
    assert "N1 Nora North" in results and "S1 Sam South" not in results
    with org.session() as s:
        south_result = s.scalar(select(ResultRow.id).where(
            ResultRow.employee_id == org.employees["S1"]).limit(1))
    assert client.get(f"/admin/result/details/?id={south_result}").status_code in (403, 404)
    # A filter or search cannot widen the scope.
    widened = text_of(client.get(f"/admin/result/?flt0_1={org.south}"))
    assert "Sam South" not in widened
    assert "Sam South" not in text_of(client.get("/admin/employee/?search=Sam"))
    # The dashboard counts their team only.
    assert client.get("/admin/level/").status_code == 403
    assert client.get("/admin/auditlog/").status_code == 403


def test_a_sales_manager_without_a_team_sees_no_one(client: FlaskClient, org: Org) -> None:
    with org.session() as s:
        s.query(User).filter_by(email=ROLE_EMAILS[SM]).update({"team_id": None})
        s.commit()
    login(client, SM)
    text = text_of(client.get("/admin/employee/"))
    assert "Nora North" not in text and "Sam South" not in text


@pytest.mark.parametrize("role, said, closed", [
    ("comp_analyst", "Reads everything else except users and one-to-ones",
     ["/admin/user/", "/admin/talks/"]),
    ("compliance_officer", "not users, imports, PIPs, candidates, inquiries, review cycles, "
     "one-to-ones or the leadership analytics",
     ["/admin/user/", "/admin/imports/", "/admin/pips/", "/admin/candidates/",
      "/admin/inquiries/", "/admin/reviews/", "/admin/talks/", "/admin/analytics/"]),
])
def test_the_help_page_names_what_a_role_cannot_open(client: FlaskClient, org: Org, role: str,
                                                     said: str, closed: list[str]) -> None:
    login(client, role)
    assert said in text_of(client.get("/admin/help/"))
    assert {url: client.get(url).status_code for url in closed} == dict.fromkeys(closed, 403)
