"""Plan mechanics on the real engine: marginal tiers; caps and floors.

Figures are worked out by hand in the docstrings; the organisation and results reach the
database through the scenario steps (engine.specs), as in features/mechanics/.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine import plain, specs, wording
from engine.errors import RuleError
from engine.rulebook import read_rule_file, validate_for_session
from engine.statements import reader

ROOT = Path(__file__).resolve().parent.parent
TIERED = "commission.tiered"


def _month(session: Session, rows: list[list[str]], period: str = "2026-01",
           change: list[list[str]] | None = None) -> Any:
    """E1 and E2 in team North, the tiered commission changed as given, the month run."""
    staff = specs.one_employee(specs.one_employee({}, "E1", "S2", "North"), "E2", "S1", "North")
    if change:
        specs.rule_changed(session, TIERED, [["field", "value"], *change])
    specs.results_for(session, {}, staff, period,
                      [["employee", "quota", "revenue_new", "revenue_existing"], *rows])
    return specs.make_run(session, [], period)[-1][1]


def _line(result: Any, code: str, rule: str) -> dict[str, Any]:
    found = [o for o in result.outcomes if o["employee_code"] == code and o["rule_key"] == rule]
    assert len(found) == 1, found
    return found[0]


# --- marginal tiers ------------------------------------------------------------------------


def test_marginal_tiers_explain_and_state_each_slice(session: Session) -> None:
    """105% of a quota of 100,000: 3% of 80,000 = 2,400; 4% of 20,000 = 800; 5% of 5,000
    = 250; 3,450.00 in all. E2 at 79% has one slice: 3% of 79,000 = 2,370."""
    result = _month(session, [["E1", "100000", "105000", ""], ["E2", "100000", "79000", ""]],
                    change=[["action.mode", "marginal"]])
    line = _line(result, "E1", TIERED)
    assert line["amount"] == Decimal("3450.00")
    calc = line["explanation"]["calc"]
    assert calc["mode"] == "marginal" and calc["tier"] == 3
    assert [(s["tier"], s["rate"], Decimal(s["base"]), Decimal(s["amount"]))
            for s in calc["slices"]] == [(1, "0.03", 80000, 2400), (2, "0.04", 20000, 800),
                                         (3, "0.05", 5000, 250)]
    assert _line(result, "E2", TIERED)["amount"] == Decimal("2370.00")
    words = " ".join(wording.explain("commission", line["explanation"]))
    assert ("3% of revenue_total 80,000.00 (below 0.80) = 2,400.00; 4% of 20,000.00 "
            "(0.80 to below 1.00) = 800.00; 5% of 5,000.00 (1.00 to below 1.20) = 250.00; "
            "total 3,450.00") in words
    r = reader(session, "zh")
    zh = " ".join(wording.explain("commission", line["explanation"], "zh", r.label,
                                  dict(r.types)))
    assert "分段计提" in zh and "合计 3,450.00" in zh and "80% 至低于 100%" in zh
    st = plain.statement(session, result.run, "E1")
    said = " ".join(next(x for x in st.lines if x.rule_key == TIERED).plain)
    assert ("3% of Total revenue CN¥80,000 (below 80%) = CN¥2,400; 4% of CN¥20,000 "
            "(80% to below 100%) = CN¥800; 5% of CN¥5,000 (100% to below 120%) = CN¥250; "
            "in all CN¥3,450") in said
    st = plain.statement(session, result.run, "E1", "zh")
    said = " ".join(next(x for x in st.lines if x.rule_key == TIERED).plain)
    assert said.startswith("分段计提：总收入 ¥80,000（低于 80%）× 3% = ¥2,400；") \
        and "合计 ¥3,450" in said


def test_a_slice_that_is_not_whole_cents_shows_its_decimals_and_the_line_rounds_once(
        session: Session) -> None:
    """Quota 1,000.625, revenue 800.625: 3% of 800.50 = 24.015 and 4% of 0.125 = 0.005,
    24.02 in all (rounding each slice would give 24.03)."""
    result = _month(session, [["E1", "1000.625", "800.625", ""]],
                    change=[["action.mode", "marginal"]])
    line = _line(result, "E1", TIERED)
    assert line["amount"] == Decimal("24.02")
    words = " ".join(wording.explain("commission", line["explanation"]))
    assert "= 24.015;" in words and "= 0.005;" in words and "total 24.02" in words


def test_marginal_and_retroactive_read_in_the_rule_summary_and_lines(session: Session) -> None:
    doc = validate_for_session(session, read_rule_file(ROOT / "rules/commission.tiered.yaml"),
                               "commission.tiered.yaml")
    assert "mode" not in doc["action"]  # the default is not written: the library's hash stays
    en, zh = reader(session, "en"), reader(session, "zh")
    assert "the rate reached applies to all of the Total revenue" in wording.summary(doc, en)
    assert ("Tier mode", "retroactive: the rate reached applies to the whole base") in \
        wording.rule_lines(doc, en)
    marginal = validate_for_session(
        session, {**doc, "action": {**doc["action"], "mode": "marginal"}}, "rule x")
    assert marginal["action"]["mode"] == "marginal"
    assert "each slice of the Total revenue is paid at its own tier's rate" in \
        wording.summary(marginal, en)
    assert "分段计提，每一段按其所在档位的比例" in wording.summary(marginal, zh)
    assert ("分档方式", "分段：每一段基数按其所在档位的比例") in wording.rule_lines(marginal, zh)


@pytest.mark.parametrize("change, reason", [
    ({"mode": "stepped"}, "unknown tier mode 'stepped'; use retroactive"),
    ({"mode": "marginal", "metric": "evaluation_score"},
     "marginal tiers pay each slice of revenue_total at its tier's rate, so the tier metric "
     "must be revenue_total itself or a ratio of it (revenue_total / something); "
     "evaluation_score is neither"),
    ({"mode": "marginal", "metric": "team_attainment"}, "team_attainment is neither"),
])
def test_a_tier_mode_that_cannot_hold_is_refused_naming_the_rule_and_field(
        session: Session, change: dict[str, str], reason: str) -> None:
    doc = read_rule_file(ROOT / "rules/commission.tiered.yaml")
    with pytest.raises(RuleError) as err:
        validate_for_session(session, {**doc, "action": {**doc["action"], **change}},
                             "rule commission.tiered")
    assert err.value.field == "action.mode" and reason in str(err.value)
    assert "rule commission.tiered" in str(err.value)


def test_marginal_tiers_on_the_base_itself_cut_it_into_amounts(session: Session) -> None:
    """Tiers on revenue_total itself: 2% of the first 50,000, 3% of the rest; 70,000 gives
    1,000 + 600 = 1,600.00."""
    result = _month(session, [["E1", "100000", "70000", ""]], change=[
        ["action.mode", "marginal"], ["action.metric", "revenue_total"],
        ["action.tiers[1].to", "50000"], ["action.tiers[1].rate", "0.02"],
        ["action.tiers[2].from", "50000"], ["action.tiers[2].to", ""],
        ["action.tiers[2].rate", "0.03"], ["action.tiers[3]", ""], ["action.tiers[4]", ""]])
    assert _line(result, "E1", TIERED)["amount"] == Decimal("1600.00")


# --- caps and floors -----------------------------------------------------------------------

NEW_LOGO = "commission.new_logo"


def _months(session: Session, limits: list[list[str]], rows: list[list[str]]) -> Any:
    """E1 in North, the new-logo commission (1% of revenue_new) with the limits given,
    the results by period; returns the staff."""
    staff = specs.one_employee({}, "E1", "S2", "North")
    specs.rule_changed(session, NEW_LOGO, [["field", "value"], *limits])
    specs.results_by_period(session, {}, staff,
                            [["period", "employee", "quota", "revenue_new"], *rows])
    return staff


def _said(session: Session, result: Any, code: str, rule: str, lang: str = "en") -> str:
    st = plain.statement(session, result.run, code, lang)
    return " ".join(next(x for x in st.lines if x.rule_key == rule).plain)


def test_a_cap_and_a_floor_say_when_they_changed_the_amount_and_by_how_much(
        session: Session) -> None:
    """1% of 60,000 is 600.00, capped at 500.00 (-100.00); 1% of 2,000 is 20.00, raised
    to the floor 50.00 (+30.00); 1% of 30,000 is 300.00, neither."""
    _months(session, [["action.cap", "500"], ["action.floor", "50"]],
            [["2026-01", "E1", "100000", "60000"]])
    result = specs.make_run(session, [], "2026-01")[-1][1]
    line = _line(result, "E1", NEW_LOGO)
    assert line["amount"] == Decimal("500.00")
    calc = line["explanation"]["calc"]
    assert calc["amount"] == "600.00" and calc["paid"] == "500.00"
    assert calc["limits"] == [{"limit": "cap", "value": "500.00", "before": "600.00",
                               "after": "500.00", "change": "-100.00"}]
    assert line["explanation"]["arithmetic"] == (
        "1% of revenue_new 60,000.00 = 600.00; capped at 500.00 a period: 500.00 (-100.00)")
    r = reader(session, "zh")
    assert "按每期上限 500.00 封顶为 500.00（-100.00）" in " ".join(
        wording.explain("commission", line["explanation"], "zh", r.label, dict(r.types)))
    assert "Capped at CN¥500 a month: CN¥100 less" in _said(session, result, "E1", NEW_LOGO)
    assert "按每月上限 ¥500 封顶，少发 ¥100" in _said(session, result, "E1", NEW_LOGO, "zh")

    specs.results_for(session, {}, {"E1": ("S2", "North")}, "2026-01",
                      [["employee", "revenue_new"], ["E1", "2000"]])
    result = specs.make_run(session, [], "2026-01")[-1][1]  # the second time: a re-run
    line = _line(result, "E1", NEW_LOGO)
    assert line["amount"] == Decimal("50.00")
    assert line["explanation"]["arithmetic"].endswith(
        "raised to the floor of 50.00 a period: 50.00 (+30.00)")
    assert "Raised to the minimum of CN¥50 a month: CN¥30 more" in \
        _said(session, result, "E1", NEW_LOGO)

    specs.results_for(session, {}, {"E1": ("S2", "North")}, "2026-01",
                      [["employee", "revenue_new"], ["E1", "30000"]])
    result = specs.make_run(session, [], "2026-01")[-1][1]
    line = _line(result, "E1", NEW_LOGO)
    assert line["amount"] == Decimal("300.00") and "limits" not in line["explanation"]["calc"]
    assert line["explanation"]["arithmetic"] == "1% of revenue_new 30,000.00 = 300.00"


def test_the_annual_cap_names_what_was_paid_earlier_and_counts_held_not_forfeited(
        session: Session) -> None:
    """Annual cap 1,000.00. January pays 600.00 (approved), February 300.00 (approved;
    held, it still counts; forfeited, it no longer does): March's 500.00 is cut to 100.00,
    then to 400.00; March at 300.00 stays within the cap."""
    from sqlalchemy import update

    from engine.models import Outcome

    _months(session, [["action.annual_cap", "1000"]], [
        ["2026-01", "E1", "100000", "60000"], ["2026-02", "E1", "100000", "30000"],
        ["2026-03", "E1", "100000", "50000"]])
    runs = specs.make_settled_run(session, [], "2026-01", "approved")
    runs = specs.make_settled_run(session, runs, "2026-02", "approved")
    march = specs.make_run(session, runs, "2026-03")[-1][1]
    line = _line(march, "E1", NEW_LOGO)
    jan, feb = runs[0][1].run.id, runs[1][1].run.id
    assert line["amount"] == Decimal("100.00")
    assert line["explanation"]["calc"]["annual_cap"] == {
        "value": "1000.00", "paid_earlier": "900.00",
        "runs": [{"run_id": jan, "period": "2026-01"}, {"run_id": feb, "period": "2026-02"}]}
    assert line["explanation"]["arithmetic"].endswith(
        f"capped by the annual cap of 1,000.00 (900.00 paid earlier this year by this rule, "
        f"runs {jan} (2026-01), {feb} (2026-02)): 100.00 (-400.00)")
    assert ("Capped by the yearly limit of CN¥1,000 (CN¥900 paid earlier this year): "
            "CN¥400 less") in _said(session, march, "E1", NEW_LOGO)
    assert "按年度上限 ¥1,000 封顶（本年此前已发 ¥900），少发 ¥400" in \
        _said(session, march, "E1", NEW_LOGO, "zh")

    def february(status: str) -> None:
        session.execute(update(Outcome).where(Outcome.run_id == feb,
                                              Outcome.rule_key == NEW_LOGO)
                        .values(status=status))
        session.commit()

    february("held")  # a held line may still be paid: it counts
    assert _line(specs.make_run(session, [], "2026-03")[-1][1], "E1", NEW_LOGO)["amount"] \
        == Decimal("100.00")
    february("forfeited")  # never paid: 1,000.00 - 600.00 is left
    march = specs.make_run(session, [], "2026-03")[-1][1]
    line = _line(march, "E1", NEW_LOGO)
    assert line["amount"] == Decimal("400.00")
    assert line["explanation"]["arithmetic"].endswith(
        f"(600.00 paid earlier this year by this rule, runs {jan} (2026-01)): 400.00 (-100.00)")
    specs.results_for(session, {}, {"E1": ("S2", "North")}, "2026-03",
                      [["employee", "revenue_new"], ["E1", "30000"]])
    march = specs.make_run(session, [], "2026-03")[-1][1]
    line = _line(march, "E1", NEW_LOGO)
    assert line["amount"] == Decimal("300.00")
    assert line["explanation"]["arithmetic"].endswith(
        f"within the annual cap of 1,000.00 (600.00 paid earlier this year by this rule, "
        f"runs {jan} (2026-01))")
    assert "Within the yearly limit of CN¥1,000 (CN¥600 paid earlier this year)" in \
        _said(session, march, "E1", NEW_LOGO)


def test_limits_read_in_the_rule_summary_and_lines(session: Session) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    doc = validate_for_session(session, {**doc, "action": {
        **doc["action"], "floor": "50", "cap": "500.00", "annual_cap": 3000}}, "rule x")
    assert {k: doc["action"][k] for k in ("floor", "cap", "annual_cap")} == {
        "floor": Decimal("50"), "cap": Decimal("500.00"), "annual_cap": Decimal("3000")}
    en, zh = reader(session, "en"), reader(session, "zh")
    assert wording.summary(doc, en).startswith(
        "Each month: 1% of Revenue from new customers; at least 50.00 CNY a period; at most "
        "500.00 CNY a period; at most 3,000.00 CNY per employee a year;")
    assert "每期至少 50.00 CNY；每期至多 500.00 CNY；每人每年至多 3,000.00 CNY" in \
        wording.summary(doc, zh)
    lines = dict(wording.rule_lines(doc, en))
    assert (lines["Floor per period"], lines["Cap per period"],
            lines["Annual cap per employee"]) == ("50.00 CNY", "500.00 CNY", "3,000.00 CNY")
    plain_doc = validate_for_session(session, read_rule_file(
        ROOT / "rules/commission.new_logo.yaml"), "rule y")
    assert "cap" not in plain_doc["action"]
    assert dict(wording.rule_lines(plain_doc, zh))["每期上限"] == "无"


@pytest.mark.parametrize("limits, field, reason", [
    ({"cap": "-1"}, "action.cap", "-1 is below 0: a limit is an amount of 0 or more"),
    ({"annual_cap": "10.005"}, "action.annual_cap",
     "10.005 has more than 2 decimals: a limit is an amount in cents"),
    ({"floor": "600", "cap": "500"}, "action.floor", "the floor 600 is above the cap 500"),
    ({"cap": "lots"}, "action.cap", "'lots' is not a number"),
])
def test_a_limit_that_cannot_hold_is_refused_naming_the_rule_and_field(
        session: Session, limits: dict[str, str], field: str, reason: str) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    with pytest.raises(RuleError) as err:
        validate_for_session(session, {**doc, "action": {**doc["action"], **limits}},
                             "rule commission.new_logo")
    assert err.value.field == field and reason in str(err.value)
    assert "rule commission.new_logo" in str(err.value)


def test_a_value_rule_has_no_cap(session: Session) -> None:
    doc = read_rule_file(ROOT / "rules/alert.funnel.yaml")
    with pytest.raises(RuleError) as err:
        validate_for_session(session, {**doc, "action": {**doc["action"], "cap": "5"}},
                             "rule alert.funnel")
    assert err.value.field == "action.cap" and "unknown field 'cap'" in str(err.value)


# --- the demo's policies ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_demo_only_policies_pass_their_own_scenarios(session: Session) -> None:
    """Each demo rule (engine.demo.DEMO_RULES) is valid and its scenarios pass the gate
    HR's changes go through; they are not in the library of rules/."""
    from engine.demo import DEMO_RULES, load_demo_rules
    from engine.rulebook import latest, read_yaml
    from engine.specs import run_gate

    library = {p.stem for p in (ROOT / "rules").glob("*.yaml")}
    assert load_demo_rules(session) == ["commission.demo_accelerator", "bonus.demo_collection",
                                        "bonus.demo_field_allowance", "commission.demo_draw",
                                        "commission.demo_signing"]
    assert load_demo_rules(session) == []  # the second time changes nothing
    for text, feature in DEMO_RULES:
        key = read_yaml(text, "demo")["key"]
        assert key not in library
        rule = latest(session, key)
        assert rule.status == "published" and rule.scenarios.strip() == feature.strip()
        report = run_gate(session, rule.definition, rule.scenarios)
        assert report.passed and len(report.scenarios) >= 5, [
            (r.name, r.error, r.expected, r.actual) for r in report.scenarios if not r.passed]


