"""The CLI's error contract, over a corpus of bad invocations.

Every bad invocation must exit 2 (bad input) or 1 (refused by the rules), write exactly one
non-empty line on stderr, never a traceback, and with --json print exactly one JSON document on
stdout. Each row of the corpus runs twice: as typed, and with --json appended.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import (
    DEFAULT_POLICY,
    Run,
    assert_error_contract,
    assert_no_traceback,
    assert_one_stderr_line,
    days_ago,
    invoke,
    run_process,
)

from casework import Actor, Engine

REFUND = ["open", "refund", "--order", "SO-1", "--amount", "59.00", "--paid", "59.00"]
RETURN = ["open", "return", "--order", "SO-1", "--reason", "defective"]
UNREACHABLE_PG = "postgresql+psycopg://casework@127.0.0.1:1/casework"


def _p(id: str, argv: list[str], code: int, needle: str | None = None) -> object:
    return pytest.param(argv, code, needle, id=id)


# Placeholders: {db} a database holding case {N} (a refund of customer cust-1, idempotency key
# "used-key" already spent on it), {near} an absent number close to {N}, {tmp} the test's directory,
# {garbled} {foreign} {newer} bad database files, {nodir} a path in a missing directory, {delivered}
# a recent date, {policy:NAME} a broken policy file.
CORPUS = [
    # ---- open: malformed values
    _p("amount-letters", ["--db", "{db}", "open", "refund", "--order", "A", "--amount", "abc", "--paid", "1"], 2,
       "--amount 'abc'"),
    _p("amount-negative", ["--db", "{db}", "open", "refund", "--order", "A", "--amount", "-5", "--paid", "1"], 2,
       "negative"),
    _p("amount-three-decimals", ["--db", "{db}", "open", "refund", "--order", "A", "--amount", "1.234",
                                 "--paid", "2"], 2, "2 decimal places"),
    _p("amount-empty", ["--db", "{db}", "open", "refund", "--order", "A", "--amount", "", "--paid", "1"], 2,
       "--amount"),
    _p("amount-exponent", ["--db", "{db}", "open", "refund", "--order", "A", "--amount", "1e3", "--paid", "1"], 2),
    _p("paid-nan", ["--db", "{db}", "open", "refund", "--order", "A", "--amount", "1", "--paid", "NaN"], 2,
       "--paid"),
    _p("delivered-month-13", ["--db", "{db}", *RETURN, "--delivered", "2026-13-01"], 2, "2026-13-01"),
    _p("delivered-yesterday", ["--db", "{db}", *RETURN, "--delivered", "yesterday"], 2, "yesterday"),
    _p("delivered-hour-25", ["--db", "{db}", *RETURN, "--delivered", "2026-11-02T25:00:00"], 2, "--delivered"),
    _p("purchased-slashes", ["--db", "{db}", *RETURN, "--delivered", "{delivered}", "--purchased", "02/11/2026"],
       2, "--purchased"),
    _p("evidence-no-type", ["--db", "{db}", *REFUND, "--evidence", "=x"], 2, "'=x'"),
    _p("evidence-empty-ref", ["--db", "{db}", *REFUND, "--evidence", "photo="], 2, "'photo='"),
    _p("evidence-unknown-type", ["--db", "{db}", *REFUND, "--evidence", "selfie"], 2, "evidence type 'selfie'"),
    _p("fact-no-equals", ["--db", "{db}", *REFUND, "--fact", "noequals"], 2, "noequals"),
    _p("fact-no-key", ["--db", "{db}", *REFUND, "--fact", "=value"], 2, "KEY=VALUE"),
    _p("fact-bad-name", ["--db", "{db}", *REFUND, "--fact", "my-key=1"], 2, "my-key"),
    _p("fact-unknown-flag", ["--db", "{db}", *REFUND, "--fact", "flags=hacker"], 2, "hacker"),
    _p("fact-counter-not-a-number", ["--db", "{db}", *REFUND, "--fact", "refunds_last_30_days=many"], 2, "many"),
    _p("currency-four-letters", ["--db", "{db}", *REFUND, "--currency", "EURO"], 2, "EURO"),
    # ---- open: unknown names
    _p("kind-typo", ["--db", "{db}", "open", "refnud", "--order", "A"], 2, "did you mean 'refund'"),
    _p("reason-unknown", ["--db", "{db}", *RETURN[:-1], "bored", "--delivered", "{delivered}"], 2,
       "reason 'bored'"),
    _p("condition-unknown", ["--db", "{db}", *RETURN, "--delivered", "{delivered}", "--condition", "shiny"], 2,
       "condition 'shiny'"),
    _p("channel-unknown", ["--db", "{db}", *REFUND, "--channel", "fax"], 2, "channel 'fax'"),
    _p("role-unknown-open", ["--db", "{db}", *REFUND, "--role", "boss"], 2, "role 'boss'"),
    _p("missing-required-fact", ["--db", "{db}", *RETURN], 2, "delivered"),
    _p("open-as-system-refused", ["--db", "{db}", *REFUND, "--customer", "c-1", "--role", "system",
                                  "--actor", "cron"], 1, "role_not_permitted"),
    # ---- usage
    _p("open-without-kind", ["--db", "{db}", "open"], 2, "kind"),
    _p("open-unknown-option", ["--db", "{db}", *REFUND, "--bogus"], 2, "--bogus"),
    _p("open-option-without-value", ["--db", "{db}", "open", "refund", "--order"], 2),
    _p("fire-without-event", ["--db", "{db}", "fire", "{N}"], 2, "event"),
    _p("fire-without-arguments", ["--db", "{db}", "fire"], 2, "number"),
    _p("show-without-number", ["--db", "{db}", "show"], 2, "number"),
    _p("unknown-command", ["--db", "{db}", "frobnicate"], 2, "frobnicate"),
    _p("unknown-global-option", ["--colour", "list"], 2, "--colour"),
    _p("verify-unknown-option", ["--db", "{db}", "verify", "--deep"], 2, "--deep"),
    _p("expected-version-not-a-number", ["--db", "{db}", "fire", "{N}", "review", "--expected-version", "x"], 2,
       "--expected-version"),
    _p("list-limit-zero", ["--db", "{db}", "list", "--limit", "0"], 2, "--limit"),
    _p("list-limit-letters", ["--db", "{db}", "list", "--limit", "ten"], 2, "--limit"),
    _p("sweep-batch-zero", ["--db", "{db}", "sla", "sweep", "--batch", "0"], 2, "--batch"),
    _p("sweep-batch-letters", ["--db", "{db}", "sla", "sweep", "--batch", "all"], 2, "--batch"),
    # ---- fire / check / next / show / history on the case
    _p("event-typo", ["--db", "{db}", "fire", "{N}", "aprove"], 2, "did you mean 'approve'"),
    _p("check-event-typo", ["--db", "{db}", "check", "{N}", "reveiw"], 2, "did you mean 'review'"),
    _p("event-of-another-kind", ["--db", "{db}", "fire", "{N}", "ship"], 2, "ship"),
    _p("fire-unknown-role", ["--db", "{db}", "fire", "{N}", "approve", "--role", "boss"], 2, "role 'boss'"),
    _p("next-unknown-role", ["--db", "{db}", "next", "{N}", "--role", "admin"], 2, "role 'admin'"),
    _p("fire-evidence-empty-ref", ["--db", "{db}", "fire", "{N}", "provide_evidence", "--evidence", "photo="], 2,
       "photo="),
    _p("fire-fact-bad-money", ["--db", "{db}", "fire", "{N}", "review", "--fact", "amount=abc"], 2, "abc"),
    _p("fire-fact-bad-condition", ["--db", "{db}", "fire", "{N}", "review", "--fact", "condition=shiny"], 2,
       "shiny"),
    _p("fire-unknown-case", ["--db", "{db}", "fire", "{near}", "approve"], 2, "did you mean {N}"),
    _p("show-unknown-case", ["--db", "{db}", "show", "{near}"], 2, "did you mean {N}"),
    _p("history-unknown-case", ["--db", "{db}", "history", "{near}"], 2, "no case {near}"),
    _p("next-unknown-case", ["--db", "{db}", "next", "XX-1"], 2, "no case XX-1"),
    _p("check-unknown-case", ["--db", "{db}", "check", "{near}", "approve"], 2, "did you mean {N}"),
    _p("key-reused-for-another-request", ["--db", "{db}", "fire", "{N}", "cancel", "--key", "used-key",
                                          "--actor", "cust-1", "--role", "customer"], 2, "used-key"),
    # ---- refusals by the rules (exit 1)
    _p("fire-refused-role", ["--db", "{db}", "fire", "{N}", "approve", "--role", "customer", "--actor", "cust-1"],
       1, "role_not_permitted"),
    _p("fire-refused-not-owner", ["--db", "{db}", "fire", "{N}", "cancel", "--role", "customer",
                                  "--actor", "cust-2"], 1, "role_not_permitted"),
    _p("fire-not-available", ["--db", "{db}", "fire", "{N}", "pay", "--role", "agent", "--actor", "a"], 1,
       "not_available"),
    _p("fire-stale-version", ["--db", "{db}", "fire", "{N}", "review", "--role", "agent", "--actor", "a",
                              "--expected-version", "9"], 1, "version"),
    # ---- list filters
    _p("list-bad-state", ["--db", "{db}", "list", "--state", "nope"], 2, "state 'nope'"),
    _p("list-state-of-another-kind", ["--db", "{db}", "list", "--kind", "refund", "--state", "in_transit"], 2,
       "in_transit"),
    _p("list-bad-kind", ["--db", "{db}", "list", "--kind", "refnud"], 2, "did you mean 'refund'"),
    _p("list-bad-due-before", ["--db", "{db}", "list", "--due-before", "tomorrow"], 2, "tomorrow"),
    _p("list-bad-due-before-date", ["--db", "{db}", "list", "--due-before", "2026-02-30"], 2, "2026-02-30"),
    _p("demo-file-exists", ["demo", "--file", "{db}"], 2, "already exists"),
    # ---- databases
    _p("db-garbled", ["--db", "{garbled}", "list"], 2, "not a database"),
    _p("db-garbled-show", ["--db", "{garbled}", "show", "RF-20260101-000001"], 2),
    _p("db-in-missing-directory", ["--db", "{nodir}", "list"], 2),
    _p("db-is-a-directory", ["--db", "{tmp}", "show", "{N}"], 2),
    _p("db-unreachable-postgresql", ["--db", UNREACHABLE_PG, "list"], 2, "127.0.0.1"),
    _p("db-unknown-dialect", ["--db", "nosuchdialect://x", "list"], 2, "nosuchdialect"),
    _p("db-missing-driver", ["--db", "mysql://u@127.0.0.1:1/db", "list"], 2, "mysql"),
    _p("db-foreign-sqlite", ["--db", "{foreign}", "list"], 2),
    _p("db-schema-too-new", ["--db", "{newer}", "list"], 2, "schema"),
    # ---- policy files
    _p("policy-missing", ["--db", "{db}", "--policies", "{tmp}/nope.yaml", *REFUND], 2, "nope.yaml"),
    _p("policy-invalid-yaml", ["--db", "{db}", "--policies", "{policy:invalid}", *REFUND], 2, "invalid.yaml:"),
    _p("policy-unknown-key", ["--db", "{db}", "--policies", "{policy:unknown_key}", *REFUND], 2, "bogus_key"),
    _p("policy-bad-duration", ["--db", "{db}", "--policies", "{policy:bad_duration}", *REFUND], 2, "7days"),
    _p("policy-unknown-guard", ["--db", "{db}", "--policies", "{policy:unknown_guard}", *REFUND], 2,
       "no_such_guard"),
    _p("policy-empty", ["--db", "{db}", "--policies", "{policy:empty}", *REFUND], 2, "empty.yaml"),
    _p("policy-not-utf8", ["--db", "{db}", "--policies", "{policy:binary}", *REFUND], 2, "binary.yaml"),
    _p("policy-a-list", ["--db", "{db}", "--policies", "{policy:a_list}", *REFUND], 2, "a_list.yaml"),
    _p("policy-is-a-directory", ["--db", "{db}", "--policies", "{tmp}", *REFUND], 2),
    _p("policy-from-env-missing", ["--db", "{db}", *REFUND], 2, "from-env.yaml"),  # see ENV below
]
ENV = {"policy-from-env-missing": {"CASEWORK_POLICIES": "{tmp}/from-env.yaml"}}


# ---- the world the corpus runs in -------------------------------------------------------------------
def _garbled(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _foreign(path: Path) -> None:
    """Another application's SQLite database, which happens to have a ``cases`` table."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cases (case_ref TEXT PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO cases VALUES ('X-1', 'not ours')")
    conn.commit()
    conn.close()


