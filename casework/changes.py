"""Changes: what the outbox publishes of each transition, and the in-process hooks that hear of them.

A :class:`Change` is an audit entry as a consumer sees it: the entry itself, with the case's kind,
its version and its facts as that entry left them, and the entry's **global id**: its place in the
global audit chain (``gseq``, see ``casework._store.chain``), which is also the order of commits.
``Engine.changes(after=cursor)`` reads them in that order; ``casework relay`` publishes them.

Hooks (``Engine.on_applied``) run in the process that wrote the change, after its commit; a hook
that raises is logged (logger ``casework.hooks``) and never undoes the transition, nor stops the
hooks after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from casework import facts as F
from casework.domain import AuditEntry
from casework.errors import InvalidInput
from casework.privacy import mask, personal_in

MAX_PAGE = 10_000  # changes read at most at once
OUTBOX_MODES = ("applied", "all", "off")  # which entries the outbox gets: applied ones, refused too, none
LOG = logging.getLogger("casework.hooks")

Hook = Callable[["Change"], Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a case, as published: an applied transition (or, if asked for, a refused attempt).

    ``id`` is the global id (``None`` only in a hook on PostgreSQL, for an entry that commits while
    another writer holds the chain's seal: it gets its place from the next writer). ``version`` and
    ``facts`` are the case's as the entry left it (unchanged by a refusal).
    """

    id: int | None
    kind: str
    version: int
    facts: dict[str, Any]
    entry: AuditEntry

    @property
    def number(self) -> str:
        return self.entry.number

    @property
    def event(self) -> str:
        return self.entry.event

    @property
    def outcome(self) -> str:
        return self.entry.outcome

    def to_json(self) -> dict[str, Any]:
        """The published shape (stable; documented in README "Embedding"). Money is a decimal string."""
        e = self.entry
        return change_json(id=self.id, number=e.number, kind=self.kind, seq=e.seq, event=e.event,
                           from_state=e.from_state, to_state=e.to_state, outcome=e.outcome, at=e.at.isoformat(),
                           actor=e.actor, role=e.role, channel=e.channel, reasons=e.reasons, data=e.data,
                           version=self.version, facts=self.facts, policy=e.policy.to_json())


def change_json(*, id: int | None, number: str, kind: str, seq: int, event: str, from_state: str | None,
                to_state: str | None, outcome: str, at: str, actor: str, role: str, channel: str | None,
                reasons: Any, data: Any, version: int, facts: Any, policy: dict[str, str]) -> dict[str, Any]:
    """A change's published shape, from its parts: :meth:`Change.to_json`, and the relay's messages, which put the
    stored JSON texts of ``data`` and ``facts`` in as they are (``casework.jsontext.fragment``)."""
    return {
        "id": id,
        "number": number,
        "kind": kind,
        "seq": seq,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "outcome": outcome,
        "at": at,
        "actor": actor,
        "role": role,
        "channel": channel,
        "reasons": reasons,
        "data": data,
        "version": version,
        "facts": facts,
        "policy": policy,
    }


def outbox_mode(mode: str) -> str:
    """``mode`` if it is one the outbox knows (``applied``, ``all``, ``off``); InvalidInput otherwise."""
    if mode not in OUTBOX_MODES:
        raise InvalidInput(f"outbox {mode!r}: expected one of {', '.join(OUTBOX_MODES)}", field="outbox",
                           value=mode)
    return mode


def page(after: int, limit: int) -> tuple[int, int]:
    """A cursor and a page size checked: ``after`` a global id (0: from the start), ``limit`` 1 to 10000."""
    return F.check_whole(after, "after", what="a global id"), F.check_whole(limit, "limit", 1, MAX_PAGE)


def masked(change: Change, personal: Sequence[str]) -> Change:
    """``change`` with the ``personal`` facts in its facts and its entry's data masked."""
    if not personal or not (personal_in(change.facts, personal) or personal_in(change.entry.data, personal)):
        return change
    return replace(change, facts=mask(change.facts, personal),
                   entry=replace(change.entry, data=mask(change.entry.data, personal)))


class Hooks:
    """Callbacks run after a commit, each with every change it wrote, in order."""

    def __init__(self) -> None:
        self._applied: list[Hook] = []
        self._refused: list[Hook] = []

    def __bool__(self) -> bool:
        return bool(self._applied or self._refused)

    def add(self, callback: Hook, *, refused: bool = False) -> Hook:
        if not callable(callback):
            raise InvalidInput(f"hook {callback!r} is not callable: expected a function taking a Change",
                               field="callback", value=repr(callback))
        (self._refused if refused else self._applied).append(callback)
        return callback

    def run(self, changes: Sequence[Change]) -> None:
        """Call every hook with every change (applied ones to ``on_applied``'s, refused to ``on_refused``'s);
        an exception in a hook is logged, with the change it was given, and the next hook runs."""
        for change in changes:
            for hook in self._applied if change.outcome == "applied" else self._refused:
                try:
                    hook(change)
                except Exception:
                    LOG.exception("hook %r failed on change %s (%s %s); the transition stands",
                                  hook, change.id, change.number, change.event)
