"""Runs as chunks of Celery work: the same outcomes as one process, a lost worker's chunk
redone once, a data failure, cancel, a stalled job, real workers on Redis killed midway."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from engine import chunks, compliance, db, jobs, runs
from engine.errors import NotFound, RunFailed, RunInProgress
from engine.models import AuditLog, FlagCase, Outcome, Run, RunChunk, RunJob
from tests.test_runs import load, organisation

ROOT = Path(__file__).resolve().parent.parent


def outcome_set(session: Session, run_id: int) -> set[tuple]:
    return {(o["employee_code"], o["rule_key"], o["kind"], o["amount"], o["value"],
             o["status"], str(sorted(o["explanation"].items())))
            for o in runs.outcome_rows(session, runs.get_run(session, run_id))}


def one_process_run(session: Session, code: str) -> set[tuple]:
    """The outcomes of the same period by runs.start_run, then forgotten."""
    result = runs.start_run(session, code, actor="x@x.com", dry_run=True)
    session.rollback()
    return {(o["employee_code"], o["rule_key"], o["kind"],
             None if o["amount"] is None else f"{o['amount']:.2f}", o["value"], o["status"],
             str(sorted(o["explanation"].items()))) for o in result.outcomes}


@pytest.fixture()
def chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUREL_RUN_CHUNK", "5")  # 24 employees: five chunks


def planned(factory: Any, job_id: int) -> tuple[int, list[int]]:
    """Plan the job: its run's id and its chunks' indexes."""
    with factory() as s:
        indexes = chunks.plan(s, job_id)
        s.commit()
        return s.get(RunJob, job_id).run_id, indexes


def every_chunk_done(factory: Any, job_id: int) -> int:
    """Plan the job and evaluate each of its chunks (not finished): the run's id."""
    run_id, indexes = planned(factory, job_id)
    for index in indexes:
        assert chunks.evaluate_chunk(factory, run_id, index) == "done"
    return run_id


def job_of(session: Session, code: str) -> int:
    job = jobs.start(session, code, "x@x.com")
    session.commit()
    return job.id


def planned_on_postgres(db_url: str, session: Session) -> tuple[Any, int, int, list[int]]:
    """The organisation loaded and January's job planned, where two writers may work at
    once (PostgreSQL; the test is skipped on SQLite, which lets one writer at a time):
    (session factory, job id, run id, chunk indexes)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite lets one writer at a time")
    load(session)
    job_id = job_of(session, "2026-01")
    factory = db.make_sessionmaker(db_url)
    return (factory, job_id, *planned(factory, job_id))


def case_set(session: Session, run_id: int) -> set[tuple]:
    """The run's flag cases as (outcome, employee, rule, severity, holds, status); each must
    be one flag outcome's, and every flag outcome has one."""
    cases = {(c.outcome_id, c.employee_id, c.rule_key, c.severity, c.holds, c.status)
             for c in session.scalars(select(FlagCase).where(FlagCase.run_id == run_id))}
    flags = {(o.id, o.employee_id, o.rule_key, o.value) for o in session.scalars(
        select(Outcome).where(Outcome.run_id == run_id, Outcome.kind == "flag"))}
    assert {c[:4] for c in cases} == flags and len(cases) == len(flags)
    return cases


def opened_entry(session: Session, run_id: int) -> dict[str, Any]:
    """What the run's audit entry says it did with the period's flag cases."""
    return session.scalar(select(AuditLog.after).where(
        AuditLog.entity == "run", AuditLog.action == "run",
        AuditLog.entity_id == str(run_id)))["flags"]


def test_a_chunked_run_gives_what_one_process_gives(db_url, session, chunked, tmp_path,
                                                    monkeypatch):
    """Outcome by outcome, explanations included, on a month and a quarter. On
    PostgreSQL the processes that walked the population evaluate the chunks with the
    metrics they kept of their parts (engine.facts.kept_for): each chunk says which facts
    it used (in a file: the chunks are the forked processes')."""
    used = tmp_path / "used"
    facts_of = chunks.chunk_facts

    def noted(*args, **kwargs):
        with used.open("a") as out:
            out.write("kept\n" if kwargs.get("kept") is not None else "read\n")
        return facts_of(*args, **kwargs)

    monkeypatch.setattr(chunks, "chunk_facts", noted)
    load(session)
    for code in ("2026-01", "2026-Q1"):
        expected = one_process_run(session, code)
        job_id = job_of(session, code)
        used.write_text("")
        run = jobs.run_here(db.make_sessionmaker(db_url), job_id, workers=2)
        said = used.read_text().split()
        assert len(said) == 5
        if db_url.startswith("postgresql"):  # a worker that ran out of its own takes others'
            assert said.count("kept") >= 2
        else:  # SQLite: the walk's processes are not the chunks'
            assert set(said) == {"read"}
        session.expire_all()
        assert session.scalar(select(func.count()).select_from(RunChunk)
                              .where(RunChunk.run_id == run.id)) == 5
        assert outcome_set(session, run.id) == expected
        job = session.get(RunJob, job_id)
        assert (job.status, job.done, job.total) == ("done", 24, 24)
        # the period's first flags: the chunks opened their cases, one a flag, and the
        # run's entry counts them all, in a range that holds no other case of the period
        cases = case_set(session, run.id)
        if code == "2026-Q1":  # no rule of a quarter flags
            assert not cases and opened_entry(session, run.id) == {}
            continue
        assert cases and {c[-1] for c in cases} == {"open"}
        ids = sorted(session.scalars(select(FlagCase.id).where(FlagCase.run_id == run.id)))
        assert opened_entry(session, run.id) == {
            "opened": {"count": len(cases), "first_id": ids[0], "last_id": ids[-1]}}
        assert compliance.queue_count(session, period_code=code) == len(cases)


