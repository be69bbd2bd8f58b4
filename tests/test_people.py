"""The people being paid, in the engine: statements in their words, the estimator, an
inquiry from question to adjustment, a review cycle feeding a rating, one-to-ones, and
the leadership analytics against hand sums on the demo organisation."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal, localcontext

import pytest
from sqlalchemy import select

from engine import analytics, estimate, inquiries, lifecycle, plain, portal, reviews, talks
from engine.demo import dated_file, demo_files, load_demo
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.imports import import_employees, import_results
from engine.models import Adjustment, AuditLog, Employee, Outcome, Period, Pip, Run, User
from engine.runs import start_run
from engine.users import create_user

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

ANALYST, ANALYST2 = "analyst@example.com", "analyst2@example.com"


def small(session) -> None:
    """The back office's small organisation, Ned (N2) a sales rep, and the staff."""
    import_employees(session, "e.csv", data=support.EMPLOYEES_CSV)
    import_results(session, "r.csv", data=support.RESULTS_CSV)
    north = session.scalar(select(Employee.team_id).where(Employee.code == "N1"))
    for email, role in ((ANALYST, "comp_analyst"), (ANALYST2, "comp_analyst"),
                        ("hr@example.com", "hr_admin"), ("manager@example.com",
                                                         "sales_manager")):
        session.add(User(email=email, name=email, role=role, password_hash="x",
                         team_id=north if role == "sales_manager" else None))
    create_user(session, "ned@example.com", None, "sales_rep")
    create_user(session, "sue@example.com", None, "sales_rep")
    session.flush()


def lines_of(session, run: Run, code: str, lang: str = "en") -> dict[str, list[str]]:
    st = plain.statement(session, run, code, lang)
    return {line.rule_key: line.plain for line in st.lines}


# --- statements in the payee's words --------------------------------------------------------


@pytest.fixture()
def demo(session):
    load_demo(session)
    session.commit()
    return session


def run_of(session, code: str) -> Run:
    run = session.scalar(select(Run).join(Period).where(Period.code == code,
                                                        Run.status != "discarded"))
    return run or start_run(session, code, actor="analyst@demo.laurel").run


def test_each_action_type_reads_in_the_payees_words(demo) -> None:
    s = demo
    jan = lines_of(s, run_of(s, "2026-01"), "E0002")  # attainment exactly 80%
    assert jan["commission.tiered"] == [
        "4% of Total revenue CN¥44,000 = CN¥1,760: Attainment 80% is in tier 2 "
        "(80% to below 100%)",
        "CN¥11,000 more Total revenue this month reaches the 5% tier."]
    assert jan["commission.new_logo"][0].startswith("1% of Revenue from new customers")
    q1 = run_of(s, "2026-Q1")
    star = lines_of(s, q1, "E0004")
    # a population rule: a rank and the cut-off, never the raw counters
    assert star["bonus.service_star"] == [
        "A fixed bonus of CN¥2,000",
        "because Customer satisfaction 99: rank 1 of 59; the top 10% are ranks 1 to 6"]
    assert star["bonus.startup_new_customer"][0] == \
        "New effective customers 16 × CN¥300 = CN¥4,800"
    assert star["rating.quarterly"][0] == "Rating: B"
    assert lines_of(s, q1, "E0019")["bonus.service_star"][1].endswith(
        "rank 6 of 59; the top 10% are ranks 1 to 6")  # tied at the boundary
    assert lines_of(s, q1, "E0014")["pip.trigger"] == [
        "A performance improvement plan from Apr 1, 2026 to Jun 30, 2026, target: monthly "
        "Attainment ≥ 80%", "because PIPs running is 0; rating of this period is D"]
    held = lines_of(s, run_of(s, "2026-03"), "E0003")
    assert held["commission.tiered"][-1] == \
        "held until compliance has reviewed: Discount beyond authority"
    assert held["compliance.discount_authority"] == [
        "Flag: high", "because Largest discount granted 7% > discount authority of the "
        "level 5%"]
    assert lines_of(s, run_of(s, "2026-02"), "E0017")["commission.tiered"] == [
        "Tiered commission could not be worked out: Attainment is missing for this period"]
    june = run_of(s, "2026-06")
    champion = lines_of(s, june, "E0005")["award.monthly_champion"]
    assert champion[0] == "Award: CEO lunch"
    assert "is the highest in the company (rank 1 of 59)" in champion[1]
    top = lines_of(s, june, "E0005")["commission.tiered"]
    assert top[-1] == "This is the top tier." or "reaches the" in top[-1]
    zh = lines_of(s, run_of(s, "2026-01"), "E0002", "zh")
    assert zh["commission.tiered"][1] == "本月总收入再增加 ¥11,000 即可达到 5% 档。"
    assert "排名第 1" in lines_of(s, q1, "E0004", "zh")["bonus.service_star"][1]
    # the technical explanation stays for the analyst
    st = plain.statement(s, q1, "E0004")
    line = next(x for x in st.lines if x.rule_key == "bonus.service_star")
    assert line.explanation["facts"]["satisfaction (defined, N)"] == "59"
    assert any("strictly higher" in w for w in line.words)


