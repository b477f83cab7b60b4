"""Rule coverage of policy tests: which rules (and which side of each, pass or fail) no scenario exercises.

A rule is one guard of one event of one kind, named by its id and where it is written; a scenario
exercises its pass side when the rule passed in the scenario's decision, its fail side when it refused.
A rule that did not apply to a scenario (its ``when:`` did not hold) exercises neither side. Each row of a
decision table is a rule of its own (its verdict's guard and row); a row that is ``then: pass`` has a pass side
only. Each branch of a combinator (``all_of``, ``any_of``, ``not``; nested ones too) is a rule of its own, named by
its path under the combinator (``branch`` "2", "2.1"): its pass side when it held, its fail side when it did not
(for a ``not``, the side of the rule inside it), read from the combinator's ``details.outcomes``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from casework.policies.combinators import OUTCOMES, AllOfGuard, AnyOfGuard, NotGuard
from casework.policies.guard_base import GuardBase
from casework.policies.nesting import row_name
from casework.policies.tables import TableGuard

if TYPE_CHECKING:
    from casework.policies.policyset import PolicySet
    from casework.policies.scenarios import ScenarioResult

SIDES = ("pass", "fail")


@dataclass(frozen=True, slots=True)
class Rule:
    """One guard of ``kind``'s ``event`` (or one ``row`` of a decision table, 1-based; or one ``branch`` of a
    combinator, by its path): its id (``rule``), where it is written (``source``: the event's guard holding it)
    and the sides it has."""

    kind: str
    event: str
    rule: str
    source: str | None
    row: int | None = None
    sides: tuple[str, ...] = SIDES
    branch: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "event": self.event, "rule": self.rule, "source": self.source,
                **({"row": self.row} if self.row is not None else {}),
                **({"branch": self.branch} if self.branch is not None else {})}

    def key(self) -> tuple[Any, ...]:
        """What identifies the rule among a decision's verdicts (a branch: its path, not its name)."""
        return ("branch", self.source, self.row, self.branch) if self.branch is not None else \
            (self.source, self.rule, self.row)


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
                    rules.extend(_branches(guard, kind, event, source, None))
                    continue
                for n, row in enumerate(guard.rows):
                    rules.append(Rule(kind, event, row_name(guard, n), source, n + 1,
                                      SIDES if row.then is not None else ("pass",)))
                    if row.then is not None:
                        rules.extend(_branches(row.then, kind, event, source, n + 1))
    return tuple(rules)


def _branches(guard: GuardBase, kind: str, event: str, source: str | None, row: int | None,
              prefix: str = "") -> list[Rule]:
    """The branches of a combinator (and of the combinators among them), each a rule named by its path."""
    parts = [guard.rule] if isinstance(guard, NotGuard) else \
        list(guard.guards) if isinstance(guard, AllOfGuard | AnyOfGuard) else []
    rules: list[Rule] = []
    for i, part in enumerate(parts, 1):
        path = f"{prefix}{i}"
        rules.append(Rule(kind, event, part.id or part.guard_name(), source, row, branch=path))
        rules.extend(_branches(part, kind, event, source, row, f"{path}."))
    return rules


def coverage(policy: PolicySet, results: Iterable[ScenarioResult]) -> Coverage:
    """Which sides of ``policy``'s rules the decisions of ``results`` exercised, and which none did."""
    seen: set[tuple[tuple[Any, ...], str]] = set()
    for r in results:
        if r.decision is None:
            continue
        for v in r.decision.verdicts:
            row = v.details.get("table_row")
            seen.add(((v.source, v.guard, row), "pass" if v.passed else "fail"))
            outcomes = v.details.get(OUTCOMES)
            if isinstance(outcomes, dict):
                seen.update((("branch", v.source, row, path), "pass" if held else "fail")
                            for path, held in outcomes.items())
    rules = policy_rules(policy)
    return Coverage(rules, tuple((rule, side) for rule in rules for side in rule.sides
                                 if (rule.key(), side) not in seen))
