"""Engine and session setup, the schema (Alembic) and the audit trail."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import LaurelError
from engine.models import AuditLog, Base

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = Path(os.environ.get("LAUREL_INSTANCE_PATH", PROJECT_ROOT / "instance"))

# Tables whose changes are not audited row by row: results are audited per import, the
# audit log itself never, runs and outcomes through their own lifecycle entries, and so
# are flags, PIPs, inquiries, review cycles and one-to-ones (their engine modules), API
# tokens (engine.tokens) and the answers kept for idempotent API writes; a run's chunks and
# context are its machinery, and the counts of its flags follow its flags.
_NOT_AUDITED = {"audit_log", "result", "outcome", "run", "run_job", "run_chunk", "run_context",
                "adjustment", "flag_case", "flag_count", "flag_note", "pip", "candidate",
                "inquiry", "inquiry_message",
                "review_cycle", "review_entry", "talk", "api_token", "api_idempotency"}


def database_url() -> str:
    """Return the configured database URL (LAUREL_DATABASE_URL, else SQLite in instance/)."""
    url = os.environ.get("LAUREL_DATABASE_URL")
    if url:
        return url
    DEFAULT_INSTANCE.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_INSTANCE / 'laurel.db'}"


_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """Return one engine per URL; SQLite gets foreign keys and a busy timeout."""
    url = url or database_url()
    if url not in _engines:
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                # WAL: a run's worker writes its progress while readers keep reading.
                cur.execute("PRAGMA journal_mode=WAL")
                cur.close()

        _engines[url] = engine
    return _engines[url]


def begin_writing(session: Session) -> None:
    """Make the session's transaction a writer now, waiting for the writer before it (SQLite).

    pysqlite opens a transaction only before the first INSERT, UPDATE or DELETE: the reads
    before it run on their own and hold no snapshot. ``BEGIN IMMEDIATE`` takes the write
    lock at once (waiting up to the busy timeout), so what the transaction reads from here on
    is what the writer before it committed, and no other writer comes in between. A
    transaction that has written already holds that lock. SQLAlchemy's recipe for pysqlite
    (the driver in autocommit, BEGIN from the "begin" event) is not applied to every
    transaction: a transaction that read first and writes later would then fail at once with
    "database is locked" whenever another writer committed meanwhile, where it waits today.
    PostgreSQL needs nothing here: it locks rows (periods.serialise).
    """
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    if conn.connection.dbapi_connection.in_transaction:
        return
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as exc:
        raise LaurelError("the database is busy with another change for too long; try "
                          f"again ({exc.orig})") from None


def forget_engines() -> None:
    """In a forked process: drop the parent's pooled connections without closing them (they
    are the parent's), so that this process opens its own."""
    for engine in _engines.values():
        engine.dispose(close=False)


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def fresh_sqlite_copy(template: Path, path: Path) -> str:
    """Put a fresh copy of the SQLite file ``template`` at ``path``; its URL, the same each
    time. One URL keeps one engine (get_engine), and with it SQLAlchemy's cache of compiled
    statements. The engine's pooled connections are closed and the file, its WAL and
    shared memory are unlinked, never overwritten, so a connection left open still sees
    its own (former) file and never the new one."""
    url = f"sqlite:///{path}"
    engine = _engines.get(url)
    if engine is not None:
        engine.dispose()
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        path.with_name(name).unlink(missing_ok=True)
    shutil.copy(template, path)
    return url


def make_sessionmaker(url: str | None = None, info: dict[str, Any] | None = None
                      ) -> sessionmaker[Session]:
    """Sessions on the URL's engine; ``info`` seeds each session's info (the back office
    marks its sessions to evaluate rules in child processes: engine.isolate)."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False, info=info or {})


@contextmanager
def session_scope(url: str | None = None, actor: str = "system") -> Iterator[Session]:
    """Open a session that commits on success and rolls back everything on error."""
    session = make_sessionmaker(url)()
    session.info["actor"] = actor
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upgrade_schema(url: str | None = None) -> None:
    """Create or upgrade the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    cfg.attributes["engine"] = get_engine(url)
    command.upgrade(cfg, "head")


# --- audit trail -------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


# Credentials are never copied into the audit log (User.password_hash, User.session_token,
# User.invite_hash, ApiToken.token_hash); that a password or an invitation was set or
# cleared is, as "(set)" or "(cleared)" (a new session token at each login is not worth it).
_SECRET_COLUMNS = {"password_hash", "session_token", "invite_hash", "token_hash"}
SECRET_SET, SECRET_CLEARED = "(set)", "(cleared)"  # what an entry says of them
_TOLD_SECRETS = {"password_hash": "password", "invite_hash": "invitation"}