def test_the_demo_hire_and_transfer_are_dated_and_the_allowance_prorated(demo) -> None:
    """engine.demo.DATED: E0053 hired on 2026-01-12 gets 300.00 x 20/31 = 193.55 in
    January, E0013 (employed all month) 300.00; E0043 moves on 2026-05-16 and is out of
    nothing; E0044 leaves on 2026-10-15."""
    from engine import assignments, periods

    s = demo
    jan = run_of(s, "2026-01")
    assert lines_of(s, jan, "E0053")["bonus.demo_field_allowance"][1] == \
        "Employed 20 of the 31 days of the period: CN¥193.55 paid for them"
    paid = {x["employee_code"]: x for x in lifecycle.export_lines(s, jan)
            if x["rule_key"] == "bonus.demo_field_allowance"}
    assert paid["E0053"]["amount"] == Decimal("193.55") and paid["E0013"]["amount"] == 300
    assert paid["E0053"]["note"].startswith("prorated for 20 of 31 days")
    ids = {c: s.scalar(select(Employee.id).where(Employee.code == c))
           for c in ("E0043", "E0044")}
    may = assignments.presences(s, periods.get(s, "2026-05"))[ids["E0043"]]
    assert sorted(may.teams.values()) == [15, 16] and may.active_days == 31
    nov = periods.require(s, "2026-11")
    assert assignments.in_period(s, nov, sorted(ids.values())) == [ids["E0043"]]


def test_the_demo_starter_draw_tops_up_q1_and_april_recovers_from_the_locked_months(
        demo) -> None:
    """commission.demo_draw: each locked month of Q1 tops the startup teams' S1 up to
    2,500.00 of commissions, or recovers half of what is earned above it; April (after the
    draw) recovers half of the commissions, at most what the locked months left owed."""
    from engine.runs import outcome_rows

    s = demo
    drawn: dict[str, Decimal] = defaultdict(Decimal)
    for code in ("2026-01", "2026-02", "2026-03"):
        rows = outcome_rows(s, run_of(s, code))
        earned: dict[str, Decimal] = defaultdict(Decimal)
        for o in rows:
            if o["kind"] == "commission" and o["rule_key"] != "commission.demo_draw" \
                    and o["amount"] is not None:
                earned[o["employee_code"]] += Decimal(o["amount"])
        for o in rows:
            if o["rule_key"] == "commission.demo_draw":
                code_ = o["employee_code"]
                over = earned[code_] - 2500
                back = min(drawn[code_], (over / 2).quantize(Decimal("0.01")))
                assert Decimal(o["amount"]) == (-over if over < 0 else -back)
                drawn[code_] += Decimal(o["amount"])
    assert drawn and set(drawn) <= {"E0002", "E0003", "E0004", "E0012", "E0013", "E0014"}
    april = [o for o in outcome_rows(s, run_of(s, "2026-04"))
             if o["rule_key"] == "commission.demo_draw"]
    for o in april:
        calc = o["explanation"]["calc"]
        code_ = o["employee_code"]
        assert Decimal(calc["balance_before"]) == drawn[code_]
        half = (Decimal(calc["earned"]) / 2).quantize(Decimal("0.01"))
        assert Decimal(o["amount"]) == -min(drawn[code_], half)
    assert {o["employee_code"] for o in april} == {c for c, d in drawn.items() if d > 0}


