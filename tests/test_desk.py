"""The desk's work on a case: structured rejections, the notes thread, assignment, reopening, queues.

Library tests run on SQLite and PostgreSQL (the ``engine`` fixture); CLI tests on an SQLite file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import DEFAULT_POLICY, assert_no_traceback, assert_one_stderr_line, days_ago, invoke

from casework import Actor, Engine, InvalidInput, TransitionDenied, parse_policy

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("sam", "supervisor")
RETURN = {"order_id": "SO-1", "amount": "59.00", "paid": "59.00", "reason": "no_reason", "condition": "unused",
          "delivered": "2026-11-01", "evidence": ["order_record"]}
REFUND = {"order_id": "SO-9", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"}


def open_return(engine: Engine, **facts: Any) -> str:
    return engine.open("return", {**RETURN, **facts}, actor=CUSTOMER).number


def passed_codes(engine: Engine, number: str) -> dict[str, Any]:
    """The last entry's verdicts, guard -> code: every one passed (a pass carries no code)."""
    last = engine.history(number)[-1]
    assert last.outcome == "applied" and all(v["passed"] for v in last.verdicts)
    return {v["guard"]: v["code"] for v in last.verdicts}


# ---- structured rejection ---------------------------------------------------------------------------
def test_a_reject_without_a_rejection_reason_is_refused_listing_the_policys_reasons(engine: Engine) -> None:
    number = open_return(engine)
    with pytest.raises(TransitionDenied) as denied:
        engine.fire(number, "reject", actor=AGENT)
    [reason] = denied.value.decision.reasons
    assert (reason.code, reason.details["missing"]) == ("field_missing", ["rejection"])
    assert "deadline_passed, condition, missing_proof, fraud" in reason.message
    with pytest.raises(InvalidInput, match=r"unknown rejection reason 'too_late'.*deadline_passed") as bad:
        engine.reject(number, "too_late", actor=AGENT)
    assert bad.value.field == "rejection"
    assert engine.get(number).state == "submitted"
    assert [(e.event, e.outcome) for e in engine.history(number)] == [("open", "applied"), ("reject", "refused")]


def test_a_rejection_is_recorded_as_its_code_and_composes_the_customers_message(engine: Engine) -> None:
    number = open_return(engine)
    case = engine.reject(number, "deadline_passed", actor=AGENT, note="delivered 21 days ago")
    assert case.state == "rejected"
    assert case.facts["rejection"] == "deadline_passed"
    last = engine.history(number)[-1]
    assert (last.event, last.outcome, last.data["rejection"]) == ("reject", "applied", "deadline_passed")
    assert passed_codes(engine, number)["rejection"] is None
    told = engine.rejection_message(number)
    assert told is not None and number in told and "after the deadline" in told
    zh = engine.rejection_message(number, lang="zh-CN")
    assert zh is not None and "已超过服务申请期限" in zh and number in zh
    assert engine.rejection_message(number, audience="operator") == "Rejected: requested after the deadline."
    assert engine.verify().ok


def test_the_customers_locale_chooses_the_language_of_the_rejection_message(engine: Engine) -> None:
    number = open_return(engine, locale="zh-CN")
    engine.reject(number, "condition", actor=AGENT)
    told = engine.rejection_message(number)
    assert told is not None and "商品状态不符合要求" in told


def test_a_case_not_rejected_has_no_rejection_message(engine: Engine) -> None:
    number = open_return(engine)
    assert engine.rejection_message(number) is None


def test_a_policy_may_declare_its_own_rejection_reasons(make_engine: Any) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("rejections:\n", (
        "rejections:\n"
        "  final_sale:\n"
        "    meaning: the item was sold as final sale\n"
        "    customer: {en: \"Items sold as final sale cannot be returned ({number}).\"}\n"), 1)
    engine = make_engine(policies=parse_policy(text, "custom.yaml"))
    number = open_return(engine)
    engine.reject(number, "final_sale", actor=AGENT)
    assert engine.rejection_message(number) == f"Items sold as final sale cannot be returned ({number})."
    # a language it has no text in falls back to English
    assert engine.rejection_message(number, lang="zh-CN") == engine.rejection_message(number)


