"""The salesperson's portal: their own pay in their language, and nobody else's.

Ned (N2) and Sue (S2) are sales reps of the small organisation; January is run and
approved, so their statements show.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine import db, inquiries, talks
from engine.lifecycle import approve
from engine.models import Outcome, Run, User
from engine.runs import start_run
from engine.users import accept_invite, create_user, invite

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
    from tests.test_admin_rules_zh import CODE, WORD, data_words, english_messages, read
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]
    from test_admin_rules_zh import (  # type: ignore[no-redef]
        CODE,
        WORD,
        data_words,
        english_messages,
        read,
    )

pytest_plugins = [support.__name__]
NED, SUE = "ned@example.com", "sue@example.com"


def reps(org: support.Org) -> int:
    """Ned and Sue as sales reps; January run and approved. Return the run's id."""
    with db.session_scope(org.url, actor="hr@example.com") as s:
        for email in (NED, SUE):
            user = create_user(s, email, None, "sales_rep")
            user.password_hash = support.FAST_HASH
        s.add(User(email="hr2@example.com", name="hr2", role="hr_admin",
                   password_hash=support.FAST_HASH))
        run = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run
        approve(s, run.id, "hr2@example.com")
        return run.id


@pytest.fixture()
def run_id(org: support.Org) -> int:
    return reps(org)


def test_a_rep_is_the_employee_with_their_email_and_an_invitation_sets_the_password(
        session) -> None:
    from engine.imports import import_employees

    import_employees(session, "e.csv", data=support.EMPLOYEES_CSV)
    user, token = invite(session, "NED@example.com")
    assert user.role == "sales_rep" and user.employee.code == "N2" and not user.password_hash
    assert accept_invite(session, token, "a long secret").password_hash
    with pytest.raises(Exception, match="unknown, used or expired"):
        accept_invite(session, token, "another secret")
    with pytest.raises(Exception, match="no employee has this email"):
        create_user(session, "nobody@example.com", "a long secret", "sales_rep")


def test_the_invitation_link_sets_the_password_and_logs_the_rep_in(
        client: FlaskClient, org: support.Org) -> None:
    with db.session_scope(org.url) as s:
        _user, token = invite(s, NED)
    page = client.get(f"/invite/{token}")
    assert page.status_code == 200 and NED in page.get_data(as_text=True)
    short = client.post(f"/invite/{token}", data={"password": "short", "again": "short"})
    assert short.status_code == 400
    done = client.post(f"/invite/{token}", data={"password": "a long secret",
                                                   "again": "a long secret"})
    assert done.status_code == 302
    assert client.get("/admin/").headers["Location"].endswith("/admin/me/")
    assert client.get(f"/invite/{token}").status_code == 404  # used once


def test_the_portal_shows_the_reps_own_pay_in_english(client: FlaskClient, org: support.Org,
                                                      run_id: int) -> None:
    support.login(client, NED)
    home = support.text_of(client.get("/admin/me/"))
    assert "Hello, Ned North" in home and "Statement 2026-01" in home
    page = client.get(f"/admin/me/statement/{run_id}")
    text = support.text_of(page)
    # N2: 20,000 of 50,000 (40%): 3% of 20,000
    assert "3% of Total revenue CN¥20,000 = CN¥600" in text
    assert "CN¥20,000 more Total revenue this month reaches the 4% tier" in text
    assert "Tiered commission" in text and "commission.tiered" not in text
    printed = client.get(f"/admin/me/statement/{run_id}/print")
    assert printed.status_code == 200
    lines = re.compile(r'<div class="card mb-2 laurel-line" data-line="([^"]+)">.*?'
                       r'<ul class="mb-1 pl-3 laurel-line-words">(.*?)</ul>', re.S)
    assert lines.findall(page.get_data(as_text=True)) == \
        lines.findall(printed.get_data(as_text=True)) != []
    assert "<script" not in printed.get_data(as_text=True)


