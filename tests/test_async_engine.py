"""AsyncEngine: Engine's methods as coroutines, run on worker threads so the event loop never waits
for the database (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime

import pytest

from casework import Actor, AsyncEngine, Engine, FixedClock, InvalidInput, PolicySet, TransitionDenied

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
REFUND = {"amount": "59.00", "paid": "59.00", "reason": "not_delivered"}


def test_thirty_two_coroutines_at_once_give_the_results_of_sequential_calls(
        db_url: str, clock: FixedClock, default_policy: PolicySet):
    async def lifecycle(engine: AsyncEngine, i: int) -> tuple[str, str, int]:
        case = await engine.open("refund", {"order_id": f"SO-{i}", **REFUND}, actor=CUSTOMER)
        await engine.fire(case.number, "review", actor=AGENT)
        with pytest.raises(TransitionDenied):
            await engine.fire(case.number, "close", actor=AGENT)
        done = await engine.fire(case.number, "approve", actor=AGENT)
        return case.number, done.state, len(await engine.history(case.number))

    async def main() -> None:
        async with AsyncEngine(db_url, policies=default_policy, clock=clock) as engine:
            found = await asyncio.gather(*(lifecycle(engine, i) for i in range(32)))
            assert len({number for number, _, _ in found}) == 32
            assert {(state, entries) for _, state, entries in found} == {("approved", 4)}
            assert len(await engine.find(limit=None)) == 32
            assert [e["event"] async for e in engine.export()].count("open") == 32
            assert (await engine.verify()).ok

    asyncio.run(main())


def test_the_event_loop_runs_while_a_call_waits(sqlite_engine: Engine, clock: FixedClock):
    """The engine's clock blocks the call until a coroutine on the loop lets it go: if the call ran on the
    loop's own thread, that coroutine could never run (the wait would time out)."""
    let_go, threads = threading.Event(), []

    def slow_clock() -> datetime:
        threads.append(threading.current_thread())
        if not let_go.wait(timeout=30):
            raise RuntimeError("the event loop was blocked by the call")
        return clock()

    sqlite_engine.clock = slow_clock

    async def main() -> None:
        engine = AsyncEngine(sqlite_engine, workers=2)
        call = asyncio.ensure_future(engine.open("refund", {"order_id": "SO-1", **REFUND}, actor=CUSTOMER))
        await asyncio.sleep(0)
        let_go.set()  # runs only because the loop is free while the call waits
        case = await call
        assert case.state == "submitted"
        assert threads and threading.main_thread() not in threads

    asyncio.run(main())


@pytest.mark.parametrize("workers", [0, -1, 2.5, True])
def test_a_worker_count_that_is_not_a_positive_whole_number_is_invalid_input(workers: object, sqlite_engine: Engine):
    with pytest.raises(InvalidInput, match="workers"):
        AsyncEngine(sqlite_engine, workers=workers)  # type: ignore[arg-type]


# Engine's public methods that AsyncEngine does not run as coroutines, and why.
NOT_COROUTINES = {
    "now": "the clock: no database",
    "close": "AsyncEngine.aclose closes it after the calls under way",
    "using": "joins a host's synchronous Connection on the calling thread; an async host uses the Engine itself",
    "language": "checks a language against the policy in memory",
    "on_applied": "registers a hook (no database)",
    "on_refused": "registers a hook (no database)",
    "export": "an async iterator of its own",
}


def test_async_engine_offers_every_public_method_of_engine_as_a_coroutine():
    import inspect

    public = {name for name, member in inspect.getmembers(Engine) if not name.startswith("_")
              and inspect.isfunction(member)}
    missing = {name for name in public - NOT_COROUTINES.keys()
               if not inspect.iscoroutinefunction(getattr(AsyncEngine, name, None))}
    assert not missing, f"AsyncEngine lacks coroutines for {sorted(missing)}"
    assert {name for name in NOT_COROUTINES if name != "export"} <= public  # the exceptions are still Engine's


def test_the_desk_s_work_runs_as_coroutines(sqlite_engine: Engine, clock: FixedClock):
    async def desk() -> tuple[str | None, int, str | None]:
        engine = AsyncEngine(sqlite_engine, workers=2)
        case = await engine.open("refund", {"order_id": "SO-A1", "amount": "20.00", "paid": "20.00",
                                            "customer": "cust-1"}, actor=Actor("cust-1", "customer"))
        agent = Actor("alice", "agent")
        await engine.assign(case.number, "alice", actor=agent)
        await engine.note(case.number, "checking the parcel", actor=agent)
        notes = await engine.thread(case.number)
        assigned = (await engine.get(case.number)).assignee
        return assigned, len(notes), notes[-1].text

    assert asyncio.run(desk()) == ("alice", 1, "checking the parcel")
