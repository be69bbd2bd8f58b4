"""What a run says, for people: statements, run differences and the run overview."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Numeric, func, select
from sqlalchemy.orm import Session

from engine import wording
from engine.errors import NotFound
from engine.messages import msg
from engine.models import Adjustment, Employee, Metric, Outcome, Run, Team

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
MONEY_STATUSES = ("payable", "held", "forfeited")


@dataclass
class StatementLine:
    rule_key: str
    rule_name: str
    kind: str
    amount: Decimal | None
    currency: str | None
    value: str | None
    status: str | None
    words: list[str]
    explanation: dict[str, Any]
    adjustment_id: int | None = None
    # A held line whose flags were all dismissed after the lock: where it is paid
    # (compliance.release_of).
    release: dict[str, Any] | None = None
    # The line in the payee's words (engine.plain), where a caller asked for them.
    plain: list[str] = field(default_factory=list)
    outcome_id: int | None = None


@dataclass
class Statement:
    run: Run
    employee: Employee
    lines: list[StatementLine] = field(default_factory=list)
    totals: dict[str, Decimal] = field(default_factory=dict)
    currency: str = "CNY"


def reader(session: Session, lang: str = "en") -> wording.Reader:
    """How facts read for a reader: the catalog's label in the reader's language (the
    English one where a metric has no Chinese label), the short name of the other facts,
    and each fact's type (a ratio reads as a percentage)."""
    import os

    from engine.conditions import CONTEXT_FACTS

    names = dict(wording.CONTEXT_ZH if lang == "zh" else wording.CONTEXT_EN)
    types = {name: ftype for name, ftype, _ in CONTEXT_FACTS}
    for key, en, zh, mtype in session.execute(select(Metric.key, Metric.label_en,
                                                     Metric.label_zh, Metric.type)):
        names[key] = (zh if lang == "zh" and zh else en) or key
        types[key] = mtype
    return wording.Reader(lang, names, types, os.environ.get("LAUREL_CURRENCY", "CNY"))


def labels(session: Session, lang: str = "en") -> Callable[[str], str]:
    """Name facts for a reader: the catalog's labels (engine.statements.reader)."""
    return reader(session, lang).label


def explain_in_words(outcome_kind: str, explanation: dict[str, Any], lang: str = "en",
                     label: Callable[[str], str] | None = None,
                     types: dict[str, str] | None = None) -> list[str]:
    """The explanation as sentences: what held, what matched, the arithmetic."""
    return wording.explain(outcome_kind, explanation or {}, lang, label or (lambda k: k),
                           types)


def totals_of(lines: list[StatementLine]) -> dict[str, Decimal]:
    out = {s: ZERO for s in MONEY_STATUSES}
    for line in lines:
        if line.amount is not None and line.status in out:
            out[line.status] += line.amount
    return out


