"""The service clock's commands: sweep and report."""

from typing import Annotated

import typer

from casework import parse_instant, terminal
from casework.commands.common import (
    BatchOpt,
    JsonOpt,
    KindOpt,
    as_typed,
    engine_of,
)

app = typer.Typer()


@app.command("sweep")
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
    engine = engine_of(ctx)
    with terminal.progress("sweeping", shown=not as_json) as advance, as_typed({"now"}):
        report = engine.sweep(now=at, dry_run=dry_run, limit=limit, batch=batch, progress=advance)
    terminal.render(as_json, report.to_json, lambda: terminal.sweep_table(report))


@app.command("report")
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
    report = engine_of(ctx).report(since=since, until=until, kind=kind, by=by)
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
