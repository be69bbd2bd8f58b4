"""What every page sends to keep the browser safe: the session cookie's flags."""

from __future__ import annotations

import pytest

from admin.app import create_app

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

pytest_plugins = [support.__name__]


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
