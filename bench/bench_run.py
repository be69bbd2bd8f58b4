"""Benchmark a compensation run: N employees with a month and a quarter of results.

Prints employees per second for each phase (load, enrich, evaluate, store) of the month
run and the quarter run, the bare durable_rules rate on the same facts (assert and
delete, nothing stored), and the ratio of the whole run to the bare engine time.

    python bench/bench_run.py                # 10,000 employees
    python bench/bench_run.py --employees 100000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import db, runs  # noqa: E402
from engine.compiler import Session as EngineSession  # noqa: E402
from engine.compiler import to_fact  # noqa: E402
from engine.facts import build_facts  # noqa: E402
from engine.imports import import_employees, import_results  # noqa: E402
from engine.metrics import seed_reference_data  # noqa: E402
from engine.rulebook import load_library  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
METRICS = ["quota", "revenue_new", "revenue_existing", "signed_amount", "collected_amount",
           "new_customers", "target_customers", "closed_customers", "leads", "opportunities",
           "won_leads", "false_ad_complaints", "satisfaction", "self_score", "manager_score",
           "customer_score", "renewal_intent", "max_discount_pct"]


def generate(n: int, seed: int = 1) -> tuple[bytes, bytes]:
    rng = random.Random(seed)
    stages = ["startup", "growth", "mature"]
    emps = ["code,name,email,team,region,level,manager_code,hire_date,team_stage"]
    for i in range(n):
        team = i // 10
        emps.append(f"B{i:06d},Rep {i},,T{team:05d},R{team % 7},{'S1 S2 S3 M1'.split()[i % 4]},"
                    f",2020-01-01,{stages[team % 3]}")
    res = ["period,employee_code," + ",".join(METRICS)]
    for period in ("2026-01", "2026-02", "2026-03"):
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
            res.append(f"{period},B{i:06d}," + ",".join(map(str, row)))
    return "\n".join(emps).encode(), "\n".join(res).encode()


def bare_engine_seconds(session, code: str) -> tuple[float, int]:
    """Assert and delete every employee's facts; nothing else."""
    period = runs.periods.require(session, code)
    compiled, _ = runs.compile_for(session, period)
    facts = build_facts(session, period, sorted(compiled.population))
    encoded = [(f.code, to_fact(f.values, compiled)) for f in facts]
    engine = EngineSession(compiled)
    t0 = time.perf_counter()
    for sid, fact in encoded:
        engine.evaluate(sid, fact)
    return time.perf_counter() - t0, len(encoded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes for evaluation (default: LAUREL_RUN_WORKERS "
                             "or the number of cores)")
    args = parser.parse_args()
    if args.workers is not None:
        os.environ["LAUREL_RUN_WORKERS"] = str(args.workers)
    tmp = tempfile.mkdtemp()
    url = os.environ.get("LAUREL_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
    db.upgrade_schema(url)
    n = args.employees
    emps, results = generate(n)
    with db.session_scope(url) as session:
        session.info["audit_off"] = True
        seed_reference_data(session)
        load_library(session, ROOT / "rules")
        import_employees(session, "bench-employees.csv", data=emps)
        import_results(session, "bench-results.csv", data=results)
    print(f"{n} employees, {3 * n} month result rows; workers: "
          f"{os.environ.get('LAUREL_RUN_WORKERS', os.cpu_count())}")
    for code in ("2026-01", "2026-Q1"):
        with db.session_scope(url) as session:
            bare, count = bare_engine_seconds(session, code)
            session.rollback()
        with db.session_scope(url) as session:
            t0 = time.perf_counter()
            result = runs.start_run(session, code, actor="bench")
            total = time.perf_counter() - t0
        t = result.timings

        def rate(seconds: float, count: int = count) -> str:
            return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"

        print(f"{code}: {count} employees, {len(result.outcomes)} outcomes")
        print(f"  load {t.load:.2f}s ({rate(t.load)})  enrich {t.enrich:.2f}s "
              f"({rate(t.enrich)})  evaluate {t.evaluate:.2f}s ({rate(t.evaluate)})  "
              f"store {t.store:.2f}s ({rate(t.store)})")
        print(f"  whole run {total:.2f}s ({rate(total)}); bare durable_rules {bare:.2f}s "
              f"({rate(bare)}); ratio {total / bare:.2f} (aim <= 1.5)")


if __name__ == "__main__":
    main()
