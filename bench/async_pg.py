"""AsyncEngine on PostgreSQL: 32 coroutines at once vs one sequential caller (fire ``review``).

Every call goes through :class:`casework.AsyncEngine` (``workers`` threads, the default 8, each on a
pooled connection while it runs; fires waiting at the same moment committed together, up to ``--group``
of them, the AsyncEngine's default 8; ``--group 1`` fires each alone, as before group commit). One
caller awaits each fire in turn; then 32 coroutines share the same number of fires on distinct cases.
Rounds alternate (fresh cases each time) and each figure is the median, so one disturbed run does not
decide the ratio; target: 32 coroutines >= 2x one caller.
A plain ``Engine`` firing the same way in one thread is printed as the no-threads baseline.
Uses the server of the test suite (``$CASEWORK_BENCH_PG`` overrides), in a private schema dropped
at the end; skipped, with the reason, when the server is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from _common import PG_URL, Row, banner, finish, median
from fire_sqlite import AGENT, CUSTOMER
from pg_fire import _libpq, _with_schema, reachable

from casework import AsyncEngine, Engine
from casework.async_engine import DEFAULT_GROUP


async def _sequential(engine: AsyncEngine, numbers: list[str]) -> float:
    t0 = time.perf_counter()
    for number in numbers:
        await engine.fire(number, "review", actor=AGENT)
    return len(numbers) / (time.perf_counter() - t0)


async def _concurrent(engine: AsyncEngine, numbers: list[str], callers: int) -> float:
    async def caller(mine: list[str]) -> None:
        for number in mine:
            await engine.fire(number, "review", actor=AGENT)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(numbers[i::callers]) for i in range(callers)))
    return len(numbers) / (time.perf_counter() - t0)


def _plain(engine: Engine, numbers: list[str]) -> tuple[float, float]:
    """Fires per second of a plain Engine in one thread, and the share of its time the process spent on
    the CPU (the rest it waited for the database: what threads, or an async driver, can overlap)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for number in numbers:
        engine.fire(number, "review", actor=AGENT)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(numbers) / wall, cpu / wall


async def measure(url: str, per_round: int, rounds: int, callers: int, workers: int, group: int
                  ) -> tuple[float, float, float]:
    engine = AsyncEngine(url, workers=workers, group=group)
    opened = await engine.open_many([{"kind": "refund", "facts": {
        "order_id": f"SO-{i:07d}", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"}}
        for i in range(per_round * (2 * rounds + 2))], actor=CUSTOMER)
    numbers = iter(opened.numbers)

    def cases() -> list[str]:
        return [next(numbers) for _ in range(per_round)]

    await _sequential(engine, cases()[:50])  # warm: the policy loaded, the pool filled, statements compiled
    ones, many = [], []
    for _ in range(rounds):
        ones.append(await _sequential(engine, cases()))
        many.append(await _concurrent(engine, cases(), callers))
    plain, busy = await asyncio.get_running_loop().run_in_executor(None, _plain, engine.engine, cases())
    await engine.aclose()
    print(f"fire review: one caller {median(ones):.0f} ops/s, {callers} coroutines {median(many):.0f} ops/s "
          f"(rounds: {', '.join(f'{a:.0f}/{b:.0f}' for a, b in zip(ones, many, strict=True))}); plain Engine in one "
          f"thread {plain:.0f} ops/s, on the CPU {busy:.0%} of its time; {workers} worker threads, "
          f"groups of up to {group}, {os.cpu_count()} CPUs")
    return median(ones), median(many), plain


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=PG_URL)
    ap.add_argument("--cases", type=int, default=600, help="fires per round and side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--callers", type=int, default=32)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--group", type=int, default=DEFAULT_GROUP, help="fires committed together at most (1: alone)")
    ap.add_argument("--quick", action="store_true", help="200 fires per round and side")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    n = 200 if args.quick else args.cases
    banner(f"AsyncEngine on PostgreSQL: {args.callers} coroutines vs one sequential caller ({n} fires each, "
           f"{args.rounds} rounds)")
    problem = reachable(args.url)
    if problem is not None:
        print(f"SKIPPED: PostgreSQL not reachable at {args.url}: {problem}")
        return finish([Row("14", "AsyncEngine 32 coroutines vs 1 caller", None, limit=0.5, skipped=True,
                           note=f"server unreachable: {problem}")], args.json_out)
    import psycopg

    schema = f"casework_bench_async_{os.getpid()}"
    admin: Any = psycopg.connect(_libpq(args.url), autocommit=True)
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        one, many, plain = asyncio.run(measure(_with_schema(args.url, schema), n, args.rounds, args.callers,
                                               args.workers, args.group))
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    # seconds per transition, 32 coroutines vs 1 caller: a >= 2x speed-up is a ratio <= 0.5
    return finish([
        Row("14", f"AsyncEngine {args.callers} coroutines vs 1 caller (s/transition)", 1 / many, 1 / one,
            limit=0.5, baseline_name="1 caller", note=f"{args.callers} coroutines {many:.0f} ops/s = "
                                                      f"{many / one:.2f}x one caller {one:.0f} ops/s (target >= 2x)"),
        Row("14", "AsyncEngine 1 caller vs plain Engine (s/transition)", 1 / one, 1 / plain, kind="info",
            baseline_name="plain Engine"),
    ], args.json_out)


if __name__ == "__main__":
    main()
