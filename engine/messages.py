"""Messages that the back office says in the reader's language, with no Flask here.

The engine writes its messages in English. A message made with ``msg`` is that English
text (a ``str``: the command line, logs and tests read it as before) which also carries
its template and parameters; the back office looks the template up in its catalog
(admin/translations: ``pybabel extract`` finds ``msg("...")`` calls) and fills in the
parameters in the reader's language (admin.i18n.say). A parameter may itself be a
message. An audit entry keeps its summary's template and parameters
(``AuditLog.message``), so the audit log reads in each reader's language.

Templates use gettext's named placeholders, ``%(name)s``; a literal percent sign in a
template with parameters is ``%%``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class Message(str):
    """English text that remembers its template and parameters."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: dict[str, Any] | None = None) -> Message:
        params = dict(params or {})
        self = super().__new__(cls, template % params if params else template)
        self.template, self.params = template, params
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # across processes (engine.isolate)
        return (Message, (self.template, self.params))

    def stored(self) -> dict[str, Any]:
        """The template and parameters as JSON (nested messages included)."""
        return {"t": self.template, "p": {k: stored(v) for k, v in self.params.items()}}


def msg(template: str, **params: Any) -> Message:
    """A message: its English text now, its translation where someone reads it."""
    return Message(template, params)


def stored(value: Any) -> Any:
    """A parameter as JSON: a message as its template and parameters, numbers as text."""
    if isinstance(value, Message):
        return value.stored()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def restored(data: Any) -> Any:
    """A stored message (``Message.stored``) back as a message; other values as they are."""
    if isinstance(data, dict) and set(data) == {"t", "p"}:
        return Message(data["t"], {k: restored(v) for k, v in (data["p"] or {}).items()})
    return data


def message_of(value: Any) -> Any:
    """The message an error carries (its first argument), else the value itself."""
    if isinstance(value, BaseException):
        return value.args[0] if len(value.args) == 1 else str(value)
    return value
