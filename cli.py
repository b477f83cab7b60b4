"""casework's operator CLI: a thin shell over the library (parse, call, render).

Exit codes: 0 success; 1 refused by the rules (denied, not available, lost a concurrent update);
2 bad input (usage, malformed value, unknown case, invalid policy file, unreachable database).
Every command takes ``--json`` and then prints exactly one JSON document on stdout; errors are one
line on stderr, never a traceback. What a command shows on a terminal is drawn by casework.terminal.
"""

import asyncio
import getpass
import os
import signal
import sys
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

import casework
from casework import (
    Actor,
    Case,
    CaseworkError,
    Decision,
    Engine,
    InvalidImportFile,
    InvalidInput,
    TransitionDenied,
    parse_instant,
    parse_zone,
    terminal,
)
from casework.terminal import authoring, shell, versions
from casework.terminal import relay as relay_view

EXIT_REFUSED, EXIT_BAD_INPUT = shell.EXIT_REFUSED, shell.EXIT_BAD_INPUT


app = typer.Typer(
    cls=shell.Group,
    help="casework: after-sales cases (refunds, returns, disputes, complaints) from the terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
NumberArg = Annotated[str, typer.Argument(help="The after-sales number.")]
ActorOpt = Annotated[str | None, typer.Option(
    "--actor", help="Who acts (default: $CASEWORK_ACTOR, else your OS user name).", show_default=False)]
RoleOpt = Annotated[str | None, typer.Option(
    "--role", help="customer, agent, supervisor or system (default: $CASEWORK_ROLE, else agent).")]
EvidenceOpt = Annotated[list[str] | None, typer.Option(
    "--evidence", help="Evidence as TYPE or TYPE=REF, repeatable, e.g. --evidence photo=IMG_1.jpg")]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Show personal data (phone, email, …) unmasked.")]
FactOpt = Annotated[list[str] | None, typer.Option(
    "--fact", help="Any other fact as KEY=VALUE, repeatable, e.g. --fact flags=vip")]
LangOpt = Annotated[str | None, typer.Option(
    "--lang", help="Language of the reason messages, e.g. en or zh-CN (default: the case's locale fact, else en).")]
KeyOpt = Annotated[str | None, typer.Option("--key", help="Idempotency key: repeating it repeats nothing.")]
KindOpt = Annotated[str | None, typer.Option("--kind", help="refund, return, dispute or complaint")]
OpenKindOpt = Annotated[str | None, typer.Option("--kind", help="Only open cases of this kind.")]
OpenStateOpt = Annotated[str | None, typer.Option("--state", help="Only open cases in this state.")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Cases per transaction.")]


@dataclass
class Settings:
    """The global options; the engine is made on first use (``--help`` and ``policy schema`` need none)."""

    db: str | None
    policies: str | None
    zone: ZoneInfo | None = None
    audit_key_file: str | None = None
    override: bool = False  # --policies given on the command line: it overrides the published version
    schema: str | None = None  # where casework's tables are: --db-schema / --db-prefix
    prefix: str = ""
    _engine: Engine | None = field(default=None, init=False, repr=False)

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.db, policies=self.policy_path(), audit_key=self.audit_key(),
                                  override_published=self.override, schema=self.schema, prefix=self.prefix)
            terminal.use_zone(self.zone or self._engine.zone())  # the desk's: --tz, else the policy's
        return self._engine

    def audit_key(self) -> str | None:
        """The audit key's secret: --audit-key-file / $CASEWORK_AUDIT_KEY_FILE, else $CASEWORK_AUDIT_KEY."""
        if self.audit_key_file:
            try:
                return Path(self.audit_key_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InvalidInput(f"cannot read the audit key file {self.audit_key_file}: {exc.strerror}",
                                   field="audit_key_file") from None
        return os.environ.get("CASEWORK_AUDIT_KEY") or None

    def policy_path(self) -> str | None:
        """--policies, else ./policies.yaml when there is one, else None (the packaged default)."""
        return self.policies or ("policies.yaml" if Path("policies.yaml").is_file() else None)


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(
        "--db", envvar="CASEWORK_DB",
        help="Database URL or SQLite file (default: casework.db here), e.g. postgresql+psycopg://u@host/db")] = None,
    policies: Annotated[str | None, typer.Option(
        "--policies", envvar="CASEWORK_POLICIES",
        help="Policy file (default: ./policies.yaml if present, else the packaged default).")] = None,
    tz: Annotated[str | None, typer.Option(
        "--tz", envvar="CASEWORK_TZ", help="Show times in this zone, e.g. Europe/Berlin (default: the policy's).")
    ] = None,
    audit_key_file: Annotated[str | None, typer.Option(
        "--audit-key-file", envvar="CASEWORK_AUDIT_KEY_FILE",
        help="File holding the audit key that authenticates the trail (else $CASEWORK_AUDIT_KEY); keep it "
             "outside the database.")] = None,
    db_schema: Annotated[str | None, typer.Option(
        "--db-schema", envvar="CASEWORK_DB_SCHEMA",
        help="PostgreSQL schema holding casework's tables (default: the connection's own).")] = None,
    db_prefix: Annotated[str, typer.Option(
        "--db-prefix", envvar="CASEWORK_DB_PREFIX",
        help="Prefix of casework's table names, e.g. cw_ (default: none).")] = "",
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=lambda value: _print_version(value))] = False,
) -> None:
    ctx.obj = Settings(db, policies, parse_zone(tz, "--tz") if tz else None, audit_key_file,
                       override=_given_here(ctx, "policies"), schema=db_schema, prefix=db_prefix)


