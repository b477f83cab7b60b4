"""Values a migration derives from the audit trail, as ``casework verify`` derives them.

A column added to ``cases`` by a migration holds what the trail says it holds: each case's entries
are replayed through :mod:`casework.replay` (the one transition step) under the policy versions
they name, read from the database being migrated. Only columns an older schema did not have are
filled this way; nothing a row already held is changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from casework.domain import AuditEntry, Case, PolicyRef

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.store import Footprint

BATCH = 500
ENTRY_COLUMNS = ("number", "seq", "at", "event", "from_state", "to_state", "outcome", "actor", "role", "channel",
                 "verdicts", "data", "policy_hash", "prev_hash", "hash")


def _time(value: Any) -> datetime:
    at: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def stored_time(conn: sa.Connection, value: datetime | None) -> Any:
    """A time as casework stores it on this connection's backend (naive UTC)."""
    if value is None:
        return None
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(" ", "microseconds") if conn.dialect.name == "sqlite" else naive


def policies(conn: sa.Connection, fp: Footprint) -> dict[str, PolicySet | None]:
    """Every stored policy version, parsed (None for a text that no longer parses or hashes to its version)."""
    from casework.errors import CaseworkError
    from casework.policies import parse_policy

    found: dict[str, PolicySet | None] = {}
    query = sa.text(f"SELECT hash, name, source FROM {fp.table('policy_versions')}")
    for policy_hash, name, source in conn.execute(query):
        try:
            policy = parse_policy(source, name)
            found[policy_hash] = policy if policy.hash == policy_hash else None
        except CaseworkError:
            found[policy_hash] = None
    return found


def replayed(conn: sa.Connection, versions: dict[str, PolicySet | None], fp: Footprint
             ) -> Iterator[tuple[int, Case]]:
    """``(case id, the case its trail derives)`` for every case whose trail replays cleanly."""
    from casework.replay import replay

    refs = {h: PolicyRef(p.label if p else "?", h) for h, p in versions.items()}
    last = 0
    while True:
        ids = [r[0] for r in conn.execute(sa.text(
            f"SELECT id FROM {fp.table('cases')} WHERE id > :last ORDER BY id LIMIT {BATCH}"), {"last": last})]
        if not ids:
            return
        trails: dict[int, list[AuditEntry]] = {i: [] for i in ids}
        query = sa.text(f"SELECT case_id, {', '.join(ENTRY_COLUMNS)} FROM {fp.table('audit_entries')} WHERE case_id IN "
                        f"({', '.join(str(i) for i in ids)}) ORDER BY case_id, seq")
        for row in conn.execute(query):
            v = dict(zip(ENTRY_COLUMNS, row[1:], strict=True))
            trails[row[0]].append(AuditEntry(
                number=v["number"], seq=v["seq"], at=_time(v["at"]), event=v["event"], from_state=v["from_state"],
                to_state=v["to_state"], outcome=v["outcome"], actor=v["actor"], role=v["role"],
                channel=v["channel"], verdicts=json.loads(v["verdicts"]), data=json.loads(v["data"]),
                policy=refs.get(v["policy_hash"], PolicyRef("?", v["policy_hash"])), prev_hash=v["prev_hash"],
                hash=v["hash"]))
        for case_id, entries in trails.items():
            if entries:
                trail = replay(entries[0].number, entries, versions.get)
                if trail.case is not None:
                    yield case_id, trail.case
        last = ids[-1]
