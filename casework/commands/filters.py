"""The filters of ``casework list``, shared by ``casework bulk`` (the same options select the same cases)."""

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from casework import InvalidInput, parse_instant
from casework.commands.common import actor_of

StateOpt = Annotated[str | None, typer.Option("--state", help="Only cases in this state.")]
OrderOpt = Annotated[str | None, typer.Option("--order", help="Only cases of this order id.")]
CustomerOpt = Annotated[str | None, typer.Option("--customer", help="Only this customer's cases.")]
OverdueOpt = Annotated[bool, typer.Option("--overdue", help="Only open cases past a deadline.")]
DueBeforeOpt = Annotated[str | None, typer.Option("--due-before", help="Open cases due by this time (ISO).")]
DueWithinOpt = Annotated[str | None, typer.Option(
    "--due-within", help="Open cases with a deadline this soon, e.g. 2h or '4 service hours'.")]
NowOpt = Annotated[str | None, typer.Option(
    "--now", help="Reckon --overdue, --due-within and the views at this instant (ISO) instead of now.")]
QueueOpt = Annotated[str | None, typer.Option("--queue", help="Only cases in this queue, e.g. supervisor.")]
MineOpt = Annotated[bool, typer.Option("--mine", help="Only cases assigned to you (the acting operator).")]
AssigneeOpt = Annotated[str | None, typer.Option("--assignee", help="Only cases assigned to this operator.")]
UnassignedOpt = Annotated[bool, typer.Option("--unassigned", help="Only open cases nobody is assigned to.")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Only cases opened through this channel.")]
SearchOpt = Annotated[str | None, typer.Option(
    "--search", help="Free text in the order id, the customer or a note of the thread (any case).")]
WaitingOpt = Annotated[bool, typer.Option(
    "--waiting", help="Only cases waiting on the customer (the policy's waiting_states).")]
ViewOpt = Annotated[str | None, typer.Option(
    "--view", help="A saved view: breaching_soon, mine, unassigned, waiting_on_customer, or the policy's own.")]


@dataclass
class Selection:
    """The filters given on the command line, as ``Engine.find`` takes them."""

    kind: str | None = None
    state: str | None = None
    order: str | None = None
    customer: str | None = None
    overdue: bool = False
    due_before: str | None = None
    due_within: str | None = None
    now: str | None = None
    queue: str | None = None
    mine: bool = False
    assignee: str | None = None
    unassigned: bool = False
    channel: str | None = None
    search: str | None = None
    waiting: bool = False
    view: str | None = None

    def find_filters(self, actor: str | None) -> dict[str, Any]:
        """The given filters as keyword arguments of ``Engine.find`` (none given: none); ``actor``: who --mine
        and the view ``mine`` mean."""
        if sum((self.mine, self.assignee is not None, self.unassigned)) > 1:
            raise InvalidInput("--mine, --assignee and --unassigned exclude each other; give one", field="assignee")
        me = actor_of(actor, None).id
        found: dict[str, Any] = {
            "kind": self.kind, "state": self.state, "order_id": self.order, "customer": self.customer,
            "overdue": self.overdue, "queue": self.queue, "unassigned": self.unassigned, "channel": self.channel,
            "assignee": me if self.mine else self.assignee, "text": self.search, "waiting": self.waiting,
            "due_within": self.due_within, "view": self.view,
            "due_before": parse_instant(self.due_before, "--due-before") if self.due_before else None,
            "now": parse_instant(self.now, "--now") if self.now else None}
        given = {k: v for k, v in found.items() if v not in (None, False)}
        if self.view is not None:
            given["me"] = me
        return given
