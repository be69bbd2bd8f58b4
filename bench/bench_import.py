"""Benchmark: import a large results file through engine.imports.import_results.

    python bench/bench_import.py [--rows 100000] [--months 10] [--metrics 6] [--profile]

Makes employees x months rows (default 10,000 x 10 = 100,000 rows, each with --metrics
values) in a scratch SQLite database, or in LAUREL_DATABASE_URL when it is set (its tables
are used as they are: point it at a scratch database), and prints rows and values per
second. The employees file is imported first and not timed.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import db  # noqa: E402
from engine.imports import import_employees, import_results  # noqa: E402
from engine.metrics import seed_reference_data  # noqa: E402

METRICS = ["quota", "revenue_new", "revenue_existing", "new_customers", "satisfaction",
           "max_discount_pct", "signed_amount", "collected_amount", "leads", "opportunities",
           "won_leads", "visits", "nps", "self_score", "manager_score", "customer_score",
           "teamwork_score", "renewal_intent", "target_customers", "churned_revenue",
           "customer_revenue_base", "closed_customers", "false_ad_complaints"]


def make_files(employees: int, months: int, metrics: list[str], seed: int = 7
               ) -> tuple[bytes, bytes]:
    """Return an employees file and a results file of employees x months rows."""
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
        for i in range(employees):
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="result rows (default 100000)")
    parser.add_argument("--months", type=int, default=10, help="months (default 10)")
    parser.add_argument("--metrics", type=int, default=6, help="values per row (default 6)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args(argv)
    employees = max(1, args.rows // args.months)
    metrics = METRICS[: max(1, min(args.metrics, len(METRICS)))]

    scratch = None
    url = os.environ.get("LAUREL_DATABASE_URL")
    if not url:
        scratch = tempfile.TemporaryDirectory(prefix="laurel-bench-")
        url = f"sqlite:///{Path(scratch.name) / 'bench.db'}"
    db.upgrade_schema(url)
    emp_file, res_file = make_files(employees, args.months, metrics)
    rows = employees * args.months
    with db.session_scope(url, actor="bench") as session:
        seed_reference_data(session)
        import_employees(session, "bench-employees.csv", data=emp_file)

    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    with db.session_scope(url, actor="bench") as session:
        if profiler:
            profiler.enable()
        report = import_results(session, "bench-results.csv", data=res_file)
        if profiler:
            profiler.disable()
    elapsed = time.perf_counter() - start

    values = rows * len(metrics)
    print(f"database: {url.split('@')[-1]}")
    print(f"imported {report.rows} rows ({values} values, {len(metrics)} per row) of "
          f"{employees} employees x {args.months} months in {elapsed:.2f} s "
          "(commit included)")
    print(f"{rows / elapsed:,.0f} rows/s, {values / elapsed:,.0f} values/s")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    db.dispose_engines()
    if scratch:
        scratch.cleanup()


if __name__ == "__main__":
    main()
