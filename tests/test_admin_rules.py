"""The policies in the back office: the editor, its messages, versions, approval, impact."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from admin.rules_views import key_from_name
from engine.lifecycle import approve as approve_run
from engine.models import Rule, User
from engine.rulebook import read_rule_file, stored_form, validate_for_session
from engine.runs import outcome_rows, start_run

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

Org = support.Org
login = support.login
text_of = support.text_of
pytest_plugins = [support.__name__]


def latest_of(org: Org, key: str) -> Rule | None:
    with org.session() as s:
        return s.scalars(select(Rule).where(Rule.key == key).order_by(Rule.version.desc())
                         ).first()

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = sorted((ROOT / "rules").glob("*.yaml"))
HR2 = "hr2@example.com"


class FormFields(HTMLParser):
    """The fields a browser would send for the form #rule-form, in document order."""

    def __init__(self, form_id: str = "rule-form") -> None:
        super().__init__()
        self.form_id = form_id
        self.fields: list[tuple[str, str]] = []
        self.in_form = self.in_template = False
        self.select: str | None = None
        self.select_value: str | None = None
        self.first_option: str | None = None
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.in_form = True
        if tag == "template":
            self.in_template = True
        if not self.in_form or self.in_template:
            return
        if tag == "input" and "name" in a:
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select, self.select_value, self.first_option = a.get("name"), None, None
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = a.get("value", "")
            if "selected" in a:
                self.select_value = a.get("value", "")
        elif tag == "textarea":
            self.textarea, self.text = a.get("name"), ""

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.in_template = False
        if tag == "form":
            self.in_form = False
        if not self.in_form and tag != "form":
            return
        if tag == "select" and self.select:
            value = self.select_value if self.select_value is not None else self.first_option
            self.fields.append((self.select, value or ""))
            self.select = None
        elif tag == "textarea" and self.textarea:
            import html

            self.fields.append((self.textarea, html.unescape(self.text).removeprefix("\n")))
            self.textarea = None


def form_of_id(page: Any, form_id: str) -> list[tuple[str, str]]:
    parser = FormFields(form_id)
    parser.feed(page.get_data(as_text=True))
    return parser.fields


def form_of(page: Any) -> list[tuple[str, str]]:
    parser = FormFields()
    parser.feed(page.get_data(as_text=True))
    return parser.fields


def replace(fields: list[tuple[str, str]], **values: str) -> list[tuple[str, str]]:
    return [(k, values.get(k, v)) for k, v in fields]


def definition(org: Org, key: str) -> tuple[int, dict[str, Any]]:
    with org.session() as s:
        rule = s.scalar(select(Rule).where(Rule.key == key).order_by(Rule.version.desc()))
        return rule.version, rule.definition


@pytest.fixture()
def hr2(org: Org) -> str:
    with org.session() as s:
        s.add(User(email=HR2, name="hr2", role="hr_admin", password_hash=support.FAST_HASH))
        s.commit()
    return HR2


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_every_reference_rule_opens_and_is_built_again_by_the_form(
        client: FlaskClient, org: Org, path: Path) -> None:
    login(client, "hr_admin")
    with org.session() as s:
        expected = stored_form(validate_for_session(s, read_rule_file(path), str(path)))
    key = expected["key"]
    page = client.get(f"/admin/rules/{key}/edit")
    assert page.status_code == 200
    fields = form_of(page)
    # the same rule, unchanged: no new version
    saved = client.post(f"/admin/rules/{key}/edit", data=MultiDict(fields))
    assert saved.status_code == 302, text_of(saved)[:2000]
    assert definition(org, key) == (1, expected)
    # built again from nothing, under another key
    copy = replace(fields, key=f"copy.{key}")
    saved = client.post("/admin/rules/new", data=MultiDict(copy))
    assert saved.status_code == 302, text_of(saved)[:2000]
    assert definition(org, f"copy.{key}") == (1, {**expected, "key": f"copy.{key}"})


# --- validation messages at their field and row ---------------------------------------------------

ACTION_BLANK = [("a_amount", ""), ("a_rate", ""), ("a_metric", ""), ("a_base", ""),
                ("a_per", ""), ("a_value", ""), ("a_months", ""), ("a_target", "")]


def cond(fact: str, op: str, value: str = "", ref: str = "", depth: int = 0,
         node: str = "leaf", owner: str = "when") -> list[tuple[str, str]]:
    return [("c_owner", owner), ("c_depth", str(depth)), ("c_node", node), ("c_fact", fact),
            ("c_op", op), ("c_value", value), ("c_ref", ref)]


def group(node: str, depth: int = 0, owner: str = "when") -> list[tuple[str, str]]:
    return cond("", "", depth=depth, node=node, owner=owner)


def new_rule(key: str = "commission.key_accounts", kind: str = "commission",
             conds: list[tuple[str, str]] | None = None, action: str = "tiers",
             tiers: list[tuple[str, str, str]] = (("", "100", "2"), ("100", "", "3")),
             extra: list[tuple[str, str]] = ()) -> MultiDict:
    fields = [("key", key), ("name", "Key accounts"), ("description", ""), ("kind", kind),
              ("period_kind", "month"), ("when_join", "all"),
              *(conds if conds is not None else cond("revenue_total", ">", "0")),
              ("a_type", action), *ACTION_BLANK]
    fields = [(k, v) for k, v in fields if not any(k == e for e, _ in extra)] + list(extra)
    for lo, hi, rate in tiers:
        fields += [("t_from", lo), ("t_to", hi), ("t_rate", rate)]
    return MultiDict(fields + [("effective_from", ""), ("effective_to", "")])