def _given_here(ctx: typer.Context, option: str) -> bool:
    """Whether ``option`` was given on the command line (not by its environment variable, nor by default)."""
    return getattr(ctx.get_parameter_source(option), "name", None) == "COMMANDLINE"


def _print_version(value: bool) -> None:
    if value:
        print(casework.__version__)
        raise typer.Exit(0)


# ---- parsing helpers ----------------------------------------------------------------------------------
def _actor(actor: str | None, role: str | None) -> Actor:
    """--actor, else $CASEWORK_ACTOR, else the OS user; --role, else $CASEWORK_ROLE, else agent."""
    who = actor or os.environ.get("CASEWORK_ACTOR")
    if not who:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "operator"
    return Actor(who, role or os.environ.get("CASEWORK_ROLE") or "agent")


def _data(evidence: list[str] | None, fact: list[str] | None, **named: str | None) -> dict[str, Any]:
    """The facts or event data the options give: each --fact KEY=VALUE, the named options set, --evidence."""
    data: dict[str, Any] = {}
    for item in fact or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--fact {item!r} is malformed; expected KEY=VALUE, like flags=vip", field="fact")
        data[key.strip()] = value.strip()
    data.update({key: value for key, value in named.items() if value is not None})
    if evidence:
        data["evidence"] = list(evidence)
    return data


def _engine(ctx: typer.Context, lang: str | None = None) -> Engine:
    """The engine; with ``lang``, once it is known the policy has messages in that language (else exit 2)."""
    settings: Settings = ctx.obj
    engine = settings.engine()
    if lang is not None:
        engine.language(lang)
    return engine


def _notice(engine: Engine) -> None:
    """Warn (one line on stderr) when the local policy file differs from the published one, or overrides it."""
    if engine.policy_notice:
        sys.stderr.write(f"casework: warning: {engine.policy_notice}\n")


# ---- rendering helpers (what is drawn, and how, is casework.terminal's) ------------------------------
def _show_case(case: Case, as_json: bool) -> None:
    terminal.render(as_json, case.to_json, lambda: terminal.case_panel(case))


def _said(engine: Engine, decision: Decision, lang: str | None, number: str | None,
          audience: str = "customer") -> list[str]:
    """What ``audience`` is told about each reason of a refusal (:meth:`Engine.messages`)."""
    try:
        return engine.messages(decision, audience=audience, lang=lang, number=number)
    except CaseworkError:  # the messages are a courtesy: never fail a command for them
        return [r.message for r in decision.reasons]


@contextmanager
def _refusals(as_json: bool, number: str | None = None, engine: Engine | None = None,
              lang: str | None = None) -> Iterator[None]:
    """Render a policy refusal (exit 1): reasons on stdout (with the customer messages when the
    engine is given), one line on stderr."""
    try:
        yield
    except TransitionDenied as denied:
        decision = denied.decision
        number = number or denied.number
        said = _said(engine, decision, lang, number) if engine is not None else None
        terminal.render(as_json, lambda: terminal.decision_json(number, decision, said),
                        lambda: terminal.refusal(number, decision, said or ()))
        sys.stderr.write(f"casework: refused: {'; '.join(decision.codes)}\n")
        raise typer.Exit(EXIT_REFUSED) from None


