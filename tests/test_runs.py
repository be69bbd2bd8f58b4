"""Runs: storage, failure, repeatability, explanations, the CLI, and both databases."""

from __future__ import annotations

import json
import os
import random
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from admin.cli import main
from engine import db, runs
from engine.errors import PeriodError, RunError, RunFailed
from engine.imports import import_employees, import_results
from engine.models import Outcome, Run

METRICS = ["quota", "revenue_new", "revenue_existing", "signed_amount", "collected_amount",
           "new_customers", "target_customers", "closed_customers", "leads", "opportunities",
           "won_leads", "false_ad_complaints", "satisfaction", "self_score", "manager_score",
           "customer_score", "renewal_intent", "max_discount_pct"]


def organisation(seed: int = 7, employees: int = 24) -> tuple[str, str]:
    """A small random organisation with two quarters of months (CSV texts)."""
    rng = random.Random(seed)
    teams = [("North", "startup"), ("East", "growth"), ("West", "mature")]
    emp_lines = ["code,name,email,team,region,level,manager_code,hire_date,team_stage"]
    for i in range(employees):
        team, stage = teams[i % 3]
        level = ["S1", "S2", "S3", "M1"][i % 4]
        # a team's region and stage alike on each of its rows (a file that gives a team
        # two is refused): North and West in R0, East in R1
        emp_lines.append(f"E{i:03d},Rep {i},e{i}@x.com,{team},R{i % 3 % 2},{level},,"
                         f"2020-01-01,{stage}")
    res_lines = ["period,employee_code," + ",".join(METRICS)]
    for month in range(1, 7):
        for i in range(employees):
            quota = rng.choice([100000, 120000, 150000])
            att = Decimal(rng.choice([60, 79, 80, 95, 100, 110, 120, 125, 140])) / 100
            rev = (quota * att).quantize(Decimal("0.01"))
            new = (rev * Decimal(rng.choice(["0", "0.2", "0.5"]))).quantize(Decimal("0.01"))
            row = [quota, new, rev - new, rng.choice([30000, 50000, 80000]),
                   rng.choice([10000, 24999.99, 60000]), rng.randint(0, 4), 40,
                   rng.randint(1, 9), rng.choice([10, 20, 30]), rng.choice([3, 6, 9]),
                   rng.randint(0, 3), rng.choice([0, 0, 0, 1]),
                   rng.choice([70, 80, 90, 95, ""]), rng.randint(55, 95), rng.randint(55, 95),
                   rng.randint(55, 95), rng.randint(50, 90),
                   rng.choice(["0.04", "0.05", "0.08", "0.1", "0.12"])]
            res_lines.append(f"2026-{month:02d},E{i:03d}," + ",".join(str(v) for v in row))
    return "\n".join(emp_lines) + "\n", "\n".join(res_lines) + "\n"


def load(session, seed: int = 7) -> None:
    emps, results = organisation(seed)
    import_employees(session, "employees.csv", data=emps.encode())
    import_results(session, "results.csv", data=results.encode())
    session.commit()


def comparable(outcomes: list[dict]) -> list[tuple]:
    return sorted((o["employee_code"], o["rule_key"], o["kind"], str(o["amount"]), o["value"],
                   o["status"], json.dumps(o["explanation"], sort_keys=True))
                  for o in outcomes)


def test_a_run_stores_outcomes_with_explanations(session):
    load(session)
    result = runs.start_run(session, "2026-01", actor="tester@example.com")
    session.commit()
    rows = runs.outcome_rows(session, result.run)
    assert rows and len(rows) == len(result.outcomes)
    tiered = [r for r in rows if r["rule_key"] == "commission.tiered"]
    assert tiered
    for r in tiered:
        exp = r["explanation"]
        assert "attainment" in exp["facts"] and "revenue_total" in exp["facts"]
        assert exp["matched"].startswith("tier ")
        assert exp["arithmetic"].endswith(f"{Decimal(r['amount']):,.2f}")
        assert any(c.startswith("attainment ") for c in exp["conditions"])
        rate = {"1": Decimal("0.03"), "2": Decimal("0.04"), "3": Decimal("0.05"),
                "4": Decimal("0.06")}[exp["matched"].split()[1].rstrip(":")]
        revenue = Decimal(exp["facts"]["revenue_total"])
        assert Decimal(r["amount"]) == (revenue * rate).quantize(Decimal("0.01"),
                                                                 rounding="ROUND_HALF_UP")
    assert result.run.ruleset_hash and len(result.run.rules) == 7


