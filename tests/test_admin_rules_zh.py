"""Every policy page in Chinese: no English word that is not a code or a name.

The pages are rendered in Chinese and their text read as a person sees it (scripts,
styles and <code> left out). A word in Latin letters must be one of the data's own: a
code (a rule key, a metric key, an employee code, a level), a name (an employee, a team,
a rule's English name or description, shown as such) or the words of a rule's scenarios
(written in the step vocabulary). Anything else is a string the catalog does not
translate; and no English message of the catalog may show verbatim.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.conditions import CONTEXT_FACTS
from engine.lifecycle import approve as approve_run
from engine.models import Employee, Level, Metric, Rule, Team, User
from engine.runs import start_run

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

pytest_plugins = [support.__name__]
ROOT = Path(__file__).resolve().parent.parent
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]")
# Not translated on purpose: the product's name, the currency, units of the catalog.
ALWAYS = {"Laurel", "CN", "CNY", "CEO", "Gherkin", "HR", "KPI", "API"}


# Flask-Admin's own words are translated too (the navbar button's: laurel/base.html).
FLASK_ADMIN: set[str] = set()
# A code: a rule key, a metric key (commission.tiered, per_capita_output).
CODE = re.compile(r"[A-Za-z0-9]+(?:[._][A-Za-z0-9]+)+")
VOID = {"input", "br", "img", "meta", "link", "hr", "col", "source", "wbr"}


class Text(HTMLParser):
    """What a person reads: text, placeholders and tips; not scripts, styles, <code>, or
    what is marked as written in English on purpose (lang="en")."""

    SKIP = {"script", "style", "code", "pre", "template"}
    # Flask-Admin's filter definitions, JSON data for its script (hidden)
    DATA = {"filter-groups-data", "active-filters-data", "actions-confirmation-data",
            "message-data"}

    def __init__(self) -> None:
        super().__init__()
        self.skipping: list[str] = []  # the open elements that are not read
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag not in VOID and (self.skipping or tag in self.SKIP or a.get("id") in self.DATA
                                or (a.get("lang") or "").startswith("en")):
            self.skipping.append(tag)
        for name, value in attrs:  # what a person reads in a field or a tip
            if name in ("placeholder", "title", "aria-label") and value and \
                    not self.skipping and value not in FLASK_ADMIN:
                self.out.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


def read(page: Any) -> str:
    parser = Text()
    parser.feed(page.get_data(as_text=True))
    return " ".join(parser.out)


def data_words(org: support.Org) -> set[str]:
    """The words of the data: codes and names, and what the rules themselves say."""
    words = set(ALWAYS)
    with org.session() as s:
        texts: list[str] = []
        texts += s.scalars(select(Rule.key)).all()
        for rule in s.scalars(select(Rule)):
            d = rule.definition
            texts += [d.get("name", ""), d.get("description", ""), rule.scenarios or ""]
            texts += re.findall(r'"value": "([^"]*)"', str(d).replace("'", '"'))
        texts += s.scalars(select(Metric.key)).all() + [n for n, _, _ in CONTEXT_FACTS]
        texts += s.scalars(select(Employee.code)).all() + s.scalars(select(Employee.name)).all()
        texts += s.scalars(select(Team.name)).all() + s.scalars(select(Team.region)).all()
        texts += s.scalars(select(Level.code)).all() + s.scalars(select(User.email)).all()
    for text in texts:
        words.update(WORD.findall(text or ""))
    return words


def english_messages() -> list[str]:
    po = read_po((ROOT / "admin/translations/zh/LC_MESSAGES/messages.po").open("rb"))
    return [m.id for m in po if isinstance(m.id, str) and m.string and len(m.id.split()) >= 3
            and "%" not in m.id]


@pytest.fixture()
def zh_client(client: FlaskClient, org: support.Org) -> FlaskClient:
    with org.session() as s:
        s.add(User(email="hr2@example.com", name="hr2", role="hr_admin",
                   password_hash=support.FAST_HASH))
        run = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run
        approve_run(s, run.id, "hr2@example.com")
        s.commit()
    support.login(client, "hr_admin")
    client.get("/admin/?lang=zh")
    return client


@pytest.mark.slow
def test_every_policy_page_in_chinese_has_no_untranslated_string(
        zh_client: FlaskClient, org: support.Org) -> None:
    client = zh_client
    with org.session() as s:
        keys = s.scalars(select(Rule.key).distinct()).all()
    # a draft that fails its scenarios: the gate's page with new figures to accept
    from tests.test_admin_rules import change_tier_rate

    assert change_tier_rate(client, "commission.tiered", "7").status_code == 302
    pages = {"/admin/rules/": client.get("/admin/rules/"),
             "/admin/rules/new": client.get("/admin/rules/new"),
             "gate": client.post("/admin/rules/commission.tiered/v2/request")}
    for start in ("tiered_commission", "fixed_bonus", "per_unit_bonus", "rating_table", "flag"):
        pages[start] = client.get(f"/admin/rules/new?start={start}")
    for key in keys:  # every rule's page; the editor's pages for each kind of action
        pages[f"/admin/rules/{key}/"] = client.get(f"/admin/rules/{key}/")
    for key in ("commission.tiered", "rating.quarterly", "pip.trigger", "bonus.service_star",
                "compliance.discount_authority", "bonus.startup_new_customer"):
        for path in (f"/admin/rules/{key}/edit", f"/admin/rules/{key}/v1/scenarios",
                     f"/admin/rules/{key}/v1/review"):
            pages[path] = client.get(path)
    for path in ("/admin/rules/commission.tiered/compare?a=1&b=2",
                 "/admin/rules/commission.tiered/v2/review?period=2026-01",
                 "/admin/rules/commission.tiered/v2/try?period=2026-01&employee=N1",
                 "/admin/rules/compliance.discount_authority/v1/try?period=2026-01&employee=S1"):
        pages[path] = client.get(path)
    allowed = data_words(org)
    messages = english_messages()
    problems = []
    for path, page in pages.items():
        assert page.status_code in (200, 400), (path, page.status_code)
        text = read(page)
        assert "English" in text, path  # the page is in Chinese: the switch offers English
        stray = sorted({w for w in WORD.findall(CODE.sub(" ", text)) if w not in allowed}
                       - {"English"})
        if stray:
            problems.append((path, stray))
        problems += [(path, m) for m in messages if m in text]
    summary = {}
    for path, found in problems:
        for w in (found if isinstance(found, list) else [found]):
            summary.setdefault(w, path)
    assert not summary, "\n".join(f"{w}: {p}" for w, p in sorted(summary.items()))


def test_the_compare_page_names_each_version_in_the_pages_language(
        client: FlaskClient, org: support.Org) -> None:
    """A version's heading on the compare page is a sentence of the catalog, not an English
    pattern with Chinese words in it ("v1 已发布, 规则文件")."""
    from tests.test_admin_rules import change_tier_rate

    support.login(client, "hr_admin")
    assert change_tier_rate(client, "commission.tiered", "7").status_code == 302
    hr = support.ROLE_EMAILS["hr_admin"]
    page = client.get("/admin/rules/commission.tiered/compare?a=1&b=2&lang=zh")
    heads = re.findall(r"<th>([^<]*)</th>", page.get_data(as_text=True))[1:3]
    assert heads == ["版本 1（已发布，规则文件）", f"版本 2（草稿，{hr}）"]
    page = client.get("/admin/rules/commission.tiered/compare?a=1&b=2&lang=en")
    heads = re.findall(r"<th>([^<]*)</th>", page.get_data(as_text=True))[1:3]
    assert heads == ["v1 published, rule file", f"v2 draft, {hr}"]


def test_the_review_page_names_the_published_version_in_the_pages_language(
        client: FlaskClient, org: support.Org) -> None:
    """The review of a draft heads the published side with a sentence of the catalog
    ("已发布（版本 1）"), not "已发布 (v1)"."""
    from tests.test_admin_rules import change_tier_rate

    support.login(client, "hr_admin")
    assert change_tier_rate(client, "commission.tiered", "7").status_code == 302
    page = client.get("/admin/rules/commission.tiered/v2/review?period=2026-01&lang=zh")
    assert "已发布（版本 1）" in page.get_data(as_text=True)
    page = client.get("/admin/rules/commission.tiered/v2/review?period=2026-01&lang=en")
    assert "Published (v1)" in page.get_data(as_text=True)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_draft_awaiting_approval_is_named_in_the_readers_language(
        client: FlaskClient, org: support.Org, lang: str) -> None:
    """A draft another HR admin asked to publish: the home page's list of what waits, the
    rule list's strip and a run's checklist name it in the page's language (they gave
    its English name on Chinese pages)."""
    import json

    from engine import authoring
    from engine.rulebook import latest
    from engine.users import create_user

    with org.session() as s:
        create_user(s, "hr2@example.com", "a long enough password 2", "hr_admin")
        doc = json.loads(json.dumps(latest(s, "commission.tiered").definition))
        doc["name"], doc["name_zh"] = "Tiered commission, renamed", "阶梯佣金（新名）"
        rule, _ = authoring.save_draft(s, doc, "hr2@example.com")
        authoring.request_publish(s, rule, "hr2@example.com")
        period = s.scalar(select(Rule.period_kind).where(Rule.id == rule.id))
        s.commit()
    assert period == "month"
    shown, other = {"en": (doc["name"], doc["name_zh"]),
                    "zh": (doc["name_zh"], doc["name"])}[lang]
    login = support.login
    login(client, "hr_admin")
    # the home page's card of what waits (its latest changes show the entry as stored)
    html = client.get(f"/admin/?lang={lang}").get_data(as_text=True)
    card = html[html.index('id="waiting-drafts_to_approve"'):]
    card = card[:card.index("</ul>")]
    assert shown in card and other not in card
    text = support.text_of(client.get(f"/admin/rules/?lang={lang}"))
    assert shown in text and other not in text
    login(client, "comp_analyst")
    with org.session() as s:
        run_id = start_run(s, "2026-01", actor="analyst@example.com").run.id
        s.commit()
    text = support.text_of(client.get(f"/admin/runs/{run_id}/?lang={lang}"))
    assert shown in text and other not in text
