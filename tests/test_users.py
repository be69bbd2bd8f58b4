"""engine.users: which passwords may be set (engine and `laurel users`), session tokens."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from admin.cli import main
from engine import db
from engine.errors import PasswordRefused
from engine.models import AuditLog, User
from engine.users import (
    COMMON_PASSWORDS,
    authenticate,
    check_new_password,
    check_password,
    create_user,
    set_password,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("password", ["password123", "Password123", "QWERTY123", "iloveyou1 "])
def test_a_common_password_is_refused_whatever_its_case(password: str) -> None:
    with pytest.raises(PasswordRefused) as refused:
        check_new_password(password, "ana@example.com")
    assert refused.value.reason == "common"
    assert str(refused.value) == ("user ana@example.com, field password: it is one of the "
                                  "most common passwords; choose another")


def test_a_short_password_is_refused_before_the_list_is_read() -> None:
    with pytest.raises(PasswordRefused) as refused:
        check_new_password("abc123")
    assert refused.value.reason == "short"


def test_an_uncommon_password_is_accepted() -> None:
    check_new_password("correct horse battery")


def test_the_list_ships_with_the_package() -> None:
    entries = [line for line in COMMON_PASSWORDS.read_text().splitlines()
               if line and not line.startswith("#")]
    assert len(entries) == 5000 and entries[:2] == ["123456789", "password"]
    assert all(entry == entry.lower() for entry in entries)
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    assert COMMON_PASSWORDS.name in package_data["engine"]


def test_create_user_refuses_a_common_password(session: Session) -> None:
    with pytest.raises(PasswordRefused):
        create_user(session, "ana@example.com", "letmein123", "auditor")
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_laurel_users_create_refuses_a_common_password(db_url: str) -> None:
    result = CliRunner().invoke(main, ["users", "create", "ana@example.com", "--role",
                                       "auditor"], input="Password1\n")
    assert result.exit_code == 1
    assert result.stderr == ("error: user ana@example.com, field password: it is one of the "
                             "most common passwords; choose another\n")
    with db.session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.production_hashing
def test_a_password_is_kept_as_werkzeugs_default_hash(session: Session) -> None:
    """Tests hash passwords cheaply (tests/conftest.py); this one as production does."""
    user = create_user(session, "kept@example.com", "a long secret phrase 1", "auditor")
    session.flush()
    method = user.password_hash.split("$")[0]
    # werkzeug's default (scrypt), not the tests' cheap hash
    assert method == generate_password_hash("x").split("$")[0]
    assert check_password(user, "a long secret phrase 1")
    assert not check_password(user, "a long secret phrase 2")
    assert authenticate(session, "KEPT@example.com ", "a long secret phrase 1") is user
    assert authenticate(session, "kept@example.com", "a long secret phrase 2") is None
    set_password(user, "another long phrase 22")
    assert user.password_hash.split("$")[0] == method
    assert check_password(user, "another long phrase 22")


def test_a_new_password_gives_a_new_session_token(session: Session) -> None:
    user = create_user(session, "ana@example.com", "correct horse", "auditor")
    first = user.session_token
    assert len(first) >= 32
    set_password(user, "another correct horse")
    assert user.session_token != first


def test_the_migration_gives_every_existing_user_a_token_of_their_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["engine"] = db.get_engine(url)
    try:
        command.upgrade(cfg, "0007")
        with db.get_engine(url).begin() as conn:
            for email in ("a@example.com", "b@example.com"):
                conn.execute(text("INSERT INTO user (email, name, password_hash, role, active) "
                                  "VALUES (:e, 'x', '', 'auditor', 1)"), {"e": email})
        command.upgrade(cfg, "0008")
        with db.get_engine(url).connect() as conn:
            tokens = conn.execute(text("SELECT session_token FROM user")).scalars().all()
        assert len(tokens) == 2 and len(set(tokens)) == 2 and all(len(t) >= 32 for t in tokens)
    finally:
        db._engines.pop(url).dispose()


def test_a_password_change_alone_is_audited_without_the_hash(session):
    user = create_user(session, "pw@example.com", "a long secret phrase 1", "auditor")
    session.flush()
    set_password(user, "another long phrase 22")
    session.flush()
    rows = session.scalars(select(AuditLog).where(AuditLog.entity == "user")
                           .order_by(AuditLog.id)).all()
    assert rows[-1].action == "update"
    assert rows[-1].after["password"] == "(set)"
    assert all("pbkdf2" not in str(r.after) and "scrypt" not in str(r.after) for r in rows)
    assert user.password_hash not in str([r.after for r in rows])