def _snapshot(obj: Any, committed: bool = False) -> dict[str, Any]:
    state = inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if attr.key in _SECRET_COLUMNS:
            if not committed and hist.added and attr.key in _TOLD_SECRETS:
                out[_TOLD_SECRETS[attr.key]] = SECRET_CLEARED if hist.added[0] is None \
                    else SECRET_SET
            continue
        if committed:
            value = hist.deleted[0] if hist.deleted else (
                hist.unchanged[0] if hist.unchanged else getattr(obj, attr.key)
            )
        else:
            value = getattr(obj, attr.key)
        out[attr.key] = _plain(value)
    return out


def audit(session: Session, action: str, entity: str, entity_id: Any = "", summary: str = "",
          before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
          actor: str | None = None) -> None:
    """Record one audit entry for the actor (default: the session's actor).

    A session whose info has ``via`` (the API: "api token NAME") records it on every entry.
    A summary made with engine.messages.msg keeps its template and parameters too: it
    reads in each reader's language in the back office.
    """
    session.add(AuditLog(**_entry(session, action, entity, entity_id, summary, before, after,
                                  actor, dt.datetime.now(dt.UTC))))


def _entry(session: Session, action: str, entity: str, entity_id: Any, summary: Any,
           before: dict[str, Any] | None, after: dict[str, Any] | None, actor: str | None,
           at: dt.datetime) -> dict[str, Any]:
    """The columns of an audit entry (audit, audit_all)."""
    from engine.messages import Message

    return {"actor": actor or session.info.get("actor", "system"), "action": action,
            "entity": entity, "entity_id": str(entity_id or ""), "summary": str(summary),
            "before": before, "after": after, "at": at, "via": session.info.get("via"),
            "message": summary.stored() if isinstance(summary, Message) else None}


def audit_all(session: Session, action: str, entity: str,
              entries: Iterable[tuple[Any, Any, dict[str, Any] | None, dict[str, Any] | None]],
              actor: str | None = None) -> int:
    """Record an audit entry for each (entity id, summary, before, after), as ``audit``
    does, in one INSERT (a run that clears or reopens thousands of flags); how many."""
    now = dt.datetime.now(dt.UTC)
    rows = [_entry(session, action, entity, entity_id, summary, before, after, actor, now)
            for entity_id, summary, before, after in entries]
    if rows:
        session.execute(AuditLog.__table__.insert(), rows)
    return len(rows)


@event.listens_for(Session, "before_flush")
def _audit_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    if session.info.get("audit_off"):
        return
    entries = []
    for obj in session.new:
        table = getattr(obj, "__tablename__", None)
        if table and table not in _NOT_AUDITED and isinstance(obj, Base):
            entries.append(("create", obj, None))
    for obj in session.dirty:
        table = getattr(obj, "__tablename__", None)
        if table and table not in _NOT_AUDITED and session.is_modified(obj):
            entries.append(("update", obj, _snapshot(obj, committed=True)))
    for obj in session.deleted:
        table = getattr(obj, "__tablename__", None)
        if table and table not in _NOT_AUDITED:
            entries.append(("delete", obj, _snapshot(obj, committed=True)))
    pending = session.info.setdefault("_audit_pending", [])
    pending.extend(entries)


@event.listens_for(Session, "after_flush")
def _audit_write(session: Session, _ctx: Any) -> None:
    pending = session.info.pop("_audit_pending", [])
    if not pending:
        return
    actor, via = session.info.get("actor", "system"), session.info.get("via")
    now = dt.datetime.now(dt.UTC)
    rows = []
    for action, obj, before in pending:
        after = None if action == "delete" else _snapshot(obj)
        if action == "update" and before == after:
            continue
        rows.append({
            "actor": actor, "action": action, "entity": obj.__tablename__,
            "entity_id": str(getattr(obj, "id", "") or ""), "summary": str(obj)[:200],
            "before": before, "after": after, "at": now, "via": via,
        })
    if rows:
        session.execute(AuditLog.__table__.insert(), rows)


__all__ = [
    "audit", "audit_all", "begin_writing", "database_url", "fresh_sqlite_copy", "get_engine",
    "make_sessionmaker", "session_scope", "upgrade_schema", "dispose_engines",
]
