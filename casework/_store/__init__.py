"""The store's private parts. Nothing but ``casework/store.py`` imports this package.

- ``tables``: the tables (SQLModel models on casework's own MetaData) and the schema version;
- ``footprint``: where the tables are in one database (a PostgreSQL schema, a table prefix), the DDL
  the models cannot declare, and statements moved onto the tables of that footprint;
- ``codec``: the one mapping between a ``Case`` / ``AuditEntry`` and a row, column lists derived
  from the tables, and the one way a time is stored and read back;
- ``driver``: the connection, statements compiled from SQLAlchemy Core once per dialect and run on
  the driver's cursor, read and write scopes, and the one translation of database errors;
- ``rows``: every query and write, written once, for a read scope and a write transaction alike.
"""
