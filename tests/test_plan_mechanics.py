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
    ({"cap": "-1"}, "action.cap", "a cap cannot be negative"),
    ({"annual_cap": "10.005"}, "action.annual_cap",
     "10.005 has more than 2 decimals: an annual cap is an amount in cents"),
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


def test_the_demo_only_policies_pass_their_own_scenarios(session: Session) -> None:
    """Each demo rule (engine.demo.DEMO_RULES) is valid and its scenarios pass the gate
    HR's changes go through; they are not in the library of rules/."""
    from engine.demo import DEMO_RULES, load_demo_rules
    from engine.rulebook import latest, read_yaml
    from engine.specs import run_gate

    library = {p.stem for p in (ROOT / "rules").glob("*.yaml")}
    assert load_demo_rules(session) == ["commission.demo_accelerator", "bonus.demo_collection"]
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