TIERS = [("a_metric", "attainment"), ("a_base", "revenue_total")]


def error_at(page: Any, where: str) -> str:
    found = re.search(rf'data-for="{re.escape(where)}">([^<]*)<', page.get_data(as_text=True))
    assert found, f"no message at {where}: {text_of(page)[:1500]}"
    return html.unescape(found[1])


def test_an_overlap_is_shown_at_its_tier_and_the_typing_is_kept(client: FlaskClient,
                                                                org: Org) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(
        tiers=[("", "100", "2"), ("90 %", "", "3")], extra=TIERS))
    assert page.status_code == 400
    assert error_at(page, "tier:1:from") == "overlaps tier 1, which runs to 1.00 (100%)"
    fields = form_of(page)
    assert ("t_from", "90 %") in fields and ("key", "commission.key_accounts") in fields
    assert ("c_fact", "revenue_total") in fields and ("a_metric", "attainment") in fields
    # blank rows in between are no tiers: the numbering follows the filled ones
    page = client.post("/admin/rules/new", data=new_rule(
        tiers=[("", "", ""), ("", "100", "2"), ("110", "", "3")], extra=TIERS))
    assert error_at(page, "tier:2:from") == "gap between 1.00 (100%) (tier 1) and 1.10 (110%)"


@pytest.mark.parametrize("conds, where, message", [
    (cond("team_stage", ">", "growth"), "cond:0:op", "operator > does not fit text fact "
     "team_stage; use ==, !=, in, not_in, defined or undefined"),
    (cond("revenue_total", ">", "lots"), "cond:0:value", "'lots' is not an amount in CNY "
     "(write 1500, 1,500.00 or 1500元, for example)"),
    (cond("leads", ">", "lots"), "cond:0:value", "'lots' is not a number"),
    (cond("nothing_like_it", ">", "1"), "cond:0:fact", "unknown metric or fact "
     "'nothing_like_it'"),
    (cond("max_discount_pct", ">", ref="team"), "cond:0:ref",
     "max_discount_pct and team cannot be compared (a number and text)"),
    (cond("leads", ">=", "20") + group("any") + cond("rating", "==", "D", depth=1)
     + cond("visits", "defined", "3", depth=1), "cond:3:value", "defined takes no value"),
    (cond("leads", ">=", "20") + group("any"), "cond:1:row", "any needs a list of conditions"),
])
def test_each_condition_message_is_shown_at_its_row(client: FlaskClient, org: Org,
                                                    conds: list[tuple[str, str]],
                                                    where: str, message: str) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(conds=conds, extra=TIERS))
    assert page.status_code == 400
    assert error_at(page, where) == message


def test_a_rule_needs_a_name_and_a_new_ones_key_is_made_from_it(client: FlaskClient,
                                                                 org: Org) -> None:
    """Saved with both names cleared, a rule took its key as its title on every page; a
    rule begun from a starting point, its name filled and its key not, said "is missing"
    naming no field: the key is made from the name as the page's script makes it."""
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(extra=[*TIERS, ("name", "  ")]))
    assert page.status_code == 400
    assert error_at(page, "name").startswith("Write the rule's name")
    assert latest_of(org, "commission.key_accounts") is None
    start = form_of(client.get("/admin/rules/new?start=fixed_bonus"))
    assert dict(start)["key"] == "" and dict(start)["name"]
    saved = client.post("/admin/rules/new", data=MultiDict(start))
    assert saved.status_code == 302, text_of(saved)[:800]
    assert latest_of(org, key_from_name(dict(start)["kind"], dict(start)["name"])) is not None
    # an existing rule's name cleared is refused too
    edit = form_of(client.get("/admin/rules/commission.tiered/edit"))
    page = client.post("/admin/rules/commission.tiered/edit",
                       data=MultiDict(replace(edit, name="", name_zh="")))
    assert page.status_code == 400 and error_at(page, "name").startswith("Write the rule's")
    zh = client.post("/admin/rules/new?lang=zh", data=new_rule(extra=[*TIERS, ("name", "")]))
    assert error_at(zh, "name").startswith("请填写规则名称")


@pytest.mark.parametrize(("kind", "name", "key"), [
    ("bonus", "Fixed bonus", "bonus.fixed_bonus"),
    ("commission", " Ünïcode  & co. ", "commission.unicode_co"),
    ("flag", "中文", ""), ("bonus", "", "")])
def test_a_key_is_made_from_the_name_as_the_editor_makes_it(kind: str, name: str, key: str
                                                            ) -> None:
    assert key_from_name(kind, name) == key


def test_top_fields_and_action_fields_show_their_message(client: FlaskClient,
                                                         org: Org) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(key="bad key!", extra=TIERS))
    assert error_at(page, "key").startswith("a key is letters, digits")
    page = client.post("/admin/rules/new", data=new_rule(action="rate", extra=[
        ("a_rate", "1"), ("a_base", "team")]))
    assert error_at(page, "action:base") == "team is text, a number is needed here"
    page = client.post("/admin/rules/new", data=new_rule(action="value", extra=[
        ("a_value", "x")]))
    assert error_at(page, "action:type").startswith("action 'value' does not fit a "
                                                    "commission rule")
    page = client.post("/admin/rules/new", data=new_rule(extra=[*TIERS, ("hold", "y")]))
    assert error_at(page, "hold") == "only a flag can hold payouts"
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("effective_from", "2026-05-01"), ("effective_to", "2026-04-01")]))
    assert error_at(page, "effective_to") == "ends before effective_from"


