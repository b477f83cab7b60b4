"""The desk: a case's assignee gets a column, notes leave the facts for the trail's notes thread, and
closed cases leave their queues.

``assignee`` (who the case is assigned to, set by ``assign`` entries and escalations) is a new
tracking column, indexed for ``list --assignee`` and the unassigned queue; no case had one before.
``note`` was merged into the facts by every event that carried one, so the last note overwrote the
one before; from schema 8 a note stays in the entry that carried it (the thread is read from the
trail) and the facts hold no ``note``. The audit trail is not touched: its hashes stand. A downgrade
puts back the last note an applied event carried, as the facts held it; an upgrade after one puts back
the assignees the trail records, as ``casework verify`` derives them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import op

from casework.migrations import derive, footprint

if TYPE_CHECKING:
    from casework.store import Footprint

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 2000


def _text(value: Any) -> str:  # how casework stores a JSON value: sorted keys, no spaces, UTF-8 as is
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _rows(conn: sa.Connection, cases: str) -> Any:
    last = 0
    while True:
        rows = conn.execute(sa.text(f"SELECT id, facts FROM {cases} WHERE id > :last ORDER BY id LIMIT {BATCH}"),
                            {"last": last}).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def upgrade() -> None:
    fp = footprint()
    cases = fp.table("cases")
    with op.batch_alter_table(fp.name("cases"), schema=fp.schema) as batch:
        batch.add_column(sa.Column("assignee", sa.String(200)))
        batch.create_index(fp.name("ix_cases_assignee"), ["assignee"])
    conn = op.get_bind()
    update = sa.text(f"UPDATE {cases} SET facts = :facts WHERE id = :id")
    for case_id, facts_text in list(_rows(conn, cases)):
        facts = json.loads(facts_text)
        if "note" in facts:
            del facts["note"]
            conn.execute(update, {"id": case_id, "facts": _text(facts)})
    # A closed case leaves its queue (transition.advance clears it from schema 8 on, and so does a replay).
    conn.execute(sa.text(f"UPDATE {cases} SET queue = NULL WHERE queue IS NOT NULL AND is_open = :closed"),
                 {"closed": False})
    _assignees(conn, fp)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '8' WHERE key = 'schema'")


def _assignees(conn: sa.Connection, fp: Footprint) -> None:
    """Each case's assignee as its trail derives it (casework.migrations.derive: the one replay). Only a database
    brought down to schema 7 and up again has assignments recorded; without any, nothing is replayed."""
    recorded = sa.text(f"SELECT 1 FROM {fp.table('audit_entries')} WHERE data LIKE :key")
    if conn.execute(recorded, {"key": '%"assignee"%'}).first() is None:
        return
    rows = [{"id": case_id, "assignee": case.assignee}
            for case_id, case in derive.replayed(conn, derive.policies(conn, fp), fp) if case.assignee is not None]
    update = sa.text(f"UPDATE {fp.table('cases')} SET assignee = :assignee WHERE id = :id")
    for lo in range(0, len(rows), derive.BATCH):
        conn.execute(update, rows[lo:lo + derive.BATCH])


def downgrade() -> None:
    fp = footprint()
    cases = fp.table("cases")
    conn = op.get_bind()
    update = sa.text(f"UPDATE {cases} SET facts = :facts WHERE id = :id")
    last_note = sa.text(f"SELECT data FROM {fp.table('audit_entries')} WHERE case_id = :id AND outcome = 'applied' "
                        "AND event NOT IN ('note', 'assign') ORDER BY seq")
    for case_id, facts_text in list(_rows(conn, cases)):
        notes = [d["note"] for (text,) in conn.execute(last_note, {"id": case_id}).all()
                 if "note" in (d := json.loads(text))]
        if notes:
            facts = json.loads(facts_text)
            facts["note"] = notes[-1]
            conn.execute(update, {"id": case_id, "facts": _text(facts)})
    with op.batch_alter_table(fp.name("cases"), schema=fp.schema) as batch:
        batch.drop_index(fp.name("ix_cases_assignee"))
        batch.drop_column("assignee")
    op.execute(fp.open_due_index())  # (a copied SQLite table loses its partial index)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '7' WHERE key = 'schema'")