def test_the_report_counts_rejections_by_reason(engine: Engine) -> None:
    for reason in ("deadline_passed", "deadline_passed", "fraud"):
        engine.reject(open_return(engine), reason, actor=AGENT)
    refund = engine.open("refund", REFUND, actor=CUSTOMER).number
    engine.reject(refund, "missing_proof", actor=AGENT)
    report = engine.report()
    assert report.overall.rejections_by_reason == {"deadline_passed": 2, "fraud": 1, "missing_proof": 1}
    assert report.to_json()["overall"]["rejections"] == {
        "total": 4, "by_reason": {"deadline_passed": 2, "fraud": 1, "missing_proof": 1}}
    by_kind = {g.key: g.rejections_by_reason for g in engine.report(by="kind").groups}
    assert by_kind["refund"] == {"missing_proof": 1}


# ---- CLI --------------------------------------------------------------------------------------------
class CW:
    def __init__(self, tmp: Path) -> None:
        self.db = tmp / "c.db"

    def __call__(self, *argv: str) -> Any:
        return invoke(["--db", str(self.db), *argv])

    def ok(self, *argv: str) -> Any:
        run = self(*argv)
        assert run.code == 0, run
        assert_no_traceback(run)
        return run

    def open_return(self, *extra: str) -> str:
        doc = self.ok("open", "return", "--order", "SO-1", "--delivered", days_ago(20), "--reason", "no_reason",
                      "--condition", "unused", "--evidence", "order_record", "--role", "customer", "--actor",
                      "cust-1", *extra, "--json").json
        return str(doc["number"])


@pytest.fixture
def cw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CW:
    monkeypatch.chdir(tmp_path)
    for var in ("CASEWORK_DB", "CASEWORK_POLICIES", "CASEWORK_ACTOR", "CASEWORK_ROLE"):
        monkeypatch.delenv(var, raising=False)
    return CW(tmp_path)


def test_cli_reject_prints_the_case_and_the_labelled_customer_message(cw: CW) -> None:
    number = cw.open_return()
    run = cw.ok("reject", number, "--reason", "deadline_passed", "--actor", "alice", "--lang", "zh-CN")
    assert "state rejected" in run.stdout
    assert f"Customer message: 很抱歉，您的售后申请 {number} 已超过服务申请期限" in run.stdout


def test_cli_reject_json_carries_the_customer_message(cw: CW) -> None:
    number = cw.open_return()
    doc = cw.ok("reject", number, "--reason", "fraud", "--actor", "alice", "--json").json
    assert doc["state"] == "rejected" and doc["facts"]["rejection"] == "fraud"
    assert number in doc["customer_message"]


@pytest.mark.parametrize("argv", [["--reason", "late"], []])
def test_cli_reject_with_a_bad_or_no_reason_is_exit_2_in_one_line(cw: CW, argv: list[str]) -> None:
    number = cw.open_return()
    run = cw("reject", number, *argv)
    assert run.code == 2, run
    assert_no_traceback(run)
    assert_one_stderr_line(run)
    assert ("deadline_passed" in run.stderr) if argv else ("--reason" in run.stderr)


def test_cli_fire_reject_without_a_reason_is_refused_naming_the_reasons(cw: CW) -> None:
    number = cw.open_return()
    run = cw("fire", number, "reject", "--actor", "alice")
    assert run.code == 1, run
    assert_one_stderr_line(run)
    assert "field_missing" in run.stderr and "missing_proof" in run.stdout


