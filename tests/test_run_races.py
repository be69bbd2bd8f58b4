"""Runs whatever the timing: one live run per period, no approval of stale figures, a dead
worker fails its run, and a dry run stores nothing (issue 10).

Races are forced, not hoped for: the second action starts from inside the first one's
critical section (a hook on a function the first calls while it holds the period's lock),
and the first waits for it a short while. Where the lock works the second action waits for
the first to commit and is then refused; where it did not, it slipped in and both won.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from admin import cli_runs
from admin.cli import main
from engine import db, followup, imports, jobs, lifecycle, runs
from engine.errors import (
    LaurelError,
    PeriodError,
    RunError,
    RunFailed,
    RunInProgress,
    RunStale,
)
from engine.imports import import_results
from engine.models import AuditLog, Period, Run, RunJob
from engine.users import create_user
from tests.stored import stored_value
from tests.test_runs import load

HOLD = 0.5  # how long the first action waits, inside its lock, for the second one
BOUND = 60  # "within seconds": a generous bound, never a timing under test


@pytest.fixture()
def people(session):
    for email, role in (("ann@x.com", "comp_analyst"), ("bob@x.com", "comp_analyst"),
                        ("hr@x.com", "hr_admin")):
        create_user(session, email, "password-123", role)
    session.commit()


@pytest.fixture()
def run_id(session, people) -> int:
    load(session)
    run = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    return run.id


def live_runs(session, code: str = "2026-01") -> list[tuple[int, str]]:
    session.expire_all()
    return session.execute(select(Run.id, Run.status).join(Period).where(
        Period.code == code, Run.status.in_(("calculated", "approved", "locked")))
        .order_by(Run.id)).all()


class Meanwhile:
    """Another person's action, in a session and a thread of its own."""

    def __init__(self, url: str, action: Callable[[Any], Any]):
        self.url, self.action = url, action
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with db.session_scope(self.url, actor="other@x.com") as s:
                self.result = self.action(s)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def start(self) -> None:
        self.thread.start()
        self.thread.join(HOLD)  # finished by now unless the lock holds it back

    def outcome(self) -> tuple[Any, BaseException | None]:
        self.thread.join(BOUND)
        assert not self.thread.is_alive(), "the second action never finished"
        return self.result, self.error


def during(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, other: Meanwhile) -> None:
    """Start ``other`` the first time ``owner.name`` is called (inside the first action)."""
    real = getattr(owner, name)

    def hooked(*args: Any, **kwargs: Any) -> Any:
        if other.thread.ident is None:
            other.start()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, hooked)


def forget_parent_connections() -> None:
    """In a forked child: the parent's pooled connections are not ours; drop them unclosed."""
    for engine in db._engines.values():
        engine.dispose(close=False)


# --- 1. one live run per period ------------------------------------------------------------


def _start_in_child(url: str, barrier: Any, results: Any) -> None:
    forget_parent_connections()

    def both_evaluated(done: int, total: int) -> None:
        if done == total:
            barrier.wait(timeout=BOUND)  # both runs are calculated; now both store

    try:
        with db.session_scope(url, actor="ann@x.com") as s:
            results.put(("stored", runs.start_run(s, "2026-05", actor="ann@x.com",
                                                  progress=both_evaluated).run.id))
    except LaurelError as exc:
        results.put(("refused", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        results.put(("error", repr(exc)))


def test_two_starts_at_once_store_one_run_and_refuse_the_other(db_url, session, people):
    load(session)
    import_results(session, "may.csv", data=b"period,employee_code,quota,revenue_new\n"
                                            b"2026-05,E001,100,120\n2026-05,E002,100,80\n")
    session.commit()
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_start_in_child, args=(db_url, barrier, results))
                for _ in range(2)]
    for child in children:
        child.start()
    outcomes = sorted(results.get(timeout=BOUND) for _ in children)
    for child in children:
        child.join(BOUND)
        assert child.exitcode == 0
    assert [kind for kind, _ in outcomes] == ["refused", "stored"], outcomes
    stored = outcomes[1][1]
    assert (f"another run of period 2026-05 (run {stored}, started by ann@x.com) was stored "
            "while this one was calculated; this run is not stored") == outcomes[0][1]
    assert live_runs(session, "2026-05") == [(stored, "calculated")]
    assert session.scalar(select(func.count()).select_from(Run)) == 1  # the loser: nothing


