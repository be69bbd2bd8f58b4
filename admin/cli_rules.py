"""``laurel rules validate|load|export``."""

from __future__ import annotations

from pathlib import Path

import click

from engine.db import session_scope


def register(main: click.Group) -> None:
    """Attach the rules group to the main command."""
    from admin.cli_base import user_errors

    @main.group()
    def rules() -> None:
        """Validate, load and export rule files (YAML, one rule per file)."""

    @rules.command("validate")
    @click.argument("path", type=click.Path())
    @user_errors
    def validate_cmd(path: str) -> None:
        """Check the rule files under PATH without loading them."""
        from engine.rulebook import validate_files

        with session_scope() as session:
            docs = validate_files(session, Path(path))
            session.rollback()
        click.echo(f"{len(docs)} rule file(s) valid")

    @rules.command("load")
    @click.argument("path", type=click.Path())
    @click.option("--publish", is_flag=True, help="Publish the rules (default: drafts).")
    @click.option("--as", "actor", metavar="EMAIL", default=None,
                  help="Act as this back-office user (default: the system user).")
    @user_errors
    def load_cmd(path: str, publish: bool, actor: str | None) -> None:
        """Load the rule files under PATH as drafts, or published; all or none."""
        from admin.cli_base import resolve_actor
        from engine.rulebook import load_files

        with session_scope() as session:
            session.info["actor"] = resolve_actor(session, actor)
            loaded = load_files(session, Path(path), publish=publish)
            lines = [f"{r.key} v{r.version} {r.status}" + ("" if new else " (unchanged)")
                     for r, new in loaded]
        for line in lines:
            click.echo(line)

    @rules.command("export")
    @click.argument("directory", type=click.Path(file_okay=False))
    @user_errors
    def export_cmd(directory: str) -> None:
        """Write every published rule to DIRECTORY as YAML, one file per rule."""
        from engine.rulebook import export_rules

        with session_scope() as session:
            paths = export_rules(session, Path(directory))
        click.echo(f"{len(paths)} rule(s) written to {directory}")
