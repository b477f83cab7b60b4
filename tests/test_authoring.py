"""Policy authoring: check, JSON Schema, policy test suites, and machine diagrams."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from casework import InvalidInput, PolicyError
from casework.machines import KINDS, diagram
from casework.policies import load_policy, parse_policy
from casework.policies.authoring import (
    CheckReport,
    check_policy,
    load_policy_tests,
    policy_json_schema,
    run_policy_test_files,
    run_policy_tests,
    schema_text,
)
from casework.policies.files import default_policy_path
from casework.policies.loader import read_document
from casework.policies.nesting import row_name
from casework.policies.tables import TableGuard

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "policies.test.yaml"
NOW = "2026-11-22T10:00:00+08:00"


@cache
def default_text() -> str:
    return default_policy_path().read_text(encoding="utf-8")


def edited(old: str, new: str) -> tuple[str, int]:
    """The default policy with the first ``old`` replaced by ``new``, and the line of the change."""
    text = default_text()
    index = text.index(old)
    return text[:index] + new + text[index + len(old):], text.count("\n", 0, index) + 1


def line_of(text: str, needle: str) -> int:
    return text.count("\n", 0, text.index(needle)) + 1


def messages(report: CheckReport) -> list[str]:
    return [str(p) for p in report.problems]


# ---- policy check ------------------------------------------------------------------------------------
def test_default_policy_has_no_errors_and_only_the_open_mode_warning():
    report = check_policy(default_policy_path())
    assert report.errors == [], messages(report)
    # The shipped policy grants no roles per actor (it must run the demo): open mode, said as a warning.
    assert [w.message.split(":")[0] for w in report.warnings] == ["no operators section"], messages(report)
    assert report.ok() and not report.ok(strict=True)
    assert report.policy is not None and report.to_json()["ok"] is True


def test_check_policy_takes_a_path_a_path_string_or_text(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(default_text(), encoding="utf-8")
    assert check_policy(str(path)).ok()
    assert check_policy(default_text(), name="inline.yaml").ok()
    missing = check_policy(tmp_path / "nope.yaml")
    assert not missing.ok() and "not found" in missing.errors[0].message


def test_misspelt_key_in_a_copy_is_an_error_located_with_did_you_mean(tmp_path: Path):
    text, line = edited("within: 14d", "witin: 14d")  # (in a row of the return_window table)
    column = text.splitlines()[line - 1].index("witin: 14d") + 1
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    report = check_policy(path)
    assert not report.ok()
    problem = next(p for p in report.errors if "unknown key" in p.message)
    assert (problem.file, problem.line, problem.column) == (str(path), line, column)
    assert "'witin'" in problem.message and "did you mean 'within'" in problem.message
    assert str(problem).startswith(f"{path}:{line}:{column}: ")
    text, line = edited("            allowed: [unopened, unused]", "            alowed: [unopened, unused]")
    problem = next(p for p in check_policy(text, name="bad.yaml").errors if "unknown key" in p.message)
    assert (problem.line, problem.column) == (line, 13) and "did you mean 'allowed'" in problem.message


def test_summary_of_an_unusable_file_counts_problems_and_names_the_first():
    text, _ = edited("within: 7d", "within: 0d")
    report = check_policy(text, name="bad.yaml")
    assert report.summary() == f"bad.yaml: {len(report.errors)} error(s); first: {report.errors[0]}"
    shipped = check_policy(default_policy_path(), name="policies.yaml")  # usable, but not when strict
    assert shipped.summary(strict=True) == f"policies.yaml: 0 error(s), 1 warning(s); first: {shipped.warnings[0]}"


def test_unknown_reason_and_zero_window_are_errors_on_their_lines():
    text, line = edited("{reason: [defective, damaged_in_transit, wrong_item], id: fault_return_window",
                        "{reason: [defectiv, damaged_in_transit, wrong_item], id: fault_return_window")
    text = text.replace("within: 7d", "within: 0d")
    report = check_policy(text, name="bad.yaml")
    found = {(p.line, p.message.split(" (")[0]) for p in report.errors}
    assert (line, "unknown reason 'defectiv'") in found
    assert any(p.line == line_of(text, "within: 0d") and "longer than zero" in p.message for p in report.errors)


def test_two_windows_for_the_same_reason_are_a_contradiction_warning():
    extra = ("          - guard: window\n            id: generous_window\n            since: delivered\n"
             "            within: 30d\n")
    text, _ = edited("          - guard: fraud_flag\n            id: return_fraud_confirmed",
                     extra + "          - guard: fraud_flag\n            id: return_fraud_confirmed")
    report = check_policy(text, name="p.yaml")
    assert report.errors == []
    assert report.ok() and not report.ok(strict=True)
    contradictions = [p for p in report.warnings if "only the shorter window" in p.message]
    assert len(contradictions) == 2  # the no-reason window and the fault window each overlap it
    assert all(p.line == line_of(text, "id: generous_window") - 1 for p in contradictions)
    assert "no_reason_return_window" in contradictions[0].message and "7 days vs 30 days" in contradictions[0].message
    assert all(p.severity == "warning" and "warning: " in str(p) for p in report.warnings)


NESTED = """          - guard: all_of
            id: extra_checks
            guards:
              - {guard: fraud_flag, id: return_fraud_confirmed, flags: [fraud_confirmed]}
          - guard: table
            id: promo_window
            hit: first
            inputs: [reason]
            rule: {guard: window, since: delivered}
            rows:
              - {reason: no_reason, within: 30d, id: promo_no_reason}
              - {reason: "*", then: pass}
      reject: {roles: [agent]}
      ship:"""


def test_lint_looks_inside_combinators_and_table_rows():
    text, _ = edited("      reject: {roles: [agent]}\n      ship:", NESTED)
    report = check_policy(text, name="p.yaml")
    assert report.errors == []
    [dup] = [p for p in report.warnings if "guard id 'return_fraud_confirmed' is also used" in p.message]
    assert dup.line == line_of(text, "{guard: fraud_flag, id: return_fraud_confirmed")
    [window] = [p for p in report.warnings if "only the shorter window" in p.message]  # the row's reason only
    assert window.line == line_of(text, "id: promo_no_reason}")
    assert ("window guards no_reason_return_window" in window.message and "and promo_no_reason both apply to "
            "return.approve for reason no_reason (7 days vs 30 days)" in window.message), window.message


def test_dead_rules_are_warnings():
    text = default_text()
    text = text.replace("id: adjustment_approval_limit", "id: refund_approval_limit")  # duplicate id
    text = text.replace("      adjust:\n        roles: [agent]", "      adjust:\n        roles: [agent, customer]")
    text = text.replace("unless_role: supervisor", "unless_role: system")
    text = text.replace("dismiss: {roles: [agent]}", "dismiss: {roles: []}")
    report = check_policy(text, name="p.yaml")
    assert report.errors == [], messages(report)
    joined = "\n".join(messages(report))
    assert "guard id 'refund_approval_limit' is also used at p.yaml:" in joined
    assert "role customer may fire dispute.adjust but has no approval_limit" in joined
    assert "acts as system, so the exemption is unreachable" in joined
    assert "no role may fire dispute.dismiss" in joined  # PolicySet's own warnings are kept


# ---- JSON Schema -------------------------------------------------------------------------------------
def as_json(text: str) -> Any:
    data, _ = read_document(text, "p.yaml")
    return json.loads(json.dumps(data, default=str))  # YAML dates are strings to an editor


def schema_errors(text: str) -> list[str]:
    import jsonschema
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    return [e.message for e in validator.iter_errors(as_json(text))]


def test_schema_is_a_valid_2020_12_schema_that_forbids_unknown_keys():
    import jsonschema
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "casework policy"
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["WindowGuard"]["additionalProperties"] is False


def test_schema_validates_the_default_policy():
    assert schema_errors(default_text()) == []


@pytest.mark.parametrize(("old", "new"), [
    ("vocabulary:", "vocabluary:"),
    ("allowed: [unopened, unused]", "alowed: [unopened, unused]"),
    ("rule: {guard: window, since: delivered}", "rule: {guard: window, snice: delivered}"),  # a table's rule
    ("approval_limit: \"2000.00\"", "approval_limt: \"2000.00\""),
    ("within: 7d", "within: 7 days"),
    ("approval_limit: \"2000.00\"", "approval_limit: \"2000.001\""),
    ("approval_limit: unlimited", "approval_limit: without limit"),
    ("open: \"09:00\"", "open: \"9 am\""),
    ("first_response: 12 service hours", "first_response: soon"),
    ("  dispute:\n", "  disput:\n"),
    ("      adjust:\n", "      adjsut:\n"),
])
def test_schema_rejects_a_misspelt_key_or_a_malformed_value(old: str, new: str):
    text, _ = edited(old, new)
    assert schema_errors(text), f"{new!r} was accepted"
    with pytest.raises(PolicyError):  # and the loader agrees
        parse_policy(text, "p.yaml")


def test_schema_file_is_in_sync_with_the_policy_model():
    shipped = (ROOT / "policies.schema.json").read_text(encoding="utf-8")
    assert shipped == schema_text(), "regenerate: python -c 'from casework.policies.authoring import " \
                                     "schema_text; print(schema_text(), end=\"\")' > policies.schema.json"
    assert json.loads(shipped) == policy_json_schema()


# ---- policy tests ------------------------------------------------------------------------------------
def test_shipped_policy_tests_all_pass_against_the_default_policy():
    scenarios = load_policy_tests(TESTS)
    assert len(scenarios) >= 30
    results = run_policy_tests(load_policy(), scenarios)
    assert [r.summary for r in results if not r.passed] == []


def test_shipped_policy_tests_refuse_and_pass_every_default_guard():
    results = run_policy_tests(load_policy(), load_policy_tests(TESTS))
    ids = {row_name(g, n) if isinstance(g, TableGuard) else g.id  # each row of a decision table: a rule of its own
           for kp in load_policy().document.kinds.values() for ep in kp.events.values() for g in ep.guards
           for n in (range(len(g.rows)) if isinstance(g, TableGuard) else [0])}
    refused = {v.guard for r in results if r.decision for v in r.decision.reasons}
    passed = {v.guard for r in results if r.decision and r.decision.allowed for v in r.decision.verdicts}
    assert ids - refused == set(), "no scenario shows these guards refusing"
    assert ids - passed == set(), "no allowed scenario goes through these guards"
    codes = {c for r in results for c in r.actual_codes or []}
    assert {"not_available", "role_not_permitted", "window_expired", "category_excluded", "condition_unacceptable",
            "evidence_missing", "fraud_flagged", "amount_exceeds_paid", "approval_limit_exceeded"} <= codes


def test_test_files_run_together_and_report_what_failed(tmp_path: Path):
    text, _ = edited("within: 7d", "within: 5d")
    run = run_policy_test_files(parse_policy(text, "copy.yaml"), [TESTS, write_tests(tmp_path, SCENARIO)])
    assert len(run.results) == len(load_policy_tests(TESTS)) + 1 and run.results[-1].name == "refund"
    assert run.failed and all(not r.passed for r in run.failed)
    doc = run.to_json()
    assert (doc["passed"], doc["failed"]) == (len(run.results) - len(run.failed), len(run.failed))
    assert doc["policy"]["label"] == run.policy.label and len(doc["results"]) == len(run.results)
    with pytest.raises(PolicyError):  # a missing suite stops the run before any scenario is judged
        run_policy_test_files(load_policy(), [TESTS, tmp_path / "missing.yaml"])


def test_a_shorter_no_reason_window_fails_a_scenario_with_a_clear_explanation():
    text, _ = edited("within: 7d", "within: 5d")
    results = run_policy_tests(parse_policy(text, "copy.yaml"), load_policy_tests(TESTS))
    failed = [r for r in results if not r.passed]
    assert failed
    day7 = next(r for r in failed if r.name == "no-reason return on day 7 is allowed")
    assert day7.summary == "expected allowed, got refused [window_expired]"
    assert (day7.expected_allowed, day7.actual_allowed, day7.actual_codes) == (True, False, ["window_expired"])
    (why,) = day7.explanation
    assert "no_reason_return_window" in why and "7 days ago" in why and "5 days" in why
    assert why.endswith(f"(copy.yaml:{line_of(text, 'id: return_window') - 1})")  # its table's `- guard: table` line
    assert day7.source.startswith(f"{TESTS}:")


def write_tests(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(f"now: \"{NOW}\"\nscenarios:\n{body}", encoding="utf-8")
    return path


SCENARIO = """\
  - name: refund
    kind: refund
    facts: {order_id: A, amount: "59.00", paid: "59.00"}
    role: agent
    event: approve
    expect: {allowed: true}