def test_a_rule_with_marginal_tiers_and_limits_exports_and_loads_back_unchanged(
        session: Session, tmp_path: Path) -> None:
    from engine.rulebook import export_rules, load_files, published_rules

    specs.rule_changed(session, TIERED, [["field", "value"], ["action.mode", "marginal"],
                                         ["action.cap", "9000.50"], ["action.floor", "0"],
                                         ["action.annual_cap", "50000"]])
    before = {r.key: (r.version, r.content_hash) for r in published_rules(session)}
    export_rules(session, tmp_path)
    text = (tmp_path / f"{TIERED}.yaml").read_text()
    assert "mode: marginal" in text and "cap: 9000.50" in text and "annual_cap: 50000" in text
    assert all(not created for _, created in load_files(session, tmp_path, publish=True))
    assert {r.key: (r.version, r.content_hash) for r in published_rules(session)} == before


# --- dated assignments and proration -------------------------------------------------------


def _transfer(session: Session) -> Any:
    """E1 in North; E2 moves from North to South on 2026-02-15 (45 of the 90 days of
    2026-Q1 in each); E3 in South."""
    staff = specs.one_employee(specs.one_employee({}, "E1", "S2", "North"), "E2", "S2", "North")
    staff = specs.dated_assignments(session, {}, staff, [
        ["employee", "team", "level", "effective_date"], ["E3", "South", "S1", ""],
        ["E2", "South", "S1", "2026-02-15"]])
    specs.results_for(session, {}, staff, "2026-Q1",
                      [["employee", "quota", "revenue_new"], ["E1", "100000", "90000"],
                       ["E2", "100000", "120000"], ["E3", "100000", "80000"]])
    return specs.make_run(session, [], "2026-Q1")[-1][1]


