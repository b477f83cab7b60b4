"""Schema migrations (Alembic), on SQLite and PostgreSQL: empty and populated databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

import casework.store
from casework import Actor, Engine, FixedClock, SchemaOutOfDate, upgrade_database

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
MIGRATIONS = Path(casework.store.__file__).parent / "migrations"


def alembic(url: str, verb: str, revision: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            getattr(command, verb)(cfg, revision)
    finally:
        engine.dispose()


def schema_diff(url: str) -> list[object]:
    """Differences between the database and the models (the DDL-managed partial index must exist)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert "ix_cases_open_state_due" in {i["name"] for i in sa.inspect(conn).get_indexes("cases")}
            context = MigrationContext.configure(conn, opts={"include_object": _not_ddl_managed,
                                                             "version_table": casework.store.DEFAULT.version_table})
            return list(compare_metadata(context, casework.store.DEFAULT.metadata))
    finally:
        engine.dispose()


def _not_ddl_managed(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "index" and name in ("ix_cases_open_state_due", "ix_audit_unsealed"))


def populate(engine: Engine) -> list[str]:
    numbers = []
    for i in range(5):
        n = engine.open("refund", {"order_id": f"SO-{i}", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER).number
        engine.fire(n, "review", actor=AGENT)
        numbers.append(n)
    engine.fire(numbers[0], "approve", actor=AGENT)
    return numbers


def test_upgrading_an_empty_database_gives_exactly_the_current_schema(db_url: str):
    before, after = upgrade_database(db_url)
    assert (before, after) == (None, str(casework.store.SCHEMA_VERSION))
    assert schema_diff(db_url) == []
    assert upgrade_database(db_url) == (after, after)  # a second upgrade changes nothing


def test_a_new_database_created_by_the_engine_matches_the_migrations(db_url: str, clock: FixedClock):
    Engine(db_url, clock=clock).close()
    assert schema_diff(db_url) == []
    with sa.create_engine(db_url, poolclass=sa.pool.NullPool).connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM casework_alembic_version").scalar() == \
            casework.store.HEAD_REVISION
        assert not sa.inspect(conn).has_table("alembic_version")  # the host's: never created nor written


def test_a_populated_old_database_is_refused_until_upgraded_then_keeps_every_case(db_url: str, clock: FixedClock):
    with Engine(db_url, clock=clock) as engine:
        numbers = populate(engine)
        states = {n: engine.get(n).state for n in numbers}
    alembic(db_url, "downgrade", "0001")  # the database as the first release left it
    with pytest.raises(SchemaOutOfDate, match="casework db upgrade"):
        Engine(db_url, clock=clock)
    assert upgrade_database(db_url) == ("1", str(casework.store.SCHEMA_VERSION))
    with Engine(db_url, clock=clock) as engine:
        assert {n: engine.get(n).state for n in numbers} == states
        assert engine.verify().ok
        engine.fire(numbers[1], "approve", actor=AGENT)  # and it keeps working
    assert schema_diff(db_url) == []


def test_editing_the_audit_trail_is_refused_on_postgresql_and_detected_on_sqlite(db_url: str, clock: FixedClock):
    with Engine(db_url, clock=clock) as engine:
        numbers = populate(engine)
    raw = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        if db_url.startswith("postgresql"):
            for statement in ("UPDATE audit_entries SET event = 'approve'", "DELETE FROM audit_entries"):
                with pytest.raises(sa.exc.DBAPIError, match="append-only"), raw.begin() as conn:
                    conn.exec_driver_sql(statement)
            with raw.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM audit_entries").scalar() == 11
        else:
            with raw.begin() as conn:
                conn.exec_driver_sql(f"UPDATE audit_entries SET event = 'approve' WHERE number = '{numbers[2]}' "
                                     "AND seq = 2")
            with Engine(db_url, clock=clock) as engine:
                assert engine.verify().broken_cases == [numbers[2]]
    finally:
        raw.dispose()


def test_the_cli_upgrades_a_database(tmp_path: Path):
    from typer.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.app, ["--db", str(tmp_path / "new.db"), "db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    assert f'"after": "{casework.store.SCHEMA_VERSION}"' in result.stdout


def test_the_desk_migration_keeps_notes_on_the_trail_queues_of_open_cases_and_assignees_across_a_downgrade(
        db_url: str, clock: FixedClock):
    with Engine(db_url, clock=clock) as engine:
        refund = engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER).number
        engine.fire(refund, "review", actor=AGENT, data={"note": "first look"})
        engine.fire(refund, "approve", actor=AGENT, data={"note": "within policy"})
        engine.assign(refund, "bob", actor=AGENT)
        complaint = engine.open("complaint", {"order_id": "SO-7"}, actor=CUSTOMER).number
        engine.fire(complaint, "acknowledge", actor=AGENT)
        engine.fire(complaint, "escalate", actor=CUSTOMER)
        engine.fire(complaint, "resolve", actor=AGENT, data={"note": "voucher sent"})
        assert engine.fire(complaint, "close", actor=AGENT).queue is None
    alembic(db_url, "downgrade", "0007")
    raw = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with raw.begin() as conn:
            facts = conn.exec_driver_sql(f"SELECT facts FROM cases WHERE number = '{refund}'").scalar()
            assert json.loads(facts)["note"] == "within policy"  # schema 7 held the last note as a fact
            assert "assignee" not in {c["name"] for c in sa.inspect(conn).get_columns("cases")}
            # schema 7 kept a closed case in its queue
            conn.exec_driver_sql(f"UPDATE cases SET queue = 'supervisor' WHERE number = '{complaint}'")
    finally:
        raw.dispose()
    assert upgrade_database(db_url) == ("7", str(casework.store.SCHEMA_VERSION))
    with Engine(db_url, clock=clock) as engine:
        assert "note" not in engine.get(refund).facts
        assert engine.get(refund).assignee == "bob"  # as the trail's assign entry says
        assert engine.get(complaint).queue is None
        assert [n.text for n in engine.thread(refund)] == ["first look", "within policy"]
        assert engine.verify().ok
    assert schema_diff(db_url) == []
