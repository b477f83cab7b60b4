"""Where the relay's database work runs (``casework.relay_worker``): a thread, or a forked child answering in order.

These need no broker; ``test_relay.py`` runs both readers against a real NATS server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from casework import Engine, InvalidInput, Relay, StoreError
from casework.relay_worker import ProcessWorker, ThreadWorker, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="the process reader needs os.fork (POSIX)")


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no pickling this")


def work(op: str, arg: int) -> Any:
    """What the child runs: its pid and the argument; an error on asking; a hang to cancel."""
    if op == "echo":
        return (os.getpid(), arg)
    if op == "fail":
        raise InvalidInput(f"value {arg} refused", field="value", value=arg)
    if op == "odd":
        raise Unpicklable(f"odd {arg}")
    if op == "sigint":
        os.kill(os.getpid(), signal.SIGINT)  # ignored: the parent decides when the child stops
        return "still here"
    if op == "exit":
        os._exit(3)
    raise ValueError(op)


def test_the_child_answers_in_order_in_another_process_and_a_cancelled_call_is_skipped():
    async def go() -> list[Any]:
        worker = await ProcessWorker.start(work)
        try:
            first, dropped, third = worker.call("echo", 1), worker.call("echo", 2), worker.call("echo", 3)
            dropped.cancel()  # its answer comes, and is read and dropped: the next answer is still the third's
            got = [await first, await third, await worker.call("sigint", 0), await worker.call("echo", 4)]
            return [*got, worker.pid]
        finally:
            await worker.close()

    (pid1, one), (pid3, three), survived, (_, four), child = asyncio.run(go())
    assert (one, three, four, survived) == (1, 3, 4, "still here")
    assert pid1 == pid3 == child != os.getpid()
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # closed: the child ended and was reaped


def test_an_error_in_the_child_is_raised_by_the_call_and_the_child_goes_on():
    async def go() -> tuple[Any, Any, Any]:
        worker = await ProcessWorker.start(work)
        try:
            with pytest.raises(InvalidInput, match="value 7 refused") as refused:
                await worker.call("fail", 7)
            with pytest.raises(StoreError, match="Unpicklable: odd 8"):  # an error that does not pickle: named
                await worker.call("odd", 8)
            return refused.value.field, refused.value.value, await worker.call("echo", 9)
        finally:
            await worker.close()

    field, value, (_, nine) = asyncio.run(go())
    assert (field, value, nine) == ("value", 7, 9)


def test_a_child_that_ends_fails_every_call_in_flight_and_after_with_how_it_ended():
    async def go() -> None:
        worker = await ProcessWorker.start(work)
        try:
            ended, waiting = worker.call("exit", 0), worker.call("echo", 1)
            for call in (ended, waiting, worker.call("echo", 2)):
                with pytest.raises(StoreError, match=rf"reading process \(pid {worker.pid}\) ended unexpectedly "
                                                     r"\(exit status 3"):
                    await call
        finally:
            await worker.close()

    asyncio.run(go())


def test_a_thread_worker_runs_each_call_on_a_thread():
    async def go() -> tuple[Any, str]:
        worker = ThreadWorker(lambda op, arg: (threading.current_thread().name, op, arg))
        try:
            return await worker.call("echo", 5), threading.current_thread().name
        finally:
            await worker.close()

    (name, op, arg), loop_thread = asyncio.run(go())
    assert (op, arg) == ("echo", 5) and name != loop_thread


def test_the_reader_is_checked_and_auto_takes_a_process_only_where_it_can(tmp_path: Path):
    on_file = Engine(f"sqlite:///{tmp_path}/r.db")
    in_memory = Engine("sqlite://")
    try:
        assert Relay(on_file).reader == "thread"  # the library's default: safe in any host
        assert Relay(on_file, reader="auto").reader == "process"
        assert Relay(in_memory, reader="auto").reader == "thread"  # a child would read a copy of it
        with pytest.raises(InvalidInput, match="reader 'process': the database is one connection of this process"):
            Relay(in_memory, reader="process")
        with pytest.raises(InvalidInput, match="reader 'fork': expected one of thread, process, auto"):
            Relay(on_file, reader="fork")
    finally:
        on_file.close()
        in_memory.close()


def test_a_fork_that_fails_is_a_store_error_naming_the_way_out(monkeypatch: pytest.MonkeyPatch):
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(StoreError, match=r"cannot start the relay's reading process: .*Resource temporarily "
                                         r"unavailable; try reader='thread'"):
        asyncio.run(ProcessWorker.start(work))


def test_the_relays_live_line_is_drawn_without_a_thread_at_most_8_times_a_second_and_at_every_state(
        monkeypatch: pytest.MonkeyPatch):
    """No refresh thread runs while the relay forks its reading process; the line shows each new state, and
    within a state at most one drawing an eighth of a second (a clock of the test's own); the last state stays."""
    import io
    import types

    from rich.console import Console

    from casework import RelayProgress
    from casework.terminal import relay as relay_view

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system=None, width=120)
    monkeypatch.setattr(relay_view, "console", lambda: terminal)
    now = [100.0]
    monkeypatch.setattr(relay_view, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    threads = threading.active_count()
    with relay_view.watch("nats://x CASEWORK", shown=True) as progress:
        assert threading.active_count() == threads  # no refresh thread
        progress(RelayProgress("connecting", 0))
        for n in range(1, 100):  # within one moment: the new state drawn once, not 99 times
            progress(RelayProgress("publishing", n, published=n))
        now[0] += 0.124
        progress(RelayProgress("publishing", 100, published=100))  # not yet an eighth of a second
        now[0] += 0.002
        progress(RelayProgress("publishing", 101, published=101))  # now it is
        progress(RelayProgress("stopped", 101, published=101))  # a new state: at once
    drawn = screen.getvalue()
    assert drawn.count("publishing") == 2
    assert "published 1  cursor 1" in drawn and "published 101  cursor 101" in drawn
    assert "published 100 " not in drawn and "published 2 " not in drawn
    assert "connecting" in drawn and "stopped     nats://x CASEWORK  published 101  cursor 101" in drawn
