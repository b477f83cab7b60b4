"""`verify` names exactly what an auditor must look at: the first broken entry of a trail and nothing after
it, the one column of a case row that was edited, a trail deleted whole, and counts what it checked.

Each test edits the database behind the engine's back (``tests/tampering.py``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from tampering import query, run

from casework import Actor, Engine, FixedClock

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")


def problems(engine: Engine) -> list[str]:
    return [f"{p.number}#{p.seq}: {p.problem}" for p in engine.verify().problems]


@pytest.fixture
def trails(engine: Engine, clock: FixedClock) -> tuple[Engine, str, str]:
    """A refund with a trail of four entries (open, review, approve, pay) and a second refund just opened."""
    first = engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER).number
    for event in ("review", "approve", "pay"):
        clock.advance(timedelta(minutes=5))
        engine.fire(first, event, actor=AGENT if event != "pay" else Actor.system())
    second = engine.open("refund", {"order_id": "SO-2", "amount": "5.00", "paid": "5.00"}, actor=CUSTOMER).number
    report = engine.verify()
    assert report.ok and (report.cases_checked, report.entries_checked) == (2, 5)
    return engine, first, second


def test_an_entry_altered_in_the_middle_of_a_trail_is_the_one_problem_reported(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE audit_entries SET data = '{\"note\":\"edited\"}' WHERE number = :n AND seq = 2", n=first)
    # Entries 3 and 4 follow a broken one: they cannot be trusted, and are not reported on their own.
    assert problems(engine) == [f"{first}#2: entry hash mismatch: the entry was altered"]


def test_an_entry_removed_from_the_middle_of_a_trail_is_named_by_the_gap_it_leaves(trails, db_url: str):
    engine, first, _ = trails
    (place,) = query(db_url, "SELECT gseq FROM audit_entries WHERE number = :n AND seq = 3", n=first)[0]
    run(db_url, "DELETE FROM audit_entries WHERE number = :n AND seq = 3", n=first)
    # The global chain is checked first (by place), then each trail.
    assert problems(engine) == [
        f"{first}#4: global chain: places {place} to {place} are missing: entries were removed",
        f"{first}#4: sequence gap: expected 3, found 4",
    ]


def test_an_entry_whose_prev_hash_was_rewritten_is_named(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE audit_entries SET prev_hash = :h WHERE number = :n AND seq = 3", h="1" * 64, n=first)
    assert problems(engine) == [f"{first}#3: prev_hash does not match the previous entry"]


def test_editing_only_the_rows_last_hash_is_the_one_problem(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE cases SET last_hash = :h WHERE number = :n", h="0" * 64, n=first)
    assert problems(engine) == [f"{first}#None: trail ends at seq 4, the case row says 4"]
    assert engine.verify().broken_cases == [first]


def test_editing_only_the_rows_last_seq_is_the_one_problem(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE cases SET last_seq = 3 WHERE number = :n", n=first)
    assert problems(engine) == [f"{first}#None: trail ends at seq 4, the case row says 3"]


def test_a_whole_trail_deleted_with_its_case_row_kept(trails, db_url: str):
    engine, first, second = trails
    run(db_url, "DELETE FROM audit_entries WHERE number = :n", n=first)
    assert problems(engine) == [
        f"{second}#1: global chain: places 1 to 4 are missing: entries were removed",
        f"{first}#None: case has no audit trail",
    ]
    report = engine.verify()
    assert (report.cases_checked, report.entries_checked) == (2, 1)


def test_a_whole_case_deleted_row_and_trail_is_caught_by_the_places_it_leaves(trails, db_url: str):
    engine, first, second = trails
    run(db_url, "DELETE FROM audit_entries WHERE number = :n", n=first)
    run(db_url, "DELETE FROM cases WHERE number = :n", n=first)
    assert problems(engine) == [f"{second}#1: global chain: places 1 to 4 are missing: entries were removed"]
    report = engine.verify()
    assert (report.cases_checked, report.entries_checked) == (1, 1)
