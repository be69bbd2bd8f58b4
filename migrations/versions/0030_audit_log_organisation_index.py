"""an index of the audit entries of employees, teams, levels and metrics, by time

A run's period-close checklist names the changes to the organisation made since the run
began (engine.lifecycle.org_changed_since): without it, every view of a run's page read
the whole audit log, which keeps an entry for each flag a run carries over or clears.
Partial: the other entries are not written into it.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-01 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORGANISATION = sa.text("entity IN ('employee', 'level', 'metric', 'team')")


def upgrade() -> None:
    op.create_index("ix_audit_log_organisation", "audit_log", ["at"],
                    sqlite_where=ORGANISATION, postgresql_where=ORGANISATION)


def downgrade() -> None:
    op.drop_index("ix_audit_log_organisation", table_name="audit_log")
