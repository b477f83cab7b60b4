"""The SLA report: response and resolution times, breaches, refusals and satisfaction, from the audit trail.

>>> from casework import Engine, Actor, FixedClock
>>> engine = Engine("sqlite:///:memory:", clock=FixedClock("2026-11-22T10:00:00+08:00"))
>>> case = engine.open("complaint", {"order_id": "A1"}, actor=Actor("c-1", "customer"), channel="app")
>>> report = engine.report(by="channel")
>>> report.overall.opened, [g.key for g in report.groups]
(1, ['app'])

Which cases and entries a report counts
    A report describes the **cases opened in** ``[since, until)`` (the cohort; ``None`` leaves a
    bound open), each **as its audit trail stood at** ``until``: entries at or after ``until`` are
    ignored, so a report on a past period gives the same numbers whenever it is run. Every figure of a
    group refers to the same cases, so rates and groups add up to the overall figures.

Definitions (all from the applied and refused entries of the case's audit trail)
    - **opened**: cases in the cohort. **closed**: those with an applied entry reaching a final state
      (``KINDS[kind].final``) before ``until``.
    - **first response**: the first applied entry, after the opening and leaving aside the engine's
      meta events (``sla_breach``, ``adopt_policy``), whose event the case's policy version (the one
      named by the entry) counts as a response (``PolicySet.counts_as_response``) *or* that reaches a
      settled state (``KINDS[kind].settled``) -- exactly the rule ``transition.advance`` uses to set
      ``responded_at``. Time to first response = its time minus the opening time.
    - **resolution**: the first applied entry reaching a settled state; time to resolution = its time
      minus the opening time. Cases without a response (resolution) before ``until`` have no time and
      are not counted in that figure's ``count``.
    - **breached**: cases with at least one applied ``sla_breach`` entry naming a breach (its
      ``data.breaches``, the same list the case's ``breaches`` fact accumulates; the sweep's
      ``timer_refused`` notes name none). Breach rate = breached cases / opened cases, overall and per
      breach type (``first_response``, ``resolution``, any other named).
    - **refusals**: refused attempts; ``by_code`` counts the refused attempts whose failed verdicts
      include the code (an attempt refused for two reasons counts under both). ``refusals.openings``: the
      openings refused in ``[since, until)`` (no case was opened: they are not among the opened cases),
      by code likewise; grouped by kind and channel, not by agent (nobody responded to them).
    - **rejections**: applied ``reject`` entries, ``by_reason`` per rejection reason the entry names
      (its ``data.rejection``; ``(none)`` for a reject recorded without one, as before the policy had reasons).
    - **satisfaction**: from applied ``rate`` entries (``data.score``, 1-5); when a customer rates a
      case again the latest rating replaces the earlier one (as the case's ``score`` fact does).
      ``count`` = rated cases, ``mean`` = mean score, ``distribution`` = rated cases per score.
    - **median**: the middle value, or the mean of the two middle values for an even count.
      **p90**: nearest rank -- the ``ceil(0.9 * n)``-th smallest of the ``n`` values (computed in
      integers), always an observed value. **max**: the largest.
    - grouping ``by``: ``channel`` (the channel the case was opened through; ``(none)`` if none),
      ``kind``, or ``agent`` -- the actor of the first response (``(no response)`` if none yet).
      Customers are pooled as ``(customer)``: one who cancels before anyone answers gave the "first
      response" by the rule above, but is no agent, and one group per customer would swamp the table.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from casework.audit import META_EVENTS
from casework.domain import AuditEntry
from casework.errors import InvalidInput
from casework.machines import KINDS, REJECT, spec
from casework.replay import kind_of
from casework.sla import BREACH_EVENT
from casework.values import one_of, parse_instant

if TYPE_CHECKING:
    from casework.policybook import PolicyBook
    from casework.store import Store

BY_CHOICES = ("channel", "kind", "agent")
BREACH_TYPES = ("first_response", "resolution")
NO_CHANNEL = "(none)"
NO_RESPONSE = "(no response)"
BY_CUSTOMER = "(customer)"
SCORES = (1, 2, 3, 4, 5)


def p90(values: Iterable[float]) -> float | None:
    """The 90th percentile by the nearest-rank method: the ``ceil(0.9 n)``-th smallest value."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (90 * len(ordered) + 99) // 100  # ceil(0.9 n) without floating point
    return ordered[rank - 1]


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration, e.g. ``P1DT2H3M4S`` (days of 24 hours; fractions of a second kept to ms)."""
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds), 3)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    secs = round(secs, 3)
    time = "".join(f"{int(v)}{u}" for v, u in ((hours, "H"), (minutes, "M")) if v)
    if secs or not (days or time):
        time += f"{int(secs) if secs == int(secs) else secs}S"
    return f"{sign}P{f'{int(days)}D' if days else ''}{'T' + time if time else ''}"


def human_duration(seconds: float) -> str:
    """A short reading of a duration: its two largest units, like ``2d 3h``, ``5h 12m``, ``40s``."""
    sign = "-" if seconds < 0 else ""
    left = round(abs(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, left = divmod(left, size)
        parts.append((n, unit))
    first = next((i for i, (n, _) in enumerate(parts) if n), None)
    if first is None:
        return "0s"
    return sign + " ".join(f"{n}{u}" for n, u in parts[first:first + 2] if n)


def duration_json(seconds: float | None) -> dict[str, Any] | None:
    if seconds is None:
        return None
    return {"seconds": seconds, "iso": iso_duration(seconds), "human": human_duration(seconds)}


@dataclass(frozen=True)
class DurationStats:
    """Count, median, p90 (nearest rank) and max of durations in seconds (``None`` when no values)."""

    count: int
    median: float | None
    p90: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> DurationStats:
        v = sorted(values)
        if not v:
            return cls(0, None, None, None)
        return cls(len(v), statistics.median(v), p90(v), v[-1])

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "median": duration_json(self.median), "p90": duration_json(self.p90),
                "max": duration_json(self.max)}


@dataclass(frozen=True)
class Satisfaction:
    """Rated cases, their mean score, and how many cases got each score 1-5."""

    count: int
    mean: float | None
    distribution: dict[int, int]

    @classmethod
    def of(cls, scores: Iterable[int]) -> Satisfaction:
        s = list(scores)
        dist = Counter(s)
        return cls(len(s), (sum(s) / len(s)) if s else None, {score: dist.get(score, 0) for score in SCORES})

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean,
                "distribution": {str(k): v for k, v in self.distribution.items()}}


@dataclass(frozen=True)
class GroupFigures:
    """The figures of one group of cases (``key`` is ``None`` for all the cases of the report)."""

    key: str | None
    opened: int
    closed: int
    responded: int
    resolved: int
    first_response: DurationStats
    resolution: DurationStats
    breached: int
    breaches_by_type: dict[str, int]
    refusals: int
    refusals_by_code: dict[str, int]
    satisfaction: Satisfaction
    refused_openings: int = 0  # openings the rules refused (no case was opened): not among ``opened``
    refused_openings_by_code: dict[str, int] = field(default_factory=dict)
    rejections_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def breach_rate(self) -> float | None:
        return self.breached / self.opened if self.opened else None

    def breach_rate_of(self, breach: str) -> float | None:
        return self.breaches_by_type.get(breach, 0) / self.opened if self.opened else None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cases": {"opened": self.opened, "closed": self.closed, "responded": self.responded,
                      "resolved": self.resolved},
            "first_response": self.first_response.to_json(),
            "resolution": self.resolution.to_json(),
            "breaches": {"cases": self.breached, "rate": self.breach_rate,
                         "by_type": {t: {"cases": n, "rate": self.breach_rate_of(t)}
                                     for t, n in self.breaches_by_type.items()}},
            "refusals": {"total": self.refusals, "by_code": dict(self.refusals_by_code),
                         "openings": {"total": self.refused_openings, "by_code": dict(self.refused_openings_by_code)}},
            "rejections": {"total": sum(self.rejections_by_reason.values()),
                           "by_reason": dict(self.rejections_by_reason)},
            "satisfaction": self.satisfaction.to_json(),
        }


@dataclass(frozen=True)
class SlaReport:
    """The report: the period and filters it was asked for, the overall figures and one per group."""

    since: datetime | None
    until: datetime | None
    kind: str | None
    by: str | None
    generated_at: datetime
    overall: GroupFigures
    groups: tuple[GroupFigures, ...]

    @property
    def breach_types(self) -> list[str]:
        return list(self.overall.breaches_by_type)

    @property
    def refusal_codes(self) -> list[str]:
        return list(self.overall.refusals_by_code)

    @property
    def rejection_reasons(self) -> list[str]:
        return list(self.overall.rejections_by_reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "kind": self.kind,
            "by": self.by,
            "generated_at": self.generated_at.isoformat(),
            "cohort": "cases opened in [since, until), as their audit trails stood at until",
            "percentile": "p90 by nearest rank; median is the mean of the two middle values for even counts",
            "overall": self.overall.to_json(),
            "groups": [g.to_json() for g in self.groups],
        }


@dataclass
class CaseLine:
    """What one case's audit trail says, as the report counts it (see the module's definitions)."""

    number: str
    kind: str
    channel: str | None
    opened_at: datetime
    responder: str | None = None
    responder_role: str | None = None
    first_response: float | None = None
    resolution: float | None = None
    closed: bool = False
    breaches: set[str] = field(default_factory=set)
    refusals: int = 0
    refusal_codes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    score: int | None = None

    def key(self, by: str | None) -> str | None:
        if by == "channel":
            return self.channel or NO_CHANNEL
        if by == "kind":
            return self.kind
        if by == "agent":
            return BY_CUSTOMER if self.responder_role == "customer" else self.responder or NO_RESPONSE
        return None


def summarize(policies: PolicyBook, kind: str, channel: str | None, opened_at: datetime,
              entries: Iterable[AuditEntry]) -> CaseLine:
    """One case's line from its trail, in sequence order."""
    ks = KINDS[kind]
    line: CaseLine | None = None
    for e in entries:
        if line is None:
            line = CaseLine(e.number, kind, channel, opened_at)
        if e.outcome == "refused":
            line.refusals += 1
            line.refusal_codes.update({v.get("code", "?") for v in e.verdicts if not v.get("passed", False)})
            continue
        if e.outcome != "applied" or e.event == "open":
            continue
        if e.event in META_EVENTS:
            if e.event == BREACH_EVENT:
                line.breaches.update(str(b) for b in e.data.get("breaches", []))
            continue
        settles = e.to_state in ks.settled
        if line.responder is None and (settles or policies.version(e.policy.hash).counts_as_response(kind, e.event)):
            line.responder, line.responder_role = e.actor, e.role
            line.first_response = (e.at - opened_at).total_seconds()
        if line.resolution is None and settles:
            line.resolution = (e.at - opened_at).total_seconds()
        if e.to_state in ks.final:
            line.closed = True
        if e.event == REJECT:
            line.rejections[str(e.data.get("rejection", NO_CHANNEL))] += 1
        if e.event == "rate" and "score" in e.data:
            line.score = int(e.data["score"])
    if line is None:  # pragma: no cover - every case has at least its opening entry
        raise InvalidInput(f"a {kind} case has no audit trail")
    return line


