"""The policy author's views: a policy check, policy test results, a simulation's flips, an adoption."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from casework.terminal import decision_table, new_table, told, when

if TYPE_CHECKING:
    from casework.adoption import AdoptReport
    from casework.domain import Decision
    from casework.policies import PolicySet
    from casework.policies.authoring import CheckReport
    from casework.policies.coverage import Coverage
    from casework.policies.scenarios import ScenarioResult
    from casework.publishing import Citation
    from casework.simulate import SimulationReport


def policy_check(report: CheckReport, strict: bool) -> Iterator[Text]:
    for problem in report.problems:
        yield Text(str(problem), "red" if problem.severity == "error" else "yellow")
    if report.ok(strict) and report.policy is not None:
        yield Text(f"{report.name}: OK — {report.policy.label} ({report.policy.ref.short}), "
                   f"{len(report.warnings)} warning(s)", "green")


def policy_tests(policy: PolicySet, results: Sequence[ScenarioResult]) -> Iterator[RenderableType]:
    for r in results:
        mark = Text("PASS ", "green") if r.passed else Text("FAIL ", "bold red")
        yield Text.assemble(mark, r.name, f"  ({r.source})" if r.source else "")
        if not r.passed:
            yield from (f"     {line}" for line in (r.summary, *r.explanation))
    passed = sum(1 for r in results if r.passed)
    yield f"policy {policy.label} ({policy.ref.short}): {passed} scenarios passed, {len(results) - passed} failed"


def rule_coverage(coverage: Coverage) -> Iterator[RenderableType]:
    """The rules' sides no scenario exercises (a table), after how many of all sides are covered."""
    yield Text(f"rule coverage: {coverage.covered} of {coverage.sides} sides (pass and fail of {len(coverage.rules)} "
               f"rules) exercised", "bold" if coverage.missing else "green")
    if coverage.missing:
        table = new_table("Not exercised by any scenario", "rule", "side", "kind", "event", "where")
        for rule, side in coverage.missing:
            name = rule.rule if rule.row is None else f"{rule.rule} (row {rule.row})"
            if rule.branch is not None:
                name += f" (branch {rule.branch})"
            table.add_row(name, Text(side, "green" if side == "pass" else "red"), rule.kind, rule.event,
                          rule.source or "")
        yield table


def explanation(decision: Decision, said: Sequence[str], cited: Sequence[Citation | None] = (),
                against: str = "the policy") -> Iterator[RenderableType]:
    """``policy explain``: which version judged (``against``: the published version, or a file), every rule's
    verdict (the table ``check`` shows for a stored case, with ``cited`` lines), then what the customer is told."""
    if decision.policy is not None:
        yield Text(f"explained against {against}: {decision.policy.label} ({decision.policy.short})", "bold")
    yield decision_table(f"{decision.kind} in {decision.from_state}", decision, cited)
    yield from told(decision, said, "customer")


def adoption(report: AdoptReport, policy: PolicySet) -> Iterator[Text]:
    yield Text(f"adopted {len(report.adopted)} case(s) to policy {policy.label} ({policy.ref.short})", "green")
    for number, why in report.skipped:
        yield Text(f"skipped {number}: {why}", "yellow")


def simulation(report: SimulationReport, limit: int) -> Iterator[RenderableType]:
    """What a policy would decide differently: a summary, the flips by rule, the first ``limit`` flips."""
    scope = " ".join(x for x in (report.kind, report.state) if x) or "all"
    yield Text(f"policy {report.policy.label} ({report.policy.short}) against {report.cases_checked} open case(s) "
               f"({scope}) at {when(report.now)}: {len(report.flips)} decision(s) flip on {len(report.numbers)} "
               "case(s)", "bold")
    if report.reason_changes:
        yield f"{len(report.reason_changes)} refusal(s) would stay refused for other reasons (see --json)"
    if not report.flips:
        return
    counts = ("flips", "allowed → refused", "refused → allowed")
    table = new_table("Flips by rule")
    for col in ("rule", *counts, "events", "source", "e.g."):
        table.add_column(col, justify="right" if col in counts else "left")
    for g in report.groups():
        table.add_row(Text(g.rule, "bold"), str(g.count), str(g.tightened), str(g.loosened), ", ".join(g.events),
                      g.source or "", ", ".join(g.examples))
    yield table
    if limit > 0:
        yield _flips_table(report, limit)


def _flips_table(report: SimulationReport, limit: int) -> Table:
    table = new_table(f"Flipped decisions (first {min(limit, len(report.flips))} of {len(report.flips)})",
                   "case", "state", "event", "as", "before → after", "rules", "why refused")
    for f in report.flips[:limit]:
        refused = f.after if f.before.allowed else f.before
        table.add_row(f.number, f.state, f.event, f.actor.role,
                      Text(f.direction, "red" if f.before.allowed else "green"), ", ".join(f.rules),
                      "\n".join(f"{r.code}: {r.message}" for r in refused.reasons))
    return table
