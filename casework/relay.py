"""The relay: the outbox published to NATS JetStream, at least once, in commit order.

The relay reads the changes after its cursor (:meth:`casework.Engine.changes`), publishes each to
``SUBJECT.KIND.EVENT`` with its global id as the message id (JetStream's ``Nats-Msg-Id``: the stream
drops a message whose id it has seen within its duplicate window), and moves its cursor, stored in
the database under the relay's name, over the ids the broker acknowledged — only over an unbroken
prefix of them. A relay that stops or crashes between an acknowledgement and its cursor publishes
those changes again (at least once; the id makes the copy recognisable). While the broker is down
it waits, doubling the wait up to a ceiling, and starts again from its cursor.

Order: changes are sent on one connection in global-id order; a message is published only after every
earlier one was sent, and after a failure the relay sends again from the first one not acknowledged.
The stream therefore holds each case's changes (and all changes) in commit order, copies aside.
At most ``window`` acknowledgements are awaited at once (``window=1``: each before the next is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import nats.js.errors
from nats.js.api import StreamConfig

from casework.changes import MAX_PAGE, Change
from casework.errors import BrokerUnavailable, InvalidInput
from casework.jsontext import strict

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from casework.engine import Engine

LOG = logging.getLogger("casework.relay")
DEFAULT_SERVERS = "nats://127.0.0.1:4222"
BROKER_ERRORS = (nats.errors.Error, nats.js.errors.Error, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class RelayProgress:
    """Where a relay stands: ``state`` is ``connecting``, ``publishing``, ``idle`` (caught up, polling),
    ``waiting`` (the broker is down: ``retry_in`` seconds, ``problem`` says why) or ``stopped``."""

    state: str
    position: int
    published: int = 0
    retry_in: float | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "position": self.position, "published": self.published,
                "retry_in": self.retry_in, "problem": self.problem}


class Relay:
    """Publishes an Engine's outbox to a JetStream stream (created if missing, with its duplicate window).

    >>> relay = Relay(engine, servers="nats://127.0.0.1:4222")      # doctest: +SKIP
    >>> asyncio.run(relay.run(once=True)).published                   # doctest: +SKIP
    """

    def __init__(self, engine: Engine, *, servers: str = DEFAULT_SERVERS, stream: str = "CASEWORK",
                 subject: str = "casework", name: str = "default", batch: int = 500, window: int = 256,
                 duplicate_window: float = 3600.0, poll: float = 0.5, backoff: tuple[float, float] = (0.2, 10.0),
                 reveal: bool = False, timeout: float = 5.0) -> None:
        for label, value, low, high in (("batch", batch, 1, MAX_PAGE), ("window", window, 1, 65536)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(f"{label} {value!r}: expected a whole number from {low} to {high}", field=label,
                                   value=value)
        for label, text in (("stream", stream), ("subject", subject), ("name", name)):
            if not text or any(c in text for c in " \t\r\n*>") or (label == "stream" and "." in text):
                raise InvalidInput(f"{label} {text!r}: expected a non-empty name without spaces, '*' or '>'"
                                   + (" or '.'" if label == "stream" else ""), field=label, value=text)
        self.engine = engine
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        if not self.servers:
            raise InvalidInput(f"servers {servers!r}: expected a NATS URL such as {DEFAULT_SERVERS}",
                               field="servers", value=servers)
        self.shown = ",".join(_hidden(s) for s in self.servers)  # for messages: no password
        self.stream, self.subject, self.name = stream, subject, name
        self.batch, self.window, self.duplicate_window = batch, window, duplicate_window
        self.poll, self.backoff, self.reveal, self.timeout = poll, backoff, reveal, timeout
        self._lost = asyncio.Event()  # set when the connection drops: awaited acknowledgements will not come

    # ---- the cursor ------------------------------------------------------------------------------------
    def position(self) -> int:
        """The global id this relay has published up to (0: none yet)."""
        return self.engine.store.outbox.cursor(self.name) or 0

    def rewind(self, position: int) -> None:
        """Set the cursor to ``position`` (publish again every change after it; the stream drops copies
        within its duplicate window, a consumer by the id)."""
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise InvalidInput(f"position {position!r}: expected a global id, a whole number 0 or above",
                               field="position", value=position)
        self.engine.store.outbox.save_cursor(self.name, position, self.engine.now(), rewind=True)

    # ---- running ---------------------------------------------------------------------------------------
    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None,
                  progress: Callable[[RelayProgress], None] | None = None,
                  give_up_after: float | None = None) -> RelayProgress:
        """Publish until ``stop`` is set (or, with ``once``, until caught up). Broker failures are waited out
        with back-off; with ``give_up_after`` seconds of failures in a row, :class:`BrokerUnavailable`."""
        stop = stop or asyncio.Event()
        report = progress or (lambda _p: None)
        now = RelayProgress("connecting", await asyncio.to_thread(self.position))
        report(now)
        nc: Client | None = None
        delay, failing_since = self.backoff[0], None
        try:
            while not stop.is_set():
                try:
                    if nc is None:
                        nc = await self._connect()
                        js = nc.jetstream(timeout=self.timeout)
                        await self._ensure_stream(js)
                    changes = await asyncio.to_thread(self.engine.changes, now.position, limit=self.batch,
                                                      reveal=self.reveal)
                    if not changes:
                        if once:
                            break
                        now = replace(now, state="idle", retry_in=None, problem=None)
                        report(now)
                        await _sleep(stop, self.poll)
                        continue
                    now = replace(now, state="publishing", retry_in=None, problem=None)
                    now = await self._publish(js, changes, now, report)
                    delay, failing_since = self.backoff[0], None
                except BROKER_ERRORS as exc:
                    problem = _problem(exc)
                    LOG.info("broker %s: %s; retrying in %.1fs", self.shown, problem, delay)
                    await _closed(nc)
                    nc = None
                    failing_since = failing_since if failing_since is not None else time.monotonic()
                    if give_up_after is not None and time.monotonic() - failing_since >= give_up_after:
                        raise BrokerUnavailable(f"cannot publish to NATS at {self.shown}: {problem} (for "
                                                f"{give_up_after:g}s; published up to {now.position})",
                                                servers=self.shown) from None
                    now = replace(now, state="waiting", retry_in=delay, problem=problem)
                    report(now)
                    await _sleep(stop, delay)
                    delay = min(delay * 2, self.backoff[1])
        finally:
            await _closed(nc)
        now = replace(now, state="stopped", retry_in=None)
        report(now)
        return now

    async def _connect(self) -> Client:
        async def quiet(exc: Exception) -> None:  # the client's own errors: the loop above reports them
            LOG.debug("nats: %s", exc)

        async def lost() -> None:
            self._lost.set()

        self._lost = asyncio.Event()
        return await nats.connect(servers=self.servers, allow_reconnect=False, connect_timeout=self.timeout,
                                  max_reconnect_attempts=1, reconnect_time_wait=0.1, error_cb=quiet,
                                  disconnected_cb=lost, closed_cb=lost)

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(StreamConfig(name=self.stream, subjects=[f"{self.subject}.>"],
                                             duplicate_window=self.duplicate_window))

    async def _publish(self, js: JetStreamContext, changes: Sequence[Change], now: RelayProgress,
                       report: Callable[[RelayProgress], None]) -> RelayProgress:
        """Publish ``changes`` in order, ``window`` acknowledgements awaited at once; the cursor moves over each
        acknowledged prefix. A failure is raised after the cursor is stored at the last unbroken one."""
        for lo in range(0, len(changes), self.window):
            part = changes[lo:lo + self.window]
            acks: list[asyncio.Future[Any]] = []
            try:
                for change in part:
                    acks.append(await js.publish_async(self._subject(change), _payload(change),
                                                       headers=_headers(change)))
                for change, ack in zip(part, acks, strict=True):
                    await self._acknowledged(ack)
                    now = replace(now, position=int(change.id or now.position), published=now.published + 1)
            finally:
                for ack in acks:
                    ack.cancel()  # those not acknowledged: sent again from the cursor
                await asyncio.to_thread(self.engine.store.outbox.save_cursor, self.name, now.position,
                                        self.engine.now())
            report(now)
        return now

    async def _acknowledged(self, ack: asyncio.Future[Any]) -> None:
        """Wait for one acknowledgement (an error one raises); give up as soon as the connection is lost."""
        if not ack.done():
            lost = asyncio.ensure_future(self._lost.wait())
            try:
                await asyncio.wait({ack, lost}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
            if not ack.done():
                raise nats.errors.ConnectionClosedError() if self._lost.is_set() else nats.errors.TimeoutError()
        ack.result()

    def _subject(self, change: Change) -> str:
        return f"{self.subject}.{change.kind}.{change.event}"


def _payload(change: Change) -> bytes:
    return strict(change.to_json()).encode("utf-8")


def _headers(change: Change) -> dict[str, str]:
    return {"Nats-Msg-Id": str(change.id), "Casework-Number": change.number, "Casework-Seq": str(change.entry.seq)}


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _closed(nc: Client | None) -> None:
    if nc is not None:
        with contextlib.suppress(Exception):
            await nc.close()


def _problem(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


def _hidden(url: str) -> str:
    """A NATS URL without its password."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        auth, _, host = rest.rpartition("@")
        user = auth.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in auth else f"{scheme}://***@{host}"
    return url


__all__ = ["DEFAULT_SERVERS", "Relay", "RelayProgress"]
