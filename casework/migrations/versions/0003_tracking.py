"""What the system keeps on a case moves out of the customer's facts into columns of its own.

``priority``, ``queue``, ``breaches`` and ``timer_refused`` were kept among the facts (``priority``
and ``queue`` were also copied to columns); ``timer``, ``policy_from`` and ``policy_to`` were merged
into the facts from the system's own entries. From schema 3 the first four are the case's tracking
columns (``breaches`` and ``timer_refused`` are new) and the last three stay in the audit entries
only; the facts hold only what callers gave. The audit trail is not touched: its hashes stand.

Revision ID: 0003
Revises: 0002
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from casework.migrations import footprint

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TRACKED = ("breaches", "priority", "queue", "timer_refused")
ENTRY_ONLY = ("timer", "policy_from", "policy_to")
BATCH = 2000


def _text(value: Any) -> str:  # how casework stores a JSON value: sorted keys, no spaces, UTF-8 as is
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _rows(conn: sa.Connection, columns: str) -> Any:
    last = 0
    while True:
        rows = conn.execute(sa.text(f"SELECT id, {columns} FROM {footprint().table('cases')} WHERE id > :last "
                                    f"ORDER BY id LIMIT {BATCH}"),
                            {"last": last}).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def upgrade() -> None:
    fp = footprint()
    with op.batch_alter_table(fp.name("cases"), schema=fp.schema) as batch:
        batch.add_column(sa.Column("breaches", sa.String(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("timer_refused", sa.String(200)))
    conn = op.get_bind()
    update = sa.text(f"UPDATE {fp.table('cases')} SET facts = :facts, priority = :priority, queue = :queue, "
                     "breaches = :breaches, timer_refused = :timer_refused WHERE id = :id")
    for case_id, facts_text, priority, queue in list(_rows(conn, "facts, priority, queue")):
        facts = json.loads(facts_text)
        if not any(k in facts for k in (*TRACKED, *ENTRY_ONLY)):
            continue
        breaches = sorted({str(b) for b in facts.pop("breaches", [])})
        values = {"id": case_id, "priority": int(facts.pop("priority", priority)), "queue": facts.pop("queue", queue),
                  "breaches": _text(breaches), "timer_refused": facts.pop("timer_refused", None)}
        for key in ENTRY_ONLY:
            facts.pop(key, None)
        conn.execute(update, {**values, "facts": _text(facts)})
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '3' WHERE key = 'schema'")


def downgrade() -> None:
    fp = footprint()
    conn = op.get_bind()
    update = sa.text(f"UPDATE {fp.table('cases')} SET facts = :facts WHERE id = :id")
    for case_id, facts_text, priority, queue, breaches, timer_refused in list(
            _rows(conn, "facts, priority, queue, breaches, timer_refused")):
        facts = json.loads(facts_text)
        kept = {"breaches": json.loads(breaches) or None, "priority": priority if priority != 1 else None,
                "queue": queue, "timer_refused": timer_refused}
        facts.update({k: v for k, v in kept.items() if v is not None})
        conn.execute(update, {"id": case_id, "facts": _text(facts)})
    with op.batch_alter_table(fp.name("cases"), schema=fp.schema) as batch:
        batch.drop_column("timer_refused")
        batch.drop_column("breaches")
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '2' WHERE key = 'schema'")