def officer(session: Session) -> str:
    from engine.users import create_user

    create_user(session, "officer@x.com", "a long enough password 1", "compliance_officer")
    session.commit()
    return "officer@x.com"


def test_a_chunked_rerun_carries_the_cases_its_chunks_did_not_open(db_url, session, chunked):
    """A second run of the period finds the first run's cases: its chunks open none, and
    its last step attaches its flags to them, decisions kept."""
    load(session)
    officer(session)
    factory = db.make_sessionmaker(db_url)
    first = jobs.run_here(factory, job_of(session, "2026-01"), workers=2)
    session.expire_all()
    before = case_set(session, first.id)
    decided = min(before)[0]
    case = session.scalar(select(FlagCase).where(FlagCase.outcome_id == decided))
    compliance.assign(session, [case.id], "officer@x.com", "officer@x.com")
    session.commit()
    case_id = case.id
    second = jobs.run_here(factory, job_of(session, "2026-01"), workers=2)
    session.expire_all()
    after = case_set(session, second.id)
    assert len(after) == len(before)
    assert session.get(FlagCase, case_id).status == "in_review"
    assert session.get(FlagCase, case_id).run_id == second.id
    assert set(session.scalars(select(FlagCase.id))) == set(session.scalars(
        select(FlagCase.id).where(FlagCase.run_id == second.id)))
    assert opened_entry(session, second.id)["carried"] == {"in_review": 1,
                                                           "open": len(after) - 1}


def test_the_cases_a_running_run_opened_are_nobodys_yet(db_url, session, chunked):
    """A chunk opens its flags' cases as it stores them: until the run is stored they are
    in no queue, cannot be read or decided, and a cancelled run takes them away."""
    load(session)
    officer(session)
    job_id = job_of(session, "2026-01")
    factory = db.make_sessionmaker(db_url)
    run_id = every_chunk_done(factory, job_id)
    session.expire_all()
    early = list(session.scalars(select(FlagCase).where(FlagCase.run_id == run_id)))
    assert early
    assert compliance.queue(session, include_discarded=True) == []
    assert compliance.queue_count(session, include_discarded=True) == 0
    with pytest.raises(NotFound):
        compliance.get_case(session, early[0].id)
    with pytest.raises(NotFound):
        compliance.assign(session, [early[0].id], "officer@x.com", "officer@x.com")
    session.rollback()
    jobs.cancel(session, job_id, "x@x.com")
    session.commit()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(FlagCase)) == 0


def test_celery_tasks_plan_evaluate_and_finish_a_run(db_url, session, chunked):
    load(session)
    expected = one_process_run(session, "2026-02")
    job_id = job_of(session, "2026-02")
    jobs.dispatch(job_id)  # each task at once (tests/conftest.py)
    session.expire_all()
    job = session.get(RunJob, job_id)
    assert job.status == "done" and session.get(Run, job.run_id).status == "calculated"
    assert outcome_set(session, job.run_id) == expected


def test_a_chunk_whose_worker_was_lost_is_redone_once(db_url, session, chunked,
                                                      monkeypatch):
    load(session)
    monkeypatch.setenv("LAUREL_RUN_LEASE", "1")
    expected = one_process_run(session, "2026-03")
    job_id = job_of(session, "2026-03")
    factory = db.make_sessionmaker(db_url)
    run_id, indexes = planned(factory, job_id)
    for index in indexes:  # every chunk done by a first worker...
        assert chunks.evaluate_chunk(factory, run_id, index, worker="first") == "done"
    with factory() as s:  # ...but chunk 2 as if that worker died before it stored it
        s.execute(update(RunChunk).where(RunChunk.run_id == run_id, RunChunk.index == 2)
                  .values(status="running", worker="gone",
                          beat=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)))
        s.commit()
    assert chunks.evaluate_chunk(factory, run_id, 2, worker="other") == "done"
    with factory() as s:
        s.execute(update(RunChunk).where(RunChunk.run_id == run_id, RunChunk.index == 3)
                  .values(status="running", worker="busy", beat=dt.datetime.now(dt.UTC)))
        s.commit()
    # a live lease keeps another worker off the chunk; an expired one lets watch requeue it
    assert chunks.evaluate_chunk(factory, run_id, 3, worker="other") == "taken"
    time.sleep(1.2)
    with factory() as s:
        jobs.watch(s, s.get(RunJob, job_id), redispatch=False)
        assert s.scalar(select(RunChunk.status).where(RunChunk.run_id == run_id,
                                                      RunChunk.index == 3)) == "queued"
    assert chunks.evaluate_chunk(factory, run_id, 3, worker="other") == "done"
    with factory() as s:
        chunks.finish(s, run_id)
        s.commit()
    session.expire_all()
    assert outcome_set(session, run_id) == expected  # nothing twice, nothing missing
    assert case_set(session, run_id)  # one case a flag: the redone chunk's opened again