def test_a_transfer_splits_the_team_figures_and_the_member_takes_the_new_team_and_level(
        session: Session) -> None:
    from engine.facts import build_facts
    from engine.models import Employee

    result = _transfer(session)
    facts = {ef.code: ef.values for ef in build_facts(session, result.period)}
    e2 = facts["E2"]
    assert (e2["team"], e2["level"]) == ("South", "S1")  # in force on the last day
    assert (e2["active_days"], e2["period_days"], e2["active_share"]) == (90, 90, 1)
    assert facts["E1"]["team_members"] == Decimal("1.5") == e2["team_members"]
    assert facts["E1"]["team_revenue"] == 150000 and facts["E1"]["team_quota"] == 150000
    assert e2["team_revenue"] == 140000 and e2["team_quota"] == 150000
    assert result.run.figures["teams"]["North"]["members"] == "1.50"
    assert result.run.figures["teams"]["North"]["attainment"] == "1"
    e2_row = session.query(Employee).filter_by(code="E2").one()
    assert e2_row.team.name == "South"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_chunked_run_of_a_transfer_gives_what_one_process_gives(db_url, session,
                                                                   monkeypatch,
                                                                   workers) -> None:
    from engine import db, jobs
    from tests.test_jobs import one_process_run, outcome_set

    monkeypatch.setenv("LAUREL_RUN_CHUNK", "1")
    _transfer(session)
    expected = one_process_run(session, "2026-Q1")
    job = jobs.start(session, "2026-Q1", "x@x.com")
    session.commit()
    # two workers: the population walked in parts by the two processes, then merged
    run = jobs.run_here(db.make_sessionmaker(db_url), job.id, workers=workers)
    session.expire_all()
    assert outcome_set(session, run.id) == expected
    assert run.figures["teams"]["South"]["members"] == "1.50"


