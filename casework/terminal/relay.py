"""The relay on a terminal: one live status line while it runs, and a summary when it stops."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.text import Text

from casework import RelayProgress
from casework.terminal import console

_STYLE = {"connecting": "yellow", "publishing": "green", "idle": "cyan", "waiting": "red", "stopped": "bold"}


def status(p: RelayProgress, target: str) -> Text:
    """``publishing  nats://…/CASEWORK  published 1200  cursor 4810`` (and why it waits, when it does)."""
    line = Text()
    line.append(f"{p.state:<10}", style=_STYLE.get(p.state, ""))
    line.append(f"  {target}  published {p.published}  cursor {p.position}")
    if p.state == "waiting":
        line.append(f"  broker down ({p.problem}); retrying in {p.retry_in:.1f}s", style="red")
    return line


@contextmanager
def watch(target: str, *, shown: bool) -> Iterator[Callable[[RelayProgress], None]]:
    """A live status line on a terminal (nothing when not ``shown`` or not a terminal): yields the relay's
    progress callback. The last state stays on screen."""
    out = console()
    if not shown or not out.is_terminal:
        yield lambda _p: None
        return
    from rich.live import Live  # loaded only to draw

    # Drawn from the progress callback itself, no refresh thread: the relay forks its reading process after this
    # starts, and a fork should find no other thread that might hold a lock (the console's, say). At most 8
    # times a second, and at every change of state (the last one, "stopped", included).
    shown_at, shown_state = [0.0], [""]

    def show(p: RelayProgress) -> None:
        now = time.monotonic()
        if p.state != shown_state[0] or now - shown_at[0] >= 0.125:
            shown_at[0], shown_state[0] = now, p.state
            live.update(status(p, target), refresh=True)

    with Live(Text(""), console=out, auto_refresh=False, transient=False) as live:
        yield show


def summary(p: RelayProgress, target: str) -> Text:
    return Text(f"relay stopped: published {p.published} change(s) to {target}; cursor at {p.position}")
