"""an outcome's explanation kept as text on PostgreSQL

PostgreSQL's json type parses every document written to it to check it: a third of the
time COPY took on a run's outcomes, for explanations Laurel writes as JSON itself. The
column is text there now (engine.models.JSONText writes and reads it as the JSON column
did); SQLite's JSON column is text already and stays as it is.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01 02:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outcome ALTER COLUMN explanation TYPE text "
                   "USING explanation::text")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outcome ALTER COLUMN explanation TYPE json "
                   "USING explanation::json")
