"""What the views show and keep: audit trail, formulas, users, money, languages, speed."""

from __future__ import annotations

import re
from html import unescape

import flask
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from engine import db, periods
from engine.errors import ImportFileError
from engine.imports import import_results
from engine.models import STAFF_ROLES as ROLES
from engine.models import AuditLog, Employee, Level, Metric, Period, ResultRow, Team, User
from tests.stored import row_form

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

Org = support.Org
login = support.login
text_of = support.text_of
count = support.count
pytest_plugins = [support.__name__]


def _last_audit(org: Org, entity: str) -> AuditLog:
    with org.session() as s:
        return s.scalars(select(AuditLog).where(AuditLog.entity == entity)
                         .order_by(AuditLog.id.desc()).limit(1)).one()


def test_back_office_changes_are_audited_with_who_and_before_after(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    form = {"name": "West", "region": "Coast", "stage": "startup"}
    assert client.post("/admin/team/new/", data=form).status_code == 302
    created = _last_audit(org, "team")
    assert (created.actor, created.action) == ("hr@example.com", "create")
    assert created.after["name"] == "West" and created.before is None

    team_id = int(created.entity_id)
    form["region"] = "Mountains"
    assert client.post(f"/admin/team/edit/?id={team_id}", data=form).status_code == 302
    updated = _last_audit(org, "team")
    assert (updated.actor, updated.action) == ("hr@example.com", "update")
    assert updated.before["region"] == "Coast" and updated.after["region"] == "Mountains"

    assert client.post("/admin/team/delete/", data={"id": str(team_id)}).status_code == 302
    deleted = _last_audit(org, "team")
    assert (deleted.actor, deleted.action) == ("hr@example.com", "delete")
    assert deleted.before["name"] == "West" and deleted.after is None

    # The audit log shows it as a readable table, never as raw JSON.
    login(client, "auditor")
    page = client.get(f"/admin/auditlog/details/?id={updated.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Mountains" in html and "laurel-kv" in html
    assert '{"' not in text_of(page) and "&#34;region&#34;" not in html
    listing = text_of(client.get("/admin/auditlog/"))
    assert "Coast" in listing and '{"' not in listing


def test_an_empty_value_inside_an_audit_entry_reads_as_a_dash(client: FlaskClient,
                                                              org: Org) -> None:
    """An imported employee without a manager: the entry keeps every field, and an empty
    one reads as a dash, not as Python's None."""
    import io

    login(client, "hr_admin")
    client.post("/admin/imports/", data={"kind": "employees", "file": (io.BytesIO(
        b"code,name,team,level,manager_code\nZ1,Zed,North,S1,\n"), "z.csv")},
        content_type="multipart/form-data")
    entry = _last_audit(org, "employee")
    login(client, "auditor")
    for page in (client.get(f"/admin/auditlog/details/?id={entry.id}"),
                 client.get("/admin/auditlog/")):
        text = text_of(page)
        assert "Zed" in text and "None" not in text


def _import_employees(client: FlaskClient, count: int, prefix: str) -> None:
    import io

    rows = "".join(f"{prefix}{i:05d},Person {prefix}{i:05d},North,S1,\n"
                   for i in range(count))
    answer = client.post("/admin/imports/", data={"kind": "employees", "file": (io.BytesIO(
        ("code,name,team,level,manager_code\n" + rows).encode()), f"{prefix}.csv")},
        content_type="multipart/form-data")
    assert answer.status_code in (200, 302)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_lists_of_audit_entries_do_not_spell_out_a_large_import(
        client: FlaskClient, org: Org, lang: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import keeps every employee in its audit entry (125 MB for 1,000,000): the home
    page and the audit log list say how large its details are, and read only the small
    entries; a smaller one shows its first items and how many more. The entry's own page
    shows everything. (PostgreSQL measures an entry as it keeps it, compressed: the limit
    is lowered so that 1,000 employees pass it there too.)"""
    from admin import views
    from admin.views import ITEMS_SHOWN

    monkeypatch.setattr(views, "LISTED_SNAPSHOTS", 4096)
    LISTED_SNAPSHOTS = views.LISTED_SNAPSHOTS
    login(client, "hr_admin")
    _import_employees(client, 1000, "BIG")
    big = _last_audit(org, "employee")
    with org.session() as s:
        size = s.scalar(select(AuditLog.snapshots_size(s.get_bind().dialect.name))
                        .where(AuditLog.id == big.id))
    assert size > LISTED_SNAPSHOTS
    note = {"en": "of details: open the entry to read them", "zh": "请打开该条记录查看"}[lang]
    home = text_of(client.get(f"/admin/?lang={lang}"))
    assert note in home and "Person BIG00999" not in home
    login(client, "auditor")
    listing = text_of(client.get(f"/admin/auditlog/?lang={lang}"))
    assert note in listing and "Person BIG00999" not in listing
    details = text_of(client.get(f"/admin/auditlog/details/?id={big.id}&lang={lang}"))
    assert "Person BIG00999" in details

    login(client, "hr_admin")
    _import_employees(client, ITEMS_SHOWN + 5, "SML")
    home = text_of(client.get(f"/admin/?lang={lang}"))
    more = {"en": "5 more", "zh": "另有 5 项"}[lang]
    assert "Person SML00000" in home and more in home
    assert f"Person SML{ITEMS_SHOWN:05d}" not in home


def test_changes_name_each_field_in_the_page_language(client: FlaskClient, org: Org) -> None:
    """The home page's latest changes and the audit log name a stored field in words (a
    run's results version, the first and last flag it opened), never as the database keeps
    it (results_version, first_id), in English and in Chinese."""
    with org.session() as s:
        db.audit(s, "run", "run", 7, actor="analyst@example.com", after={
            "period": "2026-01", "results_version": 3, "locked_by": "analyst@example.com",
            "period_kind": "quarter",
            "flags": {"opened": {"count": 2, "first_id": 5, "last_id": 6}}})
        s.commit()
    entry = _last_audit(org, "run")
    stored = ("results_version", "locked_by", "first_id", "last_id", "period_kind")
    words = {"en": ("Results version", "Locked by", "Flags", "first", "last", "quarter"),
             "zh": ("业绩数据版本", "锁定人", "标记", "首个编号", "末个编号", "新开", "季度")}
    for role in ("hr_admin", "auditor"):
        login(client, role)
        for lang, said in words.items():
            for path in ("/admin/", "/admin/auditlog/",
                         f"/admin/auditlog/details/?id={entry.id}"):
                text = text_of(client.get(f"{path}{'&' if '?' in path else '?'}lang={lang}"))
                assert all(word in text for word in said), (role, lang, path)
                assert not [key for key in stored if key in text], (role, lang, path)


def test_every_audited_step_reads_in_the_page_language(client: FlaskClient, org: Org) -> None:
    """A draft discarded or sent for approval, a candidate's step and an employee's dated
    assignment are named in words in the audit log and on the home page, in Chinese too
    (the action column showed discard, request, nominated; the record employee_assignment)."""
    steps = [("discard", "rule"), ("request", "rule"), ("nominated", "candidate"),
             ("accepted", "candidate"), ("declined", "candidate"),
             ("create", "employee_assignment")]
    with org.session() as s:
        for action, entity in steps:
            db.audit(s, action, entity, 1, summary="-", actor="hr@example.com")
        s.commit()
    raw = re.compile(r"\b(discard|request|nominated|accepted|declined|employee_assignment)\b")
    login(client, "hr_admin")
    for path in ("/admin/", "/admin/auditlog/"):
        zh = text_of(client.get(f"{path}?lang=zh"))
        assert raw.findall(zh) == [], path
        assert all(word in zh for word in ("放弃", "申请发布", "已提名", "已录取", "未录取",
                                           "员工任职")), path
        en = text_of(client.get(f"{path}?lang=en"))
        assert "request publishing" in en and "Employee assignment" in en, path


def test_a_status_reads_in_the_words_of_its_own_pages(app: Flask, client: FlaskClient,
                                                      org: Org) -> None:
    """A period's, a flag's, a run's and a rule's status changes read in the audit log and
    on the home page as the period list, the queue, the runs and the policies say them
    (an open period read 未结 there and 开放 on the home page; an open flag 未结, not the
    queue's 待处理; a discarded run or draft 已放弃, not 已废弃); the engine's wording
    says a period's and a run's the same way."""
    from admin.compliance_views import FLAG_STATUS_NAMES
    from admin.rules_views import STATUS_NAMES as RULE_STATUS_NAMES
    from admin.runs_views import STATUS_NAMES as RUN_STATUS_NAMES
    from admin.views import CHOICE_NAMES
    from engine.wording import term

    changes = [("period", "open", "locked"), ("flag", "open", "confirmed"),
               ("run", "calculated", "discarded"), ("rule", "draft", "discarded")]
    with org.session() as s:
        for entity, was, now in changes:
            db.audit(s, "update", entity, 1, before={"status": was}, after={"status": now},
                     actor="hr@example.com")
        s.commit()
    pages = {"period": CHOICE_NAMES, "flag": FLAG_STATUS_NAMES, "run": RUN_STATUS_NAMES,
             "rule": RULE_STATUS_NAMES}
    for lang in ("en", "zh"):
        with app.test_request_context(f"/?lang={lang}"):
            flask.session["lang"] = lang
            said = [f"{pages[e][was]} → {pages[e][now]}" for e, was, now in changes]
            assert term("open", lang) == str(CHOICE_NAMES["open"]), lang
            assert term("discarded", lang) == str(RUN_STATUS_NAMES["discarded"]) \
                == str(RULE_STATUS_NAMES["discarded"]), lang
            period_word = str(CHOICE_NAMES["open"])
        for role in ("hr_admin", "auditor"):
            login(client, role)
            for path in ("/admin/", "/admin/auditlog/"):
                text = unescape(text_of(client.get(f"{path}?lang={lang}")))
                assert all(words in text for words in said), (role, lang, path)
        assert period_word in text_of(client.get(f"/admin/period/?lang={lang}")), lang
    assert not {"未结", "已放弃"} & set(re.findall(r"未结|已放弃", text_of(
        client.get("/admin/auditlog/?lang=zh"))))


def test_audited_record_ids_read_as_the_records_names(client: FlaskClient, org: Org) -> None:
    """An employee's team, level and manager read by name in the audit log, the home page
    and the entry's page (it said 团队（编号）: 1 → 3), in both languages; an id no record has
    any more stays, marked deleted. A page of 20 entries reads each kind of record once."""
    with org.session() as s:
        levels = dict(s.execute(select(Level.code, Level.id)).all())
        for _ in range(20):
            db.audit(s, "update", "employee", org.employees["N2"], actor="hr@example.com",
                     before={"team_id": org.north, "level_id": levels["S1"],
                             "manager_id": org.employees["N1"]},
                     after={"team_id": org.south, "level_id": levels["S2"],
                            "manager_id": org.employees["S1"]})
        db.audit(s, "update", "employee", org.employees["S2"], actor="hr@example.com",
                 before={"team_id": org.south}, after={"team_id": 999999})
        s.commit()
    entry = _last_audit(org, "employee")
    said = ("North → South", "S1 → S2", "N1 Nora North → S1 Sam South")
    words = {"en": ("Team", "Level", "Manager", "999999 (deleted)"),
             "zh": ("团队", "职级", "经理", "999999 （已删除）")}
    login(client, "hr_admin")
    for lang in ("en", "zh"):
        home = unescape(text_of(client.get(f"/admin/?lang={lang}")))
        assert all(w in home for w in (*said, *words[lang])), lang
        assert "(id)" not in home and "（编号）" not in home, lang
        details = unescape(text_of(client.get(
            f"/admin/auditlog/details/?id={entry.id - 1}&lang={lang}")))
        assert all(w in details for w in ("North", "South", "S1 Sam South")), lang
    statements: list[str] = []
    engine = db.get_engine(org.url)

    def _count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        statements.append(statement)

    login(client, "auditor")
    event.listen(engine, "before_cursor_execute", _count)
    try:
        listing = client.get("/admin/auditlog/?lang=zh")
    finally:
        event.remove(engine, "before_cursor_execute", _count)
    text = unescape(text_of(listing))
    assert all(w in text for w in (*said, *words["zh"])) and "（编号）" not in text
    for table in ("team", "level", "employee"):
        named = [q for q in statements if re.search(rf"FROM {table}\s+WHERE {table}.id IN", q)]
        assert len(named) == 1, (table, named)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_home_page_gives_a_large_tables_rows_as_estimated(
        client: FlaskClient, org: Org, lang: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past bulk.COUNTED_EXACTLY rows PostgreSQL's estimate stands for a count (counting
    3,000,000 rows of results took a home page 150 to 250 ms), and says so; SQLite counts.
    The limit is lowered here to the test's few rows."""
    from sqlalchemy import func, text

    from engine import bulk

    with org.session() as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres:
            s.execute(text("ANALYZE employee"))
            s.commit()
        employees = s.scalar(select(func.count()).select_from(Employee))
    monkeypatch.setattr(bulk, "COUNTED_EXACTLY", 0)
    login(client, "hr_admin")
    home = text_of(client.get(f"/admin/?lang={lang}"))
    about = {"en": f"about {employees:,}", "zh": f"约 {employees:,}"}[lang]
    assert (about in home) == postgres
    if not postgres:
        assert f"Employees {employees:,}" in home or f"员工 {employees:,}" in home
    login(client, "sales_manager")  # a team's rows: counted
    assert "about" not in text_of(client.get("/admin/?lang=en"))


def test_a_hand_edited_result_is_audited_and_locked_periods_refuse(
        client: FlaskClient, org: Org) -> None:
    login(client, "comp_analyst")
    with org.session() as s:
        row = s.scalars(select(ResultRow).where(
            ResultRow.employee_id == org.employees["N2"]).limit(1)).one()
        rid, pid = row.id, row.period_id
        form = row_form(s, row, visits="4242")
    assert client.post(f"/admin/result/edit/?id={rid}", data=form).status_code == 302
    entry = _last_audit(org, "result")
    assert entry.actor == "analyst@example.com" and entry.action == "update"
    assert entry.after["values"]["visits"] == "4242"
    assert entry.before["values"].get("visits") != "4242"

    with org.session() as s:
        s.get(Period, pid).status = "locked"
        s.commit()
    visits = next(k for k, v in form.items() if v == "4242")
    form[visits] = "1"
    refused = client.post(f"/admin/result/edit/?id={rid}", data=form)
    assert refused.status_code == 200
    assert "is locked" in text_of(refused)
    with org.session() as s:
        assert "4242" in s.get(ResultRow, rid).values.values()


def test_a_bad_formula_is_refused_on_the_field_and_the_typed_text_kept(
        client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    form = {"key": "win_rate", "label_en": "Win rate", "label_zh": "赢单率", "type": "ratio",
            "rollup": "mean", "formula": "won_leads / nonsense_metric", "description": ""}
    response = client.post("/admin/metric/new/", data=form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "unknown metric nonsense_metric" in html
    assert "won_leads / nonsense_metric" in html and 'value="Win rate"' in html
    assert count(org, Metric, Metric.key == "win_rate") == 0

    broken = client.post("/admin/metric/new/", data={**form, "formula": "won_leads / ("})
    assert broken.status_code == 200 and "won_leads / (" in broken.get_data(as_text=True)
    assert count(org, Metric, Metric.key == "win_rate") == 0

    form["formula"] = "won_leads / leads"
    assert client.post("/admin/metric/new/", data=form).status_code == 302
    with org.session() as s:
        assert s.scalar(select(Metric.formula).where(Metric.key == "win_rate")) == \
            "won_leads / leads"


def test_hr_sets_a_metric_range_that_imports_then_keep(client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    form = {"key": "market_share", "label_en": "Market share", "label_zh": "市场份额",
            "type": "ratio", "rollup": "mean", "formula": "", "min_value": "0",
            "max_value": "2000000", "description": ""}
    refused = client.post("/admin/metric/new/", data=form)
    assert refused.status_code == 200 and "Outside the accepted range" in text_of(refused)
    refused = client.post("/admin/metric/new/", data={**form, "max_value": "-1"})
    assert "below the lowest" in text_of(refused)
    assert count(org, Metric, Metric.key == "market_share") == 0
    assert client.post("/admin/metric/new/", data={**form, "max_value": "1"}).status_code == 302
    with org.session() as s:
        with pytest.raises(ImportFileError, match=r"row 2, column market_share: '1.5' is "
                                                  r"outside 0 to 1 \(a ratio"):
            import_results(s, "r.csv", data=b"period,employee_code,market_share\n"
                                            b"2026-05,N2,1.5\n")


def test_hr_creates_a_user_who_can_log_in(client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    form = {"email": "New.Manager@Example.com", "name": "New", "password": "short",
            "role": "sales_manager", "locale": "zh", "active": "y"}
    short = client.post("/admin/user/new/", data=form)
    assert short.status_code == 200
    assert "At least 8 characters" in text_of(short)
    assert 'value="New.Manager@Example.com"' in short.get_data(as_text=True)

    form["password"] = "a-long-password"
    no_team = client.post("/admin/user/new/", data=form)
    assert "A sales manager needs a team." in text_of(no_team)
    assert count(org, User, User.email == "new.manager@example.com") == 0

    form["team"] = str(org.south)
    assert client.post("/admin/user/new/", data=form).status_code == 302
    entry = _last_audit(org, "user")
    assert entry.actor == "hr@example.com" and "password_hash" not in entry.after
    client.post("/logout")
    login(client, "new.manager@example.com", "a-long-password")
    # Their own locale is Chinese; they see the South team only.
    page = client.get("/admin/employee/")
    text = text_of(page)
    assert "员工" in text and "Sam South" in text and "Nora North" not in text


def test_a_new_users_password_is_required_and_an_edited_users_may_stay(
        client: FlaskClient, org: Org) -> None:
    """The new-user form said "Leave empty to keep the current password." of a user who
    has none, and refused an empty one in a banner, not beside the field."""
    login(client, "hr_admin")
    blank = client.get("/admin/user/new/").get_data(as_text=True)
    assert "keep the current password" not in blank
    assert "Give it to the user in person" in blank
    form = {"email": "someone@example.com", "name": "Some One", "password": "",
            "role": "auditor", "locale": "", "active": "y"}
    page = client.post("/admin/user/new/", data=form)
    assert page.status_code == 200
    assert re.search(r'is-invalid[^>]*name="password"|name="password"[^>]*is-invalid',
                     page.get_data(as_text=True))
    assert "A new user needs a password." in text_of(page)
    assert count(org, User, User.email == "someone@example.com") == 0
    with org.session() as s:
        auditor = s.scalars(select(User).where(User.role == "auditor")).first()
    edit = client.get(f"/admin/user/edit/?id={auditor.id}").get_data(as_text=True)
    assert "Leave empty to keep the current password." in edit


def test_an_error_page_offers_no_language_switch_to_whom_has_a_language_set(
        client: FlaskClient, org: Org) -> None:
    """The user's own setting wins over the switch: an error page, as every other page,
    does not offer a switch that would change nothing."""
    with org.session() as s:
        s.scalars(select(User).where(User.role == "auditor")).one().locale = "zh"
        s.commit()
    login(client, "auditor")
    for path in ("/admin/nothing-here/", "/admin/me/"):  # a 404 and a 403
        page = client.get(f"{path}?lang=en")
        assert page.status_code in (403, 404) and "返回首页" in text_of(page)
        assert 'hreflang="en"' not in page.get_data(as_text=True)
    client.post("/logout")
    login(client, "comp_analyst")  # no setting: the switch is there
    assert 'hreflang="zh"' in client.get("/admin/nothing-here/").get_data(as_text=True)


def test_amounts_carry_their_currency_and_metrics_their_label(client: FlaskClient) -> None:
    login(client, "comp_analyst")
    text = text_of(client.get("/admin/result/"))
    assert "CN¥123,456.50" in text
    assert "Revenue from new customers" in text
    assert "8%" in text  # max_discount_pct 0.08 is a ratio
    zh = text_of(client.get("/admin/result/?lang=zh"))
    assert "¥123,456.50" in zh and "新客户收入" in zh
    levels = text_of(client.get("/admin/level/"))
    assert "15%" in levels and "0.15" not in levels


def test_the_results_list_is_one_query_per_page_whatever_its_size(
        app: Flask, client: FlaskClient, org: Org) -> None:
    with org.session() as s:
        metrics = s.scalars(select(Metric.id).where(Metric.formula.is_(None))).all()
        months = [periods.get_or_create(s, f"{y}-{m:02d}").id
                  for y in (2024, 2025) for m in range(1, 13)]
        rows = [{"employee_id": e, "period_id": p,
                 "values": {str(m): str(p * 10 + m) for m in metrics}}
                for e in org.employees.values() for p in months]
        s.execute(ResultRow.__table__.insert(), [
            {"employee_id": r["employee_id"], "period_id": r["period_id"],
             "metric_values": r["values"]} for r in rows])
        s.commit()
        total = s.query(ResultRow).count()
    assert total > 90
    login(client, "comp_analyst")
    statements: list[str] = []
    engine = db.get_engine(org.url)

    def _count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    try:
        page = client.get("/admin/result/")
        filtered = client.get(f"/admin/result/?flt1_1={org.north}")
    finally:
        event.remove(engine, "before_cursor_execute", _count)
    assert page.status_code == 200 and filtered.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('name="rowid"') == 50
    result_queries = [s for s in statements if "FROM result_row" in s]
    # a count and a page per request; no query per row
    assert len(result_queries) <= 4, result_queries
    assert len(statements) < 30


PAGES = {
    "/admin/": set(ROLES), "/admin/help/": set(ROLES),
    "/admin/employee/": set(ROLES), "/admin/team/": set(ROLES),
    "/admin/period/": set(ROLES), "/admin/metric/": set(ROLES), "/admin/result/": set(ROLES),
    "/admin/level/": set(ROLES) - {"sales_manager"},
    "/admin/auditlog/": {"hr_admin", "comp_analyst", "compliance_officer", "auditor"},
    "/admin/user/": {"hr_admin", "auditor"},
    "/admin/imports/": {"hr_admin", "comp_analyst", "auditor"},
    "/admin/employee/new/": {"hr_admin"}, "/admin/team/new/": {"hr_admin"},
    "/admin/level/new/": {"hr_admin"}, "/admin/metric/new/": {"hr_admin"},
    "/admin/user/new/": {"hr_admin"}, "/admin/result/new/": {"comp_analyst"},
}
CHINESE = {
    "/admin/": "首页", "/admin/help/": "各角色职责", "/admin/employee/": "入职日期",
    "/admin/team/": "阶段", "/admin/period/": "状态", "/admin/metric/": "中文名称",
    "/admin/result/": "业绩数据", "/admin/level/": "折扣权限", "/admin/auditlog/": "操作人",
    "/admin/user/": "角色", "/admin/imports/": "文件格式",
}


@pytest.mark.parametrize("role", ROLES)
def test_every_page_renders_in_both_languages(client: FlaskClient, org: Org,
                                              role: str) -> None:
    login(client, role)
    for path, roles in PAGES.items():
        if role not in roles:
            continue
        english = client.get(path + "?lang=en")
        assert english.status_code == 200, (role, path)
        chinese = client.get(path + "?lang=zh")
        assert chinese.status_code == 200, (role, path)
        html = chinese.get_data(as_text=True)
        expected = CHINESE.get(path.replace("new/", ""), "保存")
        assert expected in html, (role, path, expected)
        # Flask-Admin's own strings are translated too.
        if path.endswith("/new/"):
            assert "保存" in html and "Save" not in text_of(chinese)
        elif path not in ("/admin/", "/admin/help/", "/admin/imports/"):
            assert "列表" in html
    # Details pages of one row each.
    for path in (f"/admin/employee/details/?id={org.employees['N1']}",
                 f"/admin/team/details/?id={org.north}"):
        assert client.get(path).status_code == 200


def test_the_browser_language_is_used_without_a_choice(client: FlaskClient) -> None:
    login(client, "auditor")
    page = client.get("/admin/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "首页" in page.get_data(as_text=True)
    page = client.get("/admin/", headers={"Accept-Language": "en-GB"})
    assert "Home" in page.get_data(as_text=True)
    # The switch is kept in the session.
    client.get("/admin/?lang=zh")
    assert "首页" in client.get("/admin/", headers={"Accept-Language": "en"}).get_data(
        as_text=True)


def test_the_login_page_speaks_chinese(client: FlaskClient) -> None:
    page = client.get("/login?lang=zh")
    assert "登录后台" in page.get_data(as_text=True)


def test_unknown_rows_and_bad_ids_are_404_not_500(client: FlaskClient) -> None:
    login(client, "hr_admin")
    for path in ("/admin/employee/details/?id=99999", "/admin/employee/edit/?id=abc",
                 "/admin/team/edit/?id=99999", "/admin/nowhere/"):
        assert client.get(path).status_code == 404, path


def test_the_dashboard_shows_counts_and_latest_changes(client: FlaskClient, org: Org) -> None:
    login(client, "hr_admin")
    text = text_of(client.get("/admin/"))
    rows = support.count(org, ResultRow)  # rows of results: an employee and a period each
    assert rows == 4
    assert re.search(r"Employees 4 ", text) and re.search(rf"Results {rows} ", text)
    assert "Latest changes" in text and "Import a file" in text
    login(client, "sales_manager")
    text = text_of(client.get("/admin/"))
    north = support.count(org, ResultRow, ResultRow.employee_id.in_(
        [org.employees["N1"], org.employees["N2"]]))
    assert re.search(r"Employees 2 ", text) and re.search(rf"Results {north} ", text)
    assert "Latest changes" not in text and "Team North" in text
    with org.session() as s:
        assert s.scalar(select(Team.name).where(Team.id == org.north)) == "North"
        assert s.query(Employee).count() == 4


def test_deleting_a_team_in_use_is_refused_in_plain_words(client: FlaskClient,
                                                          org: Org) -> None:
    login(client, "hr_admin")
    response = client.post("/admin/team/delete/", data={"id": str(org.north)},
                           follow_redirects=True)
    assert response.status_code == 200
    text = text_of(response)
    assert "still used by others" in text and "FOREIGN KEY" not in text.upper()
    assert count(org, Team, Team.id == org.north) == 1
    duplicate = client.post("/admin/team/new/", data={"name": "North", "region": "",
                                                      "stage": "growth"})
    assert duplicate.status_code == 200 and "Already exists." in text_of(duplicate)
    assert 'value="North"' in duplicate.get_data(as_text=True)


def test_a_dated_employee_moved_by_hand_moves_their_assignment_in_force(
        client: FlaskClient, org: Org) -> None:
    from engine.imports import import_employees
    from engine.models import Assignment, Level

    with org.session() as s:
        import_employees(s, "e.csv", data=b"code,name,team,level,effective_date,leave_date\n"
                         b"N2,N2,North,S1,2026-02-01,\n")
        s.commit()
        emp = s.get(Employee, org.employees["N2"])
        form = {"code": emp.code, "name": emp.name, "email": emp.email or "",
                "team": str(org.south), "level": str(emp.level_id),
                "manager": "", "hire_date": "", "leave_date": "2026-06-30"}
    login(client, "hr_admin")
    assert client.post(f"/admin/employee/edit/?id={org.employees['N2']}",
                       data=form).status_code == 302
    with org.session() as s:
        dated = s.scalars(select(Assignment).where(
            Assignment.employee_id == org.employees["N2"])
            .order_by(Assignment.effective_date)).all()
        assert [a.team_id for a in dated] == [org.north, org.south]
        emp = s.get(Employee, org.employees["N2"])
        assert emp.leave_date.isoformat() == "2026-06-30" and s.get(Level, emp.level_id)
    assert "Leave date" in text_of(client.get("/admin/employee/"))


def test_the_user_form_offers_the_browsers_language_once(client: FlaskClient,
                                                        org: Org) -> None:
    login(client, "hr_admin")
    form = client.get("/admin/user/new/").get_data(as_text=True)
    select = re.search(r'<select[^>]*id="locale".*?</select>', form, re.S)[0]
    assert [label for _v, label in re.findall(r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)<',
                                              select)] == ["Browser language", "English", "中文"]


def test_the_employee_form_refuses_an_email_the_import_refuses(client: FlaskClient,
                                                               org: Org) -> None:
    login(client, "hr_admin")
    with org.session() as s:
        team = s.scalar(select(Team.id))
        level = s.scalar(select(Level.id))
    form = {"code": "Z9", "name": "Zed", "email": "zed-at-example", "team": str(team),
            "level": str(level)}
    page = client.post("/admin/employee/new/", data=form)
    assert "Not a valid email address" in text_of(page)
    assert 'value="zed-at-example"' in page.get_data(as_text=True)  # kept to correct
    assert client.post("/admin/employee/new/", data={**form, "email": " zed@example.com "}
                       ).status_code == 302
    with org.session() as s:
        assert s.scalar(select(Employee.email).where(Employee.code == "Z9")) == \
            "zed@example.com"


@pytest.mark.parametrize("manager", ["E9999", "999999", "99999999999999999999"])
def test_a_team_with_a_manager_that_does_not_exist_is_refused_naming_the_field(
        client: FlaskClient, org: Org, manager: str) -> None:
    login(client, "hr_admin")
    form = {"name": "West", "region": "Coast", "stage": "startup", "manager": manager}
    refused = client.post("/admin/team/new/", data=form)
    assert refused.status_code == 200
    assert f"Manager: no record “{manager}”" in text_of(refused)
    html = refused.get_data(as_text=True)
    assert 'value="West"' in html and 'value="Coast"' in html and f'value="{manager}"' in html
    assert count(org, Team, Team.name == "West") == 0
    # a real manager (or none) still saves
    with org.session() as s:
        nora = s.scalars(select(Employee).where(Employee.team_id == org.north)).first()
    assert client.post("/admin/team/new/", data={**form, "manager": str(nora.id)}
                       ).status_code == 302
    with org.session() as s:
        assert s.scalars(select(Team).where(Team.name == "West")).one().manager_id == nora.id
    assert client.post("/admin/team/new/", data={**form, "name": "East", "manager": ""}
                       ).status_code == 302


def test_an_employee_with_a_team_that_does_not_exist_is_refused(client: FlaskClient,
                                                               org: Org) -> None:
    login(client, "hr_admin")
    with org.session() as s:
        level = s.scalars(select(Level)).first()
        form = {"code": "Z9", "name": "Zed", "email": "", "team": "North",
                "level": str(level.id), "manager": "", "hire_date": "", "leave_date": ""}
    refused = client.post("/admin/employee/new/", data=form)
    assert refused.status_code == 200 and "Team: no record “North”" in text_of(refused)
    assert count(org, Employee, Employee.code == "Z9") == 0
    zh = client.post("/admin/employee/new/?lang=zh", data=form)
    assert "团队：没有“North”这条记录" in text_of(zh)


def test_a_persons_name_and_a_things_name_are_two_words_in_chinese(client: FlaskClient,
                                                                   org: Org) -> None:
    """姓名 is a person's name (employees, users), 名称 a thing's (teams, levels): the
    column headers say which, and the English pages say Name for both."""
    login(client, "hr_admin")
    for path, word, other in (("/admin/employee/", "姓名", "名称"),
                              ("/admin/user/", "姓名", "名称"),
                              ("/admin/team/", "名称", "姓名"),
                              ("/admin/level/", "名称", "姓名")):
        headers = re.findall(r"<th[^>]*>(.*?)</th>",
                             client.get(path + "?lang=zh").get_data(as_text=True), re.S)
        said = " ".join(re.sub(r"<[^>]+>", " ", h) for h in headers)
        assert word in said and other not in said, (path, said)
        english = client.get(path + "?lang=en").get_data(as_text=True)
        assert re.search(r"<th[^>]*>\s*(<a[^>]*>)?\s*Name\b", english), path


def test_the_employee_form_refuses_a_blank_name_and_a_leave_before_the_hire(
        client: FlaskClient, org: Org) -> None:
    """A name of spaces was saved blank, and a leave date before the hire date taken; the
    form now says so beside the field and keeps what was typed."""
    login(client, "hr_admin")
    with org.session() as s:
        team, level = s.scalar(select(Team.id)), s.scalar(select(Level.id))
    form = {"code": " Z8 ", "name": "   ", "email": "", "team": str(team), "level": str(level),
            "manager": "", "hire_date": "2024-03-01", "leave_date": "2024-02-29"}
    page = client.post("/admin/employee/new/", data=form)
    said, html = text_of(page), page.get_data(as_text=True)
    assert page.status_code == 200 and "This field is required." in said
    assert "The leave date is before the hire date" in said
    assert 'value="2024-02-29"' in html and 'value="2024-03-01"' in html
    assert count(org, Employee, Employee.code.in_(("Z8", " Z8 "))) == 0
    zh = text_of(client.post("/admin/employee/new/?lang=zh", data=form))
    assert "离职日期早于入职日期" in zh
    # the edge: leaving on the day of the hire is a day employed
    saved = client.post("/admin/employee/new/", data={**form, "name": " Zed Eight ",
                                                      "leave_date": "2024-03-01"})
    assert saved.status_code == 302
    with org.session() as s:
        zed = s.scalars(select(Employee).where(Employee.code == "Z8")).one()
        assert (zed.name, str(zed.leave_date)) == ("Zed Eight", "2024-03-01")


@pytest.mark.parametrize(("typed", "kept"), [("5", False), ("-0.1", False), ("1.0001", False),
                                             ("0", True), ("1", True), ("0.05", True)])
def test_a_levels_discount_authority_is_a_share_from_0_to_1(client: FlaskClient, org: Org,
                                                            typed: str, kept: bool) -> None:
    login(client, "hr_admin")
    page = client.post("/admin/level/new/", data={"code": "S9", "name": "Sales 9",
                                                  "discount_authority": typed})
    assert (page.status_code == 302) is kept
    assert count(org, Level, Level.code == "S9") == int(kept)
    if not kept:
        assert f"{typed} is not a share from 0 to 1: 0.05 is 5%." in text_of(page)
        assert f'value="{typed}"' in page.get_data(as_text=True)


def test_the_employee_form_refuses_an_email_another_employee_has(client: FlaskClient,
                                                                 org: Org) -> None:
    """Two employees with one email would be one portal login (the portal finds its
    salesperson by the email): the form refuses the second, in any case, and keeps it."""
    login(client, "hr_admin")
    with org.session() as s:
        first, second = s.scalars(select(Employee).order_by(Employee.id).limit(2)).all()
        first_id, first_code, second_id = first.id, first.code, second.id
        s.execute(Employee.__table__.update().where(Employee.id == first_id)
                  .values(email="taken@example.com"))
        s.commit()
        team, level = second.team_id, second.level_id
    form = {"code": "Z7", "name": "Zed", "email": "Taken@Example.com ", "team": str(team),
            "level": str(level), "manager": "", "hire_date": "", "leave_date": ""}
    page = client.post("/admin/employee/new/", data=form)
    assert page.status_code == 200
    assert f"Employee {first_code} has this email already" in text_of(page)
    assert count(org, Employee, Employee.code == "Z7") == 0
    moved = client.post(f"/admin/employee/edit/?id={second_id}", data={**form, "code": "Z6"})
    assert moved.status_code == 200 and "has this email already" in text_of(moved)
    # an employee keeps their own email when edited, and a blank one is no one's
    own = client.post(f"/admin/employee/edit/?id={first_id}",
                      data={**form, "code": first_code, "email": "taken@example.com"})
    assert own.status_code == 302
    assert client.post("/admin/employee/new/", data={**form, "email": ""}).status_code == 302
    # two employees an import gave one email stay editable while it is kept
    with org.session() as s:
        s.execute(Employee.__table__.update().where(Employee.id == second_id)
                  .values(email="taken@example.com"))
        s.commit()
    renamed = client.post(f"/admin/employee/edit/?id={second_id}",
                          data={**form, "code": "Z6", "name": "Renamed",
                                "email": "taken@example.com"})
    assert renamed.status_code == 302


def test_the_audit_log_says_a_secret_a_language_and_a_moment_in_words(
        client: FlaskClient, org: Org) -> None:
    """It listed "password: (set)", "language: zh" and moments as stored
    (2026-12-01T15:01:42.484758+00:00); they read in the page's words, the stored moment
    kept as the tip."""
    login(client, "hr_admin")
    with org.session() as s:
        auditor = s.scalars(select(User).where(User.role == "auditor")).first()
        uid, email, name = auditor.id, auditor.email, auditor.name
    form = {"email": email, "name": name, "password": "a-new-long-password", "role": "auditor",
            "locale": "zh", "active": "y"}
    assert client.post(f"/admin/user/edit/?id={uid}", data=form).status_code == 302
    with org.session() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.entity == "user")
                          .order_by(AuditLog.id.desc())).first()
        s.execute(AuditLog.__table__.update().where(AuditLog.id == entry.id).values(
            after={**entry.after, "approved_at": "2026-12-01T15:01:42.484758+00:00"}))
        s.commit()
    page = client.get("/admin/auditlog/?lang=zh")
    zh = page.get_data(as_text=True)
    assert "（已设置）" in zh and "(set)" not in zh
    assert "中文" in text_of(page)
    assert 'title="2026-12-01T15:01:42.484758+00:00"' in zh
    assert ">2026-12-01T15:01" not in zh  # the moment itself in words
