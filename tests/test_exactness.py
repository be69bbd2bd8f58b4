"""Exact decisions at every magnitude, rules on the rating, warnings, empty rows, the
unreachable-row check, rule-file errors and zero amounts, each through the `laurel` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from admin.cli import main
from engine.errors import RuleError
from engine.metrics import CATALOG
from engine.rulebook import validate

TYPES = {k: t for k, _, _, t, _, _ in CATALOG}
INPUTS = {k: (t, None, None, r) for k, _, _, t, r, f in CATALOG if f is None}

EMPLOYEES = """code,name,email,team,region,level,manager_code,hire_date,team_stage
A1,Ann,,North,N,S1,,2020-01-01,startup
B1,Bo,,North,N,S1,,2020-01-01,startup
C1,Cy,,South,S,S2,,2020-01-01,growth
"""


class Cli:
    """The `laurel` command against the test database, from files in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> str:
        result = self.runner.invoke(main, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result.output

    def file(self, name: str, text: str) -> str:
        path = self.folder / name
        path.write_text(text)
        return str(path)

    def rules(self, *docs: str) -> None:
        folder = self.folder / f"rules{len(list(self.folder.glob('rules*')))}"
        folder.mkdir()
        for i, text in enumerate(docs):
            (folder / f"r{i}.yaml").write_text(text)
        self("rules", "load", str(folder), "--publish")

    def outcomes(self, period: str) -> list[dict]:
        out = self("run", period)
        run_id = out.splitlines()[0]
        assert run_id.isdigit(), out
        return json.loads(self("outcomes", run_id, "--format", "json"))

    def load(self, results: str, employees: str = EMPLOYEES) -> None:
        self("import", "employees", self.file("employees.csv", employees))
        self("import", "results", self.file("results.csv", results))


@pytest.fixture()
def cli(db_url: str, tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def fired(outcomes: list[dict], code: str, prefix: str = "x.") -> set[str]:
    return {o["rule_key"] for o in outcomes
            if o["employee_code"] == code and o["rule_key"].startswith(prefix)
            and o["kind"] != "warning"}


def alert(key: str, when: str, period_kind: str = "month") -> str:
    return (f"key: {key}\nkind: alert\nperiod_kind: {period_kind}\nwhen: {when}\n"
            f"action: {{type: value, value: hit}}\n")


# --- 1. exact at every magnitude --------------------------------------------------------------


def test_distinct_decimals_that_meet_in_one_float_decide_exactly(cli: Cli) -> None:
    cli.rules(alert("x.eq", "[{fact: revenue_new, op: '==', ref: quota}]"),
              alert("x.lt", "[{fact: revenue_new, op: '<', value: 1000000000000000.04}]"),
              alert("x.gt", "[{fact: revenue_new, op: '>', value: 1000000000000000.01}]"),
              alert("x.gt2", "[{fact: revenue_new, op: '>', value: 12345678901234.5599999}]"))
    cli.load("period,employee_code,revenue_new,quota\n"
             "2026-05,A1,1000000000000000.05,1000000000000000.05\n"
             "2026-05,B1,1000000000000000.02,1000000000000000.03\n"
             "2026-05,C1,12345678901234.56,12345678901234.56\n")
    out = cli.outcomes("2026-05")
    assert fired(out, "A1") == {"x.eq", "x.gt", "x.gt2"}
    assert fired(out, "B1") == {"x.lt", "x.gt", "x.gt2"}
    assert fired(out, "C1") == {"x.eq", "x.lt", "x.gt2"}


def test_a_ref_across_a_power_of_ten_does_not_fail_the_run(cli: Cli) -> None:
    cli.rules(alert("x.below", "[{fact: revenue_new, op: '<', ref: quota}]"),
              alert("x.same", "[{fact: revenue_new, op: '==', ref: quota}]"))
    cli.load("period,employee_code,revenue_new,quota\n"
             "2026-05,A1,9999999999999999,10000000000000000\n"
             "2026-05,B1,10000000000000000,10000000000000000.000000\n")
    out = cli.outcomes("2026-05")
    assert fired(out, "A1") == {"x.below"}
    assert fired(out, "B1") == {"x.same"}


def test_a_tier_boundary_beside_a_threshold_picks_the_exact_tier(cli: Cli) -> None:
    cli.rules("""key: x.tiers
kind: commission
period_kind: month
action:
  type: tiers
  metric: revenue_new
  base: revenue_new
  tiers:
    - {from: null, to: 99999999999999.990001, rate: 0.01}
    - {from: 99999999999999.990001, to: null, rate: 0.02}
""", alert("x.thr", "[{fact: revenue_new, op: '>=', value: 99999999999999.99}]"))
    cli.load("period,employee_code,revenue_new\n"
             "2026-05,A1,99999999999999.99\n"
             "2026-05,B1,99999999999999.990001\n"
             "2026-05,C1,99999999999999.990002\n")
    out = {(o["employee_code"], o["rule_key"]): o for o in cli.outcomes("2026-05")}
    assert out["A1", "x.tiers"]["explanation"]["calc"]["tier"] == 1
    assert out["A1", "x.tiers"]["amount"] == "1000000000000.00"  # 1% of ...99.99, half up
    assert out["B1", "x.tiers"]["explanation"]["calc"]["tier"] == 2
    assert out["C1", "x.tiers"]["explanation"]["calc"]["tier"] == 2
    assert all(("x.thr" in {k for c, k in out if c == code}) for code in ("A1", "B1", "C1"))


def test_a_decision_row_and_top_share_decide_exactly(cli: Cli) -> None:
    cli.rules("""key: x.table
kind: rating
period_kind: quarter
action:
  type: table
  rows:
    - {when: [{fact: attainment, op: '>=', value: 0.666667}], value: HIGH}
    - {when: [{fact: attainment, op: '>=', value: 0.666666666666}], value: MID}
    - {when: [{fact: attainment, op: defined}], value: LOW}
""", alert("x.top", "[{fact: satisfaction, op: top_share, value: 0.34}]", "quarter"))
    # attainment 2/3 exactly (a quarter of months), satisfaction means 1/3 apart
    cli.load("period,employee_code,quota,revenue_new,satisfaction\n"
             "2026-01,A1,3,2,90\n2026-02,A1,3,2,90\n2026-03,A1,3,2,91\n"
             "2026-01,B1,3,2.000001,90\n2026-02,B1,3,2,90\n2026-03,B1,3,2,90\n"
             "2026-01,C1,1,0,90\n")
    out = {(o["employee_code"], o["rule_key"]): o for o in cli.outcomes("2026-Q1")}
    assert out["A1", "x.table"]["value"] == "MID"  # 2/3 < 0.666667, >= 0.666666666666
    assert out["A1", "x.table"]["explanation"]["facts"]["attainment"] == "0." + "6" * 33 + "7"
    assert out["B1", "x.table"]["value"] == "MID"  # (6.000001/9) < 0.666667
    assert out["C1", "x.table"]["value"] == "LOW"
    # A1 (90.333...) is alone above B1 and C1 (90): 0 of 3 higher for A1, 1 of 3 for the rest
    assert ("A1", "x.top") in out and ("B1", "x.top") in out and ("C1", "x.top") in out


def test_rule_numbers_out_of_their_fact_range_are_refused(cli: Cli) -> None:
    path = cli.file("big.yaml", alert("x.big", "[{fact: quota, op: '>', value: 1e19}]"))
    out = cli("rules", "validate", path, ok=False)
    assert "field when[1].value" in out and "10^18" in out and "Traceback" not in out
    path = cli.file("share.yaml", alert("x.s", "[{fact: satisfaction, op: '>', value: 101}]"))
    assert "score is from -100 to 100" in cli("rules", "validate", path, ok=False)


# --- 2 and 3. rules that read the rating --------------------------------------------------------


# the library's own key: its new version replaces the reference rating in this test
RATING = """key: rating.quarterly
kind: rating
period_kind: quarter
action:
  type: table
  rows:
    - {when: [{fact: attainment, op: '>=', value: 1.10}], value: A}
    - {when: [{fact: attainment, op: defined}], value: B}
"""


def test_rules_on_the_rating_see_unrated_employees(cli: Cli) -> None:
    cli.rules(RATING,
              alert("x.not_a", "{not: {fact: rating, op: '==', value: A}}", "quarter"),
              alert("x.unrated", "[{fact: rating, op: undefined}]", "quarter"),
              """key: x.hold
kind: flag
period_kind: quarter
hold: true
when: {not: {fact: rating, op: '==', value: A}}
action: {type: value, value: high}
""", """key: x.bonus
kind: bonus
period_kind: quarter
action: {type: fixed, amount: 100}
""")
    cli.load("period,employee_code,quota,revenue_new,satisfaction\n"
             "2026-01,A1,100,120,80\n2026-01,B1,100,90,80\n2026-01,C1,,,80\n")
    out = cli.outcomes("2026-Q1")
    ratings = {o["employee_code"]: o["value"] for o in out if o["kind"] == "rating"}
    assert ratings == {"A1": "A", "B1": "B"}
    assert fired(out, "A1") == {"x.bonus"}
    assert fired(out, "B1") == {"x.not_a", "x.hold", "x.bonus"}
    assert fired(out, "C1") == {"x.not_a", "x.unrated", "x.hold", "x.bonus"}
    status = {(o["employee_code"], o["rule_key"]): o["status"] for o in out}
    assert status["A1", "x.bonus"] == "payable"
    assert status["C1", "x.bonus"] == "held" and status["B1", "x.bonus"] == "held"
    assert status["C1", "bonus.service_star"] == "held"  # the library's bonus is held too
    by = {(o["employee_code"], o["rule_key"]): o["explanation"] for o in out}
    exp = by["B1", "x.not_a"]
    assert exp["facts"] == {"rating": "B"}
    assert exp["conditions"] == ["not (rating == A)"]
    exp = by["C1", "x.unrated"]
    assert exp["facts"] == {"rating": None} and exp["conditions"] == ["rating undefined"]


def test_a_decision_row_shows_the_facts_of_the_rows_tried_before_it(cli: Cli) -> None:
    # an attainment of 150% rated C: rows A and B read the evaluation score as well, which
    # is undefined for A1 and below 60 for B1; the explanation shows why they did not match
    cli.load("period,employee_code,quota,revenue_new,self_score,manager_score,customer_score\n"
             "2026-Q1,A1,100,150,,,\n2026-Q1,B1,100,150,50,50,50\n")
    out = {o["employee_code"]: o for o in cli.outcomes("2026-Q1")
           if o["rule_key"] == "rating.quarterly"}
    assert out["A1"]["value"] == out["B1"]["value"] == "C"
    assert out["A1"]["explanation"]["facts"] == {"attainment": "1.5", "evaluation_score": None}
    assert out["B1"]["explanation"]["facts"] == {"attainment": "1.5", "evaluation_score": "50"}
    assert out["B1"]["explanation"]["conditions"] == ["attainment >= 0.70"]


# --- 4. warnings, whatever the condition's shape -------------------------------------------------


def test_a_warning_whenever_the_rule_would_apply_with_the_fact_defined(cli: Cli) -> None:
    cli.rules("""key: x.not
kind: commission
period_kind: month
when: {not: {fact: revenue_new, op: '<=', value: 0}}
action: {type: rate, rate: 0.01, base: revenue_new}
""", """key: x.any
kind: commission
period_kind: month
when: {any: [{fact: revenue_new, op: '>', value: 0}, {fact: level, op: '==', value: S1}]}
action: {type: rate, rate: 0.01, base: revenue_new}
""", """key: x.table
kind: rating
period_kind: month
action:
  type: table
  rows:
    - {when: [{fact: quota, op: '>=', value: 100}], value: A}
    - {when: [{fact: satisfaction, op: defined}], value: D}
""")
    cli.load("period,employee_code,quota,revenue_new,satisfaction\n"
             "2026-05,A1,100,,\n2026-05,B1,50,,\n2026-05,C1,50,,\n")
    out = cli.outcomes("2026-05")
    warns = {(o["employee_code"], o["rule_key"], o["value"]) for o in out
             if o["kind"] == "warning" and o["rule_key"].startswith("x.")}
    assert ("A1", "x.not", "revenue_new undefined") in warns
    assert ("A1", "x.any", "revenue_new undefined") in warns  # level S1
    assert ("C1", "x.any", "revenue_new undefined") not in warns  # level S2: no match
    # A1 is rated A: the table gave its value, no warning; B1 and C1 match no row
    assert ("A1", "x.table", "satisfaction undefined") not in warns
    assert ("B1", "x.table", "satisfaction undefined") in warns
    assert not fired(out, "A1", "x.not") and not fired(out, "A1", "x.any")


# --- 5. an all-empty results row ------------------------------------------------------------------


def test_an_all_empty_row_keeps_the_employee_in_the_population(cli: Cli) -> None:
    cli.rules(alert("x.members", "[{fact: team_members, op: '==', value: 2}]"),
              alert("x.qmembers", "[{fact: team_members, op: '==', value: 2}]", "quarter"),
              alert("x.ymembers", "[{fact: team_members, op: '==', value: 2}]", "year"))
    cli.load("period,employee_code,quota,revenue_new\n"
             "2026-05,A1,100,100\n2026-05,B1,,\n")
    out = cli.outcomes("2026-05")
    assert fired(out, "B1") == {"x.members"} and fired(out, "A1") == {"x.members"}
    assert ("B1", "commission.tiered", "attainment undefined") in {
        (o["employee_code"], o["rule_key"], o["value"]) for o in out if o["kind"] == "warning"}
    assert "C1" not in {o["employee_code"] for o in out}  # no row at all: not in it
    # a rule that ranks nothing shows no population figures
    tiered = next(o for o in out if o["employee_code"] == "A1"
                  and o["rule_key"] == "commission.tiered")
    assert not any("strictly higher" in k for k in tiered["explanation"]["facts"])
    assert fired(cli.outcomes("2026-Q2"), "B1") == {"x.qmembers"}
    assert fired(cli.outcomes("2026"), "B1") == {"x.ymembers"}


# --- 6. the unreachable-row check is exact ------------------------------------------------------


def table(*rows: object, kind: str = "rating") -> dict:
    return {"key": "t", "kind": kind, "period_kind": "quarter",
            "action": {"type": "table",
                       "rows": [{"when": w, "value": f"V{i}"} for i, w in enumerate(rows)]}}


def leaf(fact: str, op: str, value: object = None, ref: str | None = None) -> dict:
    out: dict = {"fact": fact, "op": op}
    if value is not None:
        out["value"] = value
    if ref:
        out["ref"] = ref
    return out


@pytest.mark.parametrize("rows", [
    (leaf("quota", "highest"), leaf("quota", "defined")),
    (leaf("quota", "highest"), leaf("quota", ">=", 5)),
    (leaf("quota", "top_share", "0.1"), leaf("quota", ">=", 5)),
    (leaf("collected_amount", ">=", ref="signed_amount"), leaf("collected_amount", ">", 5)),
    (leaf("collected_amount", ">=", ref="signed_amount"),
     leaf("signed_amount", ">=", ref="collected_amount")),
    ({"not": leaf("quota", "highest")}, leaf("quota", "top_share", "0.1")),
    (leaf("attainment", ">=", "0.5"), leaf("attainment", "<", "0.5")),
])
def test_rows_some_input_reaches_are_accepted(rows: tuple) -> None:
    validate(table(*rows), "t", TYPES, inputs=INPUTS)


@pytest.mark.parametrize(("rows", "row", "why"), [
    ((leaf("attainment", ">=", "0.5"), leaf("attainment", "==", "0.7")), 2, "row 1 first"),
    ((leaf("attainment", ">=", "0.5"),
      {"any": [leaf("attainment", ">=", "0.6"), leaf("attainment", ">=", "0.7")]}), 2,
     "row 1 first"),
    (([leaf("attainment", ">", "0.5"), leaf("attainment", "==", "0.3")],), 1, "contradict"),
    ((leaf("attainment", ">=", "0.7"), leaf("attainment", ">=", "0.70")), 2, "row 1 first"),
    ((leaf("quota", "defined"), leaf("quota", ">=", 5)), 2, "row 1 first"),
    (([leaf("visits", ">", 2), leaf("visits", "<", 3)],), 1, "contradict"),
    (([leaf("quota", "highest"), {"not": leaf("quota", "top_share", "0.1")}],), 1,
     "contradict"),
    ((leaf("attainment", "<=", "1"), leaf("attainment", ">=", "1"),
      leaf("attainment", "defined")), 3, "rows 1, 2 together"),
])
def test_rows_no_input_reaches_are_refused(rows: tuple, row: int, why: str) -> None:
    with pytest.raises(RuleError) as err:
        validate(table(*rows), "t", TYPES, inputs=INPUTS)
    assert err.value.row == row and why in str(err.value)


def test_a_count_above_a_fraction_is_reachable_and_the_gap_between_is_not() -> None:
    validate(table(leaf("leads", ">", "4.5"), leaf("leads", "<=", "4.5")), "t", TYPES,
             inputs=INPUTS)
    with pytest.raises(RuleError, match="contradict"):
        validate(table([leaf("leads", ">", "4.5"), leaf("leads", "<", "5")]), "t", TYPES,
                 inputs=INPUTS)


def test_a_quarter_sum_may_pass_the_range_of_one_row() -> None:
    rows = (leaf("revenue_new", "<=", "999999999999999999.999999"),
            leaf("revenue_new", "defined"))
    validate(table(*rows), "t", TYPES, inputs=INPUTS)  # a quarter of three months
    month = dict(table(*rows), period_kind="month")
    with pytest.raises(RuleError, match="row 1 first"):
        validate(month, "t", TYPES, inputs=INPUTS)


@pytest.mark.parametrize(("doc", "field", "why"), [
    ({"description": "x\ud800y"}, "description", "U+D800"),
    ({"action": {"type": "value", "value": "A\x00B"}}, "action.value", "U+0000"),
    ({"action": {"type": "value", "value": "z" * 201}}, "action.value", "at most 200"),
    ({"name": "n" * 20000}, "name", "at most 200"),
    ({"scope": {"region": [f"R{i}" for i in range(129)]}}, "scope.region", "at most 128"),
])
def test_text_the_databases_cannot_hold_is_refused(doc: dict, field: str, why: str) -> None:
    base = {"key": "x.t", "kind": "alert", "period_kind": "month",
            "action": {"type": "value", "value": "v"}}
    with pytest.raises(RuleError) as err:
        validate({**base, **doc}, "t", TYPES)
    assert err.value.field == field and why in str(err.value)


def test_the_reference_library_keeps_its_tables(cli: Cli) -> None:
    out = cli("rules", "validate", str(Path(__file__).parent.parent / "rules"))
    assert "Traceback" not in out


# --- 7. no traceback for a bad rule file --------------------------------------------------------


@pytest.mark.parametrize(("text", "field"), [
    ("effective_from: 2026-02-30\n", "field effective_from"),
    ("effective_from: '2026-02-30'\n", "field effective_from"),
    ("when: [{fact: quota, op: '>', value: .inf}]\n", "field when[1].value"),
    ("when: [{fact: quota, op: '>', value: .nan}]\n", "field when[1].value"),
    ("when: [{fact: quota, op: '>', value: " + "9" * 5000 + "}]\n", "field when[1].value"),
])
def test_a_bad_rule_file_gets_one_line(cli: Cli, text: str, field: str) -> None:
    path = cli.file("bad.yaml", alert("x.bad", "[]") .replace("when: []\n", "") + text)
    result = cli.runner.invoke(main, ["rules", "validate", path])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in result.output


@pytest.mark.parametrize(("text", "why"), [
    ("key: a\nkey: b\n", "the key 'key' is given twice"),
    ("a: &a [1,2,3,4,5,6,7,8,9]\n" + "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi",
                                                                  strict=True)),
     "more than 100,000 values"),
    ("key: x\nwhen: " + "{not: " * 3000 + "{}" + "}" * 3000 + "\n", "nested more than"),
])
def test_hostile_rule_files_are_refused_in_one_line(cli: Cli, text: str, why: str) -> None:
    path = cli.file("hostile.yaml", text)
    result = cli.runner.invoke(main, ["rules", "validate", path])
    assert result.exit_code == 1 and why in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_rule_file_not_in_utf8_is_refused(cli: Cli) -> None:
    path = cli.folder / "gbk.yaml"
    path.write_bytes(alert("x.gbk", "[]").replace("hit", "高").encode("gbk"))
    result = cli.runner.invoke(main, ["rules", "validate", str(path)])
    assert result.exit_code == 1 and "not UTF-8" in result.output


