"""The CLI's terminal rendering: cases, decisions, trails and reports as rich panels, tables and charts,
or as the one JSON document a command prints with ``--json``.

Only the operator CLI (``cli.py``) imports this module; the library never does. Each function turns
what the library returned into something to print and decides nothing. It imports no more of rich
than ``cli.py`` already loads (console, table, panel, text), so ``casework show`` starts no slower;
the SLA report is drawn by :mod:`casework.terminal.report`, imported when a report is.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

from casework import KINDS, AuditEntry, Case, Decision, VerifyReport

if TYPE_CHECKING:
    from casework.demo import Step
    from casework.policies import PolicySet
    from casework.publishing import Citation
    from casework.sla import SweepReport

NON_TERMINAL_WIDTH = 140  # piped or captured output: wide enough that tables keep one row per line
Progress = Callable[[int, int | None], None]  # progress(done, total), as the library's long operations call it


# Characters that would act on the terminal instead of being read: C0 and C1 controls but the newline, and
# the bidirectional marks and overrides that reorder what is shown ("Trojan Source").
_HIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every character in ``_HIDDEN`` shown as its escape (``\\x1b``, ``\\u202e``): a case's
    data can neither drive the operator's terminal nor disguise itself."""
    return _HIDDEN.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _Console(Console):
    """A console on which text is only text: no markup or emoji codes are read in it (a fact ``[/x]`` is
    shown, not parsed), and control characters are shown escaped, in strings as they are laid out and,
    as a last guard, in every piece of text written (rich's own styling is not text, and is kept)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        return escaped(super().render(renderable, options))


def escaped(segments: Iterable[Segment]) -> Iterator[Segment]:
    """Each segment with the characters in ``_HIDDEN`` of its text shown escaped (rich's own control segments,
    its styling, kept): what the console writes, and what the live desk draws, is only text."""
    for segment in segments:
        if segment.control is None and _HIDDEN.search(segment.text):
            segment = Segment(visible(segment.text), segment.style)
        yield segment


def console() -> Console:
    """The console commands print to: stdout, no guessing of highlights, a fixed width when piped, and
    nothing in the data acting on the terminal (see ``_Console``)."""
    out = _Console(highlight=False, soft_wrap=False, markup=False, emoji=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = NON_TERMINAL_WIDTH
    return out


def show(*renderables: RenderableType) -> None:
    """Print each renderable on stdout, in order."""
    out = console()
    for renderable in renderables:
        out.print(renderable)


def dump(doc: Any) -> None:
    """Print ``doc`` as a command's one JSON document (indented; text as it is, not ``\\u`` escaped)."""
    print(json.dumps(doc, ensure_ascii=False, indent=2))


def render(as_json: bool, doc: Callable[[], Any], draw: Callable[[], RenderableType | Iterator[RenderableType]]
           ) -> None:
    """With ``--json``, ``doc()`` as the one JSON document; else what ``draw()`` gives (a renderable, or a
    generator of them) on the console. Only the one asked for is made."""
    if as_json:
        dump(doc())
        return
    drawn = draw()
    show(*(drawn if isinstance(drawn, Iterator) else (drawn,)))


@contextmanager
def progress(label: str, *, shown: bool, total: Callable[[], int | None] = lambda: None
             ) -> Iterator[Progress | None]:
    """A transient progress bar, when ``shown`` and stdout is a terminal: yields the ``progress`` callback
    to hand the library, or None without a bar (so the library skips work only a bar needs, such as
    counting an import file's lines). ``total()`` is asked only when a bar is drawn."""
    out = console()
    if not shown or not out.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar  # loaded only to draw a bar: `casework show` never needs it

    with Bar(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out,
             transient=True) as live:
        task = live.add_task(label, total=total())
        yield lambda done, size: live.update(task, completed=done, total=size)


# The desk's time zone: every time is shown in it, with the zone's name (the CLI sets it from the policy,
# or --tz, before it draws anything; a command draws once, so a module-wide setting is enough).
_zone: tzinfo = UTC


def use_zone(zone: tzinfo) -> None:
    """Show every time from now on in ``zone``."""
    global _zone
    _zone = zone


def when(value: datetime | None) -> str:
    """A time as the desk reads it: ``2026-11-22 18:25 CST`` in the desk's zone ("-" for none)."""
    return value.astimezone(_zone).strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def _at(value: datetime | None) -> str:
    """A time in a table's cell: ``2026-11-22 18:25``, in the zone the table's title names."""
    return value.astimezone(_zone).strftime("%Y-%m-%d %H:%M") if value else "-"


