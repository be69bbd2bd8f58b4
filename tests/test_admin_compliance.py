"""The compliance queue in the back office: every flag transition by role, and the money."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import func, select

from admin import i18n
from engine import compliance, db, lifecycle, runs, statements, wording
from engine.imports import import_employees, import_results
from engine.models import LIVE_RUN, AuditLog, FlagCase, FlagNote, Run, Team, User
from engine.models import STAFF_ROLES as ROLES

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
    from tests import test_compliance as flags_data
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]
    import test_compliance as flags_data  # type: ignore[no-redef]

login = support.login
text_of = support.text_of
pytest_plugins = [support.__name__]

HR, CA, CO, SM, AU = ROLES
OFFICER = support.ROLE_EMAILS[CO]
OFFICER2 = "compliance2@example.com"
SOUTH_MANAGER = "south@example.com"
NOT_DECIDERS = (HR, CA, SM, AU)


@dataclass
class World:
    """January's run of tests/test_compliance.py: A1 (North) has two holding flags."""

    url: str
    run_id: int
    discount: int  # compliance.discount_authority
    false_ad: int  # compliance.false_advertising

    def session(self):  # type: ignore[no-untyped-def]
        return db.make_sessionmaker(self.url)()

    def case(self, case_id: int) -> tuple[str, str | None, str | None, int]:
        with self.session() as s:
            c = s.get(FlagCase, case_id)
            notes = s.scalar(select(func.count()).select_from(FlagNote)
                             .where(FlagNote.case_id == case_id))
            return c.status, c.assignee, c.reason, notes

    def totals(self, code: str = "A1") -> dict:
        with self.session() as s:
            return statements.statement(s, s.get(Run, self.run_id), code).totals

    def audit_count(self) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(AuditLog)
                            .where(AuditLog.entity == "flag"))


def build_world(url: str) -> World:
    with db.session_scope(url, actor="tester@example.com") as s:
        import_employees(s, "e.csv", data=flags_data.EMPLOYEES.encode())
        import_results(s, "r.csv", data=flags_data.RESULTS.encode())
        teams = dict(s.execute(select(Team.name, Team.id)).all())
        users = dict(support.ROLE_EMAILS)
        users["compliance_officer2"] = OFFICER2
        users["south_manager"] = SOUTH_MANAGER
        for key, email in users.items():
            role = {"compliance_officer2": CO, "south_manager": SM}.get(key, key)
            team = {"sales_manager": "North", "south_manager": "South"}.get(key)
            s.add(User(email=email, name=email.split("@")[0], role=role, active=True,
                       password_hash=support.FAST_HASH,
                       team_id=teams[team] if team else None))
        s.flush()
        run = runs.start_run(s, "2026-01", actor=support.ROLE_EMAILS[CA]).run
        cases = dict(s.execute(select(FlagCase.rule_key, FlagCase.id)
                               .where(FlagCase.run_id == run.id)).all())
        run_id = run.id
    return World(url, run_id, cases["compliance.discount_authority"],
                 cases["compliance.false_advertising"])


@pytest.fixture()
def world(db_url: str) -> World:
    return build_world(db_url)


@pytest.fixture()
def app(db_url: str, world: World) -> Iterator[Flask]:
    yield support.web_app(support.CONFIG)


def as_user(app: Flask, who: str) -> FlaskClient:
    client = app.test_client()
    login(client, who)
    return client


def test_every_reader_sees_the_queue_and_the_case_in_both_languages(app, world) -> None:
    for role in ROLES:
        client = as_user(app, role)
        for lang, title in (("en", "Compliance queue"), ("zh", "合规审查队列")):
            page = client.get(f"/admin/compliance/?lang={lang}")
            assert page.status_code == 200, (role, lang)
            text = text_of(page)
            assert title in text and "compliance.false_advertising" in text
            case = client.get(f"/admin/compliance/{world.discount}/?lang={lang}")
            assert case.status_code == 200, (role, lang)
            # the explanation that raised it, in words, the facts it read by their labels
            assert {"en": "Largest discount granted 9%", "zh": "最大折扣率 9%"}[lang] \
                in text_of(case)
        forms = 'id="decide"' in case.get_data(as_text=True)
        assert forms == (role == CO)


