"""DDL as earlier schemas installed it (today's is the footprint's), for the migrations that install or restore it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from casework.store import Footprint


def schema2_append_only(fp: Footprint) -> tuple[str, ...]:
    """The append-only trigger as schema 2 installed it (schema 4 replaces it: ``Footprint.append_only``)."""
    table, function = fp.name("audit_entries"), schema2_function(fp)
    return (
        f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{table} is append-only: % refused', TG_OP;
    END;
    $$ LANGUAGE plpgsql""",
        *schema2_drop_append_only(fp),
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {fp.table("audit_entries")}
    FOR EACH ROW EXECUTE FUNCTION {function}()""",
    )


def schema2_drop_append_only(fp: Footprint) -> tuple[str, ...]:
    return (f"DROP TRIGGER IF EXISTS {fp.name('audit_entries')}_append_only ON {fp.table('audit_entries')}",)


def schema2_function(fp: Footprint) -> str:
    """Schema 2's trigger function (schema 4 drops it)."""
    name = f"casework_{fp.name('audit')}_append_only"
    return f'"{fp.schema}".{name}' if fp.schema else name
