"""Commands on cases: open, import, fire, check, next, show, history, refused openings, list."""

from typing import Annotated

import typer

from casework import InvalidImportFile, InvalidInput, terminal
from casework.commands.common import (
    EXIT_REFUSED,
    ActorOpt,
    BatchOpt,
    EvidenceOpt,
    FactOpt,
    JsonOpt,
    KeyOpt,
    KindOpt,
    LangOpt,
    NumberArg,
    RevealOpt,
    RoleOpt,
    actor_of,
    as_typed,
    data_of,
    engine_of,
    messages_of,
    notice,
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


@app.command("open")
def open_case(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="refund, return, dispute or complaint")],
    order: Annotated[str | None, typer.Option("--order", help="The order id.")] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="Amount asked for (or disputed), e.g. 59.00")] = None,
    paid: Annotated[str | None, typer.Option("--paid", help="Amount paid for the order, e.g. 59.00")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Item category, e.g. apparel")] = None,
    delivered: Annotated[str | None, typer.Option("--delivered", help="Delivery date, e.g. 2026-11-02")] = None,
    purchased: Annotated[str | None, typer.Option("--purchased", help="Purchase date, e.g. 2026-10-30")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, e.g. no_reason or defective")] = None,
    condition: Annotated[str | None, typer.Option("--condition", help="unopened, unused, used or damaged")] = None,
    evidence: EvidenceOpt = None,
    fact: FactOpt = None,
    channel: Annotated[str | None, typer.Option("--channel", help="app, web, chat, hotline, email or social")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="The customer's id.")] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="ISO currency code, e.g. CNY")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a case and print it with its after-sales number.

    Example: casework open return --order SO-1 --delivered 2026-11-12 --reason defective
    --evidence order_record --evidence photo=IMG_1.jpg
    """
    named = {"order_id": order, "amount": amount, "paid": paid, "category": category, "delivered": delivered,
             "purchased": purchased, "reason": reason, "condition": condition, "customer": customer,
             "currency": currency}
    money_and_dates = [f for f in ("amount", "paid", "delivered", "purchased") if named[f] is not None]
    engine = engine_of(ctx)
    with refusals(as_json), as_typed(money_and_dates):
        case = engine.open(kind, data_of(evidence, fact, **named), actor=actor_of(actor, role), channel=channel,
                           key=key)
    notice(engine)
    show_case(case, as_json)


@app.command("import")
def import_cases(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines file, one record per line ('-' reads stdin).")],
    actor: ActorOpt = None,
    role: RoleOpt = None,
    batch: BatchOpt = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Open many cases from JSON Lines, a batch per transaction, each exactly as `open` would.

    A record: {"kind": "refund", "facts": {"order_id": "SO-1", "amount": "59.00", "paid": "59.00"},
    "channel": "app"}. A bad record stops the import at FILE:LINE (earlier batches stay opened).
    """
    engine, who = engine_of(ctx), actor_of(actor, role)
    with terminal.progress("importing", shown=not as_json) as advance:
        try:
            report = engine.import_file(file, actor=who, batch=batch, progress=advance)
        except InvalidImportFile as bad:  # --json's error type stays InvalidInput, as scripts have seen it
            raise InvalidInput(str(bad), field=bad.field) from None
    notice(engine)
    span = f" ({report.first} … {report.last})" if report.count else ""
    terminal.render(as_json, lambda: {"file": file, **report.to_json()},
                    lambda: f"imported {report.count} case(s){span} in {report.seconds:.2f} s")


