"""Every back-office page a role reaches, in Chinese, on the demo organisation.

Each role logs in (the demo's own users), switches to Chinese and follows the links of
its pages from its home page, one page of each kind (the same path with other ids is the
same page), plus the pages behind a form (a rule tried, its impact, two versions
compared). Each page is read as a person reads it (test_admin_rules_zh.read) and may hold
no English word that is not a code or a name of the data, nor a number like 1.058 where
a ratio should read as a percentage (except in a rule's scenario tables, which hold
results in the import's units, 0.05 for 5%). The few words allowed besides are listed
below.
"""

from __future__ import annotations

import re
from collections import deque

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from engine import db, demo, wording
from engine.models import AuditLog, Employee, Level, Metric, Outcome, Period, Rule, User

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
    from tests.test_admin_rules_zh import CODE, WORD, data_words, read
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]
    from test_admin_rules_zh import CODE, WORD, data_words, read  # type: ignore[no-redef]

pytest_plugins = [support.__name__]

# Words that stay as they are on a Chinese page: file formats, the command line's words
# (the help page names its commands), the placeholder of a quarter's code.
ALLOWED = {"CSV", "XLSX", "PDF", "DRAFT", "EMAIL", "MB", "laurel", "users", "invite",
           "YYYY-Qn", "Qn", "YYYY"}
# Not pages: downloads, files, the language switch, logging out.
SKIP = re.compile(r"lang=|logout|\.csv|\.xlsx|/export|/file/|/download|/print|/evidence")
# A number that reads like a ratio left as a fraction (0.868, 1.058): not money (¥),
# not a percentage, not a code or a date.
FRACTION = re.compile(r"(?<![\d.,¥%-])(?:0|1)\.\d{3,}(?![\d%])")


class Org:
    def __init__(self, url: str) -> None:
        self.url = url

    def session(self):  # type: ignore[no-untyped-def]
        return db.make_sessionmaker(self.url)()


@pytest.fixture()
def demo_org(db_url: str) -> Org:
    with db.session_scope(db_url, actor="system") as s:
        demo.load_demo(s)
    return Org(db_url)


def pattern(url: str) -> str:
    return re.sub(r"\d+", "N", url.split("?")[0].split("#")[0])


def crawl(client: FlaskClient, start: list[str], seen: set[str], most: int = 200
          ) -> dict[str, str]:
    """The text of each kind of page reachable from ``start`` that is not ``seen`` yet
    (read for an earlier role): {url: text}."""
    pages: dict[str, str] = {}
    visited: set[str] = set()
    queue = deque(start)
    while queue and len(pages) < most:
        url = queue.popleft()
        key = url if url in start else pattern(url)  # a form's page: its own query
        if url in visited or (key in seen and url not in start):
            continue
        seen.add(key)
        visited.add(url)
        page = client.get(url, follow_redirects=True)
        assert page.status_code in (200, 403, 404), (url, page.status_code)
        if page.status_code != 200 or "html" not in (page.content_type or ""):
            continue
        html = page.get_data(as_text=True)
        pages[url] = read(page)
        for href in re.findall(r'href="(/admin[^"#]*)"', html):
            href = href.replace("&amp;", "&")
            if not SKIP.search(href):
                queue.append(href)
    return pages


@pytest.mark.slow
def test_every_page_of_every_role_in_chinese_is_chinese(client: FlaskClient,
                                                       demo_org: Org) -> None:
    allowed = data_words(demo_org) | ALLOWED  # type: ignore[arg-type]
    with demo_org.session() as s:
        for label, name in s.execute(select(Metric.label_en, Level.name).join(
                Level, Level.id > 0)).all():
            allowed.update(WORD.findall(f"{label} {name}"))
        # names and what people typed (reasons) are data, shown as written
        people = s.scalars(select(User.name)).all() + s.scalars(select(AuditLog.actor)).all()
        people += [str(v) for after in s.scalars(select(AuditLog.after)) if after
                   for k, v in after.items() if "reason" in k]
        allowed.update(WORD.findall(" ".join(people)))
        period = s.scalar(select(Period.code).where(Period.kind == "month")
                          .order_by(Period.start))
        versions = s.execute(select(Rule.key, Rule.version)
                             .where(Rule.key == "commission.tiered")).all()
        # a statement holding each line a run adds besides its rules' own (a clawback, a
        # part paid once collected): one statement of each is all a crawl would read
        moved = {key: (run_id, code) for key, run_id, code in s.execute(
            select(Outcome.rule_key, Outcome.run_id, Employee.code)
            .join(Employee, Employee.id == Outcome.employee_id)
            .where(Outcome.rule_key.in_(wording.MOVED_NAMES)).order_by(Outcome.id))}
    assert {"clawback", "collected_release"} <= set(moved)
    key, version = versions[-1]
    forms = [f"/admin/rules/{key}/v{version}/try?period={period}&employee=E0001",
             f"/admin/rules/{key}/v{version}/review?period={period}",
             *(f"/admin/runs/{run_id}/statement/{code}" for run_id, code in moved.values())]
    if len(versions) > 1:
        forms.append(f"/admin/rules/{key}/compare?a=1&b={version}")
    problems: dict[str, str] = {}
    kinds, seen = 0, set()
    for email, password, role in demo.logins():
        support.login(client, email, password)
        client.get("/admin/?lang=zh")
        # each role's own home page; a kind of page once, for the first role reaching it
        pages = crawl(client, ["/admin/", *(forms if role == "hr_admin" else [])], seen)
        assert pages, role
        kinds += len(pages)
        for url, text in pages.items():
            assert "English" in text, (role, url)  # the page is in Chinese
            for word in sorted(set(WORD.findall(CODE.sub(" ", text))) - allowed
                               - {"English"}):
                problems.setdefault(word, f"{role} {url}")
            if "/admin/rules/" in url:
                continue  # scenario tables hold results as an import file does (0.05)
            for number in FRACTION.findall(text):
                problems.setdefault(number, f"{role} {url}")
    assert kinds > 100 and len(seen) > 100  # more than the home pages were read
    assert not problems, "\n".join(f"{w}: {where}" for w, where in sorted(problems.items()))
