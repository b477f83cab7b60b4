"""The transactional outbox, ``engine.changes`` and the hooks, on both backends."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import EngineFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tampering import query, run

from casework import (
    Actor,
    AsyncEngine,
    Change,
    ConcurrentUpdate,
    Engine,
    FixedClock,
    InvalidInput,
    TransitionDenied,
    Unreadable,
)
from casework.jsontext import strict
from casework.transition import step

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
REFUND = {"order_id": "SO-1", "amount": "129.50", "paid": "129.50", "phone": "13800138000"}


def paid_refund(engine: Engine) -> str:
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    for event in ("review", "approve", "pay"):
        engine.fire(number, event, actor=AGENT)
    return number


def test_every_applied_transition_is_a_change_in_commit_order_with_money_as_decimal_strings(engine: Engine):
    number = paid_refund(engine)
    changes = engine.changes()
    assert [(c.number, c.event, c.entry.from_state, c.entry.to_state) for c in changes] == [
        (number, "open", None, "submitted"), (number, "review", "submitted", "under_review"),
        (number, "approve", "under_review", "approved"), (number, "pay", "approved", "refunded")]
    assert [c.id for c in changes] == sorted(c.id for c in changes) and len({c.id for c in changes}) == 4
    pay = changes[-1].to_json()
    assert set(pay) == {"id", "number", "kind", "seq", "event", "from_state", "to_state", "outcome", "at", "actor",
                        "role", "channel", "reasons", "data", "version", "facts", "policy"}
    assert (pay["kind"], pay["outcome"], pay["actor"], pay["role"], pay["version"]) == (
        "refund", "applied", "alice", "agent", 4)
    assert pay["data"]["paid_out"] == "129.50" and pay["facts"]["amount"] == "129.50"
    assert Decimal(pay["facts"]["paid"]) == Decimal("129.50")
    assert json.loads(json.dumps(pay)) == pay  # plain JSON: no floats, no datetimes


def test_a_cursor_reads_on_from_where_it_stopped_and_misses_nothing(engine: Engine):
    paid_refund(engine)
    first = engine.changes(limit=3)
    rest = engine.changes(after=first[-1].id or 0, limit=100)
    assert [c.event for c in first + rest] == ["open", "review", "approve", "pay"]
    assert engine.changes(after=rest[-1].id or 0) == []
    number = engine.open("complaint", {"order_id": "SO-2"}, actor=CUSTOMER).number
    assert [c.number for c in engine.changes(after=rest[-1].id or 0)] == [number]


def test_refusals_are_changes_only_when_the_engine_is_told_so(make_engine: EngineFactory):
    engine = make_engine()
    number = engine.open("refund", {**REFUND, "amount": "9999.00", "paid": "9999.00"}, actor=CUSTOMER).number
    with pytest.raises(TransitionDenied):
        engine.fire(number, "approve", actor=AGENT)  # over the agent's limit
    assert [c.event for c in engine.changes()] == ["open"]
    everything = make_engine()
    everything.store.outbox.mode = "all"
    with pytest.raises(TransitionDenied):
        everything.fire(number, "approve", actor=AGENT)
    refused = everything.changes()[-1]
    assert (refused.event, refused.outcome, refused.entry.to_state) == ("approve", "refused", None)
    assert refused.to_json()["reasons"][0]["code"] == "approval_limit_exceeded"


def test_an_engine_with_the_outbox_off_writes_no_change(db_url: str, clock: FixedClock):
    with Engine(db_url, clock=clock, outbox="off") as engine:
        paid_refund(engine)
        assert engine.changes() == []
    with pytest.raises(InvalidInput, match="outbox 'some': expected one of applied, all, off"):
        Engine(db_url, clock=clock, outbox="some")


def test_personal_facts_are_masked_unless_revealed(engine: Engine):
    paid_refund(engine)
    opened = engine.changes(limit=1)[0]
    assert opened.facts["phone"] == "13*******00" and opened.entry.data["phone"] == "13*******00"
    assert engine.changes(limit=1, reveal=True)[0].facts["phone"] == "13800138000"


def test_a_malformed_cursor_or_limit_is_bad_input(engine: Engine):
    with pytest.raises(InvalidInput, match="after -1: expected a global id"):
        engine.changes(after=-1)
    with pytest.raises(InvalidInput, match="limit 0: expected a whole number from 1 to 10000"):
        engine.changes(limit=0)
    with pytest.raises(InvalidInput, match="after '3'"):
        engine.changes(after="3")  # type: ignore[arg-type]


def test_a_rolled_back_transition_leaves_no_change(engine: Engine, db_url: str):
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    with pytest.raises(ConcurrentUpdate):
        engine.fire(number, "review", actor=AGENT, expected_version=7)
    with pytest.raises(RuntimeError), engine.store.transaction() as tx:  # written, then rolled back
        stored = tx.get(number)
        assert stored is not None
        t = step(stored.case, stored.last_seq, stored.last_hash, event="review", to_state="under_review",
                 verdicts=(), actor=AGENT, data={}, now=engine.now(), policy=engine.policy)
        tx.update_case(stored, t.case, t.entry.seq, t.entry.hash)
        tx.append([(stored.id, t.entry, t.texts, t.case)])
        raise RuntimeError("the host's own write failed")
    assert [c.event for c in engine.changes()] == ["open"]
    assert query(db_url, "SELECT count(*) FROM outbox") == [(1,)]
    assert engine.verify().ok


def test_sweeps_and_bulk_imports_write_changes_too(engine: Engine, clock: FixedClock):
    records = [{"kind": "complaint", "facts": {"order_id": f"SO-{i}", "customer": "c-9"}} for i in range(3)]
    report = engine.open_many(records, actor=AGENT)
    assert report.count == 3
    engine.sweep(now=clock.advance(hours=25))
    events = [(c.event, c.outcome) for c in engine.changes()]
    assert events.count(("open", "applied")) == 3 and events.count(("sla_breach", "applied")) == 3


def test_hooks_hear_of_each_change_after_commit_and_a_failing_one_undoes_nothing(
        engine: Engine, caplog: pytest.LogCaptureFixture):
    heard: list[Change] = []
    seen_committed: list[str] = []

    def broken(change: Change) -> None:
        raise ValueError("the host's mailer is down")

    def committed(change: Change) -> None:  # after commit: another reader sees the change already
        seen_committed.append(engine.get(change.number).state)

    engine.on_applied(broken)
    engine.on_applied(heard.append)
    engine.on_applied(committed)
    refused: list[Change] = []
    engine.on_refused(refused.append)
    with caplog.at_level(logging.ERROR, logger="casework.hooks"):
        number = paid_refund(engine)
    assert [c.event for c in heard] == ["open", "review", "approve", "pay"]
    assert seen_committed == ["submitted", "under_review", "approved", "refunded"]
    assert engine.get(number).state == "refunded"
    assert caplog.text.count("the transition stands") == 4 and "mailer is down" in caplog.text
    with pytest.raises(TransitionDenied):
        engine.fire(number, "approve", actor=AGENT)
    assert [(c.event, c.outcome) for c in refused] == [("approve", "refused")]
    if engine.store.dialect == "sqlite":
        assert [c.id for c in heard] == [c.id for c in engine.changes()]
    with pytest.raises(InvalidInput, match="not callable"):
        engine.on_applied("print")  # type: ignore[arg-type]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_entry_waiting_for_the_seal_is_read_once_sealed_never_skipped(engine: Engine, db_url: str):
    """PostgreSQL: while another transaction holds the chain's seal, a write commits unsealed (no global id
    yet); a reader then sees nothing after the cursor, not a later id, and sees it once it is sealed."""
    first = engine.open("refund", REFUND, actor=CUSTOMER).number
    cursor = engine.changes()[-1].id or 0
    holder = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("SELECT value FROM casework_meta WHERE key = 'audit_seal' FOR UPDATE")
            engine.fire(first, "review", actor=AGENT)  # committed, not sealed
            assert query(db_url, "SELECT count(*) FROM audit_entries WHERE gseq IS NULL") == [(1,)]
            assert engine.changes(after=cursor) == []  # the seal is held: nothing is skipped past
            conn.exec_driver_sql("ROLLBACK")
        waiting = engine.changes(after=cursor)  # sealed by the reader, then read
        assert [(c.number, c.event, c.id) for c in waiting] == [(first, "review", cursor + 1)]
    finally:
        holder.dispose()
    assert engine.verify().ok


# ---- the host's transaction (Engine.using) ------------------------------------------------------------------
class HostRollback(Exception):
    pass


def test_a_write_in_the_hosts_transaction_brings_its_change_along(db_url: str, clock: FixedClock):
    """A joined write's change row commits or rolls back with the host's transaction, and no hook hears of a
    change before the host has committed it (the host's commit is the host's: the outbox tells it)."""
    host = sa.create_engine(db_url)
    try:
        with Engine(host, clock=clock) as engine:
            heard: list[Change] = []
            engine.on_applied(heard.append)
            first = engine.open("refund", REFUND, actor=CUSTOMER).number
            assert [c.event for c in heard] == ["open"]
            with pytest.raises(HostRollback), host.begin() as conn, engine.using(conn):
                engine.fire(first, "review", actor=AGENT)
                assert [c.event for c in engine.changes()] == ["open", "review"]  # seen inside the transaction
                raise HostRollback
            assert [c.event for c in engine.changes()] == ["open"]  # rolled back with the host: no change
            with host.begin() as conn, engine.using(conn):
                engine.fire(first, "review", actor=AGENT)
                second = engine.open("refund", {**REFUND, "order_id": "SO-2"}, actor=CUSTOMER).number
            changes = engine.changes()
            assert [(c.number, c.event) for c in changes] == [(first, "open"), (first, "review"), (second, "open")]
            assert [c.id for c in changes] == sorted(c.id for c in changes)
            assert query(db_url, "SELECT count(*) FROM outbox") == [(3,)]
            assert [c.event for c in heard] == ["open"]  # the joined writes were told by the outbox alone
            assert engine.verify().ok
    finally:
        host.dispose()


def test_an_async_engine_reads_the_changes_as_a_coroutine(engine: Engine):
    number = paid_refund(engine)

    async def read() -> list[Change]:
        return await AsyncEngine(engine, workers=1).changes(after=0, limit=2)

    assert [(c.number, c.event) for c in asyncio.run(read())] == [(number, "open"), (number, "review")]


def test_a_whole_number_beyond_64_bits_reads_back_exactly(engine: Engine):
    """Stored JSON is read with orjson where it reads the same value as the standard library: a score of 30
    digits (orjson would make it a float) comes back as the same whole number in changes and their messages."""
    score = 123456789012345678901234567890
    engine.open("refund", {**REFUND, "score": score}, actor=CUSTOMER)
    (change,) = engine.changes(reveal=True)
    assert change.facts["score"] == score and change.entry.data["score"] == score
    assert type(change.facts["score"]) is int
    assert f'"score": {score}' in json.dumps(change.to_json())


@pytest.mark.parametrize("text", ['{"a":[1,"59.00",null,true]}', "123456789012345678901234567890",
                                  "-12345678901234567890", "18446744073709551615", '"12345678901234567890123"',
                                  '"\\ud800"', "NaN", '{"n":1e400}', '{"k":"退款"}', "[]"])
def test_jsontext_parse_reads_what_json_loads_reads(text: str):
    from casework.jsontext import parse

    expected = json.loads(text)
    for form in (text, text.encode()):
        got = parse(form)
        assert repr(got) == repr(expected) and type(got) is type(expected)


def relayed_bodies(engine: Engine, *, reveal: bool = False) -> list[bytes]:
    """The bodies the relay sends for every change (made from the outbox rows' stored texts where it can)."""
    personal = (lambda _policy: []) if reveal else engine.policies.personal_facts
    return [body for *_, body in engine.store.outbox.published(0, 10_000, personal)]


def as_published(changes: list[Change]) -> list[bytes]:
    return [strict(c.to_json()).encode() for c in changes]


def test_the_relays_bodies_are_the_changes_json_byte_for_byte_masked_or_revealed(make_engine: EngineFactory):
    """The relay puts the stored facts and data into its bodies as they are; masking a personal fact, a refusal's
    reasons, a whole number beyond 64 bits and text beyond ASCII come out exactly as ``Change.to_json()``."""
    engine = make_engine()
    engine.store.outbox.mode = "all"
    paid_refund(engine)  # a phone number: masked
    plain = engine.open("refund", {"order_id": "SO-2", "amount": "9999.00", "paid": "9999.00", "note": "退款 \"急\"",
                                   "score": 123456789012345678901234567890}, actor=CUSTOMER).number
    with pytest.raises(TransitionDenied):
        engine.fire(plain, "approve", actor=AGENT)  # over the agent's limit: a refusal, with its reasons
    changes = engine.changes(limit=100)
    assert any(c.outcome == "refused" and c.to_json()["reasons"] for c in changes)
    assert relayed_bodies(engine) == as_published(changes)
    assert relayed_bodies(engine, reveal=True) == as_published(engine.changes(limit=100, reveal=True))
    assert b"13800138000" not in b"".join(relayed_bodies(engine))


# Declared text facts, personal ones among them (masked), and a number (whole, of any size).
text_facts = st.dictionaries(
    st.sampled_from(["note", "comment", "tracking", "phone", "email", "customer_name"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)
    .filter(str.strip), max_size=4)
scores = st.dictionaries(st.just("score"), st.integers(min_value=0), max_size=1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=text_facts, score=scores)
def test_any_facts_are_relayed_exactly_as_the_change_publishes_them(engine: Engine, texts: dict[str, str],
                                                                   score: dict[str, int]):
    after = max((c.id or 0 for c in engine.changes(limit=10_000)), default=0)  # one engine for every example
    engine.open("refund", {"order_id": "SO-9", "amount": "10.00", "paid": "10.00", **texts, **score}, actor=CUSTOMER)
    (change,) = engine.changes(after=after)
    personal = engine.policies.personal_facts
    assert [body for *_, body in engine.store.outbox.published(after, 10, personal)] == as_published([change])


@pytest.mark.parametrize("damage", ['{"order_id": "SO-1", "amount": ', "not json"])
def test_a_change_whose_stored_facts_are_damaged_is_unreadable_never_a_body_that_is_not_json(
        engine: Engine, db_url: str, damage: str):
    """A facts text damaged in the outbox row after it was written stops the relay with Unreadable naming the
    case and its entry; it never goes out as a message body that does not parse."""
    number = engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER).number
    run(db_url, "UPDATE outbox SET facts = :f", f=damage)
    for read in (lambda: relayed_bodies(engine), lambda: relayed_bodies(engine, reveal=True),
                 lambda: engine.changes(limit=10)):
        with pytest.raises(Unreadable, match=f"case {number}: unreadable change of audit entry 1"):
            read()