@contextmanager
def _as_typed(options: Collection[str]) -> Iterator[None]:
    """An error about a fact set by the option of the same name names the option the user typed: the
    library's ``amount 'abc' is not a valid amount: ...`` reads ``--amount 'abc' is not ...``."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field not in options or not str(exc).startswith(f"{exc.field} "):
            raise
        raise InvalidInput(f"--{exc}", field=exc.field, value=exc.value) from None


# ---- commands -----------------------------------------------------------------------------------------
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
    engine = _engine(ctx)
    with _refusals(as_json), _as_typed(money_and_dates):
        case = engine.open(kind, _data(evidence, fact, **named), actor=_actor(actor, role), channel=channel, key=key)
    _notice(engine)
    _show_case(case, as_json)


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
    engine, who = _engine(ctx), _actor(actor, role)
    with terminal.progress("importing", shown=not as_json) as advance:
        try:
            report = engine.import_file(file, actor=who, batch=batch, progress=advance)
        except InvalidImportFile as bad:  # --json's error type stays InvalidInput, as scripts have seen it
            raise InvalidInput(str(bad), field=bad.field) from None
    _notice(engine)
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
    data = _data(evidence, fact, note=note)
    engine = _engine(ctx, lang)
    with _refusals(as_json, number, engine, lang):
        case = engine.fire(number, event, actor=_actor(actor, role), data=data, key=key,
                           expected_version=expected_version)
    _show_case(case, as_json)


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

    engine = _engine(ctx, lang)
    with _refusals(as_json, number, engine, lang):
        case = engine.reject(number, reason, actor=_actor(actor, role), note=note, key=key)
    told = engine.rejection_message(number, lang=lang)
    terminal.render(as_json, lambda: {**case.to_json(), "customer_message": told},
                    lambda: iter([terminal.case_panel(case), *desk.labelled("Customer message", told)]))


@app.command()
def note(
    ctx: typer.Context,
    number: NumberArg,
    text: Annotated[str, typer.Argument(help="The note.")],
    internal: Annotated[bool, typer.Option("--internal", help="For the desk only (the default for staff).")] = False,
    to_customer: Annotated[bool, typer.Option("--to-customer", help="A reply the customer sees.")] = False,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a note to a case's thread (audited; the case's state and facts stay as they are).

    Example: casework note RT-20261122-000007 "photo received, checking with the warehouse" --internal
    """
    from casework.terminal import desk

    if internal and to_customer:
        raise InvalidInput("--internal and --to-customer exclude each other; give one", field="audience")
    audience = "customer" if to_customer else "internal" if internal else None
    engine = _engine(ctx)
    with _refusals(as_json, number):
        case = engine.note(number, text, actor=_actor(actor, role), audience=audience)
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
    with _refusals(as_json, number):
        case = _engine(ctx).assign(number, to, actor=_actor(actor, role))
    _show_case(case, as_json)


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
    with _refusals(as_json, number):
        case = _engine(ctx).prioritize(number, level, actor=_actor(actor, role))
    _show_case(case, as_json)


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
    engine = _engine(ctx, lang)
    decision = engine.check(number, event, actor=_actor(actor, role), data=_data(evidence, fact, note=note))
    cited = engine.cite(decision)  # the pinned version's own text, never the local file
    if as_json:
        terminal.dump(terminal.decision_json(number, decision, _said(engine, decision, lang, number), cited))
    else:
        terminal.show(terminal.decision_table(number, decision, cited),
                      *terminal.told(decision, _said(engine, decision, lang, number, audience), audience))
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
    engine = _engine(ctx, lang)
    decisions = engine.next_events(number, actor=_actor(actor, role))
    said = [_said(engine, d, lang, number) for d in decisions]
    terminal.render(as_json, lambda: terminal.next_json(decisions, said),
                    lambda: terminal.next_table(number, decisions, said))


@app.command()
def show(ctx: typer.Context, number: NumberArg, reveal: RevealOpt = False, as_json: JsonOpt = False) -> None:
    """Show a case: state, facts, evidence, policy version and deadlines (personal data masked).

    Example: casework show RF-20261122-000042 --json
    """
    from casework.terminal import desk

    engine = _engine(ctx)
    case = engine.get(number, reveal=reveal)
    notes = engine.thread(number)
    terminal.render(as_json, lambda: {**case.to_json(), "notes": [n.to_json() for n in notes]},
                    lambda: iter([terminal.case_panel(case), *desk.thread(case.number, notes)]))


@app.command()
def history(ctx: typer.Context, number: NumberArg, reveal: RevealOpt = False, as_json: JsonOpt = False) -> None:
    """The audit trail of a case: every applied change and refused attempt, who, when and why.

    Example: casework history RF-20261122-000042
    """
    entries = _engine(ctx).history(number, reveal=reveal)
    terminal.render(as_json, lambda: [e.to_json() for e in entries], lambda: terminal.history(number, entries))