def test_an_open_flag_reads_the_same_on_the_run_as_in_the_queue(app, world) -> None:
    """The run's period-close checklist names an open flag's status with the queue's and
    the case's word (待处理 in Chinese; it said 开放, a period's word)."""
    client = as_user(app, CA)
    for lang in ("en", "zh"):
        queue = client.get(f"/admin/compliance/?lang={lang}").get_data(as_text=True)
        word = re.search(r'badge-warning">([^<]+)</span>', queue).group(1)
        for path in (f"/admin/runs/{world.run_id}/", f"/admin/runs/{world.run_id}/approve"):
            html = client.get(f"{path}?lang={lang}").get_data(as_text=True)
            flags = html[html.index('id="check-flags"'):html.index('id="check-drafts"')]
            said = re.findall(r"</code></small></span> &middot; ([^<&]+?) (?:&middot;|</li>)",
                              flags)
            assert said and set(said) == {word}, (lang, path, said, word)


def test_a_sales_manager_sees_their_own_team_only(app, world) -> None:
    north = as_user(app, SM)
    assert "A1" in text_of(north.get("/admin/compliance/"))
    south = as_user(app, SOUTH_MANAGER)
    assert "A1" not in text_of(south.get("/admin/compliance/"))
    assert south.get(f"/admin/compliance/{world.discount}/").status_code == 404
    # the team filter cannot widen the view
    with world.session() as s:
        north_id = str(s.scalar(select(Team.id).where(Team.name == "North")))
    assert "A1" not in text_of(south.get(f"/admin/compliance/?team={north_id}"))


@pytest.mark.parametrize("role", NOT_DECIDERS)
def test_nobody_but_a_compliance_officer_may_post(app, world, role) -> None:
    client = as_user(app, role)
    before = (world.case(world.discount), world.audit_count(), world.totals())
    posts = [
        ("/admin/compliance/assign", {"case": [world.discount, world.false_ad],
                                      "assignee": OFFICER}),
        (f"/admin/compliance/{world.discount}/assign", {"assignee": OFFICER}),
        (f"/admin/compliance/{world.discount}/note",
         {"text": "x", "file": (io.BytesIO(b"evidence"), "mail.txt")}),
        (f"/admin/compliance/{world.discount}/decide", {"decision": "dismissed",
                                                         "reason": "fine"}),
    ]
    for url, data in posts:
        assert client.post(url, data=data).status_code == 403, url
    assert (world.case(world.discount), world.audit_count(), world.totals()) == before


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_decision_button_waits_for_the_review(app, world, lang) -> None:
    """An open flag cannot be decided: its button is disabled beside the refusal the engine
    would raise (compliance.decision_refusal), in the page's language, not refused once
    pressed; once assigned (in review) it is enabled."""
    client = as_user(app, CO)

    def page() -> tuple[str, str]:
        html = client.get(f"/admin/compliance/{world.discount}/?lang={lang}").get_data(
            as_text=True)
        found = re.search(r'<button[^>]*id="record-decision"[^>]*>', html)
        assert found, html
        return html, found.group(0)

    with world.session() as s:
        refusal = compliance.decision_refusal(s, s.get(FlagCase, world.discount))
    assert refusal is not None
    said = str(escape(support.in_language(app, lang, i18n.say, refusal)))
    assert (said == str(escape(refusal))) == (lang == "en")  # said in the page's language
    html, button = page()
    assert f'<p class="small text-muted" id="barred">{said}</p>' in html
    assert "disabled" in button
    assert client.post(f"/admin/compliance/{world.discount}/assign",
                       data={"assignee": OFFICER}).status_code == 302
    html, button = page()
    assert 'id="barred"' not in html and "disabled" not in button