def test_a_prorated_amount_says_its_days_in_explanation_statement_and_export(
        session: Session) -> None:
    """E3 joins on 2026-01-16: 16 of 31 days; 1% of 31,000 = 310.00, x 16/31 = 160.00;
    a floor of 200 lifts it back to 200.00 (the floor applies to the prorated amount)."""
    from engine import lifecycle

    specs.rule_changed(session, "commission.new_logo", [["field", "value"],
                                                        ["action.prorate", "true"],
                                                        ["action.floor", "200"]])
    staff = specs.dated_assignments(session, {}, {}, [
        ["employee", "team", "level", "effective_date"], ["E3", "North", "S1", "2026-01-16"]])
    specs.results_for(session, {}, staff, "2026-01",
                      [["employee", "quota", "revenue_new"], ["E3", "100000", "31000"]])
    result = specs.make_run(session, [], "2026-01")[-1][1]
    line = _line(result, "E3", "commission.new_logo")
    assert line["amount"] == Decimal("200.00")
    calc = line["explanation"]["calc"]
    assert calc["prorated"] == {"active_days": "16", "period_days": "31", "amount": "160.00"}
    assert calc["limits"][0]["before"] == "160.00"
    words = " ".join(wording.explain("commission", line["explanation"]))
    assert "prorated for 16 of 31 days: 310.00 x 16/31 = 160.00" in words
    assert "raised to the floor of 200.00" in words
    zh = " ".join(wording.explain("commission", line["explanation"], "zh"))
    assert "按在职天数折算：16/31 天，310.00 → 160.00" in zh
    said = " ".join(next(x for x in plain.statement(session, result.run, "E3").lines
                         if x.rule_key == "commission.new_logo").plain)
    assert "Employed 16 of the 31 days of the period: CN¥160 paid for them" in said
    said = " ".join(next(x for x in plain.statement(session, result.run, "E3", "zh").lines
                         if x.rule_key == "commission.new_logo").plain)
    assert "本期在职 16 天（共 31 天），按比例发放 ¥160" in said
    note = next(x for x in lifecycle.export_lines(session, result.run)
                if x["employee_code"] == "E3")["note"]
    assert note.startswith("prorated for 16 of 31 days") and "floor of 200.00" in note


