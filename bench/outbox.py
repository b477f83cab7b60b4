"""The outbox's two targets (issue 14), each measured against its baseline in the same run.

* fire with the outbox <= 1.15x fire without: ``Engine.fire`` (``review`` then ``approve`` on distinct refund
  cases) on two copies of one SQLite database, one engine with ``outbox="applied"`` (the default), one with
  ``outbox="off"``, batch by batch in rotating order; and the same on PostgreSQL when it is reachable.
* the relay's publish rate >= 0.5x the same client publishing the same messages directly: the relay drains
  N changes into a fresh JetStream stream (reading them from the database, publishing, storing its cursor), its
  reader as ``casework relay`` runs it (``--reader auto``: a process of its own where it can fork);
  the baseline publishes the very same payloads and headers with the same client (``publish_async``, the
  same window of acknowledgements in flight) into another fresh stream. Needs NATS at 127.0.0.1:4222
  (``CASEWORK_BENCH_NATS``); skipped (reported) when it is not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from _common import PG_URL, Row, banner, copy_db, finish, interleaved, median

from casework import Actor, Engine

CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
NATS = os.environ.get("CASEWORK_BENCH_NATS", "nats://127.0.0.1:4222")


def refunds(engine: Engine, n: int) -> list[str]:
    return [engine.open("refund", {"order_id": f"SO-{i:07d}", "amount": "59.00", "paid": "59.00"},
                        actor=CUSTOMER).number for i in range(n)]


def fire_rows(url_with: str, url_without: str, numbers: list[str], batch: int, rounds: int, label: str) -> Row:
    with_outbox, without = Engine(url_with), Engine(url_without, outbox="off")
    try:
        def runner(engine: Engine, event: str) -> object:
            def run(r: int) -> int:
                for number in numbers[r * batch:(r + 1) * batch]:
                    engine.fire(number, event, actor=AGENT)
                return batch
            return run

        times: dict[str, list[float]] = {"with": [], "without": []}
        for event in ("review", "approve"):
            got = interleaved({"with": runner(with_outbox, event), "without": runner(without, event)},  # type: ignore[dict-item]
                              rounds, warmup=0)
            for name in times:
                times[name].extend(got[name])
    finally:
        with_outbox.close()
        without.close()
    figure, baseline = median(times["with"]), median(times["without"])
    print(f"  {label}: fire with the outbox {figure * 1e6:.0f} us, without {baseline * 1e6:.0f} us "
          f"({figure / baseline:.2f}x)")
    return Row("outbox", f"{label}: fire with the outbox vs without", figure, baseline, limit=1.15,
               baseline_name="fire, outbox off")


def bench_fire_sqlite(n: int, batch: int) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.db"
        engine = Engine(f"sqlite:///{src}")
        numbers = refunds(engine, n)
        engine.close()
        copy_db(src, Path(tmp) / "with.db")
        copy_db(src, Path(tmp) / "without.db")
        return fire_rows(f"sqlite:///{tmp}/with.db", f"sqlite:///{tmp}/without.db", numbers, batch, n // batch,
                         "SQLite")


def bench_fire_pg(n: int, batch: int) -> Row:
    import sqlalchemy as sa

    schemas = [f"bench_outbox_{os.getpid()}_{name}" for name in ("with", "without")]
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        admin.dispose()
        print(f"  PostgreSQL not reachable ({str(exc).splitlines()[0]}): skipped")
        return Row("outbox", "PostgreSQL: fire with the outbox vs without", None, skipped=True)
    try:
        urls = [sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={s}"})
                .render_as_string(hide_password=False) for s in schemas]
        numbers = []
        for url in urls:  # the same cases (numbers) in both: opened the same way, in the same order
            engine = Engine(url)
            numbers = refunds(engine, n)
            engine.close()
        return fire_rows(urls[0], urls[1], numbers, batch, n // batch, "PostgreSQL")
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its children that have ended."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_relay(n: int, window: int, rounds: int = 5, reader: str = "auto") -> Row:
    try:
        import nats
    except ImportError:  # pragma: no cover - a dependency of casework
        return Row("outbox", "relay publish rate vs the client directly", None, skipped=True)
    from casework.jsontext import strict
    from casework.relay import Relay

    # CPU seconds (every thread of this process, and the relay's reading process once reaped) per message of each
    # side, beside the wall time: less disturbed by the machine's load, and their difference is what the relay
    # itself costs a change (with reader="process", spent in parallel with the publishing, on another core).
    cpu: dict[str, list[float]] = {"relay": [], "direct": []}

    async def direct(stream: str, messages: list[tuple[str, bytes, dict[str, str]]]) -> float:
        nc = await nats.connect(NATS)
        try:
            js = nc.jetstream()
            await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"], duplicate_window=3600)
            t0, c0 = time.perf_counter(), cpu_seconds()
            for lo in range(0, len(messages), window):
                acks = [await js.publish_async(subject, payload, headers=headers)
                        for subject, payload, headers in messages[lo:lo + window]]
                for ack in acks:
                    await ack
            seconds = time.perf_counter() - t0
            cpu["direct"].append((cpu_seconds() - c0) / len(messages))
            await js.delete_stream(stream)
            return seconds
        finally:
            await nc.close()

    async def drop(stream: str) -> None:
        nc = await nats.connect(NATS)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    def relayed(engine: Engine) -> float:
        stream = f"BENCH{uuid.uuid4().hex[:8].upper()}"
        relay = Relay(engine, servers=NATS, stream=stream, subject=stream.lower(), name=stream, window=window,
                      reader=reader)
        t0, c0 = time.perf_counter(), cpu_seconds()
        done = asyncio.run(relay.run(once=True, give_up_after=5))
        seconds = (time.perf_counter() - t0) / max(done.published, 1)
        cpu["relay"].append((cpu_seconds() - c0) / max(done.published, 1))
        asyncio.run(drop(stream))
        return seconds

    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(f"sqlite:///{tmp}/relay.db")
        cases = refunds(engine, n // 2)
        for number in cases:
            engine.fire(number, "approve", actor=AGENT)
        try:
            # The messages the relay sends (README: subject, body, headers), made beforehand, to another stream.
            messages = [(f"{{stream}}.{c.kind}.{c.event}", strict(c.to_json()).encode(),
                         {"Nats-Msg-Id": str(c.id), "Casework-Number": c.number, "Casework-Seq": str(c.entry.seq)})
                        for c in engine.changes(limit=n)]

            def directly() -> float:
                other = f"BENCH{uuid.uuid4().hex[:8].upper()}"
                mine = [(subject.format(stream=other.lower()), p, h) for subject, p, h in messages]
                return asyncio.run(direct(other, mine)) / len(mine)

            relay_times, direct_times = [], []
            for r in range(rounds):  # side by side, in alternating order: the machine's noise hits both
                if r % 2:
                    direct_times.append(directly())
                    relay_times.append(relayed(engine))
                else:
                    relay_times.append(relayed(engine))
                    direct_times.append(directly())
        except Exception as exc:
            print(f"  NATS not usable at {NATS} ({type(exc).__name__}: {exc}): skipped")
            return Row("outbox", "relay publish rate vs the client directly", None, skipped=True)
        finally:
            engine.close()
    figure, baseline = median(relay_times), median(direct_times)
    print(f"  relay (reader {reader}): {1 / figure:.0f} changes/s (connect, stream, reads, cursor included); "
          f"the client directly: {1 / baseline:.0f} messages/s; rate ratio {baseline / figure:.2f}")
    relay_cpu, direct_cpu = median(cpu["relay"]), median(cpu["direct"])
    print(f"  CPU time per change: relay {relay_cpu * 1e6:.1f} us, the client directly {direct_cpu * 1e6:.1f} us; "
          f"the relay's own {(relay_cpu - direct_cpu) * 1e6:.1f} us (reading, masking, encoding, cursor)")
    # Judged as time per message: the relay's <= 2x the client's is its rate >= 0.5x.
    return Row("outbox", "relay: time per change vs the client publishing directly", figure, baseline, limit=2.0,
               baseline_name="nats-py publish_async, same messages")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5, help="relay and direct runs, side by side")
    parser.add_argument("--reader", choices=("auto", "process", "thread"), default="auto",
                        help="the relay's reader (auto, as casework relay runs it: process where it can)")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.messages = 600, 3000
    banner("outbox: fire with and without it; relay vs the client publishing directly")
    rows = [bench_fire_sqlite(args.cases, args.batch)]
    if not args.no_pg:
        rows.append(bench_fire_pg(args.cases // 2, args.batch))
    rows.append(bench_relay(args.messages, args.window, args.rounds, args.reader))
    finish(rows, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
