"""Persistence, written once and run on every backend (the ``engine`` fixture is parametrised).

Round trips, the hash-chained audit trail, refused attempts, pinned policy versions, idempotency,
optimistic concurrency, unique numbers across engines, tamper detection, and queries.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from casework import (
    Actor,
    CaseNotFound,
    CaseworkError,
    ConcurrentUpdate,
    Engine,
    FixedClock,
    IdempotencyConflict,
    StoreError,
    TransitionDenied,
    parse_policy,
)
from casework.audit import GENESIS, hash_of
from casework.policies.files import default_policy_path

CUSTOMER = Actor("cust-1001", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("sam", "supervisor")
SYSTEM = Actor.system()


def days_ago(clock: FixedClock, days: int) -> str:
    return (clock().astimezone(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=days)).isoformat()


def refund_facts(**extra: Any) -> dict[str, Any]:
    return {"order_id": "SO-10001", "amount": "59.00", "paid": "59.00", "reason": "not_delivered", **extra}


@pytest.fixture
def raw(db_url: str) -> Iterator[sa.Engine]:
    """A plain SQLAlchemy engine on the test database, for reading and tampering behind casework's back."""
    sa_engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield sa_engine
    sa_engine.dispose()


def execute(raw: sa.Engine, sql: str, **params: Any) -> int:
    """Run one statement as someone with full access to the database would, bypassing casework."""
    with raw.begin() as conn:
        if raw.dialect.name == "postgresql":
            # Skip the append-only trigger on audit_entries, as a superuser with a grudge could.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        return conn.execute(sa.text(sql), params).rowcount


# ---- round trip ----------------------------------------------------------------------------------
def test_open_fire_history_round_trip(engine: Engine, clock: FixedClock):
    opened = engine.open("refund", refund_facts(evidence=["order_record=SO-10001.pdf", "photo"]),
                         actor=CUSTOMER, channel="app")
    assert re.fullmatch(r"RF-20261122-\d{6}", opened.number)
    assert (opened.state, opened.version) == ("submitted", 1)
    assert opened.policy == engine.policy.ref

    stored = engine.get(opened.number)
    assert stored == opened
    assert stored.facts == {
        "order_id": "SO-10001", "amount": "59.00", "paid": "59.00", "reason": "not_delivered",
        "evidence": [{"type": "order_record", "ref": "SO-10001.pdf"}, {"type": "photo", "ref": None}],
        "channel": "app", "customer": "cust-1001",
    }
    assert stored.opened_at == clock()

    steps = [("review", AGENT, "under_review"), ("approve", AGENT, "approved"), ("pay", SYSTEM, "refunded"),
             ("close", SYSTEM, "closed")]
    for i, (event, actor, state) in enumerate(steps, start=2):
        clock.advance(minutes=5)
        case = engine.fire(opened.number, event, actor=actor)
        assert (case.state, case.version) == (state, i)
        assert engine.get(opened.number) == case
        assert case.updated_at == clock()
    final = engine.get(opened.number)
    assert final.closed
    assert final.responded_at == opened.opened_at + timedelta(minutes=5)  # review is the first response

    trail = engine.history(opened.number)
    assert [(e.seq, e.event, e.from_state, e.to_state, e.outcome) for e in trail] == [
        (1, "open", None, "submitted", "applied"),
        (2, "review", "submitted", "under_review", "applied"),
        (3, "approve", "under_review", "approved", "applied"),
        (4, "pay", "approved", "refunded", "applied"),
        (5, "close", "refunded", "closed", "applied"),
    ]
    assert [(e.actor, e.role) for e in trail] == [("cust-1001", "customer"), ("alice", "agent"),
                                                  ("alice", "agent"), ("system", "system"), ("system", "system")]
    assert all(e.channel == "app" for e in trail)
    assert all(e.policy == engine.policy.ref for e in trail)
    assert [e.at for e in trail] == [clock() - timedelta(minutes=5 * k) for k in range(4, -1, -1)]
    assert engine.verify().ok


