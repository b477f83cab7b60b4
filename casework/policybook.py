"""Every policy version a database has used: the one in force for new cases, and each one cases are pinned to.

A version is stored once (by content hash, chained to the previous one) the first time it is used,
and read back and re-parsed by its hash when a case pinned to it is decided. A stored text that no
longer hashes to its version is refused, never used: deciding with it would silently change the rules.

Which version new cases get: the one published in the database (``casework policy publish``), whatever
the process's working directory; a local policy file that differs from it is only warned about
(:attr:`PolicyBook.notice`). An explicit override (``Engine(override_published=True)``, the CLI's
``--policies FILE`` flag) puts the local file in force instead, and each case opened under it records so
in its opening entry (a ``policy_override`` verdict naming both versions). With nothing published, the
local file (else the packaged default) is in force, as before publishing existed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from casework.domain import Verdict
from casework.errors import InvalidInput, StoreError
from casework.store import Publication, Store
from casework.values import parse_zone

if TYPE_CHECKING:
    from casework.policies import PolicySet

PolicySource = str | Path  # a policy file
_TIMEZONE_LINE = re.compile(r"^timezone:[ \t]*[\"']?([\w+\-/]+)[\"']?[ \t]*(?:#.*)?$", re.MULTILINE)


_UNREAD = Publication(0, "", "", "", "", datetime.min, "", "", None)  # the publication not read yet


class PolicyBook:
    """The policy versions of one store. ``source`` is the local policy: a file, a loaded :class:`PolicySet`,
    or ``None`` for the packaged default; it is in force for new cases when nothing is published, or when
    ``override`` (see the module's docstring)."""

    def __init__(self, store: Store, source: PolicySource | PolicySet | None, now: Callable[[], datetime], *,
                 override: bool = False) -> None:
        self._store = store
        self._now = now
        self._file = source if source is None or isinstance(source, str | Path) else None
        self._local: PolicySet | None = None if source is None or isinstance(source, str | Path) else source
        self.override = override
        self._current: PolicySet | None = None
        self._published: Publication | None = _UNREAD
        self._versions: dict[str, PolicySet] = {}
        self._personal: dict[str, list[str]] | None = None  # by version, as stored (read once, then when new)
        self.notice: str | None = None  # the local file differs from the published version, or overrides it
        self.overriding: Verdict | None = None  # with an override in force: what each opening entry records
        if self._local is not None:
            self.remember(self._local)  # given loaded: stored at once, as cases may be written under it directly

    @property
    def current(self) -> PolicySet:
        """The policy in force for new cases (loaded, checked and stored on first use)."""
        if self._current is None:
            self._current = self._in_force()
        return self._current

    def for_new_cases(self) -> PolicySet:
        """The policy in force for a case about to be opened: :attr:`current`, read again if another process
        has published a version since it was (one query)."""
        if self._current is not None and self._published is not _UNREAD:
            now_published = self._store.published()
            if (now_published and now_published.seq) != (self._published and self._published.seq):
                self._current, self._published = None, now_published
        return self.current

    def republished(self) -> None:
        """A version was just published through this book: the one in force is read again on next use."""
        self._current, self._published = None, _UNREAD

    def published(self) -> Publication | None:
        """The publication in force (read once per book, and again by :meth:`for_new_cases`)."""
        if self._published is _UNREAD:
            self._published = self._store.published()
        return self._published

    def _in_force(self) -> PolicySet:
        from casework.policies import load_policy
        from casework.policies.files import content_hash, read_policy_text

        published = self.published()
        self.notice = self.overriding = None
        if published is not None and not self.override:
            policy = self.version(published.hash)
            local = self._local.hash if self._local is not None else (
                content_hash(read_policy_text(self._file)) if self._file is not None else None)
            if local is not None and local != published.hash:
                name = self._local.name if self._local is not None else str(self._file)
                self.notice = (f"{name} ({local[:12]}) differs from the published policy {policy.label} "
                               f"({policy.ref.short}, published {published.at:%Y-%m-%d %H:%M} UTC by "
                               f"{published.actor}); new cases get the published version")
            return policy
        policy = self._local or load_policy(self._file)
        self.remember(policy)
        if published is not None and published.hash != policy.hash:
            was = self.version(published.hash).ref
            self.notice = (f"{policy.name} ({policy.ref.short}) overrides the published policy {was.label} "
                           f"({was.short}) for the cases opened here; each records the override")
            self.overriding = Verdict("policy", True, "policy_override",
                                      f"opened under {policy.label} ({policy.ref.short}) from {policy.name}, "
                                      f"overriding the published {was.label} ({was.short})",
                                      {"published": was.hash, "override": policy.hash, "file": policy.name})
        return policy

    def opening_record(self) -> tuple[Verdict, ...]:
        """What an opening entry records besides who opened the case: the override, when one is in force."""
        return () if self.overriding is None else (self.overriding,)

    def zone(self) -> tzinfo:
        """The time zone of the policy in force: the desk's. Read from its top-level ``timezone:`` line when
        the policy is not loaded yet, so that a command that only reads cases (``casework show``) neither
        loads nor stores a policy; the policy is loaded when the line cannot be read so."""
        if self._current is None:
            from casework.policies.files import default_policy_path, read_policy_text

            published = None if self.override else self.published()
            stored = self._store.policy_source(published.hash) if published is not None else None
            text = stored[1] if stored is not None else read_policy_text(self._file or default_policy_path())
            found = _TIMEZONE_LINE.search(text)
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
        for policy in (self._current, self._local):
            if policy is not None:
                found |= set(policy.document.personal)
        return sorted(found)
