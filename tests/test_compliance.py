"""Compliance decisions move money; PIP records and promotion candidates follow runs."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from engine import bulk, compliance, followup, lifecycle, runs, statements
from engine.errors import LaurelError, PermissionDenied
from engine.imports import import_employees, import_results
from engine.models import (
    FLAG_STATUSES,
    LIVE_RUN,
    AuditLog,
    Candidate,
    FlagCase,
    FlagCount,
    Outcome,
    Period,
    Pip,
    Run,
    Team,
)
from engine.users import create_user, get_user
from engine.waiting import what_waits

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


def test_opening_cases_leaves_the_foreign_keys_checked_row_by_row_after(session, org):
    """On PostgreSQL the cases are inserted with their keys' per-row checks skipped
    (bulk.references_held); afterwards the transaction's inserts are checked again."""
    run, cases = january(session)
    assert cases
    postgres = session.get_bind().dialect.name == "postgresql"
    with bulk.references_held(session, FlagCase.__table__):
        if postgres:  # the test database's role may skip them
            assert session.execute(text("SHOW session_replication_role")).scalar() \
                == "replica"
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(insert(FlagCase).values(
            outcome_id=10**9, run_id=run.id, period_id=run.period_id,
            employee_id=cases[0].employee_id, rule_key="x.y", severity="high", holds=False,
            status="open", decided_after_lock=False))


def test_references_held_inside_one_another_set_the_role_once_and_check_where_asked(
        session, org):
    """A block inside another that skips the checks sets nothing more where it may skip
    them too (a chunk's outcomes and its cases under one setting), has its statements
    checked where it may not, and leaves the outer block skipping them; after both, the
    transaction's inserts are checked again."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no session_replication_role")
    run, cases = january(session)
    from engine.models import Outcome

    def role():
        return session.execute(text("SHOW session_replication_role")).scalar()

    statements_run = []
    from sqlalchemy import event

    def seen(conn, cursor, statement, *args):
        if "session_replication_role" in statement and statement.startswith("SET"):
            statements_run.append(statement)

    event.listen(session.get_bind(), "before_cursor_execute", seen)
    try:
        with bulk.references_held(session, Outcome.__table__, allowed=True):
            assert role() == "replica"
            with bulk.references_held(session, FlagCase.__table__, allowed=True):
                assert role() == "replica"
            assert len(statements_run) == 1  # the inner block set nothing
            with bulk.references_held(session, FlagCase.__table__, allowed=False):
                assert role() == "origin"
                with pytest.raises(IntegrityError), session.begin_nested():
                    session.execute(insert(FlagCase).values(
                        outcome_id=10**9, run_id=run.id, period_id=run.period_id,
                        employee_id=cases[0].employee_id, rule_key="x.y", severity="high",
                        holds=False, status="open", decided_after_lock=False))
            assert role() == "replica"
        assert role() == "origin"
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", seen)


def test_a_chunk_of_outcomes_keeps_its_references_whichever_way_it_is_written(session, org):
    """engine.chunks._write_chunk: outcomes of the chunk's employees are stored (on
    PostgreSQL without a key check a row, their employees locked once each); one of an
    employee gone since its facts were read is refused by the key, as before; and the
    transaction's later inserts are checked again."""
    from engine import chunks

    run, _ = january(session)
    ids = sorted(session.scalars(select(Outcome.employee_id).where(Outcome.run_id == run.id)))

    def line(employee_id):
        return {"employee_id": employee_id, "rule_key": "x.y", "kind": "bonus",
                "amount": Decimal("1.00"), "currency": "CNY", "value": None,
                "status": "payable", "explanation": {"rule": "x"}}

    chunks._write_chunk(session, run, 7, [line(ids[0]), line(ids[-1])], ids[0], ids[-1], [])
    assert session.scalar(select(func.count()).select_from(Outcome).where(
        Outcome.run_id == run.id, Outcome.chunk == 7)) == 2
    gone = ids[-1] + 1000
    # the COPY goes through the driver, whose own error it raises
    with pytest.raises((IntegrityError, psycopg.errors.IntegrityError)), \
            session.begin_nested():
        chunks._write_chunk(session, run, 8, [line(ids[0]), line(gone)], ids[0], gone, [])
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(insert(Outcome).values(run_id=run.id, employee_id=gone, rule_key="x",
                                               kind="bonus", status="payable"))


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


