"""Policies: YAML rules, validated into typed objects, that decide whether an event may happen.

The policy machinery (pydantic models of the policy schema) loads on first use of these names, so
reading a case (``casework show``) never pays for it; ``casework.policies.context`` is light.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HOMES = {"PolicySet": "policyset", "load_policy": "policyset", "parse_policy": "policyset",
          "GuardContext": "context", "RoleBook": "context", "explain": "explanation"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'casework.policies' has no attribute {name!r}")
    return getattr(import_module(f"casework.policies.{home}"), name)


if TYPE_CHECKING:
    from casework.policies.context import GuardContext, RoleBook
    from casework.policies.explanation import explain
    from casework.policies.policyset import PolicySet, load_policy, parse_policy

__all__ = ["GuardContext", "PolicySet", "RoleBook", "explain", "load_policy", "parse_policy"]
