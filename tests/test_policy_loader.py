"""Policy files: every mistake is reported as FILE:LINE:COL: message, pointing at the right line.

Bad files are made by small textual edits of the shipped policies.yaml, so each test names the one
thing that is wrong and the line it is on.
"""

from __future__ import annotations

import re
import string
from decimal import Decimal
from functools import cache

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casework import PolicyError, PolicySet, parse_policy
from casework.policies.files import default_policy_path

NAME = "bad.yaml"


@cache
def default_text() -> str:
    return default_policy_path().read_text(encoding="utf-8")


def edit(old: str, new: str, nth: int = 1) -> tuple[str, int]:
    """Replace the ``nth`` occurrence of ``old`` in the default policy; return (text, its line)."""
    text = default_text()
    index = -1
    for _ in range(nth):
        index = text.index(old, index + 1)
    line = text.count("\n", 0, index) + 1
    return text[:index] + new + text[index + len(old):], line


def line_of(text: str, needle: str, nth: int = 1) -> int:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1


def policy_error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, NAME)
    err = info.value
    assert re.match(rf"^{re.escape(NAME)}:\d+:\d+: ", str(err)), str(err)
    assert err.file == NAME
    assert err.line >= 1 and err.column >= 1
    return err


def assert_located(err: PolicyError, line: int, *fragments: str) -> None:
    """The first problem is on ``line`` and its message contains every fragment."""
    text = str(err)
    assert text.startswith(f"{NAME}:{line}:"), text
    for fragment in fragments:
        assert fragment in text, (fragment, text)


# ---- the default file ------------------------------------------------------------------------------
def test_default_policy_loads_cleanly():
    policy = parse_policy(default_text(), "policies.yaml")
    assert isinstance(policy, PolicySet)
    assert policy.label == "default 2026-11"
    assert set(policy.document.kinds) == {"refund", "return", "dispute", "complaint"}
    assert policy.roles.limit("agent") == (True, Decimal("2000.00"))
    assert policy.roles.limit("supervisor") == (True, None)
    assert not [w for w in policy.warnings if w.severity == "error"]


def test_policy_hash_is_the_content_hash():
    a = parse_policy(default_text(), "a.yaml")
    b = parse_policy(default_text(), "b.yaml")
    c = parse_policy(default_text() + "\n# a comment\n", "a.yaml")
    assert a.hash == b.hash
    assert a.hash != c.hash
    assert len(a.hash) == 64


# ---- one mistake each -------------------------------------------------------------------------------
def test_unknown_key_is_reported_with_did_you_mean():
    text, line = edit("description: front-line customer service", "descripton: front-line customer service")
    assert_located(policy_error(text), line, "unknown key 'descripton'", "did you mean 'description'")


def test_unknown_key_in_a_guard_is_reported_with_did_you_mean():
    text, line = edit("positive: true\n          - guard: approval_limit",
                      "postive: true\n          - guard: approval_limit")
    assert_located(policy_error(text), line, "unknown key 'postive'", "did you mean 'positive'")


def test_unknown_top_level_key_is_reported_with_did_you_mean():
    text, line = edit("timezone: Asia/Shanghai", "timezon: Asia/Shanghai")
    err = policy_error(text)
    problems = [str(p) for p in err.problems]
    assert any(p.startswith(f"{NAME}:{line}:") and "unknown key 'timezon'" in p and "did you mean 'timezone'" in p
               for p in problems), problems


def test_misspelt_required_key_is_reported_on_its_line():
    text, line = edit("within: 7d", "withn: 7d")
    problems = [str(p) for p in policy_error(text).problems]
    assert any(p.startswith(f"{NAME}:{line}:") and "unknown key 'withn'" in p and "did you mean 'within'" in p
               for p in problems), problems


def test_wrong_type_is_reported():
    text, line = edit("at_least: 5", "at_least: five")
    assert_located(policy_error(text), line, "at_least", "five")


def test_wrong_type_list_expected_is_reported():
    text, line = edit("request_evidence: {roles: [agent]}", "request_evidence: {roles: 7}")
    assert_located(policy_error(text), line, "roles")


def test_unknown_category_in_a_guard_is_reported_with_did_you_mean():
    text, line = edit("categories: [custom_made, perishable_food]\n", "categories: [custom_made, perishable_fod]\n",
                      nth=2)
    assert "id: no_reason_return_categories" in text.splitlines()[line - 3]
    assert_located(policy_error(text), line, "unknown category 'perishable_fod'", "did you mean 'perishable_food'")


