"""How a case kind is described, and how it becomes one shared ``transitions`` Machine.

A kind is a graph of states and events. We build one ``transitions.Machine`` per kind, once,
with ``auto_transitions=False`` (no guard-skipping ``to_<state>()`` shortcuts) and no models: the
machine is the single definition of the graph, and every case is just a (kind, state) pair read
from the store. No per-case Machine or model object is ever made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from transitions import Machine

AMEND = "amend"  # the event that corrects facts the rules judged, judged again (every kind has it)
REOPEN = "reopen"  # the event that takes a closed case back to work, where the policy allows it
REJECT = "reject"  # the event that refuses a request, naming one of the policy's rejection reasons


@dataclass(frozen=True)
class Move:
    """``event`` takes a case from any of ``sources`` to ``dest`` (``None``: stays where it is)."""

    event: str
    sources: tuple[str, ...]
    dest: str | None


@dataclass(frozen=True)
class KindSpec:
    """A case kind: its states, events, and which states end the case."""

    kind: str
    prefix: str
    title: str
    initial: str
    states: tuple[str, ...]
    moves: tuple[Move, ...]
    final: frozenset[str] = field(default_factory=frozenset)  # a case here is closed
    # States in which the case is finished with (decided or withdrawn; its resolution is done): the final
    # ones and, e.g., refunded, rejected, cancelled. "Open" means not closed, nothing else.
    settled: frozenset[str] = field(default_factory=frozenset)
    # Money going out: the event that pays, and the fact holding the amount it pays (what was approved).
    payouts: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def machine(self) -> Any:
        """The shared ``transitions.Machine`` for this kind (built on first use, then reused)."""
        machine = Machine(
            model=[],
            states=list(self.states),
            initial=self.initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        for move in self.moves:
            for source in move.sources:
                machine.add_transition(move.event, source, move.dest if move.dest else "=")
        return machine

    @cached_property
    def events(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for move in self.moves:
            seen.setdefault(move.event, None)
        return tuple(seen)

    @cached_property
    def _table(self) -> dict[tuple[str, str], str]:
        # (state, event) -> destination, read back from the built machine so the Machine is the truth.
        table: dict[tuple[str, str], str] = {}
        for name, event in self.machine.events.items():
            for source, transitions in event.transitions.items():
                for t in transitions:
                    table[(source, name)] = t.dest if t.dest is not None else source
        return table

    @cached_property
    def _available(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {s: [] for s in self.states}
        for (state, event) in self._table:
            out[state].append(event)
        order = {e: i for i, e in enumerate(self.events)}
        return {s: tuple(sorted(evs, key=order.__getitem__)) for s, evs in out.items()}

    def available(self, state: str) -> tuple[str, ...]:
        """Events that exist from ``state``, in definition order."""
        return self._available.get(state, ())

    def target(self, state: str, event: str) -> str | None:
        """Where ``event`` leads from ``state``, or ``None`` if it is not available there."""
        return self._table.get((state, event))

    def reached_by(self, state: str) -> frozenset[str]:
        """The events that may have been applied to a case now in ``state``: those on some path from the
        initial state to it (so the guards that may have judged its facts)."""
        return self._reached_by[state]

    @cached_property
    def _reached_by(self) -> dict[str, frozenset[str]]:
        def closure(start: str, edges: dict[str, set[str]]) -> set[str]:
            seen, todo = {start}, [start]
            while todo:
                for nxt in edges.get(todo.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            return seen

        # A reopened case starts a new round: the paths that count are those of one round (no reopen
        # edge), or every event of every kind would be "reached" through a closed case's reopening.
        forward: dict[str, set[str]] = {}
        backward: dict[str, set[str]] = {}
        for (source, event), dest in self._table.items():
            if event == REOPEN:
                continue
            forward.setdefault(source, set()).add(dest)
            backward.setdefault(dest, set()).add(source)
        reachable = closure(self.initial, forward)
        out: dict[str, frozenset[str]] = {}
        for state in self.states:
            leads_here = closure(state, backward)
            out[state] = frozenset(event for (source, event), dest in self._table.items()
                                   if source in reachable and dest in leads_here and event != REOPEN)
        return out

    def is_settled(self, state: str) -> bool:
        """Whether a case in ``state`` is finished with (decided or withdrawn); it may still be open, i.e. not
        yet closed (``Case.closed``: in a final state)."""
        return state in self.settled
