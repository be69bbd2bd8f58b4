"""Fixtures and helpers shared by the back-office tests (test_admin_*.py).

The organisation is small on purpose: two teams of two employees, one user per role, one
month of results. Each test builds it once through the engine, as an import would.
"""

from __future__ import annotations

import copy
import html
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from admin import auth
from admin.app import create_app
from engine import db
from engine.imports import import_employees, import_results
from engine.models import Employee, Team, User
from tests.stored import value_count

PASSWORD = "password123"
FAST_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
ROLE_EMAILS = {
    "hr_admin": "hr@example.com",
    "comp_analyst": "analyst@example.com",
    "compliance_officer": "compliance@example.com",
    "sales_manager": "manager@example.com",
    "auditor": "auditor@example.com",
}
EMPLOYEES_CSV = (
    b"code,name,email,team,region,level,manager_code,hire_date,team_stage\n"
    b"N1,Nora North,nora@example.com,North,East,M1,,2020-01-01,growth\n"
    b"N2,Ned North,ned@example.com,North,East,S1,N1,2021-02-01,\n"
    b"S1,Sam South,sam@example.com,South,West,M1,,2019-03-01,mature\n"
    b"S2,Sue South,sue@example.com,South,West,S2,S1,2022-04-01,\n"
)
RESULTS_CSV = (
    b"period,employee_code,quota,revenue_new,satisfaction,max_discount_pct\n"
    b"2026-01,N1,100000,123456.5,4.5,0.08\n"
    b"2026-01,N2,50000,20000,3.9,0.02\n"
    b"2026-01,S1,100000,90000,4.1,0.1\n"
    b"2026-01,S2,50000,61000,4.0,0.05\n"
)


@dataclass
class Org:
    """Ids of what the tests act on."""

    north: int
    south: int
    employees: dict[str, int]
    url: str

    def session(self) -> Session:
        return db.make_sessionmaker(self.url)()


def build_org(url: str) -> Org:
    with db.session_scope(url, actor="tester@example.com") as s:
        import_employees(s, "employees.csv", data=EMPLOYEES_CSV)
        import_results(s, "results.csv", data=RESULTS_CSV)
        teams = dict(s.execute(select(Team.name, Team.id)).all())
        for role, email in ROLE_EMAILS.items():
            # A cheap hash: scrypt per user per test would dominate the suite's time.
            s.add(User(email=email, name=email.split("@")[0], role=role, active=True,
                       password_hash=FAST_HASH,
                       team_id=teams["North"] if role == "sales_manager" else None))
        employees = dict(s.execute(select(Employee.code, Employee.id)).all())
    return Org(teams["North"], teams["South"], employees, url)


@pytest.fixture()
def org(db_url: str) -> Org:
    return build_org(db_url)


# --- one back office per test process ------------------------------------------------------

# The settings create_app takes from the environment that tests/conftest.py's db_url sets
# for each test: they change from test to test, the rest of the environment does not.
_PER_TEST = ("DATABASE_URL", "INSTANCE_PATH")
# Module-level extensions that each create_app configures for its app (admin.auth): the
# last app created is the one they serve.
_EXTENSIONS = (auth.limiter, auth.login_manager)


@dataclass
class _Kept:
    app: Flask
    config: dict[str, Any]
    extensions: list[dict[str, Any]]
    test: str = ""


_KEPT: dict[str, _Kept] = {}