def test_prorate_reads_in_the_summary_and_lines_and_a_bad_value_is_named(
        session: Session) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    plain_doc = validate_for_session(session, doc, "rule x")
    assert "prorate" not in plain_doc["action"]  # the default is not written
    prorated = validate_for_session(
        session, {**doc, "action": {**doc["action"], "prorate": True}}, "rule x")
    assert prorated["action"]["prorate"] is True
    en, zh = reader(session, "en"), reader(session, "zh")
    assert "prorated by the days employed in the period" in wording.summary(prorated, en)
    assert "按本期在职天数折算" in wording.summary(prorated, zh)
    assert ("Prorated", "no") in wording.rule_lines(plain_doc, en)
    assert ("按在职天数折算", "是：按本期在职天数占比发放") in wording.rule_lines(prorated, zh)
    with pytest.raises(RuleError) as err:
        validate_for_session(session, {**doc, "action": {**doc["action"], "prorate": "yes"}},
                             "rule commission.new_logo")
    assert err.value.field == "action.prorate" and "rule commission.new_logo" in str(err.value)
    assert "prorate is true or false, not 'yes'" in str(err.value)


def test_the_employees_import_keeps_dated_assignments_and_refuses_a_leave_before_them(
        session: Session) -> None:
    from engine.errors import ImportFileError
    from engine.imports import import_employees
    from engine.models import Assignment, Employee

    def send(*rows: str) -> None:
        data = "\n".join(["code,name,team,level,effective_date,leave_date", *rows]) + "\n"
        import_employees(session, "employees.csv", data=data.encode())

    import_employees(session, "e.csv", data=b"code,name,team,level\nE1,A,North,S1\n")
    send("E1,A,South,S2,2026-03-01,")  # a transfer with a promotion
    send("E1,A,West,S2,2026-02-01,")  # a move recorded late: between the two
    import_employees(session, "e.csv", data=b"code,name,team,level\nE1,A,South,S3\n")
    emp = session.query(Employee).filter_by(code="E1").one()
    history = [(a.effective_date.isoformat(), session.get(type(emp.team), a.team_id).name)
               for a in session.query(Assignment).filter_by(employee_id=emp.id)
               .order_by(Assignment.effective_date)]
    assert history == [("1900-01-01", "North"), ("2026-02-01", "West"),
                       ("2026-03-01", "South")]
    assert (emp.team.name, emp.level.code, emp.leave_date) == ("South", "S3", None)
    with pytest.raises(ImportFileError) as err:
        send("E1,A,South,S3,2026-03-01,2026-02-28")
    assert (err.value.row, err.value.column) == (2, "leave_date")
    assert "leaves on 2026-02-28, before the effective date 2026-03-01" in str(err.value)
    send("E1,A,South,S3,2026-03-01,2026-06-30")
    assert emp.leave_date.isoformat() == "2026-06-30"
    # an effective date on the hire date is the hire: nothing before it
    import_employees(session, "e.csv", data=b"code,name,team,level\nE2,B,North,S1\n")
    import_employees(session, "e.csv", data=b"code,name,team,level,hire_date,effective_date\n"
                     b"E2,B,North,S1,2026-01-12,2026-01-12\n")
    e2 = session.query(Employee).filter_by(code="E2").one()
    assert [a.effective_date.isoformat() for a in session.query(Assignment)
            .filter_by(employee_id=e2.id)] == ["2026-01-12"]


