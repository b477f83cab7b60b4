"""Where casework's tables live in one database: a PostgreSQL schema, a table prefix, or neither.

Every table is declared once, in :mod:`casework._store.tables`, under its base name (``cases``,
``audit_entries``, …) on casework's own ``MetaData`` (never SQLModel's global one). A
:class:`Footprint` names them in one database: ``prefix + base name``, inside ``schema`` when one is
given (PostgreSQL only; on SQLite a host sharing the file can only be kept apart by a prefix). Index,
constraint, trigger and function names get the prefix too, so two footprints can share a schema.

Statements are written against the declared tables and compiled through :meth:`Footprint.adapt`,
which swaps in this footprint's tables; raw SQL (DDL, triggers, migrations) names tables through
:meth:`Footprint.table`. The default footprint (no schema, no prefix) is exactly the names casework
always used, so existing databases keep working unchanged.

Adding a table: declare it in ``tables.py`` and add it to ``TABLES`` there; the footprint, the
schema's creation and the host's autogenerate filter (:meth:`Footprint.owns`) follow from that.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import quoted_name, visitors

from casework._store.tables import FOREIGN_KEYS, TABLES, audit
from casework.errors import InvalidInput

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
MAX_PREFIX = 16  # the longest derived name (a trigger function) stays within PostgreSQL's 63 characters
VERSION_TABLE = "casework_alembic_version"  # casework's own Alembic stamp (the host's alembic_version is never touched)


def _checked(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value) or len(value) > limit:
        raise InvalidInput(f"{what} {value!r}: expected lowercase letters, digits and underscores, not starting "
                           f"with a digit, at most {limit} characters (e.g. 'casework' or 'cw_')", field=what,
                           value=value)
    return value


class Footprint:
    """Casework's tables in one database: their names (``prefix``) and PostgreSQL ``schema``.

    Cheap to make: its tables are built on first use, once per (schema, prefix) in a process.
    """

    def __init__(self, schema: str | None = None, prefix: str = "") -> None:
        self.schema = _checked(schema, "schema", 63) if schema else None
        self.prefix = _checked(prefix, "prefix", MAX_PREFIX) if prefix else ""
        self.default = self.schema is None and not self.prefix

    def __repr__(self) -> str:
        return f"Footprint(schema={self.schema!r}, prefix={self.prefix!r})"

    @property
    def metadata(self) -> sa.MetaData:
        """This footprint's tables (for ``create_all`` and Alembic's ``target_metadata``)."""
        return _built(self.schema, self.prefix)[0]

    @property
    def tables(self) -> list[sa.Table]:
        """This footprint's tables, in creation order."""
        return list(_built(self.schema, self.prefix)[1].values())

    @property
    def version(self) -> sa.Table:
        """casework's Alembic version table, as Alembic creates one (not in ``metadata``)."""
        return _built(self.schema, self.prefix)[2]

    # ---- names --------------------------------------------------------------------------------------
    def name(self, base: str) -> str:
        """A table's (index's, constraint's) name here, from its base name."""
        return self.prefix + base

    def table(self, base: str) -> str:
        """A table's name for raw SQL: prefixed, and qualified by the schema when there is one."""
        return f'"{self.schema}".{self.name(base)}' if self.schema else self.name(base)  # a schema may be a keyword

    @property
    def version_table(self) -> str:
        """The table holding casework's Alembic revision (in ``schema``)."""
        return self.name(VERSION_TABLE)

    def owns(self, name: str | None, schema: str | None = None) -> bool:
        """Whether the table of that name and schema is casework's: for a host's autogenerate filter
        (``include_name``), so the host's Alembic leaves casework's tables to casework."""
        if (schema or None) != self.schema or not name:
            return False
        return name == self.version_table or any(name == t.name for t in self.tables)

    def stamp(self, conn: sa.Connection, revision: str) -> None:
        """Record ``revision`` as casework's Alembic revision (creating the version table if need be)."""
        self.version.create(conn, checkfirst=True)
        conn.execute(self.version.delete())
        conn.execute(self.version.insert().values(version_num=revision))

    # ---- statements -------------------------------------------------------------------------------------
    def adapt(self, clause: Any) -> Any:
        """A statement written against the declared tables, on this footprint's tables instead."""
        if self.default:
            return clause  # the same names: the declared tables compile to the same SQL
        swap = _built(self.schema, self.prefix)[1]

        def replace(element: Any) -> Any:
            if isinstance(element, sa.Table):
                return swap.get(element)
            if isinstance(element, sa.Column) and isinstance(element.table, sa.Table) and element.table in swap:
                return swap[element.table].c[element.key]
            return None

        return visitors.replacement_traverse(clause, {}, replace)  # type: ignore[call-overload]

    # ---- DDL the tables cannot declare ----------------------------------------------------------------
    # Partial indexes are DDL (same text on both backends) rather than declared on a table: a dialect-specific
    # ``where=`` would load every dialect's module on import (slower CLI).
    def open_due_index(self) -> str:
        return (f"CREATE INDEX IF NOT EXISTS {self.name('ix_cases_open_state_due')} ON {self.table('cases')} "
                "(state, due_at) WHERE is_open AND due_at IS NOT NULL")

    def unsealed_index(self) -> str:
        return (f"CREATE INDEX IF NOT EXISTS {self.name('ix_audit_unsealed')} ON {self.table('audit_entries')} (id) "
                "WHERE gseq IS NULL")

    def drop_index(self, base: str) -> str:
        return f"DROP INDEX IF EXISTS {self.table(base)}"

    def function(self, base: str) -> str:
        """The append-only trigger function of a table (in the schema)."""
        name = f"casework_{self.name(base)}_append_only"
        return f'"{self.schema}".{name}' if self.schema else name

    def append_only(self, bases: tuple[str, ...]) -> tuple[str, ...]:
        """PostgreSQL: these tables refuse UPDATE, DELETE and TRUNCATE; the one update allowed is sealing an audit
        entry into the global chain: its gseq and link set once, nothing else changed."""
        same = [c.name for c in audit.columns if c.name not in ("gseq", "link")]
        sealing = f"""IF TG_OP = 'UPDATE' THEN
            IF OLD.gseq IS NULL AND NEW.gseq IS NOT NULL AND NEW.link IS NOT NULL
               AND ROW({', '.join(f'NEW.{c}' for c in same)})
                   IS NOT DISTINCT FROM ROW({', '.join(f'OLD.{c}' for c in same)}) THEN
                RETURN NEW;
            END IF;
        END IF;"""
        statements: list[str] = []
        for base in bases:
            table, function, name = self.table(base), self.function(base), self.name(base)
            statements += [
                f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
    BEGIN
        {sealing if base == "audit_entries" else ""}
        RAISE EXCEPTION '{name} is append-only: % refused', TG_OP;
    END;
    $$ LANGUAGE plpgsql""",
                f"DROP TRIGGER IF EXISTS {name}_append_only ON {table}",
                f"""CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {function}()""",
                f"DROP TRIGGER IF EXISTS {name}_no_truncate ON {table}",
                f"""CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
            ]
        return tuple(statements)

    def drop_append_only(self, bases: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"DROP TRIGGER IF EXISTS {self.name(base)}_{name} ON {self.table(base)}"
                     for base in bases for name in ("append_only", "no_truncate"))

