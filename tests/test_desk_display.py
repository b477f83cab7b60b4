"""What the desk reads: customer texts in the customer's language with the vocabulary's labels, and every view
whole at 80 columns with long values (a long rule id, a long note, a long actor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import DEFAULT_POLICY, days_ago, invoke

from casework import Actor, Engine, PolicyError, parse_policy

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
LONG_RULE = "no_reason_return_window_counted_from_the_delivery_date_of_the_order"


def refused_return(engine: Engine, **facts: Any) -> Any:
    number = engine.open("return", {"order_id": "SO-1", "reason": "no_reason", "condition": "used",
                                    "category": "perishable_food", "delivered": "2026-10-01", **facts},
                         actor=CUSTOMER).number
    return number, engine.check(number, "approve", actor=AGENT)


def test_zh_customer_texts_read_the_vocabularys_labels(engine: Engine) -> None:
    _number, decision = refused_return(engine)
    zh = dict(zip(decision.codes, engine.messages(decision, lang="zh-CN"), strict=True))
    assert zh["condition_unacceptable"].endswith("：未拆封、未使用。")
    assert zh["category_excluded"] == "很抱歉，生鲜食品类商品不支持此项申请。"
    assert zh["evidence_missing"] == "请补充以下材料，以便我们继续处理：订单记录。"
    assert not any(raw in text for text in zh.values() for raw in ("order_record", "perishable_food", "unused"))
    # the desk's own texts and English keep the codes, which is what operators search for
    operator = engine.messages(decision, audience="operator", lang="zh-CN")
    assert any("perishable_food" in text for text in operator)
    assert any("perishable_food" in text for text in engine.messages(decision, lang="en"))
    # the customer's locale chooses the language, and the labels with it
    by_locale, _ = refused_return(engine, locale="zh-CN")
    said = engine.messages(engine.check(by_locale, "approve", actor=AGENT), number=by_locale)
    assert any("订单记录" in text for text in said)


def test_a_label_for_a_value_the_vocabulary_does_not_list_is_a_policy_error() -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("      photo: 照片\n", "      fotos: 照片\n", 1)
    with pytest.raises(PolicyError, match=r"unknown vocabulary value 'fotos'.*photo"):
        parse_policy(text)


def test_every_view_is_whole_at_80_columns_with_a_long_rule_id_and_long_values(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    monkeypatch.chdir(tmp_path)
    policy = tmp_path / "long.yaml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("id: no_reason_return_window,") == 1  # (a row of the return_window table)
    policy.write_text(text.replace("id: no_reason_return_window,", f"id: {LONG_RULE},"), encoding="utf-8")
    base = ["--db", str(tmp_path / "c.db"), "--policies", str(policy)]
    opened = invoke([*base, "open", "return", "--order", "SO-2026-11-ORDER-WITH-A-VERY-LONG-ID-000000000042",
                     "--delivered", days_ago(20), "--reason", "no_reason", "--condition", "unused", "--evidence",
                     "order_record", "--role", "customer", "--actor", "customer-with-a-long-id-000000000077",
                     "--json"])
    number = opened.json["number"]
    agent = ["--actor", "an-agent-with-a-rather-long-name-0000000001", "--role", "agent"]
    assert invoke([*base, "fire", number, "approve", *agent]).code == 1
    invoke([*base, "note", number, "the customer called twice about this parcel; " * 4, *agent])
    narrow = {"COLUMNS": "80"}
    for argv in (("list",), ("show", number), ("history", number), ("check", number, "approve"), ("next", number)):
        out = invoke([*base, *argv, *(agent[2:] if argv[0] in ("check", "next") else ())], env=narrow).stdout
        assert "…" not in out, (argv, out)
        assert max(len(line) for line in out.splitlines()) <= 80, (argv, out)
        assert number in out, (argv, out)
    check = invoke([*base, "check", number, "approve"], env=narrow).stdout
    assert LONG_RULE in check, check  # the rule id whole, on a line of its own if need be
    history = invoke([*base, "history", number], env=narrow).stdout
    assert "note  applied  in under_review" in history or "note  applied  in submitted" in history, history
    assert "submitted → submitted" not in history


def test_the_html_report_shows_rejections_by_reason(engine: Engine) -> None:
    from casework.report_html import render_html

    def refund(order: str) -> str:
        return engine.open("refund", {"order_id": order, "amount": "9.00", "paid": "9.00", "reason": "other"},
                           actor=CUSTOMER).number

    for reason in ("deadline_passed", "fraud", "deadline_passed"):
        engine.reject(refund("SO-1"), reason, actor=AGENT)
    engine.reject(engine.open("return", {"order_id": "SO-2", "reason": "defective", "delivered": "2026-11-20",
                                         "evidence": ["order_record", "photo"]}, actor=CUSTOMER).number,
                  "condition", actor=AGENT)
    page = render_html(engine.report())
    section = page.split("<h2>Rejections by reason</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Rejections by reason (4 in all)" in section
    assert ">deadline_passed</text>" in section and ">2</text>" in section and ">fraud</text>" in section
    report = engine.report(by="kind")
    by_kind = render_html(report).split("<h2>Rejections by reason</h2>", 1)[1]
    cells = "".join(f"<td>{2 if g.key == 'refund' else 0}</td>" for g in report.groups)
    assert f"<tr><td>deadline_passed</td>{cells}<td>2</td></tr>" in by_kind
    assert "No rejections." in render_html(engine.report(kind="complaint"))
