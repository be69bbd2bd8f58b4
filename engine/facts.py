"""Enrichment: each employee's facts for a period, everything a condition reads.

Input metrics (rolled up for a quarter or year), derived metrics in exact decimals, team
figures, population figures, history (previous rating, overlapping PIPs), the level's
discount authority and the team's stage. The engine never aggregates across employees:
by the time a fact reaches it, every figure is a plain field.

Two steps, so that a run can be shared out in chunks of employees: ``population`` walks
the whole population once, batch by batch, and keeps only what spans employees (each
team's sums, each ranked metric's sorted values: a ``Context``, small enough to store);
``chunk_facts`` then builds the facts of one range of employee ids from that context.
No query binds one parameter per employee: employees are read by id range.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import assignments, periods, pips
from engine.conditions import population_fields
from engine.exact import exact, exact_sum, from_fraction, quotient, total
from engine.metrics import Catalog, load_catalog
from engine.models import LIVE_RUN, Employee, Level, Outcome, Period, Run, Team
from engine.rollup import Figures, period_employees, period_figures

BATCH = 20_000  # employees read at a time while the population is walked


@dataclass
class EmployeeFacts:
    employee_id: int
    code: str
    name: str
    values: dict[str, Any]


@dataclass
class Ranks:
    """A metric ranked across the population: its distinct exact values, sorted, and for
    each the count of values strictly higher."""

    keys: list[Decimal | Fraction]
    higher: list[int]
    n: int
    maximum: Any

    def higher_than(self, value: Any) -> int:
        return self.higher[bisect_left(self.keys, exact(value))]

    def to_json(self) -> dict[str, Any]:
        return {"keys": [_exact_text(k) for k in self.keys], "higher": self.higher,
                "n": self.n, "maximum": None if self.maximum is None
                else _exact_text(exact(self.maximum))}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ranks:
        maximum = data["maximum"]
        return cls([_exact_value(k) for k in data["keys"]], list(data["higher"]), data["n"],
                   None if maximum is None else _shown(_exact_value(maximum)))


@dataclass
class Context:
    """What spans the population of a period: each team's sums, each ranked metric."""

    teams: dict[int, dict[str, Any]] = field(default_factory=dict)
    ranks: dict[str, Ranks] = field(default_factory=dict)
    employees: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"teams": {str(t): {"revenue": _exact_text(exact(v["revenue"])),
                                   "quota": _exact_text(exact(v["quota"])),
                                   "members": _members_text(v["members"])}
                          for t, v in self.teams.items()},
                "ranks": {m: r.to_json() for m, r in self.ranks.items()},
                "employees": self.employees}

    @classmethod
    def from_json(cls, data: dict[str, Any], ranks: bool = True) -> Context:
        """The context as kept; ``ranks`` False: its teams alone (a run's last step), not
        the ranked metrics (a million values each at 1,000,000 employees)."""
        teams = {int(t): {"revenue": _shown(_exact_value(v["revenue"])),
                          "quota": _shown(_exact_value(v["quota"])),
                          "members": _members_value(v["members"])}
                 for t, v in data["teams"].items()}
        return cls(teams, {m: Ranks.from_json(r) for m, r in data["ranks"].items()}
                   if ranks else {}, data["employees"])


def _exact_text(value: Decimal | Fraction) -> str:
    return f"{value.numerator}/{value.denominator}" if isinstance(value, Fraction) \
        else format(value, "f")


def _members_text(count: int | Fraction) -> int | str:
    """A member count as JSON: a whole number, or a fraction where members belonged part
    of the period."""
    return count if isinstance(count, int) else _exact_text(count)


def _members_value(data: int | str) -> int | Fraction:
    return data if isinstance(data, int) else Fraction(data)


def _exact_value(text: str) -> Decimal | Fraction:
    if "/" in text:
        num, den = text.split("/")
        return Fraction(int(num), int(den))
    return Decimal(text)


def _shown(value: Decimal | Fraction) -> Decimal:
    """An exact value as the facts hold it: a Decimal, or a Quotient for a fraction."""
    return from_fraction(value) if isinstance(value, Fraction) else value


