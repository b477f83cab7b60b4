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

Pipeline: the outbox is read in pages of ``batch``; the next page is read and encoded while the current one is
published and its acknowledgements come back (after a failure that page is dropped and read again from the
cursor), and the cursor is stored after each window, written through before the relay idles, waits for the
broker or stops. That database work runs on a thread (``reader="thread"``) or in a child process forked when
the relay starts (``reader="process"``, as ``casework relay`` runs: the reading then takes nothing from the
publishing's interpreter lock); see :mod:`casework.relay_worker`.
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

from casework import facts as F
from casework.changes import MAX_PAGE
from casework.errors import BrokerUnavailable, InvalidInput
from casework.relay_worker import READERS, ProcessWorker, ThreadWorker, can_fork

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

    ``reader``: where the database work runs, ``thread`` (the default: safe in any host) or ``process`` (a child
    forked when :meth:`run` starts: faster on more than one core; POSIX, not for an in-memory database), or
    ``auto``: ``process`` where it can be, else ``thread``.

    >>> relay = Relay(engine, servers="nats://127.0.0.1:4222")      # doctest: +SKIP
    >>> asyncio.run(relay.run(once=True)).published                   # doctest: +SKIP
    """

    def __init__(self, engine: Engine, *, servers: str = DEFAULT_SERVERS, stream: str = "CASEWORK",
                 subject: str = "casework", name: str = "default", batch: int = 200, window: int = 256,
                 duplicate_window: float = 3600.0, poll: float = 0.5, backoff: tuple[float, float] = (0.2, 10.0),
                 reveal: bool = False, timeout: float = 5.0, reader: str = "thread") -> None:
        for label, value, low, high in (("batch", batch, 1, MAX_PAGE), ("window", window, 1, 65536)):
            F.check_whole(value, label, low, high)
        for label, text in (("stream", stream), ("subject", subject), ("name", name)):
            if not text or any(c in text for c in " \t\r\n*>") or (label == "stream" and "." in text):
                raise InvalidInput(f"{label} {text!r}: expected a non-empty name without spaces, '*' or '>'"
                                   + (" or '.'" if label == "stream" else ""), field=label, value=text)
        self.engine = engine
        self.reader = _reader(reader, engine)
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        if not self.servers:
            raise InvalidInput(f"servers {servers!r}: expected a NATS URL such as {DEFAULT_SERVERS}",
                               field="servers", value=servers)
        self.shown = ",".join(_hidden(s) for s in self.servers)  # for messages: no password
        for server in self.servers:
            scheme, sep, _ = server.partition("://")
            if sep and scheme.lower() not in NATS_SCHEMES:
                raise InvalidInput(f"servers {_hidden(server)!r}: {scheme}:// is not a NATS server; expected "
                                   f"{', '.join(s + '://' for s in NATS_SCHEMES)} (the relay publishes to NATS "
                                   "JetStream)", field="servers", value=_hidden(server))
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
        F.check_whole(position, "position", what="a global id")
        self.engine.store.outbox.save_cursor(self.name, position, self.engine.now(), rewind=True)

    # ---- running ---------------------------------------------------------------------------------------
    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None,
                  progress: Callable[[RelayProgress], None] | None = None,
                  give_up_after: float | None = None) -> RelayProgress:
        """Publish until ``stop`` is set (or, with ``once``, until caught up). Broker failures are waited out
        with back-off; with ``give_up_after`` seconds of failures in a row, :class:`BrokerUnavailable`."""
        stop = stop or asyncio.Event()
        report = progress or (lambda _p: None)
        # The worker first: a process is forked before this one starts a thread of its own (see relay_worker).
        worker = await ProcessWorker.start(self._work) if self.reader == "process" else ThreadWorker(self._work)
        nc: Client | None = None
        ahead: asyncio.Future[list[Message]] | None = None  # the next page, read while this one is published
        delay, failing_since = self.backoff[0], None
        try:
            now = RelayProgress("connecting", await worker.call("position", 0))
            report(now)
            cursor = _Cursor(worker, now.position)
        except BaseException:
            await worker.close()
            raise
        try:
            while not stop.is_set():
                try:
                    if nc is None:
                        nc = await self._connect()
                        js = nc.jetstream(timeout=self.timeout)
                        await self._ensure_stream(js)
                    page = await (ahead or worker.call("page", now.position))
                    ahead = None
                    if not page:
                        await cursor.flush(now.position)
                        if once:
                            break
                        now = replace(now, state="idle", retry_in=None, problem=None)
                        report(now)
                        await _sleep(stop, self.poll)
                        continue
                    ahead = worker.call("page", page[-1][0])
                    now = replace(now, state="publishing", retry_in=None, problem=None)
                    now, failure = await self._publish(js, page, now, cursor, report)
                    if failure is not None:
                        raise failure
                    delay, failing_since = self.backoff[0], None
                except BROKER_ERRORS as exc:
                    _dropped(ahead)  # read past a change the broker did not take: read it again
                    ahead = None
                    problem = _problem(exc)
                    LOG.info("broker %s: %s; retrying in %.1fs", self.shown, problem, delay)
                    await _closed(nc)
                    nc = None
                    await cursor.flush(now.position)
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
            _dropped(ahead)
            await _closed(nc)
            try:
                await cursor.flush(now.position)
            finally:
                await worker.close()
        now = replace(now, state="stopped", retry_in=None)
        report(now)
        return now

    def _work(self, op: str, arg: int) -> Any:
        """The relay's database work (run by its worker): ``page`` after a global id, ``save`` a position, read
        the ``position``."""
        if op == "page":
            return self._messages(arg)
        if op == "save":
            return self.engine.store.outbox.save_cursor(self.name, arg, self.engine.now())
        if op == "position":
            return self.position()
        raise ValueError(f"unknown relay work {op!r}")

    def _messages(self, after: int) -> list[Message]:
        """The next page of changes after global id ``after``, each as it is sent."""
        personal = _nothing_personal if self.reveal else self.engine.policies.personal_facts
        subject, page = self.subject, self.engine.store.outbox.published(after, self.batch, personal)
        return [(gid, f"{subject}.{kind}.{event}", body,
                 {"Nats-Msg-Id": str(gid), "Casework-Number": number, "Casework-Seq": str(seq)})
                for gid, kind, event, number, seq, body in page]

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

    async def _publish(self, js: JetStreamContext, page: Sequence[Message], now: RelayProgress, cursor: _Cursor,
                       report: Callable[[RelayProgress], None]) -> tuple[RelayProgress, BaseException | None]:
        """Publish ``page`` in order, a window of ``window`` messages at a time, then await that window's
        acknowledgements; the cursor moves over the acknowledged prefix (stored in the background while the
        next window goes out). Returns where it got and, if the broker failed, why (nothing sent after it)."""
        for lo in range(0, len(page), self.window):
            part = page[lo:lo + self.window]
            acks: list[asyncio.Future[Any]] = []
            failure: BaseException | None = None
            try:
                for _, subject, payload, headers in part:
                    acks.append(await js.publish_async(subject, payload, headers=headers))
                await self._settled(acks)
            except BROKER_ERRORS as exc:
                failure = exc
            taken = 0
            for ack in acks:
                if not ack.done() or ack.cancelled() or ack.exception() is not None:
                    break
                taken += 1
            for ack in acks[taken:]:
                if ack.done() and not ack.cancelled() and failure is None:
                    failure = ack.exception()
                ack.cancel()  # not acknowledged: sent again from the cursor
            if taken:
                now = replace(now, position=part[taken - 1][0], published=now.published + taken)
                cursor.advance(now.position)
                report(now)
            if taken < len(part):
                if failure is None:
                    failure = nats.errors.ConnectionClosedError() if self._lost.is_set() else nats.errors.TimeoutError()
                return now, failure
        return now, None

    async def _settled(self, acks: Sequence[asyncio.Future[Any]]) -> None:
        """Wait until every acknowledgement in ``acks`` came (or until one failed), the connection is lost, or the
        broker has not answered for ``timeout`` seconds (plus a millisecond a message)."""
        pending = [ack for ack in acks if not ack.done()]
        if not pending:
            return
        every = asyncio.ensure_future(_in_turn(pending))
        lost: asyncio.Future[Any] = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({every, lost}, timeout=self.timeout + len(pending) / 1000,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            every.cancel()  # (cancels the acknowledgement it waits for: the caller sends that one again)

# A change as sent: (global id, subject, payload, headers).
Message = tuple[int, str, bytes, dict[str, str]]


class _Cursor:
    """The relay's stored cursor: moved forward in the background (one write at a time; a newer position
    waits for the write in flight), and written through on :meth:`flush`."""

    def __init__(self, worker: ThreadWorker | ProcessWorker, position: int) -> None:
        self._worker, self._stored, self._wanted = worker, position, position
        self._writing: asyncio.Future[None] | None = None

    def advance(self, position: int) -> None:
        self._wanted = max(self._wanted, position)
        if self._writing is not None and self._writing.done():
            self._writing.result()  # a database error surfaces here (the relay stops)
            self._writing = None
        if self._writing is None and self._wanted > self._stored:
            self._writing = self._worker.call("save", self._wanted)
            self._stored = self._wanted

    async def flush(self, position: int) -> None:
        self._wanted = max(self._wanted, position)
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing
        if self._wanted > self._stored:
            self._stored = self._wanted
            await self._worker.call("save", self._wanted)


async def _in_turn(acks: Sequence[asyncio.Future[Any]]) -> None:
    """Await ``acks`` in order (cheaper than one gather: acknowledgements come in order, most already there when
    their turn comes); stop at the first that fails (the acknowledged prefix ends there)."""
    for ack in acks:
        if not ack.done():
            try:
                await ack
            except Exception:
                return
        elif ack.cancelled() or ack.exception() is not None:
            return


def _dropped(future: asyncio.Future[Any] | None) -> None:
    """Let go of a read ahead no longer wanted (its result, or error, is never asked for)."""
    if future is not None:
        future.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        future.cancel()


def _reader(reader: str, engine: Engine) -> str:
    """Where a relay of ``engine`` does its database work (``reader`` checked; ``auto`` decided)."""
    if reader not in READERS:
        raise InvalidInput(f"reader {reader!r}: expected one of {', '.join(READERS)}", field="reader", value=reader)
    why = ("this platform cannot fork" if not can_fork() else
           "the database is one connection of this process (in memory)" if engine.store.one_connection else None)
    if reader == "process" and why is not None:
        raise InvalidInput(f"reader 'process': {why}; use 'thread'", field="reader", value=reader)
    return "process" if reader == "process" or (reader == "auto" and why is None) else "thread"


def _nothing_personal(_policy_hash: str) -> list[str]:
    return []


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


NATS_SCHEMES = ("nats", "tls", "ws", "wss")  # what the NATS client connects through (no scheme: nats://)


def _hidden(url: str) -> str:
    """A NATS URL without its password."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        auth, _, host = rest.rpartition("@")
        user = auth.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in auth else f"{scheme}://***@{host}"
    return url


__all__ = ["DEFAULT_SERVERS", "Relay", "RelayProgress"]
