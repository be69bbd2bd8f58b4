"""The REST API at /api/v1 (flask-smorest on marshmallow schemas), described by OpenAPI 3.

``init_app`` registers it on the back office's app (admin.app.create_app): the same
database session, the same engine calls, the same role table (engine.access). A request
is authenticated by a personal token (engine.tokens), limited in size and rate, and
written to the audit log with the token's name; every error is a problem document.
"""

from __future__ import annotations

import math
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app, g, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from limits import parse_many
from werkzeug.exceptions import HTTPException

from api.core import PREFIX, ApiProblem, Caller, audit_request, db, is_api_request, problem
from api.schemas import ProblemSchema
from engine import tokens
from engine.errors import LaurelError

# Paths anyone may read: the description and its documentation page.
PUBLIC = (f"{PREFIX}/openapi.json", f"{PREFIX}/docs")


class LaurelApi(Api):
    """flask-smorest's Api, answering errors as problem documents (RFC 9457) and only for
    the API's own paths: the back office keeps its HTML pages."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """The app's error handlers (admin.app) send API paths to ``answer_error``."""

    def _register_responses(self) -> None:
        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, "application/problem+json")
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "A problem document (RFC 9457)",
                    "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, "application/problem+json")
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def answer_error(exc: BaseException) -> Any:
    """The problem document for any error on an API path (never an HTML page or a trace)."""
    session = db()
    session.rollback()
    if isinstance(exc, ApiProblem):
        response = problem(exc.status, exc.detail, exc.kind, exc.errors, exc.headers)
    elif isinstance(exc, LaurelError):
        from api.core import from_engine

        found = from_engine(exc)
        response = problem(found.status, found.detail, found.kind, found.errors)
    elif isinstance(exc, HTTPException) and exc.code:
        response = _http_problem(exc)
    else:
        current_app.logger.error("unexpected error on %s", request.path, exc_info=exc)
        response = problem(500, "the request failed on the server; nothing was stored, and "
                           "the error has been logged")
    audit_request(response.status_code)
    return response


def _http_problem(exc: HTTPException) -> Any:
    code = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if code == 422 and "messages" in data:  # webargs: the query or body broke its schema
        errors = [{"field": f"{location}.{field}" if location != "json" else field,
                   "reason": "; ".join(_texts(reasons))}
                  for location, by_field in data["messages"].items()
                  for field, reasons in by_field.items()]
        detail = "; ".join(f"field {e['field']}: {e['reason']}" for e in errors)
        return problem(422, detail, "invalid", errors)
    if code == 413:
        most = current_app.config["API_MAX_BYTES"]
        return problem(413, f"the request's body is larger than {most:,} bytes; send the "
                       "batch in smaller parts (nothing was stored)")
    if code == 405:
        allowed = ", ".join(getattr(exc, "valid_methods", None) or [])
        return problem(405, f"{request.method} is not allowed on {request.path}"
                       + (f"; allowed: {allowed}" if allowed else ""),
                       headers={"Allow": allowed} if allowed else None)
    if code == 404:
        return problem(404, f"{request.path} is not a resource of this API")
    generic = type(exc).description
    detail = exc.description if exc.description and exc.description != generic else ""
    return problem(code, detail)


def _texts(reasons: Any) -> list[str]:
    if isinstance(reasons, dict):
        return [f"{k}: {t}" for k, v in reasons.items() for t in _texts(v)]
    if isinstance(reasons, list):
        return [t for r in reasons for t in _texts(r)]
    return [str(reasons)]


def _token_text() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _sep, text = header.partition(" ")
    return text.strip() if scheme.lower() == "bearer" else ""


def _count(token_id: int) -> None:
    """Count the request against its token's limit (LAUREL_API_RATE_LIMIT, a moving window,
    in the same storage as the back office's login throttling); past it, 429."""
    from admin.auth import limiter

    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    for item in parse_many(current_app.config["API_RATE_LIMIT"]):
        if not limiter.limiter.hit(item, "api-token", str(token_id)):
            reset = limiter.limiter.get_window_stats(item, "api-token", str(token_id)).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            db().rollback()
            raise ApiProblem(429, f"too many requests with this token ("
                             f"{current_app.config['API_RATE_LIMIT']}); try again in {wait} s",
                             "rate-limited", headers={"Retry-After": str(wait)})


def _authenticate() -> Any:
    if not is_api_request():
        return None
    if request.path in PUBLIC or request.path.startswith(f"{PREFIX}/docs/"):
        return None
    length = request.content_length
    if length is not None and length > current_app.config["API_MAX_BYTES"]:
        raise ApiProblem(413, f"the request's body is {length:,} bytes, more than the "
                         f"{current_app.config['API_MAX_BYTES']:,} accepted; send the batch "
                         "in smaller parts (nothing was stored)")
    text = _token_text()
    if not text:
        raise ApiProblem(401, "send a personal API token: Authorization: Bearer <token> "
                         "(made in the back office, or with laurel tokens create)",
                         headers={"WWW-Authenticate": 'Bearer realm="laurel"'})
    session = db()
    token = tokens.authenticate(session, text)
    if token is None:
        session.rollback()
        raise ApiProblem(401, "this token is unknown, revoked or expired, or its user is "
                         "inactive", headers={"WWW-Authenticate":
                                              'Bearer realm="laurel", error="invalid_token"'})
    _count(token.id)
    user = token.user
    g.api_caller = Caller(user.id, user.email, user.role, user.team_id, token.id, token.name)
    session.commit()  # the token's last use
    # Every change this request makes is audited in the user's name, through this token.
    session.info["actor"] = user.email
    session.info["via"] = f"api token {token.name}"
    return None


def init_app(app: Flask) -> LaurelApi:
    """Register /api/v1 on the app: its blueprints, the description, the docs page."""
    app.config.setdefault("API_TITLE", "Laurel")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "Laurel's REST API: the CRM sends results, payroll and BI "
                 "read pay. Authenticate with a personal token: Authorization: Bearer <token>. "
                 "Every error is a problem document (RFC 9457)."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    })
    try:
        parse_many(app.config["API_RATE_LIMIT"])
    except ValueError:
        raise ValueError(f"LAUREL_API_RATE_LIMIT={app.config['API_RATE_LIMIT']!r}: not a "
                         "limit such as '600 per minute'") from None
    api = LaurelApi(app)
    from admin.app import csrf
    from api import docs, organisation, pay, policies, records

    for module in (organisation, policies, pay, records):
        for blp in module.BLUEPRINTS:
            csrf.exempt(blp)
            api.register_blueprint(blp, url_prefix=f"{PREFIX}{blp.url_prefix or ''}")
    docs.init_app(app)
    app.before_request(_authenticate)

    @app.after_request
    def _audited(response: Any) -> Any:
        if is_api_request():
            audit_request(response.status_code)
        return response

    return api
