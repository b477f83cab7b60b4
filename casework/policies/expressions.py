"""Policy expressions: CEL (the Common Expression Language), compiled once per policy version.

An expression is written in a guard (``guard: expr``, ``expr: ...``) or as a guard's ``when:``. It is
compiled by the maintained, Rust-backed ``cel`` package (PyPI ``common-expression-language``), never
``eval``ed and never parsed by casework; CEL has no loops or recursion, so every expression ends.

What an expression sees: each declared fact it names (see :mod:`casework.policies.declarations`), as
its type says, ``now`` (the instant of the decision), and who acts: ``role`` (the acting role),
``roles`` (it and every role it inherits: ``'supervisor' in roles``) and ``actor`` (the actor's id):

- money as **whole minor units** (``"500.00"`` is ``50000``), exact: no binary float ever decides
  money. A money literal is written ``money('500.00')``; money is compared with, added to and
  subtracted from money only (``policy check`` refuses ``amount > 500.00``);
- a date or datetime as a timestamp (a bare date is midnight in the policy's zone); ``date('2026-11-11')``
  is one, ``days(14)`` (or ``duration('24h')``) a span: ``now - delivered <= days(14)``;
- ``latest(a, b, ...)`` and ``earliest(...)``: the latest (earliest) of several dates, or of a list
  of them (``now - latest(delivered, redelivered) <= days(7)``); a window that depends on a fact is
  ``days(category == 'electronics' ? 15 : 7)``;
- int, bool and text as themselves; an enum as its text; a list of values as a list of text;
  ``evidence`` as the list of the evidence types present (``'photo' in evidence``).

``policy check`` checks each expression against the declarations without a parser of its own: CEL's
compiler gives the syntax errors (line and column) and the names an expression uses (a fact that is
not declared, a function that does not exist: errors with "did you mean"); types are checked by
running the compiled expression on typed sample values of the facts it reads, in which money is an
opaque value (a CEL duration) that nothing but money combines with, so a money-against-date or
money-against-number comparison is a type error there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import product
from typing import TYPE_CHECKING, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

if TYPE_CHECKING:
    import cel

from casework.policies.expression_functions import CHECK_FUNCTIONS, OWN_FUNCTIONS, from_minor, functions, to_minor
from casework.values import did_you_mean, parse_instant

# Names CEL itself defines (operators appear as _+_, @in, !_ ...), and the ones casework adds.
CEL_FUNCTIONS = frozenset({
    "size", "int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration", "dyn", "type",
    "matches", "contains", "startsWith", "endsWith", "has", "all", "exists", "exists_one", "map", "filter",
    "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours",
    "getMinutes", "getSeconds", "getMilliseconds",
})
FUNCTIONS = CEL_FUNCTIONS | set(OWN_FUNCTIONS)
NOW = "now"  # the instant of the decision, always there
WHO = ("role", "roles", "actor")  # who acts: the acting role, it and the roles it inherits, the actor's id
CONTEXT = frozenset({NOW, *WHO})  # names every expression may use besides the declared facts
# Names bound by a macro (the ``e`` of ``evidence.exists(e, e == 'photo')``) are not facts.
_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")
_FAILED = re.compile(r"Function '(\w+)' error: .*?(?:ValueError|TypeError|InvalidInput): (.*?)"
                     r"(?:\. Check function|Python function|$)")


class Expression:
    """A CEL expression from a policy, compiled once; its facts, its functions, its syntax error if any."""

    __slots__ = ("_plan", "_types", "bound", "error", "functions", "own", "program", "text", "variables", "who")

    def __init__(self, text: str) -> None:
        self.text = text
        self.error: tuple[int, int, str] | None = None  # (line, column, message) inside the expression
        self.program: cel.Program | None = None
        self.variables: frozenset[str] = frozenset()
        self.functions: frozenset[str] = frozenset()
        self.bound: frozenset[str] = frozenset()
        self.own: tuple[str, ...] = ()  # casework's functions it calls (each given to CEL costs a little)
        self.who = False  # whether it reads who acts (role, roles, actor)
        self._types: Mapping[str, str] | None = None  # the declarations the reading plan was made for
        self._plan: tuple[tuple[str, str | None], ...] = ()
        import cel  # here, not above: the package loads its CLI (prompt_toolkit), which a policy with no
        # expression (and `casework show`) should not pay for

        try:
            self.program = cel.compile(text)
        except ValueError as exc:
            found = _CEL_POSITION.search(str(exc))
            line, col, message = (int(found[1]), int(found[2]), found[3]) if found else (1, 1, str(exc))
            self.error = (line, col, message.strip())
            return
        self.bound = frozenset(_BOUND.findall(text))
        self.variables = frozenset(self.program.variables()) - self.bound
        self.functions = frozenset(f for f in self.program.functions() if f[:1].isalpha())
        self.own = tuple(f for f in OWN_FUNCTIONS if f in self.functions)
        self.who = not self.variables.isdisjoint(WHO)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def reads(self) -> frozenset[str]:
        """The facts the expression reads (every name it uses but ``now`` and who acts)."""
        return self.variables - CONTEXT

    def judges(self) -> frozenset[str]:
        """The facts it reads that a later event may not change: all but evidence, which accumulates (what was
        judged present stays present, as for the evidence guard)."""
        return self.reads() - {"evidence"}

    def where(self, name: str) -> tuple[int, int]:
        """Line and column of the first use of ``name`` in the expression (1, 1 when not found)."""
        found = re.search(rf"(?<![\w.'\"]){re.escape(name)}\b", self.text)
        if found is None:
            return 1, 1
        before = self.text[:found.start()]
        return before.count("\n") + 1, found.start() - (before.rfind("\n") + 1) + 1

    # ---- evaluating ----------------------------------------------------------------------------
    def _planned(self, types: Mapping[str, str]) -> tuple[tuple[str, str | None], ...]:
        """What :meth:`run` reads, in order: each name with its declared type (None: ``now`` or who acts); made
        once per policy version (its declarations), not per decision."""
        self._plan = tuple((name, None if name in CONTEXT else types.get(name, "text"))
                           for name in sorted(self.variables))
        self._types = types
        return self._plan

    def run(self, facts: Mapping[str, Any], types: Mapping[str, str], now: datetime, tz: tzinfo,
            who: Mapping[str, Any] | None = None, memo: dict[str, tuple[Any, Any]] | None = None) -> Outcome:
        """The expression's value on ``facts``, with the values it read; a fact it reads that the case does not
        hold is ``missing`` (a list reads as empty, a bool as false), an error is ``error``. ``who``: the values
        of ``role``, ``roles`` and ``actor`` (needed when :attr:`who` is true). ``memo``: the facts already read
        in this decision (name -> value, as shown), shared by its expressions so each fact is converted once."""
        assert self.program is not None, "an expression with a syntax error is refused when the policy loads"
        values: dict[str, Any] = {}
        shown: dict[str, Any] = {}
        missing: list[str] = []
        for name, kind in (self._plan if self._types is types else self._planned(types)):
            if kind is None:  # now, or who acts
                values[name] = now.astimezone(UTC) if name == NOW else (who or {}).get(name, "")
                if name != NOW:
                    shown[name] = values[name]
                continue
            if memo is not None and name in memo:
                values[name], shown[name] = memo[name]
                continue
            raw = facts.get(name)
            if raw is None:
                if kind in ("list", "evidence", "bool"):
                    raw = False if kind == "bool" else []
                else:
                    missing.append(name)
                    continue
            try:
                value = _READ[kind](raw, name, tz)
            except (ValueError, TypeError, KeyError) as exc:
                return Outcome(None, shown, (), f"{name} {raw!r} is not a {kind}: {exc}")
            # as people read it: money as 600.00, evidence as its types (what the expression got), else as given
            seen = from_minor(value) if kind == "money" else value if kind == "evidence" else raw
            values[name], shown[name] = value, seen
            if memo is not None:
                memo[name] = (value, seen)
        if missing:
            return Outcome(None, shown, tuple(missing))  # (in name order, as the plan reads them)
        if self.own:
            given = functions(tz)
            values.update((f, given[f]) for f in self.own)
        try:
            return Outcome(self.program.execute(values), shown)
        except (RuntimeError, TypeError, ValueError, OverflowError, ZeroDivisionError, LookupError) as exc:
            # (LookupError: an index past a list's end, a key a map lacks: flags[0] on a case with no flags)
            return Outcome(None, shown, (), str(exc).split(". ")[0])

    def shown(self, facts: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
        """The facts the expression reads that the case holds, as people read them (money ``600.00``)."""
        out = {}
        for name in self.reads():
            raw = facts.get(name)
            if raw is not None:
                try:
                    out[name] = _shown(types.get(name, "text"), raw)
                except (ValueError, TypeError, KeyError):
                    out[name] = raw
        return out

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(min_length=1),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda e: e.text))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        return {"type": "string", "minLength": 1,
                "description": "a CEL expression on the declared facts, e.g. amount > money('500.00')"}


@dataclass(frozen=True)
class Outcome:
    """What an expression gave: its value, the facts it read (as people read them), what was missing or wrong."""

    value: Any
    values: Mapping[str, Any] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    error: str | None = None


def _money(raw: Any, name: str, tz: tzinfo) -> int:
    return to_minor(raw)


def _instant(raw: Any, name: str, tz: tzinfo) -> datetime:
    # As UTC: the binding converts only fixed-offset zones (the instant is the same).
    return parse_instant(raw, name, tz).astimezone(UTC)


def _list(raw: Any, name: str, tz: tzinfo) -> list[str]:
    return [str(v) for v in raw]


def _evidence(raw: Any, name: str, tz: tzinfo) -> list[str]:
    return [e["type"] if isinstance(e, Mapping) else str(e).split("=", 1)[0] for e in raw]


def _bool(raw: Any, name: str, tz: tzinfo) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):  # (a bool given as text by the CLI's --fact)
        return bool(raw == "true")
    raise ValueError("write true or false")


_READ: dict[str, Callable[[Any, str, tzinfo], Any]] = {
    "money": _money, "date": _instant, "datetime": _instant, "int": lambda raw, name, tz: int(raw),
    "bool": _bool, "text": lambda raw, name, tz: str(raw), "enum": lambda raw, name, tz: str(raw),
    "list": _list, "evidence": _evidence,
}


def _shown(kind: str, raw: Any) -> Any:
    if kind == "evidence":
        return _evidence(raw, "", UTC)
    if kind == "money":
        return from_minor(to_minor(raw))
    return raw


# ---- checking ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A problem of one expression, at a line and column inside it."""

    line: int
    column: int
    message: str


