"""Personal API tokens: made, listed and revoked by their user (back office, command line).

A token acts as its user, with the user's role, exactly as the back office would let that
user act (api/). Only its SHA-256 is kept: the token is shown once, when it is made. A
token has a name (the audit log names it for every use), an expiry or none, and once
revoked or expired it is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.chunks import _aware, _now
from engine.db import audit
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.messages import msg
from engine.models import ApiToken
from engine.users import get_user

PREFIX = "lrl_"
MAX_DAYS = 3650
# A token's last use is written at most this often: a busy client must not make every
# request a write.
TOUCH_EVERY = dt.timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def state(token: ApiToken, now: dt.datetime | None = None) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if token.revoked_at is not None:
        return "revoked"
    expires = _aware(token.expires_at)
    if expires is not None and expires <= (now or _now()):
        return "expired"
    return "active"


def create(session: Session, email: str, name: str, days: int | None = None
           ) -> tuple[ApiToken, str]:
    """Make a token for the active user with this email; return it and the token text.

    ``days`` None: the token does not expire (until revoked). A name is needed, unique
    among the user's tokens that still work, so the audit log tells them apart.
    """
    user = get_user(session, email)
    name = (name or "").strip()
    if not name:
        raise LaurelError(msg("token, field name: a name is needed (what the token is for)"))
    if len(name) > 100:
        raise LaurelError(msg("token, field name: at most 100 characters"))
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise LaurelError(msg("token %(name)s, field expires: from 1 to %(most)s days",
                                  name=name, most=MAX_DAYS))
    for other in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                        ApiToken.name == name)):
        if state(other) == "active":
            raise LaurelError(msg("token %(name)s, field name: %(email)s has a working token "
                                  "of this name already; revoke it or choose another name",
                                  name=name, email=user.email))
    text = PREFIX + secrets.token_urlsafe(32)
    now = _now()
    token = ApiToken(user_id=user.id, name=name, token_hash=token_hash(text),
                     prefix=text[:len(PREFIX) + 4], created_at=now,
                     expires_at=now + dt.timedelta(days=days) if days else None)
    session.add(token)
    session.flush()
    audit(session, "create", "api_token", token.id,
          summary=f"API token {name} of {user.email} created",
          after={"name": name, "user": user.email,
                 "expires": token.expires_at.isoformat() if token.expires_at else None})
    return token, text


def tokens_of(session: Session, email: str | None = None) -> list[ApiToken]:
    """Every token, or the tokens of one user, newest first."""
    query = select(ApiToken).order_by(ApiToken.id.desc())
    if email is not None:
        query = query.where(ApiToken.user_id == get_user(session, email).id)
    return list(session.scalars(query))


def revoke(session: Session, token_id: int, actor: str) -> ApiToken:
    """Revoke a token: its user may revoke their own, an hr_admin anybody's."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"API token {token_id} does not exist")
    if actor != "system":
        who = get_user(session, actor)
        if who.id != token.user_id and who.role != "hr_admin":
            raise PermissionDenied(f"user {who.email} cannot revoke another user's token; "
                                   "only its user or an hr_admin can")
    if token.revoked_at is not None:
        raise LaurelError(msg("API token %(id)s (%(name)s) is revoked already", id=token_id,
                              name=token.name))
    token.revoked_at, token.revoked_by = _now(), actor
    session.flush()
    audit(session, "revoke", "api_token", token.id,
          summary=f"API token {token.name} of {token.user.email} revoked",
          before={"state": "active"}, after={"state": "revoked"})
    return token


def authenticate(session: Session, text: str) -> ApiToken | None:
    """The working token with this text whose user is active, else None.

    Its last use is recorded (at most once a minute), in the caller's transaction.
    """
    if not text.startswith(PREFIX) or len(text) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(text)))
    if token is None or state(token) != "active" or not token.user.active:
        return None
    now = _now()
    last = _aware(token.last_used_at)
    if last is None or now - last >= TOUCH_EVERY:
        token.last_used_at = now
    return token


__all__ = ["authenticate", "create", "revoke", "state", "tokens_of"]
