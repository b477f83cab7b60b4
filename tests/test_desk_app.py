"""``casework desk``, the live queue view, driven by Textual's headless pilot at 80×24 on a fresh SQLite database:
the queue and its filters, the selected case, firing an event (allowed and refused), notes, assignment, the live
refresh, and nothing cut at 80 columns.

What the screen shows is read from the widgets' rendered lines (``render_lines``), as the terminal gets them.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_no_traceback, assert_one_stderr_line, invoke
from textual import events
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable

from casework import Actor, Engine, FixedClock, InvalidInput
from casework.commands.desk_app import DeskApp, OnlyText
from casework.commands.desk_forms import FireForm
from casework.commands.desk_queue import QueueFilter

CUSTOMER = Actor("cust-1", "customer")
ALICE = Actor("alice", "agent")
RETURN = {"order_id": "SO-1", "amount": "59.00", "paid": "59.00", "reason": "no_reason", "condition": "unused",
          "delivered": "2026-11-20", "evidence": ["order_record"]}
REFUND = {"order_id": "SO-9", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"}
SIZE = (80, 24)


def lines(widget: Widget) -> list[str]:
    """The widget's lines as the terminal shows them (its whole height, scrolled out of view or not)."""
    size = widget.outer_size
    return [strip.text for strip in widget.render_lines(Region(0, 0, size.width, size.height))]


def screen(app: DeskApp) -> str:
    """The queue, the selected case and the status line, as text."""
    return "\n".join(lines(app.query_one("#queue")) + lines(app.query_one("#case")) + lines(app.query_one("#status")))


def drive(engine: Engine, steps: Callable[[DeskApp, Pilot[None]], Awaitable[None]], **options: Any) -> DeskApp:
    """Run the desk for ``ALICE`` at 80×24 (no timer unless ``every`` is given) and play ``steps`` on it."""
    app = DeskApp(engine, options.pop("actor", ALICE), every=options.pop("every", 0), zone=engine.zone(), **options)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await steps(app, pilot)

    asyncio.run(run())
    return app


def open_return(engine: Engine, **facts: Any) -> str:
    return engine.open("return", {**RETURN, **facts}, actor=CUSTOMER).number


async def choose_event(app: DeskApp, pilot: Pilot[None], event: str) -> None:
    """Open the fire form and move to ``event`` (the form starts on the first allowed event)."""
    await pilot.press("f")
    await pilot.pause()
    form = app.screen
    assert isinstance(form, FireForm)
    events = [d.event for d in form.decisions]
    start = next(i for i, d in enumerate(form.decisions) if d.allowed)
    index = events.index(event)
    await pilot.press(*(["down"] * (index - start) if index >= start else ["up"] * (start - index)))


# ---- the queue ---------------------------------------------------------------------------------------
def test_the_queue_shows_each_open_case_with_its_state_queue_priority_assignee_and_due_time_in_the_desks_zone(
        sqlite_engine: Engine) -> None:
    first, second = open_return(sqlite_engine), open_return(sqlite_engine, order_id="SO-2")
    sqlite_engine.assign(first, "bob", actor=ALICE)
    seen: dict[str, str] = {}

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        seen["queue"] = "\n".join(lines(app.query_one("#queue")))
        seen["bar"] = "\n".join(lines(app.query_one("#bar")))

    drive(sqlite_engine, steps)
    rows = seen["queue"].splitlines()
    assert second in rows[1] and first in rows[2]  # newest first
    assert "submitted" in rows[2] and "p1 bob" in rows[2]
    assert "2026-11-23 10:00" in rows[2]  # opened 10:00 CST, first response due in 24h, shown in the desk's zone
    assert "alice (agent)" in seen["bar"] and "2 case(s)" in seen["bar"] and "Asia/Shanghai" in seen["bar"]


def test_the_selected_case_shows_its_facts_deadlines_notes_and_next_events_with_why_not(
        sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine, delivered="2026-11-01")  # 21 days ago: a no-reason return is too late
    sqlite_engine.note(number, "customer called twice", actor=ALICE)
    shown: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        shown.append(screen(app))

    drive(sqlite_engine, steps)
    text = shown[0]
    assert number in text and "order_id: SO-1" in text
    assert "first response due: 2026-11-23 10:00 CST" in text
    assert "customer called twice" in text and "internal" in text
    assert "approve" in text and "window_expired" in text and "refused" in text


