"""Embedding casework in a host's backend: its SQLAlchemy pool, its threads and forked workers, its
transaction, and the host's own tables written atomically with a case (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import pickle
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from casework import Actor, Engine, FixedClock, InvalidInput, PolicySet, StoreError

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
REFUND = {"amount": "59.00", "paid": "59.00", "reason": "not_delivered"}


@pytest.fixture
def host_engine(db_url: str) -> Iterator[sa.Engine]:
    """The host's own SQLAlchemy Engine (its pool) on the test database."""
    options: dict[str, Any] = {} if db_url.startswith("sqlite") else {"pool_pre_ping": True}
    host = sa.create_engine(db_url, **options)
    yield host
    host.dispose()


@pytest.fixture
def orders(host_engine: sa.Engine) -> Iterator[sa.Table]:
    """The host's own table of orders, on its own MetaData (dropped after the test)."""
    metadata = sa.MetaData()
    table = sa.Table(f"host_orders_{uuid.uuid4().hex[:8]}", metadata,
                     sa.Column("id", sa.String(40), primary_key=True), sa.Column("total", sa.Numeric(12, 2)))
    metadata.create_all(host_engine)
    yield table
    metadata.drop_all(host_engine)


@pytest.fixture
def on_host(host_engine: sa.Engine, clock: FixedClock, default_policy: PolicySet) -> Iterator[Engine]:
    """A casework Engine on the host's pool."""
    engine = Engine(host_engine, policies=default_policy, clock=clock)
    yield engine
    engine.close()


def _open(engine: Engine, order: str) -> str:
    return engine.open("refund", {"order_id": order, **REFUND}, actor=CUSTOMER).number


# ---- the host's pool ------------------------------------------------------------------------------------
def test_an_engine_runs_on_the_hosts_sqlalchemy_engine(on_host: Engine, host_engine: sa.Engine):
    number = _open(on_host, "SO-1")
    assert on_host.fire(number, "review", actor=AGENT).state == "under_review"
    assert on_host.verify().ok
    with host_engine.connect() as conn:  # the host's pool is still the host's: casework did not dispose of it
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    on_host.close()
    with host_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1


@pytest.mark.parametrize("db", [42, b"sqlite:///x.db", object()], ids=["int", "bytes", "object"])
def test_a_database_that_is_neither_a_url_nor_an_engine_is_invalid_input(db: object):
    with pytest.raises(InvalidInput) as info:
        Engine(db)  # type: ignore[arg-type]
    assert type(db).__name__ in str(info.value) and "SQLAlchemy Engine" in str(info.value)


def test_a_store_error_never_holds_the_password_of_a_url_or_an_engine():
    for db in ("postgresql+psycopg://casework:s3cret-pw@127.0.0.1:1/none",
               sa.create_engine("postgresql+psycopg://casework:s3cret-pw@127.0.0.1:1/none")):
        with pytest.raises(StoreError) as info:
            Engine(db)
        error = info.value
        assert error.url == "postgresql+psycopg://casework:***@127.0.0.1:1/none"
        text = str(error) + json.dumps(error.to_json()) + repr(vars(pickle.loads(pickle.dumps(error))))
        assert "s3cret-pw" not in text