def _zone_name() -> str:
    return str(getattr(_zone, "key", None) or _zone)


at, zone_name = _at, _zone_name  # (public: the desk's views draw times as the tables do)


def new_table(title: str, *columns: str | Column) -> Table:
    """A table that fits an 80-column terminal: no vertical rules, one space between columns. Columns given
    by name wrap; the ones that must never be cut (numbers, rule ids, times) are given as ``whole``."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
                  collapse_padding=True)
    for column in columns:
        if isinstance(column, Column):
            table.columns.append(column)
        else:
            table.add_column(column, overflow="fold")
    return table


def whole(header: str) -> Column:
    """A column whose every line is kept whole: the table wraps the other columns to make room for it."""
    return Column(header, no_wrap=True, overflow="ignore")


# ---- cases ---------------------------------------------------------------------------------------------
def _facts_text(facts: dict[str, Any]) -> str:
    lines = []
    for key in sorted(facts):
        if key == "evidence":
            items = [f"{e['type']}" + (f" ({e['ref']})" if e.get("ref") else "") for e in facts[key]]
            lines.append(f"evidence: {', '.join(items) or '-'}")
        else:
            value = facts[key]
            lines.append(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return visible("\n".join(lines))


def case_panel(case: Case, *, paused: bool = False) -> Panel:
    """One case: number, kind, state, facts, policy version, deadlines and breaches (``paused``: its resolution
    clock is, while the desk waits on the customer)."""
    body = Text.assemble((case.number, "bold"), "  ", (case.kind, "cyan"), "  state ", (case.state, "bold green"),
                         f"  v{case.version}")
    body.append("\n\n" + _facts_text(case.facts) + "\n\n")
    body.append(f"policy: {case.policy.label} ({case.policy.short})\n")
    body.append(f"opened: {when(case.opened_at)}   updated: {when(case.updated_at)}\n")
    if case.responded_at:
        body.append(f"first response: {when(case.responded_at)}\n")
    elif case.first_response_due:
        body.append(f"first response due: {when(case.first_response_due)}\n")
    if case.resolution_due and not KINDS[case.kind].is_settled(case.state):
        body.append(f"resolution due: {when(case.resolution_due)}"
                    + (" (paused: waiting on the customer)\n" if paused else "\n"))
    if case.assignee:
        body.append(f"assigned to: {visible(case.assignee)}\n")
    if case.timer_due:
        body.append(f"timer: in {case.state} until {when(case.timer_due)}\n")
    if case.due_at and case.due_at not in (case.first_response_due, case.resolution_due, case.timer_due):
        body.append(f"desk deadline: out of {case.state} by {when(case.due_at)}\n")  # (the only other deadline)
    if case.breaches:
        body.append(f"BREACHED: {', '.join(case.breaches)}  priority {case.priority}"
                    + (f"  queue {case.queue}" if case.queue else "") + "\n", style="bold red")
    return Panel(body, title=f"{case.kind} case", expand=False)


def case_table(cases: Sequence[Case]) -> Table:
    """Cases, one row each: number, kind and amount; state, queue and priority, assignee; order and customer
    (room for 20 characters of an order id before it folds); opened and next due."""
    table = new_table(f"{len(cases)} case(s) (times: {_zone_name()})", whole("case"),
                      Column("state / queue / assignee", overflow="fold", max_width=17),
                      Column("order / customer", overflow="fold", min_width=20), whole("opened / due"))
    for c in cases:
        amount = c.facts.get("amount")
        table.add_row(f"{c.number}\n{c.kind}" + (f" {amount}" if amount else ""),
                      f"{c.state}\n{c.queue or 'no queue'} p{c.priority}\n{c.assignee or 'unassigned'}",
                      f"{c.order_id or '-'}\n{c.customer or '-'}", f"{_at(c.opened_at)}\n{_at(c.due_at)}")
    return table


def history(number: str, entries: Sequence[AuditEntry]) -> Iterator[Text]:
    """The trail, an entry a few lines long (a log, not a table: long reasons wrap as prose and nothing is
    cut): seq, time, event, outcome and the move it made (a refused one made none); who; each reason."""
    yield Text(f"{number}: history (times: {_zone_name()})", "bold")
    for e in entries:
        applied = e.outcome == "applied"
        move = f"{e.from_state or '∅'} → {e.to_state}" if applied and e.to_state and e.to_state != e.from_state \
            else f"in {e.from_state or e.to_state or '-'}"
        line = Text.assemble(f"{e.seq:>3}  {_at(e.at)}  ", (e.event, "bold"), "  ",
                             (e.outcome, "green" if applied else "bold red"), f"  {move}\n",
                             f"     {visible(e.actor)} ({e.role})")
        for r in e.reasons:
            line.append_text(Text.assemble("\n", ("     ✗ ", "red"), (r["code"], "bold red"),
                                           f": {visible(r['message'])}"))
        if isinstance(note := e.data.get("note"), str):  # the notes thread, in the trail's order
            line.append(f"\n     note ({e.data.get('audience') or 'internal'}): {visible(note)}")
        yield line


def refused_openings(entries: Sequence[AuditEntry]) -> Iterator[Text]:
    """Openings the rules refused (no case was opened), as ``history`` shows an entry: the series the case would
    have been numbered in, when, who, the order and customer it was for, and each reason."""
    yield Text(f"Openings refused: {len(entries)} (times: {_zone_name()})", "bold")
    for e in entries:
        line = Text.assemble(f"{_at(e.at)}  ", (e.number, "bold"), "  ", ("refused", "bold red"),
                             f"\n     {visible(e.actor)} ({e.role})  order {visible(str(e.data.get('order_id', '-')))}"
                             f"  customer {visible(str(e.data.get('customer', '-')))}")
        for r in e.reasons:
            line.append_text(Text.assemble("\n", ("     ✗ ", "red"), (r["code"], "bold red"),
                                           f": {visible(r['message'])}"))
        yield line


# ---- decisions -----------------------------------------------------------------------------------------
def _reason_line(code: str, text: str) -> Text:
    return Text.assemble(("  ✗ ", "red"), (code, "bold red"), visible(text))


def reasons(decision: Decision, said: Sequence[str] = ()) -> Text:
    """Each reason's code and the operator's message, and under it, labelled, what the customer is told
    (``said``) where that differs."""
    lines = []
    for i, r in enumerate(decision.reasons):
        lines.append(_reason_line(r.reason_code, f": {r.message}"))
        if i < len(said) and said[i] != r.message:
            lines.append(Text(visible(f"    customer: {said[i]}"), "cyan"))
    return Text("\n").join(lines)


def refusal(number: str | None, decision: Decision, said: Sequence[str] = ()) -> Text:
    head = Text(f"{number or ''} {decision.event} refused:".strip(), style="bold red")
    why = reasons(decision, said)
    return Text("\n").join([head, why]) if why else head


def with_said(doc: dict[str, Any], said: Sequence[str] | None) -> dict[str, Any]:
    """A decision's JSON with ``customer_message`` (what the customer is told, ``said``) beside each reason's
    ``message``, which is unchanged; the JSON as it is without ``said``."""
    if said is not None:
        doc["reasons"] = [{**r, "customer_message": m} for r, m in zip(doc["reasons"], said, strict=False)]
    return doc


def decision_json(number: str | None, decision: Decision, said: Sequence[str] | None,
                  cited: Sequence[Citation | None] = ()) -> dict[str, Any]:
    """The JSON of ``check`` and of a refusal: the case's number and the decision, with the customer's messages
    (and, given ``cited``, each verdict's rule as the deciding version's text has it: ``cited``)."""
    doc = with_said({"number": number, **decision.to_json()}, said)
    for verdict, citation in zip(doc["verdicts"], cited, strict=False):
        verdict["cited"] = citation.to_json() if citation is not None else None
    return doc


def decision_table(number: str, decision: Decision, cited: Sequence[Citation | None] = ()) -> Table:
    """Every guard's verdict on one event, with where in the policy it is written (and, given ``cited``, the
    line as the deciding version's stored text has it); a failed one with its code."""
    table = new_table(f"{number}: {decision.event} {'allowed' if decision.allowed else 'REFUSED'}",
                      whole("rule / where"), whole("verdict"), "why")
    quoted = list(cited) + [None] * (len(decision.verdicts) - len(cited))
    for v, c in zip(decision.verdicts, quoted, strict=True):
        verdict = Text("pass", "green") if v.passed else Text("FAIL", "bold red")
        why = v.message if v.passed else Text.assemble((v.reason_code, "bold red"), f": {visible(v.message)}")
        where = f"{v.source} @{c.policy.short}\n  {visible(c.excerpt)[:60]}" if c is not None else v.source or ""
        table.add_row(f"{v.guard}\n{where}".rstrip(), verdict, why)
    return table


