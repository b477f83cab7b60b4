"""Engine.fire_together (group commit: several fires in one transaction, each decided as if alone) and
AsyncEngine's grouping of the fires its coroutines make at the same moment; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from casework import (
    Actor,
    AsyncEngine,
    CaseNotFound,
    ConcurrentUpdate,
    Engine,
    EventNotAvailable,
    FireRequest,
    InvalidInput,
    StoreError,
    TransitionDenied,
)
from casework.errors import WriteConflict
from casework.store import Transaction

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
SUPERVISOR = Actor("sam", "supervisor")


def _open(engine: Engine, count: int, amount: str = "59.00") -> list[str]:
    return [engine.open("refund", {"order_id": f"SO-{i}", "amount": amount, "paid": amount,
                                   "reason": "not_delivered"}, actor=CUSTOMER).number for i in range(count)]


def _trail(engine: Engine, number: str) -> list[tuple[str, str]]:
    return [(e.event, e.outcome) for e in engine.history(number)]


@contextmanager
def _counted(engine: Engine) -> Iterator[list[int]]:
    """How many write transactions the engine's store opens within the block."""
    opened: list[int] = []
    original = engine.store.transaction

    def counting() -> Transaction:
        opened.append(1)
        return original()

    engine.store.transaction = counting  # type: ignore[method-assign]
    try:
        yield opened
    finally:
        engine.store.transaction = original  # type: ignore[method-assign]


def _requests(numbers: list[str]) -> list[FireRequest]:
    """One of each outcome: applied, refused by the policy, not available, not found, malformed, stale."""
    a, b, c, d, e, f = numbers
    return [
        FireRequest(a, "review", AGENT),
        FireRequest(b, "approve", Actor("c-2", "customer")),  # a customer may not approve
        FireRequest(c, "close", AGENT),  # no such event from submitted
        FireRequest("RF-NOPE-1", "review", AGENT),
        FireRequest(d, "review", AGENT, data={"evidence": 5}),  # evidence must be a list
        FireRequest(e, "review", AGENT, expected_version=7),
        FireRequest(f, "review", AGENT),
    ]


def test_each_request_comes_to_what_fire_alone_would_make_of_it_in_one_transaction(make_engine: Callable[..., Engine]):
    together, alone = make_engine(), make_engine()
    ours, theirs = _open(together, 6), _open(alone, 6)
    with _counted(together) as opened:
        outcomes = together.fire_together(_requests(ours))
    assert len(opened) == 1
    expected: list[Any] = []
    for request in _requests(theirs):
        try:
            expected.append(alone.fire(request.number, request.event, actor=request.actor, data=request.data,
                                       expected_version=request.expected_version))
        except Exception as failed:
            expected.append(failed)
    assert [type(o) for o in outcomes] == [type(x) for x in expected]
    kinds = [type(o) for o in outcomes]
    assert kinds[1:6] == [TransitionDenied, EventNotAvailable, CaseNotFound, InvalidInput, ConcurrentUpdate]
    assert outcomes[0].state == outcomes[6].state == "under_review"  # type: ignore[union-attr]
    assert outcomes[1].decision.codes == expected[1].decision.codes  # type: ignore[union-attr]
    for mine, yours in zip(ours, theirs, strict=True):
        assert _trail(together, mine) == _trail(alone, yours)
        assert together.get(mine).version == alone.get(yours).version
    assert together.verify().ok


def test_requests_on_one_case_are_fired_in_the_order_given(engine: Engine):
    a, b = _open(engine, 2)
    outcomes = engine.fire_together([FireRequest(a, "review", AGENT), FireRequest(b, "review", AGENT),
                                     FireRequest(a, "approve", AGENT), FireRequest(a, "approve", AGENT)])
    assert [getattr(o, "state", None) for o in outcomes[:3]] == ["under_review", "under_review", "approved"]
    assert isinstance(outcomes[3], EventNotAvailable)
    assert _trail(engine, a) == [("open", "applied"), ("review", "applied"), ("approve", "applied"),
                                 ("approve", "refused")]