@app.command("refused-openings")
def refused_openings(ctx: typer.Context, kind: KindOpt = None, reveal: RevealOpt = False,
                     as_json: JsonOpt = False) -> None:
    """Openings the rules refused, oldest first: no case was opened, but each attempt is on the audit trail.

    Example: casework refused-openings --kind refund
    """
    entries = _engine(ctx).refused_openings(kind=kind, reveal=reveal)
    terminal.render(as_json, lambda: [e.to_json() for e in entries], lambda: terminal.refused_openings(entries))


@app.command("list")
def list_cases(
    ctx: typer.Context,
    kind: KindOpt = None,
    state: Annotated[str | None, typer.Option("--state", help="Only cases in this state.")] = None,
    order: Annotated[str | None, typer.Option("--order", help="Only cases of this order id.")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's cases.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open cases past a deadline.")] = False,
    due_before: Annotated[str | None, typer.Option("--due-before", help="Open cases due by this time (ISO).")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Only cases in this queue, e.g. supervisor.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only cases assigned to you (the acting operator).")] = False,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Only cases assigned to this operator.")] = None,
    unassigned: Annotated[bool, typer.Option("--unassigned", help="Only open cases nobody is assigned to.")] = False,
    channel: Annotated[str | None, typer.Option("--channel", help="Only cases opened through this channel.")] = None,
    actor: ActorOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many cases.")] = 50,
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List cases, newest first (personal data masked).

    Example: casework list --kind return --state under_review
    """
    due = parse_instant(due_before, "--due-before") if due_before else None
    if sum((mine, assignee is not None, unassigned)) > 1:
        raise InvalidInput("--mine, --assignee and --unassigned exclude each other; give one", field="assignee")
    if mine:
        assignee = _actor(actor, None).id
    found = _engine(ctx).find(kind=kind, state=state, order_id=order, customer=customer, overdue=overdue,
                              due_before=due, queue=queue, limit=limit, reveal=reveal, assignee=assignee,
                              unassigned=unassigned, channel=channel)
    terminal.render(as_json, lambda: [c.to_json() for c in found], lambda: terminal.case_table(found))


@app.command()
def verify(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="A digest an earlier verify printed (SEQ:LINK): prove the chain extends it.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every case's trail (hashes, replay against its row) and the global chain; print a digest to keep.

    With --since DIGEST, also prove today's chain extends the one the digest named (append-only between).
    With an audit key (--audit-key-file, $CASEWORK_AUDIT_KEY) every entry is authenticated with it.
    Exit 1 if anything is broken.

    Example: casework verify --db cases.db --since 2041:9c1f…   (the digest the last verify printed)
    """
    report = _engine(ctx).verify(since=since)
    terminal.render(as_json, report.to_json, lambda: terminal.verification(report))
    if not report.ok:
        sys.stderr.write(f"casework: verify found {len(report.broken_cases)} broken case(s): "
                         f"{', '.join(report.broken_cases)}\n")
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def export(
    ctx: typer.Context,
    redact: Annotated[bool, typer.Option("--redact", help="Replace personal data with [redacted].")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the whole audit trail as JSON Lines, one entry per line (--redact for sharing).

    Example: casework export --redact -o audit.jsonl
    """
    from casework import jsonl

    entries = _engine(ctx).export(redact=redact)
    if as_json and not output:
        terminal.dump(list(entries))
    elif not output:
        jsonl.write(entries, sys.stdout)
    else:
        count = jsonl.write(entries, output)
        if as_json:
            terminal.dump({"file": output, "entries": count, "redacted": redact})
        else:
            print(f"{count} audit entries written to {output}" + (" (personal data redacted)" if redact else ""))


@app.command()
def relay(
    ctx: typer.Context,
    servers: Annotated[str, typer.Option(
        "--nats", envvar="CASEWORK_NATS", help="NATS server URL(s), comma-separated.")] = "nats://127.0.0.1:4222",
    stream: Annotated[str, typer.Option("--stream", help="JetStream stream (created if missing).")] = "CASEWORK",
    subject: Annotated[str, typer.Option(
        "--subject", help="Subject prefix: each change goes to PREFIX.KIND.EVENT.")] = "casework",
    name: Annotated[str, typer.Option("--name", help="The relay's name: its cursor in the database.")] = "default",
    once: Annotated[bool, typer.Option("--once", help="Publish what is there, then stop (drain).")] = False,
    start: Annotated[int | None, typer.Option(
        "--from", min=0, help="Move the cursor to this global id first (publish again what follows it).")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=10000, help="Changes read per query.")] = 500,
    window: Annotated[int, typer.Option(
        "--window", min=1, max=65536, help="Acknowledgements awaited at once (1: strictly one by one).")] = 256,
    give_up: Annotated[float | None, typer.Option(
        "--give-up-after", min=0, help="Stop with exit 2 after the broker failed this many seconds in a row "
        "(default: 30 with --once, never without).")] = None,
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Publish the outbox to NATS JetStream, at least once, in commit order, with the global id as the message id
    (JetStream drops copies). Waits out a broker that is down; stops cleanly on SIGTERM or Ctrl-C.

    Example: casework relay --nats nats://127.0.0.1:4222 --stream CASEWORK --once
    """
    from casework import Relay

    engine = _engine(ctx)
    relayer = Relay(engine, servers=servers, stream=stream, subject=subject, name=name, batch=batch, window=window,
                    reveal=reveal)
    if start is not None:
        relayer.rewind(start)
    target = f"{relayer.shown} {stream} ({subject}.>)"

    async def run(progress: Any) -> casework.RelayProgress:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)  # finish the acknowledgements in flight, store the cursor
        return await relayer.run(once=once, stop=stop, progress=progress,
                                 give_up_after=give_up if give_up is not None else (30.0 if once else None))

    with relay_view.watch(target, shown=not as_json) as progress:
        final = asyncio.run(run(progress))
    terminal.render(as_json, lambda: {**final.to_json(), "stream": stream, "subject": subject, "name": name},
                    lambda: relay_view.summary(final, target))


@app.command()
def demo(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Option(
        "--file", help="Keep the demo database in this file (default: a new temporary file).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Play the after-sales stories end to end on a fresh embedded database, then verify it.

    Example: casework demo
    """
    from casework import demo as stories

    settings: Settings = ctx.obj
    path = stories.fresh_database(file)
    engine, clock = stories.demo_engine(path, settings.policy_path())
    with engine:
        if not as_json:
            terminal.show(*terminal.demo_title(path, engine.policy))
        steps: list[stories.Step] = []
        for step in stories.run(engine, clock):
            if not as_json:
                terminal.show(*terminal.demo_step(step, first_of_story=not steps or steps[-1].story != step.story))
            steps.append(step)
        report = engine.verify()
    terminal.render(as_json, lambda: {"database": str(path), "steps": [s.to_json() for s in steps],
                                      "verify": report.to_json(), "digest": str(report.digest)},
                    lambda: terminal.demo_end(path, report))
    if not report.ok:
        raise typer.Exit(EXIT_REFUSED)


# ---- database ----------------------------------------------------------------------------------------
db_app = typer.Typer(help="Database schema: upgrade it after installing a new casework.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Run every pending schema migration (an empty database gets the whole schema).

    Example: casework --db postgresql+psycopg://casework@db/casework db upgrade
    """
    settings: Settings = ctx.obj
    before, after = casework.upgrade_database(settings.db, audit_key=settings.audit_key(), schema=settings.schema,
                                              prefix=settings.prefix)
    if as_json:
        terminal.dump({"before": before, "after": after})
    elif before == after:
        print(f"schema is up to date (version {after})")
    else:
        print(f"schema upgraded from version {before or '(empty)'} to {after}")


# ---- service clock ------------------------------------------------------------------------------------
sla_app = typer.Typer(help="Service clock: fire due timers, mark and escalate breached deadlines, report.",
                      no_args_is_help=True)
app.add_typer(sla_app, name="sla")


@sla_app.command("sweep")
def sla_sweep(
    ctx: typer.Context,
    now: Annotated[str | None, typer.Option(
        "--now", help="Act as of this instant (ISO); a later one than the present only with --dry-run.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what is due; write nothing.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Handle at most this many cases.")] = None,
    batch: BatchOpt = 200,
    as_json: JsonOpt = False,
) -> None:
    """Fire every due timer and mark every missed deadline, as the system actor (safe to run from cron).

    Example: casework sla sweep --dry-run --now 2026-11-24T09:00:00+08:00
    """
    at = parse_instant(now, "--now") if now else None
    engine = _engine(ctx)
    with terminal.progress("sweeping", shown=not as_json) as advance, _as_typed({"now"}):
        report = engine.sweep(now=at, dry_run=dry_run, limit=limit, batch=batch, progress=advance)
    terminal.render(as_json, report.to_json, lambda: terminal.sweep_table(report))


@sla_app.command("report")
def sla_report(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="Cases opened at or after this time (ISO; a date means midnight, policy zone).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Cases opened before this time; audit entries from then on are ignored.")] = None,
    kind: KindOpt = None,
    by: Annotated[str | None, typer.Option("--by", help="Group by channel, kind or agent (first responder).")] = None,
    html: Annotated[str | None, typer.Option("--html", help="Also write a self-contained HTML report to FILE.",
                                             metavar="FILE")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Times to first response and resolution, breach rates, refusals and satisfaction of the cases opened in a period.

    Example: casework sla report --since 2026-11-01 --until 2026-12-01 --by agent --html sla.html
    """
    report = _engine(ctx).report(since=since, until=until, kind=kind, by=by)
    if html is not None:
        from casework.report_html import write_html

        write_html(report, html)
    if as_json:
        terminal.dump(report.to_json())
        return
    from casework.terminal import report as charts

    terminal.show(*charts.sla_report(report))
    if html is not None:
        terminal.show(f"HTML report written to {html}")


# ---- policy authoring ---------------------------------------------------------------------------------
policy_app = typer.Typer(help="Policy authoring: check, schema, test and simulate policies before they reach "
                              "customers; adopt a new version for open cases.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _policy_file(ctx: typer.Context, file: str | None) -> Path:
    from casework.policies.files import default_policy_path

    settings: Settings = ctx.obj
    chosen = file or settings.policy_path()
    return Path(chosen) if chosen else default_policy_path()


@policy_app.command("check")
def policy_check(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(help="Policy file (default: the one in force).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate a policy file: schema, references, contradictions; FILE:LINE:COL for each problem.

    Exit 0 if usable (with --strict: and no warnings), 2 otherwise. Example: casework policy check new.yaml --strict
    """
    from casework.policies.authoring import check_policy

    path = _policy_file(ctx, file)
    report = check_policy(path, str(file) if file else path.name)
    terminal.render(as_json, lambda: report.to_json(strict), lambda: authoring.policy_check(report, strict))
    if not report.ok(strict):
        sys.stderr.write(f"casework: error: {report.summary(strict)}\n")
        raise typer.Exit(EXIT_BAD_INPUT)


@policy_app.command("schema")
def policy_schema(as_json: JsonOpt = False) -> None:
    """Print the JSON Schema of the policy format (for editor completion and inline errors).

    Example: casework policy schema > policies.schema.json
    """
    from casework.policies.authoring import schema_text

    print(schema_text(), end="")


@policy_app.command("test")
def policy_test(
    ctx: typer.Context,
    files: Annotated[list[str] | None, typer.Argument(help="Test suites (default: ./policies.test.yaml).")] = None,
    with_coverage: Annotated[bool, typer.Option(
        "--coverage", help="Also list the rules (and the pass/fail side of each) that no scenario exercises.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run policy test scenarios against the policy in force (--policies); exit 1 if any fails.

    Example: casework --policies new.yaml policy test policies.test.yaml --coverage
    """
    from casework.policies import load_policy
    from casework.policies.authoring import run_policy_test_files
    from casework.policies.coverage import coverage

    policy = load_policy(_policy_file(ctx, None))
    run = run_policy_test_files(policy, files or ["policies.test.yaml"])
    covered = coverage(policy, run.results) if with_coverage else None
    terminal.render(as_json, lambda: {**run.to_json(), **({"coverage": covered.to_json()} if covered else {})},
                    lambda: iter([*authoring.policy_tests(policy, run.results),
                                  *(authoring.rule_coverage(covered) if covered else ())]))
    if run.failed:
        sys.stderr.write(f"casework: policy test: {len(run.failed)} of {len(run.results)} scenario(s) failed\n")
        raise typer.Exit(EXIT_REFUSED)


@policy_app.command("explain")
def policy_explain(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="refund, return, dispute or complaint")],
    event: Annotated[str, typer.Option("--event", help="The event to judge, e.g. approve")],
    state: Annotated[str | None, typer.Option(
        "--state", help="The case's state (default: the kind's first).")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    fact: FactOpt = None,
    facts_json: Annotated[str | None, typer.Option(
        "--facts-json", help="A JSON object of facts, from FILE or - (standard input); --fact adds to it.")] = None,
    evidence: EvidenceOpt = None,
    now: Annotated[str | None, typer.Option(
        "--now", help="Decide as of this instant (ISO), e.g. 2026-11-22T10:00:00+08:00; default: now.")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every rule's verdict on EVENT for a case holding the given facts, each with its FILE:LINE; no case is
    stored or read (like opa eval --explain).

    Exit 0 if the event would be allowed, 1 if refused. Example: casework policy explain --kind return
    --event approve --state under_review --fact delivered=2026-11-10 --fact reason=no_reason
    --now 2026-11-22T10:00:00+08:00
    """
    from casework.messages import lang_for, language, messages_for
    from casework.policies import explain, load_policy
    from casework.policies.explanation import facts_from_json

    given = facts_from_json(facts_json) if facts_json is not None else {}
    given.update(_data(evidence, fact))
    at = parse_instant(now, "--now") if now else casework.system_clock()
    engine = _published_engine(ctx)
    policy = engine.policy if engine is not None else load_policy(_policy_file(ctx, None))
    decision = explain(policy, kind, event, given, _actor(actor, role), at, state=state)
    cited = engine.cite(decision) if engine is not None else []  # the published version's own text
    said = messages_for(policy, decision, "customer", language(policy, lang_for(given, lang)))
    version = {**policy.ref.to_json(), "published": engine is not None}
    terminal.render(as_json, lambda: {**terminal.decision_json(None, decision, said, cited), "now": at.isoformat(),
                                      "version": version},
                    lambda: authoring.explanation(decision, said, cited, "the published version" if engine else
                                                  policy.name))
    if not decision.allowed:
        raise typer.Exit(EXIT_REFUSED)


def _published_engine(ctx: typer.Context) -> Engine | None:
    """Without --policies, the engine when its database has a published version (policy explain judges by it);
    None otherwise (no database here, or nothing published), and nothing is created."""
    from casework.database import DEFAULT_DB

    settings: Settings = ctx.obj
    if settings.override or (settings.db is None and not Path(DEFAULT_DB.removeprefix("sqlite:///")).is_file()):
        return None
    engine = _engine(ctx)
    if engine.policies.published() is None:
        return None
    engine.policy  # noqa: B018 (loads the version in force, which says whether the local file differs)
    _notice(engine)
    return engine


@policy_app.command("simulate")
def policy_simulate(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The new policy file.")],
    kind: OpenKindOpt = None,
    state: OpenStateOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Flipped decisions listed (--json lists all).")] = 50,
    now: Annotated[str | None, typer.Option(
        "--now", help="Decide as of this instant (ISO), e.g. the first day of a promotion; default: now.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What-if: which open cases would FILE decide differently than their pinned policy? Writes nothing.

    Every event possible next is decided under both, as the least-privileged role allowed to fire it;
    flips are grouped by the rule that changed. Example: casework policy simulate new.yaml --kind return
    --now 2026-11-11T00:00:00+08:00
    """
    from casework.policies import load_policy

    at = parse_instant(now, "--now") if now else None
    with terminal.progress("simulating", shown=not as_json) as advance:
        report = _engine(ctx).simulate(load_policy(file), kind=kind, state=state, now=at, progress=advance)
    terminal.render(as_json, report.to_json, lambda: authoring.simulation(report, limit))


@policy_app.command("adopt")
def policy_adopt(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The policy file, or a stored VERSION (hash prefix or label), to "
                                               "move cases to.")],
    numbers: Annotated[list[str] | None, typer.Argument(help="Only these cases (no simulation, no prompt).")] = None,
    kind: OpenKindOpt = None,
    state: OpenStateOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Flipped decisions listed before asking.")] = 20,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move open cases to the policy in TARGET (a file, else a stored version): one audited adopt_policy entry
    per case (who, when, from which version to which). Given NUMBERs, those cases are moved (exit 1 if the
    version cannot take one: it is closed, or the version has no rules for its kind or state); else every open
    case of --kind/--state, after showing what simulate reports and asking for confirmation.

    Example: casework policy adopt new.yaml --kind return --state submitted --actor lin --role supervisor
    """
    engine, who = _engine(ctx), _actor(actor, role)
    new = _policy_or_version(engine, target)
    if numbers:
        if kind or state:
            raise InvalidInput("give NUMBERs or --kind/--state, not both: the numbers name the cases to move",
                               field="kind" if kind else "state")
        done = engine.adopt_cases(new, numbers, actor=who)
        terminal.render(as_json, done.to_json, lambda: authoring.adoption(done, new))
        if done.skipped:
            raise typer.Exit(EXIT_REFUSED)
        return
    if as_json and not yes:
        raise InvalidInput("--json needs --yes: the confirmation prompt cannot share stdout with the JSON "
                           "(see the report first with 'casework policy simulate FILE --json')", field="yes")
    with terminal.progress("simulating", shown=not as_json) as advance:
        plan = engine.plan_adoption(new, actor=who, kind=kind, state=state, progress=advance)
    report, chosen = plan.simulation, plan.numbers
    if not as_json:
        terminal.show(*authoring.simulation(report, limit))
    if not chosen:
        terminal.render(as_json, lambda: {"simulation": report.to_json(), "adopted": 0, "numbers": [],
                                          "already_on_policy": report.cases_checked, "skipped": []},
                        lambda: f"nothing to adopt: every chosen open case is already on {new.label} ({new.ref.short})")
        return
    if not yes:
        typer.confirm(f"Move {len(chosen)} open case(s) to policy {new.label} ({new.ref.short}) as {who.id} "
                      f"({who.role})?", abort=True, err=True)
    with terminal.progress("adopting", shown=not as_json, total=lambda: len(chosen)) as advance:
        done = engine.adopt_open_cases(new, actor=who, numbers=chosen, progress=advance)
    terminal.render(as_json, lambda: {"simulation": report.to_json(), **done.to_json()},
                    lambda: authoring.adoption(done, new))


def _policy_or_version(engine: Engine, target: str) -> casework.PolicySet:
    """The policy in the file ``target``, else the stored version it names (hash prefix or label)."""
    from casework.policies import load_policy

    return load_policy(target) if Path(target).is_file() else engine.stored_policy(target)


@policy_app.command("publish")
def policy_publish(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The policy file to publish (or a stored VERSION, to publish it again).")],
    tests: Annotated[list[str] | None, typer.Option(
        "--tests", help="Scenario tests to run first (repeatable); any failure refuses the publication.")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a policy version in force for new cases in every process on this database, whatever their directory.

    Checked as 'policy check' does (exit 2 with its errors), its tests run (exit 1 if any fails); who and when
    go on the publication chain that verify checks. Example: casework policy publish new.yaml --tests
    policies.test.yaml --actor lin --role supervisor
    """
    engine = _engine(ctx)
    policy = file if Path(file).is_file() else engine.stored_policy(file)
    done = engine.publish(policy, actor=_actor(actor, role), tests=tests or ())
    terminal.render(as_json, done.to_json, lambda: versions.published(done))


@policy_app.command("versions")
def policy_versions(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every policy version stored in the database: hash, label, file, loaded and published when (by whom), the
    one in force for new cases (*), and how many cases (open ones) are pinned to each."""
    found = _engine(ctx).policy_versions()
    terminal.render(as_json, lambda: [v.to_json() for v in found], lambda: versions.versions_table(found))


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="A hash prefix or a label (see 'casework policy versions').")],
    as_json: JsonOpt = False,
) -> None:
    """Print a stored version's text exactly as it was loaded. Example: casework policy show 3f2a9c > old.yaml"""
    row, text = _engine(ctx).version_text(version)
    if as_json:
        terminal.dump({"seq": row.seq, "hash": row.hash, "label": row.label, "name": row.name,
                       "loaded_at": row.loaded_at.isoformat(), "source": text})
    else:
        _write_text(text)


def _write_text(text: str) -> None:
    """A stored text as it is when piped (``> old.yaml`` gives the file back); on a terminal, with what would
    act on it (controls, bidirectional marks) shown as escapes."""
    sys.stdout.write(terminal.visible(text) if sys.stdout.isatty() else text)


@policy_app.command("diff")
def policy_diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="The older version (hash prefix or label).")],
    b: Annotated[str, typer.Argument(help="The newer version (hash prefix or label).")],
    as_json: JsonOpt = False,
) -> None:
    """Unified diff of two stored versions' texts. Example: casework policy diff 3f2a9c 8b1d04"""
    old, new, text = _engine(ctx).version_diff(a, b)
    if as_json:
        terminal.dump({"from": {"seq": old.seq, "hash": old.hash, "label": old.label},
                       "to": {"seq": new.seq, "hash": new.hash, "label": new.label}, "diff": text})
    else:
        _write_text(text)


@policy_app.command("diagram")  # DESIGN's contract: `casework policy ... diagram`; also top-level
@app.command()
def diagram(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Argument(help="refund, return, dispute or complaint")] = None,
    fmt: Annotated[str, typer.Option("--format", help="mermaid, dot, svg or png (svg/png need Graphviz).")] = "mermaid",
    all_kinds: Annotated[bool, typer.Option("--all", help="Write one file per kind into --output.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="File (or folder with --all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw a case kind's state machine, edges labelled with events, guards and roles of the policy.

    Example: casework diagram return --format mermaid
    """
    from casework.machines.diagram import render, write, write_all
    from casework.policies import load_policy

    policy = load_policy(_policy_file(ctx, None))
    if all_kinds:
        written = [str(path) for path in write_all(output or ".", fmt, policy)]
    elif kind is None:
        raise InvalidInput("diagram needs a KIND (refund, return, dispute, complaint) or --all", field="kind")
    elif output:
        write(kind, output, fmt, policy)
        written = [output]
    else:
        drawing = render(kind, fmt, policy)
        if isinstance(drawing, bytes):
            raise InvalidInput(f"--format {fmt} is binary; write it to a file with --output", field="format")
        if as_json:
            terminal.dump({"kind": kind, "format": fmt, "diagram": drawing})
        else:
            print(drawing, end="" if drawing.endswith("\n") else "\n")
        return
    if as_json:  # files written: --json lists them, and so does a terminal for --all
        terminal.dump({"written": written})
    elif all_kinds:
        print(*written, sep="\n")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
