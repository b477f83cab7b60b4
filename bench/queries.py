"""Target 4: case lookups and the overdue list at 1,000,000 cases vs 10,000 cases (SQLite).

Each database is created by constructing an ``Engine`` (so the schema and indexes are casework's
own), then filled with raw ``sqlite3`` executemany: one year of cases of all four kinds, ids in
opening order, one opening audit entry per case. Shape (the same at every size):

* cases opened in the last 72 h are open, ~40 % of them still ``submitted`` with a first-response
  deadline 24 h after opening (so those older than 24 h are overdue);
* older cases are settled (70 % ``closed``), except 1 % stuck open (half of them in ``submitted``),
  all past their resolution deadline, so overdue;
* deadlines as the engine keeps them: ``due_at`` is the earliest pending one (first response while
  unanswered, resolution while unsettled); no SLA sweep has run (nothing is marked breached);
* 5 cases per customer, one order id per case.

The data is for reading only (trails are not replayable). No ANALYZE is run, as casework does not.
Timed (median per call, sizes measured side by side in alternating batches): ``engine.get(number)``,
``engine.find(order_id=)``, ``engine.find(customer=)``, ``engine.find(state="submitted",
overdue=True, limit=50)`` (= ``casework list --state submitted --overdue``). The SQL each one sends
is captured and its ``EXPLAIN QUERY PLAN`` printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import Row, SqliteTrace, banner, finish, fmt_time, interleaved, median

from casework import Actor, Engine, FixedClock
from casework.machines import KINDS

DT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite
KIND_CYCLE = ("refund", "return", "dispute", "complaint")
SPAN = timedelta(days=365)


def _open_states(kind: str) -> list[str]:
    return [s for s in KINDS[kind].states if s not in KINDS[kind].settled]


TEMPLATE_FACTS: dict[str, dict[str, Any]] = {
    "refund": {"amount": "59.00", "paid": "59.00", "reason": "not_delivered"},
    "return": {"delivered": "2026-11-20", "reason": "defective", "evidence": ["order_record", "photo=IMG_1.jpg"]},
    "dispute": {"amount": "12.00", "paid": "99.00"},
    "complaint": {"note": "slow delivery"},
}


def _templates(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, timedelta | None]]:
    """One real ``engine.open`` per kind: every column of a case row and of its opening entry."""
    t0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    with Engine(f"sqlite:///{path}", clock=FixedClock(t0.isoformat())) as engine:
        for kind in KIND_CYCLE:
            engine.open(kind, {"order_id": "SO-T", **TEMPLATE_FACTS[kind]}, actor=Actor("cust-t", "customer"),
                        channel="app")
        policy = engine.policy
        resolution = {k: (lambda d: None if d is None else d - t0)(policy.resolution_due(k, t0)) for k in KIND_CYCLE}
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    cases = {r["kind"]: dict(r) for r in con.execute("SELECT * FROM cases")}
    entries = {cases_kind: dict(con.execute("SELECT * FROM audit_entries WHERE case_id = ?", (c["id"],)).fetchone())
               for cases_kind, c in cases.items()}
    con.close()
    return cases, entries, resolution


def populate(path: Path, n: int, now: datetime, seed: int = 7) -> float:
    """Fill a fresh casework database with ``n`` cases (see the module docstring for the shape).

    Rows are clones of rows written by ``engine.open`` (one per kind) with the columns that vary
    overridden, so columns added to the schema later keep the values the engine gives them.
    """
    t0 = time.perf_counter()
    tpl_case, tpl_entry, resolution = _templates(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("DELETE FROM audit_entries")
    con.execute("DELETE FROM cases")
    con.execute("DELETE FROM counters")
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                          "AND tbl_name IN ('cases', 'audit_entries')").fetchall()
    for name, _ in indexes:
        con.execute(f"DROP INDEX {name}")
    case_cols = list(tpl_case["refund"])
    audit_cols = list(tpl_entry["refund"])
    case_sql = f"INSERT INTO cases ({', '.join(case_cols)}) VALUES ({', '.join('?' * len(case_cols))})"
    audit_sql = f"INSERT INTO audit_entries ({', '.join(audit_cols)}) VALUES ({', '.join('?' * len(audit_cols))})"
    rng = random.Random(seed)
    counters: dict[tuple[str, str], int] = {}
    customers = max(1, n // 5)
    open_states = {k: _open_states(k) for k in KIND_CYCLE}
    settled = {k: sorted(KINDS[k].settled - {"closed"}) for k in KIND_CYCLE}
    # Facts JSON per kind with placeholders (values are plain ASCII, so no escaping is needed).
    facts_tpl = {k: json.dumps({**json.loads(tpl_case[k]["facts"]), "channel": "@CH@", "customer": "@CU@",
                                "order_id": "@OR@"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                 for k in KIND_CYCLE}
    c_pos = {c: i for i, c in enumerate(case_cols)}
    a_pos = {c: i for i, c in enumerate(audit_cols)}
    c_tpl = {k: [tpl_case[k][c] for c in case_cols] for k in KIND_CYCLE}
    a_tpl = {k: [tpl_entry[k][c] for c in audit_cols] for k in KIND_CYCLE}
    c_set = [c for c in ("id", "number", "state", "facts", "order_id", "customer", "channel", "opened_at",
                         "updated_at", "first_response_due", "responded_at", "due_at", "resolution_due",
                         "timer_due", "state_since", "is_open", "version", "last_seq", "last_hash") if c in c_pos]
    a_set = [c for c in ("id", "case_id", "number", "at", "data", "actor", "channel", "hash", "gseq", "link", "mac")
             if c in a_pos]
    con.execute("BEGIN")
    chunk = 50_000
    for lo in range(1, n + 1, chunk):
        crows, arows = [], []
        for i in range(lo, min(n, lo + chunk - 1) + 1):
            kind = KIND_CYCLE[i % 4]
            ks = KINDS[kind]
            opened = now - SPAN * ((n - i + 0.5) / n)
            age = now - opened
            if age < timedelta(hours=72):
                state = "submitted" if rng.random() < 0.4 else rng.choice(open_states[kind][1:])
            elif rng.random() < 0.01:
                state = "submitted" if rng.random() < 0.5 else rng.choice(open_states[kind][1:])
            else:
                state = "closed" if rng.random() < 0.7 else rng.choice(settled[kind])
            day = (opened + timedelta(hours=8)).strftime("%Y%m%d")
            seq = counters[(ks.prefix, day)] = counters.get((ks.prefix, day), 0) + 1
            number = f"{ks.prefix}-{day}-{seq:06d}"
            order_id = f"SO-{i:08d}"
            customer = f"cust-{i % customers:07d}"
            channel = ("app", "web", "chat", "hotline")[i % 4]
            fj = facts_tpl[kind].replace("@CH@", channel).replace("@CU@", customer).replace("@OR@", order_id)
            frd = opened + timedelta(hours=24)
            res = resolution[kind]
            res_due = opened + res if res is not None else None
            closed = state == "closed"
            responded = None if state == "submitted" else opened + min(timedelta(hours=2), age / 2)
            pending = []
            if not closed and responded is None:
                pending.append(frd)
            if not closed and state not in ks.settled and res_due is not None:
                pending.append(res_due)
            due = min(pending) if pending else None
            since = _dt(responded or opened)
            h = hashlib.sha256(number.encode()).hexdigest()
            o = _dt(opened)
            values = {"id": i, "number": number, "state": state, "facts": fj, "order_id": order_id,
                      "customer": customer, "channel": channel, "opened_at": o, "updated_at": since,
                      "first_response_due": _dt(frd), "responded_at": _dt(responded), "due_at": _dt(due),
                      "resolution_due": _dt(res_due), "timer_due": None, "state_since": since,
                      "is_open": int(not closed), "version": 1, "last_seq": 1, "last_hash": h}
            row = c_tpl[kind].copy()
            for c in c_set:
                row[c_pos[c]] = values[c]
            crows.append(row)
            entry = a_tpl[kind].copy()
            avalues = {"id": i, "case_id": i, "number": number, "at": o, "data": fj, "actor": customer,
                       "channel": channel, "hash": h, "gseq": None, "link": None, "mac": None}  # not in the chain
            for c in a_set:
                entry[a_pos[c]] = avalues[c]
            arows.append(entry)
        con.executemany(case_sql, crows)
        con.executemany(audit_sql, arows)
    for (prefix, day), value in counters.items():
        con.execute("INSERT INTO counters (name, value) VALUES (?, ?)", (f"{prefix}-{day}", value))
    con.execute("COMMIT")
    for _, sql in indexes:
        con.execute(sql)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return time.perf_counter() - t0


def _dt(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DateTime text (``DT``), the fast way."""
    return None if value is None else value.isoformat(" ", "microseconds")