def test_the_filter_bar_takes_lists_filters_and_a_bad_word_is_said_not_a_crash(sqlite_engine: Engine) -> None:
    ret = open_return(sqlite_engine)
    refund = sqlite_engine.open("refund", REFUND, actor=CUSTOMER).number
    seen: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.press("slash", *"kind:refund", "enter")
        await pilot.pause()
        seen.append("\n".join(lines(app.query_one("#queue"))))
        await pilot.press("slash", "ctrl+u", *"order:SO-1", "enter")
        await pilot.pause()
        seen.append("\n".join(lines(app.query_one("#queue"))))
        await pilot.press("slash", "ctrl+u", *"colour:red", "enter")
        await pilot.pause()
        seen.append(screen(app))
        await pilot.press("ctrl+u", *"view:my_lunch", "enter")  # a word it reads, a view the policy has not
        await pilot.pause()
        seen.append(screen(app))
        assert app.filters == QueueFilter(order="SO-1")  # the bad filters changed nothing
        await pilot.press("ctrl+u", *"search:'wrong colour'", "enter")  # in a note of the thread
        await pilot.pause()
        seen.append("\n".join(lines(app.query_one("#queue"))))

    sqlite_engine.note(refund, "customer says: wrong colour", actor=ALICE)
    drive(sqlite_engine, steps)
    assert refund in seen[0] and ret not in seen[0]
    assert ret in seen[1] and refund not in seen[1]
    assert "filter 'colour:red' is not understood; accepted: kind:VALUE" in seen[2]
    assert "unknown view 'my_lunch'" in seen[3] and ret in seen[3]
    assert refund in seen[4] and ret not in seen[4]


def test_words_typed_in_a_burst_after_the_slash_are_the_filters_not_the_queues_keys(sqlite_engine: Engine) -> None:
    ret = open_return(sqlite_engine)
    refund = sqlite_engine.open("refund", REFUND, actor=CUSTOMER).number
    seen: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        burst = [("slash", "/"), *((c, c) for c in "kind:return"), ("enter", None)]  # as a paste, or a fast typist
        for key, character in burst:  # all queued before the first is handled (the "a" is also the take key)
            app.post_message(events.Key(key, character))
        await pilot.pause(0.2)
        seen.append("\n".join(lines(app.query_one("#queue"))))

    drive(sqlite_engine, steps)
    assert ret in seen[0] and refund not in seen[0]
    assert all(sqlite_engine.get(n).assignee is None for n in (ret, refund))  # no "a" taken as Take


def test_the_queue_is_read_again_on_its_interval(sqlite_engine: Engine) -> None:
    open_return(sqlite_engine)
    later: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        later.append(open_return(sqlite_engine, order_id="SO-LATE"))  # another operator's work meanwhile
        for _ in range(50):  # until the interval has passed (not a timing assertion: just waiting for it)
            await pilot.pause(0.05)
            if later[0] in "\n".join(lines(app.query_one("#queue"))):
                return
        pytest.fail("the queue was not read again")

    drive(sqlite_engine, steps, every=0.1)


def test_an_overdue_case_shows_its_due_time_in_red(sqlite_engine: Engine, clock: FixedClock) -> None:
    late = open_return(sqlite_engine)
    clock.advance(hours=30)  # past its first-response deadline (24 h after opening)
    fresh = open_return(sqlite_engine, order_id="SO-2")
    cells: dict[str, Any] = {}

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        table = app.query_one("#queue", DataTable)
        cells.update({n: table.get_cell(n, table.ordered_columns[3].key) for n in (late, fresh)})

    drive(sqlite_engine, steps)
    assert cells[late].plain == "2026-11-23 10:00" and "red" in str(cells[late].style)
    assert "red" not in str(cells[fresh].style)


def test_the_queue_follows_the_terminals_width(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine)
    sqlite_engine.assign(number, "an-agent-with-a-rather-long-name-indeed", actor=ALICE)
    rows: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        rows.append(lines(app.query_one("#queue"))[1])

    drive(sqlite_engine, steps)
    assert "p1 an-agent-with-a-rather-long-name-indeed" in rows[0]  # at 80 columns it is cut to fit


