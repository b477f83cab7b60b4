"""What every command of the operator CLI shares: the options' types, the global settings (the engine is
made on first use), how options become an actor and facts, and how a refusal or a policy notice is shown.

The CLI's commands live beside this module, one per concept; ``cli.py`` at the checkout's root assembles them.
The library never imports this package: it only parses, calls the library, and renders with
:mod:`casework.terminal`.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from casework import Actor, Case, CaseworkError, Decision, Engine, InvalidInput, TransitionDenied, terminal
from casework.terminal import shell

EXIT_REFUSED, EXIT_BAD_INPUT = shell.EXIT_REFUSED, shell.EXIT_BAD_INPUT

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


# ---- parsing helpers ----------------------------------------------------------------------------------
def actor_of(actor: str | None, role: str | None) -> Actor:
    """--actor, else $CASEWORK_ACTOR, else the OS user; --role, else $CASEWORK_ROLE, else agent."""
    who = actor or os.environ.get("CASEWORK_ACTOR")
    if not who:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "operator"
    return Actor(who, role or os.environ.get("CASEWORK_ROLE") or "agent")


def data_of(evidence: list[str] | None, fact: list[str] | None, **named: str | None) -> dict[str, Any]:
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


def engine_of(ctx: typer.Context, lang: str | None = None) -> Engine:
    """The engine; with ``lang``, once it is known the policy has messages in that language (else exit 2)."""
    settings: Settings = ctx.obj
    engine = settings.engine()
    if lang is not None:
        engine.language(lang)
    return engine


def notice(engine: Engine) -> None:
    """Warn (one line on stderr) when the local policy file differs from the published one, or overrides it."""
    if engine.policy_notice:
        sys.stderr.write(f"casework: warning: {engine.policy_notice}\n")


# ---- rendering helpers (what is drawn, and how, is casework.terminal's) ------------------------------
def show_case(case: Case, as_json: bool) -> None:
    terminal.render(as_json, case.to_json, lambda: terminal.case_panel(case))


def messages_of(engine: Engine, decision: Decision, lang: str | None, number: str | None,
          audience: str = "customer") -> list[str]:
    """What ``audience`` is told about each reason of a refusal (:meth:`Engine.messages`)."""
    try:
        return engine.messages(decision, audience=audience, lang=lang, number=number)
    except CaseworkError:  # the messages are a courtesy: never fail a command for them
        return [r.message for r in decision.reasons]


@contextmanager
def refusals(as_json: bool, number: str | None = None, engine: Engine | None = None,
              lang: str | None = None) -> Iterator[None]:
    """Render a policy refusal (exit 1): reasons on stdout (with the customer messages when the
    engine is given), one line on stderr."""
    try:
        yield
    except TransitionDenied as denied:
        decision = denied.decision
        number = number or denied.number
        said = messages_of(engine, decision, lang, number) if engine is not None else None
        terminal.render(as_json, lambda: terminal.decision_json(number, decision, said),
                        lambda: terminal.refusal(number, decision, said or ()))
        sys.stderr.write(f"casework: refused: {'; '.join(decision.codes)}\n")
        raise typer.Exit(EXIT_REFUSED) from None


@contextmanager
def as_typed(options: Collection[str]) -> Iterator[None]:
    """An error about a fact set by the option of the same name names the option the user typed: the
    library's ``amount 'abc' is not a valid amount: ...`` reads ``--amount 'abc' is not ...``."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field not in options or not str(exc).startswith(f"{exc.field} "):
            raise
        raise InvalidInput(f"--{exc}", field=exc.field, value=exc.value) from None


def policy_file(ctx: typer.Context, file: str | None) -> Path:
    from casework.policies.files import default_policy_path

    settings: Settings = ctx.obj
    chosen = file or settings.policy_path()
    return Path(chosen) if chosen else default_policy_path()