def check(expr: Expression, types: Mapping[str, str], samples: Mapping[str, tuple[Any, ...]],
          want: str = "a condition") -> list[Problem]:
    """Every problem of ``expr`` against the declared facts (``types``: name -> type; ``samples``: two typed
    sample values of each, see :func:`samples`): its syntax; each name that is not a declared fact or
    ``now``; each function that does not exist; type errors and a result that is not true or false."""
    if expr.error is not None:
        return [Problem(*expr.error)]
    problems: list[Problem] = []
    declared = sorted({*types, *CONTEXT})
    for name in sorted(expr.variables - set(declared)):
        problems.append(Problem(*expr.where(name), f"{name!r} is not a declared fact"
                                f"{did_you_mean(name, declared) or '; declare it under facts:'}"))
    for name in sorted(expr.functions - FUNCTIONS):
        hint = did_you_mean(name, sorted(FUNCTIONS)) or "; casework adds money(), date(), days(), latest(), earliest()"
        problems.append(Problem(*expr.where(name), f"unknown function {name!r}{hint}"))
    if problems:
        return problems
    return _probe(expr, types, samples, want)


def _probe(expr: Expression, types: Mapping[str, str], samples: Mapping[str, tuple[Any, ...]],
           want: str) -> list[Problem]:
    """Run ``expr`` on typed samples of its facts (every combination, at most 64): the first type error, or a
    result that is not a boolean."""
    assert expr.program is not None
    names = sorted(expr.reads())
    typed = {name: f"{name} is {_article(types[name])}" for name in names}
    for values in _combinations(names, samples):
        values.update(_CHECK_CONTEXT)
        values.update(CHECK_FUNCTIONS)
        try:
            result = expr.program.execute(values)
        except TypeError as exc:
            detail = "" if "No such overload" in str(exc) else f" ({str(exc).split('. ')[0]})"
            return [Problem(1, 1, f"type error{detail}: {', '.join(typed.values()) or 'it reads no facts'}; money "
                            "is compared with, added to and subtracted from money only (write money('500.00')), "
                            "a date with dates and now, a span with days(n) or duration('24h')")]
        except RuntimeError as exc:
            failed = _FAILED.search(str(exc))
            if failed is not None:  # money('5.0x'), date('tomorrow'), latest(amount): not what the function takes
                return [Problem(*expr.where(failed[1]), f"{failed[1]}(): {failed[2].strip()}")]
            continue  # a value-dependent failure (an index out of range): not the expression's type
        except (ValueError, OverflowError, ZeroDivisionError, LookupError):  # flags[0] on the empty sample
            continue
        if not isinstance(result, bool):
            what = {timedelta: "money or a span", datetime: "a date"}.get(type(result), type(result).__name__)
            return [Problem(1, 1, f"{want} must be true or false; this gives {what}")]
    return []