def test_a_data_failure_in_one_chunk_fails_the_run_and_shows_nothing(db_url, session, chunked,
                                                                     monkeypatch):
    load(session)
    real = runs.employee_outcomes

    def failing(ef: Any, *args: Any, **kwargs: Any) -> Any:
        if ef.code == "E012":
            raise ArithmeticError("boom")
        return real(ef, *args, **kwargs)

    monkeypatch.setattr(runs, "employee_outcomes", failing)
    job_id = job_of(session, "2026-01")
    with pytest.raises(RunFailed, match="employee E012: ArithmeticError: boom"):
        jobs.run_here(db.make_sessionmaker(db_url), job_id)
    session.expire_all()
    job = session.get(RunJob, job_id)
    run = session.get(Run, job.run_id)
    assert job.status == run.status == "failed" and "E012" in run.error
    assert session.scalar(select(func.count()).select_from(Outcome)) == 0
    assert session.scalar(select(func.count()).select_from(FlagCase)) == 0
    jobs.start(session, "2026-01", "y@x.com")  # the period is free again


def test_a_cancelled_run_keeps_nothing_and_its_tasks_stop(db_url, session, chunked):
    load(session)
    job_id = job_of(session, "2026-01")
    factory = db.make_sessionmaker(db_url)
    run_id, indexes = planned(factory, job_id)
    assert chunks.evaluate_chunk(factory, run_id, indexes[0]) == "done"
    jobs.cancel(session, job_id, "x@x.com")
    session.commit()
    assert chunks.evaluate_chunk(factory, run_id, indexes[1]) == "over"
    session.expire_all()
    assert session.get(Run, run_id).status == "cancelled"
    assert session.scalar(select(func.count()).select_from(Outcome)) == 0
    assert session.scalar(select(func.count()).select_from(FlagCase)) == 0


class CancelMeanwhile:
    """A cancel of the job from another connection, started by ``start`` and waited for
    until it waits on a lock (or is over): ``outcome`` is None once it cancelled, else
    what it raised; ``join`` waits for it to end."""

    def __init__(self, factory: Any, job_id: int) -> None:
        self.factory, self.job_id = factory, job_id
        self.outcome: list[BaseException | None] = []
        self.thread: Any = None

    def _cancel(self) -> None:
        try:
            with self.factory() as s:
                jobs.cancel(s, self.job_id, "x@x.com")
                s.commit()
            self.outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - said by the test
            self.outcome.append(exc)

    def start(self) -> None:
        import threading

        from sqlalchemy import text

        self.thread = threading.Thread(target=self._cancel)
        self.thread.start()
        with self.factory() as watcher:
            deadline = time.monotonic() + 30
            while not self.outcome and watcher.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND wait_event_type = 'Lock'")) == 0:
                assert time.monotonic() < deadline, "the cancel never waited"
                watcher.rollback()
                time.sleep(0.05)

    def join(self) -> None:
        self.thread.join(60)


def test_a_run_cancelled_while_a_chunk_stores_its_outcomes_keeps_nothing(db_url, session,
                                                                        chunked, monkeypatch):
    """A cancel (or another chunk's failure) that comes while a chunk is storing its
    outcomes and opening its cases, on another worker, waits for that chunk: its outcomes
    and cases go with the run's others, none is left to a cancelled run (they were: the
    cancel deleted the outcomes it saw, then waited on the chunk's row only to mark it)."""
    factory, job_id, run_id, indexes = planned_on_postgres(db_url, session)
    real = compliance.open_chunk_cases
    cancel = CancelMeanwhile(factory, job_id)

    def opened_then_cancelled(s: Session, *args: Any, **kwargs: Any) -> None:
        real(s, *args, **kwargs)  # the chunk's outcomes and cases written, not committed
        cancel.start()  # until the cancel waits on a lock the chunk holds

    monkeypatch.setattr(compliance, "open_chunk_cases", opened_then_cancelled)
    chunks.evaluate_chunk(factory, run_id, indexes[0])
    cancel.join()
    assert cancel.outcome == [None]
    session.expire_all()
    assert session.get(Run, run_id).status == "cancelled"
    assert session.scalar(select(func.count()).select_from(Outcome)) == 0
    assert session.scalar(select(func.count()).select_from(FlagCase)) == 0


