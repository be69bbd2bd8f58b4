"""what a run's pages read of its figures; the employees without results kept with a run

``run.summary`` holds what the pages of a run read of its figures (engine.statements.
summary_of), of a size that does not grow with the run: the figures of a run of 1,000,000
employees name its 100,000 teams, and decoding them took most of its page's time.
``run.figures["results"]``: how many employees have results for the run's period, and
the first without (engine.rollup.results_cover), so that the period-close checklist does
not go through every employee. Both filled in here for the runs already stored (the
latter for the runs whose checklist is shown: calculated or approved).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 20:10:00
"""

from collections.abc import Sequence
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_run = sa.table("run", sa.column("id", sa.Integer), sa.column("period_id", sa.Integer),
                sa.column("status", sa.String), sa.column("figures", sa.JSON),
                sa.column("summary", sa.JSON))
_period = sa.table("period", sa.column("id", sa.Integer), sa.column("code", sa.String))


def upgrade() -> None:
    from sqlalchemy.orm import Session

    from engine import rollup, statements

    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("summary", sa.JSON(), nullable=True))
    bind = op.get_bind()
    session = Session(bind=bind)
    for run_id, status, figures, period_id, code in bind.execute(
            sa.select(_run.c.id, _run.c.status, _run.c.figures, _period.c.id, _period.c.code)
            .join(_period, _period.c.id == _run.c.period_id)
            .where(_run.c.figures.is_not(None)).order_by(_run.c.id)).all():
        figures = dict(figures)
        if status in ("calculated", "approved"):
            figures["results"] = rollup.results_cover(
                session, SimpleNamespace(id=period_id, code=code))
        bind.execute(_run.update().where(_run.c.id == run_id)
                     .values(figures=figures, summary=statements.summary_of(figures)))


def downgrade() -> None:
    bind = op.get_bind()
    for run_id, figures in bind.execute(
            sa.select(_run.c.id, _run.c.figures).where(_run.c.figures.is_not(None))).all():
        if "results" in figures:
            bind.execute(_run.update().where(_run.c.id == run_id).values(
                figures={k: v for k, v in figures.items() if k != "results"}))
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("summary")