def test_event_data_is_merged_into_the_facts_and_evidence_accumulates(engine: Engine):
    case = engine.open("refund", refund_facts(evidence=["order_record"]), actor=CUSTOMER)
    engine.fire(case.number, "request_evidence", actor=AGENT)
    updated = engine.fire(case.number, "provide_evidence", actor=CUSTOMER,
                          data={"evidence": ["photo=IMG_1.jpg", "order_record"], "comment": "see photo"})
    assert updated.facts["evidence"] == [{"type": "order_record", "ref": None}, {"type": "photo", "ref": "IMG_1.jpg"}]
    assert updated.facts["comment"] == "see photo"
    assert engine.get(case.number).facts == updated.facts
    assert engine.history(case.number)[-1].data == {"evidence": [{"type": "photo", "ref": "IMG_1.jpg"},
                                                                 {"type": "order_record", "ref": None}],
                                                    "comment": "see photo"}
    assert engine.verify().ok


def test_unknown_case_number_raises_case_not_found_with_suggestions(engine: Engine):
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    typo = case.number[:-1] + ("2" if case.number[-1] != "2" else "3")
    with pytest.raises(CaseNotFound) as info:
        engine.get(typo)
    assert case.number in info.value.suggestions
    with pytest.raises(CaseNotFound):
        engine.fire("RF-19990101-000001", "review", actor=AGENT)


# ---- the audit trail -----------------------------------------------------------------------------
def test_audit_seq_is_contiguous_and_hash_chained(engine: Engine, clock: FixedClock):
    case = engine.open("return", {"order_id": "SO-1", "delivered": days_ago(clock, 20), "reason": "no_reason",
                                  "condition": "unused", "evidence": ["order_record"]}, actor=CUSTOMER)
    with pytest.raises(TransitionDenied):
        engine.fire(case.number, "approve", actor=AGENT)
    engine.fire(case.number, "review", actor=AGENT)
    with pytest.raises(TransitionDenied):
        engine.fire(case.number, "ship", actor=CUSTOMER)
    engine.fire(case.number, "reject", actor=AGENT, data={"rejection": "deadline_passed", "note": "window expired"})
    engine.fire(case.number, "close", actor=SYSTEM)

    trail = engine.history(case.number)
    assert [e.seq for e in trail] == list(range(1, len(trail) + 1)) == [1, 2, 3, 4, 5, 6]
    assert trail[0].prev_hash == GENESIS
    for prev, entry in itertools.pairwise(trail):
        assert entry.prev_hash == prev.hash
    for entry in trail:
        assert hash_of(entry) == entry.hash
        assert re.fullmatch(r"[0-9a-f]{64}", entry.hash)
    assert len({e.hash for e in trail}) == len(trail)
    assert engine.verify().ok


def test_refused_attempt_is_recorded_and_the_case_is_unchanged(engine: Engine, clock: FixedClock):
    case = engine.open("refund", refund_facts(amount="2500.00", paid="2500.00"), actor=CUSTOMER, channel="chat")
    clock.advance(hours=1)
    with pytest.raises(TransitionDenied) as info:
        engine.fire(case.number, "approve", actor=AGENT, data={"note": "looks fine"})
    assert info.value.number == case.number
    assert info.value.decision.codes == ["approval_limit_exceeded"]

    assert engine.get(case.number) == case  # state, version, facts, timestamps all unchanged
    trail = engine.history(case.number)
    assert len(trail) == 2
    attempt = trail[-1]
    assert (attempt.event, attempt.outcome, attempt.from_state, attempt.to_state) == \
        ("approve", "refused", "submitted", None)
    assert (attempt.actor, attempt.role, attempt.channel) == ("alice", "agent", "chat")
    assert attempt.at == clock()
    assert [r["code"] for r in attempt.reasons] == ["approval_limit_exceeded"]
    assert attempt.data == {"note": "looks fine"}
    assert attempt.policy == engine.policy.ref
    assert engine.verify().ok

    # The refused attempt did not block the case: a supervisor approves it next.
    approved = engine.fire(case.number, "approve", actor=SUPERVISOR)
    assert (approved.state, approved.version) == ("approved", 2)
    assert [e.outcome for e in engine.history(case.number)] == ["applied", "refused", "applied"]
    assert engine.verify().ok


def test_not_available_attempt_is_recorded(engine: Engine):
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    with pytest.raises(TransitionDenied) as info:
        engine.fire(case.number, "pay", actor=AGENT)
    assert info.value.decision.codes == ["not_available"]
    last = engine.history(case.number)[-1]
    assert (last.event, last.outcome) == ("pay", "refused")
    assert [r["code"] for r in last.reasons] == ["not_available"]
    assert engine.get(case.number) == case