def test_an_employee_edited_while_a_chunk_stores_its_outcomes_is_not_kept_waiting(
        db_url, session, chunked, monkeypatch):
    """A chunk storing its outcomes holds its employees as their keys' checks would (FOR
    KEY SHARE: none may be deleted or have its id changed meanwhile), not against edits:
    HR changing an employee's name meanwhile is not kept waiting for the chunk (it was,
    by FOR NO KEY UPDATE), and the chunk's outcomes are stored."""
    from sqlalchemy.exc import OperationalError

    from engine.models import Employee

    factory, _, run_id, indexes = planned_on_postgres(db_url, session)
    with factory() as s:
        first = s.scalar(select(RunChunk.first_employee).where(
            RunChunk.run_id == run_id, RunChunk.index == indexes[0]))
    real = compliance.open_chunk_cases
    seen: list[Any] = []

    def edited_meanwhile(s: Session, *args: Any, **kwargs: Any) -> None:
        real(s, *args, **kwargs)  # the chunk's outcomes written, its employees held, not committed
        with factory() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            try:
                other.execute(update(Employee).where(Employee.id == first)
                              .values(name="Renamed Meanwhile"))
                other.commit()
                seen.append("edited")
            except OperationalError as exc:
                other.rollback()
                seen.append(exc)
        # and no one may delete it meanwhile: the chunk's outcomes refer to it
        with factory() as other:
            other.execute(text("SET LOCAL lock_timeout = '500ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                other.execute(delete(Employee).where(Employee.id == first))
            other.rollback()

    monkeypatch.setattr(compliance, "open_chunk_cases", edited_meanwhile)
    assert chunks.evaluate_chunk(factory, run_id, indexes[0]) == "done"
    assert seen == ["edited"]
    session.expire_all()
    assert session.get(Employee, first).name == "Renamed Meanwhile"
    assert session.scalar(select(func.count()).select_from(Outcome).where(
        Outcome.run_id == run_id, Outcome.employee_id == first))


def test_a_chunk_that_waited_for_a_cancel_to_store_its_outcomes_keeps_nothing(
        db_url, session, chunked, monkeypatch):
    """A chunk about to store its outcomes while a cancel holds the run's chunks waits for
    it, then reads the run as the cancel left it: over, nothing stored, the chunk stopped
    (read with the chunk's row in one statement, the run's status was the one from before
    the wait: the chunk stored its outcomes into the cancelled run and marked itself done)."""
    import threading

    factory, _, run_id, indexes = planned_on_postgres(db_url, session)
    real = chunks._lock_chunk
    calls: list[int] = []

    def cancelled_meanwhile(s: Session, run: int, index: int) -> Any:
        calls.append(index)
        if len(calls) != 2:  # the claim
            return real(s, run, index)
        # the store: a cancel holds the run's chunks until it commits, a second later
        holder = factory()
        assert chunks.fail(holder, run, "cancelled meanwhile", status="cancelled")
        later = threading.Timer(1.0, lambda: (holder.commit(), holder.close()))
        later.start()
        try:
            return real(s, run, index)  # waits for the cancel
        finally:
            later.join()

    monkeypatch.setattr(chunks, "_lock_chunk", cancelled_meanwhile)
    assert chunks.evaluate_chunk(factory, run_id, indexes[0]) == "over"
    session.expire_all()
    assert session.get(Run, run_id).status == "cancelled"
    assert session.scalar(select(func.count()).select_from(Outcome)) == 0
    assert session.scalar(select(func.count()).select_from(FlagCase)) == 0
    assert session.scalar(select(RunChunk.status).where(
        RunChunk.run_id == run_id, RunChunk.index == indexes[0])) == "stopped"


def test_a_cancel_that_comes_while_the_run_is_stored_finds_it_stored(db_url, session,
                                                                      chunked, monkeypatch):
    """The last step holds the run's row while it stores the run: a cancel that comes
    meanwhile waits, then finds the run calculated and says there is nothing to cancel
    (it deleted the outcomes of the run the last step then stored as calculated)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite lets one writer at a time")
    from engine.errors import LaurelError

    load(session)
    job_id = job_of(session, "2026-01")
    factory = db.make_sessionmaker(db_url)
    run_id = every_chunk_done(factory, job_id)
    real = compliance.carry_cases
    cancel = CancelMeanwhile(factory, job_id)

    def carried_while_cancelled(s: Session, *args: Any, **kwargs: Any) -> Any:
        cancel.start()  # until the cancel waits on a lock the last step holds
        return real(s, *args, **kwargs)

    monkeypatch.setattr(compliance, "carry_cases", carried_while_cancelled)
    with factory() as s:
        assert chunks.finish(s, run_id) is not None
        s.commit()
    cancel.join()
    assert len(cancel.outcome) == 1 and isinstance(cancel.outcome[0], LaurelError)
    assert "nothing to cancel" in str(cancel.outcome[0])
    session.expire_all()
    assert session.get(Run, run_id).status == "calculated"
    assert session.get(RunJob, job_id).status == "done"
    assert outcome_set(session, run_id) and case_set(session, run_id)


def test_a_job_nobody_works_on_stalls_then_fails(session):
    load(session)
    job = jobs.start(session, "2026-01", "x@x.com")
    job.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=jobs.STALL + 5)
    session.commit()
    assert jobs.stalled(session, job) is not None and job.status == "queued"
    with pytest.raises(RunInProgress):  # stalled, not yet given up: the period is busy
        jobs.start(session, "2026-01", "y@x.com")
    session.rollback()
    job = session.get(RunJob, job.id)
    job.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=jobs.GIVE_UP + 5)
    session.commit()
    jobs.watch(session, job)
    assert job.status == "failed" and "no worker took the run's work" in job.error
    jobs.start(session, "2026-01", "y@x.com")


def test_memory_of_a_chunk_does_not_grow_with_the_chunks(db_url, session, monkeypatch):
    """The peak of a chunked run's evaluation is bounded by the chunk: four times the
    employees in four times the chunks keep it about level."""
    peaks = []
    for seed, employees in ((3, 30), (4, 120)):
        emps, results = organisation(seed, employees=employees)
        from engine.imports import import_employees, import_results

        import_employees(session, "e.csv", data=emps.encode())
        import_results(session, "r.csv", data=results.encode())
        session.commit()
        monkeypatch.setenv("LAUREL_RUN_CHUNK", "10")
        job_id = job_of(session, "2026-01")
        factory = db.make_sessionmaker(db_url)
        with factory() as s:
            indexes = chunks.plan(s, job_id)
            s.commit()
            run_id = s.get(RunJob, job_id).run_id
        tracemalloc.start()
        for index in indexes:
            chunks.evaluate_chunk(factory, run_id, index)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        with factory() as s:
            chunks.finish(s, run_id)
            s.commit()
    assert peaks[1] < 2 * peaks[0], peaks


def _redis() -> str | None:
    url = os.environ.get("LAUREL_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001 - no server: the test says so
        return None
    return url


@pytest.mark.slow
@pytest.mark.skipif(_redis() is None, reason="needs redis-server (.ci/run starts it)")
def test_two_real_workers_one_killed_midway_give_the_one_process_run(db_url, session,
                                                                     tmp_path, monkeypatch):
    """Two `laurel worker` processes on Redis; one is killed with SIGKILL while it holds a
    chunk; the other redoes it and the run equals a one-process run, outcome by outcome."""
    import redis

    # the waiting side (jobs.watch) gives a silent worker's chunk away after the same lease
    monkeypatch.setenv("LAUREL_RUN_LEASE", "3")

    url = _redis()
    # a queue of its own: another test run on the same Redis must not take these chunks
    queue = f"laurel-test-{uuid.uuid4().hex}"
    emps, results = organisation(11, employees=1200)
    from engine.imports import import_employees, import_results

    import_employees(session, "e.csv", data=emps.encode())
    import_results(session, "r.csv", data=results.encode())
    session.commit()
    expected = one_process_run(session, "2026-02")
    env = dict(os.environ, LAUREL_BROKER_URL=url, LAUREL_DATABASE_URL=db_url,
               LAUREL_RUN_CHUNK="100", LAUREL_RUN_LEASE="3", LAUREL_TASKS_EAGER="false",
               LAUREL_QUEUE=queue)
    workers = [subprocess.Popen([sys.executable, "-m", "admin.cli", "worker", "--loglevel",
                                 "WARNING"], cwd=ROOT, env=env, start_new_session=True)
               for _ in range(2)]
    try:
        job_id = job_of(session, "2026-02")
        from engine import tasks

        os.environ["LAUREL_BROKER_URL"] = url
        os.environ["LAUREL_QUEUE"] = queue
        os.environ["LAUREL_TASKS_EAGER"] = "false"
        tasks.reconfigure()
        try:
            jobs.dispatch(job_id)
            victim = None
            deadline = time.monotonic() + 60
            while victim is None and time.monotonic() < deadline:
                session.expire_all()
                held = session.execute(select(RunChunk.run_id, RunChunk.index, RunChunk.worker)
                                       .where(RunChunk.status == "running").limit(1)).first()
                pid = int(held.worker.rsplit(":", 1)[1]) if held and held.worker else None
                if pid in (w.pid for w in workers):
                    # frozen first: killed only if the chunk is still its own and unfinished
                    os.kill(pid, signal.SIGSTOP)
                    session.expire_all()
                    now = session.execute(select(RunChunk.status, RunChunk.worker).where(
                        RunChunk.run_id == held.run_id, RunChunk.index == held.index)).one()
                    if tuple(now) == ("running", held.worker):
                        victim = pid
                        os.kill(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGCONT)
                time.sleep(0.05)
            assert victim, "no worker took a chunk"
            job = jobs.wait(db.make_sessionmaker(db_url), job_id, timeout=240)
        finally:
            os.environ.pop("LAUREL_BROKER_URL", None)
            os.environ.pop("LAUREL_QUEUE", None)
            os.environ["LAUREL_TASKS_EAGER"] = "true"
            tasks.reconfigure()
        session.expire_all()
        assert job.status == "done", job.error
        assert outcome_set(session, job.run_id) == expected
        assert case_set(session, job.run_id)  # one case a flag, the killed chunk's too
        redone = session.scalar(select(func.count()).select_from(RunChunk).where(
            RunChunk.run_id == job.run_id, RunChunk.attempts > 1))
        assert redone >= 1
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGKILL)
            w.wait()
        redis.Redis.from_url(url).delete(queue)


def test_a_worker_command_starts_and_says_what_it_serves(tmp_path):
    """`laurel worker --help` documents the broker setting (no broker needed to ask)."""
    out = subprocess.run([sys.executable, "-m", "admin.cli", "worker", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "LAUREL_BROKER_URL" in out.stdout


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=2_000_000),
       st.sampled_from(["", "1", "499", "1000", "2500", "5000", "70000"]))
def test_a_runs_chunks_hold_its_employees_once_the_last_ones_halved(employees, given_size):
    """chunk_sizes: the chunks hold every employee once; the last chunk's worth of a run of
    more than two chunks (of 1,000 employees or more) is cut in halves, none under
    MIN_CHUNK; otherwise the chunks are of one size, the last one what is left."""
    import os

    was = os.environ.get("LAUREL_RUN_CHUNK")
    os.environ["LAUREL_RUN_CHUNK"] = given_size
    try:
        size = chunks.chunk_size(employees)
        sizes = chunks.chunk_sizes(employees)
    finally:  # as it was (a function-scoped monkeypatch is not for @given)
        if was is None:
            del os.environ["LAUREL_RUN_CHUNK"]
        else:
            os.environ["LAUREL_RUN_CHUNK"] = was
    assert sum(sizes) == employees and all(0 < s <= size for s in sizes)
    if size < 2 * chunks.MIN_CHUNK or employees <= 2 * size:
        assert sizes == [size] * (len(sizes) - 1) + [employees - size * (len(sizes) - 1)]
        return
    full = sizes.index(next(s for s in sizes if s < size))  # whole chunks first
    assert sizes[:full] == [size] * full
    tail = sizes[full:]  # the last chunk's worth, less than a chunk and MIN_CHUNK more
    assert sum(tail) < size + chunks.MIN_CHUNK
    assert all(s >= chunks.MIN_CHUNK for s in tail)
    assert tail[:-1] == sorted(tail[:-1], reverse=True)  # halved (the last: what is left)
    assert len(tail) <= 2 + (sum(tail) // chunks.MIN_CHUNK).bit_length()


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=2_000_000), st.integers(min_value=1, max_value=8),
       st.sampled_from(["", "1", "2500", "70000"]))
def test_each_walkers_chunks_end_with_halves(employees, processes, given_size):
    """walk_chunks: every employee once, in parts of whole chunks of at most a batch
    (unless a chunk is larger), as many parts as facts.part_count says or fewer; the
    parts before the last ``processes`` are whole chunks, and each of the last ones is
    cut as chunk_sizes cuts a run of its size (its last chunk's worth in halves), so
    that each process, walking one of them last, ends with its halves."""
    import os

    from engine import facts

    was = os.environ.get("LAUREL_RUN_CHUNK")
    os.environ["LAUREL_RUN_CHUNK"] = given_size
    try:
        size = chunks.chunk_size(employees)
        parts = chunks.walk_chunks(employees, processes)
        tails = [chunks.chunk_sizes(sum(part), size) for part in parts[-processes:]]
    finally:  # as it was (a function-scoped monkeypatch is not for @given)
        if was is None:
            del os.environ["LAUREL_RUN_CHUNK"]
        else:
            os.environ["LAUREL_RUN_CHUNK"] = was
    assert sum(map(sum, parts)) == employees
    assert all(part and all(0 < s <= size for s in part) for part in parts)
    assert len(parts) <= facts.part_count(employees, processes)
    assert all(sum(part) <= max(facts.BATCH, size) for part in parts)
    assert parts[-processes:] == tails
    for part in parts[:-processes]:  # whole chunks, the last one what is left
        assert part[:-1] == [size] * (len(part) - 1)
    # the same, said without chunk_sizes: each of the last parts that holds more than two
    # chunks of 1,000 or more ends with chunks under a whole one, each MIN_CHUNK or more,
    # halved (the last: what is left)
    for part in parts[-processes:]:
        if size >= 2 * chunks.MIN_CHUNK and sum(part) > 2 * size:
            tail = [s for s in part if s < size]
            assert tail and part[-len(tail):] == tail
            assert all(s >= chunks.MIN_CHUNK for s in tail)
            assert tail[:-1] == sorted(tail[:-1], reverse=True)


def test_the_population_walked_in_parts_is_the_population_walked_whole(session):
    """A run's worker processes walk the population in parts (engine.jobs._walker) and
    the parts are merged: the same team sums, member counts and ranks, the same
    maximum, however finely it is cut, on a month and a quarter (months rolled up)."""
    from engine import facts
    from engine.metrics import load_catalog

    load(session)
    ranked = ["satisfaction", "attainment", "revenue_total"]

    def one_by_one(parts, walk):
        assert len(parts) == 8  # parts of 3 employees
        return [walk(session, first, last) for first, last in parts]

    for code in ("2026-01", "2026-Q1"):
        period = runs.periods.require(session, code)
        whole = facts.population(session, period, ranked, load_catalog(session))
        parts = facts.population(session, period, ranked, load_catalog(session),
                                 walker=one_by_one, parts=8)
        assert parts.to_json() == whole.to_json()
        assert [r.maximum for r in parts.ranks.values()] \
            == [r.maximum for r in whole.ranks.values()]
        assert all(1 < r.n <= 24 for r in whole.ranks.values())
        assert len(whole.teams) > 1


def test_what_a_walk_keeps_is_what_a_chunk_reads_and_derives(session, monkeypatch):
    """A walker keeps its part's metrics as chunk_facts derives them from the results,
    key for key and in order, on a month and a quarter; a chunk uses them once (then
    reads again); a part that would take the process past KEEP_MAX is not kept, counted
    by its employees, not by the width of its ids; what another process kept (the one
    this was forked from) is not used."""
    from engine import facts
    from engine.metrics import load_catalog

    load(session)
    ids = sorted(session.scalars(select(runs.Employee.id)))
    first, last = ids[0], ids[-1]
    monkeypatch.setattr(facts, "_KEPT", {})
    for code in ("2026-01", "2026-Q1"):
        period = runs.periods.require(session, code)
        compiled, _ = runs.compile_for(session, period)
        needed = runs.facts_read_by(compiled)
        ranked = sorted(compiled.population)
        catalog = load_catalog(session)
        context = facts.population(session, period, ranked, catalog)
        found = facts.walk(session, period, ranked, catalog, first, last, keep=needed)
        assert found.kept
        kept = facts.kept_for(period.id, needed, first, last)
        by_kept = facts.chunk_facts(session, period, context, first, last, catalog,
                                    needed=needed, kept=kept)
        read = facts.chunk_facts(session, period, context, first, last, catalog,
                                 needed=needed)
        assert [(f.code, list(f.values.items())) for f in by_kept] \
            == [(f.code, list(f.values.items())) for f in read]
        facts.forget_kept(first, last)
        assert facts.kept_for(period.id, needed, first, last) is None
    # ids spread wide: a part of 24 employees is kept under a limit of 30, not one of 20
    monkeypatch.setattr(facts, "KEEP_MAX", 30)
    monkeypatch.setattr(facts, "_KEPT", {})
    assert facts.walk(session, period, ranked, catalog, first, first + 10 ** 6,
                      keep=needed).kept
    monkeypatch.setattr(facts, "KEEP_MAX", 20)
    monkeypatch.setattr(facts, "_KEPT", {})
    assert not facts.walk(session, period, ranked, catalog, first, last, keep=needed).kept
    assert facts.kept_for(period.id, needed, first, last) is None
    # kept by another process (the key names the process)
    monkeypatch.setattr(facts, "KEEP_MAX", 30)
    facts.walk(session, period, ranked, catalog, first, last, keep=needed)
    assert facts.kept_for(period.id, needed, first, last) is not None
    monkeypatch.setattr(facts.os, "getpid", lambda: -1)
    assert facts.kept_for(period.id, needed, first, last) is None


def test_the_chunk_that_brings_half_the_run_in_analyses_the_outcomes(
        db_url, session, chunked, monkeypatch):
    """On PostgreSQL the outcomes' statistics are refreshed once half the run's employees
    are in, by that chunk, and the job notes it: the last step, which every worker waits
    for, does not again. Where no chunk did (SQLite keeps no statistics), the last step
    does, as before."""
    from engine import bulk

    monkeypatch.setattr(bulk, "ANALYZE_AFTER", 1)
    calls: list[tuple[str, int]] = []
    analyze = bulk.analyze

    def spied(s, *tables, **kwargs):
        calls.extend((t.name, s.scalar(select(func.count()).select_from(RunChunk).where(
            RunChunk.status == "done"))) for t in tables)
        return analyze(s, *tables, **kwargs)

    monkeypatch.setattr(bulk, "analyze", spied)
    load(session)
    expected = one_process_run(session, "2026-01")
    calls.clear()
    run = jobs.run_here(db.make_sessionmaker(db_url), job_of(session, "2026-01"), workers=1)
    session.expire_all()
    assert outcome_set(session, run.id) == expected
    job = session.scalar(select(RunJob).where(RunJob.run_id == run.id))
    analysed = [done for name, done in calls if name == "outcome"]
    if db_url.startswith("postgresql"):
        # five chunks of 24 employees: the third brings 15 in, past half; once
        assert job.analysed_at is not None and analysed == [3]
    else:
        assert job.analysed_at is None and analysed == [3, 5]  # and the last step's


def test_a_runs_analyze_samples_fewer_rows_and_leaves_the_setting_as_it_was(db_url, session):
    """A run's ANALYZE (bulk.analyze with ``sample``) samples to its own statistics target,
    in its transaction alone: what follows in the transaction, and an ANALYZE without it,
    have the server's default again (seen in the histogram of the outcomes' ids, every
    one distinct)."""
    from sqlalchemy import text

    from engine import bulk

    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's planner statistics")
    load(session)
    runs.start_run(session, "2026-01", actor="x@x.com")
    session.commit()
    outcomes = session.scalar(select(func.count()).select_from(Outcome))
    assert outcomes > 30
    default = session.scalar(text("SHOW default_statistics_target"))

    def bounds() -> int:
        return session.scalar(text("SELECT cardinality(histogram_bounds::text::text[]) "
                                   "FROM pg_stats WHERE tablename = 'outcome' "
                                   "AND attname = 'id'"))

    assert bulk.analyze(session, Outcome.__table__, rows=bulk.ANALYZE_AFTER, sample=5)
    assert bounds() <= 6  # a target of 5: at most 6 bounds
    assert session.scalar(text("SHOW default_statistics_target")) == default
    assert bulk.analyze(session, Outcome.__table__, rows=bulk.ANALYZE_AFTER)
    assert bounds() == min(outcomes, int(default) + 1)


def where_called(fn: Any, thread: str, where: list[str]) -> Any:
    """fn, noting in ``where`` each call's thread: "meanwhile" in one whose name starts
    with ``thread``, else "here"."""
    import threading

    def spied(*args: Any, **kwargs: Any) -> Any:
        where.append("meanwhile" if threading.current_thread().name.startswith(thread)
                     else "here")
        return fn(*args, **kwargs)

    return spied


def test_a_runs_team_figures_worked_out_meanwhile_are_its_figures(db_url, session, chunked,
                                                                  monkeypatch):
    """A run of this process's workers on PostgreSQL works its team figures out in a
    thread while the chunks run, and its last step keeps them: the figures the run's
    context gives (run_figures), as the last step works them out itself elsewhere (SQLite,
    one worker, a failed thread)."""
    import threading

    where: list[str] = []
    real = chunks.run_figures
    spied = where_called(real, "laurel-figures", where)
    monkeypatch.setattr(chunks, "run_figures", spied)
    load(session)
    factory = db.make_sessionmaker(db_url)
    run = jobs.run_here(factory, job_of(session, "2026-01"), workers=2)
    postgres = db_url.startswith("postgresql")
    assert where == (["meanwhile"] if postgres else ["here"])
    session.expire_all()
    teams = session.get(Run, run.id).figures["teams"]
    assert teams and teams == real(session, run.id)["teams"]
    # a thread that fails: the last step works them out
    where.clear()

    def failing(s, run_id):
        if threading.current_thread().name.startswith("laurel-figures"):
            where.append("failed")
            raise RuntimeError("the figures' thread failed")
        return spied(s, run_id)

    monkeypatch.setattr(chunks, "run_figures", failing)
    again = jobs.run_here(factory, job_of(session, "2026-01"), workers=2)
    assert where == (["failed", "here"] if postgres else ["here"])
    session.expire_all()
    assert session.get(Run, again.id).figures["teams"] == teams


def test_a_runs_totals_summed_meanwhile_are_its_totals(db_url, session, chunked,
                                                        monkeypatch):
    """The last step adds up the sums each chunk kept of its outcomes: used where nothing
    it does changes the outcomes (a first run), and not where carried decisions set the
    status of the payouts they hold (a re-run after a flag was confirmed: summed in its
    transaction then). Where a chunk kept none (an earlier version's), PostgreSQL sums the
    run's outcomes up on a connection of its own meanwhile. The stored totals are the
    totals every way."""
    from engine import compliance, statements
    from engine.models import FlagCase

    where: list[str] = []
    monkeypatch.setattr(statements, "outcome_groups",
                        where_called(statements.outcome_groups, "laurel-totals", where))
    load(session)
    cat = officer(session)
    factory = db.make_sessionmaker(db_url)
    first = jobs.run_here(factory, job_of(session, "2026-01"), workers=2)
    session.expire_all()
    first = session.get(Run, first.id)
    postgres = db_url.startswith("postgresql")
    assert where == []  # the chunks' sums, added up
    assert first.figures["totals"] == statements.outcome_totals(session, first)
    assert chunks._chunks_summed(session, first.id) == statements.outcome_groups(session,
                                                                                first.id)
    # a held payout's flag confirmed: the re-run carries the decision, which forfeits it
    case = session.scalars(select(FlagCase).where(FlagCase.run_id == first.id,
                                                  FlagCase.holds)).first()
    compliance.assign(session, [case.id], cat, cat)
    compliance.decide(session, case.id, "confirmed", "beyond authority", cat)
    session.commit()
    where.clear()
    second = jobs.run_here(factory, job_of(session, "2026-01"), workers=2)
    session.expire_all()
    second = session.get(Run, second.id)
    # worked out here: the carried decision changed them
    assert where == ["here"]
    totals = statements.outcome_totals(session, second)
    assert second.figures["totals"] == totals
    assert totals["by_status"]["forfeited"] != "0.00"
    # a run whose chunks kept no sums: summed meanwhile on PostgreSQL, here on SQLite
    where.clear()
    job_id = job_of(session, "2026-02")
    run_id = every_chunk_done(factory, job_id)
    with factory() as s:
        s.execute(update(RunChunk).where(RunChunk.run_id == run_id, RunChunk.index == 1)
                  .values(sums=None))
        chunks.finish(s, run_id)
        s.commit()
    assert where == (["meanwhile"] if postgres else ["here"])
    session.expire_all()
    assert session.get(Run, run_id).figures["totals"] == statements.outcome_totals(
        session, session.get(Run, run_id))