def test_a_refused_bulk_assignment_keeps_the_queues_filter_and_its_links_work(app,
                                                                             world) -> None:
    """Refused, the queue came back at the form's address without its filter (every flag
    instead of the open ones), and its filter, search and language links asked that
    address for a page: 405. The form carries the filter, and a page asked of an address
    that takes a form alone is the page it belongs to."""
    client = as_user(app, CO)
    queue = client.get("/admin/compliance/?status=in_review").get_data(as_text=True)
    assert 'action="/admin/compliance/assign?status=in_review"' in queue
    refused = client.post("/admin/compliance/assign?status=in_review",
                          data={"assignee": OFFICER2})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Choose at least one flag." in text_of(refused)
    assert re.search(r'<option value="in_review"\s+selected', html)
    assert str(world.discount) not in re.findall(r'name="case" value="(\d+)"', html)  # open
    switched = client.get("/admin/compliance/assign?status=in_review&lang=zh")
    assert switched.status_code == 303
    assert switched.headers["Location"].endswith("/admin/compliance/?status=in_review&lang=zh")
    assert client.get(switched.headers["Location"]).status_code == 200
    adjust = client.get("/admin/runs/1/adjust")  # the run page's adjustment form's address
    assert adjust.status_code == 303 and adjust.headers["Location"].endswith("/admin/runs/1/")
    for path in ("//evil.example/admin/runs/1/adjust", "/admin//runs/1/adjust"):
        where = client.get(path).headers.get("Location", "")
        assert where.startswith("/") and not where.startswith("//"), (path, where)
    # the nearest page above that answers: a rule version's action is the rule's page, a
    # question on a statement the statement (no trailing slash), a key of any character
    for path, page in (("/admin/rules/alert.funnel/v1/run?lang=zh", "/admin/rules/alert.funnel/"),
                       ("/admin/me/statement/5/ask", "/admin/me/statement/5"),
                       ("/admin/rules/a%0D%0Ab/v1/approve", "/admin/rules/a%0D%0Ab/")):
        where = client.get(path)
        assert where.status_code == 303, path
        assert where.headers["Location"].split("?")[0].endswith(page), (path, where.location)


