"""The one mapping between the domain's values and the rows that hold them.

Column lists come from the tables; a case or an audit entry is turned into a row (a mapping of
every column) and back by the functions here and nowhere else. Times are stored as naive UTC: on
SQLite as the text SQLAlchemy's ``DateTime`` writes (``YYYY-MM-DD HH:MM:SS.ffffff``), on
PostgreSQL as ``timestamp without time zone``.
"""

from __future__ import annotations

import operator
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from casework._store.tables import audit, cases
from casework.domain import NOTHING_TRACKED, AuditEntry, Case, PolicyRef, Tracking
from casework.errors import Unreadable
from casework.frozen import quick_init
from casework.jsontext import parse, strict

CASE_COLUMNS: tuple[str, ...] = tuple(c.name for c in cases.columns)
AUDIT_COLUMNS: tuple[str, ...] = tuple(c.name for c in audit.columns)
# What a compare-and-set rewrites: every column but the row's identity and the opening's order, customer and
# channel (what a case is found and reported by; later events may change the facts, not these).
CASE_UPDATED: tuple[str, ...] = tuple(c for c in CASE_COLUMNS if c not in (
    "id", "number", "kind", "opened_at", "order_id", "customer", "channel"))
CASE_INSERTED: tuple[str, ...] = tuple(c for c in CASE_COLUMNS if c != "id")
AUDIT_INSERTED: tuple[str, ...] = tuple(c for c in AUDIT_COLUMNS if c != "id")
CaseValues = namedtuple("CaseValues", CASE_COLUMNS)  # type: ignore[misc]
AuditValues = namedtuple("AuditValues", AUDIT_COLUMNS)  # type: ignore[misc]

RefOf = Callable[[str], PolicyRef]


@quick_init
@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case as its row holds it: the row's id, the case, and where its audit trail ends.

    ``row`` is the row's values as read (``CASE_COLUMNS`` order), so a write can put back unchanged.
    """

    id: int
    case: Case
    last_seq: int
    last_hash: str
    row: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @property
    def opening_columns(self) -> dict[str, Any]:
        """The columns the row keeps from the case's opening, as stored: ``order_id``, ``customer``, ``channel``."""
        return {name: self.row[CASE_COLUMNS.index(name)] for name in ("order_id", "customer", "channel")}


_TIMES = ("updated_at", "first_response_due", "responded_at", "due_at", "resolution_due", "timer_due", "state_since")
_TIME_AT = tuple(CASE_COLUMNS.index(name) for name in _TIMES)
_times_of = operator.attrgetter(*_TIMES)  # a case's times that change, in one call
_FACTS_AT = CASE_COLUMNS.index("facts")