class Sized:
    """An Engine on one populated database, with sampled keys and SQL capture."""

    def __init__(self, path: Path, n: int, samples: int, seed: int = 11) -> None:
        self.path, self.n = path, n
        con = sqlite3.connect(path)
        rng = random.Random(seed)
        ids = [rng.randint(1, n) for _ in range(samples)]
        q = "SELECT number, order_id, customer FROM cases WHERE id = ?"
        picked = [con.execute(q, (i,)).fetchone() for i in ids]
        con.close()
        self.numbers = [p[0] for p in picked]
        self.orders = [p[1] for p in picked]
        self.customers = [p[2] for p in picked]
        self.engine = Engine(f"sqlite:///{path}")
        self.trace = SqliteTrace()
        with self.trace.installed():  # a second engine, traced, to show the SQL (the timed one is not)
            self.prober = Engine(f"sqlite:///{path}")

    def plans(self, call: Callable[[], Any]) -> list[tuple[str, list[str]]]:
        """The SELECTs ``call`` sends (run once on the traced engine) and SQLite's plan for each."""
        timed, self.engine = self.engine, self.prober
        try:
            with self.trace.record() as statements:
                call()
        finally:
            self.engine = timed
        out = []
        con = sqlite3.connect(self.path)
        for statement in statements:
            if statement.lstrip().upper().startswith("SELECT"):
                rows = con.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
                text = re.sub(r"^SELECT .*? FROM", "SELECT <every cases column> FROM", " ".join(statement.split()))
                out.append((text, [r[-1] for r in rows]))
        con.close()
        return out


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="10,000 vs 200,000 cases")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    small, large = args.small, (200_000 if args.quick else args.large)
    rounds = 8 if args.quick else args.rounds
    banner(f"target 4: query scaling, {large:,} vs {small:,} cases (SQLite)")
    tmp = Path(tempfile.mkdtemp(prefix="casework-bench-"))
    try:
        now = datetime.now(UTC).replace(tzinfo=None)
        dbs = {}
        for size in (small, large):
            path = tmp / f"q{size}.db"
            secs = populate(path, size, now)
            print(f"populated {size:>9,} cases (+ {size:,} audit entries) in {secs:5.1f} s"
                  f"  ({path.stat().st_size / 2**20:,.0f} MB)", flush=True)
            dbs[size] = path
        per_batch = 20
        samples = (rounds + 1) * per_batch
        sized = {size: Sized(path, size, samples) for size, path in dbs.items()}
        for s in sized.values():
            overdue = s.engine.find(state="submitted", overdue=True, limit=None)
            print(f"  {s.n:>9,} cases: {len(overdue):,} submitted and overdue", flush=True)

        queries: dict[str, tuple[Callable[[Sized, int], Any], int]] = {
            "get(number)": (lambda s, k: s.engine.get(s.numbers[k]), per_batch),
            "find(order_id=)": (lambda s, k: s.engine.find(order_id=s.orders[k]), per_batch),
            "find(customer=)": (lambda s, k: s.engine.find(customer=s.customers[k]), per_batch),
            "find(state=submitted, overdue, limit=50)":
                (lambda s, k: s.engine.find(state="submitted", overdue=True, limit=50), 5),
        }
        rows: list[Row] = []
        for label, (call, k) in queries.items():
            print(f"\n-- {label}")
            for size in (small, large):
                for statement, plan in sized[size].plans(lambda call=call, size=size: call(sized[size], 0)):
                    print(f"   SQL @{size:,}:  {statement}")
                    for line in plan:
                        flag = "   <-- sorts every match" if "TEMP B-TREE" in line else ""
                        flag = flag or ("   <-- full scan" if line.startswith("SCAN") else "")
                        print(f"   plan: {line}{flag}")

            def runner(size: int, call: Callable[[Sized, int], Any] = call, k: int = k) -> Callable[[int], int]:
                def run(r: int) -> int:
                    s = sized[size]
                    for j in range(k):
                        call(s, (r * k + j) % samples)
                    return k
                return run

            per = interleaved({str(small): runner(small), str(large): runner(large)}, rounds)
            t_small, t_large = median(per[str(small)]), median(per[str(large)])
            print(f"   {small:>9,} cases: {fmt_time(t_small)}/call   {large:>9,} cases: {fmt_time(t_large)}/call"
                  f"   ratio {t_large / t_small:.2f}x")
            rows.append(Row("4", f"{label} @{large // 1000:,}k", t_large, t_small, limit=2.0,
                            baseline_name=f"@{small // 1000:,}k"))
        for s in sized.values():
            s.engine.close()
            s.prober.close()
        if large < 1_000_000:
            rows[0].note = f"measured at {large:,} cases, not 1,000,000"
        print()
        return finish(rows, args.json_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