def test_the_portal_in_chinese_has_no_untranslated_string(client: FlaskClient,
                                                          org: support.Org,
                                                          run_id: int) -> None:
    with db.session_scope(org.url) as s:
        s.scalar(select(User).where(User.email == NED)).locale = "zh"
        outcome = s.scalar(select(Outcome.id).where(Outcome.run_id == run_id,
                                                    Outcome.employee_id == org.employees["N2"],
                                                    Outcome.kind == "commission").limit(1))
        q = inquiries.ask(s, NED, run_id, "why 3%?", outcome_id=outcome)
        inquiries.resolve(s, q.id, support.ROLE_EMAILS["comp_analyst"], "the tier is right")
        talk = talks.record(s, support.ROLE_EMAILS["sales_manager"], "N2",
                            __import__("datetime").date(2026, 2, 3), "calls", "closing",
                            [{"text": "two demos", "due": "2026-03-01"}])
        talk_id, inquiry_id = talk.id, q.id
    support.login(client, NED)
    pages = {p: client.get(p) for p in (
        "/admin/me/", f"/admin/me/statement/{run_id}", f"/admin/me/statement/{run_id}/print",
        "/admin/me/estimate", f"/admin/me/inquiry/{inquiry_id}", f"/admin/me/talk/{talk_id}")}
    pages["estimate"] = client.post("/admin/me/estimate",
                                    data={"period": "2026-01", "revenue_new": "60,000"})
    allowed = data_words(org) | {"why", "the", "tier", "is", "right", "calls", "closing",
                                 "two", "demos", "PDF"}  # a file format, as CSV
    messages = english_messages()
    problems = []
    for path, page in pages.items():
        assert page.status_code == 200, (path, page.status_code)
        text = read(page)
        stray = sorted({w for w in WORD.findall(CODE.sub(" ", text)) if w not in allowed})
        problems += [(path, stray)] if stray else []
        problems += [(path, m) for m in messages if m in text]
    assert not problems, problems
    assert "总收入 ¥20,000 × 3% = ¥600" in support.text_of(pages[f"/admin/me/statement/{run_id}"])


def test_every_url_of_another_person_or_of_the_staff_is_refused(
        app: Flask, client: FlaskClient, org: support.Org, run_id: int) -> None:
    with db.session_scope(org.url) as s:
        theirs = inquiries.ask(s, SUE, run_id, "mine").id
        their_talk = talks.record(s, "hr@example.com", "S2",
                                  __import__("datetime").date(2026, 2, 3), "x", "y", []).id
        other = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run.id
    support.login(client, NED)
    assert client.get(f"/admin/me/inquiry/{theirs}").status_code == 404
    assert client.get(f"/admin/me/talk/{their_talk}").status_code == 404
    assert client.post(f"/admin/me/talk/{their_talk}/acknowledge").status_code == 404
    assert client.get(f"/admin/me/statement/{other}").status_code == 404  # not approved
    values = {"run_id": run_id, "code": "S2", "inquiry_id": theirs, "talk_id": their_talk,
              "cycle_id": 1, "case_id": 1, "pip_id": 1, "job_id": 1, "message_id": 1,
              "note_id": 1, "key": "commission.tiered", "version": 1, "chart": "payout",
              "id": 1, "filename": "x"}
    opened = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        # their own pages, the way in and out, the help page everyone reads, the API's
        # description and its documentation page (public), the site's icon
        if path.startswith(("/admin/me", "/static", "/admin/static", "/login", "/logout",
                            "/invite", "/api/v1/docs")) or path in (
                                "/", "/admin/", "/admin/help/", "/api/v1/openapi.json",
                                "/favicon.ico"):
            continue
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m[1], 1)), path)
        for method in sorted(rule.methods & {"GET", "POST"}):
            status = client.open(url, method=method).status_code
            # the API takes a token, never the login's cookie: 401
            if status not in (403, 404, 405) and not (url.startswith("/api/") and status == 401):
                opened.append((method, url, status))
    assert opened == []
    assert client.get("/admin/me/").status_code == 200  # still logged in, still theirs


def test_staff_do_not_use_the_portal(client: FlaskClient, org: support.Org) -> None:
    support.login(client, "hr_admin")
    assert client.get("/admin/me/").status_code == 403


def test_the_estimate_reads_typed_figures_and_refuses_what_is_not_a_number(
        client: FlaskClient, org: support.Org, run_id: int) -> None:
    support.login(client, NED)
    page = client.post("/admin/me/estimate", data={"period": "2026-01",
                                                   "revenue_new": "CN¥60,000"})
    text = support.text_of(page)
    assert page.status_code == 200 and "6% of Total revenue CN¥60,000 = CN¥3,600" in text
    bad = client.post("/admin/me/estimate", data={"period": "2026-01", "leads": "many"})
    assert bad.status_code == 400
    # the figures a changed period left in the address (runs.js) come back in the fields;
    # the form sent from there estimates what was typed in it, not what the address says
    kept = client.get("/admin/me/estimate?period=2026-01&revenue_new=50000")
    assert 'value="50000"' in kept.get_data(as_text=True)
    sent = client.post("/admin/me/estimate?period=2026-01&revenue_new=50000",
                       data={"period": "2026-01", "revenue_new": "CN¥60,000"})
    assert "6% of Total revenue CN¥60,000 = CN¥3,600" in support.text_of(sent)
    with db.session_scope(org.url) as s:  # nothing stored
        assert s.scalar(select(Run.id).order_by(Run.id.desc()).limit(1)) == run_id