def test_an_unknown_role_is_said_on_the_screen_not_a_crash(sqlite_engine: Engine) -> None:
    open_return(sqlite_engine)
    seen: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        seen.append(screen(app))
        await pilot.press("f")
        await pilot.pause()
        seen.append(screen(app))

    drive(sqlite_engine, steps, actor=Actor("zed", "wizard"))
    assert "role 'wizard'" in seen[0] and "role 'wizard'" in seen[1]


def test_reading_the_queue_again_reads_the_selected_case_once_and_keeps_it_selected(
        sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = [open_return(sqlite_engine, order_id=f"SO-{i}") for i in range(3)]
    read: list[str] = []
    next_events = sqlite_engine.next_events
    monkeypatch.setattr(sqlite_engine, "next_events", lambda number, **kw: read.append(number) or next_events(
        number, **kw))

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.press("down", "down")  # the oldest
        await pilot.pause()
        read.clear()
        await pilot.press("r")
        await pilot.pause()

    app = drive(sqlite_engine, steps)
    assert read == [numbers[0]] and app.selected == numbers[0]  # no passing over the rows on the way


# ---- acting --------------------------------------------------------------------------------------------
def test_firing_an_event_from_the_desk_moves_the_case_and_puts_the_operator_on_the_trail(
        sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine)
    seen: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await choose_event(app, pilot, "review")
        await pilot.press("tab", "tab", "tab", *"checking", "enter")  # to the note field
        await pilot.pause()
        seen.append(screen(app))

    drive(sqlite_engine, steps)
    assert sqlite_engine.get(number).state == "under_review"
    last = sqlite_engine.history(number)[-1]
    assert (last.event, last.outcome, last.actor, last.role) == ("review", "applied", "alice", "agent")
    assert sqlite_engine.thread(number)[-1].text == "checking"
    assert "review: done; now under_review" in seen[0]
    assert "under_review" in seen[0].splitlines()[1]  # the queue shows the new state


def test_a_refused_event_shows_its_reasons_and_the_desk_goes_on(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine, delivered="2026-11-01")  # 21 days after delivery
    seen: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await choose_event(app, pilot, "approve")
        await pilot.press("enter")
        await pilot.pause()
        seen.append(screen(app))
        await choose_event(app, pilot, "review")  # still working: the next action goes through
        await pilot.press("enter")
        await pilot.pause()

    drive(sqlite_engine, steps)
    text = seen[0]
    assert f"{number} approve refused: window_expired" in text
    case_lines = text.splitlines()[2:]  # after the queue's header and its one row
    assert case_lines[0].rstrip() == f"{number} approve refused:"  # at the top of the case, where the eye goes
    assert "window_expired: delivered 21 days ago" in case_lines[1]  # the reason, as `fire` prints it
    assert [(e.event, e.outcome) for e in sqlite_engine.history(number)][-2:] == [
        ("approve", "refused"), ("review", "applied")]


def test_a_reject_from_the_desk_names_its_reason_the_form_says_which(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine)
    why: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await choose_event(app, pilot, "reject")
        await pilot.pause()
        why.extend(lines(app.screen.query_one("#why")))
        await pilot.press("tab", "tab", *"rejection=condition", "enter")  # to the facts field
        await pilot.pause()

    drive(sqlite_engine, steps)
    assert "field_missing" in why[0] and "deadline_passed, condition, missing_proof, fraud" in " ".join(why)
    case = sqlite_engine.get(number)
    assert (case.state, case.facts["rejection"]) == ("rejected", "condition")


def test_a_malformed_field_of_the_fire_form_is_said_and_nothing_is_fired(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine)

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await choose_event(app, pilot, "review")
        await pilot.press("tab", "tab", *"oops", "enter")  # facts: not KEY=VALUE
        await pilot.pause()
        assert isinstance(app.screen, FireForm)  # still open, to be mended
        assert "'oops' is malformed; expected KEY=VALUE" in " ".join(lines(app.screen.query_one("#why")))

    drive(sqlite_engine, steps)
    assert [e.event for e in sqlite_engine.history(number)] == ["open"]


def test_what_a_case_holds_cannot_act_on_the_terminal(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine, order_id="SO-\x1b[2J")
    sqlite_engine.note(number, "see \u202eexe.txt", actor=ALICE)
    shown: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        shown.append(screen(app))

    drive(sqlite_engine, steps)
    assert "\x1b" not in shown[0] and "\u202e" not in shown[0]
    assert "SO-\\x1b[2J" in shown[0] and "see \\u202eexe.txt" in shown[0]  # shown as their escapes


def test_the_case_pane_escapes_whatever_it_is_given_to_draw() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("why not")  # as `next` draws a reason's message, which may quote a value as given
    table.add_row("category 'x\x1b]0;owned\x07' is excluded")
    out = Console(width=80, file=io.StringIO(), color_system=None)
    out.print(OnlyText(table))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in text and "x\\x1b]0;owned" in text  # (rich drops the BEL itself)


def test_a_note_from_the_desk_joins_the_thread_internal_or_to_the_customer(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine)

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.press("n", *"warehouse asked", "enter")
        await pilot.pause()
        await pilot.press("n", *"we got your photo", "tab", "space", "enter")
        await pilot.pause()
        assert "we got your photo" in screen(app)

    drive(sqlite_engine, steps)
    notes = sqlite_engine.thread(number)
    assert [(n.text, n.audience, n.actor) for n in notes] == [
        ("warehouse asked", "internal", "alice"), ("we got your photo", "customer", "alice")]
    assert sqlite_engine.get(number).state == "submitted"


def test_taking_and_assigning_a_case_from_the_desk_changes_the_queue(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine)
    other = open_return(sqlite_engine, order_id="SO-2")
    seen: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.press("a")  # take the selected (newest) case
        await pilot.pause()
        seen.append("\n".join(lines(app.query_one("#queue"))))
        await pilot.press("down", "A", *"bob", "enter")  # assign the other one
        await pilot.pause()
        await pilot.press("slash", *"mine", "enter")
        await pilot.pause()
        seen.append("\n".join(lines(app.query_one("#queue"))))

    drive(sqlite_engine, steps)
    assert sqlite_engine.get(other).assignee == "alice" and sqlite_engine.get(number).assignee == "bob"
    assert "p1 alice" in seen[0].splitlines()[1]
    assert other in seen[1] and number not in seen[1]  # mine: alice's case only
    assert [e.event for e in sqlite_engine.history(number)][-1] == "assign"


def test_a_supervisor_sets_a_priority_from_the_desk_and_an_agent_is_refused_with_why(sqlite_engine: Engine) -> None:
    number = open_return(sqlite_engine)
    seen: list[str] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.press("p", "3", "enter")
        await pilot.pause()
        seen.append(screen(app))
        await pilot.press("p", *"high", "enter")
        await pilot.pause()
        seen.append(screen(app))

    drive(sqlite_engine, steps, actor=Actor("sam", "supervisor"))
    assert sqlite_engine.get(number).priority == 3 and "p3" in seen[0].splitlines()[1]
    assert "priority 'high' is not a whole number" in seen[1]
    drive(sqlite_engine, lambda app, pilot: pilot.press("p", "5", "enter"))  # alice, an agent
    assert sqlite_engine.get(number).priority == 3
    last = sqlite_engine.history(number)[-1]
    assert (last.event, last.outcome, last.actor) == ("prioritize", "refused", "alice")


def test_a_case_fired_to_closed_leaves_the_open_queue(sqlite_engine: Engine) -> None:
    kept = open_return(sqlite_engine)
    closing = open_return(sqlite_engine, order_id="SO-2")
    newest = open_return(sqlite_engine, order_id="SO-3")
    sqlite_engine.fire(closing, "cancel", actor=CUSTOMER)
    seen: list[str] = []
    selected: list[str | None] = []

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        await pilot.press("down")  # from the newest to the cancelled one
        await pilot.pause()
        seen.append("\n".join(lines(app.query_one("#queue"))))
        selected.append(app.selected)
        await choose_event(app, pilot, "close")
        await pilot.press("enter")
        await pilot.pause()
        seen.append("\n".join(lines(app.query_one("#queue"))))
        selected.append(app.selected)

    drive(sqlite_engine, steps)
    assert closing in seen[0] and kept in seen[0]
    assert closing not in seen[1] and kept in seen[1] and newest in seen[1]
    assert selected == [closing, kept]  # the case in its place is selected
    assert sqlite_engine.get(closing).state == "closed"


def test_nothing_is_cut_at_80_columns_for_a_long_case_number(sqlite_engine: Engine, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "t.db") as db:  # the series' counter far on: a 9-digit sequence
        db.execute("INSERT INTO counters (name, value) VALUES ('RT-20261122', 123456788)")
    number = open_return(sqlite_engine)
    assert number == "RT-20261122-123456789"
    sqlite_engine.assign(number, "an-agent-with-a-rather-long-name-indeed", actor=ALICE)
    sqlite_engine.note(number, "Z" * 200, actor=ALICE)
    seen: dict[str, list[str]] = {}

    async def steps(app: DeskApp, pilot: Pilot[None]) -> None:
        seen["queue"], seen["case"] = lines(app.query_one("#queue")), lines(app.query_one("#case"))
        await pilot.press("f")
        await pilot.pause()
        seen["form"] = [line for w in app.screen.query(".title") for line in lines(w)]

    drive(sqlite_engine, steps)
    row = seen["queue"][1]
    assert number in row and "2026-11-23 10:00" in row and len(row) <= 80
    assert all(len(line) <= 80 for part in seen.values() for line in part)
    assert any(number in line for line in seen["case"][:3])
    assert sum(line.count("Z") for line in seen["case"]) == 200  # the long note wraps, whole
    assert any(number in line for line in seen["form"])


# ---- the command ---------------------------------------------------------------------------------------
def test_the_desk_command_refuses_a_bad_filter_before_it_takes_the_screen(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    run = invoke(["--db", db, "desk", "--kind", "parcel"])
    assert run.code == 2 and "parcel" in assert_one_stderr_line(run)
    assert_no_traceback(run)
    run = invoke(["--db", db, "desk", "--mine", "--unassigned"])
    assert run.code == 2 and "exclude each other" in assert_one_stderr_line(run)


def test_the_desk_command_with_json_prints_its_queue_and_takes_no_screen(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    opened = invoke(["--db", db, "open", "refund", "--order", "SO-9", "--amount", "5", "--paid", "5", "--customer",
                     "c-1", "--json"]).json
    assert invoke(["--db", db, "open", "complaint", "--order", "SO-1", "--customer", "c-1"]).code == 0
    run = invoke(["--db", db, "desk", "--kind", "refund", "--json"])
    assert run.code == 0, run
    assert [c["number"] for c in run.json] == [opened["number"]]
    assert invoke(["--db", db, "assign", opened["number"], "--to", "bob"]).code == 0
    run = invoke(["--db", db, "desk", "--view", "unassigned", "--json"])  # a saved view, as list has them
    assert run.code == 0 and opened["number"] not in [c["number"] for c in run.json] and len(run.json) == 1


def test_the_filter_words_read_back_as_written_and_a_bad_one_names_what_is_accepted() -> None:
    f = QueueFilter.parse("kind:refund state=under_review queue:supervisor channel:app order:SO-1 customer:c-1 "
                          "overdue all")
    assert f == QueueFilter(kind="refund", state="under_review", queue="supervisor", channel="app", order="SO-1",
                            customer="c-1", overdue=True, all=True)
    assert {k: v for k, v in f.find_args(ALICE).items() if k in ("order_id", "customer")} == {
        "order_id": "SO-1", "customer": "c-1"}
    assert QueueFilter.parse(f.text()) == f
    assert QueueFilter().find_args(ALICE)["open_only"] is True
    assert QueueFilter(mine=True).find_args(ALICE)["assignee"] == "alice"
    with pytest.raises(InvalidInput, match=r"filter .kind:. is not understood; accepted: .*overdue waiting all"):
        QueueFilter.parse("kind:")
    with pytest.raises(InvalidInput, match="exclude each other"):
        QueueFilter.parse("mine unassigned").find_args(ALICE)
    quoted = QueueFilter.parse("search:'late parcel' due-within:'4 service hours' view:breaching_soon waiting")
    assert (quoted.search, quoted.due_within, quoted.view, quoted.waiting) == (
        "late parcel", "4 service hours", "breaching_soon", True)
    assert QueueFilter.parse(quoted.text()) == quoted
    assert {k: v for k, v in quoted.find_args(ALICE).items() if k in ("text", "due_within", "view", "me")} == {
        "text": "late parcel", "due_within": "4 service hours", "view": "breaching_soon", "me": "alice"}
