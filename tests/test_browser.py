"""A policy change from end to end in a real browser (headless Chromium, Selenium).

HR writes a commission rule with two tiers, meets the overlap message, fixes it and asks to
publish; a second HR administrator sees the impact preview and approves; a run of the
period then shows the new line on a statement. Debian's chromium and chromium-driver are
used as installed (.ci/run installs them): Selenium Manager downloads nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine import db
from engine.lifecycle import approve as approve_run
from engine.models import Employee, User
from engine.runs import start_run

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]

pytest_plugins = [support.__name__]
pytestmark = pytest.mark.slow  # a browser, a server process and a walk through pages each

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HR2 = "hr2@example.com"

if not (CHROMIUM.exists() and DRIVER.exists()) and not os.environ.get("CI"):
    pytest.skip("no chromium or chromium-driver here (CI installs them)",
                allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("selenium")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SERVE = """
import sys
from werkzeug.serving import make_server
from admin.app import create_app
app = create_app({"TESTING": True, "SECRET_KEY": "browser-test", "PROPAGATE_UNEXPECTED": False})
make_server("127.0.0.1", int(sys.argv[1]), app, threaded=False).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def server(org: support.Org, db_url: str) -> Iterator[str]:
    """The back office on a free localhost port, on the test database.

    It runs in a process of its own: durable_rules' host must not be shared between
    threads (DESIGN.md), and the test process evaluates a run of its own afterwards.
    """
    with org.session() as s:
        s.add(User(email=HR2, name="hr2", role="hr_admin", password_hash=support.FAST_HASH))
        s.commit()
    port = _free_port()
    env = {**os.environ, "LAUREL_DATABASE_URL": db_url}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], env=env,
                            cwd=str(Path(__file__).resolve().parent.parent),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the back office did not start: "
                                       + (proc.stderr.read() or b"").decode()[-2000:]) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture()
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports go there
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: Any, base: str, email: str) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(support.PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]"
                        ).click()
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.CLASS_NAME, "navbar")))


def log_out(driver: Any) -> None:
    driver.find_element(By.XPATH, "//form[contains(@action, '/logout')]//button").click()
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.NAME, "password")))


def refused_by_the_policy(driver: Any) -> list[str]:
    """What the browser refused under the Content-Security-Policy since the last look."""
    return [entry["message"] for entry in driver.get_log("browser")
            if "Content Security Policy" in entry["message"]]


def body(driver: Any) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def choose(element: Any, value: str) -> None:
    Select(element).select_by_value(value)


def test_hr_raises_the_top_rate_from_6_to_7_percent_and_the_next_run_pays_it(
        server: str, browser: Any, org: support.Org) -> None:
    """One edit, one acceptance of the new figures, one approval by a second HR admin."""
    # A page being replaced makes the element read a moment ago stale: read it again.
    driver = browser
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    with db.session_scope(org.url, actor=HR2) as s:  # January was run and approved at 6%
        run_id = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run.id
        approve_run(s, run_id, HR2)
    log_in(driver, server, support.ROLE_EMAILS["hr_admin"])
    driver.get(f"{server}/admin/rules/commission.tiered/")
    driver.find_element(By.ID, "edit-rule").click()
    rates = wait.until(lambda d: d.find_elements(By.NAME, "t_rate"))
    assert [r.get_attribute("value") for r in rates] == ["3", "4", "5", "6"]  # percentages
    # a plain commission holds nothing: the flag's hold is not offered
    assert not driver.find_element(By.ID, "hold-group").is_displayed()
    rates[-1].clear()
    rates[-1].send_keys("7 %")
    driver.find_element(By.ID, "save-rule").click()
    wait.until(ec.presence_of_element_located((By.ID, "request-publish"))).click()

    # the scenarios expect 6%: each failing example shows its new figure, ticked
    wait.until(lambda d: "Not sent for approval" in body(d))
    figures = [e.text for e in driver.find_elements(By.CLASS_NAME, "js-figure")]
    assert "8400.00 payable" in figures
    assert all(box.is_selected() for box in driver.find_elements(By.CLASS_NAME, "js-accept"))
    driver.find_element(By.ID, "accept-and-request").click()
    wait.until(lambda d: "Sent for approval" in body(d))
    log_out(driver)

    log_in(driver, server, HR2)
    driver.get(f"{server}/admin/rules/")
    driver.find_element(By.LINK_TEXT, "commission.tiered v2").click()
    summary = wait.until(ec.presence_of_element_located((By.ID, "impact-summary")))
    assert "2 of 4 employees change" in summary.text
    # N1 and S2 reach 120%: 1% more of 123456.50 and of 61000
    assert driver.find_element(By.ID, "impact-total").text == "+CN¥1,844.57"
    assert "8400.00" in driver.find_element(By.ID, "diff-scenarios").text
    driver.find_element(By.ID, "approve").click()
    wait.until(lambda d: "Published version 2" in body(d))

    # the next run pays 7%
    with db.session_scope(org.url, actor=HR2) as s:
        run_id = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run.id
    driver.get(f"{server}/admin/runs/{run_id}/statement/N1")
    text = body(driver)
    assert "Tiered commission" in text and "8,641.96" in text
    assert refused_by_the_policy(driver) == []


