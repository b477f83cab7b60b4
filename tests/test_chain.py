"""The global chain across every audit entry, digests, and the audit key, on both backends.

An attacker here has write access to the database (``tests/tampering.py``) and, unless a test says
otherwise, no audit key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from tampering import query, raw, run
from typer.testing import CliRunner

import cli
from casework import Actor, AuditKey, Digest, Engine, FixedClock, InvalidInput, StoreError
from casework.audit import GENESIS, chain_link, hash_of
from casework.findings import ChainReport
from casework.jsontext import strict

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
KEY = "k" * 32


def refunds(engine: Engine, n: int) -> list[str]:
    numbers = []
    for i in range(n):
        number = engine.open("refund", {"order_id": f"SO-{i}", "amount": "10.00", "paid": "10.00"},
                             actor=CUSTOMER).number
        engine.fire(number, "review", actor=AGENT)
        numbers.append(number)
    return numbers


def problems(engine: Engine, since: Digest | None = None) -> list[str]:
    return [f"{p.number}#{p.seq}: {p.problem}" for p in engine.verify(since=since).problems]


def test_every_entry_has_a_place_and_the_digest_names_the_head(engine: Engine, db_url: str):
    refunds(engine, 3)
    report = engine.verify()
    assert report.ok and report.digest is not None and report.digest.seq == 6
    places = [r[0] for r in query(db_url, "SELECT gseq FROM audit_entries ORDER BY id")]
    assert places == [1, 2, 3, 4, 5, 6]
    assert engine.verify(since=report.digest).ok
    assert engine.verify(since=str(report.digest)).ok
    assert engine.verify(since=Digest(0, GENESIS)).ok
    with pytest.raises(InvalidInput, match="SEQ:LINK"):
        engine.verify(since="6:nothex")


def test_a_tail_cut_with_its_row_rewound_is_caught_by_the_digest(engine: Engine, db_url: str):
    _first, second = refunds(engine, 2)
    digest = engine.verify().digest
    assert digest is not None
    # The last entry of the database goes, and its case row is put back as it was before it.
    run(db_url, "DELETE FROM audit_entries WHERE number = :n AND seq = 2", n=second)
    (opened_hash,) = query(db_url, "SELECT hash FROM audit_entries WHERE number = :n AND seq = 1", n=second)[0]
    run(db_url, "UPDATE cases SET state = 'submitted', version = 1, last_seq = 1, last_hash = :h, "
                "updated_at = opened_at, responded_at = NULL, state_since = opened_at, due_at = first_response_due "
                "WHERE number = :n", h=opened_hash, n=second)
    assert engine.verify().ok  # without a digest, a cut at the very end leaves nothing to compare with
    assert problems(engine, digest) == [
        f"(global chain)#{digest.seq}: the chain ends at place {digest.seq - 1}, before the digest's place "
        f"{digest.seq}: entries were removed (a cut tail or an emptied table)"]


def test_a_trail_tail_cut_while_later_entries_exist_is_caught_without_a_digest(engine: Engine, db_url: str):
    first, _ = refunds(engine, 2)
    run(db_url, "DELETE FROM audit_entries WHERE number = :n AND seq = 2", n=first)
    run(db_url, "UPDATE cases SET last_seq = 1, last_hash = (SELECT hash FROM audit_entries WHERE number = :n "
                "AND seq = 1) WHERE number = :n", n=first)
    assert f"{first}#None: stored state 'under_review' differs from the replayed 'submitted'" in problems(engine)
    found = problems(engine)
    assert any("global chain: places 2 to 2 are missing" in p for p in found), found


def test_a_whole_case_deleted_is_caught(engine: Engine, db_url: str):
    _first, second, third = refunds(engine, 3)
    run(db_url, "DELETE FROM audit_entries WHERE number = :n", n=second)
    run(db_url, "DELETE FROM cases WHERE number = :n", n=second)
    assert problems(engine) == [f"{third}#1: global chain: places 3 to 4 are missing: entries were removed"]


def test_an_emptied_audit_table_is_caught_by_the_digest(engine: Engine, db_url: str):
    refunds(engine, 2)
    digest = engine.verify().digest
    assert digest is not None
    engine_ = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        if engine_.dialect.name == "postgresql":  # TRUNCATE is refused by a trigger...
            with pytest.raises(sa.exc.DBAPIError, match="append-only: TRUNCATE refused"), engine_.begin() as conn:
                conn.exec_driver_sql("TRUNCATE audit_entries, cases")
    finally:
        engine_.dispose()
    with raw(db_url) as conn:  # ...which a superuser can switch off (SQLite: deleting every row does the same)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_entries DISABLE TRIGGER USER")
            conn.exec_driver_sql("TRUNCATE audit_entries, cases")
            conn.exec_driver_sql("ALTER TABLE audit_entries ENABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DELETE FROM audit_entries")
            conn.exec_driver_sql("DELETE FROM cases")
    report = engine.verify()
    assert report.ok and report.cases_checked == 0  # an empty database is a consistent one...
    assert problems(engine, digest) == [  # ...but not the one the digest named
        f"(global chain)#{digest.seq}: the chain ends at place 0, before the digest's place {digest.seq}: entries "
        "were removed (a cut tail or an emptied table)"]


def test_the_report_names_the_first_broken_entry(engine: Engine, db_url: str):
    first, _second = refunds(engine, 2)
    run(db_url, "UPDATE audit_entries SET data = '{\"note\":\"edited\"}' WHERE number = :n AND seq = 2", n=first)
    assert problems(engine) == [f"{first}#2: entry hash mismatch: the entry was altered"]


def _rewrite_with_the_public_hash(engine: Engine, db_url: str, number: str, key: AuditKey | None) -> None:
    """Edit the last entry of ``number`` and recompute everything after it as casework would: its hash, the
    case row, and every link of the global chain (with ``key`` if the attacker had it)."""
    from dataclasses import replace

    trail = engine.history(number, reveal=True)
    edited = replace(trail[-1], data={**trail[-1].data, "note": "nothing to see"})
    edited = replace(edited, hash=hash_of(edited))
    with raw(db_url) as conn:
        conn.execute(sa.text("UPDATE audit_entries SET data = :d, hash = :h WHERE number = :n AND seq = :s"),
                     {"d": strict(edited.data), "h": edited.hash, "n": number, "s": edited.seq})
        conn.execute(sa.text("UPDATE cases SET last_hash = :h WHERE number = :n"),  # (a note is no fact)
                     {"h": edited.hash, "n": number})
        rows = conn.execute(sa.text("SELECT id, gseq, hash, mac, link FROM audit_entries ORDER BY gseq")).all()
        prev = GENESIS
        for entry_id, gseq, entry_hash, mac, link in rows:
            prev = chain_link(prev, gseq, entry_hash, key if mac is not None else None) \
                if _from(rows, edited.hash) <= gseq else link  # from the edited entry on
            new_mac = key.entry_mac(entry_hash) if key is not None and mac is not None else mac
            conn.execute(sa.text("UPDATE audit_entries SET link = :l, mac = :m WHERE id = :i"),
                         {"l": prev, "m": new_mac, "i": entry_id})


def _from(rows: list[sa.Row], edited: str) -> int:
    return next(r[1] for r in rows if r[2] == edited)


def test_a_chain_recomputed_with_the_public_hash_passes_without_a_key(engine: Engine, db_url: str):
    first, _ = refunds(engine, 2)
    engine.fire(first, "provide_evidence", actor=CUSTOMER, data={"note": "hello"})
    _rewrite_with_the_public_hash(engine, db_url, first, None)
    assert engine.verify().ok  # the limit of an unkeyed trail: what the key is for


def test_a_chain_recomputed_with_the_public_hash_is_caught_with_a_key(db_url: str, clock: FixedClock,
                                                                     default_policy):
    with Engine(db_url, policies=default_policy, clock=clock, audit_key=KEY) as engine:
        first, _ = refunds(engine, 2)
        engine.fire(first, "provide_evidence", actor=CUSTOMER, data={"note": "hello"})
        report = engine.verify()
        assert report.ok and report.checked_with_key and report.chain and report.chain.keyed_from == 1
        _rewrite_with_the_public_hash(engine, db_url, first, None)
        found = problems(engine)
        assert found == [f"{first}#3: global chain: the entry at place 5 is not authenticated by the key (altered or "
                         "forged)"]
    with Engine(db_url, policies=default_policy, clock=clock) as keyless:  # checked without the key: said so
        assert keyless.verify().chain.unchecked > 0  # type: ignore[union-attr]


def test_a_keyed_chain_is_written_only_with_its_key(db_url: str, clock: FixedClock, default_policy):
    with Engine(db_url, policies=default_policy, clock=clock, audit_key=KEY) as engine:
        (number,) = refunds(engine, 1)
    with Engine(db_url, policies=default_policy, clock=clock) as keyless, \
            pytest.raises(StoreError, match="written with an audit key"):
        keyless.fire(number, "approve", actor=AGENT)
    with Engine(db_url, policies=default_policy, clock=clock, audit_key="another key of 32 bytes length!") as other, \
            pytest.raises(StoreError, match="this engine's key has id"):
        other.fire(number, "approve", actor=AGENT)
    with pytest.raises(InvalidInput, match="at least 16 bytes"):
        Engine(db_url, audit_key="short")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite writers always hold the seal
def test_entries_left_unsealed_are_sealed_by_the_next_writer(engine: Engine, make_engine, db_url: str):
    (number,) = refunds(engine, 1)
    holder = make_engine()
    with holder.store.transaction() as tx:
        tx.seal_waiting()  # another writer takes the seal, and holds it until its transaction ends...
        engine.fire(number, "approve", actor=AGENT)  # ...this one does not wait for it
    report = engine.verify()
    assert report.ok and report.chain is not None and report.chain.pending == 1
    engine.fire(number, "pay", actor=AGENT)
    report = engine.verify()
    assert report.ok and report.chain is not None and (report.chain.pending, report.chain.head.seq) == (0, 4)


def test_the_cli_prints_a_digest_and_checks_it_with_db_after_the_command(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CASEWORK_DB", raising=False)
    db = str(tmp_path / "c.db")
    runner = CliRunner()
    opened = runner.invoke(cli.app, ["--db", db, "open", "refund", "--order", "A", "--amount", "5", "--paid", "5",
                                     "--role", "customer", "--actor", "c1", "--json"])
    assert opened.exit_code == 0, opened.output
    first = runner.invoke(cli.app, ["verify", "--db", db])
    assert first.exit_code == 0 and "digest (keep it outside the database): 1:" in first.stdout
    doc = json.loads(runner.invoke(cli.app, ["verify", "--db", db, "--json"]).stdout)
    assert doc["ok"] and doc["digest"].startswith("1:") and doc["checked_with_key"] is False
    assert runner.invoke(cli.app, ["verify", "--db", db, "--since", doc["digest"]]).exit_code == 0
    run(f"sqlite:///{db}", "DELETE FROM audit_entries")
    cut = runner.invoke(cli.app, ["verify", "--db", db, "--since", doc["digest"], "--json"])
    assert cut.exit_code == 1 and "before the digest's place 1" in cut.stdout
    bad = runner.invoke(cli.app, ["verify", "--db", db, "--since", "x"])
    assert bad.exit_code == 2 and "SEQ:LINK" in bad.stderr


def test_the_cli_checks_with_the_key_from_the_environment(tmp_path: Path, monkeypatch):
    db = str(tmp_path / "c.db")
    monkeypatch.setenv("CASEWORK_AUDIT_KEY", KEY)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["--db", db, "open", "refund", "--order", "A", "--amount", "5", "--paid", "5",
                                   "--role", "customer", "--actor", "c1"]).exit_code == 0
    doc = json.loads(runner.invoke(cli.app, ["--db", db, "verify", "--json"]).stdout)
    assert doc["ok"] and doc["checked_with_key"] and doc["chain"]["key_id"] == AuditKey(KEY).id
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.delenv("CASEWORK_AUDIT_KEY")
    assert runner.invoke(cli.app, ["--db", db, "--audit-key-file", str(key_file), "verify"]).exit_code == 0
    keyless = runner.invoke(cli.app, ["--db", db, "verify"])
    assert keyless.exit_code == 0 and "WITHOUT the audit key" in keyless.stdout


def test_entries_sealed_one_after_another_in_one_transaction_each_take_the_next_place(engine: Engine):
    # On SQLite a write transaction's read of a case also reads the chain's head, for its next seal; a seal moves
    # the head, so the entry sealed after it is chained onto that one, not onto the head both reads saw.
    from casework.transition import step

    first, second = refunds(engine, 2)
    gseq, _ = engine.store.chain_head()
    with engine.store.transaction() as tx:
        read = [tx.get(second), tx.get(first)]  # both read before either entry is sealed
        for stored in reversed(read):
            assert stored is not None
            t = step(stored.case, stored.last_seq, stored.last_hash, event="approve", to_state=None, verdicts=(),
                     actor=AGENT, data={}, now=stored.case.updated_at, policy=engine.policy)
            tx.extend_trail(stored, t.entry.seq, t.entry.hash)
            tx.append([(stored.id, t.entry, t.texts, t.case)])
    assert engine.store.chain_head()[0] == gseq + 2
    assert [e.event for e in engine.history(second)][-1] == "approve"
    assert problems(engine) == []


def test_a_keyed_chain_reports_its_key_and_what_verify_could_not_check_without_it(db_url: str, clock: FixedClock,
                                                                                   default_policy):
    with Engine(db_url, policies=default_policy, clock=clock, audit_key=KEY) as engine:
        refunds(engine, 2)  # four entries, each with its MAC
        key_id = engine.store.key.id  # type: ignore[union-attr]
        assert engine.verify().chain == ChainReport(Digest(4, query(db_url, "SELECT link FROM audit_entries "
                                                                    "WHERE gseq = 4")[0][0]), 0, key_id, key_id, 1, 0)
    with Engine(db_url, policies=default_policy, clock=clock) as keyless:
        chain = keyless.verify().chain
        assert chain is not None and (chain.key_id, chain.chain_key_id, chain.unchecked) == (None, key_id, 4)
    with Engine(db_url, policies=default_policy, clock=clock, audit_key="another key of 32 bytes length!") as other:
        other_id = other.store.key.id  # type: ignore[union-attr]
        assert problems(other) == [
            f"{query(db_url, 'SELECT number FROM audit_entries WHERE gseq = 1')[0][0]}#1: global chain: the entry at "
            f"place 1 is not authenticated by the key (altered or forged; the database says its chain is written "
            f"with key id {key_id}, this key's id is {other_id})"]


def test_a_keyed_chain_with_a_mac_stripped_or_its_key_forgotten_is_named(db_url: str, clock: FixedClock,
                                                                          default_policy):
    with Engine(db_url, policies=default_policy, clock=clock, audit_key=KEY) as engine:
        first, second = refunds(engine, 2)
        run(db_url, "UPDATE audit_entries SET mac = NULL WHERE gseq = 3")
        assert problems(engine) == [f"{second}#1: global chain: the entry at place 3 is not authenticated by a key "
                                    "but follows entries that are (from place 1): the chain was rewritten without "
                                    "the key"]
    run(db_url, "UPDATE audit_entries SET mac = 'x' WHERE gseq = 3")
    run(db_url, "UPDATE casework_meta SET value = '' WHERE key = 'audit_seal'")
    with Engine(db_url, policies=default_policy, clock=clock) as keyless:
        assert problems(keyless) == [f"{first}#1: global chain: the entry at place 1 carries a MAC but the database "
                                     "says its chain is written without a key"]


def test_a_chain_keyed_from_a_later_place_checks_the_earlier_links_without_the_key(db_url: str, clock: FixedClock,
                                                                                    default_policy, engine: Engine):
    refunds(engine, 1)  # places 1 and 2, written without a key
    with Engine(db_url, policies=default_policy, clock=clock, audit_key=KEY) as keyed:
        refunds(keyed, 1)  # places 3 and 4, with it
        report = keyed.verify()
        assert report.ok and report.chain is not None and report.chain.keyed_from == 3


def test_a_link_edited_is_named_at_its_place(engine: Engine, db_url: str):
    first, _ = refunds(engine, 2)
    run(db_url, "UPDATE audit_entries SET link = :l WHERE gseq = 2", l="f" * 64)
    assert problems(engine) == [f"{first}#2: global chain: the link at place 2 does not match: an entry at or before "
                                "it was changed, removed or reordered"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # on PostgreSQL an unsealed entry waits for a writer
def test_an_entry_whose_place_was_removed_is_named_on_sqlite(engine: Engine, db_url: str):
    _, second = refunds(engine, 2)
    run(db_url, "UPDATE audit_entries SET gseq = NULL, link = NULL WHERE gseq = 4")
    assert problems(engine) == [f"{second}#2: global chain: the entry is not sealed (its place was removed)"]
