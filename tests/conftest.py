"""Shared fixtures: a fixed clock, and engines on SQLite and on PostgreSQL.

The ``engine`` fixture runs every test that uses it twice, once per backend. The PostgreSQL half
uses ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (override with ``CASEWORK_TEST_PG``);
each test starts from empty tables. When no server answers, the PostgreSQL half is skipped with
the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from casework import Engine, FixedClock

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
    from sqlmodel import SQLModel

    import casework.store  # noqa: F401  (registers the tables on SQLModel.metadata)

    sa_engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        SQLModel.metadata.drop_all(sa_engine)
    finally:
        sa_engine.dispose()


def _pg_where(url: str) -> str:
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    return f"{u.host or 'localhost'}:{u.port or 5432}"


@pytest.fixture
def clock() -> FixedClock:
    """The engine clock, standing at 2026-11-22 10:00 in Shanghai (moved by tests as needed)."""
    return FixedClock(NOW)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with no casework data in it, for the parametrised backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/t.db"
    url = pg_url()
    problem = _pg_unreachable(url)
    if problem is not None:
        reason = f"PostgreSQL not reachable at {_pg_where(url)}: {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(reason)
    _reset_pg(url)
    return url


EngineFactory = Callable[..., Engine]


def _factory(url: str, clock: FixedClock) -> Iterator[EngineFactory]:
    made: list[Engine] = []

    def make(*, policies: Any = None, clock_: Any = None) -> Engine:
        engine = Engine(url, policies=policies, clock=clock_ or clock)
        made.append(engine)
        return engine

    yield make
    for engine in reversed(made):
        engine.close()


@pytest.fixture
def make_engine(db_url: str, clock: FixedClock) -> Iterator[EngineFactory]:
    """Make further Engines on the same database as ``engine`` (closed at teardown)."""
    yield from _factory(db_url, clock)


@pytest.fixture
def engine(make_engine: EngineFactory) -> Engine:
    """An Engine with the default policy on a fresh database, once per backend."""
    return make_engine()


@pytest.fixture
def sqlite_engine(tmp_path: Path, clock: FixedClock) -> Iterator[Engine]:
    """An Engine on a fresh SQLite file, for tests that need not run on every backend."""
    engine = Engine(f"sqlite:///{tmp_path}/t.db", clock=clock)
    yield engine
    engine.close()
