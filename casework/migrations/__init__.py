"""Alembic migrations of the casework schema (run with ``casework db upgrade``)."""