def test_an_officer_assigns_in_bulk_notes_with_evidence_and_decides(app, world) -> None:
    client = as_user(app, CO)
    # nothing chosen: said next to the list, nothing changes
    refused = client.post("/admin/compliance/assign", data={"assignee": OFFICER2})
    assert refused.status_code == 400 and "Choose at least one flag." in text_of(refused)
    # a decision before review is refused by the engine, shown, typed text kept
    early = client.post(f"/admin/compliance/{world.discount}/decide",
                        data={"decision": "dismissed", "reason": "my typed reason"})
    assert early.status_code == 400 and "must be in review" in text_of(early)
    assert "my typed reason" in early.get_data(as_text=True)
    # assigning to someone who is not an officer
    wrong = client.post(f"/admin/compliance/{world.discount}/assign",
                        data={"assignee": support.ROLE_EMAILS[HR]})
    assert wrong.status_code == 400 and "not a compliance officer" in text_of(wrong)
    assert world.case(world.discount)[0] == "open"

    done = client.post("/admin/compliance/assign",
                       data={"case": [world.discount, world.false_ad], "assignee": OFFICER2})
    assert done.status_code == 302
    assert world.case(world.discount)[:2] == world.case(world.false_ad)[:2] == (
        "in_review", OFFICER2)

    empty = client.post(f"/admin/compliance/{world.discount}/note", data={"text": " "})
    assert empty.status_code == 400 and "Write a note or attach a file." in text_of(empty)
    noted = client.post(f"/admin/compliance/{world.discount}/note",
                        data={"text": "called the customer",
                              "file": (io.BytesIO(b"<html>proof</html>"), "proof.html")},
                        content_type="multipart/form-data")
    assert noted.status_code == 302 and world.case(world.discount)[3] == 1
    page = client.get(f"/admin/compliance/{world.discount}/")
    assert "called the customer" in text_of(page) and "proof.html" in text_of(page)
    with world.session() as s:
        note_id = s.scalar(select(FlagNote.id).where(FlagNote.case_id == world.discount))
    download = client.get(f"/admin/compliance/{world.discount}/evidence/{note_id}")
    assert download.status_code == 200 and download.data == b"<html>proof</html>"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    # readers download evidence too; the wrong flag's number does not find it
    assert as_user(app, AU).get(
        f"/admin/compliance/{world.discount}/evidence/{note_id}").status_code == 200
    assert client.get(f"/admin/compliance/{world.false_ad}/evidence/{note_id}"
                      ).status_code == 404

    no_reason = client.post(f"/admin/compliance/{world.discount}/decide",
                            data={"decision": "dismissed", "reason": "  "})
    assert no_reason.status_code == 400
    assert "A written reason is required." in text_of(no_reason)
    assert 'value="dismissed" checked' in no_reason.get_data(as_text=True)
    assert world.case(world.discount)[0] == "in_review"

    held = world.totals()["held"]
    assert held > 0
    assert client.post(f"/admin/compliance/{world.discount}/decide",
                       data={"decision": "dismissed", "reason": "authorised by the director"}
                       ).status_code == 302
    assert world.totals()["held"] == held  # still held by the other flag
    assert client.post(f"/admin/compliance/{world.false_ad}/decide",
                       data={"decision": "confirmed", "reason": "claims were false"}
                       ).status_code == 302
    totals = world.totals()
    assert (totals["held"], totals["payable"], totals["forfeited"]) == (0, 0, held)
    again = client.post(f"/admin/compliance/{world.false_ad}/decide",
                        data={"decision": "dismissed", "reason": "changed my mind"})
    assert again.status_code == 400 and world.case(world.false_ad)[0] == "confirmed"
    # the page shows the statement totals and the trail: who, from which status, why
    page = text_of(client.get(f"/admin/compliance/{world.false_ad}/"))
    assert "claims were false" in page and OFFICER in page
    with world.session() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.entity == "flag",
                                                 AuditLog.action == "decide",
                                                 AuditLog.entity_id == str(world.false_ad))
                          ).one()
        assert (entry.actor, entry.before, entry.after["status"]) == (
            OFFICER, {"status": "in_review"}, "confirmed")


def export_statuses(world: World) -> set[str]:
    with world.session() as s:
        lifecycle.approve(s, world.run_id, support.ROLE_EMAILS[HR])
        s.commit()
        data = lifecycle.export(s, world.run_id).decode()
    return {r["status"] for r in csv.DictReader(io.StringIO(data))
            if r["employee_code"] == "A1"}


def test_dismissing_both_flags_pays_the_held_amounts(app, world) -> None:
    client = as_user(app, CO)
    held = world.totals()["held"]
    client.post("/admin/compliance/assign",
                data={"case": [world.discount, world.false_ad], "assignee": OFFICER})
    for case_id in (world.discount, world.false_ad):
        assert client.post(f"/admin/compliance/{case_id}/decide",
                           data={"decision": "dismissed", "reason": "cleared"}
                           ).status_code == 302
    totals = world.totals()
    assert (totals["payable"], totals["held"]) == (held, 0)
    queue = text_of(client.get("/admin/compliance/?status=dismissed"))
    assert "released" in queue
    assert export_statuses(world) == {"payable"}


def test_a_confirmed_flag_is_exported_as_forfeited(app, world) -> None:
    client = as_user(app, CO)
    client.post("/admin/compliance/assign", data={"case": [world.false_ad],
                                                  "assignee": OFFICER})
    client.post(f"/admin/compliance/{world.false_ad}/decide",
                data={"decision": "confirmed", "reason": "false claims"})
    assert export_statuses(world) == {"forfeited"}


def test_the_queue_filters(app, world) -> None:
    client = as_user(app, AU)
    for query, expected in (("status=open", 2), ("status=dismissed", 0),
                            ("rule=compliance.discount_authority", 1),
                            ("severity=high", 2), ("period=2026-01", 2),
                            ("period=2026-02", 0), ("employee=A1", 2), ("employee=B1", 0)):
        text = text_of(client.get(f"/admin/compliance/?{query}"))
        assert f"Flags ({expected})" in text, query


