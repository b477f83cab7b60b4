"""What the Engine's command groups (:class:`casework.desk_work.DeskWork`,
:class:`casework.policy_admin.PolicyAdministration`, :class:`casework.oversight.Oversight`) need of the
:class:`casework.Engine` they are mixed into: its store, its policy versions, and the engine's own clock,
reading and firing methods (declared here once, defined by the Engine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.domain import Actor, Case, Decision

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.policybook import PolicyBook
    from casework.store import Store


class EngineParts:
    """The Engine's parts its command groups use (see the module docstring)."""

    store: Store
    policies: PolicyBook
    find: Callable[..., list[Case]]  # the engine's (its filters are bulk_fire's)

    def now(self) -> datetime:  # pragma: no cover - the engine's
        raise NotImplementedError

    def get(self, number: str, *, reveal: bool = False) -> Case:  # pragma: no cover - the engine's
        raise NotImplementedError

    def policy_for(self, policy_hash: str) -> PolicySet:  # pragma: no cover - the engine's
        raise NotImplementedError

    def fire(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None,
             key: str | None = None, expected_version: int | None = None,
             retries: int = 0) -> Case:  # pragma: no cover - the engine's
        raise NotImplementedError

    def check(self, number: str, event: str, *, actor: Actor,
              data: Mapping[str, Any] | None = None) -> Decision:  # pragma: no cover - the engine's
        raise NotImplementedError