def test_the_demo_accelerator_claws_back_february_and_march_in_april(demo) -> None:
    """E0048 collects 55% in April, below the accelerator's 60%: the 150.00 of February
    and the 115.00 of March (locked runs) are clawed back, each naming its month."""
    from engine.runs import outcome_rows

    s = demo
    lines = [o for o in outcome_rows(s, run_of(s, "2026-04")) if o["rule_key"] == "clawback"]
    assert sorted((o["employee_code"], o["explanation"]["clawback"]["period"], o["amount"])
                  for o in lines) == [("E0048", "2026-02", "-150.00"),
                                      ("E0048", "2026-03", "-115.00")]
    said = lines_of(s, run_of(s, "2026-04"), "E0048")["clawback"]
    assert "is taken back: your collection ratio this period, 55%, is below 60%" in said[0]


def test_the_demo_only_policies_show_each_mechanic_in_statements_export_and_preview(
        demo) -> None:
    """The demo's locked first quarter (engine.demo.SCENARIOS): E0048's accelerator is
    capped in February and cut by the annual cap in March; E0052's collection bonus is
    raised to the floor. The library's rules pay as before."""
    from engine import authoring, lifecycle
    from engine.rulebook import latest

    s = demo
    feb, march = run_of(s, "2026-02"), run_of(s, "2026-03")
    assert march.status == "locked"
    said = lines_of(s, feb, "E0048")["commission.demo_accelerator"]
    assert said[0].startswith("1% of Total revenue") and "Capped at CN¥150 a month: CN¥50 " \
        "less" in said
    said = lines_of(s, march, "E0048")["commission.demo_accelerator"]
    assert "Capped by the yearly limit of CN¥400 (CN¥285 paid earlier this year): CN¥1 less" \
        in said
    assert "按每月上限" not in " ".join(lines_of(s, march, "E0048", "zh")[
        "commission.demo_accelerator"]) and "按年度上限 ¥400 封顶（本年此前已发 ¥285），少发 ¥1" \
        in lines_of(s, march, "E0048", "zh")["commission.demo_accelerator"]
    assert "Raised to the minimum of CN¥500 a quarter: CN¥190.60 more" in \
        lines_of(s, run_of(s, "2026-Q1"), "E0052")["bonus.demo_collection"]
    lines = [x for x in lifecycle.export_lines(s, march) if x["employee_code"] == "E0048"]
    accel = next(x for x in lines if x["rule_key"] == "commission.demo_accelerator")
    assert accel["amount"] == Decimal("115.00") and accel["note"].startswith(
        "capped by the annual cap of 400.00 (285.00 paid earlier this year by this rule, runs ")
    assert next(x for x in lines if x["rule_key"] == "commission.tiered")["note"] == ""
    # raising the annual cap to 500.00: E0048 gets the whole 116.00 in March
    draft = dict(latest(s, "commission.demo_accelerator").definition)
    draft["action"] = {**draft["action"], "annual_cap": "500.00"}
    impact = authoring.impact_preview(s, draft, ["2026-03"])[0]
    assert {e.code: e.delta for e in impact.changed} == {"E0048": Decimal("1.00")}


def test_a_preview_pairs_an_employees_lines_of_one_key_whatever_order_they_are_read_in(
        demo, monkeypatch) -> None:
    """Some of the demo's employees have two collected-release lines in March: a preview
    of an unchanged rule shows no change, in whichever order the stored lines come (the
    database gives them in none; pairing them by place showed changes of nothing)."""
    from collections import Counter

    from engine import authoring, periods
    from engine.clawbacks import RELEASE
    from engine.rulebook import latest

    s = demo
    draft = dict(latest(s, "commission.demo_accelerator").definition)
    stored = authoring._stored
    twice = Counter(o["employee_code"] for o in stored(s, authoring.compared_run(
        s, periods.require(s, "2026-03"))) if o["rule_key"] == RELEASE)
    assert max(twice.values()) >= 2  # what the order could pair wrongly
    for order in (list, lambda lines: list(reversed(lines))):
        monkeypatch.setattr(authoring, "_stored", lambda session, run, order=order: order(
            stored(session, run)))
        impact = authoring.impact_preview(s, draft, ["2026-03"])[0]
        assert impact.changed == [] and impact.rows == []


