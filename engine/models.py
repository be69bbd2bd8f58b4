"""The domain model (SQLAlchemy 2, typed)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    query_expression,
    relationship,
)


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC where the database has it; exact decimal text in SQLite.

    SQLite keeps NUMERIC values as binary floats, which lose digits past the fifteenth
    (12345678901234.10 came back as ...234.099609). There the value is stored as text
    and read back as the same Decimal, at the column's scale as PostgreSQL gives it.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale)
        self.quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.impl.precision, self.impl.scale))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return format(Decimal(value).quantize(self.quantum), "f")

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return Decimal(str(value)).quantize(self.quantum)


class JSONText(TypeDecorator[Any]):
    """A JSON document kept as its text on PostgreSQL (SQLite's JSON is text already).

    PostgreSQL's json type parses each document it is given to check it: on a run's
    outcomes that was a third of COPY's time (the explanations), for documents Laurel
    itself writes as JSON (engine.runs.explanation_text, a run's COPY). Written and read
    back by json, as the JSON column did."""

    impl = Text
    cache_ok = True
    document = True  # no statistics of it (engine.bulk.analyze)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return None if value is None else json.dumps(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


# an outcome's explanation: text on PostgreSQL, SQLite's JSON (text) there
EXPLANATION = JSONText().with_variant(JSON(), "sqlite")

# Exact decimals everywhere: 20 digits before the point, 6 after, enough for money and
# ratios alike. Amounts are rounded to 0.01 before they are stored.
DECIMAL = ExactDecimal(26, 6)
# Amounts: 24 digits before the point, room for a rate of up to 100 on the largest money
# value an import accepts (engine.metrics.TYPE_RANGES).
MONEY = ExactDecimal(26, 2)

PERIOD_KINDS = ("month", "quarter", "year")
PERIOD_STATUSES = ("open", "locked")
TEAM_STAGES = ("startup", "growth", "mature")
METRIC_TYPES = ("money", "count", "score", "ratio")
ROLLUPS = ("sum", "mean", "max")
# The roles of the back office's staff; a sales_rep is an employee who reads their own pay
# on the portal (matched to the employee by email) and nothing else.
STAFF_ROLES = ("hr_admin", "comp_analyst", "compliance_officer", "sales_manager", "auditor")
ROLES = (*STAFF_ROLES, "sales_rep")
RUN_STATUSES = ("running", "calculated", "approved", "locked", "discarded", "failed",
                "cancelled")
# Runs that count: their outcomes are read as history and pay.
LIVE_RUN = ("calculated", "approved", "locked")
OUTCOME_KINDS = (
    "commission", "bonus", "award", "rating", "eligibility", "pip", "flag", "alert", "warning",
)
RULE_STATUSES = ("draft", "published", "retired", "discarded")


class Base(DeclarativeBase):
    type_annotation_map = {Decimal: DECIMAL, dict[str, Any]: JSON, list[Any]: JSON}


class Level(Base):
    __tablename__ = "level"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    discount_authority: Mapped[Decimal]

    def __str__(self) -> str:
        return self.code


class Team(Base):
    __tablename__ = "team"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    region: Mapped[str] = mapped_column(String(100), default="")
    # None until a file or HR sets it: a stage nobody set is undefined, not a default.
    stage: Mapped[str | None] = mapped_column(String(20))
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("employee.id", use_alter=True, name="fk_team_manager", ondelete="SET NULL")
    )

    manager: Mapped[Employee | None] = relationship(foreign_keys=[manager_id], post_update=True)
    members: Mapped[list[Employee]] = relationship(
        back_populates="team", foreign_keys="Employee.team_id"
    )

    def __str__(self) -> str:
        return self.name


class Employee(Base):
    __tablename__ = "employee"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), default="")
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True)
    level_id: Mapped[int] = mapped_column(ForeignKey("level.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    hire_date: Mapped[dt.date | None]
    # The last day the employee is paid for (engine.assignments); none while employed.
    leave_date: Mapped[dt.date | None]

    team: Mapped[Team] = relationship(back_populates="members", foreign_keys=[team_id])
    level: Mapped[Level] = relationship()
    manager: Mapped[Employee | None] = relationship(remote_side=[id])

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Assignment(Base):
    """An employee's team, level and manager from a date on (engine.assignments): in force
    until the employee's next assignment, or their leave date. The employee's own team,
    level and manager are those of the latest one."""

    __tablename__ = "employee_assignment"
    __table_args__ = (UniqueConstraint("employee_id", "effective_date",
                                       name="uq_employee_assignment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id", ondelete="CASCADE"),
                                             index=True)
    effective_date: Mapped[dt.date]
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"))
    level_id: Mapped[int] = mapped_column(ForeignKey("level.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class Period(Base):
    __tablename__ = "period"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(10), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    start: Mapped[dt.date]
    end: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(10), default="open")
    # Counts every change of the period's results, and of the results of the periods it
    # contains (a month's import changes its quarter's and its year's figures): a run
    # records the version it read, and is stale once the version moved on.
    results_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # The latest such change: how ("import" or "edit"), in which periods, when, by whom.
    results_changed_how: Mapped[str | None] = mapped_column(String(10))
    results_changed_in: Mapped[str | None] = mapped_column(String(200))
    results_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    results_changed_by: Mapped[str | None] = mapped_column(String(200))

    def __str__(self) -> str:
        return self.code


class Metric(Base):
    __tablename__ = "metric"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    label_en: Mapped[str] = mapped_column(String(200))
    label_zh: Mapped[str] = mapped_column(String(200), default="")
    type: Mapped[str] = mapped_column(String(10))
    rollup: Mapped[str] = mapped_column(String(10), default="sum")
    formula: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    # The accepted range of an input metric, within its type's (engine.metrics.TYPE_RANGES);
    # None: the type's own limit.
    min_value: Mapped[Decimal | None]
    max_value: Mapped[Decimal | None]

    @property
    def derived(self) -> bool:
        return bool(self.formula)

    def __str__(self) -> str:
        return self.key


class ResultRow(Base):
    """An employee's row of results for a period: its values, none when every cell of it
    was empty.

    A row puts the employee in the period's population with every metric it left out
    undefined (POLICIES.md: only an employee with no row at all is left out).
    """

    __tablename__ = "result_row"
    __table_args__ = (
        UniqueConstraint("employee_id", "period_id", name="uq_result_row"),
        Index("ix_result_row_period", "period_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"))
    # The row's defined values: {str(metric id): the value as decimal text}. An undefined
    # value has no key. One row an employee and period, not one a value: an import of
    # 18 metrics writes a row, not 18 (issue 13: results at 50,000 rows a second).
    values: Mapped[dict[str, Any]] = mapped_column("metric_values", JSON, default=dict)

    employee: Mapped[Employee] = relationship()
    period: Mapped[Period] = relationship()


def new_session_token() -> str:
    """Return a fresh User.session_token."""
    return secrets.token_urlsafe(24)


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str] = mapped_column(String(30))
    locale: Mapped[str | None] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(default=True)
    # A sales manager sees this team only.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    # Every login session carries it; a new value (logout, a new password) ends them all.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    # A sales_rep is this employee (matched by email when the user is made).
    employee_id: Mapped[int | None] = mapped_column(
        ForeignKey("employee.id", ondelete="SET NULL"), index=True)
    # An invitation: the SHA-256 of the link's token, until it sets the password or expires.
    invite_hash: Mapped[str | None] = mapped_column(String(64))
    invite_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    team: Mapped[Team | None] = relationship()
    employee: Mapped[Employee | None] = relationship()

    def __str__(self) -> str:
        return self.email


class ApiToken(Base):
    """A personal API token: it acts as its user, with the user's role (api/).

    Only the SHA-256 of the token is kept; the token itself is shown once, when it is made.
    """

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, to tell tokens apart in lists.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()

    def __str__(self) -> str:
        return f"token {self.name}"


class ApiIdempotency(Base):
    """The answer to a write sent with an Idempotency-Key: a retry gets it again."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_api_idempotency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    # The method, path and SHA-256 of the body: the same key with another request is refused.
    request: Mapped[str] = mapped_column(String(300))
    body_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int]
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# The records a run reads of the organisation (engine.facts.chunk_facts): an employee's
# team, level and dates, a team's name, stage and region, a level's code and discount
# authority, a metric's formula, type and roll-up. Their audit entries since a run began
# are on its period-close checklist (engine.lifecycle.org_changed_since), read through an
# index of them alone (the audit log holds an entry a flag a run clears as well).
ORGANISATION = ("employee", "level", "metric", "team")
ORGANISATION_ENTRY = text("entity IN ({})".format(", ".join(f"'{e}'" for e in ORGANISATION)))


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_organisation", "at", sqlite_where=ORGANISATION_ENTRY,
                            postgresql_where=ORGANISATION_ENTRY),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(30))
    entity: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str] = mapped_column(String(60), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    # How the change came in when not through the back office or the command line: the
    # API and the name of the personal token used ("api token crm-sync").
    via: Mapped[str | None] = mapped_column(String(200))
    # The summary's template and parameters (engine.messages), so that it reads in the
    # reader's language; None for a summary that is a name (a record's own) or older.
    message: Mapped[dict[str, Any] | None]
    # The bytes its snapshots take, where a query asked (snapshots_size): lists of entries
    # leave the large ones unread (an import of 1,000,000 employees keeps every one).
    snapshots: Mapped[int | None] = query_expression()

    @staticmethod
    def snapshots_size(dialect: str) -> Any:
        """The bytes of an entry's before and after as stored, without reading them as
        JSON (PostgreSQL: as stored, compressed; SQLite: the text's length)."""
        size = func.pg_column_size if dialect == "postgresql" else func.length
        return func.coalesce(size(AuditLog.before), 0) + func.coalesce(size(AuditLog.after), 0)


class Rule(Base):
    """One version of one policy rule; the definition is the validated rule document."""

    __tablename__ = "rule"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_rule_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(default=1)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))
    period_kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    effective_from: Mapped[dt.date | None]
    effective_to: Mapped[dt.date | None]
    definition: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Who wrote this version, who asked to publish it and who approved it (another
    # hr_admin): none of them for a version loaded from the library's files.
    created_by: Mapped[str | None] = mapped_column(String(200))
    publish_requested_by: Mapped[str | None] = mapped_column(String(200))
    publish_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The version's scenarios: one feature file's Gherkin (engine.scenarios). They are
    # versioned, compared and approved with the rule, and gate its publishing.
    scenarios: Mapped[str] = mapped_column(Text, default="")

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"


# At most one run of a period waits for approval or is approved; the database holds to it
# whatever the timing. (A reopened period keeps its locked run beside the new one.)
UNLOCKED_LIVE_RUN = text("status IN ('calculated', 'approved')")


class Run(Base):
    __tablename__ = "run"
    __table_args__ = (
        Index("uq_run_unlocked_period", "period_id", unique=True,
              sqlite_where=UNLOCKED_LIVE_RUN, postgresql_where=UNLOCKED_LIVE_RUN),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    ruleset_hash: Mapped[str] = mapped_column(String(64), default="")
    rules: Mapped[list[Any] | None]
    started_by: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    locked_by: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    employee_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # The period's results_version this run read; None for a failed run.
    results_version: Mapped[int | None]
    # Figures kept when the run is stored, so its pages need not rebuild facts: every team
    # of the period's population with its member count and team_attainment (text, or None
    # where undefined), the totals (statements.outcome_totals), the employees without
    # results (rollup.results_cover). As large as the run has teams: read only when used.
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    # What the run's pages read of its figures, of a size that does not grow with the run
    # (statements.summary_of); kept with them.
    summary: Mapped[dict[str, Any] | None]

    period: Mapped[Period] = relationship()
    outcomes: Mapped[list[Outcome]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Outcome.id"
    )

    def __str__(self) -> str:
        return f"run {self.id}"


class RunChunk(Base):
    """A slice of a run's employees (a range of employee ids), evaluated by one task.

    A worker claims a chunk with a lease it renews while it works (``beat``); a chunk whose
    lease runs out (its worker died) is given to another worker. A chunk's outcomes are
    written with its status ``done`` in one transaction, after deleting any the chunk wrote
    before: a chunk evaluated twice counts once.
    """

    __tablename__ = "run_chunk"
    __table_args__ = (UniqueConstraint("run_id", "index", name="uq_run_chunk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    index: Mapped[int]
    first_employee: Mapped[int]
    last_employee: Mapped[int]
    employees: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued running done
    worker: Mapped[str | None] = mapped_column(String(200))
    beat: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[float | None] = mapped_column(Float)
    # Its outcomes summed up as statements.outcome_groups sums a run's, written with them
    # (engine.chunks.chunk_sums): the last step adds the chunks' up rather than reading
    # every outcome again. None: written by a version that did not keep them.
    sums: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)


class RunContext(Base):
    """What a run computed once for all its chunks: team figures and population ranks."""

    __tablename__ = "run_context"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"),
                                        primary_key=True)
    data: Mapped[dict[str, Any]]


class Outcome(Base):
    __tablename__ = "outcome"
    # by run and employee (statements, the run's people), by run and kind (the checklist's
    # warnings, a run's flags, ratings, alerts, the API's list by kind): on PostgreSQL
    # without the commissions, most of a run's outcomes, whose entries doubled the index's
    # cost of a run's COPY; asked by kind they are read in id order (migration 0032)
    __table_args__ = (Index("ix_outcome_run_employee", "run_id", "employee_id"),
                      Index("ix_outcome_run_kind", "run_id", "kind", "employee_id",
                            postgresql_where=text("kind <> 'commission'")))

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    rule_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(String(3))
    value: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(10))
    explanation: Mapped[dict[str, Any]] = mapped_column(EXPLANATION)
    # the chunk of the run that wrote it (None: written by the run's last step)
    chunk: Mapped[int | None]

    run: Mapped[Run] = relationship(back_populates="outcomes")
    employee: Mapped[Employee] = relationship()


class Adjustment(Base):
    """A manual line an analyst adds to an unlocked run (amount and reason)."""

    __tablename__ = "adjustment"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # The run this adjustment was first added to, when a new run of the period carried it
    # over from a run it discarded.
    carried_from_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL"))

    run: Mapped[Run] = relationship(foreign_keys=[run_id])
    employee: Mapped[Employee] = relationship()

    def __str__(self) -> str:
        return f"adjustment {self.id} of run {self.run_id}"


class RunJob(Base):
    """A run asked for (back office, command line, API), evaluated as Celery work.

    The job's tasks (engine.tasks) plan the run, evaluate its chunks and finish it; the job
    shows their progress (employees done of total) and, when the run fails, stalls or is
    cancelled, why. Until its last step the run is ``running``: nobody reads its outcomes.
    """

    __tablename__ = "run_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_code: Mapped[str] = mapped_column(String(10))
    # queued running done failed cancelled
    status: Mapped[str] = mapped_column(String(10), default="queued")
    started_by: Mapped[str] = mapped_column(String(200))
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    # the process that does the job itself (laurel run with no broker), on ``host``
    pid: Mapped[int | None]
    host: Mapped[str | None] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # when PostgreSQL's statistics of the outcomes were refreshed with half the run's in
    # (engine.chunks: by the chunk that got there, so that the last step need not)
    analysed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# "cleared": the flag no longer fires in the latest run of its period ("no longer raised").
FLAG_STATUSES = ("open", "in_review", "confirmed", "dismissed", "cleared")
OPEN_FLAG_STATUSES = ("open", "in_review")
OPEN_FLAG_CASE = text("status IN ('open', 'in_review')")
PIP_STATUSES = ("proposed", "active", "discarded", "closed", "passed", "extended",
                "role_change", "exit")
CANDIDATE_STATUSES = ("eligible", "nominated", "accepted", "declined")


class FlagCase(Base):
    """The compliance review of one flag of one employee in one period.

    open -> in review -> confirmed/dismissed; "cleared" when a later run of the period no
    longer raises it. The case belongs to the employee, the rule and the period, not to a
    run: a new run of the period attaches to it (``run_id`` and ``outcome_id`` follow the
    latest run), keeping its notes, evidence and decision (engine.compliance.carry_cases).
    """

    __tablename__ = "flag_case"
    __table_args__ = (
        UniqueConstraint("employee_id", "period_id", "rule_key", name="uq_flag_case_period"),
        # a run's open flags, by id: the checklist's count and first ones, whatever the
        # number of flags decided
        Index("ix_flag_case_open", "run_id", "id", sqlite_where=OPEN_FLAG_CASE,
              postgresql_where=OPEN_FLAG_CASE),
        # the cases given to someone, by their email as typed in any case: a compliance
        # officer's own queue and home page; the cases given to nobody (most) not in it
        Index("ix_flag_case_assignee", func.lower(text("assignee")),
              sqlite_where=text("assignee IS NOT NULL"),
              postgresql_where=text("assignee IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The latest flag outcome that raised it (in a discarded run once it is cleared).
    outcome_id: Mapped[int] = mapped_column(
        ForeignKey("outcome.id", ondelete="CASCADE"), unique=True)
    # The latest run of the period that judged it: the one that raised it, or cleared it.
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"), index=True)
    # no index of its own: uq_flag_case_period starts with it (one index less to write for
    # each case a run opens)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    # indexed: the queue's filters list the rules and severities there are (one look-up
    # of the index each, compliance.distinct_values)
    rule_key: Mapped[str] = mapped_column(String(100), index=True)
    severity: Mapped[str | None] = mapped_column(String(200), index=True)
    holds: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    assignee: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # A hold released after its run was locked is paid in the employee's next run of the
    # same period kind; this is that run.
    released_in_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL"))
    decided_after_lock: Mapped[bool] = mapped_column(default=False)
    # The decision (confirmed or dismissed), kept when the case is cleared: a flag raised
    # again later returns to it without a second review.
    decision: Mapped[str | None] = mapped_column(String(10))
    # Cases of the same employee, rule and period merged into this one by the upgrade to
    # cases per period (their audit entries are this case's history).
    former_ids: Mapped[list[Any] | None]

    outcome: Mapped[Outcome] = relationship(foreign_keys=[outcome_id])
    run: Mapped[Run] = relationship(foreign_keys=[run_id])
    period: Mapped[Period] = relationship()
    released_in_run: Mapped[Run | None] = relationship(foreign_keys=[released_in_run_id])
    employee: Mapped[Employee] = relationship()
    notes: Mapped[list[FlagNote]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="FlagNote.id")

    def __str__(self) -> str:
        return f"flag {self.id} ({self.rule_key})"


class FlagCount(Base):
    """How many flag cases a run holds in each status, of each rule and severity ("cases"
    whose ``run_id`` is the run; ``severity`` "" where the case has none).

    Kept in the transaction that changes the cases (engine.compliance: recount when a run
    carries its period's cases, count_move on each assignment and decision), so that the
    queue (filtered by status, period, rule or severity) and the period-close checklist
    count a million flags without reading them.
    """

    __tablename__ = "flag_count"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"),
                                        primary_key=True)
    status: Mapped[str] = mapped_column(String(10), primary_key=True)
    rule_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    severity: Mapped[str] = mapped_column(String(200), primary_key=True)
    cases: Mapped[int] = mapped_column(default=0)


class FlagNote(Base):
    """A note or an evidence file on a flag case."""

    __tablename__ = "flag_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("flag_case.id", ondelete="CASCADE"),
                                         index=True)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(100))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())

    case: Mapped[FlagCase] = relationship(back_populates="notes")