def test_decide_raises_the_refusal_its_predicate_gives(session, org):
    """decision_refusal says before a decision why it would be refused (the back office
    disables its button with it); decide raises the same error."""
    run, cases = january(session)

    def refused_alike(case_id: int) -> None:
        refusal = compliance.decision_refusal(session, session.get(FlagCase, case_id))
        assert refusal is not None
        with pytest.raises(LaurelError) as raised:
            compliance.decide(session, case_id, "dismissed", "fine", "cat@x.com")
        session.rollback()
        assert type(raised.value) is type(refusal) and str(raised.value) == str(refusal)

    refused_alike(cases[0].id)  # open: not in review yet
    compliance.assign(session, [cases[0].id], "cat@x.com", "cat@x.com")
    session.commit()
    assert compliance.decision_refusal(session, cases[0]) is None
    compliance.decide(session, cases[0].id, "dismissed", "fine", "cat@x.com")
    session.commit()
    refused_alike(cases[0].id)  # decided already


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
    with pytest.raises(LaurelError, match=r"2 flag\(s\) still open .*lock with open flags"):
        lifecycle.lock(session, run.id, "bob@x.com")
    lifecycle.lock(session, run.id, "bob@x.com", open_flags_reason="reviewed after payroll")
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "lock")).one()
    assert entry.after["open_flags"] == [c.id for c in cases]
    assert entry.after["open_flags_reason"] == "reviewed after payroll"
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
    lifecycle.lock(session, run.id, "bob@x.com", open_flags_reason="later")
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
    again = quarter(session, "2026-Q1")  # a new run starts it again: the record carries over
    session.refresh(pip)
    assert (pip.status, pip.run_id) == ("proposed", again.id)
    lifecycle.approve(session, again.id, "bob@x.com")
    session.commit()
    active = session.scalars(select(Pip)).one()
    assert (active.id, active.status, active.run_id) == (pip.id, "active", again.id)
    assert run.id != again.id
    assert session.scalar(select(AuditLog.summary).where(AuditLog.entity == "pip")) == (
        f"PIP {pip.id} carried over to run {again.id} (proposed)")


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


def test_assign_refuses_nothing_chosen_and_a_flag_no_longer_raised(session, org):
    run, cases = january(session)
    with pytest.raises(LaurelError, match="choose at least one flag"):
        compliance.assign(session, [], "", "cat@x.com")
    with pytest.raises(LaurelError, match="choose a compliance officer"):
        compliance.assign(session, [cases[0].id], " ", "cat@x.com")
    with pytest.raises(LaurelError, match="has no name"):
        compliance.add_note(session, cases[0].id, "cat@x.com", content=b"x")
    import_results(session, "fix.csv", data=b"period,employee_code,max_discount_pct\n"
                   b"2026-01,A1,0.05\n")
    again = runs.start_run(session, "2026-01", actor="ann@x.com").run  # discards the first
    session.commit()
    session.refresh(cases[0])
    assert (cases[0].status, cases[0].run_id) == ("cleared", again.id)
    with pytest.raises(LaurelError, match="cleared: it cannot be assigned"):
        compliance.assign(session, [cases[0].id], "cat@x.com", "cat@x.com")
    assert compliance.assign(session, [cases[1].id], "cat@x.com", "cat@x.com")


# --- decisions survive re-runs ------------------------------------------------------------

RERUN_EMPLOYEES = EMPLOYEES + """P1,Pam,p1@x.com,South,S,S1,,2020-01-01,mature
P2,Pat,p2@x.com,South,S,S1,,2020-01-01,mature
P3,Pia,p3@x.com,South,S,S1,,2020-01-01,mature
P4,Poe,p4@x.com,South,S,S1,,2020-01-01,mature
"""


def money_lines(session, run, code):
    st = statements.statement(session, run, code)
    return sorted((line.rule_key, line.amount, line.status) for line in st.lines
                  if line.amount is not None)