def test_a_preview_pairs_the_one_line_of_a_key_with_its_like_among_two(demo, monkeypatch
                                                                        ) -> None:
    """Where the stored run has one collected-release line of an employee and the draft
    gives two, the preview shows the one added, not the unchanged one removed and both
    added (the single line was keyed by its rule alone, the two by their values)."""
    from engine import authoring, periods
    from engine.clawbacks import RELEASE
    from engine.rulebook import latest

    s = demo
    draft = dict(latest(s, "commission.demo_accelerator").definition)
    stored = authoring._stored
    lines = [o for o in stored(s, authoring.compared_run(s, periods.require(s, "2026-03")))
             if o["rule_key"] == RELEASE]
    code = next(c for c in sorted({o["employee_code"] for o in lines})
                if sum(o["employee_code"] == c for o in lines) == 2)
    dropped = next(o for o in lines if o["employee_code"] == code)
    monkeypatch.setattr(authoring, "_stored", lambda session, run: [
        o for o in stored(session, run) if o != dropped])
    impact = authoring.impact_preview(s, draft, ["2026-03"])[0]
    assert [(r["employee_code"], r["rule_key"], r["change"],
             (r["after"] or r["before"])["value"],
             r["delta"]) for r in impact.rows] == [
        (code, RELEASE, "added", dropped["value"], dropped["amount"])]


def test_a_measured_ratio_is_cut_never_rounded_up_to_the_tier_it_missed() -> None:
    v = plain.Voice("en", {"attainment": "Attainment"}, {"attainment": "ratio"})
    assert v.value("attainment", "0.79999") == "79.9%"
    assert v.money("12000") == "CN¥12,000" and v.money("37.04") == "CN¥37.04"
    assert v.number("87.33333333333333333333333333") == "87.33"
    assert plain.cut_off(Decimal("0.10"), Decimal(59)) == 6
    assert plain.cut_off(Decimal("0.10"), Decimal(60)) == 6
    assert plain.cut_off(Decimal("0.10"), Decimal(61)) == 7


# --- the estimator ----------------------------------------------------------------------------


def test_the_estimate_is_what_a_run_of_the_same_figures_pays(session) -> None:
    small(session)
    ned = session.scalar(select(Employee).where(Employee.code == "N2"))
    typed = {"revenue_new": "CN¥100,000", "revenue_existing": "30,000", "quota": "100000",
             "max_discount_pct": "7 %"}
    figures = estimate.read_figures(session, typed)
    guess = estimate.estimate(session, ned.id, "2026-01", figures)
    assert session.scalar(select(Run.id)) is None  # nothing stored
    import_results(session, "same.csv", data=(
        b"period,employee_code,revenue_new,revenue_existing,quota,max_discount_pct\n"
        b"2026-01,N2,100000,30000,100000,0.07\n"))
    run = start_run(session, "2026-01", actor=ANALYST).run
    paid = sorted((o.rule_key, o.kind, o.amount, o.value, o.status) for o in session.scalars(
        select(Outcome).where(Outcome.run_id == run.id, Outcome.employee_id == ned.id)))
    assert sorted((x["rule_key"], x["kind"], x["amount"], x["value"], x["status"])
                  for x in guess["lines"]) == paid
    # N2 became the month's champion (a population rule) and their pay is held (a flag)
    assert ("award.monthly_champion", "award", None, "CEO lunch", None) in paid
    assert guess["totals"]["held"] == Decimal("7800.00") + Decimal("1000.00")
    with pytest.raises(LaurelError, match="field leads"):
        estimate.read_figures(session, {"leads": "-3"})
    # a ratio is typed as a percentage there, and its range is said so (it said 0..1)
    with pytest.raises(LaurelError, match=r"field max_discount_pct: is outside 0% to 100%$"):
        estimate.read_figures(session, {"max_discount_pct": "101"})
    assert estimate.read_figures(session, {"max_discount_pct": "100"}) == {
        "max_discount_pct": Decimal(1)}