def test_an_unreachable_decision_row_is_shown_at_that_row(client: FlaskClient,
                                                          org: Org) -> None:
    login(client, "hr_admin")
    rows = [("r_token", "t1"), ("r_value", "A"), ("r_join", "all"),
            *cond("attainment", ">=", "1", owner="t1"),
            ("r_token", "t2"), ("r_value", "B"), ("r_join", "all"),
            *cond("attainment", ">=", "1.1", owner="t2")]
    page = client.post("/admin/rules/new", data=new_rule(
        key="rating.monthly", kind="rating", action="table", conds=[], tiers=[],
        extra=rows))
    assert error_at(page, "row:1:when") == ("this row can never match: every case it covers "
                                            "matches row 1 first")
    assert ("r_value", "B") in form_of(page)


# --- versions, scenarios, approval, try-it ----------------------------------------------


BIG_MONTH = '''Scenario: N1's big month
  Given employee "N1" at level "S1" in team "North"
  And the results for "2026-02":
    | employee | quota  | revenue_new |
    | N1       | 100000 | 150000      |
  When the compensation run for "2026-02" is made
  Then "N1" receives a "bonus.big_month" bonus of {amount} payable
'''


def big_month(client: FlaskClient) -> None:
    fields = new_rule(key="bonus.big_month", kind="bonus", action="fixed", tiers=[],
                      conds=cond("revenue_total", ">=", "100000"),
                      extra=[("a_amount", "250.00")])
    assert client.post("/admin/rules/new", data=fields).status_code == 302


def test_a_change_is_a_new_draft_and_versions_compare_side_by_side(client: FlaskClient,
                                                                   org: Org) -> None:
    login(client, "hr_admin")
    fields = form_of(client.get("/admin/rules/commission.tiered/edit"))
    assert [v for k, v in fields if k == "t_rate"] == ["3", "4", "5", "6"]  # percentages
    assert [v for k, v in fields if k == "t_from"] == ["", "80", "100", "120"]
    assert change_tier_rate(client, "commission.tiered", "7").status_code == 302
    page = client.get("/admin/rules/commission.tiered/")
    assert "Version 2 is a draft" in text_of(page) and "Version 1 is published" in text_of(page)
    assert support.ROLE_EMAILS["hr_admin"] in text_of(page)
    assert "6% from 120%" not in text_of(page) and "7% from 120%" in text_of(page)
    page = client.get("/admin/rules/commission.tiered/compare?a=1&b=2")
    changed = re.findall(r'<tr class="js-changed"><th>([^<]*)</th><td[^>]*>([^<]*)</td>'
                         r'<td[^>]*>([^<]*)</td>', page.get_data(as_text=True))
    assert changed == [("Tier 4", "120% and above: 6%", "120% and above: 7%")]
    assert 'id="diff-same-scenarios"' in page.get_data(as_text=True)
    # a new edit starts from the published version unless HR picks the draft
    assert ("t_rate", "6") in form_of(client.get("/admin/rules/commission.tiered/edit"))
    assert ("t_rate", "7") in form_of(client.get("/admin/rules/commission.tiered/edit?version=2"))
    # a draft can be discarded, once the browser asked (admin.js's data-confirm): the rule
    # is back to its published version
    html = client.get("/admin/rules/commission.tiered/").get_data(as_text=True)
    assert re.search(r'id="discard-draft" data-confirm="Discard version 2\?', html)
    client.post("/admin/rules/commission.tiered/v2/discard")
    page = client.get("/admin/rules/commission.tiered/")
    assert "Version 1" in text_of(page) and "discarded" in text_of(page)
    assert 'id="draft-state"' not in page.get_data(as_text=True)


@pytest.mark.parametrize("typed, stored", [
    ("7", "0.07"), ("7 %", "0.07"), ("7%", "0.07"), ("12.5", "0.125"), ("0.5 %", "0.005")])
def test_a_rate_is_typed_as_a_percentage(client: FlaskClient, org: Org, typed: str,
                                         stored: str) -> None:
    login(client, "hr_admin")
    fields = new_rule(key="commission.x", action="rate", tiers=[],
                      extra=[("a_rate", typed), ("a_base", "revenue_total")])
    assert client.post("/admin/rules/new", data=fields).status_code == 302
    assert definition(org, "commission.x")[1]["action"]["rate"] == stored


