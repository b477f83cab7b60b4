"""Policy test suites: named scenarios in YAML, judged without a database exactly as the engine judges.

See ``policies.test.yaml`` for the format; ``casework policy test`` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from casework import facts as F
from casework import intake
from casework.decide import decide
from casework.domain import Actor, Case, Decision
from casework.errors import InvalidInput, PolicyError, PolicyProblem
from casework.machines import KINDS, spec
from casework.messages import language, messages_for
from casework.policies.expectations import expected_rules_and_messages, met, unmet
from casework.policies.explanation import hypothetical_case
from casework.policies.guard_kinds import known_codes
from casework.policies.loader import SourceMap, read_document
from casework.policies.policyset import PolicySet
from casework.values import did_you_mean

Loc = tuple[str | int, ...]


# ---- policy tests --------------------------------------------------------------------------------
_RELATIVE = re.compile(r"^([+-])([0-9]+)\s*(m|min|h|d|w)$")
_UNIT = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SCENARIO_KEYS = ("name", "kind", "state", "facts", "actor", "role", "event", "data", "responded", "now",
                  "expect", "description")
_EXPECT_KEYS = ("allowed", "codes", "rules", "messages", "first_response_due", "service_open")
_DECIDING = ("allowed", "codes", "rules", "messages")  # expectations on the decision


@dataclass(frozen=True)
class Scenario:
    """One named policy test: a case of ``kind`` in ``state`` with ``facts``; ``actor`` fires ``event``.

    ``expect`` holds any of ``allowed``, ``codes``, ``first_response_due`` (of a case opened at ``now``)
    and ``service_open`` (at ``now``). Relative values (``-20d``, ``+24h``) count from ``now``.
    """

    name: str
    kind: str | None
    event: str | None
    actor: Actor
    state: str | None
    facts: Mapping[str, Any]
    data: Mapping[str, Any]
    expect: Mapping[str, Any]
    source: str
    now: datetime | None = None
    responded: bool | None = None


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    passed: bool
    source: str
    expected: Mapping[str, Any]
    actual: Mapping[str, Any]
    explanation: tuple[str, ...] = ()
    decision: Decision | None = None
    error: str | None = None

    @property
    def expected_allowed(self) -> bool | None:
        return self.expected.get("allowed")

    @property
    def expected_codes(self) -> list[str] | None:
        return self.expected.get("codes")

    @property
    def actual_allowed(self) -> bool | None:
        return self.actual.get("allowed")

    @property
    def actual_codes(self) -> list[str] | None:
        return self.actual.get("codes")

    @property
    def summary(self) -> str:
        """``expected refused [window_expired], got allowed`` (empty when passed), then each failed expectation
        on rules or messages: which, expected and actual."""
        if self.passed:
            return ""
        if self.error:
            return f"error: {self.error}"
        missed = unmet(self.expected, self.actual)
        got = _show({k: v for k, v in self.actual.items() if k in self.expected})
        if _show(self.expected) != got or not missed:
            missed.insert(0, f"expected {_show(self.expected)}, got {got}")
        return "; ".join(missed)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "source": self.source, "expected": dict(self.expected),
                "actual": dict(self.actual), "summary": self.summary, "explanation": list(self.explanation),
                "error": self.error, "decision": self.decision.to_json() if self.decision else None}


def _show(side: Mapping[str, Any]) -> str:
    parts = []
    if "allowed" in side:
        codes = side.get("codes") or []
        parts.append(("allowed" if side["allowed"] else "refused") + (f" [{', '.join(codes)}]" if codes else ""))
    parts += [f"{k} {side[k]}" for k in ("first_response_due", "service_open") if k in side]
    return "; ".join(parts)


def load_policy_tests(path: str | Path, text: str | None = None, codes: Iterable[str] = ()) -> list[Scenario]:
    """Read a policy test file; raise PolicyError listing every malformed part as FILE:LINE:COL.

    ``codes``: the reason codes of the policy's own (``codes:``) that expectations may name too."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError([PolicyProblem(name, 1, 1, f"cannot read policy test file: {exc}")]) from None
    try:
        data, smap = read_document(text, name)
    except PolicyError as exc:
        raise PolicyError([p if "malformed" in p.message or "duplicate" in p.message else PolicyProblem(
            p.file, p.line, p.column, "a policy test file is a mapping with now: and scenarios: [...]")
            for p in exc.problems]) from None
    problems: list[PolicyProblem] = []

    def bad(loc: Loc, message: str, key: bool = False) -> None:
        problems.append(PolicyProblem(name, *smap.locate(loc, key=key), message))

    for key in data:
        if key not in ("now", "scenarios"):
            bad((key,), f"unknown key {key!r}{did_you_mean(str(key), ['now', 'scenarios'])}; "
                        "expected now, scenarios", key=True)
    now = _instant(data.get("now"), ("now",), bad)
    items = data.get("scenarios")
    if not isinstance(items, list) or not items:
        bad(("scenarios",), "scenarios: expected a non-empty list of scenarios")
        items = []
    scenarios: list[Scenario] = []
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        sc = _scenario(item, ("scenarios", i), now, smap, bad, sorted({*known_codes(), *codes}))
        if sc is not None:
            if sc.name in names:
                bad(("scenarios", i, "name"), f"scenario name {sc.name!r} is also used at {names[sc.name]}")
            names.setdefault(sc.name, sc.source)
            scenarios.append(sc)
    if problems:
        raise PolicyError(problems)
    return scenarios


