"""Messages for people: every reason code's operator and customer text in en and zh-CN, from the policy;
rendering that never fails; validation of the messages section; the CLI's --lang and --audience."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import DEFAULT_POLICY, REPO, days_ago, invoke

from casework import PolicyError, PolicySet, Verdict
from casework.messages import lang_for, messages_for, placeholders, render, template
from casework.policies import parse_policy
from casework.policies.authoring import known_codes, load_policy_tests, policy_json_schema, run_policy_tests
from casework.policies.loader import read_document

WINDOW = Verdict("no_reason_return_window", False, "window_expired", "delivered 9 days ago; the window for a "
                 "no-reason return is 7 days", {"since": "delivered", "elapsed_days": 9, "window_days": 7,
                                                "window": "7 days"})
MESSAGES = "\nmessages:\n  not_available:"


def with_messages(policy: PolicySet, section: str) -> PolicySet:
    """The policy with its messages section replaced by ``section`` (YAML text, without ``messages:``)."""
    head = policy.source[:policy.source.index(MESSAGES)]
    return parse_policy(head + "\nmessages:\n" + section, "custom.yaml")


def test_the_default_policy_has_every_message_in_english_and_chinese(default_policy: PolicySet) -> None:
    messages = default_policy.document.messages
    assert sorted(messages) == known_codes()
    for code, texts in messages.items():
        for audience in ("operator", "customer"):
            assert set(getattr(texts, audience)) == {"en", "zh-CN"}, (code, audience)


def test_window_expired_for_the_customer_in_each_language(default_policy: PolicySet) -> None:
    zh = "很抱歉，您的申请已超过7天的申请期限（签收后已过9天）。"
    assert render(default_policy, WINDOW, "customer", "zh-CN") == zh
    assert render(default_policy, WINDOW, "customer", "en") == (
        "We're sorry, this request must be made within 7 days of delivery; it has been 9 days.")
    assert render(default_policy, WINDOW, "operator", "en") == (
        "Outside the window: delivered 9 days ago; the window is 7 days.")
    assert render(default_policy, WINDOW, "operator", "zh-CN") == "已超出期限：签收后已过9天，期限为7天。"


def test_language_fallbacks(default_policy: PolicySet) -> None:
    zh = render(default_policy, WINDOW, "customer", "zh-CN")
    for lang in ("zh", "zh-cn", "zh_CN", "zh-TW"):
        assert render(default_policy, WINDOW, "customer", lang) == zh, lang
    en = render(default_policy, WINDOW, "customer", "en")
    assert render(default_policy, WINDOW, "customer", "fr") == en
    unknown_code = Verdict("g", False, "something_new", "the engine's own words")
    assert render(default_policy, unknown_code, "customer", "zh-CN") == "the engine's own words"
    only_zh = with_messages(default_policy, "  window_expired:\n    customer:\n      zh-CN: \"超过{window}\"\n")
    assert render(only_zh, WINDOW, "customer", "fr") == WINDOW.message  # no en to fall back to
    assert render(only_zh, WINDOW, "operator", "zh-CN") == WINDOW.message
    assert template(only_zh, "window_expired", "customer", "zh-CN") == "超过{window}"
    with pytest.raises(ValueError, match="audience"):
        template(default_policy, "window_expired", "boss")


def test_rendering_never_raises(default_policy: PolicySet) -> None:
    odd = with_messages(default_policy, "  window_expired:\n    customer:\n"
                                        "      en: \"{nothing} left as written; {window} filled\"\n"
                                        "      fr: \"{window:d} cannot take a number format\"\n"
                                        "      de: \"{window.days} has no attribute\"\n")
    assert render(odd, WINDOW, "customer", "en") == "{nothing} left as written; 7 days filled"
    assert render(odd, WINDOW, "customer", "fr") == "{window:d} cannot take a number format"
    assert render(odd, WINDOW, "customer", "de") == "{window.days} has no attribute"
    bare = Verdict("g", False, "window_expired", "m", {})
    assert render(default_policy, bare, "customer", "zh-CN") == (
        "很抱歉，您的申请已超过{window}的申请期限（{since_label}后已过{elapsed_days}天）。")


def test_placeholders_are_readable(default_policy: PolicySet) -> None:
    evidence = Verdict("e", False, "evidence_missing", "m", {"missing": ["order_record", "photo or video"],
                                                              "present": []})
    assert placeholders(evidence, "en")["missing"] == "order_record, photo or video"
    assert placeholders(evidence, "zh-CN")["missing"] == "order_record、photo or video"
    assert placeholders(evidence)["present"] == "-"
    instant = Verdict("w", False, "window_expired", "m", {"since": "purchased", "elapsed_seconds": 3 * 86400 + 5,
                                                          "window_seconds": 48 * 3600, "window": "2 days"})
    values = placeholders(instant, "zh-CN")
    assert (values["elapsed_days"], values["window_days"], values["window"], values["since_label"]) == (
        "3", "2", "2天", "购买")
    missing = Verdict("w", False, "field_missing", "the delivered date is not known", {"field": "delivered"})
    assert render(default_policy, missing, "customer", "en") == "Please add the missing information: delivered."
    assert lang_for({"locale": "zh-CN"}) == "zh-CN" and lang_for({"locale": "zh-CN"}, "en") == "en"
    assert lang_for(None) == "en"


def test_every_shipped_template_fills_completely_for_real_refusals(default_policy: PolicySet) -> None:
    """Run the shipped policy tests; every refusal renders in both languages with no placeholder left."""
    results = run_policy_tests(default_policy, load_policy_tests(REPO / "policies.test.yaml"))
    refusals = [r.decision for r in results if r.decision is not None and not r.decision.allowed]
    codes = {v.code for d in refusals for v in d.reasons}
    assert len(codes) >= 8, codes
    for decision in refusals:
        for audience in ("customer", "operator"):
            for lang in ("en", "zh-CN"):
                for text in messages_for(default_policy, decision, audience, lang):
                    assert "{" not in text and "}" not in text, (decision.event, audience, lang, text)


@pytest.mark.parametrize(("section", "message"), [
    ("  window_expird:\n    customer: {en: x}\n",
     "unknown reason code 'window_expird' (did you mean 'window_expired'?)"),
    ("  window_expired:\n    customer: {en: \"{window\"}\n", "window_expired customer en: malformed template"),
    ("  window_expired:\n    customer: {en: \"{} days\"}\n", "use named placeholders"),
    ("  window_expired:\n    customer: {EN_us: x}\n", "EN_us"),
    ("  window_expired:\n    client: {en: x}\n", "client"),
])
def test_a_bad_messages_section_is_a_located_policy_error(default_policy: PolicySet, section: str,
                                                          message: str) -> None:
    with pytest.raises(PolicyError) as err:
        with_messages(default_policy, section)
    assert message in str(err.value)
    assert str(err.value).startswith("custom.yaml:")


def test_a_message_without_english_is_a_warning(default_policy: PolicySet) -> None:
    policy = with_messages(default_policy, "  window_expired:\n    customer: {zh-CN: x}\n")
    assert any("no 'en' customer message" in w.message for w in policy.warnings)


def test_the_json_schema_knows_the_message_codes() -> None:
    import jsonschema
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    data, _ = read_document(DEFAULT_POLICY.read_text(encoding="utf-8"), "policies.yaml")
    doc = json.loads(json.dumps(data, default=str))  # YAML dates are strings to an editor
    assert not list(validator.iter_errors(doc))
    doc["messages"]["window_expird"] = doc["messages"].pop("window_expired")
    assert list(validator.iter_errors(doc))


# ---- the CLI ---------------------------------------------------------------------------------------------
def _cli(tmp: Path, *argv: str) -> tuple[int, str, str]:
    run = invoke(["--db", str(tmp / "c.db"), *argv])
    return run.code, run.stdout, run.stderr


def _open(tmp: Path, days: int, *extra: str) -> str:
    code, out, _ = _cli(tmp, "open", "return", "--order", "SO-1", "--delivered", days_ago(days), "--reason",
                        "no_reason", "--condition", "unused", "--evidence", "order_record", "--role", "customer",
                        "--actor", "cust-1", *extra, "--json")
    assert code == 0, out
    return str(json.loads(out)["number"])


def test_cli_messages_follow_the_case_locale_or_lang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    zh_case = _open(tmp_path, 9, "--fact", "locale=zh-CN")
    en_case = _open(tmp_path, 9)

    code, out, err = _cli(tmp_path, "fire", zh_case, "approve", "--role", "agent", "--json")
    assert code == 1 and err.startswith("casework: refused")
    [reason] = json.loads(out)["reasons"]
    assert reason["message"].startswith("delivered 9 days ago")  # unchanged: part of the contract
    assert reason["customer_message"] == "很抱歉，您的申请已超过7天的申请期限（签收后已过9天）。"
    code, out, _ = _cli(tmp_path, "fire", zh_case, "approve", "--role", "agent", "--lang", "en", "--json")
    assert json.loads(out)["reasons"][0]["customer_message"].startswith("We're sorry")

    code, out, _ = _cli(tmp_path, "fire", en_case, "approve", "--role", "agent")
    assert code == 1 and "window_expired: delivered 9 days ago" in out and "customer: We're sorry" in out

    code, out, _ = _cli(tmp_path, "check", zh_case, "approve", "--role", "agent", "--audience", "customer")
    assert code == 1 and "window_expired (customer): 很抱歉" in out
    code, out, _ = _cli(tmp_path, "check", en_case, "approve", "--role", "agent", "--lang", "zh-CN")
    assert code == 1 and "window_expired (operator): 已超出期限：签收后已过9天，期限为7天。" in out
    code, out, _ = _cli(tmp_path, "check", en_case, "approve", "--role", "agent", "--json")
    assert json.loads(out)["reasons"][0]["customer_message"].startswith("We're sorry")
    code, out, err = _cli(tmp_path, "check", en_case, "approve", "--audience", "boss")
    assert code == 2 and "audience" in err

    code, out, _ = _cli(tmp_path, "next", zh_case, "--role", "customer", "--actor", "cust-1", "--json")
    by_event = {d["event"]: d for d in json.loads(out)}
    assert by_event["approve"]["reasons"][0]["customer_message"] == "此操作需由客服人员处理。"
    assert by_event["cancel"]["reasons"] == []
    code, out, _ = _cli(tmp_path, "next", zh_case, "--role", "customer", "--actor", "cust-1")
    assert code == 0 and "customer: 此操作需由客服人员处理。" in out
