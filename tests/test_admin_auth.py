"""Login, logout, the login redirect and CSRF."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from engine import users
from engine.models import AuditLog, Team, User

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

PASSWORD = support.PASSWORD
ROLE_EMAILS = support.ROLE_EMAILS
Org = support.Org
login = support.login
text_of = support.text_of
pytest_plugins = [support.__name__]


def test_anonymous_gets_the_login_page(client: FlaskClient) -> None:
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    page = client.get(response.location)
    assert page.status_code == 200
    assert 'name="password"' in page.get_data(as_text=True)


def test_anonymous_on_a_model_page_is_sent_to_login_with_next(client: FlaskClient) -> None:
    response = client.get("/admin/employee/?search=N1")
    assert response.status_code == 302
    assert "/login?next=" in response.location
    assert "next=/admin/employee/" in response.location
    after = client.post(response.location, data={"email": ROLE_EMAILS["hr_admin"],
                                                  "password": PASSWORD})
    assert after.status_code == 302
    assert after.location == "/admin/employee/?search=N1"


def test_each_role_logs_in_and_sees_its_dashboard(client: FlaskClient) -> None:
    names = {"hr_admin": "HR administrator", "comp_analyst": "Compensation analyst",
             "compliance_officer": "Compliance officer", "sales_manager": "Sales manager",
             "auditor": "Auditor"}
    for role, name in names.items():
        login(client, role)
        page = client.get("/admin/")
        assert page.status_code == 200
        text = text_of(page)
        assert name in text and ROLE_EMAILS[role] in text
        client.post("/logout")


def test_a_wrong_password_keeps_the_typed_email(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "hr@example.com", "password": "wrong!!!"})
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert 'value="hr@example.com"' in html
    assert "The email or the password is not right." in html
    assert "wrong!!!" not in html
    unknown = client.post("/login", data={"email": "nobody@example.com", "password": "x" * 9})
    assert unknown.status_code == 401


def test_an_inactive_user_cannot_log_in(client: FlaskClient, org: Org) -> None:
    with org.session() as s:
        s.query(User).filter_by(email="auditor@example.com").update({"active": False})
        s.commit()
    response = client.post("/login", data={"email": "auditor@example.com",
                                           "password": PASSWORD})
    assert response.status_code == 401


def test_logout_ends_the_session(client: FlaskClient) -> None:
    login(client, "hr_admin")
    assert client.get("/admin/").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/admin/").status_code == 302


def test_next_cannot_leave_the_site(client: FlaskClient) -> None:
    response = client.post("/login?next=//evil.example/x",
                           data={"email": "hr@example.com", "password": PASSWORD})
    assert response.location == "/admin/"


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_csrf_is_enforced_when_enabled(db_url: str, org: Org) -> None:
    app = support.web_app({"TESTING": True, "SECRET_KEY": "t"})
    client = app.test_client()
    refused = client.post("/login", data={"email": "hr@example.com", "password": PASSWORD})
    assert refused.status_code == 400
    token = _token(client.get("/login").get_data(as_text=True))
    ok = client.post("/login", data={"email": "hr@example.com", "password": PASSWORD,
                                     "csrf_token": token})
    assert ok.status_code == 302

    form = {"name": "West", "region": "W", "stage": "growth"}
    assert client.post("/admin/team/new/", data=form).status_code == 400
    with org.session() as s:
        assert s.query(Team).filter_by(name="West").count() == 0
    token = _token(client.get("/admin/team/new/").get_data(as_text=True))
    assert client.post("/admin/team/new/", data={**form, "csrf_token": token}
                       ).status_code == 302
    with org.session() as s:
        assert s.query(Team).filter_by(name="West").count() == 1
    # Logging out is a form too.
    assert client.post("/logout").status_code == 400


def test_the_back_office_refuses_a_common_password(client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    form = {"email": "ana@example.com", "name": "Ana", "password": "Password123",
            "role": "auditor", "locale": "", "active": "y"}
    refused = client.post("/admin/user/new/", data=form)
    assert refused.status_code == 200
    assert "This is one of the most common passwords" in text_of(refused)
    with org.session() as s:
        auditor = s.scalar(select(User).where(User.email == ROLE_EMAILS["auditor"]))
    edited = client.post(f"/admin/user/edit/?id={auditor.id}",
                         data={**form, "email": auditor.email, "password": "qwerty123"})
    assert "This is one of the most common passwords" in text_of(edited)
    assert "这是最常见的密码之一" in text_of(client.post("/admin/user/new/?lang=zh", data=form))
    assert support.count(org, User, User.email == "ana@example.com") == 0
    with org.session() as s:
        assert s.get(User, auditor.id).password_hash == support.FAST_HASH


def _copy_of_session(client: FlaskClient, app: Flask) -> FlaskClient:
    """A second browser holding a copy of this one's session cookie (a stolen cookie)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = app.test_client()
    other.set_cookie("session", cookie.value)
    return other


