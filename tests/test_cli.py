"""The operator CLI: every command of the contract, in human and in --json output.

Runs ``cli.app`` in-process with stdout and stderr kept apart, always against a fresh SQLite file
under tmp_path and with tmp_path as the working directory (so no ./policies.yaml is picked up by
accident); a few tests run the real ``python -m casework`` process.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cli_helpers import (
    DEFAULT_POLICY,
    HASH,
    POLICY_TZ,
    Run,
    assert_no_traceback,
    assert_one_stderr_line,
    days_ago,
    invoke,
    is_iso_with_offset,
    policy_with_window,
    run_process,
)

import casework

NUMBER = re.compile(r"^(RF|RT|DP|CP|[A-Z]{2})-(\d{8})-(\d{6})$")
CASE_KEYS = {"number", "kind", "state", "version", "facts", "policy", "opened_at", "updated_at",
             "first_response_due", "responded_at", "due_at", "closed"}
HISTORY_KEYS = {"seq", "at", "event", "from_state", "to_state", "outcome", "actor", "role", "channel",
                "reasons", "verdicts", "data", "policy", "prev_hash", "hash"}
SUBMITTED_RETURN_EVENTS = ["review", "request_evidence", "provide_evidence", "approve", "reject", "cancel", "amend"]


class CW:
    """Runs casework against one SQLite file: ``cw("open", "refund", ...)``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "c.db"

    def __call__(self, *argv: str, env: dict[str, str | None] | None = None, db: bool = True) -> Run:
        return invoke((["--db", str(self.db)] if db else []) + list(argv), env=env)

    def ok(self, *argv: str, **kw: Any) -> Run:
        run = self(*argv, **kw)
        assert run.code == 0, run
        assert_no_traceback(run)
        return run

    def ok_json(self, *argv: str, **kw: Any) -> Any:
        run = self.ok(*argv, "--json", **kw)
        assert run.stderr == "", run
        return run.json

    def open_return(self, delivered_days_ago: int = 3, *extra: str, reason: str = "no_reason",
                    customer: str = "cust-1", order: str = "SO-1") -> dict[str, Any]:
        return self.ok_json("open", "return", "--order", order, "--delivered", days_ago(delivered_days_ago),
                            "--reason", reason, "--condition", "unused", "--amount", "59.00", "--paid", "59.00",
                            "--evidence", "order_record", "--role", "customer", "--actor", customer, *extra)

    def open_refund(self, *extra: str, customer: str = "cust-1", order: str = "SO-9",
                    amount: str = "59.00") -> dict[str, Any]:
        return self.ok_json("open", "refund", "--order", order, "--amount", amount, "--paid", amount,
                            "--reason", "not_delivered", "--role", "customer", "--actor", customer, *extra)

    def history(self, number: str) -> list[dict[str, Any]]:
        doc = self.ok_json("history", number)
        assert isinstance(doc, list)
        return doc


@pytest.fixture
def cw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CW:
    monkeypatch.chdir(tmp_path)
    for var in ("CASEWORK_DB", "CASEWORK_POLICIES", "CASEWORK_ACTOR", "CASEWORK_ROLE"):
        monkeypatch.delenv(var, raising=False)
    return CW(tmp_path)


def assert_case_doc(doc: dict[str, Any]) -> None:
    """The shape every printed case has: number format, policy label and hash, ISO times with offset."""
    assert set(doc) >= CASE_KEYS, doc
    m = NUMBER.match(doc["number"])
    assert m, doc["number"]
    prefix = {"refund": "RF", "return": "RT"}.get(doc["kind"])
    if prefix:
        assert m.group(1) == prefix
    # the date in the number is the opening day in the policy's timezone
    opened = datetime.fromisoformat(doc["opened_at"])
    assert m.group(2) == opened.astimezone(POLICY_TZ).strftime("%Y%m%d")
    assert isinstance(doc["version"], int) and doc["version"] >= 1
    assert isinstance(doc["policy"]["label"], str) and doc["policy"]["label"]
    assert HASH.match(doc["policy"]["hash"])
    for key in ("opened_at", "updated_at"):
        assert is_iso_with_offset(doc[key]), (key, doc[key])
    for key in ("first_response_due", "responded_at", "due_at"):
        assert doc[key] is None or is_iso_with_offset(doc[key]), (key, doc[key])
    assert isinstance(doc["closed"], bool)
    for key in ("amount", "paid", "adjustment"):
        if key in doc["facts"]:
            assert isinstance(doc["facts"][key], str), (key, doc["facts"][key])
            Decimal(doc["facts"][key])


