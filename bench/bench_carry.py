"""Benchmark: how long a second run of a period takes to carry its flag cases over.

    python bench/bench_carry.py [--url URL] [--run ID] [--cleared 5] [--decided 1]

Reads a database that already holds a run with flag cases (by default the newest
calculated or approved run of LAUREL_BENCH_POSTGRES_URL, else ``laurel_bench`` on
127.0.0.1: what ``bench/bench_run.py`` leaves behind) and, in one transaction that is rolled
back at the end (the database is left as it was): dismisses ``--decided`` percent of its
cases and puts as many in review, discards the run, stores a copy of its payouts and flags
as a new run of the period (``--cleared`` percent of the flags left out: no longer raised),
and times ``engine.compliance.carry_cases`` of it, by the clock and by this process's CPU.
Prints what it carried, the audit entries it wrote and the cases by status.

    python bench/bench_run.py --employees 200000 --database postgresql
    python bench/bench_carry.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from engine import compliance, db  # noqa: E402
from engine.models import AuditLog, FlagCase, Run  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/laurel_bench"
ACTOR = "bench-carry"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("LAUREL_BENCH_POSTGRES_URL", POSTGRES),
                        help="the database (default: %(default)s)")
    parser.add_argument("--run", type=int, help="the run (default: the newest that counts)")
    parser.add_argument("--cleared", type=int, default=5,
                        help="percent of the flags the new run no longer raises")
    parser.add_argument("--decided", type=int, default=1,
                        help="percent of the cases dismissed, and as many in review")
    args = parser.parse_args()
    session = db.make_sessionmaker(args.url)()
    session.info["actor"] = ACTOR
    try:
        first = session.get(Run, args.run) if args.run else session.scalar(
            select(Run).where(Run.status.in_(("calculated", "approved")))
            .order_by(Run.id.desc()))
        if first is None:
            sys.exit(f"{args.url}: no run; make one first (bench/bench_run.py)")
        holds = [{"key": k, "hold": True} for k in session.scalars(
            select(FlagCase.rule_key).distinct().where(FlagCase.holds))]
        every = 100 // max(1, args.decided)
        session.execute(text("UPDATE flag_case SET status = 'dismissed', decision = "
                             "'dismissed', reason = 'bench' WHERE run_id = :r AND id % :n = 0"),
                        {"r": first.id, "n": every})
        session.execute(text("UPDATE flag_case SET status = 'in_review', assignee = "
                             "'bench@example.com' WHERE run_id = :r AND id % :n = 1"),
                        {"r": first.id, "n": every})
        session.execute(text("UPDATE run SET status = 'discarded' WHERE id = :r"),
                        {"r": first.id})
        second = Run(period_id=first.period_id, status="calculated", started_by=ACTOR,
                     employee_count=first.employee_count)
        session.add(second)
        session.flush()
        left_out = 100 // max(1, args.cleared) if args.cleared else 0
        session.execute(text(
            "INSERT INTO outcome (run_id, employee_id, rule_key, kind, amount, currency, "
            "value, status, explanation) SELECT :new, employee_id, rule_key, kind, amount, "
            "currency, value, status, explanation FROM outcome WHERE run_id = :r AND "
            "(amount IS NOT NULL OR (kind = 'flag' AND (:n = 0 OR id % :n <> 0))) "
            "ORDER BY id"), {"new": second.id, "r": first.id, "n": left_out})
        if session.connection().dialect.name == "postgresql":
            session.execute(text("ANALYZE outcome"))
        cpu, clock = time.process_time(), time.perf_counter()
        done = compliance.carry_cases(session, second, holds, ACTOR)
        session.flush()
        cpu, clock = time.process_time() - cpu, time.perf_counter() - clock
        entries = session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.actor == ACTOR))
        print(f"run {first.id} carried over by a new run: carry_cases {clock:.2f} s by the "
              f"clock, {cpu:.2f} s CPU; {entries:,} audit entries")
        print(f"  what it did: {done}")
        print("  the new run's cases:", dict(session.execute(
            select(FlagCase.status, func.count()).where(FlagCase.run_id == second.id)
            .group_by(FlagCase.status)).all()))
    finally:
        session.rollback()
        session.close()


if __name__ == "__main__":
    main()
