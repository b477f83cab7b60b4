"""The audit trail's commands: verify, export, relay to a broker, the demo, and the database schema."""

import asyncio
import signal
import sys
from typing import Annotated, Any

import typer

import casework
from casework import terminal
from casework.commands.common import (
    EXIT_REFUSED,
    JsonOpt,
    RevealOpt,
    Settings,
    engine_of,
)
from casework.terminal import relay as relay_view

app = typer.Typer()


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
    report = engine_of(ctx).verify(since=since)
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

    entries = engine_of(ctx).export(redact=redact)
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
    batch: Annotated[int, typer.Option(
        "--batch", min=1, max=10000, help="Changes read per query (the next is read while one is sent).")] = 200,
    window: Annotated[int, typer.Option(
        "--window", min=1, max=65536, help="Acknowledgements awaited at once (1: strictly one by one).")] = 256,
    reader: Annotated[str, typer.Option(
        "--reader", help="Where the database reading runs: process (a child of the relay's, on another core), thread, "
        "or auto (process where it can be).")] = "auto",
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

    engine = engine_of(ctx)
    relayer = Relay(engine, servers=servers, stream=stream, subject=subject, name=name, batch=batch, window=window,
                    reveal=reveal, reader=reader)
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


db_app = typer.Typer(help="Database schema: upgrade it after installing a new casework.", no_args_is_help=True)


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