def test_a_new_run_keeps_every_decision_on_the_flags_of_its_period(session, org, monkeypatch):
    import_employees(session, "e.csv", data=RERUN_EMPLOYEES.encode())
    import_results(session, "p.csv", data=(
        b"period,employee_code,quota,revenue_new,revenue_existing,false_ad_complaints\n"
        + b"".join(f"2026-01,{c},100000,10000,90000,1\n".encode()
                   for c in ("P1", "P2", "P3", "P4"))))
    session.commit()
    first, _ = january(session)
    case = {c.employee.code: c for c in session.scalars(select(FlagCase).where(
        FlagCase.rule_key == "compliance.false_advertising")) if c.employee.code != "A1"}
    compliance.assign(session, [case[c].id for c in ("P1", "P2", "P3")], "cat@x.com",
                      "cat@x.com")
    compliance.add_note(session, case["P1"].id, "cat@x.com", "customer letters",
                        filename="letters.pdf", content=b"%PDF", content_type="text/plain")
    compliance.decide(session, case["P1"].id, "confirmed", "claims were false", "cat@x.com")
    compliance.decide(session, case["P2"].id, "dismissed", "complaint withdrawn", "cat@x.com")
    lifecycle.add_adjustment(session, first.id, "P4", "250", "travel", "ann@x.com")
    session.commit()
    before = {c: money_lines(session, first, c) for c in ("P1", "P2", "P3", "P4")}
    assert {s for _k, _a, s in before["P1"]} == {"forfeited"}
    assert {s for _k, _a, s in before["P2"]} == {"payable"}
    assert {s for _k, _a, s in before["P3"]} == {"held"}
    assert {s for k, _a, s in before["P4"] if k != "adjustment"} == {"held"}
    # P4's complaint was a data error: the new run no longer raises the flag
    import_results(session, "fix.csv", data=b"period,employee_code,false_ad_complaints\n"
                   b"2026-01,P4,0\n")
    second = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    after = {c: money_lines(session, second, c) for c in ("P1", "P2", "P3", "P4")}
    # the same money in the same state, with no second review ...
    assert after["P1"] == before["P1"] and after["P2"] == before["P2"]
    assert after["P3"] == before["P3"]
    # ... and P4's payouts are payable, its adjustment carried over
    assert after["P4"] == sorted((k, a, "payable") for k, a, _s in before["P4"])
    for c in case.values():
        session.refresh(c)
    assert {code: (c.status, c.run_id) for code, c in case.items()} == {
        "P1": ("confirmed", second.id), "P2": ("dismissed", second.id),
        "P3": ("in_review", second.id), "P4": ("cleared", second.id)}
    assert [n.filename for n in case["P1"].notes] == ["letters.pdf"]
    assert case["P3"].assignee == "cat@x.com"
    assert session.scalars(select(FlagCase)).all().__len__() == len(case) + 2  # A1's two
    queue = compliance.queue(session, employee_code="P1")
    assert [c.id for c in queue] == [case["P1"].id]
    # the change of status is in the case's history; the cases carried over as they were
    # are counted, by status, in the run's entry
    carried = session.scalars(select(AuditLog.summary).where(
        AuditLog.entity == "flag", AuditLog.action.in_(("carry", "clear")),
        AuditLog.entity_id.in_([str(c.id) for c in case.values()]))
        .order_by(AuditLog.entity_id)).all()
    assert carried == [f"flag {case['P4'].id} (compliance.false_advertising) no longer "
                       f"raised: run {second.id} cleared it"]
    entry = session.scalar(select(AuditLog.after).where(
        AuditLog.entity == "run", AuditLog.action == "run",
        AuditLog.entity_id == str(second.id)))
    a1 = [c.status for c in session.scalars(
        select(FlagCase).where(FlagCase.employee.has(code="A1")))]
    assert entry["flags"]["carried"] == {
        s: n for s in FLAG_STATUSES
        if (n := [case[p].status for p in ("P1", "P2", "P3")].count(s) + a1.count(s))}
    assert entry["flags"]["cleared"] == 1 and "opened" not in entry["flags"]
    assert entry["flags"]["from_runs"] == [first.id]
    # what the run carried: the period's cases up to the highest before it that it raises
    up_to = entry["flags"]["cases_before"]
    assert sorted(c.id for c in session.scalars(select(FlagCase).where(
        FlagCase.period_id == second.period_id, FlagCase.id <= up_to,
        FlagCase.status != "cleared"))) == sorted(
        [case["P1"].id, case["P2"].id, case["P3"].id] + [c.id for c in session.scalars(
            select(FlagCase).where(FlagCase.employee.has(code="A1")))])
    close = lifecycle.checklist(session, second)
    assert close.carried["runs"] == [first.id] and len(close.carried["adjustments"]) == 1
    assert close.carried["flags"] == {"carried": 3 + len(a1), "reopened": 0, "cleared": 1,
                                      "opened": 0}
    assert [c.id for c in close.open_flags] == sorted(
        [case["P3"].id] + [c.id for c in session.scalars(
            select(FlagCase).where(FlagCase.employee.has(code="A1")))])
    assert close.open_flag_count == len(close.open_flags) and close.changes_compared
    # a bounded page: the first open flags, the whole count; a big run is compared on
    # its own page
    few = lifecycle.checklist(session, second, most=1)
    assert [c.id for c in few.open_flags] == [c.id for c in close.open_flags[:1]]
    assert few.open_flag_count == close.open_flag_count > 1
    monkeypatch.setattr(lifecycle, "COMPARED_ON_PAGE", second.employee_count - 1)
    big = lifecycle.checklist(session, second)
    assert not big.changes_compared and big.changes == {} and big.previous == close.previous
    # raised again by a third run, P4's case reopens (it was never decided)
    import_results(session, "back.csv", data=b"period,employee_code,false_ad_complaints\n"
                   b"2026-01,P4,2\n")
    third = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    session.refresh(case["P4"])
    assert (case["P4"].status, case["P4"].run_id) == ("open", third.id)
    assert money_lines(session, third, "P1") == before["P1"]


