"""Robustness under concurrency, crashes, tampering, unpermitted roles and repeated keys (issue 6).

Every test here prints its figures (visible with ``pytest -s``) and records them with
``record_property``. The PostgreSQL halves use their own database, ``casework_robust``, on the
server of ``CASEWORK_TEST_PG`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) —
or, when the role may not create databases, a ``casework_robust`` schema in that database — so they
never collide with the other PostgreSQL tests. They are skipped when no server answers, except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import robust_workers
import sqlalchemy as sa

from casework import (
    KINDS,
    Actor,
    Case,
    CaseworkError,
    Engine,
    FixedClock,
    TransitionDenied,
    load_policy,
)

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROBUST_DB = f"casework_robust_{os.getpid()}"  # per test run: two runs at once must not collide

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("sam", "supervisor")
SYSTEM = Actor("system", "system")


def report(record_property: Callable[[str, Any], None], name: str, figures: dict[str, Any]) -> None:
    """Print the figures of a test (``pytest -s``) and attach them to the test's report."""
    print(f"\n[robustness] {name}: " + json.dumps(figures, sort_keys=True, default=str))
    record_property(name, json.dumps(figures, sort_keys=True, default=str))


# ---- PostgreSQL: a database (or schema) of our own ------------------------------------------------
_pg_cache: dict[str, tuple[str | None, str | None]] = {}


def _pg_prepare() -> tuple[str | None, str | None]:
    """``(url of our own database or schema, None)``, or ``(None, why not)``; worked out once."""
    base = os.environ.get("CASEWORK_TEST_PG") or DEFAULT_PG_URL
    if base in _pg_cache:
        return _pg_cache[base]
    u = sa.engine.make_url(base)
    probe = sa.create_engine(base, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 3})
    try:
        with probe.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            try:
                if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                {"d": ROBUST_DB}).first() is None:
                    conn.execute(sa.text(f"CREATE DATABASE {ROBUST_DB}"))
                    atexit.register(_pg_drop, base)
                result: tuple[str | None, str | None] = (
                    u.set(database=ROBUST_DB).render_as_string(hide_password=False), None)
            except sa.exc.DBAPIError as exc:
                if "already exists" in str(exc):  # created by someone else just now
                    result = (u.set(database=ROBUST_DB).render_as_string(hide_password=False), None)
                else:  # no CREATEDB privilege: a schema of our own in the given database
                    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {ROBUST_DB}"))
                    query = dict(u.query)
                    query["options"] = f"-csearch_path={ROBUST_DB}"
                    result = (u.set(query=query).render_as_string(hide_password=False), None)
    except Exception as exc:
        text = str(getattr(exc, "orig", None) or exc).strip()
        result = (None, f"PostgreSQL not reachable at {u.host or 'localhost'}:{u.port or 5432}: "
                        f"{(text.splitlines() or [type(exc).__name__])[0]}")
    finally:
        probe.dispose()
    _pg_cache[base] = result
    return result