# --- inquiries --------------------------------------------------------------------------------


def test_an_inquiry_goes_from_question_to_adjustment(session) -> None:
    small(session)
    run = start_run(session, "2026-01", actor=ANALYST).run
    with pytest.raises(NotFound):  # a calculated run is not shown to the rep yet
        inquiries.ask(session, "ned@example.com", run.id, "why?")
    lifecycle.approve(session, run.id, ANALYST2)
    line = session.scalar(select(Outcome).where(Outcome.run_id == run.id,
                                                Outcome.employee_id == portal.rep(
                                                    session, "ned@example.com").id,
                                                Outcome.rule_key == "commission.tiered"))
    with pytest.raises(NotFound):  # Sue cannot ask about Ned's line
        inquiries.ask(session, "sue@example.com", run.id, "why?", outcome_id=line.id)
    q = inquiries.ask(session, "ned@example.com", run.id, "I closed a deal on the 31st",
                      outcome_id=line.id,
                      attachments=[("contract.pdf", "application/pdf", b"%PDF-1.4")])
    assert [m.filename for m in q.messages] == [None, "contract.pdf"]
    assert [i.id for i in lifecycle.checklist(session, run).inquiries] == [q.id]
    with pytest.raises(NotFound):
        inquiries.get(session, q.id, "sue@example.com")
    with pytest.raises(PermissionDenied):
        inquiries.resolve(session, q.id, "ned@example.com", "fine")
    inquiries.assign(session, [q.id], ANALYST, ANALYST2)
    assert q.status == "in_review" and q.assignee == ANALYST
    inquiries.add_message(session, q.id, ANALYST, "The deal was booked in February.")
    with pytest.raises(LaurelError, match="field answer"):
        inquiries.resolve(session, q.id, ANALYST, " ")
    assert inquiries.adjustment_refusal(session, q) is None  # the approved run takes one
    inquiries.resolve(session, q.id, ANALYST, "Booked in January after all.", "1,500")
    adj = session.get(Adjustment, q.resolution_adjustment_id)
    assert (adj.run_id, adj.amount, adj.employee.code) == (run.id, Decimal("1500.00"), "N2")
    assert f"inquiry {q.id}" in adj.reason
    assert lifecycle.checklist(session, run).inquiries == []
    mine = inquiries.get(session, q.id, "ned@example.com")
    assert mine.status == "resolved" and mine.answer == "Booked in January after all."
    words = lines_of(session, run, "N2")["adjustment"]
    assert words == [f"A manual adjustment: inquiry {q.id}: Booked in January after all."]
    with pytest.raises(LaurelError, match="resolved"):
        inquiries.reject(session, q.id, ANALYST, "too late")
    trail = session.scalars(select(AuditLog.action).where(
        AuditLog.entity == "inquiry", AuditLog.entity_id == str(q.id)).order_by(AuditLog.id))
    assert list(trail) == ["ask", "assign", "reply", "resolve"]


def test_a_locked_period_takes_no_adjustment_and_a_rejection_needs_a_reason(session) -> None:
    small(session)
    run = start_run(session, "2026-01", actor=ANALYST).run
    lifecycle.approve(session, run.id, ANALYST2)
    lifecycle.lock(session, run.id, ANALYST2)
    q = inquiries.ask(session, "ned@example.com", run.id, "is this all?")
    refusal = inquiries.adjustment_refusal(session, q)  # the back office offers no amount
    with pytest.raises(LaurelError, match="field amount: period 2026-01 has no run") as raised:
        inquiries.resolve(session, q.id, ANALYST, "yes", "100")
    assert refusal is not None and str(raised.value) == str(refusal)
    with pytest.raises(LaurelError, match="field reason"):
        inquiries.reject(session, q.id, ANALYST, "")
    assert inquiries.reject(session, q.id, ANALYST, "the statement is right").status == \
        "rejected"


# --- the three-view review -------------------------------------------------------------------


