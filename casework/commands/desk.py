"""The desk's commands: reject for a reason, notes, assignment, priority, bulk actions, the live desk."""

from typing import Annotated

import typer

from casework import InvalidInput, terminal
from casework.commands.common import (
    EXIT_REFUSED,
    ActorOpt,
    EvidenceOpt,
    FactOpt,
    JsonOpt,
    KeyOpt,
    KindOpt,
    LangOpt,
    NumberArg,
    RoleOpt,
    actor_of,
    data_of,
    engine_of,
    refusals,
    show_case,
)
from casework.commands.filters import (
    AssigneeOpt,
    ChannelOpt,
    CustomerOpt,
    DueBeforeOpt,
    DueWithinOpt,
    MineOpt,
    NowOpt,
    OrderOpt,
    OverdueOpt,
    QueueOpt,
    SearchOpt,
    Selection,
    StateOpt,
    UnassignedOpt,
    ViewOpt,
    WaitingOpt,
)

app = typer.Typer()


@app.command()
def reject(
    ctx: typer.Context,
    number: NumberArg,
    reason: Annotated[str, typer.Option(
        "--reason", help="One of the policy's rejection reasons, e.g. deadline_passed, condition, missing_proof, "
        "fraud.", show_default=False)],
    note: Annotated[str | None, typer.Option("--note", help="A note for the thread.")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    key: KeyOpt = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a case for one of the policy's rejection reasons; prints the case and the customer's message.

    Example: casework reject RT-20261122-000007 --reason deadline_passed
    """
    from casework.terminal import desk

    engine = engine_of(ctx, lang)
    with refusals(as_json, number, engine, lang):
        case = engine.reject(number, reason, actor=actor_of(actor, role), note=note, key=key)
    told = engine.rejection_message(number, lang=lang)
    terminal.render(as_json, lambda: {**case.to_json(), "customer_message": told},
                    lambda: iter([terminal.case_panel(case), *desk.labelled("Customer message", told)]))


@app.command()
def note(
    ctx: typer.Context,
    number: NumberArg,
    text: Annotated[str | None, typer.Argument(help="The note (or --reply CODE).", show_default=False)] = None,
    internal: Annotated[bool, typer.Option("--internal", help="For the desk only (the default for staff).")] = False,
    to_customer: Annotated[bool, typer.Option("--to-customer", help="A reply the customer sees.")] = False,
    reply: Annotated[str | None, typer.Option(
        "--reply", help="Send the policy's canned reply CODE to the customer, in their language.",
        show_default=False)] = None,
    lang: Annotated[str | None, typer.Option(
        "--lang", help="Language of the canned reply (default: the case's locale, else en).")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a note to a case's thread (audited; the case's state and facts stay as they are).

    Example: casework note RT-20261122-000007 "photo received, checking with the warehouse" --internal;
    casework note RT-20261122-000007 --reply need_photo   (the policy's text, in the customer's language)
    """
    from casework.terminal import desk

    if (text is None) == (reply is None):
        raise InvalidInput("note needs TEXT or --reply CODE (one of them)", field="note")
    if internal and to_customer:
        raise InvalidInput("--internal and --to-customer exclude each other; give one", field="audience")
    if reply is None and lang is not None:
        raise InvalidInput("--lang is the language of a canned reply; give it with --reply CODE", field="lang")
    if reply is not None and internal:
        raise InvalidInput("a canned reply is for the customer; it cannot be --internal", field="audience")
    audience = "customer" if to_customer else "internal" if internal else None
    engine, who = engine_of(ctx), actor_of(actor, role)
    with refusals(as_json, number):
        if reply is not None:
            case = engine.reply(number, reply, actor=who, lang=lang)
        else:
            case = engine.note(number, text or "", actor=who, audience=audience)
    notes = engine.thread(number)
    terminal.render(as_json, lambda: {"case": case.to_json(), "note": notes[-1].to_json()},
                    lambda: desk.thread(case.number, notes[-1:]))


@app.command()
def assign(
    ctx: typer.Context,
    number: NumberArg,
    to: Annotated[str | None, typer.Option("--to", help="The operator to assign the case to.",
                                           show_default=False)] = None,
    nobody: Annotated[bool, typer.Option("--nobody", help="Unassign the case.")] = False,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Assign a case to an operator (audited); --nobody puts it back in the unassigned queue.

    Example: casework assign RF-20261122-000042 --to alice
    """
    if (to is None) == (not nobody):
        raise InvalidInput("assign needs --to AGENT or --nobody (one of them)", field="to")
    with refusals(as_json, number):
        case = engine_of(ctx).assign(number, to, actor=actor_of(actor, role))
    show_case(case, as_json)


@app.command()
def priority(
    ctx: typer.Context,
    number: NumberArg,
    level: Annotated[int, typer.Argument(help="0-9, higher is more urgent.", show_default=False)],
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a case's priority (audited), by the roles the policy's desk.priority_roles names.

    Example: casework priority CP-20261122-000003 3 --role supervisor
    """
    with refusals(as_json, number):
        case = engine_of(ctx).prioritize(number, level, actor=actor_of(actor, role))
    show_case(case, as_json)


@app.command()
def bulk(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(help="The event to fire on every case found, e.g. review")],
    yes: Annotated[bool, typer.Option("--yes", help="Apply it (without: only preview each case's decision).")] = False,
    kind: KindOpt = None,
    state: StateOpt = None,
    order: OrderOpt = None,
    customer: CustomerOpt = None,
    search: SearchOpt = None,
    overdue: OverdueOpt = False,
    due_before: DueBeforeOpt = None,
    due_within: DueWithinOpt = None,
    now: NowOpt = None,
    queue: QueueOpt = None,
    mine: MineOpt = False,
    assignee: AssigneeOpt = None,
    unassigned: UnassignedOpt = False,
    waiting: WaitingOpt = False,
    view: ViewOpt = None,
    channel: ChannelOpt = None,
    evidence: EvidenceOpt = None,
    fact: FactOpt = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for each case's entry.")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    key: Annotated[str | None, typer.Option(
        "--key", help="Names the bulk action (default: derived from the event, filters and data); run again "
        "under the same key it applies nothing twice.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fire EVENT on every case the filters of `list` find: a preview of each case's decision, then --yes.

    Each case is decided and audited on its own; the summary counts applied, refused by reason and already
    applied (by an earlier run of the same bulk action). Exit 1 if --yes applied it and some were refused.
    Example: casework bulk review --kind refund --state submitted --role agent --yes
    """
    from casework.terminal import desk

    chosen = Selection(kind, state, order, customer, overdue, due_before, due_within, now, queue, mine, assignee,
                       unassigned, channel, search, waiting, view)
    report = engine_of(ctx).bulk_fire(event, actor=actor_of(actor, role), data=data_of(evidence, fact, note=note),
                                      key=key, apply=yes, **chosen.find_filters(actor))
    terminal.render(as_json, report.to_json, lambda: desk.bulk_report(report))
    if yes and report.count("refused"):
        raise typer.Exit(EXIT_REFUSED)


@app.command("desk")
def live_desk(
    ctx: typer.Context,
    kind: KindOpt = None,
    state: Annotated[str | None, typer.Option("--state", help="Only cases in this state (closed ones too).")] = None,
    order: OrderOpt = None,
    customer: CustomerOpt = None,
    search: SearchOpt = None,
    overdue: OverdueOpt = False,
    due_within: DueWithinOpt = None,
    queue: QueueOpt = None,
    mine: MineOpt = False,
    assignee: AssigneeOpt = None,
    unassigned: UnassignedOpt = False,
    waiting: WaitingOpt = False,
    view: ViewOpt = None,
    channel: ChannelOpt = None,
    closed: Annotated[bool, typer.Option("--all", help="Closed cases too (the queue is the open cases).")] = False,
    every: Annotated[float, typer.Option("--every", min=0, help="Seconds between two readings of the queue "
                                         "(0: only after an action or on r).")] = 5.0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many cases in the queue.")] = 200,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the queue the desk opens with (as list --json "
                                          "does) and exit, without taking the screen.")] = False,
) -> None:
    """The live desk: a full-screen queue (the filters of list) with the selected case, its notes and next events;
    keys to fire an event (f), add a note (n), take the case (a) or assign it (A), set its priority (p), filter
    (/), refresh (r) and quit (q).

    Example: casework desk --mine --actor alice; casework desk --view breaching_soon
    """
    from casework.commands.desk_app import DeskApp
    from casework.commands.desk_queue import QueueFilter

    filters = QueueFilter(kind=kind, state=state, queue=queue, assignee=assignee, channel=channel, order=order,
                          customer=customer, search=search, due_within=due_within, view=view, mine=mine,
                          unassigned=unassigned, overdue=overdue, waiting=waiting, all=closed)
    engine, who = engine_of(ctx), actor_of(actor, role)
    opening = engine.find(limit=limit, **filters.find_args(who))  # a bad filter is exit 2 here, before the screen
    if as_json:
        terminal.dump([c.to_json() for c in opening])
        return
    DeskApp(engine, who, filters=filters, every=every, limit=limit).run()