# ---- open ---------------------------------------------------------------------------------------------
def test_open_json_prints_the_new_case(cw: CW) -> None:
    doc = cw.ok_json("open", "return", "--order", "SO-1", "--delivered", days_ago(3), "--reason", "no_reason",
                     "--condition", "unused", "--amount", "59", "--paid", "59.00", "--category", "apparel",
                     "--evidence", "order_record", "--evidence", "photo=IMG_1.jpg", "--fact", "flags=vip",
                     "--fact", "locale=zh-CN", "--channel", "app", "--role", "agent", "--actor", "alice",
                     "--customer", "cust-1001")  # (a flag is the desk's to give: an agent opens it for the customer)
    assert_case_doc(doc)
    assert re.match(r"^RT-\d{8}-000001$", doc["number"])
    assert doc["kind"] == "return"
    assert doc["state"] == "submitted"
    assert doc["version"] == 1
    assert doc["closed"] is False
    facts = doc["facts"]
    assert isinstance(facts["amount"], str) and Decimal(facts["amount"]) == Decimal("59")
    assert facts["paid"] == "59.00"
    assert facts["order_id"] == "SO-1"
    assert facts["delivered"] == days_ago(3)
    assert facts["reason"] == "no_reason"
    assert facts["condition"] == "unused"
    assert facts["category"] == "apparel"
    assert facts["channel"] == "app"
    assert facts["flags"] == ["vip"]
    assert facts["locale"] == "zh-CN"
    assert facts["customer"] == "cust-1001"
    assert facts["evidence"] == [{"type": "order_record", "ref": None}, {"type": "photo", "ref": "IMG_1.jpg"}]
    assert doc["policy"] == {"label": "default 2026-11", "hash": doc["policy"]["hash"]}
    assert HASH.match(doc["policy"]["hash"])
    assert doc["first_response_due"] is not None
    assert datetime.fromisoformat(doc["first_response_due"]) > datetime.fromisoformat(doc["opened_at"])


def test_open_numbers_count_up_per_kind_and_day(cw: CW) -> None:
    first = cw.open_return()
    second = cw.open_return(order="SO-2")
    refund = cw.open_refund()
    assert first["number"].endswith("-000001")
    assert second["number"].endswith("-000002")
    assert second["number"][:11] == first["number"][:11]
    assert re.match(r"^RF-\d{8}-000001$", refund["number"])
    assert_case_doc(refund)


def test_open_human_output(cw: CW) -> None:
    run = cw.ok("open", "refund", "--order", "SO-7", "--amount", "12.50", "--paid", "12.50",
                "--evidence", "photo=IMG_9.jpg", "--role", "customer", "--actor", "cust-7")
    assert run.stderr == ""
    assert re.search(r"RF-\d{8}-000001", run.stdout)
    assert "submitted" in run.stdout
    assert "12.50" in run.stdout
    assert "IMG_9.jpg" in run.stdout
    assert "default 2026-11" in run.stdout


def test_open_money_is_a_decimal_string_never_a_float(cw: CW) -> None:
    doc = cw.open_refund(amount="1999.99")
    assert doc["facts"]["amount"] == "1999.99"
    assert doc["facts"]["paid"] == "1999.99"
    shown = cw.ok("show", doc["number"], "--json").stdout
    assert '"amount": "1999.99"' in shown


# ---- fire ---------------------------------------------------------------------------------------------
def test_fire_allowed_prints_the_case(cw: CW) -> None:
    number = cw.open_return()["number"]
    doc = cw.ok_json("fire", number, "approve", "--actor", "alice", "--role", "agent", "--note", "ok")
    assert_case_doc(doc)
    assert doc["number"] == number
    assert doc["state"] == "approved"
    assert doc["version"] == 2
    assert doc["responded_at"] is not None and is_iso_with_offset(doc["responded_at"])
    assert "note" not in doc["facts"] and cw.history(number)[-1]["data"]["note"] == "ok"  # the thread's


def test_fire_human_output(cw: CW) -> None:
    number = cw.open_return()["number"]
    run = cw.ok("fire", number, "review", "--actor", "alice", "--role", "agent")
    assert run.stderr == ""
    assert number in run.stdout
    assert "under_review" in run.stdout