def statement(session: Session, run: Run, employee_code: str, lang: str = "en") -> Statement:
    """Every line of one employee in one run, with totals payable, held and forfeited.

    The lines' explanations are put in words in ``lang`` (en or zh).
    """
    from engine import plain

    r = reader(session, lang)
    employee = session.scalar(select(Employee).where(Employee.code == employee_code))
    if employee is None:
        raise NotFound(msg("employee %(employee_code)s does not exist",
                           employee_code=employee_code))
    st = Statement(run, employee)
    outcomes = list(session.scalars(select(Outcome).where(
        Outcome.run_id == run.id, Outcome.employee_id == employee.id).order_by(Outcome.id)))
    names = plain.rule_names(session, {o.rule_key for o in outcomes} | {"adjustment"}, lang,
                             run.rules)
    for o in outcomes:
        exp = o.explanation or {}
        name = names[o.rule_key]
        st.lines.append(StatementLine(
            o.rule_key, (exp.get("rule") or name) if name == o.rule_key else name, o.kind,
            o.amount, o.currency, wording.moved_value(o.rule_key, exp, o.value, lang), o.status,
            explain_in_words(o.kind, exp, lang, r.label, dict(r.types)), exp,
            outcome_id=o.id))
    for adj in session.scalars(select(Adjustment).where(Adjustment.run_id == run.id,
                                                        Adjustment.employee_id == employee.id)
                               .order_by(Adjustment.id)):
        st.lines.append(StatementLine(
            "adjustment", names["adjustment"], "adjustment",
            adj.amount, adj.currency, None,
            "payable", [f"{adj.reason} ({'由' if lang == 'zh' else 'added by'} "
                        f"{adj.created_by}{' 添加' if lang == 'zh' else ''})"],
            {"reason": adj.reason, "by": adj.created_by,
             "carried_from": adj.carried_from_run_id}, adjustment_id=adj.id))
    if any(line.status == "held" for line in st.lines):
        _released_after_lock(session, run, employee.id, st.lines)
    st.totals = totals_of(st.lines)
    currencies = {line.currency for line in st.lines if line.currency}
    if currencies:
        st.currency = sorted(currencies)[0]
    return st


def _released_after_lock(session: Session, run: Run, employee_id: int,
                         lines: list[StatementLine]) -> None:
    from engine.compliance import release_of
    from engine.models import FlagCase

    # the period's: a reopened period's locked run tells the story of the cases that the
    # new run carried
    cases = {c.rule_key: c for c in session.scalars(select(FlagCase).where(
        FlagCase.period_id == run.period_id, FlagCase.employee_id == employee_id))}
    for line in lines:
        holding = line.explanation.get("held_by") or []
        if line.status != "held" or not holding or any(k not in cases for k in holding):
            continue
        stories = [release_of(session, cases[k]) for k in holding]
        if all(stories):
            paid = [s for s in stories if s["run_id"]]
            line.release = paid[0] if len(paid) == len(stories) else dict(
                stories[0], run_id=None, period=None)


# --- difference between two runs ------------------------------------------------------------


def _employee_lines(session: Session, run: Run
                    ) -> Iterator[tuple[str, dict[tuple[str, str], list[dict[str, Any]]]]]:
    """The run's lines (outcomes, then adjustments), employee by employee in code order,
    grouped by employee and rule; streamed (runs.STREAM_BATCH rows read at a time)."""
    from engine import bulk, runs

    code = bulk.in_code_order(session, Employee.code)
    outcomes = session.execute(
        select(Employee.code, Employee.name, Outcome.rule_key, Outcome.kind, Outcome.amount,
               Outcome.value, Outcome.status)
        .join(Employee, Employee.id == Outcome.employee_id).where(Outcome.run_id == run.id)
        .order_by(code, Outcome.id).execution_options(yield_per=runs.STREAM_BATCH))
    adjustments = session.execute(
        select(Employee.code, Employee.name, Adjustment.amount, Adjustment.reason)
        .join(Employee, Employee.id == Adjustment.employee_id)
        .where(Adjustment.run_id == run.id).order_by(code, Adjustment.id)
        .execution_options(yield_per=runs.STREAM_BATCH))
    paid = ((emp, 0, {"employee_code": emp, "employee_name": name, "rule_key": key,
                      "kind": kind, "amount": amount, "value": value, "status": status})
            for emp, name, key, kind, amount, value, status in outcomes)
    adjusted = ((emp, 1, {"employee_code": emp, "employee_name": name,
                          "rule_key": "adjustment", "kind": "adjustment", "amount": amount,
                          "value": reason, "status": "payable"})
                for emp, name, amount, reason in adjustments)
    merged = heapq.merge(paid, adjusted, key=lambda item: item[:2])
    for emp, items in itertools.groupby(merged, key=lambda item: item[0]):
        out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for _emp, _order, line in items:
            key, kind, value = line["rule_key"], line["kind"], line["value"]
            out[(emp, key if kind != "warning" else f"{key} (warning: {value})")].append(line)
        yield emp, out


