"""Run jobs: a run asked for (back office, command line, API), done as Celery work.

``start`` records a job for a period (one at a time per period, decided under the
period's lock) and ``dispatch`` hands it to Celery (engine.tasks): plan, one task per
chunk, finish (engine.chunks). ``run_here`` does the same steps in this process, sharing
the chunks among forked processes: the command line with no broker. ``watch`` keeps a
job honest while someone waits on it: a chunk whose worker stopped renewing its lease
goes back to the queue (at most ``ATTEMPTS`` times), and a job nobody works on shows as
stalled, then fails with the time and the reason. ``cancel`` stops a job and its run.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import chunks, forks, periods
from engine.db import begin_writing, make_sessionmaker
from engine.errors import LaurelError, NotFound, RunError, RunFailed, RunInProgress
from engine.facts import Walk
from engine.messages import msg
from engine.models import Run, RunChunk, RunJob

ACTIVE = ("queued", "running")
ATTEMPTS = 3  # a chunk whose workers died this many times fails its run
STALL = 60.0  # seconds without any work on a job before it shows as stalled
GIVE_UP = 600.0  # seconds without any work before a stalled job fails


def _end(session: Session, job: RunJob, reason: str, status: str = "failed") -> None:
    """End an active job (failed or cancelled) with its reason; its run's outcomes go.
    A job whose run was stored (or ended) meanwhile is left as that made it."""
    if job.run_id and not chunks.fail(session, job.run_id, reason, status=status):
        session.refresh(job)
        return
    job.status, job.error, job.finished_at = status, reason[:4000], chunks._now()
    session.flush()


def start(session: Session, period_code: str, actor: str) -> RunJob:
    """Record a run job for the period; the caller commits, then dispatches or runs it.

    One job per period at a time: while a job of the period is queued or running, another
    start is refused (RunInProgress names it). The check and the new job are made under
    the period's lock, so two starts at once make one job.
    """
    period = periods.require(session, period_code)
    period = periods.serialise(session, period.id)
    if period.status == "locked":
        raise RunError(msg("period %(period_code)s is locked: no new run starts",
                           period_code=period_code))
    for active in session.scalars(select(RunJob).where(RunJob.period_code == period.code,
                                                       RunJob.status.in_(ACTIVE))):
        if not _given_up(session, active):
            raise RunInProgress(period.code, active.id, active.started_by)
    job = RunJob(period_code=period.code, status="queued", started_by=actor,
                 created_at=chunks._now())
    session.add(job)
    session.flush()
    return job


def dispatch(job_id: int) -> None:
    """Hand a committed job to Celery (with the eager setting, run it at once)."""
    from engine import tasks

    tasks.plan_task.delay(job_id)


def get(session: Session, job_id: int) -> RunJob:
    job = session.get(RunJob, job_id)
    if job is None:
        raise NotFound(msg("run job %(job_id)s does not exist", job_id=job_id))
    return job


# --- in this process ------------------------------------------------------------------------


def run_here(factory: sessionmaker[Session], job_id: int, workers: int = 1,
             progress: Callable[[int, int], None] | None = None) -> Run:
    """Plan, evaluate every chunk and finish a job in this process (with ``workers``
    forked processes, which walk the population and then share the chunks: _Workers);
    the same steps the Celery tasks take. Returns the run; raises the job's failure (the
    run failed with its reason, nothing of it visible)."""
    with _Workers(factory, workers) as pool:
        return _run_here(factory, job_id, workers, progress, pool)


def _run_here(factory: sessionmaker[Session], job_id: int, workers: int,
              progress: Callable[[int, int], None] | None, pool: _Workers) -> Run:
    with factory() as session:
        try:
            job = session.get(RunJob, job_id)
            job.pid, job.host = os.getpid(), socket.gethostname()
            indexes = chunks.plan(session, job_id, pool.walker if workers > 1 else None,
                                  workers, keep=pool.keeps)
            session.commit()
        except LaurelError as exc:
            session.rollback()
            fail_job(factory, job_id, str(exc))
            raise
        job = session.get(RunJob, job_id)
        run_id, total = job.run_id, job.total
        bounds = {index: (first, last, employees) for index, first, last, employees in
                  session.execute(select(RunChunk.index, RunChunk.first_employee,
                                         RunChunk.last_employee, RunChunk.employees)
                                  .where(RunChunk.run_id == run_id)).all()}
    with chunks.figures_meanwhile(factory.kw.get("bind"), run_id) if pool.started \
            else nullcontext() as figures:
        _evaluate_here(factory, run_id, indexes, bounds, workers, total, progress, pool)
        return _finish_here(factory, run_id, figures)


def _evaluate_here(factory: sessionmaker[Session], run_id: int, indexes: list[int],
                   bounds: dict[int, tuple[int, int, int]], workers: int, total: int,
                   progress: Callable[[int, int], None] | None, pool: _Workers) -> None:
    """Evaluate the run's chunks here or in the pool's workers; a chunk that fails fails
    the run (and stops the other workers)."""
    done = 0
    if progress:
        progress(0, total)
    try:
        if pool.started or (workers > 1 and len(indexes) > 1):
            results = pool.chunks(run_id, indexes, bounds)
        else:
            results = (chunks.evaluate_chunk(factory, run_id, i) for i in indexes)
        for index, _ in zip(indexes, results, strict=False):
            done += bounds[index][2] if index in bounds else 0
            if progress:
                progress(done, total)
    except RunFailed as exc:
        pool.stop()  # the other workers stop at once, before the run fails
        with factory() as session:
            chunks.fail(session, run_id, str(exc))
            session.commit()
        raise


def _finish_here(factory: sessionmaker[Session], run_id: int,
                 figures: Callable[[], dict[str, Any] | None] | None) -> Run:
    with factory() as session:
        try:
            run = chunks.finish(session, run_id, figures)
            if run is None:
                raise RunFailed(_why_not_finished(session, run_id))
            session.commit()
            return run
        except LaurelError as exc:
            session.rollback()
            chunks.fail(session, run_id, str(exc))
            session.commit()
            raise


class _Workers:
    """The processes a run in this process forks (engine.forks.Pool), at the walk of its
    population: they walk its parts (the walk was a fifth of a run's time, with the other
    processes waiting), then share its chunks, each handed first the chunks of the parts
    it walked, whose employees' metrics it kept (engine.facts.kept_for: read and derived
    once a run, not for the walk and again for the chunk).

    Not on SQLite: a process forked while its parent holds the database's write lock (the
    plan does, as it walks) finds the database locked for good (SQLite's locks of a
    process are in its memory, which the fork copies): the walk's processes end with it
    there, and the chunks' are forked once the plan is committed."""

    def __init__(self, factory: sessionmaker[Session], workers: int) -> None:
        self.factory = factory
        self.workers = workers
        self.pool = forks.Pool(self._work, workers)
        bind = factory.kw.get("bind")
        self.keeps = workers > 1 and bind is not None and bind.dialect.name != "sqlite"
        # how to walk a part (engine.facts.population's), set before the first round
        # forks the processes, which see it then
        self.walk: Callable[[Session, int, int], Walk] | None = None
        self.walked: dict[tuple[int, int], int] = {}  # part kept -> the worker's number

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.pool.close(graceful=kind is None)

    @property
    def started(self) -> bool:
        return bool(self.pool.procs)

    def stop(self) -> None:
        """Kill the workers (a run that failed)."""
        self.pool.close(graceful=False)

    def _work(self, item: tuple[Any, ...]) -> Any:
        if item[0] == "walk":
            with self.factory() as session:  # closed, its reading rolled back, on the way out
                return self.walk(session, item[1], item[2])  # type: ignore[misc]
        return chunks.evaluate_chunk(self.factory, item[1], item[2])

    def walker(self, parts: list[tuple[int, int]],
               walk: Callable[[Session, int, int], Walk]) -> list[Walk]:
        """The parts' walks, in order (a Walker)."""
        self.walk = walk
        items = [("walk", *p) for p in parts]
        if not self.keeps:
            with forks.Pool(self._work, min(self.workers, len(parts))) as once:
                return [one for _, one in once.map(items)]
        found = []
        for part, (worker, one) in zip(parts, self.pool.map(items), strict=True):
            if one.kept:
                self.walked[part] = worker
            found.append(one)
        return found

    def chunks(self, run_id: int, indexes: list[int],
               bounds: dict[int, tuple[int, int, int]]) -> Iterator[str]:
        """evaluate_chunk of each chunk, in order, each handed first to the worker that
        kept its employees' metrics."""
        owners: list[int | None] = []
        for index in indexes:
            first, last, _ = bounds.get(index, (0, -1, 0))
            owners.append(next((worker for (a, z), worker in self.walked.items()
                                if a <= first and last <= z), None))
        for _, result in self.pool.map([("chunk", run_id, i) for i in indexes], owners):
            yield result