def test_a_rate_above_100_percent_needs_a_tick(client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    fields = new_rule(key="commission.x", action="rate", tiers=[],
                      extra=[("a_rate", "700"), ("a_base", "revenue_total")])
    page = client.post("/admin/rules/new", data=fields)
    assert page.status_code == 400
    assert error_at(page, "action:rate").startswith("700% is a rate above 100%")
    assert ("a_rate", "700") in form_of(page) and 'id="confirm_rates"' in page.get_data(
        as_text=True) and "Rates above 100% are meant" in text_of(page)
    fields.add("confirm_rates", "y")
    assert client.post("/admin/rules/new", data=fields).status_code == 302
    assert definition(org, "commission.x")[1]["action"]["rate"] == "7.00"
    page = client.post("/admin/rules/new", data=new_rule(
        key="commission.y", action="rate", tiers=[],
        extra=[("a_rate", "7 percent"), ("a_base", "revenue_total")]))
    assert error_at(page, "action:rate") == \
        "'7 percent' is not a percentage (write 7 or 7 % for 7%)"


@pytest.mark.parametrize("typed", ["1,500", "1500元", "CN¥1,500.00", "¥1500", "1500"])
def test_an_amount_is_typed_as_people_write_it(client: FlaskClient, org: Org,
                                               typed: str) -> None:
    login(client, "hr_admin")
    fields = new_rule(key="bonus.x", kind="bonus", action="fixed", tiers=[],
                      conds=cond("revenue_total", ">=", typed), extra=[("a_amount", typed)])
    assert client.post("/admin/rules/new", data=fields).status_code == 302
    doc = definition(org, "bonus.x")[1]
    assert Decimal(doc["action"]["amount"]) == Decimal(doc["when"]["all"][0]["value"]) == 1500


def test_marginal_tiers_are_chosen_in_the_editor_and_a_misfit_is_named_there(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        ("a_metric", "evaluation_score"), ("a_base", "revenue_total"), ("a_mode", "marginal")]))
    assert page.status_code == 400
    assert error_at(page, "action:mode").endswith("evaluation_score is neither")
    assert client.post("/admin/rules/new", data=new_rule(
        extra=[*TIERS, ("a_mode", "marginal")])).status_code == 302
    assert definition(org, "commission.key_accounts")[1]["action"]["mode"] == "marginal"
    fields = form_of(client.get("/admin/rules/commission.key_accounts/edit"))
    assert ("a_mode", "marginal") in fields
    page = client.get("/admin/rules/commission.key_accounts/edit?lang=zh")
    assert "分段：每一段基数按其所在档位的比例计提" in page.get_data(as_text=True)


def test_caps_and_a_floor_are_typed_as_amounts_and_a_misfit_is_named_at_its_field(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_floor", "600"), ("a_cap", "500")]))
    assert page.status_code == 400
    assert error_at(page, "action:floor") == "the floor 600 is above the cap 500"
    page = client.post("/admin/rules/new", data=new_rule(extra=[*TIERS, ("a_cap", "lots")]))
    assert error_at(page, "action:cap").startswith("'lots' is not an amount in CNY")
    assert client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_floor", "¥50"), ("a_cap", "1,500.00"), ("a_annual_cap", "12,000元")])
    ).status_code == 302
    action = definition(org, "commission.key_accounts")[1]["action"]
    assert (action["floor"], action["cap"], action["annual_cap"]) == ("50", "1500.00", "12000")
    fields = form_of(client.get("/admin/rules/commission.key_accounts/edit"))
    assert ("a_cap", "1500.00") in fields and ("a_annual_cap", "12000") in fields
    text = client.get("/admin/rules/commission.key_accounts/edit?lang=zh").get_data(
        as_text=True)
    assert "每人年度上限" in text and "每期保底" in text


@pytest.mark.parametrize("typed", ["1,50", "1.500,00", "$1,500", "15 00", "1e3"])
def test_an_amount_in_another_form_is_refused_at_its_field(client: FlaskClient, org: Org,
                                                           typed: str) -> None:
    login(client, "hr_admin")
    fields = new_rule(key="bonus.x", kind="bonus", action="fixed", tiers=[],
                      extra=[("a_amount", typed)])
    page = client.post("/admin/rules/new", data=fields)
    assert page.status_code == 400
    assert error_at(page, "action:amount").startswith(f"{typed!r} is not an amount in CNY")