def test_unknown_evidence_type_in_a_guard_is_reported():
    text, line = edit("any_of: [photo, video]", "any_of: [photo, vidoe]")
    assert_located(policy_error(text), line, "unknown evidence type 'vidoe'", "did you mean 'video'")


def test_unknown_event_name_is_reported_with_did_you_mean():
    text, line = edit("review: {roles: [agent, system]}", "reveiw: {roles: [agent, system]}")
    assert_located(policy_error(text), line, "unknown refund event 'reveiw'", "did you mean 'review'")


def test_event_of_another_kind_is_reported():
    # `ship` is a return event, not a refund event.
    text, line = edit("      pay: {roles: [agent, system]}", "      ship: {roles: [agent, system]}")
    assert_located(policy_error(text), line, "unknown refund event 'ship'")


def test_unknown_guard_type_is_reported_with_did_you_mean():
    text, line = edit("guard: fraud_flag\n", "guard: fraud_flags\n")
    assert_located(policy_error(text), line, "unknown guard 'fraud_flags'", "did you mean 'fraud_flag'")


def test_negative_window_is_refused():
    text, line = edit("within: 7d", "within: -7d")
    assert_located(policy_error(text), line, "-7d")


def test_zero_window_is_refused():
    text, line = edit("within: 14d", "within: 0d")
    assert_located(policy_error(text), line, "longer than zero")


def test_window_without_unit_is_refused():
    text, line = edit("within: 7d", "within: 7")
    assert_located(policy_error(text), line, "within")


def test_zero_first_response_is_refused():
    text, line = edit("first_response: 12 service hours", "first_response: 0h")
    assert_located(policy_error(text), line, "first_response")


def test_money_written_as_a_float_is_refused():
    text, line = edit('approval_limit: "2000.00"', "approval_limit: 2000.00")
    assert_located(policy_error(text), line, "approval_limit", '"2000.00"')


def test_money_with_three_decimals_is_refused():
    text, line = edit('approval_limit: "2000.00"', 'approval_limit: "2000.005"')
    assert_located(policy_error(text), line, "approval_limit")


def test_money_written_as_a_whole_number_is_accepted():
    text, _ = edit('approval_limit: "2000.00"', "approval_limit: 2000")
    assert parse_policy(text, NAME).roles.limit("agent") == (True, Decimal("2000"))


def test_malformed_yaml_is_reported_on_its_line():
    text, line = edit("request_evidence: {roles: [agent]}", "request_evidence: {roles: [agent}")
    assert_located(policy_error(text), line, "malformed YAML")


@pytest.mark.parametrize("levels", [33, 3000])
def test_yaml_nested_too_deep_is_refused_at_its_spot(levels: int):
    # 3000 levels once overflowed the interpreter's stack ("unexpected RecursionError", no location)
    text, line = edit("request_evidence: {roles: [agent]}",
                      "request_evidence: {roles: [agent], x: " + "[" * levels + "]" * levels + "}")
    err = policy_error(text)
    assert_located(err, line, "nested more than 32 levels deep")
    source = text.splitlines()[line - 1]
    assert source[err.column - 1] == "[" and err.column > source.index("[[")  # at the bracket that opens level 33


def test_bad_indentation_is_reported_as_malformed_yaml():
    text, line = edit("  evidence: [order_record,", "   evidence: [order_record,")
    err = policy_error(text)
    assert "malformed YAML" in str(err)
    assert abs(err.line - line) <= 1, (str(err), line)


def test_tab_indentation_is_reported_as_malformed_yaml():
    text, line = edit("  conditions: [", "\tconditions: [")
    err = policy_error(text)
    assert "malformed YAML" in str(err)
    assert err.line == line


def test_duplicate_key_is_reported_on_the_second_occurrence():
    block = "      request_evidence: {roles: [agent]}\n"
    text, line = edit(block, block + block)
    assert_located(policy_error(text), line + 1, "duplicate key 'request_evidence'")


def test_duplicate_top_level_key_is_reported():
    text, line = edit('label: "default 2026-11"\n', 'label: "default 2026-11"\nlabel: "again"\n')
    assert_located(policy_error(text), line + 1, "duplicate key 'label'")


