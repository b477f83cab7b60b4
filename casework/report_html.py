"""The SLA report as one self-contained HTML page: inline CSS and inline SVG charts, no scripts, no
external assets, so a supervisor can open the file in any browser, mail it or archive it.

>>> from casework import Engine, FixedClock
>>> from casework.report import build_report
>>> page = render_html(build_report(Engine("sqlite:///:memory:", clock=FixedClock("2026-11-22T10:00:00+08:00"))))
>>> page.startswith("<!DOCTYPE html>") and "<script" not in page
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from casework.errors import InvalidInput
from casework.report import BREACH_TYPES, SCORES, DurationStats, GroupFigures, SlaReport, human_duration

BREACH_COLOURS = {"any": "#c0392b", "first_response": "#e67e22", "resolution": "#8e44ad"}
SCORE_COLOURS = {1: "#c0392b", 2: "#e67e22", 3: "#f1c40f", 4: "#7cb342", 5: "#2e7d32"}
TIME_COLOURS = {"median": "#2c7fb8", "p90": "#a6bddb"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;
  background:#f5f6f8;color:#1f2933}
main{max-width:1080px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 10px;border-bottom:1px solid #d8dde3;
  padding-bottom:4px}
.sub{color:#52606d;margin:0 0 20px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:10px 14px;min-width:120px;flex:1 1 120px}
.card .v{font-size:24px;font-weight:600}.card .l{color:#52606d;font-size:13px}.card .s{color:#7b8794;font-size:12px}
.wrap{overflow-x:auto;margin-bottom:14px}
table{border-collapse:collapse;background:#fff;border:1px solid #d8dde3;font-size:12.5px;width:100%}
th,td{padding:5px 7px;border-bottom:1px solid #e4e7eb;text-align:right;white-space:nowrap}
th{border-left:1px solid #e4e7eb}
th{background:#eef1f4;font-weight:600}th:first-child,td:first-child{text-align:left}
tr.total td{font-weight:600;background:#fafbfc}
figure{background:#fff;border:1px solid #d8dde3;border-radius:8px;margin:0 0 14px;padding:12px}
figcaption{font-size:13px;color:#52606d;margin-bottom:6px}
svg text{font-family:inherit;font-size:12px;fill:#1f2933}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.notes{font-size:12px;color:#52606d;line-height:1.5}
"""


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _dur(seconds: float | None) -> str:
    return "–" if seconds is None else human_duration(seconds)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M %Z").strip() if at else "–"


def _label(g: GroupFigures) -> str:
    return "all cases" if g.key is None else g.key


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{escape(name)}</span>' for name, c in items) + "</div>"


def hbars(rows: Sequence[tuple[str, Sequence[tuple[float, str, str]]]], top: float) -> str:
    """Horizontal bar chart: per row a label and bars of ``(value, colour, text)`` scaled to ``top``."""
    longest = max((len(label[:28]) for label, _ in rows), default=8)
    label_w, bar_w, text_w, bar_h, gap, pad = max(90, 7 * longest + 18), 500, 170, 14, 3, 10
    y = 4
    parts = []
    for label, bars in rows:
        block = max(1, len(bars)) * (bar_h + gap)
        parts.append(f'<text x="{label_w - 8}" y="{y + block / 2 + 4:.0f}" text-anchor="end">'
                     f"{escape(label[:28])}</text>")
        for value, colour, text in bars:
            w = 0.0 if top <= 0 else max(0.0, min(1.0, value / top)) * bar_w
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="2" fill="{colour}"/>')
            parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h - 3}">{escape(text)}</text>')
            y += bar_h + gap
        y += pad
    height = y + 2
    width = label_w + bar_w + text_w
    axis = f'<line x1="{label_w}" y1="0" x2="{label_w}" y2="{height}" stroke="#9aa5b1"/>'
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'role="img">{axis}{"".join(parts)}</svg>')


def vbars(bars: Sequence[tuple[str, float, str, str]]) -> str:
    """Vertical bar chart of ``(label, value, colour, text above)``."""
    top = max((v for _, v, _, _ in bars), default=0) or 1
    col_w, bar_w, chart_h, base = 90, 56, 160, 190
    parts = []
    for i, (label, value, colour, text) in enumerate(bars):
        h = value / top * chart_h
        x = 20 + i * col_w
        parts.append(f'<rect x="{x}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" rx="2" fill="{colour}"/>')
        parts.append(f'<text x="{x + bar_w / 2}" y="{base - h - 5:.1f}" text-anchor="middle">{escape(text)}</text>')
        parts.append(f'<text x="{x + bar_w / 2}" y="{base + 16}" text-anchor="middle">{escape(label)}</text>')
    width = 40 + len(bars) * col_w
    axis = f'<line x1="10" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#9aa5b1"/>'
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {base + 24}" width="{width}" '
            f'role="img">{axis}{"".join(parts)}</svg>')