def _policy(name: str) -> Callable[[Path], None]:
    default = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert "within: 7d" in default and "- guard: fraud_flag" in default
    texts: dict[str, bytes] = {
        "invalid": b"label: [unclosed\n  kinds: : :\n",
        "unknown_key": ("bogus_key: 1\n" + default).encode(),
        "bad_duration": default.replace("within: 7d", "within: 7days").encode(),
        "unknown_guard": default.replace("- guard: fraud_flag", "- guard: no_such_guard", 1).encode(),
        "empty": b"",
        "binary": b"\xff\xfe\x00\x81 not text",
        "a_list": b"- label\n- kinds\n",
    }
    return lambda path: path.write_bytes(texts[name])


@dataclass
class World:
    """The files a corpus row may name, made only when a row names them."""

    tmp: Path
    db: Path
    number: str

    @property
    def near(self) -> str:
        return self.number[:-1] + ("2" if self.number[-1] != "2" else "3")

    def _newer(self, path: Path) -> None:
        """The case database as a future casework (schema version 99) left it."""
        shutil.copy(self.db, path)
        conn = sqlite3.connect(path)
        conn.execute("UPDATE casework_meta SET value = '99' WHERE key = 'schema'")
        conn.commit()
        conn.close()

    def fill(self, text: str) -> str:
        if text.startswith("{policy:"):
            name = text[len("{policy:"):-1]
            return self._file(f"{name}.yaml", _policy(name))
        files: dict[str, Callable[[], str]] = {
            "{garbled}": lambda: self._file("garbled.db", _garbled),
            "{foreign}": lambda: self._file("foreign.db", _foreign),
            "{newer}": lambda: self._file("newer.db", self._newer),
        }
        for key, make in files.items():
            if key in text:
                text = text.replace(key, make())
        for key, value in {"{db}": str(self.db), "{N}": self.number, "{near}": self.near, "{tmp}": str(self.tmp),
                           "{nodir}": str(self.tmp / "no" / "such" / "c.db"), "{delivered}": days_ago(2)}.items():
            text = text.replace(key, value)
        return text

    def _file(self, name: str, make: Callable[[Path], None]) -> str:
        path = self.tmp / name
        if not path.exists():
            make(path)
        return str(path)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A database with one refund case, built once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "c.db"
    engine = Engine(str(path))
    try:
        case = engine.open("refund", {"order_id": "SO-1", "amount": "59.00", "paid": "59.00"},
                           actor=Actor("cust-1", "customer"))
        engine.fire(case.number, "provide_evidence", actor=Actor("cust-1", "customer"),
                    data={"evidence": ["order_record"]}, key="used-key")
    finally:
        engine.close()
    return path, case.number