def _why_not_finished(session: Session, run_id: int) -> str:
    run = session.get(Run, run_id)
    if run is not None and run.error:
        return run.error
    return f"run {run_id} did not finish: {chunks.pending(session, run_id)} chunks are missing"


def fail_job(factory: sessionmaker[Session], job_id: int, reason: str) -> None:
    """Fail a job before its run exists (nothing to plan), or with its run."""
    with factory() as session:
        job = session.get(RunJob, job_id)
        if job is None or job.status not in ACTIVE:
            return
        _end(session, job, reason)
        session.commit()


# --- watching and stopping ------------------------------------------------------------------


def last_work(session: Session, job: RunJob) -> dt.datetime:
    """When someone last worked on the job: its newest lease renewal, or its creation."""
    beat = session.scalar(select(func.max(RunChunk.beat)).where(
        RunChunk.run_id == job.run_id)) if job.run_id else None
    times = [t for t in (chunks._aware(beat), chunks._aware(job.created_at)) if t]
    return max(times) if times else chunks._now()


def stalled(session: Session, job: RunJob) -> float | None:
    """Seconds since anyone worked on an active job, when that is past STALL; else None."""
    if job.status not in ACTIVE:
        return None
    idle = (chunks._now() - last_work(session, job)).total_seconds()
    if job.run_id:
        running = session.scalar(select(func.count()).select_from(RunChunk).where(
            RunChunk.run_id == job.run_id, RunChunk.status == "running")) or 0
        if running and idle < chunks.lease():
            return None
    return idle if idle >= STALL else None


