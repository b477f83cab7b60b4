"""Target 1: ``engine.fire`` on SQLite (WAL, synchronous=NORMAL) vs a raw sqlite3 transaction.

Three databases with identical content (one file opened by ``engine.open``, then copied):

* engine   ``Engine.fire`` on N distinct refund cases: first ``review`` (submitted -> under_review,
           role guard only), then ``approve`` (under_review -> approved, role + 4 policy guards);
* raw      per transition ``BEGIN IMMEDIATE; UPDATE cases ...; INSERT INTO audit_entries ...; COMMIT``
           through the stdlib ``sqlite3`` module, same tables (casework's own schema and indexes),
           same column values and widths, parameters prepared outside the timed loop;
* naive    per transition a new ``transitions.Machine(model=obj, ...)`` and an SQLModel ``Session``
           (select the CaseRow, trigger, update, add an AuditRow with a SHA-256 chain, commit).

The three are timed batch by batch, side by side (rotating order); each figure is the median of the
per-transition times of its batches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import Row, banner, fmt_time, interleaved, median, print_table, write_rows

from casework import Actor, Engine
from casework.machines import KINDS

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
EVENTS = ("review", "approve")  # submitted -> under_review -> approved


def _dumps(value: Any) -> str:  # what casework.store writes
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def open_cases(url: str, n: int) -> list[str]:
    engine = Engine(url)
    try:
        return [engine.open("refund", {"order_id": f"SO-{i:07d}", "amount": "59.00", "paid": "59.00",
                                       "reason": "not_delivered"}, actor=CUSTOMER, channel="app").number
                for i in range(n)]
    finally:
        engine.close()


def copy_db(src: Path, dst: Path) -> None:
    con = sqlite3.connect(src)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    shutil.copyfile(src, dst)


# ---- raw sqlite3 -------------------------------------------------------------------------------------
RAW_UPDATE = (
    "UPDATE cases SET state=?, version=?, facts=?, updated_at=?, first_response_due=?, responded_at=?, "
    "due_at=?, is_open=?, last_seq=?, last_hash=? WHERE cases.id = ? AND cases.version = ? AND cases.last_seq = ?"
)
RAW_INSERT = (
    "INSERT INTO audit_entries (case_id, number, seq, at, event, from_state, to_state, outcome, actor, role, "
    "channel, verdicts, data, policy_hash, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class Raw:
    """The floor: one UPDATE and one INSERT of the same width, committed, nothing else."""

    def __init__(self, path: Path, verdicts: dict[str, str]) -> None:
        self.con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute("PRAGMA foreign_keys=ON")
        rows = self.con.execute("SELECT id, number, version, last_seq, facts, policy_hash, last_hash, "
                                "first_response_due FROM cases ORDER BY id").fetchall()
        self.params: dict[str, list[tuple[tuple[Any, ...], tuple[Any, ...]]]] = {}
        to_state = {"review": "under_review", "approve": "approved"}
        from_state = {"review": "submitted", "approve": "under_review"}
        now = str(datetime.now(UTC).replace(tzinfo=None))
        for step, event in enumerate(EVENTS):
            out = []
            for (cid, number, version, last_seq, facts, policy_hash, prev, frd) in rows:
                h = hashlib.sha256(f"{number}:{event}".encode()).hexdigest()
                prev_h = prev if step == 0 else hashlib.sha256(f"{number}:review".encode()).hexdigest()
                out.append((
                    (to_state[event], version + step + 1, facts, now, frd, now, None, 1, last_seq + step + 1, h,
                     cid, version + step, last_seq + step),
                    (cid, number, last_seq + step + 1, now, event, from_state[event], to_state[event], "applied",
                     AGENT.id, AGENT.role, "app", verdicts[event], "{}", policy_hash, prev_h, h),
                ))
            self.params[event] = out

    def run(self, event: str, lo: int, hi: int) -> int:
        cur = self.con.cursor()
        for upd, ins in self.params[event][lo:hi]:
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(RAW_UPDATE, upd)
            if cur.rowcount != 1:
                raise RuntimeError("raw compare-and-set lost")
            cur.execute(RAW_INSERT, ins)
            cur.execute("COMMIT")
        return hi - lo

    def close(self) -> None:
        self.con.close()


# ---- naive: a Machine per case and an ORM session per transition -----------------------------------------
class Naive:
    """What a first version would do: per transition a fresh Machine and a Session round trip."""

    def __init__(self, url: str, kind: str = "refund", pool: Any = None) -> None:
        import sqlalchemy as sa
        from sqlmodel import Session, select

        from casework.store import AuditRow, CaseRow

        self.sa, self.Session, self.select = sa, Session, select
        self.CaseRow, self.AuditRow = CaseRow, AuditRow
        kw: dict[str, Any] = {} if pool is None else {"poolclass": pool}
        self.engine = sa.create_engine(url, **kw)
        if url.startswith("sqlite"):
            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        ks = KINDS[kind]
        self.states = list(ks.states)
        self.transitions = [{"trigger": m.event, "source": list(m.sources), "dest": m.dest or "="}
                            for m in ks.moves]

    def fire(self, number: str, event: str, actor: Actor) -> None:
        from transitions import Machine

        with self.Session(self.engine) as session:
            row = session.exec(self.select(self.CaseRow).where(self.CaseRow.number == number)).one()

            class Model:
                pass

            model = Model()
            Machine(model=model, states=self.states, transitions=self.transitions, initial=row.state,
                    auto_transitions=False)
            if actor.role not in ("agent", "supervisor", "system"):
                raise RuntimeError("role not permitted")
            facts = json.loads(row.facts)
            if event == "approve" and float(facts["amount"]) > float(facts["paid"]):
                raise RuntimeError("amount exceeds paid")
            from_state = row.state
            model.trigger(event)  # type: ignore[attr-defined]
            now = datetime.now(UTC)
            seq = row.last_seq + 1
            verdicts = _dumps([{"guard": "roles", "passed": True}])
            payload = _dumps({"number": number, "seq": seq, "at": now.isoformat(), "event": event,
                              "from": from_state, "to": model.state, "actor": actor.id, "role": actor.role,
                              "verdicts": verdicts, "prev": row.last_hash})
            h = hashlib.sha256(payload.encode()).hexdigest()
            session.add(self.AuditRow(case_id=row.id, number=number, seq=seq, at=now, event=event,
                                      from_state=from_state, to_state=model.state, outcome="applied",
                                      actor=actor.id, role=actor.role, channel=row.channel, verdicts=verdicts,
                                      data="{}", policy_hash=row.policy_hash, prev_hash=row.last_hash, hash=h))
            row.state = model.state  # type: ignore[attr-defined]
            row.version += 1
            row.updated_at = now
            row.responded_at = row.responded_at or now
            row.due_at = None
            row.last_seq = seq
            row.last_hash = h
            session.add(row)
            session.commit()

    def close(self) -> None:
        self.engine.dispose()


# ---- the benchmark ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000, help="distinct cases (each fired once per event)")
    ap.add_argument("--batch", type=int, default=100, help="transitions per timed batch")
    ap.add_argument("--quick", action="store_true", help="600 cases")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    n = 600 if args.quick else args.cases
    batch = min(args.batch, n // 4)
    rounds = n // batch - 1  # one warm-up round
    n = (rounds + 1) * batch

    banner(f"target 1: engine.fire on SQLite vs raw sqlite3 ({n} refund cases, batches of {batch})")
    tmp = Path(tempfile.mkdtemp(prefix="casework-bench-"))
    try:
        eng_db, raw_db, naive_db = tmp / "engine.db", tmp / "raw.db", tmp / "naive.db"
        numbers = open_cases(f"sqlite:///{eng_db}", n)
        copy_db(eng_db, raw_db)
        copy_db(eng_db, naive_db)

        engine = Engine(f"sqlite:///{eng_db}")
        # The exact verdict JSON the engine records for each event, so the raw rows have its width.
        verdicts = {}
        probe = numbers[0]
        verdicts["review"] = _dumps([v.to_json() for v in engine.check(probe, "review", actor=AGENT).verdicts])
        verdicts["approve"] = _dumps([v.to_json() for v in engine.check(probe, "approve", actor=AGENT).verdicts
                                      ]).replace("submitted", "under_review")
        raw = Raw(raw_db, verdicts)
        naive = Naive(f"sqlite:///{naive_db}")
        rows: list[Row] = []
        for event in EVENTS:
            def run_engine(r: int, event: str = event) -> int:
                for number in numbers[r * batch:(r + 1) * batch]:
                    engine.fire(number, event, actor=AGENT)
                return batch

            def run_raw(r: int, event: str = event) -> int:
                return raw.run(event, r * batch, (r + 1) * batch)

            def run_naive(r: int, event: str = event) -> int:
                for number in numbers[r * batch:(r + 1) * batch]:
                    naive.fire(number, event, AGENT)
                return batch

            per = interleaved({"engine": run_engine, "raw": run_raw, "naive": run_naive}, rounds)
            e, b, nv = median(per["engine"]), median(per["raw"]), median(per["naive"])
            print(f"{event:8s} engine {fmt_time(e)}/transition  raw sqlite3 {fmt_time(b)}  naive {fmt_time(nv)}"
                  f"  engine/raw {e / b:.1f}x  engine/naive {e / nv:.2f}x  (median of {rounds} batches;"
                  f" engine batch range {fmt_time(min(per['engine']))}..{fmt_time(max(per['engine']))})")
            guards = "role guard" if event == "review" else "role + 4 policy guards"
            rows.append(Row("1", f"SQLite fire {event} ({guards})", e, b, limit=3.0, baseline_name="raw sqlite3"))
            rows.append(Row("1", f"SQLite fire {event} vs naive", e, nv, kind="info",
                            baseline_name="Machine+Session"))
        engine.close()
        raw.close()
        naive.close()
        # sanity: the engine's trail is intact after the run
        with Engine(f"sqlite:///{eng_db}") as check:
            report = check.verify()
            if not report.ok:
                print("WARNING: verify found problems:", report.problems[:3])
        print_table(rows)
        write_rows(args.json_out, rows)
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
