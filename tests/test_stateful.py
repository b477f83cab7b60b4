"""A model-based test: random cases of every kind, random events by random actors, invariants after each step.

Runs on an in-memory SQLite database (the store tests cover both backends). After every step:
- each stored state is a state of its kind's machine;
- each audit trail is numbered 1, 2, 3, ... and hash-chained;
- each applied entry starts where the previous applied entry ended;
- ``engine.verify()`` finds nothing wrong;
and each refused event leaves the case exactly as it was, adding one refused entry to its trail.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule

from casework import (
    KINDS,
    Actor,
    ConcurrentUpdate,
    Engine,
    FixedClock,
    IdempotencyConflict,
    InvalidInput,
    PolicySet,
    TransitionDenied,
    load_policy,
)
from casework.audit import GENESIS, hash_of
from casework.facts import CUSTOMER_WRITABLE

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROLES = ("customer", "agent", "supervisor", "system")
CUSTOMERS = ("cust-1", "cust-2")
EVIDENCE = ("order_record", "invoice", "photo", "video", "payment_voucher", "order_confirmation",
            "written_complaint")
REASONS = {
    "refund": ["not_delivered", "not_as_described", "service_unsatisfactory", "duplicate_charge", "other"],
    "return": ["no_reason", "defective", "damaged_in_transit", "wrong_item"],
}

money = st.builds(lambda units, cents: f"{units}.{cents:02d}", st.sampled_from([0, 1, 20, 59, 1999, 2000, 2500, 6000]),
                  st.sampled_from([0, 1, 50]))
actors = st.builds(
    Actor,
    st.sampled_from(["alice", "bob", *CUSTOMERS, "system"]),
    st.sampled_from(ROLES),
)


@st.composite
def case_facts(draw: st.DrawFn, kind: str, today: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"order_id": draw(st.sampled_from(["SO-1", "SO-2", "SO-3"]))}
    if kind in ("refund", "dispute", "return"):
        paid = draw(money)
        facts["paid"] = paid
        facts["amount"] = draw(st.one_of(st.just(paid), money))
    if kind == "return":
        facts["delivered"] = (today - timedelta(days=draw(st.integers(0, 20)))).isoformat()
        facts["condition"] = draw(st.sampled_from(["unopened", "unused", "used", "damaged"]))
        facts["category"] = draw(st.sampled_from(["apparel", "electronics", "custom_made", "perishable_food"]))
    if kind in REASONS:
        facts["reason"] = draw(st.sampled_from(REASONS[kind]))
    facts["evidence"] = draw(st.lists(st.sampled_from(EVIDENCE), max_size=3, unique=True))
    if draw(st.booleans()):
        facts["flags"] = draw(st.lists(st.sampled_from(["fraud_confirmed", "vip"]), max_size=2, unique=True))
    if kind == "refund":
        facts["refunds_last_30_days"] = draw(st.integers(0, 7))
    return facts


event_data = st.fixed_dictionaries({}, optional={
    "evidence": st.lists(st.sampled_from(EVIDENCE), min_size=1, max_size=2, unique=True),
    "note": st.sampled_from(["resolved by phone", "see attachment"]),
    "adjustment": money,
    "amount": money,  # a judged fact: refused with fact_judged once judged (or fact_not_permitted for a customer)
})


@cache
def default_policy() -> PolicySet:
    return load_policy()


class CaseworkMachine(RuleBasedStateMachine):
    cases = Bundle("cases")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock("2026-11-22T10:00:00+08:00")
        self.engine = Engine("sqlite:///:memory:", policies=default_policy(), clock=self.clock)
        self.kinds: dict[str, str] = {}
        self.keys: dict[tuple[str, str], tuple[str, str, Actor]] = {}  # per caller: (actor id, key)

    def teardown(self) -> None:
        self.engine.close()

    # ---- rules ---------------------------------------------------------------------------------
    @rule(target=cases, kind=st.sampled_from(sorted(KINDS)), data=st.data(),
          customer=st.sampled_from(CUSTOMERS), role=st.sampled_from(["customer", "customer", "agent", "system"]))
    def open_case(self, kind: str, data: st.DataObject, customer: str, role: str):
        facts = data.draw(case_facts(kind, self.clock().astimezone(SHANGHAI).date()))
        actor = Actor(customer if role == "customer" else "alice", role)
        if role != "customer":
            facts["customer"] = customer
        try:
            channel = data.draw(st.sampled_from(["app", "web", "chat"]))
            case = self.engine.open(kind, facts, actor=actor, channel=channel)
        except TransitionDenied as denied:  # (on the trail all the same, as an entry of no case)
            desk_only = role == "customer" and not {"flags", "refunds_last_30_days"}.isdisjoint(facts)
            assert (role == "system" and denied.decision.codes == ["role_not_permitted"]) or (
                desk_only and denied.decision.codes == ["fact_not_permitted"])
            return multiple()
        assert role != "system" and not (role == "customer" and {"flags", "refunds_last_30_days"} & set(facts))
        assert case.state == KINDS[kind].initial and case.version == 1
        assert case.customer == customer
        self.kinds[case.number] = kind
        return case.number

    @rule(number=cases, data=st.data(), actor=actors)
    def fire(self, number: str, data: st.DataObject, actor: Actor):
        kind = self.kinds[number]
        spec = KINDS[kind]
        before = self.engine.get(number)
        available = spec.available(before.state)
        # Mostly events possible from here, sometimes any event of the kind (often not available).
        if available and data.draw(st.integers(0, 3)):
            event = data.draw(st.sampled_from(available))
        else:
            event = data.draw(st.sampled_from(spec.events))
        payload = data.draw(event_data)
        trail_before = self.engine.history(number)
        try:
            after = self.engine.fire(number, event, actor=actor, data=payload)
        except TransitionDenied as denied:
            decision = denied.decision
            assert not decision.allowed and decision.reasons
            if spec.target(before.state, event) is None:
                assert decision.codes == ["not_available"]
            elif actor.role == "customer" and set(payload) - CUSTOMER_WRITABLE:
                # Data the customer may not write: refused by the rules, and recorded like every refusal.
                assert "fact_not_permitted" in decision.codes
            self.assert_refusal_changed_nothing(number, before, trail_before, event, actor)
            return
        target = spec.target(before.state, event)
        assert target is not None, f"{event} applied from {before.state}"
        assert after.state == target
        assert after.version == before.version + 1
        assert self.engine.get(number) == after
        trail = self.engine.history(number)
        assert len(trail) == len(trail_before) + 1
        last = trail[-1]
        assert (last.event, last.outcome, last.from_state, last.to_state) == (event, "applied", before.state, target)
        assert (last.actor, last.role) == (actor.id, actor.role)

    @rule(number=cases, actor=actors)
    def dry_run_next(self, number: str, actor: Actor):
        before = self.engine.get(number)
        trail_before = self.engine.history(number)
        decisions = self.engine.next_events(number, actor=actor)
        assert [d.event for d in decisions] == list(KINDS[self.kinds[number]].available(before.state))
        assert self.engine.get(number) == before
        assert self.engine.history(number) == trail_before

    @rule(number=cases, key=st.sampled_from(["k1", "k2", "k3"]), actor=actors, data=st.data())
    def fire_with_key(self, number: str, key: str, actor: Actor, data: st.DataObject):
        mine = (actor.id, key)  # keys are per caller
        event = data.draw(st.sampled_from(KINDS[self.kinds[number]].events))
        before = self.engine.get(number)
        trail_before = self.engine.history(number)
        try:
            self.engine.fire(number, event, actor=actor, key=key)
        except IdempotencyConflict:
            assert mine in self.keys and self.keys[mine] != (number, event, actor)
            assert self.engine.get(number) == before
            assert self.engine.history(number) == trail_before
            return
        except TransitionDenied:
            pass
        if mine in self.keys:
            # A replay: the same request again, nothing new happened.
            assert self.keys[mine] == (number, event, actor)
            assert self.engine.get(number) == before
            assert self.engine.history(number) == trail_before
        else:
            self.keys[mine] = (number, event, actor)
            assert len(self.engine.history(number)) == len(trail_before) + 1

    @rule(number=cases, stale=st.booleans())
    def fire_with_expected_version(self, number: str, stale: bool):
        before = self.engine.get(number)
        available = KINDS[self.kinds[number]].available(before.state)
        if not available:
            return
        expected = before.version - 1 if stale else before.version
        try:
            after = self.engine.fire(number, available[0], actor=Actor("sam", "supervisor"),
                                     data={"note": "n", "evidence": ["order_record"]}, expected_version=expected)
        except ConcurrentUpdate:
            assert stale
            assert self.engine.get(number) == before
            return
        except TransitionDenied:
            assert not stale
            return
        assert not stale and after.version == before.version + 1

    @rule(hours=st.integers(1, 72))
    def time_passes(self, hours: int):
        self.clock.advance(hours=hours)

    @rule(number=consumes(cases))
    def forget(self, number: str):
        # Stop firing at this case (it stays in the database and in every invariant).
        pass

    @rule(data=st.data())
    def bad_input_changes_nothing(self, data: st.DataObject):
        if not self.kinds:
            return
        number = data.draw(st.sampled_from(sorted(self.kinds)))
        before = self.engine.get(number)
        trail_before = self.engine.history(number)
        bad = data.draw(st.sampled_from([
            ("no_such_event", {}, Actor("alice", "agent")),
            ("cancel", {"amount": 1.5}, Actor("alice", "agent")),
            ("cancel", {"evidence": ["selfie"]}, Actor("alice", "agent")),
            ("cancel", {}, Actor("alice", "admin")),
        ]))
        event, payload, actor = bad
        try:
            self.engine.fire(number, event, actor=actor, data=payload)
        except InvalidInput:
            pass
        else:  # pragma: no cover - reported by the assertion
            raise AssertionError(f"{bad} was accepted")
        assert self.engine.get(number) == before
        assert self.engine.history(number) == trail_before

    # ---- helpers -------------------------------------------------------------------------------
    def assert_refusal_changed_nothing(self, number: str, before: Any, trail_before: list[Any], event: str,
                                       actor: Actor) -> None:
        after = self.engine.get(number)
        assert after == before  # state, version, facts, deadlines all unchanged
        trail = self.engine.history(number)
        assert trail[:-1] == trail_before
        assert len(trail) == len(trail_before) + 1
        last = trail[-1]
        assert (last.event, last.outcome, last.from_state, last.to_state) == (event, "refused", before.state, None)
        assert (last.actor, last.role) == (actor.id, actor.role)
        assert last.reasons

    # ---- invariants ----------------------------------------------------------------------------
    @invariant()
    def every_case_is_consistent(self):
        for number, kind in self.kinds.items():
            case = self.engine.get(number)
            spec = KINDS[kind]
            assert case.kind == kind
            assert case.state in spec.states
            assert case.closed == (case.state in spec.final)
            trail = self.engine.history(number)
            assert [e.seq for e in trail] == list(range(1, len(trail) + 1))
            assert trail[0].event == "open" and trail[0].outcome == "applied"
            assert trail[0].prev_hash == GENESIS
            state = None
            applied = 0
            for i, entry in enumerate(trail):
                if i:
                    assert entry.prev_hash == trail[i - 1].hash
                assert hash_of(entry) == entry.hash
                assert entry.policy == case.policy
                if entry.outcome == "applied":
                    applied += 1
                    assert entry.from_state == state
                    assert entry.to_state in spec.states
                    state = entry.to_state
                else:
                    assert entry.outcome == "refused"
                    assert entry.to_state is None
                    assert entry.from_state == state
            assert state == case.state
            assert applied == case.version

    @invariant()
    def money_out_is_what_was_approved(self):
        for number, kind in self.kinds.items():
            facts = self.engine.get(number).facts
            if "paid_out" in facts:
                [paying] = KINDS[kind].payouts.values()
                limit = "amount" if kind == "dispute" else "paid"  # what the rule capped it by
                assert facts["paid_out"] == facts[paying]
                assert Decimal(facts["paid_out"]) <= Decimal(facts[limit])

    @invariant()
    def verify_is_ok(self):
        report = self.engine.verify()
        assert report.ok, report.problems
        assert report.cases_checked == len(self.kinds)


CaseworkMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCasework = CaseworkMachine.TestCase