class Pip(Base):
    """A performance improvement plan started by a run's pip outcome."""

    __tablename__ = "pip"

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    outcome_id: Mapped[int | None] = mapped_column(ForeignKey("outcome.id", ondelete="SET NULL"))
    start: Mapped[dt.date]
    end: Mapped[dt.date]
    target: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="proposed")
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    employee: Mapped[Employee] = relationship()
    run: Mapped[Run] = relationship()

    def __str__(self) -> str:
        return f"PIP {self.id} {self.start}..{self.end}"


class Candidate(Base):
    """A candidate for the Reserve Supervisor Program, from an approved run."""

    __tablename__ = "candidate"
    __table_args__ = (UniqueConstraint("outcome_id", name="uq_candidate_outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    outcome_id: Mapped[int] = mapped_column(ForeignKey("outcome.id", ondelete="CASCADE"))
    program: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="eligible")
    reason: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    employee: Mapped[Employee] = relationship()
    run: Mapped[Run] = relationship()


class PayCode(Base):
    """The payroll system's pay code of a rule's amounts (set by HR, one per rule key).

    ``rule_key`` is a rule's key, or ``adjustment`` for manual lines; a released hold
    carries the pay code of the rule whose amount it releases, a clawback the one of the
    rule whose payment it corrects.
    """

    __tablename__ = "pay_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_key: Mapped[str] = mapped_column(String(100), unique=True)
    code: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(200), default="")

    def __str__(self) -> str:
        return f"{self.rule_key} -> {self.code}"