@contextlib.contextmanager
def _upgraded(tmp_path, base, sql):
    """A database at migration ``base`` with these rows, upgraded to head: its session."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from engine import db

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(db.PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    try:
        cfg.attributes["engine"] = db.get_engine(url)
        command.upgrade(cfg, base)
        with db.get_engine(url).begin() as conn:
            for statement in sql:
                conn.execute(text(statement))
        command.upgrade(cfg, "head")
        with db.session_scope(url) as s:
            yield s
    finally:
        db._engines.pop(url).dispose()


def test_the_upgrade_merges_the_cases_of_one_flag_in_one_period(tmp_path):
    from engine.models import FlagNote

    sql = [
        "INSERT INTO period (id, code, kind, start, \"end\", status, results_version) VALUES "
        "(1, '2026-04', 'month', '2026-04-01', '2026-04-30', 'open', 0)",
        "INSERT INTO level (id, code, name, discount_authority) VALUES (1, 'S1', '', '0.05')",
        "INSERT INTO team (id, name, region) VALUES (1, 'North', 'N')",
        "INSERT INTO employee (id, code, name, email, team_id, level_id) "
        "VALUES (1, 'E0003', 'Eve', '', 1, 1)",
        "INSERT INTO run (id, period_id, status, ruleset_hash, started_by, employee_count) "
        "VALUES (5, 1, 'discarded', '', 'a@x.com', 1), (7, 1, 'calculated', '', 'a@x.com', 1)",
        "INSERT INTO outcome (id, run_id, employee_id, rule_key, kind, amount, currency, "
        "status, explanation) VALUES "
        "(1, 5, 1, 'compliance.false_advertising', 'flag', NULL, NULL, NULL, '{}'), "
        "(2, 5, 1, 'commission.tiered', 'commission', '4828.71', 'CNY', 'forfeited', "
        "'{\"held_by\": [\"compliance.false_advertising\"]}'), "
        "(3, 7, 1, 'compliance.false_advertising', 'flag', NULL, NULL, NULL, '{}'), "
        "(4, 7, 1, 'commission.tiered', 'commission', '4828.71', 'CNY', 'held', "
        "'{\"held_by\": [\"compliance.false_advertising\"]}')",
        "INSERT INTO flag_case (id, outcome_id, run_id, employee_id, rule_key, holds, status, "
        "assignee, reason, decided_by, decided_after_lock) VALUES "
        "(2, 1, 5, 1, 'compliance.false_advertising', 1, 'confirmed', 'cat@x.com', "
        "'false claims', 'cat@x.com', 0), "
        "(4, 3, 7, 1, 'compliance.false_advertising', 1, 'open', NULL, NULL, NULL, 0)",
        "INSERT INTO flag_note (id, case_id, author, text, created_at) "
        "VALUES (1, 2, 'cat@x.com', 'letters', '2026-05-02 10:00:00')",
    ]
    with _upgraded(tmp_path, "0010", sql) as s:
        case = s.scalars(select(FlagCase)).one()
        assert (case.id, case.run_id, case.period_id, case.status, case.decision,
                case.reason, case.former_ids) == (
            4, 7, 1, "confirmed", "confirmed", "false claims", [2])
        assert s.scalars(select(FlagNote.case_id)).all() == [4]
        assert s.get(Outcome, 4).status == "forfeited"
        assert "flags 2 of earlier runs merged" in s.scalars(
            select(AuditLog.summary).where(AuditLog.action == "merge")).one()


def test_the_upgrade_clears_cases_left_open_on_discarded_runs(tmp_path):
    # Run 5 raised two flags (one decided) and was discarded by run 7, which raised only
    # the first; run 9 of May was discarded with no newer run.
    sql = [
        "INSERT INTO period (id, code, kind, start, \"end\", status, results_version) VALUES "
        "(1, '2026-04', 'month', '2026-04-01', '2026-04-30', 'open', 0), "
        "(2, '2026-05', 'month', '2026-05-01', '2026-05-31', 'open', 0)",
        "INSERT INTO level (id, code, name, discount_authority) VALUES (1, 'S1', '', '0.05')",
        "INSERT INTO team (id, name, region) VALUES (1, 'North', 'N')",
        "INSERT INTO employee (id, code, name, email, team_id, level_id) "
        "VALUES (1, 'E0003', 'Eve', '', 1, 1)",
        "INSERT INTO run (id, period_id, status, ruleset_hash, started_by, employee_count) "
        "VALUES (5, 1, 'discarded', '', 'a@x.com', 1), (7, 1, 'locked', '', 'a@x.com', 1), "
        "(9, 2, 'discarded', '', 'a@x.com', 1)",
        "INSERT INTO outcome (id, run_id, employee_id, rule_key, kind, status, explanation) "
        "VALUES (1, 5, 1, 'f.a', 'flag', NULL, '{}'), (2, 5, 1, 'f.b', 'flag', NULL, '{}'), "
        "(3, 7, 1, 'f.a', 'flag', NULL, '{}'), (4, 9, 1, 'f.a', 'flag', NULL, '{}')",
        "INSERT INTO flag_case (id, outcome_id, run_id, period_id, employee_id, rule_key, "
        "holds, status, decision, decided_after_lock) VALUES "
        "(1, 3, 7, 1, 1, 'f.a', 1, 'open', NULL, 0), "
        "(2, 2, 5, 1, 1, 'f.b', 1, 'in_review', NULL, 0), "
        "(3, 1, 5, 1, 1, 'f.c', 1, 'confirmed', 'confirmed', 0), "
        "(4, 4, 9, 2, 1, 'f.a', 1, 'open', NULL, 0)",
    ]
    with _upgraded(tmp_path, "0014", sql) as s:
        cases = {c.id: (c.status, c.run_id, c.decision) for c in s.scalars(select(FlagCase))}
        assert cases == {1: ("open", 7, None), 2: ("cleared", 7, None),
                         3: ("cleared", 7, "confirmed"), 4: ("open", 9, None)}
        assert s.scalars(select(AuditLog.summary).where(AuditLog.action == "clear")
                         .order_by(AuditLog.id)).all() == [
            "flag 2 (f.b) no longer raised: run 7 cleared it",
            "flag 3 (f.c) no longer raised: run 7 cleared it"]
        assert compliance.queue(s, status="in_review", include_discarded=True) == []
        # the runs' counts, counted by the upgrade (0025, then by rule in 0029): every
        # status of every rule of every run that holds a case
        kept = s.execute(select(FlagCount.run_id, FlagCount.status, FlagCount.rule_key,
                                FlagCount.cases)).all()
        assert len(kept) == 4 * len(FLAG_STATUSES)  # run 7: f.a, f.b, f.c; run 9: f.a
        assert {(r, st, k): n for r, st, k, n in kept if n} == {
            (7, "open", "f.a"): 1, (7, "cleared", "f.b"): 1, (7, "cleared", "f.c"): 1,
            (9, "open", "f.a"): 1}
        assert compliance.queue_count(s) == 3  # run 7's: run 9 is discarded


def test_a_diff_pairs_every_line_and_its_totals_are_the_runs_totals(session, org):
    run, cases = january(session)
    lifecycle.approve(session, run.id, "bob@x.com")
    lifecycle.lock(session, run.id, "bob@x.com", open_flags_reason="reviewed later")
    compliance.assign(session, [c.id for c in cases], "cat@x.com", "cat@x.com")
    for c in cases:
        compliance.decide(session, c.id, "dismissed", "cleared", "cat@x.com")
    session.commit()
    feb = runs.start_run(session, "2026-02", actor="ann@x.com").run
    lifecycle.add_adjustment(session, feb.id, "A1", "100", "fuel", "bob@x.com")
    lifecycle.add_adjustment(session, feb.id, "A1", "-40", "fuel returned", "bob@x.com")
    session.commit()
    released = [o for o in feb.outcomes if o.rule_key == "released_hold"]
    assert len(released) == 2  # two lines of one rule for one employee
    import_results(session, "feb.csv", data=b"period,employee_code,revenue_new\n"
                   b"2026-02,A1,30000\n")
    feb2 = runs.start_run(session, "2026-02", actor="ann@x.com").run
    session.commit()
    lifecycle.add_adjustment(session, feb2.id, "A1", "-40", "fuel returned", "bob@x.com")
    session.commit()
    for old, new in ((feb, feb2), (run, feb2), (run, feb)):
        rows = statements.diff_runs(session, old, new)
        before, after = (statements.run_totals(session, r) for r in (old, new))
        delta = statements.diff_totals(rows)
        assert delta == {k: after[k] - before[k] for k in after}, (old.id, new.id)
    rows = statements.diff_runs(session, feb, feb2)
    assert not [r for r in rows if r["rule_key"] == "released_hold"]  # both lines equal
    assert [(r["change"], r["after"]["amount"]) for r in rows
            if r["rule_key"] == "adjustment"] == [("added", Decimal("-40.00"))]
    across = statements.diff_runs(session, run, feb)
    assert len([r for r in across if r["rule_key"] == "released_hold"]) == 2
    table = statements.diff_file(session, run, feb, "csv").decode().splitlines()
    assert table[0] == ",".join(statements.DIFF_COLUMNS)
    assert len(table) == len(across) + 1


def test_the_overview_counts_every_team_of_the_period(session, org):
    import_employees(session, "z.csv", data=(EMPLOYEES + "Z1,Zoe,z1@x.com,West,W,S1,,"
                                             "2020-01-01,mature\n").encode())
    import_results(session, "q2.csv", data=(
        b"period,employee_code,quota,revenue_new,revenue_existing\n"
        b"2026-04,A1,100000,10000,50000\n2026-04,Z1,0,0,0\n"))
    session.commit()
    run = runs.start_run(session, "2026-Q2", actor="ann@x.com").run
    session.commit()
    view = statements.overview(session, run)
    assert view["by_team"]["West"] == Decimal("0.00")  # a team whose figures are all zero
    assert view["team_attainment"] == {"North": Decimal("0.6"), "West": None}
    assert view["team_members"] == {"North": 1, "West": 1}
    run.figures = None  # a run stored before runs kept their figures: rebuilt the same
    assert statements.overview(session, run)["team_attainment"] == view["team_attainment"]
    session.rollback()


def test_what_waits_for_hr_includes_pips_that_ended(session, org):
    import datetime as dt

    from engine.models import User
    from engine.waiting import what_waits

    run = quarter(session, "2026-Q1")
    lifecycle.approve(session, run.id, "bob@x.com")
    session.commit()
    hr = session.scalar(select(User).where(User.email == "hr@x.com"))
    during = {w.key: w.count for w in what_waits(session, hr, today=dt.date(2026, 5, 1))}
    after = {w.key: w for w in what_waits(session, hr, today=dt.date(2026, 7, 1))}
    assert during["pip_decisions"] == 0 and after["pip_decisions"].count == 1
    assert after["pip_decisions"].items[0]["code"] == "C1"
    assert after["runs_to_lock"].count == 1


def test_the_overview_reads_the_figures_stored_with_the_run(session, org):
    """The totals stored with a run equal the sums of its outcomes and adjustments, follow
    hold decisions and adjustments, and the overview reads them: it stays the same with
    every explanation emptied and the period's results deleted."""
    from sqlalchemy import delete, update

    from engine.models import Adjustment, ResultRow

    run, (discount, false_ad) = january(session)
    compliance.assign(session, [discount.id, false_ad.id], "cat@x.com", "cat@x.com")
    compliance.decide(session, discount.id, "dismissed", "authorised", "cat@x.com")
    compliance.decide(session, false_ad.id, "confirmed", "claims were false", "cat@x.com")
    lifecycle.add_adjustment(session, run.id, "B1", "-12.50", "returned goods", "bob@x.com")
    session.commit()
    view = statements.overview(session, run)
    sums = {s: Decimal("0.00") for s in statements.MONEY_STATUSES}
    held, counts = set(), {}
    for o in session.scalars(select(Outcome).where(Outcome.run_id == run.id)):
        counts[o.kind] = counts.get(o.kind, 0) + 1
        if o.amount is not None:
            sums[o.status] += o.amount
            held |= {o.employee_id} if o.status == "held" else set()
    for adj in session.scalars(select(Adjustment).where(Adjustment.run_id == run.id)):
        sums["payable"] += adj.amount
        counts["adjustment"] = counts.get("adjustment", 0) + 1  # a line of its kind
    assert sums["forfeited"] > 0 and view["by_status"] == sums
    assert view["total"] == sum(sums.values()) and view["holds"] == len(held)
    assert view["counts"] == counts and view["by_kind"]["adjustment"] == Decimal("-12.50")
    assert sum(view["by_team"].values()) == view["total"]
    assert sum(b["count"] for b in view["distribution"]) == 3
    session.execute(update(Outcome).where(Outcome.run_id == run.id).values(explanation={}))
    session.execute(delete(ResultRow))
    session.flush()
    session.expire_all()
    assert statements.overview(session, session.get(Run, run.id)) == view
    # the figures kept, not the outcomes: amounts changed behind its back do not show...
    session.execute(update(Outcome).where(Outcome.run_id == run.id,
                                          Outcome.amount.is_not(None)).values(amount=1))
    assert statements.overview(session, session.get(Run, run.id)) == view
    # ...until they are worked out again (as adding an adjustment does)
    statements.store_totals(session, session.get(Run, run.id))
    assert statements.overview(session, session.get(Run, run.id))["total"] != view["total"]
    session.rollback()