# ---- the notes thread -------------------------------------------------------------------------------
def test_a_note_is_an_audited_entry_that_changes_neither_state_nor_facts(engine: Engine) -> None:
    number = open_return(engine)
    before = engine.get(number)
    after = engine.note(number, "called the customer: photo on its way", actor=AGENT)
    assert (after.state, after.facts, after.version) == (before.state, before.facts, before.version + 1)
    last = engine.history(number)[-1]
    assert (last.event, last.outcome, last.actor, last.from_state, last.to_state) == (
        "note", "applied", "alice", "submitted", "submitted")
    assert last.data == {"note": "called the customer: photo on its way", "audience": "internal"}
    assert passed_codes(engine, number) == {"thread": None}
    assert engine.verify().ok


def test_the_thread_gathers_notes_and_events_fired_with_a_note_and_no_note_is_a_fact(engine: Engine) -> None:
    number = open_return(engine)
    engine.fire(number, "request_evidence", actor=AGENT, data={"note": "please send photo of defect"})
    engine.note(number, "photo attached", actor=CUSTOMER)
    engine.note(number, "Thanks, we are checking it.", actor=AGENT, audience="customer")
    case = engine.fire(number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["photo"]})
    assert "note" not in case.facts  # the old request no longer shows on the case
    notes = engine.thread(number)
    assert [(n.event, n.actor, n.audience, n.text) for n in notes] == [
        ("request_evidence", "alice", "internal", "please send photo of defect"),
        ("note", "cust-1", "customer", "photo attached"),
        ("note", "alice", "customer", "Thanks, we are checking it."),
    ]
    assert [n.text for n in engine.thread(number, audience="customer")] == [
        "photo attached", "Thanks, we are checking it."]
    assert engine.verify().ok


def test_a_resolution_note_still_satisfies_the_rule_that_asks_for_one(engine: Engine) -> None:
    number = engine.open("complaint", {"order_id": "SO-3"}, actor=CUSTOMER).number
    engine.fire(number, "acknowledge", actor=AGENT)
    with pytest.raises(Exception, match="note"):
        engine.fire(number, "resolve", actor=AGENT)
    case = engine.fire(number, "resolve", actor=AGENT, data={"note": "refunded the delivery fee"})
    assert case.state == "resolved" and "note" not in case.facts
    assert engine.thread(number)[-1].text == "refunded the delivery fee"


def test_bad_notes_are_bad_input_and_a_customer_may_note_only_their_own_case(engine: Engine) -> None:
    number = open_return(engine)
    with pytest.raises(InvalidInput, match="some text"):
        engine.note(number, "  ", actor=AGENT)
    with pytest.raises(InvalidInput, match="internal, customer"):
        engine.note(number, "x", actor=AGENT, audience="everyone")
    with pytest.raises(InvalidInput, match="cannot be internal"):
        engine.note(number, "x", actor=CUSTOMER, audience="internal")
    with pytest.raises(TransitionDenied) as denied:
        engine.note(number, "x", actor=Actor("cust-2", "customer"))
    assert denied.value.decision.codes == ["role_not_permitted"]
    last = engine.history(number)[-1]
    assert (last.event, last.outcome, last.actor) == ("note", "refused", "cust-2")
    assert engine.thread(number) == [] and engine.verify().ok


# ---- assignment -------------------------------------------------------------------------------------
def test_assigning_a_case_is_audited_and_replayed_by_verify(engine: Engine) -> None:
    number = open_return(engine)
    case = engine.assign(number, "bob", actor=AGENT)
    assert case.assignee == "bob" and case.state == "submitted"
    assert engine.get(number).assignee == "bob"
    assert engine.get(number).to_json()["assignee"] == "bob"
    last = engine.history(number)[-1]
    assert (last.event, last.outcome, last.actor, last.data) == ("assign", "applied", "alice", {"assignee": "bob"})
    assert passed_codes(engine, number) == {"assign": None}
    engine.assign(number, None, actor=SUPERVISOR)
    assert engine.get(number).assignee is None
    assert engine.verify().ok