def _process_gone(job: RunJob) -> bool:
    """True when the job is done by a process of this machine that no longer runs."""
    if not job.pid or job.host not in (None, socket.gethostname()):
        return False
    try:
        os.kill(job.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a finished child not yet reaped is a zombie: gone for our purpose
        state = Path(f"/proc/{job.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state == "Z"
    except OSError:
        return False


def _given_up(session: Session, job: RunJob) -> bool:
    """Fail an active job whose own process stopped, or that nobody has worked on for
    GIVE_UP seconds; True when it is over."""
    if job.status in ACTIVE and _process_gone(job):
        reason = (f"the process that ran it (pid {job.pid} on {job.host}) stopped before "
                  "the run finished (it was killed or crashed); nothing of it was stored")
        _end(session, job, reason)
        return True
    idle = stalled(session, job)
    if idle is None or idle < GIVE_UP:
        return job.status not in ACTIVE
    reason = (f"no worker took the run's work for {idle / 60:.0f} minutes (since "
              f"{last_work(session, job):%Y-%m-%d %H:%M} UTC): start a worker "
              "(laurel worker) or the back office (laurel serve), then run again")
    _end(session, job, reason)
    return True


def work_of(session: Session, job: RunJob) -> dict[str, Any]:
    """How a job's work stands: chunks, done, redone (taken again after a worker was lost),
    the workers at it now, and an estimate of the seconds left."""
    rows = session.execute(select(RunChunk.status, RunChunk.attempts, RunChunk.worker,
                                  RunChunk.seconds, RunChunk.employees)
                           .where(RunChunk.run_id == job.run_id)).all() if job.run_id else []
    done = [r for r in rows if r.status == "done"]
    workers = sorted({r.worker for r in rows if r.status == "running" and r.worker})
    left = None
    timed = [r for r in done if r.seconds]
    if timed and len(done) < len(rows):
        per_employee = sum(r.seconds for r in timed) / max(1, sum(r.employees for r in timed))
        remaining = sum(r.employees for r in rows if r.status != "done")
        left = int(per_employee * remaining / max(1, len(workers) or 1))
    return {"chunks": len(rows), "done": len(done),
            "redone": sum(1 for r in rows if r.attempts > 1), "workers": workers,
            "seconds_left": left}


def watch(session: Session, job: RunJob, redispatch: bool = True) -> RunJob:
    """Requeue the chunks whose worker stopped renewing its lease, fail a chunk that lost
    ATTEMPTS workers, and give up on a job nobody works on. Commits what it changes."""
    if job.status not in ACTIVE:
        return job
    if _given_up(session, job):
        session.commit()
        return job
    if job.run_id is None:
        return job
    begin_writing(session)
    lost = []
    now = chunks._now()
    for chunk in session.scalars(select(RunChunk).where(
            RunChunk.run_id == job.run_id, RunChunk.status == "running").with_for_update()):
        beat = chunks._aware(chunk.beat)
        if beat is None or (now - beat).total_seconds() < chunks.lease():
            continue
        if chunk.attempts >= ATTEMPTS:
            chunks.fail(session, job.run_id, f"chunk {chunk.index} of the run (employees "
                        f"{chunk.first_employee} to {chunk.last_employee}) lost its worker "
                        f"{chunk.attempts} times (the last: {chunk.worker}, silent since "
                        f"{beat:%H:%M:%S} UTC)")
            session.commit()
            return job
        chunk.status, chunk.worker = "queued", None
        lost.append(chunk.index)
    session.commit()
    if lost and redispatch:
        from engine import tasks

        for index in lost:
            tasks.chunk_task.delay(job.run_id, index)
    return job


def cancel(session: Session, job_id: int, actor: str) -> RunJob:
    """Stop a job: its run is cancelled (its outcomes go), tasks still queued find it
    over and do nothing."""
    job = get(session, job_id)
    if job.status not in ACTIVE:
        raise LaurelError(msg("run job %(job_id)s is %(status)s: there is nothing to cancel",
                              job_id=job_id, status=job.status))
    _end(session, job, f"cancelled by {actor}", status="cancelled")
    if job.status != "cancelled":  # its run was stored meanwhile
        raise LaurelError(msg("run job %(job_id)s is %(status)s: there is nothing to cancel",
                              job_id=job_id, status=job.status))
    return job


def wait(factory: sessionmaker[Session], job_id: int,
         progress: Callable[[int, int], None] | None = None, every: float = 0.5,
         timeout: float | None = None) -> RunJob:
    """Wait for a dispatched job, watching it, reporting progress; return it when over,
    or raise TimeoutError after ``timeout`` seconds (the job goes on)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with factory() as session:
            job = watch(session, get(session, job_id))
            if progress and job.total:
                progress(job.done, job.total)
            if job.status not in ACTIVE:
                session.expunge(job)
                return job
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job.status} after {timeout:g} s")
        time.sleep(every)


def factory() -> sessionmaker[Session]:
    return make_sessionmaker()
