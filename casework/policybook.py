"""Every policy version a database has used: the one in force for new cases, and each one cases are pinned to.

A version is stored once (by content hash, chained to the previous one) the first time it is used,
and read back and re-parsed by its hash when a case pinned to it is decided. A stored text that no
longer hashes to its version is refused, never used: deciding with it would silently change the rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from casework.errors import InvalidInput, StoreError
from casework.store import Store
from casework.values import parse_zone

if TYPE_CHECKING:
    from casework.policies import PolicySet

PolicySource = str | Path  # a policy file
_TIMEZONE_LINE = re.compile(r"^timezone:[ \t]*[\"']?([\w+\-/]+)[\"']?[ \t]*(?:#.*)?$", re.MULTILINE)


class PolicyBook:
    """The policy versions of one store. ``source`` is the policy in force for new cases: a file, a
    loaded :class:`PolicySet`, or ``None`` for the packaged default (loaded on first use)."""

    def __init__(self, store: Store, source: PolicySource | PolicySet | None, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now
        self._file = source if source is None or isinstance(source, str | Path) else None
        self._current: PolicySet | None = None if source is None or isinstance(source, str | Path) else source
        self._versions: dict[str, PolicySet] = {}
        self._personal: dict[str, list[str]] | None = None  # by version, as stored (read once, then when new)
        if self._current is not None:
            self.remember(self._current)

    @property
    def current(self) -> PolicySet:
        """The policy in force for new cases (loaded, checked and stored on first use)."""
        if self._current is None:
            from casework.policies import load_policy

            self._current = load_policy(self._file)
            self.remember(self._current)
        return self._current

    def zone(self) -> tzinfo:
        """The time zone of the policy in force: the desk's. Read from its top-level ``timezone:`` line when
        the policy is not loaded yet, so that a command that only reads cases (``casework show``) neither
        loads nor stores a policy; the policy is loaded when the line cannot be read so."""
        if self._current is None:
            from casework.policies.files import default_policy_path, read_policy_text

            found = _TIMEZONE_LINE.search(read_policy_text(self._file or default_policy_path()))
            if found is not None:
                with suppress(InvalidInput):
                    return parse_zone(found[1])
        return self.current.tz

    @property
    def loaded(self) -> PolicySet | None:
        """The policy in force if it has been loaded already (nothing is loaded to answer)."""
        return self._current

    def remember(self, policy: PolicySet) -> None:
        """Store ``policy`` as a version (once) so cases can be pinned to it."""
        self._versions[policy.hash] = policy
        self._store.save_policy(policy.ref, policy.name, policy.source, self._now(), list(policy.document.personal))
        if self._personal is not None:
            self._personal[policy.hash] = sorted(policy.document.personal)

    def version(self, policy_hash: str) -> PolicySet:
        """The stored version with this hash (parsed once per book)."""
        policy = self._versions.get(policy_hash)
        if policy is None:
            found = self._store.policy_source(policy_hash)
            if found is None:
                raise InvalidInput(f"policy version {policy_hash[:12]} is not in the database", field="policy")
            from casework.policies import parse_policy

            name, source = found
            policy = parse_policy(source, name)
            if policy.hash != policy_hash:
                raise StoreError(f"policy version {policy_hash[:12]} in the database was altered (its text now "
                                 f"hashes to {policy.hash[:12]}); run 'casework verify'", url=self._store.url)
            self._versions[policy_hash] = policy
        return policy

    def personal_facts(self, pinned: str | None = None) -> list[str]:
        """The facts the policy in force (if loaded) and every stored version mark personal (masking errs on
        the side of privacy). Read from the store once, and again when ``pinned``, the version a case
        to be shown is pinned to, is one this book has not seen yet."""
        if self._personal is None or (pinned is not None and pinned not in self._personal):
            self._personal = self._store.personal_facts()
        found = {f for facts in self._personal.values() for f in facts}
        if self._current is not None:
            found |= set(self._current.document.personal)
        return sorted(found)
