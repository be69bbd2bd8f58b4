"""What a review of the hardening found: input no page can use, databases that cannot be
used, worker processes that die or outlive their run, and numbers written oddly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from admin.cli import main
from engine import forks, lifecycle, runs
from engine.errors import FormulaError, LaurelError, RuleError, RunFailed
from engine.imports import import_employees, import_results
from engine.metrics import CATALOG, parse_formula
from engine.rulebook import read_yaml, validate

try:
    from tests.test_admin_support import app, client, login, org  # noqa: F401
except ImportError:  # pragma: no cover - run from the tests folder
    from test_admin_support import app, client, login, org  # type: ignore # noqa: F401

TYPES = {k: t for k, _, _, t, _, _ in CATALOG}
HUGE = "99999999999999999999"


@pytest.mark.parametrize("url", [
    f"/admin/runs/{HUGE}/", f"/admin/runs/?page={HUGE}", f"/admin/runs/1/compare?with={HUGE}",
    f"/admin/runs/job/{HUGE}", f"/admin/employee/?page={HUGE}",
    f"/admin/employee/details/?id={HUGE}", f"/admin/result/?flt0_0={HUGE}",
    f"/admin/compliance/{HUGE}/", f"/admin/pips/{HUGE}/",
    f"/admin/rules/commission.tiered/v{HUGE}/try",
    f"/admin/rules/commission.tiered/edit?version={HUGE}", "/admin/employee/?page=-1",
])
def test_numbers_past_the_databases_integers_are_not_found(client: FlaskClient,
                                                          url: str) -> None:
    login(client, "hr_admin")
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", ["/admin/employee/?search=%00", "/admin/runs/?period=%00",
                                 "/admin/rules/%00/"])
def test_a_nul_character_is_refused_not_sent_to_the_database(client: FlaskClient,
                                                            url: str) -> None:
    login(client, "auditor")
    response = client.get(url)
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)


def test_a_nul_in_the_login_form_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "hr@x.example\x00", "password": "x"})
    assert response.status_code == 400


def test_an_adjustment_of_a_huge_exponent_is_refused_in_one_line(session) -> None:
    import_employees(session, "e.csv", data=b"code,name,team,level\nE1,Ann,North,S1\n")
    import_results(session, "r.csv", data=b"period,employee_code,quota\n2026-05,E1,100\n")
    run = runs.start_run(session, "2026-05").run
    session.add(__import__("engine.models", fromlist=["User"]).User(
        email="a@x.example", role="comp_analyst", password_hash="x"))
    session.flush()
    for amount in ("1e999999999", "1e-999999999", "NaN"):
        with pytest.raises(LaurelError, match="field amount"):
            lifecycle.add_adjustment(session, run.id, "E1", amount, "r", "a@x.example")


def test_a_database_that_cannot_be_used_gets_one_line(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("LAUREL_DATABASE_URL", "foo://x")
    result = runner.invoke(main, ["run", "2026-05"])
    assert result.exit_code == 1 and "not a database URL" in result.output
    monkeypatch.setenv("LAUREL_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    result = runner.invoke(main, ["rules", "validate", str(Path(__file__).parent.parent / "rules")])
    assert result.exit_code == 1 and "`laurel init` first" in result.output
    assert "Traceback" not in result.output


# --- forked workers ----------------------------------------------------------------------------


def _square(i: int) -> int:
    if i == 3:
        raise RunFailed("employee E3: no")
    return i * i


def _sleepy(i: int) -> int:
    time.sleep(60)
    return i


def test_forked_work_comes_back_in_order_and_fails_with_the_workers_reason() -> None:
    assert list(forks.forked(lambda i: i * i, 7, 2)) == [i * i for i in range(7)]
    with pytest.raises(RunFailed, match="employee E3: no"):
        list(forks.forked(_square, 6, 2))


def test_a_worker_is_handed_its_own_items_then_anyones_then_the_first_of_anothers() -> None:
    """A run's worker is handed the chunks whose metrics it kept first, then chunks
    nobody kept, and only then another's, the first of them (not a small last one), so
    that the small chunks at the end stay for the end; each item once."""
    handout = forks.Handout(9, [0, 0, 1, 1, None, None, 1, 1, None])
    assert [handout.take(0) for _ in range(4)] == [0, 1, 4, 5]
    assert handout.take(1) == 2
    assert [handout.take(0) for _ in range(3)] == [8, 3, 6]
    assert [handout.take(1) for _ in range(2)] == [7, None]
    everyone = forks.Handout(5)
    assert [everyone.take(i % 2) for i in range(6)] == [0, 1, 2, 3, 4, None]


def _pid_after(i: int) -> int:
    if i == 0:
        time.sleep(1.0)
    return os.getpid()


def test_a_slow_worker_is_handed_fewer_slices() -> None:
    """A worker is handed the next slice when it gives its last one back: while one is
    slow over the first slice, the other does all the rest (handed out in turn, each
    would have had three)."""
    pids = list(forks.forked(_pid_after, 6, 2))
    assert pids[0] not in pids[1:] and len(set(pids[1:])) == 1


def test_a_killed_worker_fails_the_work_at_once() -> None:
    def work(i: int) -> int:
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.2)
        return i

    with pytest.raises(RunFailed, match="worker process of the run stopped"):
        list(forks.forked(work, 8, 2))


def test_workers_do_not_outlive_their_run(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from engine.forks import forked
        def work(i):
            time.sleep(60)
        for _ in forked(work, 2, 2):
            pass
    """))
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        children: list[int] = []
        for _ in range(200):  # wait for both workers
            children = [int(p) for p in subprocess.run(
                ["pgrep", "-P", str(parent.pid)], capture_output=True, text=True
            ).stdout.split()]
            if len(children) >= 2:
                break
            time.sleep(0.05)
        assert len(children) >= 2
    finally:
        parent.kill()
        parent.wait()
    alive = children
    for _ in range(100):  # a liveness bound: they must go, well within ten seconds
        alive = [c for c in alive if _running(c)]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


# --- numbers written oddly ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0x10", "0o17", "1_000", "1_000.5", "1:30"])
def test_a_rule_number_in_another_notation_is_refused(value: str) -> None:
    text = (f"key: x.n\nkind: alert\nperiod_kind: month\n"
            f"when: [{{fact: visits, op: '>', value: {value}}}]\n"
            f"action: {{type: value, value: v}}\n")
    with pytest.raises(RuleError, match="is not a number"):
        validate(read_yaml(text, "n.yaml"), "n.yaml", TYPES)


def test_a_formula_that_divides_by_zero_is_refused() -> None:
    with pytest.raises(FormulaError, match="divides by zero"):
        parse_formula("broken", "revenue_total / 0")
