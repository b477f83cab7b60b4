"""The published policy version: publishing one, the stored versions, and naming one by hash prefix or label.

Publishing checks the version as ``casework policy check`` does (refused with its errors), runs its
scenario tests if given (refused if any fails), stores it and appends a publication to the database's
publication chain: who, when, from which file. From then on it is the version in force for new cases in
every process on that database (see :mod:`casework.policybook`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casework.adoption import check_operator
from casework.domain import Actor, PolicyRef
from casework.errors import PolicyError, PolicyTestsFailed, UnknownPolicyVersion
from casework.policybook import PolicyBook
from casework.store import Publication, Store, VersionRow

if TYPE_CHECKING:
    from casework.policies import PolicySet

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Published:
    """What :func:`publish` did: the version now in force, and the publication that put it there
    (``changed`` False: it was in force already, nothing was written)."""

    policy: PolicyRef
    publication: Publication
    changed: bool
    scenarios: int  # scenario tests run (and passed)

    def to_json(self) -> dict[str, Any]:
        p = self.publication
        return {"policy": self.policy.to_json(), "changed": self.changed, "seq": p.seq, "file": p.file,
                "actor": p.actor, "role": p.role, "published_at": p.at.isoformat(), "scenarios": self.scenarios}


@dataclass(frozen=True)
class StoredVersion:
    """One stored version as ``casework policy versions`` lists it."""

    seq: int
    ref: PolicyRef
    name: str  # the file it was loaded from, as given
    loaded_at: datetime
    published: Publication | None  # its latest publication, if it was ever published
    in_force: bool  # the version new cases get (the latest publication)
    cases: int  # cases pinned to it
    open_cases: int

    def to_json(self) -> dict[str, Any]:
        p = self.published
        return {"seq": self.seq, **self.ref.to_json(), "name": self.name, "loaded_at": self.loaded_at.isoformat(),
                "published_at": p.at.isoformat() if p else None, "published_by": p.actor if p else None,
                "in_force": self.in_force, "cases": self.cases, "open_cases": self.open_cases}


def publish(store: Store, policies: PolicyBook, source: str | Path | PolicySet, *, actor: Actor,
            now: Callable[[], datetime], tests: Sequence[str | Path] = ()) -> Published:
    """Check ``source`` (a policy file or a loaded version), run its ``tests``, and put it in force for new cases.

    Raises PolicyError (its errors, ``FILE:LINE:COL``), InvalidInput (``actor`` may not publish it: a
    customer, or a role its ``operators`` section does not grant), PolicyTestsFailed.
    """
    from casework.policies.authoring import check_policy, run_policy_test_files

    report = check_policy(Path(source), str(source)) if isinstance(source, str | Path) else \
        check_policy(source.source, source.name)
    if report.errors or report.policy is None:
        raise PolicyError(report.errors)
    policy = report.policy
    check_operator(policy, actor, "publish a policy version", "to publish it")
    scenarios = 0
    if tests:
        run = run_policy_test_files(policy, tests)
        if run.failed:
            raise PolicyTestsFailed(policy.label, [f"{r.name}: {r.summary}" for r in run.failed], len(run.results))
        scenarios = len(run.results)
    in_force = store.published()
    if in_force is not None and in_force.hash == policy.hash:
        return Published(policy.ref, in_force, False, scenarios)
    policies.remember(policy)
    done = store.publish(policy.hash, policy.name, actor.id, actor.role, now())
    policies.republished()
    return Published(policy.ref, done, True, scenarios)


def versions(store: Store) -> list[StoredVersion]:
    """Every stored version, oldest first: when it was loaded and published, whether it is in force, its cases."""
    rows, pinned = store.policy_list()
    chain = store.publications()
    last = {p.hash: p for p in chain}
    in_force = chain[-1].hash if chain else None
    return [StoredVersion(v.seq, PolicyRef(v.label, v.hash), v.name, v.loaded_at, last.get(v.hash), v.hash == in_force,
                          *pinned.get(v.hash, (0, 0))) for v in rows]


def resolve(store: Store, version: str) -> VersionRow:
    """The stored version ``version`` names: a full hash, a hash prefix (4 hex digits or more) or a label.
    UnknownPolicyVersion (with the candidates) when none or several match."""
    rows, _ = store.policy_list()
    wanted = version.strip()
    hexed = wanted.lower()
    exact = [v for v in rows if v.hash == hexed]
    if exact:
        return exact[0]
    found = [v for v in rows if v.label == wanted
             or (len(hexed) >= 4 and set(hexed) <= _HEX and v.hash.startswith(hexed))]
    if len(found) == 1:
        return found[0]
    raise UnknownPolicyVersion(version, [f"{v.hash[:12]} {v.label}" for v in found or rows], ambiguous=bool(found))


def source_of(store: Store, row: VersionRow) -> str:
    """The stored text of a version (as it was loaded, byte for byte)."""
    found = store.policy_source(row.hash)
    if found is None:  # pragma: no cover - the row was just read
        raise UnknownPolicyVersion(row.hash, [], ambiguous=False)
    return found[1]


def diff(store: Store, a: str, b: str) -> tuple[VersionRow, VersionRow, str]:
    """The unified diff from version ``a``'s stored text to ``b``'s (empty when they are the same version)."""
    old, new = resolve(store, a), resolve(store, b)
    lines = difflib.unified_diff(source_of(store, old).splitlines(keepends=True),
                                 source_of(store, new).splitlines(keepends=True),
                                 fromfile=f"{old.name} {old.label} ({old.hash[:12]})",
                                 tofile=f"{new.name} {new.label} ({new.hash[:12]})")
    return old, new, "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True)
class Citation:
    """Where a rule is written in the version that decided, and its line as stored in that version."""

    policy: PolicyRef
    file: str
    line: int
    excerpt: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.policy.label} ({self.policy.short}): {self.excerpt}"

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy.to_json(), "file": self.file, "line": self.line, "excerpt": self.excerpt}


def cite(policy: PolicySet, source: str | None) -> Citation | None:
    """The citation of a verdict's ``source`` (``FILE:LINE``) in ``policy``'s own stored text, never a local file."""
    if not source:
        return None
    file, _, line = source.rpartition(":")
    lines = policy.source.splitlines()
    if not line.isdigit() or not 1 <= int(line) <= len(lines):
        return None
    return Citation(policy.ref, file, int(line), lines[int(line) - 1].strip())
