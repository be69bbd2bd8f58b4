"""The period end: approve, lock, reopen, adjustments, export, diff, statements, jobs."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from admin.cli import main
from engine import lifecycle, runs, statements
from engine.cells import xlsx_amount
from engine.errors import LaurelError, PermissionDenied, RunError, RunStale
from engine.imports import import_results
from engine.models import AuditLog, Employee, Outcome, PayCode
from engine.users import create_user
from tests.test_runs import load


@pytest.fixture()
def people(session):
    for email, role in (("ann@x.com", "comp_analyst"), ("bob@x.com", "comp_analyst"),
                        ("hr@x.com", "hr_admin"), ("cat@x.com", "compliance_officer"),
                        ("aud@x.com", "auditor")):
        create_user(session, email, "password-123", role)
    session.commit()


@pytest.fixture()
def run(session, people):
    load(session)
    result = runs.start_run(session, "2026-01", actor="ann@x.com")
    session.commit()
    return result.run


def test_two_people_approve_then_lock(session, run):
    with pytest.raises(PermissionDenied, match="another person"):
        lifecycle.approve(session, run.id, "ann@x.com")
    with pytest.raises(PermissionDenied, match="system user"):
        lifecycle.approve(session, run.id, None)
    for who in ("cat@x.com", "aud@x.com"):
        with pytest.raises(PermissionDenied, match="only a comp_analyst or hr_admin"):
            lifecycle.approve(session, run.id, who)
    with pytest.raises(LaurelError, match="approve it before locking"):
        lifecycle.lock(session, run.id, "bob@x.com", open_flags_reason="reviewed later")
    lifecycle.approve(session, run.id, "bob@x.com")
    with pytest.raises(LaurelError, match="only a calculated run"):
        lifecycle.approve(session, run.id, "hr@x.com")
    lifecycle.lock(session, run.id, "ann@x.com", open_flags_reason="reviewed later")
    session.commit()
    assert run.status == "locked" and run.period.status == "locked"
    actions = session.scalars(select(AuditLog.action).where(AuditLog.entity == "run")).all()
    assert {"approve", "lock"} <= set(actions)


def refused_alike(session, refusal, step) -> None:
    """The refusal a predicate gives before a step is the error the step raises."""
    assert refusal is not None
    with pytest.raises(LaurelError) as raised:
        step()
    session.rollback()
    assert type(raised.value) is type(refusal) and str(raised.value) == str(refusal)


def test_approve_and_lock_raise_the_refusal_their_predicate_gives(session, run):
    """approval_refusal and lock_refusal say before the step why it would be refused (the
    back office disables its button with it); the step raises the same error."""
    # the starter may not approve; a calculated run is not locked
    refused_alike(session, lifecycle.approval_refusal(session, run, "ann@x.com"),
                  lambda: lifecycle.approve(session, run.id, "ann@x.com"))
    refused_alike(session, lifecycle.lock_refusal(session, run),
                  lambda: lifecycle.lock(session, run.id, "bob@x.com", "reviewed later"))
    assert lifecycle.approval_refusal(session, run, "bob@x.com") is None
    lifecycle.approve(session, run.id, "bob@x.com")
    session.commit()
    refused_alike(session, lifecycle.approval_refusal(session, run, "hr@x.com"),
                  lambda: lifecycle.approve(session, run.id, "hr@x.com"))
    assert lifecycle.lock_refusal(session, run) is None
    # a stale run is neither approved nor locked
    import_results(session, "late.csv", data=b"period,employee_code,quota\n2026-01,E001,777\n")
    session.commit()
    stale = lifecycle.lock_refusal(session, run)
    assert isinstance(stale, RunStale)
    refused_alike(session, stale,
                  lambda: lifecycle.lock(session, run.id, "ann@x.com", "reviewed later"))
    newer = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    import_results(session, "later.csv", data=b"period,employee_code,quota\n2026-01,E001,778\n")
    session.commit()
    stale = lifecycle.approval_refusal(session, newer, "bob@x.com")
    assert isinstance(stale, RunStale)
    refused_alike(session, stale, lambda: lifecycle.approve(session, newer.id, "bob@x.com"))
    # a discarded run is refused as such
    refused_alike(session, lifecycle.lock_refusal(session, run),
                  lambda: lifecycle.lock(session, run.id, "ann@x.com", "reviewed later"))
    assert run.status == "discarded" and newer.status == "calculated"


def test_a_locked_period_refuses_imports_runs_and_adjustments(session, run):
    lifecycle.approve(session, run.id, "bob@x.com")
    lifecycle.lock(session, run.id, "bob@x.com", open_flags_reason="reviewed later")
    session.commit()
    with pytest.raises(LaurelError, match="locked"):
        import_results(session, "late.csv", data=b"period,employee_code,quota\n"
                                                  b"2026-01,E001,5\n")
    session.rollback()
    with pytest.raises(RunError, match="locked"):
        runs.start_run(session, "2026-01")
    with pytest.raises(LaurelError, match="refused"):
        lifecycle.add_adjustment(session, run.id, "E001", "10", "late bonus", "bob@x.com")


def test_only_hr_reopens_with_a_reason(session, run):
    lifecycle.approve(session, run.id, "bob@x.com")
    lifecycle.lock(session, run.id, "bob@x.com", open_flags_reason="reviewed later")
    with pytest.raises(PermissionDenied, match="only an hr_admin"):
        lifecycle.reopen_period(session, "2026-01", "ann@x.com", "typo")
    with pytest.raises(LaurelError, match="reason"):
        lifecycle.reopen_period(session, "2026-01", "hr@x.com", "  ")
    lifecycle.reopen_period(session, "2026-01", "hr@x.com", "late results from the North")
    session.commit()
    assert run.period.status == "open"
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "reopen")).one()
    assert entry.actor == "hr@x.com" and "late results" in entry.after["reason"]
    again = runs.start_run(session, "2026-01")  # a new run starts; the locked one stays
    session.commit()
    session.refresh(run)
    assert run.status == "locked" and again.run.status == "calculated"


def test_a_new_run_discards_earlier_unlocked_ones(session, run):
    lifecycle.approve(session, run.id, "bob@x.com")
    session.commit()
    second = runs.start_run(session, "2026-01")
    session.commit()
    session.refresh(run)
    assert run.status == "discarded" and second.run.status == "calculated"


def test_adjustment_shows_in_statement_totals_and_export(session, run):
    code = session.scalar(select(Outcome.employee_id).where(Outcome.run_id == run.id,
                                                            Outcome.status == "payable"))
    from engine.models import Employee

    emp = session.get(Employee, code)
    before = statements.statement(session, run, emp.code)
    with pytest.raises(LaurelError, match="reason"):
        lifecycle.add_adjustment(session, run.id, emp.code, "150.50", "", "bob@x.com")
    with pytest.raises(LaurelError, match="is not an amount in CNY"):
        lifecycle.add_adjustment(session, run.id, emp.code, "1,00", "x", "bob@x.com")
    with pytest.raises(PermissionDenied):
        lifecycle.add_adjustment(session, run.id, emp.code, "150.50", "x", "cat@x.com")
    lifecycle.add_adjustment(session, run.id, emp.code, "150.50", "missed deal", "bob@x.com")
    session.commit()
    after = statements.statement(session, run, emp.code)
    assert after.totals["payable"] - before.totals["payable"] == Decimal("150.50")
    assert any(line.kind == "adjustment" and "missed deal" in line.words[0]
               for line in after.lines)
    data = lifecycle.export(session, run.id, "csv", draft=True).decode()
    rows = list(csv.DictReader(io.StringIO(data)))
    assert any(r["rule_key"] == "adjustment" and r["amount"] == "150.50" for r in rows)
    assert session.scalar(select(func.count()).select_from(AuditLog)
                          .where(AuditLog.action == "adjust")) == 1


def test_export_columns_and_totals_equal_the_outcomes(session, run):
    with pytest.raises(LaurelError, match="not approved"):
        lifecycle.export(session, run.id, "csv")
    draft = lifecycle.export(session, run.id, "csv", draft=True).decode()
    assert "DRAFT" in draft.splitlines()[-1]
    lifecycle.approve(session, run.id, "bob@x.com")
    session.commit()
    plain = list(csv.reader(io.StringIO(lifecycle.export(session, run.id, "csv").decode())))
    assert all(r[3] != "TOTAL" for r in plain)  # a CSV holds the contract's lines only
    text = lifecycle.export(session, run.id, "csv", totals_rows=True).decode()
    assert "DRAFT" not in text
    reader = list(csv.reader(io.StringIO(text)))
    assert reader[0] == [*lifecycle.EXPORT_COLUMNS, "pay_code"]  # the contract, then more
    lines = [r for r in reader[1:] if r[3] != "TOTAL"]
    total_rows = {r[8]: Decimal(r[6]) for r in reader[1:] if r[3] == "TOTAL"}
    outcomes = session.execute(select(Outcome.amount, Outcome.status).where(
        Outcome.run_id == run.id, Outcome.amount.is_not(None))).all()
    assert len(lines) == len(outcomes)
    for status in ("payable", "held", "forfeited"):
        assert total_rows[status] == sum((a for a, s in outcomes if s == status), Decimal(0))


def test_an_approved_run_gone_stale_exports_only_as_a_draft(session, run):
    lifecycle.approve(session, run.id, "bob@x.com")
    session.commit()
    final = lifecycle.export(session, run.id, "csv").decode()
    assert "DRAFT" not in final and "stale" not in final
    import_results(session, "late.csv", data=b"period,employee_code,quota\n2026-01,E001,777\n")
    session.commit()
    with pytest.raises(LaurelError, match=rf"^run {run.id} is stale: results of 2026-01 "
                       r"changed after this run read them \(import at .* UTC by .*\); start a "
                       "new run, or export this one as a draft with --draft$"):
        lifecycle.export(session, run.id, "csv")
    draft = lifecycle.export(session, run.id, "csv", draft=True).decode().splitlines()
    assert draft[:-1] == final.splitlines()  # the same lines, then the warning
    assert draft[-1] == (f"DRAFT: run {run.id} is stale (its period's results changed after "
                         "it read them); do not pay from this file")
    assert json.loads(lifecycle.export(session, run.id, "json", draft=True))["draft"] is True
    book = openpyxl.load_workbook(io.BytesIO(lifecycle.export(session, run.id, "xlsx",
                                                              draft=True)))
    cells = {c.value for ws in book for row in ws.iter_rows() for c in row}
    assert draft[-1] in cells
    runner = CliRunner()
    refused = runner.invoke(main, ["export", str(run.id)])
    assert refused.exit_code == 1 and f"run {run.id} is stale" in refused.stderr
    assert refused.stdout == ""  # nothing of the file before the refusal
    marked = runner.invoke(main, ["export", str(run.id), "--draft"])
    assert marked.exit_code == 0 and marked.stdout.splitlines()[-1] == draft[-1]
    assert run.status == "approved"  # the refusal changed nothing


def test_the_xlsx_payroll_file_reads_back_with_its_sheets_types_and_totals(session, run):
    session.add(PayCode(rule_key="commission.tiered", code="P100"))
    lifecycle.approve(session, run.id, "bob@x.com")
    emp = session.scalar(select(Outcome.employee_id).where(Outcome.run_id == run.id))
    code = session.get(Employee, emp).code
    session.commit()
    book = openpyxl.load_workbook(io.BytesIO(lifecycle.export(session, run.id, "xlsx")))
    assert book.sheetnames == ["Payable", "Held and forfeited", "Summary"]
    outcomes = session.execute(select(Outcome.amount, Outcome.status, Outcome.rule_key).where(
        Outcome.run_id == run.id, Outcome.amount.is_not(None))).all()
    keys = [*lifecycle.EXPORT_COLUMNS, "pay_code", "note"]
    for name, statuses in (("Payable", ("payable",)), ("Held and forfeited",
                                                       ("held", "forfeited"))):
        sheet = book[name]
        assert [c.value for c in sheet[1]] == keys and sheet.row_dimensions[1].hidden
        assert sheet[2][0].value == "Run" and sheet[2][0].font.b and sheet.freeze_panes == "A3"
        assert sheet.column_dimensions["D"].width >= len("Employee name")
        body = [r for r in sheet.iter_rows(min_row=3) if r[3].value != "TOTAL"]
        totals = {r[8].value: r[6] for r in sheet.iter_rows(min_row=3)
                  if r[3].value == "TOTAL"}
        assert {r[8].value for r in body} <= set(statuses)
        assert len(body) == sum(1 for _a, s, _k in outcomes if s in statuses)
        for row in body:
            cell = row[6]
            assert cell.data_type == "n" and cell.number_format.endswith("#,##0.00")
            assert row[9].value == ("P100" if row[4].value == "commission.tiered" else None)
        for status in statuses:
            expected = sum((a for a, s, _k in outcomes if s == status), Decimal(0))
            assert Decimal(str(totals[status].value)).quantize(Decimal("0.01")) == expected
            assert sum(Decimal(str(r[6].value)) for r in body if r[8].value == status) \
                == expected
    summary = list(book["Summary"].iter_rows(min_row=3, values_only=True))
    mine = [r for r in summary if r[0] == code]
    assert mine and {r[2] for r in mine} <= {"P100", None}
    assert summary[-1][1] == "TOTAL"
    assert Decimal(str(summary[-1][4])) == sum(
        (a for a, s, _k in outcomes if s == "payable"), Decimal(0))


def test_an_amount_beyond_a_spreadsheet_number_stays_exact():
    book = openpyxl.Workbook()
    sheet = book.active
    xlsx_amount(sheet["A1"], Decimal("123456789012345678901234.56"), "CNY")
    xlsx_amount(sheet["A2"], Decimal("1234567890123.45"), "CNY")
    out = io.BytesIO()
    book.save(out)
    back = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    assert back["A1"].value == "123456789012345678901234.56"  # its exact digits, as text
    assert Decimal(str(back["A2"].value)) == Decimal("1234567890123.45")
    assert back["A2"].data_type == "n"


def test_cli_approve_lock_export(db_url, session, people, tmp_path):
    load(session)
    runner = CliRunner()
    run_id = runner.invoke(main, ["run", "2026-02", "--as", "ann@x.com"]).stdout.split()[0]
    refused = runner.invoke(main, ["approve", run_id, "--as", "ann@x.com"])
    assert refused.exit_code == 1 and "another person" in refused.stderr
    assert runner.invoke(main, ["export", run_id]).exit_code == 1
    assert runner.invoke(main, ["approve", run_id, "--as", "bob@x.com"]).exit_code == 0
    assert runner.invoke(main, ["lock", run_id, "--as", "bob@x.com",
                                 "--with-open-flags", "reviewed later"]).exit_code == 0
    out = tmp_path / "pay.xlsx"
    result = runner.invoke(main, ["export", run_id, "--format", "xlsx", "-o", str(out)])
    assert result.exit_code == 0 and out.stat().st_size > 0
    usage = runner.invoke(main, ["approve", run_id])
    assert usage.exit_code == 2


def test_run_diff_on_a_known_change(session, run):
    # raise one employee's quota so that their attainment tier drops
    import_results(session, "fix.csv", data=b"period,employee_code,quota\n2026-01,E002,900000\n")
    session.commit()
    second = runs.start_run(session, "2026-01").run
    session.commit()
    rows = statements.diff_runs(session, run, second)
    assert rows and {r["employee_code"] for r in rows} == {"E002"}
    tiered = next(r for r in rows if r["rule_key"] == "commission.tiered")
    assert tiered["change"] == "changed"
    assert tiered["delta"] == tiered["after"]["amount"] - tiered["before"]["amount"] < 0


def test_statement_explains_each_line(session, run):
    code = session.scalar(select(Outcome.employee_id).where(
        Outcome.run_id == run.id, Outcome.rule_key == "commission.tiered"))
    from engine.models import Employee

    st = statements.statement(session, run, session.get(Employee, code).code)
    line = next(x for x in st.lines if x.rule_key == "commission.tiered")
    assert "of Total revenue" in line.words[0] and f"{line.amount:,.2f}" in line.words[0]
    # the catalog's label; a ratio as a percentage
    assert line.words[0].startswith("Attainment ") and "%: tier " in line.words[0]
    zh = statements.statement(session, run, st.employee.code, lang="zh")
    line_zh = next(x for x in zh.lines if x.rule_key == "commission.tiered")
    assert line_zh.words[0].startswith("指标达成率 ") and "档" in line_zh.words[0]
    assert f"{line.amount:,.2f}" in line_zh.words[0]
    assert st.totals["payable"] + st.totals["held"] == sum(
        (x.amount for x in st.lines if x.amount is not None), Decimal(0))


def test_overview_totals(session, run):
    data = statements.overview(session, run)
    amounts = session.execute(select(Outcome.amount, Outcome.kind).where(
        Outcome.run_id == run.id, Outcome.amount.is_not(None))).all()
    assert data["total"] == sum((a for a, _ in amounts), Decimal(0))
    assert data["by_kind"]["commission"] == sum((a for a, k in amounts if k == "commission"),
                                                Decimal(0))
    assert sum(b["count"] for b in data["distribution"]) == data["employees"]
    assert set(data["team_attainment"]) == {"North", "East", "West"}


def test_words_never_round_a_value_onto_the_boundary_it_missed():
    from engine.wording import calculation

    calc = {"type": "tiers", "metric": "attainment", "metric_value": "0.799999999999",
            "tier": 1, "from": None, "to": "0.8", "rate": "0.03", "base": "revenue_total",
            "base_value": "79999.9999", "amount": "2400.00"}
    words = calculation(calc)
    assert words.startswith("attainment 0.79999999…: tier 1 (below 0.80)"), words
    words = calculation(calc, types={"attainment": "ratio"})
    assert words.startswith("attainment 79.99999999…%: tier 1 (below 80%)"), words


@pytest.mark.parametrize("amount", ["1_000", "NaN", "Infinity", "1e99999999999999999999",
                                    "1e-999999999", "0", "1e12"])
def test_an_adjustment_refuses_what_is_not_an_amount(session, run, amount):
    code = session.scalar(select(Outcome.employee_id).where(Outcome.run_id == run.id))
    from engine.models import Adjustment, Employee

    with pytest.raises(LaurelError, match="^adjustment, field amount: "):
        lifecycle.add_adjustment(session, run.id, session.get(Employee, code).code, amount,
                                 "x", "bob@x.com")
    assert session.scalar(select(func.count()).select_from(Adjustment)) == 0


@pytest.mark.parametrize(("typed", "amount"), [
    ("1,500", "1500.00"), ("1500元", "1500.00"), ("CN¥1,500.00", "1500.00"),
    ("¥-250", "-250.00"), ("RMB 12,345.6", "12345.60")])
def test_an_adjustment_reads_its_amount_as_people_type_it(session, run, typed, amount):
    code = session.scalar(select(Outcome.employee_id).where(Outcome.run_id == run.id))
    from engine.models import Employee

    adj = lifecycle.add_adjustment(session, run.id, session.get(Employee, code).code, typed,
                                   "x", "bob@x.com")
    assert adj.amount == Decimal(amount)
    with pytest.raises(LaurelError, match="field amount: at most two decimals"):
        lifecycle.add_adjustment(session, run.id, session.get(Employee, code).code,
                                 "1.234", "x", "bob@x.com")


def test_the_checklist_names_rules_changed_since_the_run(session, run):
    """A version published after the run and one retired are on the checklist; a version
    that starts after the period is not in force for it."""
    import json

    from engine.models import Rule
    from engine.rulebook import latest, save_rule

    assert lifecycle.checklist(session, run).rules_changed == []
    used = {u["key"]: u["version"] for u in run.rules}
    later_key, retired_key = sorted(k for k in used if k != "commission.tiered")[:2]
    doc = json.loads(json.dumps(latest(session, "commission.tiered").definition))
    doc["action"]["tiers"][-1]["rate"] = "0.07"
    new, _ = save_rule(session, doc, "test", publish=True)
    later = json.loads(json.dumps(latest(session, later_key).definition))
    later["effective_from"] = "2026-07-01"
    later["description"] = "from July"
    save_rule(session, later, "test", publish=True)
    session.scalar(select(Rule).where(Rule.key == retired_key,
                                      Rule.status == "published")).status = "retired"
    session.flush()
    changed = {r["key"]: (r["was"], r["now"])
               for r in lifecycle.checklist(session, run).rules_changed}
    assert changed == {"commission.tiered": (used["commission.tiered"], new.version),
                       retired_key: (used[retired_key], None)}
    assert not lifecycle.checklist(session, run).clear
    # a new run of the period uses the rules in force now: nothing changed since it
    again = runs.start_run(session, "2026-01", actor="ann@x.com").run
    assert lifecycle.checklist(session, again).rules_changed == []


def _org_changes(session, run, most: int = 20) -> tuple[int, list[tuple]]:
    """How many changes to the organisation the run's checklist counts, and what each of
    those it lists names: (record type, action, record id, the record's page, actor)."""
    cl = lifecycle.checklist(session, run, most=most)
    assert (cl.org_changed_count == 0) == (cl.org_changed == [])
    return cl.org_changed_count, [(c.entry.entity, c.entry.action, c.entry.entity_id,
                                   c.record_id, c.entry.actor) for c in cl.org_changed]


def test_the_checklist_names_employees_changed_since_the_run(session, people):
    """An employee moved to another team after the run is on its checklist, one moved
    before it is not; an employee with no results in the period is left out, an import is
    not; a new run of the period reads them all."""
    from engine.imports import import_employees
    from engine.models import Team

    load(session)
    east = session.scalar(select(Team).where(Team.name == "East"))
    first, second = session.scalars(select(Employee).where(Employee.team_id != east.id)
                                    .order_by(Employee.code).limit(2))
    session.info["actor"] = "hr@x.com"
    first.team_id = east.id  # before the run: read by it
    session.commit()
    run = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    assert _org_changes(session, run) == (0, [])

    second.team_id = east.id
    session.commit()
    assert _org_changes(session, run) == (
        1, [("employee", "update", str(second.id), second.id, "hr@x.com")])
    assert not lifecycle.checklist(session, run).clear
    # someone with no results in the period: in no run of it, left out (their creation by
    # an import is counted: one entry a file, whoever it changed)
    import_employees(session, "idle.csv", data=b"code,name,team,level\nI1,Ida Idle,East,S1\n")
    idle = session.scalar(select(Employee).where(Employee.code == "I1"))
    idle.team_id = first.team_id
    session.commit()
    count, listed = _org_changes(session, run)
    assert count == 2 and listed[1][:3] == ("employee", "import", "")
    # bounded: the count is whole, the list as long as asked
    assert _org_changes(session, run, most=1) == (2, listed[:1])
    # deleted since: listed, without a page
    session.delete(idle)
    session.commit()
    assert _org_changes(session, run) == (2, listed)

    again = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    assert _org_changes(session, again) == (0, [])


def test_the_checklist_names_metrics_teams_and_levels_changed_since_the_run(session, run):
    from engine.models import Level, Metric, Team

    session.info["actor"] = "hr@x.com"
    metric = session.scalar(select(Metric).where(Metric.key == "satisfaction"))
    metric.rollup = "max" if metric.rollup != "max" else "mean"
    session.flush()
    team = session.scalar(select(Team).order_by(Team.name).limit(1))
    team.stage = "mature" if team.stage != "mature" else "growth"
    session.flush()
    level = Level(code="X9", name="new", discount_authority=Decimal("0.1"))
    session.add(level)
    session.commit()
    assert _org_changes(session, run) == (3, [
        ("metric", "update", str(metric.id), metric.id, "hr@x.com"),
        ("team", "update", str(team.id), team.id, "hr@x.com"),
        ("level", "create", str(level.id), level.id, "hr@x.com")])
    assert not lifecycle.checklist(session, run).clear
    again = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    assert _org_changes(session, again) == (0, [])


def _missing_from_scratch(session, period_code: str) -> list[str]:
    """The codes of the employees with no row of results for the period or below it,
    worked out in Python from every employee and every row."""
    from engine.models import Period, ResultRow
    from engine.periods import children

    codes = {period_code, *children(period_code)}
    codes |= {c for code in list(codes) for c in children(code)}
    with_rows = set(session.scalars(select(ResultRow.employee_id).join(
        Period, Period.id == ResultRow.period_id).where(Period.code.in_(codes))))
    return sorted(e.code for e in session.scalars(select(Employee)) if e.id not in with_rows)


@pytest.mark.parametrize(("kept", "most"), [(20, 2), (20, 20), (2, 2), (2, 3)])
def test_the_checklists_employees_with_no_results_stay_right_after_the_run(
        session, people, monkeypatch, kept, most):
    """The run keeps the count (and the first few) of employees with no results; the
    checklist's figures stay those of every employee as they stand now: when employees
    are added or deleted after the run, and when results change (the run is stale)."""
    from engine import rollup
    from engine.imports import import_employees

    monkeypatch.setattr(rollup, "MISSING_KEPT", kept)
    load(session)
    import_employees(session, "idle.csv", data=b"code,name,team,level\n"
                     b"I3,Ida Idle,North,S1\nI1,Ivo Idle,North,S1\nI2,Ina Idle,East,S1\n")
    run = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    assert run.summary["results"] == run.figures["results"]
    assert run.figures["results"]["missing"] == 3
    assert len(run.figures["results"]["first_missing"]) == min(kept, 3)

    def check(expected: list[str]) -> None:
        assert _missing_from_scratch(session, "2026-01") == expected
        count, listed = lifecycle.missing_results(session, run, most)
        assert (count, [e.code for e in listed]) == (len(expected), expected[:most])
        cl = lifecycle.checklist(session, run, most=most)
        assert (cl.missing_count, [e.code for e in cl.missing]) == (count, expected[:most])

    check(["I1", "I2", "I3"])
    import_employees(session, "late.csv", data=b"code,name,team,level\nA0,Al Late,West,S1\n")
    session.commit()
    check(["A0", "I1", "I2", "I3"])
    session.delete(session.scalar(select(Employee).where(Employee.code == "I1")))
    session.commit()
    check(["A0", "I2", "I3"])
    # results for one of them: the run is stale, the count still right
    import_results(session, "late.csv", data=b"period,employee_code,quota\n2026-01,I2,5\n")
    session.commit()
    assert runs.staleness(session, run) is not None
    check(["A0", "I3"])
    # a run stored before runs kept the figure reads every employee
    run.figures = {k: v for k, v in run.figures.items() if k != "results"}
    statements.keep_summary(run)
    session.commit()
    assert "results" not in run.summary
    check(["A0", "I3"])
