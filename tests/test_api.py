"""The REST API (/api/v1): tokens and roles, strict batches, idempotent retries, paging,
problem documents, the run's lifecycle, and the OpenAPI description fuzzed (Schemathesis)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine import db as engine_db
from engine import tokens
from engine.models import (
    ApiIdempotency,
    AuditLog,
    Employee,
    Period,
    ResultRow,
    Rule,
    Run,
    Team,
)

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

ROLE_EMAILS = support.ROLE_EMAILS
Org = support.Org
count = support.count
pytest_plugins = [support.__name__]

HR, CA, CO, SM, AU = ("hr_admin", "comp_analyst", "compliance_officer", "sales_manager",
                      "auditor")
ROLES = (HR, CA, CO, SM, AU)
# Who reads each list (engine/access.py READ, RUNS), as the back office's help page says.
LISTS = {
    "/api/v1/employees": set(ROLES), "/api/v1/teams": set(ROLES),
    "/api/v1/periods": set(ROLES), "/api/v1/metrics": set(ROLES),
    "/api/v1/results": set(ROLES), "/api/v1/runs": set(ROLES),
    "/api/v1/rules": {HR, CA, CO, AU}, "/api/v1/compliance-cases": set(ROLES),
    "/api/v1/pips": {HR, CA, SM, AU}, "/api/v1/candidates": {HR, CA, SM, AU},
    "/api/v1/audit-log": {HR, CA, CO, AU},
}
RESULTS = {"items": [
    {"period": "2026-02", "employee_code": "N1", "values": {"quota": "100000",
                                                             "revenue_new": 120000.5}},
    {"period": "2026-02", "employee_code": "S2", "values": {"quota": 50000,
                                                             "revenue_new": "61000"}},
]}


@pytest.fixture()
def keys(org: Org) -> dict[str, str]:
    """One working token per role."""
    out = {}
    with engine_db.session_scope(org.url) as s:
        for role, email in ROLE_EMAILS.items():
            out[role] = tokens.create(s, email, f"{role}-token")[1]
    return out


def auth(key: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **more}


def is_problem(response: object, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]  # type: ignore[attr-defined]
    assert response.content_type == "application/problem+json"  # type: ignore[attr-defined]
    doc = response.get_json(force=True)  # type: ignore[attr-defined]
    assert doc["status"] == status and doc["title"] and doc["detail"]
    assert "<html" not in response.get_data(as_text=True).lower()  # type: ignore[attr-defined]
    return doc


def _pages(client: FlaskClient, url: str, key: str, limit: int) -> list[dict]:
    items, cursor = [], None
    while True:
        sep = "&" if "?" in url else "?"
        response = client.get(f"{url}{sep}limit={limit}"
                              + (f"&cursor={cursor}" if cursor else ""), headers=auth(key))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


# --- tokens and roles ---------------------------------------------------------------------


def test_every_list_for_every_role(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    for url, readers in LISTS.items():
        for role in ROLES:
            response = client.get(url, headers=auth(keys[role]))
            if role in readers:
                assert response.status_code == 200, (url, role, response.get_data(as_text=True))
            else:
                doc = is_problem(response, 403)
                assert ROLE_EMAILS[role] in doc["detail"], doc
    # a sales manager's token sees their team only, as in the back office
    codes = {e["code"] for e in client.get("/api/v1/employees",
                                           headers=auth(keys[SM])).get_json()["items"]}
    assert codes == {"N1", "N2"}
    assert {e["code"] for e in client.get("/api/v1/employees", headers=auth(
        keys[HR])).get_json()["items"]} == {"N1", "N2", "S1", "S2"}
    assert client.get("/api/v1/employees/S1", headers=auth(keys[SM])).status_code == 404
    results = client.get("/api/v1/results?limit=1000", headers=auth(keys[SM])).get_json()
    assert results["items"] and {r["employee_code"] for r in results["items"]} <= {"N1", "N2"}


def test_refused_writes_change_nothing(client: FlaskClient, keys: dict[str, str],
                                       org: Org) -> None:
    before = (support.result_count(org), count(org, Employee), count(org, Team), count(org, Rule))
    writes = [
        ("post", "/api/v1/results", RESULTS, {HR, CA}),
        ("post", "/api/v1/employees", {"items": [{"code": "X1", "name": "X", "team": "North",
                                                  "level": "S1"}]}, {HR}),
        ("put", "/api/v1/teams/West", {"region": "West"}, {HR}),
        ("post", "/api/v1/rules/drafts", {"key": "bonus.x"}, {HR}),
    ]
    for method, url, body, writers in writes:
        for role in ROLES:
            if role in writers:
                continue
            doc = is_problem(getattr(client, method)(url, json=body, headers=auth(keys[role])),
                             403)
            assert "may not" in doc["detail"]
    for role in (CO, SM, AU):
        is_problem(client.post("/api/v1/runs", json={"period": "2026-01"},
                               headers=auth(keys[role])), 403)
    assert (support.result_count(org), count(org, Employee), count(org, Team),
            count(org, Rule)) == before
    assert count(org, Run) == 0


def test_tokens_refused_revoked_and_expired(client: FlaskClient, keys: dict[str, str],
                                            org: Org) -> None:
    is_problem(client.get("/api/v1/employees"), 401)
    doc = is_problem(client.get("/api/v1/employees", headers=auth("lrl_nonsense")), 401)
    assert "unknown, revoked or expired" in doc["detail"]
    with engine_db.session_scope(org.url) as s:
        token = s.scalar(select(tokens.ApiToken).where(tokens.ApiToken.name == "auditor-token"))
        tokens.revoke(s, token.id, "auditor@example.com")
        with pytest.raises(tokens.PermissionDenied):
            other = s.scalar(select(tokens.ApiToken).where(
                tokens.ApiToken.name == "hr_admin-token"))
            tokens.revoke(s, other.id, "auditor@example.com")
    is_problem(client.get("/api/v1/employees", headers=auth(keys[AU])), 401)
    with engine_db.session_scope(org.url) as s:
        token = s.scalar(select(tokens.ApiToken).where(tokens.ApiToken.name == "hr_admin-token"))
        token.expires_at = token.created_at  # expired the moment it was made
    is_problem(client.get("/api/v1/employees", headers=auth(keys[HR])), 401)
    assert client.get("/api/v1/employees", headers=auth(keys[CA])).status_code == 200


def test_every_use_is_audited_with_the_token_name(client: FlaskClient, keys: dict[str, str],
                                                  org: Org) -> None:
    client.get("/api/v1/teams", headers=auth(keys[AU]))
    assert client.post("/api/v1/results", json=RESULTS, headers=auth(keys[CA])).status_code == 200
    client.post("/api/v1/results", json=RESULTS, headers=auth(keys[AU]))  # refused
    with org.session() as s:
        uses = s.scalars(select(AuditLog).where(AuditLog.action == "api")
                         .order_by(AuditLog.id)).all()
        assert [(u.actor, u.via, u.summary) for u in uses] == [
            ("auditor@example.com", "api token auditor-token", "GET /api/v1/teams -> 200"),
            ("analyst@example.com", "api token comp_analyst-token",
             "POST /api/v1/results -> 200"),
            ("auditor@example.com", "api token auditor-token", "POST /api/v1/results -> 403"),
        ]
        imported = s.scalar(select(AuditLog).where(AuditLog.action == "import")
                            .order_by(AuditLog.id.desc()).limit(1))
        assert imported.actor == "analyst@example.com"
        assert imported.via == "api token comp_analyst-token"


def test_token_cli(org: Org, app: Flask) -> None:
    from admin.cli import main

    runner = CliRunner()
    made = runner.invoke(main, ["tokens", "create", "hr@example.com", "--name", "payroll",
                                "--expires", "30"])
    assert made.exit_code == 0, made.output
    token = made.stdout.splitlines()[0]
    assert token.startswith("lrl_") and " " not in token
    client = app.test_client()
    assert client.get("/api/v1/runs", headers=auth(token)).status_code == 200
    listed = runner.invoke(main, ["tokens", "list", "--user", "hr@example.com"])
    assert "payroll\tactive" in listed.output and token not in listed.output
    token_id = listed.output.splitlines()[1].split("\t")[0]
    again = runner.invoke(main, ["tokens", "create", "hr@example.com", "--name", "payroll"])
    assert again.exit_code == 1 and "field name" in again.stderr
    revoked = runner.invoke(main, ["tokens", "revoke", token_id, "--as", "hr@example.com"])
    assert revoked.exit_code == 0, revoked.output
    is_problem(client.get("/api/v1/runs", headers=auth(token)), 401)
    assert "payroll\trevoked" in runner.invoke(main, ["tokens", "list"]).output
    with org.session() as s:  # stored hashed: the token itself is nowhere
        assert s.scalar(select(tokens.ApiToken.token_hash)) != token
        assert token not in json.dumps([a.after for a in s.scalars(select(AuditLog))])


# --- ingestion ----------------------------------------------------------------------------


@pytest.mark.parametrize(("item", "field", "reason"), [
    ({"period": "2026-02", "employee_code": "ZZ", "values": {"quota": 1}}, "employee_code",
     "unknown employee"),
    ({"period": "2026-13", "employee_code": "N2", "values": {"quota": 1}}, "period",
     "malformed period"),
    ({"period": "2026-02", "employee_code": "N2", "values": {"quota": "1,000"}},
     "values.quota", "not a number"),
    ({"period": "2026-02", "employee_code": "N2", "values": {"no_such_metric": 1}},
     "values.no_such_metric", "unknown metric"),
    ({"period": "2026-02", "employee_code": "N2", "values": {"quota": True}},
     "values.quota", "string or a number"),
    ({"period": "2026-02", "employee_code": "N1", "values": {"quota": 1}}, "employee_code",
     "appear twice"),
])
def test_a_bad_item_refuses_the_batch(client: FlaskClient, keys: dict[str, str], org: Org,
                                      item: dict, field: str, reason: str) -> None:
    before = support.result_count(org)
    batch = {"items": [*RESULTS["items"], item]}
    doc = is_problem(client.post("/api/v1/results", json=batch, headers=auth(keys[CA])), 422)
    assert doc["errors"][0]["item"] == 2 and doc["errors"][0]["field"] == field, doc
    assert reason in doc["errors"][0]["reason"] and "item 2" in doc["detail"]
    assert support.result_count(org) == before
    assert count(org, Period, Period.code == "2026-02") == 0


def test_employees_batch_as_the_import(client: FlaskClient, keys: dict[str, str],
                                       org: Org) -> None:
    bad = {"items": [{"code": "X1", "name": "Xia", "team": "West", "level": "S1"},
                     {"code": "X2", "name": "Xu", "team": "West", "level": "S7"}]}
    doc = is_problem(client.post("/api/v1/employees", json=bad, headers=auth(keys[HR])), 422)
    assert doc["errors"] == [{"item": 1, "field": "level", "reason": doc["errors"][0]["reason"]}]
    assert "unknown level" in doc["detail"] and count(org, Team, Team.name == "West") == 0
    bad["items"][1]["level"] = "S2"
    done = client.post("/api/v1/employees", json=bad, headers=auth(keys[HR]))
    assert done.get_json() == {"kind": "employees", "rows": 2, "created": 2, "updated": 0,
                               "periods": []}
    put = client.put("/api/v1/employees/X2", json={"name": "Xu Two", "team": "West",
                                                   "level": "S2", "manager_code": "X1"},
                     headers=auth(keys[HR]))
    assert put.get_json()["updated"] == 1
    one = client.get("/api/v1/employees/X2", headers=auth(keys[HR])).get_json()
    assert (one["name"], one["manager_code"], one["team"]) == ("Xu Two", "X1", "West")
    team = client.put("/api/v1/teams/West", json={"stage": "startup"}, headers=auth(keys[HR]))
    assert team.get_json()["stage"] == "startup"
    is_problem(client.put("/api/v1/teams/West", json={"stage": "huge"},
                          headers=auth(keys[HR])), 422)
    tab = is_problem(client.put("/api/v1/teams/West", json={"region": "We\tst"},
                                headers=auth(keys[HR])), 422)
    assert "region" in tab["detail"] and "control character U+0009" in tab["detail"]
    assert client.get("/api/v1/teams/West", headers=auth(keys[HR])).get_json()["region"] \
        != "We\tst"


def test_results_read_back_as_the_rows_a_batch_sends(client: FlaskClient,
                                                     keys: dict[str, str], org: Org) -> None:
    assert client.post("/api/v1/results", json=RESULTS, headers=auth(keys[CA])).status_code \
        == 200
    got = client.get("/api/v1/results?period=2026-02", headers=auth(keys[AU])).get_json()
    rows = {r["employee_code"]: r for r in got["items"]}
    assert set(rows) == {"N1", "S2"}
    for item in RESULTS["items"]:
        row = rows[item["employee_code"]]
        assert row["period"] == "2026-02" and set(row["values"]) == set(item["values"])
        assert {k: Decimal(v) for k, v in row["values"].items()} == \
            {k: Decimal(str(v)) for k, v in item["values"].items()}
    # a metric: the rows with a value for it; an unknown metric: none
    with_quota = _pages(client, "/api/v1/results?metric=quota", keys[AU], 50)
    assert {"N1", "S2"} <= {r["employee_code"] for r in with_quota}
    assert all("quota" in r["values"] for r in with_quota)
    scored = _pages(client, "/api/v1/results?metric=satisfaction", keys[AU], 50)
    assert scored and all("satisfaction" in r["values"] for r in scored)
    assert {r["period"] for r in scored} == {"2026-01"}  # the batch sent none
    assert client.get("/api/v1/results?metric=nothing", headers=auth(keys[AU])).get_json()[
        "items"] == []


def test_idempotent_retry_applies_once(client: FlaskClient, keys: dict[str, str],
                                       org: Org) -> None:
    headers = auth(keys[CA], **{"Idempotency-Key": "crm-2026-02-batch-1"})
    first = client.post("/api/v1/results", json=RESULTS, headers=headers)
    assert first.status_code == 200 and first.get_json()["created"] == 4
    stored = support.result_count(org)
    again = client.post("/api/v1/results", json=RESULTS, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert support.result_count(org) == stored
    assert count(org, AuditLog, AuditLog.action == "import", AuditLog.via.is_not(None)) == 1
    changed = {"items": [{**RESULTS["items"][0], "values": {"quota": "1"}}]}
    doc = is_problem(client.post("/api/v1/results", json=changed, headers=headers), 409)
    assert "Idempotency-Key" in doc["detail"]
    # another user's same key is theirs alone
    other = client.post("/api/v1/results", json=changed,
                        headers=auth(keys[HR], **{"Idempotency-Key": "crm-2026-02-batch-1"}))
    assert other.status_code == 200 and count(org, ApiIdempotency) == 2


def test_large_batch(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    """A batch as large as a month of a large sales force goes in one request (the size
    limit is the import's); here 20,000 rows, quick enough for the suite."""
    with engine_db.session_scope(org.url) as s:
        north, level = s.scalar(select(Team.id).where(Team.name == "North")), \
            s.scalar(select(Employee.level_id).limit(1))
        s.execute(Employee.__table__.insert(), [
            {"code": f"B{i:05d}", "name": f"Bulk {i}", "email": "", "team_id": north,
             "level_id": level} for i in range(20000)])
    batch = {"items": [{"period": "2026-03", "employee_code": f"B{i:05d}",
                        "values": {"quota": 1000 + i}} for i in range(20000)]}
    response = client.post("/api/v1/results", json=batch, headers=auth(keys[CA]))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.get_json()["created"] == 20000


# --- runs, paging, ETags ------------------------------------------------------------------


def test_the_crm_to_payroll_path(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    started = client.post("/api/v1/runs", json={"period": "2026-01"}, headers=auth(keys[CA]))
    assert started.status_code == 202, started.get_data(as_text=True)
    job = client.get(started.headers["Location"], headers=auth(keys[CA])).get_json()
    assert job["status"] == "done" and job["done"] == job["total"] == 4
    run_id = job["run_id"]
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth(keys[AU]))
    assert run.get_json()["status"] == "calculated" and run.headers["ETag"]
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth(
        keys[AU], **{"If-None-Match": run.headers["ETag"]})).status_code == 304
    # the person who started it may not approve it; an auditor changes nothing
    is_problem(client.post(f"/api/v1/runs/{run_id}/approve", headers=auth(keys[CA])), 403)
    is_problem(client.post(f"/api/v1/runs/{run_id}/approve", headers=auth(keys[AU])), 403)
    is_problem(client.post(f"/api/v1/runs/{run_id}/lock", headers=auth(keys[HR])), 409)
    assert client.post(f"/api/v1/runs/{run_id}/approve",
                       headers=auth(keys[HR])).get_json()["status"] == "approved"
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth(
        keys[AU], **{"If-None-Match": run.headers["ETag"]})).status_code == 200
    is_problem(client.post(f"/api/v1/runs/{run_id}/approve", headers=auth(keys[HR])), 409)
    locked = client.post(f"/api/v1/runs/{run_id}/lock", json={"open_flags_reason": "later"},
                         headers=auth(keys[CA]))
    assert locked.get_json()["status"] == "locked", locked.get_data(as_text=True)
    again = is_problem(client.post(f"/api/v1/runs/{run_id}/lock", headers=auth(keys[CA])), 409)
    assert again["type"].endswith("problem-not-live-run") and "locked already" in again["detail"]
    doc = is_problem(client.post("/api/v1/results", json={"items": [
        {"period": "2026-01", "employee_code": "N1", "values": {"quota": 1}}]},
        headers=auth(keys[CA])), 409)
    assert doc["type"].endswith("problem-locked-period")
    is_problem(client.post("/api/v1/runs", json={"period": "2026-01"},
                           headers=auth(keys[CA])), 409)
    # only HR reopens a locked period, with a reason
    for role in (CA, CO, SM, AU):
        is_problem(client.post("/api/v1/periods/2026-01/reopen", json={"reason": "late deal"},
                               headers=auth(keys[role])), 403)
    is_problem(client.post("/api/v1/periods/2026-01/reopen", json={"reason": " "},
                           headers=auth(keys[HR])), 422)
    assert count(org, Period, Period.code == "2026-01", Period.status == "locked") == 1
    # the payroll export in every format, the same lines
    lines = client.get(f"/api/v1/runs/{run_id}/export?format=json",
                       headers=auth(keys[AU])).get_json()["lines"]
    csv = client.get(f"/api/v1/runs/{run_id}/export?format=csv", headers=auth(keys[AU]))
    assert csv.content_type.startswith("text/csv")
    assert len(csv.get_data(as_text=True).strip().splitlines()) == len(lines) + 1
    xlsx = client.get(f"/api/v1/runs/{run_id}/export?format=xlsx", headers=auth(keys[AU]))
    assert xlsx.data[:2] == b"PK"
    is_problem(client.get(f"/api/v1/runs/{run_id}/export", headers=auth(keys[SM])), 403)
    # statements: an ETag; a manager reads their team's only
    st = client.get(f"/api/v1/runs/{run_id}/statements/N1", headers=auth(keys[SM]))
    assert st.status_code == 200 and st.get_json()["lines"]
    assert client.get(f"/api/v1/runs/{run_id}/statements/N1", headers=auth(
        keys[SM], **{"If-None-Match": st.headers["ETag"]})).status_code == 304
    is_problem(client.get(f"/api/v1/runs/{run_id}/statements/S1", headers=auth(keys[SM])), 404)
    reopened = client.post("/api/v1/periods/2026-01/reopen", json={"reason": "late deal"},
                           headers=auth(keys[HR]))
    assert reopened.get_json()["status"] == "open"
    is_problem(client.post("/api/v1/periods/2026-01/reopen", json={"reason": "again"},
                           headers=auth(keys[HR])), 409)


