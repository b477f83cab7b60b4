"""Tools for policy authors: check a policy file, describe its format as JSON Schema, run policy tests.

>>> report = check_policy(default_policy_path())
>>> report.ok(strict=True)
True

Policy tests are YAML files of named scenarios (see ``policies.test.yaml``); they are judged without a
database, exactly as the engine judges an event: machine availability, roles, every guard, case owner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casework import facts as F
from casework.errors import PolicyError, PolicyProblem
from casework.machines import KINDS
from casework.policies.expressions import Expression
from casework.policies.files import read_policy_text
from casework.policies.guard_base import Condition, GuardBase
from casework.policies.guard_kinds import known_codes
from casework.policies.guards import (
    AmountWithinGuard,
    ApprovalLimitGuard,
    ConditionGuard,
    FraudCounterGuard,
    WindowGuard,
)
from casework.policies.loader import SourceMap, read_document
from casework.policies.nesting import Inner, walk
from casework.policies.policyset import PolicySet, parse_policy
from casework.policies.scenarios import (  # policy test suites live there; re-exported for callers of this module
    PolicyTestRun,
    Scenario,
    ScenarioResult,
    failures,
    load_policy_tests,
    run_policy_test_files,
    run_policy_tests,
    run_scenario,
)
from casework.policies.schema import PolicyDocument
from casework.policies.tables import RULE_DEF, completed_schemas
from casework.values import did_you_mean, format_duration

Loc = tuple[str | int, ...]


# ---- policy check --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckReport:
    """What ``policy check`` found: errors (the file cannot be used) and warnings (it can, but look)."""

    name: str
    errors: list[PolicyProblem]
    warnings: list[PolicyProblem]
    policy: PolicySet | None = None

    def ok(self, strict: bool = False) -> bool:
        """No errors (and, when ``strict``, no warnings either)."""
        return not self.errors and not (strict and self.warnings)

    @property
    def problems(self) -> list[PolicyProblem]:
        return sorted([*self.errors, *self.warnings], key=lambda p: (p.file, p.line, p.column))

    def summary(self, strict: bool = False) -> str:
        """One line for a file that is not usable: how many errors (and warnings, when ``strict``), and the first."""
        what = f"{len(self.errors)} error(s)" + (f", {len(self.warnings)} warning(s)" if strict else "")
        return f"{self.name}: {what}; first: {self.errors[0] if self.errors else self.warnings[0]}"

    def to_json(self, strict: bool = False) -> dict[str, Any]:
        def one(p: PolicyProblem) -> dict[str, Any]:
            return {"file": p.file, "line": p.line, "column": p.column, "severity": p.severity,
                    "message": p.message, "text": str(p)}
        return {"file": self.name, "ok": self.ok(strict), "strict": strict,
                "policy": self.policy.ref.to_json() if self.policy else None,
                "errors": [one(p) for p in self.errors], "warnings": [one(p) for p in self.warnings]}


def check_policy(source: str | Path, name: str | None = None) -> CheckReport:
    """Validate a policy given as a file path (a ``Path``, or a one-line ``str``) or as YAML text.

    A ``str`` holding a newline (or starting with ``{``) is policy text; ``name`` is the file name
    reported in ``FILE:LINE:COL`` (default: the path, or ``policies.yaml`` for text).
    """
    is_text = isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{"))
    label = name or ("policies.yaml" if is_text else str(source))
    try:
        text = str(source) if is_text else read_policy_text(source)
        policy = parse_policy(text, label)
    except PolicyError as exc:
        return CheckReport(label, list(exc.problems), [])
    seen: dict[str, PolicyProblem] = {}
    for p in [*policy.warnings, *lint_policy(policy)]:
        seen.setdefault(str(p), p)
    warnings = sorted(seen.values(), key=lambda p: (p.line, p.column))
    return CheckReport(label, [], warnings, policy)


def lint_policy(policy: PolicySet) -> list[PolicyProblem]:
    """Rules that load but cannot work as written: contradictions, unreachable parts, dead settings."""
    _, smap = read_document(policy.source, policy.name)
    doc, book = policy.document, policy.roles
    out: list[PolicyProblem] = []

    def warn(loc: Loc, message: str) -> None:
        out.append(PolicyProblem(policy.name, *smap.locate(loc), message, "warning"))

    ids: dict[str, str] = {}
    for kind, kp in doc.kinds.items():
        for event, ep in kp.events.items():
            loc: Loc = ("kinds", kind, "events", event)
            firing = [r for r in doc.roles if any(book.acts_as(r, a) for a in ep.roles)]
            windows: list[Inner] = []
            for i, top in enumerate(ep.guards):
                for inner in walk(top, (*loc, "guards", i)):  # combinators' branches and table rows too
                    g, gloc, gname = inner.guard, inner.loc, inner.name
                    if g is None:
                        continue
                    if g.id is not None:
                        if g.id in ids:
                            warn((*gloc, "id"), f"guard id {g.id!r} is also used at {ids[g.id]}; "
                                                "explanations will not tell them apart")
                        ids.setdefault(g.id, smap.at(gloc))
                    when = g.when if isinstance(g.when, Condition) else None  # (an expression: checked apart)
                    roles = [r for r in firing if when is None or when.role is None
                             or any(book.acts_as(r, w) for w in when.role)]
                    if when is not None:
                        empty = [k for k, v in when.model_dump().items() if v == []]
                        if empty:
                            warn((*gloc, "when", empty[0]), f"{gname}: when.{empty[0]} is an empty list, "
                                                            "so this guard never applies")
                        elif not roles:
                            warn((*gloc, "when", "role"), f"{gname}: no role that may fire {kind}.{event} "
                                                          "matches when.role, so this guard never applies")
                    _lint_guard(g, gname, gloc, kind, event, roles, policy, warn)
                    if isinstance(g, WindowGuard):
                        windows.append(inner)
            _lint_windows(kind, event, windows, policy, smap, warn)
    hours = doc.service.hours
    if hours is not None and hours.open == hours.close:
        warn(("service", "hours"), "service hours open and close at the same time; omit hours for 24/7")
    return out


def _lint_guard(g: GuardBase, gname: str, gloc: Loc, kind: str, event: str, roles: list[str],
                policy: PolicySet, warn: Any) -> None:
    vocab = policy.document.vocabulary
    if isinstance(g, WindowGuard):
        if g.since not in F.DATE_FACTS:
            warn((*gloc, "since"), f"{gname}: since {g.since!r} is not a date fact "
                                   f"({', '.join(sorted(F.DATE_FACTS))}); cases will rarely carry it")
        if isinstance(g.when, Condition) and g.when.reason is not None:
            for r in g.by_reason:
                if r not in g.when.reason:
                    warn((*gloc, "by_reason", r), f"{gname}: by_reason {r!r} never applies, the guard "
                                                  f"only applies to reason {', '.join(g.when.reason)}")
        for c in g.by_category:
            if c not in vocab.categories:
                warn((*gloc, "by_category", c), f"{gname}: category {c!r} is not in vocabulary.categories"
                                                f"{did_you_mean(c, vocab.categories)}")
    elif isinstance(g, ApprovalLimitGuard):
        for r in roles:
            if not policy.roles.limit(r)[0]:
                warn(gloc, f"{gname}: role {r} may fire {kind}.{event} but has no approval_limit, so "
                           "this guard always refuses it")
    elif isinstance(g, FraudCounterGuard) and g.unless_role is not None:
        if not any(policy.roles.acts_as(r, g.unless_role) for r in roles):
            warn((*gloc, "unless_role"), f"{gname}: no role that may fire {kind}.{event} acts as "
                                         f"{g.unless_role}, so the exemption is unreachable")
    elif isinstance(g, AmountWithinGuard):
        for key in ("amount", "limit"):
            value = getattr(g, key)
            if value not in F.MONEY_FACTS:
                warn((*gloc, key), f"{gname}: {key} {value!r} is not a money fact "
                                   f"({', '.join(sorted(F.MONEY_FACTS))}){did_you_mean(value, F.MONEY_FACTS)}")
        if g.amount == g.limit:
            warn(gloc, f"{gname}: amount and limit are the same fact, so this guard always passes")
    elif isinstance(g, ConditionGuard) and set(vocab.conditions) <= set(g.allowed):
        warn((*gloc, "allowed"), f"{gname}: every condition is allowed; the guard refuses only an unknown "
                                 "condition")


def _lint_windows(kind: str, event: str, windows: list[Inner], policy: PolicySet,
                  smap: SourceMap, warn: Any) -> None:
    """Two windows on one event for the same reason: only the shorter one can ever decide. A window that is a
    table row applies to the cases its row's cells match (two rows of one table are never both in force)."""
    known = policy.document.kinds[kind].reasons

    def reasons(w: Inner) -> set[str] | None:
        g, cell = w.guard, w.cells.get("reason")
        assert isinstance(g, WindowGuard)
        mine = set(g.when.reason) if isinstance(g.when, Condition) and g.when.reason is not None else None
        if cell is not None and cell.values is not None and known is not None:
            rows = {r for r in known if cell.matches(r)}
            mine = rows if mine is None else mine & rows
        return mine if mine is not None else (set(known) if known is not None else None)

    def disjoint(x: Inner, y: Inner) -> bool:
        a, b = x.guard, y.guard
        assert isinstance(a, WindowGuard) and isinstance(b, WindowGuard)
        if x.row is not None and y.row is not None and x.loc[:-2] == y.loc[:-2]:
            return True  # two rows of one table: one decides a case
        if isinstance(a.when, Expression) or isinstance(b.when, Expression):
            return True  # which cases an expression picks is not known here: no warning
        for key in ("category", "condition", "channel"):
            p = getattr(a.when, key, None) if a.when else None
            q = getattr(b.when, key, None) if b.when else None
            if p is not None and q is not None and not set(p) & set(q):
                return True
        return False

    for n, x in enumerate(windows):
        for y in windows[n + 1:]:
            a, b = x.guard, y.guard
            assert isinstance(a, WindowGuard) and isinstance(b, WindowGuard)
            if a.since != b.since or disjoint(x, y):
                continue
            ra, rb = reasons(x), reasons(y)
            both = sorted(ra & rb) if ra is not None and rb is not None else sorted(ra or rb or {"(any)"})
            if not both:
                continue
            r = both[0]
            wa, wb = (format_duration(g.window_for({"reason": r})) for g in (a, b))
            warn(y.loc, f"window guards {x.name} ({smap.at(x.loc)}) and {y.name} both apply to "
                        f"{kind}.{event} for reason {', '.join(both)} ({wa} vs {wb}); only the shorter "
                        "window can ever decide")


# ---- JSON Schema ---------------------------------------------------------------------------------
DURATION_PATTERN = r"^\s*[0-9]+\s*(m|min|h|d|w)\s*$"
MONEY_PATTERN = r"^[0-9]+(\.[0-9]{1,2})?$"
CLOCK_PATTERN = r"^(([01]?[0-9]|2[0-3]):[0-5][0-9]|24:00)$"
SCHEMA_FILE = "policies.schema.json"


def policy_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of ``policies.yaml``, for editors' completion and inline errors."""
    body = _retype(PolicyDocument.model_json_schema(by_alias=True))
    kinds = body["properties"]["kinds"]
    kinds["additionalProperties"] = False
    kinds["properties"] = {
        k: {"$ref": "#/$defs/KindPolicy", "properties": {
            "events": {"propertyNames": {"enum": list(s.events)}},
            "responses": {"items": {"enum": list(s.events)}}}}
        for k, s in KINDS.items()}
    body["properties"]["messages"]["propertyNames"] = {"enum": known_codes()}
    table = body["$defs"]["TableGuard"]["properties"]
    body["$defs"]["TableRule"], table["rows"]["items"] = completed_schemas(body["$defs"])
    table["rule"] = {"$ref": RULE_DEF}
    body.update({"title": "casework policy", "description": "After-sales rules for casework: roles, service "
                 "hours, and the guards on each event of each case kind. Durations: 30m, 24h, 7d, 2w; "
                 "money: quoted decimal strings."})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}