# ---- pinned policy versions ----------------------------------------------------------------------
def _policy_b() -> str:
    text = default_policy_path().read_text(encoding="utf-8")
    assert text.count("within: 7d") == 1
    return (text.replace("within: 7d", "within: 30d")
                .replace('label: "default 2026-11"', 'label: "generous 2026-12"'))


def test_open_cases_keep_the_policy_they_were_opened_under(engine: Engine, make_engine, clock: FixedClock):
    policy_a = engine.policy
    facts = {"order_id": "SO-7", "delivered": days_ago(clock, 20), "reason": "no_reason", "condition": "unused",
             "evidence": ["order_record"]}
    old = engine.open("return", facts, actor=CUSTOMER)
    assert old.policy == policy_a.ref

    policy_b = parse_policy(_policy_b(), "policies-b.yaml")
    assert policy_b.hash != policy_a.hash
    engine_b = make_engine(policies=policy_b)

    # The old case is still decided by A (7 days), even through the engine that runs B.
    with pytest.raises(TransitionDenied) as info:
        engine_b.fire(old.number, "approve", actor=AGENT)
    assert info.value.decision.codes == ["window_expired"]
    assert "7 days" in info.value.decision.reasons[0].message
    assert info.value.decision.policy == policy_a.ref
    assert engine_b.get(old.number).policy == policy_a.ref

    # A new case is decided by B (30 days).
    new = engine_b.open("return", facts, actor=CUSTOMER)
    assert new.policy == policy_b.ref
    assert engine_b.fire(new.number, "approve", actor=AGENT).state == "approved"

    # History names the version that decided each entry, with its label.
    assert {e.policy for e in engine_b.history(old.number)} == {policy_a.ref}
    assert {e.policy for e in engine_b.history(new.number)} == {policy_b.ref}
    assert engine_b.history(new.number)[-1].policy.label == "generous 2026-12"

    # The engine still running A decides B's case by B, loading it from the database.
    fresh = make_engine()
    third = engine_b.open("return", facts, actor=CUSTOMER)
    assert fresh.fire(third.number, "approve", actor=AGENT).state == "approved"
    assert fresh.history(third.number)[-1].policy == policy_b.ref
    assert fresh.verify().ok


def test_policy_file_change_reaches_only_new_cases(engine: Engine, make_engine, clock: FixedClock, tmp_path):
    facts = {"order_id": "SO-8", "delivered": days_ago(clock, 10), "reason": "no_reason", "condition": "unused",
             "evidence": ["order_record"]}
    path = tmp_path / "policies.yaml"
    path.write_text(default_policy_path().read_text(encoding="utf-8"), encoding="utf-8")
    first = make_engine(policies=path)
    old = first.open("return", facts, actor=CUSTOMER)
    path.write_text(_policy_b(), encoding="utf-8")
    second = make_engine(policies=path)
    new = second.open("return", facts, actor=CUSTOMER)
    assert old.policy.label == "default 2026-11" and new.policy.label == "generous 2026-12"
    with pytest.raises(TransitionDenied):
        second.fire(old.number, "approve", actor=AGENT)
    assert second.fire(new.number, "approve", actor=AGENT).state == "approved"
    assert second.verify().ok


# ---- idempotency ---------------------------------------------------------------------------------
def test_same_idempotency_key_twice_applies_one_transition(engine: Engine):
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    first = engine.fire(case.number, "review", actor=AGENT, key="k-review-1")
    second = engine.fire(case.number, "review", actor=AGENT, key="k-review-1")
    assert first == second
    assert engine.get(case.number).version == 2
    assert [e.event for e in engine.history(case.number)] == ["open", "review"]


def test_same_idempotency_key_for_open_opens_one_case(engine: Engine):
    a = engine.open("refund", refund_facts(), actor=CUSTOMER, key="open-1")
    b = engine.open("refund", refund_facts(), actor=CUSTOMER, key="open-1")
    assert a == b
    assert [c.number for c in engine.find()] == [a.number]


def test_same_idempotency_key_with_different_arguments_conflicts(engine: Engine):
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    engine.fire(case.number, "review", actor=AGENT, key="k-1")
    with pytest.raises(IdempotencyConflict) as info:
        engine.fire(case.number, "approve", actor=AGENT, key="k-1")
    assert info.value.key == "k-1"
    assert engine.get(case.number).state == "under_review"
    assert len(engine.history(case.number)) == 2


