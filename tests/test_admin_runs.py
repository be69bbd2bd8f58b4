"""The period end in the back office: runs, jobs, lifecycle, statements, export, diff."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import func, select

from admin import i18n
from engine import jobs, lifecycle, runs, statements
from engine.imports import import_results
from engine.models import STAFF_ROLES as ROLES
from engine.models import (
    Adjustment,
    AuditLog,
    Employee,
    Metric,
    Outcome,
    Period,
    ResultRow,
    Run,
    RunJob,
)
from tests.stored import row_form

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

Org = support.Org
login = support.login
text_of = support.text_of
count = support.count
pytest_plugins = [support.__name__]

HR, CA, CO, SM, AU = ROLES
ANALYST = support.ROLE_EMAILS[CA]
# What the confirmation pages send: the checklist was read (and, to lock, the flags it
# leaves open are left open on purpose).
CONFIRM = {"confirm": "1"}
LOCK_ANYWAY = {"confirm": "1", "with_open_flags": "1", "open_flags_reason": "reviewed later"}


def start(org: Org, actor: str = ANALYST, code: str = "2026-01") -> int:
    """A calculated run of the period, started by ``actor`` (through the engine)."""
    with org.session() as s:
        run_id = runs.start_run(s, code, actor=actor).run.id
        s.commit()
    return run_id


def status_of(org: Org, run_id: int) -> tuple[str, str]:
    with org.session() as s:
        run = s.get(Run, run_id)
        return run.status, run.period.status


def money(app: Flask, amount: Decimal, lang: str = "en") -> str:
    return support.in_language(app, lang, i18n.money, amount)


@pytest.fixture()
def run_id(org: Org) -> int:
    return start(org)


# --- the list and the jobs ---------------------------------------------------------------


def test_the_list_shows_runs_with_totals_and_filters(
        app: Flask, client: FlaskClient, org: Org, run_id: int) -> None:
    with org.session() as s:
        payable = statements.overview(s, s.get(Run, run_id))["by_status"]["payable"]
    login(client, AU)
    page = client.get("/admin/runs/")
    assert page.status_code == 200
    text = text_of(page)
    assert f"Run {run_id}" in text and "2026-01" in text and ANALYST in text
    assert money(app, payable) in text
    assert f"Run {run_id}" not in text_of(client.get("/admin/runs/?status=approved"))
    assert f"Run {run_id}" in text_of(client.get("/admin/runs/?period=2026-01&status=calculated"))
    assert "Start a run" not in text  # the auditor reads; it does not start runs
    login(client, CA)
    assert "Start a run" in text_of(client.get("/admin/runs/"))


def test_start_a_run_and_follow_its_job(
        client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    dispatch = jobs.dispatch

    def no_dispatch(job_id):  # the tasks are run below, once the queued state is seen
        started.append(job_id)

    monkeypatch.setattr("admin.runs_views.jobs.dispatch", no_dispatch)
    login(client, CA)
    response = client.post("/admin/runs/start", data={"period": "2026-01"})
    assert response.status_code == 302 and response.location.endswith(
        f"/admin/runs/job/{started[0]}")
    queued = client.get(f"/admin/runs/job/{started[0]}/progress").get_json()
    assert queued["status"] == "queued" and queued["finished"] is False

    dispatch(started[0])  # Celery, each task at once (tests/conftest.py)

    state = client.get(f"/admin/runs/job/{started[0]}/progress").get_json()
    assert state["status"] == "done" and state["finished"] is True
    assert state["done"] == state["total"] == 4 and state["percent"] == 100
    assert state["run_url"] == f"/admin/runs/{state['run_id']}/"
    page = client.get(f"/admin/runs/job/{started[0]}")
    assert page.status_code == 200 and state["run_url"] in page.get_data(as_text=True)
    assert "4 of 4 employees" in text_of(page)
    with org.session() as s:
        run = s.get(Run, state["run_id"])
        assert (run.status, run.started_by) == ("calculated", ANALYST)

    with org.session() as s:  # a job still being evaluated: a second click follows it
        s.add(RunJob(period_code="2026-01", status="running", started_by=ANALYST))
        s.commit()
        busy = s.scalar(select(func.max(RunJob.id)))
    again = client.post("/admin/runs/start", data={"period": "2026-01"})
    assert again.status_code == 302 and again.location.endswith(f"/admin/runs/job/{busy}")
    with org.session() as s:
        s.get(RunJob, busy).status = "failed"
        s.commit()

    unknown = client.post("/admin/runs/start", data={"period": "2031-07"})
    assert unknown.status_code == 400 and "2031-07" in text_of(unknown)
    for role in (AU, CO, SM):
        login(client, role)
        assert client.post("/admin/runs/start", data={"period": "2026-01"}).status_code == 403
    assert count(org, RunJob) == 2


def test_a_spawned_run_is_followed_until_done(client: FlaskClient, org: Org) -> None:
    login(client, HR)
    response = client.post("/admin/runs/start", data={"period": "2026-01"})
    assert response.status_code == 302
    url = response.location + "/progress"
    deadline = time.monotonic() + 60
    state = client.get(url).get_json()
    while not state["finished"] and time.monotonic() < deadline:
        time.sleep(0.25)
        state = client.get(url).get_json()
    assert state["status"] == "done", state
    assert state["done"] == state["total"] == 4
    assert client.get(state["run_url"]).status_code == 200


def test_a_killed_worker_shows_as_failed_with_its_reason(client: FlaskClient, org: Org) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    with org.session() as s:
        job = jobs.start(s, "2026-01", ANALYST)
        job.status, job.pid = "running", gone.pid
        s.commit()
        job_id = job.id
    login(client, CA)
    state = client.get(f"/admin/runs/job/{job_id}/progress").get_json()
    assert state["status"] == "failed" and "killed" in state["error"]
    page = client.get(f"/admin/runs/job/{job_id}")
    assert "nothing of it was stored" in text_of(page) and count(org, Outcome) == 0


# --- the lifecycle, allowed and refused -----------------------------------------------------


def test_the_starter_cannot_approve_and_lock_needs_the_approval(
        client: FlaskClient, org: Org, run_id: int) -> None:
    login(client, CA)  # the analyst started the run
    refused = client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM)
    assert refused.status_code == 400
    assert "another person must approve it" in text_of(refused)
    login(client, HR)
    early = client.post(f"/admin/runs/{run_id}/lock", data=LOCK_ANYWAY)
    assert early.status_code == 400 and "approve it before locking" in text_of(early)
    assert status_of(org, run_id) == ("calculated", "open")

    assert client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM).status_code == 302
    assert status_of(org, run_id) == ("approved", "open")
    page = client.get(f"/admin/runs/{run_id}/")
    assert f"approved by {support.ROLE_EMAILS[HR]}" in text_of(page)
    again = client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM)
    assert again.status_code == 400 and "only a calculated run" in text_of(again)
    login(client, CA)
    assert client.post(f"/admin/runs/{run_id}/lock", data=LOCK_ANYWAY).status_code == 302
    assert status_of(org, run_id) == ("locked", "locked")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_step_the_engine_would_refuse_shows_its_refusal_beside_a_disabled_button(
        app: Flask, client: FlaskClient, org: Org, run_id: int, lang: str) -> None:
    """The confirmation page says, in the page's language, the refusal the engine would
    raise (lifecycle.approval_refusal, lock_refusal), beside the disabled button."""
    def page(action: str, who: str) -> tuple[str, str]:
        login(client, who)
        html = client.get(f"/admin/runs/{run_id}/{action}?lang={lang}").get_data(as_text=True)
        found = re.search(rf'<button[^>]*id="confirm-{action}"[^>]*>', html)
        assert found, html
        return html, found.group(0)

    def barred(action: str, who: str) -> str:
        with org.session() as s:
            run = s.get(Run, run_id)
            refusal = (lifecycle.approval_refusal(s, run, support.ROLE_EMAILS[who])
                       if action == "approve" else lifecycle.lock_refusal(s, run))
        assert refusal is not None
        said = str(escape(support.in_language(app, lang, i18n.say, refusal)))
        assert (said == str(escape(refusal))) == (lang == "en")  # said in the page's language
        html, button = page(action, who)
        assert f'<p class="small text-muted" id="barred">{said}</p>' in html
        assert "disabled" in button
        return said

    # the analyst started the run: not theirs to approve, nor yet to lock; the run page says
    # so beside its links too
    said = barred("approve", CA)
    assert said in client.get(f"/admin/runs/{run_id}/?lang={lang}").get_data(as_text=True)
    barred("lock", CA)
    html, button = page("approve", HR)  # who may approve it sees the button enabled
    assert 'id="barred"' not in html and "disabled" not in button
    assert client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM).status_code == 302
    html, button = page("lock", CA)
    assert 'id="barred"' not in html and "disabled" not in button
    edit_a_result(client, org, "4242")  # stale now: not locked
    barred("lock", HR)


def test_the_checklist_asks_for_confirmation_and_blocks_a_lock_with_open_flags(
        client: FlaskClient, org: Org, run_id: int) -> None:
    with org.session() as s:  # N2 (S1, 5% authority) gave 9%: a holding flag
        import_results(s, "late.csv", data=b"period,employee_code,max_discount_pct\n"
                                            b"2026-01,N2,0.09\n")
        s.commit()
    newer = start(org)
    login(client, HR)
    page = client.get(f"/admin/runs/{newer}/approve")
    assert page.status_code == 200
    text = text_of(page)
    assert "Period-close checklist" in text and "Open flags: 1 " in text
    assert f"Changes since run {run_id}:" in text and "Warnings: 0" in text
    assert f"Carried over from run {run_id}: 0 flag(s) with their decisions" in text
    unconfirmed = client.post(f"/admin/runs/{newer}/approve")
    assert unconfirmed.status_code == 400 and "Tick the box" in text_of(unconfirmed)
    assert status_of(org, newer) == ("calculated", "open")
    assert client.post(f"/admin/runs/{newer}/approve", data=CONFIRM).status_code == 302
    login(client, CA)
    lock_page = text_of(client.get(f"/admin/runs/{newer}/lock"))
    assert "Lock with open flags" in lock_page and "1 flag(s) still open" in lock_page
    blocked = client.post(f"/admin/runs/{newer}/lock", data=CONFIRM)
    assert blocked.status_code == 400
    assert "tick “Lock with open flags” and give a reason" in text_of(blocked)
    no_reason = client.post(f"/admin/runs/{newer}/lock", data={**LOCK_ANYWAY,
                                                              "open_flags_reason": " "})
    assert no_reason.status_code == 400 and status_of(org, newer) == ("approved", "open")
    # what was ticked and typed stays for the next try
    kept = no_reason.get_data(as_text=True)
    assert re.search(r'name="confirm" value="1" id="confirm" checked', kept)
    assert re.search(r'id="with-open-flags" checked', kept)
    assert client.post(f"/admin/runs/{newer}/lock", data=LOCK_ANYWAY).status_code == 302
    assert status_of(org, newer) == ("locked", "locked")
    with org.session() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "lock")).one()
        assert entry.after["open_flags_reason"] == "reviewed later"
        assert len(entry.after["open_flags"]) == 1


def test_only_hr_reopens_a_locked_period_with_a_reason(
        client: FlaskClient, org: Org, run_id: int) -> None:
    with org.session() as s:
        lifecycle.approve(s, run_id, support.ROLE_EMAILS[HR])
        lifecycle.lock(s, run_id, support.ROLE_EMAILS[HR],
                       open_flags_reason="reviewed later")
        s.commit()
    login(client, CA)
    page = text_of(client.get(f"/admin/runs/{run_id}/"))
    assert "Reopen period" not in page and "Add an adjustment" not in page
    assert client.post(f"/admin/runs/{run_id}/reopen", data={"reason": "x"}).status_code == 403
    login(client, HR)
    assert "Reopen period 2026-01" in text_of(client.get(f"/admin/runs/{run_id}/"))
    empty = client.post(f"/admin/runs/{run_id}/reopen", data={"reason": "   "})
    assert empty.status_code == 400
    assert re.search(r'is-invalid">\s+</textarea>', empty.get_data(as_text=True))
    assert "a written reason is required" in text_of(empty)
    assert status_of(org, run_id) == ("locked", "locked")
    done = client.post(f"/admin/runs/{run_id}/reopen", data={"reason": "late North results"})
    assert done.status_code == 302
    assert status_of(org, run_id) == ("locked", "open")
    with org.session() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "reopen")).one()
        assert entry.actor == support.ROLE_EMAILS[HR]
        assert entry.after["reason"] == "late North results"


@pytest.mark.parametrize("role", [AU, CO, SM])
def test_readers_posts_are_refused_and_change_nothing(
        client: FlaskClient, org: Org, run_id: int, role: str) -> None:
    login(client, role)
    audits = count(org, AuditLog)
    forms = {"approve": {}, "lock": {}, "reopen": {"reason": "because"},
             "adjust": {"employee": "N1", "amount": "10", "reason": "x"}}
    for action, form in forms.items():
        assert client.post(f"/admin/runs/{run_id}/{action}", data=form).status_code == 403
    assert client.post("/admin/runs/start", data={"period": "2026-01"}).status_code == 403
    assert status_of(org, run_id) == ("calculated", "open")
    assert count(org, AuditLog) == audits and count(org, Adjustment) == 0
    assert count(org, RunJob) == 0 and count(org, Run) == 1


def test_discarded_and_failed_runs_are_read_only(client: FlaskClient, org: Org,
                                                 run_id: int) -> None:
    newer = start(org, actor=support.ROLE_EMAILS[HR])
    with org.session() as s:
        failed = runs.record_failure(s, "2026-01", ANALYST, "employee N2: boom").id
        s.commit()
    login(client, HR)
    old = client.get(f"/admin/runs/{run_id}/")
    assert old.status_code == 200 and "discarded by a later run" in text_of(old)
    html = old.get_data(as_text=True)
    assert f"/admin/runs/{run_id}/approve" not in html and 'id="adjust"' not in html
    bad = client.get(f"/admin/runs/{failed}/")
    assert bad.status_code == 200 and "employee N2: boom" in text_of(bad)
    assert f"/admin/runs/{failed}/approve" not in bad.get_data(as_text=True)
    refused = client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM)
    assert refused.status_code == 400 and "only a calculated run" in text_of(refused)
    assert f"/admin/runs/{newer}/approve" in client.get(
        f"/admin/runs/{newer}/").get_data(as_text=True)


def edit_a_result(client: FlaskClient, org: Org, visits: str) -> None:
    """An analyst changes N2's visits in the back office (logged in as the analyst after)."""
    with org.session() as s:
        row = s.scalars(select(ResultRow).where(ResultRow.employee_id == org.employees["N2"])
                        .limit(1)).one()
        form = row_form(s, row, visits=visits)
        rid = row.id
    login(client, CA)
    assert client.post(f"/admin/result/edit/?id={rid}", data=form).status_code == 302


