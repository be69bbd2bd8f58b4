"""The error tree: one root, and subclasses that carry what they are about."""

from __future__ import annotations

import datetime as dt

from engine.messages import Message, msg


def _where(source: str, reason: str, row: int | None = None, column: str | None = None,
           field: str | None = None) -> Message:
    """"file, row 3, column quota: reason": where, then why (each part a message)."""
    where: Message = msg("%(source)s", source=source)
    if row is not None:
        where = msg("%(where)s, row %(row)s", where=where, row=row)
    if column is not None:
        where = msg("%(where)s, column %(column)s", where=where, column=column)
    if field is not None:
        where = msg("%(where)s, field %(field)s", where=where, field=field)
    return msg("%(where)s: %(reason)s", where=where, reason=reason)


class LaurelError(Exception):
    """A user error: bad input, an unknown period, an invalid rule. Exit code 1."""


class ImportFileError(LaurelError):
    """A file that cannot be imported; names the file, row and column."""

    def __init__(self, file: str, reason: str, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column, self.reason = file, row, column, reason
        super().__init__(_where(file, reason, row=row, column=column))


class RuleError(LaurelError):
    """An invalid rule definition; names the file or rule, the row and the field."""

    def __init__(self, source: str, reason: str, field: str | None = None, row: int | None = None):
        self.source, self.reason, self.field, self.row = source, reason, field, row
        super().__init__(_where(source, reason, row=row, field=field))


class FormulaError(LaurelError):
    """A derived-metric formula that does not parse or names an unknown metric."""

    def __init__(self, metric: str, reason: str):
        self.metric, self.reason = metric, reason
        super().__init__(msg("metric %(metric)s, field formula: %(reason)s", metric=metric,
                             reason=reason))


class PeriodError(LaurelError):
    """A malformed period code, an unknown period, or a period that is locked."""


class RunError(LaurelError):
    """A run that cannot start or that failed; the run stores nothing but its failure."""


class PermissionDenied(LaurelError):
    """The acting user's role does not allow this action."""


class NotFound(LaurelError):
    """A run, user or employee that does not exist."""


class RunFailed(RunError):
    """A run that failed while evaluating; it is recorded as failed with this reason."""


class PasswordRefused(LaurelError):
    """A password that may not be set; ``reason`` is ``short`` or ``common``."""

    def __init__(self, email: str, reason: str, detail: str):
        self.email, self.reason = email, reason
        super().__init__(f"user {email}, field password: {detail}")


class RunInProgress(RunError):
    """A run of the period is already being calculated (a back-office job)."""

    def __init__(self, period: str, job_id: int, started_by: str):
        self.period, self.job_id, self.started_by = period, job_id, started_by
        super().__init__(f"a run of period {period} is already being calculated (job {job_id}, "
                         f"started by {started_by}); wait for it to finish")


# How a period's results changed (engine.periods.results_changed), as a stale run says it.
_CHANGES = {"import": msg("import"), "edit": msg("edit"), "change": msg("change")}


class RunStale(RunError):
    """A run whose period's results changed after it read them: it is not approved or locked.

    ``periods`` names the periods whose results changed (a month's change makes its
    quarter's and its year's runs stale), ``how`` is "import" or "edit".
    """

    def __init__(self, run_id: int, periods: str, how: str, at: dt.datetime | None,
                 by: str | None):
        self.run_id, self.periods, self.how, self.at, self.by = run_id, periods, how, at, by
        # a message: the back office says it in the reader's language beside a disabled
        # button (engine.lifecycle.approval_refusal)
        super().__init__(msg(
            "run %(id)s is stale: results of %(periods)s changed after this run read them "
            "(%(how)s at %(when)s by %(by)s); start a new run", id=run_id, periods=periods,
            how=_CHANGES.get(how, how),
            when=at.strftime("%Y-%m-%d %H:%M UTC") if at else msg("an unknown time"),
            by=by or msg("someone")))
