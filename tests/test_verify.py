"""`verify` recomputes every column of a case row its trail derives, and finds entries of no case.

Each test edits the database behind the engine's back (``tests/tampering.py``) on both backends and
checks that verify names the case and what is wrong with it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from tampering import query, run

from casework import Actor, Engine, FixedClock, parse_policy

CUSTOMER, AGENT, SUPERVISOR = Actor("cust-1", "customer"), Actor("alice", "agent"), Actor("wang", "supervisor")


def problems(engine: Engine) -> list[str]:
    return [f"{p.number}#{p.seq}: {p.problem}" for p in engine.verify().problems]


@pytest.fixture
def opened(engine: Engine, clock: FixedClock) -> tuple[Engine, str, str]:
    """Two refunds: one approved after review, one left submitted (its deadlines pending)."""
    first = engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00", "customer": "cust-1"},
                        actor=CUSTOMER, channel="app").number
    engine.fire(first, "review", actor=AGENT)
    clock.advance(timedelta(hours=1))
    engine.fire(first, "approve", actor=AGENT)
    second = engine.open("refund", {"order_id": "SO-2", "amount": "5.00", "paid": "5.00"}, actor=CUSTOMER).number
    assert engine.verify().ok
    return engine, first, second


EDITS = {
    "state": "state = 'refunded'",
    "version": "version = version + 1",
    "facts": "facts = '{\"amount\":\"99.00\",\"order_id\":\"SO-1\",\"paid\":\"10.00\"}'",
    "due_at": "due_at = NULL",
    "resolution_due": "resolution_due = NULL",
    "first_response_due": "first_response_due = NULL",
    "timer_due": "timer_due = opened_at",
    "responded_at": "responded_at = NULL",
    "is_open": "is_open = (1 = 0)",
    "priority": "priority = 3",
    "queue": "queue = 'supervisor'",
    "breaches": "breaches = '[\"resolution\"]'",
    "timer_refused": "timer_refused = 'approved@x'",
    "customer": "customer = 'cust-2'",
    "order_id": "order_id = 'SO-9'",
    "channel": "channel = 'hotline'",
    "opened_at": "opened_at = updated_at",
    "updated_at": "updated_at = opened_at",
    "state_since": "state_since = opened_at",
    "kind": "kind = 'return'",
    "last_seq": "last_seq = last_seq - 1",
    "last_hash": "last_hash = '" + "0" * 64 + "'",
}


@pytest.mark.parametrize("column", sorted(EDITS))
def test_each_derivable_column_edited_is_named(opened: tuple[Engine, str, str], db_url: str, column: str):
    engine, first, _ = opened
    run(db_url, f"UPDATE cases SET {EDITS[column]} WHERE number = :n", n=first)
    found = problems(engine)
    assert found, column
    assert all(p.startswith(f"{first}#") for p in found), found
    named = {"is_open": "closed", "last_hash": "trail ends", "last_seq": "trail ends", "breaches": "breaches",
             "timer_refused": "timer note"}.get(column, column)
    assert any(named in p for p in found), found


def test_a_row_switched_to_a_more_lenient_stored_version_is_caught(engine: Engine, make_engine, db_url: str,
                                                                  default_policy):
    lenient = parse_policy(default_policy.source.replace("default 2026-11", "lenient")
                           .replace("2000.00", "999999.00"), "lenient.yaml")
    make_engine(policies=lenient).policy  # noqa: B018  (stored as a version)
    number = engine.open("refund", {"order_id": "SO-1", "amount": "5000.00", "paid": "5000.00"},
                         actor=CUSTOMER).number
    run(db_url, "UPDATE cases SET policy_hash = :h WHERE number = :n", h=lenient.hash, n=number)
    assert any("pins it to" in p for p in problems(engine))
    # Worse: the switch is used before anyone looks. The entry it decided names the lenient version.
    engine.fire(number, "approve", actor=AGENT)
    run(db_url, "UPDATE cases SET policy_hash = :h WHERE number = :n", h=default_policy.hash, n=number)
    found = problems(engine)
    assert found[0] == f"{number}#2: decided by policy version {lenient.ref.short}, but the case was pinned to " \
                       f"{default_policy.ref.short}"


def test_entries_of_no_case_and_a_case_without_its_trail_are_reported(opened: tuple[Engine, str, str], db_url: str):
    engine, first, second = opened
    (case_id,) = query(db_url, "SELECT id FROM cases WHERE number = :n", n=second)[0]
    run(db_url, "DELETE FROM cases WHERE number = :n", n=second)
    assert problems(engine) == [f"{second}#1: audit entry of no case (its case row {case_id} is missing)"]
    run(db_url, "DELETE FROM audit_entries WHERE number = :n", n=first)
    assert f"{first}#None: case has no audit trail" in problems(engine)


def test_an_entry_moved_to_another_case_is_caught(opened: tuple[Engine, str, str], db_url: str):
    engine, first, second = opened
    (other,) = query(db_url, "SELECT id FROM cases WHERE number = :n", n=second)[0]
    run(db_url, "UPDATE audit_entries SET case_id = :c WHERE number = :n AND seq = 3", c=other, n=first)
    found = problems(engine)
    assert f"{second}#3: entry belongs to case {first}" in found
    assert any(p.startswith(f"{first}#None: trail ends") for p in found), found
