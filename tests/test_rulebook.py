"""Rules as data: validation errors name the rule, row and field; files round-trip."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from admin.cli import main
from engine import rulebook
from engine.errors import RuleError
from engine.models import Rule

ROOT = Path(__file__).resolve().parent.parent

TIERED = {
    "key": "t.rule", "kind": "commission", "period_kind": "month",
    "when": [{"fact": "attainment", "op": "defined"}],
    "action": {"type": "tiers", "metric": "attainment", "base": "revenue_total", "tiers": [
        {"from": None, "to": "0.80", "rate": "0.03"},
        {"from": "0.80", "to": "1.00", "rate": "0.04"},
        {"from": "1.00", "to": None, "rate": "0.05"},
    ]},
}
RATING = {
    "key": "r.rule", "kind": "rating", "period_kind": "quarter",
    "action": {"type": "table", "rows": [
        {"when": [{"fact": "attainment", "op": ">=", "value": "1.10"}], "value": "A"},
        {"when": [{"fact": "attainment", "op": ">=", "value": "0.70"}], "value": "C"},
        {"when": [{"fact": "attainment", "op": "defined"}], "value": "D"},
    ]},
}


def check(session, doc, source="rules/x.yaml"):
    return rulebook.validate_for_session(session, doc, source)


def refused(session, doc, *words, field=None, row=None):
    with pytest.raises(RuleError) as err:
        check(session, doc)
    message = str(err.value)
    assert message.startswith("rules/x.yaml")
    for w in words:
        assert w in message, message
    if field is not None:
        assert err.value.field == field, message
    if row is not None:
        assert err.value.row == row, message
    return message


def test_valid_documents_normalise(session):
    doc = check(session, TIERED)
    assert doc["action"]["tiers"][1]["from"] == rulebook.num("0.80")
    assert check(session, RATING)["action"]["rows"][0]["value"] == "A"


def test_unknown_metric_is_refused(session):
    doc = copy.deepcopy(TIERED)
    doc["when"] = [{"fact": "atainment", "op": "defined"}]
    refused(session, doc, "unknown metric", "atainment", field="when[1].fact")


def test_operator_that_does_not_fit_the_type(session):
    doc = copy.deepcopy(TIERED)
    doc["when"] = [{"fact": "team_stage", "op": ">=", "value": "growth"}]
    refused(session, doc, "does not fit text fact team_stage", field="when[1].op")
    doc["when"] = [{"fact": "attainment", "op": "in", "value": ["1"]}]
    refused(session, doc, "does not fit ratio metric attainment", field="when[1].op")
    doc["when"] = [{"fact": "attainment", "op": ">=", "value": "high"}]
    refused(session, doc, "is not a number", field="when[1].value")


def test_tier_gap_and_overlap(session):
    doc = copy.deepcopy(TIERED)
    doc["action"]["tiers"][1]["from"] = "0.85"
    refused(session, doc, "gap between 0.80", row=2, field="action.tiers.from")
    doc["action"]["tiers"][1]["from"] = "0.75"
    refused(session, doc, "overlaps tier 1", row=2)
    doc = copy.deepcopy(TIERED)
    doc["action"]["tiers"][0]["to"] = None
    refused(session, doc, "no upper bound", row=2)


def test_decision_row_that_can_never_match(session):
    doc = copy.deepcopy(RATING)
    doc["action"]["rows"].insert(2, {"when": [
        {"fact": "attainment", "op": ">=", "value": "0.90"},
        {"fact": "evaluation_score", "op": ">=", "value": "60"}], "value": "B"})
    refused(session, doc, "can never match", "row 2", row=3, field="action.rows.when")
    doc = copy.deepcopy(RATING)
    doc["action"]["rows"][0]["when"].append({"fact": "attainment", "op": "<", "value": "1"})
    refused(session, doc, "contradict", row=1)


def test_action_that_does_not_fit_the_kind(session):
    doc = copy.deepcopy(TIERED)
    doc["kind"] = "rating"
    refused(session, doc, "does not fit a rating rule", field="action.type")
    doc = copy.deepcopy(TIERED)
    doc["hold"] = True
    refused(session, doc, "only a flag can hold", field="hold")


@pytest.mark.parametrize("field", ["key", "kind", "period_kind", "action"])
def test_missing_field(session, field):
    doc = copy.deepcopy(TIERED)
    del doc[field]
    refused(session, doc, field=field if field != "action" else "action")


def test_unknown_field_and_bad_values(session):
    doc = dict(TIERED, colour="red")
    refused(session, doc, "unknown field 'colour'", field="colour")
    refused(session, dict(TIERED, period_kind="week"), "unknown period kind", field="period_kind")
    refused(session, dict(TIERED, scope={"team_stage": ["seed"]}), "unknown team stage")
    refused(session, dict(TIERED, scope={"level": ["Z9"]}), "unknown level", field="scope.level")


def test_library_is_published_and_export_load_round_trips(db_url, session, tmp_path):
    published = rulebook.published_rules(session)
    assert len(published) == 15
    assert {r.key for r in published} == {p.stem for p in (ROOT / "rules").glob("*.yaml")}
    runner = CliRunner()
    out = tmp_path / "export"
    result = runner.invoke(main, ["rules", "export", str(out)])
    assert result.exit_code == 0, result.output
    before = {r.key: (r.version, r.content_hash) for r in published}
    result = runner.invoke(main, ["rules", "load", str(out), "--publish"])
    assert result.exit_code == 0, result.output
    assert "(unchanged)" in result.output
    session.expire_all()
    after = {r.key: (r.version, r.content_hash) for r in rulebook.published_rules(session)}
    assert after == before
    # exported twice, the files are identical
    again = tmp_path / "again"
    runner.invoke(main, ["rules", "export", str(again)])
    for f in out.iterdir():
        assert f.read_text() == (again / f.name).read_text()
    # each rule's scenarios are its feature file, as features/ has it
    for feature in (ROOT / "features").glob("*.feature"):
        assert (out / feature.name).read_text() == feature.read_text()


def test_scenarios_changed_in_the_back_office_export_and_load_back(db_url, session, tmp_path):
    from engine import authoring, scenarios
    from engine.models import User

    session.add(User(email="hr@example.com", name="hr", role="hr_admin"))
    rule = rulebook.latest(session, "commission.new_logo")
    feature = scenarios.read(rule.scenarios)
    feature.scenarios[0].name = "Renamed in the back office"
    rulebook.publish_rule(session, authoring.save_scenarios(
        session, rule, scenarios.write(feature), "hr@example.com"))
    session.commit()
    out = tmp_path / "export"
    assert CliRunner().invoke(main, ["rules", "export", str(out)]).exit_code == 0
    text = (out / "commission.new_logo.feature").read_text()
    assert "Scenario Outline: Renamed in the back office" in text
    before = {r.key: (r.version, r.content_hash, r.scenarios)
              for r in rulebook.published_rules(session)}
    result = CliRunner().invoke(main, ["rules", "load", str(out), "--publish"])
    assert result.exit_code == 0 and "commission.new_logo v2 published (unchanged)" in \
        result.output
    session.expire_all()
    assert {r.key: (r.version, r.content_hash, r.scenarios)
            for r in rulebook.published_rules(session)} == before
    # a changed feature file alone is a new version of the rule
    (out / "commission.new_logo.feature").write_text(text.replace("Renamed", "Named"))
    result = CliRunner().invoke(main, ["rules", "load", str(out / "commission.new_logo.yaml")])
    assert result.exit_code == 0 and "commission.new_logo v3 draft" in result.output
    # a feature file with a step no one knows is refused, naming the file and the line
    (out / "commission.new_logo.feature").write_text(text + "    Then the moon is full\n")
    result = CliRunner().invoke(main, ["rules", "validate", str(out)])
    assert result.exit_code == 1
    assert "commission.new_logo.feature, row" in result.stderr and "the moon" in result.stderr


def test_load_changed_file_makes_a_new_version_and_validate_changes_nothing(db_url, session,
                                                                            tmp_path):
    runner = CliRunner()
    src = (ROOT / "rules" / "commission.new_logo.yaml").read_text()
    changed = tmp_path / "new_logo.yaml"
    changed.write_text(src.replace("rate: 0.01", "rate: 0.02"))
    count = session.scalar(select(func.count()).select_from(Rule))
    result = runner.invoke(main, ["rules", "validate", str(changed)])
    assert result.exit_code == 0 and "1 rule file(s) valid" in result.output
    assert session.scalar(select(func.count()).select_from(Rule)) == count
    result = runner.invoke(main, ["rules", "load", str(changed)])
    assert result.exit_code == 0
    assert "commission.new_logo v2 draft" in result.output


def test_invalid_file_exit_1_names_file_and_changes_nothing(db_url, session, tmp_path):
    good = tmp_path / "a.yaml"
    good.write_text((ROOT / "rules" / "commission.new_logo.yaml").read_text()
                    .replace("rate: 0.01", "rate: 0.02"))
    bad = tmp_path / "b.yaml"
    bad.write_text((ROOT / "rules" / "alert.funnel.yaml").read_text()
                   .replace("fact: leads,", "fact: leeds,"))
    count = session.scalar(select(func.count()).select_from(Rule))
    result = CliRunner().invoke(main, ["rules", "load", str(tmp_path)])
    assert result.exit_code == 1
    assert str(bad) in result.stderr and "leeds" in result.stderr
    assert "field when[1].fact" in result.stderr
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Rule)) == count


def test_yaml_syntax_error_names_the_line(db_url, tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("key: x\nkind: [unclosed\n")
    result = CliRunner().invoke(main, ["rules", "validate", str(bad)])
    assert result.exit_code == 1
    assert str(bad) in result.stderr and "row" in result.stderr


def test_a_missing_rule_path_is_a_user_error(db_url, tmp_path):
    result = CliRunner().invoke(main, ["rules", "validate", str(tmp_path / "nothing.yaml")])
    assert result.exit_code == 1 and "nothing.yaml" in result.stderr