def test_a_group_whose_write_fails_is_written_not_at_all_and_each_request_fired_alone(
        engine: Engine, monkeypatch: pytest.MonkeyPatch):
    numbers = _open(engine, 3)
    original = Transaction.update_cases
    groups: list[int] = []

    def beaten(self: Transaction, updates: Any) -> None:
        groups.append(len(updates))
        if len(updates) > 1:  # as if another writer had changed one of the cases since it was read
            raise WriteConflict(updates[0][0].case.number, updates[0][0].case.version)
        original(self, updates)

    monkeypatch.setattr(Transaction, "update_cases", beaten)
    outcomes = engine.fire_together([FireRequest(n, "review", AGENT) for n in numbers])
    assert [getattr(o, "state", None) for o in outcomes] == ["under_review"] * 3
    assert groups == [3, 1, 1, 1]
    for number in numbers:  # the group's entries were rolled back: one review each
        assert _trail(engine, number) == [("open", "applied"), ("review", "applied")]
    assert engine.verify().ok


def test_a_failed_commit_is_each_request_s_outcome_and_nothing_is_fired_again(
        sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch):
    numbers = _open(sqlite_engine, 3)
    original = Transaction.__exit__
    exits: list[bool] = []

    def failing(self: Transaction, exc_type: Any, exc: Any, tb: Any) -> None:
        exits.append(exc is None)
        original(self, StoreError, StoreError("connection lost"), None)  # rolled back, as a lost commit may be
        raise StoreError("the commit's answer was lost")

    monkeypatch.setattr(Transaction, "__exit__", failing)
    outcomes = sqlite_engine.fire_together([*(FireRequest(n, "review", AGENT) for n in numbers),
                                            FireRequest("RF-NOPE-1", "review", AGENT)])
    monkeypatch.undo()
    assert [str(o) for o in outcomes[:3]] == ["the commit's answer was lost"] * 3
    assert len({id(o) for o in outcomes[:3]}) == 3  # each its own: raising one leaves the others' tracebacks alone
    assert isinstance(outcomes[3], CaseNotFound)  # it wrote nothing: the commit was not its failure
    assert exits == [True]  # one transaction, not followed by three more
    assert {sqlite_engine.get(n).state for n in numbers} == {"submitted"}


