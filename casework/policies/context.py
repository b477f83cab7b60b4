"""What a guard sees when it judges an event: the case, the event's data, the actor, the time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from casework.domain import Actor
from casework.frozen import quick_init

# The reason codes ``decide`` gives of its own about event data (here, light, so that reading a case never
# loads the guard vocabulary; guards.known_codes lists them with the guards' codes).
FACT_NOT_PERMITTED = "fact_not_permitted"  # event data holds a fact the acting role may not write
FACT_JUDGED = "fact_judged"  # event data would change a fact the rules judged (only amend may)


@dataclass(frozen=True)
class RoleBook:
    """Roles as the policy defines them: who inherits from whom, and approval limits."""

    inherits: Mapping[str, tuple[str, ...]]
    limits: Mapping[str, Decimal | None]  # None: no limit; a role missing here has no authority

    def lineage(self, role: str) -> set[str]:
        """``role`` and every role it inherits from, transitively."""
        seen: set[str] = set()
        todo = [role]
        while todo:
            r = todo.pop()
            if r not in seen:
                seen.add(r)
                todo.extend(self.inherits.get(r, ()))
        return seen

    def acts_as(self, role: str, wanted: str) -> bool:
        return wanted in self.lineage(role)

    def limit(self, role: str) -> tuple[bool, Decimal | None]:
        """``(has_authority, limit)``; a limit of None means unlimited."""
        if role not in self.limits:
            return False, Decimal("0")
        return True, self.limits[role]


@quick_init
@dataclass(frozen=True, slots=True)
class GuardContext:
    kind: str
    event: str
    state: str
    facts: Mapping[str, Any]  # the case facts with the event's data merged in
    data: Mapping[str, Any]  # the event's own data
    actor: Actor
    now: datetime
    tz: ZoneInfo
    roles: RoleBook
    responded: bool = False
    types: Mapping[str, str] = field(default_factory=dict)  # declared facts: name -> type (expressions read them)
    opened: datetime | None = None  # when the case was opened (a rule dated_by: opened judges its period by it)
    # The facts this decision's expressions have read, as they read them (name -> (value, as shown)): each fact
    # is converted once per decision, however many expressions read it.
    read: dict[str, tuple[Any, Any]] = field(default_factory=dict, compare=False, repr=False)

    def who(self) -> dict[str, Any]:
        """Who acts, as an expression reads it: ``role``, ``roles`` (it and every role it inherits), ``actor``."""
        return {"role": self.actor.role, "roles": sorted(self.roles.lineage(self.actor.role)), "actor": self.actor.id}
