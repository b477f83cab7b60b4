"""What a policy test may expect of a decision beyond allowed and codes: the rules that refuse, and what
people are told (each reason's rendered message, per audience and language).

A scenario's ``expect:`` may hold ``rules: [RULE_ID, ...]`` (the ids of the rules that refuse, any order) and
``messages: {customer|operator: {LANGUAGE: text or [texts]}}``: each text must be contained in the message
rendered for one of the refusal's reasons, in that language, exactly as ``casework.messages`` renders it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from casework.messages import AUDIENCES

Loc = tuple[str | int, ...]


def expected_rules_and_messages(expect: dict[str, Any], loc: Loc, name: str, bad: Any) -> dict[str, Any]:
    """``rules:`` (the ids of the rules that refuse, any order) and ``messages:`` ({customer|operator: {LANG:
    text or [texts]}}) in their normal form; a malformed one reported."""
    out = dict(expect)
    rules = expect.get("rules")
    if rules is not None:
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            bad((*loc, "expect", "rules"), f"{name}: rules: expected a list of rule ids (the guards' id:)")
            rules = []
        out["rules"] = sorted(set(rules))
    said = expect.get("messages")
    if said is not None:
        shape = f"{name}: messages: expected {{customer|operator: {{LANGUAGE: text or [texts]}}}}, e.g. " \
                "{customer: {en: ..., zh-CN: ...}}"
        normal: dict[str, dict[str, list[str]]] = {}
        for audience, by_lang in (said.items() if isinstance(said, dict) else [(None, None)]):
            if audience not in AUDIENCES or not isinstance(by_lang, dict) or not by_lang:
                if audience is None:
                    bad((*loc, "expect", "messages"), shape)
                else:
                    bad((*loc, "expect", "messages", audience), shape, key=audience not in AUDIENCES)
                continue
            for lang, texts in by_lang.items():
                texts = [texts] if isinstance(texts, str) else texts
                if not isinstance(lang, str) or not isinstance(texts, list) or not texts \
                        or not all(isinstance(t, str) and t for t in texts):
                    bad((*loc, "expect", "messages", audience, lang), shape)
                    continue
                normal.setdefault(audience, {})[lang] = texts
        out["messages"] = normal
    return out


def met(key: str, expected: Any, actual: Mapping[str, Any]) -> bool:
    """Whether one expectation holds: each expected message is contained in a message rendered (for its
    audience, in its language) for one of the reasons; anything else is equal to what was found."""
    if key != "messages":
        return bool(expected == actual.get(key))
    said = actual.get("messages") or {}
    return all(any(text in message for message in said.get(audience, {}).get(lang, []))
               for audience, by_lang in expected.items() for lang, texts in by_lang.items() for text in texts)


def unmet(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Each failed expectation on rules or messages: which, expected and actual."""
    out = []
    if "rules" in expected and expected["rules"] != actual.get("rules"):
        out.append(f"rules: expected [{', '.join(expected['rules'])}], got [{', '.join(actual.get('rules') or [])}]")
    said = actual.get("messages") or {}
    for audience, by_lang in (expected.get("messages") or {}).items():
        for lang, texts in by_lang.items():
            got = said.get(audience, {}).get(lang, [])
            shown = " | ".join(repr(m) for m in got) or "none"
            out.extend(f"{audience} message ({lang}): expected {text!r}, got {shown}"
                       for text in texts if not any(text in message for message in got))
    return out
