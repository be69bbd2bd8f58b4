"""Rows written and matched in bulk, straight through the driver, in the caller's transaction.

Core's per-row parameter processing, and psycopg's executemany, cost more than the
database's own work on a large import: PostgreSQL gets COPY (into the table, or into a
temporary table that one UPDATE ... FROM or one join then reads), SQLite sqlite3's
executemany. Every value still passes through its column type's bind processor.

A temporary table also stands for a set of ids a query would otherwise bind one parameter
each for: psycopg refuses more than 65,535 parameters in a statement, SQLite 250,000.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Select, Table, column, func, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

_BATCH = 5_000


def _copy_text(value: Any) -> str:
    """A value in COPY's text format (NULL is \\N; a backslash is doubled; the cells that
    reach here hold no tab, line break or other control character: engine.cells refuses
    them)."""
    if value is None:
        return "\\N"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)  # a JSON column
    if isinstance(value, str):
        return value.replace("\\", "\\\\")
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.date | Decimal | int):
        return str(value)
    raise TypeError(f"no COPY text for {type(value).__name__}")


def _copy(conn: Connection, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          plain: bool = False, keys: dict[int, set[Any]] | None = None) -> None:
    """COPY the rows, a batch at a time (the server reads one while the next is made);
    ``keys``: the values of these columns (by index) are added to each set."""
    cursor = conn.connection.dbapi_connection.cursor()
    line = "\t".join(["%s"] * len(columns)) + "\n"
    try:
        with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            rows = iter(rows)
            while batch := list(itertools.islice(rows, _BATCH)):
                for index, seen in (keys or {}).items():
                    seen.update(map(itemgetter(index), batch))
                if plain:  # one format for the whole batch: no call a value, nor a row
                    copy.write((line * len(batch)) % tuple(itertools.chain.from_iterable(batch)))
                else:
                    copy.write("".join("\t".join(map(_copy_text, row)) + "\n" for row in batch))
    finally:
        cursor.close()


@contextmanager
def quiet_collector() -> Iterator[None]:
    """No cyclic garbage collection while a bulk of objects is made and dropped: a run's
    chunk, an import's cells. Collections walked every fact and outcome held, again and
    again (15% of a run's time, measured; a quarter of a 100,000-row results import's CPU
    in Python). Reference counting frees what is dropped meanwhile; the collector is on
    again (as it was) at the end and collects what cycles were left, few since the
    engine's firings are read from its C core without Python actions
    (engine.compiler.fire). (Freezing a run chunk's objects instead kept those cycles, and
    the memory grew with the chunks; collecting them at the next chunk's start cost as
    much as it saved.)"""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _processors(conn: Connection, table: Table, columns: Sequence[str]) -> list[Any]:
    dialect = conn.dialect
    return [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def _bound(conn: Connection, table: Table, columns: Sequence[str],
           rows: Iterable[Sequence[Any]], as_text: Sequence[str] = ()
           ) -> Iterable[Sequence[Any]]:
    procs = [None if c in as_text else p
             for c, p in zip(columns, _processors(conn, table, columns), strict=True)]
    if not any(procs):
        return rows
    return (tuple(p(v) if p and v is not None else v for p, v in zip(procs, row, strict=True))
            for row in rows)


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _name(conn: Connection, table: Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


def _copying(conn: Connection) -> bool:
    return conn.dialect.driver == "psycopg"


class MissingReference(LookupError):
    """A value of a foreign key column that its referenced table does not hold (any more):
    ``column`` and ``value``."""

    def __init__(self, column: str, value: Any) -> None:
        super().__init__(f"{column} {value!r} is not in the table it refers to")
        self.column, self.value = column, value


def insert_rows(session: Session, table: Table, columns: Sequence[str],
                rows: Iterable[Sequence[Any]], as_text: Sequence[str] = (),
                plain: bool = False, check_references: bool = False) -> None:
    """Insert rows of values, in the order of ``columns``. The columns named in
    ``as_text`` are given as the text the database keeps (a JSON column's JSON, made by
    the caller), not passed through their type. ``plain``: every value is an int, or a
    text with no backslash and no control character (ids, JSON of plain numbers), and
    COPY takes them as they are.

    ``check_references``: on PostgreSQL, the foreign keys are checked once for all rows
    rather than a row at a time where the session may (_single_keys); a value missing
    from its table raises MissingReference, as the constraint would have refused it, and
    the rows are not inserted. Uniqueness, NOT NULL and checks hold as ever.

    A foreign key's trigger runs ``SELECT 1 FROM parent WHERE key = $1 FOR KEY SHARE`` a
    row: on a results import that was most of PostgreSQL's time (100,000 rows: about 1.3 s
    of 2.0 s). Here the rows are copied with session_replication_role = replica, which
    skips the triggers (as pg_restore --disable-triggers does), then each key's distinct
    values are locked the same way in one statement, so that no other transaction can
    delete them before this one ends, and every one must be found.
    """
    conn = session.connection()
    if _copying(conn):
        name = _name(conn, table)
        keys = _single_keys(conn, table, columns) if check_references else None
        if not keys:
            _copy(conn, name, columns, rows, plain)
            return
        found: dict[str, set[Any]] = {key: set() for key, *_ in keys}
        conn.exec_driver_sql("SAVEPOINT laurel_bulk_insert")
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        # a database error aborts the transaction, and this setting with it
        _copy(conn, name, columns, rows, plain, {columns.index(k): v for k, v in found.items()})
        conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
        try:
            for key, parent, parent_key, key_type in keys:
                _lock_references(conn, key, parent, parent_key, key_type, found[key])
        except MissingReference:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT laurel_bulk_insert")
            conn.exec_driver_sql("RELEASE SAVEPOINT laurel_bulk_insert")
            raise
        conn.exec_driver_sql("RELEASE SAVEPOINT laurel_bulk_insert")
        return
    rows = [tuple(r) for r in _bound(conn, table, columns, rows, as_text)]
    if rows:
        mark = _mark(conn)
        conn.exec_driver_sql(f"INSERT INTO {_name(conn, table)} ({', '.join(columns)}) "
                             f"VALUES ({', '.join([mark] * len(columns))})", rows)


def _lock_references(conn: Connection, key: str, parent: str, parent_key: str, key_type: str,
                     values: set[Any]) -> None:
    """Lock the parent rows of these key values FOR KEY SHARE, as the foreign key's
    trigger does a row; raise MissingReference for a value none holds."""
    wanted = sorted(values - {None})
    if not wanted:
        return
    # ids as one array's text: psycopg adapts a list of a million ints one by one
    array = "{" + ",".join(map(str, wanted)) + "}" if all(
        type(v) is int for v in wanted) else wanted
    locked = f"SELECT {parent_key} FROM {parent} WHERE {parent_key} = " \
             f"ANY(CAST(%s AS {key_type}[])) FOR KEY SHARE"
    found, = conn.exec_driver_sql(f"SELECT count(*) FROM ({locked}) AS k", (array,)).one()
    if found != len(wanted):
        there = {value for value, in conn.exec_driver_sql(locked, (array,))}
        raise MissingReference(key, next(v for v in wanted if v not in there))


def may_skip_key_checks(session: Session, table: Table) -> bool:
    """Whether references_held would skip the table's key checks here (PostgreSQL through
    psycopg, and the session may: _may_skip_triggers)."""
    conn = session.connection()
    return _copying(conn) and _may_skip_triggers(conn, table)


def _may_skip_triggers(conn: Connection, table: Table) -> bool:
    """Whether the session may set session_replication_role (a superuser, or granted SET
    on PostgreSQL 15 and later) and the table has no trigger of its own (only its
    foreign keys' would be skipped)."""
    if conn.dialect.server_version_info < (15,):
        allowed = "current_setting('is_superuser') = 'on'"
    else:
        allowed = "has_parameter_privilege('session_replication_role', 'SET')"
    found = conn.exec_driver_sql(
        f"SELECT {allowed}, (SELECT count(*) FROM pg_trigger WHERE tgrelid = %(t)s::regclass "
        "AND NOT tgisinternal)", {"t": _name(conn, table)}).one()
    return bool(found[0]) and not found[1]


@contextmanager
def references_held(session: Session, table: Table, allowed: bool | None = None
                    ) -> Iterator[None]:
    """The statements inside insert rows into ``table`` whose every reference the caller's
    transaction already holds (rows it locked, or that a constraint keeps from going):
    on PostgreSQL, where the session may (may_skip_key_checks; ``allowed``: the caller
    asked already), their foreign keys' per-row triggers are skipped
    (session_replication_role = replica, for these statements only). The caller answers
    for the references: nothing checks them here.

    Inside another such block (its statements' checks skipped already), one that may skip
    them too sets nothing (a chunk stores its outcomes and opens their flags' cases under
    one setting); one that may not has them checked for its statements."""
    may = bool(may_skip_key_checks(session, table) if allowed is None else allowed)
    outer = session.info.get(_HELD) is session.connection()
    if may == outer:  # skipped already, or checked
        yield
        return
    with _replication_role(session, "replica" if may else "origin"):
        yield


_HELD = "laurel_references_held"  # session.info: the connection whose checks are skipped


@contextmanager
def _replication_role(session: Session, role: str) -> Iterator[None]:
    """session_replication_role set to ``role`` for the statements inside, then back."""
    from psycopg.pq import TransactionStatus

    conn = session.connection()
    was = session.info.get(_HELD)
    conn.exec_driver_sql(f"SET LOCAL session_replication_role = {role}")
    session.info[_HELD] = conn if role == "replica" else None
    try:
        yield
    finally:
        session.info[_HELD] = was
        # after a database error the transaction is aborted, and the setting with it
        if conn.connection.dbapi_connection.info.transaction_status \
                != TransactionStatus.INERROR:
            back = "replica" if role == "origin" else "origin"
            conn.exec_driver_sql(f"SET LOCAL session_replication_role = {back}")


def _single_keys(conn: Connection, table: Table, columns: Sequence[str]
                 ) -> list[tuple[str, str, str, str]] | None:
    """The table's foreign keys as (column, parent table, parent key, its type), where the
    session may skip their triggers (_may_skip_triggers) and every key is one column, of
    ``columns`` or left NULL; else None."""
    if not _may_skip_triggers(conn, table):
        return None
    name = _name(conn, table)
    keys = conn.exec_driver_sql(
        "SELECT a.attname, c.confrelid::regclass::text, fa.attname, "
        "format_type(fa.atttypid, fa.atttypmod), cardinality(c.conkey), a.atthasdef "
        "FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] "
        "WHERE c.conrelid = %(t)s::regclass AND c.contype = 'f'", {"t": name}).all()
    # a key the insert leaves out is NULL (no default): nothing to check
    if any(size != 1 or (key not in columns and default) for key, *_, size, default in keys):
        return None
    return [(key, parent, parent_key, key_type)
            for key, parent, parent_key, key_type, *_ in keys if key in columns]


def update_rows(session: Session, table: Table, columns: Sequence[str],
                rows: Iterable[Sequence[Any]], key: str = "id", as_text: Sequence[str] = ()
                ) -> None:
    """Set ``columns`` of the rows whose ``key`` is each row's last value (``as_text``: as
    insert_rows)."""
    conn = session.connection()
    rows = list(rows)
    if not rows:
        return
    name = _name(conn, table)
    if _copying(conn):
        scratch = "laurel_bulk_update"
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {scratch}")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {scratch} AS SELECT "
                             f"{', '.join([*columns, key])} FROM {name} WITH NO DATA")
        _copy(conn, scratch, [*columns, key], rows)
        conn.exec_driver_sql(
            f"UPDATE {name} SET {', '.join(f'{c} = s.{c}' for c in columns)} "
            f"FROM {scratch} s WHERE {name}.{key} = s.{key}")
        conn.exec_driver_sql(f"DROP TABLE {scratch}")
        return
    mark = _mark(conn)
    conn.exec_driver_sql(
        f"UPDATE {name} SET {', '.join(f'{c} = {mark}' for c in columns)} "
        f"WHERE {key} = {mark}",
        [tuple(r) for r in _bound(conn, table, [*columns, key], rows, as_text)])