def test_fire_refused_json_lists_every_reason_and_exits_1(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    run = cw("fire", number, "approve", "--actor", "alice", "--role", "agent", "--json")
    assert run.code == 1, run
    assert_no_traceback(run)
    line = assert_one_stderr_line(run)
    assert "window_expired" in line
    doc = run.json
    assert doc["number"] == number
    assert doc["kind"] == "return"
    assert doc["event"] == "approve"
    assert doc["allowed"] is False
    assert doc["from_state"] == "submitted"
    assert doc["to_state"] == "approved"
    assert doc["reasons"], doc
    for reason in doc["reasons"]:
        assert set(reason) == {"code", "message", "details", "customer_message"}
        assert isinstance(reason["message"], str) and reason["message"]
        assert isinstance(reason["details"], dict)
    [window] = [r for r in doc["reasons"] if r["code"] == "window_expired"]
    assert window["details"]["elapsed_days"] == 20
    assert window["details"]["window_days"] == 7
    assert "7 days" in window["message"]
    assert doc["policy"]["label"] == "default 2026-11"
    assert HASH.match(doc["policy"]["hash"])
    assert all("source" in v for v in doc["verdicts"] if v["guard"] != "owner")
    # nothing changed but the trail, which records the refused attempt
    shown = cw.ok_json("show", number)
    assert shown["state"] == "submitted" and shown["version"] == 1
    last = cw.history(number)[-1]
    assert last["event"] == "approve" and last["outcome"] == "refused"
    assert [r["code"] for r in last["reasons"]] == [r["code"] for r in doc["reasons"]]


def test_fire_refused_human_output(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    run = cw("fire", number, "approve", "--actor", "alice", "--role", "agent")
    assert run.code == 1, run
    assert_no_traceback(run)
    assert_one_stderr_line(run)
    assert "window_expired" in run.stdout
    assert "20 days" in run.stdout


def test_fire_not_available_exits_1(cw: CW) -> None:
    number = cw.open_return()["number"]
    run = cw("fire", number, "ship", "--role", "agent", "--actor", "alice", "--json")
    assert run.code == 1, run
    assert_one_stderr_line(run)
    doc = run.json
    assert doc["allowed"] is False
    assert [r["code"] for r in doc["reasons"]] == ["not_available"]
    assert doc["reasons"][0]["details"]["available"] == SUBMITTED_RETURN_EVENTS


def test_fire_stale_expected_version_exits_1(cw: CW) -> None:
    number = cw.open_return()["number"]
    run = cw("fire", number, "review", "--role", "agent", "--actor", "a", "--expected-version", "7", "--json")
    assert run.code == 1, run
    assert_one_stderr_line(run)
    assert run.json["error"]["exit_code"] == 1
    assert cw.ok_json("show", number)["version"] == 1


def test_fire_with_evidence_and_facts_merges_them(cw: CW) -> None:
    number = cw.open_return(reason="defective")["number"]
    doc = cw.ok_json("fire", number, "provide_evidence", "--role", "customer", "--actor", "cust-1",
                     "--evidence", "photo=IMG_2.jpg", "--fact", "comment=scratched")
    assert doc["state"] == "submitted"
    assert {"type": "photo", "ref": "IMG_2.jpg"} in doc["facts"]["evidence"]
    assert {"type": "order_record", "ref": None} in doc["facts"]["evidence"]
    assert doc["facts"]["comment"] == "scratched"


# ---- check --------------------------------------------------------------------------------------------
def test_check_is_a_dry_run_with_every_verdict_and_its_source(cw: CW) -> None:
    number = cw.open_return()["number"]
    before = cw.history(number)
    run = cw("check", number, "approve", "--role", "agent", "--actor", "alice", "--json")
    assert run.code == 0, run
    assert run.stderr == ""
    doc = run.json
    assert doc["number"] == number
    assert doc["allowed"] is True
    assert doc["reasons"] == []
    assert doc["to_state"] == "approved"
    guards = {v["guard"] for v in doc["verdicts"]}
    assert {"no_reason_return_window", "no_reason_return_condition", "no_reason_return_evidence"} <= guards
    for verdict in doc["verdicts"]:
        assert verdict["passed"] is True and verdict["code"] is None  # a pass carries no failure code
        assert re.match(r"^policies\.yaml:\d+$", verdict["source"]), verdict
    # nothing written: same trail, same case
    assert cw.history(number) == before
    assert cw.ok_json("show", number)["state"] == "submitted"


def test_check_refused_exits_1_and_writes_nothing(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    before = cw.history(number)
    run = cw("check", number, "approve", "--role", "agent", "--actor", "alice", "--json")
    assert run.code == 1, run
    assert_no_traceback(run)
    doc = run.json
    assert doc["allowed"] is False
    failed = [v for v in doc["verdicts"] if not v["passed"]]
    assert [v["code"] for v in failed] == ["window_expired"]
    assert re.match(r"^policies\.yaml:\d+$", failed[0]["source"])
    assert [r["code"] for r in doc["reasons"]] == ["window_expired"]
    assert len(cw.history(number)) == len(before)


def test_check_human_output(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    run = cw("check", number, "approve", "--role", "agent", "--actor", "alice")
    assert run.code == 1, run
    assert_no_traceback(run)
    assert "REFUSED" in run.stdout
    assert "FAIL" in run.stdout and "pass" in run.stdout
    assert "policies.yaml:" in run.stdout
    assert "window_expired" in run.stdout
    ok = cw.ok("check", cw.open_return(order="SO-2")["number"], "approve", "--role", "agent")
    assert "allowed" in ok.stdout


# ---- next ---------------------------------------------------------------------------------------------
def test_next_lists_every_possible_event_with_its_decision(cw: CW) -> None:
    number = cw.open_return()["number"]
    doc = cw.ok_json("next", number, "--role", "customer", "--actor", "cust-1")
    assert isinstance(doc, list)
    assert [d["event"] for d in doc] == SUBMITTED_RETURN_EVENTS
    for d in doc:
        assert set(d) == {"event", "allowed", "to_state", "reasons"}
        for r in d["reasons"]:
            assert set(r) == {"code", "message", "details", "customer_message"}
    by_event = {d["event"]: d for d in doc}
    assert by_event["approve"]["allowed"] is False
    assert by_event["approve"]["to_state"] == "approved"
    assert "role_not_permitted" in [r["code"] for r in by_event["approve"]["reasons"]]
    assert by_event["cancel"]["allowed"] is True and by_event["cancel"]["reasons"] == []
    as_agent = {d["event"]: d for d in cw.ok_json("next", number, "--role", "agent", "--actor", "alice")}
    assert as_agent["approve"]["allowed"] is True


def test_next_human_output(cw: CW) -> None:
    number = cw.open_return()["number"]
    run = cw.ok("next", number, "--role", "customer", "--actor", "cust-1")
    for event in SUBMITTED_RETURN_EVENTS:
        assert event in run.stdout
    assert "refused" in run.stdout and "allowed" in run.stdout
    assert "role_not_permitted" in run.stdout


# ---- show ---------------------------------------------------------------------------------------------
def test_show_json_and_human(cw: CW) -> None:
    opened = cw.open_return()
    shown = cw.ok_json("show", opened["number"])
    assert shown.pop("notes") == [] and shown.pop("resolution_paused") is False and shown == opened
    run = cw.ok("show", opened["number"])
    assert opened["number"] in run.stdout
    assert "submitted" in run.stdout
    assert "order_record" in run.stdout


def test_text_from_a_case_never_acts_on_the_terminal(cw: CW) -> None:
    # An order id that would clear the screen, a customer id reversed by a bidi override, and a category
    # that reads as rich markup: every human view shows them as text; --json keeps them exactly.
    order, customer, category = "SO-\x1b[2J1", "cust-\u202e1", "[/x] [bold]toys"
    opened = cw.open_refund("--category", category, "--fact", "comment=a\x07b", order=order, customer=customer)
    number = opened["number"]
    assert (opened["facts"]["order_id"], opened["facts"]["customer"], opened["facts"]["category"]) == (
        order, customer, category)
    cw("check", number, "approve", "--role", "agent")
    for argv in (("show", number), ("list",), ("history", number), ("check", number, "approve", "--role", "agent")):
        out = cw(*argv).stdout
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out, argv
        assert "SO-\\x1b[2J1" in out or argv[0] in ("check", "history"), (argv, out)
        assert "cust-\\u202e1" in out or argv[0] == "check", (argv, out)
    shown = cw.ok("show", number).stdout
    assert "[/x] [bold]toys" in shown and "comment: a\\x07b" in shown


def test_every_view_is_whole_at_80_columns(cw: CW) -> None:
    # Case numbers, rule ids and policy locations are never cut at 80 columns: they wrap or stack.
    opened = cw.open_return(20, order="SO-2026-11-ORDER-WITH-A-VERY-LONG-ID-000000000042",
                            customer="customer-with-a-long-id-000000000077")
    number = opened["number"]
    cw("fire", number, "approve", "--actor", "an-agent-with-a-rather-long-name", "--role", "agent")
    narrow = {"COLUMNS": "80"}
    for argv in (("list",), ("show", number), ("history", number), ("check", number, "approve"), ("next", number)):
        out = cw(*argv, env=narrow).stdout
        assert "…" not in out, (argv, out)
        assert max(len(line) for line in out.splitlines()) <= 80, (argv, out)
        assert number in out, (argv, out)
    check = cw("check", number, "approve", env=narrow).stdout
    assert "no_reason_return_window" in check and re.search(r"policies\.yaml:\d+", check), check
    listed = cw("list", env=narrow).stdout
    assert "SO-2026-11-ORDER-WIT" in listed and "000000042" in listed  # a long order id folds; its end is kept


def test_times_are_shown_in_the_desks_zone_with_its_name(cw: CW) -> None:
    number = cw.open_refund()["number"]
    opened = datetime.fromisoformat(cw.ok_json("show", number)["opened_at"])
    shanghai = opened.astimezone(POLICY_TZ).strftime("%Y-%m-%d %H:%M")
    assert f"opened: {shanghai} CST" in cw.ok("show", number).stdout  # the policy's zone
    berlin = opened.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M")
    assert f"opened: {berlin} CE" in cw.ok("show", number, "--tz", "Europe/Berlin").stdout
    assert "(times: Europe/Berlin)" in cw.ok("list", "--tz", "Europe/Berlin").stdout
    bad = cw("list", "--tz", "Mars/Olympus")
    assert bad.code == 2 and "unknown time zone 'Mars/Olympus'" in bad.stderr


def test_the_desks_zone_is_read_without_loading_the_policy(cw: CW, tmp_path: Path) -> None:
    berlin = tmp_path / "berlin.yaml"
    berlin.write_text(DEFAULT_POLICY.read_text().replace("timezone: Asia/Shanghai",
                                                         'timezone: "Europe/Berlin"  # the desk'))
    with casework.Engine(str(cw.db), policies=berlin) as engine:
        assert engine.zone() == ZoneInfo("Europe/Berlin")
        assert engine.policies.loaded is None  # a reading command neither parses nor stores the policy
    odd = tmp_path / "odd.yaml"  # no top-level timezone line to read: the policy is loaded for its zone
    odd.write_text(DEFAULT_POLICY.read_text().replace("timezone: Asia/Shanghai", "timezone:\n  Europe/Paris"))
    with casework.Engine(str(cw.db), policies=odd) as engine:
        assert engine.zone() == ZoneInfo("Europe/Paris") and engine.policies.loaded is not None


def test_check_shows_a_code_only_where_a_rule_failed(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    out = cw("check", number, "approve").stdout
    failed = [line for line in out.splitlines() if "FAIL" in line]
    passed = [line for line in out.splitlines() if " pass " in line]
    assert failed and all("window_expired" in line for line in failed)
    assert passed and not any(code in line for line in passed
                              for code in ("role_not_permitted", "condition_unacceptable", "evidence_missing"))


def test_a_refused_entry_shows_no_move(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    assert cw("fire", number, "approve", "--role", "agent").code == 1
    out = cw.ok("history", number).stdout
    assert "refused  in submitted" in out and "submitted → submitted" not in out


def test_an_unknown_language_is_an_error_naming_the_ones_there_are(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    for argv in (("fire", number, "approve"), ("check", number, "approve"), ("next", number)):
        run = cw(*argv, "--lang", "fr")
        assert run.code == 2 and "unknown language 'fr'; the policy's messages are in: en, zh-CN" in run.stderr
    assert len(cw.history(number)) == 1  # the refused fire was not even attempted
    assert "超过" in cw("check", number, "approve", "--lang", "zh", "--audience", "customer").stdout  # zh: zh-CN


# ---- history ------------------------------------------------------------------------------------------
def test_history_is_the_whole_trail(cw: CW) -> None:
    number = cw.open_return(3, "--channel", "web")["number"]
    cw.ok("fire", number, "approve", "--actor", "alice", "--role", "agent")
    refused = cw("fire", number, "receive", "--actor", "bob", "--role", "agent")
    assert refused.code == 1, refused
    entries = cw.history(number)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    for e in entries:
        assert set(e) >= HISTORY_KEYS
        assert is_iso_with_offset(e["at"]), e["at"]
        assert e["policy"]["label"] == "default 2026-11" and HASH.match(e["policy"]["hash"])
        assert HASH.match(e["hash"])
    opening, approve, receive = entries
    assert (opening["event"], opening["from_state"], opening["to_state"], opening["outcome"]) == \
        ("open", None, "submitted", "applied")
    assert (opening["actor"], opening["role"], opening["channel"]) == ("cust-1", "customer", "web")
    assert opening["prev_hash"] == "0" * 64
    assert (approve["event"], approve["from_state"], approve["to_state"], approve["outcome"]) == \
        ("approve", "submitted", "approved", "applied")
    assert (approve["actor"], approve["role"], approve["reasons"]) == ("alice", "agent", [])
    assert (receive["event"], receive["from_state"], receive["to_state"], receive["outcome"]) == \
        ("receive", "approved", None, "refused")
    assert (receive["actor"], receive["role"]) == ("bob", "agent")
    assert [r["code"] for r in receive["reasons"]] == ["not_available"]
    # the hash chain links every entry to the one before
    assert approve["prev_hash"] == opening["hash"]
    assert receive["prev_hash"] == approve["hash"]
    assert datetime.fromisoformat(opening["at"]) <= datetime.fromisoformat(receive["at"])


def test_history_human_output(cw: CW) -> None:
    number = cw.open_return()["number"]
    cw.ok("fire", number, "approve", "--actor", "alice", "--role", "agent")
    assert cw("fire", number, "pay", "--actor", "bob", "--role", "agent").code == 2  # not a return event
    assert cw("fire", number, "receive", "--actor", "bob", "--role", "agent").code == 1
    run = cw.ok("history", number)
    for text in ("open", "approve", "receive", "applied", "refused", "alice (agent)", "not_available"):
        assert text in run.stdout, text


# ---- list ---------------------------------------------------------------------------------------------
def test_list_filters_and_order(cw: CW) -> None:
    refund = cw.open_refund(order="SO-1", customer="cust-1")["number"]
    ret_a = cw.open_return(order="SO-2", customer="cust-2")["number"]
    ret_b = cw.open_return(order="SO-3", customer="cust-1")["number"]
    complaint = cw.ok_json("open", "complaint", "--order", "SO-4", "--reason", "slow", "--customer", "cust-3",
                           "--role", "agent", "--actor", "alice")["number"]
    cw.ok("fire", ret_a, "approve", "--role", "agent", "--actor", "alice")

    def numbers(*filters: str) -> list[str]:
        doc = cw.ok_json("list", *filters)
        assert isinstance(doc, list)
        for case in doc:
            assert_case_doc(case)
        return [c["number"] for c in doc]

    assert numbers() == [complaint, ret_b, ret_a, refund]  # newest first
    assert numbers("--kind", "return") == [ret_b, ret_a]
    assert numbers("--state", "approved") == [ret_a]
    assert numbers("--kind", "return", "--state", "submitted") == [ret_b]
    assert numbers("--kind", "refund", "--state", "approved") == []
    assert numbers("--order", "SO-2") == [ret_a]
    assert numbers("--order", "SO-404") == []
    assert numbers("--customer", "cust-1") == [ret_b, refund]
    assert numbers("--customer", "cust-1", "--kind", "refund") == [refund]
    assert numbers("--limit", "2") == [complaint, ret_b]
    assert numbers("--overdue") == []  # every first response is still a day away
    soon = (datetime.now(POLICY_TZ) + timedelta(days=2)).date().isoformat()
    assert set(numbers("--due-before", soon)) == {complaint, ret_b, refund}  # ret_a was answered
    far = (datetime.now(POLICY_TZ) + timedelta(days=3650)).date().isoformat()
    # ...but ret_a still has its approved-not-shipped timer and its resolution deadline ahead.
    assert set(numbers("--due-before", far)) == {complaint, ret_b, refund, ret_a}
    assert numbers("--due-before", "2000-01-01") == []

    run = cw.ok("list", "--kind", "return")
    assert ret_a in run.stdout and ret_b in run.stdout
    assert refund not in run.stdout
    assert "2 case(s)" in run.stdout


def test_list_on_an_empty_database(cw: CW) -> None:
    assert cw.ok_json("list") == []
    assert "0 case(s)" in cw.ok("list").stdout


# ---- verify -------------------------------------------------------------------------------------------
def test_verify_a_clean_database(cw: CW) -> None:
    number = cw.open_return()["number"]
    cw.ok("fire", number, "approve", "--role", "agent", "--actor", "alice")
    assert cw("fire", number, "receive", "--role", "agent", "--actor", "alice").code == 1
    cw.open_refund()
    doc = cw.ok_json("verify")
    kept = {k: doc[k] for k in ("ok", "cases_checked", "entries_checked", "broken", "problems")}
    assert kept == {"ok": True, "cases_checked": 2, "entries_checked": 4, "broken": [], "problems": []}
    assert doc["digest"].startswith("4:") and doc["checked_with_key"] is False and doc["chain"]["pending"] == 0
    run = cw.ok("verify")
    assert "verify: OK" in run.stdout
    assert run.stderr == ""


def _tamper(db: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(db)
    try:
        cur = conn.execute(sql, params)
        assert cur.rowcount == 1
        conn.commit()
    finally:
        conn.close()


def test_verify_names_a_tampered_case_and_exits_1(cw: CW) -> None:
    good = cw.open_refund()["number"]
    bad = cw.open_return()["number"]
    cw.ok("fire", bad, "approve", "--role", "agent", "--actor", "alice")
    _tamper(cw.db, "UPDATE audit_entries SET actor = 'mallory' WHERE number = ? AND seq = 2", bad)

    run = cw("verify", "--json")
    assert run.code == 1, run
    assert_no_traceback(run)
    line = assert_one_stderr_line(run)
    assert bad in line and good not in line
    doc = run.json
    assert doc["ok"] is False
    assert doc["broken"] == [bad]
    assert doc["cases_checked"] == 2
    assert [(p["number"], p["seq"]) for p in doc["problems"]] == [(bad, 2)]

    human = cw("verify")
    assert human.code == 1, human
    assert_one_stderr_line(human)
    assert f"BROKEN {bad}" in human.stdout
    assert good not in human.stdout


def test_verify_finds_a_case_row_changed_behind_its_trail(cw: CW) -> None:
    number = cw.open_return()["number"]
    _tamper(cw.db, "UPDATE cases SET state = 'approved' WHERE number = ?", number)
    run = cw("verify", "--json")
    assert run.code == 1, run
    assert run.json["broken"] == [number]
    assert any("state" in p["problem"] for p in run.json["problems"])


# ---- demo ---------------------------------------------------------------------------------------------
def test_demo_json(cw: CW) -> None:
    target = cw.tmp / "demo.db"
    doc = cw.ok_json("demo", "--file", str(target))
    assert target.exists()
    assert doc["database"] == str(target)
    assert doc["verify"]["ok"] is True
    assert doc["verify"]["broken"] == []
    steps = doc["steps"]
    assert len(steps) > 20
    assert {s["event"] for s in steps} >= {"open", "approve", "pay", "exchange", "adjust", "resolve", "close"}
    refusals = [s for s in steps if s.get("outcome") == "refused"]
    assert refusals, "the demo shows refusals too"
    assert [(s["event"], [r["code"] for r in s["reasons"]]) for s in refusals] == [
        ("approve", ["window_expired"]), ("investigate", ["evidence_missing"]),
        ("approve", ["approval_limit_exceeded"])]
    # the demo database can be explored with the other commands
    listed = invoke(["--db", str(target), "list", "--json"])
    assert listed.code == 0 and len(listed.json) == 6
    verified = invoke(["--db", str(target), "verify", "--json", "--since", doc["digest"]])
    assert verified.code == 0 and verified.json["digest"] == doc["digest"]  # the demo ends with the chain's digest


def test_demo_human(cw: CW, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(cw.tmp))  # the default demo database lands in tmp_path
    run = cw.ok("demo", db=False)
    assert run.stderr == ""
    assert "verify: OK" in run.stdout
    assert "refused" in run.stdout
    assert "A refund approved and paid" in run.stdout
    assert str(cw.tmp) in run.stdout


def test_demo_refuses_an_existing_file(cw: CW) -> None:
    target = cw.tmp / "taken.db"
    target.write_bytes(b"")
    run = cw("demo", "--file", str(target), "--json")
    assert run.code == 2, run
    assert_one_stderr_line(run)
    assert "already exists" in run.json["error"]["message"]


# ---- idempotency --------------------------------------------------------------------------------------
def test_fire_key_makes_a_repeat_a_no_op(cw: CW) -> None:
    number = cw.open_return()["number"]
    first = cw.ok_json("fire", number, "approve", "--role", "agent", "--actor", "alice", "--key", "click-7f3a")
    again = cw.ok_json("fire", number, "approve", "--role", "agent", "--actor", "alice", "--key", "click-7f3a")
    assert first == again
    assert again["state"] == "approved" and again["version"] == 2
    entries = cw.history(number)
    assert [(e["event"], e["outcome"]) for e in entries] == [("open", "applied"), ("approve", "applied")]
    assert cw.ok_json("show", number)["version"] == 2
    # the same key for a different request is refused as bad input
    other = cw("fire", number, "cancel", "--role", "agent", "--actor", "alice", "--key", "click-7f3a", "--json")
    assert other.code == 2, other
    assert_one_stderr_line(other)
    assert "click-7f3a" in other.json["error"]["message"]
    assert len(cw.history(number)) == 2


def test_fire_key_replays_a_refusal_without_a_second_entry(cw: CW) -> None:
    number = cw.open_return(20)["number"]
    argv = ("fire", number, "approve", "--role", "agent", "--actor", "alice", "--key", "k-refused", "--json")
    first, again = cw(*argv), cw(*argv)
    assert first.code == again.code == 1, (first, again)
    assert_one_stderr_line(again)
    assert first.json["reasons"] == again.json["reasons"]
    assert again.json["number"] == number
    assert [e["outcome"] for e in cw.history(number)] == ["applied", "refused"]


def test_open_key_opens_once(cw: CW) -> None:
    first = cw.open_return(3, "--key", "open-1")
    again = cw.open_return(3, "--key", "open-1")
    assert first["number"] == again["number"]
    assert len(cw.ok_json("list")) == 1


# ---- actor and role -----------------------------------------------------------------------------------
def test_actor_and_role_options_are_recorded(cw: CW) -> None:
    number = cw.open_return()["number"]
    cw.ok("fire", number, "review", "--actor", "alice", "--role", "agent")
    entry = cw.history(number)[-1]
    assert (entry["actor"], entry["role"]) == ("alice", "agent")


def test_actor_and_role_from_the_environment(cw: CW) -> None:
    env: dict[str, str | None] = {"CASEWORK_ACTOR": "cust-env", "CASEWORK_ROLE": "customer"}
    doc = cw.ok_json("open", "return", "--order", "SO-1", "--delivered", days_ago(2), "--reason", "defective",
                     env=env)
    assert doc["facts"]["customer"] == "cust-env"
    number = doc["number"]
    # the customer may not approve: the role comes from $CASEWORK_ROLE
    refused = cw("fire", number, "approve", "--json", env=env)
    assert refused.code == 1, refused
    assert "role_not_permitted" in [r["code"] for r in refused.json["reasons"]]
    # --actor and --role win over the environment
    cw.ok("fire", number, "review", "--actor", "alice", "--role", "agent", env=env)
    # no --role and no $CASEWORK_ROLE: the role is agent
    cw.ok("fire", number, "request_evidence", env={"CASEWORK_ACTOR": "bob"})
    entries = cw.history(number)
    assert [(e["event"], e["actor"], e["role"], e["outcome"]) for e in entries] == [
        ("open", "cust-env", "customer", "applied"),
        ("approve", "cust-env", "customer", "refused"),
        ("review", "alice", "agent", "applied"),
        ("request_evidence", "bob", "agent", "applied"),
    ]


def test_actor_defaults_to_the_os_user(cw: CW, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "os-user-42")
    number = cw.open_return()["number"]
    cw.ok("fire", number, "review")
    entry = cw.history(number)[-1]
    assert (entry["actor"], entry["role"]) == ("os-user-42", "agent")


def test_a_customer_cannot_act_on_another_customers_case(cw: CW) -> None:
    number = cw.open_return(customer="cust-1")["number"]
    run = cw("fire", number, "cancel", "--role", "customer", "--actor", "cust-2", "--json")
    assert run.code == 1, run
    assert "role_not_permitted" in [r["code"] for r in run.json["reasons"]]
    cw.ok("fire", number, "cancel", "--role", "customer", "--actor", "cust-1")


# ---- database selection -------------------------------------------------------------------------------
def test_casework_db_environment_variable(cw: CW) -> None:
    env_db = cw.tmp / "from-env.db"
    env: dict[str, str | None] = {"CASEWORK_DB": str(env_db)}
    run = invoke(["open", "refund", "--order", "E-1", "--amount", "5", "--paid", "5", "--customer", "c-1",
                  "--json"], env=env)
    assert run.code == 0, run
    assert env_db.exists()
    assert not (cw.tmp / "casework.db").exists()
    listed = invoke(["list", "--json"], env=env)
    assert [c["number"] for c in listed.json] == [run.json["number"]]
    # --db wins over $CASEWORK_DB
    assert invoke(["--db", str(cw.db), "list", "--json"], env=env).json == []
    # a full SQLAlchemy URL works as well as a path
    url = invoke(["--db", f"sqlite:///{env_db}", "list", "--json"])
    assert [c["number"] for c in url.json] == [run.json["number"]]


def test_global_options_may_follow_the_command(cw: CW) -> None:
    number = invoke(["open", "refund", "--order", "G-1", "--amount", "5", "--paid", "5", "--customer", "c-1",
                     "--db", str(cw.db), "--json"]).json["number"]
    assert invoke(["verify", "--db", str(cw.db), "--json"]).json["cases_checked"] == 1
    assert invoke(["show", number, f"--db={cw.db}", "--json"]).json["number"] == number
    assert invoke(["sla", "sweep", "--dry-run", "--db", str(cw.db), "--json"]).code == 0
    assert invoke(["list", "--json", "--policies", str(DEFAULT_POLICY), "--db", str(cw.db)]).json[0]["number"] == number
    assert not (cw.tmp / "casework.db").exists()  # every one of them used --db
    missing = invoke(["list", "--db"])
    assert missing.code == 2 and "--db" in missing.stderr and "Traceback" not in missing.stderr


def test_default_database_is_casework_db_in_the_working_directory(cw: CW) -> None:
    run = invoke(["open", "refund", "--order", "D-1", "--amount", "5", "--paid", "5", "--customer", "c-1",
                  "--json"])
    assert run.code == 0, run
    assert (cw.tmp / "casework.db").exists()
    assert [c["number"] for c in invoke(["list", "--json"]).json] == [run.json["number"]]


# ---- policies -----------------------------------------------------------------------------------------
def test_custom_policy_file_changes_the_decision(cw: CW) -> None:
    # Under the default policy a no-reason return 20 days after delivery is refused...
    old = cw.open_return(20)["number"]
    assert cw("check", old, "approve", "--role", "agent", "--actor", "alice").code == 1

    # ...under a policy with a 30-day window the same return is accepted.
    custom = policy_with_window(cw.tmp, 30, "thirty.yaml", label="custom 30d")
    opened = cw.ok_json("--policies", str(custom), "open", "return", "--order", "SO-1", "--delivered",
                        days_ago(20), "--reason", "no_reason", "--condition", "unused", "--evidence",
                        "order_record", "--role", "customer", "--actor", "cust-1")
    assert opened["policy"]["label"] == "custom 30d"
    default_hash = cw.ok_json("show", old)["policy"]["hash"]
    assert opened["policy"]["hash"] != default_hash
    check = cw("--policies", str(custom), "check", opened["number"], "approve", "--role", "agent", "--json")
    assert check.code == 0, check
    [window] = [v for v in check.json["verdicts"] if v["guard"] == "no_reason_return_window"]
    assert window["passed"] is True
    assert window["details"]["window_days"] == 30
    assert re.search(r"(^|/)thirty\.yaml:\d+$", window["source"]), window
    fired = cw.ok_json("--policies", str(custom), "fire", opened["number"], "approve", "--role", "agent")
    assert fired["state"] == "approved"

    # A case stays on the policy it was opened under, whichever file is given now.
    still = cw("--policies", str(custom), "check", old, "approve", "--role", "agent", "--json")
    assert still.code == 1, still
    assert [r["code"] for r in still.json["reasons"]] == ["window_expired"]
    # The case opened under the custom policy keeps it without --policies too.
    assert cw.ok_json("show", opened["number"])["policy"]["label"] == "custom 30d"
    assert cw.ok_json("verify")["ok"] is True


def test_policies_environment_variable_and_local_policies_yaml(cw: CW) -> None:
    custom = policy_with_window(cw.tmp, 30, "env-policy.yaml", label="from env")
    doc = cw.ok_json("open", "refund", "--order", "P-1", "--amount", "5", "--paid", "5", "--customer", "c-1",
                     env={"CASEWORK_POLICIES": str(custom)})
    assert doc["policy"]["label"] == "from env"
    policy_with_window(cw.tmp, 30, "policies.yaml", label="local file")
    doc = cw.ok_json("open", "refund", "--order", "P-2", "--amount", "5", "--paid", "5", "--customer", "c-1")
    assert doc["policy"]["label"] == "local file"


# ---- help and version ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["open", "fire", "check", "next", "show", "history", "list", "verify", "demo"])
def test_command_help(cw: CW, command: str) -> None:
    run = cw(command, "--help")
    assert run.code == 0, run
    assert_no_traceback(run)
    assert "Usage:" in run.stdout
    assert "--json" in run.stdout


def test_version(cw: CW) -> None:
    run = cw("--version", db=False)
    assert run.code == 0, run
    assert run.stdout.strip() == casework.__version__


def test_bare_casework_shows_readable_help(cw: CW) -> None:
    run = cw(db=False)
    assert run.code in (0, 2), run
    assert_no_traceback(run)
    out = run.stdout + run.stderr
    assert "Usage:" in out
    lines = out.splitlines()
    # the help lists the commands one per line, as --help does
    assert sum(1 for line in lines if re.match(r"^\s+(open|fire|check|next|show|history|list|verify|demo)\s",
                                               line)) == 9, run


# ---- the real process ---------------------------------------------------------------------------------
def test_real_process_open_fire_history_verify(tmp_path: Path) -> None:
    opened = run_process(["--db", "p.db", "open", "return", "--order", "SO-1", "--delivered", days_ago(20),
                          "--reason", "no_reason", "--condition", "unused", "--evidence", "order_record",
                          "--role", "customer", "--actor", "cust-1", "--json"], tmp_path)
    assert opened.code == 0, opened
    assert opened.stderr == "", opened
    number = opened.json["number"]
    assert (tmp_path / "p.db").exists()

    refused = run_process(["--db", "p.db", "fire", number, "approve", "--role", "agent", "--actor", "alice",
                           "--json"], tmp_path)
    assert refused.code == 1, refused
    assert_no_traceback(refused)
    assert_one_stderr_line(refused)
    assert refused.json["allowed"] is False

    rejected = invoke(["--db", str(tmp_path / "p.db"), "fire", number, "reject", "--note", "too late",
                       "--fact", "rejection=deadline_passed"],
                      env={"CASEWORK_ACTOR": "alice", "CASEWORK_ROLE": "agent"})
    assert rejected.code == 0, rejected
    history = invoke(["--db", str(tmp_path / "p.db"), "history", number, "--json"])
    assert [(e["event"], e["outcome"], e["actor"]) for e in history.json] == [
        ("open", "applied", "cust-1"), ("approve", "refused", "alice"), ("reject", "applied", "alice")]

    verify = run_process(["verify"], tmp_path, env={"CASEWORK_DB": str(tmp_path / "p.db")})
    assert verify.code == 0, verify
    assert "verify: OK" in verify.stdout