def test_two_runs_of_a_period_give_the_same_outcomes_and_discard_the_first(session):
    load(session)
    first = runs.start_run(session, "2026-Q1")
    session.commit()
    second = runs.start_run(session, "2026-Q1")
    session.commit()
    assert comparable(first.outcomes) == comparable(second.outcomes)
    keys = [(o["employee_code"], o["rule_key"], o["kind"]) for o in first.outcomes
            if o["kind"] != "warning"]
    assert len(keys) == len(set(keys))  # one outcome per employee and rule
    session.refresh(first.run)
    assert first.run.status == "discarded" and second.run.status == "calculated"
    assert first.run.ruleset_hash == second.run.ruleset_hash


def test_dry_run_stores_nothing(session):
    load(session)
    result = runs.start_run(session, "2026-01", dry_run=True)
    session.rollback()
    assert result.run is None and result.outcomes
    assert session.scalar(select(func.count()).select_from(Run)) == 0


def test_a_period_without_results_is_refused(session):
    load(session)
    with pytest.raises(PeriodError, match="2026-09 does not exist"):
        runs.start_run(session, "2026-09")
    with pytest.raises(PeriodError, match="not a period code"):
        runs.start_run(session, "2026-13")


def test_a_run_that_fails_midway_stores_nothing_but_the_failure(db_url, session, monkeypatch):
    load(session)
    real = runs.employee_outcomes

    def failing(ef, *args, **kwargs):
        if ef.code == "E010":
            raise ArithmeticError("boom")
        return real(ef, *args, **kwargs)

    monkeypatch.setattr(runs, "employee_outcomes", failing)
    result = CliRunner().invoke(main, ["run", "2026-01"])
    assert result.exit_code == 1
    assert "employee E010" in result.stderr and "boom" in result.stderr
    session.expire_all()
    stored = session.scalars(select(Run)).all()
    assert [r.status for r in stored] == ["failed"]
    assert "E010" in stored[0].error
    assert session.scalar(select(func.count()).select_from(Outcome)) == 0
    with pytest.raises(RunFailed):
        runs.start_run(session, "2026-01")


def test_cli_run_prints_the_id_first_and_outcomes_in_both_formats(db_url, session):
    load(session)
    runner = CliRunner()
    result = runner.invoke(main, ["run", "2026-02"])
    assert result.exit_code == 0, result.output
    run_id = result.stdout.splitlines()[0]
    assert run_id.isdigit()
    out = runner.invoke(main, ["outcomes", run_id, "--format", "json"])
    data = json.loads(out.stdout)
    assert data and set(data[0]) == {"run_id", "period", "employee_code", "rule_key", "kind",
                                     "amount", "currency", "value", "status", "explanation"}
    money = [o for o in data if o["amount"] is not None]
    assert all(o["amount"].count(".") == 1 and len(o["amount"].split(".")[1]) == 2
               for o in money)
    assert all(o["currency"] == "CNY" and o["status"] in ("payable", "held") for o in money)
    csv_out = runner.invoke(main, ["outcomes", run_id, "--format", "csv"]).stdout
    lines = csv_out.strip().splitlines()
    assert lines[0].startswith("run_id,period,employee_code,rule_key,kind,amount")
    assert len(lines) == len(data) + 1
    missing = runner.invoke(main, ["outcomes", "999"])
    assert missing.exit_code == 1 and "run 999 does not exist" in missing.stderr


def test_holds_are_applied_only_to_the_flagged_employee(session):
    load(session)
    result = runs.start_run(session, "2026-01")
    flagged = {o["employee_code"] for o in result.outcomes
               if o["kind"] == "flag" and o["rule_key"] != "compliance.collection_gap"}
    assert flagged
    for o in result.outcomes:
        if o["kind"] in ("commission", "bonus"):
            assert o["status"] == ("held" if o["employee_code"] in flagged else "payable")
            if o["status"] == "held":
                assert o["explanation"]["held_by"]


