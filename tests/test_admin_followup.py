"""PIPs and promotion candidates in the back office: pages by role, HR's decisions, moves."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine import db, lifecycle, runs
from engine.imports import import_employees, import_results
from engine.models import STAFF_ROLES as ROLES
from engine.models import AuditLog, Candidate, Pip, Team, User

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
    from tests import test_compliance as data
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]
    import test_compliance as data  # type: ignore[no-redef]

login = support.login
text_of = support.text_of
pytest_plugins = [support.__name__]

HR, CA, CO, SM, AU = ROLES
SOUTH_MANAGER = "south@example.com"
# A1 (North) is rated A in both quarters: a candidate. C1 (South) is rated D in Q1: a PIP
# from April to June, at 85% in April and 70% in May.
SECOND_QUARTER = (
    b"period,employee_code,quota,revenue_new,revenue_existing,self_score,manager_score,"
    b"customer_score\n"
    b"2026-04,A1,100000,20000,100000,90,90,90\n"
    b"2026-04,C1,100000,0,85000,50,50,50\n"
    b"2026-05,C1,100000,0,70000,50,50,50\n")


@dataclass
class World:
    url: str
    pip: int
    candidate: int

    def pip_state(self) -> tuple[str, dt.date, str | None, int]:
        with db.make_sessionmaker(self.url)() as s:
            pip = s.get(Pip, self.pip)
            entries = s.scalar(select(func.count()).select_from(AuditLog)
                               .where(AuditLog.entity == "pip"))
            return pip.status, pip.end, pip.decision_reason, entries

    def candidate_state(self) -> tuple[str, str | None, str | None]:
        with db.make_sessionmaker(self.url)() as s:
            cand = s.get(Candidate, self.candidate)
            return cand.status, cand.reason, cand.updated_by


def build_world(url: str) -> World:
    hr, analyst = support.ROLE_EMAILS[HR], support.ROLE_EMAILS[CA]
    with db.session_scope(url, actor="tester@example.com") as s:
        import_employees(s, "e.csv", data=data.EMPLOYEES.encode())
        import_results(s, "r.csv", data=data.RESULTS.encode())
        import_results(s, "q2.csv", data=SECOND_QUARTER)
        teams = dict(s.execute(select(Team.name, Team.id)).all())
        for role, email in [*support.ROLE_EMAILS.items(), (SM, SOUTH_MANAGER)]:
            team = {support.ROLE_EMAILS[SM]: "North", SOUTH_MANAGER: "South"}.get(email)
            s.add(User(email=email, name=email.split("@")[0], role=role, active=True,
                       password_hash=support.FAST_HASH, team_id=teams.get(team)))
        s.flush()
        for code in ("2026-Q1", "2026-Q2"):
            run = runs.start_run(s, code, actor=analyst).run
            lifecycle.approve(s, run.id, hr)
        pip = s.scalars(select(Pip)).one()
        cand = s.scalars(select(Candidate)).one()
        assert (pip.employee.code, pip.status, cand.employee.code) == ("C1", "active", "A1")
        return World(url, pip.id, cand.id)


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


# --- PIPs -------------------------------------------------------------------------------


# a script, style or link from another site (a CDN): the pages serve their own; a word
# like "cdn" may well turn up in a page's random nonce
EXTERNAL = re.compile(r'(?:src|href)="(?:https?:)?//')


def test_pip_pages_render_for_their_readers_in_both_languages(app, world) -> None:
    for who in (HR, CA, AU, SOUTH_MANAGER):
        client = as_user(app, who)
        for lang, word in (("en", "PIPs"), ("zh", "绩效改进计划")):
            listing = client.get(f"/admin/pips/?lang={lang}")
            assert listing.status_code == 200 and word in text_of(listing), (who, lang)
            assert "C1" in text_of(listing)
            page = client.get(f"/admin/pips/{world.pip}/?lang={lang}")
            assert page.status_code == 200, (who, lang)
            html = page.get_data(as_text=True)
            assert ('id="decide"' in html) == (who == HR)
            assert "vendor/chartjs/chart.umd.min.js" in html
            assert not EXTERNAL.search(html)  # nothing from a CDN or another site
    north = as_user(app, SM)
    assert "C1" not in text_of(north.get("/admin/pips/"))
    assert north.get(f"/admin/pips/{world.pip}/").status_code == 404
    officer = as_user(app, CO)
    assert officer.get("/admin/pips/").status_code == 403
    assert officer.get(f"/admin/pips/{world.pip}/").status_code == 403


def test_the_pip_line_of_a_statement_gives_its_days_as_the_page_does(app, world) -> None:
    """The PIP's start (the line's value) and its days in the words read like the period's
    days above them, never as ISO dates."""
    with db.make_sessionmaker(world.url)() as s:
        run_id = s.get(Pip, world.pip).run_id
    client = as_user(app, HR)
    for lang, period, words, value in (
            ("en", "(Jan 1, 2026 – Mar 31, 2026)",
             "PIP from Apr 1, 2026 to Jun 30, 2026 (3 months)", "PIP Apr 1, 2026"),
            ("zh", "(2026年1月1日 – 2026年3月31日)",
             "改进计划自 2026年4月1日 至 2026年6月30日（3 个月）", "绩效改进计划 2026年4月1日")):
        text = html.unescape(text_of(client.get(
            f"/admin/runs/{run_id}/statement/C1?lang={lang}")))
        assert period in text and words in text and value in text, lang
        assert "2026-04-01" not in text and "2026-06-30" not in text, lang


def test_the_pip_page_shows_each_month_against_the_target(app, world) -> None:
    text = html.unescape(text_of(as_user(app, HR).get(f"/admin/pips/{world.pip}/")))
    assert "2026-04 85% ≥ 80% yes" in text
    assert "2026-05 70% ≥ 80% no" in text
    assert "2026-06 no result yet" in text


def test_a_pip_on_another_metric_reads_its_figures_by_the_metrics_type(app, world) -> None:
    """A target HR set on a ratio or an amount reads as one, as the target's words do: no
    bare decimal (1, 0.5) nor code sign (>=) in the month table."""
    with db.make_sessionmaker(world.url)() as s:
        s.get(Pip, world.pip).target = "monthly repurchase_rate >= 0.5"
        s.commit()
    text = html.unescape(text_of(as_user(app, HR).get(f"/admin/pips/{world.pip}/")))
    assert "2026-04 100% ≥ 50% yes" in text and ">=" not in text
    with db.make_sessionmaker(world.url)() as s:
        s.get(Pip, world.pip).target = "monthly revenue_total >= 80000"
        s.commit()
    text = html.unescape(text_of(as_user(app, HR).get(f"/admin/pips/{world.pip}/?lang=zh")))
    assert "2026-04 ¥85,000.00 ≥ ¥80,000.00 是" in text
    assert "2026-05 ¥70,000.00 ≥ ¥80,000.00 否" in text


@pytest.mark.parametrize("decision", ["passed", "role_change", "exit"])
def test_hr_records_the_decision(app, world, decision) -> None:
    client = as_user(app, HR)
    no_reason = client.post(f"/admin/pips/{world.pip}/decide",
                            data={"decision": decision, "reason": ""})
    assert no_reason.status_code == 400
    assert "A written reason is required." in text_of(no_reason)
    assert f'value="{decision}" checked' in no_reason.get_data(as_text=True)
    assert world.pip_state()[0] == "active"
    done = client.post(f"/admin/pips/{world.pip}/decide",
                       data={"decision": decision, "reason": "three months reviewed"})
    assert done.status_code == 302
    status, end, reason, entries = world.pip_state()
    assert (status, end, reason, entries) == (decision, dt.date(2026, 6, 30),
                                              "three months reviewed", 1)
    page = client.get(f"/admin/pips/{world.pip}/?lang=zh")
    assert 'id="decide"' not in page.get_data(as_text=True)  # decided: no second decision


def test_hr_extends_then_closes_early(app, world) -> None:
    client = as_user(app, HR)
    bad = client.post(f"/admin/pips/{world.pip}/decide",
                      data={"decision": "extended", "reason": "more time",
                            "new_end": "2026-06-01"})
    assert bad.status_code == 400 and "an extension ends after 2026-06-30" in text_of(bad)
    assert 'value="2026-06-01"' in bad.get_data(as_text=True)
    garbled = client.post(f"/admin/pips/{world.pip}/decide",
                          data={"decision": "extended", "reason": "x", "new_end": "soon"})
    assert garbled.status_code == 400 and "is not a date" in text_of(garbled)
    assert client.post(f"/admin/pips/{world.pip}/decide",
                       data={"decision": "extended", "reason": "more time",
                             "new_end": "2026-07-31"}).status_code == 302
    assert world.pip_state()[:2] == ("extended", dt.date(2026, 7, 31))
    refused = client.post(f"/admin/pips/{world.pip}/close",
                          data={"reason": " ", "on": "2026-07-15"})
    assert refused.status_code == 400 and "A written reason is required." in text_of(refused)
    assert client.post(f"/admin/pips/{world.pip}/close",
                       data={"reason": "met the target", "on": "2026-07-15"}
                       ).status_code == 302
    assert world.pip_state()[:3] == ("closed", dt.date(2026, 7, 15), "met the target")
    text = text_of(client.get(f"/admin/pips/{world.pip}/"))
    assert "closed early" in text and "met the target" in text


def test_a_pip_that_has_run_its_course_gets_a_decision_not_an_early_close(app, world) -> None:
    """A PIP ending June 30 was "closed early" on December 1, skipping HR's decision: a last
    day on or after its end is refused beside the field, what was typed kept; the day
    before its end closes it; past its end the page offers the decision alone."""
    client = as_user(app, HR)
    for on in ("2026-06-30", "2026-12-01"):
        late = client.post(f"/admin/pips/{world.pip}/close", data={"reason": "done", "on": on})
        assert late.status_code == 400
        assert "it ends on 2026-06-30; a PIP closed early ends before that" in text_of(late)
        assert f'value="{on}"' in late.get_data(as_text=True)
    zh = client.post(f"/admin/pips/{world.pip}/close?lang=zh",
                     data={"reason": "done", "on": "2026-07-01"})
    assert "提前关闭须在此日期之前" in text_of(zh)
    assert world.pip_state()[:2] == ("active", dt.date(2026, 6, 30))
    page = client.get(f"/admin/pips/{world.pip}/")
    today = dt.date.today()
    assert ('id="run-its-course"' in page.get_data(as_text=True)) is (today >= dt.date(2026, 6, 30))
    assert client.post(f"/admin/pips/{world.pip}/close",
                       data={"reason": "moved team", "on": "2026-06-29"}).status_code == 302
    assert world.pip_state()[:3] == ("closed", dt.date(2026, 6, 29), "moved team")


@pytest.mark.parametrize("who", [CA, CO, SM, AU, SOUTH_MANAGER])
def test_only_hr_decides_pips(app, world, who) -> None:
    client = as_user(app, who)
    before = world.pip_state()
    assert client.post(f"/admin/pips/{world.pip}/decide",
                       data={"decision": "passed", "reason": "x"}).status_code == 403
    assert client.post(f"/admin/pips/{world.pip}/close",
                       data={"reason": "x"}).status_code == 403
    assert world.pip_state() == before


# --- candidates ---------------------------------------------------------------------------


def test_candidate_list_renders_for_its_readers_in_both_languages(app, world) -> None:
    for who in (HR, CA, AU, SM, SOUTH_MANAGER):
        client = as_user(app, who)
        for lang, word in (("en", "Promotion candidates"), ("zh", "晋升候选人")):
            page = client.get(f"/admin/candidates/?lang={lang}")
            assert page.status_code == 200 and word in text_of(page), (who, lang)
            assert ("A1" in text_of(page)) == (who != SOUTH_MANAGER)
            assert ("candidate-move" in page.get_data(as_text=True)) == (who in (HR, SM))
    assert as_user(app, CO).get("/admin/candidates/").status_code == 403


def test_a_manager_nominates_and_hr_accepts(app, world) -> None:
    manager = as_user(app, SM)
    url = f"/admin/candidates/{world.candidate}/move"
    empty = manager.post(url, data={"status": "nominated", "reason": ""})
    assert empty.status_code == 400 and "A written reason is required." in text_of(empty)
    assert world.candidate_state()[0] == "eligible"
    # another team's manager, and the readers, change nothing
    assert as_user(app, SOUTH_MANAGER).post(
        url, data={"status": "nominated", "reason": "x"}).status_code == 404
    for who in (CA, CO, AU):
        assert as_user(app, who).post(
            url, data={"status": "nominated", "reason": "x"}).status_code == 403
    assert world.candidate_state() == ("eligible", None, None)
    # a manager nominates but does not accept
    assert manager.post(url, data={"status": "accepted", "reason": "x"}).status_code == 403
    assert manager.post(url, data={"status": "nominated", "reason": "strong quarters"}
                        ).status_code == 302
    assert world.candidate_state() == ("nominated", "strong quarters",
                                       support.ROLE_EMAILS[SM])
    hr = as_user(app, HR)
    twice = hr.post(url, data={"status": "nominated", "reason": "again"})
    assert twice.status_code == 400 and "cannot become nominated" in text_of(twice)
    twice = hr.post(f"{url}?lang=zh", data={"status": "nominated", "reason": "again"})
    assert "状态为已提名；不能变为 已提名" in text_of(twice)  # both statuses in Chinese
    hr.get("/admin/candidates/?lang=en")
    assert hr.post(url, data={"status": "accepted", "reason": "welcome"}).status_code == 302
    assert world.candidate_state() == ("accepted", "welcome", support.ROLE_EMAILS[HR])
    assert "welcome" in text_of(hr.get("/admin/candidates/?status=accepted"))
    assert "A1" not in text_of(hr.get("/admin/candidates/?status=eligible"))


def test_hr_declines_an_eligible_candidate(app, world) -> None:
    hr = as_user(app, HR)
    assert hr.post(f"/admin/candidates/{world.candidate}/move",
                   data={"status": "declined", "reason": "left the company"}
                   ).status_code == 302
    assert world.candidate_state()[0] == "declined"
