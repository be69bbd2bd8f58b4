"""rule version scenarios

Each rule version carries its scenarios (one feature file's Gherkin) as data. Until now
the publish gate ran ``features/KEY.feature`` from the checkout and the scenarios HR wrote
for the key (table ``rule_scenario``); every version of a key gets both here, so the gate
runs what it ran before. Downgrading gives a key without a feature file the newest
version's scenarios as its HR scenarios (a key with one runs its feature file again).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FEATURES = Path(__file__).resolve().parents[2] / "features"

rule = sa.table("rule", sa.column("id", sa.Integer), sa.column("key", sa.String),
                sa.column("version", sa.Integer), sa.column("scenarios", sa.Text))
rule_scenario = sa.table("rule_scenario", sa.column("rule_key", sa.String),
                         sa.column("text", sa.Text), sa.column("updated_by", sa.String))


def _combined(key: str, written: str) -> str:
    """The feature file of the key and HR's scenarios, as one feature."""
    from engine import scenarios

    path = FEATURES / f"{key}.feature"
    feature_text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not written.strip():
        return scenarios.normal(feature_text, f"{key}.feature")
    try:
        mine = scenarios.read(written, f"{key}: scenarios written in the back office")
    except scenarios.SpecSyntaxError:
        return scenarios.normal(feature_text, f"{key}.feature")  # it never ran either
    if not feature_text.strip():
        mine.name = mine.name if mine.name and not mine.name.startswith(key) else key
        return scenarios.write(mine)
    feature = scenarios.read(feature_text, f"{key}.feature")
    feature.scenarios += mine.scenarios
    return scenarios.write(feature)


def upgrade() -> None:
    with op.batch_alter_table("rule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scenarios", sa.Text(), nullable=False,
                                      server_default=""))
    bind = op.get_bind()
    written = dict(bind.execute(sa.select(rule_scenario.c.rule_key, rule_scenario.c.text)).all())
    keys = [k for (k,) in bind.execute(sa.select(rule.c.key).distinct())]
    for key in keys:
        text = _combined(key, written.get(key, ""))
        if text:
            bind.execute(rule.update().where(rule.c.key == key).values(scenarios=text))
    op.drop_table("rule_scenario")


def downgrade() -> None:
    op.create_table(
        "rule_scenario",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_key", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rule_key"),
    )
    bind = op.get_bind()
    newest: dict[str, tuple[int, str]] = {}
    for key, version, text in bind.execute(sa.select(rule.c.key, rule.c.version,
                                                     rule.c.scenarios)):
        if key not in newest or version > newest[key][0]:
            newest[key] = (version, text)
    for key, (_, text) in sorted(newest.items()):
        if text and not (FEATURES / f"{key}.feature").is_file():
            bind.execute(rule_scenario.insert().values(rule_key=key, text=text,
                                                       updated_by="migration 0010"))
    with op.batch_alter_table("rule", schema=None) as batch_op:
        batch_op.drop_column("scenarios")
