"""Benchmark a month run against bare durable_rules on the same facts, on SQLite and PostgreSQL.

For each database: a scratch organisation of N employees with three months of results
(18 metrics a row) is imported (not timed); then, in this one process, one after the other,
in each of ``--passes`` passes (default 3; the runs are taken away between them, so that
each pass's run is the period's first):

- **bare durable_rules**: the run's own compiled conditions (engine.compiler) on the same
  facts, already encoded, one ``assert_fact`` per employee into each ruleset the conditions
  were shared out into, and its state deleted; nothing else (no wording, no outcomes, no
  database);
- **the C core alone**: the same asserts as the run makes them (engine.compiler.fire),
  without what durable_rules' Python wrapper does for actions; the run's own engine work;
- **the whole run** as ``laurel run`` does it (engine.jobs.run_here): plan and population
  figures, the facts chunk by chunk, evaluation, outcomes and their explanations, storing
  them, and the last step that makes the run ``calculated``; with as many worker
  processes as ``laurel run`` uses (LAUREL_RUN_WORKERS, else one a core) unless
  ``--workers`` says otherwise.

It prints the times, the employees a second, the ratio whole / bare (aim: 1.5 or less)
and whole / C core, by the clock and by CPU time (the run's: this process and the
workers it forked; the database server's not counted), and, with one worker, where the
whole run's time went (plan and population figures, facts, evaluation and wording,
storing outcomes, the last step), by the clock and by CPU; then the median of the passes'
ratios. The machine may be shared: compare ratios, not seconds.

    python bench/bench_run.py                             # 20,000 employees, both databases
    python bench/bench_run.py --workers 1                 # the run in one process
    python bench/bench_run.py --employees 100000 --database postgresql
    python bench/bench_run.py --employees 1000000 --workers 2 --database postgresql --passes 1
    python bench/bench_run.py --period 2026-Q1            # a quarter run instead
    python bench/bench_run.py --profile                   # cProfile of the whole run

PostgreSQL is ``--postgres-url`` (default LAUREL_BENCH_POSTGRES_URL, else a database
``laurel_bench`` on 127.0.0.1 as user postgres), made when missing; its tables are dropped
and made again; it is vacuumed and analysed before each pass (settle),
so that the server's autovacuum does not do that work during a run.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.exc import OperationalError  # noqa: E402

from engine import chunks, db, jobs, runs  # noqa: E402
from engine.compiler import Session as EngineSession  # noqa: E402
from engine.compiler import fire, to_fact  # noqa: E402
from engine.facts import build_facts  # noqa: E402
from engine.imports import import_employees, import_results  # noqa: E402
from engine.metrics import seed_reference_data  # noqa: E402
from engine.rulebook import load_library  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
METRICS = ["quota", "revenue_new", "revenue_existing", "signed_amount", "collected_amount",
           "new_customers", "target_customers", "closed_customers", "leads", "opportunities",
           "won_leads", "false_ad_complaints", "satisfaction", "self_score", "manager_score",
           "customer_score", "renewal_intent", "max_discount_pct"]
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/laurel_bench"


PART = 250_000  # rows a file: a file may be at most 50 MB (engine.imports.MAX_FILE_BYTES)


def _files(header: str, lines: list[str]) -> list[bytes]:
    return [("\n".join([header, *lines[i:i + PART]])).encode()
            for i in range(0, len(lines), PART)]


def generate(n: int, seed: int = 1) -> tuple[list[bytes], list[bytes]]:
    """Employees files of n people in teams of ten, and files of three months of their
    results (a file of at most PART rows, as a file may be at most 50 MB)."""
    rng = random.Random(seed)
    stages = ["startup", "growth", "mature"]
    emps: list[str] = []
    for i in range(n):
        team = i // 10
        emps.append(f"B{i:07d},Rep {i},,T{team:06d},R{team % 7},{'S1 S2 S3 M1'.split()[i % 4]},"
                    f",2020-01-01,{stages[team % 3]}")
    header = "period,employee_code," + ",".join(METRICS)
    files = []
    for period in ("2026-01", "2026-02", "2026-03"):
        res: list[str] = []
        for i in range(n):
            quota = rng.choice((80000, 100000, 150000))
            rev = quota * rng.randint(50, 150) // 100
            new = rev * rng.randint(0, 60) // 100
            row = [quota, new, rev - new, rng.choice((20000, 60000, 90000)),
                   rng.randint(5000, 90000), rng.randint(0, 5), 40, rng.randint(1, 9),
                   rng.randint(5, 40), rng.randint(1, 15), rng.randint(0, 5),
                   rng.choice((0, 0, 0, 0, 1)), rng.randint(60, 100), rng.randint(50, 100),
                   rng.randint(50, 100), rng.randint(50, 100), rng.randint(40, 100),
                   rng.choice(("0.03", "0.05", "0.08", "0.11", "0.16"))]
            res.append(f"{period},B{i:07d}," + ",".join(map(str, row)))
        files += _files(header, res)
    return _files("code,name,email,team,region,level,manager_code,hire_date,team_stage",
                  emps), files


def prepare(url: str, n: int) -> float:
    """Fresh tables, the rule library, n employees and their results; the seconds taken."""
    t0 = time.perf_counter()
    if url.startswith("postgresql"):
        from sqlalchemy import create_engine, make_url, text

        target = make_url(url)
        server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                               {"d": target.database}):
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        server.dispose()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    db.upgrade_schema(url)
    emps, results = generate(n)
    with db.session_scope(url) as session:
        session.info["audit_off"] = True
        seed_reference_data(session)
        load_library(session, ROOT / "rules")
        for part, data in enumerate(emps, start=1):
            import_employees(session, f"bench-employees-{part}.csv", data=data)
        for part, data in enumerate(results, start=1):
            import_results(session, f"bench-results-{part}.csv", data=data)
    seconds = time.perf_counter() - t0
    settle(url)
    return seconds


def bare_payloads(url: str, code: str) -> tuple[EngineSession, list[tuple[str, Any]], int]:
    """The run's compiled rules registered in this process, and its facts encoded for
    them as bare durable_rules is given them (one payload a ruleset an employee): built
    once, untimed, for every pass."""
    with db.session_scope(url) as session:
        period = runs.periods.require(session, code)
        compiled, _ = runs.compile_for(session, period)
        facts = build_facts(session, period, sorted(compiled.population))
        session.rollback()
    payloads = []
    for ef in facts:
        fact = to_fact(ef.values, compiled)
        for part in compiled.parts:
            payload = {k: v for k, v in fact.items() if k in part.fields}
            payload.update(t=part.stage, sid=ef.code)
            payloads.append((part.name, payload))
    # registers the rulesets and their (no-op) actions
    return EngineSession(compiled), payloads, len(facts)


def bare_seconds(engine: EngineSession, payloads: list[tuple[str, Any]]) -> float:
    """Bare durable_rules on the run's facts (bare_payloads): one assert_fact per employee
    into each ruleset of the compiled rules (the C core holds only so many tests a
    ruleset: engine.compiler shares the conditions out), then deleting its state. Timed
    after it (CORE, CPU["core"]): the same asserts into the C core as the run makes them
    (engine.compiler.fire), without the wrapper's work for Python actions."""
    host = engine.host
    rulesets = engine._rulesets
    t0, c0 = time.perf_counter(), time.process_time()
    for name, payload in payloads:
        host.assert_fact(name, payload)
        rulesets[name].delete_state(payload["sid"])
    CPU["bare"] = time.process_time() - c0
    seconds = time.perf_counter() - t0
    # the C core alone, as the run drives it (engine.compiler.fire): the same asserts,
    # without the wrapper's work for Python actions
    handles = {name: ruleset._handle for name, ruleset in rulesets.items()}
    dumps = json.dumps
    t0, c0 = time.perf_counter(), time.process_time()
    for name, payload in payloads:
        fire(handles[name], dumps(payload, ensure_ascii=False))
        rulesets[name].delete_state(payload["sid"])
    CPU["core"] = time.process_time() - c0
    CORE["seconds"] = time.perf_counter() - t0
    return seconds