def test_quarter_chaining_reads_the_previous_quarter_run(session):
    load(session)
    q1 = runs.start_run(session, "2026-Q1")
    session.commit()
    q2 = runs.start_run(session, "2026-Q2")
    session.commit()
    rating1 = {o["employee_code"]: o["value"] for o in q1.outcomes if o["kind"] == "rating"}
    rating2 = {o["employee_code"]: o["value"] for o in q2.outcomes if o["kind"] == "rating"}
    eligible = {o["employee_code"] for o in q2.outcomes if o["kind"] == "eligibility"}
    assert eligible == {e for e, r in rating2.items() if r == "A" and rating1.get(e) == "A"}
    started = {o["employee_code"] for o in q1.outcomes if o["kind"] == "pip"}
    assert all(o["value"] == "2026-04-01" for o in q1.outcomes if o["kind"] == "pip")
    again = {o["employee_code"] for o in q2.outcomes if o["kind"] == "pip"}
    assert not (started & again)  # a PIP running through Q2 starts no second one


def test_locked_period_refuses_a_new_run(session):
    load(session)
    result = runs.start_run(session, "2026-01")
    result.run.period.status = "locked"
    session.commit()
    with pytest.raises(RunError, match="locked"):
        runs.start_run(session, "2026-01")


@pytest.mark.skipif(not (os.environ.get("LAUREL_TEST_POSTGRES_URL")
                         or os.environ.get("LAUREL_TEST_DATABASE_URL")),
                    reason="set LAUREL_TEST_POSTGRES_URL to compare with PostgreSQL")
def test_postgresql_and_sqlite_give_the_same_run(db_url, session, tmp_path):
    load(session)
    here = runs.start_run(session, "2026-Q1")
    session.rollback()
    other_url = (f"sqlite:///{tmp_path / 'other.db'}" if db_url.startswith("postgresql")
                 else os.environ["LAUREL_TEST_POSTGRES_URL"])
    if other_url.startswith("postgresql"):
        from tests.conftest import reset_postgres

        reset_postgres(other_url)
    else:
        db.upgrade_schema(other_url)
        from tests.conftest import seed

        seed(other_url)
    with db.session_scope(other_url) as other:
        load(other)
        there = runs.start_run(other, "2026-Q1")
        assert comparable(here.outcomes) == comparable(there.outcomes)
        assert here.ruleset_hash == there.ruleset_hash
        other.rollback()


def test_cli_dry_run_prints_the_summary_and_stores_nothing(db_url, session):
    load(session)
    result = CliRunner().invoke(main, ["run", "2026-01", "--dry-run"])
    assert result.exit_code == 0, result.output
    first, summary = result.stdout.splitlines()[:2]
    assert first == "dry run: nothing stored"
    assert summary.startswith("period 2026-01: 24 employees")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Run)) == 0


def test_a_team_without_a_stage_gets_no_stage_bonus(session):
    import_employees(session, "e.csv", data=(
        b"code,name,email,team,region,level,manager_code,hire_date,team_stage\n"
        b"G1,Gao,g1@x.com,NEWTEAM,E,S1,,2025-01-01,\n"))
    import_results(session, "r.csv", data=(
        b"period,employee_code,quota,revenue_new,revenue_existing,new_customers\n"
        b"2025-Q4,G1,1000,400,600,2\n"))
    session.commit()
    result = runs.start_run(session, "2025-Q4")
    keys = {o["rule_key"] for o in result.outcomes}
    assert "bonus.growth_repurchase" not in keys and "bonus.startup_new_customer" not in keys
    assert "bonus.team_travel_fund" in keys  # team attainment 1.00: not stage-scoped


def test_large_amounts_stay_exact_in_every_database(session):
    """Sixteen significant digits survive storage (SQLite keeps them as text)."""
    import_employees(session, "e.csv", data=(
        b"code,name,email,team,region,level,manager_code,hire_date,team_stage\n"
        b"B1,Big,b@x.com,T,R,S1,,2020-01-01,growth\n"))
    import_results(session, "r.csv", data=(
        b"period,employee_code,quota,revenue_new\n"
        b"2026-05,B1,12345678901234.10,12345678901234.10\n"))
    session.commit()
    result = runs.start_run(session, "2026-05")
    session.commit()
    amounts = {o["rule_key"]: o["amount"] for o in runs.outcome_rows(session, result.run)}
    assert amounts["commission.tiered"] == "617283945061.71"  # 5% of ...234.10, half up
    assert amounts["commission.new_logo"] == "123456789012.34"