def test_a_hand_edited_result_makes_the_run_stale_and_its_page_says_why(
        client: FlaskClient, org: Org, run_id: int) -> None:
    edit_a_result(client, org, "4242")
    login(client, HR)
    page = client.get(f"/admin/runs/{run_id}/")
    assert re.search(r"Stale: results of 2026-01 changed after this run read them \(edit at "
                     r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d:\d\d\W[AP]M "
                     rf"by {ANALYST}\); start a new run\. It cannot be approved or locked\.",
                     text_of(page))
    html = page.get_data(as_text=True)
    assert f"/admin/runs/{run_id}/approve" not in html and f"/admin/runs/{run_id}/lock" not in html
    refused = client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM)
    assert refused.status_code == 400
    assert f"Run {run_id} is stale: it cannot be approved or locked." in text_of(refused)
    assert status_of(org, run_id) == ("calculated", "open")
    assert "已过时" in text_of(client.get(f"/admin/runs/{run_id}/?lang=zh"))
    newer = start(org)
    assert "Stale" not in text_of(client.get(f"/admin/runs/{newer}/?lang=en"))


def test_an_approved_run_gone_stale_offers_only_the_draft_export(
        client: FlaskClient, org: Org, run_id: int) -> None:
    login(client, HR)
    assert client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM).status_code == 302
    edit_a_result(client, org, "4243")
    page = client.get(f"/admin/runs/{run_id}/?lang=en")
    html = page.get_data(as_text=True)
    assert "Payroll export (CSV)" not in html and "DRAFT export (CSV)" in html
    assert "Stale since it was approved" in text_of(page)
    refused = client.get(f"/admin/runs/{run_id}/export?format=csv")
    assert refused.status_code == 400
    assert f"run {run_id} is stale: results of 2026-01 changed" in text_of(refused)
    draft = client.get(f"/admin/runs/{run_id}/export?format=csv&draft=1")
    assert draft.status_code == 200 and "DRAFT" in draft.headers["Content-Disposition"]
    assert draft.get_data(as_text=True).splitlines()[-1].startswith(f"DRAFT: run {run_id} is "
                                                                    "stale")
    zh = client.get(f"/admin/runs/{run_id}/export?format=csv&lang=zh")
    assert "已过时" in text_of(zh) and "is stale" not in text_of(zh)
    assert status_of(org, run_id) == ("approved", "open")