def _instant(value: Any, loc: Loc, bad: Any) -> datetime | None:
    if value is None:
        return None
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        bad(loc, f"{loc[-1]}: {value!r} is not a date and time with a zone, like \"2026-11-22T10:00:00+08:00\"")
        return None
    return at


def _scenario(item: Any, loc: Loc, now: datetime | None, smap: SourceMap, bad: Any, known: list[str]
              ) -> Scenario | None:
    if not isinstance(item, dict):
        bad(loc, "a scenario is a mapping with name, kind, facts, actor, event and expect")
        return None
    for key in item:
        if key not in _SCENARIO_KEYS:
            bad((*loc, key), f"unknown scenario key {key!r}{did_you_mean(str(key), _SCENARIO_KEYS)}; "
                             f"expected one of: {', '.join(_SCENARIO_KEYS)}", key=True)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        bad((*loc, "name"), "every scenario needs a name")
        name = f"scenario {loc[-1]}"
    expect = item.get("expect")
    if not isinstance(expect, dict) or not expect:
        bad((*loc, "expect"), f"{name}: expect: needs allowed and/or codes, first_response_due or service_open")
        expect = {}
    for key in expect:
        if key not in _EXPECT_KEYS:
            bad((*loc, "expect", key), f"unknown expect key {key!r}{did_you_mean(str(key), _EXPECT_KEYS)}; "
                                       f"expected one of: {', '.join(_EXPECT_KEYS)}", key=True)
    decides = any(k in expect for k in _DECIDING)
    expect = expected_rules_and_messages(expect, loc, name, bad)
    kind, event, state = item.get("kind"), item.get("event"), item.get("state")
    if kind is not None or decides or "first_response_due" in expect:
        if kind not in KINDS:
            what = "needs a kind" if kind is None else f"unknown case kind {kind!r}{did_you_mean(str(kind), KINDS)}"
            bad((*loc, "kind"), f"{name}: {what}; kinds: {', '.join(KINDS)}")
            return None
        ks = spec(str(kind))
        if decides and event not in ks.events:
            bad((*loc, "event"), f"{name}: unknown {kind} event {event!r}{did_you_mean(str(event), ks.events)}; "
                                 f"{kind} events: {', '.join(ks.events)}")
        if state is not None and state not in ks.states:
            bad((*loc, "state"), f"{name}: unknown {kind} state {state!r}{did_you_mean(str(state), ks.states)}; "
                                 f"{kind} states: {', '.join(ks.states)}")
    codes = expect.get("codes")
    if codes is not None:
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            bad((*loc, "expect", "codes"), f"{name}: codes: expected a list of reason codes")
            codes = []
        for j, c in enumerate(codes):
            if c not in known:
                bad((*loc, "expect", "codes", j), f"{name}: unknown reason code {c!r}{did_you_mean(c, known)}; "
                                                  f"codes: {', '.join(known)}")
        codes = sorted(set(codes))
        expect = {**expect, "codes": codes}
    if "service_open" in expect and not isinstance(expect["service_open"], bool):
        bad((*loc, "expect", "service_open"), f"{name}: service_open: expected true or false")
    if "allowed" in expect and not isinstance(expect["allowed"], bool):
        bad((*loc, "expect", "allowed"), f"{name}: allowed: expected true or false")
    elif decides:
        said = "rules" in expect or "messages" in expect  # (refused by these rules, telling this)
        allowed = expect.get("allowed", not codes and not said)
        if allowed and (codes or said):
            bad((*loc, "expect", "codes" if codes else "rules" if "rules" in expect else "messages"),
                f"{name}: an allowed event has no reason codes, refusing rules or messages")
        expect = {**expect, "allowed": allowed} if said and codes is None else \
            {**expect, "allowed": allowed, "codes": codes or []}
    actor = _actor(item, loc, name, decides, bad)
    facts, data = item.get("facts", {}), item.get("data", {})
    for key, value in (("facts", facts), ("data", data)):
        if not isinstance(value, dict):
            bad((*loc, key), f"{name}: {key}: expected a mapping of fact names to values")
        else:
            try:  # the shape of every value, judged now; relative dates are resolved when the test runs
                F.normalize(_resolve(value, datetime.now(UTC), UTC))
            except InvalidInput as exc:
                bad((*loc, key, exc.field) if exc.field in value else (*loc, key), f"{name}: {exc}")
    responded = item.get("responded")
    if responded is not None and not isinstance(responded, bool):
        bad((*loc, "responded"), f"{name}: responded: expected true or false")
    at = _instant(item.get("now"), (*loc, "now"), bad) or now
    return Scenario(name=name, kind=kind, event=event, actor=actor, state=state,
                    facts=facts if isinstance(facts, dict) else {}, data=data if isinstance(data, dict) else {},
                    expect=expect, source=smap.at(loc), now=at, responded=responded)