def test_the_back_office_works_under_its_content_security_policy(
        server: str, browser: Any, org: support.Org) -> None:
    """Flask-Admin's delete, filter and bulk-action controls and the charts all work, and the
    browser refuses nothing on the way."""
    driver = browser
    wait = WebDriverWait(driver, 10)
    with db.session_scope(org.url, actor=support.ROLE_EMAILS["comp_analyst"]) as s:
        run_id = start_run(s, "2026-01", actor=support.ROLE_EMAILS["comp_analyst"]).run.id
    log_in(driver, server, support.ROLE_EMAILS["hr_admin"])

    driver.get(f"{server}/admin/team/")
    rows = len(driver.find_elements(By.CSS_SELECTOR, "table.model-list tbody tr"))
    driver.find_element(By.CSS_SELECTOR, "form.icon button[title='Delete Record']").click()
    confirm = wait.until(ec.alert_is_present())
    assert confirm.text == "Are you sure you want to delete this record?"
    confirm.dismiss()
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.model-list tbody tr")) == rows

    driver.find_element(By.CSS_SELECTOR, "input.action-checkbox").click()
    driver.find_element(By.LINK_TEXT, "With selected").click()
    driver.find_element(By.XPATH, "//a[contains(@class, 'dropdown-item') and "
                                  "normalize-space()='Delete']").click()
    confirm = wait.until(ec.alert_is_present())
    assert "delete" in confirm.text.lower()
    confirm.dismiss()
    assert driver.current_url.endswith("/admin/team/")

    driver.find_element(By.LINK_TEXT, "Add Filter").click()
    driver.find_element(By.CSS_SELECTOR, "a.filter").click()
    assert driver.find_elements(By.CSS_SELECTOR, "#filter_form .filter-op, .filters .filter-op")
    assert driver.current_url.endswith("/admin/team/")

    # a date is typed, key by key, into the browser's own date input (Flask-Admin's picker
    # read the first digit as the year 2 and garbled the rest)
    with org.session() as s:
        someone = s.scalars(select(Employee).order_by(Employee.id)).first()
        code = someone.code
    driver.get(f"{server}/admin/employee/edit/?id={someone.id}")
    hired = driver.find_element(By.NAME, "hire_date")
    assert hired.get_attribute("type") == "date"
    hired.send_keys("02282023")  # the en-US order of the headless browser: month, day, year
    assert hired.get_attribute("value") == "2023-02-28"
    driver.find_element(By.CSS_SELECTOR, "form.admin-form input[type=submit]").click()
    wait.until(ec.url_contains("/admin/employee/"))
    with org.session() as s:
        assert str(s.scalar(select(Employee.hire_date).where(Employee.code == code))) \
            == "2023-02-28"

    # a refused form at the bottom of a long page is shown, its first refused field given
    # the cursor (admin.js), and the page's language switch still opens a page
    log_out(driver)
    log_in(driver, server, support.ROLE_EMAILS["comp_analyst"])
    driver.get(f"{server}/admin/runs/{run_id}/")
    form = driver.find_element(By.ID, "adjust")
    form.find_element(By.NAME, "amount").send_keys("abc")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").submit()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#adjust .is-invalid")))
    assert driver.execute_script("return window.scrollY") > 0
    assert "is-invalid" in driver.switch_to.active_element.get_attribute("class")
    driver.find_element(By.CSS_SELECTOR, "a[hreflang=zh]").click()
    wait.until(ec.url_contains(f"/admin/runs/{run_id}/?lang=zh"))
    assert "405" not in body(driver)
    driver.find_element(By.CSS_SELECTOR, "a[hreflang=en]").click()
    log_out(driver)
    log_in(driver, server, support.ROLE_EMAILS["hr_admin"])

    # Chart.js, vendored, draws on the run page and the company dashboard.
    for path in (f"/admin/runs/{run_id}/", "/admin/team-dashboard/company?period=2026-01"):
        driver.get(f"{server}{path}")
        wait.until(lambda d: d.execute_script("return typeof Chart !== 'undefined'"))
        drawn = driver.execute_script(
            "var c = document.querySelectorAll('canvas[data-chart]');"
            "return [c.length, Array.from(c).filter(function (x) {"
            "  return Chart.getChart(x); }).length];")
        assert drawn[0] > 0 and drawn[0] == drawn[1], (path, drawn)
    assert refused_by_the_policy(driver) == []


