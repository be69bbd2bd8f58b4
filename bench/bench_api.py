"""Benchmark: a batch of results posted to the API against the same rows as a file import.

    python bench/bench_api.py [--rows 100000] [--months 10] [--metrics 6]

Makes the rows of bench/bench_import.py (employees x months), imports them once as a CSV
file (engine.imports.import_results) and once as one JSON batch to POST /api/v1/results
(through the Flask app, in process) into two scratch SQLite databases, or into
LAUREL_DATABASE_URL when it is set (then the second goes to new periods of the same
database: point it at a scratch one). Prints each rate and their ratio: the API reads JSON
and calls the import's own code, so the ratio shows what the JSON and the HTTP layer cost.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_import import METRICS, make_files  # noqa: E402
from engine import db, tokens  # noqa: E402
from engine.imports import import_employees, import_results  # noqa: E402
from engine.metrics import seed_reference_data  # noqa: E402
from engine.models import User  # noqa: E402


def _database(url: str, emp_file: bytes) -> str:
    db.upgrade_schema(url)
    with db.session_scope(url, actor="bench") as session:
        seed_reference_data(session)
        import_employees(session, "bench-employees.csv", data=emp_file)
        session.add(User(email="bench@example.com", role="comp_analyst", active=True))
        session.flush()
        return tokens.create(session, "bench@example.com", "bench")[1]


def _batch(res_file: bytes, year: int) -> bytes:
    reader = csv.reader(io.StringIO(res_file.decode()))
    header = next(reader)
    items = [{"period": f"{year}{row[0][4:]}", "employee_code": row[1],
              "values": dict(zip(header[2:], row[2:], strict=True))} for row in reader]
    return json.dumps({"items": items}).encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="result rows (default 100000)")
    parser.add_argument("--months", type=int, default=10, help="months (default 10)")
    parser.add_argument("--metrics", type=int, default=6, help="values per row (default 6)")
    args = parser.parse_args(argv)
    employees = max(1, args.rows // args.months)
    metrics = METRICS[: max(1, min(args.metrics, len(METRICS)))]
    emp_file, res_file = make_files(employees, args.months, metrics)
    rows = employees * args.months

    scratch = tempfile.TemporaryDirectory(prefix="laurel-bench-api-")
    shared = os.environ.get("LAUREL_DATABASE_URL")
    file_url = shared or f"sqlite:///{Path(scratch.name) / 'file.db'}"
    api_url = shared or f"sqlite:///{Path(scratch.name) / 'api.db'}"
    _database(file_url, emp_file)
    token = _database(api_url, emp_file) if not shared else None
    if shared:
        with db.session_scope(shared, actor="bench") as session:
            token = tokens.create(session, "bench@example.com", "bench-2")[1]

    start = time.perf_counter()
    with db.session_scope(file_url, actor="bench") as session:
        import_results(session, "bench-results.csv", data=res_file)
    by_file = time.perf_counter() - start

    os.environ["LAUREL_DATABASE_URL"] = api_url
    os.environ.setdefault("LAUREL_INSTANCE_PATH", scratch.name)
    from admin.app import create_app

    app = create_app({"SECRET_KEY": "bench", "API_RATE_LIMIT": "1000 per minute"})
    body = _batch(res_file, 2040)
    start = time.perf_counter()
    response = app.test_client().post("/api/v1/results", data=body,
                                      content_type="application/json",
                                      headers={"Authorization": f"Bearer {token}"})
    by_api = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"the API refused the batch: {response.get_data(as_text=True)[:500]}")

    print(f"database: {api_url.split('@')[-1]}")
    print(f"{rows} rows of {len(metrics)} values ({len(body) / 2**20:.1f} MB of JSON)")
    print(f"file import: {by_file:.2f} s, {rows / by_file:,.0f} rows/s")
    print(f"API batch:   {by_api:.2f} s, {rows / by_api:,.0f} rows/s "
          f"({by_api / by_file:.2f} x the file import's time)")
    db.dispose_engines()
    scratch.cleanup()


if __name__ == "__main__":
    main()
