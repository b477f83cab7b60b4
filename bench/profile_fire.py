"""cProfile of the SQLite fire path: ``engine.fire(number, "review")`` on N distinct cases.

    python bench/profile_fire.py [--fires 5000] [--event review|approve] [--sort cumtime] [--top 40]

Cases are seeded first (not profiled; same cloning as bench/memory.py), then only the fires run
under the profiler. With ``--event approve`` each case is reviewed first (unprofiled) so that
the profiled ``approve`` runs the four policy guards. ``--pg`` profiles against PostgreSQL instead.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import PG_URL
from fire_sqlite import AGENT, open_cases
from memory import seed_clone

from casework import Engine


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fires", type=int, default=5000)
    ap.add_argument("--event", choices=["review", "approve"], default="review")
    ap.add_argument("--sort", default="cumulative")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--pg", action="store_true", help=f"profile on PostgreSQL ({PG_URL}, a private schema)")
    ap.add_argument("--out", help="also save the raw profile here (for snakeviz / pstats)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="casework-prof-"))
    admin = None
    try:
        if args.pg:
            import psycopg
            from pg_fire import _libpq, _with_schema

            schema = "casework_bench_prof"
            admin = psycopg.connect(_libpq(PG_URL), autocommit=True)
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.execute(f"CREATE SCHEMA {schema}")
            url = _with_schema(PG_URL, schema)
            numbers = open_cases(url, args.fires)
        else:
            db = tmp / "prof.db"
            seed_clone(db, args.fires)
            con = sqlite3.connect(db)
            numbers = [r[0] for r in con.execute("SELECT number FROM cases ORDER BY id")]
            con.close()
            url = f"sqlite:///{db}"
        engine = Engine(url)
        if args.event == "approve":
            for number in numbers:
                engine.fire(number, "review", actor=AGENT)
        engine.fire(numbers[0], args.event, actor=AGENT)  # warm caches outside the profile
        todo = numbers[1:]
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for number in todo:
            engine.fire(number, args.event, actor=AGENT)
        prof.disable()
        wall = time.perf_counter() - t0
        engine.close()
        print(f"{len(todo)} x engine.fire({args.event!r}) on {'PostgreSQL' if args.pg else 'SQLite'}: "
              f"{wall:.2f} s under the profiler ({wall / len(todo) * 1e6:.0f} us/fire incl. profiler overhead)")
        if args.out:
            prof.dump_stats(args.out)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(args.sort).print_stats(args.top)
        print(buf.getvalue())
    finally:
        if admin is not None:
            admin.execute("DROP SCHEMA IF EXISTS casework_bench_prof CASCADE")
            admin.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