def _lines(store: Store, policies: PolicyBook, since: datetime | None, until: datetime | None,
           kind: str | None) -> Iterator[CaseLine]:
    for case, trail in store.audit_between(since, until, kind):
        if trail:
            opening = trail[0]  # the channel a case is reported by is the one it was opened through
            yield summarize(policies, case.kind, opening.channel, case.opened_at, trail)


def figures(key: str | None, lines: list[CaseLine], refused: Sequence[AuditEntry] = ()) -> GroupFigures:
    """The figures of a group of cases (and of the openings refused in it)."""
    breaches: Counter[str] = Counter({t: 0 for t in BREACH_TYPES})
    codes: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    for line in lines:
        breaches.update(line.breaches)
        codes.update(line.refusal_codes)
        rejections.update(line.rejections)
    opening_codes: Counter[str] = Counter()
    for e in refused:
        opening_codes.update({v.get("code", "?") for v in e.verdicts if not v.get("passed", False)})
    return GroupFigures(
        key=key, opened=len(lines), closed=sum(1 for c in lines if c.closed),
        responded=sum(1 for c in lines if c.first_response is not None),
        resolved=sum(1 for c in lines if c.resolution is not None),
        first_response=DurationStats.of(c.first_response for c in lines if c.first_response is not None),
        resolution=DurationStats.of(c.resolution for c in lines if c.resolution is not None),
        breached=sum(1 for c in lines if c.breaches),
        breaches_by_type={t: breaches[t] for t in [*BREACH_TYPES, *sorted(set(breaches) - set(BREACH_TYPES))]},
        refusals=sum(c.refusals for c in lines),
        refusals_by_code=_by_count(codes),
        satisfaction=Satisfaction.of(c.score for c in lines if c.score is not None),
        refused_openings=len(refused),
        refused_openings_by_code=_by_count(opening_codes),
        rejections_by_reason=_by_count(rejections),
    )


