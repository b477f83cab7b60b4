"""Casework's schema footprint in a host's database: its own MetaData, a table prefix or PostgreSQL
schema, its own Alembic version table, and migrations a host's Alembic can run, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlmodel import Field, SQLModel

import casework.store
from casework import Actor, Engine, FixedClock, InvalidInput, upgrade_database
from casework.store import Footprint

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
HEAD = casework.store.HEAD_REVISION
PG_SCHEMA = f"cw_footprint_{os.getpid()}"
T = TypeVar("T")


class HostOrder(SQLModel, table=True):
    """A host application's own model, on SQLModel's global MetaData."""

    __tablename__ = "host_orders"
    id: int | None = Field(default=None, primary_key=True)
    reference: str


def raw(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def connected(url: str, read: Callable[[sa.Connection], T]) -> T:
    """What ``read`` reads on a connection of its own."""
    engine = raw(url)
    try:
        with engine.connect() as conn:
            return read(conn)
    finally:
        engine.dispose()


def tables(url: str, schema: str | None = None) -> set[str]:
    return connected(url, lambda conn: set(sa.inspect(conn).get_table_names(schema=schema)))


def scalar(url: str, sql: str) -> object:
    return connected(url, lambda conn: conn.exec_driver_sql(sql).scalar())


def drop(url: str, fp: Footprint) -> None:
    """Remove a footprint's tables (PostgreSQL: the per-process test schema is shared by the tests)."""
    engine = raw(url)
    try:
        with engine.begin() as conn:
            if fp.schema:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {fp.schema} CASCADE")
            else:
                fp.metadata.drop_all(conn)
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {fp.version_table}")
            for table in ("host_orders", "alembic_version"):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    finally:
        engine.dispose()


@pytest.fixture
def footprints(db_url: str) -> Iterator[list[Footprint]]:
    """Footprints a test used, dropped afterwards (append to the list)."""
    used: list[Footprint] = []
    yield used
    if db_url.startswith("postgresql"):
        for fp in used:
            drop(db_url, fp)
        drop(db_url, casework.store.DEFAULT)


def lifecycle(engine: Engine) -> str:
    number = engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER).number
    engine.fire(number, "review", actor=AGENT)
    engine.fire(number, "approve", actor=AGENT)
    return number


# ---- the host's own tables and stamp -----------------------------------------------------------------
def test_casework_never_creates_a_host_sqlmodel_table(db_url: str, clock: FixedClock, footprints: list[Footprint]):
    assert "host_orders" in SQLModel.metadata.tables  # the host's model is on SQLModel's MetaData
    assert not {t.name for t in casework.store.DEFAULT.tables} & set(SQLModel.metadata.tables)
    Engine(db_url, clock=clock).close()
    upgrade_database(db_url)
    found = tables(db_url)
    assert "cases" in found and "host_orders" not in found


