"""What every endpoint shares: the token's user, problem documents, paging, idempotent writes.

A request carries ``Authorization: Bearer <token>`` (engine.tokens); the token's user acts
with their role through the same table as the back office (engine.access), and every
request is written to the audit log with the token's name (``via``). Every error is a
problem document (RFC 9457, ``application/problem+json``); a refused write changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Response, current_app, g, request
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import scoped_session

from engine import access
from engine.errors import (
    FormulaError,
    ImportFileError,
    LaurelError,
    NotFound,
    PermissionDenied,
    RuleError,
    RunInProgress,
    RunStale,
)
from engine.models import ApiIdempotency, AuditLog

PREFIX = "/api/v1"
PROBLEM = "application/problem+json"
# Where the kinds of problem are described (the documentation page's section).
PROBLEM_TYPES = {
    "invalid": "The request's content breaks a rule: the errors name the item, field and reason.",
    "locked-period": "The period (or the quarter or year holding it) is locked.",
    "stale-run": "The period's results changed after the run read them: start a new run.",
    "not-live-run": "The run (or run job) is not in the state this step needs.",
    "wrong-state": "The record (a flag, a PIP, a candidate) is not in the state this step "
                   "needs.",
    "run-in-progress": "A run of the period is being calculated already.",
    "idempotency-conflict": "The Idempotency-Key was used with another request.",
    "rate-limited": "Too many requests with this token: wait Retry-After seconds.",
}
# How the engine names a field it refuses ("PIP 3, field reason: a written reason ...").
FIELD = re.compile(r", field (\w+): (.*)$")
# How the engine says a period is locked ("period 2026-01 is locked", "period 2026-01 is in
# 2026-Q1, which is locked").
LOCKED_PERIOD = re.compile(r"period \S+ (is locked|is in \S+, which is locked)")


class ApiProblem(Exception):
    """An answer other than success, sent as a problem document."""

    def __init__(self, status: int, detail: str, kind: str | None = None,
                 errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind
        self.errors, self.headers = errors, headers or {}


def problem(status: int, detail: str = "", kind: str | None = None,
            errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """An RFC 9457 problem document: type, title, status, detail, instance (+ errors)."""
    from http import HTTPStatus

    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": f"{PREFIX}/docs#problem-{kind}" if kind else "about:blank",
        "title": title, "status": status, "detail": detail or title,
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body, ensure_ascii=False), status=status,
                                          mimetype=PROBLEM)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_api_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


# --- who is asking ------------------------------------------------------------------------


@dataclass
class Caller:
    """The token's user, detached from the session."""

    user_id: int
    email: str
    role: str
    team_id: int | None
    token_id: int
    token_name: str

    @property
    def team(self) -> int | None:
        """The team this caller is limited to (-1: none), else None (engine.access)."""
        return access.team_scope(self.role, self.team_id)


def db() -> scoped_session:
    return current_app.extensions["laurel_db"]


def caller() -> Caller:
    return g.api_caller


def may(kind: str, what: str) -> None:
    """Refuse (403) unless the caller's role may do ``what`` (read, write, import, a run step)."""
    role = caller().role
    check = {"read": access.may_read, "write": access.may_write, "import": access.may_import,
             "run": access.may_run}[kind]
    if not check(what, role):
        from engine.users import ROLE_WORDS

        verb = {"read": "read", "write": "change", "import": "import",
                "run": "do this step of a run:"}[kind]
        raise ApiProblem(403, f"user {caller().email} is {ROLE_WORDS.get(role, role)}: this "
                         f"token may not {verb} {what.replace('_', ' ')}")


def one(model: Any, ident: int, name: str, kind: str, what: str,
        team_of: Callable[[Any], int] | None = None,
        visible: Callable[[Any], bool] | None = None) -> Any:
    """The row of ``model`` with this id, once the caller ``may(kind, what)``; a 404
    naming it (``name``) when there is none or, with ``team_of`` (the row's employee id),
    when that employee is outside the caller's team, or, with ``visible``, when it says
    the row is nobody's to see yet."""
    may(kind, what)
    row = db().get(model, ident)
    if row is None or (team_of is not None and not in_team(team_of(row))) \
            or (visible is not None and not visible(row)):
        raise ApiProblem(404, f"{name} {ident} does not exist")
    return row