def test_past_so_many_teams_the_team_filter_is_typed_by_name(app, world, monkeypatch) -> None:
    from admin import compliance_views

    client = as_user(app, AU)
    with world.session() as s:
        north_id = s.scalar(select(Team.id).where(Team.name == "North"))
    listed = client.get("/admin/compliance/").get_data(as_text=True)
    assert f'<option value="{north_id}"' in listed
    monkeypatch.setattr(compliance_views, "TEAMS_LISTED", 1)
    typed = client.get("/admin/compliance/")
    assert f'<option value="{north_id}"' not in typed.get_data(as_text=True)
    assert 'name="team" value=""' in typed.get_data(as_text=True)
    for query, expected in (("team=North", 2), ("team=South", 0), ("team=Nowhere", 0),
                            (f"team={north_id}", 2)):
        page = client.get(f"/admin/compliance/?{query}")
        assert f"Flags ({expected})" in text_of(page), query
    assert 'name="team" value="North"' in client.get(
        "/admin/compliance/?team=North").get_data(as_text=True)


def test_a_hold_dismissed_after_the_lock_pays_in_the_next_run(app, world) -> None:
    held = world.totals()["held"]
    with world.session() as s:
        lifecycle.approve(s, world.run_id, support.ROLE_EMAILS[HR])
        lifecycle.lock(s, world.run_id, support.ROLE_EMAILS[HR],
                       open_flags_reason="flags reviewed later")
        s.commit()
    client = as_user(app, CO)
    client.post("/admin/compliance/assign",
                data={"case": [world.discount, world.false_ad], "assignee": OFFICER})
    for case_id in (world.discount, world.false_ad):
        assert client.post(f"/admin/compliance/{case_id}/decide",
                           data={"decision": "dismissed", "reason": "cleared late"}
                           ).status_code == 302
    assert world.totals()["held"] == held  # the locked run does not change
    waiting = "released after the lock: to be paid in the next monthly run"
    case_page = text_of(client.get(f"/admin/compliance/{world.discount}/"))
    assert "after the run was locked" in case_page and waiting in case_page
    assert waiting in text_of(client.get("/admin/compliance/?employee=A1"))
    analyst = as_user(app, CA)
    assert waiting in text_of(analyst.get(f"/admin/runs/{world.run_id}/statement/A1"))
    with world.session() as s:
        february = runs.start_run(s, "2026-02", actor=support.ROLE_EMAILS[CA])
        released = [o for o in february.outcomes if o["rule_key"] == "released_hold"]
        feb_id = february.run.id
        s.commit()
    assert {o["employee_code"] for o in released} == {"A1"}
    assert sum(o["amount"] for o in released) == held
    paid = f"released after the lock: to be paid in run {feb_id} (2026-02)"
    for page in (f"/admin/compliance/{world.discount}/", "/admin/compliance/?employee=A1"):
        assert paid in text_of(client.get(page)), page
    assert paid in text_of(analyst.get(f"/admin/runs/{world.run_id}/statement/A1"))
    statement = text_of(analyst.get(f"/admin/runs/{feb_id}/statement/A1"))
    flags = ", ".join(str(i) for i in sorted((world.discount, world.false_ad)))
    assert (f"from period 2026-01 (run {world.run_id}): flag {flags} dismissed after the "
            "lock.") in statement