def _actor(item: dict[str, Any], loc: Loc, name: str, needed: bool, bad: Any) -> Actor:
    actor, role = item.get("actor"), item.get("role")
    if isinstance(actor, dict):
        unknown = [k for k in actor if k not in ("id", "role")]
        if unknown or not isinstance(actor.get("role"), str):
            bad((*loc, "actor"), f"{name}: actor: expected {{id: ..., role: ...}}")
            return Actor("nobody", "nobody")
        return Actor(str(actor.get("id") or f"test-{actor['role']}"), actor["role"])
    if actor is not None or (role is not None and not isinstance(role, str)):
        bad((*loc, "actor" if actor is not None else "role"), f"{name}: expected actor: {{id, role}} or role: ROLE")
    elif role is None and needed:
        bad(loc, f"{name}: who fires the event? give actor: {{id, role}} or role: ROLE")
    return Actor(f"test-{role}", str(role)) if isinstance(role, str) else Actor("nobody", "nobody")


def _resolve(values: Mapping[str, Any], now: datetime, tz: Any) -> dict[str, Any]:
    """``-20d`` is the calendar date 20 days before ``now`` (policy time zone); ``+3h`` an instant."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        m = _RELATIVE.match(value.strip()) if isinstance(value, str) else None
        if m is not None:
            delta = timedelta(seconds=int(m.group(2)) * _UNIT[m.group(3)]) * (1 if m.group(1) == "+" else -1)
            local = now.astimezone(tz)
            value = (local.date() + delta).isoformat() if m.group(3) in "dw" else (local + delta).isoformat()
        out[key] = value
    return out


def _scenario_case(policy: PolicySet, sc: Scenario, at: datetime) -> Case:
    """The case a scenario describes: opened at ``at`` with its facts, in its state (responded or not)."""
    assert sc.kind is not None
    return hypothetical_case(policy, sc.kind, _resolve(sc.facts, at, policy.tz), sc.actor, at, sc.state,
                             sc.responded, number="(scenario)")


def run_scenario(policy: PolicySet, sc: Scenario, now: datetime | None = None) -> ScenarioResult:
    """Judge one scenario against ``policy``; ``now`` overrides the file's (else the real time)."""
    at = now or sc.now or datetime.now(UTC)
    expected = {k: sc.expect[k] for k in _EXPECT_KEYS if k in sc.expect}
    actual: dict[str, Any] = {}
    decision: Decision | None = None
    try:
        if "service_open" in expected:
            actual["service_open"] = policy.calendar.is_open(at)
        if "first_response_due" in expected:
            assert sc.kind is not None
            due = _resolve({"due": expected["first_response_due"]}, at, policy.tz)["due"]
            expected["first_response_due"] = datetime.fromisoformat(str(due)).astimezone(policy.tz).isoformat()
            actual["first_response_due"] = policy.first_response_due(sc.kind, at).astimezone(policy.tz).isoformat()
        if "allowed" in expected:
            assert sc.kind is not None and sc.event is not None
            decision = decide(policy, _scenario_case(policy, sc, at), sc.event, sc.actor,
                              intake.event_data(policy, sc.kind, sc.event, _resolve(sc.data, at, policy.tz), sc.actor),
                              at)
            actual.update(allowed=decision.allowed, codes=sorted(set(decision.codes)))
            if "rules" in expected:
                actual["rules"] = sorted({v.guard for v in decision.reasons})
            if "messages" in expected:
                actual["messages"] = {audience: {lang: messages_for(policy, decision, audience, language(policy, lang))
                                                 for lang in by_lang}
                                      for audience, by_lang in expected["messages"].items()}
    except (InvalidInput, ValueError) as exc:
        return ScenarioResult(sc.name, False, sc.source, expected, actual, (f"{sc.source}: {exc}",), None, str(exc))
    passed = all(met(key, want, actual) for key, want in expected.items())
    lines: list[str] = []
    if not passed and decision is not None:
        shown = decision.reasons or [v for v in decision.verdicts if v.guard not in ("roles", "owner")]
        lines = [f"{'refused' if not v.passed else 'passed'} {v.code} by {v.guard}: {v.message}"
                 + (f" ({v.source})" if v.source else "") for v in shown]
    return ScenarioResult(sc.name, passed, sc.source, expected, actual, tuple(lines), decision)


def run_policy_tests(policy: PolicySet, scenarios: Iterable[Scenario],
                     now: datetime | None = None) -> list[ScenarioResult]:
    """Run every scenario against ``policy`` (no database); one result per scenario, in order."""
    return [run_scenario(policy, sc, now) for sc in scenarios]


def failures(results: Sequence[ScenarioResult]) -> list[ScenarioResult]:
    return [r for r in results if not r.passed]


@dataclass(frozen=True)
class PolicyTestRun:
    """Policy test suites run against one policy: every result in order, and which failed."""

    policy: PolicySet
    results: list[ScenarioResult]

    @property
    def failed(self) -> list[ScenarioResult]:
        return failures(self.results)

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy.ref.to_json(), "passed": len(self.results) - len(self.failed),
                "failed": len(self.failed), "results": [r.to_json() for r in self.results]}


def run_policy_test_files(policy: PolicySet, paths: Iterable[str | Path]) -> PolicyTestRun:
    """Load every suite at ``paths`` (a bad one raises PolicyError before any scenario runs), then run
    them all against ``policy``."""
    suites = [load_policy_tests(path, codes=policy.document.codes) for path in paths]
    return PolicyTestRun(policy, [result for suite in suites for result in run_policy_tests(policy, suite)])
