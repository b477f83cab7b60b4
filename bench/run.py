"""Run every casework benchmark and print one table; exit 1 if any target is missed.

    python bench/run.py            # full run (~3 minutes on 2 cores)
    python bench/run.py --quick    # smaller sizes (~1 minute)
    python bench/run.py --only fire_sqlite queries

Each benchmark runs in its own interpreter (so memory and import figures are not disturbed) and
writes its rows as JSON; its detailed output (per-batch figures, query plans) is shown as it runs.
Targets: 1 SQLite fire <= 3x raw sqlite3; 2 bulk import and the batched sweep (bench/sweep.py; both
100k, also with --quick) <= 3x raw executemany of the same rows; 3 RSS growth <= 20 MB over 100k
fires; 4 lookups and the overdue list at 1M cases <= 2x at 10k; 5 PostgreSQL fire <= 3x raw psycopg;
6 `casework show` <= 1.3x importing its dependencies; and from the service-clock and policy issues:
`sla sweep` over 100,000 open cases (10,000 due) and `policy simulate` over 100,000 open cases, each
well under a minute and checked against a direct computation; from the embedding issue (bench/outbox.py):
fire with the outbox <= 1.15x fire without, the relay's publish rate >= 0.5x the client publishing directly.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, missed, print_table, read_rows

BENCH = Path(__file__).resolve().parent
SCRIPTS = ("fire_sqlite", "bulk_import", "memory", "queries", "pg_fire", "async_pg", "cli_startup", "sweep", "simulate",
           "outbox")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    ap.add_argument("--only", nargs="+", choices=SCRIPTS, help="run only these benchmarks")
    args = ap.parse_args(argv)
    chosen = args.only or list(SCRIPTS)
    rows: list[Row] = []
    failures: list[str] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="casework-bench-run-") as tmp:
        for name in chosen:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(BENCH / f"{name}.py"), "--json-out", str(out)]
            if args.quick:
                cmd.append("--quick")
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=BENCH.parent)
            print(f"[{name}: {time.perf_counter() - t0:.0f} s]", flush=True)
            if proc.returncode != 0 or not out.exists():
                failures.append(f"{name} exited with {proc.returncode}")
                continue
            rows.extend(read_rows(out))
    print()
    print_table(rows, title=f"casework benchmarks{' (--quick)' if args.quick else ''}, "
                            f"{time.perf_counter() - t_all:.0f} s in all")
    bad = missed(rows)
    for f in failures:
        print("ERROR:", f)
    if bad or failures:
        print(f"\n{len(bad)} target(s) missed: " + "; ".join(f"[{r.target}] {r.name}" for r in bad))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
