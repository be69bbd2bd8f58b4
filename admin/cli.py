"""The ``laurel`` command line (CONTRACT.md, Command line).

Exit codes: 0 on success, 1 on a user error (one line on stderr naming the file, row and
column where it applies), 2 on a usage error. A command that fails changes nothing.
"""

from __future__ import annotations

import atexit
import getpass
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from admin.cli_base import _fail, actor_option, resolve_actor, user_errors
from engine.db import session_scope
from engine.errors import LaurelError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="laurel")
def main() -> None:
    """Laurel: rules-driven sales incentives and policies.

    Settings come from the environment: LAUREL_DATABASE_URL (default: a SQLite file under
    instance/), LAUREL_SECRET_KEY.
    """


@main.command()
@click.option("--demo", is_flag=True, help="Also load the demo organisation, a year of "
              "results and one demo user per role.")
@user_errors
def init(demo: bool) -> None:
    """Create or upgrade the schema, load reference data and the policy library."""
    from engine.db import upgrade_schema
    from engine.metrics import seed_reference_data
    from engine.rulebook import load_library

    upgrade_schema()
    with session_scope(actor="system") as session:
        seed_reference_data(session)
        loaded = load_library(session, PROJECT_ROOT / "rules")
        click.echo(f"schema up to date; reference data loaded; {loaded} policies published")
        if demo:
            from engine.demo import load_demo

            logins = load_demo(session)
            if logins.already_loaded:
                click.echo("demo organisation already loaded; nothing changed.")
            else:
                click.echo("demo organisation loaded.")
            click.echo("Demo logins (email / password):")
            for email, password, role in logins:
                click.echo(f"  {role:<20} {email:<32} {password}")


@main.group("import")
def import_() -> None:
    """Import employees or period results from CSV or XLSX."""


@import_.command("employees")
@click.argument("file", type=click.Path(dir_okay=False))
@actor_option
@user_errors
def import_employees_cmd(file: str, actor: str | None) -> None:
    """Create or update employees and teams from FILE (CSV or XLSX)."""
    from engine.imports import import_employees

    with session_scope() as session:
        session.info["actor"] = resolve_actor(session, actor)
        report = import_employees(session, file, path=file)
    click.echo(report.summary())


@import_.command("results")
@click.argument("file", type=click.Path(dir_okay=False))
@actor_option
@user_errors
def import_results_cmd(file: str, actor: str | None) -> None:
    """Load period results from FILE (CSV or XLSX); a period is created on first use."""
    from engine.imports import import_results

    with session_scope() as session:
        session.info["actor"] = resolve_actor(session, actor)
        report = import_results(session, file, path=file)
    click.echo(report.summary())


@main.group()
def users() -> None:
    """Manage back-office users."""


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(
    ["hr_admin", "comp_analyst", "compliance_officer", "sales_manager", "auditor",
     "sales_rep"]))
