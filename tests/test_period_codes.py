"""Period codes are ASCII with a year from 1900 to 9999, at every door that reads one."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.cli import main
from engine import periods
from engine.errors import PeriodError
from engine.imports import import_employees, import_results
from engine.models import Period, Run


@pytest.mark.parametrize("code", ["２０２６-05", "١٩٩٩-05", "２０２６", "2026-Q１", "0000-01",
                                  "1899-12", "10000", "2026-5", "2026-05\n-"])
def test_a_period_code_is_ascii_with_a_sane_year(code: str) -> None:
    with pytest.raises(PeriodError):
        periods.parse(code)


def test_period_years_run_from_1900_to_9999() -> None:
    assert periods.parse("1900-01")[1] == dt.date(1900, 1, 1)
    assert periods.parse("9999-Q4")[2] == dt.date(9999, 12, 31)
    assert periods.parse(" 2026 ")[0] == "year"


@pytest.mark.parametrize(("code", "reason"), [
    ("２０２６-05", "period '２０２６-05' is not a period code (YYYY-MM, YYYY-Qn or YYYY "
     "in the digits 0-9)"),
    ("0000-01", "period '0000-01' is out of range: the year is from 1900 to 9999")])
def test_laurel_run_refuses_a_period_code_in_one_line(db_url: str, session: Session,
                                                       code: str, reason: str) -> None:
    """Full-width digits once read as 2026-05 and made a second, payable run of it."""
    import_employees(session, "e.csv", data=b"code,name,team,level\nE1,Ann,North,S1\n")
    import_results(session, "r.csv", data=b"period,employee_code,quota\n2026-05,E1,100\n")
    session.commit()
    codes = set(session.scalars(select(Period.code)))
    result = CliRunner().invoke(main, ["run", code])
    assert result.exit_code == 1
    assert result.stderr == f"error: {reason}\n"
    assert set(session.scalars(select(Period.code))) == codes
    assert session.scalar(select(func.count()).select_from(Run)) == 0
