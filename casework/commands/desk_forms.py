"""The live desk's forms (``casework desk``): fire one of a case's next events, add a note, and one line asked for
(whom to assign the case to, its priority).

Each is a modal screen that returns what the operator typed (or None on Escape); the app hands it to the
library, which decides. Every form fits an 80×24 terminal.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from casework import Decision, InvalidInput
from casework.commands.common import data_of
from casework.terminal import visible

# The forms' look, in the app's stylesheet (a screen's own CSS would be scoped to it, and these are shared).
FORM_CSS = """
.form-screen { align: center middle; }
.form { width: 76; max-width: 100%; height: auto; max-height: 100%; border: round $accent; background: $surface;
        padding: 0 1; }
.form .title { text-style: bold; width: 100%; }
.form .hint { color: $text-muted; width: 100%; }
.form Horizontal { height: 1; }
.form Horizontal > Label { width: 10; }
.form Input { height: 1; border: none; padding: 0; width: 1fr; background: $boost; }
.form Input:focus { background: $accent 30%; }
.form OptionList { height: auto; max-height: 10; border: none; padding: 0; margin-top: 1; }
.form #why { height: auto; max-height: 4; margin: 1 0; }
.form Checkbox { height: 1; border: none; padding: 0; margin-top: 1; }
.form Checkbox:focus { background: $accent 30%; }
"""


@dataclass(frozen=True)
class Firing:
    """What the fire form returns: the event, and the event's data (evidence, facts and a note)."""

    event: str
    data: dict[str, Any]


Result = TypeVar("Result")


class Form(ModalScreen[Result | None], Generic[Result]):
    """A form over the desk: Escape cancels it (its result is then None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__(classes="form-screen")

    def action_cancel(self) -> None:
        self.dismiss(None)


def _field(label: str, name: str, placeholder: str) -> Horizontal:
    return Horizontal(Label(label), Input(placeholder=placeholder, id=name))


class FireForm(Form[Firing]):
    """Choose one of the case's next events (each shown allowed, or refused with its reason codes; the highlighted
    one's reasons under the list), with evidence, facts and a note as ``casework fire`` takes them; Enter fires,
    Escape cancels. A malformed field is said, and the form stays."""

    def __init__(self, number: str, decisions: Sequence[Decision]) -> None:
        super().__init__()
        self.number = number
        self.decisions = list(decisions)

    def compose(self) -> ComposeResult:
        options = []
        for d in self.decisions:
            line = Text.assemble((d.event, "bold"), f" → {d.to_state or '-'}  ")
            if d.allowed:
                line.append("allowed", "green")
            else:
                line.append("refused: " + ", ".join(dict.fromkeys(d.codes)), "red")
            options.append(Option(line, id=d.event))
        with Vertical(classes="form"):
            yield Label(Text(f"Fire an event on {self.number}"), classes="title")
            yield OptionList(*options, id="events")
            yield Static(id="why", markup=False)
            yield _field("evidence", "evidence", "TYPE or TYPE=REF, space-separated, e.g. photo=IMG_1.jpg")
            yield _field("facts", "facts", "KEY=VALUE, space-separated, e.g. amount=20.00")
            yield _field("note", "note", "a note for the thread (a resolution, a reason)")
            yield Label("↑↓ choose · Tab to the fields · Enter fires · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        events = self.query_one("#events", OptionList)
        events.highlighted = next((i for i, d in enumerate(self.decisions) if d.allowed), 0) if self.decisions \
            else None
        events.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """Under the list, why the highlighted event would be refused (what to give it, such as a reject's reason)."""
        d = self.decisions[event.option_index]
        why = Text("\n").join(Text.assemble((r.reason_code, "bold red"), f": {visible(r.message)}") for r in d.reasons)
        self.query_one("#why", Static).update(why or Text(f"{d.event}: allowed for you", "green"))

    def on_option_list_option_selected(self, _: OptionList.OptionSelected) -> None:
        self.submit()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.submit()

    def submit(self) -> None:

        index = self.query_one("#events", OptionList).highlighted
        if index is None:
            return
        try:
            evidence, facts = (_words(self.query_one(f"#{name}", Input).value, name) for name in ("evidence", "facts"))
            note = self.query_one("#note", Input).value.strip() or None
            data = data_of(evidence, facts, note=note)
        except InvalidInput as bad:
            self.query_one("#why", Static).update(Text(visible(str(bad)), "bold red"))
            return
        self.dismiss(Firing(self.decisions[index].event, data))


def _words(text: str, name: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"{name} {text!r} cannot be read: {exc}; quote a value with spaces", field=name,
                           value=text) from None


@dataclass(frozen=True)
class Noting:
    """What the note form returns: the text, and whom it is for (``internal`` or ``customer``)."""

    text: str
    audience: str


class NoteForm(Form[Noting]):
    """A note for the case's thread: internal (the desk only) unless "to the customer" is ticked."""

    def __init__(self, number: str) -> None:
        super().__init__()
        self.number = number

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Label(Text(f"Add a note to {self.number}"), classes="title")
            yield _field("note", "text", "what happened, what is next")
            yield Checkbox("to the customer (else internal: the desk only)", id="to-customer")
            yield Label("Tab, Space: for the customer or not · Enter adds · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#text", Input).focus()

    def on_checkbox_changed(self, _: Checkbox.Changed) -> None:
        self.query_one("#text", Input).focus()  # back to the text, where Enter adds the note

    def on_input_submitted(self, _: Input.Submitted) -> None:
        text = self.query_one("#text", Input).value  # (an empty one is the library's to refuse, as for `note`)
        self.dismiss(Noting(text, "customer" if self.query_one("#to-customer", Checkbox).value else "internal"))


class Ask(Form[str]):
    """One line asked for (whom to assign a case to, its priority): Enter gives it as typed, Escape cancels."""

    def __init__(self, title: str, label: str, placeholder: str, hint: str) -> None:
        super().__init__()
        self.title_text, self.label, self.placeholder, self.hint = title, label, placeholder, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Label(Text(visible(self.title_text)), classes="title")
            yield _field(self.label, "answer", self.placeholder)
            yield Label(f"{self.hint} · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
