"""Shared fixtures: a fixed clock, and engines on SQLite and on PostgreSQL.

The ``engine`` fixture runs every test that uses it twice, once per backend. The PostgreSQL half
uses ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (override with ``CASEWORK_TEST_PG``),
in a schema of the test process's own (so concurrent runs do not collide); each test starts from
empty tables (every casework table is dropped before it and the Engine creates them again).
When no server answers, the PostgreSQL half is skipped with the reason, except under ``CI=true``,
where it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from casework import Engine, FixedClock, PolicySet, load_policy

NOW = "2026-11-22T10:00:00+08:00"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def pg_url() -> str:
    return os.environ.get("CASEWORK_TEST_PG") or DEFAULT_PG_URL


_pg_problem: dict[str, str | None] = {}


def _pg_unreachable(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used (None when it can); asked once per session."""
    if url not in _pg_problem:
        import sqlalchemy as sa

        probe = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
        try:
            with probe.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            _pg_problem[url] = None
        except Exception as exc:
            text = str(getattr(exc, "orig", None) or exc).strip()
            _pg_problem[url] = (text.splitlines() or [type(exc).__name__])[0]
        finally:
            probe.dispose()
    return _pg_problem[url]


def _reset_pg(url: str) -> None:
    """Drop every casework table so the test starts from an empty database."""
    import sqlalchemy as sa

    from casework.store import DEFAULT

    sa_engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        DEFAULT.metadata.drop_all(sa_engine)
        with sa_engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {DEFAULT.version_table}")
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        sa_engine.dispose()


def _private_schema(url: str) -> tuple[str, str | None]:
    """``url`` with its search_path set to a schema of this test process's own, and that schema.

    Each test run gets its own schema in the test database, so two runs at once (two developers,
    or xdist workers) never drop each other's tables. A URL that already sets ``options`` is used
    as given.
    """
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    if "options" in u.query:
        return url, None
    schema = f"casework_test_{os.getpid()}"
    sa_engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with sa_engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        sa_engine.dispose()
    private = u.update_query_dict({"options": f"-csearch_path={schema}"})
    return private.render_as_string(hide_password=False), schema


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    sa_engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with sa_engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        sa_engine.dispose()


def _pg_where(url: str) -> str:
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    return f"{u.host or 'localhost'}:{u.port or 5432}"


@pytest.fixture(scope="session")
def default_policy() -> PolicySet:
    """The shipped policies.yaml, parsed once per session (engines share it; it is immutable)."""
    return load_policy()


@pytest.fixture(scope="session")
def pg_test_url() -> Iterator[str]:
    """The PostgreSQL URL the tests use (skips, or fails under CI=true, when unreachable)."""
    url = pg_url()
    problem = _pg_unreachable(url)
    if problem is not None:
        reason = f"PostgreSQL not reachable at {_pg_where(url)}: {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(reason)
    private, schema = _private_schema(url)
    yield private
    if schema is not None:
        _drop_schema(url, schema)


@pytest.fixture(autouse=True)
def _no_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's output as piped (its fixed width), whatever COLUMNS the shell running pytest exports: a test of a
    narrow terminal says so itself (``env={"COLUMNS": "80"}``)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture
def clock() -> FixedClock:
    """The engine clock, standing at 2026-11-22 10:00 in Shanghai (moved by tests as needed)."""
    return FixedClock(NOW)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with no casework data in it, for the parametrised backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/t.db"
    url = request.getfixturevalue("pg_test_url")
    _reset_pg(url)
    return url


EngineFactory = Callable[..., Engine]


def _factory(url: str, clock: FixedClock, default: PolicySet) -> Iterator[EngineFactory]:
    made: list[Engine] = []

    def make(*, policies: Any = None, clock_: Any = None) -> Engine:
        engine = Engine(url, policies=default if policies is None else policies, clock=clock_ or clock)
        made.append(engine)
        return engine

    yield make
    for engine in reversed(made):
        engine.close()


@pytest.fixture
def make_engine(db_url: str, clock: FixedClock, default_policy: PolicySet) -> Iterator[EngineFactory]:
    """Make further Engines on the same database as ``engine`` (closed at teardown).

    ``make_engine(policies=...)`` takes a file or a PolicySet; the default is the shipped policy.
    """
    yield from _factory(db_url, clock, default_policy)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, default_policy: PolicySet) -> Path:
    """A SQLite file exactly as a new Engine leaves it (its tables, no data), made once per session.

    Creating the tables takes a new Engine ~60 ms and copying this file ~1 ms; the ``engine`` and
    ``sqlite_engine`` fixtures start from a copy. Tests of creating a database (``make_engine`` on its own,
    the migration and footprint tests) still create theirs.
    """
    path = tmp_path_factory.mktemp("template") / "t.db"
    Engine(f"sqlite:///{path}", policies=default_policy).close()
    return path


def _from_template(url: str, template: Path) -> None:
    """Put a copy of ``template`` where the SQLite ``url`` points, unless a database is already there."""
    path = Path(url.removeprefix("sqlite:///"))
    if url.startswith("sqlite:///") and not path.exists():
        shutil.copyfile(template, path)


@pytest.fixture
def engine(make_engine: EngineFactory, db_url: str, sqlite_template: Path) -> Engine:
    """An Engine with the default policy on a fresh database, once per backend."""
    _from_template(db_url, sqlite_template)
    return make_engine()


@pytest.fixture
def sqlite_engine(tmp_path: Path, clock: FixedClock, default_policy: PolicySet,
                  sqlite_template: Path) -> Iterator[Engine]:
    """An Engine on a fresh SQLite file, for tests that need not run on every backend."""
    _from_template(f"sqlite:///{tmp_path}/t.db", sqlite_template)
    engine = Engine(f"sqlite:///{tmp_path}/t.db", policies=default_policy, clock=clock)
    yield engine
    engine.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutation testing (mutation/run.py), run a mutant's tests fastest first.

    mutmut hands each mutant its tests in no particular order and stops at the first failure, so a mutant
    that a 5 ms rule test kills could first wait for a 2 s lifecycle test. The durations are mutmut's own,
    measured in its stats run; an ordinary run (no mutant under test) keeps pytest's order.
    """
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    from mutmut.state import state  # present whenever a mutant is under test

    durations = state().duration_by_test
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
