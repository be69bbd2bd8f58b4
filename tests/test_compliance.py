"""Compliance decisions move money; PIP records and promotion candidates follow runs."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from engine import compliance, followup, lifecycle, runs, statements
from engine.errors import LaurelError, PermissionDenied
from engine.imports import import_employees, import_results
from engine.models import AuditLog, Candidate, FlagCase, Outcome, Pip, Run, Team
from engine.users import create_user

EMPLOYEES = """code,name,email,team,region,level,manager_code,hire_date,team_stage
A1,Ann,a1@x.com,North,N,S2,,2020-01-01,growth
B1,Bob,b1@x.com,North,N,S1,A1,2020-01-01,growth
C1,Cid,c1@x.com,South,S,S1,,2020-01-01,mature
"""
# A1 gives a discount beyond S2's 8% and has one false-advertising complaint in January:
# two holding flags. B1 and C1 are clean.
RESULTS = ("period,employee_code,quota,revenue_new,revenue_existing,max_discount_pct,"
           "false_ad_complaints,self_score,manager_score,customer_score\n") + """\
2026-01,A1,100000,20000,100000,0.09,1,90,90,90
2026-01,B1,100000,10000,60000,0.05,0,70,70,70
2026-01,C1,100000,0,50000,0.05,0,50,50,50
2026-02,A1,100000,10000,100000,0.05,0,90,90,90
2026-02,B1,100000,10000,60000,0.05,0,70,70,70
2026-02,C1,100000,0,50000,0.05,0,50,50,50
2026-03,A1,100000,10000,100000,0.05,0,90,90,90
2026-03,B1,100000,10000,60000,0.05,0,70,70,70
2026-03,C1,100000,0,50000,0.05,0,50,50,50
"""


@pytest.fixture()
def org(session):
    import_employees(session, "e.csv", data=EMPLOYEES.encode())
    import_results(session, "r.csv", data=RESULTS.encode())
    for email, role, team in (("ann@x.com", "comp_analyst", None),
                              ("bob@x.com", "comp_analyst", None),
                              ("hr@x.com", "hr_admin", None),
                              ("hr2@x.com", "hr_admin", None),
                              ("cat@x.com", "compliance_officer", None),
                              ("dan@x.com", "compliance_officer", None),
                              ("mgr@x.com", "sales_manager", "North"),
                              ("mgr2@x.com", "sales_manager", "South")):
        create_user(session, email, "password-123", role, team=team)
    session.commit()


def january(session):
    run = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    cases = session.scalars(select(FlagCase).where(FlagCase.run_id == run.id)
                            .order_by(FlagCase.rule_key)).all()
    return run, cases


def statuses(session, run, code):
    st = statements.statement(session, run, code)
    return {line.rule_key: line.status for line in st.lines if line.amount is not None}


def test_every_flag_opens_a_case(session, org):
    run, cases = january(session)
    assert [(c.rule_key, c.status, c.holds) for c in cases] == [
        ("compliance.discount_authority", "open", True),
        ("compliance.false_advertising", "open", True)]
    assert set(statuses(session, run, "A1").values()) == {"held"}
    assert compliance.queue(session, status="open", employee_code="A1") == list(
        reversed(cases))


def test_transitions_by_role(session, org):
    run, cases = january(session)
    for who in ("ann@x.com", "hr@x.com", "mgr@x.com", None):
        with pytest.raises(PermissionDenied):
            compliance.assign(session, [cases[0].id], "cat@x.com", who)
    with pytest.raises(LaurelError, match="must be in review"):
        compliance.decide(session, cases[0].id, "dismissed", "fine", "cat@x.com")
    with pytest.raises(LaurelError, match="not a compliance officer"):
        compliance.assign(session, [cases[0].id], "hr@x.com", "cat@x.com")
    compliance.assign(session, [c.id for c in cases], "dan@x.com", "cat@x.com")  # in bulk
    assert {c.status for c in cases} == {"in_review"}
    with pytest.raises(LaurelError, match="written reason"):
        compliance.decide(session, cases[0].id, "dismissed", " ", "dan@x.com")
    with pytest.raises(PermissionDenied):
        compliance.decide(session, cases[0].id, "dismissed", "ok", "hr@x.com")
    compliance.add_note(session, cases[0].id, "dan@x.com", "called the customer",
                        filename="mail.txt", content=b"hello", content_type="text/plain")
    compliance.decide(session, cases[0].id, "dismissed", "approved by sales director",
                      "dan@x.com")
    with pytest.raises(LaurelError, match="dismissed"):
        compliance.decide(session, cases[0].id, "confirmed", "again", "dan@x.com")
    session.commit()
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "decide")).one()
    assert entry.actor == "dan@x.com" and entry.before == {"status": "in_review"}
    assert entry.after["status"] == "dismissed" and "sales director" in entry.after["reason"]


def test_dismiss_and_confirm_move_statement_totals_and_export(session, org):
    run, (discount, false_ad) = january(session)
    before = statements.statement(session, run, "A1").totals
    held = before["held"]
    assert held > 0 and before["payable"] == 0
    compliance.assign(session, [discount.id, false_ad.id], "cat@x.com", "cat@x.com")
    compliance.decide(session, discount.id, "dismissed", "authorised", "cat@x.com")
    session.commit()
    assert set(statuses(session, run, "A1").values()) == {"held"}  # one flag still in review
    compliance.decide(session, false_ad.id, "dismissed", "complaint withdrawn", "cat@x.com")
    session.commit()
    after = statements.statement(session, run, "A1").totals
    assert after["payable"] == held and after["held"] == 0
    lifecycle.approve(session, run.id, "bob@x.com")
    rows = list(csv.DictReader(io.StringIO(lifecycle.export(session, run.id).decode())))
    assert {r["status"] for r in rows if r["employee_code"] == "A1"} == {"payable"}


def test_confirmed_flag_forfeits(session, org):
    run, (discount, false_ad) = january(session)
    compliance.assign(session, [discount.id, false_ad.id], "cat@x.com", "cat@x.com")
    compliance.decide(session, discount.id, "dismissed", "authorised", "cat@x.com")
    compliance.decide(session, false_ad.id, "confirmed", "claims were false", "cat@x.com")
    session.commit()
    totals = statements.statement(session, run, "A1").totals
    assert totals["payable"] == 0 and totals["held"] == 0 and totals["forfeited"] > 0
    assert statements.overview(session, run)["by_status"]["forfeited"] == totals["forfeited"]


def test_hold_released_after_lock_pays_in_the_next_run(session, org):
    run, cases = january(session)
    held = statements.statement(session, run, "A1").totals["held"]
    lifecycle.approve(session, run.id, "bob@x.com")  # approved with open flags
    lifecycle.lock(session, run.id, "bob@x.com")
    session.commit()
    compliance.assign(session, [c.id for c in cases], "cat@x.com", "cat@x.com")
    for c in cases:
        compliance.decide(session, c.id, "dismissed", "cleared", "cat@x.com")
    session.commit()
    # the locked run does not change
    assert set(statuses(session, run, "A1").values()) == {"held"}
    february = runs.start_run(session, "2026-02", actor="ann@x.com")
    session.commit()
    released = [o for o in february.outcomes if o["rule_key"] == "released_hold"]
    assert {o["employee_code"] for o in released} == {"A1"}
    assert sum(o["amount"] for o in released) == held
    assert all(o["status"] == "payable" and "run" in o["value"] for o in released)
    # paid once: a second run of February pays it again (the first is discarded) ...
    again = runs.start_run(session, "2026-02", actor="ann@x.com")
    session.commit()
    assert sum(o["amount"] for o in again.outcomes if o["rule_key"] == "released_hold") == held
    # ... but March does not, February's live run has paid it
    march = runs.start_run(session, "2026-03", actor="ann@x.com")
    assert not [o for o in march.outcomes if o["rule_key"] == "released_hold"]


def test_confirmed_after_lock_pays_nothing(session, org):
    run, cases = january(session)
    lifecycle.approve(session, run.id, "bob@x.com")
    lifecycle.lock(session, run.id, "bob@x.com")
    compliance.assign(session, [c.id for c in cases], "cat@x.com", "cat@x.com")
    compliance.decide(session, cases[0].id, "dismissed", "ok", "cat@x.com")
    compliance.decide(session, cases[1].id, "confirmed", "false claims", "cat@x.com")
    session.commit()
    assert cases[1].decided_after_lock
    february = runs.start_run(session, "2026-02", actor="ann@x.com")
    assert not [o for o in february.outcomes if o["rule_key"] == "released_hold"]


# --- PIPs and candidates ---------------------------------------------------------------------


def quarter(session, code, actor="ann@x.com"):
    run = runs.start_run(session, code, actor=actor).run
    session.commit()
    return run


def test_pip_records_follow_the_run(session, org):
    run = quarter(session, "2026-Q1")
    pip = session.scalars(select(Pip)).one()  # C1 is rated D (attainment 0.50)
    assert (pip.employee.code, pip.status, pip.start, pip.end) == (
        "C1", "proposed", dt.date(2026, 4, 1), dt.date(2026, 6, 30))
    assert pip.target == "monthly attainment >= 0.80"
    again = quarter(session, "2026-Q1")  # a new run discards the first and its PIP
    session.refresh(pip)
    assert pip.status == "discarded"
    lifecycle.approve(session, again.id, "bob@x.com")
    session.commit()
    active = session.scalars(select(Pip).where(Pip.status == "active")).one()
    assert active.run_id == again.id
    assert run.id != again.id


def test_pip_progress_and_decisions(session, org):
    run = quarter(session, "2026-Q1")
    lifecycle.approve(session, run.id, "bob@x.com")
    import_results(session, "q2.csv", data=(
        b"period,employee_code,quota,revenue_existing\n"
        b"2026-04,C1,100000,85000\n2026-05,C1,100000,70000\n"))
    session.commit()
    pip = session.scalars(select(Pip)).one()
    months = followup.progress(session, pip)
    assert [(m["month"], m["met"]) for m in months] == [
        ("2026-04", True), ("2026-05", False), ("2026-06", None)]
    assert months[0]["actual"] == Decimal("0.85")
    with pytest.raises(PermissionDenied):
        followup.decide_pip(session, pip.id, "passed", "good", "ann@x.com")
    with pytest.raises(LaurelError, match="ends after"):
        followup.decide_pip(session, pip.id, "extended", "more time", "hr@x.com",
                            new_end=dt.date(2026, 6, 1))
    followup.decide_pip(session, pip.id, "extended", "more time", "hr@x.com",
                        new_end=dt.date(2026, 7, 31))
    followup.close_pip(session, pip.id, "met the target early", "hr@x.com",
                       on=dt.date(2026, 6, 15))
    assert (pip.status, pip.end) == ("closed", dt.date(2026, 6, 15))
    with pytest.raises(LaurelError, match="only an active PIP"):
        followup.decide_pip(session, pip.id, "exit", "late", "hr@x.com")


def test_a_running_pip_record_blocks_a_second_one_until_it_is_closed(session, org):
    q1 = quarter(session, "2026-Q1")
    lifecycle.approve(session, q1.id, "bob@x.com")
    import_results(session, "q2.csv", data=(
        b"period,employee_code,quota,revenue_existing\n2026-04,C1,100000,10000\n"))
    session.commit()
    q2 = runs.start_run(session, "2026-Q2", dry_run=True)
    assert not [o for o in q2.outcomes if o["kind"] == "pip"]
    pip = session.scalars(select(Pip)).one()
    followup.close_pip(session, pip.id, "moved team", "hr@x.com", on=dt.date(2026, 3, 31))
    q2 = runs.start_run(session, "2026-Q2", dry_run=True)
    assert [o["employee_code"] for o in q2.outcomes if o["kind"] == "pip"] == ["C1"]
    session.rollback()


def test_candidates_from_approved_runs(session, org):
    q1 = quarter(session, "2026-Q1")
    q2 = None
    import_results(session, "q2.csv", data=(
        b"period,employee_code,quota,revenue_new,revenue_existing,self_score,manager_score,"
        b"customer_score\n2026-04,A1,100000,20000,100000,90,90,90\n"))
    session.commit()
    q2 = quarter(session, "2026-Q2")
    assert session.scalars(select(Candidate)).all() == []  # not approved yet
    lifecycle.approve(session, q1.id, "bob@x.com")
    lifecycle.approve(session, q2.id, "bob@x.com")
    session.commit()
    cand = session.scalars(select(Candidate)).one()
    assert cand.employee.code == "A1" and cand.status == "eligible"
    assert followup.candidates(session, team_id=session.scalar(
        select(Team.id).where(Team.name == "South"))) == []
    with pytest.raises(PermissionDenied, match="not in"):
        followup.move_candidate(session, cand.id, "nominated", "strong", "mgr2@x.com")
    with pytest.raises(PermissionDenied, match="HR accepts"):
        followup.move_candidate(session, cand.id, "accepted", "strong", "mgr@x.com")
    followup.move_candidate(session, cand.id, "nominated", "strong quarter", "mgr@x.com")
    with pytest.raises(LaurelError, match="cannot become"):
        followup.move_candidate(session, cand.id, "nominated", "again", "hr@x.com")
    followup.move_candidate(session, cand.id, "accepted", "welcome", "hr@x.com")
    session.commit()
    assert cand.status == "accepted"
    assert session.scalar(select(AuditLog.actor).where(AuditLog.entity == "candidate",
                                                        AuditLog.action == "accepted")) \
        == "hr@x.com"


def test_open_flags_do_not_block_approval_and_are_not_exported_as_payable(session, org):
    run, _ = january(session)
    lifecycle.approve(session, run.id, "bob@x.com")
    rows = list(csv.DictReader(io.StringIO(lifecycle.export(session, run.id).decode())))
    assert {r["status"] for r in rows if r["employee_code"] == "A1"} == {"held"}
    assert session.get(Run, run.id).status == "approved"
    assert session.scalar(select(Outcome.status).where(
        Outcome.run_id == run.id, Outcome.kind == "flag")) is None


def test_assign_refuses_nothing_chosen_and_flags_of_discarded_runs(session, org):
    run, cases = january(session)
    with pytest.raises(LaurelError, match="choose at least one flag"):
        compliance.assign(session, [], "", "cat@x.com")
    with pytest.raises(LaurelError, match="choose a compliance officer"):
        compliance.assign(session, [cases[0].id], " ", "cat@x.com")
    with pytest.raises(LaurelError, match="has no name"):
        compliance.add_note(session, cases[0].id, "cat@x.com", content=b"x")
    runs.start_run(session, "2026-01", actor="ann@x.com")  # discards the first run
    session.commit()
    with pytest.raises(LaurelError, match="discarded"):
        compliance.assign(session, [cases[0].id], "cat@x.com", "cat@x.com")
