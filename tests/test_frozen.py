"""quick_init: the faster __init__ of casework's frozen value classes behaves as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casework.domain import AuditEntry, Case, Decision, PolicyRef, Tracking, Verdict
from casework.frozen import quick_init
from casework.policies.context import GuardContext
from casework.transition import Transition


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str | None
    c: tuple[int, ...] = ()
    d: dict[str, Any] = field(default_factory=dict)
    e: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Quick:
    a: int
    b: str | None
    c: tuple[int, ...] = ()
    d: dict[str, Any] = field(default_factory=dict)
    e: str | None = None


def test_the_signature_is_the_dataclasses_own() -> None:
    assert str(inspect.signature(Quick)) == str(inspect.signature(Plain))
    for cls in (Verdict, Decision, Case, AuditEntry, Tracking, PolicyRef, GuardContext, Transition):
        assert list(inspect.signature(cls).parameters) == [f.name for f in dataclasses.fields(cls)], cls


@given(st.integers(), st.none() | st.text(max_size=5), st.data())
def test_instances_are_made_as_the_dataclass_makes_them(a: int, b: str | None, data: st.DataObject) -> None:
    kwargs: dict[str, Any] = data.draw(st.fixed_dictionaries({}, optional={
        "c": st.tuples(st.integers()), "d": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        "e": st.text(max_size=3)}))
    plain, quick = Plain(a, b, **kwargs), Quick(a, b, **kwargs)
    assert dataclasses.asdict(plain) == dataclasses.asdict(quick)
    assert repr(plain).replace("Plain", "Quick") == repr(quick)
    by_name = Quick(b=b, a=a, **kwargs)
    assert by_name == quick and pickle.loads(pickle.dumps(quick)) == quick
    assert dataclasses.replace(quick, a=a + 1).a == a + 1


def test_a_default_factory_makes_a_new_value_each_time_and_fields_stay_frozen() -> None:
    one, two = Quick(1, None), Quick(1, None)
    assert one.d == {} and one.d is not two.d
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.a = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'b'"):
        Quick(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Quick(1, None, z=3)  # type: ignore[call-arg]
    assert Verdict("roles", True, None, "ok").details == {}


def test_only_frozen_slotted_dataclasses_are_accepted() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    for cls in (NoSlots, NotFrozen, int):
        with pytest.raises(TypeError, match="quick_init needs a frozen dataclass with slots"):
            quick_init(cls)
