"""Benchmark: import an employees file and a results file, on SQLite and PostgreSQL.

    python bench/bench_import.py [--employees 100000] [--rows 100000] [--months 10]
                                 [--metrics 18] [--postgres URL] [--profile]

Makes an employees file of --employees rows, and a results file of --rows rows
(rows / months employees x months, each with --metrics values), and imports both, timed
(commit included; with the CPU seconds this process and, where PostgreSQL runs on this
machine, its backend used), into a scratch SQLite database and, with --postgres (or
LAUREL_BENCH_POSTGRES_URL), into a scratch database created on that PostgreSQL server and
dropped afterwards. Prints rows per second of each file on each database.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import db  # noqa: E402
from engine.imports import import_employees, import_results  # noqa: E402
from engine.metrics import seed_reference_data  # noqa: E402

METRICS = ["quota", "revenue_new", "revenue_existing", "new_customers", "satisfaction",
           "max_discount_pct", "signed_amount", "collected_amount", "leads", "opportunities",
           "won_leads", "visits", "nps", "self_score", "manager_score", "customer_score",
           "teamwork_score", "renewal_intent", "target_customers", "churned_revenue",
           "customer_revenue_base", "closed_customers", "false_ad_complaints"]


def make_files(employees: int, months: int, metrics: list[str], seed: int = 7,
               result_employees: int | None = None) -> tuple[bytes, bytes]:
    """Return an employees file, and a results file of the first ``result_employees``
    (default: all) employees x months rows."""
    rng = random.Random(seed)
    emp = io.StringIO()
    emp.write("code,name,team,level\n")
    for i in range(employees):
        emp.write(f"B{i:06d},Bench {i},Team {i // 50},{('S1', 'S2', 'S3', 'M1')[i % 4]}\n")
    res = io.StringIO()
    res.write("period,employee_code," + ",".join(metrics) + "\n")
    counts = {"new_customers", "leads", "opportunities", "won_leads", "visits",
              "target_customers", "closed_customers", "false_ad_complaints"}
    for m in range(months):
        period = f"{2026 + m // 12}-{m % 12 + 1:02d}"
        for i in range(employees if result_employees is None else result_employees):
            cells = []
            for key in metrics:
                if key in counts:
                    cells.append(str(rng.randint(0, 40)))
                elif key == "max_discount_pct":
                    cells.append(f"0.0{rng.randint(1, 9)}")
                elif key in ("satisfaction", "nps") or key.endswith(("_score", "_intent")):
                    cells.append(str(rng.randint(50, 100)))
                else:
                    cells.append(f"{rng.randint(10000, 200000)}.{rng.randint(0, 99):02d}")
            res.write(f"{period},B{i:06d}," + ",".join(cells) + "\n")
    return emp.getvalue().encode(), res.getvalue().encode()


@contextmanager
def scratch_postgres(server: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL server of ``server``, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server)
    name = f"laurel_bench_{os.getpid()}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        db.dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def scratch_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="laurel-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"
        db.dispose_engines()


def server_cpu(session: Any) -> float | None:
    """The CPU seconds the session's PostgreSQL backend has used, where the server runs on
    this machine (its /proc); else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def timed(url: str, call: Callable[..., object], name: str, data: bytes,
          profiler: cProfile.Profile | None) -> tuple[object, float, str]:
    """Import one file in its own transaction; return its report, the seconds taken and
    the CPU seconds this process and the database server's backend used (steadier than
    the clock on a shared machine; the commit's server time is not in it)."""
    start, cpu = time.perf_counter(), time.process_time()
    with db.session_scope(url, actor="bench") as session:
        server = server_cpu(session)
        if profiler:
            profiler.enable()
        report = call(session, name, data=data)
        if profiler:
            profiler.disable()
        session.flush()
        if server is not None:
            server = server_cpu(session) - server  # type: ignore[operator]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    used = f"CPU {cpu:.2f} s" + (f" + server {server:.2f} s" if server is not None else "")
    return report, seconds, used


def bench(url: str, emp_file: bytes, res_file: bytes, metrics: int,
          profiler: cProfile.Profile | None) -> None:
    db.upgrade_schema(url)
    with db.session_scope(url, actor="bench") as session:
        seed_reference_data(session)
    emp, emp_s, emp_cpu = timed(url, import_employees, "bench-employees.csv", emp_file,
                                profiler)
    res, res_s, res_cpu = timed(url, import_results, "bench-results.csv", res_file, profiler)
    print(f"{url.split('://')[0]}: employees {emp.rows:,} rows in {emp_s:.2f} s = "
          f"{emp.rows / emp_s:,.0f} rows/s ({emp_cpu}); results {res.rows:,} rows of "
          f"{metrics} metrics in {res_s:.2f} s = {res.rows / res_s:,.0f} rows/s "
          f"({res.rows * metrics / res_s:,.0f} values/s; {res_cpu})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=100_000,
                        help="rows of the employees file (default 100000)")
    parser.add_argument("--rows", type=int, default=100_000,
                        help="rows of the results file (default 100000)")
    parser.add_argument("--months", type=int, default=10, help="months (default 10)")
    parser.add_argument("--metrics", type=int, default=18, help="values per row (default 18)")
    parser.add_argument("--postgres", default=os.environ.get("LAUREL_BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server's URL (a scratch database is made on it)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args(argv)
    employees = max(1, args.rows // args.months, args.employees)
    metrics = METRICS[: max(1, min(args.metrics, len(METRICS)))]
    emp_file, res_file = make_files(employees, args.months, metrics,
                                    result_employees=max(1, args.rows // args.months))
    profiler = cProfile.Profile() if args.profile else None
    with scratch_sqlite() as url:
        bench(url, emp_file, res_file, len(metrics), profiler)
    if args.postgres:
        with scratch_postgres(args.postgres) as url:
            bench(url, emp_file, res_file, len(metrics), profiler)
    else:
        print("postgresql: not measured (give --postgres URL or LAUREL_BENCH_POSTGRES_URL)")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