@functools.cache
def _built(schema: str | None, prefix: str) -> tuple[sa.MetaData, dict[sa.Table, sa.Table], sa.Table]:
    """A footprint's tables: its MetaData, each declared table's copy there, and its version table."""
    fp = Footprint(schema, prefix)
    metadata = sa.MetaData(schema=schema)
    copies: dict[sa.Table, sa.Table] = {}
    for declared in TABLES:
        table = declared.to_metadata(metadata, name=fp.name(declared.name))  # in the metadata's schema
        declared_names = {tuple(c.name for c in i.columns): str(i.name) for i in declared.indexes}
        for index in table.indexes:  # named as declared (a copy would derive names from the new table's)
            index.name = quoted_name(fp.name(declared_names[tuple(c.name for c in index.columns)]), None)
        for constraint in table.constraints:
            if isinstance(constraint.name, str):
                constraint.name = fp.name(constraint.name)
        copies[declared] = table
    by_name = {t.name: t for t in copies.values()}
    for source, column, target, target_column in FOREIGN_KEYS:
        by_name[fp.name(source)].append_constraint(sa.ForeignKeyConstraint(
            [column], [by_name[fp.name(target)].c[target_column]]))
    version = sa.Table(fp.version_table, sa.MetaData(schema=schema),
                       sa.Column("version_num", sa.String(32), nullable=False),
                       sa.PrimaryKeyConstraint("version_num", name=f"{fp.version_table}_pkc"))
    return metadata, copies, version


DEFAULT = Footprint()
