"""Rule coverage of policy tests: which rules (and which side of each, pass or fail) no scenario exercises.

A rule is one guard of one event of one kind, named by its id and where it is written; a scenario
exercises its pass side when the rule passed in the scenario's decision, its fail side when it refused.
A rule that did not apply to a scenario (its ``when:`` did not hold) exercises neither side. Each row of a
decision table is a rule of its own (its verdict's guard and row); a row that is ``then: pass`` has a pass side
only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from casework.policies.nesting import row_name
from casework.policies.tables import TableGuard

if TYPE_CHECKING:
    from casework.policies.policyset import PolicySet
    from casework.policies.scenarios import ScenarioResult

SIDES = ("pass", "fail")


@dataclass(frozen=True, slots=True)
class Rule:
    """One guard of ``kind``'s ``event`` (or one ``row`` of a decision table, 1-based): its id (``rule``), where it
    is written (``source``) and the sides it has."""

    kind: str
    event: str
    rule: str
    source: str | None
    row: int | None = None
    sides: tuple[str, ...] = SIDES

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "event": self.event, "rule": self.rule, "source": self.source,
                **({"row": self.row} if self.row is not None else {})}


@dataclass(frozen=True)
class Coverage:
    """Every rule of a policy, and the sides of them that no scenario exercised."""

    rules: tuple[Rule, ...]
    missing: tuple[tuple[Rule, str], ...]  # (rule, side) with side "pass" or "fail"

    @property
    def sides(self) -> int:
        return sum(len(rule.sides) for rule in self.rules)

    @property
    def covered(self) -> int:
        return self.sides - len(self.missing)

    def to_json(self) -> dict[str, Any]:
        return {"rules": len(self.rules), "sides": self.sides, "covered": self.covered,
                "uncovered": [{**rule.to_json(), "side": side} for rule, side in self.missing]}


def policy_rules(policy: PolicySet) -> tuple[Rule, ...]:
    """Every guard of the policy, in the order written; a decision table's rows, each a rule."""
    rules: list[Rule] = []
    for kind, kp in policy.document.kinds.items():
        for event, ep in kp.events.items():
            for i, guard in enumerate(ep.guards):
                source = policy.guard_source(kind, event, i)
                if not isinstance(guard, TableGuard):
                    rules.append(Rule(kind, event, guard.id or guard.guard_name(), source))
                    continue
                rules.extend(Rule(kind, event, row_name(guard, n), source, n + 1,
                                  SIDES if row.then is not None else ("pass",))
                             for n, row in enumerate(guard.rows))
    return tuple(rules)


def coverage(policy: PolicySet, results: Iterable[ScenarioResult]) -> Coverage:
    """Which sides of ``policy``'s rules the decisions of ``results`` exercised, and which none did."""
    seen: set[tuple[str | None, str, Any, str]] = set()
    for r in results:
        if r.decision is not None:
            seen.update((v.source, v.guard, v.details.get("table_row"), "pass" if v.passed else "fail")
                        for v in r.decision.verdicts)
    rules = policy_rules(policy)
    return Coverage(rules, tuple((rule, side) for rule in rules for side in rule.sides
                                 if (rule.source, rule.rule, rule.row, side) not in seen))