def in_team(employee_id: int) -> bool:
    """Whether the employee is in the team the caller is limited to (any, if none)."""
    from engine.models import Employee

    team = caller().team
    if team is None:
        return True
    return db().scalar(select(Employee.team_id).where(Employee.id == employee_id)) == team

def audit_request(status: int) -> None:
    """One audit entry per request made with a token: who, which token, what, the answer."""
    c: Caller | None = g.get("api_caller")
    if c is None or g.get("api_audited"):
        return
    g.api_audited = True
    session = db()
    session.rollback()  # whatever the request left unfinished is not kept
    session.add(AuditLog(actor=c.email, action="api", entity="api_token",
                         entity_id=str(c.token_id), via=f"api token {c.token_name}",
                         summary=f"{request.method} {request.full_path.rstrip('?')} -> "
                                 f"{status}"[:1000],
                         at=dt.datetime.now(dt.UTC)))
    session.commit()


# --- engine errors as problems ------------------------------------------------------------


def from_engine(exc: LaurelError) -> ApiProblem:
    """The problem an engine refusal is: its message, the status and kind it stands for."""
    text = str(exc)
    if isinstance(exc, PermissionDenied):
        return ApiProblem(403, text)
    if isinstance(exc, NotFound):
        return ApiProblem(404, text)
    if isinstance(exc, RunStale):
        return ApiProblem(409, text, "stale-run")
    if isinstance(exc, RunInProgress):
        return ApiProblem(409, text, "run-in-progress")
    if LOCKED_PERIOD.search(text):
        return ApiProblem(409, text, "locked-period")
    if isinstance(exc, RuleError):
        return ApiProblem(422, text, "invalid", [{"field": exc.field, "row": exc.row,
                                                  "reason": exc.reason}])
    if isinstance(exc, FormulaError):
        return ApiProblem(422, text, "invalid", [{"field": "formula", "reason": exc.reason}])
    named = FIELD.search(text)
    if named:
        return ApiProblem(422, text, "invalid", [{"field": named[1], "reason": named[2]}])
    return ApiProblem(422, text, "invalid")


def state_conflict(exc: LaurelError) -> ApiProblem:
    """An engine refusal of a step in a lifecycle (approve a run that is not calculated):
    409, unless it is a question of role or of a record that does not exist."""
    found = from_engine(exc)
    if found.status in (403, 404) or found.kind in ("stale-run", "locked-period",
                                                    "run-in-progress") or found.errors:
        return found
    text = str(exc)
    return ApiProblem(409, text, "not-live-run" if text.startswith("run ") else "wrong-state")


def transition(call: Callable[[], Any]) -> Any:
    """Make an engine call that moves a record along its lifecycle; a refusal is its problem
    (state_conflict)."""
    try:
        return call()
    except LaurelError as exc:
        raise state_conflict(exc) from None


# --- writes: commit, and remember the answer to an Idempotency-Key ------------------------


def _body_hash() -> str:
    return hashlib.sha256(request.get_data()).hexdigest()


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """A write that an ``Idempotency-Key`` header makes apply once.

    The view returns (body, status) without committing; this commits its changes with the
    answer kept under the key. The same key again with the same request gets the kept
    answer (header ``Idempotent-Replayed: true``) and changes nothing; with another request
    it is refused (409). Without the header the write simply commits.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 200:
            raise ApiProblem(400, "the Idempotency-Key header is longer than 200 characters")
        session = db()
        signature = f"{request.method} {request.path}"[:300]
        if key:
            kept = session.scalar(select(ApiIdempotency).where(
                ApiIdempotency.user_id == caller().user_id, ApiIdempotency.key == key))
            if kept is not None:
                if kept.request != signature or kept.body_hash != _body_hash():
                    raise ApiProblem(409, f"the Idempotency-Key {key!r} was used with another "
                                     f"request ({kept.request}); use a new key for a new "
                                     "request", "idempotency-conflict")
                response = current_app.response_class(
                    json.dumps(kept.response, ensure_ascii=False), status=kept.status,
                    mimetype="application/json")
                response.headers["Idempotent-Replayed"] = "true"
                return response
        body, status = view(*args, **kwargs)
        if key:
            session.add(ApiIdempotency(user_id=caller().user_id, key=key, request=signature,
                                       body_hash=_body_hash(), status=status,
                                       response=body, created_at=dt.datetime.now(dt.UTC)))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise ApiProblem(409, f"a request with the Idempotency-Key {key!r} was made at "
                             "the same time; send it again to get its answer",
                             "idempotency-conflict") from None
        return body, status

    return wrapper


# --- reading JSON as the import reads a file ----------------------------------------------


def json_body() -> Any:
    """The request's JSON with exact decimals (a number is never a binary float here)."""
    data = request.get_data(cache=True)
    if not data.strip():
        raise ApiProblem(400, "the request has no body: send JSON")
    try:
        return json.loads(data, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, f"the body is not JSON ({exc})") from None