def _cards(o: GroupFigures) -> str:
    s = o.satisfaction
    items = [
        ("cases opened", str(o.opened), f"{o.closed} closed, {o.resolved} resolved"),
        ("first response (median)", _dur(o.first_response.median),
         f"p90 {_dur(o.first_response.p90)} · max {_dur(o.first_response.max)}"),
        ("resolution (median)", _dur(o.resolution.median),
         f"p90 {_dur(o.resolution.p90)} · max {_dur(o.resolution.max)}"),
        ("breach rate", _pct(o.breach_rate), f"{o.breached} of {o.opened} cases"),
        ("refused attempts", str(o.refusals), f"{len(o.refusals_by_code)} reason code(s)"),
        ("satisfaction", "–" if s.mean is None else f"{s.mean:.2f} / 5", f"{s.count} rating(s)"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="l">{escape(label)}</div><div class="v">{escape(value)}</div>'
        f'<div class="s">{escape(sub)}</div></div>' for label, value, sub in items) + "</div>"


def _times(d: DurationStats) -> str:
    return f"<td>{d.count}</td><td>{_dur(d.median)}</td><td>{_dur(d.p90)}</td><td>{_dur(d.max)}</td>"


def _table(report: SlaReport) -> str:
    head = ("<tr><th rowspan=2>group</th><th rowspan=2>opened</th><th rowspan=2>closed</th>"
            "<th colspan=4>time to first response</th><th colspan=4>time to resolution</th>"
            "<th rowspan=2>breach<br>rate</th>"
            "<th rowspan=2>refused<br>attempts</th><th rowspan=2>satisfaction<br>mean (n)</th></tr>"
            "<tr><th>n</th><th>median</th><th>p90</th><th>max</th><th>n</th><th>median</th><th>p90</th>"
            "<th>max</th></tr>")
    rows = []
    for g in [*report.groups, report.overall]:
        s = g.satisfaction
        css = ' class="total"' if g.key is None else ""
        rows.append(f"<tr{css}><td>{escape(_label(g))}</td><td>{g.opened}</td><td>{g.closed}</td>"
                    f"{_times(g.first_response)}{_times(g.resolution)}<td>{_pct(g.breach_rate)}</td>"
                    f"<td>{g.refusals}</td>"
                    f"<td>{'–' if s.mean is None else f'{s.mean:.2f} ({s.count})'}</td></tr>")
    return f'<div class="wrap"><table>{head}{"".join(rows)}</table></div>'


def _breach_chart(report: SlaReport) -> str:
    groups = [*report.groups, report.overall]
    types = [t for t in report.breach_types if t in BREACH_TYPES or report.overall.breaches_by_type.get(t)]
    rows = [(_label(g), [(g.breach_rate or 0.0, BREACH_COLOURS["any"], f"{_pct(g.breach_rate)} any"),
                         *[(g.breach_rate_of(t) or 0.0, BREACH_COLOURS.get(t, "#7f8c8d"),
                            f"{_pct(g.breach_rate_of(t))} {t.replace('_', ' ')}") for t in types]])
            for g in groups]
    legend = _legend([("any breach", BREACH_COLOURS["any"]),
                      *[(t.replace("_", " "), BREACH_COLOURS.get(t, "#7f8c8d")) for t in types]])
    return (f"<figure><figcaption>Share of the cases opened that breached a deadline (0–100%)</figcaption>"
            f"{legend}{hbars(rows, 1.0)}</figure>")


def _time_chart(report: SlaReport, title: str, pick: Callable[[GroupFigures], DurationStats]) -> str:
    groups = [*report.groups, report.overall]
    rows = [(_label(g), [(pick(g).median or 0.0, TIME_COLOURS["median"], f"median {_dur(pick(g).median)}"),
                         (pick(g).p90 or 0.0, TIME_COLOURS["p90"], f"p90 {_dur(pick(g).p90)}")])
            for g in groups]
    top = max([0.0, *(v for _, bars in rows for v, _, _ in bars)]) or 1.0
    legend = _legend([("median", TIME_COLOURS["median"]), ("p90", TIME_COLOURS["p90"])])
    return f"<figure><figcaption>{escape(title)}</figcaption>{legend}{hbars(rows, top)}</figure>"


def _satisfaction_chart(report: SlaReport) -> str:
    s = report.overall.satisfaction
    bars = [(f"{score} ★", float(s.distribution[score]), SCORE_COLOURS[score],
             f"{s.distribution[score]} ({_pct(s.distribution[score] / s.count if s.count else None)})")
            for score in SCORES]
    mean = "no ratings yet" if s.mean is None else f"mean {s.mean:.2f} from {s.count} rated case(s)"
    out = f"<figure><figcaption>Satisfaction scores, all cases: {escape(mean)}</figcaption>{vbars(bars)}</figure>"
    if report.groups:
        rows = [(_label(g), [(g.satisfaction.mean or 0.0, SCORE_COLOURS[round(g.satisfaction.mean or 1)],
                              "–" if g.satisfaction.mean is None
                              else f"{g.satisfaction.mean:.2f} ({g.satisfaction.count})")])
                for g in report.groups]
        out += f"<figure><figcaption>Mean score per group (of 5)</figcaption>{hbars(rows, 5.0)}</figure>"
    return out


def _refusals(report: SlaReport) -> str:
    codes = report.refusal_codes
    if not codes:
        return "<p>No refused attempts.</p>"
    rows = [(code, [(float(report.overall.refusals_by_code[code]), "#607d8b",
                     str(report.overall.refusals_by_code[code]))]) for code in codes]
    top = float(max(report.overall.refusals_by_code.values()))
    chart = (f"<figure><figcaption>Refused attempts by reason code (an attempt refused for several reasons "
             f"counts under each)</figcaption>{hbars(rows, top)}</figure>")
    if not report.groups:
        return chart
    head = "<tr><th>code</th>" + "".join(f"<th>{escape(_label(g))}</th>" for g in report.groups) + "<th>all</th></tr>"
    body = "".join(
        f"<tr><td>{escape(code)}</td>"
        + "".join(f"<td>{g.refusals_by_code.get(code, 0)}</td>" for g in report.groups)
        + f"<td>{report.overall.refusals_by_code[code]}</td></tr>" for code in codes)
    return chart + f'<div class="wrap"><table>{head}{body}</table></div>'


def _rejections(report: SlaReport) -> str:
    """Cases rejected, by the rejection reason each reject named (one reason per rejection)."""
    reasons = report.overall.rejections_by_reason
    if not reasons:
        return "<p>No rejections.</p>"
    rows = [(reason, [(float(n), "#b5533c", str(n))]) for reason, n in reasons.items()]
    chart = (f"<figure><figcaption>Rejections by reason ({sum(reasons.values())} in all)</figcaption>"
             f"{hbars(rows, float(max(reasons.values())))}</figure>")
    if not report.groups:
        return chart
    head = "<tr><th>reason</th>" + "".join(f"<th>{escape(_label(g))}</th>" for g in report.groups) + "<th>all</th></tr>"
    body = "".join(
        f"<tr><td>{escape(reason)}</td>"
        + "".join(f"<td>{g.rejections_by_reason.get(reason, 0)}</td>" for g in report.groups)
        + f"<td>{n}</td></tr>" for reason, n in reasons.items())
    return chart + f'<div class="wrap"><table>{head}{body}</table></div>'


def render_html(report: SlaReport) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    period = f"cases opened from {_when(report.since)} until {_when(report.until)}"
    if report.since is None and report.until is None:
        period = "all cases"
    scope = [period, f"kind: {report.kind or 'all'}"] + ([f"grouped by {report.by}"] if report.by else [])
    title = f"SLA report — {period}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body><main>
<h1>SLA report</h1>
<p class="sub">{escape(" · ".join(scope))} · generated {escape(_when(report.generated_at))}</p>
{_cards(report.overall)}
<h2>By {escape(report.by or "case")}</h2>
{_table(report)}
<h2>Breach rate</h2>
{_breach_chart(report)}
<h2>Response and resolution times</h2>
{_time_chart(report, "Time to first response", lambda g: g.first_response)}
{_time_chart(report, "Time to resolution", lambda g: g.resolution)}
<h2>Customer satisfaction</h2>
{_satisfaction_chart(report)}
<h2>Refusal reasons</h2>
{_refusals(report)}
<h2>Rejections by reason</h2>
{_rejections(report)}
<h2>How these figures are counted</h2>
<div class="notes"><p>The report covers the cases opened in the period, as their audit trails stood at its end
(later entries are ignored, so the numbers do not change when the report is run again). First response: the
first applied entry whose event the case's policy counts as a response, or that settles the case; resolution:
the first applied entry that settles it; both measured from the opening. p90 is the nearest-rank 90th
percentile (the ⌈0.9·n⌉-th smallest value); the median of an even count is the mean of the two middle values.
Breach rate: cases with a recorded <code>sla_breach</code> among the cases opened. Satisfaction: the latest
<code>rate</code> (1–5) of each rated case. Rejections: applied <code>reject</code> entries, by the rejection
reason each named.</p></div>
</main></body></html>
"""


def write_html(report: SlaReport, path: str | Path) -> None:
    """Write the report's page to ``path``; InvalidInput (naming the file) when it cannot be written."""
    try:
        Path(path).write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"--html {str(path)!r}: cannot write the file ({exc.strerror or exc})",
                           field="html") from None