def _by_count(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _instant(value: datetime | date | str | None, name: str, tz: tzinfo) -> datetime | None:
    if value is None:
        return None
    return parse_instant(value, name, tz=tz).astimezone(tz)  # a bare date is midnight in the policy's zone


def build_report(store: Store, policies: PolicyBook, now: datetime, *, since: datetime | date | str | None = None,
                 until: datetime | date | str | None = None, kind: str | None = None,
                 by: str | None = None) -> SlaReport:
    """The SLA report over the cases opened in ``[since, until)``, optionally of one ``kind``.

    ``since``/``until`` are aware datetimes or ISO text (a bare date, or a datetime without offset,
    is read in the policy's time zone). ``by`` groups the cases by ``channel``, ``kind`` or ``agent``
    (see the module docstring for every definition). Raises :class:`InvalidInput` for an unknown
    kind or grouping, an unreadable time, or ``since`` not before ``until``. Reads the audit trail in
    batches, keeping one small line per case.
    """
    if kind is not None:
        spec(kind)
    if by is not None:
        one_of(by, BY_CHOICES, "report grouping", field="by")
    tz = policies.current.tz
    start, end = _instant(since, "since", tz), _instant(until, "until", tz)
    if start is not None and end is not None and start >= end:
        raise InvalidInput(f"since {start.isoformat()} is not before until {end.isoformat()}", field="since")
    lines = list(_lines(store, policies, start, end, kind))
    refused = [e for e in store.refused_openings(spec(kind).prefix if kind is not None else None)
               if (start is None or e.at >= start) and (end is None or e.at < end)]
    groups: dict[str, list[CaseLine]] = {}
    refused_in: dict[str, list[AuditEntry]] = {}
    if by is not None:
        for line in lines:
            groups.setdefault(line.key(by) or "", []).append(line)
        if by in ("kind", "channel"):  # a refused opening has a kind and a channel, but nobody responded to it
            for e in refused:
                key = kind_of(e.number) if by == "kind" else e.channel or NO_CHANNEL
                refused_in.setdefault(key or "", []).append(e)
                groups.setdefault(key or "", [])
    return SlaReport(
        since=start, until=end, kind=kind, by=by, generated_at=now.astimezone(tz),
        overall=figures(None, lines, refused),
        groups=tuple(figures(k, groups[k], refused_in.get(k, [])) for k in sorted(groups)),
    )


def share(part: int, whole: int) -> float:
    """``part / whole`` (0 when ``whole`` is 0), for charts."""
    return part / whole if whole else 0.0


__all__ = ["BY_CHOICES", "DurationStats", "GroupFigures", "Satisfaction", "SlaReport", "build_report",
           "human_duration", "iso_duration", "p90"]