def forget_runs(url: str) -> None:
    """Take the runs away (their outcomes, flag cases, chunks and jobs with them), so
    that the next pass's run is the period's first again, as the first pass's was."""
    from sqlalchemy import delete

    from engine.models import Run, RunJob

    with db.session_scope(url) as session:
        session.execute(delete(RunJob))
        session.execute(delete(Run))
    settle(url)


def settle(url: str) -> None:
    """On PostgreSQL, vacuum and analyse the database before a pass: the server's own
    autovacuum, woken by the import or the runs taken away, otherwise did that work
    during the pass's run (the first pass's run took a fifth longer than the others)."""
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


PHASES: dict[str, float] = {}
PHASE_CPU: dict[str, float] = {}  # the same, in this process's CPU seconds
CPU: dict[str, float] = {}  # this process's CPU seconds (the database server's not counted)
CORE: dict[str, float] = {}  # the C core alone: seconds


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn, adding the seconds it takes to PHASES[name] (in this process)."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - t0
            PHASE_CPU[name] = PHASE_CPU.get(name, 0.0) + time.process_time() - c0

    return timed


# the steps of a run, timed where they run (with --workers 1, all in this process);
# evaluation is what a chunk takes besides its facts and storing: timing each employee's
# evaluation took 5% of the run's CPU itself (two clock reads an employee)
chunks.plan = _timed("plan (population)", chunks.plan)
chunks.chunk_facts = _timed("facts", chunks.chunk_facts)
chunks._evaluate_and_store = _timed("chunk", chunks._evaluate_and_store)
chunks.write_outcomes = _timed("store outcomes", chunks.write_outcomes)
chunks.finish = _timed("finish", chunks.finish)
chunks.compile_for = _timed("compile", chunks.compile_for)
chunks.EngineSession = _timed("engine session", chunks.EngineSession)


