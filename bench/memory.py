"""Target 3: memory while firing 100,000 transitions across 100,000 distinct cases.

Runs in three processes so that nothing but firing is measured:

1. seed (child): the cases are created. By default one refund case is opened with ``engine.open``
   and then cloned with raw inserts into 100,000 cases, each with its own number, order id and a
   correctly hash-chained opening entry (``casework verify`` accepts them). ``--open-via-engine``
   opens every case with ``engine.open`` instead; at ~2 ms per open that takes minutes, so the
   count is cut to what fits in ``--open-budget`` seconds (and the output says so).
2. measure (child, fresh interpreter): an Engine on that file fires ``review`` once on every case,
   recording peak RSS (VmHWM) and current RSS after 1,000 transitions and at intervals after.
3. the parent prints the figures: peak RSS after all minus peak RSS after the first 1,000.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, banner, finish, peak_rss_mb, rss_mb

from casework import Actor, Engine, FixedClock

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
OPEN_AT = "2026-11-22T10:00:00+08:00"


def seed_clone(path: Path, n: int) -> dict[str, object]:
    """One real ``engine.open``, then ``n - 1`` clones with their own numbers and valid hashes."""
    from casework.audit import GENESIS, entry_hash

    t0 = time.perf_counter()
    with Engine(f"sqlite:///{path}", clock=FixedClock(OPEN_AT)) as engine:
        first = engine.open("refund", {"order_id": "SO-0000000", "amount": "59.00", "paid": "59.00"},
                            actor=CUSTOMER, channel="app")
    con = sqlite3.connect(path, isolation_level=None)
    con.row_factory = sqlite3.Row
    case = dict(con.execute("SELECT * FROM cases WHERE number = ?", (first.number,)).fetchone())
    entry = dict(con.execute("SELECT * FROM audit_entries WHERE number = ?", (first.number,)).fetchone())
    stem = first.number.rsplit("-", 1)[0]
    at_iso = first.opened_at.isoformat()
    verdicts = json.loads(entry["verdicts"])
    case_cols = [c for c in case if c != "id"]
    audit_cols = [c for c in entry if c != "id"]
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    chunk = 20_000
    for lo in range(1, n, chunk):
        crow, arow = [], []
        for i in range(lo, min(n, lo + chunk)):
            number = f"{stem}-{i + 1:06d}"
            facts = json.loads(case["facts"])
            facts["order_id"] = f"SO-{i:07d}"
            h = entry_hash(number=number, seq=1, at=at_iso, event="open", from_state=None,
                           to_state=entry["to_state"], outcome="applied", actor=entry["actor"], role=entry["role"],
                           channel=entry["channel"], verdicts=verdicts, data=facts,
                           policy_hash=entry["policy_hash"], prev_hash=GENESIS)
            fj = json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            crow.append({**case, "number": number, "facts": fj, "order_id": facts["order_id"], "last_hash": h})
            # Clones are left out of the global chain (unsealed): only the engine seals, in order.
            arow.append({**entry, "number": number, "data": fj, "hash": h, "case_id": i + 1, "gseq": None,
                         "link": None, "mac": None})
        con.executemany(f"INSERT INTO cases (id, {', '.join(case_cols)}) VALUES "
                        f"(:case_id, {', '.join(':' + c for c in case_cols)})",
                        [{**c, "case_id": a["case_id"]} for c, a in zip(crow, arow, strict=True)])
        con.executemany(f"INSERT INTO audit_entries ({', '.join(audit_cols)}) VALUES "
                        f"({', '.join(':' + c for c in audit_cols)})", arow)
    con.execute("UPDATE counters SET value = ? WHERE name = ?", (n, stem))
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return {"cases": n, "method": "1 engine.open + raw clones", "seconds": time.perf_counter() - t0}


def seed_engine(path: Path, n: int, budget: float) -> dict[str, object]:
    """Every case through ``engine.open``; stops early when ``budget`` seconds are used up."""
    t0 = time.perf_counter()
    made = 0
    with Engine(f"sqlite:///{path}") as engine:
        for i in range(n):
            engine.open("refund", {"order_id": f"SO-{i:07d}", "amount": "59.00", "paid": "59.00"},
                        actor=CUSTOMER, channel="app")
            made += 1
            if made % 1000 == 0 and time.perf_counter() - t0 > budget:
                break
    return {"cases": made, "method": "engine.open", "seconds": time.perf_counter() - t0}


def measure(path: Path, marks: list[int]) -> dict[str, object]:
    con = sqlite3.connect(path)
    numbers = [r[0] for r in con.execute("SELECT number FROM cases ORDER BY id")]
    con.close()
    engine = Engine(f"sqlite:///{path}")
    points = []
    t0 = time.perf_counter()
    wanted = set(marks) | {len(numbers)}
    for i, number in enumerate(numbers, 1):
        engine.fire(number, "review", actor=AGENT)
        if i in wanted:
            points.append({"fired": i, "peak_mb": peak_rss_mb(), "rss_mb": rss_mb(),
                           "seconds": time.perf_counter() - t0})
    engine.close()
    return {"points": points}


def _child(phase: str, path: Path, extra: list[str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--db", str(path), *extra],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="20,000 cases")
    ap.add_argument("--open-via-engine", action="store_true", help="open every case with engine.open")
    ap.add_argument("--open-budget", type=float, default=120.0, help="seconds allowed for engine.open seeding")
    ap.add_argument("--phase", choices=["seed-clone", "seed-engine", "measure"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.cases

    if args.phase:
        path = Path(args.db)
        if args.phase == "seed-clone":
            result = seed_clone(path, n)
        elif args.phase == "seed-engine":
            result = seed_engine(path, n, args.open_budget)
        else:
            marks = sorted({1000, *(k for k in (10_000, 25_000, 50_000, 75_000) if k < n)})
            result = measure(path, marks)
        print(json.dumps(result))
        return []

    banner(f"target 3: memory while firing across {n:,} distinct cases")
    tmp = Path(tempfile.mkdtemp(prefix="casework-bench-"))
    try:
        db = tmp / "mem.db"
        size = ["--cases", str(n)]
        if args.open_via_engine:
            seeded = _child("seed-engine", db, [*size, "--open-budget", str(args.open_budget)])
        else:
            seeded = _child("seed-clone", db, size)
        count = int(seeded["cases"])  # type: ignore[call-overload]
        print(f"seeded {count:,} cases via {seeded['method']} in {seeded['seconds']:.1f} s")
        note = ""
        if count < n:
            note = f"only {count:,} of {n:,} cases could be opened via engine.open in {args.open_budget:.0f} s"
            print("NOTE:", note)
        elif not args.open_via_engine:
            note = "cases seeded by cloning one engine.open'd case (valid hash chains); firing is all engine.fire"
        measured = _child("measure", db, ["--cases", str(count)])
        points = measured["points"]
        assert isinstance(points, list)
        for p in points:
            print(f"  after {p['fired']:>7,} fires: peak RSS {p['peak_mb']:7.1f} MB   current RSS {p['rss_mb']:7.1f} MB"
                  f"   ({p['seconds']:.1f} s, {p['seconds'] / p['fired'] * 1e3:.2f} ms/fire)")
        first = next(p for p in points if p["fired"] == 1000)
        last = points[-1]
        delta_peak = last["peak_mb"] - first["peak_mb"]
        delta_rss = last["rss_mb"] - first["rss_mb"]
        print(f"peak RSS growth from 1,000 to {last['fired']:,} fires: {delta_peak:.1f} MB "
              f"(current RSS growth {delta_rss:.1f} MB)")
        rows = [
            Row("3", f"peak RSS growth, 1k -> {last['fired'] // 1000}k fires", delta_peak, unit="MB", limit=20.0,
                kind="abs", note=note),
            Row("3", "current RSS growth (same span)", delta_rss, unit="MB", kind="info"),
        ]
        return finish(rows, args.json_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