def _lines(session: Session, run: Run) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every line of the run (outcomes and adjustments), grouped by employee and rule."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _emp, lines in _employee_lines(session, run):
        out.update(lines)
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["amount"], a["value"], a["status"]) == (b["amount"], b["value"], b["status"])


def _pair(before: list[dict[str, Any]], after: list[dict[str, Any]]
          ) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """Pair the lines of one employee and rule in two runs; identical pairs are left out.

    Several lines of one rule (released holds of two periods, two adjustments) pair first
    with an identical line, then with a line of the same value, then in their order; what
    is left was added or removed. Every line is in exactly one pair or left out as equal.
    """
    a, b = list(before), list(after)
    for line in list(a):
        match = next((x for x in b if _same(line, x)), None)
        if match is not None:
            a.remove(line)
            b.remove(match)
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    for line in list(a):
        match = next((x for x in b if x["value"] == line["value"]), None)
        if match is not None:
            a.remove(line)
            b.remove(match)
            pairs.append((line, match))
    pairs += list(zip(a, b, strict=False))
    n = min(len(a), len(b))
    pairs += [(x, None) for x in a[n:]] + [(None, x) for x in b[n:]]
    return pairs


def _money(line: dict[str, Any] | None, status: str | None = None) -> Decimal:
    if line is None or line["amount"] is None or (status and line["status"] != status):
        return ZERO
    return line["amount"]


def diff_runs(session: Session, old: Run, new: Run) -> list[dict[str, Any]]:
    """Employee by employee and rule by rule: added, removed and changed lines.

    Any two runs compare, of one period or of two. Every line is paired (diff_totals of
    the rows equals the difference of the runs' totals); ``delta`` is the change of the
    amount, ``deltas`` its change by status (payable, held, forfeited).
    """
    return list(iter_diff_runs(session, old, new))


def iter_diff_runs(session: Session, old: Run, new: Run) -> Iterator[dict[str, Any]]:
    """diff_runs row by row, employee by employee: memory holds one employee's lines of
    each run, whatever the runs' size."""
    sides = heapq.merge(((emp, 0, lines) for emp, lines in _employee_lines(session, old)),
                        ((emp, 1, lines) for emp, lines in _employee_lines(session, new)),
                        key=lambda item: item[:2])
    for _emp, items in itertools.groupby(sides, key=lambda item: item[0]):
        a: dict[tuple[str, str], list[dict[str, Any]]] = {}
        b: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _e, side, lines in items:
            (b if side else a).update(lines)
        for k in sorted(set(a) | set(b)):
            for before, after in _pair(a.get(k, []), b.get(k, [])):
                change = ("added" if before is None else "removed" if after is None
                          else "changed")
                row = after or before
                yield {"employee_code": k[0], "employee_name": row["employee_name"],
                       "rule_key": row["rule_key"], "kind": row["kind"], "change": change,
                       "before": before, "after": after,
                       "delta": _money(after) - _money(before),
                       "deltas": {s: _money(after, s) - _money(before, s)
                                  for s in MONEY_STATUSES}}


def run_totals(session: Session, run: Run) -> dict[str, Decimal]:
    """The run's amounts by status, adjustments as payable, and their sum ("total")."""
    out = {s: ZERO for s in MONEY_STATUSES}
    for lines in _lines(session, run).values():
        for line in lines:
            if line["amount"] is not None and line["status"] in out:
                out[line["status"]] += line["amount"]
    out["total"] = sum((out[s] for s in MONEY_STATUSES), ZERO)
    return out


def diff_totals(rows: list[dict[str, Any]]) -> dict[str, Decimal]:
    """The change of a diff's amounts by status and in all ("total")."""
    out = {s: sum((r["deltas"][s] for r in rows), ZERO) for s in MONEY_STATUSES}
    out["total"] = sum((r["delta"] for r in rows), ZERO)
    return out


