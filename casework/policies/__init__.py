"""Policies: YAML rules, validated into typed objects, that decide whether an event may happen."""

from casework.policies.context import GuardContext, RoleBook
from casework.policies.policyset import PolicySet, load_policy, parse_policy

__all__ = ["GuardContext", "PolicySet", "RoleBook", "load_policy", "parse_policy"]
