"""The guards a guard holds: a combinator's branches (``all_of``/``any_of``/``not``) and a decision table's rows.

One walk for the tools that look inside a rule (``policy check``'s lint, ``policy test --coverage``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from casework.policies.combinators import AllOfGuard, AnyOfGuard, NotGuard
from casework.policies.expression_checks import Loc
from casework.policies.guard_base import GuardBase
from casework.policies.tables import Cell, TableGuard


@dataclass(frozen=True)
class Inner:
    """A guard at ``loc`` (the guard itself or one it holds); ``row``: its table row (1-based) and ``cells`` that
    row's cells, when it is a row's rule (``guard`` None: a row that is ``then: pass``)."""

    guard: GuardBase | None
    loc: Loc
    name: str
    row: int | None = None
    cells: Mapping[str, Cell] = field(default_factory=dict)


def row_name(table: TableGuard, index: int) -> str:
    """The guard a row's verdict names: the row's id, else the table's."""
    then = table.rows[index].then
    return (then.id if then is not None else None) or table.id or table.guard_name()


def walk(guard: GuardBase, loc: Loc) -> Iterator[Inner]:
    """``guard`` and, depth first in the order written, every guard it holds."""
    yield Inner(guard, loc, guard.id or guard.guard_name())
    if isinstance(guard, NotGuard):
        yield from walk(guard.rule, (*loc, "rule"))
    elif isinstance(guard, AllOfGuard | AnyOfGuard):
        for i, g in enumerate(guard.guards):
            yield from walk(g, (*loc, "guards", i))
    elif isinstance(guard, TableGuard):
        for n, row in enumerate(guard.rows):
            where = (*loc, "rows", n)
            if row.then is None:
                yield Inner(None, where, row_name(guard, n), n + 1, row.cells)
                continue
            yield Inner(row.then, where, row_name(guard, n), n + 1, row.cells)
            held = walk(row.then, where)
            next(held)  # (the row's rule itself, just given with its row)
            yield from held
