"""exact decimals in sqlite

SQLite keeps NUMERIC values as binary floats; decimal columns become text there, which
engine.models.ExactDecimal reads back as the same Decimal. Other databases keep NUMERIC.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    ("level", "discount_authority", sa.Numeric(26, 6)),
    ("result", "value", sa.Numeric(26, 6)),
    ("outcome", "amount", sa.Numeric(18, 2)),
    ("adjustment", "amount", sa.Numeric(18, 2)),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column, numeric in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=numeric, type_=sa.String(48))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column, numeric in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(48), type_=numeric)
