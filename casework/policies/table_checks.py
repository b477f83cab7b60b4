"""``policy check`` on a decision table: its inputs and cells against the fact declarations, its overlaps and gaps.

Overlaps and gaps are found exactly, without sampling at random: each input's values are cut where a cell
of the table changes its answer (every value an enum or a cell names, one value no cell names for text;
each bound of a money or number cell, and the values just beside it), and every combination of those
values is tried against the rows (up to :data:`MAX_COMBINATIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from itertools import product
from typing import Any

from casework.policies.expression_checks import Found, Loc
from casework.policies.tables import Cell, TableGuard
from casework.values import did_you_mean

INPUT_TYPES = ("money", "int", "bool", "enum", "text")
MAX_COMBINATIONS = 20_000
OTHER = "(any other value)"  # a text value no cell names
MAX_GAPS = 3  # gaps listed (with how many more there are)


def check_table(table: TableGuard, loc: Loc, types: Mapping[str, str], known: Mapping[str, list[str]]
                ) -> tuple[list[Found], list[Found]]:
    """The errors and the warnings of ``table`` (at ``loc``); ``types``: the declared facts' types; ``known``: the
    values an enum (or a text fact the vocabulary lists) takes."""
    errors: list[Found] = []
    for i, name in enumerate(table.inputs):
        if name not in types:
            hint = did_you_mean(name, sorted(types)) or "; declare it under facts:"
            errors.append(Found((*loc, "inputs", i), f"input {name!r} is not a declared fact{hint}"))
        elif types[name] not in INPUT_TYPES:
            errors.append(Found((*loc, "inputs", i), f"input {name} is {types[name]}; a table matches on "
                                f"{', '.join(INPUT_TYPES)} facts (a date: use a window rule in the rows)"))
    for r, row in enumerate(table.rows):
        for name, cell in row.cells.items():
            kind = types.get(name)
            where = (*loc, "rows", r, name)
            if kind is None or kind not in INPUT_TYPES:
                continue
            if cell.numeric and kind not in ("money", "int"):
                errors.append(Found(where, f"{cell.text!r}: a comparison or range needs a money or int input; "
                                    f"{name} is {kind}"))
            elif cell.values is not None and kind in ("money", "int"):
                errors.append(Found(where, f"{cell.text!r}: {name} is {kind}; write a comparison ('> 500.00') "
                                    "or a range ('100.00..500.00')"))
            elif cell.values is not None and (options := _options(name, kind, known)) is not None:
                for value in cell.values:
                    if value not in options:
                        errors.append(Found(where, f"unknown {name} {value!r}{did_you_mean(value, options)}; "
                                            f"{name} is one of: {', '.join(options)}"))
    if errors:
        return errors, []
    return _coverage(table, loc, types, known)


def _options(name: str, kind: str, known: Mapping[str, list[str]]) -> list[str] | None:
    if kind == "bool":
        return ["true", "false"]
    return known.get(name) if kind == "enum" else None


def _bounds(cells: list[Cell]) -> list[Decimal]:
    return sorted({side[0] for c in cells for side in (c.low, c.high) if side is not None})


def _points(table: TableGuard, name: str, kind: str, known: Mapping[str, list[str]]) -> list[Any]:
    """The values of input ``name`` at which every cell of the table is tried."""
    cells = [row.cells[name] for row in table.rows if name in row.cells]
    if kind in ("money", "int"):
        step = Decimal("0.01") if kind == "money" else Decimal(1)
        bounds = _bounds(cells)
        return sorted({p for b in bounds for p in (b - step, b, b + step) if p >= 0} or {Decimal(0)})
    options = _options(name, kind, known)
    if options is not None:
        return list(options)
    named = sorted({v for c in cells for v in c.values or ()} | set(known.get(name, [])))
    return [*named, OTHER]


def _coverage(table: TableGuard, loc: Loc, types: Mapping[str, str], known: Mapping[str, list[str]]
              ) -> tuple[list[Found], list[Found]]:
    names = list(table.inputs)
    axes = [_points(table, n, types[n], known) for n in names]
    bounds = [_bounds([row.cells[n] for row in table.rows if n in row.cells]) for n in names]
    total = 1
    for axis in axes:
        total *= len(axis)
    if total > MAX_COMBINATIONS:
        return [], [Found((*loc, "inputs"), f"{total} combinations of the inputs' values: too many to check the "
                          "table for overlaps and gaps")]
    errors: list[Found] = []
    warnings: list[Found] = []
    first_for: set[int] = set()
    overlaps: set[tuple[int, int]] = set()
    holes: list[tuple[Any, ...]] = []
    for combo in product(*axes):
        facts = {n: ("\0other" if v == OTHER else v) for n, v in zip(names, combo, strict=True)}  # (no cell names it)
        hits = [i for i, row in enumerate(table.rows) if row.matches(facts)]
        if not hits:
            holes.append(combo)
            continue
        first_for.add(hits[0])
        if table.hit == "unique":
            for later in hits[1:]:
                if (hits[0], later) not in overlaps:
                    overlaps.add((hits[0], later))
                    both = _described(names, combo, bounds)
                    errors.append(Found((*loc, "rows", later), f"rows {hits[0] + 1} and {later + 1} of "
                                        f"{table.id or 'the table'} overlap: both match {both}; "
                                        "with hit: unique at most one row may match a case"))
    if table.hit == "first":
        for i in range(len(table.rows)):
            if i not in first_for:
                warnings.append(Found((*loc, "rows", i), f"row {i + 1} of {table.id or 'the table'} never decides: "
                                      "an earlier row matches every case it matches (hit: first)"))
    gaps = list(dict.fromkeys(_described(names, c, bounds) for c in _merged(holes, axes)))
    if gaps:
        more = f" and {len(gaps) - MAX_GAPS} more" if len(gaps) > MAX_GAPS else ""
        warnings.append(Found((*loc, "rows"), f"{table.id or 'the table'} has gaps: no row matches "
                              f"{'; '.join(gaps[:MAX_GAPS])}{more}; such a case is not judged by it (add a row, "
                              "or with hit: first a last row with no cells)", key=True))
    return errors, warnings


def _merged(holes: list[tuple[Any, ...]], axes: list[list[Any]]) -> list[tuple[Any, ...]]:
    """The combinations no row matches, an input that is a gap whatever its value written as ANY (None)."""
    for i, axis in enumerate(axes):
        groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for hole in holes:
            groups.setdefault(hole[:i] + hole[i + 1:], []).append(hole)
        holes = [hole for rest, group in groups.items()
                 for hole in ([(*rest[:i], None, *rest[i:])] if len(group) == len(axis) else group)]
    return holes


def _described(names: list[str], combo: tuple[Any, ...], bounds: list[list[Decimal]]) -> str:
    """A combination as people read it: a number as the band between the bounds around it."""
    return ", ".join(f"{n} {_band(v, b)}" if v is not None else f"any {n}"
                     for n, v, b in zip(names, combo, bounds, strict=True))


def _band(value: Any, bounds: list[Decimal]) -> str:
    if not isinstance(value, Decimal):
        return str(value)
    if value in bounds:
        return str(value)
    below = [b for b in bounds if b < value]
    above = [b for b in bounds if b > value]
    return " and ".join([*([f"above {below[-1]}"] if below else []), *([f"below {above[0]}"] if above else [])])