def test_a_rerun_keeps_the_decided_flag_and_the_close_asks_for_confirmation(
        server: str, browser: Any, org: support.Org) -> None:
    """A compliance officer confirms a flag with a note; a new run of the period keeps the
    case, its note and the forfeited pay; the approval shows the checklist first."""
    from engine.imports import import_results

    driver = browser
    wait = WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,))
    analyst = support.ROLE_EMAILS["comp_analyst"]
    with db.session_scope(org.url, actor=analyst) as s:  # N2 (S1, 5%) gave 9%: a flag
        import_results(s, "late.csv", data=b"period,employee_code,max_discount_pct\n"
                                            b"2026-01,N2,0.09\n")
        first = start_run(s, "2026-01", actor=analyst).run.id
    officer = support.ROLE_EMAILS["compliance_officer"]
    log_in(driver, server, officer)
    driver.get(f"{server}/admin/compliance/")
    driver.find_element(By.PARTIAL_LINK_TEXT, "Flag ").click()
    case_url = driver.current_url
    choose(driver.find_element(By.ID, "assignee"), officer)
    driver.find_element(By.CSS_SELECTOR, "#assign button[type=submit]").click()
    wait.until(lambda d: "assigned to" in body(d))
    driver.find_element(By.ID, "text").send_keys("customer e-mails on file")
    driver.find_element(By.CSS_SELECTOR, "#note button[type=submit]").click()
    wait.until(lambda d: "Note added" in body(d))
    driver.find_element(By.ID, "decision-confirmed").click()
    driver.find_element(By.ID, "reason").send_keys("discount beyond authority")
    driver.find_element(By.CSS_SELECTOR, "#decide button[type=submit]").click()
    wait.until(lambda d: "is confirmed" in body(d))

    with db.session_scope(org.url, actor=analyst) as s:
        second = start_run(s, "2026-01", actor=analyst).run.id
    driver.get(case_url)
    text = body(driver)
    assert f"Run {second}" in text and "customer e-mails on file" in text
    assert "confirmed" in text and f"Raised by run(s) {first}, {second} of this" in text
    driver.get(f"{server}/admin/compliance/?status=confirmed")
    assert "Flags (1)" in body(driver)
    log_out(driver)

    log_in(driver, server, support.ROLE_EMAILS["hr_admin"])
    driver.get(f"{server}/admin/runs/{second}/statement/N2")
    held, forfeited = (driver.find_element(By.CSS_SELECTOR, f'[data-total="{s}"]').text
                       for s in ("held", "forfeited"))
    assert held.endswith("0.00") and not forfeited.endswith("¥0.00")
    driver.get(f"{server}/admin/runs/{second}/")
    driver.find_element(By.ID, "approve").click()
    assert "Period-close checklist" in body(driver) and "Open flags: 0" in body(driver)
    driver.find_element(By.ID, "confirm").click()
    driver.find_element(By.ID, "confirm-approve").click()
    wait.until(lambda d: f"Run {second} is approved" in body(d))
    assert refused_by_the_policy(driver) == []