# --- draws ------------------------------------------------------------------------------------

DRAW = [["field", "value"], ["effective_from", "2026-01-01"], ["when", ""],
        ["action.type", "draw"], ["action.rate", ""], ["action.base", ""],
        ["action.amount", "3000"], ["action.periods", "2"], ["action.recoverable", "true"],
        ["action.recovery_share", "0.5"]]


def test_a_draw_says_what_it_paid_recovered_and_owes_in_statement_and_export(
        session: Session) -> None:
    """A draw of 3,000.00 for January and February, half recovered. January: 3% of
    50,000 = 1,500.00 earned, 1,500.00 drawn. March (after the draw): 5% of 100,000 =
    5,000.00, half is 2,500.00: the 1,500.00 owed is recovered."""
    from engine import lifecycle

    specs.rule_changed(session, "commission.new_logo", DRAW)
    staff = specs.one_employee({}, "E1", "S2", "North")
    specs.results_by_period(session, {}, staff, [
        ["period", "employee", "quota", "revenue_new"], ["2026-01", "E1", "100000", "50000"],
        ["2026-03", "E1", "100000", "100000"]])
    runs = specs.make_settled_run(session, [], "2026-01", "approved")
    jan = _line(runs[-1][1], "E1", "commission.new_logo")
    assert jan["amount"] == Decimal("1500.00")
    words = " ".join(wording.explain("commission", jan["explanation"]))
    assert ("draw period 1 of 2: 3,000.00 guaranteed, commissions 1,500.00; shortfall paid "
            "as a draw 1,500.00; balance owed 0.00 -> 1,500.00") in words
    said = " ".join(next(x for x in plain.statement(session, runs[-1][1].run, "E1").lines
                         if x.rule_key == "commission.new_logo").plain)
    assert "your commissions of CN¥1,500 are below the CN¥3,000 guaranteed" in said
    assert "still owed: CN¥1,500" in said
    runs = specs.make_run(session, runs, "2026-03")
    march = _line(runs[-1][1], "E1", "commission.new_logo")
    assert march["amount"] == Decimal("-1500.00")
    calc = march["explanation"]["calc"]
    assert (calc["period"], calc["balance_before"], calc["balance_after"]) == (None, "1500.00",
                                                                               "0.00")
    assert calc["runs"] == [{"run_id": runs[0][1].run.id, "period": "2026-01"}]
    zh = " ".join(wording.explain("commission", march["explanation"], "zh"))
    assert "从 5,000.00 的 50% 中收回预支 1,500.00" in zh and "待收回余额 1,500.00 → 0.00" in zh
    said = " ".join(next(x for x in plain.statement(session, runs[-1][1].run, "E1", "zh")
                         .lines if x.rule_key == "commission.new_logo").plain)
    assert "从提成中收回此前预支 ¥1,500；尚待收回 ¥0" in said
    note = next(x for x in lifecycle.export_lines(session, runs[-1][1].run)
                if x["rule_key"] == "commission.new_logo")
    assert note["amount"] == Decimal("-1500.00")
    assert "recovered 1,500.00 (50% of 5,000.00, at most the balance)" in note["note"]
    assert "balance owed 1,500.00 -> 0.00" in note["note"]


@pytest.mark.parametrize("change, field, reason", [
    ({"recovery_share": None}, "action.recovery_share",
     "a recoverable draw needs the share of later commissions"),
    ({"recovery_share": "1.5"}, "action.recovery_share", "above 0% and at most 100%"),
    ({"periods": "2.5"}, "action.periods", "a whole number of periods, 1 to 120"),
    ({"amount": "0"}, "action.amount", "a draw guarantees an amount above 0"),
    ({"recoverable": None}, "action.recovery_share", "only a recoverable draw is recovered"),
    ({"recoverable": "maybe"}, "action.recoverable", "recoverable is true or false"),
])
def test_a_draw_that_cannot_hold_is_refused_naming_the_rule_and_field(
        session: Session, change: dict[str, Any], field: str, reason: str) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    action = {"type": "draw", "amount": "3000", "periods": 3, "recoverable": True,
              "recovery_share": "0.5"}
    action = {k: v for k, v in {**action, **change}.items() if v is not None}
    with pytest.raises(RuleError) as err:
        validate_for_session(session, {**doc, "effective_from": "2026-01-01",
                                       "action": action}, "rule commission.new_logo")
    assert err.value.field == field and reason in str(err.value)
    assert "rule commission.new_logo" in str(err.value)


def test_a_draw_reads_in_the_summary_and_lines(session: Session) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    draw = validate_for_session(session, {**doc, "effective_from": "2026-01-01", "action": {
        "type": "draw", "amount": "3000", "periods": 3, "recoverable": True,
        "recovery_share": "0.5"}}, "rule x")
    en, zh = reader(session, "en"), reader(session, "zh")
    assert ("commissions of at least 3,000.00 CNY a period for 3 periods from 2026-01-01, "
            "the shortfall paid as a draw; recoverable: 50% of later commissions") in \
        wording.summary(draw, en)
    assert "不足部分预支补足" in wording.summary(draw, zh)
    assert ("Recoverable", "yes: 50% of later commissions recovers it") in \
        wording.rule_lines(draw, en)
    assert ("保底期数", "3") in wording.rule_lines(draw, zh)


