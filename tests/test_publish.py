"""The published policy version: one version in force for new cases, stored in the database, whatever the
directory a process runs from; the stored versions listed, shown, compared, adopted by number; check citing
the pinned version's own text."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cli_helpers import DEFAULT_POLICY, REPO, assert_error_contract, invoke, policy_with_window, run_process

from casework import (
    Actor,
    CaseNotFound,
    Engine,
    FixedClock,
    InvalidInput,
    PolicyError,
    PolicySet,
    PolicyTestsFailed,
    UnknownPolicyVersion,
)
from casework.policies import load_policy

SUPERVISOR = Actor("lin", "supervisor")
CUSTOMER = Actor("cust-1", "customer")
TESTS = REPO / "policies.test.yaml"
EngineFactory = Callable[..., Engine]


def refund(engine: Engine, order: str = "SO-1") -> str:
    return engine.open("refund", {"order_id": order, "amount": "59.00", "paid": "59.00"}, actor=CUSTOMER).number


def stricter(tmp: Path, name: str = "new.yaml") -> Path:
    return policy_with_window(tmp, 5, name, label="stricter 2026-12")


# ---- the library -----------------------------------------------------------------------------------------
def test_nothing_published_keeps_the_local_policy_in_force(engine: Engine, default_policy: PolicySet) -> None:
    number = refund(engine)
    assert engine.get(number).policy == default_policy.ref
    assert engine.policy_notice is None
    [version] = engine.policy_versions()
    assert (version.ref, version.in_force, version.published, version.cases) == (default_policy.ref, False, None, 1)


def test_published_version_is_in_force_for_every_engine_on_the_database_with_a_notice_for_a_differing_local_one(
        make_engine: EngineFactory, tmp_path: Path, default_policy: PolicySet) -> None:
    publisher = make_engine()
    done = publisher.publish(stricter(tmp_path), actor=SUPERVISOR)
    assert done.changed and done.publication.seq == 1 and done.policy.label == "stricter 2026-12"
    assert (done.publication.actor, done.publication.role) == ("lin", "supervisor")
    other = make_engine(policies=default_policy)  # its local policy is the shipped one
    assert other.get(refund(other)).policy == done.policy
    notice = other.policy_notice or ""
    assert default_policy.ref.short in notice and done.policy.short in notice and "published" in notice
    same = make_engine(policies=load_policy(tmp_path / "new.yaml"))
    refund(same, "SO-2")
    assert same.policy_notice is None


def test_a_version_published_meanwhile_is_used_by_a_running_engine(make_engine: EngineFactory,
                                                                    tmp_path: Path) -> None:
    running = make_engine()
    first = running.get(refund(running)).policy
    done = make_engine().publish(stricter(tmp_path), actor=SUPERVISOR)
    assert first != done.policy
    assert running.get(refund(running, "SO-2")).policy == done.policy


def test_override_puts_the_local_file_in_force_and_each_opening_records_it(
        db_url: str, clock: FixedClock, tmp_path: Path, default_policy: PolicySet) -> None:
    with Engine(db_url, policies=default_policy, clock=clock) as publisher:
        published = publisher.publish(stricter(tmp_path), actor=SUPERVISOR).policy
    with Engine(db_url, policies=default_policy, clock=clock, override_published=True) as engine:
        number = refund(engine)
        assert engine.get(number).policy == default_policy.ref
        assert "overrides the published policy stricter 2026-12" in (engine.policy_notice or "")
        opening = engine.history(number)[0]
        override = [v for v in opening.verdicts if v["code"] == "policy_override"]
        assert [(v["passed"], v["details"]["published"], v["details"]["override"]) for v in override] == [
            (True, published.hash, default_policy.hash)]
        assert engine.verify().ok


def test_publishing_the_version_in_force_again_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    new = stricter(tmp_path)
    first = engine.publish(new, actor=SUPERVISOR)
    again = engine.publish(new, actor=SUPERVISOR)
    assert (again.changed, again.publication) == (False, first.publication)
    assert len(engine.store.publications()) == 1


def test_publish_refuses_an_invalid_file_with_its_problems_and_publishes_nothing(engine: Engine,
                                                                                  tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("within: 7d", "withn: 7d"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        engine.publish(bad, actor=SUPERVISOR)
    assert info.value.file == str(bad) and "within" in str(info.value)
    assert engine.store.published() is None


def test_publish_refuses_a_version_whose_tests_fail(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(PolicyTestsFailed) as info:
        engine.publish(stricter(tmp_path), actor=SUPERVISOR, tests=[TESTS])
    assert "no-reason return on day 7 is allowed" in " ".join(info.value.failures)
    assert engine.store.published() is None
    passed = engine.publish(DEFAULT_POLICY, actor=SUPERVISOR, tests=[TESTS])
    assert passed.changed and passed.scenarios > 10


def test_publish_refuses_a_customer(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="a customer may not publish a policy version"):
        engine.publish(stricter(tmp_path), actor=CUSTOMER)
    assert engine.store.published() is None


def test_versions_list_loaded_and_published_versions_with_their_cases(engine: Engine, tmp_path: Path,
                                                                       default_policy: PolicySet) -> None:
    refund(engine)
    engine.publish(stricter(tmp_path), actor=SUPERVISOR)
    refund(engine, "SO-2")
    refund(engine, "SO-3")
    engine.publish(DEFAULT_POLICY, actor=Actor("mei", "supervisor"))  # a rollback
    found = engine.policy_versions()
    assert [(v.seq, v.ref.label, v.in_force, v.cases, v.open_cases) for v in found] == [
        (1, "default 2026-11", True, 1, 1), (2, "stricter 2026-12", False, 2, 2)]
    assert found[0].published is not None and found[0].published.actor == "mei"
    assert found[1].published is not None and found[1].published.actor == "lin"
    assert [p.seq for p in engine.store.publications()] == [1, 2]


def test_a_version_is_named_by_hash_prefix_or_label_and_a_bad_name_lists_the_candidates(
        engine: Engine, tmp_path: Path, default_policy: PolicySet) -> None:
    refund(engine)
    new = engine.publish(stricter(tmp_path), actor=SUPERVISOR).policy
    assert engine.find_version(new.hash[:6]).hash == new.hash
    assert engine.find_version("default 2026-11").hash == default_policy.hash
    row, text = engine.version_text("stricter 2026-12")
    assert text == (tmp_path / "new.yaml").read_text(encoding="utf-8") and row.name == str(tmp_path / "new.yaml")
    with pytest.raises(UnknownPolicyVersion) as info:
        engine.find_version("nope")
    assert not info.value.ambiguous and {c.split()[0] for c in info.value.candidates} == {new.short,
                                                                                          default_policy.ref.short}
    common = next(i for i in range(64) if new.hash[i] != default_policy.hash[i])
    _, _, diff = engine.version_diff("default 2026-11", new.hash[:max(8, common + 1)])  # a prefix naming one
    changed = [line.strip() for line in diff.splitlines() if line[:1] in "+-" and "within:" in line]
    row = "              - {reason: no_reason, id: no_reason_return_window, within: %s, label: a no-reason return}"
    assert changed == ["-" + row % "7d", "+" + row % "5d"]
    assert engine.version_diff(new.short, new.short)[2] == ""


def test_ambiguous_version_names_each_candidate(engine: Engine, tmp_path: Path) -> None:
    engine.publish(stricter(tmp_path), actor=SUPERVISOR)
    twin = tmp_path / "twin.yaml"
    twin.write_text((tmp_path / "new.yaml").read_text(encoding="utf-8") + "\n# the same rules\n", encoding="utf-8")
    engine.publish(twin, actor=SUPERVISOR)
    with pytest.raises(UnknownPolicyVersion) as info:
        engine.find_version("stricter 2026-12")
    assert info.value.ambiguous and len(info.value.candidates) == 2


def test_adopt_cases_re_pins_the_given_ones_and_refuses_those_the_version_cannot_take(
        engine: Engine, tmp_path: Path, default_policy: PolicySet) -> None:
    a, b, closed = refund(engine), refund(engine, "SO-2"), refund(engine, "SO-3")
    engine.fire(closed, "cancel", actor=CUSTOMER)
    engine.fire(closed, "close", actor=Actor("alice", "agent"))
    complaint = engine.open("complaint", {"order_id": "SO-4"}, actor=CUSTOMER).number
    no_complaints = tmp_path / "nc.yaml"
    text = default_policy.source  # the complaint kind is the last one, up to the messages
    no_complaints.write_text(text[:text.index("\n  complaint:\n")] + text[text.index("\nmessages:\n"):],
                             encoding="utf-8")
    new = load_policy(no_complaints)
    report = engine.adopt_cases(new, [a, closed, complaint], actor=SUPERVISOR)
    assert report.adopted == (a,)
    assert dict(report.skipped)[complaint].endswith("has no rules for complaint cases")
    assert closed in dict(report.skipped)
    assert engine.get(a).policy == new.ref and engine.get(b).policy == default_policy.ref
    last = engine.history(a)[-1]
    assert (last.event, last.actor, last.data["policy_to"]) == ("adopt_policy", "lin", new.hash)
    with pytest.raises(CaseNotFound):
        engine.adopt_cases(new, [b, "RF-20991231-000001"], actor=SUPERVISOR)
    assert engine.get(b).policy == default_policy.ref
    assert engine.verify().ok


def test_check_cites_the_pinned_versions_own_text(engine: Engine, tmp_path: Path,
                                                   default_policy: PolicySet) -> None:
    number = refund(engine)
    engine.publish(stricter(tmp_path), actor=SUPERVISOR)  # the case stays on the version it was opened under
    decision = engine.check(number, "approve", actor=Actor("alice", "agent"))
    cited = engine.cite(decision)
    lines = default_policy.source.splitlines()
    assert cited and all(c is not None for c in cited)
    for verdict, c in zip(decision.verdicts, cited, strict=True):
        assert c is not None and c.policy == default_policy.ref
        assert c.excerpt == lines[c.line - 1].strip() and verdict.source == f"{c.file}:{c.line}"


# ---- tamper evidence -------------------------------------------------------------------------------------
def test_verify_finds_an_altered_publication(sqlite_engine: Engine, tmp_path: Path) -> None:
    sqlite_engine.publish(stricter(tmp_path), actor=SUPERVISOR)
    sqlite_engine.publish(DEFAULT_POLICY, actor=SUPERVISOR)
    assert sqlite_engine.verify().ok
    with sqlite3.connect(tmp_path / "t.db") as raw:
        raw.execute("UPDATE policy_publications SET actor = 'mallory' WHERE seq = 1")
    problems = [p.problem for p in sqlite_engine.verify().problems]
    assert problems == ["publication chain broken at publication 1 (of "
                        f"{sqlite_engine.store.publications()[0].hash[:12]} by mallory): a publication was changed, "
                        "removed or reordered"]


def test_publications_with_an_audit_key_are_authenticated(tmp_path: Path, clock: FixedClock,
                                                          default_policy: PolicySet) -> None:
    key = "k" * 32
    with Engine(f"sqlite:///{tmp_path}/k.db", policies=default_policy, clock=clock, audit_key=key) as engine:
        done = engine.publish(stricter(tmp_path), actor=SUPERVISOR)
        assert done.publication.mac is not None and engine.verify().ok
    with Engine(f"sqlite:///{tmp_path}/k.db", policies=default_policy, clock=clock, audit_key="x" * 32) as other:
        assert any("not authenticated by the audit key" in p.problem for p in other.verify().problems)


def test_publications_are_append_only_on_postgresql(pg_test_url: str, clock: FixedClock, tmp_path: Path,
                                                    default_policy: PolicySet) -> None:
    from conftest import _reset_pg

    _reset_pg(pg_test_url)
    with Engine(pg_test_url, policies=default_policy, clock=clock) as engine:
        engine.publish(stricter(tmp_path), actor=SUPERVISOR)
    db = sa.create_engine(pg_test_url, poolclass=sa.pool.NullPool)
    try:
        for statement in ("UPDATE policy_publications SET actor = 'mallory'", "DELETE FROM policy_publications",
                          "TRUNCATE policy_publications"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.begin() as conn:
                conn.execute(sa.text(statement))
    finally:
        db.dispose()


# ---- the CLI ---------------------------------------------------------------------------------------------
def cw(db: str, *argv: str, env: dict[str, Any] | None = None) -> Any:
    return invoke(["--db", db, *argv], env=env)


def test_cli_publish_from_one_directory_then_open_from_another_gets_the_published_version(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    authoring, desk, stale = (tmp_path / name for name in ("authoring", "desk", "stale"))
    for folder in (authoring, desk, stale):
        folder.mkdir()
    stricter(authoring)
    (stale / "policies.yaml").write_text(DEFAULT_POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(authoring)
    run = cw(db_url, "policy", "publish", "new.yaml", "--tests", str(TESTS), "--actor", "lin", "--role",
             "supervisor", "--json")
    assert_error_contract(run, 1, True)  # its window is 5 days: the shipped tests of 7 days fail
    assert "is not published" in run.json["error"]["message"]
    run = cw(db_url, "policy", "publish", "new.yaml", "--actor", "lin", "--role", "supervisor", "--json")
    assert run.code == 0, run
    published = run.json["policy"]
    assert (run.json["changed"], run.json["actor"], run.json["seq"]) == (True, "lin", 1)
    args = ("open", "refund", "--order", "SO-1", "--amount", "9.00", "--paid", "9.00", "--customer", "c1", "--json")

    monkeypatch.chdir(desk)  # no policy file here: the packaged default would be in force, were nothing published
    run = cw(db_url, *args)
    assert run.code == 0 and run.stderr == "", run
    assert run.json["policy"] == published
    run = run_process(["--db", db_url, *args], cwd=stale)  # another process, another directory, a stale file
    assert run.code == 0 and run.json["policy"] == published, run
    assert "differs from the published policy" in run.stderr

    monkeypatch.chdir(stale)  # an old ./policies.yaml: the published version, and a one-line warning
    run = cw(db_url, *args)
    assert run.code == 0 and run.json["policy"] == published, run
    [warning] = run.stderr.splitlines()
    assert published["hash"][:12] in warning and "differs from the published policy stricter 2026-12" in warning
    run = cw(db_url, *args, env={"CASEWORK_POLICIES": str(DEFAULT_POLICY)})  # the environment does not override
    assert run.json["policy"] == published and "differs" in run.stderr

    run = cw(db_url, "--policies", "policies.yaml", *args)  # the flag does, and the opening records it
    assert run.code == 0 and run.json["policy"]["label"] == "default 2026-11", run
    assert "overrides the published policy" in run.stderr
    history = cw(db_url, "history", run.json["number"], "--json").json
    assert "policy_override" in [v["code"] for v in history[0]["verdicts"]]

    versions = cw(db_url, "policy", "versions", "--json").json
    assert [(v["label"], v["in_force"], v["cases"], v["published_by"]) for v in versions] == [
        ("stricter 2026-12", True, 4, "lin"), ("default 2026-11", False, 1, None)]
    table = cw(db_url, "policy", "versions")
    assert table.code == 0 and published["hash"][:12] in table.stdout and "*1" in table.stdout
    assert cw(db_url, "verify", "--json").json["ok"] is True


def test_cli_show_diff_and_bad_version_names(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    new = stricter(tmp_path)
    assert cw(db_url, "policy", "publish", str(new), "--actor", "lin", "--role", "supervisor").code == 0
    assert cw(db_url, "policy", "publish", str(DEFAULT_POLICY), "--actor", "lin", "--role", "supervisor").code == 0
    shown = cw(db_url, "policy", "show", "stricter 2026-12")
    assert shown.code == 0 and shown.stdout == new.read_text(encoding="utf-8")
    doc = cw(db_url, "policy", "show", "stricter 2026-12", "--json").json
    assert doc["source"] == shown.stdout and doc["label"] == "stricter 2026-12"
    diff = cw(db_url, "policy", "diff", "default 2026-11", "stricter 2026-12")
    assert diff.code == 0 and diff.stdout.startswith("--- ")
    assert "\n+              - {reason: no_reason, id: no_reason_return_window, within: 5d," in diff.stdout
    doc = cw(db_url, "policy", "diff", "default 2026-11", "stricter 2026-12", "--json").json
    assert doc["diff"] == diff.stdout and doc["to"]["label"] == "stricter 2026-12"
    for argv in (("policy", "show", "nope"), ("policy", "diff", "nope", "stricter 2026-12"),
                 ("policy", "adopt", "nope", "RF-20261122-000001")):
        for as_json in (False, True):
            run = cw(db_url, *argv, *(["--json"] if as_json else []))
            assert_error_contract(run, 2, as_json)
            assert "stricter 2026-12" in run.stderr and "default 2026-11" in run.stderr  # the candidates


def test_cli_adopt_version_numbers(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    numbers = [cw(db_url, "open", "refund", "--order", f"SO-{i}", "--amount", "9.00", "--paid", "9.00",
                  "--customer", "c1", "--json").json["number"] for i in range(3)]
    cw(db_url, "fire", numbers[2], "cancel", "--role", "customer", "--actor", "c1")
    cw(db_url, "fire", numbers[2], "close", "--role", "agent")
    assert cw(db_url, "policy", "publish", str(stricter(tmp_path)), "--actor", "lin", "--role", "supervisor").code == 0
    run = cw(db_url, "policy", "adopt", "stricter 2026-12", numbers[0], "--actor", "lin", "--role", "supervisor",
             "--json")
    assert run.code == 0 and run.json["numbers"] == [numbers[0]], run
    assert cw(db_url, "show", numbers[0], "--json").json["policy"]["label"] == "stricter 2026-12"
    assert cw(db_url, "show", numbers[1], "--json").json["policy"]["label"] == "default 2026-11"
    run = cw(db_url, "policy", "adopt", "stricter", numbers[1], numbers[2], "--actor", "lin", "--role", "supervisor",
             "--json")
    assert run.code == 2  # "stricter" is neither a label nor a hash prefix
    run = cw(db_url, "policy", "adopt", "stricter 2026-12", numbers[1], "--kind", "refund", "--json")
    assert_error_contract(run, 2, True)
    run = cw(db_url, "policy", "adopt", "stricter 2026-12", numbers[1], numbers[2], "--actor", "lin", "--role",
             "supervisor", "--json")
    assert run.code == 1 and run.json["numbers"] == [numbers[1]], run
    assert run.json["skipped"] == [{"number": numbers[2], "reason": "closed"}]
    assert cw(db_url, "verify", "--json").json["ok"] is True


def test_cli_check_cites_the_pinned_version_not_the_local_file(db_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "policies.yaml"
    local.write_text(DEFAULT_POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    number = cw(db_url, "open", "refund", "--order", "SO-1", "--amount", "9.00", "--paid", "9.00", "--customer", "c1",
                "--json").json["number"]
    pinned = DEFAULT_POLICY.read_text(encoding="utf-8").splitlines()
    # A rollout: the local file gets ten lines on top (every rule moves down), and is published.
    local.write_text("# new\n" * 10 + local.read_text(encoding="utf-8").replace("label: \"default 2026-11\"",
                                                                               "label: \"next\""), encoding="utf-8")
    assert cw(db_url, "policy", "publish", "policies.yaml", "--actor", "lin", "--role", "supervisor").code == 0
    doc = cw(db_url, "check", number, "approve", "--role", "agent", "--json").json
    cited = [v["cited"] for v in doc["verdicts"]]
    assert cited and all(c["policy"]["label"] == "default 2026-11" for c in cited)
    assert all(c["excerpt"] == pinned[c["line"] - 1].strip() for c in cited)
    table = cw(db_url, "check", number, "approve", "--role", "agent")
    assert table.code == 0 and f"@{doc['policy']['hash'][:12]}" in table.stdout


def test_cli_policy_explain_without_policies_judges_by_the_published_version(db_url: str, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "policies.yaml"
    local.write_text(DEFAULT_POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    args = ("policy", "explain", "--kind", "return", "--event", "approve", "--state", "under_review", "--role",
            "agent", "--now", "2026-11-22T10:00:00+08:00", "--fact", "order_id=SO-1", "--fact", "reason=no_reason",
            "--fact", "delivered=2026-11-10", "--fact", "condition=unused", "--evidence", "order_record")
    before = cw(db_url, *args, "--json")  # nothing published: the local file, as before
    assert before.code == 1 and before.json["version"]["published"] is False, before
    assert before.json["version"]["label"] == "default 2026-11" and "cited" not in before.json["verdicts"][0]
    window = "within: 7d, label: a no-reason return"
    assert DEFAULT_POLICY.read_text(encoding="utf-8").count(window) == 1
    published = DEFAULT_POLICY.read_text(encoding="utf-8").replace(window, window.replace("7d", "30d"))
    (tmp_path / "next.yaml").write_text("# next\n" * 10 + published.replace('label: "default 2026-11"',
                                                                           'label: "next"'), encoding="utf-8")
    assert cw(db_url, "policy", "publish", "next.yaml", "--actor", "lin", "--role", "supervisor").code == 0
    run = cw(db_url, *args, "--json")  # the 12-day-old delivery is in the published 30-day window
    assert run.code == 0, run
    assert (run.json["version"]["label"], run.json["version"]["published"]) == ("next", True)
    assert "differs from the published policy next" in run.stderr  # (the local file is not what judged)
    stored = ("# next\n" * 10 + published).splitlines()
    [window] = [v for v in run.json["verdicts"] if v["guard"] == "no_reason_return_window"]
    assert window["cited"]["policy"]["label"] == "next" and window["cited"]["excerpt"] == "- guard: table"
    assert stored[window["cited"]["line"] - 1].strip() == "- guard: table" and window["cited"]["line"] > 10
    assert stored[window["cited"]["line"]].strip() == "id: return_window"  # the table the rule is a row of
    human = cw(db_url, *args)
    assert human.code == 0 and "explained against the published version: next" in human.stdout, human
    assert f"@{run.json['version']['hash'][:12]}" in human.stdout
    flag = cw(db_url, "--policies", "policies.yaml", *args, "--json")  # --policies: that file, as before
    assert flag.code == 1 and flag.json["version"]["published"] is False, flag
    nowhere = invoke(list(args))  # no database here: the local file, and no database is created
    assert nowhere.code == 1 and not (tmp_path / "casework.db").exists(), nowhere
