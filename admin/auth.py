"""Login, logout and who is logged in (Flask-Login; passwords hashed by engine.users).

Flask's session lives in the browser's cookie, so ending it on the server means refusing
it: the session holds the user's id and session token (Flask-Login's "alternative id"),
and each request loads the user and compares the token. Logging out and a new password
give the user a new token (engine.users.end_sessions), which kills every older cookie.

Failed logins are throttled (Flask-Limiter) per account, the email as typed whether it
has an account or not, and per address, each in a moving window: past the limit every
login there is answered 429 without a password check until the oldest failure is older
than the window, so guessing slows down and nobody is locked out for longer than that.
The counts live in memory, or in LAUREL_RATELIMIT_STORAGE_URL (redis://...) when several
processes serve the back office.

So that someone else's failures cannot keep a user out (OWASP's "device cookies"), a
successful login leaves a signed cookie naming the account in that browser; a login from
a browser holding the account's cookie counts its failures apart, with the same limit,
so the account's throttle does not stop it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse_many
from sqlalchemy.orm import scoped_session
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from admin import i18n
from engine.errors import LaurelError, PasswordRefused
from engine.models import User
from engine.users import MIN_PASSWORD, accept_invite, authenticate, end_sessions, invited

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, strategy="moving-window")


@dataclass
class Principal:
    """The logged-in user, detached from any session: the role decides what they may do."""

    id: int
    email: str
    name: str
    role: str
    team_id: int | None
    locale: str | None
    session_token: str

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """What the session keeps: the id and the token the session is valid for."""
        return f"{self.id}:{self.session_token}"

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user.id, user.email, user.name, user.role, user.team_id, user.locale,
                   user.session_token)


def current_principal() -> Principal | None:
    return current_user if current_user and current_user.is_authenticated else None


def current_role() -> str | None:
    user = current_principal()
    return user.role if user else None


class LoginForm(FlaskForm):
    email = StringField(_l("Email"), validators=[
        DataRequired(_l("This field is required.")), Length(max=200)])
    password = PasswordField(_l("Password"), validators=[
        DataRequired(_l("This field is required."))])


def _safe_next(target: str | None) -> str | None:
    """Accept only a path on this site as the place to go after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _failed(response: Response) -> bool:
    return response.status_code == 401


DEVICE_COOKIE = "laurel_device"
DEVICE_DAYS = 365


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="laurel-device")


def _account() -> str:
    """Whose failures a login counts against: the email typed, or, from a browser that
    logged in to it before (its device cookie), that browser's own count."""
    email = (request.form.get("email") or "").strip().lower()
    cookie = request.cookies.get(DEVICE_COOKIE)
    if cookie:
        try:
            known, nonce = _devices().loads(cookie, max_age=DEVICE_DAYS * 86400)
        except (BadSignature, ValueError, TypeError):
            known = nonce = None
        if known == _account_mark(email) and isinstance(nonce, str):
            return f"device:{email}:{nonce}"
    return "account:" + email


def _account_mark(email: str) -> str:
    """The account as its device cookie names it (a digest: the cookie shows no email)."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def _remember_device(response: Response, email: str) -> Response:
    """Mark this browser as one that logged in to the account (see the module's notes)."""
    value = _devices().dumps([_account_mark(email), secrets.token_urlsafe(12)])
    response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_DAYS * 86400, httponly=True,
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
                        samesite="Lax", path=url_for("auth.login"))
    return response


def _address() -> str:
    return "address:" + get_remote_address()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], key_func=_address,
               methods=["POST"], deduct_when=_failed)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], key_func=_account,
               methods=["POST"], deduct_when=_failed)
def login() -> Any:
    """Show the login form; on success go to ``next`` or the dashboard."""
    target = _safe_next(request.args.get("next")) or url_for("admin.index")
    if current_principal() and request.method == "GET":
        return redirect(target)
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        db = current_app.extensions["laurel_db"]
        user = authenticate(db, form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(Principal.of(user))
            return _remember_device(redirect(target), user.email)
        # One message for an unknown email and a wrong password: nothing to probe.
        error = _l("The email or the password is not right.")
    status = 200 if error is None and not form.errors else 401 if error else 400
    return render_template("laurel/login.html", form=form, error=error), status


@bp.errorhandler(RateLimitExceeded)
def _throttled(_exc: RateLimitExceeded) -> tuple[str, int, dict[str, str]]:
    """Answer a throttled login on the login page: how long to wait, in the user's language."""
    breached = limiter.current_limit
    wait = max(1, math.ceil(breached.window.reset_time - time.time())) if breached else 60
    minutes = math.ceil(wait / 60)
    error = ngettext("Too many failed logins. Try again in %(num)d minute.",
                     "Too many failed logins. Try again in %(num)d minutes.", minutes)
    return (render_template("laurel/login.html", form=LoginForm(), error=error), 429,
            {"Retry-After": str(wait)})


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Log out and end the user's every session, so no copy of the cookie stays valid."""
    user = current_principal()
    if user is not None:
        db = current_app.extensions["laurel_db"]
        row = db.get(User, user.id)
        if row is not None:
            end_sessions(row)
            db.commit()
    logout_user()
    return redirect(url_for("auth.login"))


class InviteForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(_l("This field is required."))])
    again = PasswordField(_l("The same password again"), validators=[
        DataRequired(_l("This field is required."))])


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept(token: str) -> Any:
    """An invitation's link: the invited person sets their password and is logged in."""
    db = current_app.extensions["laurel_db"]
    user = invited(db, token)
    if user is None:
        return render_template("laurel/invite.html", form=None, email=None), 404
    form = InviteForm()
    error = None
    if form.validate_on_submit():
        if form.password.data != form.again.data:
            error = _l("The two passwords differ.")
        else:
            try:
                db.info["actor"] = user.email  # the invited person sets it
                user = accept_invite(db, token, form.password.data or "")
                db.commit()
            except PasswordRefused as exc:
                db.rollback()
                error = (_l("At least %(n)d characters are needed.", n=MIN_PASSWORD)
                         if exc.reason == "short" else
                         _l("This is one of the most common passwords: anyone could guess "
                            "it. Choose another."))
            except LaurelError as exc:
                db.rollback()
                error = i18n.say(exc)
            else:
                login_user(Principal.of(user))
                return _remember_device(redirect(url_for("admin.index")), user.email)
    status = 400 if error or form.errors else 200
    return render_template("laurel/invite.html", form=form, email=user.email,
                           error=error), status


def renew_login(user: User) -> None:
    """Keep the current login valid after its user's session token changed."""
    me = current_principal()
    if me is not None and me.id == user.id:
        login_user(Principal.of(user))


def init_app(app: Flask, db: scoped_session) -> None:
    for key in ("LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_ADDRESS"):
        try:  # refused at start, not at the first failed login
            parse_many(app.config[key])
        except ValueError:
            raise ValueError(f"LAUREL_{key}={app.config[key]!r}: not a limit such as "
                             "'10 per 15 minutes'") from None
    app.config["RATELIMIT_STORAGE_URI"] = app.config["RATELIMIT_STORAGE_URL"]
    # Each app gets fresh counts in its own storage; limiter.reset() clears them.
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def _load(session_id: str) -> Principal | None:
        user_id, _sep, token = session_id.partition(":")
        try:
            user = db.get(User, int(user_id))
        except ValueError:
            return None
        if user is None or not user.active or not hmac.compare_digest(
                token.encode(), user.session_token.encode()):
            return None
        return Principal.of(user)

    app.register_blueprint(bp)