def test_idempotency_keys_are_per_caller(engine: Engine):
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    engine.fire(case.number, "review", actor=AGENT, key="k-1")
    # Another caller's "k-1" is their own key: it neither replays nor describes alice's request.
    other = engine.open("refund", refund_facts(amount="1.00"), actor=CUSTOMER, key="k-1")
    assert other.number != case.number
    assert engine.open("refund", refund_facts(amount="1.00"), actor=CUSTOMER, key="k-1") == other
    with pytest.raises(IdempotencyConflict) as info:
        engine.fire(other.number, "cancel", actor=CUSTOMER, key="k-1")
    assert "open refund" in str(info.value) and case.number not in str(info.value)
    assert engine.fire(case.number, "review", actor=AGENT, key="k-1").version == 2  # alice's own, replayed


def test_idempotent_refusal_is_replayed_without_a_second_attempt(engine: Engine):
    case = engine.open("refund", refund_facts(amount="2500.00", paid="2500.00"), actor=CUSTOMER)
    for _ in range(2):
        with pytest.raises(TransitionDenied) as info:
            engine.fire(case.number, "approve", actor=AGENT, key="k-approve")
        assert info.value.decision.codes == ["approval_limit_exceeded"]
    assert [e.outcome for e in engine.history(case.number)] == ["applied", "refused"]


def test_idempotency_key_is_shared_across_engines(engine: Engine, make_engine):
    other = make_engine()
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    engine.fire(case.number, "review", actor=AGENT, key="shared")
    assert other.fire(case.number, "review", actor=AGENT, key="shared").version == 2
    assert len(other.history(case.number)) == 2


