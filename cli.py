"""casework's operator CLI: a thin shell over the library (parse, call, render).

Exit codes: 0 success; 1 refused by the rules (denied, not available, lost a concurrent update);
2 bad input (usage, malformed value, unknown case, invalid policy file, unreachable database).
Every command takes ``--json`` and then prints exactly one JSON document on stdout; errors are one
line on stderr, never a traceback.
"""

import getpass
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

import casework
from casework import (
    Actor,
    AuditEntry,
    Case,
    CaseworkError,
    Decision,
    Engine,
    FixedClock,
    InvalidInput,
    Refused,
    TransitionDenied,
    parse_instant,
    parse_money,
)

try:  # typer >= 0.24 vendors click as typer._click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef,import-not-found,unused-ignore]

if TYPE_CHECKING:
    from casework.report import SlaReport

T = TypeVar("T")
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


# ---- error handling: one line on stderr, one JSON document on stdout with --json ---------------------
def _json_requested(args: Sequence[str]) -> bool:
    return "--json" in args


def _emit_error(message: str, code: int, kind: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": {"type": kind, "message": message, "exit_code": code}}))
    sys.stderr.write(f"casework: error: {message}\n")
    sys.exit(code)


class _Group(TyperGroup):
    """Turns every error into one line and the contract's exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        as_json = _json_requested(argv)
        if not argv:  # bare `casework`: the help, as --help prints it
            argv = ["--help"]
        try:
            rv = super().main(argv, prog_name or "casework", complete_var, False, windows_expand_args, **extra)
        except UsageError as exc:
            hint = f" (see 'casework {exc.ctx.command_path.partition(' ')[2]} --help')".replace("  ", " ") \
                if exc.ctx is not None else ""
            _emit_error(exc.format_message().replace("\n", " ") + hint.replace(" )", ")"), EXIT_BAD_INPUT,
                        "UsageError", as_json)
        except ClickException as exc:
            _emit_error(exc.format_message().replace("\n", " "), EXIT_BAD_INPUT, "UsageError", as_json)
        except typer.Abort:
            _emit_error("aborted", EXIT_REFUSED, "Aborted", as_json)
        except Refused as exc:
            _emit_error(str(exc), EXIT_REFUSED, type(exc).__name__, as_json)
        except CaseworkError as exc:
            _emit_error(str(exc), EXIT_BAD_INPUT, type(exc).__name__, as_json)
        except KeyboardInterrupt:
            _emit_error("interrupted", 130, "Interrupted", as_json)
        except Exception as exc:  # a bug or a damaged store must still be one line, not a traceback
            _emit_error(f"unexpected {type(exc).__name__}: {exc}", EXIT_BAD_INPUT, type(exc).__name__, as_json)
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_Group,
    help="casework: after-sales cases (refunds, returns, disputes, complaints) from the terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
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


class Settings:
    def __init__(self, db: str | None, policies: str | None) -> None:
        self.db = db
        self.policies = policies
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.db, policies=self.policy_path())
        return self._engine

    def policy_path(self) -> str | None:
        if self.policies:
            return self.policies
        return "policies.yaml" if Path("policies.yaml").is_file() else None


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(
        "--db", envvar="CASEWORK_DB",
        help="Database URL or SQLite file (default: casework.db here), e.g. postgresql+psycopg://u@host/db")] = None,
    policies: Annotated[str | None, typer.Option(
        "--policies", envvar="CASEWORK_POLICIES",
        help="Policy file (default: ./policies.yaml if present, else the packaged default).")] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=lambda value: _print_version(value))] = False,
) -> None:
    ctx.obj = Settings(db, policies)


def _print_version(value: bool) -> None:
    if value:
        print(casework.__version__)
        raise typer.Exit(0)


# ---- parsing helpers ----------------------------------------------------------------------------------
def _actor(actor: str | None, role: str | None) -> Actor:
    who = actor or os.environ.get("CASEWORK_ACTOR") or _os_user()
    return Actor(who, role or os.environ.get("CASEWORK_ROLE") or "agent")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _pairs(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--fact {item!r} is malformed; expected KEY=VALUE, like flags=vip", field="fact")
        out[key.strip()] = value.strip()
    return out


def _data(evidence: list[str] | None, fact: list[str] | None, **named: str | None) -> dict[str, Any]:
    data: dict[str, Any] = _pairs(fact)
    for key, value in named.items():
        if value is not None:
            data[key] = value
    if evidence:
        data["evidence"] = list(evidence)
    return data


def _engine(ctx: typer.Context) -> Engine:
    settings: Settings = ctx.obj
    return settings.engine()


def _dump(doc: Any) -> None:
    print(json.dumps(doc, ensure_ascii=False, indent=2))


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = 140
    return console


# ---- rendering ----------------------------------------------------------------------------------------
def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def _facts_text(facts: dict[str, Any]) -> str:
    lines = []
    for key in sorted(facts):
        if key == "evidence":
            items = [f"{e['type']}" + (f" ({e['ref']})" if e.get("ref") else "") for e in facts[key]]
            lines.append(f"evidence: {', '.join(items) or '-'}")
        else:
            value = facts[key]
            lines.append(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return "\n".join(lines)


def _case_panel(case: Case) -> Panel:
    head = Text.assemble((case.number, "bold"), "  ", (case.kind, "cyan"), "  state ", (case.state, "bold green"),
                         f"  v{case.version}")
    body = Text()
    body.append_text(head)
    body.append("\n\n" + _facts_text(case.facts) + "\n\n")
    body.append(f"policy: {case.policy.label} ({case.policy.short})\n")
    body.append(f"opened: {_when(case.opened_at)}   updated: {_when(case.updated_at)}\n")
    if case.responded_at:
        body.append(f"first response: {_when(case.responded_at)}\n")
    elif case.first_response_due:
        body.append(f"first response due: {_when(case.first_response_due)}\n")
    if case.resolution_due and casework.KINDS[case.kind].is_open(case.state):
        body.append(f"resolution due: {_when(case.resolution_due)}\n")
    if case.timer_due:
        body.append(f"timer: in {case.state} until {_when(case.timer_due)}\n")
    if case.breaches:
        body.append(f"BREACHED: {', '.join(case.breaches)}  priority {case.priority}"
                    + (f"  queue {case.queue}" if case.queue else "") + "\n", style="bold red")
    return Panel(body, title=f"{case.kind} case", expand=False)


def _reasons_text(decision: Decision, said: list[str] | None = None) -> Text:
    """Each reason's code and message; ``said``: what to tell the customer, one per reason."""
    text = Text()
    for i, r in enumerate(decision.reasons):
        text.append("  ✗ ", style="red")
        text.append(f"{r.code}", style="bold red")
        text.append(f": {r.message}\n")
        if said and i < len(said) and said[i] != r.message:
            text.append(f"    → {said[i]}\n", style="cyan")
    return text


def _said(engine: Engine, number: str | None, decision: Decision, lang: str | None,
          audience: str = "customer") -> list[str]:
    """The policy's message for each reason, in ``lang`` (default: the case's locale, else en)."""
    from casework.messages import lang_for, messages_for

    try:
        policy = engine.policy_for(decision.policy.hash) if decision.policy else engine.policy
        facts = engine.get(number).facts if number and lang is None else {}
    except CaseworkError:  # the messages are a courtesy: never fail a command for them
        return [r.message for r in decision.reasons]
    return messages_for(policy, decision, audience, lang_for(facts, lang), context={"number": number or ""})


def _with_said(doc: dict[str, Any], said: list[str]) -> dict[str, Any]:
    """A decision's JSON with ``customer_message`` added to each reason (``message`` is unchanged)."""
    doc["reasons"] = [{**r, "customer_message": m} for r, m in zip(doc["reasons"], said, strict=False)]
    return doc


def _decision_table(decision: Decision) -> Table:
    table = Table(title=f"{decision.event}: {'allowed' if decision.allowed else 'REFUSED'}", title_justify="left")
    table.add_column("rule")
    table.add_column("verdict")
    table.add_column("code")
    table.add_column("why")
    table.add_column("source")
    for v in decision.verdicts:
        table.add_row(v.guard, Text("pass", "green") if v.passed else Text("FAIL", "bold red"), v.code, v.message,
                      v.source or "")
    return table


def _print_refusal(console: Console, number: str | None, decision: Decision, said: list[str] | None = None) -> None:
    console.print(Text(f"{number or ''} {decision.event} refused:".strip(), style="bold red"))
    console.print(_reasons_text(decision, said), end="")


@contextmanager
def _refusals(as_json: bool, number: str | None = None, engine: Engine | None = None,
              lang: str | None = None) -> Iterator[None]:
    """Render a policy refusal (exit 1): reasons on stdout (with the customer messages when the
    engine is given), one line on stderr."""
    try:
        yield
    except TransitionDenied as denied:
        decision = denied.decision
        said = _said(engine, number or denied.number, decision, lang) if engine is not None else None
        if as_json:
            doc = {"number": number or denied.number, **decision.to_json()}
            _dump(_with_said(doc, said) if said is not None else doc)
        else:
            _print_refusal(_console(), number or denied.number, decision, said)
        sys.stderr.write(f"casework: refused: {'; '.join(decision.codes)}\n")
        raise typer.Exit(EXIT_REFUSED) from None


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
    key: Annotated[str | None, typer.Option("--key", help="Idempotency key: repeating it repeats nothing.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a case and print it with its after-sales number.

    Example: casework open return --order SO-1 --delivered 2026-11-12 --reason defective
    --evidence order_record --evidence photo=IMG_1.jpg
    """
    if amount is not None:
        parse_money(amount, "--amount")
    if paid is not None:
        parse_money(paid, "--paid")
    for value, name in ((delivered, "--delivered"), (purchased, "--purchased")):
        if value is not None:
            parse_instant(value, name)
    facts = _data(evidence, fact, order_id=order, amount=amount, paid=paid, category=category,
                  delivered=delivered, purchased=purchased, reason=reason, condition=condition,
                  customer=customer, currency=currency)
    with _refusals(as_json):
        case = _engine(ctx).open(kind, facts, actor=_actor(actor, role), channel=channel, key=key)
    _show_case(case, as_json)


def _show_case(case: Case, as_json: bool) -> None:
    if as_json:
        _dump(case.to_json())
    else:
        _console().print(_case_panel(case))


def _jsonl_records(file: str, lines: list[int]) -> Iterator[Any]:
    """The records of a JSON Lines file (``-``: stdin), blank lines skipped; ``lines`` gets each one's line."""
    from decimal import Decimal

    try:
        stream = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}", field="file") from None
    try:
        for n, text in enumerate(stream, 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text, parse_float=Decimal)  # 59.00 stays exact, never a float
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{file}:{n}: not JSON: {exc.msg} (column {exc.colno})", field="file") from None
            lines.append(n)
            yield record
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file}: not UTF-8 text ({exc.reason})", field="file") from None
    finally:
        if stream is not sys.stdin:
            stream.close()


@app.command("import")
def import_cases(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines file, one record per line ('-' reads stdin).")],
    actor: ActorOpt = None,
    role: RoleOpt = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Cases per transaction.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Open many cases from JSON Lines, a batch per transaction, each exactly as `open` would.

    A record: {"kind": "refund", "facts": {"order_id": "SO-1", "amount": "59.00", "paid": "59.00"},
    "channel": "app"}. A bad record stops the import at FILE:LINE (earlier batches stay opened).
    """
    from casework.bulk import InvalidRecord

    engine = _engine(ctx)
    who = _actor(actor, role)
    lines: list[int] = []
    done = [0]
    console = _console()
    try:
        if as_json or not console.is_terminal:
            report = engine.open_many(_jsonl_records(file, lines), actor=who, batch=batch,
                                      progress=lambda n, _total: done.__setitem__(0, n))
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            total = None
            if file != "-" and Path(file).is_file():
                with open(file, encoding="utf-8", errors="replace") as f:
                    total = sum(1 for text in f if text.strip())
            with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("importing", total=total)

                def advance(n: int, _total: int | None) -> None:
                    done[0] = n
                    bar.update(task, completed=n)

                report = engine.open_many(_jsonl_records(file, lines), actor=who, batch=batch, progress=advance)
    except InvalidRecord as bad:
        line = lines[bad.line - 1] if 0 < bad.line <= len(lines) else bad.line
        kept = f" ({done[0]} case(s) before it were opened)" if done[0] else " (nothing was opened)"
        raise InvalidInput(f"{file}:{line}: {bad.problem}{kept}", field=bad.field) from None
    if as_json:
        _dump({"file": file, **report.to_json()})
    else:
        span = f" ({report.first} … {report.last})" if report.count else ""
        console.print(f"imported {report.count} case(s){span} in {report.seconds:.2f} s")


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
    key: Annotated[str | None, typer.Option("--key", help="Idempotency key: repeating it repeats nothing.")] = None,
    expected_version: Annotated[int | None, typer.Option(
        "--expected-version", help="Refuse if the case is no longer at this version.")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fire an event on a case; prints the case, or every reason it was refused (exit 1).

    Example: casework fire RF-20261122-000042 approve --role agent --actor alice
    """
    data = _data(evidence, fact, note=note)
    engine = _engine(ctx)
    with _refusals(as_json, number, engine, lang):
        case = engine.fire(number, event, actor=_actor(actor, role), data=data, key=key,
                           expected_version=expected_version)
    _show_case(case, as_json)


@app.command()
def check(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The after-sales number.")],
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

    one_of(audience, AUDIENCES, "audience", field="audience")
    engine = _engine(ctx)
    decision = engine.check(number, event, actor=_actor(actor, role), data=_data(evidence, fact, note=note))
    if as_json:
        _dump(_with_said({"number": number, **decision.to_json()}, _said(engine, number, decision, lang)))
    else:
        console = _console()
        console.print(_decision_table(decision))
        for r, message in zip(decision.reasons, _said(engine, number, decision, lang, audience), strict=False):
            console.print(Text.assemble(("  ✗ ", "red"), (r.code, "bold red"), f" ({audience}): {message}"))
    if not decision.allowed:
        raise typer.Exit(EXIT_REFUSED)


@app.command("next")
def next_events(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The after-sales number.")],
    actor: ActorOpt = None,
    role: RoleOpt = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every event possible from the case's state, each marked allowed or refused with why.

    Example: casework next RF-20261122-000042 --role supervisor
    """
    engine = _engine(ctx)
    decisions = engine.next_events(number, actor=_actor(actor, role))
    if lang is None and any(not d.allowed for d in decisions):
        lang = str(engine.get(number).facts.get("locale") or "en")
    said = [_said(engine, number, d, lang) for d in decisions]
    if as_json:
        _dump([_with_said({"event": d.event, "allowed": d.allowed, "to_state": d.to_state,
                           "reasons": [r.reason_json() for r in d.reasons]}, m) for d, m in zip(decisions, said,
                                                                                               strict=True)])
        return
    table = Table(title=f"{number}: possible events", title_justify="left")
    table.add_column("event")
    table.add_column("leads to")
    table.add_column("for you")
    table.add_column("why not")
    for d, m in zip(decisions, said, strict=True):
        table.add_row(d.event, d.to_state or "", Text("allowed", "green") if d.allowed else Text("refused", "red"),
                      "\n".join(f"{r.code}: {r.message}" + (f"\n  → {c}" if c != r.message else "")
                                for r, c in zip(d.reasons, m, strict=False)))
    _console().print(table)


@app.command()
def show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The after-sales number.")],
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a case: state, facts, evidence, policy version and deadlines (personal data masked).

    Example: casework show RF-20261122-000042 --json
    """
    _show_case(_engine(ctx).get(number, reveal=reveal), as_json)


def _history_table(number: str, entries: list[AuditEntry]) -> Table:
    table = Table(title=f"{number}: history", title_justify="left")
    for col in ("#", "at", "actor", "event", "from → to", "outcome", "reasons"):
        table.add_column(col)
    for e in entries:
        move = f"{e.from_state or '∅'} → {e.to_state or e.from_state or ''}"
        outcome = Text(e.outcome, "green" if e.outcome == "applied" else "red")
        reasons = "\n".join(f"{r['code']}: {r['message']}" for r in e.reasons)
        table.add_row(str(e.seq), _when(e.at), f"{e.actor} ({e.role})", e.event, move, outcome, reasons)
    return table


@app.command()
def history(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The after-sales number.")],
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail of a case: every applied change and refused attempt, who, when and why.

    Example: casework history RF-20261122-000042
    """
    entries = _engine(ctx).history(number, reveal=reveal)
    if as_json:
        _dump([e.to_json() for e in entries])
    else:
        _console().print(_history_table(number, entries))


@app.command("list")
def list_cases(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", help="refund, return, dispute or complaint")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only cases in this state.")] = None,
    order: Annotated[str | None, typer.Option("--order", help="Only cases of this order id.")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's cases.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open cases past a deadline.")] = False,
    due_before: Annotated[str | None, typer.Option("--due-before", help="Open cases due by this time (ISO).")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Only cases in this queue, e.g. supervisor.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many cases.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List cases, newest first.

    Example: casework list --kind return --state under_review
    """
    due = parse_instant(due_before, "--due-before") if due_before else None
    found = _engine(ctx).find(kind=kind, state=state, order_id=order, customer=customer, overdue=overdue,
                              due_before=due, queue=queue, limit=limit)
    if as_json:
        _dump([c.to_json() for c in found])
        return
    table = Table(title=f"{len(found)} case(s)", title_justify="left")
    for col in ("number", "kind", "state", "order", "customer", "amount", "opened", "due"):
        table.add_column(col)
    for c in found:
        table.add_row(c.number, c.kind, c.state, c.order_id or "", c.customer or "", str(c.facts.get("amount", "")),
                      _when(c.opened_at), _when(c.due_at))
    _console().print(table)


@app.command()
def verify(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check every case's audit hash chain and that replaying it gives the stored case (exit 1 if not).

    Example: casework verify --json
    """
    report = _engine(ctx).verify()
    if as_json:
        _dump(report.to_json())
    else:
        console = _console()
        if report.ok:
            console.print(Text(f"verify: OK — {report.cases_checked} cases, {report.entries_checked} audit "
                               "entries, every chain intact and every replay matches", "green"))
        for p in report.problems:
            where = f" seq {p.seq}" if p.seq is not None else ""
            console.print(Text(f"BROKEN {p.number}{where}: {p.problem}", "bold red"))
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
    lines = (json.dumps(doc, ensure_ascii=False, sort_keys=True) for doc in _engine(ctx).export(redact=redact))
    if output:
        count = 0
        with open(output, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
                count += 1
        if as_json:
            _dump({"file": output, "entries": count, "redacted": redact})
        else:
            print(f"{count} audit entries written to {output}" + (" (personal data redacted)" if redact else ""))
        return
    if as_json:
        _dump(list(_engine(ctx).export(redact=redact)))
        return
    for line in lines:
        print(line)


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
    if file is None:
        path = Path(tempfile.mkdtemp(prefix="casework-demo-")) / "demo.db"
    else:
        path = Path(file)
        if path.exists():
            raise InvalidInput(f"--file {file!r} already exists; the demo needs a fresh database", field="file")
    settings: Settings = ctx.obj
    clock = FixedClock(datetime.now(UTC))
    engine = Engine(str(path), policies=settings.policy_path(), clock=clock)
    console = _console()
    steps = []
    if not as_json:
        console.print(Text(f"casework demo — a fresh database at {path}", style="bold"))
        console.print(f"policy: {engine.policy.label} ({engine.policy.ref.short})")
    story = None
    from casework import demo as demo_stories

    for step in demo_stories.run(engine, clock):
        steps.append(step)
        if as_json:
            continue
        if step.story != story:
            story = step.story
            console.print()
            console.print(Text(story, style="bold cyan"))
        who = f"{step.actor.id} ({step.actor.role})"
        if step.refused and step.decision is not None:
            console.print(Text.assemble("  ", (step.case.number, "bold"), f"  {who} {step.event} → ",
                                        ("refused", "bold red")))
            console.print(_reasons_text(step.decision), end="")
        else:
            console.print(Text.assemble("  ", (step.case.number, "bold"), f"  {who} {step.event} → ",
                                        (step.case.state, "green")))
    report = engine.verify()
    engine.close()
    if as_json:
        _dump({"database": str(path), "steps": [s.to_json() for s in steps], "verify": report.to_json()})
    else:
        console.print()
        ok = Text(f"verify: OK — {report.cases_checked} cases, {report.entries_checked} audit entries intact",
                  "green") if report.ok else Text(f"verify FAILED: {report.broken_cases}", "bold red")
        console.print(ok)
        console.print(f"explore it: casework --db {path} list")
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
    before, after = casework.upgrade_database(settings.db)
    if as_json:
        _dump({"before": before, "after": after})
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
    now: Annotated[str | None, typer.Option("--now", help="Act as of this instant (ISO), e.g. for what-if.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what is due; write nothing.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Handle at most this many cases.")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Cases per transaction.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Fire every due timer and mark every missed deadline, as the system actor (safe to run from cron).

    Example: casework sla sweep --dry-run --now 2026-11-24T09:00:00+08:00
    """
    at = parse_instant(now, "--now") if now else None
    engine = _engine(ctx)
    console = _console()
    if as_json or not console.is_terminal:
        report = engine.sweep(now=at, dry_run=dry_run, limit=limit, batch=batch)
    else:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("sweeping", total=None)
            report = engine.sweep(now=at, dry_run=dry_run, limit=limit, batch=batch,
                                  progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        _dump(report.to_json())
        return
    table = Table(title=f"sla sweep at {_when(report.at)}{' (dry run)' if dry_run else ''}: "
                        f"{report.cases_due} case(s) due", title_justify="left")
    for col in ("number", "action", "what", "due", "state", "outcome"):
        table.add_column(col)
    for a in report.actions:
        style = {"applied": "green", "refused": "red", "skipped": "yellow"}.get(a.outcome, "")
        table.add_row(a.number, a.kind, a.name, _when(a.due), a.state, Text(a.outcome, style))
    console.print(table)



def _bar(fraction: float, width: int = 24) -> str:
    """A bar of unicode blocks filling ``fraction`` (0..1) of ``width`` cells, to eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")).ljust(width)


def _spark(counts: Sequence[int]) -> str:
    top = max(counts, default=0)
    return "".join(" ▁▂▃▄▅▆▇█"[round(c / top * 8)] if top else " " for c in counts)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _print_report(console: Console, report: "SlaReport") -> None:
    from casework.report import SCORES, human_duration

    def dur(seconds: float | None) -> str:
        return "-" if seconds is None else human_duration(seconds)

    def name(key: str | None) -> str:
        return "all" if key is None else key

    period = "all cases" if report.since is None and report.until is None else \
        f"cases opened {_when(report.since)} → {_when(report.until)}"
    scope = f"{period} · kind {report.kind or 'all'}" + (f" · by {report.by}" if report.by else "")
    groups = [*report.groups, report.overall]
    table = Table(title=f"SLA report: {scope}", title_justify="left")
    for col in ("group", "opened", "closed", "first response\nmedian", "\np90", "\nmax", "resolution\nmedian",
                "\np90", "\nmax", "breached\ncases", "refused\nattempts"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)
    for g in groups:
        table.add_row(Text(name(g.key), "bold" if g.key is None else ""), str(g.opened), str(g.closed),
                      dur(g.first_response.median), dur(g.first_response.p90), dur(g.first_response.max),
                      dur(g.resolution.median), dur(g.resolution.p90), dur(g.resolution.max),
                      f"{g.breached} ({_pct(g.breach_rate)})", str(g.refusals))
    console.print(table)
    console.print(Text("Breach rate: share of the cases opened that breached a deadline (bar: 0-100%)", "italic"))
    chart = Table(box=None, show_header=False, padding=(0, 1))
    for _ in range(4):
        chart.add_column(no_wrap=True)
    for g in groups:
        types = ", ".join(f"{t.replace('_', ' ')} {_pct(g.breach_rate_of(t))}" for t in report.breach_types)
        chart.add_row(name(g.key), Text(_bar(g.breach_rate or 0.0), "red"), _pct(g.breach_rate), types)
    console.print(chart)
    sat = report.overall.satisfaction
    mean = "no ratings" if sat.mean is None else f"mean {sat.mean:.2f} from {sat.count} rated case(s)"
    console.print(Text(f"Satisfaction, all cases: {mean}", "italic"))
    chart = Table(box=None, show_header=False, padding=(0, 1))
    for _ in range(3):
        chart.add_column(no_wrap=True)
    most = max(sat.distribution.values()) or 1
    for score in SCORES:
        n = sat.distribution[score]
        chart.add_row(f"{score} ★", Text(_bar(n / most), "green" if score >= 4 else "yellow" if score == 3 else "red"),
                      f"{n} ({_pct(n / sat.count if sat.count else None)})")
    console.print(chart)
    if report.groups:
        chart = Table(box=None, padding=(0, 1))
        for col in ("group", "mean", "rated", "1 → 5"):
            chart.add_column(col, no_wrap=True, justify="right" if col in ("mean", "rated") else "left")
        for g in report.groups:
            s = g.satisfaction
            chart.add_row(name(g.key), "-" if s.mean is None else f"{s.mean:.2f}", str(s.count),
                          _spark(list(s.distribution.values())))
        console.print(chart)
    if report.refusal_codes:
        table = Table(title="Refused attempts by reason code", title_justify="left")
        table.add_column("code", no_wrap=True)
        for g in groups:
            table.add_column(name(g.key), justify="right")
        for code in report.refusal_codes:
            table.add_row(code, *[str(g.refusals_by_code.get(code, 0)) for g in groups])
        console.print(table)


@sla_app.command("report")
def sla_report(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="Cases opened at or after this time (ISO; a date means midnight, policy zone).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Cases opened before this time; audit entries from then on are ignored.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="refund, return, dispute or complaint")] = None,
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
        from casework.report_html import render_html

        try:
            Path(html).write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"--html {html!r}: cannot write the file ({exc.strerror or exc})",
                               field="html") from None
    if as_json:
        _dump(report.to_json())
        return
    console = _console()
    _print_report(console, report)
    if html is not None:
        console.print(f"HTML report written to {html}")

# ---- policy authoring ---------------------------------------------------------------------------------
policy_app = typer.Typer(help="Policy authoring: check, schema, test and simulate policies before they reach "
                              "customers; adopt a new version for open cases.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _policy_file(ctx: typer.Context, file: str | None) -> Path:
    from casework.policies.loader import default_policy_path

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
    if as_json:
        _dump(report.to_json(strict))
    else:
        console = _console()
        for problem in report.problems:
            console.print(Text(str(problem), "red" if problem.severity == "error" else "yellow"))
        if report.ok(strict) and report.policy is not None:
            console.print(Text(f"{report.name}: OK — {report.policy.label} ({report.policy.ref.short}), "
                               f"{len(report.warnings)} warning(s)", "green"))
    if not report.ok(strict):
        what = f"{len(report.errors)} error(s)" + (f", {len(report.warnings)} warning(s)" if strict else "")
        first = report.errors[0] if report.errors else report.warnings[0]
        sys.stderr.write(f"casework: error: {report.name}: {what}; first: {first}\n")
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
    as_json: JsonOpt = False,
) -> None:
    """Run policy test scenarios against the policy in force (--policies); exit 1 if any fails.

    Example: casework --policies new.yaml policy test policies.test.yaml
    """
    from casework.policies import load_policy
    from casework.policies.authoring import load_policy_tests, run_policy_tests

    suites = files or ["policies.test.yaml"]
    policy = load_policy(_policy_file(ctx, None))
    results = []
    for suite in suites:
        results.extend(run_policy_tests(policy, load_policy_tests(suite)))
    failed = [r for r in results if not r.passed]
    if as_json:
        _dump({"policy": policy.ref.to_json(), "passed": len(results) - len(failed), "failed": len(failed),
               "results": [r.to_json() for r in results]})
    else:
        console = _console()
        for r in results:
            mark = Text("PASS ", "green") if r.passed else Text("FAIL ", "bold red")
            console.print(Text.assemble(mark, r.name, f"  ({r.source})" if r.source else ""))
            if not r.passed:
                console.print(f"     {r.summary}")
                for line in r.explanation:
                    console.print(f"     {line}")
        console.print(f"policy {policy.label} ({policy.ref.short}): {len(results) - len(failed)} scenarios passed, "
                      f"{len(failed)} failed")
    if failed:
        sys.stderr.write(f"casework: policy test: {len(failed)} of {len(results)} scenario(s) failed\n")
        raise typer.Exit(EXIT_REFUSED)


def _simulation(engine: Engine, new: Any, kind: str | None, state: str | None, quiet: bool) -> Any:
    """Run :func:`casework.simulate.simulate`, with a progress bar when stdout is a terminal."""
    console = _console()
    if quiet or not console.is_terminal:
        return engine.simulate(new, kind=kind, state=state)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=None)
        return engine.simulate(new, kind=kind, state=state,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))


def _print_simulation(console: Console, report: Any, limit: int) -> None:
    scope = " ".join(x for x in (report.kind, report.state) if x) or "all"
    console.print(Text(f"policy {report.policy.label} ({report.policy.short}) against {report.cases_checked} open "
                       f"case(s) ({scope}) at {_when(report.now)}: {len(report.flips)} decision(s) flip on "
                       f"{len(report.numbers)} case(s)", "bold"))
    if report.reason_changes:
        console.print(f"{len(report.reason_changes)} refusal(s) would stay refused for other reasons (see --json)")
    if not report.flips:
        return
    table = Table(title="Flips by rule", title_justify="left")
    for col in ("rule", "flips", "allowed → refused", "refused → allowed", "events", "source", "e.g."):
        table.add_column(col, justify="right" if col in ("flips", "allowed → refused", "refused → allowed") else "left")
    for g in report.groups():
        table.add_row(Text(g.rule, "bold"), str(g.count), str(g.tightened), str(g.loosened), ", ".join(g.events),
                      g.source or "", ", ".join(g.examples))
    console.print(table)
    if limit <= 0:
        return
    table = Table(title=f"Flipped decisions (first {min(limit, len(report.flips))} of {len(report.flips)})",
                  title_justify="left")
    for col in ("case", "state", "event", "as", "before → after", "rules", "why refused"):
        table.add_column(col)
    for f in report.flips[:limit]:
        refused = f.after if f.before.allowed else f.before
        table.add_row(f.number, f.state, f.event, f.actor.role,
                      Text(f.direction, "red" if f.before.allowed else "green"), ", ".join(f.rules),
                      "\n".join(f"{r.code}: {r.message}" for r in refused.reasons))
    console.print(table)


@policy_app.command("simulate")
def policy_simulate(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The new policy file.")],
    kind: Annotated[str | None, typer.Option("--kind", help="Only open cases of this kind.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only open cases in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Flipped decisions listed (--json lists all).")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """What-if: which open cases would FILE decide differently than their pinned policy? Writes nothing.

    Every event possible next is decided under both, as the least-privileged role allowed to fire it;
    flips are grouped by the rule that changed. Example: casework policy simulate new.yaml --kind return
    """
    from casework.policies import load_policy

    new = load_policy(file)
    report = _simulation(_engine(ctx), new, kind, state, as_json)
    if as_json:
        _dump(report.to_json())
    else:
        _print_simulation(_console(), report, limit)


@policy_app.command("adopt")
def policy_adopt(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The policy file to move cases to.")],
    kind: Annotated[str | None, typer.Option("--kind", help="Only open cases of this kind.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only open cases in this state.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Flipped decisions listed before asking.")] = 20,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move open cases to the policy in FILE: one audited adopt_policy entry per case (who, when, from which
    version to which), after showing what simulate reports and asking for confirmation.

    Example: casework policy adopt new.yaml --kind return --state submitted --actor lin --role supervisor
    """
    from casework.adoption import check_adopter, open_numbers
    from casework.policies import load_policy

    if as_json and not yes:
        raise InvalidInput("--json needs --yes: the confirmation prompt cannot share stdout with the JSON "
                           "(see the report first with 'casework policy simulate FILE --json')", field="yes")
    new = load_policy(file)
    engine = _engine(ctx)
    who = _actor(actor, role)
    check_adopter(new, who)
    numbers = open_numbers(engine.store, kind=kind, state=state, not_on=new.hash)
    report = _simulation(engine, new, kind, state, as_json)
    console = _console()
    if not as_json:
        _print_simulation(console, report, limit)
    if not numbers:
        if as_json:
            _dump({"simulation": report.to_json(), "adopted": 0, "numbers": [], "already_on_policy":
                   report.cases_checked, "skipped": []})
        else:
            console.print(f"nothing to adopt: every chosen open case is already on {new.label} ({new.ref.short})")
        return
    if not yes:
        typer.confirm(f"Move {len(numbers)} open case(s) to policy {new.label} ({new.ref.short}) as {who.id} "
                      f"({who.role})?", abort=True, err=True)
    if as_json or not console.is_terminal:
        done = engine.adopt_open_cases(new, actor=who, numbers=numbers)
    else:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("adopting", total=len(numbers))
            done = engine.adopt_open_cases(new, actor=who, numbers=numbers,
                                           progress=lambda n, total: bar.update(task, completed=n, total=total))
    if as_json:
        _dump({"simulation": report.to_json(), **done.to_json()})
        return
    console.print(Text(f"adopted {len(done.adopted)} case(s) to policy {new.label} ({new.ref.short})", "green"))
    for number, why in done.skipped:
        console.print(Text(f"skipped {number}: {why}", "yellow"))


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
    from casework.machines.diagram import render, write_all
    from casework.policies import load_policy

    policy = load_policy(_policy_file(ctx, None))
    if all_kinds:
        written = write_all(output or ".", fmt, policy)
        if as_json:
            _dump({"written": [str(p) for p in written]})
        else:
            for path in written:
                print(path)
        return
    if kind is None:
        raise InvalidInput("diagram needs a KIND (refund, return, dispute, complaint) or --all", field="kind")
    drawing = render(kind, fmt, policy)
    if output:
        data = drawing if isinstance(drawing, bytes) else drawing.encode("utf-8")
        Path(output).write_bytes(data)
        if as_json:
            _dump({"written": [output]})
        return
    if isinstance(drawing, bytes):
        raise InvalidInput(f"--format {fmt} is binary; write it to a file with --output", field="format")
    if as_json:
        _dump({"kind": kind, "format": fmt, "diagram": drawing})
    else:
        print(drawing, end="" if drawing.endswith("\n") else "\n")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