def previous_ratings(session: Session, period: Period, first: int | None = None,
                     last: int | None = None) -> dict[int, str]:
    """The rating of the previous period of the same kind, from its latest live run (for
    the employees of an id range when given)."""
    prev = periods.get(session, periods.previous(period.code))
    if prev is None:
        return {}
    run_id = session.scalar(
        select(Run.id).where(Run.period_id == prev.id, Run.status.in_(LIVE_RUN))
        .order_by(Run.id.desc()).limit(1))
    if run_id is None:
        return {}
    stmt = (select(Outcome.employee_id, Outcome.value)
            .where(Outcome.run_id == run_id, Outcome.kind == "rating").order_by(Outcome.id))
    if first is not None:
        stmt = stmt.where(Outcome.employee_id.between(first, last))
    out: dict[int, str] = {}
    for emp, value in session.execute(stmt):
        out.setdefault(emp, value)
    return out


def _batches(ids: list[int], size: int = BATCH) -> Iterator[tuple[int, int]]:
    """(first id, last id) of consecutive runs of ``size`` ids."""
    for start in range(0, len(ids), size):
        part = ids[start:start + size]
        yield part[0], part[-1]


def _figures_of(session: Session, period: Period, first: int, last: int,
                given: Figures | None, inputs: set[str] | None = None) -> Figures:
    """The figures of the employees whose ids lie in [first, last]; of the stored ones,
    only the ``inputs`` metrics when given."""
    if given is None:
        return period_figures(session, period.code, first=first, last=last, only=inputs)
    return {e: v for e, v in given.items() if first <= e <= last}


@dataclass
class Walk:
    """What a walk over part of the population found (walk), merged with the other parts'
    into the Context (merge): each team's exact revenue and quota sums and member shares,
    and for each ranked metric its values counted by exact value, with the last value
    found of the highest (the maximum shown, as one sorted list of them all would end)."""

    teams: dict[int, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, dict[Decimal | Fraction, int]] = field(default_factory=dict)
    highest: dict[str, tuple[Decimal | Fraction, Any]] = field(default_factory=dict)
    kept: bool = False  # the process that walked it keeps its employees' facts (kept_for)


# What a run's forked worker worked out of its employees' metrics while it walked part of
# the population (walk with ``keep``), kept for the chunks of that part it evaluates next
# (kept_for): each employee's results read and their metrics derived once a run, not once
# for the walk and again for the chunk. At most KEEP_MAX employees a process (about 130
# MB); the parts past it are not kept, and their chunks read the results again.
KEEP_MAX = 100_000
_KEPT: dict[str, Any] = {}


def _keeping(period_id: int, keep: frozenset[str]) -> dict[int, dict[str, Any]] | None:
    """Where to keep the facts of a part of a walk, or None where this process keeps as
    many as it may. What it kept of another period or rule set, or what a process it was
    forked from kept, is forgotten."""
    key = (os.getpid(), period_id, keep)
    if _KEPT.get("key") != key:
        _KEPT.clear()
        _KEPT.update(key=key, values={}, parts=[], used=set())
    values: dict[int, dict[str, Any]] = _KEPT["values"]
    return values if len(values) < KEEP_MAX else None


def kept_for(period_id: int, needed: Iterable[str], first: int, last: int
             ) -> dict[int, dict[str, Any]] | None:
    """The metrics this process kept of the employees whose ids lie in [first, last] (by
    employee id: each one's inputs and derived metrics, as chunk_facts derives them), when
    it walked a part of the population that holds them all for the same period and facts
    read, and no chunk of that range used them yet; else None (chunk_facts reads them)."""
    if _KEPT.get("key") != (os.getpid(), period_id, frozenset(needed)) \
            or (first, last) in _KEPT["used"]:
        return None
    if not any(a <= first and last <= z for a, z in _KEPT["parts"]):
        return None
    return _KEPT["values"]


def forget_kept(first: int, last: int) -> None:
    """Let go of the kept facts of [first, last], used by its chunk (kept_for)."""
    if not _KEPT:
        return
    _KEPT["used"].add((first, last))
    values = _KEPT["values"]
    # by the range's ids where it is narrow beside what is kept, else by what is kept
    width = last - first + 1
    ids = range(first, last + 1) if 4 * width <= len(values) else \
        [e for e in values if first <= e <= last]
    for emp_id in ids:
        values.pop(emp_id, None)


# (parts, walk one part: (session, first id, last id) -> Walk) -> the parts' walks in order
Walker = Callable[[list[tuple[int, int]], Callable[[Session, int, int], Walk]],
                  Iterable[Walk]]


