"""The staff's pages of the people being paid: the inquiry queue, review cycles,
one-to-ones and the leadership analytics, who may use them, in English and Chinese."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from admin.base import field_error
from engine import db, inquiries, lifecycle, periods, reviews
from engine.imports import import_results
from engine.models import Adjustment, Inquiry, ReviewCycle, Talk

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
    from tests.test_admin_rules_zh import CODE, WORD, data_words, english_messages, read
    from tests.test_portal import NED, reps
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]
    from test_admin_rules_zh import (  # type: ignore[no-redef]
        CODE,
        WORD,
        data_words,
        english_messages,
        read,
    )
    from test_portal import NED, reps  # type: ignore[no-redef]

pytest_plugins = [support.__name__]
ANALYST = support.ROLE_EMAILS["comp_analyst"]


def test_an_analyst_resolves_an_inquiry_from_the_queue_with_an_adjustment(
        client: FlaskClient, org: support.Org) -> None:
    run_id = reps(org)
    with db.session_scope(org.url) as s:
        q = inquiries.ask(s, NED, run_id, "is my new-logo commission missing?").id
    support.login(client, "comp_analyst")
    queue = support.text_of(client.get("/admin/inquiries/"))
    assert f"Inquiry {q}" in queue and "Ned North" in queue
    home = support.text_of(client.get("/admin/"))
    assert "Inquiries assigned to nobody" in home
    run_page = support.text_of(client.get(f"/admin/runs/{run_id}/"))
    assert "Open inquiries of salespeople about this period: 1" in run_page
    assert client.post(f"/admin/inquiries/{q}/assign",
                       data={"assignee": ANALYST}).status_code == 302
    empty = support.text_of(client.post(f"/admin/inquiries/{q}/reply", data={"text": ""}))
    assert "write a message or attach a file" in empty  # the analyst asks no question
    assert "Write your question" not in empty
    refused = client.post(f"/admin/inquiries/{q}/resolve", data={"answer": "", "amount": ""})
    assert refused.status_code == 400 and "field answer" not in refused.get_data(as_text=True)
    bad = client.post(f"/admin/inquiries/{q}/resolve", data={"answer": "ok", "amount": "lots"})
    assert bad.status_code == 400 and "is not an amount" in support.text_of(bad)
    done = client.post(f"/admin/inquiries/{q}/resolve",
                       data={"answer": "added the missing commission", "amount": "200"})
    assert done.status_code == 302
    with org.session() as s:
        assert s.scalar(select(Adjustment.amount).where(Adjustment.run_id == run_id)) == 200
    # others read (the auditor) or nothing (compliance, sales manager)
    for role, status in (("auditor", 200), ("compliance_officer", 403),
                         ("sales_manager", 403)):
        support.login(client, role)
        assert client.get(f"/admin/inquiries/{q}/").status_code == status, role
    support.login(client, "auditor")
    assert client.post(f"/admin/inquiries/{q}/reply", data={"text": "x"}).status_code == 403


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_locked_period_offers_no_adjustment_to_resolve_an_inquiry(
        app: Flask, client: FlaskClient, org: support.Org, lang: str) -> None:
    """Once the inquiry's period is locked, the resolve form's amount is disabled with the
    refusal the engine would give (inquiries.adjustment_refusal), in the page's language;
    the inquiry is resolved without one, and an amount sent all the same is refused."""
    run_id = reps(org)
    with db.session_scope(org.url) as s:
        q = inquiries.ask(s, NED, run_id, "is my new-logo commission missing?").id
    support.login(client, "comp_analyst")

    def amount_field() -> tuple[str, str]:
        html = client.get(f"/admin/inquiries/{q}/?lang={lang}").get_data(as_text=True)
        found = re.search(r'<input[^>]*id="amount"[^>]*>', html)
        assert found, html
        return html, found.group(0)

    html, field = amount_field()  # the period is open: an amount is offered
    assert 'name="amount"' in field and "disabled" not in field and 'id="no-amount"' not in html
    with db.session_scope(org.url) as s:
        lifecycle.lock(s, run_id, ANALYST)
    with org.session() as s:
        refusal = inquiries.adjustment_refusal(s, s.get(Inquiry, q))
    assert refusal is not None
    reason = str(escape(support.in_language(app, lang, lambda: field_error(refusal)[1])))
    html, field = amount_field()
    assert "disabled" in field and 'name="amount"' not in field
    assert f'<small class="form-text text-muted" id="no-amount">{reason}</small>' in html
    refused = client.post(f"/admin/inquiries/{q}/resolve?lang={lang}",
                          data={"answer": "right as it is", "amount": "200"})
    assert refused.status_code == 400 and reason in refused.get_data(as_text=True)
    done = client.post(f"/admin/inquiries/{q}/resolve",
                       data={"answer": "right as it is"})  # what the form sends
    assert done.status_code == 302
    with org.session() as s:
        assert s.get(Inquiry, q).status == "resolved"
        assert s.scalar(select(Adjustment.id).where(Adjustment.run_id == run_id)) is None


def test_hr_opens_and_closes_a_review_cycle_and_a_manager_assesses_the_team(
        client: FlaskClient, org: support.Org) -> None:
    reps(org)
    support.login(client, "hr_admin")
    for lang, said in (("en", "give a date (YYYY-MM-DD)"), ("zh", "请填写日期（YYYY-MM-DD）")):
        undated = client.post(f"/admin/reviews/open?lang={lang}", data={
            "period": "2026-Q1", "self_due": "", "manager_due": "2026-04-12"})
        text = support.text_of(undated)  # said beside its field, what was typed kept
        assert undated.status_code == 400 and said in text, lang
        assert 'value="2026-04-12"' in undated.get_data(as_text=True)
    # an empty form: every field's problem at once, each beside its field
    for lang, said in (("en", ("give a quarter (YYYY-Qn), such as 2026-Q2",
                               "give a date (YYYY-MM-DD)")),
                       ("zh", ("请填写季度（YYYY-Qn），例如 2026-Q2", "请填写日期（YYYY-MM-DD）"))):
        empty = client.post(f"/admin/reviews/open?lang={lang}",
                            data={"period": "", "self_due": "", "manager_due": ""})
        html = empty.get_data(as_text=True)
        assert empty.status_code == 400 and html.count("is-invalid") == 3, lang
        assert all(words in support.text_of(empty) for words in said), lang
        assert "''" not in support.text_of(empty)
    client.get("/admin/?lang=en")
    # a locked quarter: its close could not write the scores, so it is refused at once
    with org.session() as s:
        periods.get_or_create(s, "2025-Q4").status = "locked"
        s.commit()
    locked = client.post("/admin/reviews/open", data={
        "period": "2025-Q4", "self_due": "2026-01-05", "manager_due": "2026-01-12"})
    assert locked.status_code == 400
    assert "2025-Q4 is locked: the scores could not be written" in support.text_of(locked)
    opened = client.post("/admin/reviews/open", data={
        "period": "2026-Q1", "self_due": "2026-04-05", "manager_due": "2026-04-12"})
    assert opened.status_code == 302
    with org.session() as s:
        cycle = s.scalar(select(ReviewCycle.id))
    support.login(client, NED)
    assert "Your self-assessment of 2026-Q1" in support.text_of(client.get("/admin/me/"))
    assert client.post(f"/admin/me/review/{cycle}",
                       data={"score": "101", "comments": ""}).status_code == 400
    assert client.post(f"/admin/me/review/{cycle}",
                       data={"score": "88", "comments": "good"}).status_code == 302
    support.login(client, "sales_manager")  # North: Nora and Ned
    page = support.text_of(client.get(f"/admin/reviews/{cycle}/"))
    assert "Ned North" in page and "Sue South" not in page
    assert "Assessments of your team to enter" in support.text_of(client.get("/admin/"))
    assert client.post(f"/admin/reviews/{cycle}/enter", data={
        "employee": "N2", "score": "80", "comments": "steady"}).status_code == 302
    assert client.post(f"/admin/reviews/{cycle}/enter", data={
        "employee": "S2", "score": "80"}).status_code == 400  # not their team
    assert client.post(f"/admin/reviews/{cycle}/close").status_code == 403
    support.login(client, "hr_admin")
    assert client.post(f"/admin/reviews/{cycle}/customers", data={
        "file": (__import__("io").BytesIO(b"employee_code,customer_score\nN2,70\n"),
                 "c.csv")}, content_type="multipart/form-data").status_code == 302
    assert client.post(f"/admin/reviews/{cycle}/close").status_code == 302
    with org.session() as s:
        assert reviews.get_cycle(s, cycle).status == "closed"


def test_a_one_to_one_says_every_refused_field_at_once(client: FlaskClient,
                                                        org: support.Org) -> None:
    """A day that is not a date, an action without its text and a due date that is not a
    date: each is refused beside its field, at once (it said one, then the next), what was
    typed kept, in both languages."""
    reps(org)
    support.login(client, "sales_manager")
    for lang, said in (("en", ("give a date (YYYY-MM-DD)", "say what was agreed",
                               "give the date it is due (YYYY-MM-DD)")),
                       ("zh", ("请填写日期（YYYY-MM-DD）", "请填写截止日期（YYYY-MM-DD）"))):
        page = client.post(f"/admin/talks/?lang={lang}", data={
            "employee": "N2", "held_on": "Tuesday", "strengths": "prepares well",
            "action_1": "two demos a week", "due_1": "soon", "due_2": "2026-03-01"})
        html = page.get_data(as_text=True)
        assert page.status_code == 400 and html.count("is-invalid") == 3, lang
        assert all(words in support.text_of(page) for words in said), lang
        assert 'value="Tuesday"' in html and 'value="soon"' in html, lang
    with org.session() as s:
        assert s.scalar(select(Talk.id)) is None


def test_a_manager_records_a_one_to_one_that_the_rep_acknowledges(
        client: FlaskClient, org: support.Org) -> None:
    reps(org)
    support.login(client, "sales_manager")
    form = {"employee": "N2", "held_on": "2026-02-03", "strengths": "prepares well",
            "gaps": "closing", "action_1": "two demos a week", "due_1": "2026-02-28",
            "coach": "N1"}
    assert client.post("/admin/talks/", data={**form, "due_1": "soon"}).status_code == 400
    assert client.post("/admin/talks/", data={**form, "employee": "S2"}).status_code == 400
    assert client.post("/admin/talks/", data=form).status_code == 302
    with org.session() as s:
        talk = s.scalar(select(Talk.id))
    support.login(client, NED)
    assert client.post(f"/admin/me/talk/{talk}/acknowledge").status_code == 302
    assert "You acknowledged it" in support.text_of(client.get(f"/admin/me/talk/{talk}"))
    support.login(client, "hr_admin")
    assert "Acknowledged by ned@example.com" in support.text_of(
        client.get(f"/admin/talks/{talk}/"))
    # HR records one too, with anyone, as the help page says
    assert client.post("/admin/talks/", data={**form, "employee": "S2"}).status_code == 302
    assert "may record one with any employee" in support.text_of(client.get("/admin/help/"))


def test_the_analytics_page_its_csv_files_and_a_managers_team(
        client: FlaskClient, org: support.Org) -> None:
    reps(org)
    support.login(client, "comp_analyst")
    page = client.get("/admin/analytics/?year=2026")
    text = support.text_of(page)
    assert page.status_code == 200
    assert "S1 Sam South &middot; South &middot; CN¥90,000.00" in text  # a top seller
    assert "2026-12" in text and "no run yet" in text  # a month with results, no run
    csv = client.get("/admin/analytics/payout.csv?year=2026").get_data(as_text=True)
    assert csv.splitlines()[0].startswith("period,headcount,revenue,quota")
    assert csv.splitlines()[1].startswith("2026-01,4,294456.5,300000")
    assert client.get("/admin/analytics/nothing.csv").status_code == 404
    with db.session_scope(org.url) as s:  # a funnel: N1 below the 30% line, N2 above it
        import_results(s, "f.csv", data=b"period,employee_code,leads,opportunities\n"
                                        b"2026-01,N1,40,4\n2026-01,N2,10,9\n")
    funnel = client.get("/admin/analytics/funnel.csv?year=2026").get_data(as_text=True)
    below = [line.split(",")[-2] for line in funnel.splitlines()[1:]]  # below_line
    assert below and set(below) <= {"true", "false"}, funnel  # not Python's True or False
    support.login(client, "sales_manager")
    # their own team (North: Nora and Ned), whatever the team asked for
    mine = client.get(f"/admin/analytics/payout.csv?year=2026&team={org.south}")
    assert mine.get_data(as_text=True).splitlines()[1].startswith("2026-01,2,143456.5")
    support.login(client, "compliance_officer")
    assert client.get("/admin/analytics/").status_code == 403


def test_the_staff_pages_in_chinese_have_no_untranslated_string(
        client: FlaskClient, org: support.Org) -> None:
    run_id = reps(org)
    with db.session_scope(org.url) as s:
        q = inquiries.ask(s, NED, run_id, "why").id
        cycle = reviews.open_cycle(s, "2026-Q1", dt.date(2026, 4, 5), dt.date(2026, 4, 12),
                                   "hr@example.com").id
    support.login(client, "hr_admin")
    client.get("/admin/?lang=zh")
    # (the home page's latest changes quote the audit log, whose summaries are English)
    pages = {p: client.get(p) for p in (
        "/admin/inquiries/", f"/admin/inquiries/{q}/", "/admin/reviews/",
        f"/admin/reviews/{cycle}/", "/admin/talks/", "/admin/analytics/", "/admin/help/")}
    assert "销售人员关于本期的未结询问: 1" in support.text_of(client.get(f"/admin/runs/{run_id}/"))
    allowed = data_words(org) | {"why", "PDF", "CSV", "XLSX", "DRAFT", "YYYY-Qn", "laurel",
                                 "users", "invite", "EMAIL", "employee_code", "customer_score",
                                 "comments"}
    problems = []
    for path, page in pages.items():
        assert page.status_code == 200, (path, page.status_code)
        text = read(page)
        stray = sorted({w for w in WORD.findall(CODE.sub(" ", text)) if w not in allowed}
                       - {"English"})
        problems += [(path, stray)] if stray else []
        problems += [(path, m) for m in english_messages() if m in text]
    assert not problems, problems