def told(decision: Decision, said: Sequence[str], audience: str) -> Iterator[Text]:
    """One line per reason: what ``audience`` is told about it."""
    for r, message in zip(decision.reasons, said, strict=False):
        yield _reason_line(r.reason_code, f" ({audience}): {message}")


def next_json(decisions: Sequence[Decision], said: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """The JSON of ``next``: each possible event's ``{event, allowed, to_state, reasons}``, with customer messages."""
    return [with_said({"event": d.event, "allowed": d.allowed, "to_state": d.to_state,
                       "reasons": [r.reason_json() for r in d.reasons]}, messages)
            for d, messages in zip(decisions, said, strict=True)]


def next_table(number: str, decisions: Sequence[Decision], said: Sequence[Sequence[str]]) -> Table:
    """The events possible next, each allowed or refused, with why not (and what the customer is told)."""
    table = new_table(f"{number}: possible events", whole("event"), "leads to", whole("for you"), "why not")
    for d, messages in zip(decisions, said, strict=True):
        table.add_row(d.event, d.to_state or "", Text("allowed", "green") if d.allowed else Text("refused", "red"),
                      "\n".join(f"{r.code}: {r.message}" + (f"\n  customer: {m}" if m != r.message else "")
                                for r, m in zip(d.reasons, messages, strict=False)))
    return table


# ---- integrity and the demo ------------------------------------------------------------------------------
def verification(report: VerifyReport) -> Iterator[Text]:
    if report.ok:
        yield Text(f"verify: OK — {report.cases_checked} cases, {report.entries_checked} audit entries, every "
                   "chain intact and every replay matches", "green")
    for p in report.problems:
        where = f" seq {p.seq}" if p.seq is not None else ""
        yield Text(f"BROKEN {p.number}{where}: {p.problem}", "bold red")
    yield from chain_lines(report)


def chain_lines(report: VerifyReport) -> Iterator[Text]:
    """The global chain: how it was checked (with a key or not), what waits, and the digest to keep."""
    chain = report.chain
    if chain is None:
        return
    if chain.key_id is not None:
        since = f" from place {chain.keyed_from}" if chain.keyed_from else ": no entry is written with it yet"
        yield Text(f"checked with audit key {chain.key_id}{since}")
    elif chain.chain_key_id or chain.unchecked:
        yield Text(f"checked WITHOUT the audit key the chain is written with (id {chain.chain_key_id}): "
                   f"{chain.unchecked} entries' links and MACs not checked", "yellow")
    else:
        yield Text("checked without an audit key (none is set)")
    if chain.pending:
        yield Text(f"{chain.pending} entries wait to be sealed into the chain (the next write seals them)")
    if report.since is not None and report.ok:
        yield Text(f"the chain extends digest {report.since.seq}:{report.since.hash[:12]}…: append-only since", "green")
    yield Text.assemble("digest (keep it outside the database): ", (str(chain.head), "bold"))


def demo_title(path: Path, policy: PolicySet) -> Iterator[RenderableType]:
    yield Text(f"casework demo — a fresh database at {path}", style="bold")
    yield f"policy: {policy.label} ({policy.ref.short})"


def demo_step(step: Step, first_of_story: bool) -> Iterator[RenderableType]:
    """One step of a demo story (after the story's title when it is the story's first)."""
    if first_of_story:
        yield ""
        yield Text(step.story, style="bold cyan")
    outcome = ("refused", "bold red") if step.refused else (step.case.state, "green")
    yield Text.assemble("  ", (step.case.number, "bold"), f"  {step.actor.id} ({step.actor.role}) {step.event} → ",
                        outcome)
    if step.decision is not None:
        yield reasons(step.decision)


def demo_end(path: Path, report: VerifyReport) -> Iterator[RenderableType]:
    yield ""
    if report.ok:
        yield Text(f"verify: OK — {report.cases_checked} cases, {report.entries_checked} audit entries intact", "green")
    else:
        yield Text(f"verify FAILED: {report.broken_cases}", "bold red")
    yield from chain_lines(report)
    yield f"explore it: casework --db {path} list"


# ---- the service clock -----------------------------------------------------------------------------------
def sweep_table(report: SweepReport) -> Table:
    table = new_table(f"sla sweep at {when(report.at)}{' (dry run)' if report.dry_run else ''}: "
                   f"{report.cases_due} case(s) due", whole("number"), "action", "what", whole("due"), "state",
                   "outcome")
    for a in report.actions:
        style = {"applied": "green", "refused": "red", "skipped": "yellow"}.get(a.outcome, "")
        table.add_row(a.number, a.kind, a.name, _at(a.due), a.state, Text(a.outcome, style))
    return table
