"""The engine for asyncio: every method of :class:`~casework.engine.Engine` as a coroutine.

>>> import asyncio
>>> from casework import Actor, AsyncEngine
>>> async def main() -> str:
...     async with AsyncEngine("sqlite:///:memory:") as engine:
...         case = await engine.open("refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00"},
...                                  actor=Actor("c-1", "customer"))
...         return (await engine.get(case.number)).state
>>> asyncio.run(main())
'submitted'

Each call runs the very same :class:`Engine` method on a thread of a bounded pool (``workers``
threads), each thread on a connection of the Engine's pool while it runs; the event loop only awaits
the result, so it is never blocked by the database, a policy's first load or a lock. Fires that wait
for a thread at the same moment are committed together, up to ``group`` at a time, through
:meth:`Engine.fire_together` (group commit: one transaction, each decided and answered as if alone);
a fire with an idempotency ``key`` always runs alone. Fires on one case are fired one after the other, in
the order made (a case is in one group at a time), and a thread fires one group before it queues again
behind the other calls. Why threads and
not an async driver: a transition is a few milliseconds of Python (intake, decide, hashing) around a
few statements; an async driver would only take the waiting for the database off the threads, and
would need a second copy of the store for every statement. README's "Embedding" has the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from casework.domain import Actor, Case
from casework.engine import Engine
from casework.errors import InvalidInput
from casework.firing import FireRequest, Outcome, each_its_own

P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_WORKERS = 8  # within the pool casework makes from a URL (5 connections and 10 more on demand)
DEFAULT_GROUP = 8  # fires committed together at most (README: Embedding)
EXPORT_BATCH = 500  # entries an export hands the loop per trip to a worker thread


def _threaded(method: Callable[Concatenate[Engine, P], R]) -> Callable[Concatenate[AsyncEngine, P],
                                                                       Coroutine[Any, Any, R]]:
    """``Engine.method`` as a coroutine that runs it on one of the AsyncEngine's threads."""

    async def call(self: AsyncEngine, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(method, self.engine, *args, **kwargs))

    call.__name__, call.__qualname__ = method.__name__, f"AsyncEngine.{method.__name__}"
    call.__doc__ = f"``Engine.{method.__name__}`` as a coroutine, run on a worker thread (see its documentation)."
    return call