# --- the run page --------------------------------------------------------------------------


def test_the_run_page_shows_the_engine_overview_and_charts(
        app: Flask, client: FlaskClient, org: Org, run_id: int) -> None:
    with org.session() as s:
        run = s.get(Run, run_id)
        data = statements.overview(s, run)
        per_employee = {code: statements.statement(s, run, code).totals
                        for code in ("N1", "N2", "S1", "S2")}
    login(client, CO)
    page = client.get(f"/admin/runs/{run_id}/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)

    def section(name: str) -> str:
        found = re.search(rf'id="{name}".*?</table>', html, re.S)
        assert found, name
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))

    for key, amount in data["by_rule"].items():
        assert f"{key} {money(app, amount)}" in section("by-rule")
    for team, amount in data["by_team"].items():
        assert (f"{team} {data['team_members'][team]} {money(app, amount)}"
                in section("by-team"))
    for kind, amount in data["by_kind"].items():
        assert f"{data['counts'][kind]} {money(app, amount)}" in section("by-kind")
    counts = text_of(client.get(f"/admin/runs/{run_id}/"))
    assert f"Employees {data['employees']}" in counts
    assert f"Outcomes {data['outcomes']}" in counts and f"Flags {data['flags']}" in counts
    assert money(app, data["by_status"]["payable"]) in counts
    # every employee's row carries the statement's own totals
    employees = section("employees")
    for code, totals in per_employee.items():
        assert re.search(rf"{code} .*? {re.escape(money(app, totals['payable']))} "
                         rf"{re.escape(money(app, totals['held']))}", employees), code

    chart = json.loads(re.search(r'id="chart-data-distribution">(.*?)</script>', html,
                                 re.S).group(1))
    assert chart["datasets"][0]["data"] == [b["count"] for b in data["distribution"]]
    teams = json.loads(re.search(r'id="chart-data-attainment">(.*?)</script>', html,
                                 re.S).group(1))
    assert teams["labels"] == list(data["team_attainment"])
    script = re.search(r'src="([^"]*chart\.umd\.min\.js)"', html).group(1)
    library = client.get(script)
    assert library.status_code == 200 and b"Chart.js v4" in library.data[:200]
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from a CDN


