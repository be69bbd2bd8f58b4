"""A run shared out in chunks of employees: plan, evaluate each chunk, finish.

``plan`` turns a job into a ``running`` run: it compiles the rules in force, walks the
population once for what spans employees (engine.facts.population: team sums, ranks),
keeps that context with the run, and cuts the population into chunks of employee ids.
``evaluate_chunk`` evaluates one chunk wherever it runs (a Celery worker, a forked process,
this process): a worker claims the chunk with a lease it renews, writes the chunk's
outcomes and marks it done in one transaction, after deleting what an earlier attempt of
the same chunk wrote, so a chunk done twice counts once and a lost worker costs a redo.
``finish``, once every chunk is in, stores the run as the one-process run does
(runs.settle: replaced runs discarded, decisions carried over) and only then is it
``calculated``: nobody reads a run while it is running. A chunk whose data makes the run
fail fails it whole (``fail``): its outcomes go, its reason stays.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from engine import assignments, bulk, compliance, periods, statements
from engine.compiler import Session as EngineSession
from engine.db import begin_writing
from engine.errors import RunError, RunFailed
from engine.exact import quotient
from engine.facts import (
    Context,
    Walker,
    chunk_facts,
    forget_kept,
    kept_for,
    part_count,
    parts_of_chunks,
    population,
)
from engine.messages import msg
from engine.metrics import load_catalog, to_plain
from engine.models import (
    Employee,
    FlagCase,
    Outcome,
    Period,
    Rule,
    Run,
    RunChunk,
    RunContext,
    RunJob,
    Team,
)
from engine.rollup import period_employees
from engine.runs import (
    _claim_period,
    _released_hold_outcomes,
    compile_for,
    currency,
    discard_replaced,
    evaluate_employee,
    facts_read_by,
    quiet_collector,
    settle,
    write_outcomes,
)

# employees in one chunk at most (LAUREL_RUN_CHUNK): a task's work and its memory
CHUNK = 5_000
# a run of fewer than CHUNKS x CHUNK employees is cut into CHUNKS chunks (of MIN_CHUNK
# employees at least), so that its workers all keep busy to its end: the first to finish
# takes another rather than waits for the last
CHUNKS = 8
MIN_CHUNK = 500
# seconds after which a chunk whose worker stopped renewing its lease goes to another one
# (LAUREL_RUN_LEASE); a worker renews it three times a lease
LEASE = 30.0


def lease() -> float:
    try:
        return max(1.0, float(os.environ.get("LAUREL_RUN_LEASE") or LEASE))
    except ValueError:
        return LEASE


def chunk_size(employees: int | None = None) -> int:
    """Employees in one chunk of a run of ``employees``: LAUREL_RUN_CHUNK where set, else
    CHUNK, or less for a run of fewer than CHUNKS x CHUNK employees."""
    try:
        given = int(os.environ.get("LAUREL_RUN_CHUNK") or 0)
    except ValueError:
        given = 0
    if given > 0:
        return given
    if employees is None:
        return CHUNK
    return min(CHUNK, max(MIN_CHUNK, -(-employees // CHUNKS)))


def chunk_sizes(employees: int, size: int | None = None) -> list[int]:
    """The sizes of a run's chunks, in the order they are handed out: chunk_size each
    (``size`` where given: a part of a run, walk_chunks), but the last chunk's worth of
    employees cut in halves (MIN_CHUNK at least), so that the workers end about together:
    with chunks of one size, one worker was left alone with a whole chunk (a
    20,000-employee run's last 0.2 to 0.5 s, one core idle). Not where the chunks are of
    fewer than twice MIN_CHUNK, nor where the run is two chunks or fewer (LAUREL_RUN_CHUNK
    as large as the run: one chunk): those are cut in chunk_size, the last one what is
    left.

    Halves, not quarters of the last two chunks' worth: each chunk costs about 20 ms of
    the machine's CPU whatever its size (its statements and transactions), and a
    20,000-employee run of 13 chunks took 2.06 s where one of 10 took 1.92 s (medians of
    six, two workers, PostgreSQL)."""
    size = size or chunk_size(employees)
    if size < 2 * MIN_CHUNK or employees <= 2 * size:
        return _whole_chunks(employees, size)
    sizes = []
    left = employees
    while left > 0:
        # chunks of 1,000 or more: each cut leaves MIN_CHUNK or more, or nothing (the last
        # chunk's worth is what is left under size + MIN_CHUNK: a whole chunk more would
        # leave less than MIN_CHUNK)
        piece = size if left >= size + MIN_CHUNK else max(MIN_CHUNK, -(-left // 2))
        if left - piece < MIN_CHUNK:
            piece = left
        sizes.append(piece)
        left -= piece
    return sizes


def _whole_chunks(employees: int, size: int) -> list[int]:
    """Chunks of ``size`` employees, the last one what is left."""
    return [min(size, employees - start) for start in range(0, employees, size)]


def walk_chunks(employees: int, processes: int) -> list[list[int]]:
    """The sizes of a run's chunks where ``processes`` forked processes walk its
    population and then evaluate the chunks of the parts they walked first (run_here),
    part by part: whole chunks grouped into the walk's parts (facts.parts_of_chunks), the
    last chunk's worth of each of the last ``processes`` parts cut in halves
    (chunk_sizes). Each process's own chunks, handed to it in order, then end with
    halves, one part's each: cut in the run's last part alone, the process that walked
    another part ended with a whole chunk while the other had nothing left (20,000
    employees, two workers: one core idle at the end for 0.26 s on average, up to 0.5 s;
    0.13 s with each part's, six runs each, for two chunks more)."""
    size = chunk_size(employees)
    parts = parts_of_chunks(_whole_chunks(employees, size), part_count(employees, processes))
    tails = len(parts) - max(1, processes)
    return [chunk_sizes(sum(part), size) if k >= tails else part
            for k, part in enumerate(parts)]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives timestamps back without their zone: they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


# --- planning -------------------------------------------------------------------------------


def plan(session: Session, job_id: int, walker: Walker | None = None, parts: int = 1,
         keep: bool = False) -> list[int]:
    """Start a queued job's run: the run (``running``), its context and its chunks.

    Returns the chunk indexes to evaluate; an empty list when the job is no longer queued
    (planned already by a retried task, or cancelled). A period without results, or
    locked, fails the job (RunError). ``walker``: where the population is walked, in
    ``parts`` (engine.facts.population; run_here's worker processes), else here;
    ``keep``: the walker's processes evaluate the chunks next, and keep what the chunks
    read of the parts they walk (engine.facts.kept_for).
    """
    begin_writing(session)
    job = session.execute(select(RunJob).where(RunJob.id == job_id).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one()
    if job.status != "queued":
        if job.run_id and job.status == "running":
            return [c for c in session.scalars(
                select(RunChunk.index).where(RunChunk.run_id == job.run_id,
                                             RunChunk.status != "done"))]
        return []
    period = periods.require(session, job.period_code)
    if period.status == "locked":
        raise RunError(msg("period %(code)s is locked: no new run starts", code=period.code))
    version = session.scalar(select(Period.results_version).where(Period.id == period.id))
    compiled, used = compile_for(session, period)
    ids = assignments.in_period(session, period, period_employees(session, period.code))
    if not ids:
        raise RunError(msg("period %(code)s has no results: import results for it first",
                           code=period.code))
    keep = keep and walker is not None
    # where the walk's processes evaluate the chunks next, their parts' chunks
    parts_chunks = walk_chunks(len(ids), parts) if keep else None
    sizes = chunk_sizes(len(ids)) if parts_chunks is None else \
        [size for part in parts_chunks for size in part]
    run = Run(period_id=period.id, status="running", ruleset_hash=compiled.content_hash,
              rules=used, started_by=job.started_by, employee_count=len(ids),
              results_version=version, started_at=job.created_at or _now())
    session.add(run)
    session.flush()
    # the rule set this process compiled is the run's (_compiled): kept for the last step
    # here, and for the worker processes forked from here (where ``keep``, the walk's,
    # which evaluate the chunks next: each walks parts of whole chunks and keeps what the
    # chunks read of them)
    _COMPILED.clear()
    _COMPILED[(run.id, run.ruleset_hash)] = compiled
    try:
        # no cyclic garbage collection while the population is walked and merged here (a
        # full one walked every object this process holds: 60 ms of a 20,000-employee
        # run, every worker waiting; bulk.quiet_collector)
        with quiet_collector():
            context = population(session, period, sorted(compiled.population),
                                 load_catalog(session), ids, walker=walker, parts=parts,
                                 chunks=parts_chunks,
                                 keep=facts_read_by(compiled) if keep else None)
    except BaseException:
        _COMPILED.clear()  # the run is not made: its id may be the next run's
        raise
    session.add(RunContext(run_id=run.id, data=context.to_json()))
    chunks = []
    start = 0
    for index, size in enumerate(sizes):
        part = ids[start:start + size]
        start += size
        chunks.append({"run_id": run.id, "index": index, "first_employee": part[0],
                       "last_employee": part[-1], "employees": len(part),
                       "status": "queued", "attempts": 0})
    session.execute(RunChunk.__table__.insert(), chunks)
    job.run_id, job.status, job.total, job.done = run.id, "running", len(ids), 0
    session.flush()
    return [c["index"] for c in chunks]


# --- one chunk ------------------------------------------------------------------------------

_COMPILED: dict[tuple[int, str], Any] = {}


def _compiled(session: Session, run: Run) -> Any:
    """The rule set the run uses (its documents, by key and version), compiled once per
    process."""
    key = (run.id, run.ruleset_hash)
    if key not in _COMPILED:
        period = session.get(Period, run.period_id)
        documents = []
        for used in run.rules or []:
            rule = session.scalar(select(Rule).where(Rule.key == used["key"],
                                                     Rule.version == used["version"]))
            documents.append(dict(rule.definition))
        compiled, _ = compile_for(session, period, documents)
        _COMPILED.clear()  # one run at a time per worker process
        _COMPILED[key] = compiled
    return _COMPILED[key]


def _lock_chunk(session: Session, run_id: int, index: int) -> SimpleNamespace:
    """The chunk's row, locked, with its run's status and what names the run's state
    (run_status, period_id, started_at, ruleset_hash), read through the tables.

    The run is read by a statement of its own, once the chunk's row is held: read in the
    same statement, it was read as it stood before the statement waited for the lock (a
    cancel, which holds every chunk of the run, left the run cancelled meanwhile, and the
    chunk stored its outcomes into it; PostgreSQL reads a waiting statement's other rows
    again only where it locks them)."""
    begin_writing(session)
    c, r = RunChunk.__table__.c, Run.__table__.c
    chunk = session.execute(
        select(c.id, c.status, c.worker, c.beat, c.attempts, c.first_employee,
               c.last_employee, c.employees)
        .where(c.run_id == run_id, c.index == index).with_for_update()).one()
    run = session.execute(select(r.status, r.period_id, r.started_at, r.ruleset_hash)
                          .where(r.id == run_id)).one()
    return SimpleNamespace(**chunk._asdict(), run_status=run.status, period_id=run.period_id,
                           started_at=run.started_at, ruleset_hash=run.ruleset_hash)


def _set_chunk(session: Session, chunk: Any, **values: Any) -> None:
    """Change a chunk's row (locked by _lock_chunk)."""
    session.execute(update(RunChunk.__table__).where(RunChunk.__table__.c.id == chunk.id)
                    .values(**values))


# What a worker process reads of a run once, the run not changing it while it runs
# (_known): its population figures (written when the run was planned: at 1,000,000
# employees, 100,000 teams and a ranked metric of as many values, reading them again for
# every chunk took a third of the chunk), its period's dates, the metric catalog, the
# facts its rules read, whether its
# chunks open their flags' cases (compliance.opens_cases_early: no other run of the period
# runs meanwhile, so none opens a case) and whether the session may skip the outcomes'
# and the cases' key checks (bulk.may_skip_key_checks), the last two asked by its first
# chunk stored here. Each was read again by every chunk.
_KNOWN: dict[tuple[Any, ...], SimpleNamespace] = {}


def _known(session: Session, run_id: int, chunk: Any) -> SimpleNamespace:
    key = (session.get_bind().url.render_as_string(), run_id, chunk.started_at,
           chunk.ruleset_hash)
    if key not in _KNOWN:
        run = session.get(Run, run_id)
        stored = session.get(Period, run.period_id)
        compiled = _compiled(session, run)
        catalog = load_catalog(session)
        for metric in catalog.metrics.values():  # kept as read, past this session's end
            session.expunge(metric)
        _KNOWN.clear()  # one run at a time per worker process
        _KNOWN[key] = SimpleNamespace(
            compiled=compiled, catalog=catalog,
            context=Context.from_json(session.get(RunContext, run_id).data),
            needed=facts_read_by(compiled), holds=compliance.holding(compiled.rules),
            period=SimpleNamespace(code=stored.code, start=stored.start, end=stored.end,
                                   kind=stored.kind, id=stored.id),
            early=None, skip=None)
    return _KNOWN[key]


def evaluate_chunk(session_factory: Callable[[], Session], run_id: int, index: int,
                   worker: str | None = None) -> str:
    """Evaluate one chunk of a running run and store its outcomes.

    Returns "done" (this call stored it), "already" (done before), "taken" (another worker
    holds a live lease on it) or "over" (the run is no longer running). A RunFailed from the
    chunk's data fails the whole run and is raised again.
    """
    worker = worker or worker_name()
    with session_factory() as session:
        chunk = _lock_chunk(session, run_id, index)
        if chunk.run_status != "running":
            session.rollback()
            return "over"
        if chunk.status == "done":
            session.rollback()
            return "already"
        beat = _aware(chunk.beat)
        if chunk.status == "running" and chunk.worker != worker and beat is not None \
                and (_now() - beat).total_seconds() < lease():
            session.rollback()
            return "taken"
        _set_chunk(session, chunk, status="running", worker=worker, beat=_now(),
                   attempts=chunk.attempts + 1)
        session.commit()
    # no cyclic garbage collection from the chunk's facts to its stored outcomes: they
    # are let go of (on return) before the collector is on again (bulk.quiet_collector)
    with quiet_collector():
        return _evaluate_and_store(session_factory, run_id, index, worker, chunk)


def _evaluate_and_store(session_factory: Callable[[], Session], run_id: int, index: int,
                        worker: str, claimed: Any) -> str:
    """The facts of a claimed chunk's employees (``claimed``: its row as _lock_chunk read
    it), their outcomes, stored with the chunk done (evaluate_chunk)."""
    started = time.perf_counter()
    first, last = claimed.first_employee, claimed.last_employee
    try:
        with session_factory() as session:
            known = _known(session, run_id, claimed)
            compiled, needed, period = known.compiled, known.needed, known.period
            kept = kept_for(period.id, needed, first, last)
            facts = chunk_facts(session, period, known.context, first, last,
                                catalog=known.catalog, needed=needed, kept=kept)
            if kept is not None:
                forget_kept(first, last)
            session.rollback()
        engine = EngineSession(compiled)
        outcomes: list[dict[str, Any]] = []
        last_beat, beat_every = time.monotonic(), lease() / 3
        money = currency()
        for ef in facts:
            try:
                # explanations as the JSON text stored, where a template writes them
                outcomes.extend(evaluate_employee(engine, ef, period, compiled, money,
                                                  texts=True))
            except RunFailed:
                raise
            except Exception as exc:  # any failure fails the run, naming the employee
                raise RunFailed(f"employee {ef.code}: {type(exc).__name__}: "
                                f"{exc}") from exc
            if time.monotonic() - last_beat > beat_every:
                last_beat = time.monotonic()
                if not _renew(session_factory, run_id, index, worker):
                    return "over"
    except RunFailed as exc:
        with session_factory() as session:
            fail(session, run_id, str(exc))
            session.commit()
        raise
    with session_factory() as session:
        chunk = _lock_chunk(session, run_id, index)
        if chunk.run_status != "running" or chunk.status == "done" or chunk.worker != worker:
            session.rollback()  # cancelled, failed, or taken over after our lease ran out
            return "over"
        # what an earlier attempt of this chunk left (none: its outcomes and its "done"
        # are written together); read through the index of the run's employees, by the
        # chunk's range: by the chunk alone it read every outcome of the run so far, each
        # chunk (at 1,000,000 employees a second a chunk, a quarter of the run)
        session.execute(delete(Outcome).where(Outcome.run_id == run_id,
                                              Outcome.employee_id.between(first, last),
                                              Outcome.chunk == index))
        run = SimpleNamespace(id=run_id, period_id=chunk.period_id)
        _write_chunk(session, run, index, outcomes, first, last, known.holds, known)
        _set_chunk(session, chunk, sums=chunk_sums(session, outcomes, first, last),
                   status="done", seconds=time.perf_counter() - started)
        # the job's count of employees done, moved under its row's lock: one chunk alone
        # sees it cross half the run
        employees = chunk.employees
        counted = session.execute(update(RunJob).where(RunJob.run_id == run_id)
                                  .values(done=RunJob.done + employees)
                                  .returning(RunJob.done, RunJob.total)).first()
        session.commit()
    if counted is not None and counted[0] - employees < (counted[1] or 0) / 2 <= counted[0]:
        _analyze_outcomes(session_factory, run_id, counted[1])
    return "done"


def _analyze_outcomes(session_factory: Callable[[], Session], run_id: int, employees: int
                      ) -> None:
    """Refresh PostgreSQL's statistics of the outcomes and the flag cases once half the
    run's are in, while the other chunks are still worked on, rather than in the last
    step that every other process waits for (finish): estimates that count half the run's
    rows plan as well as the whole. Noted on the job; the last step analyses them itself
    when it is not (the cases too where it carries the period's: compliance.carry_cases)."""
    with session_factory() as session:
        if bulk.analyze(session, Outcome.__table__, FlagCase.__table__, rows=employees,
                        sample=bulk.RUN_SAMPLE):
            session.execute(update(RunJob).where(RunJob.run_id == run_id)
                            .values(analysed_at=_now()))
        session.commit()


def chunk_sums(session: Session, outcomes: list[dict[str, Any]], first: int, last: int
               ) -> dict[str, Any]:
    """A chunk's outcomes summed up (statements.sums_of), each employee's team as the
    employees' rows say now (as statements.outcome_groups reads it)."""
    emp, team = Employee.__table__.c, Team.__table__.c
    team_of = dict(session.execute(
        select(emp.id, team.name).join_from(Employee.__table__, Team.__table__,
                                            team.id == emp.team_id)
        .where(emp.id.between(first, last))).all())
    return statements.sums_of(outcomes, team_of)


def _chunks_summed(session: Session, run_id: int) -> statements.OutcomeGroups | None:
    """The run's outcomes summed up from its chunks' sums (chunk_sums), or None where a
    chunk has none, or of another format (stored by an earlier version)."""
    parts = session.scalars(select(RunChunk.sums).where(RunChunk.run_id == run_id)).all()
    if not parts or any(p is None for p in parts):
        return None
    return statements.merged_sums(parts)


def _write_chunk(session: Session, run: Any, index: int, outcomes: list[dict[str, Any]],
                 first: int, last: int, holds: list[str],
                 known: SimpleNamespace | None = None) -> None:
    """Store a chunk's outcomes, under the run's lock (_lock_chunk), and open the cases of
    its flags where the run opens them early (the period's first flags:
    compliance.opens_cases_early). On PostgreSQL the chunk's employees are locked as a
    foreign key's check would lock them (FOR KEY SHARE), once each, and with every
    reference so held the per-row checks (an employee and the run for each outcome) are
    skipped where the session may (bulk.references_held). An outcome of an employee gone
    since its facts were read is written with the checks, which refuse it as before.
    The cases are opened under the same setting (one SET for both). ``known``: what this
    process knows of the run (_known), which keeps what the first chunk asked."""
    known = known or SimpleNamespace(early=None, skip=None)
    if known.skip is None:
        known.skip = {table.name: bulk.may_skip_key_checks(session, table)
                      for table in (Outcome.__table__, FlagCase.__table__)}
    held = known.skip["outcome"] and {
        o["employee_id"] for o in outcomes} <= set(session.scalars(select(Employee.id).where(
            Employee.id.between(first, last)).with_for_update(read=True, key_share=True)))
    flags = any(o["kind"] == "flag" for o in outcomes)
    if flags and known.early is None:
        known.early = compliance.opens_cases_early(session, run.id, run.period_id)
    with bulk.references_held(session, Outcome.__table__, allowed=held):
        write_outcomes(session, run.id, outcomes, chunk=index)
        if flags and known.early:
            compliance.open_chunk_cases(session, run.id, run.period_id, holds, first, last,
                                        index, skip=known.skip["flag_case"])


def _renew(session_factory: Callable[[], Session], run_id: int, index: int, worker: str
           ) -> bool:
    """Renew a chunk's lease; False when the run stopped or the chunk went to another."""
    with session_factory() as session:
        chunk = _lock_chunk(session, run_id, index)
        if chunk.run_status != "running" or chunk.worker != worker:
            session.rollback()
            return False
        _set_chunk(session, chunk, beat=_now())
        session.commit()
    return True


def pending(session: Session, run_id: int) -> int:
    """Chunks of the run not done yet."""
    return session.scalar(select(func.count()).select_from(RunChunk).where(
        RunChunk.run_id == run_id, RunChunk.status != "done")) or 0


# --- the last step ----------------------------------------------------------------------------


def finish(session: Session, run_id: int,
           figures: Callable[[], dict[str, Any] | None] | None = None) -> Run | None:
    """Store a run whose chunks are all in, as runs.start_run stores one: released holds,
    replaced runs discarded, decisions carried over, figures kept. Returns the run, or
    None when it is not ready (chunks missing) or no longer running. ``figures``: gives
    the run's team figures worked out while its chunks ran (figures_meanwhile), or None
    (worked out here)."""
    run = session.get(Run, run_id)
    if run is None or run.status != "running" or pending(session, run_id):
        return None
    period = session.get(Period, run.period_id)
    job = session.scalar(select(RunJob).where(RunJob.run_id == run_id))
    actor = run.started_by
    # the newest run of the period before this one (a newer one stored meanwhile wins)
    before = session.scalar(select(func.max(Run.id)).where(
        Run.period_id == period.id, Run.id < run.id, Run.status != "failed")) or 0
    _claim_period(session, period, period.code, max(before, run.id))
    # the run's row held to the end: a cancel (fail) that comes meanwhile waits, then finds
    # the run stored (it deleted the outcomes of a run stored as calculated, or left the
    # period with its earlier run discarded and none live)
    run = session.execute(select(Run).where(Run.id == run_id).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one()
    if run.status != "running" or pending(session, run_id):
        return None
    releases = compliance.releases_for(
        session, period, lambda: set(period_employees(session, period.code)))
    # released holds are outcomes this step adds: the sums of the chunks' alone are no use;
    # else the chunks' sums, added up, where every chunk kept them
    summed = None if releases else _chunks_summed(session, run_id)
    with _grouped_meanwhile(session, run_id, not releases and summed is None) as meanwhile:
        grouped = meanwhile if summed is None else lambda: summed
        write_outcomes(session, run_id, _released_hold_outcomes(session, period, releases))
        discarded = discard_replaced(session, period.id)
        run.figures = (figures and figures()) or run_figures(session, run_id)
        run.status, run.finished_at = "calculated", _now()
        session.flush()
        count = sum(n for n, _ in summed[0].values()) if summed is not None else \
            session.scalar(select(func.count()).select_from(Outcome).where(
                Outcome.run_id == run_id)) or 0
        analysed = job is not None and job.analysed_at is not None
        if not analysed:  # else a chunk did, the outcomes' and the cases' (_analyze_outcomes)
            bulk.analyze(session, Outcome.__table__, rows=count, sample=bulk.RUN_SAMPLE)
        settle(session, run, period, _compiled(session, run).rules, actor, releases, count,
               discarded, grouped, cases_analysed=analysed)
    if job is not None:
        job.status, job.finished_at, job.done = "done", _now(), run.employee_count
    session.flush()
    return run


@contextmanager
def _meanwhile(bind: Any, work: Callable[[Session], Any], thread: str,
               wanted: bool = True) -> Iterator[Callable[[], Any] | None]:
    """``work`` done in a thread of this process, in a session of its own on ``bind``,
    while this process goes on: on PostgreSQL, where ``wanted``. Gives the function that
    waits for its result (None where it failed: the caller works it out itself), or None
    (not done)."""
    if not wanted or bind is None or bind.dialect.name != "postgresql":
        yield None
        return

    def done_apart() -> Any:
        with Session(bind) as other:  # closed, its reading rolled back, on the way out
            return work(other)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread) as pool:
        future = pool.submit(done_apart)

        def result() -> Any:
            try:
                return future.result()
            except Exception:  # noqa: BLE001 - the caller works it out itself
                return None

        yield result


def _grouped_meanwhile(session: Session, run_id: int, wanted: bool = True
                       ) -> AbstractContextManager[Callable[[], Any] | None]:
    """The run's outcomes summed up as its chunks wrote them (statements.outcome_groups),
    worked out on a connection of its own while the last step opens the run's flag cases
    on this one: two of the database's processes at work, not one after the other (the
    last step is the time every worker waits). On PostgreSQL, where ``wanted``
    (_meanwhile)."""
    return _meanwhile(session.get_bind(),
                      lambda other: statements.outcome_groups(other, run_id),
                      "laurel-totals", wanted)


def run_figures(session: Session, run_id: int) -> dict[str, Any]:
    """The team figures a run keeps (Run.figures), from its context (_figures)."""
    return _figures(session, Context.from_json(session.get(RunContext, run_id).data,
                                               ranks=False))


def figures_meanwhile(bind: Any, run_id: int
                      ) -> AbstractContextManager[Callable[[], Any] | None]:
    """The run's team figures (run_figures) worked out while its chunks run elsewhere, for
    its last step (finish): what the run keeps of its teams depends on its context and the
    teams alone (2,000 teams: 30 ms of the last step, every worker waiting). On
    PostgreSQL (_meanwhile)."""
    return _meanwhile(bind, lambda other: run_figures(other, run_id), "laurel-figures")


def _figures(session: Session, context: Context) -> dict[str, Any]:
    """Every team of the population with its member count and attainment (text; None
    where undefined), as a run keeps them (Run.figures), from the run's context."""
    names = dict(session.execute(select(Team.id, Team.name)).all())
    teams = {}
    for team_id, sums in context.teams.items():
        attainment = quotient(sums["revenue"], sums["quota"])
        teams[names.get(team_id, "")] = {
            "members": assignments.shown(sums["members"]),
            "attainment": None if attainment is None else str(to_plain(attainment))}
    return {"teams": dict(sorted(teams.items()))}


def fail(session: Session, run_id: int, reason: str, status: str = "failed") -> bool:
    """Fail (or cancel) a running run: its outcomes go, its reason stays, its job says so.
    Returns whether it did (not where the run was stored or ended meanwhile: the last
    step holds the run's row while it stores it, finish).

    A chunk storing its outcomes (and opening its cases) on another worker holds its row
    (_lock_chunk): the chunks' rows are taken first, so that what such a chunk commits is
    among the outcomes deleted, and a chunk after this finds the run over. (Deleting first
    left that chunk's outcomes and cases to the failed or cancelled run.)"""
    begin_writing(session)
    session.execute(select(RunChunk.index).where(RunChunk.run_id == run_id)
                    .order_by(RunChunk.index).with_for_update()).all()
    run = session.execute(select(Run).where(Run.id == run_id).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one_or_none()
    if run is None or run.status != "running":
        return False
    session.execute(delete(Outcome).where(Outcome.run_id == run_id))
    run.status, run.error, run.finished_at = status, reason[:4000], _now()
    session.execute(update(RunChunk).where(RunChunk.run_id == run_id,
                                           RunChunk.status != "done")
                    .values(status="stopped"))
    for job in session.scalars(select(RunJob).where(RunJob.run_id == run_id)):
        job.status, job.error, job.finished_at = status, reason[:4000], _now()
    session.flush()
    return True