def test_a_closed_review_cycle_gives_the_quarter_its_scores_and_its_rating(session) -> None:
    small(session)
    # N2 reaches 120% over the quarter: A with an evaluation score of 80 or more, else C
    import_results(session, "q1.csv", data=(
        b"period,employee_code,quota,revenue_new\n"
        b"2026-02,N2,50000,80000\n2026-03,N2,50000,80000\n"))
    before = start_run(session, "2026-Q1", actor=ANALYST).run
    rating = select(Outcome.value).where(Outcome.kind == "rating",
                                         Outcome.employee_id == portal.rep(
                                             session, "ned@example.com").id)
    assert session.scalar(rating.where(Outcome.run_id == before.id)) == "C"
    cycle = reviews.open_cycle(session, "2026-Q1", dt.date(2026, 4, 5), dt.date(2026, 4, 12),
                               "hr@example.com")
    assert reviews.waiting(session, session.scalar(select(User).where(
        User.email == "ned@example.com")))[0]["period"] == "2026-Q1"
    reviews.enter(session, cycle.id, "ned@example.com", "N2", "self", "90", "a good quarter")
    with pytest.raises(PermissionDenied):  # nobody enters another's self-assessment
        reviews.enter(session, cycle.id, "sue@example.com", "N2", "self", "10")
    with pytest.raises(PermissionDenied):  # the North manager does not assess South
        reviews.enter(session, cycle.id, "manager@example.com", "S2", "manager", "50")
    with pytest.raises(LaurelError, match="field score"):
        reviews.enter(session, cycle.id, "manager@example.com", "N2", "manager", "101")
    reviews.enter(session, cycle.id, "manager@example.com", "N2", "manager", "85")
    assert reviews.import_customer_scores(
        session, cycle.id, "customers.csv", b"employee_code,customer_score\nN2,80\nS2,\n",
        "hr@example.com") == 1
    progress = reviews.progress(session, cycle)
    assert [e.code for e in progress.missing("self")] == ["N1", "S1", "S2"]
    reviews.close_cycle(session, cycle.id, "hr@example.com")
    assert lifecycle.staleness(session, before) is not None  # the quarter's results moved
    after = start_run(session, "2026-Q1", actor=ANALYST).run
    assert session.scalar(rating.where(Outcome.run_id == after.id)) == "A"
    explanation = session.scalar(select(Outcome.explanation).where(
        Outcome.run_id == after.id, Outcome.kind == "rating",
        Outcome.employee_id == portal.rep(session, "ned@example.com").id))
    assert explanation["facts"]["evaluation_score"] == "84.5"  # 0.2x90 + 0.5x85 + 0.3x80
    # Sue entered nothing: no score is written for her, nothing is zero (her rating's
    # explanation shows the score the rows above hers read as undefined)
    sue = session.scalar(select(Outcome.explanation).where(
        Outcome.run_id == after.id, Outcome.kind == "rating",
        Outcome.employee_id == session.scalar(select(Employee.id).where(
            Employee.code == "S2"))))
    assert sue is not None and "evaluation_score" in sue["facts"]  # read, undefined
    assert sue["facts"]["evaluation_score"] is None
    with pytest.raises(LaurelError, match="closed"):
        reviews.enter(session, cycle.id, "ned@example.com", "N2", "self", "95")


# --- one-to-ones --------------------------------------------------------------------------------


def test_a_one_to_one_is_acknowledged_and_is_the_pips_check_in(session) -> None:
    small(session)
    ned = portal.rep(session, "ned@example.com")
    pip = Pip(employee_id=ned.id, run_id=start_run(session, "2026-01", actor=ANALYST).run.id,
              start=dt.date(2026, 2, 1), end=dt.date(2026, 4, 30), target="monthly "
              "attainment >= 0.80", status="active")
    session.add(pip)
    session.flush()
    actions = talks.actions_from([("two demos a week", "2026-02-28"), ("", "")])
    with pytest.raises(PermissionDenied):  # the North manager does not talk for South
        talks.record(session, "manager@example.com", "S2", dt.date(2026, 2, 10), "x", "", [])
    talk = talks.record(session, "manager@example.com", "N2", dt.date(2026, 2, 10),
                        "prepares well", "closing", actions, coach_code="N1")
    assert talk.pip_id == pip.id and talk.coach.code == "N1"
    assert portal.checkins(session, pip) == {"2026-02": [talk]}
    with pytest.raises(NotFound):
        talks.get(session, talk.id, "sue@example.com")
    with pytest.raises(PermissionDenied):
        talks.acknowledge(session, talk.id, "manager@example.com")
    talks.acknowledge(session, talk.id, "ned@example.com")
    assert talk.acknowledged_by == "ned@example.com"
    with pytest.raises(LaurelError, match="field due_1"):
        talks.actions_from([("call back", "soon")])