def _pg_drop(base: str) -> None:
    """Drop this run's database (at exit: the workers are gone by then)."""
    eng = sa.create_engine(base, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {ROBUST_DB} WITH (FORCE)"))
    except sa.exc.DBAPIError:
        pass  # best effort: a leftover database is harmless, and the next run of this pid reuses it
    finally:
        eng.dispose()


def _pg_reset(url: str) -> None:
    """Drop everything in our database (or schema): casework tables, migration tables, triggers."""
    u = sa.engine.make_url(url)
    schema = ROBUST_DB if "options" in u.query else "public"
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    finally:
        eng.dispose()


def robust_pg_url() -> str:
    """An empty PostgreSQL database of our own; skip (fail under CI=true) when there is no server."""
    url, problem = _pg_prepare()
    if url is None:
        assert problem is not None
        if os.environ.get("CI") == "true":
            pytest.fail(problem + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(problem)
    _pg_reset(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for the parametrised backend (PostgreSQL: ``casework_robust``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/robust.db"
    return robust_pg_url()


# ---- reading the database behind casework's back --------------------------------------------------
def trail_figures(url: str) -> dict[str, Any]:
    """Per-case facts about the audit trail, read with plain SQL; problems listed, not raised."""
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            cases = conn.execute(sa.text(
                "SELECT id, number, state, version, last_seq FROM cases ORDER BY id")).all()
            rows = conn.execute(sa.text(
                "SELECT case_id, seq, event, outcome, to_state FROM audit_entries ORDER BY case_id, seq")).all()
    finally:
        eng.dispose()
    by_case: dict[int, list[Any]] = {c.id: [] for c in cases}
    orphans = 0
    for r in rows:
        if r.case_id in by_case:
            by_case[r.case_id].append(r)
        else:
            orphans += 1
    problems: list[str] = []
    applied_fires = refused = 0
    per_case: dict[str, dict[str, Any]] = {}
    for c in cases:
        trail = by_case[c.id]
        seqs = [r.seq for r in trail]
        if seqs != list(range(1, len(trail) + 1)):
            dup = len(seqs) - len(set(seqs))
            missing = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
            problems.append(f"{c.number}: seqs not contiguous 1..n (duplicates {dup}, missing {missing[:5]})")
        if c.last_seq != len(trail):
            problems.append(f"{c.number}: last_seq {c.last_seq} but {len(trail)} entries")
        applied = [r for r in trail if r.outcome == "applied"]
        if not applied or applied[0].event != "open":
            problems.append(f"{c.number}: the first applied entry is not the opening")
        elif applied[-1].to_state != c.state:
            problems.append(f"{c.number}: state {c.state!r} but the last applied entry says {applied[-1].to_state!r}")
        if len(applied) != c.version:
            problems.append(f"{c.number}: version {c.version} but {len(applied)} applied entries")
        fires = sum(1 for r in applied if r.event != "open")
        applied_fires += fires
        refused += sum(1 for r in trail if r.outcome == "refused")
        per_case[c.number] = {"version": c.version, "applied_fires": fires, "entries": len(trail)}
    if orphans:
        problems.append(f"{orphans} audit entries belong to no case")
    return {"cases": len(cases), "entries": len(rows), "applied_fires": applied_fires, "refused": refused,
            "version_increments": sum(c.version - 1 for c in cases), "per_case": per_case,
            "problems": problems}


def _verify_summary(url: str) -> tuple[bool, int, int, list[str]]:
    with Engine(url) as fresh:
        rep = fresh.verify()
    return rep.ok, rep.cases_checked, rep.entries_checked, [f"{p.number}#{p.seq}: {p.problem}" for p in rep.problems]


# ---- worker processes -----------------------------------------------------------------------------
def worker_context() -> Any:
    """A forkserver that has imported casework once: clean single-threaded workers, started fast.

    The forkserver is a fresh interpreter that does not see pytest's ``sys.path`` when it preloads
    (Python 3.11 passes it too late), so it is started here with this directory and the checkout on
    its ``PYTHONPATH``; the variable is restored at once for everything else.
    """
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["robust_workers"])
    here = Path(__file__).resolve().parent
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(here), str(here.parent), *([old] if old else [])])
    try:
        forkserver.ensure_running()
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    return ctx


# ---- 1. many processes, the same cases ------------------------------------------------------------
PROCESSES, FIRES_EACH, CASES = 8, 200, 20


def test_parallel_processes_lose_no_update(backend_url: str, record_property: Any) -> None:
    """8 processes x 200 fires against the same 20 cases: every success is one version and one entry."""
    setup = Engine(backend_url)
    numbers = [setup.open("refund", robust_workers.refund_facts(i), actor=CUSTOMER, channel="app").number
               for i in range(CASES)]
    setup.close()

    ctx = worker_context()
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [ctx.Process(target=robust_workers.fire_worker,
                         args=(backend_url, numbers, FIRES_EACH, seed, barrier, results))
             for seed in range(PROCESSES)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    reports = []
    try:
        for _ in procs:
            reports.append(results.get(timeout=180))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - a hung worker is a failure, not a leak
                p.kill()
                p.join()
    elapsed = time.perf_counter() - started

    ok = sum(r["ok"] for r in reports)
    concurrent = sum(r["concurrent"] for r in reports)
    denied = sum(r["denied"] for r in reports)
    other = [o for r in reports for o in r["other"]]
    codes: Counter[str] = Counter()
    for r in reports:
        codes.update(r["denied_codes"])
    per_case_ok: Counter[str] = Counter()
    for r in reports:
        per_case_ok.update(r["per_case_ok"])
    trail = trail_figures(backend_url)
    verified, cases_checked, entries_checked, problems = _verify_summary(backend_url)
    backend = sa.engine.make_url(backend_url).get_backend_name()

    report(record_property, f"parallel_processes[{backend}]", {
        "processes": PROCESSES, "fires_each": FIRES_EACH, "cases": CASES, "attempts": PROCESSES * FIRES_EACH,
        "successful": ok, "concurrent_update": concurrent, "transition_denied": denied,
        "denied_codes": dict(codes), "other_errors": len(other),
        "version_increments": trail["version_increments"], "applied_fire_entries": trail["applied_fires"],
        "refused_entries": trail["refused"], "audit_entries": trail["entries"],
        "lost_updates": ok - trail["version_increments"], "seq_problems": len(trail["problems"]),
        "verify_ok": verified, "seconds": round(elapsed, 2),
        "fire_phase_seconds": round(max(r.get("seconds", 0) for r in reports), 2),
    })
    assert other == [], f"workers hit unexpected errors: {other[:3]}"
    assert len(reports) == PROCESSES
    assert ok + concurrent + denied == PROCESSES * FIRES_EACH
    assert trail["problems"] == [], trail["problems"][:10]
    assert trail["cases"] == CASES
    # zero lost updates, overall and case by case
    assert trail["version_increments"] == ok
    assert trail["applied_fires"] == ok
    assert {n: v["version"] - 1 for n, v in trail["per_case"].items()} == {n: per_case_ok[n] for n in numbers}
    # every refused attempt is on record, and nothing else is
    assert trail["refused"] == denied
    assert trail["entries"] == CASES + ok + denied
    assert set(codes) <= {"not_available"}, codes
    assert verified, problems[:10]
    assert (cases_checked, entries_checked) == (CASES, trail["entries"])


# ---- 2. a writer killed at a random moment --------------------------------------------------------
KILL_RUNS = 20


def test_writer_killed_at_random_leaves_consistent_cases(tmp_path: Path, record_property: Any) -> None:
    """20 writers, each SIGKILLed 0.05-1.0 s into a 5,000-fire load; after each, verify passes."""
    db = tmp_path / "crash.db"
    url = f"sqlite:///{db}"
    with Engine(url) as seed_engine:
        for i in range(10):
            seed_engine.open("refund", robust_workers.refund_facts(i), actor=CUSTOMER)
    rng = random.Random(int(os.environ.get("CASEWORK_ROBUST_SEED", "20261122")))
    ctx = worker_context()

    def start_writer(run: int) -> tuple[Any, Any, Any]:
        ready, go = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=robust_workers.writer, args=(url, run, ready, go))
        proc.start()
        return proc, ready, go

    runs: list[dict[str, Any]] = []
    entries = trail_figures(url)["entries"]
    started = time.perf_counter()
    upcoming: list[tuple[Any, Any, Any]] = [start_writer(0)]
    current: list[Any] = []
    try:
        for run in range(KILL_RUNS):
            proc, ready, go = upcoming.pop()
            current = [proc]
            t0 = time.perf_counter()
            assert ready.wait(timeout=60), f"run {run}: the writer did not start (exit {proc.exitcode})"
            t_ready = time.perf_counter() - t0
            delay = rng.uniform(0.05, 1.0)
            go.set()
            time.sleep(delay)
            alive = proc.is_alive()
            if alive:
                os.kill(proc.pid, signal.SIGKILL)
            proc.join(timeout=30)
            rc = proc.exitcode
            assert alive or rc == 0, f"run {run}: the writer failed by itself (exit {rc})"
            if run + 1 < KILL_RUNS:  # the next writer gets ready during the checks; it writes only on "go"
                upcoming.append(start_writer(run + 1))
            t1 = time.perf_counter()
            verified, cases_checked, entries_checked, problems = _verify_summary(url)
            trail = trail_figures(url)
            with sqlite3.connect(db) as raw:
                integrity = raw.execute("PRAGMA integrity_check").fetchone()[0]
            runs.append({"run": run, "kill_after_s": round(delay, 3), "killed": alive, "exit": rc,
                         "new_entries": trail["entries"] - entries, "cases": cases_checked,
                         "entries": entries_checked, "verify_ok": verified, "integrity": integrity,
                         "start_s": t_ready, "check_s": time.perf_counter() - t1})
            entries = trail["entries"]
            assert verified, f"run {run} (killed after {delay:.3f}s): {problems[:10]}"
            assert trail["problems"] == [], f"run {run}: {trail['problems'][:10]}"
            assert integrity == "ok", f"run {run}: {integrity}"
    finally:
        for p in [*current, *(u[0] for u in upcoming)]:
            if p.is_alive():
                p.kill()
                p.join()
    elapsed = time.perf_counter() - started
    with Engine(url) as fresh:  # the database is still usable for new work after all those crashes
        case = fresh.open("refund", robust_workers.refund_facts(99), actor=CUSTOMER)
        assert fresh.fire(case.number, "review", actor=AGENT).state == "under_review"
        assert fresh.verify().ok
    report(record_property, "writer_killed", {
        "runs": len(runs), "killed_mid_load": sum(r["killed"] for r in runs),
        "exit_codes": sorted({r["exit"] for r in runs}), "verify_ok": sum(r["verify_ok"] for r in runs),
        "entries_written_per_run": [r["new_entries"] for r in runs],
        "kill_after_s": [r["kill_after_s"] for r in runs],
        "final_cases": runs[-1]["cases"], "final_entries": runs[-1]["entries"], "seconds": round(elapsed, 2),
        "writer_start_s_max": round(max(r["start_s"] for r in runs), 2),
        "verify_s_max": round(max(r["check_s"] for r in runs), 2),
    })
    assert sum(r["killed"] for r in runs) == KILL_RUNS, "every writer should still be writing when killed"
    assert sum(r["new_entries"] > 0 for r in runs) >= KILL_RUNS // 2, "the writers barely wrote anything"


# ---- 3. tampering with any audit column ------------------------------------------------------------
AUDIT_COLUMNS = ("seq", "at", "event", "from_state", "to_state", "outcome", "actor", "role", "channel",
                 "verdicts", "data", "policy_hash", "prev_hash", "hash")
HEX_COLUMNS = {"policy_hash", "prev_hash", "hash"}
JSON_COLUMNS = {"verdicts", "data"}
SAMPLES = 100


def days_ago(clock: FixedClock, days: int) -> str:
    return (clock().astimezone(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=days)).isoformat()


def _populate_for_tampering(engine: Engine, clock: FixedClock, cases: int = 12) -> list[str]:
    numbers = []
    for i in range(cases):
        case = engine.open("refund", robust_workers.refund_facts(i), actor=CUSTOMER, channel="app")
        n = case.number
        clock.advance(minutes=7, microseconds=123457)
        engine.fire(n, "provide_evidence", actor=CUSTOMER, data={"evidence": [f"photo=IMG_{i}.jpg"]})
        engine.fire(n, "request_evidence", actor=AGENT)
        with pytest.raises(TransitionDenied):
            engine.fire(n, "approve", actor=CUSTOMER)  # a refused attempt: on record too
        engine.fire(n, "provide_evidence", actor=CUSTOMER, data={"evidence": ["invoice"], "note": f"n{i}"})
        engine.fire(n, "approve", actor=AGENT)
        engine.fire(n, "pay", actor=SYSTEM)
        numbers.append(n)
    return numbers


def _mutate(column: str, value: Any, rng: random.Random, taken: set[int]) -> Any:
    """``value`` with one character replaced by another of its class, still well-formed for its column.

    ``None`` when the value has no such character (``{}`` has nothing to change but its syntax).
    """
    text = str(value)
    for _ in range(200):
        i = rng.randrange(len(text))
        c = text[i]
        if column in HEX_COLUMNS:
            pool = "0123456789abcdef"
        elif c.isdigit():
            pool = string.digits
        elif c.islower():
            pool = string.ascii_lowercase
        elif c.isupper():
            pool = string.ascii_uppercase
        else:
            continue
        new = text[:i] + rng.choice(pool.replace(c, "")) + text[i + 1:]
        if column == "seq":
            if int(new) not in taken:
                return int(new)
            continue
        if column == "at":
            try:
                datetime.fromisoformat(new)
            except ValueError:
                continue
        if column in JSON_COLUMNS:
            try:
                if json.loads(new) == json.loads(text):
                    continue
            except ValueError:
                continue
        return new
    return None


def test_any_changed_character_in_any_audit_column_is_detected(tmp_path: Path, clock: FixedClock,
                                                               record_property: Any) -> None:
    """100 sampled (entry, column) pairs, one character changed each: verify names the case every time."""
    db = tmp_path / "tamper.db"
    engine = Engine(f"sqlite:///{db}", clock=clock)
    _populate_for_tampering(engine, clock)
    assert engine.verify().ok
    rng = random.Random(int(os.environ.get("CASEWORK_ROBUST_SEED", "20261122")))
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("PRAGMA busy_timeout = 30000")
    entries = raw.execute("SELECT id, case_id, number FROM audit_entries ORDER BY id").fetchall()
    detected: Counter[str] = Counter()
    sampled: Counter[str] = Counter()
    missed: list[str] = []
    for k in range(SAMPLES):
        column = AUDIT_COLUMNS[k % len(AUDIT_COLUMNS)]
        new = None
        while new is None:  # an entry whose value in this column can be changed and stay well-formed
            entry_id, case_id, number = rng.choice(entries)
            (value,) = raw.execute(f"SELECT {column} FROM audit_entries WHERE id = ?", (entry_id,)).fetchone()
            if value is not None:
                taken = {s for (s,) in raw.execute("SELECT seq FROM audit_entries WHERE case_id = ?", (case_id,))}
                new = _mutate(column, value, rng, taken)
        raw.execute(f"UPDATE audit_entries SET {column} = ? WHERE id = ?", (new, entry_id))
        sampled[column] += 1
        try:
            rep = engine.verify()
            named = {p.number for p in rep.problems}
            if number in named:
                detected[column] += 1
            else:
                missed.append(f"{number} {column}: {value!r} -> {new!r} not reported ({sorted(named)})")
        except Exception as exc:
            missed.append(f"{number} {column}: {value!r} -> {new!r}: verify raised {type(exc).__name__}: {exc}")
        finally:
            raw.execute(f"UPDATE audit_entries SET {column} = ? WHERE id = ?", (value, entry_id))
        assert engine.verify().ok, f"restoring {number} {column} did not restore a clean trail"
    raw.close()
    engine.close()
    total = sum(detected.values())
    report(record_property, "tamper_detection", {
        "entries": len(entries), "sampled": SAMPLES, "detected": total, "detected_per_column": dict(detected),
        "sampled_per_column": dict(sampled), "missed": missed[:5],
    })
    assert total == SAMPLES, f"{total}/{SAMPLES} detected; missed: {missed[:10]}"


# One changed byte that leaves the stored value unreadable for its column.
MALFORMED: dict[str, Callable[[str], str]] = {
    "data": lambda v: "[" + v[1:],
    "verdicts": lambda v: "{" + v[1:],
    "at": lambda v: "X" + v[1:],
    "seq": lambda v: f"{v}x",
}


@pytest.mark.parametrize("column", sorted(MALFORMED))
def test_unreadable_audit_value_is_reported_not_raised(tmp_path: Path, clock: FixedClock, column: str,
                                                       record_property: Any) -> None:
    """A byte change that makes the stored value malformed is still a tampered entry verify reports."""
    db = tmp_path / "tamper.db"
    engine = Engine(f"sqlite:///{db}", clock=clock)
    numbers = _populate_for_tampering(engine, clock, cases=3)
    raw = sqlite3.connect(db, isolation_level=None)
    entry_id, number, value = raw.execute(
        f"SELECT id, number, {column} FROM audit_entries WHERE number = ? AND seq = 3", (numbers[1],)).fetchone()
    raw.execute(f"UPDATE audit_entries SET {column} = ? WHERE id = ?", (MALFORMED[column](str(value)), entry_id))
    raw.close()
    try:
        rep = engine.verify()
    except CaseworkError as exc:  # refusing to verify with a clear error names nothing: still a miss
        pytest.fail(f"verify raised {type(exc).__name__} instead of reporting {number}: {exc}")
    except Exception as exc:
        pytest.fail(f"verify crashed with {type(exc).__name__}: {exc} instead of reporting {number}")
    finally:
        engine.close()
    report(record_property, f"tamper_malformed[{column}]", {
        "problems": [f"{p.number}#{p.seq}: {p.problem}" for p in rep.problems]})
    assert number in {p.number for p in rep.problems}
    assert {p.number for p in rep.problems} == {number}


# ---- 4. every (kind, event, role) the policy does not permit ---------------------------------------
STEP_DATA: dict[str, dict[str, Any]] = {
    "provide_evidence": {"evidence": ["photo=IMG_1.jpg"]},
    "resolve": {"note": "replaced the item"},
    "reject": {"rejection": "missing_proof"},
    "adjust": {"adjustment": "5.00"},
}


def _open_facts(kind: str, clock: FixedClock) -> dict[str, Any]:
    facts: dict[str, dict[str, Any]] = {
        "refund": {"order_id": "SO-1", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"},
        "return": {"order_id": "SO-2", "amount": "129.00", "paid": "129.00", "delivered": days_ago(clock, 2),
                   "reason": "defective", "condition": "unused", "evidence": ["order_record", "photo=IMG_2.jpg"]},
        "dispute": {"order_id": "SO-3", "amount": "10.00", "paid": "100.00", "evidence": ["payment_voucher"]},
        "complaint": {"order_id": "SO-4"},
    }
    return facts[kind]


def _paths(kind: str) -> dict[str, list[str]]:
    """The shortest event path from the initial state to every reachable state (BFS order)."""
    ks = KINDS[kind]
    paths: dict[str, list[str]] = {ks.initial: []}
    queue = deque([ks.initial])
    while queue:
        state = queue.popleft()
        for event in ks.available(state):
            target = ks.target(state, event)
            if target is not None and target not in paths:
                paths[target] = [*paths[state], event]
                queue.append(target)
    return paths


def test_unpermitted_role_is_refused_and_changes_nothing(tmp_path: Path, clock: FixedClock,
                                                         record_property: Any) -> None:
    """Every (kind, event, role) the default policy does not permit: role_not_permitted, nothing changed."""
    policy = load_policy()
    roles = list(policy.document.roles)
    actors = {"supervisor": SUPERVISOR, "agent": AGENT, "system": SYSTEM, "customer": CUSTOMER}
    actors.update({r: Actor(f"{r}-1", r) for r in roles if r not in actors})
    engine = Engine(f"sqlite:///{tmp_path}/roles.db", policies=policy, clock=clock)

    def permitted(kind: str, event: str, role: str) -> bool:
        ep = policy.event(kind, event)
        return ep is not None and any(policy.roles.acts_as(role, r) for r in ep.roles)

    def walk_to(kind: str, path: list[str]) -> Case:
        case = engine.open(kind, _open_facts(kind, clock), actor=CUSTOMER, channel="app")
        for event in path:
            tried = []
            for role in ("supervisor", "agent", "system", "customer", *roles):
                if not permitted(kind, event, role):
                    continue
                try:
                    case = engine.fire(case.number, event, actor=actors[role], data=STEP_DATA.get(event))
                    break
                except TransitionDenied as denied:
                    tried.append(f"{role}: {denied.decision.codes}")
            else:
                pytest.fail(f"cannot walk a {kind} along {path}: {event} refused to every permitted role {tried}")
        return case

    triples = refused_ok = 0
    pairs: set[tuple[str, str]] = set()
    per_kind: Counter[str] = Counter()
    unreachable: list[str] = []
    failures: list[str] = []
    for kind, ks in KINDS.items():
        paths = _paths(kind)
        where: dict[str, str] = {}  # event -> the first state (BFS order) where it is available
        for state in paths:
            for event in ks.available(state):
                where.setdefault(event, state)
        unreachable += [f"{kind}.{e}" for e in ks.events if e not in where]
        for state in dict.fromkeys(where.values()):
            case = walk_to(kind, paths[state])
            assert case.state == state
            for event in [e for e, s in where.items() if s == state]:
                for role in roles:
                    if permitted(kind, event, role):
                        continue
                    triples += 1
                    per_kind[kind] += 1
                    pairs.add((kind, event))
                    before = engine.get(case.number)
                    trail_before = len(engine.history(case.number))
                    try:  # no event data: the role alone must be enough to refuse
                        engine.fire(case.number, event, actor=actors[role])
                        failures.append(f"{kind}.{event} by {role} from {state}: applied")
                        continue
                    except TransitionDenied as denied:
                        codes = denied.decision.codes
                    except CaseworkError as exc:
                        failures.append(f"{kind}.{event} by {role}: {type(exc).__name__}: {exc}")
                        continue
                    after = engine.get(case.number)
                    trail = engine.history(case.number)
                    problems = []
                    if "role_not_permitted" not in codes:
                        problems.append(f"codes {codes}")
                    if (after.state, after.version, after.facts) != (before.state, before.version, before.facts):
                        problems.append(f"case changed: {before.state}/v{before.version} -> "
                                        f"{after.state}/v{after.version}")
                    last = trail[-1]
                    if len(trail) != trail_before + 1 or (last.outcome, last.event, last.role) != (
                            "refused", event, role):
                        problems.append("the refused attempt is not on record")
                    if problems:
                        failures.append(f"{kind}.{event} by {role} from {state}: {'; '.join(problems)}")
                    else:
                        refused_ok += 1
    verified = engine.verify().ok
    engine.close()
    report(record_property, "unpermitted_roles", {
        "roles": roles, "kind_event_pairs": len(pairs), "triples": triples,
        "refused_with_role_not_permitted": refused_ok,
        "per_kind": dict(per_kind), "unreachable_events": unreachable, "failures": failures[:5],
        "verify_ok": verified,
    })
    assert unreachable == []
    assert triples > 0
    assert failures == [], failures[:10]
    assert refused_ok == triples
    assert verified


# ---- 5. one idempotency key, 100 concurrent callers ----------------------------------------------
CALLERS = 100


def _engine_budget(url: str) -> int:
    """How many Engines (one connection each) we may hold at once without starving the server."""
    if not url.startswith("postgresql"):
        return CALLERS
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            limit = int(conn.execute(sa.text("SHOW max_connections")).scalar_one())
            used = int(conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity")).scalar_one())
    finally:
        eng.dispose()
    return max(8, min(CALLERS, limit - used - 20))


@pytest.mark.parametrize("op", ["fire", "open"])
def test_same_idempotency_key_concurrently_yields_one_transition(backend_url: str, clock: FixedClock, op: str,
                                                                 record_property: Any) -> None:
    """100 concurrent callers with the same key: one transition; every caller gets the same case.

    Each caller is a thread; on SQLite each has its own Engine. On PostgreSQL each Engine is given a
    pool of one connection, so the callers share as many Engines as the server's ``max_connections``
    leaves room for (printed as ``engines``; 100 on a server with room to spare).
    """
    policy = load_policy()
    setup = Engine(backend_url, policies=policy, clock=clock)
    facts = robust_workers.refund_facts(1)
    target = setup.open("refund", facts, actor=CUSTOMER).number if op == "fire" else None
    n_engines = _engine_budget(backend_url)
    pools = [sa.create_engine(backend_url, pool_size=1, max_overflow=0, pool_timeout=120)
             for _ in range(n_engines)] if backend_url.startswith("postgresql") else [backend_url] * n_engines
    engines = [Engine(pool, policies=policy, clock=clock) for pool in pools]
    barrier = threading.Barrier(CALLERS)
    outcomes: list[Any] = [None] * CALLERS
    key = f"double-click-{op}"

    def call(i: int) -> None:
        engine = engines[i % n_engines]
        try:
            barrier.wait(timeout=60)
            if op == "fire":
                assert target is not None
                outcomes[i] = engine.fire(target, "request_evidence", actor=AGENT, key=key)
            else:
                outcomes[i] = engine.open("refund", facts, actor=CUSTOMER, key=key)
        except BaseException as exc:  # every outcome is judged below, surprises included
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(CALLERS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.perf_counter() - started
    for e in engines:
        e.close()
    for pool in pools:
        if isinstance(pool, sa.Engine):
            pool.dispose()

    cases = [o for o in outcomes if isinstance(o, Case)]
    errors = Counter(f"{type(o).__module__}.{type(o).__name__}" for o in outcomes if not isinstance(o, Case))
    leaked = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, CaseworkError)]
    distinct = {(c.number, c.state, c.version) for c in cases}
    numbers = [c.number for c in setup.find(kind="refund", limit=None)]
    trails = {n: setup.history(n) for n in numbers}
    fired = [e for n in numbers for e in trails[n] if e.event != "open"]
    keyed = trail_idem_rows(backend_url, key)
    verified = setup.verify().ok
    setup.close()
    backend = sa.engine.make_url(backend_url).get_backend_name()
    report(record_property, f"idempotency_race[{backend},{op}]", {
        "callers": CALLERS, "engines": n_engines, "same_case_returned": len(cases), "distinct_results": len(distinct),
        "errors": dict(errors),
        "error_messages": sorted({f"{type(o).__name__}: {o}"[:300]
                                  for o in outcomes if isinstance(o, BaseException)})[:3],
        "leaked_non_casework": [repr(o)[:200] for o in leaked[:3]],
        "cases_in_db": len(numbers), "transitions_after_open": sum(e.outcome == "applied" for e in fired),
        "refused_entries": sum(e.outcome == "refused" for e in fired), "key_rows": keyed, "verify_ok": verified,
        "seconds": round(elapsed, 2),
    })
    assert not any(t.is_alive() for t in threads), "a caller hung"
    assert leaked == [], f"non-casework exceptions leaked: {[repr(o) for o in leaked[:3]]}"
    assert len(numbers) == 1, f"{len(numbers)} cases opened"
    if op == "fire":
        assert [(e.event, e.outcome) for e in fired] == [("request_evidence", "applied")]
        assert distinct == {(target, "awaiting_evidence", 2)}
    else:
        assert fired == []
        assert distinct == {(numbers[0], "submitted", 1)}
    assert keyed == 1
    assert errors == Counter(), f"callers got errors instead of the original result: {dict(errors)}"
    assert verified


def trail_idem_rows(url: str, key: str) -> int:
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM idempotency_keys WHERE key = :k"),
                                    {"k": key}).scalar_one())
    finally:
        eng.dispose()