# ---- optimistic concurrency ----------------------------------------------------------------------
def test_stale_expected_version_raises_concurrent_update(engine: Engine, make_engine):
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    other = make_engine()
    other.fire(case.number, "review", actor=AGENT, expected_version=1)
    with pytest.raises(ConcurrentUpdate) as info:
        engine.fire(case.number, "approve", actor=AGENT, expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    current = engine.get(case.number)
    assert (current.state, current.version) == ("under_review", 2)
    assert len(engine.history(case.number)) == 2  # the losing write left no trace
    assert engine.fire(case.number, "approve", actor=AGENT, expected_version=2).state == "approved"
    assert engine.verify().ok


# ---- numbers -------------------------------------------------------------------------------------
def test_numbers_are_unique_across_two_engines_on_one_database(engine: Engine, make_engine):
    other = make_engine()
    numbers = []
    for i in range(6):
        numbers.append((engine if i % 2 else other).open("refund", refund_facts(), actor=CUSTOMER).number)
        numbers.append((other if i % 2 else engine).open("complaint", {"order_id": f"O{i}"}, actor=CUSTOMER).number)
    assert len(set(numbers)) == len(numbers)
    refunds = sorted(n for n in numbers if n.startswith("RF-"))
    assert refunds == [f"RF-20261122-{n:06d}" for n in range(1, 7)]
    assert all(re.fullmatch(r"CP-20261122-\d{6}", n) for n in numbers if n.startswith("CP-"))


def test_numbers_are_unique_when_engines_open_cases_concurrently(engine: Engine, make_engine):
    engines = [engine, make_engine(), make_engine()]
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(e: Engine) -> None:
        try:
            for _ in range(8):
                n = e.open("refund", refund_facts(), actor=CUSTOMER).number
                with lock:
                    numbers.append(n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(numbers) == 24 and len(set(numbers)) == 24
    assert len(engine.find(limit=None)) == 24
    assert engine.verify().ok


def test_numbers_carry_the_local_date_of_the_policy_time_zone(engine: Engine, clock: FixedClock):
    clock.set("2026-11-22T23:30:00+08:00")
    assert engine.open("refund", refund_facts(), actor=CUSTOMER).number.startswith("RF-20261122-")
    clock.set("2026-11-22T17:30:00+00:00")  # 01:30 on the 23rd in Shanghai
    assert engine.open("refund", refund_facts(), actor=CUSTOMER).number == "RF-20261123-000001"


# ---- tamper detection ----------------------------------------------------------------------------
def _two_cases(engine: Engine) -> tuple[str, str]:
    a = engine.open("refund", refund_facts(), actor=CUSTOMER)
    engine.fire(a.number, "review", actor=AGENT)
    engine.fire(a.number, "approve", actor=AGENT)
    b = engine.open("refund", refund_facts(order_id="SO-2"), actor=CUSTOMER)
    engine.fire(b.number, "review", actor=AGENT)
    report = engine.verify()
    assert report.ok and report.cases_checked == 2 and report.entries_checked == 5
    return a.number, b.number


def test_verify_detects_a_tampered_audit_data_column(engine: Engine, raw: sa.Engine):
    a, _ = _two_cases(engine)
    changed = execute(raw, "UPDATE audit_entries SET data = :d WHERE number = :n AND seq = 1",
                      d='{"amount":"5900.00","order_id":"SO-10001","paid":"5900.00"}', n=a)
    assert changed == 1
    report = engine.verify()
    assert not report.ok
    assert report.broken_cases == [a]
    assert any(p.number == a and p.seq == 1 for p in report.problems)


def test_verify_detects_a_tampered_audit_event_column(engine: Engine, raw: sa.Engine):
    _, b = _two_cases(engine)
    assert execute(raw, "UPDATE audit_entries SET event = 'reject' WHERE number = :n AND seq = 2", n=b) == 1
    report = engine.verify()
    assert report.broken_cases == [b]
    assert next(p.seq for p in report.problems if p.number == b) == 2


def test_verify_detects_a_deleted_audit_entry(engine: Engine, raw: sa.Engine):
    a, _ = _two_cases(engine)
    assert execute(raw, "DELETE FROM audit_entries WHERE number = :n AND seq = 2", n=a) == 1
    assert engine.verify().broken_cases == [a]


def test_verify_detects_a_case_row_whose_state_was_changed(engine: Engine, raw: sa.Engine):
    a, _ = _two_cases(engine)
    assert execute(raw, "UPDATE cases SET state = 'refunded' WHERE number = :n", n=a) == 1
    report = engine.verify()
    assert report.broken_cases == [a]
    assert any("state" in p.problem for p in report.problems)


def test_verify_detects_case_facts_changed_behind_its_back(engine: Engine, raw: sa.Engine):
    _, b = _two_cases(engine)
    facts = engine.get(b).facts | {"amount": "590.00"}
    assert execute(raw, "UPDATE cases SET facts = :f WHERE number = :n", f=json.dumps(facts), n=b) == 1
    assert engine.verify().broken_cases == [b]


def test_verify_detects_a_tampered_policy_version(engine: Engine, make_engine, clock: FixedClock, raw: sa.Engine):
    facts = {"order_id": "SO-9", "delivered": days_ago(clock, 20), "reason": "no_reason", "condition": "unused",
             "evidence": ["order_record"]}
    case = engine.open("return", facts, actor=CUSTOMER)
    pinned = case.policy
    # Someone rewrites the stored rules of the pinned version behind casework's back: 7 days become 30.
    with raw.begin() as conn:
        source = conn.execute(sa.text("SELECT source FROM policy_versions WHERE hash = :h"),
                              {"h": pinned.hash}).scalar()
        assert source is not None and "within: 7d" in source
        if raw.dialect.name == "postgresql":  # the append-only trigger refuses it: switched off, as a superuser can
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.execute(sa.text("UPDATE policy_versions SET source = :s WHERE hash = :h"),
                     {"s": source.replace("within: 7d", "within: 30d"), "h": pinned.hash})
    # An engine running another version has nothing of the pinned one cached: it reads it from the database.
    fresh = make_engine(policies=parse_policy(_policy_b(), "policies-b.yaml"))
    assert not fresh.verify().ok, "verify() must notice that a stored policy version no longer matches its hash"
    # And the altered rules must not silently decide the case pinned to the original version.
    with contextlib.suppress(CaseworkError):
        fresh.fire(case.number, "approve", actor=AGENT)
    assert fresh.get(case.number).state == "submitted"
    assert {e.policy.hash for e in fresh.history(case.number)} == {pinned.hash}


# ---- concurrent writers --------------------------------------------------------------------------
@pytest.mark.parametrize("retries", [0, 50])
def test_concurrent_fires_on_one_case_never_half_write(engine: Engine, make_engine, retries: int):
    case = engine.open("refund", refund_facts(), actor=CUSTOMER)
    engines = [engine, make_engine(), make_engine()]
    applied: list[int] = []
    lost: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int, e: Engine) -> None:
        for j in range(5):
            try:
                e.fire(case.number, "provide_evidence", actor=AGENT, data={"evidence": [f"photo=w{i}-{j}.jpg"]},
                       retries=retries)
                with lock:
                    applied.append(i)
            except ConcurrentUpdate:
                with lock:
                    lost.append(i)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, e)) for i, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(applied) + len(lost) == 15
    if retries:
        assert not lost
    final = engine.get(case.number)
    assert final.version == 1 + len(applied)
    assert len(final.facts["evidence"]) == len(applied)
    trail = engine.history(case.number)
    assert [e.seq for e in trail] == list(range(1, len(applied) + 2))
    assert all(e.outcome == "applied" for e in trail)
    assert engine.verify().ok


