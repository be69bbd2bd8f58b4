"""What every page sends to keep the browser safe: the session cookie's flags, the security
headers, and a Content-Security-Policy that no page of the back office needs to break."""

from __future__ import annotations

import re
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from admin.app import create_app
from engine.runs import start_run

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

pytest_plugins = [support.__name__]
login = support.login
ROOT = Path(__file__).resolve().parent.parent


def _session_cookie(value: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LAUREL_SESSION_COOKIE_SECURE", value)
    app = create_app({"TESTING": True, "SECRET_KEY": "t"})
    # The language switch puts something in the session, so the cookie is sent.
    return app.test_client().get("/login?lang=zh").headers["Set-Cookie"]


@pytest.mark.parametrize("value", ["false", "False", "FALSE", "0", "no", "Off", ""])
def test_a_secure_cookie_setting_of_false_means_false(
        value: str, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = _session_cookie(value, monkeypatch)
    assert "Secure" not in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "On"])
def test_a_secure_cookie_setting_of_true_means_true(
        value: str, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Secure" in _session_cookie(value, monkeypatch)


def test_a_flag_setting_that_is_no_flag_is_refused_at_start(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUREL_SESSION_COOKIE_SECURE", "maybe")
    with pytest.raises(ValueError, match="LAUREL_SESSION_COOKIE_SECURE='maybe'"):
        create_app()


# --- headers and the Content-Security-Policy -----------------------------------------------

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
HANDLER = re.compile(r"""\son[a-z]+\s*=\s*("[^"]*"|'[^']*')""", re.I)
# Flask-Admin's links that go nowhere; static/laurel/admin.js keeps the browser from them.
JS_URL = re.compile(r"javascript:[^\"']*")
SKIP = re.compile(r"/logout|/static/|lang=|/export|/download|\.xlsx|\.csv|format=")


def _policy(response: Any) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def assert_secure_headers(response: Any) -> None:
    policy = _policy(response)
    assert policy["default-src"] == "'self'"
    assert re.fullmatch(r"'self' 'nonce-[\w-]{16,}'", policy["script-src"]), policy
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def assert_no_inline_script(path: str, response: Any) -> None:
    """Every script of the page comes from this site, is data, or carries the nonce."""
    html = response.get_data(as_text=True)
    nonce = _policy(response)["script-src"].split("'nonce-")[1].rstrip("'")
    for attrs, body in SCRIPT.findall(html):
        if 'type="application/json"' in attrs:
            continue
        src = re.search(r'src="([^"]*)"', attrs)
        if src:
            assert src.group(1).startswith("/"), (path, attrs)
        else:
            assert f'nonce="{nonce}"' in attrs, (path, body[:80])
    # The policy refuses an inline event handler: its control would do nothing.
    assert HANDLER.findall(html) == [], path
    assert set(JS_URL.findall(html)) <= {"javascript:void(0)"}, path


def test_every_response_sends_the_security_headers(client: FlaskClient) -> None:
    responses = [client.get("/login"), client.get("/admin/"),  # a redirect to the login
                 client.get("/no-such-page"),
                 client.get("/admin/static/bootstrap/bootstrap4/css/bootstrap.min.css"),
                 client.post("/login", data={"email": "x@example.com", "password": "wrong!!!"})]
    login(client, "hr_admin")
    responses.append(client.get("/admin/employee/"))
    assert [r.status_code for r in responses] == [200, 302, 404, 200, 401, 200]
    for response in responses:
        assert_secure_headers(response)
        response.close()
    nonces = {_policy(r)["script-src"] for r in responses}
    assert len(nonces) == len(responses)  # a new nonce for each response


def _crawl(client: FlaskClient, start: str) -> dict[str, Any]:
    """GET every back-office page reachable from ``start``, one per endpoint."""
    urls = client.application.url_map.bind("localhost")
    seen: dict[str, Any] = {}
    endpoints: set[str] = set()
    todo = [start]
    while todo:
        path = todo.pop(0)
        endpoint, _args = urls.match(path.split("?")[0].split("#")[0])
        if endpoint in endpoints:
            continue
        endpoints.add(endpoint)
        response = client.get(path)
        seen[path] = response
        if response.status_code != 200 or not response.mimetype == "text/html":
            continue
        for link in re.findall(r'href="(/admin/[^"]*)"', response.get_data(as_text=True)):
            link = html_unescape(link)
            if not SKIP.search(link):
                todo.append(link)
    return seen


@pytest.mark.parametrize("role", ["hr_admin", "comp_analyst", "compliance_officer"])
def test_no_page_holds_a_script_the_policy_would_refuse(
        client: FlaskClient, org: support.Org, role: str) -> None:
    with org.session() as s:
        start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"])
        s.commit()
    login(client, role)
    pages = _crawl(client, "/admin/")
    assert len(pages) >= 20, sorted(pages)
    for path, response in pages.items():
        assert response.status_code in (200, 302), (path, response.status_code)
        assert_secure_headers(response)
        if response.mimetype == "text/html":
            assert_no_inline_script(path, response)


def test_laurel_templates_hold_no_inline_script_or_handler() -> None:
    for path in (ROOT / "admin/templates").rglob("*.html"):
        html = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)  # not Jinja's comments
        assert not HANDLER.search(html), path
        assert set(JS_URL.findall(html)) <= {"javascript:void(0)"}, path
        for attrs, body in SCRIPT.findall(html):
            assert "src=" in attrs or 'type="application/json"' in attrs, (path, body[:80])
