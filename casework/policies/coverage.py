"""Rule coverage of policy tests: which rules (and which side of each, pass or fail) no scenario exercises.

A rule is one guard of one event of one kind, named by its id and where it is written; a scenario
exercises its pass side when the rule passed in the scenario's decision, its fail side when it refused.
A rule that did not apply to a scenario (its ``when:`` did not hold) exercises neither side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casework.policies.policyset import PolicySet
    from casework.policies.scenarios import ScenarioResult

SIDES = ("pass", "fail")


@dataclass(frozen=True, slots=True)
class Rule:
    """One guard of ``kind``'s ``event``: its id (``rule``) and where it is written (``source``)."""

    kind: str
    event: str
    rule: str
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "event": self.event, "rule": self.rule, "source": self.source}


@dataclass(frozen=True)
class Coverage:
    """Every rule of a policy, and the sides of them that no scenario exercised."""

    rules: tuple[Rule, ...]
    missing: tuple[tuple[Rule, str], ...]  # (rule, side) with side "pass" or "fail"

    @property
    def sides(self) -> int:
        return len(self.rules) * len(SIDES)

    @property
    def covered(self) -> int:
        return self.sides - len(self.missing)

    def to_json(self) -> dict[str, Any]:
        return {"rules": len(self.rules), "sides": self.sides, "covered": self.covered,
                "uncovered": [{**rule.to_json(), "side": side} for rule, side in self.missing]}


def policy_rules(policy: PolicySet) -> tuple[Rule, ...]:
    """Every guard of the policy, in the order written."""
    return tuple(Rule(kind, event, guard.id or guard.guard_name(), policy.guard_source(kind, event, i))
                 for kind, kp in policy.document.kinds.items() for event, ep in kp.events.items()
                 for i, guard in enumerate(ep.guards))


def coverage(policy: PolicySet, results: Iterable[ScenarioResult]) -> Coverage:
    """Which sides of ``policy``'s rules the decisions of ``results`` exercised, and which none did."""
    seen: set[tuple[str | None, str, str]] = set()
    for r in results:
        if r.decision is not None:
            seen.update((v.source, v.guard, "pass" if v.passed else "fail") for v in r.decision.verdicts)
    rules = policy_rules(policy)
    return Coverage(rules, tuple((rule, side) for rule in rules for side in SIDES
                                 if (rule.source, rule.rule, side) not in seen))
