"""What an expression costs: CEL (``common-expression-language``) against GoRules ZEN (``zen-engine``).

    python bench/expressions.py [--n 20000]

Compile time and evaluation time of the same three rules in each language, with the inputs each needs
to keep money exact (CEL: whole minor units; ZEN: its own decimal numbers, given as JSON text so no
binary float is involved), and, for CEL, the cost of casework's own evaluation path
(``Expression.run``: reading the facts by their declared types, then executing). Times are medians
over the rounds, per call; the machine is shared, so compare within one run.

Then the same four refund rules written as built-in guards and as expression guards (amount within
what was paid, no fraud flag, fewer than 5 refunds in 30 days, the order record present): ``decide``
on an approve, ``engine.check`` of it on SQLite (the case read, the decision, nothing written) and
``engine.fire`` of it on SQLite (a fresh case each time).

    python bench/expressions.py --instructions [--fires 300]

counts instead the instructions of one ``approve`` fire on SQLite under each policy with ``valgrind
--tool=callgrind`` (stable on a loaded machine, unlike wall time): each policy is run twice, with 1/4 and
with all of ``--fires`` fires, and the difference divided by the extra fires, so the set-up cancels out.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import _common  # noqa: F401  (puts the checkout on sys.path)
import cel
import zen

from casework import Actor, Engine, FixedClock, load_policy, parse_policy
from casework.decide import decide
from casework.policies.expressions import Expression, functions
from casework.transition import opened

RULES = {
    "photo above 500.00": ("amount > money('500.00') && !('photo' in evidence)",
                           "amount > 500.00 and not ('photo' in evidence)"),
    "refund within paid + shipping - deduction": ("amount <= paid + shipping - deduction",
                                                  "amount <= paid + shipping - deduction"),
    "14 days after delivery": ("now - delivered <= duration('336h')",
                               "date(now) - date(delivered) <= 14 * 86400"),
}
FACTS = {"amount": "600.00", "paid": "600.00", "shipping": "12.00", "deduction": "5.00",
         "evidence": [{"type": "order_record", "ref": None}], "delivered": "2026-11-10"}
TYPES = {"amount": "money", "paid": "money", "shipping": "money", "deduction": "money", "evidence": "evidence",
         "delivered": "date"}
NOW = datetime(2026, 11, 22, 2, tzinfo=UTC)


def per_call(fn: Any, n: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    n = ap.parse_args().n
    cel_vars = {"amount": 60000, "paid": 60000, "shipping": 1200, "deduction": 500, "evidence": ["order_record"],
                "delivered": datetime(2026, 11, 9, 16, tzinfo=UTC), "now": NOW, **functions(UTC)}
    zen_json = ('{"amount": 600.00, "paid": 600.00, "shipping": 12.00, "deduction": 5.00, '
                '"evidence": ["order_record"], "delivered": "2026-11-10", "now": "2026-11-22T02:00:00Z"}')
    print(f"{'rule':44} {'CEL compile':>12} {'ZEN compile':>12} {'CEL eval':>10} {'ZEN eval':>10} "
          f"{'casework run':>13}")
    for name, (cel_text, zen_text) in RULES.items():
        cel_compile = per_call(lambda t=cel_text: cel.compile(t), max(n // 10, 100))
        zen_compile = per_call(lambda t=zen_text: zen.compile_expression(t), max(n // 10, 100))
        program, compiled = cel.compile(cel_text), zen.compile_expression(zen_text)
        assert program.execute(cel_vars) == compiled.evaluate(zen_json), name
        cel_eval = per_call(lambda p=program: p.execute(cel_vars), n)
        zen_eval = per_call(lambda c=compiled: c.evaluate(zen_json), n)
        expr = Expression(cel_text)
        run = per_call(lambda e=expr: e.run(FACTS, TYPES, NOW, UTC), n)
        print(f"{name:44} {cel_compile * 1e6:10.1f}µs {zen_compile * 1e6:10.1f}µs {cel_eval * 1e6:8.2f}µs "
              f"{zen_eval * 1e6:8.2f}µs {run * 1e6:11.2f}µs")
    return n


BUILT_IN = """\
          - {guard: amount_within, id: r1, amount: amount, limit: paid, positive: true}
          - {guard: fraud_flag, id: r2, flags: [fraud_confirmed]}
          - {guard: fraud_counter, id: r3, counter: refunds_last_30_days, at_least: 5}
          - {guard: evidence, id: r4, all_of: [order_record]}
