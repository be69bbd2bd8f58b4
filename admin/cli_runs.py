"""``laurel run``, ``outcomes``."""

from __future__ import annotations

import csv
import io
import json
import sys

import click

from engine.db import session_scope
from engine.errors import RunError


def register(main: click.Group) -> None:
    """Attach the run commands to the main command."""
    from admin.cli import actor_option, resolve_actor, user_errors

    @main.command("run")
    @click.argument("period")
    @click.option("--dry-run", is_flag=True, help="Evaluate and print the summary; store "
                  "nothing.")
    @actor_option
    @user_errors
    def run_cmd(period: str, dry_run: bool, actor: str | None) -> None:
        """Compensation run for PERIOD; prints the run id on the first line, then a summary."""
        from engine import runs

        who = "system"
        try:
            with session_scope() as session:
                who = resolve_actor(session, actor)
                session.info["actor"] = who
                result = runs.start_run(session, period, actor=who, dry_run=dry_run,
                                        progress=_progress_bar())
                if dry_run:
                    session.rollback()
        except RunError as exc:
            with session_scope(actor=who) as session:
                runs.record_failure(session, period, who, str(exc))
            raise
        click.echo("dry run: nothing stored" if dry_run else str(result.run.id))
        click.echo(result.summary())
        click.echo(f"rule set {result.ruleset_hash[:12]}")

    @main.command("outcomes")
    @click.argument("run_id", type=int)
    @click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
                  show_default=True)
    @user_errors
    def outcomes_cmd(run_id: int, fmt: str) -> None:
        """Print every outcome of RUN_ID to stdout."""
        from engine import runs

        with session_scope() as session:
            rows = runs.outcome_rows(session, runs.get_run(session, run_id))
        if fmt == "json":
            click.echo(runs.outcomes_json(rows))
            return
        columns = ["run_id", "period", "employee_code", "rule_key", "kind", "amount",
                   "currency", "value", "status", "explanation"]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([json.dumps(row[c], ensure_ascii=False) if c == "explanation"
                             else "" if row[c] is None else row[c] for c in columns])
        click.echo(buf.getvalue(), nl=False)


def _progress_bar():  # noqa: ANN202
    """A progress bar on a terminal (stderr); nothing when the output is piped."""
    if not sys.stderr.isatty():
        return None
    state = {"bar": None}

    def progress(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=total, label="employees", file=sys.stderr)
            state["bar"].__enter__()
        bar = state["bar"]
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return progress