def test_an_approval_while_a_newer_run_is_stored_is_refused(db_url, session, run_id,
                                                             monkeypatch):
    other = Meanwhile(db_url, lambda s: lifecycle.approve(s, run_id, "bob@x.com"))
    during(monkeypatch, followup, "carry_pips", other)  # the store discards run_id
    newer = runs.start_run(session, "2026-01", actor="hr@x.com").run.id
    session.commit()
    _, error = other.outcome()
    assert isinstance(error, LaurelError)
    assert str(error) == (f"run {run_id} is discarded (run {newer} of period 2026-01 "
                          "replaced it); only a calculated run can be approved")
    assert live_runs(session) == [(newer, "calculated")]


@pytest.mark.parametrize("action", ["approve", "lock"])
def test_two_approvals_or_locks_at_once_succeed_once(db_url, session, run_id, monkeypatch,
                                                     action):
    if action == "lock":
        lifecycle.approve(session, run_id, "bob@x.com")
        session.commit()
    kwargs = {"open_flags_reason": "reviewed later"} if action == "lock" else {}
    act = getattr(lifecycle, action)
    other = Meanwhile(db_url, lambda s: act(s, run_id, "hr@x.com", **kwargs))
    during(monkeypatch, lifecycle, "audit", other)
    act(session, run_id, "bob@x.com", **kwargs)
    session.commit()
    _, error = other.outcome()
    assert str(error) == {
        "approve": f"run {run_id} is approved; only a calculated run can be approved",
        "lock": f"run {run_id} is locked already"}[action]
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == action)) == 1
    run = session.get(Run, run_id)
    assert (run.approved_by if action == "approve" else run.locked_by) == "bob@x.com"


def test_a_period_locked_while_a_run_is_calculated_refuses_its_store(db_url, session, run_id):
    def lock_meanwhile(done: int, total: int) -> None:
        if done == total:
            with db.session_scope(db_url) as s:
                lifecycle.approve(s, run_id, "bob@x.com")
                lifecycle.lock(s, run_id, "bob@x.com", open_flags_reason="reviewed later")

    with pytest.raises(RunError, match="period 2026-01 was locked while this run was "
                                       "calculated; nothing was stored"):
        runs.start_run(session, "2026-01", actor="hr@x.com", progress=lock_meanwhile)
    session.rollback()
    assert live_runs(session) == [(run_id, "locked")]


def test_a_discarded_run_is_refused_from_the_command_line(db_url, session, run_id):
    newer = runs.start_run(session, "2026-01", actor="hr@x.com").run.id
    session.commit()
    for command in ("approve", "lock"):
        result = CliRunner().invoke(main, [command, str(run_id), "--as", "bob@x.com"])
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1
        assert f"run {run_id} is discarded (run {newer} of period 2026-01 replaced it)" \
            in result.stderr