def test_the_overview_of_many_teams_shows_the_highest_and_lowest(session, org):
    """Past twice TEAMS_SHOWN teams, the overview keeps the highest and lowest teams by
    attainment and sums all of them up in a distribution."""
    n = 2 * statements.TEAMS_SHOWN + 3
    emps = "code,name,email,team,region,level,manager_code,hire_date,team_stage\n" + "".join(
        f"T{i:03d},Rep {i},,Team {i:03d},N,S1,,2020-01-01,growth\n" for i in range(n))
    results = "period,employee_code,quota,revenue_new,revenue_existing\n" + "".join(
        f"2026-05,T{i:03d},100000,{1000 * i},50000\n" for i in range(n))
    import_employees(session, "many.csv", data=emps.encode())
    import_results(session, "many-r.csv", data=results.encode())
    session.commit()
    run = runs.start_run(session, "2026-05", actor="ann@x.com").run
    session.commit()
    view = statements.overview(session, run)
    shown = list(view["team_attainment"])
    assert view["summarised"] and view["teams"] == n
    assert len(shown) == 2 * statements.TEAMS_SHOWN == len(view["by_team"])
    assert shown[0] == f"Team {n - 1:03d}" and shown[-1] == "Team 000"
    assert f"Team {statements.TEAMS_SHOWN + 1:03d}" not in shown
    assert sum(b["count"] for b in view["attainment_distribution"]) == n
    # what the page reads is kept small (Run.summary): the same overview as from the
    # whole figures, and as from the period's facts for a run that kept no teams
    assert len(run.summary["teams"]["shown"]) == 2 * statements.TEAMS_SHOWN
    run.summary = None
    assert statements.overview(session, run) == view
    run.figures = {k: v for k, v in run.figures.items() if k != "teams"}
    assert statements.overview(session, run) == view
    session.rollback()


