"""The published policy version on a terminal: the stored versions, a publication, a version's text."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from casework.terminal import new_table, visible, when, whole

if TYPE_CHECKING:
    from casework.publishing import Published, StoredVersion


def versions_table(found: Sequence[StoredVersion]) -> Table:
    """Every stored version: where it came from, when it was loaded and published (by whom), and its cases."""
    table = new_table("policy versions (* in force for new cases)", whole("seq"), whole("hash"), "label / file",
                      "loaded", "published", whole("cases (open)"))
    for v in found:
        p = v.published
        table.add_row(f"{'*' if v.in_force else ' '}{v.seq}", v.ref.short, f"{visible(v.ref.label)}\n{visible(v.name)}",
                      when(v.loaded_at), f"{when(p.at)}\nby {visible(p.actor)} ({p.role})" if p else "",
                      f"{v.cases} ({v.open_cases})")
    return table


def published(done: Published) -> Iterator[RenderableType]:
    p = done.publication
    tested = f"; {done.scenarios} scenario(s) passed" if done.scenarios else ""
    if not done.changed:
        yield Text(f"policy {done.policy.label} ({done.policy.short}) is already the published version "
                   f"(publication {p.seq}, {when(p.at)} by {p.actor}){tested}; nothing written", "yellow")
        return
    yield Text(f"published policy {done.policy.label} ({done.policy.short}) from {p.file} as publication {p.seq} "
               f"by {p.actor} ({p.role}) at {when(p.at)}{tested}: new cases get it from now on", "green")