def test_two_groups_on_the_same_cases_lock_them_in_one_order_and_never_deadlock(
        pg_test_url: str, clock: Any, default_policy: Any, monkeypatch: pytest.MonkeyPatch):
    from conftest import _reset_pg

    _reset_pg(pg_test_url)
    engine = Engine(pg_test_url, policies=default_policy, clock=clock)
    try:
        a, b = _open(engine, 2)
        original = Transaction.update_cases
        both = threading.Barrier(2)
        failed: list[BaseException] = []

        def at_once(self: Transaction, updates: Any) -> None:
            if len(updates) > 1:  # both groups have read their cases: they write at the same moment
                both.wait(timeout=10)
            try:
                original(self, updates)
            except BaseException as exc:
                failed.append(exc)
                raise

        monkeypatch.setattr(Transaction, "update_cases", at_once)
        # The groups name the cases in opposite orders, and each writes one applied and one refused.
        groups = [[FireRequest(a, "review", AGENT), FireRequest(b, "close", AGENT)],
                  [FireRequest(b, "review", AGENT), FireRequest(a, "close", AGENT)]]
        outcomes: list[list[Any]] = [[], []]
        threads = [threading.Thread(target=lambda i=i: outcomes[i].extend(engine.fire_together(groups[i])))
                   for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert [type(e) for e in failed] == [WriteConflict]  # the second waited for the first's rows, then lost
        assert [[type(o).__name__ for o in group] for group in outcomes] == [["Case", "EventNotAvailable"]] * 2
        assert engine.get(a).state == engine.get(b).state == "under_review"
        assert engine.verify().ok
    finally:
        engine.close()


@pytest.mark.parametrize("requests", ["RF-1", [{"number": "RF-1", "event": "review"}], 5])
def test_requests_that_are_not_fire_requests_are_invalid_input(sqlite_engine: Engine, requests: Any):
    with pytest.raises(InvalidInput, match="FireRequest"):
        sqlite_engine.fire_together(requests)


@pytest.mark.parametrize(("args", "name"), [((5, "review", AGENT), "number"), (("RF-1", None, AGENT), "event"),
                                            (("RF-1", "review", "alice"), "actor"),
                                            (("RF-1", "review", AGENT, None, "3"), "expected_version"),
                                            (("RF-1", "review", AGENT, None, -1), "expected_version"),
                                            (("RF-1", "review", AGENT, None, None, True), "retries"),
                                            (("RF-1", "review", AGENT, None, None, -1), "retries"),
                                            (("RF-1", "review", AGENT, None, None, 1.5), "retries")])
def test_a_malformed_fire_request_is_invalid_input_naming_its_field(args: tuple[Any, ...], name: str,
                                                                   sqlite_engine: Engine):
    with pytest.raises(InvalidInput, match=rf"^{name} ") as raised:
        sqlite_engine.fire_together([FireRequest(*args)])
    assert raised.value.field == name


@pytest.mark.parametrize(("option", "value"), [("retries", "3"), ("retries", None), ("expected_version", "1")])
def test_fire_with_a_retry_count_or_version_that_is_not_one_is_invalid_input(option: str, value: Any,
                                                                            sqlite_engine: Engine):
    (number,) = _open(sqlite_engine, 1)
    with pytest.raises(InvalidInput, match=rf"^{option} {value!r}: expected ") as raised:
        sqlite_engine.fire(number, "review", actor=AGENT, **{option: value})
    assert raised.value.field == option
    assert _trail(sqlite_engine, number) == [("open", "applied")]


# ---- AsyncEngine: fires made at the same moment are committed together ----------------------------------------

class _Gate:
    """Wraps ``Engine.fire_together``: records each group's numbers; the first group waits until let go."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.groups: list[list[str]] = []
        self.let_go = threading.Event()
        original = engine.fire_together

        def gated(requests: list[FireRequest]) -> list[Any]:
            self.groups.append([r.number for r in requests])
            if len(self.groups) == 1 and not self.let_go.wait(timeout=30):
                raise RuntimeError("never let go")
            return original(requests)

        monkeypatch.setattr(engine, "fire_together", gated)

    async def held(self, aengine: AsyncEngine, number: str) -> asyncio.Future[Any]:
        """Fire ``review`` on ``number``: the first group, held in the gate (its thread busy) when this returns."""
        fired = asyncio.ensure_future(aengine.fire(number, "review", actor=AGENT))
        for _ in range(3000):
            if self.groups:
                return fired
            await asyncio.sleep(0.001)
        raise AssertionError("no group came to the gate")


def test_coroutines_firing_at_once_are_committed_in_groups_with_the_results_of_lone_fires(
        engine: Engine, monkeypatch: pytest.MonkeyPatch):
    numbers = _open(engine, 32)
    gate = _Gate(engine, monkeypatch)

    async def main() -> list[Any]:
        aengine = AsyncEngine(engine, workers=1, group=8)
        fires = asyncio.gather(*(aengine.fire(n, "review", actor=AGENT) for n in numbers))
        for _ in range(3):
            await asyncio.sleep(0)  # every coroutine is waiting for the one thread, busy with the first
        gate.let_go.set()
        return list(await fires)

    cases = asyncio.run(main())
    assert [c.number for c in cases] == numbers
    assert {c.state for c in cases} == {"under_review"}
    first = len(gate.groups[0])  # those that came before the thread took them (1 unless it started late)
    rest = 32 - first
    assert 1 <= first <= 8 and [len(g) for g in gate.groups[1:]] == [8] * (rest // 8) + [rest % 8] * (rest % 8 > 0)
    assert sorted(n for g in gate.groups for n in g) == sorted(numbers)
    assert engine.verify().ok


def test_a_case_fired_twice_at_once_is_fired_in_the_order_asked_and_a_cancelled_fire_not_at_all(
        engine: Engine, monkeypatch: pytest.MonkeyPatch):
    first, a, b, c = _open(engine, 4)
    gate = _Gate(engine, monkeypatch)

    async def main() -> tuple[Any, ...]:
        aengine = AsyncEngine(engine, workers=1)
        started = await gate.held(aengine, first)
        review, approve = (asyncio.ensure_future(aengine.fire(a, e, actor=AGENT)) for e in ("review", "approve"))
        other, cancelled = (asyncio.ensure_future(aengine.fire(n, "review", actor=AGENT)) for n in (b, c))
        await asyncio.sleep(0)
        cancelled.cancel()
        gate.let_go.set()
        return await asyncio.gather(started, review, approve, other)

    done = asyncio.run(main())
    assert [case.state for case in done] == ["under_review", "under_review", "approved", "under_review"]
    assert gate.groups == [[first], [a, b], [a]]
    assert engine.get(c).state == "submitted"


def test_a_keyed_fire_runs_alone_and_group_one_makes_every_group_one(sqlite_engine: Engine,
                                                                       monkeypatch: pytest.MonkeyPatch):
    a, *others = _open(sqlite_engine, 5)
    gate = _Gate(sqlite_engine, monkeypatch)
    gate.let_go.set()

    async def main() -> None:
        keyed = AsyncEngine(sqlite_engine, workers=2)
        assert (await keyed.fire(a, "review", actor=AGENT, key="k-1")).state == "under_review"
        assert (await keyed.fire(a, "review", actor=AGENT, key="k-1")).state == "under_review"  # the replay
        alone = AsyncEngine(sqlite_engine, workers=2, group=1)
        done = await asyncio.gather(*(alone.fire(n, "review", actor=AGENT) for n in others))
        assert {c.state for c in done} == {"under_review"}

    asyncio.run(main())
    assert sorted(gate.groups) == sorted([n] for n in others)  # the keyed fire never in a group
    assert _trail(sqlite_engine, a) == [("open", "applied"), ("review", "applied")]


def test_a_keyed_fire_waits_for_the_fire_made_before_it_on_its_case(engine: Engine,
                                                                    monkeypatch: pytest.MonkeyPatch):
    a, b = _open(engine, 2)
    gate = _Gate(engine, monkeypatch)

    async def main() -> list[Any]:
        aengine = AsyncEngine(engine, workers=4)
        review = await gate.held(aengine, a)
        approve = asyncio.ensure_future(aengine.fire(a, "approve", actor=AGENT, key="req-42"))
        assert (await aengine.fire(b, "review", actor=AGENT, key="req-43")).state == "under_review"  # not held
        await asyncio.sleep(0.05)  # time for a free thread to take the approve, were it free to be taken
        assert not approve.done()
        gate.let_go.set()
        return [await review, await approve]

    assert [c.state for c in asyncio.run(main())] == ["under_review", "approved"]
    assert _trail(engine, a) == [("open", "applied"), ("review", "applied"), ("approve", "applied")]


def test_a_grouped_fire_raises_its_own_error(db_url: str, engine: Engine):
    (number,) = _open(engine, 1)

    async def main() -> None:
        aengine = AsyncEngine(engine, workers=2)
        outcomes = await asyncio.gather(aengine.fire(number, "close", actor=AGENT),
                                        aengine.fire("RF-NOPE-9", "review", actor=AGENT),
                                        aengine.fire(number, "review", actor=AGENT), return_exceptions=True)
        assert [type(o) for o in outcomes[:2]] == [EventNotAvailable, CaseNotFound]
        assert getattr(outcomes[2], "state", None) == "under_review"

    asyncio.run(main())


def test_a_malformed_fire_fails_its_own_coroutine_only(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch):
    a, b = _open(sqlite_engine, 2)
    gate = _Gate(sqlite_engine, monkeypatch)

    async def main() -> list[Any]:
        aengine = AsyncEngine(sqlite_engine, workers=1)
        first = await gate.held(aengine, a)
        rest = [asyncio.ensure_future(aengine.fire(n, "review", actor=actor))  # type: ignore[arg-type]
                for n, actor in ((7, AGENT), (b, "alice"), (b, AGENT))]
        await asyncio.sleep(0)
        gate.let_go.set()
        return list(await asyncio.gather(first, *rest, return_exceptions=True))

    first, number, actor, fine = asyncio.run(main())
    assert (first.state, fine.state) == ("under_review", "under_review")
    assert (number.field, actor.field) == ("number", "actor")
    assert gate.groups == [[a], [b]]


def test_fires_on_a_case_keep_their_order_across_threads(engine: Engine, monkeypatch: pytest.MonkeyPatch):
    a, b = _open(engine, 2)
    gate = _Gate(engine, monkeypatch)

    async def main() -> list[Any]:
        aengine = AsyncEngine(engine, workers=4)
        review = await gate.held(aengine, a)  # one thread holds a's review
        approve = asyncio.ensure_future(aengine.fire(a, "approve", actor=AGENT))
        assert (await aengine.fire(b, "review", actor=AGENT)).state == "under_review"  # another thread's group
        await asyncio.sleep(0.05)  # time for a free thread to take the approve, were it free to be taken
        assert gate.groups == [[a], [b]]
        gate.let_go.set()
        return [await review, await approve]

    assert [c.state for c in asyncio.run(main())] == ["under_review", "approved"]
    assert gate.groups == [[a], [b], [a]]


def test_other_calls_get_a_thread_between_groups_while_fires_keep_coming(
        sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch):
    numbers = _open(sqlite_engine, 21)
    gate = _Gate(sqlite_engine, monkeypatch)
    groups_at_get: list[int] = []
    original_get = sqlite_engine.store.get  # what Engine.get reads with (the fires read in their transaction)
    monkeypatch.setattr(sqlite_engine.store, "get", lambda number: groups_at_get.append(len(gate.groups))
                        or original_get(number))

    async def main() -> None:
        aengine = AsyncEngine(sqlite_engine, workers=1, group=2)
        first = await gate.held(aengine, numbers[0])
        rest = [asyncio.ensure_future(aengine.fire(n, "review", actor=AGENT)) for n in numbers[1:]]
        await asyncio.sleep(0)  # all twenty wait for the one thread
        got = asyncio.ensure_future(aengine.get(numbers[0]))
        await asyncio.sleep(0)
        gate.let_go.set()
        await asyncio.gather(first, got, *rest)

    asyncio.run(main())
    assert len(gate.groups) == 11  # the first, then twenty in groups of two
    assert groups_at_get == [2]  # after the group queued before it, not after all ten


def test_fires_waiting_when_the_engine_closes_are_all_fired_and_a_fire_after_it_is_refused(
        sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch):
    numbers = _open(sqlite_engine, 9)
    gate = _Gate(sqlite_engine, monkeypatch)

    async def main() -> list[Any]:
        aengine = AsyncEngine(sqlite_engine, workers=2, group=2)
        first = await gate.held(aengine, numbers[0])
        rest = [asyncio.ensure_future(aengine.fire(n, "review", actor=AGENT)) for n in numbers[1:]]
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(aengine.aclose())
        await asyncio.sleep(0.1)  # the pool is shut down: no thread can be asked for any more
        gate.let_go.set()
        done = await asyncio.gather(first, *rest)
        await closing
        with pytest.raises(RuntimeError, match=r"^cannot fire: the AsyncEngine is closed$"):
            await aengine.fire(numbers[0], "approve", actor=AGENT)
        return list(done)

    monkeypatch.setattr(sqlite_engine, "close", lambda: None)  # read it after
    assert {c.state for c in asyncio.run(main())} == {"under_review"}
    assert sorted(n for g in gate.groups for n in g) == sorted(numbers)


def test_the_fire_queue_takes_each_case_s_fires_in_order_a_keyed_one_alone_and_drops_the_cancelled():
    from casework.async_engine import FireQueue, Waiting

    loop = asyncio.new_event_loop()
    try:
        def waiting(number: str, event: str = "review", key: str | None = None) -> Waiting:
            return Waiting(FireRequest(number, event, AGENT), loop.create_future(), key)

        queue = FireQueue(group=3)
        a1, b1, a2, c1, d1, e1, f1, g1 = (waiting("RF-A"), waiting("rf-b"), waiting("RF-A", "approve"),
                                          waiting("RF-C", key="k"), waiting("RF-D"), waiting("RF-E"),
                                          waiting("RF-F"), waiting("RF-G"))
        for w in (a1, b1, a2, c1, d1, e1, f1, g1):
            queue.put(w)
        e1.future.cancel()
        assert queue.take() == [a1, b1]  # the keyed fire is next, alone
        assert queue.take() == [c1]
        assert queue.take() == [d1, f1, g1]  # e1 cancelled: dropped; three at most
        assert not queue and queue.take() == []  # a2 waits for a1's group
        queue.done([b1, c1])
        assert not queue
        queue.done([a1])
        assert queue and queue.take() == [a2]
        queue.done([a2, d1, f1, g1])
        later = waiting("RF-H")
        queue.put(later)
        queue.remove(later)
        assert not queue and queue.take() == []
    finally:
        loop.close()


def test_a_fire_whose_thread_cannot_be_started_fails_alone_and_the_next_one_is_fired(
        sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch):
    a, b = _open(sqlite_engine, 2)

    async def main() -> None:
        aengine = AsyncEngine(sqlite_engine, workers=2)
        submit = aengine._threads.submit
        failures = iter([RuntimeError("can't start new thread")])

        def failing_once(*args: Any) -> Any:
            for failure in failures:
                raise failure
            return submit(*args)

        monkeypatch.setattr(aengine._threads, "submit", failing_once)
        with pytest.raises(RuntimeError, match="start new thread"):
            await aengine.fire(a, "review", actor=AGENT)
        assert (await asyncio.wait_for(aengine.fire(b, "review", actor=AGENT), 30)).state == "under_review"

    asyncio.run(main())
    assert sqlite_engine.get(a).state == "submitted"


def test_a_group_interrupted_by_a_hook_s_system_exit_is_answered_and_the_case_s_next_fire_made(
        sqlite_engine: Engine):
    (number,) = _open(sqlite_engine, 1)
    raised: list[int] = []

    def exiting(change: Any) -> None:
        if not raised:
            raised.append(1)
            raise SystemExit("a hook's")

    sqlite_engine.on_applied(exiting)

    async def main() -> list[Any]:
        aengine = AsyncEngine(sqlite_engine, workers=4)
        fires = [aengine.fire(number, "review", actor=AGENT), aengine.fire(number, "approve", actor=AGENT)]
        return list(await asyncio.wait_for(asyncio.gather(*fires, return_exceptions=True), 30))

    interrupted, approved = asyncio.run(main())
    assert isinstance(interrupted, RuntimeError) and "it may have been applied" in str(interrupted)
    assert approved.state == "approved"  # the case's next fire was not left waiting
    assert _trail(sqlite_engine, number) == [("open", "applied"), ("review", "applied"), ("approve", "applied")]


@pytest.mark.parametrize("group", [0, -3, 1.5, True, "8"])
def test_a_group_size_that_is_not_a_positive_whole_number_is_invalid_input(group: object, sqlite_engine: Engine):
    with pytest.raises(InvalidInput, match=r"^group "):
        AsyncEngine(sqlite_engine, group=group)  # type: ignore[arg-type]



def test_the_hooks_hear_each_change_of_a_group_once_after_its_commit(engine: Engine):
    a, b, c = _open(engine, 3)
    heard: list[tuple[str, str, str]] = []
    committed: list[bool] = []

    def applied(change: Any) -> None:
        committed.append(engine.get(change.number).version == 2)  # read by another transaction: committed
        heard.append((change.number, change.entry.event, change.entry.outcome))

    engine.on_applied(applied)
    engine.on_refused(lambda change: heard.append((change.number, change.entry.event, change.entry.outcome)))
    engine.fire_together([FireRequest(a, "review", AGENT), FireRequest(b, "close", AGENT),
                          FireRequest(c, "review", AGENT)])
    assert sorted(heard) == sorted([(a, "review", "applied"), (b, "close", "refused"), (c, "review", "applied")])
    assert committed == [True, True]
    assert [ch.number for ch in engine.changes(limit=1000) if ch.entry.event == "review"] == [a, c]


def test_a_keyed_fire_with_a_stale_version_is_a_concurrent_update_and_remembers_nothing(engine: Engine):
    (number,) = _open(engine, 1)
    with pytest.raises(ConcurrentUpdate):
        engine.fire(number, "review", actor=AGENT, key="k-stale", expected_version=5)
    assert engine.fire(number, "review", actor=AGENT, key="k-stale").state == "under_review"  # the key is free
    assert _trail(engine, number) == [("open", "applied"), ("review", "applied")]