def _combinations(names: list[str], samples: Mapping[str, tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    if len(names) <= 6:
        for combo in product(*(samples[n] for n in names)):
            yield dict(zip(names, combo, strict=True))
        return
    for i in range(64):  # a pattern per bit, cycling: every fact sees both samples against the others
        yield {n: samples[n][(i >> (k % 6)) & 1] for k, n in enumerate(names)}


def _article(kind: str) -> str:
    return {"int": "an int", "enum": "an enum (text)", "evidence": "evidence (a list of types)",
            "list": "a list of text"}.get(kind, f"a {kind}" if kind != "money" else "money")


_CHECK_CONTEXT: dict[str, Any] = {NOW: datetime(2050, 1, 1, tzinfo=UTC), "role": "agent", "roles": ["agent"],
                                  "actor": "alice"}


def samples(kind: str, values: list[str] | None) -> tuple[Any, Any]:
    """Two sample values of a fact of ``kind`` (an enum's or list's values given), as a check sees them."""
    if kind == "money":
        return timedelta(0), timedelta(seconds=10**9)
    if kind in ("date", "datetime"):
        return datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    if kind == "int":
        return 0, 10**6
    if kind == "bool":
        return False, True
    if kind in ("list", "evidence"):
        return [], list(values or ["x"])
    if kind == "enum" and values:
        return values[0], values[-1]
    return "", "x"