def test_a_customer_may_not_assign_and_nobody_assigns_with_an_events_data(engine: Engine) -> None:
    number = open_return(engine)
    with pytest.raises(TransitionDenied):
        engine.assign(number, "cust-1", actor=CUSTOMER)
    with pytest.raises(TransitionDenied) as denied:
        engine.fire(number, "review", actor=AGENT, data={"assignee": "alice"})
    assert denied.value.decision.codes == ["fact_not_permitted"]
    assert engine.get(number).assignee is None and engine.verify().ok


def test_find_by_assignee_and_the_unassigned_queue(engine: Engine) -> None:
    mine, theirs, nobodys = open_return(engine), open_return(engine), open_return(engine)
    engine.assign(mine, "alice", actor=AGENT)
    engine.assign(theirs, "bob", actor=AGENT)
    closed = open_return(engine)
    engine.reject(closed, "fraud", actor=AGENT)
    engine.fire(closed, "close", actor=AGENT)
    assert [c.number for c in engine.find(assignee="alice")] == [mine]
    assert [c.number for c in engine.find(unassigned=True)] == [nobodys]


def test_an_escalation_assigns_the_case_as_the_policy_says(make_engine: Any, clock: Any) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace(
        "first_response: {priority: 2, queue: supervisor}",
        "first_response: {priority: 2, queue: supervisor, assign_to: duty-supervisor}", 1)
    engine = make_engine(policies=parse_policy(text, "custom.yaml"))
    number = open_return(engine)
    assigned = open_return(engine)
    engine.assign(assigned, "bob", actor=AGENT)
    clock.advance(hours=30)
    engine.sweep()
    assert engine.get(number).assignee == "duty-supervisor"
    assert engine.get(number).queue == "supervisor"
    assert engine.get(assigned).assignee == "bob"  # someone already has it
    assert engine.verify().ok


def test_cli_note_show_history_assign_and_list(cw: CW) -> None:
    number = cw.open_return()
    cw.ok("note", number, "waiting for the warehouse", "--actor", "alice")
    cw.ok("note", number, "We have your parcel.", "--to-customer", "--actor", "alice")
    shown = cw.ok("show", number).stdout
    assert "waiting for the warehouse" in shown and "to customer" in shown and "internal" in shown
    doc = cw.ok("show", number, "--json").json
    assert [n["audience"] for n in doc["notes"]] == ["internal", "customer"]
    assert "note (internal): waiting for the warehouse" in cw.ok("history", number).stdout
    other = cw.open_return()
    assigned = cw.ok("assign", number, "--to", "alice", "--json").json
    assert assigned["assignee"] == "alice"
    assert "assigned to: alice" in cw.ok("show", number).stdout
    assert [c["number"] for c in cw.ok("list", "--mine", "--actor", "alice", "--json").json] == [number]
    assert [c["number"] for c in cw.ok("list", "--assignee", "alice", "--json").json] == [number]
    assert [c["number"] for c in cw.ok("list", "--unassigned", "--json").json] == [other]
    for bad in (["note", number, "x", "--internal", "--to-customer"], ["assign", number],
                ["list", "--mine", "--unassigned"]):
        run = cw(*bad)
        assert run.code == 2, run
        assert_one_stderr_line(run)


