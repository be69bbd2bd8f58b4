"""The schema (migrations), `laurel init` and the audit trail."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from admin.cli import main
from engine import db
from engine.models import AuditLog, Base, Level, Metric, Rule, Team, User
from engine.users import create_user


def test_migration_creates_the_schema_on_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    try:
        db.upgrade_schema(url)
        engine = db.get_engine(url)
        tables = set(inspect(engine).get_table_names())
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
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
