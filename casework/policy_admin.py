"""The engine's commands on policy versions as a whole: publish one, list them, show and compare their stored
texts, name one, and cite a decision's rules in the version that decided it (see casework.publishing); and
move open cases to another version, or simulate what it would decide for them (casework.adoption, .simulate)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from casework.domain import Actor, Case, Decision
from casework.engine_parts import EngineParts
from casework.errors import CaseNotFound
from casework.values import suggest

if TYPE_CHECKING:
    from casework.adoption import AdoptionPlan, AdoptReport
    from casework.policies import PolicySet
    from casework.publishing import Citation, Published, StoredVersion
    from casework.simulate import SimulationReport
    from casework.store import VersionRow


class PolicyAdministration(EngineParts):
    """Mixed into :class:`casework.Engine`: what it needs is its store, its policy versions and its clock."""

    @property
    def policy_notice(self) -> str | None:
        """One line to warn whoever opens cases: the local policy differs from the published one (new cases get
        the published one), or overrides it. None when they agree, nothing is published, or not resolved yet."""
        return self.policies.notice

    def publish(self, policy: str | Path | PolicySet, *, actor: Actor, tests: Sequence[str | Path] = ()) -> Published:
        """Check ``policy`` (a file, or a loaded version), run its scenario ``tests``, and put it in force for new
        cases in every process on this database; who and when go on the publication chain.

        >>> engine.publish("policies.yaml", actor=Actor("lin", "supervisor")).changed
        True
        """
        from casework import publishing

        return publishing.publish(self.store, self.policies, policy, actor=actor, now=self.now, tests=tests)

    def policy_versions(self) -> list[StoredVersion]:
        """Every stored version, oldest first: loaded and published when (by whom), in force, cases pinned."""
        from casework import publishing

        return publishing.versions(self.store)

    def find_version(self, version: str) -> VersionRow:
        """The stored version named by a hash prefix or a label (UnknownPolicyVersion lists the candidates)."""
        from casework import publishing

        return publishing.resolve(self.store, version)

    def version_text(self, version: str) -> tuple[VersionRow, str]:
        """A stored version and its text, as it was loaded."""
        from casework import publishing

        row = publishing.resolve(self.store, version)
        return row, publishing.source_of(self.store, row)

    def stored_policy(self, version: str) -> PolicySet:
        """The stored version named by a hash prefix or a label, parsed (to adopt or publish it again)."""
        return self.policies.version(self.find_version(version).hash)

    def version_diff(self, a: str, b: str) -> tuple[VersionRow, VersionRow, str]:
        """The unified diff of two stored versions' texts."""
        from casework import publishing

        return publishing.diff(self.store, a, b)

    def adopt_cases(self, policy: PolicySet, numbers: Sequence[str], *, actor: Actor) -> AdoptReport:
        """Re-pin the cases ``numbers`` to ``policy`` (one audited ``adopt_policy`` entry each, as
        ``adopt_open_cases``); those it cannot take (closed; no rules for their kind or state) are left, with
        why, in ``skipped``. CaseNotFound before anything moves if one number is unknown."""
        from casework.adoption import adopt_open_cases

        for number in numbers:
            if self.store.get(number) is None:
                raise CaseNotFound(number, suggest(number, self.store.numbers_like(number), 3))
        return adopt_open_cases(self.store, self.policies, policy, actor=actor, now=self.now, numbers=numbers)

    def cite(self, decision: Decision) -> list[Citation | None]:
        """Each verdict's rule in the text of the version that decided (line and excerpt), never a local file."""
        from casework.publishing import cite

        if decision.policy is None:
            return [None for _ in decision.verdicts]
        policy = self.policies.version(decision.policy.hash)
        return [cite(policy, v.source) for v in decision.verdicts]

    # ---- moving open cases to another version ----------------------------------------------------------
    def adopt(self, number: str, policy: PolicySet, *, actor: Actor) -> Case:
        """Re-pin an open case to ``policy``: from now on it is decided by that version (see casework.adoption).

        One applied ``adopt_policy`` entry (the state does not change; data ``policy_from`` and
        ``policy_to``, the two hashes) moves the case's pinned version in the same transaction. A case
        already on ``policy`` is returned unchanged.
        """
        from casework.adoption import adopt

        return adopt(self.store, self.policies, number, policy, actor=actor, now=self.now())

    def plan_adoption(self, policy: PolicySet, *, actor: Actor, kind: str | None = None, state: str | None = None,
                      progress: Callable[[int, int], None] | None = None) -> AdoptionPlan:
        """Before moving open cases to ``policy``: may ``actor`` adopt it (InvalidInput if not), which open cases
        of ``kind``/``state`` would move, and what the new version would decide differently for them."""
        from casework.adoption import plan

        return plan(self.store, self.policies, policy, actor=actor, now=self.now(), kind=kind, state=state,
                    progress=progress)

    def adopt_open_cases(self, policy: PolicySet, *, actor: Actor, kind: str | None = None,
                         state: str | None = None, numbers: Iterable[str] | None = None,
                         progress: Callable[[int, int], None] | None = None) -> AdoptReport:
        """Re-pin open cases (``numbers``, else every open one of ``kind``/``state``) to ``policy``."""
        from casework.adoption import adopt_open_cases

        return adopt_open_cases(self.store, self.policies, policy, actor=actor, now=self.now, kind=kind,
                                state=state, numbers=numbers, progress=progress)

    def simulate(self, policy: PolicySet, *, kind: str | None = None, state: str | None = None,
                 now: datetime | None = None, progress: Callable[[int, int], None] | None = None
                 ) -> SimulationReport:
        """Which open cases would ``policy`` decide differently than their pinned version? (see casework.simulate)"""
        from casework.simulate import simulate

        return simulate(self.store, self.policies, policy, now or self.now(), kind=kind, state=state,
                        progress=progress)