def _copied(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes, their dicts, lists and sets copied (those change in place)."""
    return {name: copy.copy(value) if isinstance(value, dict | list | set) else value
            for name, value in attributes.items()}


def web_app(config: dict[str, Any]) -> Flask:
    """The back office of ``create_app(config)`` for this test, built once per process.

    Building it (about 200 URL rules, every Flask-Admin view, and each template compiled
    at its first request) cost more than most tests that use it. The app is kept between
    tests and handed back as create_app would make it for this test: the configuration it
    was built with, this test's database and instance folder (db_url sets them per test),
    no database session left over, and the login limiter and login manager (module-level
    extensions, configured by the last create_app of the process) as this app configured
    them, with no failed login counted. The LAUREL_ environment is part of the key: a
    test that changes a setting gets an app of its own. Tests of create_app itself call it.
    """
    if "SECRET_KEY" not in config:
        raise ValueError("web_app: give a SECRET_KEY (create_app would make a new one each "
                         "test, in the test's instance folder)")
    missing = [f"LAUREL_{name}" for name in _PER_TEST if not os.environ.get(f"LAUREL_{name}")]
    if missing:
        raise ValueError(f"web_app: {', '.join(missing)} not set; use the db_url fixture")
    environment = {k: v for k, v in os.environ.items()
                   if k.startswith("LAUREL_") and k[len("LAUREL_"):] not in _PER_TEST}
    key = repr((sorted(config.items()), sorted(environment.items())))
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    kept = _KEPT.get(key)
    if kept is None:
        app = create_app(config)
        _KEPT[key] = _Kept(app, copy.deepcopy(dict(app.config)),
                           [_copied(vars(e)) for e in _EXTENSIONS], test)
        return app
    if test and kept.test == test:
        raise ValueError("web_app: asked twice in one test for one configuration; call "
                         "create_app for a second app")
    kept.test = test
    app = kept.app
    session = app.extensions["laurel_db"]
    session.remove()
    app.config.clear()
    app.config.update(copy.deepcopy(kept.config))
    for name in _PER_TEST:
        if name not in config:
            app.config[name] = os.environ[f"LAUREL_{name}"]
    app.instance_path = str(Path(os.environ["LAUREL_INSTANCE_PATH"]).resolve())
    session.configure(bind=db.get_engine(app.config["DATABASE_URL"]))
    for extension, attributes in zip(_EXTENSIONS, kept.extensions, strict=True):
        vars(extension).clear()
        vars(extension).update(_copied(attributes))
    # no failed login counted: the storage this app's create_app opened, and its fallback
    for storage in (auth.limiter._storage, auth.limiter._fallback_storage):
        if storage is not None:
            storage.reset()
    return app


# The back office the tests drive: no CSRF token to copy into each form (test_admin_auth
# checks the tokens with an app of its own).
CONFIG = {"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "t"}


@pytest.fixture()
def app(db_url: str, org: Org) -> Iterator[Flask]:
    yield web_app(CONFIG)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def login(client: FlaskClient, role_or_email: str, password: str = PASSWORD) -> None:
    email = ROLE_EMAILS.get(role_or_email, role_or_email)
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def count(org: Org, model: type, *where: object) -> int:
    with org.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def result_count(org: Org) -> int:
    """How many result values are stored."""
    with org.session() as s:
        return value_count(s)


def in_language(app: Flask, lang: str, say: Any, *args: Any) -> str:
    """What ``say`` (an admin.i18n helper) gives on a page read in ``lang``."""
    with app.test_request_context(f"/?lang={lang}"):
        from flask import session

        session["lang"] = lang
        return say(*args)


def text_of(response: object) -> str:
    """The page text without tags, for looking for words."""
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    # Scripts and Flask-Admin's hidden filter data (JSON for its JavaScript) are not text.
    html = re.sub(r"<script.*?</script>|<div id=\"filter-groups-data\".*?</div>", " ", html,
                  flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def read_as_shown(html: str, start: str | None = None, end: str | None = None) -> str:
    """What a reader reads of a page (or of its part from ``start`` to ``end``): its text,
    the keys shown beside a name in small (``<code>``) left out."""
    if start:
        at = html.index(start)
        html = html[at:html.index(end, at) if end else None]
    return text_of(type("Page", (), {"get_data": lambda self, as_text: re.sub(
        r"<code>.*?</code>", " ", html, flags=re.S)})())


def rule_names_stored(session: Session, keys: Any, lang: str) -> dict[str, str]:
    """The names in ``lang`` that the published rules of ``keys`` store (their files'
    name and name_zh), by key."""
    from engine.models import Rule

    out = {}
    for key, definition in session.execute(select(Rule.key, Rule.definition).where(
            Rule.key.in_(set(keys)), Rule.status == "published")):
        out[key] = definition["name_zh" if lang == "zh" else "name"]
    return out


def walk_pages(client: FlaskClient, start: str, pages: int, row: str) -> list[list[str]]:
    """The rows (``row``: a pattern) of each page from the first to the last following the
    pager's "Next" links, then from the last to the first following "Previous"."""
    out, url = [], start
    for direction, label in (("forward", "Next"), ("back", "Previous")):
        seen = []
        for page in range(1, pages + 1):
            text = client.get(url).get_data(as_text=True)
            number = page if direction == "forward" else pages + 1 - page
            assert f"Page {number} of {pages}" in text, (direction, url)
            seen.append(re.findall(row, text))
            links = re.findall(rf'href="([^"]+)">(?:&laquo; )?{label}', text)
            if page < pages:
                url = html.unescape(links[0])
                # "Previous" from the second page is the first page itself
                key = "after=" if direction == "forward" else "before="
                assert key in url or (direction == "back" and number == 2), url
        out += seen if direction == "forward" else seen[::-1]
    return out