def test_the_host_alembic_version_is_never_read_nor_written(db_url: str, clock: FixedClock,
                                                          footprints: list[Footprint]):
    engine = raw(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('host0042')")
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", seen)
    try:
        with Engine(db_url, clock=clock) as cw:
            lifecycle(cw)
        upgrade_database(db_url)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", seen)
        engine.dispose()
    assert scalar(db_url, "SELECT version_num FROM alembic_version") == "host0042"
    assert scalar(db_url, "SELECT version_num FROM casework_alembic_version") == HEAD
    touching = [s for s in statements if "alembic_version" in s.replace("casework_alembic_version", "")]
    assert statements and touching == []


def test_a_legacy_stamp_in_alembic_version_moves_to_casework_own_table(db_url: str, clock: FixedClock,
                                                                      footprints: list[Footprint]):
    Engine(db_url, clock=clock).close()
    engine = raw(db_url)  # the database as casework up to schema 4 left it: its revision in alembic_version
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE casework_alembic_version")
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO alembic_version VALUES ('{HEAD}')")
    engine.dispose()
    version = str(casework.store.SCHEMA_VERSION)
    assert upgrade_database(db_url) == (version, version)
    assert scalar(db_url, "SELECT version_num FROM casework_alembic_version") == HEAD
    assert "alembic_version" not in tables(db_url)


def test_a_host_stamp_that_is_not_casework_s_stays_where_it_is(db_url: str, clock: FixedClock,
                                                               footprints: list[Footprint]):
    Engine(db_url, clock=clock).close()
    engine = raw(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE casework_alembic_version")
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('host0042')")
    engine.dispose()
    upgrade_database(db_url)
    assert scalar(db_url, "SELECT version_num FROM casework_alembic_version") == HEAD  # from casework's schema
    assert scalar(db_url, "SELECT version_num FROM alembic_version") == "host0042"


# ---- prefix and schema ---------------------------------------------------------------------------------
def test_prefixed_tables_keep_two_casework_footprints_and_the_default_apart(db_url: str, clock: FixedClock,
                                                                          footprints: list[Footprint]):
    footprints += [Footprint(prefix="cw_"), Footprint(prefix="shop2_")]
    with Engine(db_url, clock=clock, prefix="cw_") as first, Engine(db_url, clock=clock, prefix="shop2_") as second:
        number = lifecycle(first)
        assert first.get(number).state == "approved"
        assert second.find() == []
        other = lifecycle(second)
        assert first.verify().ok and second.verify().ok
        assert [c.number for c in first.find()] == [number]
        assert len(first.history(number)) == 3
    found = tables(db_url)
    assert {"cw_cases", "cw_audit_entries", "cw_casework_meta", "cw_counters", "cw_idempotency_keys",
            "cw_policy_versions", "cw_casework_alembic_version"} <= found
    assert {"shop2_cases", "shop2_casework_alembic_version"} <= found
    assert not {"cases", "audit_entries", "casework_meta", "casework_alembic_version", "alembic_version"} & found
    assert scalar(db_url, "SELECT count(*) FROM shop2_audit_entries") == 3
    assert scalar(db_url, "SELECT version_num FROM cw_casework_alembic_version") == HEAD
    with Engine(db_url, clock=clock, prefix="shop2_") as again:
        assert again.get(other).state == "approved"


def test_the_outbox_and_the_relays_cursors_are_prefixed_too(db_url: str, clock: FixedClock,
                                                            footprints: list[Footprint]):
    footprints.append(Footprint(prefix="cw_"))
    with Engine(db_url, clock=clock, prefix="cw_") as engine:
        lifecycle(engine)
        assert [c.event for c in engine.changes()] == ["open", "review", "approve"]
        outbox = engine.store.outbox
        assert outbox.cursor("orders") is None
        outbox.save_cursor("orders", 3, engine.now())
        outbox.save_cursor("orders", 2, engine.now())  # never moved back (the upsert's guard), unless rewound
        assert outbox.cursor("orders") == 3
        outbox.save_cursor("orders", 1, engine.now(), rewind=True)
        assert outbox.cursor("orders") == 1
    assert {"cw_outbox", "cw_relay_cursors"} <= tables(db_url)
    assert not {"outbox", "relay_cursors"} & tables(db_url)
    assert scalar(db_url, "SELECT count(*) FROM cw_outbox") == 3
    assert scalar(db_url, "SELECT position FROM cw_relay_cursors WHERE name = 'orders'") == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite's trail is guarded by verify
def test_prefixed_audit_tables_are_append_only_on_postgresql(db_url: str, clock: FixedClock,
                                                           footprints: list[Footprint]):
    footprints.append(Footprint(prefix="cw_"))
    with Engine(db_url, clock=clock, prefix="cw_") as engine:
        lifecycle(engine)
    engine_ = raw(db_url)
    try:
        for statement in ("UPDATE cw_audit_entries SET event = 'x'", "DELETE FROM cw_policy_versions",
                          "TRUNCATE cw_audit_entries CASCADE", "TRUNCATE cw_policy_publications"):
            with pytest.raises(sa.exc.DBAPIError, match=r"cw_.* is append-only"), engine_.begin() as conn:
                conn.exec_driver_sql(statement)
    finally:
        engine_.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_postgresql_schema_holds_every_casework_table(db_url: str, clock: FixedClock, footprints: list[Footprint]):
    footprints.append(Footprint(schema=PG_SCHEMA))
    with Engine(db_url, clock=clock, schema=PG_SCHEMA) as engine:
        number = lifecycle(engine)
        assert engine.verify().ok
    with Engine(db_url, clock=clock, schema=PG_SCHEMA) as other:
        assert other.get(number).state == "approved"
    assert {"cases", "audit_entries", "casework_meta", "casework_alembic_version"} <= tables(db_url, PG_SCHEMA)
    assert not {"cases", "casework_meta"} & tables(db_url)  # nothing in the connection's own schema
    engine_ = raw(db_url)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine_.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {PG_SCHEMA}.audit_entries")
    finally:
        engine_.dispose()
    assert upgrade_database(db_url, schema=PG_SCHEMA)[0] == str(casework.store.SCHEMA_VERSION)


def test_a_schema_on_sqlite_or_a_malformed_name_is_refused(tmp_path: Path, clock: FixedClock):
    with pytest.raises(InvalidInput, match=r"schema 'cw': a schema is for PostgreSQL.*table prefix"):
        Engine(f"sqlite:///{tmp_path}/t.db", clock=clock, schema="cw")
    for bad in ("Cw", "cw-", "1cw", "cw; drop", "x" * 17):
        with pytest.raises(InvalidInput, match=r"prefix .*lowercase letters, digits and underscores"):
            Engine(f"sqlite:///{tmp_path}/t.db", clock=clock, prefix=bad)
    assert tables(f"sqlite:///{tmp_path}/t.db") == set()


# ---- migrations ------------------------------------------------------------------------------------------
def migrated_diff(url: str, fp: Footprint) -> list[object]:
    """What the database's casework tables lack or have beyond the footprint's (DDL-managed indexes aside)."""
    managed = (fp.name("ix_cases_open_state_due"), fp.name("ix_audit_unsealed"))
    return connected(url, lambda conn: list(compare_metadata(MigrationContext.configure(conn, opts={
        "include_object": lambda o, name, type_, r, c: not (type_ == "index" and name in managed),
        # only the footprint's schema and tables: another process's footprint (tests running at once) is not ours
        "include_name": lambda name, type_, parent: name == fp.schema if type_ == "schema"
        else type_ != "table" or fp.owns(name, parent.get("schema_name")),
        "version_table": fp.version_table, "version_table_schema": fp.schema,
        "include_schemas": bool(fp.schema)}), fp.metadata)))


def test_migrations_honour_the_footprint_up_and_down(db_url: str, clock: FixedClock, footprints: list[Footprint]):
    fp = Footprint(schema=PG_SCHEMA if db_url.startswith("postgresql") else None, prefix="cw_")
    footprints.append(fp)
    assert upgrade_database(db_url, schema=fp.schema, prefix="cw_") == (None, str(casework.store.SCHEMA_VERSION))
    assert migrated_diff(db_url, fp) == []
    with Engine(db_url, clock=clock, schema=fp.schema, prefix="cw_") as engine:
        number = lifecycle(engine)
    engine_ = raw(db_url)
    with engine_.begin() as conn:  # back to the first release's schema, and up again
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(casework.store.__file__).parent / "migrations"))
        cfg.attributes.update(connection=conn, footprint=fp)
        command.downgrade(cfg, "0001")
    engine_.dispose()
    assert scalar(db_url, f"SELECT version_num FROM {fp.table('casework_alembic_version')}") == "0001"
    assert upgrade_database(db_url, schema=fp.schema, prefix="cw_") == ("1", str(casework.store.SCHEMA_VERSION))
    with Engine(db_url, clock=clock, schema=fp.schema, prefix="cw_") as engine:
        assert engine.get(number).state == "approved"
        assert engine.verify().ok
    assert migrated_diff(db_url, fp) == []


