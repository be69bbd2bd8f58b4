"""The app factory: configuration layers, the kept secret key, wsgi and ajax lookups."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from admin import auth
from admin.app import create_app

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

login = support.login
pytest_plugins = [support.__name__]


def test_a_secret_key_is_made_once_and_kept(db_url: str, tmp_path: Path) -> None:
    first = create_app()
    kept = tmp_path / "instance" / "secret_key"
    assert kept.exists() and first.secret_key == kept.read_text().strip()
    assert create_app().secret_key == first.secret_key
    assert first.config["DATABASE_URL"] == db_url


def test_the_environment_then_the_test_mapping_win(db_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUREL_SECRET_KEY", "from-env")
    assert create_app().secret_key == "from-env"
    assert create_app({"SECRET_KEY": "from-test"}).secret_key == "from-test"


def test_a_kept_app_comes_back_as_create_app_would_make_it(
        db_url: str, org: support.Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' back office is built once a process (test_admin_support.web_app): what a
    test changed in it, or in the extensions another app configured, is undone before the
    next test is given it."""
    config = {**support.CONFIG, "LOGIN_LIMIT_PER_ACCOUNT": "2 per 15 minutes"}
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/first.py::test (call)")
    app = support.web_app(config)
    client = app.test_client()
    wrong = {"email": "hr@example.com", "password": "wrong-password"}
    assert [client.post("/login", data=wrong).status_code for _ in range(3)] == [401, 401, 429]
    app.config["API_RATE_LIMIT"] = "1 per minute"
    create_app({**config, "RATELIMIT_ENABLED": False})  # another app, the limiter off
    assert not auth.limiter.enabled

    # the next test, in an instance folder of its own
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/second.py::test (setup)")
    monkeypatch.setenv("LAUREL_INSTANCE_PATH", str(tmp_path / "second"))
    made = dict(create_app(config).config)
    again = support.web_app(config)
    assert again is app and dict(again.config) == made
    assert again.config["INSTANCE_PATH"] == str(tmp_path / "second")
    assert again.instance_path == str((tmp_path / "second").resolve())
    bound = again.extensions["laurel_db"]().get_bind().url
    assert bound.render_as_string(hide_password=False) == db_url
    assert auth.limiter.enabled
    client = again.test_client()
    support.login(client, "hr_admin")  # the failures of the first test are forgotten
    assert [again.test_client().post("/login", data=wrong).status_code
            for _ in range(3)] == [401, 401, 429]
    with pytest.raises(ValueError, match="twice in one test"):
        support.web_app(config)


def test_wsgi_exposes_the_app(db_url: str) -> None:
    # Loaded from its file: the project root is not always on sys.path under pytest.
    spec = importlib.util.spec_from_file_location(
        "wsgi", Path(__file__).resolve().parent.parent / "wsgi.py")
    assert spec and spec.loader
    wsgi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wsgi)
    assert wsgi.app.name == "admin.app"
    assert wsgi.app.test_client().get("/login").status_code == 200


def test_hr_looks_employees_up_while_editing(client: FlaskClient) -> None:
    login(client, "hr_admin")
    found = client.get("/admin/employee/ajax/lookup/?name=manager&query=Nora")
    assert found.status_code == 200
    assert any("Nora North" in label for _id, label in found.get_json())
    assert client.get("/").status_code == 302


def test_the_chinese_catalog_is_complete_and_compiled() -> None:
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    folder = Path(__file__).resolve().parent.parent / "admin/translations/zh/LC_MESSAGES"
    for domain in ("messages", "admin"):  # ours, and Flask-Admin's words it lacks
        with open(folder / f"{domain}.po", "rb") as fh:
            po = read_po(fh)
        with open(folder / f"{domain}.mo", "rb") as fh:
            mo = read_mo(fh)
        _same_catalog(po, mo)


def _same_catalog(po: Any, mo: Any) -> None:
    from babel.messages.catalog import Catalog

    def entries(catalog: Catalog) -> dict[tuple[str | None, Any], tuple[str, ...]]:
        # A plural message (ngettext) has its forms as a tuple in the .po, a list in the .mo.
        def forms(value: Any) -> Any:
            return (value,) if isinstance(value, str) else tuple(value)

        return {(m.context, forms(m.id)): forms(m.string) for m in catalog if m.id}

    translated = entries(po)
    assert [key for key, strings in translated.items() if not all(strings)] == []
    # The committed .mo is compiled from this .po (run pybabel compile after editing). Keyed
    # by context too: one English word can need two Chinese ones (pgettext).
    assert translated == entries(mo)


def test_a_refused_record_says_so_in_chinese(client: FlaskClient, org: support.Org) -> None:
    """Flask-Admin's refusal of a form it cannot save is in the page's language (its own
    installed catalog lacks it) and the typed values stay."""
    login(client, "hr_admin")
    for lang, said in (("zh", "创建记录失败。"), ("en", "Failed to create record.")):
        client.get(f"/admin/?lang={lang}")
        page = client.post("/admin/employee/new/", data={"code": "E77", "name": "Typed Name"})
        text = page.get_data(as_text=True)
        assert said in text and 'value="Typed Name"' in text, lang
    # the engine's reasons beside a field: a formula, a number
    page = client.post("/admin/metric/new/?lang=zh", data={
        "key": "odd", "label_en": "Odd", "type": "ratio", "rollup": "mean",
        "formula": "visits / nothing_here", "min_value": "abc"})
    text = support.text_of(page)
    assert "未知指标 nothing_here" in text and "不是数字" in text
    assert "unknown metric" not in text and "is not a number" not in text


def test_an_empty_login_says_so_in_chinese(client: FlaskClient) -> None:
    page = client.post("/login?lang=zh", data={"email": "", "password": ""})
    assert page.status_code == 400 and "此字段为必填项。" in page.get_data(as_text=True)


def test_the_icon_every_browser_asks_for_is_there(client: FlaskClient) -> None:
    icon = client.get("/favicon.ico")  # no broken link in any page's console
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