def test_unknown_kind_is_reported_with_did_you_mean():
    text, line = edit("  complaint:\n", "  complaints:\n")
    assert_located(policy_error(text), line, "unknown case kind 'complaints'", "did you mean 'complaint'")


def test_unknown_role_is_reported_with_did_you_mean():
    text, line = edit("reject: {roles: [agent]}", "reject: {roles: [agnet]}")
    assert_located(policy_error(text), line, "unknown role 'agnet'", "did you mean 'agent'")


def test_unknown_inherited_role_is_reported():
    text, line = edit("inherits: [agent]", "inherits: [agents]")
    assert_located(policy_error(text), line, "unknown role 'agents'")


def test_unknown_role_in_when_is_reported():
    text, line = edit("when: {role: [customer]}", "when: {role: [custmer]}")
    assert_located(policy_error(text), line, "unknown role 'custmer'", "did you mean 'customer'")


def test_unknown_reason_in_when_is_reported():
    text, line = edit("when: {reason: [no_reason]}", "when: {reason: [noreason]}")
    assert_located(policy_error(text), line, "unknown reason 'noreason'", "did you mean 'no_reason'")


def test_unknown_flag_is_reported():
    text, line = edit("flags: [fraud_confirmed]\n", "flags: [fraud_confimed]\n")
    assert_located(policy_error(text), line, "unknown flag 'fraud_confimed'", "did you mean 'fraud_confirmed'")


def test_unknown_time_zone_is_reported():
    text, line = edit("timezone: Asia/Shanghai", "timezone: Asia/Shanghia")
    assert_located(policy_error(text), line, "Asia/Shanghia")


def test_missing_required_section_is_reported():
    text = re.sub(r"(?ms)^service:\n(  .*\n)+", "", default_text())
    assert "service:" not in text
    err = policy_error(text)
    assert any("service" in p.message for p in err.problems), [str(p) for p in err.problems]


def test_every_problem_is_listed():
    text, _ = edit("reject: {roles: [agent]}", "reject: {roles: [agnet]}")
    text = text.replace("any_of: [photo, video]", "any_of: [photo, vidoe]")
    err = policy_error(text)
    assert len(err.problems) >= 2
    assert "(and " in str(err)
    lines = {p.line for p in err.problems}
    assert line_of(text, "agnet") in lines and line_of(text, "vidoe") in lines


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_policy_is_reported(text: str):
    policy_error(text)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_policy_that_is_not_a_mapping_is_reported(text: str):
    assert policy_error(text).line == 1


# ---- inputs YAML itself chokes on: still a PolicyError, still located --------------------------------
@pytest.mark.parametrize("char", ["\x07", "\x1f", "\x00"])
def test_control_character_is_reported_as_policy_error(char: str):
    text, line = edit('label: "default 2026-11"', f'label: "default{char}2026-11"')
    err = policy_error(text)
    assert err.line == line, str(err)


def test_impossible_calendar_date_is_reported_as_policy_error():
    text, line = edit("holidays: [2027-01-01,", "holidays: [2027-13-01,")
    err = policy_error(text)
    assert err.line == line, str(err)


@pytest.mark.parametrize("value", ["&loop [*loop]", "&loop {a: *loop}"])
def test_recursive_alias_is_reported_as_policy_error(value: str):
    text, line = edit('label: "default 2026-11"', f"label: {value}")
    err = policy_error(text)
    assert err.line == line, str(err)


@pytest.mark.parametrize(("old", "new"), [("within: 7d", "within: 99999999999999d"),
                                          ("first_response: 12 service hours", "first_response: 9999999999999999w")])
def test_absurdly_long_duration_is_reported_as_policy_error(old: str, new: str):
    text, line = edit(old, new)
    err = policy_error(text)
    assert err.line == line, str(err)


@pytest.mark.parametrize("value", ["!!python/object:os.system x", "!!nosuchtag x"])
def test_unknown_yaml_tag_is_reported_on_its_line(value: str):
    text, line = edit('label: "default 2026-11"', f"label: {value}")
    err = policy_error(text)
    assert err.line == line, str(err)