def test_the_queue_pages_in_the_database(session, org):
    january(session)
    everything = compliance.queue(session)
    assert compliance.queue_count(session) == len(everything) >= 2
    pages = [compliance.queue(session, limit=1, offset=i) for i in range(len(everything))]
    assert [p[0].id for p in pages] == [c.id for c in everything]
    assert compliance.queue(session, limit=1, offset=len(everything)) == []
    assert compliance.queue_count(session, employee_code="B1") == 0
# --- a reopened period pays a released hold once ----------------------------------------------


def _locked_january_dismissed_after(session):
    """January locked with A1's pay held by two flags, both dismissed after the lock."""
    run, cases = january(session)
    held = statements.statement(session, run, "A1").totals["held"]
    lifecycle.approve(session, run.id, "bob@x.com")
    lifecycle.lock(session, run.id, "bob@x.com", open_flags_reason="after payroll")
    compliance.assign(session, [c.id for c in cases], "cat@x.com", "cat@x.com")
    for c in cases:
        compliance.decide(session, c.id, "dismissed", "cleared", "cat@x.com")
    session.commit()
    return run, cases, held


def _rerun(session, code, reopen=False):
    if reopen:
        lifecycle.reopen_period(session, code, "hr@x.com", "late results")
    run = runs.start_run(session, code, actor="ann@x.com").run
    session.commit()
    return run


def _paid(session, run, code="A1"):
    """A1's payable money in the run, split into its own lines and released holds."""
    lines = statements.statement(session, run, code).lines
    own = sum(x.amount for x in lines if x.status == "payable" and x.rule_key != "released_hold")
    return own, sum(x.amount for x in lines if x.rule_key == "released_hold")


