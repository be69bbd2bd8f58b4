"""Back-office users and their roles."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from engine.errors import LaurelError, NotFound, PasswordRefused, PermissionDenied
from engine.messages import msg
from engine.models import ROLES, Employee, Team, User, new_session_token

MIN_PASSWORD = 8
# Shipped with the package: nothing is fetched when a password is checked.
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


def get_user(session: Session, email: str) -> User:
    """Return the active user with this email or raise NotFound naming it."""
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None or not user.active:
        raise NotFound(msg("user %(email)s does not exist or is inactive", email=email))
    return user


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_new_password(password: str, email: str = "") -> None:
    """Raise PasswordRefused when the password is too short or one of the most common.

    The list is lowercased, so is the comparison: "Password1" is as guessable as
    "password1".
    """
    if len(password) < MIN_PASSWORD:
        raise PasswordRefused(email, "short", f"at least {MIN_PASSWORD} characters are needed")
    if password.strip().lower() in _common_passwords():
        raise PasswordRefused(email, "common", "it is one of the most common passwords; "
                              "choose another")


def set_password(user: User, password: str) -> None:
    """Hash and keep a new password; every way of setting one comes through here."""
    check_new_password(password, user.email)
    user.password_hash = generate_password_hash(password)
    end_sessions(user)


def end_sessions(user: User) -> None:
    """End every login session of the user: each one's next request is anonymous.

    A session is valid while it carries the user's session token (admin.auth), so a copy
    of an old session cookie is worthless once the token changes.
    """
    user.session_token = new_session_token()


def check_password(user: User, password: str) -> bool:
    return bool(user.password_hash) and check_password_hash(user.password_hash, password)


@functools.cache
def _decoy_hash() -> str:
    # Made like every stored hash (set_password), so checking against it costs the same.
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active user with this email and password, else None.

    An unknown email, an inactive user or one without a password is checked against a
    decoy hash all the same: every refusal costs one password check, so the time of the
    answer does not tell which emails have an account.
    """
    try:
        user: User | None = get_user(session, email)
    except NotFound:
        user = None
    stored = user.password_hash if user is not None else ""
    matches = check_password_hash(stored or _decoy_hash(), password)
    return user if matches and stored else None


def employee_by_email(session: Session, email: str) -> Employee | None:
    """The one employee with this email (any case), or None; LaurelError when several."""
    found = list(session.scalars(select(Employee).where(
        func.lower(Employee.email) == email.strip().lower()).order_by(Employee.code)))
    if len(found) > 1:
        raise LaurelError(msg("user %(email)s: %(found)s employees have this email (%(value)s); "
                              "give each their own", email=email, found=len(found),
                              value=', '.join(e.code for e in found)))
    return found[0] if found else None


def create_user(session: Session, email: str, password: str | None, role: str,
                name: str = "", team: str | None = None, locale: str | None = None) -> User:
    """Create a user; the email must be new.

    A sales manager sees one team: the one given, else the team that the employee with
    the same email manages; without either they see nothing until HR sets it. A sales_rep
    is the employee with the same email, who must exist. ``password`` None makes a user
    who cannot log in until an invitation sets it (invite).
    """
    email = email.strip().lower()
    if "@" not in email:
        raise LaurelError(msg("user %(email)s, field email: not an email address",
                              email=repr(email)))
    if role not in ROLES:
        raise LaurelError(msg("user %(email)s, field role: %(role)s is not one of %(value)s",
                              email=email, role=repr(role), value=', '.join(ROLES)))
    if session.scalar(select(User).where(func.lower(User.email) == email)):
        raise LaurelError(msg("user %(email)s already exists", email=email))
    team_obj = None
    if role == "sales_manager" and not team:
        # The team whose manager is the employee with this email, when there is one; else
        # none yet (the manager sees nothing until HR sets the team).
        team_obj = session.scalar(select(Team).join(Employee, Employee.id == Team.manager_id)
                                  .where(func.lower(Employee.email) == email).limit(1))
    if team:
        team_obj = session.scalar(select(Team).where(Team.name == team))
        if team_obj is None:
            raise LaurelError(msg("user %(email)s, field team: unknown team %(team)s",
                                  email=email, team=repr(team)))
    employee = None
    if role == "sales_rep":
        employee = employee_by_email(session, email)
        if employee is None:
            raise LaurelError(msg("user %(email)s, field email: no employee has this email; a "
                                  "sales_rep is an employee (import or edit the employee first)",
                                  email=email))
    user = User(email=email, name=name or (employee.name if employee else email.split("@")[0]),
                role=role, team=team_obj, locale=locale, active=True, employee=employee)
    if password is not None:
        set_password(user, password)
    session.add(user)
    session.flush()
    return user