# --- the people being paid: inquiries, review cycles, one-to-ones ----------------------------

INQUIRY_STATUSES = ("open", "in_review", "resolved", "rejected")
OPEN_INQUIRY_STATUSES = ("open", "in_review")


class Inquiry(Base):
    """A salesperson's question about one line of their statement.

    open -> in review (assigned to an analyst) -> resolved (with or without an adjustment)
    or rejected (with a reason); engine.inquiries moves it.
    """

    __tablename__ = "inquiry"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"), index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"), index=True)
    # The line asked about: an outcome, or an adjustment (neither: the statement as a whole).
    outcome_id: Mapped[int | None] = mapped_column(ForeignKey("outcome.id", ondelete="SET NULL"))
    adjustment_id: Mapped[int | None] = mapped_column(
        ForeignKey("adjustment.id", ondelete="SET NULL"))
    rule_key: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    asked_by: Mapped[str] = mapped_column(String(200))
    asked_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    assignee: Mapped[str | None] = mapped_column(String(200))
    # The answer the salesperson reads (a resolution, or the reason of a rejection).
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The adjustment a resolution added (to the period's run that was open then).
    resolution_adjustment_id: Mapped[int | None] = mapped_column(
        ForeignKey("adjustment.id", ondelete="SET NULL"))

    run: Mapped[Run] = relationship()
    period: Mapped[Period] = relationship()
    employee: Mapped[Employee] = relationship()
    outcome: Mapped[Outcome | None] = relationship()
    messages: Mapped[list[InquiryMessage]] = relationship(
        back_populates="inquiry", cascade="all, delete-orphan", order_by="InquiryMessage.id")

    def __str__(self) -> str:
        return f"inquiry {self.id}"


class InquiryMessage(Base):
    """A message of an inquiry (the question, a reply), with an attachment or not."""

    __tablename__ = "inquiry_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id", ondelete="CASCADE"),
                                            index=True)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(100))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())

    inquiry: Mapped[Inquiry] = relationship(back_populates="messages")