DIFF_COLUMNS = ["employee_code", "employee_name", "rule_key", "kind", "change",
                "before_amount", "before_value", "before_status", "after_amount",
                "after_value", "after_status", "delta"]


def iter_diff_table(rows: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    """The diff as rows of DIFF_COLUMNS (amounts as Decimal, missing values as None), row
    by row."""
    for r in rows:
        line = [r["employee_code"], r["employee_name"], r["rule_key"], r["kind"], r["change"]]
        for side in (r["before"], r["after"]):
            line += [side["amount"] if side else None, side["value"] if side else None,
                     side["status"] if side else None]
        yield line + [r["delta"]]


# --- overview ---------------------------------------------------------------------------------


TEAMS_SHOWN = 25  # past twice this many teams, the overview shows the highest and lowest


def outcome_totals(session: Session, run: Run, grouped: OutcomeGroups | None = None
                   ) -> dict[str, Any]:
    """The run's figures read from its outcomes and adjustments, as stored with the run
    (Run.figures["totals"], amounts as text): totals by kind, rule, team and status,
    counts by kind, employees with held amounts, the payout distribution. ``grouped``:
    the outcomes summed up already (outcome_groups, as they stand in this transaction).

    Worked out when a run is stored (runs.settle) and again when an adjustment is added;
    a hold decision moves its amounts between statuses (compliance.apply_holds). Pages
    read them (overview) instead of every outcome.
    """
    groups, teams, per_employee, employees, held = grouped or outcome_groups(session, run.id)
    adjustments = session.execute(
        select(Adjustment.amount, Adjustment.employee_id, Team.name)
        .join(Employee, Employee.id == Adjustment.employee_id)
        .join(Team, Team.id == Employee.team_id)
        .where(Adjustment.run_id == run.id)).all()
    by_kind: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_rule: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_team: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_status = {s: ZERO for s in MONEY_STATUSES}
    kinds: Counter[str] = Counter()
    for (kind, key, status), (count, amount) in groups.items():
        kinds[kind] += count
        if amount is not None:
            by_kind[kind] += amount
            by_rule[key] += amount
            by_status[status] = by_status.get(status, ZERO) + amount
    by_team.update(teams)
    for amount, emp, team in adjustments:
        kinds["adjustment"] += 1  # a line of the run (the overview's table by kind)
        by_kind["adjustment"] += amount
        by_rule["adjustment"] += amount
        by_team[team] += amount
        by_status["payable"] += amount
        per_employee[emp] = per_employee.get(emp, ZERO) + amount

    def text(sums: dict[str, Decimal]) -> dict[str, str]:
        return {k: f"{v:.2f}" for k, v in sorted(sums.items())}

    return {"counts": dict(sorted(kinds.items())), "by_kind": text(by_kind),
            "by_rule": text(by_rule), "by_team": text(by_team),
            "by_status": {s: f"{by_status[s]:.2f}" for s in by_status},
            "holds": held, "employees": employees,
            "distribution": [{"from": f"{b['from']:.2f}", "to": f"{b['to']:.2f}",
                              "count": b["count"]}
                             for b in distribution(list(per_employee.values()))]}


# {(kind, rule, status): (outcomes, amount or None)}; {team: amount} of the teams whose
# members' outcomes have amounts
Groups = dict[tuple[str, str, str | None], tuple[int, Decimal | None]]
OutcomeGroups = tuple[Groups, dict[str, Decimal], dict[int, Decimal], int, int]


def outcome_groups(session: Session, run_id: int) -> OutcomeGroups:
    """The run's outcomes summed up: {(kind, rule, status): (outcomes, amount or None)},
    each team's amount, each employee's amount, the employees with outcomes, those with
    held amounts. Summed by kind, rule and status apart from by team: grouped by all four
    a run of 2,000 teams gave 15,000 groups, which every reader added up again.

    PostgreSQL sums in the database (its NUMERIC sums are exact); SQLite keeps amounts
    as text (engine.models.ExactDecimal), summed here."""
    where = Outcome.run_id == run_id
    if session.get_bind().dialect.name == "postgresql":
        # through the connection, not the ORM (whose handling of each row took as long
        # as the query), the sums as the database gives them (Decimals already); a
        # run's groups held in memory, not spilled to disk (100,000 employees: the
        # employees' sums 410 to 240 ms)
        conn = session.connection()
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        money = Numeric(26, 2)
        groups: Groups = {
            (kind, key, status): (count, amount)
            for kind, key, status, count, amount in conn.execute(
                select(Outcome.kind, Outcome.rule_key, Outcome.status, func.count(),
                       func.sum(Outcome.amount, type_=money))
                .where(where).group_by(Outcome.kind, Outcome.rule_key, Outcome.status)
            ).all()}  # fetched at once: a fetch a row cost more than the row
        # each employee's amount (None: none of their outcomes has one) and whether any
        # is held, in one pass over the outcomes; the teams' amounts from them, by the
        # team's id, named afterwards (grouping by the team's name took twice as long)
        per_employee: dict[int, Decimal] = {}
        by_team_id: dict[int, Decimal] = {}
        employees = held = 0
        for emp, team_id, amount, holding in conn.execute(
                select(Outcome.employee_id, Employee.team_id,
                       func.sum(Outcome.amount, type_=money),
                       func.bool_or((Outcome.status == "held") & Outcome.amount.is_not(None)))
                .join(Employee, Employee.id == Outcome.employee_id)
                .where(where).group_by(Outcome.employee_id, Employee.team_id)).all():
            employees += 1
            held += bool(holding)
            if amount is not None:
                per_employee[emp] = amount
                _plus(by_team_id, team_id, amount)
        names = dict(conn.execute(select(Team.id, Team.name)).all()) if by_team_id else {}
        teams: dict[str, Decimal] = {}
        for team_id, amount in by_team_id.items():
            _plus(teams, names[team_id], amount)
        return groups, teams, per_employee, employees, held
    team_of = (select(Outcome.kind, Outcome.rule_key, Outcome.status, Team.name)
               .join(Employee, Employee.id == Outcome.employee_id)
               .join(Team, Team.id == Employee.team_id).where(where))
    return _summed(session.execute(team_of.add_columns(Outcome.amount, Outcome.employee_id)))


def _plus(sums: dict[Any, Decimal], key: Any, amount: Decimal) -> None:
    """Add an amount to ``sums[key]``; the amount itself where there is none yet (not
    added to a zero: its digits and exponent are the column's)."""
    sums[key] = sums[key] + amount if key in sums else amount


def _summed(rows: Iterable[tuple[str, str, str | None, str, Decimal | None, int]]
            ) -> OutcomeGroups:
    """Outcomes given as (kind, rule, status, team, amount, employee) summed up here, as
    outcome_groups sums them: each amount as the column keeps it (PostgreSQL's
    NUMERIC(26, 2) rounds half away from 0)."""
    groups: dict[tuple[str, str, str | None], list[Any]] = {}
    teams: dict[str, Decimal] = {}
    per: dict[int, Decimal] = {}
    everyone: set[int] = set()
    holding: set[int] = set()
    for kind, key, status, team, amount, emp in rows:
        everyone.add(emp)
        group = groups.setdefault((kind, key, status), [0, None])
        group[0] += 1
        if amount is not None:
            amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
            group[1] = amount if group[1] is None else group[1] + amount
            _plus(teams, team, amount)
            _plus(per, emp, amount)
            if status == "held":
                holding.add(emp)
    return ({k: (v[0], v[1]) for k, v in groups.items()}, teams, per, len(everyone),
            len(holding))


SUMS_FORMAT = 2  # of a chunk's sums (sums_of): 2, by kind, rule and status apart from teams


def sums_of(outcomes: Iterable[dict[str, Any]], team_of: dict[int, str]) -> dict[str, Any]:
    """Outcomes (a chunk's, as written) summed up as outcome_groups sums a run's, in JSON
    (amounts as text): their groups, each team's and each employee's amount, how many
    employees have outcomes and how many a held amount. ``team_of``: each employee's
    team's name."""
    groups, teams, per, employees, held = _summed(
        (o["kind"], o["rule_key"], o["status"], team_of[o["employee_id"]], o["amount"],
         o["employee_id"]) for o in outcomes)
    return {"format": SUMS_FORMAT,
            "groups": [[*key, count, None if amount is None else str(amount)]
                       for key, (count, amount) in groups.items()],
            "teams": {team: str(amount) for team, amount in teams.items()},
            "amounts": {str(emp): str(amount) for emp, amount in per.items()},
            "employees": employees, "held": held}


def merged_sums(parts: Iterable[dict[str, Any]]) -> OutcomeGroups | None:
    """The sums of a run's chunks (sums_of each, employees apart) added up: what
    outcome_groups gives of the run's outcomes; None where a chunk's are of another
    format (kept by an earlier version)."""
    groups: Groups = {}
    teams: dict[str, Decimal] = {}
    per_employee: dict[int, Decimal] = {}
    employees = held = 0
    for part in parts:
        if part.get("format") != SUMS_FORMAT:
            return None
        for kind, key, status, count, text in part["groups"]:
            was_count, was = groups.get((kind, key, status), (0, None))
            amount = None if text is None else Decimal(text)
            groups[(kind, key, status)] = (
                was_count + count, amount if was is None else
                was if amount is None else was + amount)
        for team, text in part["teams"].items():
            _plus(teams, team, Decimal(text))
        per_employee.update((int(emp), Decimal(text)) for emp, text in part["amounts"].items())
        employees += part["employees"]
        held += part["held"]
    return groups, teams, per_employee, employees, held


def store_totals(session: Session, run: Run, grouped: OutcomeGroups | None = None) -> None:
    """Work out the run's figures again and keep them with it (outcome_totals)."""
    run.figures = dict(run.figures or {}, totals=outcome_totals(session, run, grouped))
    keep_summary(run)
    session.flush()


def move_status(run: Run, moves: list[tuple[Decimal, str, str]], holds: int) -> None:
    """Keep the stored figures in step with hold decisions: each (amount, old status,
    new status) moves its amount; ``holds``: how many more employees have held amounts
    (fewer when negative)."""
    totals = (run.figures or {}).get("totals")
    if totals is None or not (moves or holds):
        return
    by_status = {s: Decimal(v) for s, v in totals["by_status"].items()}
    for amount, old, new in moves:
        by_status[old] = by_status.get(old, ZERO) - amount
        by_status[new] = by_status.get(new, ZERO) + amount
    totals = dict(totals, by_status={s: f"{v:.2f}" for s, v in by_status.items()},
                  holds=totals["holds"] + holds)
    run.figures = dict(run.figures, totals=totals)
    keep_summary(run)


def keep_summary(run: Run) -> None:
    """Keep beside the run's figures what its pages read of them (summary_of)."""
    run.summary = summary_of(run.figures or {})


def summary_of(figures: dict[str, Any]) -> dict[str, Any] | None:
    """What the pages of a run read of its figures (Run.summary), of a size that does not
    grow with the run: the totals without the amounts of every team, the teams the
    overview shows (all of them up to 2 x TEAMS_SHOWN, else the highest and lowest by
    attainment, and the distribution of all teams' attainments), the employees without
    results (rollup.results_cover). Amounts as text. None for figures kept before runs
    kept their totals and teams: their page works them out (overview)."""
    totals = figures.get("totals")
    if not totals or "by_team" not in totals or "teams" not in figures:
        return None
    teams = {team: {"members": f["members"],
                    "attainment": None if f.get("attainment") is None
                    else Decimal(f["attainment"])}
             for team, f in figures.get("teams", {}).items()}
    by_team = {t: Decimal(v) for t, v in totals["by_team"].items()}
    for team in teams:
        by_team.setdefault(team, ZERO)  # every team of the population, zero or not
    shown = sorted(by_team)
    summarised = len(shown) > 2 * TEAMS_SHOWN
    if summarised:
        ranked = sorted((t for t in shown if teams.get(t, {}).get("attainment") is not None),
                        key=lambda t: (-teams[t]["attainment"], t))
        shown = ranked[:TEAMS_SHOWN] + ranked[-TEAMS_SHOWN:]
    out = {"totals": {k: v for k, v in totals.items() if k != "by_team"},
           "teams": {"count": len(by_team), "summarised": summarised,
                     "shown": [[t, f"{by_team[t]:.2f}", teams[t]["members"] if t in teams
                                else None, figures["teams"][t].get("attainment")
                                if t in teams else None] for t in shown],
                     "attainment_distribution": [
                         {"from": str(b["from"]), "to": str(b["to"]), "count": b["count"]}
                         for b in distribution([f["attainment"] for f in teams.values()
                                                if f["attainment"] is not None])]
                     if summarised else []}}
    if "results" in figures:
        out["results"] = figures["results"]
    return out


def overview(session: Session, run: Run) -> dict[str, Any]:
    """Totals by kind, rule and team; counts; the payout distribution; attainment by team.

    Read from what the run kept of its figures for its pages (Run.summary, summary_of),
    never from its outcomes' explanations or the period's facts; a run stored before runs
    kept them has them worked out here. Past 2 x TEAMS_SHOWN teams, the teams shown are
    the TEAMS_SHOWN highest and lowest by attainment ("teams" says how many there are),
    and "attainment_distribution" sums up all of them.
    """
    summary = run.summary
    if summary is None:
        figures = dict(run.figures or {})
        if "by_team" not in figures.get("totals", {}):
            figures["totals"] = outcome_totals(session, run)
        figures["teams"] = {t: {"members": f["members"], "attainment": None
                                if f["attainment"] is None else str(f["attainment"])}
                            for t, f in team_figures(session, run).items()}
        summary = summary_of(figures) or {}
    totals, teams = summary["totals"], summary["teams"]
    by_status = {s: Decimal(v) for s, v in totals["by_status"].items()}
    counts = totals["counts"]
    if "adjustment" in totals["by_kind"] and "adjustment" not in counts:
        # figures kept before adjustments were counted among the kinds: counted here
        counts = {**counts, "adjustment": session.scalar(
            select(func.count()).select_from(Adjustment).where(Adjustment.run_id == run.id))}
    shown = teams["shown"]
    by_team = {t: Decimal(amount) for t, amount, _m, _a in shown}
    return {
        "employees": run.employee_count or totals["employees"],
        # the rules' outcomes; the adjustments, the analysts' lines, are counted by kind
        "outcomes": sum(n for k, n in counts.items() if k != "adjustment"), "counts": counts,
        "flags": counts.get("flag", 0), "holds": totals["holds"],
        "by_kind": {k: Decimal(v) for k, v in totals["by_kind"].items()},
        "by_rule": {k: Decimal(v) for k, v in totals["by_rule"].items()},
        "by_team": by_team,
        "by_status": by_status,
        "total": sum(by_status.values(), ZERO),
        "distribution": [{"from": Decimal(b["from"]), "to": Decimal(b["to"]),
                          "count": b["count"]} for b in totals["distribution"]],
        # None where it is undefined (the team's quota is 0 or undefined)
        "team_attainment": {t: None if a is None else Decimal(a)
                            for t, _amount, m, a in shown if m is not None},
        "team_members": {t: m for t, _amount, m, _a in shown if m is not None},
        "teams": teams["count"], "summarised": teams["summarised"],
        "attainment_distribution": [{"from": Decimal(b["from"]), "to": Decimal(b["to"]),
                                     "count": b["count"]}
                                    for b in teams["attainment_distribution"]],
    }


def team_figures(session: Session, run: Run) -> dict[str, dict[str, Any]]:
    """Every team of the run's population: {"members": n, "attainment": Decimal | None}.

    Read from what the run kept when it was stored (Run.figures); a run stored before
    runs kept them has them rebuilt from the period's facts.
    """
    stored = (run.figures or {}).get("teams")
    if stored is None:
        from engine.facts import build_facts
        from engine.runs import team_figures as figures_of

        stored = figures_of(build_facts(session, run.period))["teams"]
    return {team: {"members": f["members"],
                   "attainment": None if f.get("attainment") is None
                   else Decimal(f["attainment"])}
            for team, f in stored.items()}


def distribution(amounts: list[Decimal], buckets: int = 8) -> list[dict[str, Any]]:
    """A histogram of per-employee payout totals: [{from, to, count}]."""
    if not amounts:
        return []
    lo, hi = min(amounts), max(amounts)
    if lo == hi:
        return [{"from": lo, "to": hi, "count": len(amounts)}]
    width = (hi - lo) / buckets
    counts = [0] * buckets
    for a in amounts:
        i = min(int((a - lo) / width), buckets - 1)
        counts[i] += 1
    return [{"from": (lo + width * i).quantize(Decimal("0.01")),
             "to": (lo + width * (i + 1)).quantize(Decimal("0.01")), "count": c}
            for i, c in enumerate(counts)]


def diff_file(session: Session, old: Run, new: Run, fmt: str,
              labels: list[str] | None = None) -> bytes:
    """The diff of two runs as CSV (DIFF_COLUMNS as its header) or XLSX (the labels as
    headers, the column keys in a hidden first row, amounts as exact numbers)."""
    return b"".join(diff_file_stream(session, old, new, fmt, labels))


def diff_file_stream(session: Session, old: Run, new: Run, fmt: str,
                     labels: list[str] | None = None) -> Iterator[bytes]:
    """diff_file piece by piece: a CSV file is written as the runs are read, employee by
    employee. An unknown format is refused before the first piece."""
    from engine.errors import LaurelError

    if fmt not in ("csv", "xlsx"):
        raise LaurelError(msg("unknown format %(fmt)s: use csv or xlsx", fmt=repr(fmt)))
    return _diff_pieces(session, old, new, fmt, labels)


def _diff_pieces(session: Session, old: Run, new: Run, fmt: str,
                 labels: list[str] | None) -> Iterator[bytes]:
    from engine import runs
    from engine.cells import csv_text, xlsx_book, xlsx_pieces, xlsx_table

    if fmt == "csv":
        rows = iter_diff_table(iter_diff_runs(session, old, new))
        for piece in csv_text(itertools.chain([DIFF_COLUMNS], (
                ["" if v is None else f"{v:.2f}" if isinstance(v, Decimal) else v
                 for v in row] for row in rows)), runs.STREAM_BATCH):
            yield piece.encode("utf-8")
        return
    book = xlsx_book()
    sheet = book.create_sheet(f"Run {old.id} - run {new.id}")
    currency = session.scalar(select(Outcome.currency).where(
        Outcome.run_id.in_((old.id, new.id)), Outcome.currency.is_not(None)).limit(1))
    xlsx_table(sheet, DIFF_COLUMNS, labels or DIFF_COLUMNS,
               lambda: iter_diff_table(iter_diff_runs(session, old, new)),
               money={5: currency or "CNY", 8: currency or "CNY", 11: currency or "CNY"})
    yield from xlsx_pieces(book)