def _machine_busy() -> float | None:
    """Seconds of CPU the whole machine has been busy since boot (every core, every
    process: the database server's work included), from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU seconds of this process's ended children (the run's forked workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def whole_run_seconds(url: str, code: str, workers: int, profile: bool
                      ) -> tuple[float, int, int]:
    """The run as ``laurel run`` does it: (seconds, employees, outcomes)."""
    PHASES.clear()
    PHASE_CPU.clear()
    factory = db.make_sessionmaker(url)
    profiler = cProfile.Profile() if profile else None
    gc.collect()
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    m0 = _machine_busy()
    if profiler:
        profiler.enable()
    with factory() as session:
        job_id = jobs.start(session, code, "bench").id
        session.commit()
    run = jobs.run_here(factory, job_id, workers)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - t0
    m1 = _machine_busy()
    CPU["machine"] = m1 - m0 if m0 is not None and m1 is not None else None
    # this process's CPU and that of the workers it forked (ended and waited for by now)
    CPU["whole"] = time.process_time() - c0 + _children_cpu() - k0
    for phases in (PHASES, PHASE_CPU):
        chunk = phases.pop("chunk", 0.0)
        phases["evaluate and word"] = chunk - phases.get("facts", 0.0) \
            - phases.get("store outcomes", 0.0)
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
    with factory() as session:
        from sqlalchemy import func, select

        from engine.models import Outcome

        outcomes = session.scalar(select(func.count()).select_from(Outcome).where(
            Outcome.run_id == run.id))
        employees = run.employee_count
    return seconds, employees, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Time a whole run beside bare durable_rules on the same facts.")
    parser.add_argument("--employees", type=int, default=20_000,
                        help="employees of the scratch organisation (default 20,000; "
                             "100000 and 1000000 are the issue's other sizes)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"),
                        default="both", help="where to run (default both)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "LAUREL_BENCH_POSTGRES_URL", POSTGRES),
        help="a scratch PostgreSQL database: its tables are dropped (default %(default)s)")
    parser.add_argument("--workers", type=int, default=runs.workers(),
                        help="processes sharing the run's chunks (default: as many as "
                             "laurel run uses, LAUREL_RUN_WORKERS or one a core: "
                             "%(default)s here); bare durable_rules always uses one")
    parser.add_argument("--period", default="2026-01",
                        help="the period run (default 2026-01, a month; 2026-Q1 a quarter)")
    parser.add_argument("--passes", type=int, default=3,
                        help="bare durable_rules then the whole run, this many times, the "
                             "runs taken away between passes (default 3; the median ratio "
                             "is printed: a shared machine's speed varies)")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the whole run (slows it down)")
    args = parser.parse_args()
    urls = []
    if args.database in ("sqlite", "both"):
        urls.append(("SQLite", f"sqlite:///{tempfile.mkdtemp()}/bench.db"))
    if args.database in ("postgresql", "both"):
        urls.append(("PostgreSQL", args.postgres_url))
    n = args.employees
    print(f"{n:,} employees, {3 * n:,} result rows, period {args.period}, "
          f"workers {args.workers}")
    for label, url in urls:
        try:
            setup = prepare(url, n)
        except OperationalError as exc:
            print(f"{label}: not reachable, skipped ({str(exc.orig).strip().splitlines()[0]})")
            continue
        engine, payloads, count = bare_payloads(url, args.period)
        parts = len(engine.compiled.parts)
        print(f"{label}: set up in {setup:.1f}s")
        ratios, cpu_ratios = [], []
        for p in range(1, args.passes + 1):
            if p > 1:
                forget_runs(url)
            bare = bare_seconds(engine, payloads)
            if p == args.passes:  # the facts held for bare durable_rules are not the run's
                payloads.clear()
                gc.collect()
            whole, employees, outcomes = whole_run_seconds(url, args.period, args.workers,
                                                           args.profile)
            ratios.append(whole / bare)
            cpu_ratios.append(CPU["whole"] / CPU["bare"])
            print(f"  pass {p}: {employees:,} employees, {outcomes:,} outcomes")
            print(f"    bare durable_rules {bare:.2f}s ({count / bare:,.0f}/s, {parts} "
                  f"rulesets)  whole run {whole:.2f}s ({employees / whole:,.0f}/s)  "
                  f"ratio {whole / bare:.2f} (aim <= 1.5)")
            print(f"    CPU: bare {CPU['bare']:.2f}s, whole run {CPU['whole']:.2f}s (this "
                  f"process and its workers), ratio {CPU['whole'] / CPU['bare']:.2f}")
            print(f"    the C core alone, as the run drives it: {CORE['seconds']:.2f}s (CPU "
                  f"{CPU['core']:.2f}s); whole run / core {whole / CORE['seconds']:.2f} by "
                  f"the clock, {CPU['whole'] / CPU['core']:.2f} by CPU")
            if CPU["machine"] is not None:
                cores = os.cpu_count() or 1
                print(f"    the machine's CPU while the run ran: {CPU['machine']:.2f}s busy "
                      f"of {cores * whole:.2f}s ({cores} cores; the database server and "
                      f"anything else running included)")
            if args.workers == 1:
                print("    of the whole run: " + ", ".join(
                    f"{name} {seconds:.2f}s (CPU {PHASE_CPU[name]:.2f}s)"
                    for name, seconds in PHASES.items()))
        if args.passes > 1:
            print(f"  {label}, median of {args.passes} passes: ratio whole / bare "
                  f"{statistics.median(ratios):.2f} by the clock (aim <= 1.5), "
                  f"{statistics.median(cpu_ratios):.2f} by CPU (without the database "
                  "server's work)")


if __name__ == "__main__":
    main()
