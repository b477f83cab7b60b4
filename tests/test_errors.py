"""Errors an API can return: a status, a JSON body, a distinct conflict for an event the case's state does
not have, and every error surviving pickling (a worker process hands it back) with no secret in it."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

import casework
from casework import (
    Actor,
    BrokerUnavailable,
    CaseNotFound,
    CaseworkError,
    ConcurrentUpdate,
    Decision,
    Engine,
    EventNotAvailable,
    IdempotencyConflict,
    InvalidImportFile,
    InvalidInput,
    PolicyError,
    PolicyProblem,
    PolicyTestsFailed,
    Refused,
    SchemaOutOfDate,
    StoreError,
    TransitionDenied,
    UniqueViolation,
    UnknownPolicyVersion,
    Unreadable,
    Verdict,
    WriteConflict,
)

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
REFUSED = Decision("refund", "approve", "under_review", "approved", (
    Verdict("refund_amount_within_paid", False, "amount_exceeds_paid", "amount 80.00 is more than paid 59.00",
            {"amount": "80.00", "paid": "59.00"}, "policies.yaml:90"),), None)
UNAVAILABLE = Decision("refund", "receive", "submitted", None, (
    Verdict("machine", False, "not_available", "receive is not possible from submitted",
            {"possible": ["review", "cancel"]}),), None)


def every_error() -> list[CaseworkError]:
    """One of each error casework raises, with its context."""
    return [
        InvalidInput("amount 'abc' is not a valid amount", field="amount", value="abc"),
        InvalidImportFile("cases.jsonl:3: not JSON", file="cases.jsonl", line=3),
        IdempotencyConflict("k-1", "fire RF-1 review"),
        PolicyError([PolicyProblem("p.yaml", 3, 5, "unknown guard 'windo'")]),
        CaseNotFound("RF-20261122-000009", ["RF-20261122-000001"]),
        StoreError("cannot use database postgresql://casework:***@db/cw", url="postgresql://casework:***@db/cw"),
        SchemaOutOfDate("schema 1 is older than 3; run 'casework db upgrade'"),
        Unreadable("case RF-1: unreadable row"),
        UniqueViolation("duplicate key"),
        TransitionDenied(REFUSED, "RF-20261122-000001"),
        TransitionDenied(UNAVAILABLE, "RF-20261122-000001"),
        ConcurrentUpdate("RF-20261122-000001", 3, 4),
        WriteConflict("RF-20261122-000001", 3),
        UnknownPolicyVersion("3f2a", ["3f2a9c0d1e2f default 2026-11", "3f2a77aa0b1c next"], ambiguous=True),
        PolicyTestsFailed("next", ["no-reason return on day 7 is allowed: expected allowed, got refused"], 12),
        BrokerUnavailable("cannot reach nats://relay:***@nats:4222", servers="nats://relay:***@nats:4222"),
    ]


def test_every_exported_error_is_in_the_list_above():
    exported = {name for name in casework.__all__
                if isinstance(getattr(casework, name), type) and issubclass(getattr(casework, name), CaseworkError)}
    assert exported - {"Refused", "CaseworkError"} == {type(e).__name__ for e in every_error()}


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling_with_its_message_and_context(error: CaseworkError):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.to_json() == error.to_json()


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
def test_an_error_answers_an_api_with_a_status_and_a_json_body(error: CaseworkError):
    body = json.loads(json.dumps(error.to_json()))
    assert body["type"] == type(error).__name__ and body["message"] == str(error)
    assert body["http_status"] == error.http_status and 400 <= error.http_status < 600


def test_statuses_tell_a_client_what_to_do():
    status = {type(e).__name__: e.http_status for e in every_error()}
    assert status["InvalidInput"] == 400 and status["CaseNotFound"] == 404
    assert status["TransitionDenied"] == 422  # the policy said no: the request as such cannot succeed
    assert status["EventNotAvailable"] == 409  # a conflict with the case's current state
    assert status["IdempotencyConflict"] == 409 and status["ConcurrentUpdate"] == 409
    assert status["StoreError"] == 503


def test_a_refusal_carries_its_decision_in_json():
    body = TransitionDenied(REFUSED, "RF-20261122-000001").to_json()
    assert body["number"] == "RF-20261122-000001"
    assert body["decision"]["reasons"][0]["code"] == "amount_exceeds_paid"


def test_an_idempotency_conflict_is_not_a_malformed_value():
    assert not issubclass(IdempotencyConflict, InvalidInput)


def test_an_event_the_state_does_not_have_is_its_own_refusal(sqlite_engine: Engine):
    case = sqlite_engine.open("refund", {"order_id": "SO-1", "amount": "59.00", "paid": "59.00",
                                         "reason": "not_delivered"}, actor=CUSTOMER)
    with pytest.raises(EventNotAvailable) as info:
        sqlite_engine.fire(case.number, "pay", actor=AGENT)
    assert isinstance(info.value, TransitionDenied) and isinstance(info.value, Refused)  # old handlers still catch it
    assert info.value.decision.codes == ["not_available"] and info.value.http_status == 409
    with pytest.raises(TransitionDenied) as denied:
        sqlite_engine.fire(case.number, "cancel", actor=Actor("cust-2", "customer"))
    assert type(denied.value) is TransitionDenied and denied.value.http_status == 422


def test_no_error_holds_a_database_password(tmp_path):
    with pytest.raises(StoreError) as info:
        Engine("postgresql://casework:s3cret-pw@127.0.0.1:1/none")
    text = json.dumps(info.value.to_json()) + repr(pickle.loads(pickle.dumps(info.value)).__dict__)
    assert "s3cret-pw" not in text and "s3cret-pw" not in str(info.value)


def _context(error: CaseworkError) -> dict[str, Any]:
    return {k: v for k, v in error.to_json().items() if k not in ("type", "message", "http_status")}


def test_the_json_body_names_the_bad_value_and_the_field():
    assert _context(InvalidInput("amount 'abc' is not a valid amount", field="amount", value="abc")) == {
        "field": "amount", "value": "abc"}
    assert _context(IdempotencyConflict("k-1", "fire RF-1 review")) == {"key": "k-1", "original": "fire RF-1 review"}


def test_a_passed_verdict_carries_no_failure_code(engine: Engine):
    case = engine.open("refund", {"order_id": "SO-1", "amount": "2500.00", "paid": "2500.00",
                                  "reason": "not_delivered"}, actor=CUSTOMER)
    engine.fire(case.number, "review", actor=AGENT)
    decision = engine.check(case.number, "approve", actor=AGENT)  # over the agent's limit, within paid
    passed, failed = [v for v in decision.verdicts if v.passed], decision.reasons
    assert passed and failed and decision.codes == ["approval_limit_exceeded"]
    assert all(v.code is None and v.to_json()["code"] is None for v in passed)
    with pytest.raises(TransitionDenied):
        engine.fire(case.number, "approve", actor=AGENT)
    stored = engine.history(case.number)[-1].verdicts  # as written into the trail
    assert {v["code"] for v in stored if v["passed"]} == {None}
    assert {v["code"] for v in stored if not v["passed"]} == {"approval_limit_exceeded"}


# ---- malformed arguments are InvalidInput (400), naming the value, never a crash or a 503 -------------------------
def _opened(engine: Engine) -> str:
    return engine.open("refund", {"order_id": "SO-1", "amount": "59.00", "paid": "59.00"}, actor=CUSTOMER).number


@pytest.mark.parametrize(("call", "field", "says"), [
    (lambda e, n: e.fire(n, "review", actor=AGENT, data=["photo"]), "data", "data ['photo']: expected a mapping"),
    (lambda e, n: e.fire(n, "review", actor=AGENT, data="evidence"), "data", "data 'evidence': expected a mapping"),
    (lambda e, n: e.check(n, "review", actor=AGENT, data=[1]), "data", "data [1]: expected a mapping"),
    (lambda e, n: e.open("refund", ["SO-1"], actor=CUSTOMER), "facts", "facts ['SO-1']: expected a mapping"),
    (lambda e, n: e.open("refund", None, actor=CUSTOMER), "facts", "facts None: expected a mapping"),
    (lambda e, n: e.get(123), "number", "case number 123: expected text"),
    (lambda e, n: e.history(None), "number", "case number None: expected text"),
    (lambda e, n: e.get("RF-\x00"), "case number", "case number contains a NUL character"),
    (lambda e, n: e.get("\ud800"), "case number", "contains a lone surrogate"),
    (lambda e, n: e.fire(n, "review", actor=AGENT, data={"note": "\udc80"}), "note", "contains a lone surrogate"),
    (lambda e, n: e.find(limit=-1), "limit", "limit -1: expected a whole number of cases"),
    (lambda e, n: e.find(limit="x"), "limit", "limit 'x': expected a whole number of cases"),
    (lambda e, n: e.find(offset=-1), "offset", "offset -1: expected a whole number, 0 or more"),
], ids=["fire-list", "fire-text", "check-list", "open-list", "open-none", "get-int", "history-none", "get-nul",
        "get-surrogate", "data-surrogate", "find-limit", "find-limit-text", "find-offset"])
def test_a_malformed_argument_is_invalid_input_naming_it(engine: Engine, call: Any, field: str, says: str):
    number = _opened(engine)
    with pytest.raises(InvalidInput) as raised:
        call(engine, number)
    assert says in str(raised.value) and raised.value.field == field
    assert raised.value.to_json()["http_status"] == 400
    assert [e.event for e in engine.history(number)] == ["open"]  # nothing recorded for it


@pytest.mark.parametrize(("args", "kwargs", "value"), [
    ((42,), {}, "int"), (("sqlite:///:memory:",), {"schema": "Bad-X"}, "Bad-X"),
    (("sqlite:///:memory:",), {"prefix": 5}, 5)])
def test_a_bad_database_or_footprint_names_its_value_in_json(args: Any, kwargs: Any, value: Any):
    with pytest.raises(InvalidInput) as raised:
        Engine(*args, **kwargs)
    assert raised.value.to_json()["value"] == value


def test_a_compare_and_set_lost_to_a_recorded_refusal_says_so():
    lost = ConcurrentUpdate("RF-1", 2, 2)
    assert "another attempt on it was recorded first, it is still at version 2" in str(lost)
    assert "it is now at version 3" in str(ConcurrentUpdate("RF-1", 2, 3))