def test_each_home_page_says_what_waits_for_its_role(app, world) -> None:
    import re

    from engine.models import Rule

    with world.session() as s:
        rule = s.scalars(select(Rule).where(Rule.key == "commission.tiered")).first()
        s.add(Rule(key=rule.key, version=99, name="Richer tiers", kind=rule.kind,
                   period_kind=rule.period_kind, status="draft", definition=rule.definition,
                   content_hash="0" * 64, created_by="someone@example.com",
                   publish_requested_by="someone@example.com"))
        s.commit()
    officer = as_user(app, CO)
    home = text_of(officer.get("/admin/"))
    assert "What waits for you" in home and "2 Flags assigned to nobody" in home
    assert f"Flag {world.discount} · A1 Ann" in home
    officer.post("/admin/compliance/assign", data={"case": [world.discount],
                                                  "assignee": OFFICER})
    home = text_of(officer.get("/admin/"))
    assert "1 Flags assigned to you" in home and "1 Flags assigned to nobody" in home
    mine = officer.get(f"/admin/compliance/?status=in_review&assignee={OFFICER}")
    assert "Flags (1)" in text_of(mine)
    hr_home = as_user(app, HR).get("/admin/")
    text = text_of(hr_home)
    assert "1 Rule drafts waiting for your approval" in text and "commission.tiered v99" in text
    assert "1 Runs to approve" in text and f"Run {world.run_id} · Period 2026-01" in text
    # the analyst who started the run cannot approve it: nothing waits for them there
    assert "Runs to approve" not in text_of(as_user(app, CA).get("/admin/"))
    html = hr_home.get_data(as_text=True)
    assert not re.search(r"[0-9a-f]{40,}", html)  # no raw hash
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)  # no ISO timestamp
    assert "Nothing waits for you." in text_of(as_user(app, AU).get("/admin/"))


def test_ratios_read_as_percentages_on_the_case_and_the_statement(app, world) -> None:
    # A1 gave a 9% discount beyond S2's 8% authority; January's attainment is 120%
    for lang in ("en", "zh"):
        case = text_of(as_user(app, CO).get(f"/admin/compliance/{world.discount}/?lang={lang}"))
        assert "9% &gt; " in case
        # the facts table names each fact as the sentence above it does, in the page's
        # language, never by its key
        facts = {"en": ["Largest discount granted 9%", "discount authority of the level 8%"],
                 "zh": ["最大折扣率 9%", "职级折扣权限 8%"]}[lang]
        assert case.count(facts[0]) == 2 and case.count(facts[1]) == 2, lang
        assert "max_discount_pct" not in case and "level_authority" not in case
        assert "0.09" not in case and "0.08" not in case, lang
        statement = text_of(as_user(app, CA).get(
            f"/admin/runs/{world.run_id}/statement/A1?lang={lang}"))
        # its facts tables too name each fact by its label
        attainment = {"en": "Attainment 120%", "zh": "指标达成率 120%"}[lang]
        assert attainment in statement and "1.2 " not in statement, lang


def test_a_flags_history_and_the_audit_log_read_in_the_readers_language(app, world) -> None:
    officer = as_user(app, CO)
    officer.get("/admin/?lang=zh")
    assert officer.post(f"/admin/compliance/{world.discount}/assign",
                        data={"assignee": OFFICER2}).status_code == 302
    with world.session() as s:  # a new run of the period carries the case over as it was
        second = runs.start_run(s, "2026-01", actor=support.ROLE_EMAILS[CA]).run.id
        s.commit()
    case = f"/admin/compliance/{world.discount}/"
    zh = text_of(officer.get(case + "?lang=zh"))
    assert f"合规标记 {world.discount}（compliance.discount_authority）已分配给 {OFFICER2}" in zh
    assert f"由本期间的计算批次 {world.run_id}, {second} 触发" in zh and "assigned to" not in zh
    assert "raised again" not in zh and "Raised by" not in zh
    en = text_of(officer.get(case + "?lang=en"))
    assert f"flag {world.discount} (compliance.discount_authority) assigned to {OFFICER2}" in en
    assert f"Raised by run(s) {world.run_id}, {second} of this period" in en
    auditor = as_user(app, "auditor")
    log = text_of(auditor.get("/admin/auditlog/?lang=zh"))
    assert "计算批次 " in log and "名员工" in log and "employees," not in log
    home = text_of(as_user(app, HR).get("/admin/?lang=zh"))
    assert "assigned to" not in home and "raised again" not in home


