"""Property: over random histories, one random tampering with any evidential row is always reported.

Evidential tables (README, "Trust model"): ``cases``, ``audit_entries``, ``policy_versions``. A
tampering is an update of one column of one row to a value that means something else, the deletion
of one row, or the insertion of one row. Row ids (storage keys) and a policy version's ``name`` and
``loaded_at`` (where and when its text was read) are not evidence, and are left alone.

500 examples run on SQLite (each from a copy of one prepared empty database), 30 on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import _reset_pg as reset_pg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tampering import raw

from casework import Actor, Engine, FixedClock, InvalidInput, TransitionDenied
from casework.machines import KINDS

NOW = "2026-11-22T10:00:00+08:00"
ACTORS = (Actor("cust-1", "customer"), Actor("alice", "agent"), Actor("wang", "supervisor"))
OPENINGS = {
    "refund": {"order_id": "SO-1", "amount": "10.00", "paid": "10.00", "customer": "cust-1"},
    "complaint": {"order_id": "SO-2", "customer": "cust-1"},
    "dispute": {"order_id": "SO-3", "amount": "5.00", "paid": "50.00", "customer": "cust-1",
                "evidence": ["payment_voucher"]},
}
SKIPPED = {"cases": {"id"}, "audit_entries": {"id"}, "policy_versions": {"name", "loaded_at"}}
TABLES = ("cases", "audit_entries", "policy_versions")

history = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30), st.integers(0, 2)), min_size=0, max_size=5)
tampering = st.tuples(st.sampled_from(("update", "delete", "insert")), st.sampled_from(TABLES),
                      st.integers(0, 10**6), st.integers(0, 10**6))


def play(engine: Engine, clock: FixedClock, kinds: list[str], steps: list[tuple[int, int, int]]) -> None:
    with contextlib.suppress(TransitionDenied):  # a refused opening: an entry of no case, on the trail all the same
        engine.open("refund", OPENINGS["refund"], actor=Actor("cust-2", "customer"))
    numbers = [engine.open(kind, OPENINGS[kind], actor=ACTORS[0]).number for kind in kinds]
    for case_pick, event_pick, actor_pick in steps:
        number = numbers[case_pick % len(numbers)]
        state = engine.get(number).state
        spec = KINDS[number_kind(number)]
        events = spec.available(state) or spec.events
        clock.advance(timedelta(minutes=7))
        with contextlib.suppress(TransitionDenied, InvalidInput):
            engine.fire(number, events[event_pick % len(events)], actor=ACTORS[actor_pick],
                        data={"note": "n", "resolution": "fixed"} if "resolve" in events else {"note": "n"})


def number_kind(number: str) -> str:
    return {"RF": "refund", "CP": "complaint", "DP": "dispute"}[number[:2]]


def changed(value: Any, column: str, other: Any) -> Any:
    """A value for ``column`` that means something else than ``value`` (``other``: a value of another row)."""
    if column in ("is_open",):
        return not bool(value)
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1000 if column in ("case_id", "gseq", "seq") else value + 1
    if value is None:
        return datetime(2026, 1, 1) if column.endswith(("_at", "_due", "_since")) else "x"
    if column in ("facts", "data"):
        return json.dumps({**json.loads(value), "tampered": True})
    if column in ("verdicts", "breaches", "personal"):
        return json.dumps([*json.loads(value), "tampered"])
    if len(value) == 64 and column not in ("source",):
        return "f" * 64 if value != "f" * 64 else "e" * 64
    return value + "X"


def tamper(conn: sa.Connection, op: str, table: str, pick: int, pick2: int) -> bool:
    """Apply one tampering; False when the database refused it (a constraint) or there was nothing to do."""
    rows = [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))]
    if not rows:
        return False
    row = rows[pick % len(rows)]
    key = "hash" if table == "policy_versions" else "id"
    try:
        with conn.begin_nested():
            if op == "delete":
                conn.execute(sa.text(f"DELETE FROM {table} WHERE {key} = :k"), {"k": row[key]})
            elif op == "update":
                columns = [c for c in row if c not in SKIPPED[table]]
                column = columns[pick2 % len(columns)]
                if conn.dialect.name == "postgresql" and column == "gseq" and row["gseq"] == max(
                        r["gseq"] or 0 for r in rows):
                    return False  # the newest entry unsealed: a state a PostgreSQL writer may leave, not damage
                value = changed(row[column], column, rows[pick2 % len(rows)][column])
                conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"), {"v": value, "k": row[key]})
            else:
                new = dict(row)
                new.pop("id", None)
                if table == "cases":
                    new["number"] = row["number"] + "-9"
                elif table == "audit_entries":
                    new.update(seq=row["seq"] + 100, gseq=None, link=None)
                else:
                    new.update(hash="d" * 64, seq=max(r["seq"] for r in rows) + 1)
                names = ", ".join(new)
                conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + c for c in new)})"), new)
    except sa.exc.DBAPIError:
        return False
    return True


def check(url: str, clock: FixedClock, policy: Any, kinds: list[str], steps: list[tuple[int, int, int]],
          op: str, table: str, pick: int, pick2: int) -> None:
    with Engine(url, policies=policy, clock=clock) as engine:
        play(engine, clock, kinds, steps)
        assert engine.verify().ok
    with raw(url) as conn:
        done = tamper(conn, op, table, pick, pick2)
    if not done:
        return
    with Engine(url, clock=clock) as engine:  # as `casework verify` does: no policy is loaded (or stored again)
        report = engine.verify()
    assert not report.ok, (op, table, pick, pick2)


@pytest.fixture(scope="module", autouse=True)
def parsed_once() -> Any:
    """Each verify reads the policy versions from its database and parses them; the same text is parsed once
    for the whole module (an altered text is still parsed anew)."""
    import functools

    import casework.policies

    original = casework.policies.parse_policy
    casework.policies.parse_policy = functools.lru_cache(maxsize=16)(original)  # type: ignore[assignment]
    yield
    casework.policies.parse_policy = original  # type: ignore[assignment]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, default_policy: Any) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "template.db"
    Engine(f"sqlite:///{path}", policies=default_policy).close()
    return path


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(sorted(OPENINGS)), min_size=1, max_size=3), steps=history, how=tampering)
def test_any_tampering_with_an_evidential_row_is_reported_sqlite(template: Path, tmp_path: Path, default_policy: Any,
                                                                 kinds: list[str], steps: list[tuple[int, int, int]],
                                                                 how: tuple[str, str, int, int]):
    db = tmp_path / "t.db"
    shutil.copyfile(template, db)
    check(f"sqlite:///{db}", FixedClock(NOW), default_policy, kinds, steps, *how)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(sorted(OPENINGS)), min_size=1, max_size=2), steps=history, how=tampering)
def test_any_tampering_with_an_evidential_row_is_reported_postgresql(pg_test_url: str, default_policy: Any,
                                                                     kinds: list[str],
                                                                     steps: list[tuple[int, int, int]],
                                                                     how: tuple[str, str, int, int]):
    reset_pg(pg_test_url)  # every example from an empty database: a tampering must not outlive its example
    check(pg_test_url, FixedClock(NOW), default_policy, kinds, steps, *how)