def schema_text() -> str:
    """The schema as written to ``policies.schema.json``: pretty-printed, sorted keys, final newline."""
    return json.dumps(policy_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _retype(node: Any) -> Any:
    """pydantic describes durations, clock times and money by their Python types; say how they are written."""
    if isinstance(node, list):
        return [_retype(n) for n in node]
    if not isinstance(node, dict):
        return node
    fmt = node.get("format")
    if node.get("type") == "string" and fmt in ("duration", "time"):
        rest = {k: v for k, v in node.items() if k != "format"}
        return {**rest, "pattern": DURATION_PATTERN if fmt == "duration" else CLOCK_PATTERN}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "number"} in options:  # a Decimal: money
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        money = {"type": "string", "pattern": MONEY_PATTERN}
        if {"type": "null"} in options:  # Decimal | None: an approval limit, where None is written "unlimited"
            return {**rest, "anyOf": [money, {"const": "unlimited"}]}
        return {**rest, **money}
    return {k: _retype(v) for k, v in node.items()}


__all__ = [
    "SCHEMA_FILE",
    "CheckReport",
    "PolicyTestRun",
    "Scenario",
    "ScenarioResult",
    "check_policy",
    "failures",
    "known_codes",
    "lint_policy",
    "load_policy_tests",
    "policy_json_schema",
    "run_policy_test_files",
    "run_policy_tests",
    "run_scenario",
    "schema_text",
]
