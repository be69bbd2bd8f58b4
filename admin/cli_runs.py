"""``laurel run``, ``outcomes``, ``approve``, ``lock``, ``export``."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from engine.db import session_scope
from engine.errors import RunFailed


def register(main: click.Group) -> None:
    """Attach the run commands to the main command."""
    from admin.cli_base import actor_option, resolve_actor, user_errors

    @main.command("run")
    @click.argument("period")
    @click.option("--dry-run", is_flag=True, help="Evaluate and print the summary; store "
                  "nothing.")
    @actor_option
    @user_errors
    def run_cmd(period: str, dry_run: bool, actor: str | None) -> None:
        """Compensation run for PERIOD; prints the run id on the first line, then a summary."""
        from engine import jobs, runs, tasks

        with session_scope() as session:
            who = resolve_actor(session, actor)
            session.info["actor"] = who
            if dry_run:  # evaluated here; nothing stored, not even a failure
                result = runs.start_run(session, period, actor=who, dry_run=True,
                                        progress=_progress_bar())
                lines = ["dry run: nothing stored", result.summary(),
                         f"rule set {result.ruleset_hash[:12]}"]
                session.rollback()
                for line in lines:
                    click.echo(line)
                return
            job_id = jobs.start(session, period, who).id
        factory = jobs.factory()
        if tasks.broker_url():  # Celery workers on the broker do it; we watch
            jobs.dispatch(job_id)
            job = jobs.wait(factory, job_id, _progress_bar())
            if job.status != "done":
                raise RunFailed(job.error or f"run job {job_id} is {job.status}")
            run_id = job.run_id
        else:  # no broker: the same steps here, chunks shared among forked processes
            run_id = jobs.run_here(factory, job_id, runs.workers(), _progress_bar()).id
        with session_scope() as session:
            run = runs.get_run(session, run_id)
            click.echo(str(run.id))
            click.echo(runs.summary_of(session, run))
            click.echo(f"rule set {run.ruleset_hash[:12]}")
            stale = runs.staleness(session, run)
        if stale:
            click.echo(f"warning: {stale}", err=True)

    @main.command("outcomes")
    @click.argument("run_id", type=int)
    @click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
                  show_default=True)
    @user_errors
    def outcomes_cmd(run_id: int, fmt: str) -> None:
        """Print every outcome of RUN_ID to stdout, as it is read (any number of them)."""
        from engine import runs
        from engine.cells import csv_text

        with session_scope() as session:
            rows = runs.iter_outcome_rows(session, runs.get_run(session, run_id))
            if fmt == "json":
                _echo_pieces(runs.iter_outcomes_json(rows))
                click.echo()
                return
            columns = ["run_id", "period", "employee_code", "rule_key", "kind", "amount",
                       "currency", "value", "status", "explanation"]
            _echo_pieces(csv_text(itertools.chain([columns], (
                [json.dumps(row[c], ensure_ascii=False) if c == "explanation"
                 else "" if row[c] is None else row[c] for c in columns] for row in rows)),
                runs.STREAM_BATCH))


def _write_file(path: str, pieces: Iterable[bytes]) -> None:
    """Write the pieces to a file beside ``path``, then put it in its place: a failure
    midway leaves no half-written file."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as fh:
            for piece in pieces:
                fh.write(piece)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _echo_pieces(pieces: Iterable[str], size: int = 1 << 16) -> None:
    """Write text pieces to stdout as they come, about ``size`` characters at a time."""
    held: list[str] = []
    length = 0
    for piece in pieces:
        held.append(piece)
        length += len(piece)
        if length >= size:
            click.echo("".join(held), nl=False)
            held, length = [], 0
    if held:
        click.echo("".join(held), nl=False)


def _progress_bar():  # noqa: ANN202
    """A progress bar on a terminal (stderr); nothing when the output is piped."""
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
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


def register_lifecycle(main: click.Group) -> None:
    """Attach approve, lock and export."""
    from admin.cli_base import user_errors

    @main.command("approve")
    @click.argument("run_id", type=int)
    @click.option("--as", "actor", metavar="EMAIL", required=True,
                  help="The approving comp_analyst or hr_admin (not who started the run).")
    @user_errors
    def approve_cmd(run_id: int, actor: str) -> None:
        """Approve a calculated run; refused when EMAIL is the user who started it."""
        from engine.lifecycle import approve

        with session_scope(actor=actor) as session:
            run = approve(session, run_id, actor)
            click.echo(f"run {run.id} approved by {run.approved_by}")

    @main.command("lock")
    @click.argument("run_id", type=int)
    @click.option("--as", "actor", metavar="EMAIL", required=True,
                  help="A comp_analyst or hr_admin.")
    @click.option("--with-open-flags", "reason", metavar="REASON", default=None,
                  help="Lock although flags are still open or in review, for this reason "
                  "(kept in the audit log); without it such a run is refused.")
    @user_errors
    def lock_cmd(run_id: int, actor: str, reason: str | None) -> None:
        """Lock an approved run: its period's results and outcomes can no longer change."""
        from engine.lifecycle import lock

        with session_scope(actor=actor) as session:
            run = lock(session, run_id, actor, open_flags_reason=reason)
            click.echo(f"run {run.id} locked; period {run.period.code} locked")

    @main.command("export")
    @click.argument("run_id", type=int)
    @click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "json"]), default="csv",
                  show_default=True)
    @click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
                  help="Write to FILE (default: stdout for CSV or JSON; XLSX needs -o).")
    @click.option("--draft", is_flag=True, help="Export a calculated (not yet approved) run, or an "
                  "approved one gone stale; the file says it is a draft.")
    @click.option("--totals", is_flag=True, help="Add totals rows to a CSV file (an XLSX file "
                  "always has them).")
    @user_errors
    def export_cmd(run_id: int, fmt: str, output: str | None, draft: bool,
                   totals: bool) -> None:
        """Payroll export: one line per payable, held or forfeited amount."""
        from engine.errors import LaurelError
        from engine.lifecycle import export_stream

        if fmt == "xlsx" and output is None and sys.stdout.isatty():
            raise LaurelError("an XLSX export needs -o FILE")
        with session_scope() as session:
            # written as it is read; a refusal comes before anything is written
            pieces = export_stream(session, run_id, fmt, draft=draft,
                                   totals_rows=True if totals or fmt == "xlsx" else None)
            if output:
                _write_file(output, pieces)
                click.echo(f"run {run_id} exported to {output}", err=True)
            else:
                for piece in pieces:
                    sys.stdout.buffer.write(piece)
                sys.stdout.flush()
