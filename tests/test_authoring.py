"""Policy authoring in the engine: versions, approval by another hr_admin, try-it, impact."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine import authoring, scenarios, statements
from engine.errors import LaurelError, PermissionDenied, RuleError
from engine.imports import import_employees, import_results
from engine.lifecycle import approve as approve_run
from engine.models import Metric, User
from engine.rulebook import latest, published_rules, save_rule
from engine.runs import outcome_rows, start_run

HR1, HR2 = "hr1@example.com", "hr2@example.com"
EMPLOYEES = (b"code,name,team,level,team_stage\n"
             b"E1,Ann,North,S1,growth\nE2,Bob,North,S2,growth\nE3,Cy,South,S1,mature\n")
RESULTS = (b"period,employee_code,quota,revenue_new,revenue_existing\n"
           b"2026-01,E1,100000,90000,30000\n2026-01,E2,100000,50000,\n"
           b"2026-01,E3,100000,110000,0\n")


@pytest.fixture()
def org(session: Session) -> Session:
    for email in (HR1, HR2):
        session.add(User(email=email, name=email, role="hr_admin"))
    session.add(User(email="analyst@example.com", name="a", role="comp_analyst"))
    import_employees(session, "employees.csv", data=EMPLOYEES)
    import_results(session, "results.csv", data=RESULTS)
    session.commit()
    return session


BIG_MONTH = '''Scenario: A big month pays {amount}
  Given employee "E1" at level "S1" in team "North"
  And the results for "2026-02":
    | employee | quota  | revenue_new |
    | E1       | 100000 | 150000      |
  When the compensation run for "2026-02" is made
  Then "E1" receives a "bonus.big_month" bonus of {amount} payable
'''


def bonus_doc(**changes: Any) -> dict[str, Any]:
    doc = {"key": "bonus.big_month", "name": "Big month", "kind": "bonus",
           "period_kind": "month",
           "when": [{"fact": "revenue_total", "op": ">=", "value": "100000"}],
           "action": {"type": "fixed", "amount": "250.00"}}
    doc.update(changes)
    return doc


def tiered(session: Session, rates: list[str]) -> dict[str, Any]:
    """The tiered commission's latest definition with other rates (a plain copy)."""
    rule = json.loads(json.dumps(latest(session, "commission.tiered").definition))
    for tier, rate in zip(rule["action"]["tiers"], rates, strict=True):
        tier["rate"] = rate
    return rule


def test_editing_a_published_rule_makes_a_draft_version_with_its_author(org: Session) -> None:
    doc = tiered(org, ["0.03", "0.04", "0.05", "0.07"])
    rule, created = authoring.save_draft(org, doc, HR1)
    assert created and (rule.version, rule.status, rule.created_by) == (2, "draft", HR1)
    assert [r.status for r in authoring.versions(org, "commission.tiered")] == [
        "draft", "published"]
    # the same content again is no new version
    assert authoring.save_draft(org, doc, HR1) == (rule, False)
    with pytest.raises(PermissionDenied):
        authoring.save_draft(org, doc, "analyst@example.com")


def test_approval_needs_another_hr_admin_and_keeps_who_and_when(org: Session) -> None:
    rule, _ = authoring.save_draft(org, bonus_doc(), HR1,
                                   scenarios=BIG_MONTH.format(amount="250.00"))
    with pytest.raises(Exception, match="awaits no approval"):
        authoring.approve(org, rule, HR2)
    authoring.request_publish(org, rule, HR1)
    with pytest.raises(PermissionDenied, match="another hr_admin"):
        authoring.approve(org, rule, HR1)
    assert rule.status == "draft"
    authoring.approve(org, rule, HR2)
    assert (rule.status, rule.created_by, rule.publish_requested_by, rule.approved_by) == (
        "published", HR1, HR1, HR2)
    assert rule.publish_requested_at is not None and rule.approved_at is not None
    assert "bonus.big_month" in [r.key for r in published_rules(org, "month")]