def test_the_run_page_reads_the_figures_stored_with_the_run(
        app: Flask, client: FlaskClient, org: Org, run_id: int) -> None:
    """With every explanation emptied and the period's results gone, the run's page gives
    the same overview: it reads the totals kept with the run, not the outcomes' words or
    the period's facts."""
    from sqlalchemy import delete, update

    from engine.models import ResultRow

    def tables(html: str) -> dict[str, str]:
        out = {}
        for name in ("by-kind", "by-rule", "by-team"):
            found = re.search(rf'id="{name}".*?</table>', html, re.S)
            assert found, name
            out[name] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))
        return out

    login(client, CO)
    before = client.get(f"/admin/runs/{run_id}/").get_data(as_text=True)
    with org.session() as s:
        s.execute(update(Outcome).where(Outcome.run_id == run_id).values(explanation={}))
        s.execute(delete(ResultRow))
        s.commit()
        data = statements.overview(s, s.get(Run, run_id))
    page = client.get(f"/admin/runs/{run_id}/")
    after = page.get_data(as_text=True)
    assert page.status_code == 200 and tables(after) == tables(before)
    assert data["outcomes"] > 0 and f"Outcomes {data['outcomes']}" in text_of(page)
    assert money(app, data["total"]) in text_of(page)


def test_export_downloads_draft_then_approved(
        app: Flask, client: FlaskClient, org: Org, run_id: int) -> None:
    login(client, CA)
    refused = client.get(f"/admin/runs/{run_id}/export?format=csv")
    assert refused.status_code == 400 and "not approved yet" in text_of(refused)
    page = text_of(client.get(f"/admin/runs/{run_id}/"))
    assert "DRAFT export (CSV)" in page and "Payroll export (CSV)" not in page
    draft = client.get(f"/admin/runs/{run_id}/export?format=csv&draft=1")
    assert draft.status_code == 200
    assert "DRAFT" in draft.headers["Content-Disposition"]
    assert draft.get_data(as_text=True).splitlines()[-1].startswith("DRAFT")
    assert client.post("/admin/paycode/new/", data={"rule_key": "commission.tiered",
                                                    "code": "P100"}).status_code == 403

    login(client, HR)
    form = client.get("/admin/paycode/new/").get_data(as_text=True)
    assert 'value="commission.tiered"' in form and 'value="rating.quarterly"' not in form
    saved = client.post("/admin/paycode/new/", data={"rule_key": "commission.tiered",
                                                     "code": "P100", "description": "x"})
    assert saved.status_code == 302
    bad = client.post("/admin/paycode/new/", data={"rule_key": "rating.quarterly",
                                                   "code": "P200"})
    assert "Choose a rule that pays" in text_of(bad)
    assert client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM).status_code == 302
    login(client, AU)  # an auditor reads the export too
    response = client.get(f"/admin/runs/{run_id}/export?format=csv&totals=1")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "DRAFT" not in response.headers["Content-Disposition"]
    lines_json = client.get(f"/admin/runs/{run_id}/export?format=json")
    assert lines_json.mimetype == "application/json" and "lines" in lines_json.get_json()
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == lifecycle.PAYROLL_COLUMNS
    assert {r[9] for r in rows[1:] if r[4] == "commission.tiered"} == {"P100"}
    lines = [r for r in rows[1:] if r[3] != "TOTAL"]
    totals = {r[8]: Decimal(r[6]) for r in rows[1:] if r[3] == "TOTAL"}
    with org.session() as s:
        outcomes = s.execute(select(Outcome.amount, Outcome.status).where(
            Outcome.run_id == run_id, Outcome.amount.is_not(None))).all()
    assert len(lines) == len(outcomes)
    for status in ("payable", "held", "forfeited"):
        assert totals[status] == sum((a for a, st in outcomes if st == status), Decimal(0))
    book = client.get(f"/admin/runs/{run_id}/export?format=xlsx")
    assert book.status_code == 200 and book.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(book.data)).active
    assert [c.value for c in sheet[1]] == lifecycle.XLSX_COLUMNS
    zh = openpyxl.load_workbook(io.BytesIO(client.get(
        f"/admin/runs/{run_id}/export?format=xlsx&lang=zh").data))
    assert zh.sheetnames == ["应付", "暂扣与没收", "摘要"]
    assert [c.value for c in zh.active[1]] == lifecycle.XLSX_COLUMNS
    assert zh.active["C2"].value == "员工编号"
    login(client, SM)
    assert client.get(f"/admin/runs/{run_id}/export?format=csv").status_code == 403


