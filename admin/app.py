"""The back office: ``create_app()`` builds the Flask app with Flask-Admin at /admin.

Configuration is layered as in Flask's tutorial: defaults, then the environment (settings
prefixed ``LAUREL_``, as the README's Configuration table lists them), then the test mapping.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import flask_admin
from flask import Flask, abort, redirect, render_template, request
from flask_babel import Babel
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DataError
from sqlalchemy.orm import scoped_session
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from admin import auth, headers, i18n
from engine import db as engine_db
from engine import isolate
from engine.imports import MAX_FILE_BYTES

ADMIN_TRANSLATIONS = str(Path(flask_admin.__file__).parent / "translations")

csrf = CSRFProtect()
babel = Babel()


def _instance_path() -> Path:
    # Read at call time: tests and deployments set LAUREL_INSTANCE_PATH after import.
    return Path(os.environ.get("LAUREL_INSTANCE_PATH") or engine_db.DEFAULT_INSTANCE)


def _secret_key(instance: Path) -> str:
    """Return the key kept in instance/secret_key, making one on first use."""
    path = instance / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


_FLAGS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


def _from_environment(app: Flask) -> None:
    """Load the LAUREL_ settings; one whose default is a flag or a number is read as one.

    Values come in as text (``loads=str``: a secret key must never be parsed as JSON), so
    without this LAUREL_SESSION_COOKIE_SECURE=false would be the string "false", which is
    true. An empty value keeps the default; a value that is not a flag or a number is
    refused at start, naming the variable.
    """
    defaults = dict(app.config)
    app.config.from_prefixed_env("LAUREL", loads=str)
    for key, default in defaults.items():
        value = app.config[key]
        if not isinstance(value, str) or not isinstance(default, bool | int):
            continue
        text = value.strip().lower()
        if not text:
            app.config[key] = default
        elif isinstance(default, bool):
            if text not in _FLAGS:
                raise ValueError(f"LAUREL_{key}={value!r}: say true or false")
            app.config[key] = _FLAGS[text]
        elif text.isdigit():
            app.config[key] = int(text)
        else:
            raise ValueError(f"LAUREL_{key}={value!r}: not a whole number")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the back-office app: defaults -> LAUREL_ environment -> test mapping."""
    instance = _instance_path()
    app = Flask(__name__, instance_path=str(instance.resolve()),
                instance_relative_config=True)
    app.config.from_mapping(
        DATABASE_URL=None,
        SECRET_KEY=None,
        # An imported file may be MAX_FILE_BYTES (the engine says so with its own message);
        # the rest is the form around it.
        MAX_CONTENT_LENGTH=MAX_FILE_BYTES + 64 * 1024,
        BABEL_DEFAULT_LOCALE="en",
        # Flask-Admin's own catalog (domain "admin"), then ours: merged in this order, so
        # where both translate a word (a column label), ours wins.
        BABEL_TRANSLATION_DIRECTORIES=f"{ADMIN_TRANSLATIONS};translations",
        BABEL_DOMAIN="admin;messages",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        FLASK_ADMIN_SWATCH="default",
        # Failed logins (admin.auth): "memory://" counts in each process; with several
        # processes (gunicorn workers) a shared storage such as redis://host:6379/1.
        RATELIMIT_STORAGE_URL="memory://",
        RATELIMIT_ENABLED=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        LOGIN_LIMIT_PER_ACCOUNT="10 per 15 minutes",
        LOGIN_LIMIT_PER_ADDRESS="30 per 15 minutes",
        # Reverse proxies in front whose X-Forwarded-For/-Proto are believed: behind one,
        # every request comes from its address, and the per-address limit would be global.
        TRUSTED_PROXIES=0,
        # The API (api/): requests a token may make, and the largest body it may send (a
        # batch of results as large as the largest file an import takes).
        API_RATE_LIMIT="600 per minute",
        API_MAX_BYTES=MAX_FILE_BYTES,
    )
    _from_environment(app)
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = engine_db.database_url()
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(instance)

    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies)

    # Try-it, the impact preview and the publish gate evaluate rules in child processes:
    # a crash of the rule engine fails that request, never the server (engine.isolate).
    db = scoped_session(engine_db.make_sessionmaker(app.config["DATABASE_URL"],
                                                    info={isolate.ISOLATE: True}))
    app.extensions["laurel_db"] = db

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        db.remove()

    csrf.init_app(app)
    headers.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    auth.init_app(app, db)

    @app.before_request
    def _per_request() -> None:
        _refuse_unusable_input()
        i18n.remember_switch()
        # Every change made in this request is audited in the name of who is logged in.
        from flask_login import current_user

        db.info["actor"] = current_user.email if current_user.is_authenticated else "anonymous"

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"laurel_language": i18n.current_language,
                "laurel_switch": i18n.switch_languages,
                "laurel_user": auth.current_principal, "lang_url": i18n.lang_url,
                "term": i18n.term, "outcome_value": i18n.outcome_value, "money": i18n.money,
                "percent": i18n.percent,
                "pip_target": i18n.pip_target, "pip_figure": i18n.pip_figure,
                "when": i18n.when, "day": i18n.day,
                "say": i18n.say, "audit_summary": i18n.audit_summary,
                "fact_name": i18n.fact_name}

    from admin.setup import init_admin

    init_admin(app, db)
    import api

    api.init_app(app)
    _register_errors(app, db)

    @app.route("/")
    def _root() -> Any:
        from flask import redirect, url_for

        return redirect(url_for("admin.index"))

    @app.route("/favicon.ico")
    def _icon() -> Any:  # what a browser asks every site for
        return app.send_static_file("laurel/favicon.svg")

    return app