@click.option("--name", default="", help="Display name.")
@click.option("--team", default=None, help="For a sales manager: the team they manage.")
@click.option("--locale", type=click.Choice(["en", "zh"]), default=None)
@user_errors
def users_create(email: str, role: str, name: str, team: str | None,
                 locale: str | None) -> None:
    """Create a back-office user; the password is read from stdin or prompted.

    A sales_rep is the employee with the same email: they see their own pay on the portal.
    """
    from engine.users import create_user

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            _fail("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    with session_scope() as session:
        user = create_user(session, email, password, role, name=name, team=team, locale=locale)
        team_name = user.team.name if user.team else None
    click.echo(f"user {user.email} created with role {user.role}"
               + (f" for team {team_name}" if team_name else ""))
    if role == "sales_manager" and team_name is None:
        click.echo("note: no team yet; this manager sees nothing until a team is set "
                   "(--team, or Users in the back office)", err=True)


@users.command("invite")
@click.argument("email")
@user_errors
def users_invite(email: str) -> None:
    """Invite EMAIL: print a link that sets the password (valid for a week, once).

    A user gets a new link; an employee with this email and no user becomes a sales_rep.
    The link starts with LAUREL_BASE_URL (default http://127.0.0.1:5000).
    """
    from engine.users import invite, invite_link

    with session_scope() as session:
        user, token = invite(session, email)
        role = user.role
    click.echo(invite_link(token))
    click.echo(f"invitation for {email.strip().lower()} ({role}); the link sets the password "
               "and works once, for 7 days", err=True)


@main.group()
def tokens() -> None:
    """Personal API tokens: each acts as its user, with the user's role (/api/v1)."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for (the audit log names it).")
@click.option("--expires", "days", type=click.IntRange(1, 3650), default=None,
              metavar="DAYS", help="Days until it stops working (default: until revoked).")
@user_errors
def tokens_create(email: str, name: str, days: int | None) -> None:
    """Make an API token for the user EMAIL; print the token alone on the first line.

    Only its hash is kept: copy it now, it is not shown again.
    """
    from engine import tokens as api_tokens

    with session_scope() as session:
        token, text = api_tokens.create(session, email, name, days)
        expires = token.expires_at
    click.echo(text)
    click.echo(f"token {name!r} for {email.strip().lower()} "
               + (f"expires {expires:%Y-%m-%d %H:%M} UTC" if expires else "does not expire")
               + "; it is shown once", err=True)


@tokens.command("list")
@click.option("--user", "email", default=None, metavar="EMAIL",
              help="Only this user's tokens.")
@user_errors
def tokens_list(email: str | None) -> None:
    """List API tokens: id, user, name, state, expiry and last use (never the token)."""
    from engine import tokens as api_tokens

    def when(at: Any) -> str:
        return f"{at:%Y-%m-%d %H:%M}" if at else "-"

    with session_scope() as session:
        rows = [(t.id, t.user.email, t.name, api_tokens.state(t), when(t.expires_at),
                 when(t.last_used_at), t.prefix) for t in api_tokens.tokens_of(session, email)]
    if not rows:
        click.echo("no API tokens")
        return
    click.echo("id\tuser\tname\tstate\texpires\tlast_used\tstarts_with")
    for row in rows:
        click.echo("\t".join(str(v) for v in row))


@tokens.command("revoke")
@click.argument("token_id", type=int)
@actor_option
@user_errors
def tokens_revoke(token_id: int, actor: str | None) -> None:
    """Revoke the API token TOKEN_ID (see `laurel tokens list`): it stops working at once."""
    from engine import tokens as api_tokens

    with session_scope() as session:
        who = resolve_actor(session, actor)
        session.info["actor"] = who
        token = api_tokens.revoke(session, token_id, who)
        click.echo(f"API token {token.id} ({token.name}) of {token.user.email} revoked")


@main.command()
@click.option("--concurrency", default=1, show_default=True, type=int,
              help="Runs' chunks this worker evaluates at once (processes).")
@click.option("--loglevel", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--parent", type=int, default=None, hidden=True,
              help="Stop when this process ends (the back office's own worker).")
def worker(concurrency: int, loglevel: str, parent: int | None) -> None:
    """A Celery worker for runs: any number of them, on any machines, share a run.

    They take their work from LAUREL_BROKER_URL (e.g. redis://host:6379/0) and read and
    write LAUREL_DATABASE_URL; LAUREL_QUEUE names the queue when several installations
    share one broker. Without a broker they use the embedded one, a folder under
    the instance path (laurel serve starts such a worker itself).
    """
    from engine.tasks import app, queue

    if parent:
        _stop_with(parent)
    pool = "solo" if concurrency == 1 else "prefork"
    app.worker_main(["worker", "--loglevel", loglevel, "--queues", queue(), "--pool", pool,
                     "--concurrency", str(concurrency), "--hostname", "laurel@%h-%i",
                     "--without-gossip", "--without-mingle"])


def _stop_with(parent: int) -> None:
    """End this process soon after ``parent`` ends, however it ended (a SIGTERM to the back
    office runs no exit handler)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)  # a task in hand is left unacknowledged: the broker gives it again

    threading.Thread(target=watch, daemon=True, name="laurel-parent-watch").start()


def _embedded_worker() -> subprocess.Popen[bytes] | None:
    """Start a worker on the embedded broker when there is no LAUREL_BROKER_URL: the
    back office's runs need no service. It stops with the back office."""
    from engine.tasks import broker_url

    if broker_url():
        return None
    proc = subprocess.Popen(  # noqa: S603 - our own command, no shell
        [sys.executable, "-m", "admin.cli", "worker", "--loglevel", "WARNING",
         "--parent", str(os.getpid())],
        cwd=str(PROJECT_ROOT))
    atexit.register(_stop, proc)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@main.command()
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Reload on code changes.")
@user_errors
def serve(port: int, debug: bool) -> None:
    """Serve the back office on 127.0.0.1 (development server).

    Without LAUREL_BROKER_URL it also starts a worker for runs on the embedded broker.
    """
    from admin.app import create_app

    try:
        app = create_app()
    except ValueError as exc:  # a LAUREL_ setting that does not read
        raise LaurelError(str(exc)) from None
    if not debug or os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        _embedded_worker()
    app.run(host="127.0.0.1", port=port, debug=debug, use_reloader=debug)


def _register_more() -> None:
    """Attach the command groups defined next to the code they drive."""
    from admin import cli_rules, cli_runs

    cli_rules.register(main)
    cli_runs.register(main)
    cli_runs.register_lifecycle(main)


_register_more()


if __name__ == "__main__":
    main()
