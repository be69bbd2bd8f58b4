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
