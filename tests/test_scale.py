"""A month of an organisation past the bind-parameter limit (psycopg takes at most 65,535
parameters in a statement): no query of a run binds one an employee."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from collections import Counter
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from admin.cli import main
from engine import bulk, db, jobs, lifecycle, periods, runs, statements
from engine.models import (
    Employee,
    FlagCase,
    Level,
    Metric,
    Outcome,
    ResultRow,
    Rule,
    Run,
    Team,
)
from engine.users import create_user

EMPLOYEES = 70_000
MONTH = "2026-03"
# A minimal rule set: one commission every employee earns, one flag that holds a few.
RULES = ("commission.tiered", "compliance.discount_authority")
FLAGGED_EVERY = 6_997  # these employees gave a discount past their level's authority


def generate(session: Session, n: int) -> None:
    """Teams of 50, n employees and a month's quota and revenue each, written in bulk."""
    level = session.scalar(select(Level.id).where(Level.code == "S1"))
    bulk.insert_rows(session, Team.__table__, ("name", "region", "stage"),
                     ((f"T{t:05d}", "", "growth") for t in range((n + 49) // 50)))
    teams = dict(session.execute(select(Team.name, Team.id)).all())
    bulk.insert_rows(session, Employee.__table__, ("code", "name", "email", "team_id",
                                                   "level_id"),
                     ((f"S{i:06d}", f"Rep {i}", "", teams[f"T{i // 50:05d}"], level)
                      for i in range(n)))
    for code in [MONTH, *periods.parents(MONTH)]:
        periods.get_or_create(session, code)
    month = periods.get(session, MONTH).id
    metric = dict(session.execute(select(Metric.key, Metric.id)).all())
    ids = list(session.scalars(select(Employee.id).order_by(Employee.code)))

    def rows():  # noqa: ANN202
        for i, eid in enumerate(ids):
            values = {str(metric["quota"]): "100000",
                      str(metric["revenue_new"]): str(60000 + i % 9 * 10000)}
            if i % FLAGGED_EVERY == 0:
                values[str(metric["max_discount_pct"])] = "0.2"
            yield eid, month, values

    bulk.insert_rows(session, ResultRow.__table__, ("employee_id", "period_id",
                                                    "metric_values"), rows())
    session.execute(update(Rule).where(Rule.key.not_in(RULES), Rule.status == "published")
                    .values(status="retired"))
    session.commit()


# SQLite's own wall is 250,000 parameters: there the same run meets a wall lowered to
# 1,000 with an organisation of 2,500, which says the same in a tenth of the time.
SQLITE_LIMIT, SQLITE_EMPLOYEES = 1_000, 2_500


@contextlib.contextmanager
def lowered_sqlite_limit(url: str, limit: int):  # noqa: ANN201
    """Every new SQLite connection of the URL's engine refuses a statement with more than
    ``limit`` parameters (and SQLAlchemy batches its own inserts below it)."""
    import sqlite3

    from sqlalchemy import event

    engine = db.get_engine(url)
    engine.dispose()

    def lower(dbapi_conn, _record):  # noqa: ANN001, ANN202
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)

    event.listen(engine, "connect", lower)
    was = engine.dialect.insertmanyvalues_max_parameters
    engine.dialect.insertmanyvalues_max_parameters = limit
    try:
        yield
    finally:
        event.remove(engine, "connect", lower)
        engine.dialect.insertmanyvalues_max_parameters = was
        engine.dispose()


@pytest.mark.slow
def test_a_month_past_the_bind_parameter_limit(db_url: str, session: Session) -> None:
    if db_url.startswith("sqlite"):
        session.close()
        with lowered_sqlite_limit(db_url, SQLITE_LIMIT):
            with db.make_sessionmaker(db_url)() as limited:
                with pytest.raises(Exception, match="too many SQL variables"):
                    limited.execute(select(Employee.id).where(
                        Employee.id.in_(list(range(SQLITE_LIMIT + 1)))))
                limited.rollback()
                limited.info["actor"] = "tester@example.com"
                month_past_the_limit(db_url, limited, SQLITE_EMPLOYEES)
        return
    month_past_the_limit(db_url, session, EMPLOYEES)


def month_past_the_limit(db_url: str, session: Session, employees: int) -> None:
    """A month of ``employees`` (past the database's parameter limit) is run, approved,
    locked with its flags open and exported, every employee counted."""
    generate(session, employees)
    flagged = len(range(0, employees, FLAGGED_EVERY))
    job_id = jobs.start(session, MONTH, "x@x.com").id
    session.commit()
    run = jobs.run_here(db.make_sessionmaker(db_url), job_id)
    session.expire_all()
    assert run.status == "calculated"
    by = Counter(session.execute(
        select(Outcome.rule_key, Outcome.status).where(Outcome.run_id == run.id)).all())
    assert by == {("commission.tiered", "held"): flagged,
                  ("commission.tiered", "payable"): employees - flagged,
                  ("compliance.discount_authority", None): flagged}
    assert session.scalar(select(func.count()).select_from(FlagCase)
                          .where(FlagCase.run_id == run.id)) == flagged
    # approved, locked with its flags open, and paid: the payroll file has its header and
    # a line an employee (held or payable)
    for email in ("approver@x.com", "x@x.com"):
        create_user(session, email, None, "comp_analyst")
    lifecycle.approve(session, run.id, "approver@x.com")
    lifecycle.lock(session, run.id, "approver@x.com", open_flags_reason="checked later")
    session.commit()
    data = lifecycle.export(session, run.id, "csv")
    assert data.count(b"\n") == 1 + employees


def test_ids_past_the_bind_parameter_limit_go_through_a_table(session: Session) -> None:
    """bulk.ids_in stands for more ids than a statement may bind, on both databases."""
    ids = range(1, 70_002, 1)
    chosen = bulk.ids_in(session, "laurel_test_ids", ids)
    assert session.scalar(select(func.count()).select_from(chosen.subquery())) == 70_001
    # the second time: the table holds the new ids only
    chosen = bulk.ids_in(session, "laurel_test_ids", [3, 2, 2])
    assert sorted(session.scalars(chosen)) == [2, 3]


def fake_run(session: Session, employee_ids: list[int], month: int,
             amount: Decimal = Decimal("5250.00")) -> int:
    """A calculated run with a payout and a flag an employee, written in bulk."""
    run = Run(period_id=month, status="calculated", started_by="x@x.com",
              employee_count=len(employee_ids))
    session.add(run)
    session.flush()
    explanation = {"rule": "Tiered commission", "facts": {"attainment": "1.05",
                                                          "revenue_total": "105000.00"},
                   "conditions": ["attainment 1.05 is defined"], "matched": "tier 3",
                   "arithmetic": "105,000.00 × 0.05 = 5,250.00"}
    bulk.insert_rows(session, Outcome.__table__, (
        "run_id", "employee_id", "rule_key", "kind", "amount", "currency", "value", "status",
        "explanation"), (row for eid in employee_ids for row in (
            (run.id, eid, "commission.tiered", "commission", amount, "CNY", None, "payable",
             explanation),
            (run.id, eid, "compliance.discount_authority", "flag", None, None, "high", None,
             explanation))))
    session.commit()
    return run.id


def cli_peak(tmp_path: Path, *args: str) -> tuple[int, Path]:
    """The peak of memory Python allocated while `laurel ARGS` wrote its output to a file."""
    out = tmp_path / "out.txt"
    with out.open("w", encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
        tracemalloc.start()
        try:
            main.main(list(args), standalone_mode=False)
            return tracemalloc.get_traced_memory()[1], out
        finally:
            tracemalloc.stop()


@pytest.mark.slow
def test_outcomes_and_exports_are_written_as_they_are_read(
        db_url: str, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """`laurel outcomes` and `laurel export` of 4N employees need about the memory of N:
    the output comes from an iterator, never a list of the run's outcomes."""
    n = 300
    monkeypatch.setattr(runs, "STREAM_BATCH", 75)  # N employees' outcomes: eight batches
    generate(session, 4 * n)
    ids = list(session.scalars(select(Employee.id).order_by(Employee.id)))
    small = fake_run(session, ids[:n], periods.get_or_create(session, "2026-04").id)
    large = fake_run(session, ids, periods.get(session, MONTH).id)
    for args in (["outcomes", "--format", "json"],
                 ["export", "--draft", "-o", str(tmp_path / "payroll.csv")],
                 ["export", "--draft", "--format", "xlsx", "-o", str(tmp_path / "pay.xlsx")]):
        cli_peak(tmp_path, *args, str(small))  # caches warmed
        peak_small, _ = cli_peak(tmp_path, *args, str(small))
        peak_large, out = cli_peak(tmp_path, *args, str(large))
        assert peak_large < 1.5 * peak_small, (args, peak_small, peak_large)
        if "xlsx" in args:
            book = openpyxl.load_workbook(tmp_path / "pay.xlsx")
            # keys, labels, a row an employee's payout, the totals row, the draft's note
            assert [s.max_row for s in book.worksheets] == [2 + 4 * n + 1 + 1, 2 + 2 + 1,
                                                            2 + 4 * n + 1 + 1]
            continue
        if args[0] == "export":
            text_ = (tmp_path / "payroll.csv").read_text(encoding="utf-8")
            # the header, a line an employee's payout, the draft's note
            assert text_.count("\n") == 1 + 4 * n + 1
            assert text_ == lifecycle.export(session, large, "csv", draft=True).decode()
            continue
        # the same text as the whole list dumped at once
        rows = runs.outcome_rows(session, runs.get_run(session, large))
        assert out.read_text(encoding="utf-8") == json.dumps(rows, ensure_ascii=False,
                                                             indent=1) + "\n"
    # the difference of two runs, as a file
    small_after = fake_run(session, ids[:n], periods.get_or_create(session, "2026-05").id,
                           Decimal("5300.00"))
    large_after = fake_run(session, ids, periods.get_or_create(session, "2026-06").id,
                           Decimal("5300.00"))

    def diff_peak(old: int, new: int) -> int:
        with (tmp_path / "diff.csv").open("wb") as fh:
            tracemalloc.start()
            try:
                for piece in statements.diff_file_stream(
                        session, runs.get_run(session, old), runs.get_run(session, new), "csv"):
                    fh.write(piece)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    diff_peak(small, small_after)
    peak_small, peak_large = diff_peak(small, small_after), diff_peak(large, large_after)
    assert peak_large < 1.5 * peak_small, ("diff", peak_small, peak_large)
    lines = (tmp_path / "diff.csv").read_bytes().decode().splitlines()
    assert len(lines) == 1 + 4 * n and all(",changed," in line for line in lines[1:])
    assert lines[1].endswith(",50.00")