# ---- queries -------------------------------------------------------------------------------------
def test_find_filters_by_kind_state_order_and_customer(engine: Engine, clock: FixedClock):
    other = Actor("cust-2002", "customer")
    r1 = engine.open("refund", refund_facts(order_id="SO-1"), actor=CUSTOMER)
    clock.advance(minutes=1)
    r2 = engine.open("refund", refund_facts(order_id="SO-2"), actor=other)
    clock.advance(minutes=1)
    d1 = engine.open("dispute", {"order_id": "SO-1", "amount": "5.00", "paid": "59.00"}, actor=CUSTOMER)
    clock.advance(minutes=1)
    c1 = engine.open("complaint", {"order_id": "SO-2"}, actor=other)
    engine.fire(r2.number, "review", actor=AGENT)

    def numbers(**kw: Any) -> list[str]:
        return [c.number for c in engine.find(**kw)]

    assert numbers() == [c1.number, d1.number, r2.number, r1.number]  # newest first
    assert numbers(kind="refund") == [r2.number, r1.number]
    assert numbers(state="under_review") == [r2.number]
    assert numbers(kind="refund", state="submitted") == [r1.number]
    assert numbers(order_id="SO-1") == [d1.number, r1.number]
    assert numbers(customer="cust-2002") == [c1.number, r2.number]
    assert numbers(customer="cust-2002", kind="complaint") == [c1.number]
    assert numbers(order_id="SO-9") == []
    assert numbers(limit=2) == [c1.number, d1.number]
    assert numbers(limit=2, offset=2) == [r2.number, r1.number]
    found = engine.find(kind="dispute")[0]
    assert found == engine.get(d1.number)


def test_a_read_inside_a_write_transaction_sees_what_a_plain_read_sees(engine):
    number = engine.open("refund", {"order_id": "HP-1", "amount": "10.00", "paid": "10.00"},
                         actor=Actor("cust-1", "customer")).number
    fired = engine.fire(number, "review", actor=Actor("alice", "agent"))
    assert engine.get(number) == fired
    with engine.store.transaction() as tx:
        inside = tx.get(number)
    assert inside is not None and inside.case == fired
    assert engine.verify().ok


def test_a_write_transaction_is_all_or_nothing_and_leaves_the_store_usable(engine):
    from casework.transition import step

    customer = Actor("cust-1", "customer")
    number = engine.open("refund", {"order_id": "TX-1", "amount": "10.00", "paid": "10.00"}, actor=customer).number
    before = engine.history(number)

    class Boom(Exception):
        pass

    # A failure after a write: the write is rolled back and the failure propagates unchanged.
    with pytest.raises(Boom), engine.store.transaction() as tx:
        stored = tx.get(number)
        assert stored is not None
        t = step(stored.case, stored.last_seq, stored.last_hash, event="approve", to_state=None, verdicts=(),
                 actor=AGENT, data={}, now=stored.case.updated_at, policy=engine.policy)
        tx.extend_trail(stored, t.entry.seq, t.entry.hash)
        tx.append([(stored.id, t.entry, t.texts, t.case)])
        raise Boom()
    assert engine.history(number) == before

    # A database error inside the transaction becomes a StoreError naming the database.
    with pytest.raises(StoreError, match="database error on"), engine.store.transaction() as tx:
        tx.cursor.execute("SELECT no_such_column FROM cases")

    # Either way the next transaction works: nothing was left open or locked.
    assert engine.fire(number, "review", actor=AGENT).state == "under_review"
    assert engine.verify().ok
