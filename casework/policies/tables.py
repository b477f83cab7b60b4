"""Decision tables (``guard: table``): the matrix rules, one row per combination, with the hit policy stated.

"A return's window by category × reason":

.. code-block:: yaml

    - guard: table
      id: return_window
      hit: unique                       # at most one row matches a case (first: the first that matches)
      inputs: [reason, category]        # the facts the rows match on
      rule: {guard: window, since: delivered}   # what every row's rule shares
      rows:
        - {reason: no_reason, category: electronics, within: 15d}
        - {reason: no_reason, category: "!electronics", within: 7d}
        - {reason: [defective, wrong_item], within: 14d}

A row's keys that name an input are its cells; the others complete ``rule`` into the row's guard (any
guard kind; ``then: pass`` for a row that requires nothing). A cell is a value, a list of values, ``"*"``
(or left out: any value), ``"!value"`` (any other value), a comparison on money or a number
(``"> 500.00"``, ``"<= 500.00"``) or an inclusive range (``"100.00..500.00"``). A fact the case does not
hold matches only ``*``. The row that matches decides, by its guard; a case no row matches is not judged
by the table. ``policy check`` types each cell against the facts' declarations and warns about gaps (a
combination no row matches) and, for ``hit: first``, rows that an earlier row always wins; for
``hit: unique`` two rows that can match the same case are an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import core_schema

from casework.domain import Verdict
from casework.policies.context import GuardContext
from casework.policies.guard_base import GuardBase

if TYPE_CHECKING:  # the union of every guard kind (bound in guard_kinds)
    from casework.policies.guard_kinds import Guard

_COMPARE = re.compile(r"^\s*(<=|>=|<|>)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")
_RANGE = re.compile(r"^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*\.\.\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")
ANY = "*"
PASS = "pass"


@dataclass(frozen=True)
class Cell:
    """One cell of a row: the values it matches, or bounds on a number (``low``/``high``, each inclusive or not)."""

    text: str
    values: tuple[str, ...] | None = None  # matches one of these (as text); None: a bound or any
    negated: bool = False  # "!x": any value but these
    low: tuple[Decimal, bool] | None = None  # (bound, inclusive)
    high: tuple[Decimal, bool] | None = None
    listed: bool = False  # written as a YAML list (dumped as one)

    @property
    def numeric(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def any(self) -> bool:
        return self.values is None and not self.numeric

    @classmethod
    def parse(cls, raw: Any) -> Cell:
        if isinstance(raw, list):
            if not raw or not all(isinstance(v, str | int | bool) for v in raw):
                raise ValueError("a list cell holds one or more values, like [defective, wrong_item]")
            values = tuple(_text(v) for v in raw)
            return cls(f"[{', '.join(values)}]", values, listed=True)  # as YAML's flow style writes it
        if not isinstance(raw, str | int | bool) or isinstance(raw, float):
            raise ValueError(f"{raw!r} is not a cell: write a value, a list, '*', '!value', '> 500.00' or "
                             "'100.00..500.00' (money as a quoted decimal string)")
        text = _text(raw)
        if text.strip() == ANY:
            return cls(text)
        if (found := _COMPARE.match(text)) is not None:
            op, bound = found[1], Decimal(found[2])
            side = (bound, "=" in op)
            return cls(text, low=side) if op.startswith(">") else cls(text, high=side)
        if (found := _RANGE.match(text)) is not None:
            low, high = Decimal(found[1]), Decimal(found[2])
            if high < low:
                raise ValueError(f"{text!r}: the range ends before it begins")
            return cls(text, low=(low, True), high=(high, True))
        if text.startswith("!"):
            return cls(text, tuple(v.strip() for v in text[1:].split(",")), negated=True)
        return cls(text, (text,))

    def matches(self, value: Any) -> bool:
        if self.any:
            return True
        if value is None:
            return False
        if self.values is not None:
            return (_text(value) in self.values) != self.negated
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return False
        return _within(number, self.low, self.high)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Cell) else cls.parse(v),
            serialization=core_schema.plain_serializer_function_ser_schema(_dumped))


def _dumped(cell: Cell) -> str | list[str]:
    """A cell as the policy's YAML wrote it: a list cell as its list, any other as its text."""
    return list(cell.values or ()) if cell.listed else cell.text


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _within(number: Decimal, low: tuple[Decimal, bool] | None, high: tuple[Decimal, bool] | None) -> bool:
    if low is not None and (number < low[0] or (number == low[0] and not low[1])):
        return False
    return high is None or number < high[0] or (number == high[0] and high[1])