def test_the_author_cannot_approve_what_another_asked_to_publish(org: Session) -> None:
    rule, _ = authoring.save_draft(org, bonus_doc(), HR1,
                                   scenarios=BIG_MONTH.format(amount="250.00"))
    authoring.request_publish(org, rule, HR2)
    with pytest.raises(PermissionDenied):
        authoring.approve(org, rule, HR1)


def test_a_failing_feature_scenario_blocks_the_request(org: Session) -> None:
    rule, _ = authoring.save_draft(org, tiered(org, ["0.03", "0.04", "0.05", "0.07"]), HR1)
    with pytest.raises(authoring.PublishBlocked) as caught:
        authoring.request_publish(org, rule, HR1)
    report = caught.value.report
    failed = report.failures[0]
    assert failed.source == "commission.tiered.feature"
    assert failed.failed_step.text == \
        '"E1" receives a "commission.tiered" commission of 7200.00 payable'
    assert failed.expected == "E1 commission.tiered commission 7200.00 CNY payable"
    assert failed.actual == "E1 commission.tiered commission 8400.00 CNY payable"
    assert rule.publish_requested_by is None


def test_a_rule_without_scenarios_cannot_be_published(org: Session) -> None:
    rule, _ = authoring.save_draft(org, bonus_doc(), HR1)
    with pytest.raises(authoring.PublishBlocked, match="has no scenario") as caught:
        authoring.request_publish(org, rule, HR1)
    assert caught.value.report.scenarios == [] and rule.publish_requested_by is None


def test_scenarios_belong_to_the_version_and_gate_it(org: Session) -> None:
    rule, _ = authoring.save_draft(org, bonus_doc(), HR1,
                                   scenarios=BIG_MONTH.format(amount="300.00"))
    with pytest.raises(authoring.PublishBlocked) as caught:
        authoring.request_publish(org, rule, HR1)
    failed = caught.value.report.failures[0]
    assert (failed.expected, failed.actual) == (
        "E1 bonus.big_month bonus 300.00 CNY payable",
        "E1 bonus.big_month bonus 250.00 CNY payable")
    # a draft nobody asked to publish holds its changed scenarios itself
    same = authoring.save_scenarios(org, rule, BIG_MONTH.format(amount="250.00"), HR1)
    assert same is rule and "250.00 payable" in rule.scenarios
    report = authoring.request_publish(org, rule, HR1)
    assert report.passed and len(report.scenarios) == 1
    authoring.approve(org, rule, HR2)
    # changing a published version's scenarios makes a new draft with the same rule
    new = authoring.save_scenarios(org, rule, BIG_MONTH.format(amount="250.00").replace(
        "150000", "160000"), HR1)
    assert (new.version, new.status, new.content_hash) == (2, "draft", rule.content_hash)
    assert "160000" in new.scenarios and "150000" in rule.scenarios
    lines = authoring.diff_scenarios(rule.scenarios, new.scenarios)
    assert [(d.field, "150000" in d.left, "160000" in d.right) for d in lines] == [
        ("Scenario: A big month pays 250.00", True, True)]
    # steps must be the vocabulary's
    with pytest.raises(LaurelError, match="no step has the words"):
        authoring.save_scenarios(org, new, "Scenario: x\n  Given the moon\n", HR1)