REVIEW_KINDS = ("self", "manager", "customer")


class ReviewCycle(Base):
    """The three-view review of one quarter: self, manager and customer scores.

    Opened by HR with deadlines; closing it writes the scores as the quarter's
    ``self_score``, ``manager_score`` and ``customer_score`` results (engine.reviews).
    """

    __tablename__ = "review_cycle"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open closed
    self_due: Mapped[dt.date]
    manager_due: Mapped[dt.date]
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    closed_by: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    period: Mapped[Period] = relationship()
    entries: Mapped[list[ReviewEntry]] = relationship(
        back_populates="cycle", cascade="all, delete-orphan", order_by="ReviewEntry.id")

    def __str__(self) -> str:
        return f"review cycle {self.id}"


class ReviewEntry(Base):
    """One score of one employee in a cycle: their own, their manager's or customers'."""

    __tablename__ = "review_entry"
    __table_args__ = (UniqueConstraint("cycle_id", "employee_id", "kind",
                                       name="uq_review_entry"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycle.id", ondelete="CASCADE"),
                                          index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    score: Mapped[Decimal]
    comments: Mapped[str] = mapped_column(Text, default="")
    entered_by: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    cycle: Mapped[ReviewCycle] = relationship(back_populates="entries")
    employee: Mapped[Employee] = relationship()


class Talk(Base):
    """A one-to-one feedback talk of a manager with a team member.

    Strengths, gaps, agreed actions with their dates (``actions``: [{"text", "due"}]) and
    a coach; the employee acknowledges it. During a PIP it is the PIP's monthly check-in.
    """

    __tablename__ = "talk"

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"), index=True)
    held_on: Mapped[dt.date]
    held_by: Mapped[str] = mapped_column(String(200))
    strengths: Mapped[str] = mapped_column(Text, default="")
    gaps: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[Any] | None]
    coach_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    pip_id: Mapped[int | None] = mapped_column(ForeignKey("pip.id", ondelete="SET NULL"),
                                               index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())

    employee: Mapped[Employee] = relationship(foreign_keys=[employee_id])
    coach: Mapped[Employee | None] = relationship(foreign_keys=[coach_id])
    pip: Mapped[Pip | None] = relationship()

    def __str__(self) -> str:
        return f"one-to-one {self.id}"
