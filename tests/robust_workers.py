"""Worker functions for tests/test_robustness.py, run in separate processes.

The tests start them from a ``multiprocessing`` *forkserver* that has imported this module (and so
casework, SQLAlchemy and the database drivers) once: every worker is a fresh single-threaded process
with no inherited database connection, started in milliseconds instead of a second of imports.

* ``fire_worker`` makes its own Engine, waits on a barrier with its siblings, fires a burst of events
  against shared cases, and reports its counts.
* ``writer`` is the crash-test writer: it prepares its Engine, sets ``ready``, waits for ``go``, then
  fires up to 5,000 events in a loop (applied transitions, refused attempts, idempotent fires and new
  cases) until it is killed.
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from typing import Any

import sqlalchemy

import casework.engine
import casework.policies
import casework.store  # noqa: F401

try:
    import psycopg  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
except ImportError:  # pragma: no cover - the SQLite tests need no driver
    pass

EVIDENCE = {"evidence": ["photo=p.jpg"]}


def refund_facts(i: int) -> dict[str, Any]:
    return {"order_id": f"SO-{i:05d}", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"}


def cycle_event(state: str, rng: random.Random) -> tuple[str, dict[str, Any] | None]:
    """An event that keeps a refund case cycling between submitted/under_review/awaiting_evidence."""
    if state == "awaiting_evidence":
        return "provide_evidence", EVIDENCE
    if rng.random() < 0.5:
        return "request_evidence", None
    return "provide_evidence", EVIDENCE


def fire_worker(url: str, numbers: list[str], fires: int, seed: int, barrier: Any, results: Any) -> None:
    """Fire ``fires`` events at random cases among ``numbers``; put the counts on ``results``."""
    report: dict[str, Any] = {"seed": seed, "ok": 0, "concurrent": 0, "denied": 0, "denied_codes": {},
                              "per_case_ok": {n: 0 for n in numbers}, "other": []}
    try:
        from casework import Actor, ConcurrentUpdate, Engine, TransitionDenied

        rng = random.Random(seed)
        agent = Actor(f"agent-{seed}", "agent")
        engine = Engine(url)
        engine.policy  # noqa: B018  (load and store the policy before the race starts)
        barrier.wait(timeout=120)
        started = time.perf_counter()
        for _ in range(fires):
            number = rng.choice(numbers)
            try:
                state = engine.get(number).state  # a possibly stale view: the fire re-reads
                event, data = cycle_event(state, rng)
                engine.fire(number, event, actor=agent, data=data, retries=2)
                report["ok"] += 1
                report["per_case_ok"][number] += 1
            except ConcurrentUpdate:
                report["concurrent"] += 1
            except TransitionDenied as denied:
                report["denied"] += 1
                for code in denied.decision.codes:
                    report["denied_codes"][code] = report["denied_codes"].get(code, 0) + 1
            except Exception as exc:  # anything else is a finding: report it, keep going
                report["other"].append(f"{type(exc).__name__}: {exc}")
        report["seconds"] = time.perf_counter() - started
        engine.close()
    except Exception:
        report["other"].append(traceback.format_exc())
    results.put(report)


def writer(db: str, seed: int, ready: Any, go: Any, fires: int = 5000) -> None:
    """The crash-test writer (see the module docstring); exits 0 after ``fires`` fires, 3 on a surprise."""
    from casework import Actor, CaseworkError, Engine, TransitionDenied

    rng = random.Random(seed)
    engine = Engine(db)
    engine.policy  # noqa: B018
    customer, agent = Actor("cust-1", "customer"), Actor(f"writer-{seed}", "agent")
    ready.set()
    if not go.wait(timeout=120):
        sys.exit(4)
    numbers = [c.number for c in engine.find(kind="refund", limit=None)]
    if not numbers:
        numbers = [engine.open("refund", refund_facts(i), actor=customer).number for i in range(10)]
    for i in range(fires):
        roll = rng.random()
        try:
            if roll < 0.04:  # a new case, sometimes with an idempotency key
                key = f"open-{seed}-{i}" if rng.random() < 0.5 else None
                numbers.append(engine.open("refund", refund_facts(i), actor=customer, key=key).number)
                continue
            number = rng.choice(numbers)
            if roll < 0.12:  # a refused attempt: a customer may not approve
                engine.fire(number, "approve", actor=customer)
            elif roll < 0.20:  # an idempotent fire, repeated
                state = engine.get(number).state
                event, data = cycle_event(state, rng)
                key = f"fire-{seed}-{i}"
                engine.fire(number, event, actor=agent, data=data, key=key)
                engine.fire(number, event, actor=agent, data=data, key=key)
            else:
                state = engine.get(number).state
                event, data = cycle_event(state, rng)
                engine.fire(number, event, actor=agent, data=data)
        except TransitionDenied:
            pass
        except CaseworkError as exc:
            print(f"unexpected {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            sys.exit(3)
    engine.close()

