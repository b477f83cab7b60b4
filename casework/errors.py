"""The errors casework raises, all under one base class.

::

    CaseworkError
    ├── InvalidInput            a value given to the engine is malformed or unknown
    │   ├── IdempotencyConflict a key was reused with different arguments
    │   └── InvalidImportFile   a bulk-import file is unreadable, not JSON Lines, or holds a bad record
    ├── PolicyError             a policy file is invalid (carries file, line, column)
    ├── CaseNotFound            no case has that number
    ├── StoreError              the database cannot be reached or is unusable
    │   ├── SchemaOutOfDate     the database schema is older than this casework
    │   ├── Unreadable          a stored row cannot be decoded (damaged or edited by hand)
    │   └── UniqueViolation     a row with that key already exists (a race the engine resolves)
    └── Refused                 the rules said no (CLI exit code 1)
        ├── TransitionDenied    guards refused the event (carries the Decision)
        └── ConcurrentUpdate    another writer changed the case first
            └── WriteConflict   the compare-and-set of a write lost (decide again on a fresh read)

Each error carries its context as attributes, and its message is one line that names the bad
value and what would have been accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from casework.domain import Decision


class CaseworkError(Exception):
    """Base class of every error casework raises on purpose."""


class InvalidInput(CaseworkError, ValueError):
    """A value passed to the engine is malformed or not in the accepted vocabulary."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class IdempotencyConflict(InvalidInput):
    """An idempotency key was used again with different arguments."""

    def __init__(self, key: str, original: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request ({original}); "
            "use a new key for a new request",
            field="key",
            value=key,
        )
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

    def __init__(self, number: str, suggestions: Sequence[str] = ()) -> None:
        self.number = number
        self.suggestions = list(suggestions)
        hint = f" (did you mean {', '.join(self.suggestions)}?)" if self.suggestions else ""
        super().__init__(f"no case {number}{hint}")


class StoreError(CaseworkError):
    """The database could not be opened or used."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class SchemaOutOfDate(StoreError):
    """The database schema is older (or newer) than this version of casework expects."""


class Unreadable(StoreError):
    """A stored row cannot be decoded (damaged or edited by hand)."""


class UniqueViolation(StoreError):
    """A row with the same key already exists: two writers raced for one idempotency key or number."""


class Refused(CaseworkError):
    """The engine refused to change a case (CLI exit code 1)."""


class TransitionDenied(Refused):
    """The policy refused the event; ``decision`` lists every reason."""

    def __init__(self, decision: Decision, number: str | None = None) -> None:
        self.decision = decision
        self.number = number
        reasons = "; ".join(f"{r.code}: {r.message}" for r in decision.reasons)
        where = f"{number}: " if number else ""
        super().__init__(f"{where}{decision.event} refused: {reasons}")


class ConcurrentUpdate(Refused):
    """Someone else changed the case between our read and our write."""

    def __init__(self, number: str, expected: int, actual: int | None = None) -> None:
        self.number = number
        self.expected = expected
        self.actual = actual
        now = f", it is now at version {actual}" if actual is not None else ""
        super().__init__(
            f"{number} was changed by someone else (expected version {expected}{now}); "
            "re-read the case and try again"
        )


class WriteConflict(ConcurrentUpdate):
    """A write's compare-and-set found the case row changed since it was read.

    Raised by the store; the engine decides the command again on a fresh read (``retries``) before
    giving up with it. ``expected`` is the version that was read.
    """
