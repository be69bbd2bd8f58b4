"""What the ``laurel`` commands share: exit codes for user errors, the --as option.

admin/cli.py and the command groups beside it (cli_runs.py, cli_rules.py) import these;
none of them imports the module that registers it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from engine.errors import LaurelError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def database_problem(exc: Exception) -> str | None:
    """The one line a person needs for a database that cannot be used, or None."""
    from sqlalchemy import exc as sa

    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    if isinstance(exc, sa.NoSuchModuleError | sa.ArgumentError):
        return f"LAUREL_DATABASE_URL is not a database URL Laurel can use ({text})"
    if isinstance(exc, sa.OperationalError | sa.ProgrammingError):
        if "no such table" in text or "no such column" in text or "does not exist" in text \
                and ("relation" in text or "column" in text):
            return ("the database lacks Laurel tables (new, or from an older version): run "
                    "`laurel init` first, which creates or upgrades them")
        if "connect" in text or "Connection refused" in text:
            return f"cannot reach the database ({text})"
    return None


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a LaurelError, or a database that cannot be used, into exit code 1 with its
    one-line reason on stderr."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return fn(*args, **kwargs)
        except LaurelError as exc:
            _fail(str(exc).replace("\n", " "))
        except SQLAlchemyError as exc:
            problem = database_problem(exc)
            if problem is None:
                raise
            _fail(problem)
        finally:
            # close connections: SQLite then folds its write-ahead log into the file
            from engine.db import dispose_engines

            dispose_engines()

    return wrapper


def actor_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--as", "actor", metavar="EMAIL", default=None,
                        help="Act as this back-office user (default: the system user).")(fn)


def resolve_actor(session: Any, email: str | None) -> str:
    """Return the acting user's email, checking that the user exists and is active."""
    if email is None:
        return "system"
    from engine.users import get_user

    user = get_user(session, email)
    return user.email
