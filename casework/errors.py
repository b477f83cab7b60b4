"""The errors casework raises, all under one base class.

::

    CaseworkError                                                                   HTTP
    ├── InvalidInput            a value given to the engine is malformed or unknown      400
    │   ├── InvalidImportFile   a bulk-import file is unreadable, not JSON Lines, or     400
    │   │                       holds a bad record
    │   └── UnknownPolicyVersion  no stored policy version, or several, match a hash     400
    │                           prefix or label (carries the candidates)
    ├── IdempotencyConflict     a key was reused with different arguments                409
    ├── PolicyError             a policy file is invalid (carries file, line, column)    500
    ├── CaseNotFound            no case has that number                                  404
    ├── StoreError              the database cannot be reached or is unusable            503
    │   ├── SchemaOutOfDate     the database schema is older than this casework          503
    │   ├── Unreadable          a stored row cannot be decoded (damaged or edited by     500
    │   │                       hand)
    │   └── UniqueViolation     a row with that key already exists (a race the engine    409
    │                           resolves)
    ├── BrokerUnavailable       the relay's message broker cannot be reached or          503
    │                           refuses to store a change
    └── Refused                 the rules said no (CLI exit code 1)                      409
        ├── PolicyTestsFailed   a version's scenario tests failed: it is not published   409
        ├── TransitionDenied    guards refused the event (carries the Decision)          422
        │   └── EventNotAvailable  the event does not exist from the case's state        409
        └── ConcurrentUpdate    another writer changed the case first                    409
            └── WriteConflict   the compare-and-set of a write lost (decide again on a   409
                                fresh read)

Each error carries its context as attributes, and its message is one line that names the bad
value and what would have been accepted. For an API: ``http_status`` is the status to answer with,
``to_json()`` the body (``type``, ``message``, ``http_status`` and the context), and every error
survives pickling (a worker process can hand it back). No attribute holds a secret: a database URL
is kept with its password hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from casework.domain import Decision

NOT_AVAILABLE = "not_available"  # the reason code of an event that does not exist from the case's state


class CaseworkError(Exception):
    """Base class of every error casework raises on purpose."""

    http_status: ClassVar[int] = 500

    def to_json(self) -> dict[str, Any]:
        """The error as an API can answer it: ``type``, ``message``, ``http_status`` and its context (each
        attribute, as JSON: a decision as its JSON, other values as text when JSON has no type for them)."""
        context = {name: _json_value(value) for name, value in vars(self).items() if not name.startswith("_")}
        return {"type": type(self).__name__, "message": str(self), "http_status": self.http_status, **context}

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as ``cls(*args)``, which does not fit an __init__ taking other arguments:
        # rebuild the instance from its message and attributes instead.
        return _restore, (type(self), self.args, vars(self))


def _restore(cls: type[CaseworkError], args: tuple[Any, ...], attributes: dict[str, Any]) -> CaseworkError:
    error = Exception.__new__(cls)
    error.args = args
    vars(error).update(attributes)
    return error


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else str(value)


class InvalidInput(CaseworkError, ValueError):
    """A value passed to the engine is malformed or not in the accepted vocabulary."""

    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class IdempotencyConflict(CaseworkError):
    """An idempotency key was used again with different arguments (a conflict, not a malformed value)."""

    http_status = 409

    def __init__(self, key: str, original: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request ({original}); "
                         "use a new key for a new request")
        self.key = key
        self.original = original


class InvalidImportFile(InvalidInput):
    """A JSON Lines file given to ``Engine.import_file`` cannot be used: it cannot be read, is not UTF-8
    text, has a line that is not JSON, or has a record ``open`` would refuse.

    ``file`` names it (``-`` for standard input), ``line`` the line at fault (None when the whole file
    is), and ``field`` the record's field at fault (``"file"`` when it is not about a record).
    """

    def __init__(self, message: str, *, file: str, line: int | None = None, field: str | None = "file") -> None:
        super().__init__(message, field=field)
        self.file = file
        self.line = line


class UnknownPolicyVersion(InvalidInput):
    """``version`` names no stored policy version, or more than one; ``candidates`` are the stored versions
    it could mean (``HASH12 label``), or all of them when it matches none."""

    def __init__(self, version: str, candidates: Sequence[str], *, ambiguous: bool) -> None:
        listed = "; ".join(candidates) or "none is stored"
        what = "is ambiguous: it matches" if ambiguous else "is not a stored policy version; stored:"
        super().__init__(f"policy version {version!r} {what} {listed} (give a longer hash prefix or a label)"
                         if ambiguous else f"policy version {version!r} {what} {listed}", field="version",
                         value=version)
        self.candidates = list(candidates)
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class PolicyProblem:
    """One problem found in a policy file, located at FILE:LINE:COL."""

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}:{self.column}: {prefix}{self.message}"


class PolicyError(CaseworkError):
    """A policy file could not be loaded. ``problems`` lists every error found, located."""

    http_status = 500  # the service's own configuration is wrong

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}")

    @property
    def file(self) -> str:
        return self.problems[0].file

    @property
    def line(self) -> int:
        return self.problems[0].line

    @property
    def column(self) -> int:
        return self.problems[0].column


class CaseNotFound(CaseworkError, LookupError):
    """No case has the given after-sales number."""

    http_status = 404

    def __init__(self, number: str, suggestions: Sequence[str] = ()) -> None:
        self.number = number
        self.suggestions = list(suggestions)
        hint = f" (did you mean {', '.join(self.suggestions)}?)" if self.suggestions else ""
        super().__init__(f"no case {number}{hint}")


class StoreError(CaseworkError):
    """The database could not be opened or used."""

    http_status = 503

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class BrokerUnavailable(CaseworkError):
    """The message broker ``casework relay`` publishes to cannot be reached, or does not store what it is sent."""

    http_status = 503

    def __init__(self, message: str, *, servers: str | None = None) -> None:
        super().__init__(message)
        self.servers = servers  # without any password


class SchemaOutOfDate(StoreError):
    """The database schema is older (or newer) than this version of casework expects."""


class Unreadable(StoreError):
    """A stored row cannot be decoded (damaged or edited by hand)."""

    http_status = 500


class UniqueViolation(StoreError):
    """A row with the same key already exists: two writers raced for one idempotency key or number."""

    http_status = 409


class Refused(CaseworkError):
    """The engine refused to change a case (CLI exit code 1)."""

    http_status = 409


class PolicyTestsFailed(Refused):
    """Publishing refused: scenarios of the version's tests failed; ``failures`` names each (with why), out of
    ``total`` run (``casework policy test`` shows them in full)."""

    def __init__(self, label: str, failures: Sequence[str], total: int) -> None:
        super().__init__(f"policy {label} is not published: {len(failures)} of {total} scenario(s) of its tests "
                         f"failed: {'; '.join(failures[:3])}{'; …' if len(failures) > 3 else ''}")
        self.label, self.failures, self.total = label, list(failures), total


class TransitionDenied(Refused):
    """The policy refused the event; ``decision`` lists every reason.

    A decision refused only because the event does not exist from the case's state makes an
    :class:`EventNotAvailable` (a conflict with the case's state, not a policy refusal).
    """

    http_status = 422

    def __new__(cls, decision: Decision, number: str | None = None) -> TransitionDenied:
        if cls is TransitionDenied and decision.codes == [NOT_AVAILABLE]:
            cls = EventNotAvailable
        return super().__new__(cls, decision, number)

    def __init__(self, decision: Decision, number: str | None = None) -> None:
        self.decision = decision
        self.number = number
        reasons = "; ".join(f"{r.code}: {r.message}" for r in decision.reasons)
        where = f"{number}: " if number else ""
        super().__init__(f"{where}{decision.event} refused: {reasons}")


class EventNotAvailable(TransitionDenied):
    """The event does not exist from the case's current state (``not_available``): the case moved on, or
    the caller asked for the wrong event. ``decision`` names the events that are possible."""

    http_status = 409


class ConcurrentUpdate(Refused):
    """Someone else changed the case between our read and our write."""

    def __init__(self, number: str, expected: int, actual: int | None = None) -> None:
        self.number = number
        self.expected = expected
        self.actual = actual
        now = ("" if actual is None else f", it is now at version {actual}" if actual != expected
               else f"; another attempt on it was recorded first, it is still at version {actual}")
        super().__init__(
            f"{number} was changed by someone else (expected version {expected}{now}); "
            "re-read the case and try again"
        )


class WriteConflict(ConcurrentUpdate):
    """A write's compare-and-set found the case row changed since it was read.

    Raised by the store; the engine decides the command again on a fresh read (``retries``) before
    giving up with it. ``expected`` is the version that was read.
    """
