"""Typed fact declarations: the ``facts:`` section of a policy.

A declaration names a fact, its type and whether it holds personal data. Expressions
(:mod:`casework.policies.expressions`) may read only declared facts, and read each as its type says;
a declared fact that casework does not know by name is normalised by its type when a case is opened
or an event brings it (a ``money`` fact refuses ``12.5`` given as a float, like ``amount`` does).
Who may write a fact stays with the roles' ``writes:``.

A policy without a ``facts:`` section declares the facts casework knows by name
(:data:`BUILTIN`, from :mod:`casework.facts`); the default ``policies.yaml`` lists them explicitly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from casework import facts as F
from casework.domain import SYSTEM_ONLY

FactType = Literal["money", "date", "datetime", "text", "int", "bool", "enum", "list", "evidence"]
CATCH_ALL = F.CATCH_ALL
# Named value lists an enum (or a list) may take its values from: the vocabulary's, and the kind's reasons.
VALUE_LISTS = ("reasons", "conditions", "evidence", "channels", "categories", "flags")


class FactDecl(BaseModel):
    """One fact: its type, where an ``enum`` or ``list`` takes its values, whether it is personal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FactType = Field(description="money (exact, minor units in expressions), date or datetime (a timestamp "
                           "in expressions), text, int, bool, enum (one of values), list (of values), evidence")
    values: str | list[str] | None = Field(
        None, description="for enum and list: a vocabulary list (reasons, conditions, evidence, channels, "
        "categories, flags) or the values themselves")
    personal: bool = Field(False, description="holds personal data: masked in show/history, redacted in exports")
    description: str | None = None


def _builtin() -> dict[str, FactDecl]:
    enums = {"reason": "reasons", "condition": "conditions", "channel": "channels"}
    out: dict[str, FactDecl] = {}
    for name in sorted(F.KNOWN_FACTS - SYSTEM_ONLY):
        if name in F.MONEY_FACTS:
            out[name] = FactDecl(type="money")
        elif name in F.DATE_FACTS:
            out[name] = FactDecl(type="date")
        elif name in F.INT_FACTS:
            out[name] = FactDecl(type="int")
        elif name == "evidence":
            out[name] = FactDecl(type="evidence")
        elif name in F.LIST_FACTS:
            out[name] = FactDecl(type="list", values="flags" if name == "flags" else None)
        elif name in enums:
            out[name] = FactDecl(type="enum", values=enums[name])
        else:
            out[name] = FactDecl(type="text")
    return out


BUILTIN: dict[str, FactDecl] = _builtin()

# The types a declared fact casework knows by name may have: the one its normaliser gives (a date fact
# may also be declared a datetime, an enum fact text, a text fact an enum).
COMPATIBLE: dict[str, frozenset[str]] = {
    "money": frozenset({"money"}), "date": frozenset({"date", "datetime"}), "int": frozenset({"int"}),
    "list": frozenset({"list"}), "evidence": frozenset({"evidence"}), "enum": frozenset({"enum", "text"}),
    "text": frozenset({"text", "enum"}),
}