"""


@pytest.mark.parametrize(("old", "new", "message"), [
    ("    event: approve", "    evnt: approve", "unknown scenario key 'evnt' (did you mean 'event'?)"),
    ("    kind: refund", "    kind: refnd", "unknown case kind 'refnd' (did you mean 'refund'?)"),
    ("    event: approve", "    event: aprove", "unknown refund event 'aprove' (did you mean 'approve'?)"),
    ("{allowed: true}", "{allowed: false, codes: [window_expird]}",
     "unknown reason code 'window_expird' (did you mean 'window_expired'?)"),
    ("amount: \"59.00\"", "amount: 59.5", "amount 59.5 is not a decimal string"),
    ("{allowed: true}", "{allowd: true}", "unknown expect key 'allowd' (did you mean 'allowed'?)"),
    ("{allowed: true}", "{allowed: true, codes: [fraud_flagged]}", "an allowed event has no reason codes"),
    ("    role: agent", "    actor: agent", "expected actor: {id, role} or role: ROLE"),
])
def test_malformed_policy_test_file_is_reported_at_file_line_col(tmp_path: Path, old: str, new: str, message: str):
    body = SCENARIO.replace(old, new)
    path = write_tests(tmp_path, body)
    with pytest.raises(PolicyError) as info:
        load_policy_tests(path)
    problem = info.value.problems[0]
    assert message in problem.message
    assert problem.file == str(path)
    assert problem.line == 2 + body[:body.index(new)].count("\n") + 1
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", str(problem))


def test_malformed_yaml_and_wrong_shapes_are_located(tmp_path: Path):
    for text, line in [("now: [\n", 2), ("- a\n- b\n", 1), ("now: 2026-11-22T10:00:00\nscenarios: []\n", 1),
                       (f"now: \"{NOW}\"\nscenarios:\n{SCENARIO}{SCENARIO}", 9)]:
        path = tmp_path / "t.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError) as info:
            load_policy_tests(path)
        assert info.value.line == line, str(info.value)


def test_relative_dates_count_from_now_in_the_policy_time_zone(tmp_path: Path):
    path = write_tests(tmp_path, """\
  - name: day 7
    kind: return
    facts: {order_id: A, reason: no_reason, delivered: "-7d", condition: unused, evidence: [order_record]}
    role: agent
    event: approve
    expect: {allowed: true}
  - name: delivered on the 15th
    kind: return
    facts: {order_id: A, reason: no_reason, delivered: "2026-11-15", condition: unused, evidence: [order_record]}
    role: agent
    event: approve
    expect: {allowed: true}
