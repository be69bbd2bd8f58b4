"""The scenario runner that gates publishing: parsing, steps, expected and found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine import specs
from engine.rulebook import latest

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = '''Background:
  Given employee "E1" at level "S1" in team "North"

Scenario Outline: The tiered commission pays <pay>
  Given the results for "2026-01":
    | employee | quota  | revenue_new |
    | E1       | 100000 | <revenue>   |
  When the compensation run for "2026-01" is made
  Then "E1" receives a "commission.tiered" commission of <pay> payable

  Examples:
    | revenue | pay     |
    | 100000  | 5000.00 |
    | 120000  | 9999.00 |

Scenario: Words no step knows
  Given the results for "2026-01":
    | employee | quota  | revenue_new |
    | E1       | 100000 | 100000      |
  Then "E1" dances
'''


def test_the_runner_reports_each_scenario_with_the_failing_step(session: Session) -> None:
    draft = latest(session, "commission.tiered").definition
    report = specs.run_gate(session, draft, SCENARIOS)
    own = report.scenarios
    assert [(s.name, s.passed) for s in own] == [
        ("The tiered commission pays 5000.00", True),
        ("The tiered commission pays 9999.00", False),
        ("Words no step knows", False)]
    second = own[1]
    assert second.failed_step.text == \
        '"E1" receives a "commission.tiered" commission of 9999.00 payable'
    assert (second.expected, second.actual) == (
        "E1 commission.tiered commission 9999.00 CNY payable",
        "E1 commission.tiered commission 7200.00 CNY payable")
    assert [s.status for s in second.steps] == ["passed", "passed", "passed", "failed"]
    # the new figure, where it goes, and the example's inputs
    assert second.figures == {"amount": "7200.00", "status": "payable"}
    assert second.acceptable and second.example == {"revenue": "120000", "pay": "9999.00"}
    assert second.inputs[0].table == [["employee", "quota", "revenue_new"],
                                      ["E1", "100000", "120000"]]
    words = own[2]
    assert words.failed_step.text == '"E1" dances' and "no step" in words.error
    assert not report.passed and len(report.failures) == 2


def test_the_gate_stores_nothing_in_the_real_database(session: Session) -> None:
    from engine.models import Employee, Run

    rule = latest(session, "bonus.service_star")
    report = specs.run_gate(session, rule.definition, rule.scenarios)
    assert report.passed and len(report.scenarios) == 8
    assert session.query(Employee).count() == 0 and session.query(Run).count() == 0


def test_scenarios_that_do_not_parse_name_the_line() -> None:
    with pytest.raises(specs.SpecSyntaxError, match=r"\(5:5\): inconsistent cell count"):
        specs.parse_scenarios('Scenario: x\n  Given a:\n    | a |\n    | b | c |\n', "mine")
    assert specs.parse_scenarios("  \n", "mine") == []


def test_the_vocabulary_matches_every_step_of_the_feature_files() -> None:
    for path in sorted(specs.FEATURES.glob("*.feature")):
        for pickle in specs.parse_scenarios(path.read_text(), path.name):
            for step in pickle["steps"]:
                assert specs.match(step["text"]) is not None, (path.name, step["text"])
    assert ("Then", specs.RECEIVES, "") in specs.vocabulary()
    assert json.dumps(specs.vocabulary())


def test_the_migration_gives_each_version_the_scenarios_its_gate_ran(tmp_path: Path) -> None:
    """Before 0010 the gate ran features/KEY.feature and HR's scenarios of the key."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from engine import db, scenarios

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["engine"] = db.get_engine(url)
    insert = text("INSERT INTO rule (key, version, name, kind, period_kind, status, "
                  "definition, content_hash) VALUES (:k, :v, '', 'bonus', 'month', "
                  "'published', '{}', '')")
    try:
        command.upgrade(cfg, "0008")
        with db.get_engine(url).begin() as conn:
            for key, version in (("commission.tiered", 1), ("commission.tiered", 2),
                                 ("bonus.big_month", 1)):
                conn.execute(insert, {"k": key, "v": version})
            conn.execute(text("INSERT INTO rule_scenario (rule_key, text, updated_by) "
                              "VALUES ('bonus.big_month', :t, 'hr')"), {"t": MINE})
            conn.execute(text("INSERT INTO rule_scenario (rule_key, text, updated_by) "
                              "VALUES ('commission.tiered', :t, 'hr')"), {"t": MINE})
        command.upgrade(cfg, "0010")
        with db.get_engine(url).connect() as conn:
            got = dict(conn.execute(text("SELECT key || ' v' || version, scenarios FROM rule"))
                       .all())
    finally:
        db._engines.pop(url).dispose()
    feature = (ROOT / "features" / "commission.tiered.feature").read_text()
    assert got["commission.tiered v1"] == got["commission.tiered v2"]
    names = [s.name for s in scenarios.read(got["commission.tiered v1"]).scenarios]
    assert names == [s.name for s in scenarios.read(feature).scenarios] + ["Mine"]
    assert [s.name for s in scenarios.read(got["bonus.big_month v1"]).scenarios] == ["Mine"]


MINE = '''Scenario: Mine
  Given employee "E1" at level "S1" in team "North"
  When the compensation run for "2026-01" is made
  Then "E1" has no "bonus.big_month" outcome
'''


def test_a_feature_written_again_says_the_same() -> None:
    from engine import scenarios

    for path in sorted(specs.FEATURES.glob("*.feature")):
        text = path.read_text()
        again = scenarios.write(scenarios.read(text, path.name))
        assert scenarios.same(text, again), path.name
        assert [(p["name"], [s["text"] for s in p["steps"]], w)
                for p, w, _ in scenarios.expand(text, "a")] == [
            (p["name"], [s["text"] for s in p["steps"]], w)
            for p, w, _ in scenarios.expand(again, "a")], path.name
