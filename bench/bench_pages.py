"""Benchmark: how long the back office's pages of a big run take to answer.

    python bench/bench_pages.py [--url URL] [--run ID] [--repeat 5]

Reads a database that already holds a run (by default the newest calculated or approved
run of LAUREL_BENCH_POSTGRES_URL, else ``laurel_bench`` on 127.0.0.1: what
``bench/bench_run.py`` leaves behind), logs in through the login form as an analyst and a
compliance officer made for the purpose, and times each page as a browser would ask for
it, through the whole Flask app (the WSGI stack, the database, the template): the run's
overview, its people (first and last page), one employee's statement, the flag queue (first
and last page; filtered by a rule, a severity, and the officer's own), the compliance
officer's home page and the run list. Prints, for each, the first answer and the median of
``--repeat`` more, in milliseconds, beside the aim (300 ms).

    python bench/bench_run.py --employees 1000000 --workers 2 --database postgresql
    python bench/bench_pages.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from admin.app import create_app  # noqa: E402
from engine import db  # noqa: E402
from engine.models import Employee, FlagCase, Outcome, Run, User  # noqa: E402
from engine.users import create_user  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/laurel_bench"
PASSWORD = "bench-pages-password"
AIM_MS = 300
USERS = {"comp_analyst": "bench-analyst@example.com",
         "compliance_officer": "bench-compliance@example.com"}


def _users(url: str) -> None:
    with db.session_scope(url) as session:
        for role, email in USERS.items():
            if session.scalar(select(User.id).where(User.email == email)) is None:
                create_user(session, email, PASSWORD, role, name=f"Bench {role}")
        session.commit()


def _pages(url: str, run_id: int | None) -> tuple[int, list[tuple[str, str, str]]]:
    """The run, and (what, role, path) of each page to time."""
    with db.session_scope(url) as session:
        if run_id is None:
            run_id = session.scalar(select(Run.id).where(
                Run.status.in_(("calculated", "approved", "locked"))).order_by(Run.id.desc()))
        if run_id is None:
            sys.exit(f"{url}: no run; make one first (bench/bench_run.py)")
        people = session.scalar(select(func.count(func.distinct(Outcome.employee_id)))
                                .where(Outcome.run_id == run_id))
        middle = session.scalar(select(Employee.code).join(Outcome, Outcome.employee_id
                                                           == Employee.id)
                                .where(Outcome.run_id == run_id).order_by(Employee.code)
                                .offset(people // 2).limit(1))
        cases = session.scalar(select(func.count()).select_from(FlagCase))
        # the queue's filters as an officer uses them: the rule and the severity of the
        # most flags
        rule, severity = session.execute(
            select(FlagCase.rule_key, FlagCase.severity).group_by(
                FlagCase.rule_key, FlagCase.severity).order_by(func.count().desc())
            .limit(1)).one_or_none() or ("", "")
    last_people = max(1, -(-people // 100))
    last_cases = max(1, -(-cases // 50))
    analyst, officer = "comp_analyst", "compliance_officer"
    print(f"run {run_id}: {people:,} employees, {cases:,} flag cases")
    return run_id, [
        ("run overview", analyst, f"/admin/runs/{run_id}/"),
        (f"run's people, last page ({last_people:,})", analyst,
         f"/admin/runs/{run_id}/?page={last_people}"),
        ("run's people, search", analyst, f"/admin/runs/{run_id}/?q={middle}"),
        (f"statement of {middle}", analyst, f"/admin/runs/{run_id}/statement/{middle}"),
        ("flag queue", officer, "/admin/compliance/"),
        (f"flag queue, last page ({last_cases:,})", officer,
         f"/admin/compliance/?page={last_cases}"),
        (f"flag queue, rule {rule}", officer, f"/admin/compliance/?rule={rule}"),
        (f"flag queue, severity {severity}", officer,
         f"/admin/compliance/?severity={severity}"),
        ("flag queue, the officer's own", officer,
         f"/admin/compliance/?assignee={USERS[officer]}"),
        ("compliance officer's home page", officer, "/admin/"),
        ("run list", analyst, "/admin/runs/"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("LAUREL_BENCH_POSTGRES_URL", POSTGRES),
                        help="the database holding the run (default %(default)s)")
    parser.add_argument("--run", type=int, help="the run (default: the newest that counts)")
    parser.add_argument("--repeat", type=int, default=5, help="timed answers after the first")
    args = parser.parse_args()
    _users(args.url)
    run_id, pages = _pages(args.url, args.run)
    app = create_app({"DATABASE_URL": args.url, "SECRET_KEY": "bench-pages",
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    clients = {}
    for role, email in USERS.items():
        client = app.test_client()
        answer = client.post("/login", data={"email": email, "password": PASSWORD})
        if answer.status_code != 302:
            sys.exit(f"login of {email} failed: {answer.status_code}")
        clients[role] = client
    worst = 0.0
    for what, role, path in pages:
        times = []
        for _ in range(1 + args.repeat):
            t0 = time.perf_counter()
            answer = clients[role].get(path)
            times.append((time.perf_counter() - t0) * 1000)
            if answer.status_code != 200:
                sys.exit(f"{path}: HTTP {answer.status_code}")
        median = statistics.median(times[1:]) if args.repeat else times[0]
        worst = max(worst, median)
        print(f"  {what:<40} first {times[0]:7.0f} ms  median {median:7.0f} ms"
              f"{'' if median <= AIM_MS else '  (over ' + str(AIM_MS) + ' ms)'}")
    print(f"slowest median {worst:.0f} ms (aim {AIM_MS} ms)")


if __name__ == "__main__":
    main()