def walk(session: Session, period: Period, ranked: Iterable[str], catalog: Catalog,
         first: int, last: int, figures: Figures | None = None,
         keep: Iterable[str] | None = None) -> Walk:
    """Walk the population's employees whose ids lie in [first, last] (population).
    ``keep``: the facts a run's chunks read (engine.runs.facts_read_by), whose metrics
    this process keeps for the chunks of the part it evaluates next, where it may
    (kept_for)."""
    ranked = list(ranked)
    teams: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"revenue": [], "quota": [], "members": 0})
    values: dict[str, list[Any]] = {m: [] for m in ranked}
    wanted = ["revenue_total", "quota", *ranked]
    keep = None if keep is None or figures is not None else frozenset(keep)
    store = None if keep is None else _keeping(period.id, keep)
    kept: dict[int, dict[str, Any]] = {}
    walked = wanted
    if store is not None and keep is not None:
        # the keys chunk_facts's derivation gives: the inputs it reads, and every metric
        # derived on the way to those it needs
        keys = catalog.inputs_for(keep) | {step[0] for step in catalog.steps_for(keep)}
        wanted = list(dict.fromkeys([*wanted, *keep]))
    batch = _figures_of(session, period, first, last, figures, catalog.inputs_for(wanted))
    if store is not None and len(store) + len(batch) > KEEP_MAX:
        store, wanted = None, walked  # past what a process keeps: its chunks read them
    emp = Employee.__table__.c  # the table, not the mapped class: no ORM work a row
    team_of = dict(session.execute(select(emp.id, emp.team_id)
                                   .where(emp.id.between(first, last))).all())
    present = assignments.presences(session, period, first, last)
    for emp_id, inputs in batch.items():
        if emp_id in present and present[emp_id].active_days == 0:
            continue  # not employed in the period
        derived = catalog.derive(inputs, only=wanted)
        if store is not None:
            kept[emp_id] = {k: v for k, v in derived.items() if k in keys}
        # a member counts for the share of the period they belonged to the team
        for team_id, share in assignments.team_shares(present.get(emp_id), team_of[emp_id]):
            team = teams[team_id]
            team["members"] += share
            if derived.get("revenue_total") is not None:
                team["revenue"].append(assignments.part(derived["revenue_total"], share))
            if derived.get("quota") is not None:
                team["quota"].append(assignments.part(derived["quota"], share))
        for metric in ranked:
            if derived.get(metric) is not None:
                values[metric].append(derived[metric])
    # each part's sums exact, as total() works them out, so that the total() of them all
    # is the total() of every member's (merge)
    found = Walk({team_id: {"revenue": exact_sum(t["revenue"]),
                            "quota": exact_sum(t["quota"]), "members": t["members"]}
                  for team_id, t in teams.items()})
    for metric, listed in values.items():
        counts: dict[Decimal | Fraction, int] = {}
        highest = None
        for value in listed:
            key = exact(value)
            counts[key] = counts.get(key, 0) + 1
            if highest is None or key >= highest[0]:
                highest = (key, value)
        found.counts[metric] = counts
        if highest is not None:
            found.highest[metric] = highest
    if store is not None:  # kept once the part is walked whole
        store.update(kept)
        _KEPT["parts"].append((first, last))
        found.kept = True
    return found


def merge(walks: Iterable[Walk], ranked: Iterable[str], employees: int) -> Context:
    """The Context of the walks over the population's parts, in the order of their ids:
    sums are exact, so a team's sum of its parts' sums is its sum."""
    teams: dict[int, dict[str, list[Any]]] = defaultdict(
        lambda: {"revenue": [], "quota": [], "members": []})
    counts: dict[str, dict[Decimal | Fraction, int]] = {m: {} for m in ranked}
    highest: dict[str, tuple[Decimal | Fraction, Any]] = {}
    for found in walks:
        for team_id, sums in found.teams.items():
            for name in ("revenue", "quota", "members"):
                teams[team_id][name].append(sums[name])
        for metric, part in found.counts.items():
            merged = counts[metric]
            for key, count in part.items():
                merged[key] = merged.get(key, 0) + count
        for metric, (key, value) in found.highest.items():
            if metric not in highest or key >= highest[metric][0]:
                highest[metric] = (key, value)
    context = Context(employees=employees)
    for team_id, t in teams.items():
        context.teams[team_id] = {"revenue": total(t["revenue"]), "quota": total(t["quota"]),
                                  "members": assignments.members(sum(t["members"]))}
    for metric, found_counts in counts.items():
        context.ranks[metric] = _ranks(found_counts, highest.get(metric))
    return context


