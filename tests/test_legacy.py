"""A database written by an earlier casework opens, upgrades and verifies with today's.

The fixtures (``tests/fixtures/legacy``) were written at schema version 2 by the casework of commit
a97dbe9, through its public API (``make_legacy.py``): every kind, refusals, idempotency keys,
personal facts, breaches with escalation, a timer fired, a timer refused and a re-pinned case. The
SQLite file is used as is; on PostgreSQL its ``pg_dump`` is restored into the test schema.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from casework import Actor, Engine, FixedClock, SchemaOutOfDate, upgrade_database
from casework.domain import SYSTEM_ONLY
from casework.store import HEAD_REVISION, SCHEMA_VERSION

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
DUMP_SCHEMA = "casework_legacy_fixture"
AGENT = Actor("agent-li", "agent")
REPINNED = "RF-20261120-000004"  # re-pinned to a policy whose system may not cancel: its timer was refused
ESCALATED = "RF-20261120-000003"  # never answered: both deadlines breached and escalated


def restore(db_url: str, tmp_path: Path) -> str:
    """The legacy database at ``db_url`` (an empty database of the test's backend); its URL."""
    if db_url.startswith("sqlite"):
        target = Path(db_url.removeprefix("sqlite:///"))
        shutil.copyfile(LEGACY / "legacy-v2.db", target)
        return db_url
    schema = dict(sa.engine.make_url(db_url).query)["options"].split("search_path=")[1]
    dump = (LEGACY / "legacy-v2.pg.sql").read_text(encoding="utf-8")
    statements = "\n".join(line for line in dump.splitlines()
                           if not line.startswith("\\") and not line.startswith(f"CREATE SCHEMA {DUMP_SCHEMA}"))
    statements = statements.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    statements = re.sub(rf"\b{DUMP_SCHEMA}\.", f'"{schema}".', statements)
    raw = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with raw.begin() as conn:
            conn.connection.driver_connection.execute(statements)  # type: ignore[union-attr]  # no parameters
    finally:
        raw.dispose()
    return db_url


@pytest.fixture
def legacy(db_url: str, tmp_path: Path) -> str:
    return restore(db_url, tmp_path)


def test_a_schema_2_database_is_refused_until_upgraded(legacy: str):
    with pytest.raises(SchemaOutOfDate, match="casework db upgrade"):
        Engine(legacy)
    assert upgrade_database(legacy) == ("2", str(SCHEMA_VERSION))
    assert upgrade_database(legacy) == (str(SCHEMA_VERSION), str(SCHEMA_VERSION))
    raw = sa.create_engine(legacy, poolclass=sa.pool.NullPool)
    try:  # its Alembic stamp moved from alembic_version to casework's own version table
        with raw.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM casework_alembic_version").scalar() == HEAD_REVISION
            assert not sa.inspect(conn).has_table("alembic_version")
    finally:
        raw.dispose()


def test_the_upgraded_database_verifies_and_keeps_every_case_and_entry(legacy: str):
    upgrade_database(legacy)
    with Engine(legacy) as engine:
        report = engine.verify()
        assert report.ok, report.problems
        assert (report.cases_checked, report.entries_checked) == (8, 33)
        cases = engine.find(limit=None, reveal=True)
        assert len(cases) == 8
        for case in cases:  # the system's own values left the customer's facts
            assert not SYSTEM_ONLY & set(case.facts), case.number
        escalated = engine.get(ESCALATED)
        assert (escalated.priority, escalated.queue, escalated.breaches) == (3, "supervisor",
                                                                             ["first_response", "resolution"])
        repinned = engine.get(REPINNED)
        assert repinned.policy.label == "no system cancel"
        assert repinned.tracking.timer_refused == f"awaiting_evidence@{repinned.state_since.isoformat()}"
        assert engine.get("RF-20261120-000001", reveal=True).facts["phone"] == "13800138000"
        assert engine.get("RF-20261120-000001").facts["phone"] == "13*******00"


def test_the_upgraded_database_keeps_working(legacy: str):
    upgrade_database(legacy)
    clock = FixedClock("2026-12-20T10:00:00+08:00")
    with Engine(legacy, clock=clock) as engine:
        # The refused timer of the re-pinned case is not retried while it stays in that state.
        assert REPINNED not in {a.number for a in engine.sweep().actions}
        assert engine.fire(REPINNED, "provide_evidence", actor=AGENT, data={"evidence": ["invoice"]}).state \
            == "under_review"
        assert engine.fire(ESCALATED, "review", actor=AGENT).state == "under_review"
        clock.advance(timedelta(days=1))
        opened = engine.open("complaint", {"order_id": "SO-9"}, actor=Actor("cust-9", "customer"))
        assert opened.number == "CP-20261221-000001"
        assert engine.verify().ok