def test_an_adjustment_shows_in_the_statement_totals_and_export(
        app: Flask, client: FlaskClient, org: Org, run_id: int) -> None:
    with org.session() as s:
        before = statements.statement(s, s.get(Run, run_id), "N2").totals["payable"]
    login(client, CA)
    page = client.get(f"/admin/runs/{run_id}/").get_data(as_text=True)
    assert '<option value="N2 Ned North">' in page  # the search box offers names and codes
    typed = {"employee": "N2", "amount": "1,00", "reason": "missed deal in March"}
    bad = client.post(f"/admin/runs/{run_id}/adjust", data=typed)
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert re.search(r'name="amount" value="1,00" class="form-control is-invalid"', html)
    assert "is not an amount in CNY" in text_of(bad)
    assert 'value="missed deal in March"' in html and 'value="N2"' in html
    no_reason = client.post(f"/admin/runs/{run_id}/adjust", data={**typed, "amount": "5",
                                                                  "reason": " "})
    assert no_reason.status_code == 400 and "a reason is required" in text_of(no_reason)
    nobody = client.post(f"/admin/runs/{run_id}/adjust", data={**typed, "employee": "ZZ9",
                                                               "amount": "150.50"})
    assert nobody.status_code == 400 and "no employee has the code or name" in text_of(nobody)
    assert re.search(r'name="employee" value="ZZ9" class="form-control is-invalid"',
                     nobody.get_data(as_text=True))
    assert count(org, Adjustment) == 0

    done = client.post(f"/admin/runs/{run_id}/adjust", data={
        **typed, "employee": "ned north", "amount": "CN¥150.50"})  # a name, people's units
    assert done.status_code == 302 and done.location.endswith(
        f"/admin/runs/{run_id}/statement/N2")
    page = client.get(done.location)
    text = text_of(page)
    assert "Manual adjustment" in text and "missed deal in March" in text
    assert f"Total payable {money(app, before + Decimal('150.50'))}" in text
    draft = client.get(f"/admin/runs/{run_id}/export?format=csv&draft=1").get_data(as_text=True)
    assert any(r["rule_key"] == "adjustment" and r["amount"] == "150.50"
               and r["employee_code"] == "N2" for r in csv.DictReader(io.StringIO(draft)))
    with org.session() as s:
        seen = statements.overview(s, s.get(Run, run_id))
        assert seen["by_kind"]["adjustment"] == Decimal("150.50")
        # one line of its kind (the table by kind said 0), not one of the rules' outcomes
        assert seen["counts"]["adjustment"] == 1
        assert seen["outcomes"] == count(org, Outcome, Outcome.run_id == run_id)
        # figures kept before adjustments were counted by kind: counted when read
        run = s.get(Run, run_id)
        summary = dict(run.summary)
        summary["totals"] = {**summary["totals"], "counts": {
            k: n for k, n in summary["totals"]["counts"].items() if k != "adjustment"}}
        run.summary = summary
        s.flush()
        assert statements.overview(s, run)["counts"]["adjustment"] == 1
        s.rollback()
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "adjust")).one()
        assert entry.actor == ANALYST

    with org.session() as s:
        lifecycle.approve(s, run_id, support.ROLE_EMAILS[HR])
        lifecycle.lock(s, run_id, support.ROLE_EMAILS[HR],
                       open_flags_reason="reviewed later")
        s.commit()
    locked = client.post(f"/admin/runs/{run_id}/adjust", data={**typed, "amount": "5"})
    assert locked.status_code == 400 and "adjustments are refused" in text_of(locked)
    assert count(org, Adjustment) == 1


def test_an_adjustment_says_every_refused_field_at_once(
        client: FlaskClient, org: Org, run_id: int) -> None:
    """An unknown employee, an amount that is not one and no reason: each is refused beside
    its own field at once (it said the employee, then the amount, then the reason), what was
    typed kept and nothing stored, in both languages."""
    login(client, CA)
    typed = {"employee": "ZZ9", "amount": "lots", "reason": "  "}
    for lang, said in (("en", ("no employee has the code or name", "is not an amount in CNY",
                               "a reason is required")),
                       ("zh", ("没有工号或姓名为", "不是 CNY 金额", "必须填写理由"))):
        page = client.post(f"/admin/runs/{run_id}/adjust?lang={lang}", data=typed)
        html = page.get_data(as_text=True)
        assert page.status_code == 400, lang
        for field in typed:
            assert re.search(rf'name="{field}" value="{typed[field]}" '
                             r'class="form-control is-invalid"', html), (lang, field)
        assert html.count('invalid-feedback d-block') == 3, lang
        assert all(words in text_of(page) for words in said), lang
    assert count(org, Adjustment) == 0 and count(org, AuditLog, AuditLog.action == "adjust") == 0


# --- statements ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_statement_pages_for_each_role(
        app: Flask, client: FlaskClient, org: Org, run_id: int, lang: str) -> None:
    with org.session() as s:
        st = statements.statement(s, s.get(Run, run_id), "N1", lang=lang)
    tiered = next(line for line in st.lines if line.rule_key == "commission.tiered")
    # the explanation is put in words in the reader's language
    assert ("档" in tiered.words[0]) if lang == "zh" else (": tier " in tiered.words[0])
    for role in ROLES:
        login(client, role)
        page = client.get(f"/admin/runs/{run_id}/statement/N1?lang={lang}")
        assert page.status_code == 200, role
        html = page.get_data(as_text=True)
        text = text_of(page)
        assert "<details>" in html and tiered.words[0] in text
        assert money(app, tiered.amount, lang) in text
        assert money(app, st.totals["payable"], lang) in text
        assert "laurel/runs.css" in html
        if lang == "zh":
            assert "应付" in text and "个人明细" in text and "提成" in text
        else:
            assert "payable" in text and "Statement" in text
        other = client.get(f"/admin/runs/{run_id}/statement/S1?lang={lang}")
        assert other.status_code == (404 if role == SM else 200), role
    assert client.get(f"/admin/runs/{run_id}/statement/NOPE").status_code == 404


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_statement_names_the_facts_read_by_their_labels(
        client: FlaskClient, org: Org, run_id: int, lang: str) -> None:
    """The facts a line read are named by the catalog's label in the page's language (as on
    a flag's case), never by their key: 'Total revenue (company maximum)', not
    'revenue_total (company maximum)'."""
    with org.session() as s:
        labels = dict(s.execute(select(Metric.key, Metric.label_zh if lang == "zh"
                                       else Metric.label_en)).all())
        st = statements.statement(s, s.get(Run, run_id), "N1", lang=lang)
    keys = [k for line in st.lines for k in (line.explanation.get("facts") or {})]
    login(client, CA)
    html = client.get(f"/admin/runs/{run_id}/statement/N1?lang={lang}").get_data(as_text=True)
    tables = re.findall(r'<table class="table table-sm table-bordered laurel-kv mb-1">(.*?)'
                        r"</table>", html, re.S)
    names = re.findall(r"<tr><th>([^<]*)</th>", "".join(tables))
    assert keys and len(names) == len(keys)
    for key, name in zip(keys, names, strict=True):
        metric = key.split(" ")[0]  # a ranked fact: "revenue_total (company maximum)"
        assert labels[metric] and name.startswith(str(escape(labels[metric]))), (key, name)
        assert metric not in name, (key, name)


def test_a_sales_manager_sees_their_team_only(client: FlaskClient, org: Org,
                                              run_id: int) -> None:
    login(client, SM)
    page = client.get(f"/admin/runs/{run_id}/")
    assert page.status_code == 200
    text = text_of(page)
    assert "Nora North" in text and "Sam South" not in text
    assert "Overview" not in text and "South" not in text
    for url in (f"/admin/runs/{run_id}/compare?with={run_id}",
                f"/admin/runs/{run_id}/export?format=csv&draft=1"):
        assert client.get(url).status_code == 403