def cell(value: Any, item: int, field: str) -> str:
    """A JSON value as the text of an import's cell: null is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise ApiProblem(422, f"item {item}, field {field}: must be a string or a number",
                         "invalid", [{"item": item, "field": field,
                                      "reason": "must be a string or a number"}])
    return str(value)


def batch_problem(exc: ImportFileError, fields: Callable[[str], str],
                  first_item_with: Callable[[str], int]) -> ApiProblem:
    """An import's refusal of a batch, naming the item (its index), the field, the reason.

    The batch was given to the import as a table whose row 2 is item 0 (row 1: the header
    made of the items' fields).
    """
    column = exc.column or ""
    field = fields(column) if column else None
    if exc.row is None:
        item = None
    elif exc.row == 1:
        item = first_item_with(column)
    else:
        item = exc.row - 2
    where = ", ".join(w for w in (f"item {item}" if item is not None else "",
                                  f"field {field}" if field else "") if w)
    detail = f"{where}: {exc.reason}" if where else exc.reason
    kind = "locked-period" if LOCKED_PERIOD.search(exc.reason) else "invalid"
    return ApiProblem(409 if kind == "locked-period" else 422, detail + "; nothing was stored",
                      kind, [{"item": item, "field": field, "reason": exc.reason}])


# --- lists: an opaque cursor, filters, a sort ---------------------------------------------


def encode_cursor(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or "id" not in data or not isinstance(data["id"], int):
        raise ApiProblem(400, "the cursor is not one this API gave: start from the first "
                         "page (no cursor)")
    return data


def page(query: Select[Any], model: Any, sorts: tuple[str, ...], sort: str | None,
         cursor: str | None, limit: int, default: str = "id") -> tuple[list[Any], str | None]:
    """One page of ``query`` (of ``model``) in the order ``sort`` names (``-`` before it:
    descending), after the row the cursor points to, and the next page's cursor (None at
    the end).

    Keyset paging (the sort column, then the id): a page costs the same at any depth, and
    rows added meanwhile never shift a page. A cursor is opaque to the client.
    """
    sort = sort or default
    name = sort.lstrip("-")
    if name not in sorts:
        raise ApiProblem(400, f"sort {sort!r}: sort by one of {', '.join(sorted(sorts))} "
                         "(a leading - for descending)")
    id_column, column, desc = model.id, getattr(model, name), sort.startswith("-")
    same = column is id_column or name == "id"
    if cursor:
        at = decode_cursor(cursor)
        if at.get("sort") != sort:
            raise ApiProblem(400, "the cursor belongs to another sort: start from the "
                             "first page")
        past = id_column < at["id"] if desc else id_column > at["id"]
        if not same:
            value = at.get("value")
            query = query.where(or_(column < value if desc else column > value,
                                    and_(column == value, past)))
        else:
            query = query.where(past)
    order = [column.desc() if desc else column.asc()]
    if not same:
        order.append(id_column.desc() if desc else id_column.asc())
    rows = list(db().scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor({"sort": sort, "id": last.id,
                               "value": None if same else getattr(last, name)})
    return rows, next_cursor


def listing(items: Iterable[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": list(items), "next_cursor": next_cursor}


def etag_response(body: Any) -> Any:
    """Answer with an ETag of the body; 304 when If-None-Match already has it."""
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, default=str)
    tag = hashlib.sha256(text.encode()).hexdigest()[:32]
    if request.if_none_match.contains(tag):
        response = current_app.response_class(status=304)
        response.set_etag(tag)
        return response
    response = current_app.response_class(text, mimetype="application/json")
    response.set_etag(tag)
    return response