# --- 8. no -0.00 ---------------------------------------------------------------------------------


def test_a_zero_amount_is_never_negative(cli: Cli) -> None:
    cli.rules("""key: x.rate
kind: commission
period_kind: month
action: {type: rate, rate: 0.03, base: revenue_new}
""")
    cli.load("period,employee_code,revenue_new\n2026-05,A1,-0.1\n2026-05,B1,-1000\n")
    out = {(o["employee_code"], o["rule_key"]): o for o in cli.outcomes("2026-05")}
    assert out["A1", "x.rate"]["amount"] == "0.00"
    assert out["B1", "x.rate"]["amount"] == "-30.00"  # returns above sales: a deduction
    run_id = str(out["A1", "x.rate"]["run_id"])
    exported = cli("export", run_id, "--draft", "--totals")
    assert "-0.00" not in exported and "0.00" in exported


@pytest.mark.parametrize("formula", ["revenue_total * 1e400", "revenue_total * 1e-20",
                                     "(" * 240 + "quota" + ")" * 240, "quota * " + "9" * 600])
def test_a_formula_whose_numbers_break_runs_is_refused(formula: str) -> None:
    from engine.errors import FormulaError
    from engine.metrics import parse_formula

    with pytest.raises(FormulaError) as err:
        parse_formula("hostile", formula)
    assert str(err.value).startswith("metric hostile, field formula: ")


