"""`verify` names exactly what an auditor must look at: the first broken entry of a trail and nothing after
it, the one column of a case row that was edited, a trail deleted whole, and counts what it checked.

Each test edits the database behind the engine's back (``tests/tampering.py``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tampering import query, run

from casework import Actor, Engine, FixedClock

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")


def found(engine: Engine) -> list[tuple[str, int | None, str]]:
    """What ``verify`` finds: (case number or part, entry seq, problem) each."""
    return [(p.number, p.seq, p.problem) for p in engine.verify().problems]


def problems(engine: Engine) -> list[str]:
    """What ``verify`` finds, each as ``NUMBER#SEQ: problem``."""
    return [f"{number}#{seq}: {problem}" for number, seq, problem in found(engine)]


@pytest.fixture
def trails(engine: Engine, clock: FixedClock) -> tuple[Engine, str, str]:
    """A refund with a trail of four entries (open, review, approve, pay) and a second refund just opened."""
    first = engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER).number
    for event in ("review", "approve", "pay"):
        clock.advance(timedelta(minutes=5))
        engine.fire(first, event, actor=AGENT if event != "pay" else Actor.system())
    second = engine.open("refund", {"order_id": "SO-2", "amount": "5.00", "paid": "5.00"}, actor=CUSTOMER).number
    report = engine.verify()
    assert report.ok and (report.cases_checked, report.entries_checked) == (2, 5)
    return engine, first, second