INVITE_DAYS = 7


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(session: Session, email: str) -> tuple[User, str]:
    """Invite a person: return the user and the token of the link that sets the password.

    An existing user gets a new link (the older one stops working); an employee with this
    email and no user becomes a sales_rep user without a password. The link works once,
    for INVITE_DAYS days; only its hash is kept.
    """
    email = email.strip().lower()
    user = session.scalar(select(User).where(func.lower(User.email) == email))
    if user is None:
        if employee_by_email(session, email) is None:
            raise LaurelError(msg("user %(email)s: no user and no employee has this email",
                                  email=email))
        user = create_user(session, email, None, "sales_rep")
    if not user.active:
        raise LaurelError(msg("user %(email)s is inactive: HR activates it first", email=email))
    token = secrets.token_urlsafe(32)
    user.invite_hash = _token_hash(token)
    user.invite_expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=INVITE_DAYS)
    session.flush()
    from engine.db import audit

    audit(session, "invite", "user", user.id, summary=msg("%(email)s invited (%(role)s)",
                                                                  email=user.email, role=user.role),
          after={"role": user.role, "expires": user.invite_expires_at.isoformat()})
    return user, token


def invite_link(token: str, base: str | None = None) -> str:
    """The link of an invitation: LAUREL_BASE_URL (else ``base``, else the default local
    address) followed by /invite/TOKEN."""
    import os

    root = os.environ.get("LAUREL_BASE_URL") or base or "http://127.0.0.1:5000"
    return f"{root.rstrip('/')}/invite/{token}"


INVITERS = ("hr_admin",)


def logs_in_already(user: User | None) -> bool:
    """Whether a user is active and has set a password: they need no invitation."""
    return user is not None and user.active and bool(user.password_hash)


def emails_logging_in(session: Session) -> set[str]:
    """The emails (lower case) of the users who log in already (logs_in_already)."""
    return {u.email.lower() for u in session.scalars(select(User).where(User.active))
            if logs_in_already(u)}


def invite_employee(session: Session, employee_id: int, actor: str | None
                    ) -> tuple[User, str]:
    """Invite an employee from the back office, as ``laurel users invite EMAIL`` does.

    Only who manages users (INVITERS) may; the employee needs an email; an active user
    who has set a password already logs in and gets no second invitation (a pending one is
    replaced by a new link).
    """
    require_role(session, actor, INVITERS, "invite a person")
    employee = session.get(Employee, employee_id)
    if employee is None:
        raise NotFound(msg("employee %(employee_id)s does not exist", employee_id=employee_id))
    email = (employee.email or "").strip().lower()
    if not email:
        raise LaurelError(msg("employee %(code)s, field email: no email; give the employee an "
                              "email before inviting them", code=employee.code))
    user = session.scalar(select(User).where(func.lower(User.email) == email))
    if logs_in_already(user):
        raise LaurelError(msg("user %(email)s is active and has set a password: they log in "
                              "already, no second invitation", email=email))
    return invite(session, email)


def invited(session: Session, token: str) -> User | None:
    """The active user whose invitation this token is, while it has not expired."""
    if not token:
        return None
    user = session.scalar(select(User).where(User.invite_hash == _token_hash(token)))
    if user is None or not user.active or user.invite_expires_at is None:
        return None
    expires = user.invite_expires_at
    if expires.tzinfo is None:  # SQLite gives the time back without its zone
        expires = expires.replace(tzinfo=dt.UTC)
    return user if expires > dt.datetime.now(dt.UTC) else None


def accept_invite(session: Session, token: str, password: str) -> User:
    """Set the password of the invited user; the link then stops working."""
    user = invited(session, token)
    if user is None:
        raise NotFound(msg("this invitation link is unknown, used or expired: ask HR for a new "
                           "one"))
    set_password(user, password)
    user.invite_hash = user.invite_expires_at = None
    from engine.db import audit

    audit(session, "accept", "user", user.id,
          summary=msg("%(email)s set a password from an invitation", email=user.email),
          actor=user.email)
    session.flush()
    return user


ROLE_WORDS = {"hr_admin": "an hr_admin", "comp_analyst": "a comp_analyst",
              "compliance_officer": "a compliance officer", "sales_manager": "a sales manager",
              "auditor": "an auditor", "sales_rep": "a sales_rep"}


def require_role(session: Session, actor: str | None, roles: tuple[str, ...], what: str
                 ) -> User:
    """Return the acting user when their role may do this; the system user never may."""
    if not actor or actor == "system":
        raise PermissionDenied(msg("the system user cannot %(what)s: use --as EMAIL", what=what))
    user = get_user(session, actor)
    if user.role not in roles:
        allowed = " or ".join([ROLE_WORDS[roles[0]], *roles[1:]])  # a comp_analyst or hr_admin
        raise PermissionDenied(msg("user %(email)s is a %(role)s; only %(allowed)s can %(what)s",
                                   email=user.email, role=user.role, allowed=allowed, what=what))
    return user