# A bulk write of at least this many rows analyses its table at once (PostgreSQL).
ANALYZE_AFTER = 5_000


# The statistics target of a run's own ANALYZE (analyze's ``sample``): 6,000 rows
# sampled, where the server's default (100) samples 30,000.
RUN_SAMPLE = 20


def analyze(session: Session, *tables: Table, rows: int = ANALYZE_AFTER,
            sample: int | None = None) -> bool:
    """After a bulk write of ``rows`` rows, refresh PostgreSQL's statistics of the tables
    in the caller's transaction (its own rows count). Without them the planner reads a
    table of a million fresh rows as empty: streaming a 20,000-employee run's outcomes
    took minutes on a nested loop until autovacuum (if on at all) got round to it.
    ``sample``: the statistics target (300 rows sampled per unit) where not the server's
    default; a run's (RUN_SAMPLE) tells the planner how many of the run's outcomes and
    cases there are of each run, kind and status, which is what its reads plan by, in a
    quarter of the time (a 20,000-employee run's 63,000 outcomes: 60 ms against 280 ms,
    every sampled row read from the table), and the server's autovacuum analyses the
    tables again with its own target once they have changed by a tenth. Returns whether
    it did."""
    conn = session.connection()
    if rows < ANALYZE_AFTER or conn.dialect.name != "postgresql":
        return False
    if sample is not None:  # this transaction's ANALYZE alone reads the setting
        conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {int(sample)}")
    for analysed in tables:
        conn.exec_driver_sql(f"ANALYZE {_name(conn, analysed)} ({_analyzed(conn, analysed)})")
    if sample is not None:
        conn.exec_driver_sql("SET LOCAL default_statistics_target TO DEFAULT")
    return True