def test_an_entry_altered_in_the_middle_of_a_trail_is_the_one_problem_reported(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE audit_entries SET data = '{\"note\":\"edited\"}' WHERE number = :n AND seq = 2", n=first)
    # Entries 3 and 4 follow a broken one: they cannot be trusted, and are not reported on their own.
    assert problems(engine) == [f"{first}#2: entry hash mismatch: the entry was altered"]


def test_an_entry_removed_from_the_middle_of_a_trail_is_named_by_the_gap_it_leaves(trails, db_url: str):
    engine, first, _ = trails
    (place,) = query(db_url, "SELECT gseq FROM audit_entries WHERE number = :n AND seq = 3", n=first)[0]
    run(db_url, "DELETE FROM audit_entries WHERE number = :n AND seq = 3", n=first)
    # The global chain is checked first (by place), then each trail.
    assert problems(engine) == [
        f"{first}#4: global chain: places {place} to {place} are missing: entries were removed",
        f"{first}#4: sequence gap: expected 3, found 4",
    ]


def test_an_entry_whose_prev_hash_was_rewritten_is_named(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE audit_entries SET prev_hash = :h WHERE number = :n AND seq = 3", h="1" * 64, n=first)
    assert problems(engine) == [f"{first}#3: prev_hash does not match the previous entry"]


def test_editing_only_the_rows_last_hash_is_the_one_problem(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE cases SET last_hash = :h WHERE number = :n", h="0" * 64, n=first)
    assert problems(engine) == [f"{first}#None: trail ends at seq 4, the case row says 4"]
    assert engine.verify().broken_cases == [first]


def test_editing_only_the_rows_last_seq_is_the_one_problem(trails, db_url: str):
    engine, first, _ = trails
    run(db_url, "UPDATE cases SET last_seq = 3 WHERE number = :n", n=first)
    assert problems(engine) == [f"{first}#None: trail ends at seq 4, the case row says 3"]


def test_a_whole_trail_deleted_with_its_case_row_kept(trails, db_url: str):
    engine, first, second = trails
    run(db_url, "DELETE FROM audit_entries WHERE number = :n", n=first)
    assert problems(engine) == [
        f"{second}#1: global chain: places 1 to 4 are missing: entries were removed",
        f"{first}#None: case has no audit trail",
    ]
    report = engine.verify()
    assert (report.cases_checked, report.entries_checked) == (2, 1)


def test_a_whole_case_deleted_row_and_trail_is_caught_by_the_places_it_leaves(trails, db_url: str):
    engine, first, second = trails
    run(db_url, "DELETE FROM audit_entries WHERE number = :n", n=first)
    run(db_url, "DELETE FROM cases WHERE number = :n", n=first)
    assert problems(engine) == [f"{second}#1: global chain: places 1 to 4 are missing: entries were removed"]
    report = engine.verify()
    assert (report.cases_checked, report.entries_checked) == (1, 1)


# ---- each column of a row, named with both values -------------------------------------------------------------------
def test_an_edited_column_is_named_with_the_stored_and_the_replayed_value(trails, db_url: str):
    engine, _, second = trails
    run(db_url, "UPDATE cases SET is_open = (1 = 0), first_response_due = NULL, version = 7 WHERE number = :n",
        n=second)
    found = problems(engine)
    assert found[:2] == [f"{second}#None: stored version 7 differs from the replayed 1",
                         f"{second}#None: stored is_open (closed) True differs from the replayed False"]
    assert found[2].startswith(f"{second}#None: stored first_response_due none differs from the replayed 2026-11-")
    assert len(found) == 3


# ---- entries of no case: refused openings ----------------------------------------------------------------------
def refused_opening(engine: Engine) -> Any:
    from casework import TransitionDenied

    with pytest.raises(TransitionDenied):
        engine.open("refund", {"order_id": "SO-9", "amount": "1.00", "paid": "1.00", "customer": "cust-1"},
                    actor=Actor("cust-2", "customer"))
    (entry,) = engine.refused_openings()
    return entry


@pytest.mark.parametrize(("change", "problem"), [
    ({"number": "ZZ-20261122"}, "its series 'ZZ-20261122' names no kind"),
    ({"seq": 2}, "an entry of no case that is not a refused opening (taken from a case's trail, or forged)"),
    ({"event": "review"}, "an entry of no case that is not a refused opening (taken from a case's trail, or forged)"),
    ({"outcome": "applied"},
     "an entry of no case that is not a refused opening (taken from a case's trail, or forged)"),
    ({"to_state": "submitted"},
     "an entry of no case that is not a refused opening (taken from a case's trail, or forged)"),
    ({"prev_hash": "1" * 64},
     "an entry of no case that is not a refused opening (taken from a case's trail, or forged)"),
    ({"data": {"amount": "0.01"}, "rehash": False}, "entry hash mismatch: the entry was altered"),
    ({"policy_missing": True}, "policy version {short} it was decided by is missing or altered"),
    ({"verdicts": [{"guard": "owner", "passed": True}]}, "recorded as refused, but no verdict refused it"),
])
def test_a_refused_opening_altered_and_rehashed_is_named_by_what_is_wrong(engine: Engine, change: dict[str, Any],
                                                                          problem: str):
    from dataclasses import replace

    from casework.audit import hash_of
    from casework.replay import check_refused_opening

    entry = refused_opening(engine)
    policy = engine.policy
    assert check_refused_opening(entry, lambda h: policy if h == policy.hash else None) == []
    change = dict(change)
    rehash = change.pop("rehash", True)
    missing = change.pop("policy_missing", False)
    altered = replace(entry, **change)
    if rehash:  # what an attacker with casework's code does: the entry's own hash made to match
        altered = replace(altered, hash=hash_of(altered))
    found = check_refused_opening(altered, lambda h: None if missing or h != policy.hash else policy)
    assert [(p.number, p.seq, p.problem) for p in found] == [
        (altered.number, altered.seq, "refused opening: " + problem.format(short=entry.policy.short))]


# ---- a digest kept outside, and the export an auditor takes away ------------------------------------------------
def test_a_digest_whose_link_is_not_the_chains_names_its_place(trails):
    from casework import Digest

    engine, _, _ = trails
    head = engine.verify().digest
    assert head is not None and engine.verify(since=head).ok
    forged = Digest(head.seq - 1, "f" * 64)
    found = engine.verify(since=forged).problems
    assert [(p.number, p.seq, p.problem) for p in found] == [
        ("(global chain)", head.seq - 1, f"the entry at place {head.seq - 1} is not the one the digest named: "
                                         "the chain was rewritten at or before it")]


def test_the_export_lists_every_entry_with_its_case_kind_and_the_refused_openings_last(trails):
    engine, first, second = trails
    refused_opening(engine)
    rows = list(engine.export())
    assert [(r["number"], r["kind"], r["seq"]) for r in rows] == [
        *[(first, "refund", s) for s in (1, 2, 3, 4)], (second, "refund", 1), ("RF-20261122", "refund", 1)]
    assert rows[-1]["outcome"] == "refused" and rows[0]["data"]["order_id"] == "SO-1"


def test_the_redacted_export_masks_personal_facts_only(engine: Engine):
    number = engine.open("refund", {"order_id": "SO-7", "amount": "1.00", "paid": "1.00", "phone": "13800000000"},
                         actor=CUSTOMER).number
    plain = next(r for r in engine.export() if r["number"] == number)
    assert plain["data"]["phone"] == "13800000000"
    redacted = next(r for r in engine.export(redact=True) if r["number"] == number)
    assert redacted["data"]["phone"] == "[redacted]" and redacted["data"]["order_id"] == "SO-7"
    assert redacted["kind"] == "refund"


def test_an_unreadable_case_row_is_exported_as_unreadable(trails, db_url: str):
    engine, _, second = trails
    run(db_url, "UPDATE cases SET facts = 'not json' WHERE number = :n", n=second)
    rows = [r for r in engine.export() if r["number"] == second]
    unreadable = [r for r in rows if "unreadable" in r]
    assert len(unreadable) == 1 and unreadable[0]["kind"] is None and unreadable[0]["unreadable"]


# ---- a trail whose refusals or openings were rewritten -----------------------------------------------------------
def rewritten(engine: Engine, number: str, seq: int, **change: Any) -> list[Any]:
    """The trail of ``number`` with entry ``seq`` changed and its hash made to match (as an attacker would)."""
    from dataclasses import replace

    from casework.audit import hash_of

    trail = engine.history(number, reveal=True)
    edited = replace(trail[seq - 1], **change)
    trail[seq - 1] = replace(edited, hash=hash_of(edited))
    return trail


def replayed(engine: Engine, number: str, trail: list[Any]) -> list[tuple[int | None, str]]:
    from casework.replay import replay

    policy = engine.policy
    return [(p.seq, p.problem) for p in replay(number, trail, lambda h: policy if h == policy.hash else None).problems]


def test_a_refusal_recorded_from_another_state_or_moving_the_case_is_named(engine: Engine):
    from casework import TransitionDenied

    number = engine.open("refund", {"order_id": "SO-1", "amount": "1.00", "paid": "1.00"}, actor=CUSTOMER).number
    with pytest.raises(TransitionDenied):
        engine.fire(number, "approve", actor=CUSTOMER)
    assert replayed(engine, number, engine.history(number, reveal=True)) == []
    assert replayed(engine, number, rewritten(engine, number, 2, from_state="approved")) == [
        (2, "refused approve recorded from approved, but the case was in submitted")]
    assert replayed(engine, number, rewritten(engine, number, 2, to_state="approved")) == [
        (2, "refused approve recorded from submitted, but the case was in submitted")]
    assert replayed(engine, number, rewritten(engine, number, 1, outcome="refused")) == [
        (1, "first entry is not the opening")]


def test_an_adoption_that_does_not_move_the_case_from_its_pinned_version_is_named(engine: Engine, make_engine,
                                                                                default_policy):
    from casework import parse_policy

    newer = parse_policy(default_policy.source.replace("default 2026-11", "newer"), "newer.yaml")
    make_engine(policies=newer).policy  # noqa: B018  (stored as a version)
    number = engine.open("refund", {"order_id": "SO-1", "amount": "1.00", "paid": "1.00"}, actor=CUSTOMER).number
    engine.adopt(number, newer, actor=Actor("wang", "supervisor"))
    trail = engine.history(number, reveal=True)
    assert trail[-1].event == "adopt_policy" and engine.verify().ok
    policies = {default_policy.hash: default_policy, newer.hash: newer}

    def problems_of(changed: list[Any]) -> list[tuple[int | None, str]]:
        from casework.replay import replay

        return [(p.seq, p.problem) for p in replay(number, changed, policies.get).problems]

    assert problems_of(trail) == []
    moved = "adopt_policy does not move the case from the version it was pinned to"
    for data in ({**trail[-1].data, "policy_from": newer.hash}, {**trail[-1].data, "policy_to": default_policy.hash}):
        assert problems_of(rewritten(engine, number, len(trail), data=data)) == [(len(trail), moved)]


def test_the_library_export_reveals_by_default_and_the_redacted_one_masks_refused_openings_too(engine: Engine):
    from casework import TransitionDenied
    from casework.verification import export

    with pytest.raises(TransitionDenied):
        engine.open("refund", {"order_id": "SO-9", "amount": "1.00", "paid": "1.00", "customer": "cust-1",
                               "phone": "13800000000"}, actor=Actor("cust-2", "customer"))
    assert [r["data"]["phone"] for r in export(engine.store)] == ["13800000000"]
    (masked,) = list(engine.export(redact=True))
    assert masked["data"]["phone"] == "[redacted]" and masked["kind"] == "refund" and masked["outcome"] == "refused"


def test_a_trail_whose_number_names_no_kind_is_named():
    from casework.replay import replay

    found = replay("ZZ-20261122-000001", [], lambda h: None).problems
    assert [(p.number, p.seq, p.problem) for p in found] == [
        ("ZZ-20261122-000001", None, "case number 'ZZ-20261122-000001' names no kind")]


def test_edited_facts_and_an_edited_time_are_named_with_the_stored_time(trails, db_url: str):
    import re

    engine, _, second = trails
    (facts,) = query(db_url, "SELECT facts FROM cases WHERE number = :n", n=second)[0]
    run(db_url, "UPDATE cases SET facts = :f WHERE number = :n", n=second, f=facts.replace('"5.00"', '"500.00"', 1))
    assert problems(engine) == [f"{second}#None: stored facts differ from replayed facts"]
    run(db_url, "UPDATE cases SET facts = :f WHERE number = :n", n=second, f=facts)
    assert engine.verify().ok
    run(db_url, "UPDATE cases SET updated_at = :t WHERE number = :n", n=second, t="2030-01-01 00:00:00")
    (found,) = problems(engine)
    assert re.fullmatch(rf"{second}#None: stored updated_at 2030-01-01T00:00:00\+00:00 differs from the "
                        r"replayed 2026-11-\d\dT\d\d:\d\d:\d\d\+00:00", found), found


def test_an_edited_opening_column_or_timer_note_is_named(trails, db_url: str):
    engine, _, second = trails
    run(db_url, "UPDATE cases SET order_id = 'SO-9' WHERE number = :n", n=second)
    assert problems(engine) == [f"{second}#None: stored order_id 'SO-9' differs from the opening's 'SO-2'"]
    run(db_url, "UPDATE cases SET order_id = 'SO-2', timer_refused = 'approved@x' WHERE number = :n", n=second)
    assert problems(engine) == [f"{second}#None: stored timer note differs from the replayed one"]


def test_an_entry_with_an_unknown_outcome_or_an_altered_refusal_is_named(engine: Engine):
    from casework import TransitionDenied

    number = engine.open("refund", {"order_id": "SO-1", "amount": "1.00", "paid": "1.00"}, actor=CUSTOMER).number
    with pytest.raises(TransitionDenied):
        engine.fire(number, "approve", actor=CUSTOMER)
    assert replayed(engine, number, rewritten(engine, number, 2, outcome="postponed")) == [
        (2, "unknown outcome 'postponed'")]
    from dataclasses import replace

    trail = engine.history(number, reveal=True)
    trail[1] = replace(trail[1], from_state="approved")  # not rehashed: the hash tells first
    assert replayed(engine, number, trail) == [(2, "entry hash mismatch: the entry was altered")]


@pytest.mark.parametrize("change", [{"event": "review"}, {"to_state": "approved"}, {"from_state": "submitted"}])
def test_a_first_entry_rewritten_so_it_is_no_opening_is_named(engine: Engine, change: dict[str, Any]):
    number = engine.open("refund", {"order_id": "SO-1", "amount": "1.00", "paid": "1.00"}, actor=CUSTOMER).number
    assert replayed(engine, number, rewritten(engine, number, 1, **change)) == [(1, "first entry is not the opening")]


def test_a_note_rewritten_to_move_the_case_is_named(engine: Engine):
    number = engine.open("refund", {"order_id": "SO-1", "amount": "1.00", "paid": "1.00"}, actor=CUSTOMER).number
    engine.note(number, "called the customer", actor=AGENT)
    assert replayed(engine, number, engine.history(number, reveal=True)) == []
    for change in ({"to_state": "approved"}, {"from_state": "approved"}):
        assert replayed(engine, number, rewritten(engine, number, 2, **change)) == [
            (2, "replay: note must not change the state")]


def test_a_broken_trail_derives_no_case(engine: Engine):
    from casework.replay import replay

    number = engine.open("refund", {"order_id": "SO-1", "amount": "1.00", "paid": "1.00"}, actor=CUSTOMER).number
    policy = engine.policy
    whole = replay(number, engine.history(number, reveal=True), lambda h: policy)
    assert whole.case is not None and whole.case.state == "submitted" and whole.last_seq == 1
    broken = replay(number, rewritten(engine, number, 1, to_state="approved"), lambda h: policy)
    assert broken.case is None and broken.last_seq == 0  # a migration deriving columns from it takes nothing


def test_a_malformed_digest_is_refused_naming_it(trails):
    from casework import InvalidInput

    engine, _, _ = trails
    with pytest.raises(InvalidInput) as info:
        engine.verify(since="6:nothex")
    assert (info.value.field, info.value.value) == ("since", "6:nothex")


def test_an_unreadable_row_is_named_and_the_cases_after_it_are_still_checked(trails, db_url: str):
    engine, first, second = trails
    run(db_url, "UPDATE cases SET facts = 'not json' WHERE number = :n", n=first)
    run(db_url, "UPDATE cases SET version = 9 WHERE number = :n", n=second)
    found = engine.verify().problems
    assert [(p.number, p.seq) for p in found] == [(first, None), (second, None)]
    assert found[0].problem and found[0].problem != "unreadable row"  # the store says what it could not read
    assert found[1].problem == "stored version 9 differs from the replayed 1"


def test_entries_of_no_case_and_unreadable_refusals_are_counted_as_checked(trails, db_url: str):
    engine, _, second = trails
    run(db_url, "DELETE FROM cases WHERE number = :n", n=second)
    report = engine.verify()
    assert (report.cases_checked, report.entries_checked) == (1, 5)
    refused_opening(engine)
    [(entry_id,)] = query(db_url, "SELECT id FROM audit_entries WHERE case_id IS NULL AND number NOT LIKE :n",
                          n=second)
    run(db_url, "UPDATE audit_entries SET verdicts = 'not json' WHERE id = :i", i=entry_id)
    assert engine.verify().entries_checked == 6


SUPERVISOR = Actor("lin", "supervisor")


@pytest.fixture
def versions(trails, make_engine, db_url: str) -> tuple[Engine, list[tuple[int, str]]]:
    """The trails' database with two policy versions on the chain (the shipped one, and a 10-day return window
    published over it) and two publications: ``(seq, hash)`` of each version, in chain order."""
    from cli_helpers import DEFAULT_POLICY

    from casework import parse_policy

    engine, _, _ = trails
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("within: 7d") >= 1
    engine.publish(DEFAULT_POLICY, actor=SUPERVISOR)
    engine.publish(parse_policy(text.replace("within: 7d", "within: 10d", 1), "policies-10d.yaml"), actor=SUPERVISOR)
    chain = [(int(seq), h) for seq, h in query(db_url, "SELECT seq, hash FROM policy_versions ORDER BY seq")]
    assert len(chain) == 2 and engine.verify().ok
    return make_engine(), chain


def test_a_stored_policy_text_edited_is_named_by_its_version(versions, db_url: str):
    engine, [(_, first), _] = versions
    run(db_url, "UPDATE policy_versions SET source = source || :more WHERE hash = :h", more="\n# 30d", h=first)
    assert found(engine) == [
        ("(policy versions)", None, f"policy version {first[:12]}: its stored text no longer matches its hash")]


@pytest.mark.parametrize("column, value", [("label", "forged"), ("personal", "[]")])
def test_a_stored_label_or_list_of_personal_facts_edited_is_named_by_its_version(versions, db_url: str,
                                                                                 column: str, value: str):
    engine, [_, (_, second)] = versions
    run(db_url, f"UPDATE policy_versions SET {column} = :v WHERE hash = :h", v=value, h=second)
    assert found(engine) == [("(policy versions)", None, f"policy version {second[:12]}: its stored label or "
                              "personal facts differ from its text")]


def test_the_policy_chain_broken_is_named_at_its_first_broken_version_only(versions, db_url: str):
    engine, [(_, first), _] = versions
    run(db_url, "UPDATE policy_versions SET chain_hash = :c WHERE hash = :h", c="f" * 64, h=first)
    # The second version's link names the first's true chain hash: it no longer follows, and is not reported too.
    assert found(engine) == [("(policy versions)", 1, f"policy chain broken at version {first[:12]}")]


def test_a_version_relinked_or_renumbered_with_a_recomputed_chain_hash_is_named(versions, db_url: str):
    from casework.audit import policy_chain_hash

    engine, [_, (_, second)] = versions
    forged = "e" * 64  # a prev_hash of no stored version, the chain hash recomputed from it as an attacker can
    run(db_url, "UPDATE policy_versions SET prev_hash = :p, chain_hash = :c WHERE hash = :h",
        p=forged, c=policy_chain_hash(forged, second), h=second)
    assert found(engine) == [("(policy versions)", 2, f"policy chain broken at version {second[:12]}")]
    (prev,) = query(db_url, "SELECT chain_hash FROM policy_versions WHERE seq = 1")[0]
    run(db_url, "UPDATE policy_versions SET prev_hash = :p, chain_hash = :c, seq = 3 WHERE hash = :h",
        p=prev, c=policy_chain_hash(prev, second), h=second)  # linked right, but a place of the chain skipped
    assert found(engine) == [("(policy versions)", 3, f"policy chain broken at version {second[:12]}")]


def test_a_publication_naming_a_version_not_stored_is_named(versions, db_url: str):
    from casework.audit import publication_hash

    engine, _ = versions
    p = engine.store.publications()[1]
    stranger = "d" * 64  # the link recomputed for it, as an attacker can (no audit key here)
    run(db_url, "UPDATE policy_publications SET hash = :h, chain_hash = :c WHERE seq = 2", h=stranger,
        c=publication_hash(p.prev_hash, seq=p.seq, policy_hash=stranger, file=p.file, actor=p.actor, role=p.role,
                           at=p.at.isoformat()))
    assert found(engine) == [("(policy publications)", 2, f"publication 2 (of {stranger[:12]} by lin) names a "
                              "policy version that is not stored")]


def test_the_report_carries_the_digest_it_was_checked_against(trails):
    engine, _, _ = trails
    head = engine.verify().digest
    assert head is not None and engine.verify().since is None
    assert engine.verify(since=head).since == head and engine.verify(since=str(head)).since == head


def test_publications_under_an_audit_key_each_authenticated_or_named(db_url: str, clock: FixedClock,
                                                                      default_policy: Any):
    """With the audit key every publication carries its MAC: one whose MAC was stripped after an authenticated
    one, or forged, is named exactly; an engine with another key finds the first one unauthenticated."""
    from cli_helpers import DEFAULT_POLICY

    from casework import parse_policy

    key = "k" * 32
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    with Engine(db_url, policies=default_policy, clock=clock, audit_key=key) as engine:
        engine.publish(DEFAULT_POLICY, actor=SUPERVISOR)
        engine.publish(parse_policy(text.replace("within: 7d", "within: 10d", 1), "p10.yaml"), actor=SUPERVISOR)
        first, second = engine.store.publications()
        assert first.mac and second.mac and engine.verify().ok
        where = f"publication 2 (of {second.hash[:12]} by lin)"
        run(db_url, "UPDATE policy_publications SET mac = NULL WHERE seq = 2")
        assert found(engine) == [("(policy publications)", 2, f"{where} is not authenticated by the audit key but "
                                  "follows publications that are")]
        run(db_url, "UPDATE policy_publications SET mac = :m WHERE seq = 2", m="0" * len(second.mac))
        assert found(engine) == [("(policy publications)", 2, f"{where} is not authenticated by the audit key "
                                  "(altered or forged)")]
    with Engine(db_url, policies=default_policy, clock=clock, audit_key="x" * 32, create=False) as other:
        assert [p for p in found(other) if p[0] == "(policy publications)"] == [
            ("(policy publications)", 1, f"publication 1 (of {first.hash[:12]} by lin) is not authenticated by the "
             "audit key (altered or forged)")]


def test_a_publication_changed_is_named_as_a_broken_chain(versions, db_url: str):
    engine, _ = versions
    run(db_url, "UPDATE policy_publications SET actor = 'mallory' WHERE seq = 2")
    p = engine.store.publications()[1]
    assert found(engine) == [("(policy publications)", 2, f"publication chain broken at publication 2 (of "
                              f"{p.hash[:12]} by mallory): a publication was changed, removed or reordered")]
