"""Failed logins are throttled per account and per address, for a while only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import limits.storage.memory
import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits.storage import MemoryStorage

from admin import auth
from admin.app import create_app

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

pytest_plugins = [support.__name__]
PASSWORD = support.PASSWORD
HR = support.ROLE_EMAILS["hr_admin"]
AUDITOR = support.ROLE_EMAILS["auditor"]


def _app(**config: Any) -> Flask:
    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "t",
                       "LOGIN_LIMIT_PER_ACCOUNT": "3 per 15 minutes",
                       "LOGIN_LIMIT_PER_ADDRESS": "5 per 15 minutes", **config})


@pytest.fixture()
def client(org: support.Org) -> Iterator[FlaskClient]:
    yield _app().test_client()


def _post(client: FlaskClient, email: str, password: str = "wrong-password",
          address: str = "10.0.0.1", **kwargs: Any) -> Any:
    return client.post("/login", data={"email": email, "password": password},
                       environ_overrides={"REMOTE_ADDR": address}, **kwargs)


def test_an_account_is_throttled_after_its_failures_from_any_address(
        client: FlaskClient) -> None:
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert _post(client, HR, address=address).status_code == 401
    throttled = _post(client, HR, PASSWORD, address="10.0.0.4")
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    page = throttled.get_data(as_text=True)
    assert "Too many failed logins. Try again in 15 minutes." in page
    assert 'name="password"' in page  # the login page, not a bare error
    # another account from the same addresses is not throttled
    assert _post(client, AUDITOR, PASSWORD, address="10.0.0.1").status_code == 302


def test_an_unknown_email_is_throttled_like_a_known_one(client: FlaskClient) -> None:
    for _ in range(3):
        assert _post(client, "Nobody@Example.com ").status_code == 401
    assert _post(client, "nobody@example.com").status_code == 429


def test_an_address_is_throttled_after_failures_on_any_accounts(client: FlaskClient) -> None:
    for n in range(5):
        assert _post(client, f"guess{n}@example.com").status_code == 401
    assert _post(client, HR, PASSWORD).status_code == 429
    assert _post(client, HR, PASSWORD, address="10.0.0.9").status_code == 302


def test_successful_logins_and_empty_forms_do_not_count(client: FlaskClient) -> None:
    for _ in range(4):
        assert _post(client, HR, PASSWORD).status_code == 302
        client.post("/logout")
        assert _post(client, HR, "").status_code == 400
    assert _post(client, HR, PASSWORD).status_code == 302


def test_the_throttle_runs_out(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        _post(client, HR)
    assert _post(client, HR, PASSWORD).status_code == 429
    later = time.time() + 15 * 60 + 1
    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=lambda: later))
    assert _post(client, HR, PASSWORD).status_code == 302


def test_the_throttled_page_speaks_chinese(client: FlaskClient) -> None:
    for _ in range(3):
        _post(client, HR)
    page = client.post("/login?lang=zh", data={"email": HR, "password": PASSWORD},
                       environ_overrides={"REMOTE_ADDR": "10.0.0.1"})
    assert page.status_code == 429
    assert "登录失败次数过多。请 15 分钟后再试。" in page.get_data(as_text=True)


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(org: support.Org) -> None:
    def fail_from(client: FlaskClient, n: int) -> int:
        return client.post("/login", data={"email": f"guess{n}@example.com",
                                           "password": "wrong-password"},
                           headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code

    # Without a proxy the header is the client's word: forging it dodges nothing.
    direct = _app().test_client()
    assert [fail_from(direct, n) for n in range(6)] == [401] * 5 + [429]
    behind = _app(TRUSTED_PROXIES=1).test_client()
    assert [fail_from(behind, n) for n in range(6)] == [401] * 6


def test_tests_can_switch_the_throttle_off_or_reset_it(org: support.Org) -> None:
    off = _app(RATELIMIT_ENABLED=False).test_client()
    assert [_post(off, HR).status_code for _ in range(5)] == [401] * 5
    client = _app().test_client()
    for _ in range(3):
        _post(client, HR)
    assert _post(client, HR, PASSWORD).status_code == 429
    auth.limiter.reset()
    assert _post(client, HR, PASSWORD).status_code == 302


def test_the_counts_go_where_the_storage_setting_says(
        org: support.Org, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []

    def storage_from_string(uri: str, **options: Any) -> MemoryStorage:
        opened.append(uri)
        return MemoryStorage()

    monkeypatch.setattr("flask_limiter._extension.storage_from_string", storage_from_string)
    monkeypatch.setenv("LAUREL_RATELIMIT_STORAGE_URL", "redis://cache.example:6379/1")
    create_app({"TESTING": True, "SECRET_KEY": "t"})
    assert opened == ["redis://cache.example:6379/1"]


def test_a_limit_that_does_not_parse_is_refused_at_start(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUREL_LOGIN_LIMIT_PER_ACCOUNT", "ten a minute")
    with pytest.raises(ValueError, match="LAUREL_LOGIN_LIMIT_PER_ACCOUNT='ten a minute'"):
        create_app()


def test_a_browser_that_logged_in_before_is_not_kept_out_by_others_failures(
        org: support.Org) -> None:
    app = _app()
    mine, theirs = app.test_client(), app.test_client()
    first = _post(mine, HR, PASSWORD, address="10.0.0.1")
    assert first.status_code == 302
    cookie = next(v for k, v in first.headers.items()
                  if k == "Set-Cookie" and v.startswith(auth.DEVICE_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and HR not in cookie
    mine.post("/logout")
    for address in ("10.0.0.7", "10.0.0.8", "10.0.0.9"):  # someone else, elsewhere
        assert _post(theirs, HR, address=address).status_code == 401
    assert _post(theirs, HR, PASSWORD, address="10.0.0.7").status_code == 429
    assert _post(app.test_client(), HR, PASSWORD, address="10.0.0.1").status_code == 429
    assert _post(mine, HR, PASSWORD, address="10.0.0.1").status_code == 302  # still gets in
    mine.post("/logout")
    # the browser's own failures count too, and its cookie is no key to another account
    for _ in range(3):
        assert _post(mine, HR, address="10.0.0.2").status_code == 401
    assert _post(mine, HR, PASSWORD, address="10.0.0.2").status_code == 429
    for _ in range(3):
        assert _post(theirs, AUDITOR, address="10.0.0.3").status_code == 401
    assert _post(mine, AUDITOR, PASSWORD, address="10.0.0.4").status_code == 429


def test_a_forged_device_cookie_counts_as_none(org: support.Org) -> None:
    app = _app()
    client = app.test_client()
    client.set_cookie(auth.DEVICE_COOKIE, "not-signed", path="/login")
    for _ in range(3):
        assert _post(client, HR, address="10.0.0.5").status_code == 401
    other = app.test_client()
    assert _post(other, HR, PASSWORD, address="10.0.0.6").status_code == 429  # one count