class AsyncEngine:
    """An :class:`Engine` for asyncio: the same methods, as coroutines, run on ``workers`` threads.

    ``db`` and the keyword arguments are :class:`Engine`'s (or pass an Engine to wrap). Make it at
    startup (opening the database is blocking, as creating an Engine is) and ``await aclose()`` at
    shutdown. With the host's SQLAlchemy Engine, give its pool at least ``workers`` connections.
    """

    def __init__(self, db: Any = None, *, workers: int = DEFAULT_WORKERS, group: int = DEFAULT_GROUP,
                 **engine_options: Any) -> None:
        for name, value, what in (("workers", workers, "threads"), ("group", group, "fires")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} {value!r}: expected a whole number of {what}, 1 or more",
                                   field=name, value=value)
        self.engine = db if isinstance(db, Engine) else Engine(db, **engine_options)
        self.workers = workers
        self.group = group
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="casework")
        self._waiting: deque[_Waiting] = deque()  # fires not yet taken by a thread, oldest first
        self._lock = threading.Lock()  # guards _waiting, _firing and _queued
        self._firing: set[str] = set()  # the cases of the groups being fired (their later fires wait)
        self._queued = 0  # _fire_group tasks submitted and not yet started

    async def fire(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None,
                   key: str | None = None, expected_version: int | None = None, retries: int = 0) -> Case:
        """``Engine.fire`` as a coroutine (see its documentation). Fires waiting for a thread at the same moment
        are committed together (``Engine.fire_together``); a keyed fire, or any with ``group=1``, runs alone."""
        loop = asyncio.get_running_loop()
        if key is not None or self.group == 1:
            return await loop.run_in_executor(self._threads, functools.partial(
                self.engine.fire, number, event, actor=actor, data=data, key=key,
                expected_version=expected_version, retries=retries))
        request = FireRequest(number, event, actor, data, expected_version, retries)
        request.check()  # here: a malformed request must not fail the others of its group
        waiting = _Waiting(request, loop.create_future())
        with self._lock:
            self._waiting.append(waiting)
            if not self._ask_thread():  # closed (aclose): it is not taken
                self._waiting.pop()
                raise RuntimeError("cannot fire: the AsyncEngine is closed")
        return await waiting.future

    def _ask_thread(self) -> bool:
        """Make sure a thread will look at the waiting fires (the lock held): a task already queued will, else
        queue one, behind the calls already waiting for a thread. False once the pool is shut down."""
        if self._queued:
            return True
        try:
            self._threads.submit(self._fire_group)
        except RuntimeError:  # shut down (aclose)
            return False
        self._queued += 1
        return True

    def _fire_group(self) -> None:
        """On a worker thread: fire one group of the waiting requests (``Engine.fire_together``), and queue
        another task for the rest, so that fires coming without pause never keep other calls from the threads.
        Once the pool is shut down no task can be queued: this thread fires the rest itself."""
        with self._lock:
            self._queued -= 1
        while True:
            with self._lock:
                taken = self._take()
                if taken and self._waiting:
                    self._ask_thread()  # more wait: another thread may take them meanwhile
            if not taken:  # none, or only fires on cases being fired: their group's thread looks again
                return
            try:
                outcomes: list[Outcome] = self.engine.fire_together([w.request for w in taken])
            except Exception as failed:  # fire_together answers each request; this is a fault of its own
                outcomes = each_its_own(failed, len(taken))
            finally:
                with self._lock:
                    self._firing.difference_update(w.request.number.upper() for w in taken)
            _answer(taken, outcomes)
            with self._lock:
                if not self._waiting or self._ask_thread():
                    return

    def _take(self) -> list[_Waiting]:
        """Up to ``group`` waiting fires on distinct cases, none being fired, oldest first (the lock held); a later
        fire on a case taken or being fired stays waiting, in its place, until that case's group is done."""
        taken: list[_Waiting] = []
        kept: list[_Waiting] = []
        while self._waiting and len(taken) < self.group:
            waiting = self._waiting.popleft()
            if waiting.future.cancelled():
                continue
            number = waiting.request.number.upper()
            if number in self._firing:
                kept.append(waiting)
            else:
                taken.append(waiting)
                self._firing.add(number)
        self._waiting.extendleft(reversed(kept))
        return taken

    open = _threaded(Engine.open)
    open_many = _threaded(Engine.open_many)
    import_file = _threaded(Engine.import_file)
    get = _threaded(Engine.get)
    check = _threaded(Engine.check)
    fire_together = _threaded(Engine.fire_together)
    next_events = _threaded(Engine.next_events)
    history = _threaded(Engine.history)
    messages = _threaded(Engine.messages)
    find = _threaded(Engine.find)
    adopt = _threaded(Engine.adopt)
    plan_adoption = _threaded(Engine.plan_adoption)
    adopt_open_cases = _threaded(Engine.adopt_open_cases)
    simulate = _threaded(Engine.simulate)
    personal_facts = _threaded(Engine.personal_facts)
    sweep = _threaded(Engine.sweep)
    report = _threaded(Engine.report)
    verify = _threaded(Engine.verify)
    changes = _threaded(Engine.changes)
    refused_openings = _threaded(Engine.refused_openings)
    policy_for = _threaded(Engine.policy_for)
    zone = _threaded(Engine.zone)
    # the desk's work
    bulk_fire = _threaded(Engine.bulk_fire)
    reject = _threaded(Engine.reject)
    rejection_message = _threaded(Engine.rejection_message)
    note = _threaded(Engine.note)
    reply = _threaded(Engine.reply)
    thread = _threaded(Engine.thread)
    assign = _threaded(Engine.assign)
    prioritize = _threaded(Engine.prioritize)
    resolution_paused = _threaded(Engine.resolution_paused)
    # policy versions
    publish = _threaded(Engine.publish)
    policy_versions = _threaded(Engine.policy_versions)
    find_version = _threaded(Engine.find_version)
    version_text = _threaded(Engine.version_text)
    stored_policy = _threaded(Engine.stored_policy)
    version_diff = _threaded(Engine.version_diff)
    adopt_cases = _threaded(Engine.adopt_cases)
    cite = _threaded(Engine.cite)

    async def export(self, *, redact: bool = False) -> AsyncIterator[dict[str, Any]]:
        """Every audit entry of every case (see ``Engine.export``), read on the threads a batch at a time."""
        loop = asyncio.get_running_loop()
        entries = await loop.run_in_executor(self._threads, functools.partial(self.engine.export, redact=redact))
        while batch := await loop.run_in_executor(self._threads, _take, entries, EXPORT_BATCH):
            for entry in batch:
                yield entry

    def now(self) -> Any:
        """The engine clock's time, in UTC (no database: not a coroutine)."""
        return self.engine.now()

    async def aclose(self) -> None:
        """Let the calls under way finish, then close the Engine (and the pool casework made)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._threads.shutdown, wait=True))
        self.engine.close()

    async def __aenter__(self) -> AsyncEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Waiting(NamedTuple):
    request: FireRequest
    future: asyncio.Future[Case]


def _answer(taken: list[_Waiting], outcomes: list[Outcome]) -> None:
    """Hand each outcome to its waiting coroutine, on the loop it waits on (one wake-up per loop)."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Case], Outcome]]] = {}
    for waiting, outcome in zip(taken, outcomes, strict=True):
        loops.setdefault(waiting.future.get_loop(), []).append((waiting.future, outcome))
    for loop, answers in loops.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[tuple[asyncio.Future[Case], Outcome]]) -> None:
    for future, outcome in answers:
        if future.done():  # cancelled meanwhile
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _take(entries: Any, count: int) -> list[dict[str, Any]]:
    return [entry for _, entry in zip(range(count), entries, strict=False)]