def test_the_database_holds_one_unlocked_live_run_per_period(session, run_id):
    session.add(Run(period_id=session.get(Run, run_id).period_id, status="approved",
                    started_by="x@x.com"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_a_second_job_of_a_period_is_refused_while_the_first_runs(session, people):
    load(session)
    first = jobs.start(session, "2026-02", "ann@x.com")
    first.pid = os.getpid()  # a live process
    session.commit()
    with pytest.raises(RunInProgress, match=f"job {first.id}, started by ann@x.com"):
        jobs.start(session, "2026-02", "bob@x.com")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(RunJob)) == 1


def test_the_upgrade_discards_all_but_the_newest_unlocked_run_of_a_period(tmp_path: Path):
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(db.PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    try:
        cfg.attributes["engine"] = db.get_engine(url)
        command.upgrade(cfg, "0007")
        with db.get_engine(url).begin() as conn:
            conn.execute(text("INSERT INTO period (id, code, kind, start, \"end\", status) "
                              "VALUES (1, '2026-05', 'month', '2026-05-01', '2026-05-31', "
                              "'open')"))
            for run, status in ((1, "locked"), (2, "approved"), (3, "calculated"),
                                (4, "failed")):
                conn.execute(text("INSERT INTO run (id, period_id, status, ruleset_hash, "
                                  "started_by, employee_count) VALUES (:id, 1, :status, '', "
                                  "'a@x.com', 0)"), {"id": run, "status": status})
        command.upgrade(cfg, "head")
        with db.session_scope(url) as s:
            assert dict(s.execute(select(Run.id, Run.status)).all()) == {
                1: "locked", 2: "discarded", 3: "calculated", 4: "failed"}
            assert s.scalars(select(AuditLog.summary).where(AuditLog.action == "discard")
                             ).one().startswith("2 of 2026-05 discarded by the upgrade: run 3")
            assert s.get(Run, 3).results_version == 0 and s.get(Run, 4).results_version is None
    finally:
        db._engines.pop(url).dispose()


# --- 2. no run on stale data -----------------------------------------------------------------


def change(url: str, csv: bytes, actor: str = "importer@x.com") -> None:
    with db.session_scope(url, actor=actor) as s:
        import_results(s, "late.csv", data=b"period,employee_code,quota\n" + csv)


def test_an_import_while_a_run_is_calculated_makes_it_stale(db_url, session, people):
    load(session)

    def import_meanwhile(done: int, total: int) -> None:
        if done == total:  # evaluated, not stored yet
            change(db_url, b"2026-01,E001,777\n")

    result = runs.start_run(session, "2026-01", actor="ann@x.com", progress=import_meanwhile)
    session.commit()
    stale = result.stale
    assert isinstance(stale, RunStale) and stale.run_id == result.run.id
    assert (stale.periods, stale.how, stale.by) == ("2026-01", "import", "importer@x.com")
    assert str(stale).startswith(f"run {result.run.id} is stale: results of 2026-01 changed "
                                 "after this run read them (import at ")
    assert str(stale).endswith(" UTC by importer@x.com); start a new run")
    with pytest.raises(RunStale):
        lifecycle.approve(session, result.run.id, "bob@x.com")
    session.rollback()
    refused = CliRunner().invoke(main, ["approve", str(result.run.id), "--as", "bob@x.com"])
    assert refused.exit_code == 1
    assert refused.stderr == f"error: {stale}\n"
    session.expire_all()
    assert session.get(Run, result.run.id).status == "calculated"
    fresh = runs.start_run(session, "2026-01", actor="ann@x.com")
    assert fresh.stale is None
    lifecycle.approve(session, fresh.run.id, "bob@x.com")


def test_the_command_line_stores_a_run_gone_stale_and_says_so(db_url, session, people,
                                                              monkeypatch):
    load(session)

    def import_meanwhile(done: int, total: int) -> None:
        if done == total:
            change(db_url, b"2026-01,E001,777\n")

    monkeypatch.setattr(cli_runs, "_progress_bar", lambda: import_meanwhile)
    result = CliRunner().invoke(main, ["run", "2026-01", "--as", "ann@x.com"])
    assert result.exit_code == 0, result.output
    run_id = int(result.stdout.splitlines()[0])
    assert result.stderr.startswith(f"warning: run {run_id} is stale: results of 2026-01 "
                                    "changed after this run read them (import at ")
    assert live_runs(session) == [(run_id, "calculated")]


def test_a_month_change_makes_its_quarter_and_year_runs_stale(db_url, session, people):
    load(session)
    made = {code: runs.start_run(session, code, actor="ann@x.com").run.id
            for code in ("2026-01", "2026-02", "2026-Q1", "2026-Q2", "2026")}
    session.commit()
    change(db_url, b"2026-02,E003,123\n", actor="hr@x.com")
    stale = {code: runs.staleness(session, session.get(Run, rid))
             for code, rid in made.items()}
    assert {code for code, s in stale.items() if s} == {"2026-02", "2026-Q1", "2026"}
    assert {s.periods for s in stale.values() if s} == {"2026-02"}
    lifecycle.approve(session, made["2026-Q2"], "bob@x.com")  # untouched: approved
    with pytest.raises(RunStale, match="results of 2026-02 changed"):
        lifecycle.approve(session, made["2026-Q1"], "bob@x.com")


def test_an_import_that_changes_nothing_leaves_runs_fresh(db_url, session, people):
    load(session)
    run = runs.start_run(session, "2026-01", actor="ann@x.com").run
    session.commit()
    value = stored_value(session, "quota", "2026-01", "E001")
    assert value is not None
    change(db_url, f"2026-01,E001,{value}\n".encode())
    assert runs.staleness(session, run) is None
    lifecycle.approve(session, run.id, "bob@x.com")


def test_an_approved_run_whose_results_change_is_not_locked(db_url, session, run_id):
    lifecycle.approve(session, run_id, "bob@x.com")
    session.commit()
    change(db_url, b"2026-03,E001,1\n2026-01,E002,5\n")
    with pytest.raises(RunStale, match="results of 2026-01 changed"):
        lifecycle.lock(session, run_id, "bob@x.com", open_flags_reason="reviewed later")


def test_results_imported_while_their_period_is_locked_are_refused(db_url, session, run_id,
                                                                   monkeypatch):
    lifecycle.approve(session, run_id, "bob@x.com")
    session.commit()
    real = imports._write_rows

    def locked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        with db.session_scope(db_url) as s:  # after the import checked the period
            lifecycle.lock(s, run_id, "bob@x.com", open_flags_reason="reviewed later")
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "_write_rows", locked_meanwhile)
    with pytest.raises(PeriodError, match="period 2026-01 is locked: the results of 2026-01 "
                                          "cannot change"):
        import_results(session, "late.csv", data=b"period,employee_code,quota\n"
                                                  b"2026-01,E001,777\n")
    session.rollback()
    assert runs.staleness(session, session.get(Run, run_id)) is None


# --- 3. a dead worker fails the run ----------------------------------------------------------


def within(seconds: float, action: Callable[[], Any]) -> Any:
    """Run ``action`` and fail the test if it does not finish in time."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = action()
        except BaseException as exc:  # noqa: BLE001 - raised again below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["result"]


def children() -> set[int]:
    """The live child processes (engine.isolate's pool among them, when a test started it)."""
    return {p.pid for p in mp.active_children()}


@pytest.fixture()
def parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two forked workers even for a small run; every employee takes a little while."""
    monkeypatch.setenv("LAUREL_RUN_WORKERS", "2")
    monkeypatch.setenv("LAUREL_RUN_CHUNK", "4")  # the CLI's run: chunks in two processes
    monkeypatch.setattr(runs, "PARALLEL_MIN", 1)
    real = runs.employee_outcomes

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.02)
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "employee_outcomes", slow)


def test_a_killed_pool_worker_fails_the_run_and_frees_the_period(db_url, session, people,
                                                                 parallel, monkeypatch):
    load(session)
    killed: list[int] = []
    others = children()  # processes of this test process that are not the run's

    def kill_a_worker(done: int, total: int) -> None:
        if 0 < done < total and not killed:
            victim = min(children() - others)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    monkeypatch.setattr(cli_runs, "_progress_bar", lambda: kill_a_worker)
    start = time.monotonic()
    result = within(BOUND, lambda: CliRunner().invoke(main, ["run", "2026-01", "--as",
                                                             "ann@x.com"]))
    assert killed and result.exit_code == 1, result.output
    assert "a worker process of the run stopped while it worked on the employees" in result.stderr
    assert time.monotonic() - start < BOUND
    assert children() <= others  # the run's other workers are gone too
    session.expire_all()
    failed = session.scalars(select(Run)).one()
    assert failed.status == "failed" and "worker process" in failed.error
    monkeypatch.setattr(cli_runs, "_progress_bar", lambda: None)
    again = CliRunner().invoke(main, ["run", "2026-01", "--as", "ann@x.com"])
    assert again.exit_code == 0, again.output
    assert live_runs(session) == [(int(again.stdout.splitlines()[0]), "calculated")]


def test_a_back_office_job_whose_pool_worker_dies_fails_within_seconds(db_url, session,
                                                                       people, parallel):
    load(session)
    job = jobs.start(session, "2026-03", "ann@x.com")
    session.commit()
    pid = os.fork()
    if pid == 0:  # the job's process, as a worker of the job would be
        try:
            forget_parent_connections()
            me, real = os.getpid(), runs.employee_outcomes

            def dies_in_a_worker(ef: Any, *args: Any, **kwargs: Any) -> Any:
                if ef.code == "E005" and os.getpid() != me:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(ef, *args, **kwargs)

            runs.employee_outcomes = dies_in_a_worker
            jobs.run_here(db.make_sessionmaker(db_url), job.id, workers=2)
        finally:
            os._exit(0)
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        session.expire_all()
        if jobs.watch(session, session.get(RunJob, job.id)).status not in jobs.ACTIVE:
            break
        time.sleep(0.05)
    job = session.get(RunJob, job.id)
    os.waitpid(pid, 0)
    assert job.status == "failed"
    assert "a worker process of the run stopped while it worked on the employees" in job.error
    failed = session.scalars(select(Run)).one()
    assert failed.status == "failed" and failed.error == job.error
    again = jobs.start(session, "2026-03", "bob@x.com")  # the period is free
    assert again.status == "queued"


@pytest.fixture()
def e010_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = runs.employee_outcomes

    def failing(ef: Any, *args: Any, **kwargs: Any) -> Any:
        if ef.code == "E010":
            raise ArithmeticError("boom")
        return real(ef, *args, **kwargs)

    monkeypatch.setattr(runs, "employee_outcomes", failing)


def test_a_worker_error_in_the_pool_names_the_employee(session, people, parallel,
                                                        e010_fails):
    load(session)
    others = children()
    with pytest.raises(RunFailed, match="employee E010: ArithmeticError: boom"):
        within(BOUND, lambda: runs.start_run(session, "2026-01"))
    assert children() <= others


# --- 9. a dry run stores nothing --------------------------------------------------------------


def test_a_failing_dry_run_stores_nothing_not_even_its_failure(db_url, session, e010_fails):
    load(session)
    result = CliRunner().invoke(main, ["run", "2026-01", "--dry-run"])
    assert result.exit_code == 1 and "employee E010" in result.stderr
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Run)) == 0
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.entity == "run")) == 0