def test_a_quotient_sent_to_another_process_keeps_its_fraction() -> None:
    """A run's worker processes send their walks of the population (a ranked ratio's
    highest value, a team's sum) to the run through a pipe: a Quotient arrives with the
    exact fraction it stands for, not as its 34 digits alone."""
    import pickle
    from fractions import Fraction

    from engine.exact import Quotient, exact, from_fraction

    q = from_fraction(Fraction(2, 3))
    back = pickle.loads(pickle.dumps(q))  # (a deepcopy is the Quotient itself: no test)
    assert type(back) is Quotient and exact(back) == Fraction(2, 3)
    assert back.as_tuple() == q.as_tuple()


def test_the_total_of_parts_sums_is_the_total_of_them_all() -> None:
    """A run's worker processes walk the population in parts and the parts' team sums
    are added up (engine.facts.merge): the same number, written the same, as the sum of
    every member's share. Two thirds-of-a-period shares in one part add up to a plain
    decimal there, beside a member of six decimals in another: 150.5 either way, not
    150.500000."""
    from decimal import Decimal
    from fractions import Fraction

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from engine.assignments import part
    from engine.exact import Quotient, exact_sum, from_fraction, total

    shares = [part(Decimal("100"), Fraction(1, 3)), part(Decimal("200"), Fraction(1, 3)),
              Decimal("50.500000")]
    assert type(shares[0]) is Quotient
    whole = total(shares)
    split = total([exact_sum(shares[:2]), exact_sum(shares[2:])])
    assert (type(split), split.as_tuple()) == (type(whole), whole.as_tuple())
    assert str(whole) == "150.5"

    number = st.one_of(
        st.decimals(min_value=-10**9, max_value=10**9, places=6, allow_nan=False),
        st.decimals(min_value=-10**6, max_value=10**6, places=0, allow_nan=False),
        st.fractions(min_value=-10**6, max_value=10**6, max_denominator=97)
        .map(from_fraction))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(number, max_size=12), st.lists(st.integers(0, 12), max_size=4))
    def parts_add_up(values: list[Decimal], cuts: list[int]) -> None:
        bounds = [0, *sorted(c for c in cuts if c <= len(values)), len(values)]
        sums = [exact_sum(values[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        want, got = total(values), total(sums)
        assert (type(got), got.as_tuple()) == (type(want), want.as_tuple())

    parts_add_up()