# --- the difference between two runs --------------------------------------------------------


def known_change(org: Org, run_id: int) -> tuple[int, list[dict[str, Any]]]:
    """A newer run of the month after N2's quota is corrected, and its differences with
    ``run_id``'s."""
    with org.session() as s:
        import_results(s, "fix.csv", data=b"period,employee_code,quota\n2026-01,N2,10000\n")
        s.commit()
    newer = start(org, actor=support.ROLE_EMAILS[HR])
    with org.session() as s:
        rows = statements.diff_runs(s, s.get(Run, run_id), s.get(Run, newer))
    return newer, rows


def test_compare_two_runs_on_a_known_change(app: Flask, client: FlaskClient, org: Org,
                                            run_id: int) -> None:
    newer, rows = known_change(org, run_id)
    tiered = next(r for r in rows if r["rule_key"] == "commission.tiered")
    login(client, CA)
    assert f'<option value="{run_id}">' in client.get(f"/admin/runs/{newer}/").get_data(
        as_text=True)  # a GET form: the choice is in a select
    page = client.get(f"/admin/runs/{newer}/compare?with={run_id}")
    assert page.status_code == 200
    text = text_of(page)
    assert f"run {run_id} compared with run {newer}" in text
    assert "N2" in text and "N1" not in text and "S1" not in text
    assert money(app, tiered["before"]["amount"]) in text
    assert money(app, tiered["after"]["amount"]) in text
    assert money(app, tiered["delta"]) in text and "changed" in text
    # the same from the other side: the earlier run is always "before"
    reverse = text_of(client.get(f"/admin/runs/{run_id}/compare?with={newer}"))
    assert reverse.replace(f"Back to run {run_id}", "") == text.replace(
        f"Back to run {newer}", "")

    with org.session() as s:
        other = runs.start_run(s, "2026", actor=ANALYST).run.id
        s.commit()
    across = client.get(f"/admin/runs/{newer}/compare?with={other}")  # another period
    assert across.status_code == 200
    assert f"Run {newer} (2026-01) compared with run {other} (2026) " in text_of(across)
    wrong = client.get(f"/admin/runs/{newer}/compare?with={newer}")
    assert wrong.status_code == 400 and "Choose another run to compare with" in text_of(wrong)
    csv_file = client.get(f"/admin/runs/{newer}/compare/export?with={run_id}&format=csv")
    lines = csv_file.get_data(as_text=True).splitlines()
    assert lines[0] == ",".join(statements.DIFF_COLUMNS) and len(lines) == len(rows) + 1
    book = openpyxl.load_workbook(io.BytesIO(client.get(
        f"/admin/runs/{newer}/compare/export?with={run_id}&format=xlsx").data))
    sheet = book.active
    assert [c.value for c in sheet[1]] == statements.DIFF_COLUMNS
    assert sheet.row_dimensions[1].hidden and sheet.freeze_panes == "A3"
    assert [c.value for c in sheet[2]][:2] == ["Employee code", "Employee name"]
    assert sum(Decimal(str(r[11])) for r in sheet.iter_rows(min_row=3, values_only=True)) \
        == sum((r["delta"] for r in rows), Decimal(0))
    zh = client.get(f"/admin/runs/{newer}/compare?with={run_id}&lang=zh")
    assert zh.status_code == 200 and "已变更" in text_of(zh)


def test_the_comparison_names_rules_in_the_readers_language(client: FlaskClient, org: Org,
                                                           run_id: int) -> None:
    """The rows of two runs' comparison read a rule's name in the page's language, the key
    beside it in small (they showed the key alone); the download keeps the key."""
    newer, rows = known_change(org, run_id)
    keys = {r["rule_key"] for r in rows}
    with org.session() as s:
        stored = {lang: support.rule_names_stored(s, keys, lang) for lang in ("en", "zh")}
    assert keys and all(len(names) == len(keys) for names in stored.values())
    login(client, CA)
    for lang, names in stored.items():
        html = client.get(f"/admin/runs/{newer}/compare?with={run_id}&lang={lang}").get_data(
            as_text=True)
        cells = re.findall(r"<td>(<span class=\"laurel-rule\">.*?</span>)</td>", html)
        assert len(cells) == len(rows), (lang, cells)
        for row, cell in zip(rows, cells, strict=True):
            shown = support.read_as_shown(cell)
            assert names[row["rule_key"]] in shown and row["rule_key"] not in shown, lang
            assert f"<code>{row['rule_key']}</code>" in cell, lang
        csv_file = client.get(f"/admin/runs/{newer}/compare/export?with={run_id}&format=csv"
                              f"&lang={lang}").get_data(as_text=True)
        assert {r["rule_key"] for r in csv.DictReader(io.StringIO(csv_file))} == keys, lang


# --- every page, every role that may see it, both languages ---------------------------------


def test_every_page_renders_for_each_role_in_both_languages(
        client: FlaskClient, org: Org, run_id: int) -> None:
    newer = start(org, actor=support.ROLE_EMAILS[HR])
    with org.session() as s:
        job_id = jobs.start(s, "2026-01", ANALYST).id
        s.commit()
    pages = {
        "list": "/admin/runs/",
        "run": f"/admin/runs/{newer}/",
        "old run": f"/admin/runs/{run_id}/",
        "statement": f"/admin/runs/{newer}/statement/N2",
        "compare": f"/admin/runs/{newer}/compare?with={run_id}",
        "job": f"/admin/runs/job/{job_id}",
    }
    team_pages = {"list", "run", "old run", "statement"}
    for role in ROLES:
        login(client, role)
        for lang in ("en", "zh"):
            for name, url in pages.items():
                sep = "&" if "?" in url else "?"
                response = client.get(f"{url}{sep}lang={lang}")
                expected = 200 if role != SM or name in team_pages else 403
                assert response.status_code == expected, (role, lang, name)
                if expected == 200 and lang == "zh":
                    assert "期末" in text_of(response), (role, name)  # the menu, in Chinese
    login(client, HR)
    help_page = text_of(client.get("/admin/help/?lang=en"))
    assert "Runs" in help_page
    with org.session() as s:
        assert s.scalar(select(func.count()).select_from(Period)
                        .where(Period.status == "locked")) == 0



ISO_MOMENT = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d")