class TimeCodec:
    """How one backend stores an aware time, and reads it back.

    The stored forms of the UTC instants written lately are remembered: a transition writes its
    instant several times (the row and its entry), and a batch writes the same instants and
    deadlines for every case it opens or sweeps. Only UTC times are remembered: aware times in one
    zone compare as wall times, so two instants a DST fold apart would share a key. So are the
    times of the SQLite texts read lately: the cases a batch reads share most of theirs.
    """

    __slots__ = ("_forms", "_times", "sqlite")
    _KEEP = 256

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self._forms: dict[datetime, Any] = {}
        self._times: dict[str, datetime] = {}

    def store(self, value: datetime | None) -> Any:
        if value is None:
            return None
        utc = value.tzinfo is UTC
        if utc and (form := self._forms.get(value)) is not None:
            return form
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: casework stores only timezone-aware times")
        naive = value.astimezone(UTC).replace(tzinfo=None)
        form = naive.isoformat(" ", "microseconds") if self.sqlite else naive
        if utc:
            if len(self._forms) >= self._KEEP:
                self._forms.clear()
            self._forms[value] = form
        return form

    def read(self, value: Any) -> datetime | None:
        return None if value is None else self.at(value)

    def at(self, value: Any) -> datetime:
        """A time that must be there (ValueError when it is not)."""
        if isinstance(value, str):
            if len(value) == 26 and value[10] == " ":  # SQLite's own form: made UTC in one step
                found = self._times.get(value)
                if found is None:
                    if len(self._times) >= self._KEEP:
                        self._times.clear()
                    found = self._times[value] = datetime.fromisoformat(value + "+00:00")
                return found
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise ValueError(f"{value!r} is not a time")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Codec:
    """Rows of one backend: cases and audit entries, to their column values and back."""

    def __init__(self, dialect: str) -> None:
        self.time = TimeCodec(dialect == "sqlite")
        self._no_breaches = strict([])
        # SQLite stores a boolean as the integer: given one, its driver binds it without trying adapters first.
        self._open, self._closed = (1, 0) if dialect == "sqlite" else (True, False)

    def case_row(self, case: Case, last_seq: int, last_hash: str) -> dict[str, Any]:
        """Every column of a new case's row but its id."""
        row = self.case_changes(case, last_seq, last_hash)
        row.update(number=case.number, kind=case.kind, opened_at=self.time.store(case.opened_at),
                   order_id=case.order_id, customer=case.customer, channel=case.facts.get("channel"))
        return row

    def case_changes(self, case: Case, last_seq: int, last_hash: str, read: StoredCase | None = None
                     ) -> dict[str, Any]:
        """The columns a compare-and-set rewrites (``CASE_UPDATED``); ``read``: the row the case was derived from."""
        t = self.time.store
        was = read if read is not None and read.row else None
        # Facts a step left as they were (the same mapping) are written back in the text they were read in.
        facts = was.row[_FACTS_AT] if was is not None and case.facts is was.case.facts else strict(case.facts)
        tracking = case.tracking
        row = {
            "state": case.state, "version": case.version, "facts": facts, "policy_hash": case.policy.hash,
            "priority": tracking.priority, "queue": tracking.queue,
            "breaches": strict(list(tracking.breaches)) if tracking.breaches else self._no_breaches,
            "timer_refused": tracking.timer_refused, "assignee": tracking.assignee,
            "is_open": self._closed if case.closed else self._open, "last_seq": last_seq, "last_hash": last_hash,
        }
        if was is None:  # a new case: every time is new
            row.update(zip(_TIMES, map(t, _times_of(case)), strict=True))
            return row
        # A time the step carried over from the row it read (the same object, in whatever field) is
        # written back in the form it was read in: only new times are formatted.
        forms = {id(value): was.row[index] for value, index in zip(_times_of(was.case), _TIME_AT, strict=True)}
        for name, value in zip(_TIMES, _times_of(case), strict=True):
            row[name] = None if value is None else forms.get(id(value)) or t(value)
        return row

    def stored_case(self, values: Sequence[Any], ref_of: RefOf) -> StoredCase:
        """The case in a row of ``CASE_COLUMNS`` values; Unreadable (naming the case) when damaged."""
        row: Any = CaseValues(*values)
        t = self.time.read
        try:
            case = Case(
                number=row.number, kind=row.kind, state=row.state, version=row.version,
                facts=parse(row.facts), policy=ref_of(row.policy_hash),
                opened_at=self.time.at(row.opened_at), updated_at=self.time.at(row.updated_at),
                first_response_due=t(row.first_response_due), responded_at=t(row.responded_at),
                due_at=t(row.due_at), closed=not row.is_open, resolution_due=t(row.resolution_due),
                timer_due=t(row.timer_due), state_since=t(row.state_since),
                tracking=NOTHING_TRACKED if row.priority == 1 and row.breaches == "[]" and row.queue is None
                and row.timer_refused is None and row.assignee is None
                else Tracking(priority=int(row.priority), queue=row.queue, breaches=tuple(parse(row.breaches)),
                              timer_refused=row.timer_refused, assignee=row.assignee),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise Unreadable(f"case {row.number}: unreadable row ({exc})") from None
        return StoredCase(row.id, case, row.last_seq, row.last_hash, row)

    def entry_row(self, case_id: int | None, entry: AuditEntry, texts: tuple[str, str] | None = None) -> dict[str, Any]:
        """Every column of an audit entry's row but its id; ``texts``: its (verdicts, data) JSON if made."""
        verdicts, data = texts if texts is not None else (strict(entry.verdicts), strict(entry.data))
        return {
            "case_id": case_id, "number": entry.number, "seq": entry.seq, "at": self.time.store(entry.at),
            "event": entry.event, "from_state": entry.from_state, "to_state": entry.to_state,
            "outcome": entry.outcome, "actor": entry.actor, "role": entry.role, "channel": entry.channel,
            "verdicts": verdicts, "data": data, "policy_hash": entry.policy.hash, "prev_hash": entry.prev_hash,
            "hash": entry.hash, "gseq": None, "link": None, "mac": None,
        }

    def entry(self, values: Sequence[Any], ref_of: RefOf) -> AuditEntry:
        """The audit entry in a row of ``AUDIT_COLUMNS`` values; Unreadable when damaged."""
        row: Any = AuditValues(*values)
        try:
            return AuditEntry(
                number=row.number, seq=row.seq, at=self.time.at(row.at), event=row.event, from_state=row.from_state,
                to_state=row.to_state, outcome=row.outcome, actor=row.actor, role=row.role, channel=row.channel,
                verdicts=parse(row.verdicts), data=parse(row.data), policy=ref_of(row.policy_hash),
                prev_hash=row.prev_hash, hash=row.hash,
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise Unreadable(f"case {row.number}: unreadable audit entry {row.seq} ({exc})") from None
