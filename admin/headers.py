"""Security headers on every response, and the nonce that lets a page's own scripts run.

The Content-Security-Policy lets scripts come from this site only; an inline ``<script>``
runs only when it carries this request's nonce (Flask-Admin's templates write it where
they say ``admin_csp_nonce_attribute``). Laurel's own templates hold no inline script and
no event handler; ``static/laurel/admin.js`` does the work of the few inline handlers
that Flask-Admin's templates carry. Inline styles stay allowed: Bootstrap's and
Flask-Admin's markup uses style attributes, and a style cannot run code. No page may be
framed (clickjacking), no response sniffed into another type, and no URL of the back
office, whose query strings name employees, is sent to another site as a referrer.
"""

from __future__ import annotations

import secrets

from flask import Flask, g
from werkzeug.wrappers import Response

POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def csp_nonce() -> str:
    """Return this request's nonce, the same for every script of the page."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_app(app: Flask) -> None:
    @app.after_request
    def _secure(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = POLICY.format(nonce=csp_nonce())
        for name, value in HEADERS.items():
            response.headers[name] = value
        return response