@app.command()
def fire(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The after-sales number, e.g. RF-20261122-000042")],
    event: Annotated[str, typer.Argument(help="The event, e.g. approve (see 'casework next NUMBER')")],
    actor: ActorOpt = None,
    role: RoleOpt = None,
    evidence: EvidenceOpt = None,
    fact: FactOpt = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the trail (a resolution, a reason).")] = None,
    key: KeyOpt = None,
    expected_version: Annotated[int | None, typer.Option(
        "--expected-version", help="Refuse if the case is no longer at this version.")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fire an event on a case; prints the case, or every reason it was refused (exit 1).

    Example: casework fire RF-20261122-000042 approve --role agent --actor alice
    """
    data = data_of(evidence, fact, note=note)
    engine = engine_of(ctx, lang)
    with refusals(as_json, number, engine, lang):
        case = engine.fire(number, event, actor=actor_of(actor, role), data=data, key=key,
                           expected_version=expected_version)
    show_case(case, as_json)


@app.command()
def check(
    ctx: typer.Context,
    number: NumberArg,
    event: Annotated[str, typer.Argument(help="The event to try, e.g. approve")],
    actor: ActorOpt = None,
    role: RoleOpt = None,
    evidence: EvidenceOpt = None,
    fact: FactOpt = None,
    note: Annotated[str | None, typer.Option("--note", help="A note, as fire would get it.")] = None,
    lang: LangOpt = None,
    audience: Annotated[str, typer.Option(
        "--audience", help="Whose message to show under the table: customer or operator (JSON always has "
        "customer_message).")] = "operator",
    as_json: JsonOpt = False,
) -> None:
    """Dry run: every guard's verdict on EVENT, with where in the policy it is written. Writes nothing.

    Exit 0 if the event would be allowed, 1 if refused. Example: casework check RT-20261122-000007 approve
    """
    from casework.messages import AUDIENCES
    from casework.values import one_of

    one_of(audience, AUDIENCES, "audience", field="audience")  # before any work, --json or not
    engine = engine_of(ctx, lang)
    decision = engine.check(number, event, actor=actor_of(actor, role), data=data_of(evidence, fact, note=note))
    cited = engine.cite(decision)  # the pinned version's own text, never the local file
    if as_json:
        terminal.dump(terminal.decision_json(number, decision, messages_of(engine, decision, lang, number), cited))
    else:
        terminal.show(terminal.decision_table(number, decision, cited),
                      *terminal.told(decision, messages_of(engine, decision, lang, number, audience), audience))
    if not decision.allowed:
        raise typer.Exit(EXIT_REFUSED)


@app.command("next")
def next_events(
    ctx: typer.Context,
    number: NumberArg,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every event possible from the case's state, each marked allowed or refused with why.

    Example: casework next RF-20261122-000042 --role supervisor
    """
    engine = engine_of(ctx, lang)
    decisions = engine.next_events(number, actor=actor_of(actor, role))
    said = [messages_of(engine, d, lang, number) for d in decisions]
    terminal.render(as_json, lambda: terminal.next_json(decisions, said),
                    lambda: terminal.next_table(number, decisions, said))


@app.command()
def show(ctx: typer.Context, number: NumberArg, reveal: RevealOpt = False, as_json: JsonOpt = False) -> None:
    """Show a case: state, facts, evidence, policy version and deadlines (personal data masked).

    Example: casework show RF-20261122-000042 --json
    """
    from casework.terminal import desk

    engine = engine_of(ctx)
    case = engine.get(number, reveal=reveal)
    notes, paused = engine.thread(number), engine.resolution_paused(case)
    terminal.render(as_json, lambda: {**case.to_json(), "resolution_paused": paused,
                                      "notes": [n.to_json() for n in notes]},
                    lambda: iter([terminal.case_panel(case, paused=paused), *desk.thread(case.number, notes)]))


@app.command()
def history(ctx: typer.Context, number: NumberArg, reveal: RevealOpt = False, as_json: JsonOpt = False) -> None:
    """The audit trail of a case: every applied change and refused attempt, who, when and why.

    Example: casework history RF-20261122-000042
    """
    entries = engine_of(ctx).history(number, reveal=reveal)
    terminal.render(as_json, lambda: [e.to_json() for e in entries], lambda: terminal.history(number, entries))


@app.command("refused-openings")
def refused_openings(ctx: typer.Context, kind: KindOpt = None, reveal: RevealOpt = False,
                     as_json: JsonOpt = False) -> None:
    """Openings the rules refused, oldest first: no case was opened, but each attempt is on the audit trail.

    Example: casework refused-openings --kind refund
    """
    entries = engine_of(ctx).refused_openings(kind=kind, reveal=reveal)
    terminal.render(as_json, lambda: [e.to_json() for e in entries], lambda: terminal.refused_openings(entries))


@app.command("list")
def list_cases(
    ctx: typer.Context,
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
    actor: ActorOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many cases.")] = 50,
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List cases, newest first (most urgent first with --overdue, --due-before or --due-within; personal
    data masked).

    Example: casework list --kind return --state under_review; casework list --view breaching_soon
    """
    chosen = Selection(kind, state, order, customer, overdue, due_before, due_within, now, queue, mine, assignee,
                       unassigned, channel, search, waiting, view)
    found = engine_of(ctx).find(limit=limit, reveal=reveal, **chosen.find_filters(actor))
    terminal.render(as_json, lambda: [c.to_json() for c in found], lambda: terminal.case_table(found))