def test_a_rule_is_duplicated_with_its_scenarios_and_starting_points_are_offered(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    page = client.get("/admin/rules/new?from=commission.tiered")
    fields = replace(form_of(page), key="commission.tiered_copy")
    assert ("name", "Copy of Tiered commission") in fields
    assert client.post("/admin/rules/new", data=MultiDict(fields)).status_code == 302
    with org.session() as s:
        copy = s.scalar(select(Rule).where(Rule.key == "commission.tiered_copy"))
        assert copy.status == "draft" and '"commission.tiered_copy" commission' in copy.scenarios
    listing = client.get("/admin/rules/").get_data(as_text=True)
    for start in ("tiered_commission", "fixed_bonus", "per_unit_bonus", "rating_table", "flag"):
        assert f'id="start-{start}"' in listing
        page = client.get(f"/admin/rules/new?start={start}")
        fields = replace(form_of(page), key=f"x.{start}")
        assert client.post("/admin/rules/new", data=MultiDict(fields)).status_code == 302, \
            text_of(client.post("/admin/rules/new", data=MultiDict(fields)))[:1500]


def test_a_copy_or_a_starting_point_fills_each_name_in_its_own_language(
        client: FlaskClient) -> None:
    """On a Chinese page as on an English one, the English name field gets English and the
    Chinese name field Chinese (the English name had been given the page's language)."""
    login(client, "hr_admin")
    for lang in ("en", "zh"):
        fields = dict(form_of(client.get(f"/admin/rules/new?start=fixed_bonus&lang={lang}")))
        assert (fields["name"], fields["name_zh"]) == ("Fixed bonus", "固定奖金")
        fields = dict(form_of(client.get(f"/admin/rules/new?from=commission.tiered&lang={lang}")))
        assert fields["name"] == "Copy of Tiered commission"
        assert fields["name_zh"].endswith("（副本）")


def change_tier_rate(client: FlaskClient, key: str, rate: str, version: int | None = None
                     ) -> Any:
    path = f"/admin/rules/{key}/edit" + (f"?version={version}" if version else "")
    fields = form_of(client.get(path))
    rates = [i for i, (k, _) in enumerate(fields) if k == "t_rate"]
    fields[rates[-1]] = ("t_rate", rate)
    return client.post(f"/admin/rules/{key}/edit", data=MultiDict(fields))


def checked_boxes(page: Any, name: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(
        rf'name="{name}" value="([^"]*)" checked', page.get_data(as_text=True))]


@pytest.mark.slow
def test_raising_the_top_rate_from_6_to_7_percent_in_the_back_office(
        client: FlaskClient, org: Org, hr2: str) -> None:
    """One edit, one acceptance of the new figures, one approval by a second HR admin; the
    next run pays 7%."""
    with org.session() as s:  # the month was run and approved at 6%
        run_id = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run.id
        approve_run(s, run_id, hr2)
        s.commit()
    login(client, "hr_admin")
    assert change_tier_rate(client, "commission.tiered", "7").status_code == 302
    # the impact can be seen before asking
    review = text_of(client.get("/admin/rules/commission.tiered/v2/review"))
    assert "Nobody has asked to publish this draft yet" in review
    assert "publishing not asked for." in review and "asked by -" not in review
    assert "2 of 4 employees change" in review and "+CN¥1,844.57" in review
    page = client.post("/admin/rules/commission.tiered/v2/request")
    assert page.status_code == 400
    text = text_of(page)
    assert "Not sent for approval: a scenario fails" in text
    assert "Expected: E1 commission.tiered commission 7200.00 CNY payable" in text
    assert "Found: E1 commission.tiered commission 8400.00 CNY payable" in text
    accept = checked_boxes(page, "accept")
    assert len(accept) == 4  # two examples of the outline, two scenarios
    page = client.post("/admin/rules/commission.tiered/v2/accept",
                       data=MultiDict([*(("accept", v) for v in accept), ("then", "request")]),
                       follow_redirects=True)
    assert "Sent for approval" in text_of(page), text_of(page)[-3000:]
    with org.session() as s:
        draft = s.scalar(select(Rule).where(Rule.key == "commission.tiered", Rule.version == 2))
        assert "| exactly 120% | 120000 | 0 | 8400.00 |" in re.sub(r" +", " ", draft.scenarios)
    client.post("/logout")
    login(client, hr2)
    review = client.get("/admin/rules/commission.tiered/v2/review")
    body = review.get_data(as_text=True)
    assert body.index('id="impact"') < body.index('id="approve"')
    changed = text_of(review)
    assert "8400.00" in changed and "7200.00" in changed  # the scenarios' changes
    page = client.post("/admin/rules/commission.tiered/v2/approve", follow_redirects=True)
    assert "Published version 2" in text_of(page)
    with org.session() as s:
        run = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run
        approve_run(s, run.id, hr2)
        s.commit()
        paid = {o["employee_code"]: o["amount"] for o in outcome_rows(s, run)
                if o["rule_key"] == "commission.tiered"}
    assert paid["N1"] == "8641.96"  # 7% of 123456.50


@pytest.mark.slow
def test_hr_scenarios_gate_the_request_and_another_hr_admin_approves(
        client: FlaskClient, org: Org, hr2: str) -> None:
    with org.session() as s:
        run_id = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run.id
        approve_run(s, run_id, hr2)
        s.commit()
    login(client, "hr_admin")
    big_month(client)
    # no scenario: no publishing
    page = client.post("/admin/rules/bonus.big_month/v1/request")
    assert page.status_code == 400 and "this version has no scenario" in text_of(page)
    page = client.post("/admin/rules/bonus.big_month/v1/scenarios",
                       data={"text": BIG_MONTH.format(amount="300.00"), "save_text": "1",
                             "run": "1"})
    assert "Expected: N1 bonus.big_month bonus 300.00 CNY payable" in text_of(page)
    assert "Found: N1 bonus.big_month bonus 250.00 CNY payable" in text_of(page)
    assert client.post("/admin/rules/bonus.big_month/v1/request").status_code == 400
    # the expected amount is a field of the scenario's form
    fields = form_of_id(client.get("/admin/rules/bonus.big_month/v1/scenarios"),
                        "scenario-form")
    assert ("s0.t3.f.amount", "300.00") in fields and ("s0.t1.r1.c2", "150000") in fields
    fields = replace(fields, **{"s0.t3.f.amount": "250.00"}) + [("done", "1")]
    assert client.post("/admin/rules/bonus.big_month/v1/scenarios",
                       data=MultiDict(fields)).status_code == 302
    page = client.post("/admin/rules/bonus.big_month/v1/request", follow_redirects=True)
    assert "Sent for approval: 1 scenarios passed." in text_of(page)
    # the requester sees the review but cannot approve
    review = client.get("/admin/rules/bonus.big_month/v1/review?period=2026-01")
    assert 'id="cannot-approve"' in review.get_data(as_text=True)
    assert "Nothing is published yet" in text_of(review)
    page = client.post("/admin/rules/bonus.big_month/v1/approve", follow_redirects=True)
    assert "another hr_admin approves it" in text_of(page)
    client.post("/logout")
    login(client, hr2)
    review = client.get("/admin/rules/bonus.big_month/v1/review?period=2026-01")
    text = html.unescape(text_of(review))
    # N1 has 123456.50 of revenue: the only one above 100000
    assert "1 of 4 employees change" in text and "( +CN¥250.00 )" in text
    assert "bonus CN¥0.00 CN¥250.00 +CN¥250.00 commission CN¥18,211.96 CN¥18,211.96 " \
        "+CN¥0.00" in text
    assert "Key accounts bonus.big_month : nothing → CN¥250.00" in text  # named, key beside
    page = client.post("/admin/rules/bonus.big_month/v1/approve", follow_redirects=True)
    assert "Published version 1. 1 scenarios passed." in text_of(page)
    with org.session() as s:
        rule = s.scalar(select(Rule).where(Rule.key == "bonus.big_month"))
        assert (rule.status, rule.created_by, rule.publish_requested_by, rule.approved_by) == (
            "published", support.ROLE_EMAILS["hr_admin"], support.ROLE_EMAILS["hr_admin"],
            hr2)


def test_try_it_shows_the_outcome_and_makes_a_first_scenario(client: FlaskClient,
                                                             org: Org) -> None:
    login(client, "hr_admin")
    change_tier_rate(client, "commission.tiered", "7")
    page = client.get("/admin/rules/commission.tiered/v2/try?period=2026-01&employee=N1")
    text = text_of(page)
    assert "commission.tiered commission CN¥8,641.96 payable" in text
    assert "tier 4" in text and "so 7% of Total revenue" in text
    page = client.get("/admin/rules/commission.tiered/v2/try?period=2026-01&employee=NOPE")
    assert "employee NOPE has no results in 2026-01" in text_of(page)
    # a period of another kind: the kind in the reader's words ("month" had stayed English)
    page = client.get("/admin/rules/commission.tiered/v2/try?period=2026-Q1&employee=N1")
    assert "choose a month period, not 2026-Q1" in text_of(page)
    page = client.get("/admin/rules/commission.tiered/v2/try?period=2026-Q1&employee=N1&lang=zh")
    assert "适用于月度期间；请选择月度期间，而不是 2026-Q1" in text_of(page)
    client.get("/admin/rules/?lang=en")
    big_month(client)
    page = client.post("/admin/rules/bonus.big_month/v1/from-try",
                       data={"period": "2026-01", "employee": "N1"})
    assert "all pass" in text_of(page) and "N1 in 2026-01" in text_of(page)
    page = client.post("/admin/rules/bonus.big_month/v1/request", follow_redirects=True)
    assert "Sent for approval: 1 scenarios passed." in text_of(page)


def test_who_may_read_and_change_policies(client: FlaskClient, org: Org) -> None:
    login(client, "auditor")
    assert client.get("/admin/rules/").status_code == 200
    assert client.get("/admin/rules/commission.tiered/").status_code == 200
    assert client.get("/admin/rules/new").status_code == 403
    assert client.post("/admin/rules/commission.tiered/v1/request").status_code == 403
    client.post("/logout")
    login(client, "sales_manager")
    assert client.get("/admin/rules/").status_code == 403


def test_a_new_metric_is_offered_in_the_editor_at_once(client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    created = client.post("/admin/metric/new/", data={
        "key": "market_penetration", "label_en": "Market penetration", "label_zh": "",
        "type": "ratio", "rollup": "mean", "formula": "", "description": ""})
    assert created.status_code == 302
    page = client.get("/admin/rules/new")
    assert 'value="market_penetration" data-type="ratio" data-group="metric"' in \
        page.get_data(as_text=True)
    fields = new_rule(key="bonus.penetration", kind="bonus", action="fixed", tiers=[],
                      conds=cond("market_penetration", ">=", "0.3"),
                      extra=[("a_amount", "100")])
    assert client.post("/admin/rules/new", data=fields).status_code == 302


def test_prorate_is_a_box_in_the_editor_and_stays_ticked(client: FlaskClient, org: Org
                                                          ) -> None:
    login(client, "hr_admin")
    assert client.post("/admin/rules/new", data=new_rule(
        extra=[*TIERS, ("a_prorate", "true")])).status_code == 302
    assert definition(org, "commission.key_accounts")[1]["action"]["prorate"] is True
    page = client.get("/admin/rules/commission.key_accounts/edit").get_data(as_text=True)
    assert re.search(r'name="a_prorate" value="true" id="a_prorate" checked', page)
    text = client.get("/admin/rules/commission.key_accounts/edit?lang=zh").get_data(
        as_text=True)
    assert "按在职天数折算：按员工本期在职天数占比发放" in text
    assert client.post("/admin/rules/commission.key_accounts/edit", data=new_rule(
        extra=TIERS)).status_code == 302  # the box left empty: not prorated
    assert "prorate" not in definition(org, "commission.key_accounts")[1]["action"]


def test_a_draw_is_written_in_the_editor_and_its_misfits_are_named_at_their_fields(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    draw = [("a_amount", "3,000"), ("a_periods", "3"), ("a_recoverable", "true")]
    page = client.post("/admin/rules/new", data=new_rule(action="draw", tiers=[],
                                                         extra=draw))
    assert page.status_code == 400
    assert error_at(page, "action:recovery_share").startswith(
        "a recoverable draw needs the share of later commissions")
    page = client.post("/admin/rules/new", data=new_rule(action="draw", tiers=[], extra=[
        *draw, ("a_recovery_share", "50")]))
    assert error_at(page, "effective_from").startswith("a draw counts its periods from its "
                                                      "first day")
    assert client.post("/admin/rules/new", data=new_rule(action="draw", tiers=[], extra=[
        *draw, ("a_recovery_share", "50"), ("effective_from", "2026-01-01")])
    ).status_code == 302
    action = definition(org, "commission.key_accounts")[1]["action"]
    assert (action["type"], action["amount"], action["periods"], action["recoverable"],
            Decimal(action["recovery_share"])) == ("draw", "3000", 3, True, Decimal("0.5"))
    fields = form_of(client.get("/admin/rules/commission.key_accounts/edit"))
    assert ("a_recovery_share", "50") in fields and ("a_periods", "3") in fields
    text = client.get("/admin/rules/commission.key_accounts/?lang=zh").get_data(as_text=True)
    assert "预支保底" in text and "以后各期提成的 50% 用于收回" in text


def test_a_clawback_is_three_fields_in_the_editor_and_a_misfit_is_named_there(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_clawback_below", "50"), ("a_clawback_within", "30")]))
    assert page.status_code == 400
    assert error_at(page, "action:clawback_within") == \
        "a clawback looks back a whole number of periods, 1 to 24"
    assert client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_clawback_below", "50%"), ("a_clawback_within", "3"),
        ("a_clawback_share", "80")])).status_code == 302
    claw = definition(org, "commission.key_accounts")[1]["action"]["clawback"]
    assert (Decimal(claw["below"]), claw["within"], Decimal(claw["share"])) == (
        Decimal("0.5"), 3, Decimal("0.8"))
    fields = form_of(client.get("/admin/rules/commission.key_accounts/edit"))
    assert ("a_clawback_below", "50") in fields and ("a_clawback_share", "80") in fields
    text = client.get("/admin/rules/commission.key_accounts/edit?lang=zh").get_data(
        as_text=True)
    assert "回款率低于以下比例时追回" in text


def test_the_editors_refusals_of_limits_and_clawbacks_read_in_chinese(client: FlaskClient,
                                                                      org: Org) -> None:
    """An empty field said "'None' is not a number" (the periods of a clawback) or "'' is
    not a number" (a tier's rate), and the limits' and clawbacks' refusals stayed English
    on Chinese pages; the shares are said in percent, as the form asks for them."""
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_clawback_below", "101"), ("a_clawback_within", "")]))
    assert error_at(page, "action:clawback_within") == "is missing"
    page = client.post("/admin/rules/new", data=new_rule(extra=TIERS,
                                                         tiers=[("", "", "")]))
    assert "not a number" not in text_of(page)
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_clawback_below", "50"), ("a_clawback_within", "3"),
        ("a_clawback_share", "150")]))
    assert error_at(page, "action:clawback_share") == \
        "the share clawed back is above 0% and at most 100% (at most 1 in a rule file)"
    zh = client.post("/admin/rules/new?lang=zh", data=new_rule(extra=[
        *TIERS, ("a_floor", "500"), ("a_cap", "100")]))
    assert error_at(zh, "action:floor") == "保底 500 高于上限 100"
    zh = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_clawback_below", "50"), ("a_clawback_within", "1.5")]))
    assert error_at(zh, "action:clawback_within") == "追回回溯的期数须为 1 到 24 之间的整数"
    zh = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_clawback_below", "50"), ("a_clawback_within", "")]))
    assert error_at(zh, "action:clawback_within") == "缺失"