def test_a_rep_reads_their_statement_on_a_phone_and_questions_a_line(
        server: str, browser: Any, org: support.Org) -> None:
    """A salesperson logs in on a phone-sized window, reads their statement in plain words
    and its print view, asks about a line with an attachment; an analyst resolves it with
    an adjustment, and the salesperson reads the answer."""
    import tempfile

    from engine.users import create_user

    driver = browser
    wait = WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,))
    analyst = support.ROLE_EMAILS["comp_analyst"]
    with db.session_scope(org.url, actor=HR2) as s:
        create_user(s, "ned@example.com", None, "sales_rep").password_hash = support.FAST_HASH
        run_id = start_run(s, "2026-01", actor=analyst).run.id
        approve_run(s, run_id, HR2)
    driver.set_window_size(390, 844)
    log_in(driver, server, "ned@example.com")
    assert driver.current_url.endswith("/admin/me/")
    driver.find_element(By.LINK_TEXT, "Statement 2026-01").click()
    text = body(driver)
    assert "3% of Total revenue CN¥20,000 = CN¥600" in text
    assert "CN¥20,000 more Total revenue this month reaches the 4% tier." in text
    # one column on a phone: the totals and the lines fit the window's width
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 400
    words = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".laurel-line-words")]
    driver.find_element(By.ID, "print-view").click()
    assert [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".laurel-line-words")] \
        == words
    driver.back()
    line = driver.find_element(By.CSS_SELECTOR, '.laurel-line summary')
    line.click()
    form = driver.find_element(By.CSS_SELECTOR, ".laurel-line form.laurel-ask")
    form.find_element(By.NAME, "text").send_keys("I closed a deal on the 31st")
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as fh:
        fh.write(b"contract 2026-01-31")
    form.find_element(By.NAME, "file").send_keys(fh.name)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "Your question was sent" in body(d))
    inquiry_url = driver.current_url
    assert "waiting for an analyst" in body(driver) and Path(fh.name).name in body(driver)
    assert refused_by_the_policy(driver) == []
    # the what-if: another period shows its recorded figures, what was typed kept
    driver.get(f"{server}/admin/me/estimate")
    periods = Select(driver.find_element(By.ID, "period"))
    other = [o.get_attribute("value") for o in periods.options][-1]
    assert other != periods.first_selected_option.get_attribute("value")
    typed = driver.find_element(By.CSS_SELECTOR, "#estimate input[type=text]")
    name = typed.get_attribute("name")
    typed.send_keys("12345")
    periods.select_by_value(other)
    wait.until(ec.url_contains(f"period={other}"))
    assert Select(driver.find_element(By.ID, "period")).first_selected_option \
        .get_attribute("value") == other
    assert driver.find_element(By.NAME, name).get_attribute("value") == "12345"
    assert "Your estimated pay" not in body(driver)  # nothing estimated until asked
    driver.set_window_size(1400, 1000)  # the navigation folds away on a phone
    log_out(driver)

    log_in(driver, server, analyst)
    driver.get(f"{server}/admin/inquiries/")
    driver.find_element(By.PARTIAL_LINK_TEXT, "Inquiry ").click()
    driver.find_element(By.ID, "answer-text").send_keys("Booked in January: added.")
    driver.find_element(By.ID, "amount").send_keys("1,500")
    driver.find_element(By.CSS_SELECTOR, "#resolve button[type=submit]").click()
    wait.until(lambda d: "is resolved" in body(d))
    log_out(driver)

    log_in(driver, server, "ned@example.com")
    driver.get(inquiry_url)
    assert "Booked in January: added." in driver.find_element(By.ID, "answer").text
    driver.get(f"{server}/admin/me/statement/{run_id}")
    assert "A manual adjustment: inquiry" in body(driver) and "CN¥1,500.00" in body(driver)
    assert refused_by_the_policy(driver) == []
