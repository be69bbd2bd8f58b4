"""A newcomer's first minutes: `laurel init --demo`, then each demo user logs in and walks
the back office, in both languages, without meeting an error page."""

from __future__ import annotations

import re
from collections import deque

import pytest
from click.testing import CliRunner

from admin.cli import main

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

LINK = re.compile(r'href="(/admin/[^"#]*)"')
SKIP = re.compile(r"/(delete|logout|export|download|evidence|static)/?|\.(csv|xlsx)\b|"
                  r"/export\b|format=")


@pytest.fixture()
def demo(db_url):
    result = CliRunner().invoke(main, ["init", "--demo"])
    assert result.exit_code == 0, result.output
    logins = re.findall(r"^\s+(\w+)\s+(\S+@\S+)\s+(\S+)$", result.stdout, re.M)
    assert {role for role, _, _ in logins} == {"hr_admin", "comp_analyst", "compliance_officer",
                                              "sales_manager", "auditor", "sales_rep"}
    return logins


def walk(client, start: str, limit: int) -> dict[str, int]:
    """Visit the pages reachable from start (GET only), breadth first."""
    seen: dict[str, int] = {}
    queue = deque([start])
    while queue and len(seen) < limit:
        url = queue.popleft()
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code == 200 and "text/html" in response.content_type:
            for link in LINK.findall(response.get_data(as_text=True)):
                link = link.replace("&amp;", "&")
                if not SKIP.search(link) and link not in seen:
                    queue.append(link)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_demo_user_logs_in_and_finds_no_broken_page(demo, lang):
    app = support.web_app({"TESTING": False, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "t",
                      "PROPAGATE_EXCEPTIONS": False})
    for role, email, password in demo:
        client = app.test_client()
        assert client.get("/admin/").status_code in (302, 401)  # the login page first
        response = client.post("/login", data={"email": email, "password": password})
        assert response.status_code == 302, (role, response.get_data(as_text=True)[:300])
        client.get(f"/admin/?lang={lang}")
        # a salesperson's home is their portal (/admin/ sends them there)
        pages = walk(client, "/admin/me/" if role == "sales_rep" else "/admin/", limit=60)
        broken = {url: code for url, code in pages.items() if code >= 500}
        assert not broken, (role, lang, broken)
        assert len([u for u, c in pages.items() if c == 200]) >= 4, (role, pages)