# ---- canned replies ---------------------------------------------------------------------------------
def test_a_canned_reply_reaches_the_customer_in_their_language_with_the_case_filled_in(engine: Engine) -> None:
    zh = open_return(engine, locale="zh-CN")
    en = open_return(engine)
    engine.reply(zh, "send_back", actor=AGENT)
    engine.reply(en, "send_back", actor=AGENT)
    [zh_note] = engine.thread(zh, audience="customer")
    [en_note] = engine.thread(en, audience="customer")
    assert zh_note.text == f"您的售后申请 {zh} 已受理，请将商品寄回，并在包裹上注明订单号 SO-1。"
    assert en_note.text == (f"Your request {en} is accepted. Please send the item back with the order number SO-1 "
                            "written on the parcel.")
    assert (zh_note.audience, zh_note.reply, zh_note.to_json()["reply"]) == ("customer", "send_back", "send_back")
    last = engine.history(zh)[-1]
    assert (last.event, last.data["reply"], last.data["reply_lang"]) == ("note", "send_back", "zh-CN")
    assert "reply" not in engine.get(zh).facts and "reply_lang" not in engine.get(zh).facts
    engine.reply(zh, "need_photo", actor=AGENT, lang="en")  # --lang overrides the case's locale
    assert engine.thread(zh)[-1].text.startswith(f"Hello, to continue with your request {zh}")
    assert engine.get(zh).state == "submitted" and engine.verify().ok


def test_an_unknown_reply_or_a_customers_reply_is_bad_input_and_nothing_is_written(engine: Engine) -> None:
    number = open_return(engine)
    with pytest.raises(InvalidInput, match=r"unknown reply 'need_foto'.*need_photo") as bad:
        engine.reply(number, "need_foto", actor=AGENT)
    assert bad.value.field == "reply"
    with pytest.raises(InvalidInput, match="a customer writes a note"):
        engine.reply(number, "need_photo", actor=CUSTOMER)
    with pytest.raises(InvalidInput, match="fr"):
        engine.reply(number, "need_photo", actor=AGENT, lang="fr")
    assert [e.event for e in engine.history(number)] == ["open"]


def test_a_policy_without_replies_says_so(make_engine: Any) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    engine = make_engine(policies=parse_policy(text[:text.index("\nreplies:")], "no-replies.yaml"))
    number = open_return(engine)
    with pytest.raises(InvalidInput, match="declares no replies"):
        engine.reply(number, "need_photo", actor=AGENT)


def test_cli_note_reply(cw: CW) -> None:
    number = cw.open_return()
    sent = cw.ok("note", number, "--reply", "need_photo", "--lang", "zh-CN", "--actor", "alice", "--json").json
    assert sent["note"]["reply"] == "need_photo" and sent["note"]["audience"] == "customer"
    assert sent["note"]["text"].startswith(f"您好，为继续处理您的售后申请 {number}")
    assert "[reply need_photo]" in cw.ok("show", number).stdout
    for bad in (["note", number], ["note", number, "hi", "--reply", "need_photo"],
                ["note", number, "--reply", "need_photo", "--internal"], ["note", number, "hi", "--lang", "en"],
                ["note", number, "--reply", "nope"]):
        run = cw(*bad)
        assert run.code == 2, run
        assert_one_stderr_line(run)
        assert_no_traceback(run)


# ---- reopen -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "facts", "closing", "back_to"), [
    ("refund", REFUND, [("reject", {"rejection": "missing_proof"}), ("close", {})], "under_review"),
    ("return", RETURN, [("reject", {"rejection": "condition"}), ("close", {})], "under_review"),
    ("dispute", {"order_id": "SO-5", "amount": "10.00", "paid": "50.00"}, [("dismiss", {}), ("close", {})],
     "investigating"),
    ("complaint", {"order_id": "SO-6"}, [("acknowledge", {}), ("resolve", {"note": "done"}), ("close", {})],
     "investigating"),
])
def test_every_kind_reopens_within_14_days_of_closing_and_not_after(
        engine: Engine, clock: Any, kind: str, facts: dict[str, Any], closing: list[tuple[str, dict[str, Any]]],
        back_to: str) -> None:
    numbers = [engine.open(kind, facts, actor=CUSTOMER).number for _ in range(2)]
    for number in numbers:
        for event, data in closing:
            engine.fire(number, event, actor=AGENT, data=data)
        assert engine.get(number).closed
    clock.advance(days=13)
    case = engine.fire(numbers[0], "reopen", actor=CUSTOMER, data={"note": "still not fixed"})
    assert (case.state, case.closed) == (back_to, False)
    assert passed_codes(engine, numbers[0])["reopen_within"] is None
    clock.advance(days=2)
    with pytest.raises(TransitionDenied) as denied:
        engine.fire(numbers[1], "reopen", actor=AGENT)
    assert denied.value.decision.codes == ["window_expired"]
    assert "14 days after closing" in denied.value.decision.reasons[0].message
    assert engine.verify().ok


