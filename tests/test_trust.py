"""Who may act (the operators section), and personal data (masking, redacted export)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EngineFactory
from typer.testing import CliRunner

import cli
from casework import Actor, Engine, TransitionDenied, parse_policy
from casework.policies.authoring import check_policy
from casework.policies.files import default_policy_path

OPERATORS = """
operators:
  alice: [agent]
  wang: [supervisor]
"""


def with_operators(text: str = OPERATORS) -> str:
    return default_policy_path().read_text() + text


@pytest.fixture
def guarded(make_engine: EngineFactory) -> Engine:
    """An engine whose policy names its operators, on each database."""
    return make_engine(policies=parse_policy(with_operators()))


def refund(engine: Engine, amount: str = "100.00") -> str:
    return engine.open("refund", {"order_id": "SO-1", "amount": amount, "paid": amount},
                       actor=Actor("cust-1", "customer")).number


def test_a_role_the_actor_was_not_granted_is_refused_and_recorded(guarded: Engine):
    number = refund(guarded)
    with pytest.raises(TransitionDenied) as denied:
        guarded.fire(number, "approve", actor=Actor("mallory", "supervisor"))
    assert "role_not_permitted" in denied.value.decision.codes
    assert "mallory was not granted the role supervisor" in denied.value.decision.reasons[0].message
    last = guarded.history(number)[-1]
    assert (last.outcome, last.actor, last.role) == ("refused", "mallory", "supervisor")
    assert guarded.get(number).state == "submitted"


def test_granted_operators_act_in_their_roles_and_anyone_may_act_as_a_customer(guarded: Engine):
    number = refund(guarded, "3000.00")
    with pytest.raises(TransitionDenied) as denied:
        guarded.fire(number, "approve", actor=Actor("alice", "agent"))
    assert denied.value.decision.codes == ["approval_limit_exceeded"]
    assert guarded.fire(number, "approve", actor=Actor("wang", "supervisor")).state == "approved"
    with pytest.raises(TransitionDenied):  # alice claims a role she was not granted
        guarded.fire(number, "pay", actor=Actor("alice", "supervisor"))


def test_opening_in_a_role_not_granted_is_refused(guarded: Engine):
    with pytest.raises(TransitionDenied) as denied:
        guarded.open("refund", {"order_id": "A", "amount": "1.00", "paid": "1.00", "customer": "c-1"},
                     actor=Actor("bob", "agent"))
    assert denied.value.decision.codes[0] == "role_not_permitted"
    [recorded] = guarded.refused_openings()  # on the trail, though no case was opened
    assert (recorded.actor, recorded.role, recorded.outcome) == ("bob", "agent", "refused")


def test_open_mode_is_a_warning_and_an_unknown_granted_role_an_error():
    default = check_policy(default_policy_path())
    assert default.ok() and not default.ok(strict=True)
    assert any("open mode" in w.message for w in default.warnings)
    assert check_policy(with_operators()).ok(strict=True)
    bad = check_policy(with_operators("\noperators:\n  alice: [agnet]\n"))
    assert not bad.ok()
    assert "did you mean 'agent'" in str(bad.errors[0])


def test_personal_facts_are_masked_in_show_and_history_unless_revealed(tmp_path: Path):
    db = str(tmp_path / "c.db")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli.app, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    opened = json.loads(run("open", "refund", "--order", "A", "--amount", "5", "--paid", "5",
                            "--fact", "phone=13800138000", "--role", "customer", "--actor", "c1", "--json"))
    number = opened["number"]
    assert json.loads(run("show", number, "--json"))["facts"]["phone"] == "13*******00"
    assert json.loads(run("show", number, "--json", "--reveal"))["facts"]["phone"] == "13800138000"
    assert json.loads(run("history", number, "--json"))[0]["data"]["phone"] == "13*******00"
    exported = [json.loads(line) for line in run("export", "--redact").splitlines()]
    assert exported[0]["data"]["phone"] == "[redacted]" and exported[0]["number"] == number
    assert "13800138000" not in run("export", "--redact")
    assert "13800138000" in run("export")
    out = tmp_path / "audit.jsonl"
    assert "1 audit entries" in run("export", "--redact", "-o", str(out))
    assert len(out.read_text().splitlines()) == 1
