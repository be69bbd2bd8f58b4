"""The policy library as HR specifies it: every feature in features/, run on the real engine.

The steps are few and generic, shared by all fifteen feature files. Givens build the
organisation and the results; they reach the database through the same CSV imports HR
uses, and every run is committed, so a later quarter reads the previous quarter's rating
and PIPs from the database as it would in production. Expected values in the features are
worked out by hand from POLICIES.md, never copied from the engine.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from sqlalchemy.orm import Session

from engine.imports import import_employees, import_results
from engine.runs import RunResult, outcome_rows, start_run

scenarios("")

ACTOR = "tester@example.com"
# A team nobody declared is `mature`: no stage-scoped bonus applies to it by accident.
DEFAULT_STAGE = "mature"
MONEY_KINDS = ("commission", "bonus")

Staff = dict[str, tuple[str, str]]  # employee code -> (level, team)
Runs = list[tuple[str, RunResult]]  # (period, result) in the order the runs were made


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


@given(parsers.parse('the team "{team}" at stage "{stage}"'), target_fixture="teams")
def team_at_stage(teams: dict[str, str], team: str, stage: str) -> dict[str, str]:
    return {**teams, team: stage}


@given(parsers.parse('employee "{code}" at level "{level}" in team "{team}"'),
       target_fixture="staff")
def one_employee(staff: Staff, code: str, level: str, team: str) -> Staff:
    return {**staff, code: (level, team)}


@given(parsers.parse('employees "{first}" to "{last}" at level "{level}" in team "{team}"'),
       target_fixture="staff")
def employee_range(staff: Staff, first: str, last: str, level: str, team: str) -> Staff:
    lo, hi = re.fullmatch(r"(\D*)(\d+)", first), re.fullmatch(r"(\D*)(\d+)", last)
    assert lo and hi and lo[1] == hi[1] and len(lo[2]) == len(hi[2]), (
        f'"{first}" to "{last}" is not a range of codes')
    width = len(lo[2])
    added = {f"{lo[1]}{n:0{width}d}": (level, team) for n in range(int(lo[2]), int(hi[2]) + 1)}
    return {**staff, **added}


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def _import_staff(session: Session, teams: dict[str, str], staff: Staff) -> None:
    rows = [["code", "name", "team", "level", "team_stage"]]
    for code, (level, team) in staff.items():
        rows.append([code, f"Employee {code}", team, level, teams.get(team, DEFAULT_STAGE)])
    import_employees(session, "employees.csv", data=_csv(rows))


def _import_results(session: Session, teams: dict[str, str], staff: Staff,
                    table: list[list[str]], period: str | None) -> None:
    """Import a table whose `employee` column names the employee; an empty cell is undefined."""
    _import_staff(session, teams, staff)
    header = ["employee_code" if h == "employee" else h for h in table[0]]
    body = [list(r) for r in table[1:]]
    if period is not None:
        header = ["period", *header]
        body = [[period, *r] for r in body]
    import_results(session, "results.csv", data=_csv([header, *body]))
    session.commit()


@given(parsers.parse('the results for "{period}":'))
def results_for(session: Session, teams: dict[str, str], staff: Staff, period: str,
                datatable: list[list[str]]) -> None:
    _import_results(session, teams, staff, datatable, period)


@given("the results:")
def results_by_period(session: Session, teams: dict[str, str], staff: Staff,
                      datatable: list[list[str]]) -> None:
    assert "period" in datatable[0], "the table needs a period column"
    _import_results(session, teams, staff, datatable, None)


# --- runs ---------------------------------------------------------------------------------------


@given(parsers.parse('the compensation run for "{period}" was made'), target_fixture="runs")
@when(parsers.parse('the compensation run for "{period}" is made'), target_fixture="runs")
def make_run(session: Session, runs: Runs, period: str) -> Runs:
    result = start_run(session, period, actor=ACTOR)
    session.commit()
    return [*runs, (period, result)]


def _outcomes(session: Session, runs: Runs, code: str | None = None,
              rule: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """The stored outcomes of the latest run, filtered."""
    assert runs, "no compensation run was made"
    run = runs[-1][1].run
    assert run is not None
    return [o for o in outcome_rows(session, run)
            if (code is None or o["employee_code"] == code)
            and (rule is None or o["rule_key"] == rule)
            and (kind is None or o["kind"] == kind)]


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


# --- payouts ------------------------------------------------------------------------------------


def _assert_payout(session: Session, runs: Runs, code: str, rule: str, kind: str,
                   amount: str, status: str) -> None:
    assert kind in MONEY_KINDS, f"{kind} is not a payout kind"
    found = _outcomes(session, runs, code, rule)
    assert [(o["kind"], o["amount"], o["currency"], o["status"]) for o in found] == [
        (kind, amount, "CNY", status)], f"{code} {rule}: {found}"


@then(parsers.parse('"{code}" receives a "{rule}" {kind} of {amount} {status}'))
def receives(session: Session, runs: Runs, code: str, rule: str, kind: str, amount: str,
             status: str) -> None:
    _assert_payout(session, runs, code, rule, kind, amount, status)


@then(parsers.parse('only "{codes}" receive a "{rule}" {kind} of {amount} {status}'))
def only_they_receive(session: Session, runs: Runs, codes: str, rule: str, kind: str,
                      amount: str, status: str) -> None:
    wanted = _codes(codes)
    for code in wanted:
        _assert_payout(session, runs, code, rule, kind, amount, status)
    others = {o["employee_code"] for o in _outcomes(session, runs, rule=rule, kind=kind)}
    assert others == set(wanted), f"{rule} went to {sorted(others)}, not {wanted}"


@then(parsers.parse('"{code}" receives no "{rule}" {kind}'))
def receives_no(session: Session, runs: Runs, code: str, rule: str, kind: str) -> None:
    found = _outcomes(session, runs, code, rule, kind)
    assert found == [], f"{code} {rule}: {found}"


# --- values: ratings, flags, alerts, awards, eligibility, PIPs ----------------------------------


def _assert_valued(session: Session, runs: Runs, code: str, kind: str, rule: str | None,
                   value: str) -> None:
    found = _outcomes(session, runs, code, rule, kind)
    assert [(o["value"], o["amount"], o["status"]) for o in found] == [(value, None, None)], (
        f"{code} {kind} {rule}: {found}")


@then(parsers.parse('"{code}" is rated "{value}"'))
def is_rated(session: Session, runs: Runs, code: str, value: str) -> None:
    _assert_valued(session, runs, code, "rating", None, value)


@then(parsers.parse('"{code}" is not rated'))
def is_not_rated(session: Session, runs: Runs, code: str) -> None:
    found = _outcomes(session, runs, code, kind="rating")
    assert found == [], f"{code}: {found}"


@then(parsers.parse('"{code}" gets the {kind} "{rule}" valued "{value}"'))
def gets_valued(session: Session, runs: Runs, code: str, kind: str, rule: str,
                value: str) -> None:
    _assert_valued(session, runs, code, kind, rule, value)


@then(parsers.parse('only "{codes}" get the {kind} "{rule}" valued "{value}"'))
def only_they_get(session: Session, runs: Runs, codes: str, kind: str, rule: str,
                  value: str) -> None:
    wanted = _codes(codes)
    for code in wanted:
        _assert_valued(session, runs, code, kind, rule, value)
    others = {o["employee_code"] for o in _outcomes(session, runs, rule=rule, kind=kind)}
    assert others == set(wanted), f"{rule} went to {sorted(others)}, not {wanted}"


# --- absence and warnings -----------------------------------------------------------------------


@then(parsers.parse('"{code}" has no "{rule}" outcome'))
def has_no_outcome(session: Session, runs: Runs, code: str, rule: str) -> None:
    found = _outcomes(session, runs, code, rule)
    assert found == [], f"{code} {rule}: {found}"


@then(parsers.parse('nobody has a "{rule}" outcome'))
def nobody_has(session: Session, runs: Runs, rule: str) -> None:
    found = _outcomes(session, runs, rule=rule)
    assert found == [], f"{rule}: {found}"


@then(parsers.parse('"{code}" gets a warning from "{rule}" naming "{metric}"'))
def gets_warning(session: Session, runs: Runs, code: str, rule: str, metric: str) -> None:
    found = _outcomes(session, runs, code, rule, "warning")
    naming = [o for o in found
              if metric in (o["value"] or "") or metric in json.dumps(o["explanation"])]
    assert naming, f"{code} {rule}: no warning naming {metric} in {found}"
    assert all(o["amount"] is None and o["status"] is None for o in found), found
