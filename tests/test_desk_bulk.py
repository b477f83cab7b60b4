"""The desk at scale: bulk actions, free-text search and saved views.

Library tests run on SQLite and PostgreSQL (the ``engine`` fixture); CLI tests on an SQLite file.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_no_traceback, assert_one_stderr_line, invoke
from conftest import NOW

from casework import Actor, Engine, FixedClock, InvalidInput, TransitionDenied

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")


def open_refund(engine: Engine, amount: str, order: str = "SO-1", **facts: Any) -> str:
    return engine.open("refund", {"order_id": order, "amount": amount, "paid": "100.00", "reason": "not_delivered",
                                  **facts}, actor=CUSTOMER).number


# ---- bulk actions -----------------------------------------------------------------------------------
def test_a_bulk_action_previews_then_applies_each_case_with_its_own_decision_and_entry(engine: Engine) -> None:
    ok1, over, ok2 = (open_refund(engine, a) for a in ("59.00", "2500.00", "10.00"))
    complaint = engine.open("complaint", {"order_id": "SO-2"}, actor=CUSTOMER).number

    preview = engine.bulk_fire("approve", actor=AGENT, state="submitted")
    assert preview.preview and {i.number: i.outcome for i in preview.items} == {
        ok1: "applied", over: "refused", ok2: "applied", complaint: "refused"}
    assert [e.event for e in engine.history(ok1)] == ["open"]  # a preview writes nothing

    report = engine.bulk_fire("approve", actor=AGENT, state="submitted", apply=True)
    assert not report.preview
    assert (report.count("applied"), report.count("refused"), report.count("already")) == (2, 2, 0)
    assert report.refused_by_reason == {"amount_exceeds_paid": 1, "approval_limit_exceeded": 1, "not_available": 1}
    assert [engine.get(n).state for n in (ok1, over, ok2, complaint)] == ["approved", "submitted", "approved",
                                                                         "submitted"]
    for number, outcome in ((ok1, "applied"), (over, "refused"), (ok2, "applied")):
        last = engine.history(number)[-1]
        assert (last.event, last.outcome, last.actor) == ("approve", outcome, "alice")
    assert [e.event for e in engine.history(complaint)] == ["open"]  # a complaint has no approve to record
    doc = report.to_json()
    assert (doc["matched"], doc["applied"], doc["refused"]) == (4, 2, 2)
    assert engine.verify().ok


def test_rerunning_a_bulk_action_applies_nothing_twice(engine: Engine, clock: FixedClock) -> None:
    ok1, over = open_refund(engine, "59.00"), open_refund(engine, "2500.00")
    first = engine.bulk_fire("review", actor=AGENT, kind="refund", apply=True)
    assert first.count("applied") == 2
    engine.bulk_fire("approve", actor=AGENT, kind="refund", apply=True)  # another action: its own key
    clock.advance(minutes=5)
    again = engine.bulk_fire("review", actor=AGENT, kind="refund", apply=True)
    assert {i.number: i.outcome for i in again.items} == {ok1: "already", over: "already"}
    assert [e.event for e in engine.history(ok1)] == ["open", "review", "approve"]
    # a refusal is remembered under the key too: run again, it is reported, not recorded a second time
    again = engine.bulk_fire("approve", actor=AGENT, kind="refund", apply=True)
    assert {i.number: i.outcome for i in again.items} == {ok1: "already", over: "refused"}
    assert [(e.event, e.outcome) for e in engine.history(over)] == [
        ("open", "applied"), ("review", "applied"), ("approve", "refused")]
    # another key is another bulk action: decided again
    other = engine.bulk_fire("approve", actor=AGENT, kind="refund", apply=True, key="retry-1")
    assert {i.number: i.outcome for i in other.items} == {ok1: "refused", over: "refused"}
    assert dict(other.items[0].reasons).keys() == {"not_available"}


def test_a_bulk_action_needs_a_filter_and_a_known_event(engine: Engine) -> None:
    open_refund(engine, "59.00")
    with pytest.raises(InvalidInput, match="at least one filter"):
        engine.bulk_fire("approve", actor=AGENT)
    with pytest.raises(InvalidInput, match="at least one filter"):
        engine.bulk_fire("approve", actor=AGENT, overdue=False, kind=None, me="alice")
    with pytest.raises(InvalidInput, match="unknown event 'aprove'"):
        engine.bulk_fire("aprove", actor=AGENT, kind="refund")
    with pytest.raises(InvalidInput, match="unknown bulk filter 'colour'"):
        engine.bulk_fire("approve", actor=AGENT, colour="red")


# ---- search -----------------------------------------------------------------------------------------
def test_search_finds_order_ids_customers_and_notes_in_any_case(engine: Engine) -> None:
    by_order = open_refund(engine, "10.00", order="SO-ALPHA-7")
    by_customer = engine.open("refund", {"order_id": "SO-2", "amount": "1.00", "paid": "1.00",
                                         "reason": "other"}, actor=Actor("vip-Zhang", "customer")).number
    noted = open_refund(engine, "10.00", order="SO-3")
    engine.note(noted, "Customer says the parcel had 50% water_damage", actor=AGENT)
    engine.fire(open_refund(engine, "5.00", order="SO-4"), "review", actor=AGENT, data={"note": "包裹破损"})
    refused_note = open_refund(engine, "3000.00", order="SO-5")
    with pytest.raises(TransitionDenied):
        engine.fire(refused_note, "approve", actor=AGENT, data={"note": "refused approval memo"})

    def found(text: str) -> set[str]:
        return {c.number for c in engine.find(text=text)}

    assert found("alpha") == {by_order}
    assert found("zhang") == {by_customer}
    assert found("50% WATER_damage") == {noted}
    assert found("50%x") == set() and found("water-damage") == set()  # % and _ are literal, not wildcards
    assert len(found("包裹")) == 1
    assert found("approval memo") == set()  # a refused attempt's note is not the thread's
    assert found("SO-") == {by_order, by_customer, noted, *found("包裹"), refused_note}
    assert {c.number for c in engine.find(text="so-", kind="refund", state="under_review")} == found("包裹")


# ---- saved views ------------------------------------------------------------------------------------
def test_the_four_built_in_views(engine: Engine, clock: FixedClock) -> None:
    mine, theirs, waiting = (open_refund(engine, "10.00") for _ in range(3))
    engine.assign(mine, "alice", actor=AGENT)
    engine.assign(theirs, "bob", actor=AGENT)
    engine.fire(waiting, "request_evidence", actor=AGENT)
    clock.advance(hours=1)
    later = open_refund(engine, "10.00")

    def view(name: str, **more: Any) -> set[str]:
        return {c.number for c in engine.find(view=name, me="alice", **more)}

    assert view("mine") == {mine}
    assert view("unassigned") == {waiting, later}
    assert view("waiting_on_customer") == {waiting}
    # first responses are due 24h after opening: within 2h of 23h on, the three earlier cases, not yet the later
    opened = datetime.fromisoformat(NOW)
    soon = {c.number for c in engine.find(view="breaching_soon", now=opened + timedelta(hours=22.5))}
    assert soon == {mine, theirs}  # due at 24h; the later case at 25h; the waiting one has had its response
    assert view("breaching_soon") == set()
    with pytest.raises(InvalidInput, match=r"unknown view 'nope'.*breaching_soon, mine, unassigned"):
        engine.find(view="nope")
    with pytest.raises(InvalidInput, match="acting operator"):
        engine.find(view="mine")


# ---- CLI --------------------------------------------------------------------------------------------
@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "b.db"


def cw(db: Path, *argv: str) -> Any:
    return invoke(["--db", str(db), *argv], env={"COLUMNS": "80"})


def test_cli_bulk_previews_applies_with_yes_and_summarises_by_reason(db: Path) -> None:
    for amount in ("59.00", "2500.00", "10.00"):
        run = cw(db, "open", "refund", "--order", "SO-1", "--amount", amount, "--paid", "100.00", "--reason",
                 "not_delivered", "--role", "customer", "--actor", "cust-1")
        assert run.code == 0, run
    preview = cw(db, "bulk", "approve", "--kind", "refund", "--role", "agent", "--actor", "alice")
    assert preview.code == 0, preview
    assert "preview" in preview.stdout and preview.stdout.count("would apply ->") == 2
    assert "RF-" in preview.stdout and "refused: 1 (amount_exceeds_paid 1, approval_limit_exceeded 1)" \
        in " ".join(preview.stdout.split())
    applied = cw(db, "bulk", "approve", "--kind", "refund", "--role", "agent", "--actor", "alice", "--yes", "--json")
    assert applied.code == 1, applied  # some were refused
    doc = applied.json
    assert (doc["applied"], doc["refused"], doc["already"], doc["preview"]) == (2, 1, 0, False)
    again = cw(db, "bulk", "approve", "--kind", "refund", "--role", "agent", "--actor", "alice", "--yes", "--json")
    assert (again.json["applied"], again.json["already"]) == (0, 2)
    bad = cw(db, "bulk", "approve", "--role", "agent")
    assert bad.code == 2 and "at least one filter" in assert_one_stderr_line(bad)
    assert_no_traceback(bad)


def test_cli_list_search_and_views(db: Path) -> None:
    run = cw(db, "open", "refund", "--order", "SO-Needle", "--amount", "5.00", "--paid", "5.00", "--reason", "other",
             "--role", "customer", "--actor", "c-1", "--json")
    number = run.json["number"]
    assert [c["number"] for c in cw(db, "list", "--search", "needle", "--json").json] == [number]
    assert cw(db, "list", "--search", "haystack", "--json").json == []
    assert [c["number"] for c in cw(db, "list", "--view", "unassigned", "--json").json] == [number]
    assert cw(db, "list", "--view", "mine", "--actor", "alice", "--json").json == []
    bad = cw(db, "list", "--view", "nope")
    assert bad.code == 2 and "breaching_soon" in assert_one_stderr_line(bad)
