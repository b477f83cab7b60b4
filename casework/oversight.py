"""The engine's commands over every case at once: the service clock's sweep, the SLA report, the export of
the audit trail and its verification (each implemented in its own module, imported on first use)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from casework.engine_parts import EngineParts
from casework.findings import Digest, VerifyReport

if TYPE_CHECKING:
    from casework.report import SlaReport
    from casework.sla import SweepReport


class Oversight(EngineParts):
    """Mixed into :class:`casework.Engine`: what it needs is its store, its policy versions and its clock."""

    def personal_facts(self) -> list[str]:
        """The facts the policies in force (and ever stored) mark personal, without parsing any policy."""
        return self.policies.personal_facts()

    def sweep(self, *, now: datetime | None = None, dry_run: bool = False, limit: int | None = None,
              progress: Callable[[int, int], None] | None = None, batch: int = 200) -> SweepReport:
        """Fire every due timer and mark every breached deadline, ``batch`` cases per transaction
        (see :func:`casework.sweep.sweep`); ``now`` acts as of another instant: a later one only with
        ``dry_run`` (what would be due then), since entries written then would be dated ahead of the
        entries written after them, and a trail's times must not go backwards."""
        from casework import sweep

        present = self.now()
        return sweep.sweep(self.store, self.policies, (now or present).astimezone(UTC), present=present,
                           dry_run=dry_run, limit=limit, progress=progress, batch=batch)

    def report(self, *, since: datetime | date | str | None = None, until: datetime | date | str | None = None,
               kind: str | None = None, by: str | None = None) -> SlaReport:
        """The SLA report over the cases opened in ``[since, until)``: see :func:`casework.report.build_report`."""
        from casework.report import build_report

        return build_report(self.store, self.policies, self.now(), since=since, until=until, kind=kind, by=by)

    def export(self, *, redact: bool = False) -> Iterator[dict[str, Any]]:
        """Every audit entry of every case as JSON-ready dicts (see :func:`casework.verification.export`)."""
        from casework import verification

        return verification.export(self.store, personal=self.personal_facts() if redact else ())

    def verify(self, *, since: Digest | str | None = None) -> VerifyReport:
        """Check every case's trail (hashes, chain, replay against the stored row), the global chain across all
        entries (with the engine's audit key, if it has one), and, given ``since`` (a digest an earlier verify
        printed), that today's chain extends the one it named. ``report.digest`` is where the chain stands now.

        >>> report = engine.verify()
        >>> report.ok, str(report.digest)[:2]
        (True, '2:')
        """
        from casework import verification

        return verification.verify(self.store, self.policies, since=since)
