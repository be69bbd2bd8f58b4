"""`laurel import`, `laurel users create` and `laurel init --demo` through the command line."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.cli import main
from engine import db, demo
from engine.metrics import load_catalog
from engine.models import AuditLog, Employee, Period, ResultRow, Team, User
from engine.rollup import period_figures
from engine.users import check_password
from tests.stored import value_count

D = Decimal

EMPLOYEES = """code,name,email,team,region,level,manager_code,hire_date,team_stage
M1,Mei Lin,mei@example.com,North,Beijing,M1,,2019-03-01,startup
E1,Ann Wu,ann@example.com,North,Beijing,S1,M1,2024-01-15,
"""


def counts(url: str) -> dict[str, int]:
    with db.session_scope(url) as session:
        return {"values": value_count(session),
                **{m.__tablename__: session.scalar(select(func.count()).select_from(m))
                   for m in (ResultRow, Employee, Team, Period, AuditLog, User)}}


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def employees_file(tmp_path: Path) -> Path:
    path = tmp_path / "employees.csv"
    path.write_text(EMPLOYEES)
    return path


def test_import_employees_prints_a_summary(db_url: str, runner: CliRunner,
                                           employees_file: Path) -> None:
    result = runner.invoke(main, ["import", "employees", str(employees_file)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{employees_file}: 2 rows, 2 created, 0 updated"
    assert counts(db_url)["employee"] == 2


def test_import_results_prints_a_summary(db_url: str, runner: CliRunner,
                                         employees_file: Path, tmp_path: Path) -> None:
    runner.invoke(main, ["import", "employees", str(employees_file)])
    results = tmp_path / "results.csv"
    results.write_text("period,employee_code,quota,revenue_new\n2026-01,E1,100,90\n"
                       "2026-02,E1,100,\n")
    result = runner.invoke(main, ["import", "results", str(results)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (f"{results}: 2 rows, 3 created, 0 updated; "
                                     "periods 2026-01, 2026-02")
    assert counts(db_url)["values"] == 3 and counts(db_url)["result_row"] == 2


def test_import_acts_as_the_given_user(db_url: str, runner: CliRunner,
                                       employees_file: Path) -> None:
    with db.session_scope(db_url) as session:
        from engine.users import create_user

        create_user(session, "hr@example.com", "long-enough", "hr_admin")
    result = runner.invoke(main, ["import", "employees", str(employees_file),
                                  "--as", "HR@example.com"])
    assert result.exit_code == 0, result.output
    with db.session_scope(db_url) as session:
        actors = set(session.scalars(select(AuditLog.actor).where(
            AuditLog.entity == "employee")))
    assert actors == {"hr@example.com"}


def test_bad_results_file_exits_1_and_changes_nothing(db_url: str, runner: CliRunner,
                                                      employees_file: Path,
                                                      tmp_path: Path) -> None:
    runner.invoke(main, ["import", "employees", str(employees_file)])
    before = counts(db_url)
    bad = tmp_path / "bad.csv"
    bad.write_text("period,employee_code,quota\n2026-01,E1,100\n2026-02,E1,\"1,000\"\n")
    result = runner.invoke(main, ["import", "results", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {bad}, row 3, column quota: ")
    assert "'1,000' is not a number" in lines[0]
    assert counts(db_url) == before


def test_bad_employees_file_exits_1_and_changes_nothing(db_url: str, runner: CliRunner,
                                                        tmp_path: Path) -> None:
    before = counts(db_url)
    bad = tmp_path / "emp.csv"
    bad.write_text(EMPLOYEES + "E2,Bo,bo@example.com,North,,S7,M1,,\n")
    result = runner.invoke(main, ["import", "employees", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {bad}, row 4, column level: unknown level 'S7'; the levels are M1, S1, S2, S3"]
    assert counts(db_url) == before


def test_missing_file_and_unknown_actor_exit_1(db_url: str, runner: CliRunner,
                                               employees_file: Path, tmp_path: Path) -> None:
    before = counts(db_url)
    result = runner.invoke(main, ["import", "results", str(tmp_path / "none.csv")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'none.csv'}: cannot be read")
    result = runner.invoke(main, ["import", "employees", str(employees_file), "--as",
                                  "ghost@example.com"])
    assert result.exit_code == 1
    assert "ghost@example.com does not exist" in result.stderr
    assert counts(db_url) == before


def test_usage_error_exits_2(db_url: str, runner: CliRunner) -> None:
    assert runner.invoke(main, ["import", "results"]).exit_code == 2
    assert runner.invoke(main, ["import", "salaries", "x.csv"]).exit_code == 2


def test_users_create_reads_the_password_from_stdin(db_url: str, runner: CliRunner) -> None:
    result = runner.invoke(main, ["users", "create", "Ana@Example.com", "--role",
                                  "comp_analyst", "--name", "Ana"], input="correct horse\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "user ana@example.com created with role comp_analyst"
    with db.session_scope(db_url) as session:
        user = session.scalars(select(User)).one()
        assert (user.email, user.name, user.role, user.active) == (
            "ana@example.com", "Ana", "comp_analyst", True)
        assert check_password(user, "correct horse")
        assert not check_password(user, "wrong horse")


@pytest.mark.parametrize(("args", "stdin", "reason"), [
    (["a@example.com", "--role", "auditor"], "short\n", "at least 8 characters"),
    (["not-an-email", "--role", "auditor"], "long-enough\n", "not an email address"),
    (["m@example.com", "--role", "sales_manager", "--team", "Nowhere"], "long-enough\n",
     "unknown team 'Nowhere'"),
])
def test_users_create_rejects_bad_input(db_url: str, runner: CliRunner, args: list[str],
                                        stdin: str, reason: str) -> None:
    result = runner.invoke(main, ["users", "create", *args], input=stdin)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and reason in result.stderr
    assert counts(db_url)["user"] == 0


def test_users_create_a_sales_manager_of_a_team(db_url: str, runner: CliRunner,
                                                employees_file: Path) -> None:
    runner.invoke(main, ["import", "employees", str(employees_file)])
    result = runner.invoke(main, ["users", "create", "mei@example.com", "--role",
                                  "sales_manager", "--team", "North", "--locale", "zh"],
                           input="long-enough\n")
    assert result.exit_code == 0, result.output
    with db.session_scope(db_url) as session:
        user = session.scalars(select(User)).one()
        assert (user.team.name, user.locale) == ("North", "zh")


def test_users_create_a_sales_manager_as_the_contract_says(db_url: str, runner: CliRunner,
                                                           employees_file: Path) -> None:
    """`laurel users create EMAIL --role ROLE` works for every role: a sales manager gets the
    team their employee record manages, else none yet (and a note on stderr)."""
    result = runner.invoke(main, ["users", "create", "m@example.com", "--role",
                                  "sales_manager"], input="long-enough\n")
    assert result.exit_code == 0 and "no team yet" in result.stderr
    runner.invoke(main, ["import", "employees", str(employees_file)])
    with db.session_scope(db_url) as session:
        manager = session.scalars(select(Team)).first().manager
        email = manager.email
    result = runner.invoke(main, ["users", "create", email, "--role", "sales_manager"],
                           input="long-enough\n")
    assert result.exit_code == 0, result.output
    assert "for team" in result.stdout and "no team yet" not in result.stderr


def test_users_create_refuses_a_duplicate(db_url: str, runner: CliRunner) -> None:
    args = ["users", "create", "a@example.com", "--role", "auditor"]
    assert runner.invoke(main, args, input="long-enough\n").exit_code == 0
    result = runner.invoke(main, [*args[:2], "A@EXAMPLE.com", *args[3:]], input="other-pass\n")
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert runner.invoke(main, ["users", "create", "b@example.com", "--role", "boss"],
                         input="long-enough\n").exit_code == 2


# --- the demo -----------------------------------------------------------------------------


def test_init_demo_loads_the_organisation_once(db_url: str, runner: CliRunner) -> None:
    first = runner.invoke(main, ["init", "--demo"])
    assert first.exit_code == 0, first.output
    for email, password, role in demo.logins():
        assert email in first.stdout and password in first.stdout and role in first.stdout
    before = counts(db_url)
    assert before["employee"] == 60
    assert before["team"] == 6
    assert before["user"] == 7
    second = runner.invoke(main, ["init", "--demo"])
    assert second.exit_code == 0, second.output
    assert "laurel-demo-1" in second.stdout
    assert counts(db_url) == before

    with db.session_scope(db_url) as session:
        users = {u.email: u for u in session.scalars(select(User))}
        for email, password, role in demo.logins():
            assert users[email].role == role
            assert check_password(users[email], password)
        manager = users["manager@demo.laurel"]
        assert manager.team.manager.email == "manager@demo.laurel"
        assert manager.team.name == demo.MANAGER_TEAM
        assert demo.load_demo(session).already_loaded
        check_demo_covers_the_policies(session)


def test_demo_files_are_deterministic() -> None:
    assert demo.demo_files() == demo.demo_files()
    assert demo.demo_files(seed=1) != demo.demo_files()


def _rating(f: dict[str, Decimal | None]) -> str | None:
    att, score = f.get("attainment"), f.get("evaluation_score")
    if att is None:
        return None
    if att >= D("1.10") and score is not None and score >= 80:
        return "A"
    if att >= D("0.90") and score is not None and score >= 60:
        return "B"
    return "C" if att >= D("0.70") else "D"


def check_demo_covers_the_policies(session: Session) -> None:
    """Check the conditions of every policy of POLICIES.md hold somewhere in the demo year."""
    catalog = load_catalog(session)
    emps = {e.id: e for e in session.scalars(select(Employee))}
    code = {i: e.code for i, e in emps.items()}
    teams = list(session.scalars(select(Team)))
    assert len({t.region for t in teams}) >= 3
    assert Counter(t.stage for t in teams) == {"startup": 2, "growth": 2, "mature": 2}
    for team in teams:
        members = [e for e in emps.values() if e.team_id == team.id]
        assert {e.level.code for e in members} == {"S1", "S2", "S3", "M1"}
        assert team.manager.level.code == "M1" and team.manager.team_id == team.id

    def figures(period: str) -> dict[str, dict[str, Decimal | None]]:
        return {code[e]: catalog.derive(v) for e, v in period_figures(session, period).items()}

    seen: Counter[str] = Counter()
    attainments: set[Decimal] = set()
    for month in range(1, 13):
        figs = figures(f"2026-{month:02d}")
        for c, f in figs.items():
            att = f.get("attainment")
            if att is None:
                seen["attainment undefined"] += 1
            else:
                attainments.add(att)
                seen["tier " + ("3" if att < D("0.8") else "4" if att < 1
                                else "5" if att < D("1.2") else "6")] += 1
            if (f.get("revenue_new") or 0) > 0:
                seen["new logo"] += 1
            if f.get("satisfaction") is None:
                seen["satisfaction undefined"] += 1
            leads, lto = f.get("leads"), f.get("lead_to_opportunity")
            if leads is not None and leads >= 20 and lto is not None:
                seen["funnel alert" if lto < D("0.30") else "funnel ok"] += 1
                seen["funnel exactly 0.30"] += lto == D("0.30")
            authority = emps[next(i for i, k in code.items() if k == c)].level.discount_authority
            discount = f.get("max_discount_pct")
            seen["discount beyond" if discount > authority else "discount within"] += 1
            seen["discount exactly"] += discount == authority
            seen["false advertising"] += f["false_ad_complaints"] >= 1
            ratio = f.get("collection_ratio")
            seen["collection gap"] += (f["signed_amount"] >= 50000 and ratio is not None
                                       and ratio < D("0.5"))
        top = max(f["revenue_total"] for f in figs.values())
        seen["champions of a month"] = max(
            seen["champions of a month"],
            sum(1 for f in figs.values() if f["revenue_total"] == top))
    assert {D("0.8"), D("1"), D("1.2")} <= attainments
    for key in ("tier 3", "tier 4", "tier 5", "tier 6", "new logo", "funnel alert",
                "funnel exactly 0.30", "discount beyond", "discount exactly",
                "false advertising", "collection gap", "satisfaction undefined",
                "attainment undefined"):
        assert seen[key] > 0, key
    assert seen["champions of a month"] == 2

    ratings: dict[str, dict[str, str | None]] = {}
    for q in range(1, 5):
        period = f"2026-Q{q}"
        figs = figures(period)
        ratings[period] = {c: _rating(f) for c, f in figs.items()}
        if q == 1:
            sats = [f["satisfaction"] for f in figs.values() if f.get("satisfaction")]
            stars = [s for s in sats if sum(1 for o in sats if o > s) < D(len(sats)) / 10]
            assert len(stars) > len(sats) // 10  # a tie at the boundary gives one more
            assert demo.LATE_HIRE not in figs
        by_team = Counter()
        quota = Counter()
        for c, f in figs.items():
            team = emps[next(i for i, k in code.items() if k == c)].team
            by_team[team.name] += f["revenue_total"]
            quota[team.name] += f.get("quota") or 0
            if team.stage == "growth" and (f.get("repurchase_rate") or 0) >= D("0.40"):
                seen["growth repurchase"] += 1
            if team.stage == "startup" and f["new_customers"] > 0:
                seen["startup new customers"] += 1
        assert any(by_team[t] / quota[t] >= 1 for t in by_team)
        assert any(by_team[t] / quota[t] < 1 for t in by_team)
    assert seen["growth repurchase"] and seen["startup new customers"]
    assert {r for q in ratings.values() for r in q.values()} == {"A", "B", "C", "D"}
    assert ratings["2026-Q1"]["E0023"] == ratings["2026-Q2"]["E0023"] == "A"
    assert ratings["2026-Q1"]["E0014"] == "D"
    assert ratings["2026-Q2"]["E0045"] == ratings["2026-Q3"]["E0045"] == "C"
    year = figures("2026")["E0023"]
    assert year["annual_score"] >= 85 and year["attainment"] >= 1


def test_demo_leaves_work_for_every_role(db_url):
    """The first quarter is locked, April waits for approval, flags wait for review."""
    from sqlalchemy import select

    from engine import db
    from engine.demo import load_demo
    from engine.models import FlagCase, Period, Run

    with db.session_scope(db_url) as session:
        load_demo(session)
    with db.session_scope(db_url) as session:
        runs = {code: status for code, status in session.execute(
            select(Period.code, Run.status).join(Run, Run.period_id == Period.id))}
        assert runs == {"2026-01": "locked", "2026-02": "locked", "2026-03": "locked",
                        "2026-Q1": "locked", "2026-04": "calculated"}
        assert session.scalar(select(Period.status).where(Period.code == "2026-Q1")) == "locked"
        assert session.scalars(select(FlagCase).where(FlagCase.status == "open")).first()