""")
    scenarios = load_policy_tests(path)
    assert [r.passed for r in run_policy_tests(load_policy(), scenarios)] == [True, True]
    # 16:30 UTC is 00:30 the next day in Shanghai: "-7d" is still day 7 there (not day 8 as a UTC date
    # would make it), while a fixed date is now a day further away.
    later = run_policy_tests(load_policy(), scenarios, now=datetime.fromisoformat("2026-11-22T16:30:00+00:00"))
    assert [r.passed for r in later] == [True, False]
    assert later[1].summary == "expected allowed, got refused [window_expired]"


def test_a_fact_outside_the_policy_vocabulary_fails_the_scenario_with_the_reason(tmp_path: Path):
    path = write_tests(tmp_path, SCENARIO.replace('paid: "59.00"', 'paid: "59.00", flags: [fraud_confirmd]'))
    (result,) = run_policy_tests(load_policy(), load_policy_tests(path))
    assert not result.passed and result.error is not None
    assert "unknown customer flag 'fraud_confirmd' (did you mean 'fraud_confirmed'?)" in result.summary


# ---- diagrams ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_mermaid_diagram_names_every_event_of_the_kind(kind: str):
    text = diagram.mermaid(kind)
    assert text.startswith("stateDiagram-v2\n")
    labels = re.findall(r"^    (\w+) --> (\w+) : (\w+)$", text, re.M)
    assert {e for _, _, e in labels} == set(KINDS[kind].events)
    assert f"[*] --> {KINDS[kind].initial}" in text
    assert (text.count(" --> ") - 1 - len(KINDS[kind].final)) == len(labels)


def test_mermaid_diagram_with_a_policy_shows_guards_roles_and_loops():
    text = diagram.mermaid("return", load_policy())
    assert ("    under_review --> approved : approve [return_window, no_reason_return_condition, "
            "no_reason_return_categories, return_evidence, return_fraud_confirmed] by agent") in text
    assert "    submitted --> submitted : provide_evidence by customer, agent" in text
    assert "    closed --> [*]" in text


def parse_dot(text: str) -> tuple[str, set[str], list[tuple[str, str, str]]]:
    """A strict little reader for the DOT subset we write: name, nodes, and (from, to, label) edges."""
    lines = text.strip().splitlines()
    head = re.fullmatch(r'digraph "(\w+)" \{', lines[0])
    assert head and lines[-1] == "}"
    nodes: set[str] = set()
    found: list[tuple[str, str, str]] = []
    q = r'"((?:[^"\\]|\\.)*)"'
    for line in lines[1:-1]:
        if m := re.fullmatch(rf"  {q} -> {q}(?: \[label={q}\])?;", line):
            found.append((m[1], m[2], m[3] or ""))
        elif m := re.fullmatch(rf"  {q} \[[^\]]*\];", line):
            nodes.add(m[1])
        else:
            assert re.fullmatch(r"  (graph|node|edge) \[[^\]]*\];", line), line
    assert {n for a, b, _ in found for n in (a, b)} <= nodes
    return head[1], nodes, found


@pytest.mark.parametrize("kind", list(KINDS))
def test_dot_diagram_is_a_digraph_of_the_real_machine(kind: str):
    name, nodes, found = parse_dot(diagram.dot(kind, load_policy()))
    ks = KINDS[kind]
    assert name == kind and set(ks.states) <= nodes
    moves = {(s, e, ks.target(s, e)) for s in ks.states for e in ks.available(s)}
    drawn = {(a, lab.split("\\n")[0], b) for a, b, lab in found if a != "__start"}
    assert drawn == moves


def test_render_formats_and_the_graphviz_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert diagram.render("refund", "mermaid") == diagram.mermaid("refund")
    assert diagram.render("refund", "dot") == diagram.dot("refund")
    with pytest.raises(InvalidInput, match="unknown diagram format 'jpg'"):
        diagram.render("refund", "jpg")
    if shutil.which("dot"):
        svg, png = diagram.render("refund", "svg", load_policy()), diagram.render("refund", "png")
        assert isinstance(svg, bytes) and svg.lstrip().startswith(b"<?xml")
        assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(InvalidInput) as info:
        diagram.render("refund", "svg")
    assert str(info.value) == "Graphviz 'dot' is not installed; use --format mermaid or dot, or install graphviz"
    paths = diagram.write_all(tmp_path, "mermaid")
    assert sorted(p.name for p in paths) == sorted(f"{k}.mmd" for k in KINDS)


def test_write_puts_one_drawing_in_a_file_and_write_all_refuses_a_bad_format_before_any(tmp_path: Path):
    path = diagram.write("return", tmp_path / "return.dot", "dot", load_policy())
    assert path.read_text(encoding="utf-8") == diagram.dot("return", load_policy())
    with pytest.raises(InvalidInput, match="unknown diagram format 'jpg'"):
        diagram.write_all(tmp_path / "drawings", "jpg")
    assert not (tmp_path / "drawings").exists()
