"""The API's follow-up: flag transitions, PIP decisions, candidates and customer scores,
each for every role (allowed and refused, a refusal changing nothing)."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine import db as engine_db
from engine import reviews, tokens
from engine.models import AuditLog, ReviewEntry

try:  # tests/ may or may not be a package
    from tests import test_admin_compliance as flags
    from tests import test_admin_followup as followup
    from tests import test_admin_support as support
    from tests.test_api import auth, is_problem
except ImportError:
    import test_admin_compliance as flags  # type: ignore[no-redef]
    import test_admin_followup as followup  # type: ignore[no-redef]
    import test_admin_support as support  # type: ignore[no-redef]
    from test_api import auth, is_problem  # type: ignore[no-redef]

HR, CA, CO, SM, AU = ("hr_admin", "comp_analyst", "compliance_officer", "sales_manager",
                      "auditor")
ROLES = (HR, CA, CO, SM, AU)


def _keys(url: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    with engine_db.session_scope(url) as s:
        for role, email in [*support.ROLE_EMAILS.items(), *((e, e) for e in extra)]:
            out[role] = tokens.create(s, email, "t")[1]
    return out


def _client() -> FlaskClient:
    app: Flask = support.web_app({"TESTING": True, "SECRET_KEY": "t"})
    return app.test_client()


def _audit(url: str) -> int:
    with engine_db.make_sessionmaker(url)() as s:
        return s.scalar(select(func.count()).select_from(AuditLog)
                        .where(AuditLog.action != "api"))


def test_flag_transitions_by_role(db_url: str) -> None:
    world = flags.build_world(db_url)
    keys, client = _keys(db_url, (flags.OFFICER2,)), _client()
    case = world.discount
    base = f"/api/v1/compliance-cases/{case}"
    before, audited = world.case(case), _audit(db_url)
    for role in (HR, CA, SM, AU):
        for step, body in (("assign", {"assignee": flags.OFFICER}),
                           ("notes", {"text": "seen"}),
                           ("decide", {"decision": "dismissed", "reason": "fine"})):
            is_problem(client.post(f"{base}/{step}", json=body, headers=auth(keys[role])), 403)
    assert world.case(case) == before and _audit(db_url) == audited
    listed = client.get("/api/v1/compliance-cases?status=open", headers=auth(keys[SM]))
    assert {c["id"] for c in listed.get_json()["items"]} >= {world.discount, world.false_ad}
    is_problem(client.post(f"{base}/decide", json={"decision": "dismissed", "reason": "x"},
                           headers=auth(keys[CO])), 409)  # not in review yet
    assigned = client.post(f"{base}/assign", json={"assignee": flags.OFFICER2},
                           headers=auth(keys[CO]))
    assert assigned.get_json()["status"] == "in_review"
    assert client.post(f"{base}/notes", json={"text": "asked the manager"},
                       headers=auth(keys[CO])).status_code == 201
    done = client.post(f"{base}/decide", json={"decision": "dismissed",
                                               "reason": "discount approved by the director"},
                       headers=auth(keys[CO]))
    assert done.get_json()["status"] == "dismissed"
    assert world.case(case)[:3] == ("dismissed", flags.OFFICER2,
                                    "discount approved by the director")
    is_problem(client.post(f"{base}/decide", json={"decision": "confirmed", "reason": "x"},
                           headers=auth(keys[CO])), 409)
    is_problem(client.post(f"{base}/decide", json={"decision": "maybe"},
                           headers=auth(keys[CO])), 422)


def test_pips_and_candidates_by_role(db_url: str) -> None:
    world = followup.build_world(db_url)
    keys, client = _keys(db_url), _client()
    pip, cand = f"/api/v1/pips/{world.pip}", f"/api/v1/candidates/{world.candidate}"
    pip_before, cand_before = world.pip_state(), world.candidate_state()
    for role in (CA, CO, SM, AU):
        is_problem(client.post(f"{pip}/decide", json={"decision": "passed", "reason": "ok"},
                               headers=auth(keys[role])), 403 if role != SM else 404)
    for role in (CA, CO, AU):
        is_problem(client.post(f"{cand}/move", json={"status": "nominated", "reason": "x"},
                               headers=auth(keys[role])), 403)
    # the manager of North may nominate A1, never accept
    is_problem(client.post(f"{cand}/move", json={"status": "accepted", "reason": "x"},
                           headers=auth(keys[SM])), 403)
    assert (world.pip_state(), world.candidate_state()) == (pip_before, cand_before)
    is_problem(client.get("/api/v1/pips", headers=auth(keys[CO])), 403)
    nominated = client.post(f"{cand}/move", json={"status": "nominated", "reason": "strong"},
                            headers=auth(keys[SM]))
    assert nominated.get_json()["status"] == "nominated", nominated.get_data(as_text=True)
    assert client.post(f"{cand}/move", json={"status": "accepted", "reason": "agreed"},
                       headers=auth(keys[HR])).get_json()["status"] == "accepted"
    short = is_problem(client.post(f"{pip}/decide", json={"decision": "extended",
                                                         "reason": "more time"},
                                   headers=auth(keys[HR])), 422)
    assert short["errors"][0]["field"] == "new_end"
    assert world.pip_state() == pip_before
    decided = client.post(f"{pip}/decide", json={"decision": "passed", "reason": "on target"},
                          headers=auth(keys[HR]))
    assert decided.get_json()["status"] == "passed" and world.pip_state()[0] == "passed"
    is_problem(client.post(f"{pip}/decide", json={"decision": "exit", "reason": "x"},
                           headers=auth(keys[HR])), 409)
    items = client.get("/api/v1/pips?status=passed", headers=auth(keys[AU])).get_json()["items"]
    assert [p["id"] for p in items] == [world.pip]


def test_customer_scores_as_their_import(db_url: str) -> None:
    followup.build_world(db_url)
    keys, client = _keys(db_url), _client()
    with engine_db.session_scope(db_url) as s:
        cycle = reviews.open_cycle(s, "2026-Q3", dt.date(2026, 9, 20), dt.date(2026, 9, 30),
                                   support.ROLE_EMAILS[HR]).id
    url = f"/api/v1/review-cycles/{cycle}/customer-scores"
    good = {"items": [{"employee_code": "A1", "score": "4.5"},
                      {"employee_code": "C1", "score": 3, "comments": "slow replies"}]}
    for role in (CO, SM, AU):
        is_problem(client.post(url, json=good, headers=auth(keys[role])), 403)
    bad = {"items": [good["items"][0], {"employee_code": "C1", "score": "101"}]}
    doc = is_problem(client.post(url, json=bad, headers=auth(keys[CA])), 422)
    assert (doc["errors"][0]["item"], doc["errors"][0]["field"]) == (1, "score")

    def entries() -> int:
        with engine_db.make_sessionmaker(db_url)() as s:
            return s.scalar(select(func.count()).select_from(ReviewEntry))

    assert entries() == 0
    done = client.post(url, json=good, headers=auth(keys[CA]))
    assert done.status_code == 200 and done.get_json()["rows"] == 2 and entries() == 2
    is_problem(client.post("/api/v1/review-cycles/999/customer-scores", json=good,
                           headers=auth(keys[HR])), 404)


def test_rules_validate_for_readers(db_url: str) -> None:
    support.build_org(db_url)
    keys, client = _keys(db_url), _client()
    for role in ROLES:
        response = client.post("/api/v1/rules/validate", data="key: x\nkind: bonus\n",
                               content_type="application/yaml", headers=auth(keys[role]))
        if role == SM:
            is_problem(response, 403)
            continue
        body = response.get_json()
        assert body["valid"] is False and body["errors"][0]["reason"], role
