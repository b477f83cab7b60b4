"""The desk's views on a terminal: what the customer is told about a rejection, and a case's notes thread.

Drawn with rich for ``casework reject``, ``note``, ``show`` and ``assign``; the CLI imports this module
only when it draws one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.text import Text

from casework.desk import Note
from casework.terminal import at, visible, zone_name

if TYPE_CHECKING:
    from casework.bulk_actions import BulkReport


def labelled(label: str, message: str | None) -> Iterator[RenderableType]:
    """``message`` under its label (``Customer message: ...``), nothing when there is none."""
    if message:
        yield Text.assemble((f"{label}: ", "bold"), visible(message))


def thread(number: str, notes: Sequence[Note]) -> Iterator[RenderableType]:
    """A case's notes, oldest first: when, who, for whom (the desk only, or the customer), the text."""
    if not notes:
        return
    yield Text(f"{number}: notes (times: {zone_name()})", "bold")
    for n in notes:
        whom = ("to customer", "bold cyan") if n.audience == "customer" else ("internal", "dim")
        yield Text.assemble(f"{n.seq:>3}  {at(n.at)}  ", whom, f"  {visible(n.actor)} ({n.role})",
                            f"  [{n.event}]" if n.event != "note" else "",
                            f"  [reply {visible(n.reply)}]" if n.reply else "", "\n     ", visible(n.text))


def bulk_report(report: BulkReport) -> Iterator[RenderableType]:
    """A bulk action: one line per case (its number whole, what happened, why not), then the summary."""
    verb = "would apply" if report.preview else "applied"
    yield Text(f"bulk {report.event} ({report.key}): {len(report.items)} case(s)"
               + (" (preview: nothing written; --yes applies it)" if report.preview else ""), "bold")
    for item in report.items:
        if item.outcome == "applied":
            yield Text.assemble(f"  {item.number}  ", (verb, "green"), f" -> {item.to_state}")
        elif item.outcome == "already":
            yield Text.assemble(f"  {item.number}  ", ("already applied", "dim"))
        else:
            why = "; ".join(f"{code}: {visible(message)}" for code, message in item.reasons)
            yield Text.assemble(f"  {item.number}  ", ("refused", "red"), f"  {why}")
    by_reason = ", ".join(f"{code} {n}" for code, n in report.refused_by_reason.items())
    yield Text(f"{verb}: {report.count('applied')}; refused: {report.count('refused')}"
               + (f" ({by_reason})" if by_reason else "") + f"; already applied: {report.count('already')}")