# --- leadership analytics -------------------------------------------------------------------


def test_the_analytics_figures_equal_hand_sums_on_the_demo_organisation(demo) -> None:
    s = demo
    emps, results = demo_files()
    first = {r["code"]: r for r in csv.DictReader(io.StringIO(emps.decode()))}
    dated = {r["code"]: r for r in csv.DictReader(io.StringIO(dated_file().decode()))}

    def team_in(code: str, month: str) -> dict | None:
        """The employee's row in force on their last day employed in the month, if any."""
        d = dated.get(code)
        if d is None:
            return first[code]
        if d["leave_date"] and month > d["leave_date"][:7]:
            return None  # left before the month
        if d["hire_date"] == d["effective_date"] and month < d["hire_date"][:7]:
            return None  # not hired yet
        return d if d["effective_date"] and month >= d["effective_date"][:7] else first[code]

    rows = [r for r in csv.DictReader(io.StringIO(results.decode()))
            if team_in(r["employee_code"], r["period"]) is not None]
    assert any(team_in(r["employee_code"], r["period"]) is None  # the leaver's late rows
               for r in csv.DictReader(io.StringIO(results.decode())))

    def num(row: dict, key: str) -> Decimal:
        return Decimal(row[key]) if row[key] else Decimal(0)

    def total(row: dict) -> Decimal:
        return num(row, "revenue_new") + num(row, "revenue_existing")

    a = analytics.analytics(s, 2026)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    quota: dict[str, Decimal] = defaultdict(Decimal)
    by_person: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        revenue[r["period"]] += total(r)
        quota[r["period"]] += num(r, "quota")
        by_person[r["employee_code"]] += total(r)
    for m in a.months:
        assert (m["revenue"], m["quota"]) == (revenue[m["period"]], quota[m["period"]])
    # payout: the payable amounts of each month's run, as `laurel outcomes` lists them
    from engine.runs import outcome_rows

    for code in ("2026-01", "2026-03", "2026-04"):
        run = run_of(s, code)
        paid = sum((Decimal(o["amount"]) for o in outcome_rows(s, run)
                    if o["amount"] and o["status"] == "payable"), Decimal(0))
        month = next(m for m in a.months if m["period"] == code)
        with localcontext() as ctx:
            ctx.prec = 34
            assert month["payout"] == paid and month["cost_of_sales"] == paid / revenue[code]
    # a month no live run has paid (the demo runs January to April) has no payout, held
    # amount or cost of sales yet: a gap, not 0 (it read CN¥0.00 and 0%)
    ran = set(s.scalars(select(Period.code).join(Run, Run.period_id == Period.id)
                        .where(Run.status.in_(("calculated", "approved", "locked")))))
    unpaid = [m for m in a.months if m["period"] not in ran]
    assert unpaid and all(m["revenue"] for m in unpaid)  # results, and no run
    assert all((m["payout"], m["held"], m["cost_of_sales"]) == (None, None, None)
               for m in unpaid)
    assert all(m["payout"] is not None for m in a.months if m["period"] in ran)
    # the year's cost of sales sets the payout against the revenue of the months paid
    paid_revenue = sum((m["revenue"] for m in a.months if m["period"] in ran), Decimal(0))
    with localcontext() as ctx:
        ctx.prec = 34
        assert a.totals["cost_of_sales"] == a.totals["payout"] / paid_revenue
    # no results last year: no last year's figure, and no growth against it
    assert not any(r["period"].startswith("2025") for r in rows)
    assert all(y["last_revenue"] is None and y["growth"] is None for y in a.ytd)
    assert [y["payout"] is None for y in a.ytd] == [m["payout"] is None for m in a.months]
    # the funnel of a region over the year: each month's figures in that month's region
    funnel = next(f for f in a.funnel if f["region"] == "East")
    for key in ("leads", "opportunities", "won_leads"):
        assert funnel[key] == sum(
            (num(r, key) for r in rows
             if team_in(r["employee_code"], r["period"])["region"] == "East"), Decimal(0))
    # a transfer (E0043, on 2026-05-16) moves the figures from the month it takes effect
    moved = dated["E0043"]["team"]
    was = first["E0043"]["team"]
    assert moved != was
    for team, month, index in ((was, "2026-04", 3), (moved, "2026-05", 4)):
        members = [r for r in rows if r["period"] == month
                   and team_in(r["employee_code"], month)["team"] == team]
        assert "E0043" in {r["employee_code"] for r in members}
        assert a.teams[team][index]["revenue"] == sum(map(total, members), Decimal(0))
        assert a.teams[team][index]["headcount"] == len(members)
    # output per head of a team, and the top seller
    team_rows = [r for r in rows if team_in(r["employee_code"], r["period"])["team"] == was]
    spread = next(x for x in a.spread if x["team"] == was)
    assert spread["revenue"] == sum(map(total, team_rows), Decimal(0))
    assert spread["headcount"] == len({r["employee_code"] for r in team_rows})
    assert spread["per_head"] == spread["revenue"] / spread["headcount"]
    best = max(by_person, key=lambda c: by_person[c])
    assert (a.top[0]["code"], a.top[0]["revenue"]) == (best, by_person[best])
    assert a.ytd[-1]["revenue"] == sum(revenue.values(), Decimal(0))
    # filters: one team, one level, month by month (E0043 is in Hangzhou from May only)
    hangzhou = s.scalar(select(Employee.team_id).where(Employee.code == "E0043"))
    only = analytics.analytics(s, 2026, analytics.Scope(team_id=hangzhou, level="S1"))
    for month, index in (("2026-01", 0), ("2026-04", 3), ("2026-05", 4)):
        chosen = [r for r in rows if r["period"] == month
                  and team_in(r["employee_code"], month)["team"] == moved
                  and team_in(r["employee_code"], month)["level"] == "S1"]
        assert only.months[index]["revenue"] == sum(map(total, chosen), Decimal(0))
        assert only.months[index]["headcount"] == len(chosen)
    assert "E0043" in {e["code"] for e in only.employees}
    header, _rows = analytics.table(a, "funnel")
    assert analytics.csv_bytes(a, "funnel").decode().splitlines()[0] == ",".join(header)