# Ids and pages are whole numbers the databases hold (a 32-bit integer column).
LARGEST_ID = 2**31 - 1
_WHOLE = re.compile(r"-?[0-9]+")


def _refuse_unusable_input() -> None:
    """Answer 400 or 404 for input no page can use, before any view reads it.

    A NUL character (PostgreSQL cannot store or compare it), an id or page number larger
    than the databases' integers, or a negative page: the views would otherwise fail with
    a database error (a 500).
    """
    texts = [*request.args.values(), *request.view_args.values()] \
        if request.view_args else list(request.args.values())
    if request.method == "POST":
        texts += [v for v in request.form.values()]
    if any(isinstance(t, str) and "\x00" in t for t in texts):
        abort(400, description=str(_l("The request holds a NUL character, which no field "
                                      "accepts.")))
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and not -LARGEST_ID <= value <= LARGEST_ID:
            abort(404)
    for name, value in request.args.items():
        if _WHOLE.fullmatch(value) and (abs(int(value)) > LARGEST_ID
                                        or (name == "page" and int(value) < 0)):
            abort(404)


_ERROR_TITLES = {
    400: _l("The request could not be understood"),
    403: _l("You do not have access to this page"),
    404: _l("This page or record does not exist"),
    405: _l("This action is not allowed here"),
    413: _l("The file is too large"),
    500: _l("Something went wrong"),
}


def _register_errors(app: Flask, db: scoped_session) -> None:
    def render(code: int, detail: str = "") -> tuple[str, int]:
        title = _ERROR_TITLES.get(code, _ERROR_TITLES[500])
        return render_template("laurel/error.html", code=code, title=title,
                               detail=detail), code

    from api import answer_error
    from api.core import ApiProblem, is_api_request

    @app.errorhandler(ApiProblem)
    def _api_problem(exc: ApiProblem) -> Any:
        return answer_error(exc)

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> tuple[str, int]:
        return render(400, str(_l("The form has expired or was not sent from this site. "
                                  "Reload the page and try again.")))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if is_api_request():  # a problem document, never a page
            return answer_error(exc)
        if exc.code is None or exc.code < 400 or request.path.startswith("/admin/static/"):
            return exc
        if exc.code == 405 and request.method in ("GET", "HEAD"):
            # an address that takes a form's POST alone, asked for by a link on the page
            # that came back from it (a refused form: its language switch, its search): the
            # page it belongs to, with what was asked
            page = _page_of(request.path)
            if page is not None:
                query = request.query_string.decode()
                return redirect(page + (f"?{query}" if query else ""), 303)
        if exc.code == 413:
            return render(413, str(_l("Nothing was saved: the upload is larger than %(mb)d MB.",
                                      mb=MAX_FILE_BYTES // 2**20)))
        return render(exc.code, exc.description if exc.code == 400 and
                      exc.description != type(exc).description else "")

    def _page_of(path: str) -> str | None:
        """The nearest page above a form's address that answers GET: its parents, each
        with and without the trailing slash (/admin/rules/KEY/v2/run is the rule's page
        /admin/rules/KEY/, /admin/me/statement/5/ask the statement /admin/me/statement/5);
        a path of this site only, quoted (a key may hold any character)."""
        adapter = app.url_map.bind("localhost")
        parts = [p for p in path.split("/") if p]
        while parts:
            parts.pop()
            base = "/" + "/".join(parts)
            for candidate in ((base + "/", base) if parts else ("/",)):
                try:  # a redirect of the map's own (a slash added) is an HTTPException too
                    adapter.match(candidate, method="GET")
                except HTTPException:
                    continue
                return quote(candidate)
        return None

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def _out_of_range(_exc: Exception) -> Any:
        # a number or text the database cannot hold, which no check before caught
        db.rollback()
        if is_api_request():
            from api.core import ApiProblem as Problem

            return answer_error(Problem(400, "nothing was stored: a value in the request is "
                                        "out of the range the database holds"))
        app.logger.warning("value out of range on %s: %s", request.path, _exc)
        return render(400, str(_l("Nothing was saved: a value in the request is out of the "
                                  "range the database holds.")))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        # Nothing half-done is kept; the page says so instead of a bare 500.
        db.rollback()
        from engine.errors import LaurelError

        if is_api_request() and isinstance(exc, LaurelError):
            return answer_error(exc)  # an engine refusal: its own problem (403, 404, 409...)
        app.logger.exception("unexpected error on %s", request.path)
        if is_api_request() and not (app.config.get("TESTING")
                                     and app.config.get("PROPAGATE_UNEXPECTED", True)):
            return answer_error(exc)
        if app.config.get("TESTING") and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise exc
        return render(500, str(_l("Nothing was saved. The error has been logged.")))
