"""What every back-office page shares: the request's session, the caller's role and team,
the base view, and files sent and received.

The page modules (views.py and the *_views.py modules) import from here and never from each
other's wiring; admin/setup.py puts them together. Who may do what is engine/access.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, redirect, request, url_for
from flask_admin import BaseView
from sqlalchemy.orm import scoped_session

from admin import i18n
from admin.auth import current_principal, current_role
from engine import access
from engine.messages import Message, message_of


def may_read(resource: str, role: str | None = None) -> bool:
    return access.may_read(resource, role or current_role())


def may_write(resource: str, role: str | None = None) -> bool:
    return access.may_write(resource, role or current_role())


def _db() -> scoped_session:
    return current_app.extensions["laurel_db"]


def _team_scope() -> int | None:
    """Return the team a sales manager is limited to (-1: none), else None."""
    user = current_principal()
    return access.team_scope(user.role, user.team_id) if user is not None else None


def page_window(total: int, page: int, size: int) -> tuple[int, int, bool]:
    """How to read page ``page`` (from 1) of ``total`` rows, ``size`` a page: (offset,
    limit, from_the_end). A page past the middle is read in the reverse order, from the
    end (its rows then reversed): the database skips the rows after it, not the rows
    before it, and the last page of a million rows is as quick as the first. The rows
    shown are the same either way, provided the order is by a unique key."""
    first = (page - 1) * size
    if first >= total:
        return first, size, False
    last = min(first + size, total)
    if first <= total - last:
        return first, size, False
    return total - last, last - first, True


def read_page(db: Any, stmt: Any, key: Any, page: int, size: int, total: int,
              descending: bool = False, key_type: Callable[[str], Any] = str) -> list[Any]:
    """Page ``page`` of ``stmt``'s rows in the order of ``key`` (unique; ``descending``:
    the other way round), ``total`` rows in all.

    A link of the pager carries the key of the page next to the one it is on ("after":
    the last row of the page before; "before": the first row of the page after): that
    page is read from it, however deep. Else by offset, from the nearer end
    (page_window). The same rows either way while the list does not change.
    """
    forward, backward = (key.desc(), key) if descending else (key, key.desc())
    try:
        after = key_type(request.args["after"]) if "after" in request.args else None
        before = key_type(request.args["before"]) if "before" in request.args else None
    except ValueError:
        after = before = None
    if page > 1 and after is not None:
        return db.execute(stmt.where(key < after if descending else key > after)
                          .order_by(forward).limit(size)).all()
    if page > 1 and before is not None:
        rows = db.execute(stmt.where(key > before if descending else key < before)
                          .order_by(backward).limit(size)).all()
        return rows[::-1]
    offset, limit, from_end = page_window(total, page, size)
    rows = db.execute(stmt.order_by(backward if from_end else forward)
                      .limit(limit).offset(offset)).all()
    return rows[::-1] if from_end else rows


def attachment(content: bytes, filename: str | None, content_type: str | None,
               fallback: str) -> Any:
    """An uploaded file sent back: always a download, never shown inline (an uploaded HTML
    file must not run here), its name kept in UTF-8."""
    from urllib.parse import quote

    from flask import Response

    response = Response(content, mimetype=content_type or "application/octet-stream")
    name = (filename or fallback).replace('"', "")
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{name.encode('ascii', 'replace').decode()}\"; "
        f"filename*=UTF-8''{quote(name)}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def uploads(field: str = "file") -> list[tuple[str, str | None, bytes]]:
    """The files of a form's file field: (name without its folders, type, content)."""
    out = []
    for upload in request.files.getlist(field):
        if upload is None or not upload.filename:
            continue
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
        out.append((name, upload.mimetype or "application/octet-stream", upload.read()))
    return out


class LaurelBaseView(BaseView):
    resource = ""

    def is_accessible(self) -> bool:
        return current_principal() is not None and (
            not self.resource or may_read(self.resource))

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if current_principal() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)


def acting_email() -> str:
    """The logged-in user's email (who acts, for the engine's calls)."""
    user = current_principal()
    return user.email if user else "anonymous"


_FIELD = re.compile(r"field (\w+): (.*)$")
_FIELD_ZH = re.compile(r"字段 (\w+)：(.*)$")  # the same, as the Chinese catalog says it


def field_error(error: Any) -> tuple[str | None, str]:
    """Split an engine error 'x, field amount: reason' into ('amount', 'reason'), the
    reason in the page's language (engine.messages: a message with ``field`` and
    ``reason``; an older English one by its words)."""
    message = message_of(error)
    if isinstance(message, Message) and {"field", "reason"} <= message.params.keys():
        return str(message.params["field"]), i18n.say(message.params["reason"])
    said = i18n.say(message)
    found = _FIELD.search(said) or _FIELD_ZH.search(said)
    return (found.group(1), found.group(2)) if found else (None, said)