def test_the_demo_contract_commission_pays_the_rest_once_collected(demo) -> None:
    """commission.demo_signing: each locked month of Q1 paid 60% and held 40%; a later
    month whose collection ratio reached 90% pays each part still held, naming the month
    it comes from, once."""
    from engine.facts import build_facts
    from engine.runs import outcome_rows

    s = demo
    held = {}
    for code in ("2026-01", "2026-02", "2026-03"):
        for o in outcome_rows(s, run_of(s, code)):
            if o["rule_key"] == "collected_release":  # paid in a later month of Q1
                c = o["explanation"]["collected"]
                assert held.pop((o["employee_code"], c["period"])) == o["amount"]
            if o["rule_key"] == "commission.demo_signing":
                part = o["explanation"]["calc"]["on_signing"]
                assert Decimal(part["paid"]) + Decimal(part["held"]) == Decimal(part["full"])
                assert Decimal(o["amount"]) == Decimal(part["paid"])
                held[(o["employee_code"], code)] = part["held"]
    april = run_of(s, "2026-04")
    ratio = {ef.code: ef.values.get("collection_ratio") for ef in build_facts(s, april.period)}
    paid = {(o["employee_code"], o["explanation"]["collected"]["period"]): o["amount"]
            for o in outcome_rows(s, april) if o["rule_key"] == "collected_release"}
    assert paid and paid == {k: v for k, v in held.items()
                             if ratio[k[0]] is not None and ratio[k[0]] >= Decimal("0.9")}