def test_released_hold_paid_elsewhere_is_not_paid_again_by_a_reopened_period(session, org):
    january_run, cases, held = _locked_january_dismissed_after(session)
    february = _rerun(session, "2026-02")
    assert _paid(session, february)[1] == held
    lifecycle.approve(session, february.id, "bob@x.com")
    lifecycle.lock(session, february.id, "bob@x.com")
    session.commit()
    again = _rerun(session, "2026-01", reopen=True)
    # February paid the release: the new January run keeps the payout held, and says where
    # it is paid
    assert _paid(session, again) == (0, 0)
    st = statements.statement(session, again, "A1")
    assert st.totals["held"] == held
    held_lines = [x for x in st.lines if x.status == "held"]
    assert held_lines and all(x.release and x.release["run_id"] == february.id
                              for x in held_lines)
    lifecycle.approve(session, again.id, "bob@x.com")
    lifecycle.lock(session, again.id, "bob@x.com")
    session.commit()
    march = _rerun(session, "2026-03")
    assert _paid(session, march) == (_paid(session, march)[0], 0)


def test_released_hold_follows_the_run_that_pays_it(session, org):
    january_run, cases, held = _locked_january_dismissed_after(session)
    february = _rerun(session, "2026-02")  # calculated, pays the release
    again = _rerun(session, "2026-01", reopen=True)
    assert _paid(session, again) == (0, 0)
    february2 = _rerun(session, "2026-02")  # discards the first February: pays it once more
    assert _paid(session, february2)[1] == held
    assert session.get(Run, february.id).status == "discarded"
    again2 = _rerun(session, "2026-01")  # January again: February's live run still pays it
    assert _paid(session, again2) == (0, 0)
    assert (_paid(session, january_run)[0] + _paid(session, again2)[0]
            + _paid(session, february2)[1]) == held


def test_reopened_period_pays_the_release_itself_before_the_next_period(session, org):
    january_run, cases, held = _locked_january_dismissed_after(session)
    again = _rerun(session, "2026-01", reopen=True)  # nobody paid it yet: January does
    assert _paid(session, again) == (held, 0)
    february = _rerun(session, "2026-02")
    assert _paid(session, february)[1] == 0
    again2 = _rerun(session, "2026-01")  # replaces the January run that paid it: pays it
    assert _paid(session, again2) == (held, 0)
    february2 = _rerun(session, "2026-02")
    assert _paid(session, february2)[1] == 0
    lifecycle.approve(session, again2.id, "bob@x.com")
    lifecycle.lock(session, again2.id, "bob@x.com")
    session.commit()
    assert _paid(session, _rerun(session, "2026-02"))[1] == 0
    assert _paid(session, _rerun(session, "2026-03"))[1] == 0


def test_forfeit_after_lock_stays_forfeited_in_a_reopened_period(session, org):
    test_confirmed_after_lock_pays_nothing(session, org)
    again = _rerun(session, "2026-01", reopen=True)
    totals = statements.statement(session, again, "A1").totals
    assert totals["payable"] == 0 and totals["held"] == 0 and totals["forfeited"] > 0
    assert _paid(session, _rerun(session, "2026-02"))[1] == 0


def test_adjustment_of_a_locked_run_is_not_paid_again_by_a_reopened_period(session, org):
    run, cases = january(session)
    lifecycle.add_adjustment(session, run.id, "B1", "1,500", "missed deal", "ann@x.com")
    second = _rerun(session, "2026-01")  # carried once to the run that replaces it
    adjustments = [x for x in statements.statement(session, second, "B1").lines
                   if x.rule_key == "adjustment"]
    assert [x.amount for x in adjustments] == [Decimal("1500.00")]
    lifecycle.approve(session, second.id, "bob@x.com")
    lifecycle.lock(session, second.id, "bob@x.com", open_flags_reason="later")
    session.commit()
    again = _rerun(session, "2026-01", reopen=True)  # the locked run paid it: not again
    assert not [x for x in statements.statement(session, again, "B1").lines
                if x.rule_key == "adjustment"]
    assert session.get(Run, second.id).status == "locked"


# --- the counts kept with the runs (FlagCount) ----------------------------------------------


def counts_agree(session):
    """The counts kept with the runs are the cases as they are, and the queue, the
    checklist and the compliance officer's waiting list read them right."""
    session.expire_all()
    kept_by_rule = {(r, s, k, v): n for r, s, k, v, n in session.execute(
        select(FlagCount.run_id, FlagCount.status, FlagCount.rule_key, FlagCount.severity,
               FlagCount.cases)) if n}
    real_by_rule = {(r, s, k, v or ""): n for r, s, k, v, n in session.execute(
        select(FlagCase.run_id, FlagCase.status, FlagCase.rule_key, FlagCase.severity,
               func.count())
        .group_by(FlagCase.run_id, FlagCase.status, FlagCase.rule_key, FlagCase.severity))}
    assert kept_by_rule == real_by_rule and real_by_rule
    kept: dict[tuple[int, str], int] = {}
    for (r, s, _, _), n in kept_by_rule.items():
        kept[(r, s)] = kept.get((r, s), 0) + n
    rules = {k for _, _, k, _ in real_by_rule}
    severities = {v for _, _, _, v in real_by_rule if v}
    for status in (None, *FLAG_STATUSES):
        for rule_key, severity in [(None, None), *((k, None) for k in rules),
                                   *((None, v) for v in severities),
                                   *((k, v) for k in rules for v in severities)]:
            counted = session.scalar(select(func.count()).select_from(
                compliance.queue_query(status=status, rule_key=rule_key,
                                       severity=severity).subquery()))
            assert compliance.queue_count(session, status=status, rule_key=rule_key,
                                          severity=severity) == counted
    assert compliance.queue_count(session, period_code="2026-01") == session.scalar(
        select(func.count()).select_from(compliance.queue_query().where(
            FlagCase.period_id == select(Period.id).where(Period.code == "2026-01")
            .scalar_subquery()).subquery()))
    for run in session.scalars(select(Run).where(Run.status.in_(LIVE_RUN))):
        close = lifecycle.checklist(session, run)
        assert close.open_flag_count == len(lifecycle.open_flags(session, run))
    waiting = {w.key: w.count for w in what_waits(session, get_user(session, "cat@x.com"))}
    assert waiting["flags_unassigned"] == compliance.queue_count(session, status="open")
    return kept


