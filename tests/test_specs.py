"""The scenario runner that gates publishing: parsing, steps, expected and found."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from engine import specs
from engine.rulebook import latest

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
    # The feature file alone passes on the published rule: the gate is green.
    report = specs.run_gate(session, draft, SCENARIOS)
    own = [s for s in report.scenarios if s.source != "features/commission.tiered.feature"]
    assert all(s.passed for s in report.scenarios if s not in own)
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
    words = own[2]
    assert words.failed_step.text == '"E1" dances' and "no step" in words.error
    assert not report.passed and len(report.failures) == 2


def test_the_gate_stores_nothing_in_the_real_database(session: Session) -> None:
    from engine.models import Employee, Run

    draft = latest(session, "bonus.service_star").definition
    report = specs.run_gate(session, draft)
    assert report.passed and len(report.scenarios) == 8
    assert session.query(Employee).count() == 0 and session.query(Run).count() == 0
    # well under a second a scenario, the scratch database made once
    assert report.seconds / len(report.scenarios) < 0.5


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