def test_the_queue_page_by_page_the_last_pages_read_from_the_end(app, world,
                                                                 monkeypatch) -> None:
    """Each page of the queue holds the flags it held by offset, newest first, whichever
    end it is read from, and when read from the key its link carries."""
    from admin import compliance_views

    with world.session() as s:
        ids = sorted(s.scalars(select(FlagCase.id).where(FlagCase.run_id.in_(
            select(Run.id).where(Run.status.in_(LIVE_RUN))))), reverse=True)
    assert len(ids) >= 2  # the second page of two is read from the end
    monkeypatch.setattr(compliance_views, "PAGE", 1)
    client = as_user(app, AU)
    for page in range(1, len(ids) + 2):
        text = client.get(f"/admin/compliance/?page={page}").get_data(as_text=True)
        shown = [int(i) for i in re.findall(r'href="/admin/compliance/(\d+)/"', text)]
        assert shown == ids[page - 1:page], page
    # the pager's links carry the key of the page next to theirs: the same pages
    walked = support.walk_pages(client, "/admin/compliance/", len(ids),
                        r'href="/admin/compliance/(\d+)/"')
    assert walked == [[str(i)] for i in ids] * 2


def test_the_queue_lists_the_rules_and_severities_its_flags_have(app, world) -> None:
    """The filters offer each rule and each severity of the flag cases once, sorted (read
    from their indexes one value at a time)."""
    from engine import compliance

    with world.session() as s:
        cases = s.execute(select(FlagCase.rule_key, FlagCase.severity)).all()
        rules = compliance.distinct_values(s, FlagCase.rule_key)
        severities = compliance.distinct_values(s, FlagCase.severity)
    assert rules == sorted({r for r, _s in cases}) and len(rules) >= 2
    assert severities == sorted({v for _r, v in cases} - {None}) and severities
    text = as_user(app, AU).get("/admin/compliance/").get_data(as_text=True)
    for rule in rules:
        assert f'<option value="{rule}"' in text


# --- rules by their names ------------------------------------------------------------


NAMES = {"en": ("Discount beyond authority", "False advertising"),
         "zh": ("超权限折扣", "虚假宣传")}


read_as_shown = support.read_as_shown


def test_the_queue_the_case_and_the_run_name_rules_in_the_readers_language(app,
                                                                          world) -> None:
    """The flag queue (its rows and its rule filter), a flag's page and the run's page (its
    amounts by rule, its checklist's open flags) read a rule's name in the page's language;
    its key is only an identifier beside it, and what the filter submits."""
    analyst, officer = as_user(app, CA), as_user(app, CO)
    with world.session() as s:
        lifecycle.add_adjustment(s, world.run_id, "A1", "50", "joined late",
                                 support.ROLE_EMAILS[CA])
        s.commit()
    keys = ("compliance.discount_authority", "compliance.false_advertising")
    for lang, names in NAMES.items():
        queue = officer.get(f"/admin/compliance/?lang={lang}").get_data(as_text=True)
        shown = read_as_shown(queue)
        for key, name in zip(keys, names, strict=True):
            assert name in shown and key not in shown, (lang, key)
            assert re.search(rf'<option value="{re.escape(key)}">{name}</option>', queue)
        filtered = officer.get(f"/admin/compliance/?rule={keys[0]}&lang={lang}")
        assert f'<option value="{keys[0]}" selected>{names[0]}</option>' in \
            filtered.get_data(as_text=True)
        assert names[1] not in read_as_shown(filtered.get_data(as_text=True), "<tbody")
        home = read_as_shown(officer.get(f"/admin/?lang={lang}").get_data(as_text=True),
                             'id="waiting"')
        assert names[0] in home and keys[0] not in home, lang
        case = officer.get(f"/admin/compliance/{world.false_ad}/?lang={lang}")
        title = read_as_shown(case.get_data(as_text=True), "<h4>", "</h4>")
        assert names[1] in title and keys[1] not in title, lang
        run = analyst.get(f"/admin/runs/{world.run_id}/?lang={lang}").get_data(as_text=True)
        flags = read_as_shown(run, 'id="check-flags"', 'id="check-drafts"')
        by_rule = read_as_shown(run, 'id="by-rule"', 'id="by-team"')
        # the adjustment's line is no rule: it reads as the statement names it
        adjustment = "人工调整" if lang == "zh" else "Manual adjustment"
        assert adjustment in by_rule and "adjustment" not in by_rule.replace(
            adjustment, ""), lang
        for key, name in zip(keys, names, strict=True):
            assert name in flags and key not in flags, (lang, key)
        assert "commission." not in by_rule and "compliance." not in by_rule, lang