def population(session: Session, period: Period, ranked: Iterable[str] = (),
               catalog: Catalog | None = None, ids: list[int] | None = None,
               figures: Figures | None = None,
               walker: Walker | None = None, parts: int = 1,
               chunks: list[list[int]] | None = None, keep: Iterable[str] | None = None
               ) -> Context:
    """Walk the period's population once, a batch of employees at a time: each team's
    revenue, quota and members, and the ranks of each metric in ``ranked``. ``figures``
    stand for the stored ones when given (an estimate's typed figures). ``walker`` walks
    the population's parts elsewhere (a run's ``parts`` worker processes): given the
    parts (first and last ids) and how to walk one in a session, it gives their walks in
    order; by default they are walked here, a batch at a time. ``chunks``: the sizes of
    the run's chunks, in order, part by part (engine.chunks.walk_chunks): a walker is
    given those parts, each of whole chunks; ``keep``: the facts the chunks read, which
    each walker keeps of its parts (walk)."""
    catalog = catalog or load_catalog(session)
    if ids is None:
        ids = assignments.in_period(session, period, sorted(figures) if figures is not None
                                    else period_employees(session, period.code))
    ranked = list(ranked)
    if walker is not None and figures is None:
        if chunks is None:
            count = part_count(len(ids), parts)
            ranges = list(_batches(ids, max(1, -(-len(ids) // count))))
        else:
            ranges, start = [], 0
            for part in chunks:
                end = start + sum(part)
                ranges.append((ids[start], ids[end - 1]))
                start = end
        # the period's dates, not the mapped row: a walker's process has sessions of its own
        days = SimpleNamespace(id=period.id, code=period.code, kind=period.kind,
                               start=period.start, end=period.end)
        walks: Iterable[Walk] = walker(
            ranges, lambda session, first, last: walk(session, days, ranked, catalog,
                                                      first, last, keep=keep))
    else:
        ranges = list(_batches(ids))
        walks = (walk(session, period, ranked, catalog, first, last, figures)
                 for first, last in ranges)
    return merge(walks, ranked, len(ids))


def part_count(employees: int, processes: int) -> int:
    """How many parts ``processes`` processes walk a population of ``employees`` in: as
    many as processes, or twice, three times... as many, each at most a batch (the fewer
    the parts, the fewer the queries; the processes end together)."""
    processes = max(1, processes)
    return processes * max(1, -(-employees // (processes * BATCH)))


def parts_of_chunks(chunks: list[int], count: int) -> list[list[int]]:
    """Chunks (their sizes, in order) grouped into about ``count`` parts of the population
    in order, each of whole chunks and at most BATCH employees unless a chunk is larger:
    a walker's part is then the facts of whole chunks (kept_for)."""
    target = sum(chunks) / count
    parts: list[list[int]] = []
    part: list[int] = []
    done = held = 0  # employees of the parts made, of the part being made
    for size in chunks:
        if part and (held + size > BATCH or done + held >= target * (len(parts) + 1)):
            parts.append(part)
            done, part, held = done + held, [], 0
        part.append(size)
        held += size
    if part:
        parts.append(part)
    return parts


def _ranks(counts: dict[Decimal | Fraction, int],
           highest: tuple[Decimal | Fraction, Any] | None) -> Ranks:
    """Ranks of a metric from its values counted by exact value (two attainments that
    agree to 34 digits still differ): each distinct value with the count strictly above
    it; the maximum as the highest value was found."""
    if not counts:
        return Ranks([], [], 0, None)
    keys = sorted(counts)
    n = sum(counts.values())
    higher = []
    upto = 0
    for key in keys:
        upto += counts[key]
        higher.append(n - upto)
    return Ranks(keys, higher, n, highest[1] if highest is not None else None)


def chunk_facts(session: Session, period: Period, context: Context, first: int, last: int,
                catalog: Catalog | None = None, given: Figures | None = None,
                needed: Iterable[str] | None = None,
                kept: dict[int, dict[str, Any]] | None = None) -> list[EmployeeFacts]:
    """The facts of the population's employees whose ids lie in [first, last], by code
    (from ``given`` figures instead of the stored ones when given). ``needed``: the
    derived metrics worked out (with those they read), when not all of them are read.
    ``kept``: their metrics as the walk of the population derived them (kept_for), not
    read and derived again."""
    catalog = catalog or load_catalog(session)
    needed = None if needed is None else set(needed)
    figures = kept if kept is not None else _figures_of(
        session, period, first, last, given,
        None if needed is None else catalog.inputs_for(needed))
    if not figures:
        return []
    # through the tables, not the mapped classes: the ORM's processing of each row cost
    # more than the query
    emp, team_, level_ = Employee.__table__.c, Team.__table__.c, Level.__table__.c
    rows = session.execute(
        select(emp.id, emp.code, emp.name, team_.id, team_.name, team_.stage, team_.region,
               level_.code, level_.discount_authority)
        .join_from(Employee.__table__, Team.__table__, team_.id == emp.team_id)
        .join(Level.__table__, level_.id == emp.level_id)
        .where(emp.id.between(first, last))
    ).all()
    ratings = previous_ratings(session, period, first, last)
    spans = pips.spans(session, exclude_period_id=period.id, first=first, last=last)
    present = assignments.presences(session, period, first, last)
    facts: list[EmployeeFacts] = []
    whole_period = assignments.day_facts(None, period)  # of everyone employed all period
    by_team: dict[int, dict[str, Any]] = {}
    # each ranked metric's population facts by count strictly higher: alike for everyone
    # with that count, worked out once
    ranked: dict[str, dict[int, dict[str, Any]]] = {metric: {} for metric in context.ranks}
    for emp_id, code, name, team_id, team, stage, region, level, authority in rows:
        if emp_id not in figures:
            continue
        presence = present.get(emp_id)
        if presence is not None:
            if presence.active_days == 0:
                continue  # not employed in the period
            # the team and level in force on the last day employed in the period
            team_id, team, stage, region, level, authority = _assigned(
                session, presence, (team_id, team, stage, region, level, authority))
        values = dict(figures[emp_id]) if kept is not None \
            else catalog.derive(figures[emp_id], only=needed)
        values.update(team=team, team_stage=stage, region=region, level=level,
                      level_authority=authority)
        values.update(whole_period if presence is None
                      else assignments.day_facts(presence, period))
        values["previous_rating"] = ratings.get(emp_id)
        values["pips_overlapping"] = Decimal(sum(
            1 for start, end in spans.get(emp_id, ())
            if start <= period.end and end >= period.start))
        team_values = by_team.get(team_id)
        if team_values is None:  # worked out once a team
            sums = context.teams[team_id]
            count = assignments.member_value(sums["members"])
            team_values = by_team[team_id] = {
                "team_revenue": sums["revenue"], "team_quota": sums["quota"],
                "team_members": count,
                "team_attainment": quotient(sums["revenue"], sums["quota"]),
                "per_capita_output": quotient(sums["revenue"], count)}
        values.update(team_values)
        for metric, ranks in context.ranks.items():
            value = values.get(metric)
            if value is None:
                continue
            higher = ranks.higher_than(value)
            found = ranked[metric].get(higher)
            if found is None:
                higher_f, n_f, share_f = population_fields(metric)
                found = ranked[metric][higher] = {
                    higher_f: Decimal(higher), n_f: Decimal(ranks.n),
                    share_f: quotient(Decimal(higher), Decimal(ranks.n)),
                    f"{metric}__max": ranks.maximum}
            values.update(found)
        facts.append(EmployeeFacts(emp_id, code, name, values))
    facts.sort(key=lambda f: f.code)
    return facts


def _assigned(session: Session, presence: assignments.Presence, now: tuple[Any, ...]
              ) -> tuple[Any, ...]:
    """(team id, team, stage, region, level, authority) in force by a presence, where it
    differs from the employee's own (``now``)."""
    team_id, team, stage, region, level, authority = now
    if presence.team_id is not None and presence.team_id != team_id:
        t = session.get(Team, presence.team_id)
        team_id, team, stage, region = t.id, t.name, t.stage, t.region
    if presence.level_id is not None:
        lv = session.get(Level, presence.level_id)
        if lv.code != level:
            level, authority = lv.code, lv.discount_authority
    return team_id, team, stage, region, level, authority


def build_facts(session: Session, period: Period, population_metrics: Iterable[str] = (),
                figures: Figures | None = None) -> list[EmployeeFacts]:
    """Return the facts of every employee in the period's population, by employee code
    (the whole population at once: try-it, previews, dashboards, a run in one process).
    ``figures`` ({employee id: {metric: value}}) stand for the stored ones when given."""
    catalog = load_catalog(session)
    ids = sorted(figures) if figures is not None else period_employees(session, period.code)
    ids = assignments.in_period(session, period, ids)
    if not ids:
        return []
    context = population(session, period, population_metrics, catalog, ids, figures)
    facts: list[EmployeeFacts] = []
    for first, last in _batches(ids):
        facts.extend(chunk_facts(session, period, context, first, last, catalog, figures))
    facts.sort(key=lambda f: f.code)
    return facts
