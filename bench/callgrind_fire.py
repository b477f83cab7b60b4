"""Instructions per SQLite fire, counted by valgrind's callgrind: stable under load, unlike wall clock.

    python bench/callgrind_fire.py [--fires 50] [--event approve] [--outbox applied|off] [--raw] [--top 25]

A workload opens ``--cases`` refund cases (60), reviews them all and then fires ``--event`` on
``--fires`` of them (``--event review``: reviews only those). It runs twice under
``PYTHONHASHSEED=0 valgrind --tool=callgrind``, with ``--fires`` fires and with none; the difference
divided by ``--fires`` is the cost of one fire, set-up (imports, opening, the policy) subtracted.

``--raw`` counts the raw sqlite3 baseline of ``bench/fire_sqlite.py`` the same way (its UPDATE and INSERT
with the values the engine wrote, ``BEGIN IMMEDIATE`` ... ``COMMIT``), so engine / raw is an instruction
ratio measured in the same run. Instructions are not time: a ``COMMIT``'s write() system call costs time
that callgrind does not count, so the instruction ratio is higher than the wall-clock one.

With ``--top N`` the C functions whose exclusive instructions grew most per fire are listed (from
``callgrind_annotate`` of both runs): where the interpreter, SQLite, orjson, hashlib... spend them.
Python-level attribution is cProfile's job: ``bench/profile_fire.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def workload(db: Path, cases: int, fires: int, event: str, outbox: str, raw: bool) -> None:
    """What is counted: the same set-up in both runs, then ``fires`` fires (or raw transitions)."""
    sys.path.insert(0, str(HERE))
    from fire_sqlite import AGENT, EVENTS, Raw, capture_fire, open_cases

    from casework import Engine

    url = f"sqlite:///{db}"
    numbers = open_cases(url, cases + 1)
    probe, numbers = numbers[-1], numbers[:-1]
    if raw:
        with Engine(url) as prober:
            shapes = {e: capture_fire(prober, url, probe, e, AGENT)[0] for e in EVENTS}
        base = Raw(db, shapes, skip=probe)
        if event == "approve":
            base.run("review", 0, cases)
            base.run("approve", 0, fires)
        else:
            base.run("review", 0, fires)
        base.close()
        return
    engine = Engine(url, outbox=outbox)
    engine.fire(probe, "review", actor=AGENT)  # warm the policy, the statements and the connection
    if event == "approve":
        engine.fire(probe, "approve", actor=AGENT)
        for number in numbers:
            engine.fire(number, "review", actor=AGENT)
        for number in numbers[:fires]:
            engine.fire(number, "approve", actor=AGENT)
    else:
        for number in numbers[:fires]:
            engine.fire(number, "review", actor=AGENT)
    engine.close()


def counted(args: argparse.Namespace, fires: int, out: Path) -> int:
    """Run the workload with ``fires`` fires under callgrind; its total instruction count."""
    tmp = Path(tempfile.mkdtemp(prefix="casework-cg-"))
    try:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
               "--workload", str(tmp / "cg.db"), "--cases", str(args.cases), "--fires", str(fires),
               "--event", args.event, "--outbox", args.outbox] + (["--raw"] if args.raw else [])
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def exclusive(out: Path) -> dict[str, int]:
    """Exclusive instructions per C function (callgrind_annotate, no threshold)."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", str(out)], check=True,
                          capture_output=True, text=True).stdout
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([\d.\s]+%\)\s+)?(\S.*)$", line)
        if m and ":" in m.group(2):
            found[m.group(2).strip()] = found.get(m.group(2).strip(), 0) + int(m.group(1).replace(",", ""))
    return found


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--fires", type=int, default=50)
    ap.add_argument("--event", choices=["review", "approve"], default="approve")
    ap.add_argument("--outbox", choices=["applied", "all", "off"], default="applied")
    ap.add_argument("--raw", action="store_true", help="count the raw sqlite3 baseline instead")
    ap.add_argument("--top", type=int, default=0, help="list the N C functions that grew most per fire")
    ap.add_argument("--keep", help="keep the two callgrind output files in this directory")
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.workload:
        workload(Path(args.workload), args.cases, args.fires, args.event, args.outbox, args.raw)
        return
    if args.fires < 1 or args.fires > args.cases:
        ap.error(f"--fires must be between 1 and --cases ({args.cases}), not {args.fires}")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    keep = Path(args.keep or tempfile.mkdtemp(prefix="casework-cgout-"))
    keep.mkdir(parents=True, exist_ok=True)
    label = "raw" if args.raw else f"outbox-{args.outbox}"
    with_fires, without = keep / f"cg-{args.event}-{label}-{args.fires}.out", keep / f"cg-{args.event}-{label}-0.out"
    total_n, total_0 = counted(args, args.fires, with_fires), counted(args, 0, without)
    what = "raw sqlite3 transition" if args.raw else f"engine.fire({args.event!r}), outbox={args.outbox}"
    print(f"{what}: {(total_n - total_0) / args.fires / 1000:,.0f} k instructions each "
          f"({args.fires} vs 0 fires: {total_n:,} - {total_0:,})")
    if args.top:
        a, b = exclusive(with_fires), exclusive(without)
        grew = sorted(((a.get(f, 0) - b.get(f, 0), f) for f in set(a) | set(b)), reverse=True)
        print(f"\nC functions by exclusive instructions per fire (top {args.top}):")
        for diff, name in grew[:args.top]:
            print(f"  {diff / args.fires / 1000:8,.1f} k  {name}")
    if not args.keep:
        shutil.rmtree(keep, ignore_errors=True)


if __name__ == "__main__":
    main()