def test_the_estimate_says_every_refused_figure_at_once(
        client: FlaskClient, org: support.Org, run_id: int) -> None:
    """Two figures that are not numbers: each is refused beside its own field, at once,
    and what was typed stays (it said the first one only), in both languages."""
    support.login(client, NED)
    for lang, said in (("en", "is not an amount in CNY"), ("zh", "不是 CNY 金额")):
        page = client.post(f"/admin/me/estimate?lang={lang}", data={
            "period": "2026-01", "revenue_new": "lots", "revenue_existing": "some"})
        html = page.get_data(as_text=True)
        assert page.status_code == 400 and html.count("is-invalid") == 2, lang
        assert support.text_of(page).count(said) == 2, lang
        assert 'value="lots"' in html and 'value="some"' in html, lang


def test_the_command_line_invites_a_rep_and_creates_one(org: support.Org) -> None:
    from click.testing import CliRunner

    from admin.cli import main

    runner = CliRunner()
    invited = runner.invoke(main, ["users", "invite", NED])
    assert invited.exit_code == 0, invited.output
    link = invited.stdout.splitlines()[0]
    assert link.startswith("http://127.0.0.1:5000/invite/") and "sales_rep" in invited.stderr
    made = runner.invoke(main, ["users", "create", SUE, "--role", "sales_rep"],
                         input="a long secret\n")
    assert made.exit_code == 0, made.output
    nobody = runner.invoke(main, ["users", "invite", "nobody@example.com"])
    assert nobody.exit_code == 1 and "no user and no employee" in nobody.stderr
    with org.session() as s:
        users = {u.email: u for u in s.scalars(select(User).where(User.role == "sales_rep"))}
        assert {u.employee.code for u in users.values()} == {"N2", "S2"}
        assert users[NED].invite_hash and not users[NED].password_hash


def test_hr_invites_an_employee_from_the_back_office(client: FlaskClient,
                                                     org: support.Org) -> None:
    from engine.models import AuditLog, Employee

    with org.session() as s:
        s.get(Employee, org.employees["S2"]).email = ""
        s.commit()
    support.login(client, "hr_admin")
    listing = client.get("/admin/employee/").get_data(as_text=True)
    # a button in each row with an email (three of the four employees)
    assert listing.count('action="/admin/employee/invite/"') == 3
    page = support.text_of(client.get(f"/admin/employee/details/?id={org.employees['N2']}"))
    assert "Invite to the portal" in page and NED in page
    invited = client.post("/admin/employee/invite/", data={"id": org.employees["N2"]})
    assert invited.status_code == 200
    links = re.findall(r'value="(http://[^"]+/invite/[^"]+)"', invited.get_data(as_text=True))
    assert len(links) == 1 and NED in support.text_of(invited)
    token = links[0].rsplit("/", 1)[1]
    with org.session() as s:
        user = s.scalar(select(User).where(User.email == NED))
        assert (user.role, user.employee_id, user.password_hash) == (
            "sales_rep", org.employees["N2"], "")
        assert s.scalar(select(AuditLog.actor).where(AuditLog.action == "invite")) == \
            support.ROLE_EMAILS["hr_admin"]
    # a second invitation before the first is used replaces it
    again = client.post("/admin/employee/invite/", data={"id": org.employees["N2"]})
    assert again.status_code == 200 and client.get(f"/invite/{token}").status_code == 404
    token = re.findall(r'value="http://[^"]+/invite/([^"]+)"', again.get_data(as_text=True))[0]
    assert client.post(f"/invite/{token}", data={"password": "a long secret",
                                                   "again": "a long secret"}).status_code == 302
    # once the password is set, the active user gets no second invitation
    support.login(client, "hr_admin")
    refused = client.post("/admin/employee/invite/", data={"id": org.employees["N2"]},
                          follow_redirects=True)
    assert "no second invitation" in support.text_of(refused)
    # ... nor is it offered one: the page says why beside a disabled button, the row has none
    page = client.get(f"/admin/employee/details/?id={org.employees['N2']}&lang=zh")
    assert f"{NED} 已可登录（已设置密码），无需邀请。" in support.text_of(page)
    assert re.search(r'<button type="submit" class="btn btn-primary" +disabled>',
                     page.get_data(as_text=True))
    listing = client.get("/admin/employee/?lang=en").get_data(as_text=True)
    assert listing.count('action="/admin/employee/invite/"') == 2
    # an employee without an email cannot be invited
    no_email = client.post("/admin/employee/invite/", data={"id": org.employees["S2"]},
                           follow_redirects=True)
    assert "employee S2, field email: no email" in support.text_of(no_email)
    with org.session() as s:
        assert s.scalar(select(User).where(User.employee_id == org.employees["S2"])) is None
    # only HR invites
    for role in ("comp_analyst", "auditor"):
        support.login(client, role)
        assert client.post("/admin/employee/invite/",
                           data={"id": org.employees["S1"]}).status_code == 403, role
    support.login(client, "auditor")
    assert "Invite to the portal" not in support.text_of(
        client.get(f"/admin/employee/details/?id={org.employees['S1']}"))