def test_people_read_rule_versions_and_times_in_words_not_hashes(
        client: FlaskClient, org: Org, run_id: int) -> None:
    with org.session() as s:
        run = s.get(Run, run_id)
        digest, used = run.ruleset_hash, run.rules
    assert digest and used
    for lang, at in (("en", r"[A-Z][a-z]{2} \d{1,2}, \d{4}"), ("zh", r"\d{4}年\d{1,2}月\d{1,2}日")):
        for role in ROLES:
            support.login(client, role)
            client.get(f"/admin/?lang={lang}")
            home = client.get("/admin/").get_data(as_text=True)
            assert not ISO_MOMENT.search(home), (role, lang)
            page = client.get(f"/admin/runs/{run_id}/")
            if page.status_code != 200:
                continue
            html = page.get_data(as_text=True)
            assert digest[:8] not in html and not ISO_MOMENT.search(html), (role, lang)
            assert re.search(at, text_of(page)), (role, lang)
            versions = re.search(r'<details class="mb-3" id="rule-versions">(.*?)</details>',
                                 html, re.S).group(1)
            assert len(re.findall(r"<li ", versions)) == len(used)
            assert ("/admin/rules/" in versions) == (role != SM), role
    # the last page read is Chinese: each rule by its Chinese name, with its version
    items = re.findall(r"<li [^>]*>(.*?)</li>", versions, re.S)
    assert all(re.search(r"[\u4e00-\u9fff]", re.sub(r"<[^>]+>", "", i).split("版本")[0])
               and re.search(r"版本 \d+", i) for i in items), items


def test_the_engines_refusals_read_in_chinese_next_to_their_field(
        client: FlaskClient, org: Org, run_id: int) -> None:
    login(client, CA)
    client.get("/admin/?lang=zh")
    typed = {"employee": "N2", "amount": "1,00", "reason": "missed deal in March"}
    bad = client.post(f"/admin/runs/{run_id}/adjust", data=typed)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "&#39;1,00&#39; 不是 CNY 金额（例如写作 1500" in text_of(bad)
    assert re.search(r'name="amount" value="1,00" class="form-control is-invalid"', html)
    nobody = client.post(f"/admin/runs/{run_id}/adjust", data={**typed, "employee": "ZZ9",
                                                               "amount": "5"})
    assert "没有工号或姓名为 &#39;ZZ9&#39; 的员工" in text_of(nobody)
    assert "no employee has" not in text_of(nobody)
    assert re.search(r'name="employee" value="ZZ9" class="form-control is-invalid"',
                     nobody.get_data(as_text=True))
    # a refusal without a field: the analyst started the run, another person approves it
    mine = client.post(f"/admin/runs/{run_id}/approve", data=CONFIRM)
    assert mine.status_code in (400, 403)
    assert f"计算批次 {run_id} 由 {ANALYST} 发起：必须由另一人批准" in text_of(mine)


def test_the_checklist_says_which_rules_changed_since_the_run(
        client: FlaskClient, org: Org, run_id: int) -> None:
    from engine.rulebook import latest, save_rule

    with org.session() as s:
        doc = json.loads(json.dumps(latest(s, "commission.tiered").definition))
        doc["action"]["tiers"][-1]["rate"] = "0.07"
        new, _ = save_rule(s, doc, "test", publish=True)
        s.commit()
        version = new.version
    login(client, CA)
    text = text_of(client.get(f"/admin/runs/{run_id}/"))
    assert "Rules changed since this run was made: 1" in text
    assert f"version {version} in force now" in text
    zh = text_of(client.get(f"/admin/runs/{run_id}/?lang=zh"))
    assert "本计算批次之后有变动的规则: 1" in zh and f"现行第 {version} 版" in zh


def test_the_checklist_says_which_employees_and_metrics_changed_since_the_run(
        client: FlaskClient, org: Org, run_id: int) -> None:
    """HR moves an employee to another team and changes a metric's roll-up in the back
    office after the run: the checklist names both, how, when and by whom, with their
    pages, in English and in Chinese (no English word but the data's)."""
    from engine.models import Metric

    try:
        from tests.test_admin_rules_zh import CODE, WORD, Text, data_words
    except ImportError:
        from test_admin_rules_zh import CODE, WORD, Text, data_words  # type: ignore[no-redef]

    ned = org.employees["N2"]
    with org.session() as s:
        emp = s.get(Employee, ned)
        person = {"code": emp.code, "name": emp.name, "email": emp.email or "",
                  "team": str(org.south), "level": str(emp.level_id),
                  "manager": "", "hire_date": "", "leave_date": ""}
        metric = s.scalar(select(Metric).where(Metric.key == "satisfaction"))
        metric_id = metric.id
        figure = {"key": metric.key, "label_en": metric.label_en, "label_zh": metric.label_zh,
                  "type": metric.type, "rollup": "max", "formula": "",
                  "min_value": "", "max_value": "", "description": metric.description}
    login(client, HR)
    assert client.post(f"/admin/employee/edit/?id={ned}", data=person).status_code == 302
    assert client.post(f"/admin/metric/edit/?id={metric_id}", data=figure).status_code == 302
    with org.session() as s:
        entries = s.scalars(select(AuditLog.id).where(AuditLog.entity.in_(
            ("employee", "metric"))).order_by(AuditLog.id.desc()).limit(2)).all()

    def item(page) -> str:
        html = page.get_data(as_text=True)
        return re.search(r'<li class="mb-2" id="check-organisation">.*?\n    </li>', html,
                         re.S)[0]

    login(client, CA)
    for url in (f"/admin/runs/{run_id}/", f"/admin/runs/{run_id}/approve"):
        en = client.get(url)
        html = item(en)
        assert "Employees, teams, levels or metrics changed since this run was made: 2" \
            in text_of(en), url
        assert f'href="/admin/employee/details/?id={ned}"' in html
        assert f'href="/admin/metric/details/?id={metric_id}"' in html
        for entry in entries:
            assert f'href="/admin/auditlog/details/?id={entry}"' in html
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&middot;", "·")
        assert "Employee N2 Ned North · changed" in text
        assert "Metric satisfaction · changed" in text
        assert text.count(support.ROLE_EMAILS[HR]) == 2
    zh = item(client.get(f"/admin/runs/{run_id}/?lang=zh"))
    parser = Text()
    parser.feed(zh)
    words = " ".join(parser.out)
    assert "本计算批次之后有变动的员工、团队、职级或指标: 2" in words
    assert "员工 N2 Ned North" in words and "指标 satisfaction" in words and "已变更" in words
    english = set(WORD.findall(CODE.sub(" ", words))) - data_words(org)
    assert english == set(), english


