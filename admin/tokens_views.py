"""Personal API tokens in the back office: each staff member makes and revokes their own.

A token acts as its user, with the user's role, in the REST API (/api/v1). It is shown
once, when it is made; only its hash is kept (engine.tokens does all of it).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import Admin, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from admin import i18n
from admin.auth import current_principal
from admin.base import LaurelBaseView, _db
from engine import access
from engine import tokens as api_tokens
from engine.errors import LaurelError
from engine.models import ApiToken

STATES = {"active": _l("active"), "revoked": _l("revoked"), "expired": _l("expired")}


class TokensView(LaurelBaseView):
    """The logged-in user's API tokens: make one (shown once), revoke one."""

    def is_accessible(self) -> bool:
        user = current_principal()
        return user is not None and user.role in access.TOKEN_OWNERS

    def _page(self, made: str | None = None, error: str | None = None,
              typed: dict[str, str] | None = None, status: int = 200) -> Any:
        user = current_principal()
        mine = api_tokens.tokens_of(_db(), user.email)
        return self.render("laurel/tokens.html", tokens=mine, made=made, error=error,
                           typed=typed or {}, states=STATES, state=api_tokens.state,
                           max_days=api_tokens.MAX_DAYS), status

    @expose("/")
    def index(self) -> Any:
        return self._page()

    @expose("/create", methods=("POST",))
    def create(self) -> Any:
        user = current_principal()
        typed = {"name": request.form.get("name", "").strip(),
                 "days": request.form.get("days", "").strip()}
        db = _db()
        try:
            days = None
            if typed["days"]:
                if not typed["days"].isdigit():
                    raise LaurelError(_("Expires after: a whole number of days, or empty for "
                                        "never."))
                days = int(typed["days"])
            _token, text = api_tokens.create(db, user.email, typed["name"], days)
            db.commit()
        except LaurelError as exc:
            db.rollback()
            return self._page(error=i18n.say(exc), typed=typed, status=400)
        return self._page(made=text)

    @expose("/<int:token_id>/revoke", methods=("POST",))
    def revoke(self, token_id: int) -> Any:
        user = current_principal()
        db = _db()
        token = db.get(ApiToken, token_id)
        if token is None or token.user_id != user.id:  # one's own tokens only, here
            abort(404)
        try:
            api_tokens.revoke(db, token_id, user.email)
            db.commit()
            flash(_("The token %(name)s is revoked: it no longer works.", name=token.name),
                  "info")
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
        return redirect(url_for(".index"))


def add_views(admin: Admin) -> None:
    admin.add_view(TokensView(_l("API tokens"), endpoint="tokens", url="/admin/api-tokens"))
