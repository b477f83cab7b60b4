"""DDL as earlier schemas installed it (today's is in casework.store), for the migrations that install or restore it."""

# The append-only trigger as schema 2 installed it (schema 4 replaces it: casework.store.APPEND_ONLY_DDL).
SCHEMA2_APPEND_ONLY_DDL = (
    """CREATE OR REPLACE FUNCTION casework_audit_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP;
    END;
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",
    """CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION casework_audit_append_only()""",
)
SCHEMA2_DROP_APPEND_ONLY_DDL = ("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",)
