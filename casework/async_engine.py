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
a fire with an idempotency ``key`` runs alone. Fires on one case are fired one after the other, in the
order made (a case is in one group at a time, keyed fires included), and a thread fires one group before
it queues again behind the other calls. Why threads and
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

from casework import facts as F
from casework.domain import Actor, Case
from casework.engine import Engine
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
        F.check_whole(workers, "workers", 1, what="a whole number of threads")
        F.check_whole(group, "group", 1, what="a whole number of fires")
        self.engine = db if isinstance(db, Engine) else Engine(db, **engine_options)
        self.workers = workers
        self.group = group
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="casework")
        self._lock = threading.Lock()  # guards the three below; taken by the loop's fire and by the threads
        self._waiting = FireQueue(group)  # fires not yet taken by a thread
        self._queued = 0  # _fire_group tasks submitted and not yet started
        self._closed = False  # aclose() has begun: no task is asked for any more

    async def fire(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None,
                   key: str | None = None, expected_version: int | None = None, retries: int = 0) -> Case:
        """``Engine.fire`` as a coroutine (see its documentation). Fires waiting for a thread at the same moment
        are committed together (``Engine.fire_together``); a keyed fire runs alone (``group=1``: every fire).
        Fires on one case are fired one after the other, in the order made."""
        request = FireRequest(number, event, actor, data, expected_version, retries)
        request.check()  # here: a malformed request must not fail the others of its group
        waiting = Waiting(request, asyncio.get_running_loop().create_future(), key)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot fire: the AsyncEngine is closed")
            self._waiting.put(waiting)
            try:
                self._ask_thread()
            except BaseException:  # no thread could be started for it: it is not fired
                self._waiting.remove(waiting)
                raise
        return await waiting.future

    def _ask_thread(self) -> bool:
        """Make sure a thread will look at the waiting fires (the lock held): a task already queued will, else
        queue one, behind the calls already waiting for a thread. False once closing (aclose)."""
        if self._queued > 0:
            return True
        if self._closed:
            return False
        self._queued += 1
        try:
            self._threads.submit(self._fire_group)
        except BaseException:
            self._queued -= 1  # (if its thread failed to start, the task is queued all the same: see _fire_group)
            raise
        return True

    def _helper(self) -> bool:
        """``_ask_thread`` from a worker thread, for which a failure to ask means: carry on alone."""
        try:
            return self._ask_thread()
        except Exception:
            return False

    def _fire_group(self) -> None:
        """On a worker thread: fire one group of the waiting fires, and queue another task for the rest, so that
        fires coming without pause never keep other calls from the threads. Once closing (or when no task can be
        queued), this thread fires the rest itself."""
        with self._lock:
            self._queued = max(0, self._queued - 1)  # (0: a task whose submit failed after queueing it)
        while True:
            with self._lock:
                taken = self._waiting.take()
                if taken and self._waiting:
                    self._helper()  # more can be taken: another thread may take them meanwhile
            if not taken:  # none, or only fires on cases being fired: that group's thread looks again
                return
            try:
                outcomes = self._fired(taken)
            except BaseException as stopped:  # not the fires' failure (_fired answers that): a hook's SystemExit…
                # Answered, and the loop goes on: raising would leave their cases' next fires to nobody.
                outcomes = each_its_own(RuntimeError(f"the fire was interrupted (it may have been applied: read the "
                                                     f"case): {stopped!r}"), len(taken))
            self._done(taken, outcomes)
            with self._lock:
                if not self._waiting or self._helper():
                    return

    def _fired(self, taken: list[Waiting]) -> list[Outcome]:
        """The outcome of each fire taken: a keyed one alone (``Engine.fire``), a group together."""
        if taken[0].key is not None:
            (alone,) = taken
            r = alone.request
            try:
                return [self.engine.fire(r.number, r.event, actor=r.actor, data=r.data, key=alone.key,
                                         expected_version=r.expected_version, retries=r.retries)]
            except Exception as failed:
                return [failed]
        try:
            return self.engine.fire_together([w.request for w in taken])
        except Exception as failed:  # fire_together answers each request; this is a fault of its own
            return each_its_own(failed, len(taken))

    def _done(self, taken: list[Waiting], outcomes: list[Outcome]) -> None:
        """Their cases free for their next fires; each outcome handed to its coroutine."""
        with self._lock:
            self._waiting.done(taken)
        _answer(taken, outcomes)

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
        """Let the calls under way finish (the fires waiting are fired), then close the Engine (and the pool
        casework made). A call made after it raises RuntimeError."""
        with self._lock:
            self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._threads.shutdown, wait=True))
        self.engine.close()

    async def __aenter__(self) -> AsyncEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Waiting(NamedTuple):
    """A fire waiting for a thread, and the future its coroutine awaits."""

    request: FireRequest
    future: asyncio.Future[Case]
    key: str | None = None  # an idempotency key: fired alone


class FireQueue:
    """The fires waiting for a thread: each case's in the order made, taken in groups of fires on distinct cases
    none of which is being fired (so a case's next fire waits until the group firing it is done), the cases in
    the order their fires came. Every operation costs the size of a group, not the number waiting. Not
    thread-safe: its owner holds a lock around every call."""

    def __init__(self, group: int) -> None:
        self.group = group
        self._cases: dict[str, deque[Waiting]] = {}  # a case's fires not yet taken, while it has some or is fired
        self._ready: deque[str] = deque()  # the cases with a fire to take and none being fired
        self._firing: set[str] = set()

    def __bool__(self) -> bool:
        """Whether a fire can be taken now."""
        return bool(self._ready)

    def put(self, waiting: Waiting) -> None:
        number = waiting.request.number.upper()
        fires = self._cases.get(number)
        if fires is None:
            self._cases[number] = deque([waiting])
            self._ready.append(number)
        else:  # its case is ready already, or being fired (ready again when done)
            fires.append(waiting)

    def remove(self, waiting: Waiting) -> None:
        """Undo ``put`` (a fire that is not to be made after all)."""
        number = waiting.request.number.upper()
        fires = self._cases[number]
        fires.remove(waiting)
        if not fires and number not in self._firing:
            del self._cases[number]
            self._ready.remove(number)

    def take(self) -> list[Waiting]:
        """Up to ``group`` fires, the next of each ready case (a keyed fire: alone); cancelled ones dropped."""
        taken: list[Waiting] = []
        while self._ready and len(taken) < self.group:
            number = self._ready[0]
            fires = self._cases[number]
            while fires and fires[0].future.cancelled():
                fires.popleft()
            if not fires:
                self._ready.popleft()
                del self._cases[number]
                continue
            if fires[0].key is not None and taken:
                break  # it goes alone, next
            self._ready.popleft()
            self._firing.add(number)
            taken.append(fires.popleft())
            if taken[-1].key is not None:
                break
        return taken

    def done(self, taken: list[Waiting]) -> None:
        """The fires ``take`` gave are done: their cases' next fires can be taken."""
        for waiting in taken:
            number = waiting.request.number.upper()
            self._firing.discard(number)
            if self._cases[number]:
                self._ready.append(number)
            else:
                del self._cases[number]


def _answer(taken: list[Waiting], outcomes: list[Outcome]) -> None:
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