def test_a_part_on_signing_is_two_fields_in_the_editor(client: FlaskClient, org: Org
                                                       ) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_on_signing_share", "100"), ("a_on_signing_release_at", "90")]))
    assert error_at(page, "action:on_signing_share").startswith(
        "the share paid on signing is above 0% and below 100%")
    assert client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("a_on_signing_share", "60"), ("a_on_signing_release_at", "90%")])
    ).status_code == 302
    part = definition(org, "commission.key_accounts")[1]["action"]["on_signing"]
    assert (Decimal(part["share"]), Decimal(part["release_at"])) == (Decimal("0.6"),
                                                                     Decimal("0.9"))
    fields = form_of(client.get("/admin/rules/commission.key_accounts/edit"))
    assert ("a_on_signing_share", "60") in fields
    assert "签约时发放比例" in client.get(
        "/admin/rules/commission.key_accounts/edit?lang=zh").get_data(as_text=True)
def test_the_rule_validations_refusals_read_in_chinese_at_their_field(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    client.get("/admin/?lang=zh")
    page = client.post("/admin/rules/new", data=new_rule(extra=[*TIERS, ("hold", "y")]))
    assert error_at(page, "hold") == "只有合规标记可以暂扣奖金"
    page = client.post("/admin/rules/new", data=new_rule(extra=[
        *TIERS, ("effective_from", "2026-05-01"), ("effective_to", "2026-04-01")]))
    assert error_at(page, "effective_to") == "结束日期早于 effective_from"


def test_a_refused_value_is_said_in_the_readers_language_and_the_banner_has_no_path(
        client: FlaskClient, org: Org) -> None:
    """A refused amount reads in Chinese beside its field; the banner above the form says
    the reason, not the rule document's path to the field (when.all[1].value)."""
    login(client, "hr_admin")
    client.get("/admin/?lang=zh")
    fields = new_rule(key="bonus.x", kind="bonus", action="fixed", tiers=[],
                      conds=cond("leads", ">", "lots"), extra=[("a_amount", "1,2x")])
    page = client.post("/admin/rules/new", data=fields)
    assert error_at(page, "action:amount") == \
        "'1,2x' 不是 CNY 金额（例如写作 1500、1,500.00 或 1500元）"
    page = client.post("/admin/rules/new", data=MultiDict(
        replace(list(fields.items(multi=True)), a_amount="1,500")))
    assert error_at(page, "cond:0:value") == "'lots' 不是数字"
    banner = re.search(r'id="form-error">(.*?)</div>', page.get_data(as_text=True), re.S)[1]
    assert "'lots' 不是数字" in html.unescape(banner) and "when.all" not in banner


def test_scenarios_that_do_not_read_are_refused_in_the_readers_language(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    big_month(client)
    text = BIG_MONTH.format(amount="300.00") + "\n    And nonsense step here\n"
    said = {}
    for lang in ("en", "zh"):
        client.get(f"/admin/?lang={lang}")
        page = client.post("/admin/rules/bonus.big_month/v1/scenarios",
                           data={"text": text, "save_text": "1"})
        said[lang] = text_of(page)
        assert "nonsense step here" in page.get_data(as_text=True)  # the text is kept
    assert "scenarios of bonus.big_month: line" in said["en"]
    assert "no step has the words &#39;nonsense step here&#39;" in said["en"]
    assert "bonus.big_month 的场景，第" in said["zh"] and "no step has" not in said["zh"]


@pytest.mark.slow
def test_accepting_new_figures_redirects_so_a_reload_does_not_post_it_again(
        client: FlaskClient, org: Org) -> None:
    """POST, redirect, GET: the gate's page after accepting is a page of its own (its
    scenarios run again), the message a flash; a refused request after it redirects too."""
    login(client, "hr_admin")
    assert change_tier_rate(client, "commission.tiered", "7").status_code == 302
    gate = client.post("/admin/rules/commission.tiered/v2/run")
    accept = checked_boxes(gate, "accept")
    assert len(accept) == 4
    done = client.post("/admin/rules/commission.tiered/v2/accept",
                       data=MultiDict([("accept", accept[0])]))
    assert done.status_code == 302
    assert done.headers["Location"].endswith(
        "/admin/rules/commission.tiered/?version=2&check=1")
    page = client.get(done.headers["Location"])
    text = text_of(page)
    assert page.status_code == 200
    assert "1 new figures taken into the scenarios of version 2." in text
    assert len(checked_boxes(page, "accept")) == 3  # the gate ran again: three still fail
    assert "1 new figures taken" not in text_of(client.get(done.headers["Location"]))
    # accepting some and asking for publishing: refused, after a redirect all the same
    left = checked_boxes(page, "accept")
    refused = client.post("/admin/rules/commission.tiered/v2/accept",
                          data=MultiDict([("accept", left[0]), ("then", "request")]))
    assert refused.status_code == 302 and refused.headers["Location"].endswith("check=1")
    page = client.get(refused.headers["Location"])
    assert "Not sent for approval: a scenario fails" in text_of(page)
    assert len(checked_boxes(page, "accept")) == 2


def test_try_it_and_the_impact_preview_name_rules_in_the_readers_language(
        client: FlaskClient, org: Org, hr2: str) -> None:
    """Try-it's outcomes and the impact preview's changes read a rule's name in the page's
    language, the key beside it in small (they showed the key alone): the version tried
    or reviewed by its own name (a draft renamed), the others by their published names."""
    with org.session() as s:  # the month was run and approved: the preview compares with it
        run_id = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run.id
        approve_run(s, run_id, hr2)
        s.commit()
    login(client, "hr_admin")
    key, renamed = "commission.tiered", {"en": "Tiered commission 2027", "zh": "阶梯提成 2027"}
    fields = form_of(client.get(f"/admin/rules/{key}/edit"))
    rates = [i for i, (k, _) in enumerate(fields) if k == "t_rate"]
    fields[rates[-1]] = ("t_rate", "7")
    fields = replace(fields, name=renamed["en"], name_zh=renamed["zh"])
    assert client.post(f"/admin/rules/{key}/edit", data=MultiDict(fields)).status_code == 302
    for lang in ("en", "zh"):
        page = client.get(f"/admin/rules/{key}/v2/try?period=2026-01&employee=N1&lang={lang}")
        html_ = page.get_data(as_text=True)
        rows = re.findall(r'<tr class="[^"]*"><td>(.*?)</td>', html_[html_.index('id="tried"'):])
        keys = {k for row in rows for k in re.findall(r"<code>([^<]*)</code>", row)}
        assert key in keys and len(keys) == len(rows) > 1, (lang, rows)
        with org.session() as s:
            names = dict(support.rule_names_stored(s, keys - {key}, lang), **{key: renamed[lang]})
        for row in rows:
            (shown_key,), shown = re.findall(r"<code>([^<]*)</code>", row), \
                support.read_as_shown(row)
            assert names[shown_key] in shown and shown_key not in shown, (lang, row)
        review = client.get(f"/admin/rules/{key}/v2/review?period=2026-01&lang={lang}")
        changes = re.findall(r'<td class="small">(.*?)</td></tr>',
                             review.get_data(as_text=True))
        assert changes, lang
        for cell in changes:
            assert f"<code>{key}</code>" in cell, (lang, cell)
            assert support.read_as_shown(cell).strip().startswith(f"{renamed[lang]} :"), \
                (lang, cell)
