"""The policy library as HR specifies it: every feature in features/, run on the real engine.

The steps are few and generic, shared by all fifteen feature files, and live in
engine/specs.py: the back office runs the same steps before it publishes a rule. Givens
build the organisation and the results; they reach the database through the same CSV
imports HR uses, and every run is committed, so a later quarter reads the previous
quarter's rating and PIPs from the database as it would in production. Expected values in
the features are worked out by hand from POLICIES.md, never copied from the engine.
"""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from sqlalchemy.orm import Session

from engine import specs
from engine.specs import Runs, Staff

scenarios("")


# --- state the steps pass along (target_fixture overrides these) --------------------------------


@pytest.fixture()
def teams() -> dict[str, str]:
    """Team name -> stage."""
    return {}


@pytest.fixture()
def staff() -> Staff:
    return {}


@pytest.fixture()
def runs() -> Runs:
    return []


# --- the organisation ---------------------------------------------------------------------------


@given(parsers.parse(specs.TEAM_AT_STAGE), target_fixture="teams")
def team_at_stage(teams: dict[str, str], team: str, stage: str) -> dict[str, str]:
    return specs.team_at_stage(teams, team, stage)


@given(parsers.parse(specs.ONE_EMPLOYEE), target_fixture="staff")
def one_employee(staff: Staff, code: str, level: str, team: str) -> Staff:
    return specs.one_employee(staff, code, level, team)


@given(parsers.parse(specs.EMPLOYEE_RANGE), target_fixture="staff")
def employee_range(staff: Staff, first: str, last: str, level: str, team: str) -> Staff:
    return specs.employee_range(staff, first, last, level, team)


@given(parsers.parse(specs.RESULTS_FOR))
def results_for(session: Session, teams: dict[str, str], staff: Staff, period: str,
                datatable: list[list[str]]) -> None:
    specs.results_for(session, teams, staff, period, datatable)


@given(specs.RESULTS)
def results_by_period(session: Session, teams: dict[str, str], staff: Staff,
                      datatable: list[list[str]]) -> None:
    specs.results_by_period(session, teams, staff, datatable)


# --- the rules ----------------------------------------------------------------------------------


@given(parsers.parse(specs.RULE_CHANGED))
def rule_changed(session: Session, rule: str, datatable: list[list[str]]) -> None:
    specs.rule_changed(session, rule, datatable)


# --- runs ---------------------------------------------------------------------------------------


@given(parsers.parse(specs.RUN_WAS_SETTLED), target_fixture="runs")
def make_settled_run(session: Session, runs: Runs, period: str, state: str) -> Runs:
    return specs.make_settled_run(session, runs, period, state)


@given(parsers.parse(specs.RUN_WAS_MADE), target_fixture="runs")
@when(parsers.parse(specs.RUN_IS_MADE), target_fixture="runs")
def make_run(session: Session, runs: Runs, period: str) -> Runs:
    return specs.make_run(session, runs, period)


# --- payouts ------------------------------------------------------------------------------------


@then(parsers.parse(specs.RECEIVES))
def receives(session: Session, runs: Runs, code: str, rule: str, kind: str, amount: str,
             status: str) -> None:
    specs.receives(session, runs, code, rule, kind, amount, status)


@then(parsers.parse(specs.ONLY_RECEIVE))
def only_they_receive(session: Session, runs: Runs, codes: str, rule: str, kind: str,
                      amount: str, status: str) -> None:
    specs.only_they_receive(session, runs, codes, rule, kind, amount, status)


@then(parsers.parse(specs.RECEIVES_NO))
def receives_no(session: Session, runs: Runs, code: str, rule: str, kind: str) -> None:
    specs.receives_no(session, runs, code, rule, kind)


# --- values: ratings, flags, alerts, awards, eligibility, PIPs ----------------------------------


@then(parsers.parse(specs.IS_RATED))
def is_rated(session: Session, runs: Runs, code: str, value: str) -> None:
    specs.is_rated(session, runs, code, value)


@then(parsers.parse(specs.IS_NOT_RATED))
def is_not_rated(session: Session, runs: Runs, code: str) -> None:
    specs.is_not_rated(session, runs, code)


@then(parsers.parse(specs.GETS_VALUED))
def gets_valued(session: Session, runs: Runs, code: str, kind: str, rule: str,
                value: str) -> None:
    specs.gets_valued(session, runs, code, kind, rule, value)


@then(parsers.parse(specs.ONLY_GET))
def only_they_get(session: Session, runs: Runs, codes: str, kind: str, rule: str,
                  value: str) -> None:
    specs.only_they_get(session, runs, codes, kind, rule, value)


# --- absence and warnings -----------------------------------------------------------------------


@then(parsers.parse(specs.HAS_NO_OUTCOME))
def has_no_outcome(session: Session, runs: Runs, code: str, rule: str) -> None:
    specs.has_no_outcome(session, runs, code, rule)


@then(parsers.parse(specs.NOBODY_HAS))
def nobody_has(session: Session, runs: Runs, rule: str) -> None:
    specs.nobody_has(session, runs, rule)


@then(parsers.parse(specs.GETS_WARNING))
def gets_warning(session: Session, runs: Runs, code: str, rule: str, metric: str) -> None:
    specs.gets_warning(session, runs, code, rule, metric)