def test_the_runs_people_count_an_employee_with_only_an_adjustment(
        client: FlaskClient, org: Org, run_id: int) -> None:
    """The count of a run's people comes from the figures stored with the run, plus those
    with only an adjustment; it is the count of the list itself."""
    from engine.imports import import_employees

    with org.session() as s:
        import_employees(s, "late.csv", data=b"code,name,team,level\nL1,Lee Late,North,S1\n")
        lifecycle.add_adjustment(s, run_id, "L1", "50", "joined late", ANALYST)
        with_outcomes = s.scalar(select(func.count(Outcome.employee_id.distinct())).where(
            Outcome.run_id == run_id))
        s.commit()
    login(client, CA)
    text = text_of(client.get(f"/admin/runs/{run_id}/"))
    assert f"Employees ({with_outcomes + 1:,})" in text and "Lee Late" in text
    searched = text_of(client.get(f"/admin/runs/{run_id}/?q=Lee"))
    assert "Employees (1)" in searched and "Lee Late" in searched
    # any part of the code or the name, in any case
    for part in ("EE LAT", "l1"):
        searched = text_of(client.get(f"/admin/runs/{run_id}/?q={part}"))
        assert "Employees (1)" in searched and "Lee Late" in searched, part


def test_page_window_reads_every_page_as_an_offset_would() -> None:
    """A page past the middle is read from the end: the same rows, in the same order."""
    from admin.base import page_window

    for total in range(0, 12):
        rows = list(range(total))
        for size in (1, 3, 5):
            for page in range(1, total // size + 3):
                offset, limit, from_end = page_window(total, page, size)
                got = (rows[::-1] if from_end else rows)[offset:offset + limit]
                assert (got[::-1] if from_end else got) == \
                    rows[(page - 1) * size:page * size], (total, size, page)
    assert page_window(1_000_000, 10_000, 100)[2]  # the last page from the end


def test_the_runs_people_page_by_page_the_last_pages_read_from_the_end(
        client: FlaskClient, org: Org, run_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page of the run's people holds the employees it held by offset, whichever end
    it is read from; the pages together hold each of them once, by code."""
    from admin import runs_views

    with org.session() as s:
        codes = sorted(s.scalars(select(Employee.code).join(
            Outcome, Outcome.employee_id == Employee.id).where(
            Outcome.run_id == run_id).distinct()))
    size = max(1, len(codes) // 4)
    monkeypatch.setattr(runs_views, "EMPLOYEE_PAGE", size)
    login(client, CA)
    pages = -(-len(codes) // size)
    assert pages >= 3
    for page in range(1, pages + 2):
        text = client.get(f"/admin/runs/{run_id}/?page={page}").get_data(as_text=True)
        shown = re.findall(rf"/admin/runs/{run_id}/statement/([^\"/?]+)", text)
        assert shown == codes[(page - 1) * size:page * size], page
        if page <= pages:
            assert f"Page {page} of {pages}" in text
    # the pager's links carry the key of the page next to theirs: the same pages
    walked = support.walk_pages(client, f"/admin/runs/{run_id}/", pages,
                        rf"/admin/runs/{run_id}/statement/([^\"/?]+)")
    assert walked == [codes[(p - 1) * size:p * size] for p in range(1, pages + 1)] * 2



def test_the_adjustments_box_lists_the_runs_employees_only_when_they_are_few(
        client: FlaskClient, org: Org, run_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The box offers every employee of the run when the run has no more than CHOICES of
    them, whatever the list below shows (a search of one employee among many lists none)."""
    from admin import runs_views

    with org.session() as s:
        codes = sorted(s.scalars(select(Employee.code).join(
            Outcome, Outcome.employee_id == Employee.id).where(
            Outcome.run_id == run_id).distinct()))
    login(client, CA)

    def offered(query: str) -> list[str]:
        text = client.get(f"/admin/runs/{run_id}/?q={query}").get_data(as_text=True)
        box = re.search(r'<datalist id="run-employees">(.*?)</datalist>', text, re.S)
        return re.findall(r'<option value="(\S+) ', box.group(1))

    assert offered("") == offered(codes[0]) == codes
    monkeypatch.setattr(runs_views, "CHOICES", len(codes) - 1)
    assert offered("") == offered(codes[0]) == []


def test_a_flags_severity_reads_in_the_statements_language(client: FlaskClient, org: Org,
                                                           run_id: int) -> None:
    """A flag's line said "high" on a Chinese statement, where the queue says 高."""
    with org.session() as s:  # N2 (S1, 5% authority) gave 9%: a flag of high severity
        import_results(s, "late.csv", data=b"period,employee_code,max_discount_pct\n"
                                            b"2026-01,N2,0.09\n")
        s.commit()
    newer = start(org)
    login(client, ANALYST)
    # the line's value: the cell after its kind's, once the line's explanation is closed
    line = re.compile(r"<code>compliance\.discount_authority</code>.*?</details>\s*</td>\s*"
                      r"<td>[^<]*</td>\s*<td>([^<]*)</td>", re.S)
    en = line.search(client.get(f"/admin/runs/{newer}/statement/N2?lang=en")
                     .get_data(as_text=True))
    zh = line.search(client.get(f"/admin/runs/{newer}/statement/N2?lang=zh")
                     .get_data(as_text=True))
    assert en and zh and (en[1], zh[1]) == ("high", "高")


def test_a_teams_share_of_a_member_is_explained_on_the_run_page(client: FlaskClient, org: Org,
                                                               run_id: int) -> None:
    """A team counted 9.48 employees with no word of why (members weighted by their days
    in the team): a share says so under the table, whole counts say nothing."""
    login(client, ANALYST)
    html = client.get(f"/admin/runs/{run_id}/").get_data(as_text=True)
    assert 'id="by-team"' in html and 'id="members-weighted"' not in html
    with org.session() as s:
        run = s.get(Run, run_id)
        summary = dict(run.summary)
        teams = dict(summary["teams"])
        teams["shown"] = [[t, amount, "1.50", a] for t, amount, _m, a in teams["shown"]]
        summary["teams"] = teams
        run.summary = summary
        s.commit()
    html = client.get(f"/admin/runs/{run_id}/").get_data(as_text=True)
    assert 'id="members-weighted"' in html and ">1.50<" in html
