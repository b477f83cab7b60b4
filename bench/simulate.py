"""Target 7: `policy simulate` over 100,000 open cases, well under a minute (SQLite).

Generates open no-reason returns delivered 0 to 10 days ago (written in bulk by
``tests/bulk_cases.py``, exactly as ``Engine.open`` stores them), then simulates a policy whose
no-reason window goes from 7 to 5 days and checks the report against a direct computation: the
flips must be exactly the cases delivered 6 or 7 days ago. Prints the wall and CPU time of the
simulation (and of writing the cases, for information); exit 1 if the report is wrong.

    python bench/simulate.py                # 100,000 cases
    python bench/simulate.py --cases 20000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import REPO, Row, banner, finish, load_text

sys.path.insert(0, str(REPO / "tests"))

from bulk_cases import bulk_open

from casework import Engine, FixedClock, load_policy, parse_policy

WINDOW = "{reason: no_reason, id: no_reason_return_window, within: 7d, label: a no-reason return}"
LIMIT_SECONDS = 60.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000, help="open cases to generate (default 100000)")
    ap.add_argument("--quick", action="store_true", help="20,000 cases")
    ap.add_argument("--json-out", help="write the result rows here (for bench/run.py)")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.cases
    banner(f"policy simulate over {n:,} open cases ({load_text()})")
    clock = FixedClock("2026-11-22T10:00:00+08:00")
    policy = load_policy()
    if policy.source.count(WINDOW) != 1:  # the new policy must really differ, or the comparison proves nothing
        raise SystemExit(f"bench/simulate.py: the shipped policy no longer holds {WINDOW!r} exactly once")
    new = parse_policy(policy.source.replace(WINDOW, WINDOW.replace("7d", "5d")), "window-5d.yaml")
    today = clock().astimezone(policy.tz).date()
    ages = [i % 11 for i in range(n)]
    facts = [{"order_id": f"SO-{i}", "delivered": (today - timedelta(days=age)).isoformat(), "reason": "no_reason",
              "condition": "unused", "evidence": ["order_record"], "amount": "59.00", "paid": "59.00"}
             for i, age in enumerate(ages)]
    with tempfile.TemporaryDirectory(prefix="casework-bench-simulate-") as tmp:
        engine = Engine(str(Path(tmp) / "sim.db"), policies=policy, clock=clock)
        t0 = time.perf_counter()
        numbers = bulk_open(engine, "return", facts)
        written = time.perf_counter() - t0
        print(f"wrote {n:,} cases with their opening audit entries in {written:.1f} s", flush=True)
        seen = [0]

        def progress(done: int, total: int) -> None:
            seen[0] = done
            if done % 20_000 == 0 or done == total:
                print(f"  {done:,}/{total:,} ({time.perf_counter() - w0:.1f} s)", flush=True)

        w0, c0 = time.perf_counter(), time.process_time()
        report = engine.simulate(new, progress=progress)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        engine.close()
    expected = {num for num, age in zip(numbers, ages, strict=True) if 5 < age <= 7}
    exact = {f.number for f in report.flips} == expected and len(report.flips) == len(expected)
    print(f"simulated in {wall:.1f} s wall, {cpu:.1f} s CPU: {len(report.flips):,} flips "
          f"({'exactly the cases delivered 6 or 7 days ago' if exact else 'WRONG: differs from direct computation'}), "
          f"{report.decisions_compared:,} decisions compared, {report.decisions_skipped:,} provably unchanged")
    rows = [
        Row("7", f"policy simulate, {n:,} open cases (wall)", wall, unit="s", limit=LIMIT_SECONDS, kind="abs",
            note=f"{cpu:.1f} s CPU; {len(report.flips):,} flips, exact={exact}"),
        Row("7", f"writing {n:,} cases in bulk (setup)", written, unit="s", kind="info"),
    ]
    print()
    finish(rows, args.json_out)
    return 0 if exact and seen[0] == n else 1


if __name__ == "__main__":
    sys.exit(main())