def test_cursor_paging(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    results = _pages(client, "/api/v1/results?sort=-id", keys[AU], 3)
    ids = [r["id"] for r in results]
    assert ids == sorted(ids, reverse=True) and len(ids) == count(org, ResultRow)
    by_code = _pages(client, "/api/v1/employees?sort=-code", keys[AU], 1)
    assert [e["code"] for e in by_code] == ["S2", "S1", "N2", "N1"]
    started = client.post("/api/v1/runs", json={"period": "2026-01"}, headers=auth(keys[CA]))
    run_id = client.get(started.headers["Location"], headers=auth(keys[CA])).get_json()["run_id"]
    paged = _pages(client, f"/api/v1/runs/{run_id}/outcomes", keys[AU], 2)
    streamed = client.get(f"/api/v1/runs/{run_id}/outcomes.ndjson", headers=auth(keys[AU]))
    lines = [json.loads(x) for x in streamed.get_data(as_text=True).splitlines()]
    assert paged == lines and len(lines) > 4
    with org.session() as s:  # the outcomes as `laurel outcomes` gives them (CONTRACT.md)
        from engine.runs import get_run, outcome_rows

        contract = outcome_rows(s, get_run(s, run_id))
    assert sorted(json.dumps({k: o[k] for k in contract[0]}, sort_keys=True) for o in lines) \
        == sorted(json.dumps(o, sort_keys=True) for o in contract)
    kinds = _pages(client, f"/api/v1/runs/{run_id}/outcomes?kind=commission&team=South",
                   keys[AU], 2)
    assert kinds and {(o["kind"], o["team"]) for o in kinds} == {("commission", "South")}
    mine = _pages(client, f"/api/v1/runs/{run_id}/outcomes", keys[SM], 5)
    assert mine and {o["team"] for o in mine} == {"North"}
    doc = is_problem(client.get("/api/v1/results?cursor=not-a-cursor", headers=auth(keys[AU])),
                     400)
    assert "cursor" in doc["detail"]
    is_problem(client.get("/api/v1/results?sort=value", headers=auth(keys[AU])), 400)


# --- errors -------------------------------------------------------------------------------


def test_errors_are_problem_documents(client: FlaskClient, keys: dict[str, str],
                                      app: Flask) -> None:
    key = auth(keys[HR])
    is_problem(client.get("/api/v1/nothing-here", headers=key), 404)
    is_problem(client.delete("/api/v1/employees", headers=key), 405)
    is_problem(client.get("/api/v1/runs/999", headers=key), 404)
    is_problem(client.post("/api/v1/results", data="{not json", headers=key,
                           content_type="application/json"), 400)
    doc = is_problem(client.get("/api/v1/employees?limit=0", headers=key), 422)
    assert doc["errors"][0]["field"] == "query.limit"
    app.config["API_MAX_BYTES"] = 100
    is_problem(client.post("/api/v1/results", json=RESULTS, headers=key), 413)
    app.config["API_MAX_BYTES"] = 10**6
    app.config["API_RATE_LIMIT"] = "3 per minute"
    for _ in range(3):
        client.get("/api/v1/teams", headers=key)
    doc = is_problem(client.get("/api/v1/teams", headers=key), 429)
    assert int(client.get("/api/v1/teams", headers=key).headers["Retry-After"]) >= 1
    assert client.get("/api/v1/teams", headers=auth(keys[AU])).status_code == 200  # per token


# --- the description ----------------------------------------------------------------------


def test_openapi_and_docs_page(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    paths = set(spec["paths"])
    for needed in ("/api/v1/results", "/api/v1/runs/{run_id}/approve",
                   "/api/v1/runs/{run_id}/export", "/api/v1/compliance-cases/{case_id}/decide",
                   "/api/v1/pips/{pip_id}/decide", "/api/v1/candidates/{candidate_id}/move",
                   "/api/v1/audit-log", "/api/v1/rules/drafts",
                   "/api/v1/review-cycles/{cycle_id}/customer-scores"):
        assert needed in paths
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"swagger-ui-bundle.js" in page.data
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/api/v1/docs/ui/{asset}").status_code == 200
    assert client.get("/api/v1/docs/page/docs.js").status_code == 200


@pytest.mark.slow
def test_schemathesis_over_the_whole_spec(app: Flask, keys: dict[str, str]) -> None:
    """A few generated requests per operation: no server error, every answer as described."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    app.config["API_RATE_LIMIT"] = "100000 per minute"
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance,
              content_type_conformance]
    headers = auth(keys[HR])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        @settings(max_examples=4, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=checks, headers=headers)

        check()


# --- the back office's page ---------------------------------------------------------------


def test_tokens_page(client: FlaskClient, org: Org, keys: dict[str, str]) -> None:
    support.login(client, AU)
    page = client.post("/admin/api-tokens/create", data={"name": "bi", "days": "7"})
    assert page.status_code == 200
    token = re.search(r'<code id="new-token">([^<]+)</code>', page.get_data(as_text=True))[1]
    api = client.application.test_client()
    assert api.get("/api/v1/runs", headers=auth(token)).status_code == 200
    listing = client.get("/admin/api-tokens/")
    assert "bi" in support.text_of(listing) and token not in listing.get_data(as_text=True)
    refused = client.post("/admin/api-tokens/create", data={"name": "bi"})
    assert refused.status_code == 400 and "field name" in support.text_of(refused)
    with org.session() as s:
        mine = s.scalar(select(tokens.ApiToken.id).where(tokens.ApiToken.name == "bi"))
        theirs = s.scalar(select(tokens.ApiToken.id).where(
            tokens.ApiToken.name == "hr_admin-token"))
    assert client.post(f"/admin/api-tokens/{theirs}/revoke").status_code == 404
    assert api.get("/api/v1/runs", headers=auth(keys[HR])).status_code == 200
    client.post(f"/admin/api-tokens/{mine}/revoke")
    is_problem(api.get("/api/v1/runs", headers=auth(token)), 401)
    zh = support.text_of(client.get("/admin/api-tokens/?lang=zh"))
    assert "API 令牌" in zh and "已撤销" in zh
    unnamed = support.text_of(client.post("/admin/api-tokens/create", data={"name": ""}))
    assert "需要填写名称" in unnamed and "a name is needed" not in unnamed


def test_cancel_a_run_job(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    from engine import jobs
    from engine.models import RunJob

    with engine_db.session_scope(org.url) as s:  # queued, not yet handed to a worker
        job_id = jobs.start(s, "2026-01", ROLE_EMAILS[CA]).id
    for role in (CO, SM, AU):
        is_problem(client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth(keys[role])), 403)
    assert count(org, RunJob, RunJob.status == "queued") == 1
    busy = is_problem(client.post("/api/v1/runs", json={"period": "2026-01"},
                                  headers=auth(keys[HR])), 409)
    assert busy["type"].endswith("problem-run-in-progress")
    done = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth(keys[HR]))
    assert done.get_json()["status"] == "cancelled"
    is_problem(client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth(keys[HR])), 409)
    started = client.post("/api/v1/runs", json={"period": "2026-01"}, headers=auth(keys[HR]))
    run_id = client.get(started.headers["Location"], headers=auth(keys[HR])).get_json()["run_id"]
    is_problem(client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth(keys[HR])), 409)


def test_metrics_upsert(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    from engine.models import Metric

    body = {"label_en": "Demo calls", "label_zh": "演示次数", "type": "count",
            "min_value": "0", "max_value": 500}
    for role in (CA, CO, SM, AU):
        is_problem(client.put("/api/v1/metrics/demo_calls", json=body,
                              headers=auth(keys[role])), 403)
    assert count(org, Metric, Metric.key == "demo_calls") == 0
    made = client.put("/api/v1/metrics/demo_calls", json=body, headers=auth(keys[HR]))
    assert Decimal(made.get_json()["max_value"]) == 500, made.get_data(as_text=True)
    doc = is_problem(client.put("/api/v1/metrics/demo_calls", json={"min_value": "600"},
                                headers=auth(keys[HR])), 422)
    assert "field max_value" in doc["detail"]
    doc = is_problem(client.put("/api/v1/metrics/per_call", json={
        "label_en": "Per call", "type": "money", "formula": "revenue_new / nothing_such"},
        headers=auth(keys[HR])), 422)
    assert "nothing_such" in doc["detail"] and doc["errors"][0]["field"] == "formula"
    derived = client.put("/api/v1/metrics/per_call", json={
        "label_en": "Per call", "type": "money", "formula": "revenue_new / demo_calls"},
        headers=auth(keys[HR]))
    assert derived.status_code == 200, derived.get_data(as_text=True)
    # a derived metric is not imported: the batch names it
    doc = is_problem(client.post("/api/v1/results", json={"items": [
        {"period": "2026-02", "employee_code": "N1", "values": {"per_call": 3}}]},
        headers=auth(keys[CA])), 422)
    assert doc["errors"][0]["field"] == "values.per_call"


def test_paging_a_large_run(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    """5,000 outcomes read in pages of 1,000 and streamed: each once, in order."""
    from engine.models import Outcome

    with engine_db.session_scope(org.url) as s:
        period = s.scalar(select(Period.id).where(Period.code == "2026-01"))
        run = Run(period_id=period, status="calculated", started_by="x@example.com")
        s.add(run)
        s.flush()
        employees = list(org.employees.values())
        s.execute(Outcome.__table__.insert(), [
            {"run_id": run.id, "employee_id": employees[i % 4], "rule_key": "bonus.x",
             "kind": "bonus", "amount": i, "currency": "CNY", "status": "payable",
             "explanation": {}} for i in range(5000)])
        run_id = run.id
    pages, cursor = 0, None
    seen: list[int] = []
    while True:
        body = client.get(f"/api/v1/runs/{run_id}/outcomes?limit=1000"
                          + (f"&cursor={cursor}" if cursor else ""),
                          headers=auth(keys[AU])).get_json()
        pages, seen, cursor = pages + 1, seen + [o["id"] for o in body["items"]], \
            body["next_cursor"]
        if not cursor:
            break
    assert pages == 5 and len(seen) == 5000 and seen == sorted(set(seen))
    streamed = client.get(f"/api/v1/runs/{run_id}/outcomes.ndjson?status=payable",
                          headers=auth(keys[AU]))
    assert streamed.is_streamed and len(streamed.get_data().splitlines()) == 5000
    north = client.get(f"/api/v1/runs/{run_id}/outcomes.ndjson", headers=auth(keys[SM]))
    assert len(north.get_data().splitlines()) == 2500  # the manager's team: N1 and N2


def test_a_stale_run_is_a_conflict(client: FlaskClient, keys: dict[str, str], org: Org) -> None:
    started = client.post("/api/v1/runs", json={"period": "2026-01"}, headers=auth(keys[CA]))
    run_id = client.get(started.headers["Location"], headers=auth(keys[CA])).get_json()["run_id"]
    changed = client.post("/api/v1/results", json={"items": [
        {"period": "2026-01", "employee_code": "N2", "values": {"quota": "50001"}}]},
        headers=auth(keys[CA]))
    assert changed.get_json()["updated"] == 1
    doc = is_problem(client.post(f"/api/v1/runs/{run_id}/approve", headers=auth(keys[HR])), 409)
    assert doc["type"].endswith("problem-stale-run") and "start a new run" in doc["detail"]
    assert client.get(f"/api/v1/runs/{run_id}",
                      headers=auth(keys[HR])).get_json()["status"] == "calculated"