# ---- queues, priority, the list ---------------------------------------------------------------------
def test_an_escalated_complaint_joins_the_queue_the_policy_names_and_leaves_it_when_closed(engine: Engine) -> None:
    number = engine.open("complaint", {"order_id": "SO-7"}, actor=CUSTOMER).number
    engine.fire(number, "acknowledge", actor=AGENT)
    escalated = engine.fire(number, "escalate", actor=CUSTOMER)
    assert (escalated.queue, escalated.priority) == ("supervisor", 2)
    assert [c.number for c in engine.find(queue="supervisor")] == [number]
    engine.fire(number, "resolve", actor=AGENT, data={"note": "apologised, voucher sent"})
    closed = engine.fire(number, "close", actor=AGENT)
    assert closed.closed and closed.queue is None and closed.priority == 2
    assert engine.find(queue="supervisor") == []
    assert engine.verify().ok


def test_priority_is_set_by_the_roles_the_policy_names(engine: Engine) -> None:
    number = open_return(engine)
    with pytest.raises(TransitionDenied) as denied:
        engine.prioritize(number, 3, actor=AGENT)
    assert "allowed: supervisor" in denied.value.decision.reasons[0].message
    assert engine.prioritize(number, 3, actor=SUPERVISOR).priority == 3
    assert passed_codes(engine, number) == {"priority_roles": None}
    with pytest.raises(InvalidInput, match="from 0 to 9"):
        engine.prioritize(number, 12, actor=SUPERVISOR)
    assert engine.get(number).priority == 3 and engine.verify().ok


def test_a_policy_names_other_priority_roles(make_engine: Any) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("priority_roles: [supervisor]",
                                                              "priority_roles: [agent]", 1)
    engine = make_engine(policies=parse_policy(text, "custom.yaml"))
    assert engine.prioritize(open_return(engine), 5, actor=AGENT).priority == 5
    with pytest.raises(Exception, match="unknown role 'agnet'"):
        parse_policy(text.replace("priority_roles: [agent]", "priority_roles: [agnet]"), "bad.yaml")


def test_case_numbers_are_case_insensitive_and_list_filters_by_channel(engine: Engine) -> None:
    by_app = engine.open("return", RETURN, actor=CUSTOMER, channel="app").number
    engine.open("return", RETURN, actor=CUSTOMER, channel="hotline")
    assert engine.get(by_app.lower()).number == by_app
    assert engine.fire(by_app.lower(), "review", actor=AGENT).state == "under_review"
    assert len(engine.history(by_app.lower())) == 2
    assert [c.number for c in engine.find(channel="app")] == [by_app]


def test_cli_list_shows_queue_priority_assignee_and_due_whole_at_80_columns(cw: CW) -> None:
    number = cw.open_return()
    cw.ok("assign", number.lower(), "--to", "an-agent-with-a-rather-long-name")
    cw.ok("priority", number, "4", "--role", "supervisor")
    run = invoke(["--db", str(cw.db), "list"], env={"COLUMNS": "80"})
    out = run.stdout
    assert number in out and "no queue p4" in out and "an-agent-with-a-r" in out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d\s*$", out.splitlines()[5]), out  # the due time, whole
    assert cw("priority", number, "5", "--role", "agent").code == 1
    assert cw("priority", number, "x").code == 2
    assert [c["number"] for c in cw.ok("list", "--channel", "app", "--json").json] == []
