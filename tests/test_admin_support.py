"""Fixtures and helpers shared by the back-office tests (test_admin_*.py).

The organisation is small on purpose: two teams of two employees, one user per role, one
month of results. Each test builds it once through the engine, as an import would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

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


@pytest.fixture()
def app(db_url: str, org: Org) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "t"})
    yield app


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


def text_of(response: object) -> str:
    """The page text without tags, for looking for words."""
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    # Scripts and Flask-Admin's hidden filter data (JSON for its JavaScript) are not text.
    html = re.sub(r"<script.*?</script>|<div id=\"filter-groups-data\".*?</div>", " ", html,
                  flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