def test_eight_threads_share_one_engine(engine: Engine):
    per_thread, results, failures = 6, {}, []

    def work(t: int) -> None:
        try:
            mine = []
            for i in range(per_thread):
                number = _open(engine, f"SO-{t}-{i}")
                engine.fire(number, "review", actor=AGENT)
                engine.fire(number, "approve", actor=AGENT)
                mine.append((number, engine.get(number).state, len(engine.history(number))))
            results[t] = mine
        except BaseException as exc:  # reported below, with the thread it failed in
            failures.append((t, exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    found = [row for mine in results.values() for row in mine]
    assert len({number for number, _, _ in found}) == 8 * per_thread  # every case its own number
    assert {(state, entries) for _, state, entries in found} == {("approved", 3)}
    assert len(engine.find(limit=None)) == 8 * per_thread
    report = engine.verify()
    assert report.ok and report.digest is not None


def _fork(child: Any) -> Any:
    """Run ``child()`` in a forked process; what it returns (or the error it raised, as text)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            outcome: Any = ("ok", child())
        except BaseException as exc:
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        with os.fdopen(write, "wb") as out:
            pickle.dump(outcome, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        outcome = pickle.load(pipe)
    os.waitpid(pid, 0)
    assert outcome[0] == "ok", outcome[1]
    return outcome[1]


def test_a_forked_process_reconnects_and_the_parent_carries_on(on_host: Engine, host_engine: sa.Engine):
    made_in: dict[int, set[int]] = {}  # by process: the processes that made the connections it used
    servers: dict[int, set[Any]] = {}  # by process: the PostgreSQL server processes serving them

    @sa.event.listens_for(host_engine, "connect")
    def _made(_dbapi_conn: Any, record: Any) -> None:
        record.info["made_in"] = os.getpid()

    @sa.event.listens_for(host_engine, "checkout")
    def _used(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        made_in.setdefault(os.getpid(), set()).add(record.info.get("made_in", 0))
        servers.setdefault(os.getpid(), set()).add(getattr(getattr(dbapi_conn, "info", None), "backend_pid", None))

    host_engine.dispose()  # connections from here on are made under the listeners
    parent = _open(on_host, "SO-parent")  # the parent holds pooled connections when it forks

    def child() -> tuple[str, set[int], set[Any]]:
        number = _open(on_host, "SO-child")
        on_host.fire(parent, "review", actor=AGENT)
        return number, made_in.get(os.getpid(), set()), servers.get(os.getpid(), set())

    number, child_made_in, child_servers = _fork(child)
    assert child_made_in and os.getpid() not in child_made_in  # every connection the child used was its own
    if host_engine.dialect.name == "postgresql":
        assert not child_servers & servers[os.getpid()]
    assert on_host.get(number).facts["order_id"] == "SO-child"  # the parent's pool still works
    assert on_host.get(parent).state == "under_review"
    assert on_host.fire(parent, "approve", actor=AGENT).state == "approved"
    assert made_in[os.getpid()] == {os.getpid()} and on_host.verify().ok


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("first", ["read", "write"])
def test_connections_killed_by_the_server_are_replaced_before_the_next_call(
        db_url: str, clock: FixedClock, default_policy: PolicySet, first: str):
    """casework's own pool has no pre-ping: the BEGIN of the next call, read or write, finds its connection
    dropped, and casework renews the pool and begins again on a new one."""
    name = f"casework-kill-{uuid.uuid4().hex[:8]}"
    url = sa.engine.make_url(db_url).update_query_dict({"application_name": name})
    engine = Engine(url.render_as_string(hide_password=False), policies=default_policy, clock=clock)
    try:
        numbers = [_open(engine, f"SO-{i}") for i in range(3)]
        killer = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        with killer.connect() as conn:
            killed = conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                          "WHERE application_name = :name"), {"name": name}).fetchall()
        killer.dispose()
        assert killed  # the engine's pooled connections were there, and are gone
        if first == "write":  # the very next call succeeds
            assert engine.fire(numbers[1], "review", actor=AGENT).state == "under_review"
        assert engine.get(numbers[0]).state == "submitted"
        assert engine.get(numbers[1]).state == ("under_review" if first == "write" else "submitted")
        assert _open(engine, "SO-after") and engine.verify().ok
    finally:
        engine.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_connections_go_back_to_casework_s_pool_as_the_pool_made_them(engine: Engine):
    """casework holds its pool's connections in autocommit mode to send BEGIN and COMMIT itself; SQLAlchemy's
    own uses of the pool (migrations, inspection) get them back in transactional mode."""
    number = _open(engine, "SO-1")
    engine.fire(number, "review", actor=AGENT)
    assert engine.get(number).state == "under_review"  # a read scope too (ended with ROLLBACK)
    pool = engine.store._db.engine  # the pool casework made
    with pool.connect() as conn:
        assert conn.connection.driver_connection.autocommit is False
        conn.execute(sa.text("CREATE TEMPORARY TABLE rolled_back (x int)"))
        conn.rollback()
        assert conn.execute(sa.text("SELECT to_regclass('pg_temp.rolled_back')")).scalar() is None


# ---- the host's transaction -------------------------------------------------------------------------------
class HostRollback(Exception):
    pass


def test_a_host_transaction_that_rolls_back_leaves_neither_order_nor_case(
        on_host: Engine, host_engine: sa.Engine, orders: sa.Table):
    on_host.fire(_open(on_host, "SO-before"), "review", actor=AGENT)
    with pytest.raises(HostRollback), host_engine.begin() as conn:
        conn.execute(orders.insert().values(id="SO-1", total="59.00"))
        with on_host.using(conn):
            number = _open(on_host, "SO-1")
            assert on_host.get(number).state == "submitted"  # its own writes are visible inside
            on_host.fire(number, "review", actor=AGENT)
        raise HostRollback
    with host_engine.connect() as conn:
        assert conn.execute(sa.select(orders)).fetchall() == []
    assert on_host.find(order_id="SO-1") == []
    changes = on_host.changes()  # the outbox: the earlier case's two changes, none of the rolled-back case's
    assert [c.event for c in changes] == ["open", "review"] and number not in {c.number for c in changes}
    report = on_host.verify()
    assert report.ok and report.entries_checked == 2 and report.digest.seq == 2  # the earlier case and its review
    assert _open(on_host, "SO-2") and on_host.verify().ok  # the chain goes on from where it was


def test_a_host_transaction_that_commits_has_the_order_and_the_case(
        on_host: Engine, host_engine: sa.Engine, orders: sa.Table):
    with host_engine.begin() as conn:
        with on_host.using(conn):
            number = _open(on_host, "SO-1")
            on_host.fire(number, "review", actor=AGENT)
        conn.execute(orders.insert().values(id="SO-1", total="59.00"))
    with host_engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.id)).scalars().all() == ["SO-1"]
    assert on_host.get(number).state == "under_review"
    assert [e.event for e in on_host.history(number)] == ["open", "review"]
    assert on_host.verify().ok


def test_a_refusal_inside_the_host_transaction_is_recorded_with_it(
        on_host: Engine, host_engine: sa.Engine, orders: sa.Table):
    from casework import TransitionDenied

    with host_engine.begin() as conn:
        with on_host.using(conn):
            number = _open(on_host, "SO-1")
            with pytest.raises(TransitionDenied):
                on_host.fire(number, "pay", actor=AGENT)  # not from submitted: refused, and recorded
            assert on_host.fire(number, "review", actor=AGENT).state == "under_review"  # the savepoint let go
        conn.execute(orders.insert().values(id="SO-1", total="59.00"))
    assert [e.outcome for e in on_host.history(number)] == ["applied", "refused", "applied"]
    assert on_host.verify().ok


@pytest.mark.parametrize("commit", [True, False])
def test_a_connection_with_no_transaction_yet_is_begun_and_its_commit_or_close_decides(
        commit: bool, on_host: Engine, host_engine: sa.Engine, orders: sa.Table):
    with host_engine.connect() as conn:  # SQLAlchemy 2's "commit as you go": no transaction until a statement
        with on_host.using(conn):
            number = _open(on_host, "SO-1")
            assert conn.in_transaction()
        conn.execute(orders.insert().values(id="SO-1", total="59.00"))
        if commit:
            conn.commit()
    with host_engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.id)).scalars().all() == (["SO-1"] if commit else [])
    assert [c.number for c in on_host.find(order_id="SO-1")] == ([number] if commit else [])
    assert on_host.verify().ok


def test_only_a_sqlalchemy_connection_in_a_transaction_can_be_joined(on_host: Engine, host_engine: sa.Engine):
    with pytest.raises(InvalidInput, match="SQLAlchemy Connection"), on_host.using("conn"):  # type: ignore[arg-type]
        pass
    with host_engine.connect() as conn, pytest.raises(InvalidInput, match="autocommit"), on_host.using(
            conn.execution_options(isolation_level="AUTOCOMMIT")):
        pass