"""
EXPRESSED = """\
          - {guard: expr, id: r1, expr: "amount > money('0.00') && amount <= paid", code: amount_exceeds_paid}
          - {guard: expr, id: r2, expr: "!('fraud_confirmed' in flags)", code: fraud_flagged}
          - {guard: expr, id: r3, expr: "refunds_last_30_days < 5", code: fraud_flagged}
          - {guard: expr, id: r4, expr: "'order_record' in evidence", code: evidence_missing}
"""


def rule_policies() -> dict[str, Any]:
    """The default policy with the refund's approve judged by the four rules, as built-in guards and as expressions."""
    source = load_policy().source
    start = source.index("          - guard: amount_within        # the refund cannot exceed what was paid")
    end = source.index("      reject: {roles: [agent]}", start)
    return {name: parse_policy(source[:start] + rules + source[end:], f"{name}.yaml")
            for name, rules in (("built-in", BUILT_IN), ("expressions", EXPRESSED))}


# (opened by an agent: a customer may not give the counter and the flags)
FACTS4 = {"order_id": "SO-1", "amount": "59.00", "paid": "59.00", "customer": "c-1", "flags": ["vip"],
          "refunds_last_30_days": 1, "evidence": ["order_record"]}
AGENT = Actor("alice", "agent")


def four_rules(n: int) -> None:
    times = {}
    for name, policy in rule_policies().items():
        case = opened("RF-20261122-000001", "refund", {**FACTS4, "evidence": [{"type": "order_record", "ref": None}]},
                      policy, NOW)
        assert decide(policy, case, "approve", AGENT, {}, NOW).allowed
        times[name, "decide"] = per_call(lambda p=policy, c=case: decide(p, c, "approve", AGENT, {}, NOW), n)
        with tempfile.TemporaryDirectory() as tmp, Engine(f"sqlite:///{tmp}/c.db", policies=policy,
                                                          clock=FixedClock(NOW)) as engine:
            number = engine.open("refund", FACTS4, actor=AGENT).number
            times[name, "check"] = per_call(lambda e=engine, k=number: e.check(k, "approve", actor=AGENT), n // 4)
            numbers = iter(engine.open_many([{"kind": "refund", "facts": FACTS4}] * (n // 2 * 5),
                                            actor=AGENT).numbers)
            times[name, "fire"] = per_call(lambda e=engine, s=numbers: e.fire(next(s), "approve", actor=AGENT),
                                           n // 2)
    print("\nfour refund rules on approve     built-in    expressions   ratio")
    for what in ("decide", "check", "fire"):
        b, e = times["built-in", what], times["expressions", what]
        print(f"  {what:30} {b * 1e6:8.1f}µs {e * 1e6:10.1f}µs {e / b:8.2f}x")


def fire_only(name: str, fires: int) -> None:
    """(Run under callgrind by --instructions.) ``fires`` approve fires on SQLite under the named policy."""
    policy = rule_policies()[name]
    with tempfile.TemporaryDirectory() as tmp, Engine(f"sqlite:///{tmp}/c.db", policies=policy,
                                                      clock=FixedClock(NOW)) as engine:
        numbers = engine.open_many([{"kind": "refund", "facts": FACTS4}] * fires,
                                   actor=AGENT).numbers
        for number in numbers:
            engine.fire(number, "approve", actor=AGENT)


def instructions(name: str, fires: int) -> int:
    """Instructions (callgrind's Ir) of the whole run of :func:`fire_only`."""
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable,
                              __file__, "--fire-only", name, "--fires", str(fires)],
                             capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    assert found is not None, run.stderr[-2000:]
    return int(found[1])


def count_instructions(fires: int) -> None:
    few = fires // 4
    per = {}
    for name in ("built-in", "expressions"):
        per[name] = (instructions(name, fires) - instructions(name, few)) / (fires - few)
    b, e = per["built-in"], per["expressions"]
    print(f"instructions per approve fire on SQLite ({fires - few} fires, set-up subtracted): built-in "
          f"{b / 1000:,.0f}k, four expression guards {e / 1000:,.0f}k: {e / b:.3f}x")


if __name__ == "__main__":
    if "--fire-only" in sys.argv or "--instructions" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--fire-only")
        ap.add_argument("--instructions", action="store_true")
        ap.add_argument("--fires", type=int, default=300)
        args = ap.parse_args()
        fire_only(args.fire_only, args.fires) if args.fire_only else count_instructions(args.fires)
    else:
        four_rules(main())
