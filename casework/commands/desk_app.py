"""``casework desk``: the live queue view, a full-screen Textual app that works at 80×24.

Top to bottom: a line naming the operator, the number of cases and the desk's zone; the filter bar (the
filters of ``casework list`` as words, see :mod:`casework.commands.desk_queue`); the queue (number, state, queue
· priority · assignee, next due time; a case number is never cut); the selected case (its facts and
deadlines, its notes thread, its next events each allowed or refused with why); a status line; the keys.

Every read and every action is a call of the public library API (``Engine.find``, ``get``, ``thread``,
``next_events``, ``messages``, ``fire``, ``note``, ``assign``, ``prioritize``) as the acting operator, exactly as
the plain commands make them: the library decides, the app renders (with the same renderers as ``show`` and ``next``).
A refusal is shown with its reasons; a bad value as its one-line message; neither ends the app.
The queue is read again after every action and every ``every`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import tzinfo
from typing import ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Static

from casework import Actor, Case, CaseworkError, Decision, Engine, TransitionDenied, terminal
from casework.commands import desk_forms
from casework.commands.common import messages_of
from casework.commands.desk_queue import COLUMNS, QueueFilter, row, widths
from casework.terminal import desk, escaped, visible, zone_name

PLACEHOLDER = "/ to filter: kind:refund state:under_review queue:supervisor mine overdue …"


class OnlyText:
    """A renderable drawn as ``renderable`` is, with the characters that would act on the terminal shown escaped
    (Textual draws it with a console of its own, not the CLI's, which guards what it prints the same way)."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        yield from escaped(console.render(self.renderable, options))


class Queue(DataTable[str | Text]):
    """The queue's table; it says when its width changes (its columns' widths follow it)."""

    class Resized(Message):
        """The table's width changed."""

    laid_out_for = 0  # the width its columns were last laid out for

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self.laid_out_for:
            self.laid_out_for = event.size.width
            self.post_message(self.Resized())


class DeskApp(App[None]):
    """The live desk for ``actor`` on ``engine``'s cases, starting with ``filters`` (see the module docstring).
    ``every``: seconds between two readings of the queue (0: only after actions and on ``r``); ``limit``: at
    most this many cases in the queue; ``zone``: show times in it (default: as the CLI set it, the desk's)."""

    TITLE = "casework desk"
    ENABLE_COMMAND_PALETTE = False  # its key hint would push the desk's own keys off an 80-column footer
    CSS = """
    #bar { height: 1; background: $primary; color: $text; padding: 0 1; }
    #filter { height: 1; border: none; padding: 0 1; background: $boost; }
    #filter:focus { background: $accent 30%; }
    #queue { height: auto; max-height: 10; }
    #detail { height: 1fr; border-top: solid $primary; }
    #status { height: 1; padding: 0 1; }
    """ + desk_forms.FORM_CSS
    # The desk's keys are priority bindings, taken by the app before the keys behind them go to a widget: a word
    # typed quickly after / or n is the filter's or the note's, never a key of the queue (an "a" taking a case).
    # They act only on the queue's screen with no field focused (check_action); elsewhere the key is the field's.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "fire", "Fire", priority=True),
        Binding("n", "note", "Note", priority=True),
        Binding("a", "take", "Take", priority=True),
        Binding("A", "assign", "Assign", priority=True),
        Binding("p", "prioritize", "Priority", priority=True),
        Binding("slash", "filter", "Filter", priority=True),
        Binding("escape", "leave_filter", "Queue", show=False),
        Binding("r", "reload", "Refresh", priority=True),
        Binding("pagedown", "scroll_case(1)", "Case ↓", priority=True, show=False),
        Binding("pageup", "scroll_case(-1)", "Case ↑", priority=True, show=False),
        Binding("q", "quit", "Quit", priority=True),
    ]
    DESK_KEYS = frozenset({"fire", "note", "take", "assign", "prioritize", "filter", "reload", "scroll_case", "quit"})

    def __init__(self, engine: Engine, actor: Actor, *, filters: QueueFilter | None = None, every: float = 5.0,
                 limit: int = 200, zone: tzinfo | None = None) -> None:
        super().__init__()
        self.engine, self.actor = engine, actor
        self.filters = filters or QueueFilter()
        self.every, self.limit = every, limit
        if zone is not None:
            terminal.use_zone(zone)
        self.cases: list[Case] = []
        self.selected: str | None = None
        self.ready = False  # mounted: the widgets are there
        self.refused: dict[str, tuple[Decision, list[str]]] = {}  # the last refusal of a case, shown first in it

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.DESK_KEYS:
            return self.screen is self.screen_stack[0] and not isinstance(self.focused, Input)
        return True

    # ---- layout --------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Kept, not queried: a form may be the screen on top when the timer reads the queue again.
        self.bar = Static(id="bar", markup=False)
        # Not selected on focus: a word typed right behind the slash would be selected, and replaced by the next.
        self.filter_bar = Input(self.filters.text(), placeholder=PLACEHOLDER, id="filter", select_on_focus=False)
        self.queue = Queue(id="queue", cursor_type="row")
        self.detail = VerticalScroll(id="detail")
        self.case = Static(id="case", markup=False)
        self.status = Static(id="status", markup=False)
        yield from (self.bar, self.filter_bar, self.queue)
        with self.detail:
            yield self.case
        yield from (self.status, Footer())

    def on_mount(self) -> None:
        self.reload()
        if self.every > 0:
            self.set_interval(self.every, lambda: self.reload())
        self.queue.focus()
        self.ready = True

    def on_queue_resized(self, _: Queue.Resized) -> None:
        if self.ready:
            self.reload()

    # ---- reading ---------------------------------------------------------------------------------------
    def reload(self, filters: QueueFilter | None = None) -> bool:
        """Read the queue again (with ``filters`` from now on, if given and the library takes them; keeping the
        selected case if it is still in it) and the selected case; False when the queue could not be read."""
        chosen = filters or self.filters
        try:
            self.cases = self.engine.find(limit=self.limit, **chosen.find_args(self.actor))
        except CaseworkError as bad:
            self.say(str(bad), error=True)
            return False
        self.filters = chosen
        table = self.queue
        sizes = widths(self.cases, table.size.width or self.size.width)
        was_at = table.cursor_row  # a case that left the queue: the one now in its place is selected
        numbers = [c.number for c in self.cases]
        if self.selected not in numbers:
            self.selected = numbers[min(was_at, len(numbers) - 1)] if numbers else None
        now = self.engine.now()
        with table.prevent(DataTable.RowHighlighted):  # the cursor passing over rows while they are laid out
            table.clear(columns=True)
            for label, width in zip(COLUMNS, sizes, strict=True):
                table.add_column(label, width=width)
            for case in self.cases:
                table.add_row(*row(case, sizes[2], now), key=case.number)
            if self.selected is not None:
                table.move_cursor(row=numbers.index(self.selected))
        self.bar.update(Text(
            f"casework desk · {visible(self.actor.id)} ({self.actor.role}) · {len(self.cases)} case(s)"
            f" · times: {zone_name()}", "bold", no_wrap=True, overflow="ellipsis"))
        self.show_selected()
        return True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        number = event.row_key.value
        if number is not None and number != self.selected:
            self.selected = number
            self.show_selected()

    def show_selected(self) -> None:
        """The selected case: what ``show`` and ``next`` show of it, and its last refusal here, if any."""
        view = self.case
        number = self.selected
        if number is None:
            view.update(Text(f"No case matches the filter {self.filters.text() or '(none)'}."))
            return
        try:
            view.update(OnlyText(Group(*self.case_view(number))))
        except CaseworkError as bad:
            view.update(Text(visible(str(bad)), "red"))

    def case_view(self, number: str) -> list[RenderableType]:

        case = self.engine.get(number)
        notes = self.engine.thread(number)
        decisions = self.engine.next_events(number, actor=self.actor)
        said = [messages_of(self.engine, d, None, number) for d in decisions]
        where = Text(visible(f"queue {case.queue or '-'} · priority {case.priority} · "
                             f"assigned to {case.assignee or 'nobody'}"), "bold")
        parts: list[RenderableType] = []
        if number in self.refused:  # first, where the operator looks after an action
            decision, told = self.refused[number]
            parts += [terminal.refusal(number, decision, told), Text("")]
        parts += [where, terminal.case_panel(case)]
        parts += list(desk.thread(case.number, notes)) or [Text("No notes yet.", "dim")]
        parts.append(terminal.next_table(case.number, decisions, said) if decisions
                     else Text(f"No event is possible from {case.state}.", "dim"))
        return parts

    def say(self, message: str, *, error: bool = False) -> None:
        self.status.update(Text(visible(message), "bold red" if error else "green", no_wrap=True, overflow="ellipsis"))
        if error:
            self.notify(visible(message), severity="error", markup=False)

    # ---- acting ------------------------------------------------------------------------------------------
    def act(self, number: str, what: str, call: Callable[[], Case]) -> None:
        """Make one library call on case ``number``, say how it went, and read the queue again."""

        try:
            case = call()
        except TransitionDenied as denied:
            decision = denied.decision
            self.refused[number] = (decision, messages_of(self.engine, decision, None, number))
            self.say(f"{number} {what} refused: {'; '.join(dict.fromkeys(decision.codes))} (why: below)", error=True)
        except CaseworkError as bad:
            self.say(f"{number} {what}: {bad}", error=True)
        else:
            self.refused.pop(number, None)
            self.say(f"{number} {what}: done; now {case.state}, priority {case.priority}"
                     + (f", assigned to {case.assignee}" if case.assignee else ""))
        self.reload()
        self.detail.scroll_home(animate=False)

    def action_fire(self) -> None:
        number = self.selected
        if number is None:
            return
        try:
            decisions = self.engine.next_events(number, actor=self.actor)
        except CaseworkError as bad:
            self.say(str(bad), error=True)
            return
        if not decisions:
            self.say(f"{number}: no event is possible from its state", error=True)
            return

        def fired(firing: desk_forms.Firing | None) -> None:
            if firing is not None:
                self.act(number, firing.event, lambda: self.engine.fire(number, firing.event, actor=self.actor,
                                                                        data=firing.data))
        self.push_screen(desk_forms.FireForm(number, decisions), fired)

    def action_note(self) -> None:
        number = self.selected
        if number is None:
            return

        def noted(noting: desk_forms.Noting | None) -> None:
            if noting is not None:
                self.act(number, f"note ({noting.audience})", lambda: self.engine.note(
                    number, noting.text, actor=self.actor, audience=noting.audience))
        self.push_screen(desk_forms.NoteForm(number), noted)

    def action_take(self) -> None:
        number = self.selected
        if number is not None:
            self.act(number, f"assign to {self.actor.id}",
                     lambda: self.engine.assign(number, self.actor.id, actor=self.actor))

    def action_assign(self) -> None:
        number = self.selected
        if number is None:
            return
        current = next((c.assignee for c in self.cases if c.number == number), None)

        def assigned(answer: str | None) -> None:
            if answer is not None:
                to = answer.strip() or None
                self.act(number, f"assign to {to or 'nobody'}",
                         lambda: self.engine.assign(number, to, actor=self.actor))
        self.push_screen(desk_forms.Ask(f"Assign {number} (now: {current or 'nobody'})", "to",
                                        "operator id; empty: nobody", "Enter assigns"), assigned)

    def action_prioritize(self) -> None:
        number = self.selected
        if number is None:
            return
        current = next((c.priority for c in self.cases if c.number == number), None)

        def prioritized(answer: str | None) -> None:
            if answer is None:
                return
            try:
                level = int(answer)
            except ValueError:
                self.say(f"priority {answer!r} is not a whole number; a priority is 0-9", error=True)
                return
            self.act(number, f"priority {level}", lambda: self.engine.prioritize(number, level, actor=self.actor))
        self.push_screen(desk_forms.Ask(f"Priority of {number} (now: {current})", "priority",
                                        "0-9, higher is more urgent", "Enter sets it"), prioritized)

    def action_scroll_case(self, pages: int) -> None:
        detail = self.detail
        (detail.scroll_page_down if pages > 0 else detail.scroll_page_up)(animate=False)

    def action_reload(self) -> None:
        self.reload()

    # ---- the filter bar ------------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.screen.set_focus(self.filter_bar)  # now, not after the keys already typed behind the slash

    def action_leave_filter(self) -> None:
        self.filter_bar.value = self.filters.text()
        self.queue.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        try:
            chosen = QueueFilter.parse(event.value)
        except CaseworkError as bad:
            self.say(str(bad), error=True)
            return
        if self.reload(chosen):  # a filter the library refuses (an unknown kind or view) leaves the queue as it was
            self.say(f"filter: {chosen.text() or '(none)'}")
            self.queue.focus()