class TableRow(BaseModel):
    """A row as the table reads it: its cells by input, and its guard (None: ``then: pass``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cells: dict[str, Cell] = Field(default_factory=dict)
    then: Guard | None = None

    @field_validator("then", mode="before")
    @classmethod
    def _then(cls, value: Any) -> Any:
        if value == PASS:
            raise ValueError(f"then: {PASS} stands alone: a row that requires nothing has only its cells beside it")
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"then takes {PASS} (a row that requires nothing); a row that refuses says its rule "
                             "beside its cells (e.g. within: 7d)")
        return value

    def matches(self, facts: dict[str, Any] | Any) -> bool:
        return all(cell.matches(facts.get(name)) for name, cell in self.cells.items())


# A cell as an editor sees it: a value, or a non-empty list of values (money as a quoted decimal string).
_VALUE = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]}
CELL_SCHEMA = {"anyOf": [*_VALUE["anyOf"], {"type": "array", "minItems": 1, "items": _VALUE}],
               "description": "a cell: a value, a list, '*', '!value', '> 500.00' or '100.00..500.00'"}
_ROWS_SCHEMA: dict[str, Any] = {"type": "array", "minItems": 1, "items": {
    "type": "object", "additionalProperties": CELL_SCHEMA,
    "description": "cells by input (a value, a list, '*', '!value', '> 500.00', '100.00..500.00') and the rest "
    "of the row's rule (e.g. within: 15d), or then: pass"}}
_RULE_SCHEMA = {"type": "object", "properties": {"guard": {"type": "string"}}, "required": ["guard"],
                "description": "what every row's guard shares, e.g. {guard: window, since: delivered}"}


def completed_schemas(defs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schemas of a table's ``rule`` and of one row, completed from the guard kinds' own schemas
    (``defs``: the policy schema's ``$defs``), so an editor completes a row's and a rule's fields (``within``,
    ``any_of``, ``id``...) with their descriptions. A rule's field must be a guard's field; a row's other keys
    are cells (an input's name is the policy's own, so the schema cannot know it: ``policy check`` does)."""
    kinds: list[str] = []
    fields: dict[str, list[Any]] = {}
    for model in defs.values():
        props = model.get("properties", {})
        kind = props.get("guard", {}).get("const")
        if not isinstance(kind, str) or kind == "table":
            continue
        kinds.append(kind)
        for name, schema in props.items():
            if name != "guard" and schema not in fields.setdefault(name, []):
                fields[name].append(schema)
    merged = {name: options[0] if len(options) == 1 else {"anyOf": options} for name, options in sorted(fields.items())}
    merged["guard"] = {"enum": sorted(kinds), "description": "the kind of guard (every row's, unless a row says)"}
    rule = {**_RULE_SCHEMA, "properties": merged, "additionalProperties": False}
    then = {"anyOf": [{"const": PASS}, {"type": "object"}],
            "description": "pass: the row requires nothing (alone beside its cells); or the row's whole rule"}
    row = {**_ROWS_SCHEMA["items"], "properties": {
        **{name: {"$ref": f"{RULE_DEF}/properties/{name}"} for name in merged}, "then": then}}
    return rule, row


RULE_DEF = "#/$defs/TableRule"  # where the policy schema keeps a table rule's schema (a row refers to its fields)


class TableGuard(GuardBase):
    """A decision table: the first (or the only) row whose cells match the case decides, by its guard."""

    guard: Literal["table"]
    hit: Literal["first", "unique"] = Field(description="first: the first row that matches decides; unique: at "
                                            "most one row may match a case (overlaps are errors)")
    inputs: list[str] = Field(min_length=1, description="the facts the rows match on, e.g. [category, reason]")
    rule: Annotated[dict[str, Any], WithJsonSchema(_RULE_SCHEMA)] = Field(default_factory=dict)
    rows: Annotated[list[TableRow], WithJsonSchema(_ROWS_SCHEMA)] = Field(min_length=1)
    code: SkipJsonSchema[str] = "ok"  # (a refusal carries its row's rule's code)

    @model_validator(mode="before")
    @classmethod
    def _rows(cls, data: Any) -> Any:
        """Each row as written (cells and the rest of its rule side by side) as a TableRow."""
        if isinstance(data, dict) and "code" in data:
            raise ValueError("a table's refusals carry the code of its row's rule: give code: in rule: or in a row")
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            return data
        inputs: list[Any] = data["inputs"] if isinstance(data.get("inputs"), list) else []
        rule: dict[str, Any] = data["rule"] if isinstance(data.get("rule"), dict) else {}
        rows = []
        for row in data["rows"]:
            if not isinstance(row, dict) or isinstance(row.get("cells"), dict):
                rows.append(row)
                continue
            rest = {k: v for k, v in row.items() if k not in inputs}
            then: Any = None if rest == {"then": PASS} else rest.get("then", {**rule, **rest})
            rows.append({"cells": {k: v for k, v in row.items() if k in inputs}, "then": then})
        return {**data, "rows": rows}

    def judges(self) -> frozenset[str]:
        return super().judges().union(self.inputs, *(r.then.judges() for r in self.rows if r.then is not None))

    def row_for(self, facts: Any) -> int | None:
        """The index of the row that decides for ``facts`` (None: no row matches)."""
        return next((i for i, row in enumerate(self.rows) if row.matches(facts)), None)

    def applies(self, ctx: GuardContext) -> bool:
        return super().applies(ctx) and self.row_for(ctx.facts) is not None

    def evaluate(self, ctx: GuardContext) -> Verdict:
        index = self.row_for(ctx.facts)
        if index is None:
            return self.verdict(True, "no row matches this case")
        then = self.rows[index].then
        if then is None or not then.applies(ctx):
            return self.verdict(True, f"row {index + 1} requires nothing here", table_row=index + 1)
        v = then.evaluate(ctx)
        details = {**v.details, "table_row": index + 1}
        return Verdict(then.id or self.id or "table", v.passed, v.code, v.message, details, self.written_at)


def bind(guard: Any) -> None:
    """Resolve ``Guard`` (the union of every guard kind, made in guard_kinds) in a table's rows."""
    for model in (TableRow, TableGuard):
        model.model_rebuild(_types_namespace={"Guard": guard})