def test_logout_makes_every_copy_of_the_session_cookie_worthless(
        client: FlaskClient, app: Flask, org: Org) -> None:
    login(client, "hr_admin")
    stolen = _copy_of_session(client, app)
    assert stolen.get("/admin/").status_code == 200
    audit_rows = support.count(org, AuditLog)
    client.post("/logout")
    assert stolen.get("/admin/").status_code == 302
    # the new token is no change anyone needs to read about in the audit log
    assert support.count(org, AuditLog) == audit_rows
    # and a second login gets a session that works
    login(client, "hr_admin")
    assert client.get("/admin/").status_code == 200


def test_a_new_password_ends_the_users_sessions(client: FlaskClient, app: Flask,
                                                org: Org) -> None:
    auditor = app.test_client()
    login(auditor, "auditor")
    with org.session() as s:
        auditor_id = s.scalar(select(User.id).where(User.email == ROLE_EMAILS["auditor"]))
    login(client, "hr_admin")
    form = {"email": ROLE_EMAILS["auditor"], "name": "auditor", "role": "auditor",
            "locale": "", "active": "y", "password": ""}
    # an edit that leaves the password alone leaves the sessions alone
    assert client.post(f"/admin/user/edit/?id={auditor_id}", data=form).status_code == 302
    assert auditor.get("/admin/").status_code == 200
    form["password"] = "a-new-long-password"
    assert client.post(f"/admin/user/edit/?id={auditor_id}", data=form).status_code == 302
    assert auditor.get("/admin/").status_code == 302
    login(auditor, "auditor", "a-new-long-password")
    assert auditor.get("/admin/").status_code == 200


def test_who_sets_their_own_password_stays_logged_in_here_only(
        client: FlaskClient, app: Flask, org: Org) -> None:
    login(client, "hr_admin")
    elsewhere = _copy_of_session(client, app)
    with org.session() as s:
        hr_id = s.scalar(select(User.id).where(User.email == ROLE_EMAILS["hr_admin"]))
    form = {"email": ROLE_EMAILS["hr_admin"], "name": "hr", "role": "hr_admin", "locale": "",
            "active": "y", "password": "a-new-long-password"}
    assert client.post(f"/admin/user/edit/?id={hr_id}", data=form).status_code == 302
    assert client.get("/admin/").status_code == 200
    assert elsewhere.get("/admin/").status_code == 302


def test_a_session_without_the_current_token_is_anonymous(client: FlaskClient,
                                                          org: Org) -> None:
    with org.session() as s:
        hr = s.scalar(select(User).where(User.email == ROLE_EMAILS["hr_admin"]))
    for session_id in (str(hr.id), f"{hr.id}:", f"{hr.id}:not-the-token",
                       f"x:{hr.session_token}"):
        with client.session_transaction() as session:
            session["_user_id"] = session_id
        assert client.get("/admin/").status_code == 302, session_id
    with client.session_transaction() as session:
        session["_user_id"] = f"{hr.id}:{hr.session_token}"
    assert client.get("/admin/").status_code == 200


@pytest.mark.production_hashing
def test_an_unknown_email_costs_one_password_check_like_a_known_one(
        client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """No timing: the refusal of an unknown email does the same work as a wrong password."""
    with org.session() as s:
        s.query(User).filter_by(email=ROLE_EMAILS["auditor"]).update({"active": False})
        s.commit()
    checked: list[str] = []

    def spy(stored: str, password: str) -> bool:
        checked.append(stored)
        return check_password_hash(stored, password)

    monkeypatch.setattr(users, "check_password_hash", spy)
    answers = {}
    for email, password in [("hr@example.com", "wrong-password"),
                            ("nobody@example.com", "wrong-password"),
                            (ROLE_EMAILS["auditor"], PASSWORD)]:
        checked.clear()
        response = client.post("/login", data={"email": email, "password": password})
        assert len(checked) == 1, email
        answers[email] = (response.status_code,
                          response.get_data(as_text=True).replace(email, "EMAIL"))
        if email != "hr@example.com":
            # checked against a hash made the way set_password makes them
            assert checked[0].split("$")[0] == generate_password_hash("x").split("$")[0]
    assert len(set(answers.values())) == 1
    assert next(iter(answers.values()))[0] == 401
