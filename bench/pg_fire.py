"""Target 5: ``engine.fire`` on PostgreSQL vs raw psycopg doing the same UPDATE + INSERT.

Uses the server of the test suite (``postgresql+psycopg://postgres@127.0.0.1:5432/test``, override
with ``$CASEWORK_BENCH_PG``) but never touches its ``public`` tables: everything happens in three
private schemas (``search_path`` set per connection), dropped at the end. Skips, with the reason,
when the server is unreachable.

As in ``fire_sqlite.py``: N refund cases are opened with ``engine.open`` in the engine's schema and
copied to the raw and naive schemas; then ``review`` and ``approve`` are fired once per case,
batch by batch side by side with

* raw    psycopg, one connection: UPDATE cases (compare-and-set) + INSERT INTO audit_entries + COMMIT,
         parameters prepared outside the timed loop (psycopg prepares the statements server-side);
* naive  a new ``transitions.Machine`` per case and an SQLModel ``Session`` per transition.

Then throughput: ``review`` fired on distinct cases by 1 and by 4 worker processes (spawned, each its
own Engine), ops/s from the first worker's start to the last one's end; target: 4 >= 1.5x one.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from typing import Any

from _common import PG_URL, Row, banner, finish, fmt_time, median, time_side_by_side
from fire_sqlite import AGENT, CUSTOMER, EVENTS, Naive, WriteShape, capture_fire, open_cases, raw_params

from casework import Engine


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def reachable(url: str) -> str | None:
    import psycopg

    try:
        psycopg.connect(_libpq(url), connect_timeout=3).close()
        return None
    except Exception as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class RawPG:
    """casework's UPDATE and INSERT (same columns, same values) through plain psycopg, then COMMIT."""

    def __init__(self, url: str, schema: str, shapes: dict[str, dict[str, WriteShape]], skip: str) -> None:
        import psycopg

        self.con = psycopg.connect(_libpq(url), options=f"-csearch_path={schema}")
        rows = self.con.execute("SELECT id, number, version, last_seq, facts, last_hash FROM cases "
                                "WHERE number <> %s ORDER BY id", (skip,)).fetchall()
        self.con.commit()
        self.update_sql = shapes[EVENTS[0]]["update"].sql.replace("?", "%s")
        self.insert_sql = shapes[EVENTS[0]]["insert"].sql.replace("?", "%s")
        self.params = raw_params(shapes, rows)

    def run(self, event: str, lo: int, hi: int) -> int:
        cur = self.con.cursor()
        for upd, ins in self.params[event][lo:hi]:
            cur.execute(self.update_sql, upd, prepare=True)
            if cur.rowcount != 1:
                raise RuntimeError("raw compare-and-set lost")
            cur.execute(self.insert_sql, ins, prepare=True)
            self.con.commit()
        return hi - lo

    def close(self) -> None:
        self.con.close()


def _worker(url: str, numbers: list[str], ready: Any, go: Any, out: Any) -> None:
    """One process, its own Engine: fire ``review`` on its own slice of cases; report (ops, start, end)."""
    engine = Engine(url)
    engine.policy  # noqa: B018  (loaded before the clock starts)
    ready.release()
    go.wait()
    t0 = time.time()
    for number in numbers:
        engine.fire(number, "review", actor=AGENT)
    out.put((len(numbers), t0, time.time()))
    engine.close()