def test_the_counts_follow_decisions_reruns_locks_and_reopens(session, org):
    run, (discount, false_ad) = january(session)
    first = counts_agree(session)
    assert first == {(run.id, "open"): 2}
    # the run's entry counts the cases it opened and says which: the period's in a range
    opened = session.scalar(select(AuditLog.after).where(
        AuditLog.entity == "run", AuditLog.entity_id == str(run.id)))["flags"]["opened"]
    listed = session.scalars(select(FlagCase.id).where(
        FlagCase.period_id == run.period_id,
        FlagCase.id.between(opened["first_id"], opened["last_id"])).order_by(FlagCase.id))
    assert opened["count"] == 2 and list(listed) == sorted([discount.id, false_ad.id])
    compliance.assign(session, [discount.id, false_ad.id], "cat@x.com", "cat@x.com")
    compliance.decide(session, discount.id, "dismissed", "authorised", "cat@x.com")
    session.commit()
    assert counts_agree(session) == {(run.id, "in_review"): 1, (run.id, "dismissed"): 1}
    # a decision that does not commit moves nothing
    compliance.decide(session, false_ad.id, "confirmed", "false claims", "cat@x.com")
    session.rollback()
    assert counts_agree(session) == {(run.id, "in_review"): 1, (run.id, "dismissed"): 1}
    # a new run after the decisions: the false-advertising flag is no longer raised
    import_results(session, "fix.csv", data=b"period,employee_code,false_ad_complaints\n"
                   b"2026-01,A1,0\n")
    second = _rerun(session, "2026-01")
    assert counts_agree(session) == {(second.id, "dismissed"): 1, (second.id, "cleared"): 1}
    # raised again: it returns to review (assigned), the dismissed one stays dismissed
    import_results(session, "back.csv", data=b"period,employee_code,false_ad_complaints\n"
                   b"2026-01,A1,1\n")
    third = _rerun(session, "2026-01")
    assert counts_agree(session) == {(third.id, "dismissed"): 1, (third.id, "in_review"): 1}
    # locked with the flag in review, decided after the lock; the period reopened and run
    # again: the locked run keeps no case, the new one has both
    lifecycle.approve(session, third.id, "bob@x.com")
    lifecycle.lock(session, third.id, "bob@x.com", open_flags_reason="after payroll")
    compliance.decide(session, false_ad.id, "dismissed", "withdrawn", "cat@x.com")
    session.commit()
    assert counts_agree(session) == {(third.id, "dismissed"): 2}
    fourth = _rerun(session, "2026-01", reopen=True)
    assert counts_agree(session) == {(fourth.id, "dismissed"): 2}
    assert compliance.queue_count(session) == 2


def test_two_decisions_at_once_count_once_each(db_url, session, org, monkeypatch):
    from tests.test_run_races import Meanwhile, during

    import_results(session, "b1.csv", data=b"period,employee_code,max_discount_pct,"
                   b"false_ad_complaints\n2026-01,B1,0.09,1\n")  # B1 has A1's two flags too
    run, cases = january(session)
    compliance.assign(session, [c.id for c in cases], "cat@x.com", "cat@x.com")
    session.commit()
    a1, b1 = ([c for c in cases if c.employee.code == code] for code in ("A1", "B1"))
    # one flag decided by two officers at once: the second waits, then is refused
    same = Meanwhile(db_url, lambda s: compliance.decide(s, a1[0].id, "dismissed", "fine",
                                                         "dan@x.com"))
    during(monkeypatch, compliance, "count_move", same)
    compliance.decide(session, a1[0].id, "confirmed", "beyond authority", "cat@x.com")
    session.commit()
    _result, error = same.outcome()
    assert isinstance(error, LaurelError) and "is confirmed" in str(error)
    assert counts_agree(session) == {(run.id, "confirmed"): 1, (run.id, "in_review"): 3}
    assert session.scalars(select(AuditLog.after).where(AuditLog.action == "decide")).all() \
        == [{"status": "confirmed", "reason": "beyond authority", "after_lock": False}]
    # two flags of the run decided at once: both counted, both move the run's figures
    monkeypatch.undo()
    other = Meanwhile(db_url, lambda s: compliance.decide(s, b1[1].id, "dismissed", "ok",
                                                          "dan@x.com"))
    during(monkeypatch, compliance, "count_move", other)
    compliance.decide(session, b1[0].id, "confirmed", "beyond authority", "cat@x.com")
    session.commit()
    assert other.outcome() == (other.result, None)
    assert counts_agree(session) == {(run.id, "confirmed"): 2, (run.id, "dismissed"): 1,
                                     (run.id, "in_review"): 1}
    session.refresh(run)
    assert run.figures["totals"] == statements.outcome_totals(session, run)
