"""The Store's own contract, written once and run unchanged on every backend.

As eventsourcing's shared recorder test case does for its recorders: one set of behaviours, and a
``store`` fixture that runs each of them once on SQLite and once on PostgreSQL. The tests drive
:class:`casework.store.Store` and its transactions directly (no Engine); cases and entries are built
with :mod:`casework.transition` from the shipped policy, as the engine builds them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import NOW

from casework import PolicySet
from casework.audit import GENESIS, policy_chain_hash
from casework.decide import opening_roles
from casework.domain import Actor, Case, PolicyRef, Tracking
from casework.errors import SchemaOutOfDate, StoreError, UniqueViolation, Unreadable, WriteConflict
from casework.machines import spec
from casework.store import SCHEMA_VERSION, Store
from casework.transition import Transition, opening, step

T0 = datetime.fromisoformat(NOW)  # 2026-11-22 10:00 in Shanghai (+08:00)
CUSTOMER = Actor("cust-1001", "customer")
AGENT = Actor("alice", "agent")
NY = ZoneInfo("America/New_York")
# 2026-11-01 01:30 happens twice in New York: first in EDT (05:30 UTC), then in EST (06:30 UTC).
FOLD_FIRST = datetime(2026, 11, 1, 1, 30, tzinfo=NY)
FOLD_SECOND = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def url(db_url: str) -> str:
    """An empty database of the parametrised backend (conftest's ``db_url``)."""
    return db_url


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    """A fresh Store on the parametrised backend (its schema just created)."""
    s = Store(url)
    yield s
    s.close()


@pytest.fixture
def other_store(url: str, store: Store) -> Iterator[Store]:
    """A second Store on the same database (its own connection, its own caches)."""
    s = Store(url)
    yield s
    s.close()


@pytest.fixture
def policy(store: Store, default_policy: PolicySet) -> PolicySet:
    """The shipped policy, saved in the store so that the refs of cases and entries resolve."""
    p = default_policy
    store.save_policy(p.ref, p.name, p.source, T0, list(p.document.personal))
    return p


# ---- helpers -------------------------------------------------------------------------------------
def behind_the_back(url: str, sql: str, **params: Any) -> None:
    """Run one statement as someone with direct access to the database would (on PostgreSQL, as a superuser
    who switches the append-only triggers off for the session)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def opened(policy: PolicySet, n: int, kind: str = "refund", *, at: datetime = T0,
           facts: dict[str, Any] | None = None, **changes: Any) -> Transition:
    """Case number ``n`` of ``kind`` as the engine opens it (then with ``changes`` to its fields)."""
    given = facts or {"order_id": f"SO-{n}", "amount": "10.00", "paid": "10.00", "customer": "cust-1001"}
    t = opening(f"{spec(kind).prefix}-20261122-{n:06d}", kind, given, policy, at, CUSTOMER,
                *opening_roles(policy, kind, CUSTOMER))
    return dataclasses.replace(t, case=dataclasses.replace(t.case, **changes)) if changes else t


def insert(store: Store, *transitions: Transition) -> list[int]:
    with store.transaction() as tx:
        return tx.insert_cases([(t.case, t.entry, t.texts) for t in transitions])


def next_step(store: Store, policy: PolicySet, number: str, event: str, to_state: str | None, *,
              at: datetime, data: dict[str, Any] | None = None) -> Transition:
    """The next entry of a case as it stands in the store (applied when ``to_state`` is given)."""
    stored = store.get(number)
    assert stored is not None
    return step(stored.case, stored.last_seq, stored.last_hash, event=event, to_state=to_state, verdicts=(),
                actor=AGENT, data=data or {}, now=at, policy=policy)


def write_step(store: Store, policy: PolicySet, number: str, event: str, to_state: str | None, *,
               at: datetime, data: dict[str, Any] | None = None) -> Transition:
    """Decide and write one step, as the engine does: one read inside the write transaction."""
    with store.transaction() as tx:
        stored = tx.get(number)
        assert stored is not None
        t = step(stored.case, stored.last_seq, stored.last_hash, event=event, to_state=to_state, verdicts=(),
                 actor=AGENT, data=data or {}, now=at, policy=policy)
        if t.applied:
            tx.update_case(stored, t.case, t.entry.seq, t.entry.hash)
        else:
            tx.extend_trail(stored, t.entry.seq, t.entry.hash)
        tx.append([(stored.id, t.entry, t.texts, t.case)])
    return t


# ---- schema --------------------------------------------------------------------------------------
def test_a_new_store_creates_its_schema_at_the_current_version(store: Store, url: str):
    assert store.schema_version() == str(SCHEMA_VERSION)
    assert {"casework_meta", "cases", "audit_entries", "policy_versions", "idempotency_keys",
            "counters"} <= table_names(url)
    assert store.find() == []
    assert store.policy_chain() == []


def test_a_second_store_on_the_same_database_keeps_what_is_there(store: Store, policy: PolicySet, url: str):
    t = opened(policy, 1)
    insert(store, t)
    for again in (Store(url), Store(url, create=False)):
        try:
            assert again.schema_version() == str(SCHEMA_VERSION)
            assert again.get(t.case.number).case == t.case
            assert again.policy_chain() == store.policy_chain()
        finally:
            again.close()


def test_a_database_without_casework_tables_is_refused_when_not_created(url: str):
    with pytest.raises(StoreError, match="not a casework database"):
        Store(url, create=False)


def test_a_database_with_foreign_tables_named_like_caseworks_is_refused(url: str):
    behind_the_back(url, "CREATE TABLE cases (id INTEGER PRIMARY KEY, note VARCHAR(20))")
    with pytest.raises(StoreError, match="not a casework database") as refused:
        Store(url)
    assert "cases" in str(refused.value)
    assert table_names(url) == {"cases"}  # nothing was written into it


def test_a_database_written_by_a_newer_casework_is_refused(store: Store, url: str):
    behind_the_back(url, "UPDATE casework_meta SET value = :v WHERE key = 'schema'", v=str(SCHEMA_VERSION + 1))
    with pytest.raises(SchemaOutOfDate, match="newer casework"):
        Store(url)


# ---- round trips ---------------------------------------------------------------------------------
def test_a_case_comes_back_equal_in_every_field(store: Store, policy: PolicySet):
    us = timedelta(microseconds=123457)
    facts = {"order_id": "SO-ü-1", "customer": "客户-7", "channel": "app", "amount": "59.00",
             "note": "naïve café ☕ «退款» \u2028 \"quoted\"", "evidence": [{"type": "photo", "ref": "图片.jpg"}]}
    full = opened(policy, 1, facts=facts, at=T0 + us, state="closed", version=7, closed=True,
                  updated_at=(T0 + timedelta(days=3, microseconds=1)).astimezone(NY),
                  first_response_due=T0 + timedelta(hours=4, microseconds=999999),
                  responded_at=(T0 + timedelta(hours=1) + us).astimezone(UTC),
                  due_at=T0 + timedelta(days=2, microseconds=5), resolution_due=T0 + timedelta(days=5),
                  timer_due=T0 + timedelta(days=1, microseconds=42), state_since=T0 + timedelta(days=2) + us,
                  tracking=Tracking(priority=3, queue="vip-退款", breaches=("first_response", "resolution"),
                                    timer_refused="under_review@2026-11-23T10:00:00+00:00"))
    bare = opened(policy, 2, first_response_due=None, due_at=None, resolution_due=None, timer_due=None,
                  state_since=None)
    defaults = {f.name: f.default for f in dataclasses.fields(Case) if f.default is not dataclasses.MISSING}
    assert all(getattr(full.case, name) != default for name, default in defaults.items())  # every field set

    ids = insert(store, full, bare)
    with store.transaction() as tx:
        inside = [tx.get(t.case.number) for t in (full, bare)]
    for t, case_id, in_tx in zip((full, bare), ids, inside, strict=True):
        stored = store.get(t.case.number)
        assert stored is not None and in_tx == stored
        assert (stored.id, stored.last_seq, stored.last_hash) == (case_id, 1, t.entry.hash)
        for f in dataclasses.fields(Case):
            assert getattr(stored.case, f.name) == getattr(t.case, f.name), f.name
        assert stored.case == t.case
    assert store.get("RF-20261122-999999") is None


def test_audit_entries_come_back_equal_in_seq_order(store: Store, policy: PolicySet, url: str):
    t = opened(policy, 1)
    insert(store, t)
    number = t.case.number
    review = write_step(store, policy, number, "review", "under_review", at=T0 + timedelta(seconds=1, microseconds=7),
                        data={"comment": "vérifié ✓", "items": [1, None, True]})
    # Two refused attempts appended in one call, newest first: history still reads them in seq order.
    second = next_step(store, policy, number, "pay", None, at=T0 + timedelta(minutes=2))
    third = step(review.case, second.entry.seq, second.entry.hash, event="close", to_state=None, verdicts=(),
                 actor=AGENT, data={}, now=(T0 + timedelta(minutes=3, microseconds=1)).astimezone(NY), policy=policy)
    with store.transaction() as tx:
        stored = tx.get(number)
        tx.extend_trail(stored, third.entry.seq, third.entry.hash)
        tx.append([(stored.id, third.entry, third.texts, third.case),
                   (stored.id, second.entry, second.texts, second.case)])

    expected = [t.entry, review.entry, second.entry, third.entry]
    assert [e.seq for e in expected] == [1, 2, 3, 4]
    assert store.history(number) == expected
    fresh = Store(url)  # no policy refs cached: they are read from the database
    try:
        assert fresh.history(number) == expected
        assert [e.policy for e in fresh.history(number)] == [policy.ref] * 4
    finally:
        fresh.close()
    assert store.history("RF-20261122-999999") == []


# ---- compare-and-set -----------------------------------------------------------------------------
def test_an_update_with_the_version_and_trail_end_read_succeeds(store: Store, policy: PolicySet):
    t = opened(policy, 1)
    insert(store, t)
    review = write_step(store, policy, t.case.number, "review", "under_review", at=T0 + timedelta(minutes=1))
    stored = store.get(t.case.number)
    assert stored.case == review.case and stored.case.version == 2
    assert (stored.last_seq, stored.last_hash) == (2, review.entry.hash)


def test_a_stale_version_loses_the_compare_and_set(store: Store, policy: PolicySet):
    t = opened(policy, 1)
    insert(store, t)
    number = t.case.number
    stale = store.get(number)
    won = write_step(store, policy, number, "review", "under_review", at=T0 + timedelta(minutes=1))
    lost = step(stale.case, stale.last_seq, stale.last_hash, event="approve", to_state="approved", verdicts=(),
                actor=AGENT, data={}, now=T0 + timedelta(minutes=2), policy=policy)

    with pytest.raises(WriteConflict) as conflict, store.transaction() as tx:
        tx.remember("alice", "key-1", "f" * 64, "approve", number, {"outcome": "applied"}, T0)  # a write before it
        tx.update_case(stale, lost.case, lost.entry.seq, lost.entry.hash)
    assert (conflict.value.number, conflict.value.expected) == (number, 1)
    assert number in str(conflict.value) and "version 1" in str(conflict.value)
    assert store.get(number).case == won.case
    assert store.history(number) == [t.entry, won.entry]
    assert store.idempotent_result("alice", "key-1", "") is None


def test_a_stale_trail_end_loses_the_compare_and_set(store: Store, policy: PolicySet):
    t = opened(policy, 1)
    insert(store, t)
    number = t.case.number
    stale = store.get(number)
    write_step(store, policy, number, "pay", None, at=T0 + timedelta(minutes=1))  # refused: only the trail moves
    current = store.get(number)
    assert current.case.version == stale.case.version and current.last_seq == 2

    lost = step(stale.case, stale.last_seq, stale.last_hash, event="review", to_state="under_review", verdicts=(),
                actor=AGENT, data={}, now=T0 + timedelta(minutes=2), policy=policy)
    with pytest.raises(WriteConflict) as conflict, store.transaction() as tx:
        tx.update_case(stale, lost.case, lost.entry.seq, lost.entry.hash)
    assert (conflict.value.number, conflict.value.expected) == (number, 1)
    assert store.get(number) == current


def test_extending_the_trail_is_a_compare_and_set_on_its_end(store: Store, policy: PolicySet):
    t = opened(policy, 1)
    insert(store, t)
    number = t.case.number
    stale = store.get(number)
    first = write_step(store, policy, number, "pay", None, at=T0 + timedelta(minutes=1))
    current = store.get(number)
    assert current.case == t.case  # a refused attempt leaves the case as it was
    assert (current.last_seq, current.last_hash) == (2, first.entry.hash)

    lost = step(stale.case, stale.last_seq, stale.last_hash, event="close", to_state=None, verdicts=(),
                actor=AGENT, data={}, now=T0 + timedelta(minutes=2), policy=policy)
    with pytest.raises(WriteConflict) as conflict, store.transaction() as tx:
        tx.extend_trail(stale, lost.entry.seq, lost.entry.hash)
    assert (conflict.value.number, conflict.value.expected) == (number, 1)
    assert store.get(number) == current
    assert store.history(number) == [t.entry, first.entry]


# ---- transactions --------------------------------------------------------------------------------
def test_an_exception_inside_a_transaction_rolls_back_every_write_and_propagates_unchanged(
        store: Store, policy: PolicySet):
    existing, new = opened(policy, 1), opened(policy, 2)
    insert(store, existing)
    before = store.get(existing.case.number)
    boom = RuntimeError("boom")

    with pytest.raises(RuntimeError) as raised, store.transaction() as tx:
        assert tx.next_numbers("RF-20261122", 5) == range(1, 6)
        tx.insert_cases([(new.case, new.entry, new.texts)])
        stored = tx.get(existing.case.number)
        s = step(stored.case, stored.last_seq, stored.last_hash, event="review", to_state="under_review",
                 verdicts=(), actor=AGENT, data={}, now=T0 + timedelta(minutes=1), policy=policy)
        tx.update_case(stored, s.case, s.entry.seq, s.entry.hash)
        tx.append([(stored.id, s.entry, s.texts, s.case)])
        tx.remember("alice", "key-1", "f" * 64, "review", stored.case.number, {"outcome": "applied"}, T0)
        assert tx.get(new.case.number) is not None  # the transaction sees its own writes
        raise boom
    assert raised.value is boom

    assert store.get(new.case.number) is None
    assert store.get(existing.case.number) == before
    assert store.history(existing.case.number) == [existing.entry]
    assert store.idempotent_result("alice", "key-1", "") is None
    with store.transaction() as tx:
        assert tx.next_numbers("RF-20261122") == range(1, 2)


def test_a_database_error_inside_a_transaction_becomes_a_store_error_and_rolls_back(
        store: Store, policy: PolicySet):
    t = opened(policy, 1)
    with pytest.raises(StoreError, match="database error on") as failed, store.transaction() as tx:
        tx.insert_cases([(t.case, t.entry, t.texts)])
        tx.cursor.execute("SELECT no_such_column FROM cases")
    assert type(failed.value) is StoreError
    assert failed.value.url == store.url and store.url in str(failed.value)
    assert store.get(t.case.number) is None

    insert(store, t)  # the store is usable afterwards
    assert store.get(t.case.number).case == t.case


def test_a_second_write_transaction_inside_the_first_is_refused_and_the_first_goes_on(
        store: Store, policy: PolicySet):
    a, b = opened(policy, 1), opened(policy, 2)
    with store.transaction() as outer:
        outer.insert_cases([(a.case, a.entry, a.texts)])
        with pytest.raises(StoreError, match="already open"), store.transaction():
            pytest.fail("a nested write transaction was begun")
        outer.insert_cases([(b.case, b.entry, b.texts)])
        assert outer.get(a.case.number) is not None
    assert [c.number for c in store.find()] == [b.case.number, a.case.number]

    # Every lock was let go: another thread can read and write.
    seen: list[Any] = []

    def elsewhere() -> None:
        with store.transaction() as tx:
            seen.append(tx.next_numbers("RF-20261122"))
        seen.append(store.get(a.case.number))

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    assert seen[0] == range(1, 2) and seen[1].case == a.case


# ---- uniqueness ----------------------------------------------------------------------------------
def test_an_entry_with_a_seq_the_case_already_has_is_a_unique_violation(store: Store, policy: PolicySet):
    t = opened(policy, 1)
    insert(store, t)
    stored = store.get(t.case.number)
    again = step(t.case, 0, GENESIS, event="review", to_state=None, verdicts=(), actor=AGENT, data={},
                 now=T0 + timedelta(minutes=1), policy=policy)
    assert again.entry.seq == 1
    with pytest.raises(UniqueViolation) as dup, store.transaction() as tx:
        tx.append([(stored.id, again.entry, again.texts, again.case)])
    assert isinstance(dup.value, StoreError) and dup.value.url == store.url
    assert store.history(t.case.number) == [t.entry]


def test_an_idempotency_key_remembered_twice_is_a_unique_violation(store: Store):
    with store.transaction() as tx:
        tx.remember("alice", "key-1", "a" * 64, "open refund", "RF-20261122-000001", {"n": 1}, T0)
    with pytest.raises(UniqueViolation), store.transaction() as tx:
        tx.remember("alice", "key-1", "b" * 64, "open refund", "RF-20261122-000002", {"n": 2}, T0)
    assert store.idempotent_result("alice", "key-1", "") == ("a" * 64, "open refund", '{"n":1}')


def test_a_case_number_inserted_twice_is_a_unique_violation(store: Store, policy: PolicySet):
    t = opened(policy, 1)
    insert(store, t)
    with pytest.raises(UniqueViolation):
        insert(store, opened(policy, 1, kind="refund", facts={"order_id": "SO-other"}))
    assert store.get(t.case.number).case == t.case


def test_the_write_that_breaks_uniqueness_raises_unique_violation_itself(store: Store):
    with store.transaction() as tx:
        tx.remember("alice", "key-1", "a" * 64, "open refund", "RF-20261122-000001", {"n": 1}, T0)
    raised: Exception | None = None
    with store.transaction() as tx:
        try:
            tx.remember("alice", "key-1", "b" * 64, "open refund", "RF-20261122-000002", {"n": 2}, T0)
        except Exception as exc:
            raised = exc
    assert isinstance(raised, UniqueViolation)


# ---- counters ------------------------------------------------------------------------------------
def test_counters_give_contiguous_ranges_per_name(store: Store, other_store: Store):
    with store.transaction() as tx:
        assert tx.next_numbers("RF-20261122", 3) == range(1, 4)
        assert tx.next_numbers("RF-20261122", 2) == range(4, 6)
        assert tx.next_numbers("DP-20261122") == range(1, 2)
    with other_store.transaction() as tx:
        assert tx.next_numbers("RF-20261122", 4) == range(6, 10)
        assert tx.next_numbers("RF-20261123") == range(1, 2)


def test_counters_are_never_shared_between_stores_drawing_at_once(store: Store, other_store: Store):
    drawn: list[range] = []
    lock = threading.Lock()

    def draw(s: Store) -> None:
        for _ in range(10):
            with s.transaction() as tx:
                got = tx.next_numbers("RF-20261122", 3)
            with lock:
                drawn.append(got)

    workers = [threading.Thread(target=draw, args=(s,)) for s in (store, other_store)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(n for r in drawn for n in r) == list(range(1, 61))
    assert all(len(r) == 3 for r in drawn)


# ---- idempotency ---------------------------------------------------------------------------------
def test_an_idempotency_key_gives_back_what_was_remembered(store: Store, other_store: Store):
    result = {"outcome": "applied", "case": {"number": "RF-20261122-000001", "note": "退款 ✓", "n": 2**40}}
    with store.transaction() as tx:
        tx.remember("alice", "key-é-1", "c" * 64, "fire review on RF-20261122-000001", "RF-20261122-000001", result, T0)
    request, description, text = other_store.idempotent_result("alice", "key-é-1", "")
    assert (request, description) == ("c" * 64, "fire review on RF-20261122-000001")
    assert json.loads(text) == result
    assert store.idempotent_result("alice", "key-2", "") is None


# ---- queries -------------------------------------------------------------------------------------
@pytest.fixture
def several(store: Store, policy: PolicySet) -> dict[str, Case]:
    """Five cases, inserted in this order (so with rising ids), one of them closed."""
    hour = timedelta(hours=1)
    made = {
        "r1": opened(policy, 1, facts={"order_id": "SO-1", "customer": "cust-A"}, due_at=T0 + 3 * hour),
        "r2": opened(policy, 2, facts={"order_id": "SO-2", "customer": "cust-B"}, at=T0 + timedelta(minutes=1),
                     state="under_review", due_at=T0 + hour, tracking=Tracking(priority=2, queue="vip")),
        "d1": opened(policy, 3, "dispute", facts={"order_id": "SO-1", "customer": "cust-A", "amount": "5.00"},
                     at=T0 + timedelta(minutes=2), due_at=None),
        "c1": opened(policy, 4, "complaint", facts={"order_id": "SO-2", "customer": "cust-B"},
                     at=T0 + timedelta(minutes=3), state="closed", closed=True, due_at=T0),
        "r3": opened(policy, 5, facts={"order_id": "SO-3", "customer": "cust-A"}, at=T0 + timedelta(minutes=4),
                     due_at=T0 + 2 * hour, tracking=Tracking(queue="vip")),
    }
    insert(store, *made.values())
    return {name: t.case for name, t in made.items()}


def test_find_narrows_by_every_filter_newest_first(store: Store, several: dict[str, Case]):
    def found(**filters: Any) -> list[str]:
        names = {c.number: name for name, c in several.items()}
        return [names[c.number] for c in store.find(**filters)]

    assert found() == ["r3", "c1", "d1", "r2", "r1"]
    assert found(kind="refund") == ["r3", "r2", "r1"]
    assert found(state="under_review") == ["r2"]
    assert found(order_id="SO-1") == ["d1", "r1"]
    assert found(customer="cust-B") == ["c1", "r2"]
    assert found(queue="vip") == ["r3", "r2"]
    assert found(open_only=True) == ["r3", "d1", "r2", "r1"]
    assert found(kind="refund", customer="cust-A", queue="vip") == ["r3"]
    assert found(order_id="SO-9") == []
    assert found(limit=2) == ["r3", "c1"]
    assert found(limit=2, offset=2) == ["d1", "r2"]
    assert found(limit=None, offset=4) == ["r1"]
    assert store.find(kind="dispute") == [several["d1"]]


def test_find_due_before_gives_open_cases_most_overdue_first(store: Store, several: dict[str, Case]):
    def found(**filters: Any) -> list[str]:
        names = {c.number: name for name, c in several.items()}
        return [names[c.number] for c in store.find(**filters)]

    assert found(due_before=T0 + timedelta(days=1)) == ["r2", "r3", "r1"]  # c1 is closed, d1 has no deadline
    assert found(due_before=T0 + timedelta(minutes=150)) == ["r2", "r3"]
    assert found(due_before=T0 + timedelta(days=1), kind="refund", limit=1, offset=1) == ["r3"]
    assert found(due_before=T0) == []


def test_due_numbers_and_count_open(store: Store, several: dict[str, Case]):
    n = {name: c.number for name, c in several.items()}
    assert store.due_numbers(T0 + timedelta(days=1)) == [n["r2"], n["r3"], n["r1"]]
    assert store.due_numbers(T0 + timedelta(hours=1)) == [n["r2"]]  # a deadline at now is due
    assert store.due_numbers(T0 + timedelta(days=1), limit=2) == [n["r2"], n["r3"]]
    assert store.due_numbers(T0) == []
    assert store.count_open() == 4
    assert store.count_open(kind="refund") == 3
    assert store.count_open(kind="refund", state="submitted") == 2
    assert store.count_open(state="closed") == 0


def test_numbers_like_gives_the_numbers_sharing_a_prefix_as_typed_in_any_case(store: Store, several: dict[str, Case]):
    refunds = [several[name].number for name in ("r3", "r2", "r1")]  # newest first
    assert store.numbers_like("RF-20261122-000009") == refunds
    assert store.numbers_like("RF-20261122-000009", limit=1) == refunds[:1]
    assert store.numbers_like("rf-20261122-000009") == refunds


def test_iter_open_pages_through_every_open_case_oldest_first(store: Store, several: dict[str, Case]):
    s = several
    assert list(store.iter_open(batch=2)) == [s["r1"], s["r2"], s["d1"], s["r3"]]
    assert list(store.iter_open(kind="refund", batch=1)) == [s["r1"], s["r2"], s["r3"]]
    assert list(store.iter_open(state="submitted", batch=1)) == [s["r1"], s["d1"], s["r3"]]
    assert list(store.iter_open(kind="return", batch=1)) == []


def test_iter_all_yields_every_case_with_its_trail_and_a_damaged_row_hides_no_other(
        store: Store, policy: PolicySet, several: dict[str, Case], url: str):
    n = {name: c.number for name, c in several.items()}
    write_step(store, policy, n["r2"], "approve", "approved", at=T0 + timedelta(minutes=9))
    write_step(store, policy, n["r3"], "pay", None, at=T0 + timedelta(minutes=9))
    trails = {name: store.history(number) for name, number in n.items()}
    cases = {name: store.get(number) for name, number in n.items()}
    behind_the_back(url, "UPDATE cases SET facts = 'not json' WHERE number = :n", n=n["d1"])

    with pytest.raises(Unreadable, match=n["d1"]):
        store.get(n["d1"])
    rows = list(store.iter_all(batch=2))
    assert [r[0] for r in rows] == [n["r1"], n["r2"], n["d1"], n["c1"], n["r3"]]
    for (number, stored, entries, problem), name in zip(rows, ["r1", "r2", "d1", "c1", "r3"], strict=True):
        if name == "d1":
            assert stored is None and entries == [] and number in problem
        else:
            assert (stored, entries, problem) == (cases[name], trails[name], None)
    assert [len(r[2]) for r in rows] == [1, 2, 0, 1, 2]


def test_audit_between_gives_the_cases_opened_in_the_span_and_their_entries_before_its_end(
        store: Store, policy: PolicySet):
    hour = timedelta(hours=1)
    a, b, c = opened(policy, 1), opened(policy, 2, "dispute", at=T0 + hour), opened(policy, 3, at=T0 + 2 * hour)
    insert(store, a, b, c)
    early = write_step(store, policy, a.case.number, "review", "under_review", at=T0 + hour / 2)
    write_step(store, policy, a.case.number, "approve", "approved", at=T0 + 2 * hour)  # at until: left out
    now_a = store.get(a.case.number).case

    def between(since: datetime | None, until: datetime | None, kind: str | None = None) -> list[tuple[str, int]]:
        return [(case.number, len(entries)) for case, entries in store.audit_between(since, until, kind, batch=1)]

    span = list(store.audit_between(T0, T0 + 2 * hour))
    assert span == [(now_a, [a.entry, early.entry]), (b.case, [b.entry])]
    assert between(T0 + hour, T0 + 2 * hour) == [(b.case.number, 1)]
    assert between(T0, None, "refund") == [(a.case.number, 3), (c.case.number, 1)]
    assert between(None, T0 + hour) == [(a.case.number, 2)]
    assert between(None, None) == [(a.case.number, 3), (b.case.number, 1), (c.case.number, 1)]
    assert between(T0 + 3 * hour, None) == []


# ---- policy versions -----------------------------------------------------------------------------
def second_version(p: PolicySet) -> tuple[PolicyRef, str]:
    source = p.source + "\n# second version\n"
    return PolicyRef("second", hashlib.sha256(source.encode()).hexdigest()), source


def test_a_policy_version_is_stored_once_and_chained_to_the_one_before(
        store: Store, other_store: Store, default_policy: PolicySet):
    p = default_policy
    ref2, source2 = second_version(p)
    store.save_policy(p.ref, p.name, p.source, T0, list(p.document.personal))
    store.save_policy(p.ref, "renamed.yaml", p.source, T0 + timedelta(days=1), ["other"])  # again: no change
    other_store.save_policy(p.ref, "renamed.yaml", p.source, T0 + timedelta(days=1), [])  # nor from elsewhere
    store.save_policy(ref2, "second.yaml", source2, T0 + timedelta(hours=1), ["phone", "iban"])

    first = policy_chain_hash(GENESIS, p.hash)
    second = policy_chain_hash(first, ref2.hash)
    assert store.policy_chain() == [(1, p.hash, GENESIS, first), (2, ref2.hash, first, second)]
    assert store.policy_source(p.hash) == (p.name, p.source)
    assert store.policy_source(ref2.hash) == ("second.yaml", source2)
    assert store.policy_source("0" * 64) is None
    assert store.personal_facts() == {p.hash: sorted(p.document.personal), ref2.hash: ["iban", "phone"]}


def test_ref_of_gives_the_label_of_a_stored_version(store: Store, url: str, default_policy: PolicySet):
    p = default_policy
    ref2, source2 = second_version(p)
    store.save_policy(p.ref, p.name, p.source, T0)
    store.save_policy(ref2, "second.yaml", source2, T0)
    fresh = Store(url)  # nothing cached: the labels come from the database
    try:
        assert fresh.ref_of(p.hash) == p.ref
        assert fresh.ref_of(ref2.hash) == PolicyRef("second", ref2.hash)
    finally:
        fresh.close()


def test_ref_of_finds_a_version_another_store_saved_after_a_miss(
        store: Store, other_store: Store, default_policy: PolicySet):
    p = default_policy
    assert other_store.ref_of(p.hash) == PolicyRef("?", p.hash)  # not stored yet
    store.save_policy(p.ref, p.name, p.source, T0)
    assert other_store.policy_source(p.hash) == (p.name, p.source)
    assert other_store.ref_of(p.hash) == p.ref


def backend_pid(store: Store) -> int:
    with store.transaction() as tx:
        tx.cursor.execute("SELECT pg_backend_pid()")
        return int(tx.cursor.fetchone()[0])


def wait_until_waiting_on_a_lock(url: str, pid: int) -> None:
    """Return once PostgreSQL backend ``pid`` waits on a lock (or after 30 s: the test then shows why)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for _ in range(3000):
                waiting = conn.execute(sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                       {"pid": pid}).scalar()
                conn.rollback()  # a fresh statistics snapshot next time
                if waiting == "Lock":
                    return
                time.sleep(0.01)
    finally:
        engine.dispose()


def test_two_stores_saving_different_versions_at_once_store_both(
        store: Store, other_store: Store, default_policy: PolicySet, url: str):
    p = default_policy
    store.save_policy(p.ref, p.name, p.source, T0)
    ref2, source2 = second_version(p)
    source3 = p.source + "\n# third version\n"
    ref3 = PolicyRef("third", hashlib.sha256(source3.encode()).hexdigest())
    first = policy_chain_hash(GENESIS, p.hash)
    pid = backend_pid(other_store) if other_store.dialect == "postgresql" else None
    failures: list[BaseException] = []

    def save_third() -> None:
        try:
            other_store.save_policy(ref3, "third.yaml", source3, T0)
        except BaseException as exc:  # reported below
            failures.append(exc)

    # The store is half way through saving the second version (as Store.save_policy does it) when the
    # other store saves a third.
    with store.transaction() as tx:
        tx.save_policy(ref2.hash, ref2.label, "second.yaml", source2, T0, policy_chain_hash(first, ref2.hash),
                       [], 2, first)
        saver = threading.Thread(target=save_third)
        saver.start()
        if pid is not None:
            wait_until_waiting_on_a_lock(url, pid)
    saver.join(60)
    assert not saver.is_alive() and not failures, failures
    assert [v[1] for v in store.policy_chain()] == [p.hash, ref2.hash, ref3.hash]
    assert store.policy_source(ref3.hash) == ("third.yaml", source3)


def test_a_policy_version_whose_text_was_edited_by_hand_is_read_as_stored(store: Store, url: str,
                                                                         default_policy: PolicySet):
    p = default_policy
    ref2, source2 = second_version(p)
    store.save_policy(p.ref, p.name, p.source, T0)
    store.save_policy(ref2, "second.yaml", source2, T0)
    assert store.policy_texts() == [(p.hash, p.source), (ref2.hash, source2)]
    behind_the_back(url, "UPDATE policy_versions SET source = :s WHERE hash = :h", s=source2 + "# edited", h=ref2.hash)
    assert store.policy_texts() == [(p.hash, p.source), (ref2.hash, source2 + "# edited")]


# ---- times ---------------------------------------------------------------------------------------
def test_two_instants_a_dst_fold_apart_stay_two_instants(store: Store, policy: PolicySet):
    first_utc, second_utc = FOLD_FIRST.astimezone(UTC), FOLD_SECOND.astimezone(UTC)
    assert second_utc - first_utc == timedelta(hours=1)
    given = {1: FOLD_FIRST, 2: FOLD_SECOND, 3: first_utc, 4: second_utc}
    made = [opened(policy, n, at=at, due_at=at, updated_at=at) for n, at in given.items()]
    insert(store, *made)

    expected = {1: first_utc, 2: second_utc, 3: first_utc, 4: second_utc}
    for t, (n, instant) in zip(made, expected.items(), strict=True):
        case = store.get(t.case.number).case
        assert (case.opened_at, case.updated_at, case.due_at) == (instant, instant, instant), n
        assert store.history(t.case.number)[0].at == instant, n
    numbers = [t.case.number for t in made]
    # The database compares the instants too (a wall-time comparison would find all four due).
    assert store.due_numbers(datetime(2026, 11, 1, 6, 0, tzinfo=UTC)) == [numbers[0], numbers[2]]
    assert [c.number for c in store.find(due_before=FOLD_FIRST)] == [numbers[0], numbers[2]]
    assert [c.number for c in store.find(due_before=FOLD_SECOND)] == [numbers[0], numbers[2], numbers[1], numbers[3]]


def test_a_naive_time_is_refused_with_value_error_and_nothing_is_written(store: Store, policy: PolicySet):
    naive = datetime(2026, 11, 22, 12, 0)
    t = opened(policy, 1, due_at=naive)
    with pytest.raises(ValueError, match="naive datetime") as refused, store.transaction() as tx:
        tx.insert_cases([(t.case, t.entry, t.texts)])
    assert not isinstance(refused.value, StoreError)
    assert store.get(t.case.number) is None
    with pytest.raises(ValueError, match="naive datetime"):
        store.find(due_before=naive)
    with pytest.raises(ValueError, match="naive datetime"):
        store.due_numbers(naive)


# ---- errors --------------------------------------------------------------------------------------
def test_a_store_error_names_the_database_without_its_password():
    with pytest.raises(StoreError) as failed:
        Store("postgresql+psycopg://casework:s3cret@127.0.0.1:1/nowhere")
    assert "s3cret" not in str(failed.value)
    assert failed.value.url is not None and "s3cret" not in failed.value.url
    assert "casework:***@127.0.0.1:1/nowhere" in str(failed.value)