# --- clawbacks ----------------------------------------------------------------------------------


def test_a_clawback_names_the_rule_period_and_ratio_in_explanation_statement_and_export(
        session: Session) -> None:
    """January pays 1% of 50,000 = 500.00; February collects 16,000 of 40,000 signed
    (40%, below 50%): half of January's 500.00 is clawed back, -250.00."""
    from engine import lifecycle
    from engine.models import PayCode

    specs.rule_changed(session, "commission.new_logo", [
        ["field", "value"], ["action.clawback.below", "0.5"], ["action.clawback.within", "2"],
        ["action.clawback.share", "0.5"]])
    session.add(PayCode(rule_key="commission.new_logo", code="P100"))
    staff = specs.one_employee({}, "E1", "S2", "North")
    specs.results_by_period(session, {}, staff, [
        ["period", "employee", "quota", "revenue_new", "signed_amount", "collected_amount"],
        ["2026-01", "E1", "100000", "50000", "40000", "40000"],
        ["2026-02", "E1", "100000", "", "40000", "16000"]])
    runs = specs.make_settled_run(session, [], "2026-01", "approved")
    runs = specs.make_run(session, runs, "2026-02")
    line = _line(runs[-1][1], "E1", "clawback")
    assert (line["amount"], line["kind"], line["status"]) == (Decimal("-250.00"),
                                                              "commission", "payable")
    c = line["explanation"]["clawback"]
    assert (c["rule_key"], c["period"], c["run_id"], c["paid"], c["kept"]) == (
        "commission.new_logo", "2026-01", runs[0][1].run.id, "500.00", "250.00")
    assert line["value"] == f"commission.new_logo of 2026-01 (run {runs[0][1].run.id})"
    said = " ".join(next(x for x in plain.statement(session, runs[-1][1].run, "E1").lines
                         if x.rule_key == "clawback").plain)
    assert ("CN¥250 of the New-logo commission of CN¥500 paid for 2026-01 is taken back: "
            "your collection ratio this period, 40%, is below 50%") in said
    st = plain.statement(session, runs[-1][1].run, "E1", "zh")
    line_zh = next(x for x in st.lines if x.rule_key == "clawback")
    assert line_zh.rule_name == "提成追回" and "追回 2026-01 发放的新客户提成 ¥500 中的 ¥250" \
        in " ".join(line_zh.plain)
    row = next(x for x in lifecycle.export_lines(session, runs[-1][1].run)
               if x["rule_key"] == "clawback")
    assert row["pay_code"] == "P100" and row["amount"] == Decimal("-250.00")
    assert row["note"].startswith("clawback of 50% of the 500.00 commission.new_logo paid for "
                                  "2026-01") and "collection ratio 40% is below 50%" in row["note"]


@pytest.mark.parametrize("claw, field, reason", [
    ({"below": "0", "within": 2}, "action.clawback.below", "below a collection ratio above 0"),
    ({"below": "0.5", "within": 0}, "action.clawback.within", "1 to 24"),
    ({"below": "0.5", "within": 2, "share": "1.2"}, "action.clawback.share",
     "above 0% and at most 100%"),
    ({"below": "0.5", "within": 2, "after": 1}, "action.clawback.after",
     "unknown field 'after' for a clawback"),
    ("yes", "action.clawback", "a clawback is a mapping of below, within and share"),
])
def test_a_clawback_that_cannot_hold_is_refused_naming_the_rule_and_field(
        session: Session, claw: Any, field: str, reason: str) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    with pytest.raises(RuleError) as err:
        validate_for_session(session, {**doc, "action": {**doc["action"], "clawback": claw}},
                             "rule commission.new_logo")
    assert err.value.field == field and reason in str(err.value)
    assert "rule commission.new_logo" in str(err.value)


def test_a_clawback_reads_in_the_summary_and_lines(session: Session) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    claw = validate_for_session(session, {**doc, "action": {
        **doc["action"], "clawback": {"below": "0.5", "within": 3}}}, "rule x")
    en, zh = reader(session, "en"), reader(session, "zh")
    assert ("100% of what it paid is clawed back when the collection ratio of one of the 3 "
            "periods after falls below 50%") in wording.summary(claw, en)
    assert ("提成追回", "若之后 3 期内某期回款率低于 50%，追回本规则所发金额的 100%") in \
        wording.rule_lines(claw, zh)
    assert ("Clawback", "none") in wording.rule_lines(validate_for_session(session, doc, "x"),
                                                      en)