HOST_ENV = '''
from alembic import context
import sqlalchemy as sa

import casework.migrations
from casework.store import Footprint

CASEWORK = dict(schema={schema!r}, prefix="cw_")
footprint = Footprint(**CASEWORK)
metadata = sa.MetaData()
sa.Table("host_orders", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("reference", sa.String(40)))


def include_name(name, type_, parent_names):  # autogenerate leaves casework's tables to casework
    return not (type_ == "table" and footprint.owns(name, parent_names.get("schema_name")))


if context.is_offline_mode():
    raise SystemExit("run the migrations online: casework's need a connection")
engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()
        casework.migrations.upgrade(connection, **CASEWORK)
engine.dispose()
'''

HOST_MIGRATION = '''
import sqlalchemy as sa
from alembic import op

revision = "h001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("host_orders", sa.Column("id", sa.Integer, primary_key=True), sa.Column("reference", sa.String(40)))


def downgrade():
    op.drop_table("host_orders")
'''


def test_a_host_alembic_environment_upgrades_its_tables_and_casework_s(db_url: str, clock: FixedClock,
                                                                     tmp_path: Path, footprints: list[Footprint]):
    schema = PG_SCHEMA if db_url.startswith("postgresql") else None
    fp = Footprint(schema=schema, prefix="cw_")
    footprints.append(fp)
    host = tmp_path / "host_migrations"
    (host / "versions").mkdir(parents=True)
    (host / "env.py").write_text(HOST_ENV.format(schema=schema))
    (host / "versions" / "h001_orders.py").write_text(HOST_MIGRATION)
    cfg = Config()
    cfg.set_main_option("script_location", str(host))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    with pytest.raises(SystemExit, match="online"):  # offline (--sql) would leave casework's tables behind
        command.upgrade(cfg, "head", sql=True)
    command.upgrade(cfg, "head")
    assert scalar(db_url, "SELECT version_num FROM alembic_version") == "h001"
    assert scalar(db_url, f"SELECT version_num FROM {fp.table('casework_alembic_version')}") == HEAD
    assert "host_orders" in tables(db_url)
    assert migrated_diff(db_url, fp) == []
    with Engine(db_url, clock=clock, schema=schema, prefix="cw_") as engine:
        number = lifecycle(engine)
        assert engine.verify().ok
    command.upgrade(cfg, "head")  # again: nothing to do on either side
    host_metadata = sa.MetaData()  # the host's autogenerate sees its own model and nothing of casework's
    sa.Table("host_orders", host_metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("reference", sa.String(40)))
    host_only = {"include_name": lambda name, type_, parent: not (
        type_ == "table" and fp.owns(name, parent.get("schema_name")))}
    assert connected(db_url, lambda conn: compare_metadata(MigrationContext.configure(conn, opts=host_only),
                                                           host_metadata)) == []
    with Engine(db_url, clock=clock, schema=schema, prefix="cw_") as engine:
        assert engine.get(number).state == "approved"


def test_the_cli_takes_a_prefix_and_refuses_a_bad_one(tmp_path: Path):
    from typer.testing import CliRunner

    import cli

    db = str(tmp_path / "host.db")
    result = CliRunner().invoke(cli.app, ["db", "upgrade", "--json", "--db", db, "--db-prefix", "cw_"])
    assert result.exit_code == 0, result.output
    assert "cw_cases" in tables(f"sqlite:///{db}") and "cases" not in tables(f"sqlite:///{db}")
    result = CliRunner().invoke(cli.app, ["list", "--json"], env={"CASEWORK_DB": db, "CASEWORK_DB_PREFIX": "cw_"})
    assert result.exit_code == 0, result.output
    assert "cases" not in tables(f"sqlite:///{db}")  # it opened the prefixed tables, created nothing else
    result = CliRunner().invoke(cli.app, ["--db", db, "--db-prefix", "CW-", "db", "upgrade"])
    assert result.exit_code == 2
    assert "prefix 'CW-'" in result.output and "Traceback" not in result.output
