"""Refused openings are on the trail (issue 12): an opening the rules refuse is an audit entry of no case,
sealed into the global chain, checked by verify, shown to operators and counted by the report; a malformed
request is not an attempt and is not recorded. What a role may give when opening is the policy's."""

from __future__ import annotations

import json

import pytest
from conftest import EngineFactory
from tampering import query, run

from casework import Actor, Engine, InvalidInput, PolicySet, TransitionDenied, parse_policy

CUSTOMER, STRANGER = Actor("cust-1", "customer"), Actor("cust-2", "customer")
AGENT, MALLORY = Actor("alice", "agent"), Actor("mallory", "agent")
REFUND = {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}
RETURN = {"order_id": "SO-2", "delivered": "2026-11-20", "reason": "defective", "amount": "20.00"}
GRANTS = "\noperators:\n  alice: [agent]\n"


def refused(engine: Engine, kind: str, facts: dict[str, object], actor: Actor) -> list[str]:
    with pytest.raises(TransitionDenied) as denied:
        engine.open(kind, facts, actor=actor)
    assert denied.value.number is None
    return denied.value.decision.codes


def guarded_engine(make_engine: EngineFactory, default_policy: PolicySet) -> Engine:
    return make_engine(policies=parse_policy(default_policy.source + GRANTS, "guarded.yaml"))


def test_every_refused_opening_is_recorded_with_its_verdicts_and_verify_covers_it(
        make_engine: EngineFactory, default_policy: PolicySet):
    engine = guarded_engine(make_engine, default_policy)
    assert refused(engine, "refund", {**REFUND, "customer": "cust-1"}, MALLORY) == ["role_not_permitted"]
    assert refused(engine, "refund", {**REFUND, "customer": "cust-1"}, STRANGER) == ["role_not_permitted"]
    assert refused(engine, "refund", {**REFUND, "refunds_last_30_days": 0}, CUSTOMER) == ["fact_not_permitted"]
    assert refused(engine, "return", {**RETURN, "flags": ["vip"]}, CUSTOMER) == ["fact_not_permitted"]
    assert refused(engine, "complaint", {"order_id": "SO-3", "customer": "cust-1"}, Actor("system", "system")) == [
        "role_not_permitted", "role_not_permitted"]  # not granted, and the system does not open complaints
    assert engine.find() == []  # no case was opened
    found = engine.refused_openings()
    assert [(e.number[:2], e.actor, e.role) for e in found] == [
        ("RF", "mallory", "agent"), ("RF", "cust-2", "customer"), ("RF", "cust-1", "customer"),
        ("RT", "cust-1", "customer"), ("CP", "system", "system")]
    assert {(e.event, e.outcome, e.seq, e.to_state) for e in found} == {("open", "refused", 1, None)}
    assert found[0].number == "RF-20261122"  # the series its case would have been numbered in
    assert found[1].data["customer"] == "cust-1" and found[2].data["refunds_last_30_days"] == 0  # as given
    assert found[2].reasons[0]["details"]["facts"] == ["refunds_last_30_days"]
    assert [e.number for e in engine.refused_openings(kind="return")] == ["RT-20261122"]
    report = engine.verify()
    assert report.ok, report.problems
    assert report.entries_checked == 5 and report.digest.seq == 5  # each sealed into the global chain


def test_a_malformed_opening_is_not_an_attempt_and_is_not_recorded(engine: Engine):
    for kind, facts in (("refnd", REFUND), ("refund", {**REFUND, "amount": "abc"}),
                        ("refund", {"order_id": "SO-1", "amount": "1.00"}),  # paid, a required fact, missing
                        ("refund", {**REFUND, "reason": "bored"})):
        with pytest.raises(InvalidInput):
            engine.open(kind, facts, actor=CUSTOMER)
    with pytest.raises(InvalidInput):
        engine.open("refund", REFUND, actor=Actor("bob", "janitor"))  # a role the policy does not define
    assert engine.refused_openings() == [] and engine.verify().digest.seq == 0


def test_what_a_role_gives_when_opening_is_the_policys(make_engine: EngineFactory, default_policy: PolicySet):
    engine = make_engine()
    # The customer gives their request (what they paid included); an agent anything.
    assert engine.open("refund", {**REFUND, "reason": "other", "category": "apparel", "evidence": ["photo"]},
                       actor=CUSTOMER).facts["paid"] == "10.00"
    assert engine.open("return", {**RETURN, "paid": "20.00", "flags": ["vip"], "customer": "cust-1"},
                       actor=AGENT).facts["flags"] == ["vip"]
    assert refused(engine, "refund", {**REFUND, "flags": []}, CUSTOMER) == ["fact_not_permitted"]
    # A policy may let the customer open with more (opens:), or an agent with less (writes:)
    text = default_policy.source.replace("    writes: [evidence, note, comment, score, locale, tracking, channel]",
                                         "    writes: [evidence, note, comment, score, locale, tracking, channel]\n"
                                         "    opens: [order_id, amount, reason, delivered, paid]", 1).replace(
        '    approval_limit: "2000.00"\n    writes: any', '    approval_limit: "2000.00"\n    writes: [note]', 1)
    tight = make_engine(policies=parse_policy(text, "tight.yaml"))
    assert tight.open("return", {**RETURN, "paid": "20.00"}, actor=CUSTOMER).facts["paid"] == "20.00"
    assert refused(tight, "return", {**RETURN, "category": "apparel"}, CUSTOMER) == ["fact_not_permitted"]
    text = text.replace("    opens: [order_id, amount, reason, delivered, paid]",
                        "    opens: [order_id, amount, reason, delivered]")
    without_paid = make_engine(policies=parse_policy(text, "order-paid.yaml"))
    assert refused(without_paid, "return", {**RETURN, "paid": "20.00"}, CUSTOMER) == ["fact_not_permitted"]
    assert without_paid.open("refund", REFUND, actor=CUSTOMER).facts["paid"] == "10.00"  # a refund requires it
    assert refused(tight, "return", {**RETURN, "customer": "cust-1"}, AGENT) == ["fact_not_permitted"]  # amount
    assert tight.open("refund", {**REFUND, "customer": "cust-1", "note": "by phone"}, actor=AGENT).state == "submitted"