def _analyzed(conn: Connection, table: Table) -> str:
    """The columns of a table whose statistics a plan reads, as ANALYZE lists them: all
    but its JSON documents, which no query filters, joins or groups by. An outcome's
    explanation was two thirds of ANALYZE's time on the outcomes (reading and measuring
    each sampled document)."""
    quote = conn.dialect.identifier_preparer.quote
    return ", ".join(quote(c.name) for c in table.columns
                     if not isinstance(c.type, JSON) and not getattr(c.type, "document", False))


# Above this many rows (PostgreSQL's estimate) a table's rows are given as estimated, not
# counted: counting 3,000,000 rows of results took a home page 150 to 250 ms.
COUNTED_EXACTLY = 100_000


def rows_of(session: Session, table: Table) -> tuple[int, bool]:
    """(how many rows the table holds, whether counted exactly): on PostgreSQL, past
    COUNTED_EXACTLY rows, the planner's estimate (pg_class.reltuples, kept by ANALYZE,
    which a bulk write runs: analyze), else counted."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        estimate = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            (_name(conn, table),)).scalar()
        # (-1: never analysed, so unknown)
        if estimate is not None and estimate >= 0 and estimate > COUNTED_EXACTLY:
            return int(estimate), False
    return session.scalar(select(func.count()).select_from(table)) or 0, True


def in_code_order(session: Session, column: Any) -> Any:
    """``column`` to order by as Python orders its text (by code point), on either
    database: streams merged by it (engine.lifecycle, engine.statements) rely on that.
    SQLite compares text so by default; PostgreSQL by its collation, unless told "C"."""
    if session.get_bind().dialect.name == "postgresql":
        return column.collate("C")
    return column


def ids_in(session: Session, name: str, ids: Iterable[int]) -> Select[Any]:
    """Fill a temporary table ``name`` (one column ``id``) with ids and return the SELECT
    of them, for ``column.in_(...)`` in place of one bound parameter an id. The table lives
    as long as the connection and is emptied on each call."""
    conn = session.connection()
    conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} "
                      "(id INTEGER PRIMARY KEY)"))
    conn.execute(text(f"DELETE FROM {name}"))
    ids = sorted(set(ids))
    if _copying(conn):
        _copy(conn, name, ["id"], ((i,) for i in ids))
    elif ids:
        conn.exec_driver_sql(f"INSERT INTO {name} (id) VALUES (?)", [(i,) for i in ids])
    return select(table(name, column("id")).c.id)
