"""Runs started from the back office, evaluated in a worker process.

``start(session, period, actor)`` records a job and starts ``python -m engine.jobs JOB_ID``
as a process of its own; the worker writes its progress (employees done out of total) in
short transactions and writes the run and its outcomes in one transaction at the end. A
worker that crashes or is killed leaves no outcomes: ``refresh`` finds its process gone and
marks the job failed with the reason. One of the run's own evaluation processes that dies
fails the run at once (engine.runs): the worker records the failure and the job's reason.
A period has one job at a time.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import periods
from engine.db import database_url, session_scope
from engine.errors import LaurelError, RunError, RunFailed, RunInProgress
from engine.models import RunJob

ACTIVE = ("queued", "running")
_children: dict[int, subprocess.Popen[bytes]] = {}


def start(session: Session, period_code: str, actor: str, spawn: bool = True) -> RunJob:
    """Record a run job for the period and start its worker process.

    One job per period at a time: while a job of the period is queued or running (and its
    process alive), another start is refused (RunInProgress names it). The check and the
    new job are made under the period's lock, so two clicks at once start one job.
    """
    period = periods.require(session, period_code)
    period = periods.serialise(session, period.id)
    if period.status == "locked":
        raise RunError(f"period {period_code} is locked: no new run starts")
    for active in session.scalars(select(RunJob).where(RunJob.period_code == period.code,
                                                       RunJob.status.in_(ACTIVE))):
        if not _mark_if_gone(active):
            raise RunInProgress(period.code, active.id, active.started_by)
    job = RunJob(period_code=period.code, status="queued", started_by=actor)
    session.add(job)
    session.flush()
    if spawn:
        session.commit()
        env = dict(os.environ, LAUREL_DATABASE_URL=database_url())
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own module, no shell
                [sys.executable, "-m", "engine.jobs", str(job.id)], env=env,
                cwd=str(Path(__file__).resolve().parent.parent), start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:  # a job without a process would hold the period for ever
            job.status, job.finished_at = "failed", dt.datetime.now(dt.UTC)
            job.error = f"the worker process did not start: {exc}"
            session.commit()
            raise RunError(job.error) from None
        _children[job.id] = proc
        job.pid = proc.pid
        session.commit()
    return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child not yet reaped is a zombie: gone for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True


def _mark_if_gone(job: RunJob) -> bool:
    """Mark an active job failed when its worker process is gone; True when it is (now) over.

    A job queued without a process yet is not gone.
    """
    if job.status not in ACTIVE:
        return True
    if job.pid and not _alive(job.pid):
        job.status = "failed"
        job.error = job.error or ("the worker process stopped before the run finished "
                                  "(it crashed or was killed); nothing was stored")
        job.finished_at = dt.datetime.now(dt.UTC)
        return True
    return False


def refresh(session: Session, job: RunJob) -> RunJob:
    """Mark an active job failed when its worker process is gone."""
    proc = _children.get(job.id)
    if proc is not None and proc.poll() is not None:  # reaped: no zombie left behind
        _children.pop(job.id, None)
    session.refresh(job)
    if job.status in ACTIVE and _mark_if_gone(job):
        session.commit()
    return job


def run_job(job_id: int, url: str | None = None) -> None:
    """Evaluate a job's run in this process (the worker's body)."""
    with session_scope(url) as session:
        job = session.get(RunJob, job_id)
        if job is None:
            raise LaurelError(f"run job {job_id} does not exist")
        job.status, job.pid = "running", os.getpid()
        code, actor = job.period_code, job.started_by
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.5:
            return
        last[0] = now
        with session_scope(url) as s:
            s.info["audit_off"] = True
            j = s.get(RunJob, job_id)
            j.done, j.total = done, total

    from engine import runs

    try:
        with session_scope(url, actor=actor) as session:
            result = runs.start_run(session, code, actor=actor, progress=progress)
            run_id = result.run.id
            employees = result.employees
    except LaurelError as exc:
        with session_scope(url, actor=actor) as session:
            if isinstance(exc, RunFailed):
                runs.record_failure(session, code, actor, str(exc))
            j = session.get(RunJob, job_id)
            j.status, j.error, j.finished_at = "failed", str(exc), dt.datetime.now(dt.UTC)
        return
    except Exception as exc:  # the worker must leave a reason behind, whatever happened
        with session_scope(url, actor=actor) as session:
            j = session.get(RunJob, job_id)
            j.status = "failed"
            j.error = f"{type(exc).__name__}: {exc}"
            j.finished_at = dt.datetime.now(dt.UTC)
        raise
    with session_scope(url) as session:
        j = session.get(RunJob, job_id)
        j.status, j.run_id, j.done, j.total = "done", run_id, employees, employees
        j.finished_at = dt.datetime.now(dt.UTC)


if __name__ == "__main__":
    run_job(int(sys.argv[1]))
