"""The desk's views on a terminal: what the customer is told about a rejection, and a case's notes thread.

Drawn with rich for ``casework reject``, ``note``, ``show`` and ``assign``; the CLI imports this module
only when it draws one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rich.console import RenderableType
from rich.text import Text

from casework.domain import Note
from casework.terminal import at, visible, zone_name


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
                            f"  [{n.event}]" if n.event != "note" else "", "\n     ", visible(n.text))