# ---- YAML 1.2 booleans ------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n"])
def test_yaml_1_1_booleans_stay_strings(word: str):
    text, _ = edit('label: "default 2026-11"', f"label: {word}")
    text = text.replace("channels: [app,", f"channels: [{word}, app,")
    policy = parse_policy(text, NAME)
    assert policy.label == word
    assert policy.document.vocabulary.channels[0] == word


# ---- fuzzing ---------------------------------------------------------------------------------------
def _lines() -> list[str]:
    return default_text().splitlines(keepends=True)


@st.composite
def mutated_policy(draw: st.DrawFn) -> str:
    lines = _lines()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "duplicate", "replace_char", "insert_char", "swap"]))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif lines[i]:
            line = lines[i]
            k = draw(st.integers(0, len(line) - 1))
            ch = draw(st.sampled_from(list(string.ascii_letters + string.digits + " :-[]{},'\"#&*!|>%@`\t\n.\x07")))
            lines[i] = line[:k] + ch + line[k + (1 if op == "replace_char" else 0):]
    return "".join(lines)


def _check_load_or_policy_error(text: str) -> None:
    try:
        parse_policy(text, NAME)
    except PolicyError as err:
        assert err.problems
        for problem in err.problems:
            assert problem.line >= 1 and problem.column >= 1, str(problem)
            assert problem.file == NAME
        assert str(err).startswith(f"{NAME}:{err.line}:{err.column}: ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_policy())
def test_mutated_default_policy_loads_or_raises_policy_error(text: str):
    _check_load_or_policy_error(text)


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["agent", "7d", "-7d", "0d", "24h", "2000.00", "unlimited", "window", "evidence", "refund",
                     "return", "approve", "yes", "on", "09:00", "Asia/Shanghai", "", "photo", "amount"]),
    st.text(max_size=8),
)
_keys = st.sampled_from(["label", "timezone", "vocabulary", "roles", "service", "kinds", "events", "guards",
                         "guard", "within", "roles", "approval_limit", "inherits", "first_response", "hours",
                         "conditions", "evidence", "channels", "refund", "return", "dispute", "complaint",
                         "approve", "when", "reason", "x"]) | st.text(max_size=6)
_yamlish = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
                        max_leaves=25)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _yamlish, max_size=7))
def test_random_yaml_documents_load_or_raise_policy_error(doc: dict):
    _check_load_or_policy_error(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:- \n[]{},'\"#&*!|>%@`?\t7d.\x1f")), max_size=80))
def test_random_yaml_ish_text_loads_or_raises_policy_error(text: str):
    _check_load_or_policy_error(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["label", "timezone", "vocabulary", "roles", "service", "kinds"]), _yamlish)
def test_default_policy_with_one_section_replaced_loads_or_raises_policy_error(section: str, value: object):
    data = yaml.safe_load(default_text())
    data[section] = value
    _check_load_or_policy_error(yaml.safe_dump(data, allow_unicode=True))


def test_four_mistakes_of_every_kind_are_reported_in_one_run(default_policy: PolicySet) -> None:
    text = (default_policy.source
            .replace("            at_least: 5\n", "            at_leest: 5\n")               # a misspelt key
            .replace('approval_limit: "2000.00"', 'approval_limit: 2000.50')           # money as a float
            .replace("      ship: {roles: [customer, agent]}", "      ship: {roles: [customer, agnet]}")
            .replace("            any_of: [photo, video]", "            any_of: [photo, vidoe]"))
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, "four.yaml")
    found = [p.message for p in refused.value.problems]
    assert len(found) == 5, found  # the misspelt key is also a missing one
    assert "write money and amounts as quoted decimal strings" in found[0]
    assert any("unknown key 'at_leest'" in m and "did you mean 'at_least'" in m for m in found)
    assert "unknown evidence type 'vidoe' (did you mean 'video'?)" in found
    assert "unknown role 'agnet' (did you mean 'agent'?)" in found
    lines = text.splitlines()
    for problem in refused.value.problems:  # each at the line it is written on
        assert problem.file == "four.yaml" and lines[problem.line - 1].strip()


def test_a_malformed_section_the_rest_depends_on_reports_its_own_problems_only(default_policy: PolicySet) -> None:
    text = default_policy.source.replace("  conditions: [unopened, unused, used, damaged]\n", "  conditions: 5\n")
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, "vocab.yaml")
    assert [p.message for p in refused.value.problems] == ["vocabulary.conditions: Input should be a valid list "
                                                            "(got 5)"]