def throughput(url: str, slices: list[list[str]]) -> float:
    """Transitions per second of ``len(slices)`` worker processes, from the first start to the last end."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, part, ready, go, out)) for part in slices]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"worker exited with {proc.exitcode}")
    ops = sum(r[0] for r in results)
    return ops / (max(r[2] for r in results) - min(r[1] for r in results))


def workers_row(url: str, per_worker: int, admin: Any, schema: str, rounds: int = 3) -> list[Row]:
    """Target 5b: 4 worker processes on distinct cases vs one process (fire review, PostgreSQL).

    One process and four alternate for ``rounds`` rounds (fresh cases each time); each figure is
    the median throughput of its runs, so one disturbed run does not decide the ratio.
    """
    admin.execute(f'CREATE SCHEMA "{schema}"')
    mp_url = _with_schema(url, schema)
    engine = Engine(mp_url)
    numbers = iter(engine.open_many([{"kind": "refund", "facts": {
        "order_id": f"SO-{i:07d}", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"}}
        for i in range(5 * per_worker * rounds)], actor=CUSTOMER).numbers)
    engine.close()

    def cases() -> list[str]:
        return [next(numbers) for _ in range(per_worker)]

    ones, fours = [], []
    for _ in range(rounds):
        ones.append(throughput(mp_url, [cases()]))
        fours.append(throughput(mp_url, [cases() for _ in range(4)]))
    one, four = median(ones), median(fours)
    print(f"fire review, distinct cases: 1 process {one:.0f} ops/s, 4 processes {four:.0f} ops/s (medians of "
          f"{rounds} alternating runs: {', '.join(f'{a:.0f}/{b:.0f}' for a, b in zip(ones, fours, strict=True))}), "
          f"ratio {four / one:.2f}x (target >= 1.5x; {os.cpu_count()} CPUs)")
    # seconds per transition, 4 processes vs 1: ratio = 1 / speed-up, so >= 1.5x speed-up is ratio <= 0.67
    return [Row("5", "PostgreSQL 4 processes vs 1 (s/transition)", 1 / four, 1 / one, limit=round(1 / 1.5, 2),
                baseline_name="1 process", note=f"4 processes {four:.0f} ops/s = {four / one:.2f}x one "
                                                  f"process {one:.0f} ops/s (target >= 1.5x)")]


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=PG_URL)
    ap.add_argument("--cases", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="400 cases")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    n = 400 if args.quick else args.cases
    batch = min(args.batch, n // 8)
    rounds = n // batch - 1
    n = (rounds + 1) * batch
    banner(f"target 5: engine.fire on PostgreSQL vs raw psycopg ({n} refund cases, batches of {batch})")
    problem = reachable(args.url)
    if problem is not None:
        print(f"SKIPPED: PostgreSQL not reachable at {args.url}: {problem}")
        rows = [Row("5", "PostgreSQL fire", None, limit=3.0, skipped=True, note=f"server unreachable: {problem}")]
        return finish(rows, args.json_out)

    import psycopg

    tag = f"{os.getpid()}"
    schemas = {k: f"casework_bench_{k}_{tag}" for k in ("engine", "raw", "naive", "workers")}
    admin = psycopg.connect(_libpq(args.url), autocommit=True)
    try:
        for k, s in schemas.items():
            if k != "workers":
                admin.execute(f'CREATE SCHEMA "{s}"')
        urls = {k: _with_schema(args.url, s) for k, s in schemas.items()}
        numbers = open_cases(urls["engine"], n + 1)
        probe, numbers = numbers[-1], numbers[:-1]  # fired first, to see what the engine writes
        for k in ("raw", "naive"):
            Engine(urls[k]).close()  # casework's schema in the copy
            src, dst = schemas["engine"], schemas[k]
            for table in ("policy_versions", "cases", "audit_entries", "counters"):
                admin.execute(f'INSERT INTO "{dst}".{table} SELECT * FROM "{src}".{table}')
            for table in ("cases", "audit_entries"):
                admin.execute(f"SELECT setval(pg_get_serial_sequence('\"{dst}\".{table}', 'id'), "
                              f'(SELECT max(id) FROM "{dst}".{table}))')
        server = admin.execute("SHOW server_version").fetchone()
        sync = admin.execute("SHOW synchronous_commit").fetchone()
        print(f"server {server[0] if server else '?'}, synchronous_commit={sync[0] if sync else '?'}")

        engine = Engine(urls["engine"])
        shapes = {event: capture_fire(engine, urls["engine"], probe, event, AGENT)[0] for event in EVENTS}
        raw = RawPG(args.url, schemas["raw"], shapes, skip=probe)
        naive = Naive(urls["naive"])
        rows: list[Row] = []
        for event in EVENTS:
            per = time_side_by_side(engine, raw, naive, numbers, event, AGENT, batch, rounds)
            e, b, nv = median(per["engine"]), median(per["raw"]), median(per["naive"])
            print(f"{event:8s} engine {fmt_time(e)}/transition  raw psycopg {fmt_time(b)}  naive {fmt_time(nv)}"
                  f"  engine/raw {e / b:.1f}x  engine/naive {e / nv:.2f}x  (median of {rounds} batches)")
            guards = "role guard" if event == "review" else "role + 4 policy guards"
            rows.append(Row("5", f"PostgreSQL fire {event} ({guards})", e, b, limit=3.0,
                            baseline_name="raw psycopg"))
            rows.append(Row("5", f"PostgreSQL fire {event} vs naive", e, nv, kind="info",
                            baseline_name="Machine+Session"))
        engine.close()
        raw.close()
        naive.close()
        rows.extend(workers_row(args.url, 400 if args.quick else 1000, admin, schemas["workers"]))
        return finish(rows, args.json_out)
    finally:
        for s in schemas.values():
            admin.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        admin.close()


if __name__ == "__main__":
    main()
