"""trigram indexes for searching employees by part of their code or name (PostgreSQL)

A run's people, and the other lists of employees, are searched with ``ILIKE '%text%'``
on the code and the name: on PostgreSQL a search of a 1,000,000-employee run read every
employee (2.8 s). A trigram GIN index (extension pg_trgm, shipped with PostgreSQL and
trusted: a database owner may create it) answers any part of a word, in any case, so the
search keeps its meaning (not only a prefix). Where the extension cannot be created the
search works as before, without the index. Nothing on SQLite.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 20:15:00
"""

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# engine/models.py does not name them (migrations/env.py leaves them out of comparisons)
INDEXES = {"ix_employee_code_trgm": "code", "ix_employee_name_trgm": "name"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        logging.getLogger("alembic").warning(
            "pg_trgm cannot be created (%s): employees are searched without an index",
            str(exc.orig).strip().splitlines()[0])
        return
    for name, column in INDEXES.items():
        bind.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON employee "
                             f"USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    # the extension stays: other databases' objects may use it
    if op.get_bind().dialect.name == "postgresql":
        for name in INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