def test_a_released_hold_and_the_rule_it_held_read_by_their_names(app, world) -> None:
    """A hold dismissed after the lock is paid in the next run as a line no rule makes:
    that run's amounts by rule and the statement name it and the rule it held by their
    names, in Chinese too."""
    with world.session() as s:
        lifecycle.approve(s, world.run_id, support.ROLE_EMAILS[HR])
        lifecycle.lock(s, world.run_id, support.ROLE_EMAILS[HR],
                       open_flags_reason="flags reviewed later")
        s.commit()
    officer, analyst = as_user(app, CO), as_user(app, CA)
    officer.post("/admin/compliance/assign",
                 data={"case": [world.discount, world.false_ad], "assignee": OFFICER})
    for case_id in (world.discount, world.false_ad):
        officer.post(f"/admin/compliance/{case_id}/decide",
                     data={"decision": "dismissed", "reason": "cleared late"})
    with world.session() as s:
        february = runs.start_run(s, "2026-02", actor=support.ROLE_EMAILS[CA]).run.id
        s.commit()
    released = {"en": "Released hold", "zh": "解除的暂扣"}
    held = {"en": ("New-logo commission", "Tiered commission"), "zh": ("新客户提成", "阶梯提成")}
    for lang, names in held.items():
        run = analyst.get(f"/admin/runs/{february}/?lang={lang}").get_data(as_text=True)
        by_rule = read_as_shown(run, 'id="by-rule"', 'id="by-team"')
        assert released[lang] in by_rule and "released_hold" not in by_rule, lang
        page = analyst.get(f"/admin/runs/{february}/statement/A1?lang={lang}")
        said = read_as_shown(page.get_data(as_text=True), 'id="lines"')
        assert released[lang] in said and "released_hold" not in said, lang
        moved = re.findall(r'laurel-released-from">([^<]*)<', page.get_data(as_text=True))
        assert moved and all(any(n in m for n in names) and "commission." not in m
                             for m in moved), (lang, moved)


def test_rule_names_read_the_version_a_run_used_in_one_query(world) -> None:
    """engine.plain.rule_names: a rule's name from the version the run used, even once
    discarded for a renamed one; else its latest published; the lines no rule makes by
    their words; any number of keys in a query or two."""
    from sqlalchemy import event

    from engine import plain
    from engine.models import Rule

    key = "compliance.discount_authority"
    with world.session() as s:
        run = s.get(Run, world.run_id)
        used = s.scalar(select(Rule).where(Rule.key == key, Rule.status == "published"))
        renamed = dict(used.definition, name="Renamed", name_zh="改名")
        s.add(Rule(key=key, version=used.version + 1, name="Renamed", kind=used.kind,
                   period_kind=used.period_kind, status="published", definition=renamed,
                   content_hash="x" * 64))
        used.status = "discarded"
        s.commit()
        statements_run: list[str] = []

        def counted(*args: object) -> None:
            statements_run.append(args[2])

        event.listen(s.get_bind(), "before_cursor_execute", counted)
        try:
            keys = [x["key"] for x in run.rules] + ["clawback", "adjustment", "no.such_rule"]
            for lang, names in NAMES.items():
                got = plain.rule_names(s, keys, lang, run_ids=[run.id])
                assert got[key] == names[0] and got["no.such_rule"] == "no.such_rule"
                assert got["clawback"] == wording.LINE_NAMES["clawback"][lang == "zh"]
                assert plain.rule_names(s, [key], lang)[key] == ("改名" if lang == "zh"
                                                                 else "Renamed")
        finally:  # the engine is shared by the tests that follow
            event.remove(s.get_bind(), "before_cursor_execute", counted)
        assert len(statements_run) <= 2 * 2 + 2, statements_run
