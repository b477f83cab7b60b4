"""Checks of the ``facts:`` declarations, and of every expression of a policy against them.

Each problem is returned with the place it belongs (a document path, and for an expression the line
and column inside it); :mod:`casework.policies.validation` puts it at its FILE:LINE:COL.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any

from casework import facts as F
from casework.policies.declarations import BUILTIN, CATCH_ALL, COMPATIBLE, VALUE_LISTS, FactDecl
from casework.policies.expressions import CONTEXT, Expression, check, samples
from casework.policies.schema import PolicyDocument
from casework.values import did_you_mean

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Found:
    """A problem at ``loc`` (inside the expression there, at ``inner`` (line, column), if given)."""

    loc: Loc
    message: str
    inner: tuple[int, int] | None = None
    key: bool = False


def check_declarations(doc: PolicyDocument) -> list[Found]:
    """Each declared fact: a fact name, not a value the engine keeps, of the type casework gives a fact it
    knows by name, with the values an enum or a list takes from a list there is."""
    found: list[Found] = []
    for name, decl in (doc.facts or {}).items():
        loc: Loc = ("facts", name)
        if name == CATCH_ALL:
            if decl.type != "text":
                found.append(Found((*loc, "type"), f"the catch-all {CATCH_ALL!r} keeps other facts as text; declared "
                                   f"{decl.type}"))
        elif not name or not name.replace("_", "").isalnum():
            found.append(Found(loc, f"{name!r} is not a fact name; use letters, digits and underscores", key=True))
        elif name in CONTEXT:
            found.append(Found(loc, f"{name!r} is what an expression reads of the decision (now, role, roles, "
                               "actor), not a fact; name the fact otherwise", key=True))
        elif name in F.ENGINE_KEPT - {F.PAID_OUT}:
            found.append(Found(loc, f"{name!r} is kept by the engine, not a fact of the case", key=True))
        elif name in BUILTIN and decl.type not in COMPATIBLE[BUILTIN[name].type]:
            found.append(Found((*loc, "type"), f"{name} is {BUILTIN[name].type} (casework reads it so); declared "
                               f"{decl.type}"))
        if isinstance(decl.values, str) and decl.values not in VALUE_LISTS:
            found.append(Found((*loc, "values"), f"unknown value list {decl.values!r}"
                               f"{did_you_mean(decl.values, VALUE_LISTS) or '; lists: ' + ', '.join(VALUE_LISTS)}"))
        elif decl.type == "enum" and not decl.values:
            found.append(Found(loc, f"the enum {name} needs values: a list, or one of {', '.join(VALUE_LISTS)}"))
    return found


def fact_samples(doc: PolicyDocument) -> tuple[dict[str, str], dict[str, tuple[Any, ...]]]:
    """The declared facts' types, and two typed sample values of each (for checking expressions)."""
    declared = doc.declared()
    return ({n: d.type for n, d in declared.items()},
            {n: samples(d.type, _values(doc, d)) for n, d in declared.items()})


def known_values(doc: PolicyDocument, kind: str) -> dict[str, list[str]]:
    """The values each declared enum or list fact takes in a case of ``kind`` (a reason: the kind's reasons), and
    the categories the vocabulary names."""
    out = {n: v for n, d in doc.declared().items() if d.type in ("enum", "list") and (v := _values(doc, d))}
    kp = doc.kinds.get(kind)
    if kp is not None and kp.reasons is not None and "reason" in out:
        out["reason"] = list(kp.reasons)
    if doc.vocabulary.categories:
        out.setdefault("category", list(doc.vocabulary.categories))
    return out


def _values(doc: PolicyDocument, decl: FactDecl) -> list[str] | None:
    if isinstance(decl.values, list) or decl.values is None:
        return decl.values
    if decl.values == "reasons":
        return sorted({r for kp in doc.kinds.values() for r in kp.reasons or ()})
    return list(getattr(doc.vocabulary, decl.values, []) or [])


def check_expression(expr: Expression, loc: Loc, types: dict[str, str], samples_: dict[str, tuple[Any, ...]],
                     want: str) -> list[Found]:
    """``expr`` (at ``loc``) against the declared facts."""
    return [Found(loc, p.message, (p.line, p.column)) for p in check(expr, types, samples_, want)]


def check_template(template: str, loc: Loc) -> list[Found]:
    """A message template: well-formed, with named placeholders."""
    try:
        fields = [f for _, f, _, _ in Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return [Found(loc, f"malformed message template ({exc}); write a literal brace as {{{{ or }}}}")]
    if any(f == "" or f[0].isdigit() for f in fields):
        return [Found(loc, "use named placeholders, like {amount}, not {} or {0}")]
    return []