def test_a_part_held_until_collected_is_said_and_paid_with_its_origin(session: Session
                                                                      ) -> None:
    """60% of 500.00 on signing: 300.00; the 200.00 held is paid in February, whose
    collection ratio (36,000 / 40,000 = 90%) reaches the line."""
    from engine import lifecycle

    specs.rule_changed(session, "commission.new_logo", [
        ["field", "value"], ["action.on_signing.share", "0.6"],
        ["action.on_signing.release_at", "0.9"]])
    staff = specs.one_employee({}, "E1", "S2", "North")
    specs.results_by_period(session, {}, staff, [
        ["period", "employee", "quota", "revenue_new", "signed_amount", "collected_amount"],
        ["2026-01", "E1", "100000", "50000", "40000", "10000"],
        ["2026-02", "E1", "100000", "", "40000", "36000"]])
    runs = specs.make_settled_run(session, [], "2026-01", "approved")
    jan = _line(runs[-1][1], "E1", "commission.new_logo")
    assert jan["explanation"]["calc"]["on_signing"] == {
        "share": "0.6", "release_at": "0.9", "full": "500.00", "paid": "300.00",
        "held": "200.00"}
    assert ("60% paid on signing: 300.00; 200.00 held until the collection ratio reaches "
            "90%") in " ".join(wording.explain("commission", jan["explanation"]))
    said = " ".join(next(x for x in plain.statement(session, runs[-1][1].run, "E1", "zh")
                         .lines if x.rule_key == "commission.new_logo").plain)
    assert "签约时发放 ¥300，其余 ¥200 在回款率达到 90% 后发放" in said
    runs = specs.make_run(session, runs, "2026-02")
    feb = _line(runs[-1][1], "E1", "collected_release")
    assert feb["amount"] == Decimal("200.00")
    assert feb["explanation"]["collected"]["run_id"] == runs[0][1].run.id
    said = " ".join(next(x for x in plain.statement(session, runs[-1][1].run, "E1").lines
                         if x.rule_key == "collected_release").plain)
    assert ("The CN¥200 of the New-logo commission for 2026-01 held until the cash was "
            "collected, paid now: your collection ratio reached 90%") in said
    row = next(x for x in lifecycle.export_lines(session, runs[-1][1].run)
               if x["rule_key"] == "collected_release")
    assert row["note"].startswith("the 200.00 of commission.new_logo for 2026-01 (run ")


@pytest.mark.parametrize("part, field, reason", [
    ({"share": "1", "release_at": "0.9"}, "action.on_signing.share", "above 0% and below 100%"),
    ({"share": "0.6", "release_at": "0"}, "action.on_signing.release_at",
     "a collection ratio above 0"),
    ({"share": "0.6"}, "action.on_signing.release_at", ""),
])
def test_a_part_on_signing_that_cannot_hold_is_refused_naming_the_field(
        session: Session, part: dict[str, str], field: str, reason: str) -> None:
    doc = read_rule_file(ROOT / "rules/commission.new_logo.yaml")
    with pytest.raises(RuleError) as err:
        validate_for_session(session, {**doc, "action": {**doc["action"], "on_signing": part}},
                             "rule commission.new_logo")
    assert err.value.field == field and reason in str(err.value)
    assert ("Paid on signing", "all at once") in wording.rule_lines(
        validate_for_session(session, doc, "x"), reader(session, "en"))


def test_a_clawback_and_a_release_explain_themselves_in_the_readers_language() -> None:
    """The lines a run adds for a clawback and for a part paid once collected say the
    collection ratio as a percentage and what was moved, in English and in Chinese."""
    from engine import clawbacks

    rules = {"commission.x": {"kind": "commission", "action": {"clawback": {
        "below": "0.6", "within": 3, "share": 1}}}}
    paid = [{"rule_key": "commission.x", "period": "2026-02", "run_id": 2, "paid": "150.00",
             "clawed_before": "0.00"}]
    held = [{"rule_key": "commission.x", "period": "2026-01", "run_id": 1, "held": "300.71",
             "release_at": "0.9"}]
    [(_, claw)] = clawbacks.lines({"collection_ratio": Decimal("0.55")}, rules, paid)
    [(_, release)] = clawbacks.releases({"collection_ratio": Decimal("0.923000004")}, held)
    labels = {"collection_ratio": "Collection ratio"}
    types = {"collection_ratio": "ratio"}
    en = wording.explain("commission", claw, "en", labels.get, types)
    assert en[0] == "because Collection ratio 55% < 60%"
    assert "150.00" in en[1] and "2026-02" in en[1]
    en = wording.explain("commission", release, "en", labels.get, types)
    assert en[0] == "because Collection ratio 92.3000004% ≥ 90%"
    zh = wording.explain("commission", release, "zh", {"collection_ratio": "回款率"}.get, types)
    assert zh[0] == "因为 回款率 92.3000004% ≥ 90%" and "回款率" in zh[1] and "300.71" in zh[1]
    zh = " ".join(wording.explain("commission", claw, "zh", {"collection_ratio": "回款率"}.get,
                                  types))
    assert "追回" in zh and "because" not in zh and "clawback" not in zh
    assert wording.moved_value("clawback", claw, "commission.x of 2026-02 (run 2)", "zh") \
        == "commission.x，2026-02（计算批次 2）"


def test_a_released_hold_explains_itself_in_chinese() -> None:
    """The explanation engine.runs stores for a hold released after the lock."""
    exp = {"rule": "Released hold", "released": {"rule_key": "commission.x",
                                                 "period": "2026-01", "run_id": 3,
                                                 "flags": [4, 5]},
           "facts": {"amount": "120.00"},
           "conditions": ["every flag that held it (compliance.y: flag 4, 5) was dismissed "
                          "after run 3 was locked"],
           "arithmetic": "released 120.00 held in run 3 (2026-01)"}
    zh = wording.explain("commission", exp, "zh")
    assert zh == ["因为 暂扣它的标记（4、5）均在计算批次 3 锁定后被驳回",
                  "发放计算批次 3（2026-01）中暂扣的 120.00"]
    assert wording.explain("commission", exp, "en")[1] == exp["arithmetic"]
    assert wording.moved_value("released_hold", exp, "x", "zh") == \
        "commission.x，2026-01（计算批次 3，标记 4、5）"
