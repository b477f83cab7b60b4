"""A faster ``__init__`` for casework's frozen value classes (cases, entries, verdicts: made on every fire).

A frozen dataclass's generated ``__init__`` stores each field with ``object.__setattr__(self, name, value)``
(it must get past the class's own ``__setattr__``, which refuses), and that makes a bound method per field:
measured with ``bench/callgrind_fire.py``, some 1,700 instructions a field, 30,000 for a ``Case``, a fifth of
an ``approve`` fire's instructions in all. With ``__slots__`` every field is a member descriptor on the class
(how slots are documented to work), whose ``__set__`` stores the value directly, for a fraction of that.

:func:`quick_init` gives a frozen, slotted dataclass an ``__init__`` of the very same signature (names, order,
defaults, default factories) that stores through those descriptors. Everything else is still the dataclass's
own: assigning to a field raises ``FrozenInstanceError``, ``__eq__``, ``__hash__``, ``__repr__``,
``dataclasses.replace`` and pickling are unchanged.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar, cast

T = TypeVar("T")


class _Absent:
    """The default of a field with a default factory: the factory is called when it is not given."""

    def __repr__(self) -> str:
        return "<factory>"


_ABSENT = _Absent()


def quick_init(cls: type[T]) -> type[T]:
    """Replace ``cls.__init__`` (a frozen dataclass with slots) by one storing through the slot descriptors.

    >>> from dataclasses import dataclass, field
    >>> @quick_init
    ... @dataclass(frozen=True, slots=True)
    ... class Point:
    ...     x: int
    ...     tags: list[str] = field(default_factory=list)
    >>> Point(1), Point(x=2, tags=["a"])
    (Point(x=1, tags=[]), Point(x=2, tags=['a']))
    """
    params = getattr(cls, "__dataclass_params__", None)
    fields = dataclasses.fields(cast(Any, cls)) if params is not None else ()
    if params is None or not params.frozen or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__") \
            or any(not f.init or f.kw_only for f in fields):
        raise TypeError(f"quick_init needs a frozen dataclass with slots, every field in __init__ by position "
                        f"or name and no __post_init__; {cls.__qualname__} is not one")
    space: dict[str, Any] = {"_ABSENT": _ABSENT}
    signature, body = ["self"], []
    for f in fields:
        space[f"_set_{f.name}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        value = f.name
        if f.default is not dataclasses.MISSING:
            space[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            space[f"_factory_{f.name}"] = f.default_factory
            signature.append(f"{f.name}=_ABSENT")
            value = f"_factory_{f.name}() if {f.name} is _ABSENT else {f.name}"
        else:
            signature.append(f.name)
        body.append(f"    _set_{f.name}(self, {value})")
    source = f"def __init__({', '.join(signature)}):\n" + "\n".join(body or ["    pass"])
    exec(source, space)  # as dataclasses itself makes the __init__ it replaces
    init = space["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    init.__signature__ = inspect.signature(cls.__init__)  # as the dataclass wrote it
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
