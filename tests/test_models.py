"""The schema (migrations), `laurel init` and the audit trail."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from admin.cli import main
from engine import db
from engine.models import AuditLog, Base, Level, Metric, Rule, Team, User
from engine.users import create_user


# SQLAlchemy does not reflect SQLite's indexes of an expression (ix_flag_case_assignee):
# compared by their SQL below
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migration_creates_the_schema_on_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    try:
        db.upgrade_schema(url)
        engine = db.get_engine(url)
        tables = set(inspect(engine).get_table_names())
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            expressions = {name: " ".join(sql.split()) for name, sql in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND sql LIKE '%(lower(%'")}
        assert diff == []
        from sqlalchemy.schema import CreateIndex

        modelled = {i.name: " ".join(str(CreateIndex(i).compile(engine)).split())
                    for t in Base.metadata.tables.values() for i in t.indexes
                    if i.name in expressions}
        assert modelled == expressions and expressions
        db.upgrade_schema(url)  # at head already: nothing to do, no error
    finally:
        db._engines.pop(url).dispose()


def _state(session: Session) -> dict[str, int]:
    return {m.__tablename__: session.scalar(select(func.count()).select_from(m))
            for m in (Level, Metric, Rule, AuditLog)}


def test_init_twice_is_idempotent(db_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["init"])
    assert first.exit_code == 0, first.output
    assert "schema up to date" in first.output
    with db.session_scope(db_url) as session:
        before = _state(session)
    second = runner.invoke(main, ["init"])
    assert second.exit_code == 0, second.output
    with db.session_scope(db_url) as session:
        assert _state(session) == before
        assert before["level"] == 4
        assert session.scalar(select(Level.discount_authority).where(Level.code == "M1")) \
            == Decimal("0.15")


def test_audit_records_create_update_delete_with_actor(session: Session) -> None:
    session.info["actor"] = "hr@example.com"
    team = Team(name="Audit Team", region="East", stage="startup")
    session.add(team)
    session.flush()
    team.region = "West"
    team.stage = "growth"
    session.flush()
    session.delete(team)
    session.flush()
    entries = list(session.scalars(select(AuditLog).where(AuditLog.entity == "team")
                                   .order_by(AuditLog.id)))
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert {e.actor for e in entries} == {"hr@example.com"}
    assert {e.entity_id for e in entries} == {str(team.id)}
    create, update, delete = entries
    assert create.before is None
    assert create.after["name"] == "Audit Team" and create.after["region"] == "East"
    assert (update.before["region"], update.before["stage"]) == ("East", "startup")
    assert (update.after["region"], update.after["stage"]) == ("West", "growth")
    assert delete.before["region"] == "West" and delete.after is None
    assert all(e.at is not None for e in entries)


def test_audit_skips_a_flush_that_changes_nothing(session: Session) -> None:
    team = Team(name="Quiet", region="East", stage="startup")
    session.add(team)
    session.flush()
    team.region = "East"
    session.flush()
    actions = list(session.scalars(select(AuditLog.action).where(AuditLog.entity == "team")))
    assert actions == ["create"]


def test_audit_never_records_password_hashes(session: Session) -> None:
    user = create_user(session, "Ana@Example.com", "s3cret-pass", "auditor")
    assert user.email == "ana@example.com"
    entry = session.scalars(select(AuditLog).where(AuditLog.entity == "user")).one()
    assert entry.action == "create"
    assert entry.after["password"] == "(set)"  # that it was set, never the hash
    assert user.password_hash not in str(entry.after)
    assert entry.after["email"] == "ana@example.com"
    assert session.scalar(select(User.password_hash)) not in ("", "s3cret-pass")


def test_audit_can_be_switched_off_for_seeding(session: Session) -> None:
    session.info["audit_off"] = True
    session.add(Team(name="Silent", region="", stage="growth"))
    session.flush()
    assert session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_audit_entry_written_by_hand(session: Session) -> None:
    db.audit(session, "resolve", "flag", 7, summary="dismissed", before={"status": "open"},
             after={"status": "dismissed"})
    session.flush()
    entry = session.scalars(select(AuditLog)).one()
    assert (entry.actor, entry.action, entry.entity, entry.entity_id) == (
        "tester@example.com", "resolve", "flag", "7")
    assert entry.after == {"status": "dismissed"}


def test_the_upgrade_moves_each_value_onto_its_row_and_the_downgrade_back(
        tmp_path: Path) -> None:
    """0020: one row of results an employee and period holds its values; what the old
    table of one row a value held reads back the same, and a downgrade restores it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from engine import rollup

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(db.PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    old = [(1, 1, 1, "100000.000000"), (1, 1, 2, "-0.500000"), (2, 1, 1, "12.345678"),
           (1, 2, 2, "7.000000")]
    try:
        cfg.attributes["engine"] = engine = db.get_engine(url)
        command.upgrade(cfg, "0019")
        with engine.begin() as conn:
            for sql in [
                "INSERT INTO period (id, code, kind, start, \"end\", status, results_version) "
                "VALUES (1, '2026-04', 'month', '2026-04-01', '2026-04-30', 'open', 0), "
                "(2, '2026-05', 'month', '2026-05-01', '2026-05-31', 'open', 0)",
                "INSERT INTO level (id, code, name, discount_authority) VALUES "
                "(1, 'S1', '', '0.05')",
                "INSERT INTO team (id, name, region) VALUES (1, 'North', 'N')",
                "INSERT INTO employee (id, code, name, email, team_id, level_id) VALUES "
                "(1, 'E1', 'Eve', '', 1, 1), (2, 'E2', 'Ed', '', 1, 1), "
                "(3, 'E3', 'Em', '', 1, 1)",
                "INSERT INTO metric (id, key, label_en, label_zh, type, rollup, description) "
                "VALUES (1, 'quota', 'Quota', '', 'money', 'sum', ''), "
                "(2, 'growth', 'Growth', '', 'ratio', 'mean', '')",
                # E3's row is empty; E1's May row was never recorded (made by the upgrade)
                "INSERT INTO result_row (employee_id, period_id) VALUES (1, 1), (2, 1), (3, 1)",
            ]:
                conn.execute(text(sql))
            for e, p, m, v in old:
                conn.execute(text("INSERT INTO result (employee_id, period_id, metric_id, "
                                  f"value) VALUES ({e}, {p}, {m}, '{v}')"))
        command.upgrade(cfg, "head")
        with db.session_scope(url) as s:
            assert rollup.period_figures(s, "2026-04") == {
                1: {"quota": Decimal("100000.000000"), "growth": Decimal("-0.500000")},
                2: {"quota": Decimal("12.345678")}, 3: {}}
            assert rollup.period_figures(s, "2026-05") == {1: {"growth": Decimal("7.000000")}}
        command.downgrade(cfg, "0019")
        with engine.connect() as conn:
            back = sorted((e, p, m, Decimal(str(v))) for e, p, m, v in conn.execute(text(
                "SELECT employee_id, period_id, metric_id, value FROM result")))
            rows = conn.execute(text("SELECT count(*) FROM result_row")).scalar()
        assert back == sorted((e, p, m, Decimal(v)) for e, p, m, v in old) and rows == 4
    finally:
        db._engines.pop(url).dispose()


def test_0022_keeps_a_runs_summary_and_its_employees_without_results_and_back(
        tmp_path: Path) -> None:
    """0022: the runs stored before it get the summary their pages read and (a calculated
    run) the count of employees without results, the same a run stored now keeps; the
    downgrade takes both away."""
    from alembic import command
    from alembic.config import Config

    from engine import lifecycle, runs, statements
    from engine.imports import import_employees
    from engine.models import Run
    from tests.conftest import seed
    from tests.test_runs import load

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(db.PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    try:
        cfg.attributes["engine"] = engine = db.get_engine(url)
        db.upgrade_schema(url)
        seed(url)
        with db.session_scope(url) as s:
            load(s)
            import_employees(s, "idle.csv", data=b"code,name,team,level\nI1,Ivo,North,S1\n")
            run = runs.start_run(s, "2026-01", actor="ann@x.com").run
            s.commit()
            run_id, kept, summary = run.id, run.figures, run.summary
            view = statements.overview(s, run)
            count, listed = lifecycle.missing_results(s, run, 20)
            missing = (count, [e.code for e in listed])
        assert kept["results"]["missing"] == 1 and summary["results"] == kept["results"]
        command.downgrade(cfg, "0021")
        assert "summary" not in {c["name"] for c in inspect(engine).get_columns("run")}
        with engine.connect() as conn:
            figures = conn.execute(Run.__table__.select().with_only_columns(
                Run.__table__.c.figures)).scalar_one()
        assert figures == {k: v for k, v in kept.items() if k != "results"}
        command.upgrade(cfg, "head")
        with db.session_scope(url) as s:
            run = s.get(Run, run_id)
            assert (run.figures, run.summary) == (kept, summary)
            assert statements.overview(s, run) == view
            count, listed = lifecycle.missing_results(s, run, 20)
            assert (count, [e.code for e in listed]) == missing == (1, ["I1"])
    finally:
        db._engines.pop(url).dispose()


def test_0023_indexes_the_search_of_employees_on_postgresql_and_back(db_url: str) -> None:
    """On PostgreSQL, trigram indexes on the code and the name of employees (the extension
    is there to be created); the downgrade drops them, the upgrade makes them again."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no trigram index")
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(db.PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    cfg.attributes["engine"] = engine = db.get_engine(db_url)
    wanted = {"ix_employee_code_trgm", "ix_employee_name_trgm"}

    def indexes() -> set[str]:
        return {i["name"] for i in inspect(engine).get_indexes("employee")}

    assert wanted <= indexes()
    command.downgrade(cfg, "0022")
    assert not wanted & indexes()
    command.upgrade(cfg, "head")
    assert wanted <= indexes()


def test_0026_keeps_explanations_as_text_on_postgresql_and_back(session: Session,
                                                                 db_url: str) -> None:
    """0026: on PostgreSQL an outcome's explanation is text (not parsed again by the json
    type), read back as the same documents; the downgrade makes it json again, the
    upgrade text again, and a run's outcomes read the same throughout."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite's JSON column is text already")
    from alembic import command
    from alembic.config import Config

    from engine import runs
    from tests.test_runs import comparable, load

    load(session)
    run = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    before = comparable(runs.outcome_rows(session, run))
    assert any(o[1] == "commission.tiered" for o in before)
    cfg = Config()
    cfg.set_main_option("script_location", str(db.PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    cfg.attributes["engine"] = engine = db.get_engine(db_url)

    def column_type() -> str:
        return next(str(c["type"]) for c in inspect(engine).get_columns("outcome")
                    if c["name"] == "explanation")

    session.close()
    assert column_type() == "TEXT"
    command.downgrade(cfg, "0025")
    assert column_type() == "JSON"
    from sqlalchemy import text

    with engine.connect() as conn:  # the json column parses as the text column wrote
        assert conn.scalar(text("SELECT count(*) FROM outcome WHERE run_id = :r "
                                "AND json_typeof(explanation) = 'object'"),
                           {"r": run.id}) == len(before)
    command.upgrade(cfg, "head")
    assert column_type() == "TEXT"
    with db.session_scope(db_url) as s:
        assert comparable(runs.outcome_rows(s, s.get(type(run), run.id))) == before


def test_0032_leaves_commissions_out_of_the_kind_index_on_postgresql(
        session: Session, db_url: str) -> None:
    """0032: on PostgreSQL the outcomes' index by run and kind has no entry for a
    commission, and a run's flags, warnings, ratings and bonuses (the API lists them by
    kind) are still read through it (the planner proves a kind asked as a parameter is one
    the index holds); a commission asked by kind is not (the index cannot answer it). The
    downgrade indexes every kind again, the upgrade leaves commissions out again."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite's planner uses a partial index only where the "
                    "query repeats its WHERE")
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from engine import runs
    from engine.models import Outcome
    from tests.test_runs import load

    load(session)
    run = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    kinds = set(session.scalars(select(Outcome.kind).where(Outcome.run_id == run.id)))
    assert {"commission", "flag"} <= kinds
    engine = db.get_engine(db_url)

    def indexed(kind: str) -> bool:
        """Whether the run's outcomes of the kind are read through the index (a plan
        that may not read the table whole, asked as the pages ask: the kind a
        parameter)."""
        with engine.connect() as conn:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(conn.scalars(text(
                "EXPLAIN SELECT id FROM outcome WHERE run_id = :r AND kind = :k"),
                {"r": run.id, "k": kind}))
        return "ix_outcome_run_kind" in plan

    def definition() -> str:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT indexdef FROM pg_indexes "
                                    "WHERE indexname = 'ix_outcome_run_kind'"))

    session.close()
    assert "WHERE" in definition()
    assert all(indexed(kind) for kind in ("flag", "warning", "rating", "bonus"))
    assert not indexed("commission")
    cfg = Config()
    cfg.set_main_option("script_location", str(db.PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    cfg.attributes["engine"] = engine
    command.downgrade(cfg, "0031")
    assert "WHERE" not in definition() and indexed("commission")
    command.upgrade(cfg, "head")
    assert "WHERE" in definition() and not indexed("commission") and indexed("flag")
