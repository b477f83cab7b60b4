"""The SLA report on a terminal: figures table, breach-rate and satisfaction charts, refusals and rejections.

The terminal's counterpart of :mod:`casework.report_html`, drawn with rich for ``casework sla report``;
the CLI imports it only when it draws a report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from casework.terminal import when

if TYPE_CHECKING:
    from casework.report import GroupFigures, SlaReport


def bar(fraction: float, width: int = 24) -> str:
    """A bar of unicode blocks filling ``fraction`` (0..1) of ``width`` cells, to eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")).ljust(width)


def spark(counts: Sequence[int]) -> str:
    """One block per count, as high as the count is against the largest."""
    top = max(counts, default=0)
    return "".join(" ▁▂▃▄▅▆▇█"[round(c / top * 8)] if top else " " for c in counts)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _group_name(key: str | None) -> str:
    return "all" if key is None else key


def _chart(*columns: str) -> Table:
    """A borderless table of bars; headed when ``columns`` are named."""
    chart = Table(box=None, show_header=any(columns), padding=(0, 1))
    for column in columns:
        chart.add_column(column, no_wrap=True, justify="right" if column in ("mean", "rated") else "left")
    return chart


def sla_report(report: SlaReport) -> Iterator[RenderableType]:
    """The SLA report: the figures table, breach-rate and satisfaction charts, refusals by code."""
    groups = [*report.groups, report.overall]
    yield _figures_table(report, groups)
    yield Text("Breach rate: share of the cases opened that breached a deadline (bar: 0-100%)", "italic")
    chart = _chart("", "", "", "")
    for g in groups:
        types = ", ".join(f"{t.replace('_', ' ')} {_pct(g.breach_rate_of(t))}" for t in report.breach_types)
        chart.add_row(_group_name(g.key), Text(bar(g.breach_rate or 0.0), "red"), _pct(g.breach_rate), types)
    yield chart
    yield from _satisfaction(report)
    if report.refusal_codes:
        yield _counts("Refused attempts by reason code", "code", report.refusal_codes, groups,
                      lambda g: g.refusals_by_code)
    overall = report.overall
    if overall.refused_openings:
        codes = ", ".join(f"{code} {n}" for code, n in overall.refused_openings_by_code.items())
        yield Text(f"Openings refused (no case opened; casework refused-openings lists them): "
                   f"{overall.refused_openings} ({codes})", "italic")
    if report.rejection_reasons:
        yield _counts("Rejections by reason", "reason", report.rejection_reasons, groups,
                      lambda g: g.rejections_by_reason)


def _counts(title: str, column: str, keys: Sequence[str], groups: Sequence[GroupFigures],
            counts: Callable[[GroupFigures], Mapping[str, int]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(column, no_wrap=True)
    for g in groups:
        table.add_column(_group_name(g.key), justify="right")
    for key in keys:
        table.add_row(key, *[str(counts(g).get(key, 0)) for g in groups])
    return table


def _figures_table(report: SlaReport, groups: Sequence[GroupFigures]) -> Table:
    from casework.report import human_duration

    def dur(seconds: float | None) -> str:
        return "-" if seconds is None else human_duration(seconds)

    period = "all cases" if report.since is None and report.until is None else \
        f"cases opened {when(report.since)} → {when(report.until)}"
    scope = f"{period} · kind {report.kind or 'all'}" + (f" · by {report.by}" if report.by else "")
    table = Table(title=f"SLA report: {scope}", title_justify="left")
    for col in ("group", "opened", "closed", "first response\nmedian", "\np90", "\nmax", "resolution\nmedian",
                "\np90", "\nmax", "breached\ncases", "refused\nattempts"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)
    for g in groups:
        table.add_row(Text(_group_name(g.key), "bold" if g.key is None else ""), str(g.opened), str(g.closed),
                      dur(g.first_response.median), dur(g.first_response.p90), dur(g.first_response.max),
                      dur(g.resolution.median), dur(g.resolution.p90), dur(g.resolution.max),
                      f"{g.breached} ({_pct(g.breach_rate)})", str(g.refusals))
    return table


def _satisfaction(report: SlaReport) -> Iterator[RenderableType]:
    from casework.report import SCORES

    sat = report.overall.satisfaction
    mean = "no ratings" if sat.mean is None else f"mean {sat.mean:.2f} from {sat.count} rated case(s)"
    yield Text(f"Satisfaction, all cases: {mean}", "italic")
    chart = _chart("", "", "")
    most = max(sat.distribution.values()) or 1
    for score in SCORES:
        n = sat.distribution[score]
        chart.add_row(f"{score} ★", Text(bar(n / most), "green" if score >= 4 else "yellow" if score == 3 else "red"),
                      f"{n} ({_pct(n / sat.count if sat.count else None)})")
    yield chart
    if report.groups:
        chart = _chart("group", "mean", "rated", "1 → 5")
        for g in report.groups:
            s = g.satisfaction
            chart.add_row(_group_name(g.key), "-" if s.mean is None else f"{s.mean:.2f}", str(s.count),
                          spark(list(s.distribution.values())))
        yield chart