@pytest.fixture
def world(template: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.chdir(tmp_path)
    source, number = template
    db = tmp_path / "c.db"
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{db}{suffix}")
    return World(tmp_path, db, number)


def _argv(world: World, argv: list[str], as_json: bool) -> list[str]:
    return [world.fill(a) for a in argv] + (["--json"] if as_json else [])


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
@pytest.mark.parametrize(("argv", "code", "needle"), CORPUS)
def test_bad_invocation(world: World, request: pytest.FixtureRequest, argv: list[str], code: int,
                        needle: str | None, as_json: bool) -> None:
    env = {k: world.fill(v) for k, v in ENV.get(_row_id(request), {}).items()}
    run = invoke(_argv(world, argv, as_json), env=env)
    assert_error_contract(run, code, as_json)
    if needle is not None:
        assert world.fill(needle) in run.stderr, run
        if as_json:
            doc = run.json
            shown = doc["error"]["message"] if "error" in doc else json.dumps(doc["reasons"])
            assert world.fill(needle) in shown, run


def _row_id(request: pytest.FixtureRequest) -> str:
    # callspec ids look like "ROW-human" / "ROW-json"
    return request.node.callspec.id.rsplit("-", 1)[0]


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [p.id for p in CORPUS]  # type: ignore[attr-defined]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    assert set(ENV) <= set(ids)
    assert {p.values[1] for p in CORPUS} == {1, 2}  # type: ignore[attr-defined]


# ---- a refusal in --json prints the decision, an error prints the error document -------------------
def test_refusal_json_is_the_decision(world: World) -> None:
    run = invoke(_argv(world, ["--db", "{db}", "fire", "{N}", "pay", "--role", "agent"], True))
    assert_error_contract(run, 1, True)
    doc = run.json
    assert doc["number"] == world.number
    assert doc["allowed"] is False
    assert [r["code"] for r in doc["reasons"]] == ["not_available"]
    assert set(doc["reasons"][0]) == {"code", "message", "details", "customer_message"}


def test_error_json_document(world: World) -> None:
    run = invoke(_argv(world, ["--db", "{db}", "show", "{near}"], True))
    assert_error_contract(run, 2, True)
    assert run.json == {"error": {"type": "CaseNotFound", "message": run.json["error"]["message"],
                                  "exit_code": 2}}
    assert run.stderr.strip().endswith(run.json["error"]["message"])


def test_bad_input_writes_nothing(world: World) -> None:
    before = invoke(["--db", str(world.db), "history", world.number, "--json"]).json
    for argv in (["fire", world.number, "aprove"], ["fire", world.number, "review", "--fact", "amount=abc"],
                 ["open", "refund", "--order", "A", "--amount", "abc", "--paid", "1"]):
        assert invoke(["--db", str(world.db), *argv]).code == 2
    assert invoke(["--db", str(world.db), "history", world.number, "--json"]).json == before
    assert [c["number"] for c in invoke(["--db", str(world.db), "list", "--json"]).json] == [world.number]


def test_a_garbled_database_is_left_alone(world: World) -> None:
    garbled = Path(world.fill("{garbled}"))
    content = garbled.read_bytes()
    run = invoke(["--db", str(garbled), "open", "refund", "--order", "A", "--amount", "1", "--paid", "1"])
    assert_error_contract(run, 2, False)
    assert garbled.read_bytes() == content


# ---- rows the database itself makes unreadable -------------------------------------------------------
def _corrupt(db: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute(sql, params).rowcount == 1
        conn.commit()
    finally:
        conn.close()


BAD_AUDIT_DATA = "UPDATE audit_entries SET data = 'not json' WHERE number = ? AND seq = 1"
BAD_FACTS = "UPDATE cases SET facts = '{bad' WHERE number = ?"
BAD_TIME = "UPDATE cases SET opened_at = 'garbage' WHERE number = ?"


@pytest.mark.parametrize("sql", [BAD_AUDIT_DATA, BAD_FACTS, BAD_TIME], ids=["audit-data", "case-facts", "case-time"])
def test_verify_reports_an_unreadable_row_as_a_broken_case(world: World, sql: str) -> None:
    _corrupt(world.db, sql, world.number)
    run = invoke(["--db", str(world.db), "verify", "--json"])
    assert_no_traceback(run)
    assert run.code == 1, run
    line = assert_one_stderr_line(run)
    assert world.number in line, run
    assert world.number in run.json["broken"], run


@pytest.mark.parametrize(("command", "sql"), [
    ("show", BAD_FACTS), ("list", BAD_FACTS), ("history", BAD_AUDIT_DATA), ("show", BAD_TIME),
], ids=["show-case-facts", "list-case-facts", "history-audit-data", "show-case-time"])
@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_reading_an_unreadable_row_is_one_line(world: World, command: str, sql: str, as_json: bool) -> None:
    _corrupt(world.db, sql, world.number)
    argv = ["--db", str(world.db), command] + ([] if command == "list" else [world.number])
    run = invoke(argv + (["--json"] if as_json else []))
    assert_error_contract(run, 2, as_json)


# ---- the real process ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "code"), [
    (["--db", "{db}", "open", "refnud", "--order", "A", "--json"], 2),
    (["--db", "{garbled}", "show", "{N}"], 2),
    (["--db", "{db}", "fire", "{N}", "approve", "--role", "customer", "--actor", "cust-1", "--json"], 1),
], ids=["unknown-kind", "garbled-db", "refused"])
def test_real_process_errors(world: World, argv: list[str], code: int) -> None:
    run: Run = run_process([world.fill(a) for a in argv], world.tmp)
    assert_error_contract(run, code, "--json" in argv)
