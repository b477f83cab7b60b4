"""What the live desk (``casework desk``) asks of the queue: the filters of ``casework list``, typed as words in
its filter bar (``kind:refund state:under_review mine overdue``), and the queue's rows as they fit the screen.

The filters become the arguments of :meth:`casework.Engine.find`, which decides what matches; this module
only reads the words and lays the rows out.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from rich.text import Text

from casework import Actor, Case, InvalidInput
from casework.commands.filters import Selection
from casework.terminal import at, visible

# kind:refund (or kind=refund); a value with spaces is quoted: search:'late parcel', due_within:'4 service hours'
VALUED = ("kind", "state", "queue", "assignee", "channel", "order", "customer", "search", "due_within", "view")
FLAGS = ("mine", "unassigned", "overdue", "waiting", "all")
ACCEPTED = " ".join([*(f"{name}:VALUE" for name in VALUED), *FLAGS])


@dataclass(frozen=True)
class QueueFilter:
    """The filters of ``casework list`` the desk's queue is shown with (``--now`` and ``--due-before`` aside: the
    desk is live); ``all`` shows closed cases too (the queue is the open cases, unless a ``state`` is asked for)."""

    kind: str | None = None
    state: str | None = None
    queue: str | None = None
    assignee: str | None = None
    channel: str | None = None
    order: str | None = None
    customer: str | None = None
    search: str | None = None
    due_within: str | None = None
    view: str | None = None
    mine: bool = False
    unassigned: bool = False
    overdue: bool = False
    waiting: bool = False
    all: bool = False

    @classmethod
    def parse(cls, text: str) -> QueueFilter:
        """The filter the words of ``text`` give (``kind:refund mine``); InvalidInput naming a word not understood
        and the words accepted."""
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise InvalidInput(f"filter {text!r} cannot be read: {exc}", field="filter", value=text) from None
        given: dict[str, Any] = {}
        for word in words:
            name, sep, value = word.replace("=", ":", 1).partition(":")
            name = name.lower().replace("-", "_")
            if sep and name in VALUED and value:
                given[name] = value
            elif not sep and name in FLAGS:
                given[name] = True
            else:
                raise InvalidInput(f"filter {word!r} is not understood; accepted: {ACCEPTED}", field="filter",
                                   value=word)
        return cls(**given)

    def text(self) -> str:
        """The filter as the words :meth:`parse` reads (``""`` for none)."""
        words = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                words += [f.name] if value else []
            elif value is not None:
                words.append(f"{f.name}:{shlex.quote(value)}")
        return " ".join(words)

    def find_args(self, actor: Actor) -> dict[str, Any]:
        """The keyword arguments of :meth:`casework.Engine.find`, as ``list`` makes them (``mine``, and the view
        ``mine``: assigned to ``actor``), and the open cases only unless ``all`` or a ``state``."""

        chosen = Selection(kind=self.kind, state=self.state, order=self.order, customer=self.customer,
                           overdue=self.overdue, due_within=self.due_within, queue=self.queue, mine=self.mine,
                           assignee=self.assignee, unassigned=self.unassigned, channel=self.channel,
                           search=self.search, waiting=self.waiting, view=self.view)
        return {**chosen.find_filters(actor.id), "open_only": not self.all and self.state is None}


COLUMNS = ("case", "state", "queue · priority · assignee", "next due")
TIME_WIDTH = len("2026-11-22 18:25")
GAPS = 2 * len(COLUMNS) + 2  # a cell's padding either side, and the scrollbar


def widths(cases: Sequence[Case], total: int) -> tuple[int, int, int, int]:
    """The columns' widths at ``total`` columns: the number and the due time are never cut; the state takes up to
    its longest, and the queue, priority and assignee what is left (at least 8; their text is cut to it)."""
    number = max([len(COLUMNS[0]), *(len(c.number) for c in cases)])
    state = min(max([len(COLUMNS[1]), *(len(c.state) for c in cases)]), 17)
    rest = max(8, total - GAPS - number - state - TIME_WIDTH)
    return number, state, rest, TIME_WIDTH


def row(case: Case, room: int, now: datetime) -> tuple[str, str, str, Text]:
    """One case's cells: number, state, ``queue p2 assignee`` (cut to ``room`` with an ellipsis), due time (in red
    once it has passed at ``now``)."""
    where = visible(f"{case.queue or '-'} p{case.priority} {case.assignee or 'unassigned'}")
    if len(where) > room:
        where = where[: room - 1] + "…"
    return case.number, case.state, where, Text(at(case.due_at), "bold red" if case.overdue(now) else "")
