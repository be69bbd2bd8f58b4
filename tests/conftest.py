"""Fixtures that mirror the factory: a clean database per test, on SQLite or PostgreSQL.

LAUREL_TEST_DATABASE_URL selects PostgreSQL (the whole suite runs on both in .ci/run);
otherwise each test gets a fresh SQLite file, copied from a migrated template to the same
place (one URL a process) every test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from engine import db, users
from engine.models import Base

ROOT = Path(__file__).resolve().parent.parent
# Runs started in the back office are Celery work: in tests every task runs at once, in
# the caller (tests that need real workers start them and say so).
os.environ.setdefault("LAUREL_TASKS_EAGER", "true")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only", action="store_true",
        help="run only the tests that use the database (the db_url fixture): `make test`'s "
             "second pass, on PostgreSQL, leaves out those the first pass ran without one")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked slow first, each file's in their order, then the rest as they were.

    pytest-xdist hands the tests out in this order: a long test handed out last kept one
    worker busy after the others had finished (on PostgreSQL, test_scale's month of
    70,000 employees, a minute alone at the end).

    With --database-tests-only, the tests that never ask for the database (db_url, which
    session, app and client ask for) are deselected: they do the same on every database,
    and the suite's second pass ran them again for nothing. A Gherkin scenario
    (pytest-bdd: its steps ask for their fixtures as they run, the database among them)
    is kept whatever it asks for before.
    """
    if config.getoption("database_tests_only"):
        def uses_database(item: pytest.Item) -> bool:
            names = getattr(item, "fixturenames", ())
            return "db_url" in names or "_pytest_bdd_example" in names

        kept = [item for item in items if uses_database(item)]
        left = [item for item in items if not uses_database(item)]
        if left:
            config.hook.pytest_deselected(items=left)
            items[:] = kept
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _worker_database(url: str) -> str:
    """Under pytest-xdist each worker gets a database of its own next to the given one
    (test_gw0, test_gw1, ...), created when missing: workers would empty each other's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            # a test database need not survive a crash (as .ci/run sets for the first one)
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


PG_URL = _worker_database(os.environ["LAUREL_TEST_DATABASE_URL"]) \
    if os.environ.get("LAUREL_TEST_DATABASE_URL") else None


def seed(url: str) -> None:
    """Load the reference data and publish the policy library, unaudited."""
    from engine.metrics import seed_reference_data
    from engine.rulebook import load_library

    with db.session_scope(url) as session:
        session.info["audit_off"] = True
        seed_reference_data(session)
        load_library(session, ROOT / "rules")


_SNAPSHOTTED: set[str] = set()
SNAPSHOT_SCHEMA = "laurel_test_snapshot"


def _reset_function(tables: list[Any]) -> str:
    """A PL/pgSQL function that puts the database back in one round trip: it empties every
    table (TRUNCATE after a large organisation, whose DELETE would check each row's
    references for minutes; DELETE otherwise, much cheaper on tables this small), copies
    the snapshot back and sets each id sequence past it."""
    names = [t.name for t in tables]
    quoted = ", ".join(f'public."{n}"' for n in names)
    deletes = "\n".join(f'    DELETE FROM public."{n}";' for n in reversed(names))
    restore = []
    for table in tables:
        restore.append(f'  INSERT INTO public."{table.name}" '
                       f'SELECT * FROM {SNAPSHOT_SCHEMA}."{table.name}";')
        if "id" in table.c:
            restore.append(
                f"  PERFORM setval(pg_get_serial_sequence('public.\"{table.name}\"', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM public."{table.name}"), 0) + 1, false);')
    return (f"CREATE OR REPLACE FUNCTION {SNAPSHOT_SCHEMA}.reset() RETURNS void "
            "LANGUAGE plpgsql AS $$\nBEGIN\n"
            "  IF (SELECT count(*) FROM (SELECT 1 FROM public.employee LIMIT 1001) e) > 1000"
            f" THEN\n    TRUNCATE {quoted} RESTART IDENTITY CASCADE;\n  ELSE\n"
            f"{deletes}\n  END IF;\n" + "\n".join(restore) + "\nEND $$")


def reset_postgres(url: str) -> None:
    """Bring a PostgreSQL database to the newest schema, empty but for reference data.

    The reference data (levels, metrics, the published library) is seeded once per test
    session and kept in a schema of its own; after each test one server-side function
    (``_reset_function``) empties the tables and copies it back: seeding per test cost
    more than the tests themselves, and a statement per table cost a round trip each.
    """
    engine = db.get_engine(url)
    if url in _SNAPSHOTTED:
        with engine.begin() as conn:
            conn.execute(text(f"SELECT {SNAPSHOT_SCHEMA}.reset()"))
        return
    tables = list(Base.metadata.sorted_tables)
    db.upgrade_schema(url)
    with engine.begin() as conn:
        listed = ", ".join(f'"{t.name}"' for t in tables)
        conn.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))
    seed(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SNAPSHOT_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SNAPSHOT_SCHEMA}"))
        for table in tables:
            conn.execute(text(f'CREATE TABLE {SNAPSHOT_SCHEMA}."{table.name}" AS '
                              f'SELECT * FROM public."{table.name}"'))
        conn.execute(text(_reset_function(tables)))
    _SNAPSHOTTED.add(url)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        engine = db.get_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        db.upgrade_schema(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    db.upgrade_schema(url)
    seed(url)
    db.dispose_engines()
    return str(path)


@pytest.fixture(scope="session")
def _sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this process's tests find their SQLite database, each test a fresh copy."""
    return tmp_path_factory.mktemp("database") / "laurel.db"


@pytest.fixture()
def db_url(_template: str, _sqlite_path: Path, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database with reference data and the published policy library."""
    if PG_URL:
        reset_postgres(PG_URL)
        url = PG_URL
    else:
        # a fresh copy under the same URL every test: a new file name each test compiled
        # every statement again in every test
        url = db.fresh_sqlite_copy(Path(_template), _sqlite_path)
    monkeypatch.setenv("LAUREL_DATABASE_URL", url)
    monkeypatch.setenv("LAUREL_INSTANCE_PATH", str(tmp_path / "instance"))
    yield url
    if not PG_URL:
        engine = db._engines.get(url)
        if engine is not None:
            engine.dispose()


# What passwords set in a test are hashed with: production's scrypt costs a tenth of a second
# of CPU a hash, and the suite sets and checks hundreds (every user a fixture makes).
TEST_HASH = "pbkdf2:sha256:1000"


@pytest.fixture(autouse=True)
def _cheap_password_hashes(request: pytest.FixtureRequest,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every password a test sets is hashed with TEST_HASH, unless the test is marked
    production_hashing (those check the hash production stores, tests/test_users.py). The
    decoy hash an unknown email is checked against is made again for each test, so it is
    made like the test's own hashes (engine.users keeps it once made)."""
    users._decoy_hash.cache_clear()
    if request.node.get_closest_marker("production_hashing") is None:
        monkeypatch.setattr(users, "generate_password_hash",
                            partial(generate_password_hash, method=TEST_HASH))


@pytest.fixture()
def session(db_url: str) -> Iterator[Session]:
    """A session on the clean database; the test commits when it needs to."""
    s = db.make_sessionmaker(db_url)()
    s.info["actor"] = "tester@example.com"
    try:
        yield s
    finally:
        s.rollback()
        s.close()