@pytest.mark.slow
def test_hr_accepts_the_new_figures_of_the_examples_it_chooses(org: Session) -> None:
    rule, _ = authoring.save_draft(org, tiered(org, ["0.03", "0.04", "0.05", "0.07"]), HR1)
    with pytest.raises(authoring.PublishBlocked) as caught:
        authoring.request_publish(org, rule, HR1)
    failures = caught.value.report.failures
    assert all(f.acceptable for f in failures)
    by_name = {f.name: f for f in failures}
    outline = next(f for f in failures if f.example.get("case") == "exactly 120%")
    assert (outline.example["commission"], outline.figures["amount"]) == ("7200.00", "8400.00")
    assert {f.example.get("case") for f in failures if f.example} == {
        "exactly 120%", "150% of quota"}
    plain = by_name["The tier rate applies to the whole revenue, not only to the part above "
                    "the step"]
    chosen = [authoring.Acceptance(f.where, f.failed_step.index, f.figures)
              for f in (outline, plain)]
    holder = authoring.accept_figures(org, rule, chosen, HR1)
    assert holder is rule  # the draft holds them
    feature = scenarios.read(rule.scenarios)
    rows = {r[0]: r for r in feature.scenarios[0].examples[0].rows}
    assert rows["exactly 120%"][3] == "8400.00" and rows["150% of quota"][3] == "9000.00"
    assert 'commission of 8400.00 payable' in feature.scenarios[1].steps[-1].text
    # what was not accepted still fails, and only that
    with pytest.raises(authoring.PublishBlocked) as caught:
        authoring.request_publish(org, rule, HR1)
    assert {f.example.get("case") or f.name[:20] for f in caught.value.report.failures} == {
        "150% of quota", "Revenue from new cus"}


def test_a_retired_version_still_applies_to_periods_before_its_successor(
        org: Session) -> None:
    old = latest(org, "commission.tiered")
    doc = tiered(org, ["0.03", "0.04", "0.05", "0.07"])
    doc["effective_from"] = "2026-07-01"
    new, _ = save_rule(org, doc, "test", publish=True)
    assert (old.status, old.effective_to) == ("retired", dt.date(2026, 6, 30))
    assert [r.version for r in published_rules(org, "month", on=dt.date(2026, 1, 31))
            if r.key == "commission.tiered"] == [old.version]
    assert [r.version for r in published_rules(org, "month", on=dt.date(2026, 7, 31))
            if r.key == "commission.tiered"] == [new.version]
    # and a run of an older period pays with the old rates
    run = start_run(org, "2026-01", actor="t").run
    assert {r["key"]: r["version"] for r in run.rules}["commission.tiered"] == old.version
    # a version replacing another from the start retires it everywhere
    doc = tiered(org, ["0.03", "0.04", "0.05", "0.06"])
    doc["effective_from"] = None
    third, _ = save_rule(org, doc, "test", publish=True)
    assert [r.version for r in published_rules(org, "month", on=dt.date(2026, 1, 31))
            if r.key == "commission.tiered"] == [third.version]


