"""casework's operator CLI: a thin shell over the library (parse, call, render).

Exit codes: 0 success; 1 refused by the rules (denied, not available, lost a concurrent update);
2 bad input (usage, malformed value, unknown case, invalid policy file, unreachable database).
Every command takes ``--json`` and then prints exactly one JSON document on stdout; errors are one
line on stderr, never a traceback. What a command shows on a terminal is drawn by casework.terminal.
"""

from typing import Annotated

import typer

import casework
from casework import parse_zone
from casework.commands import cases, desk, policy, sla, trail
from casework.commands.common import Settings
from casework.terminal import shell

app = typer.Typer(
    cls=shell.Group,
    help="casework: after-sales cases (refunds, returns, disputes, complaints) from the terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
)
# The commands, one module per concept (casework/commands/); the groups keep their names.
app.add_typer(cases.app)
app.add_typer(desk.app)
app.add_typer(trail.app)
app.add_typer(trail.db_app, name="db")
app.add_typer(sla.app, name="sla", help="Service clock: fire due timers, mark and escalate breached deadlines, report.",
              no_args_is_help=True)
app.add_typer(policy.app, name="policy", help="Policy authoring: check, schema, test and simulate policies before "
              "they reach customers; adopt a new version for open cases.", no_args_is_help=True)
top_level_diagram = typer.Typer()  # also under policy (DESIGN's contract); listed last, as it was
top_level_diagram.command()(policy.diagram)
app.add_typer(top_level_diagram)


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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