def test_a_keyed_refused_opening_answers_its_refusal_again_and_is_recorded_once(engine: Engine):
    for _ in range(2):
        with pytest.raises(TransitionDenied):
            engine.open("refund", {**REFUND, "customer": "cust-1"}, actor=STRANGER, key="k-1")
    assert len(engine.refused_openings()) == 1


def test_a_refused_opening_tampered_with_is_reported(engine: Engine, db_url: str):
    refused(engine, "refund", {**REFUND, "customer": "cust-1"}, STRANGER)
    engine.open("refund", REFUND, actor=CUSTOMER)  # a later entry: the global chain covers the refusal
    [(entry_id, data)] = query(db_url, "SELECT id, data FROM audit_entries WHERE case_id IS NULL")
    run(db_url, "UPDATE audit_entries SET data = :d WHERE id = :i", d=json.dumps({**json.loads(data), "x": 1}),
        i=entry_id)
    problems = [p.problem for p in engine.verify().problems]
    assert any("refused opening: entry hash mismatch" in p for p in problems), problems
    run(db_url, "DELETE FROM audit_entries WHERE id = :i", i=entry_id)
    assert any("places 1 to 1 are missing" in p.problem for p in engine.verify().problems)


def test_a_refused_opening_whose_row_cannot_be_read_is_reported_not_raised(engine: Engine, db_url: str):
    refused(engine, "refund", {**REFUND, "customer": "cust-1"}, STRANGER)
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    [(entry_id, refused_number)] = query(db_url, "SELECT id, number FROM audit_entries WHERE case_id IS NULL")
    run(db_url, "UPDATE audit_entries SET verdicts = :v WHERE id = :i", v="not json", i=entry_id)
    report = engine.verify()  # one damaged row is a problem of its own, never an exception hiding the rest
    [problem] = [p for p in report.problems if p.number == refused_number]
    assert problem.seq == 1 and "refused opening unreadable" in problem.problem
    assert not any(p.number == number for p in report.problems)


def test_an_entry_moved_out_of_its_case_is_not_taken_for_a_refused_opening(engine: Engine, db_url: str):
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    engine.fire(number, "review", actor=AGENT)
    run(db_url, "UPDATE audit_entries SET case_id = NULL WHERE number = :n AND seq = 2", n=number)
    problems = [p.problem for p in engine.verify().problems]
    assert any("not a refused opening" in p for p in problems) and any(p.startswith("trail ends") for p in problems)


def test_the_cli_lists_refused_openings_and_the_report_counts_them(tmp_path):
    from cli_helpers import invoke

    db = ["--db", str(tmp_path / "r.db")]
    opened = invoke([*db, "open", "refund", "--order", "SO-1", "--amount", "5.00", "--paid", "5.00",
                     "--customer", "cust-9", "--actor", "cust-1", "--role", "customer"])
    assert opened.code == 1 and "role_not_permitted" in opened.stderr + opened.stdout
    listed = invoke([*db, "refused-openings", "--json"])
    assert listed.code == 0
    [doc] = json.loads(listed.stdout)
    assert (doc["actor"], doc["outcome"], doc["reasons"][0]["code"]) == ("cust-1", "refused", "role_not_permitted")
    shown = invoke([*db, "refused-openings"])
    assert shown.code == 0 and "RF-" in shown.stdout and "role_not_permitted" in shown.stdout
    report = json.loads(invoke([*db, "sla", "report", "--json"]).stdout)
    assert report["overall"]["refusals"]["openings"] == {"total": 1, "by_code": {"role_not_permitted": 1}}
    assert report["overall"]["cases"]["opened"] == 0
    assert invoke([*db, "refused-openings", "--kind", "refnd"]).code == 2
    assert invoke([*db, "verify"]).code == 0


def test_a_bulk_import_records_a_refused_record_then_stops_there(engine: Engine):
    from casework.bulk import InvalidRecord

    good = {"kind": "refund", "facts": {**REFUND, "customer": "cust-1"}}
    bad = {"kind": "refund", "facts": {**REFUND, "customer": "cust-9"}}  # a customer importing in another's name
    with pytest.raises(InvalidRecord, match="record 2: refused: customer cust-1 may open cases only in their own"):
        engine.open_many([good, bad, good], actor=CUSTOMER)
    [recorded] = engine.refused_openings()
    assert (recorded.actor, recorded.data["customer"], recorded.reasons[0]["code"]) == (
        "cust-1", "cust-9", "role_not_permitted")
    assert engine.find() == [] and engine.verify().ok  # the batch before the refused record was not written


def test_a_refused_opening_records_the_channel_it_came_by(engine: Engine):
    with pytest.raises(TransitionDenied):
        engine.open("refund", {**REFUND, "customer": "cust-1"}, actor=Actor("cust-2", "customer"), channel="hotline")
    (entry,) = engine.refused_openings()
    assert (entry.channel, entry.seq, entry.event, entry.outcome, entry.from_state) == (
        "hotline", 1, "open", "refused", None)
    assert engine.verify().ok