def _plain(outcomes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((o["employee_code"], o["rule_key"], o["kind"], o["amount"], o["value"],
                   o["status"], json.dumps(o["explanation"], sort_keys=True))
                  for o in outcomes)


def test_try_it_gives_what_the_run_gives_for_that_employee(org: Session) -> None:
    draft = tiered(org, ["0.02", "0.04", "0.05", "0.08"])
    tried = authoring.try_rule(org, draft, "2026-01", "E1")
    assert any(t.from_draft and t.amount == Decimal("9600.00") for t in tried)
    assert any("Attainment 120%: tier 4 (120% and above), so 8% of Total revenue" in
               " ".join(t.words) for t in tried)
    zh = authoring.try_rule(org, draft, "2026-01", "E1", "zh")
    assert any("指标达成率 120%：第 4 档（120% 及以上）" in " ".join(t.words) for t in zh)
    save_rule(org, draft, "test", publish=True)
    run = start_run(org, "2026-01", actor="t").run
    real = [o for o in outcome_rows(org, run) if o["employee_code"] == "E1"]
    for o in real:
        o["amount"] = None if o["amount"] is None else Decimal(o["amount"])
    mine = [{"employee_code": "E1", "rule_key": t.rule_key, "kind": t.kind,
             "amount": t.amount, "value": t.value, "status": t.status,
             "explanation": t.explanation} for t in tried]
    assert _plain(mine) == _plain(real)


def test_the_impact_preview_equals_the_difference_of_real_runs(org: Session) -> None:
    draft = tiered(org, ["0.02", "0.04", "0.05", "0.08"])
    assert authoring.preview_periods(org, "month") == []  # never a period not run
    before = start_run(org, "2026-01", actor="t").run
    assert authoring.preview_periods(org, "month") == []  # nor one not approved
    approve_run(org, before.id, "analyst@example.com")
    assert [p.code for p in authoring.preview_periods(org, "month")] == ["2026-01"]
    [preview] = authoring.impact_preview(org, draft, ["2026-01"])
    assert (preview.run_id, preview.currency) == (before.id, "CNY")
    save_rule(org, draft, "test", publish=True)
    after = start_run(org, "2026-01", actor="t").run
    real = statements.diff_runs(org, before, after)
    assert [(r["employee_code"], r["rule_key"], r["change"], r["delta"]) for r in real] == [
        (r["employee_code"], r["rule_key"], r["change"], r["delta"]) for r in preview.rows]
    assert {e.code for e in preview.changed} == {r["employee_code"] for r in real}
    total = sum((r["delta"] for r in real), Decimal(0))
    assert preview.total_delta == total
    assert preview.by_kind["commission"][1] - preview.by_kind["commission"][0] == total
    assert preview.employees == 3
    # E1 120% -> 8% of 120000; E2 50% -> 2% of 50000; E3 110% unchanged at 5%
    assert {e.code: e.delta for e in preview.changed} == {
        "E1": Decimal("2400.00"), "E2": Decimal("-500.00")}


def test_versions_compare_field_by_field_in_words(org: Session) -> None:
    old = latest(org, "commission.tiered")
    doc = tiered(org, ["0.03", "0.04", "0.05", "0.07"])
    doc["scope"] = {"team_stage": ["growth"]}
    new, _ = authoring.save_draft(org, doc, HR1)
    words = statements.reader(org)
    lines = {d.field: d for d in authoring.diff_definitions(old.definition, new.definition,
                                                            words)}
    assert (lines["Tier 4"].left, lines["Tier 4"].right) == (
        "120% and above: 6%", "120% and above: 7%")
    assert (lines["Scope: Team stage"].left, lines["Scope: Team stage"].right) == (
        "all", "growth")
    assert lines["When"].left == "Attainment is defined" and not lines["When"].changed
    assert [d.field for d in authoring.diff_definitions(old.definition, new.definition, words)
            if d.changed] == ["Scope: Team stage", "Tier 4"]
    zh = {d.field: d for d in authoring.diff_definitions(
        old.definition, new.definition, statements.reader(org, "zh"))}
    assert (zh["第 4 档"].left, zh["范围：团队阶段"].right) == ("120% 及以上：6%", "成长期")
    assert authoring.diff_scenarios(old.scenarios, new.scenarios) == []


def test_a_new_metric_is_usable_in_a_rule_and_importable_at_once(org: Session) -> None:
    org.add(Metric(key="market_penetration", label_en="Market penetration", type="ratio",
                   rollup="mean"))
    org.flush()
    rule, _ = authoring.save_draft(org, bonus_doc(
        key="bonus.penetration",
        when=[{"fact": "market_penetration", "op": ">=", "value": "0.3"}]), HR1)
    import_results(org, "results.csv",
                   data=b"period,employee_code,market_penetration\n2026-01,E3,0.35\n")
    tried = authoring.try_rule(org, rule.definition, "2026-01", "E3")
    assert [(t.rule_key, t.amount) for t in tried if t.from_draft] == [
        ("bonus.penetration", Decimal("250.00"))]
    # its type is checked like any metric's: a ratio is no text
    with pytest.raises(RuleError) as caught:
        authoring.save_draft(org, bonus_doc(
            key="bonus.penetration",
            when=[{"fact": "market_penetration", "op": "in", "value": ["a"]}]), HR1)
    assert caught.value.field == "when[1].op"
