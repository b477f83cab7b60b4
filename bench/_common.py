"""Shared helpers for the casework benchmarks: timing, memory, result rows and the summary table.

Every benchmark script can run on its own (``python bench/fire_sqlite.py``) and, with
``--json-out FILE``, also writes its result rows for ``bench/run.py`` to collect.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `import casework` must resolve to this checkout
    sys.path.insert(0, str(REPO))

PG_URL = os.environ.get("CASEWORK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def copy_db(src: Path, dst: Path) -> None:
    """Copy a SQLite database file, its write-ahead log checkpointed into it first."""
    import shutil
    import sqlite3

    con = sqlite3.connect(src)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    shutil.copyfile(src, dst)


# ---- timing ------------------------------------------------------------------------------------------
def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def interleaved(runners: dict[str, Callable[[int], int]], rounds: int, *, warmup: int = 1,
                gc_between: bool = True) -> dict[str, list[float]]:
    """Run each runner once per round, in rotating order, and return per-operation seconds per round.

    A runner takes the round index and returns how many operations it performed; its batch time is
    divided by that count. Measuring competing implementations batch by batch, side by side, keeps
    machine noise (other load, CPU frequency, WAL checkpoints) from favouring one of them.
    The first ``warmup`` rounds are run but not recorded.
    """
    names = list(runners)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + warmup):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if gc_between:
                gc.collect()
            t0 = time.perf_counter()
            ops = runners[name](r)
            dt = time.perf_counter() - t0
            if r >= warmup and ops:
                out[name].append(dt / ops)
    return out


def repeat_call(fn: Callable[[], Any], n: int) -> list[float]:
    """Seconds for each of ``n`` calls of ``fn``."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


# ---- memory ----------------------------------------------------------------------------------------------
def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """Current resident set size in MB (VmRSS; falls back to the peak where /proc is missing)."""
    kb = _status_kb("VmRSS")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def peak_rss_mb() -> float:
    """Peak resident set size so far in MB (VmHWM, i.e. ru_maxrss on Linux)."""
    kb = _status_kb("VmHWM")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


# ---- result rows -----------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the summary table.

    ``kind`` is "ratio" (figure/baseline must be <= limit), "abs" (figure must be <= limit, in
    ``unit``) or "info" (printed, not judged).
    """

    target: str
    name: str
    figure: float | None
    baseline: float | None = None
    unit: str = "s"
    limit: float | None = None
    kind: str = "ratio"
    baseline_name: str = ""
    note: str = ""
    skipped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.baseline:
            return None
        return self.figure / self.baseline

    @property
    def status(self) -> str:
        if self.skipped:
            return "SKIP"
        if self.kind == "info" or self.limit is None:
            return "info"
        value = self.ratio if self.kind == "ratio" else self.figure
        if value is None:
            return "MISS"
        return "PASS" if value <= self.limit else "MISS"

    def target_text(self) -> str:
        if self.limit is None:
            return "-"
        return f"<= {self.limit:g}x" if self.kind == "ratio" else f"<= {self.limit:g} {self.unit}"


def _fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return fmt_time(value)
    return f"{value:.1f} {unit}"


def print_table(rows: Sequence[Row], title: str = "", file: Any = None) -> None:
    file = file or sys.stdout
    header = ("#", "figure", "value", "baseline", "baseline value", "ratio", "target", "result")
    table = [header]
    for r in rows:
        ratio = r.ratio
        table.append((
            r.target, r.name, _fmt_value(r.figure, r.unit), r.baseline_name or "-",
            _fmt_value(r.baseline, r.unit), f"{ratio:.2f}x" if ratio is not None else "-",
            r.target_text(), r.status,
        ))
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    if title:
        print(title, file=file)
    sep = "  "
    for i, line in enumerate(table):
        print(sep.join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip(), file=file)
        if i == 0:
            print(sep.join("-" * w for w in widths), file=file)
    notes = [(r.target, r.name, r.note) for r in rows if r.note]
    for target, name, note in notes:
        print(f"  note [{target}] {name}: {note}", file=file)
    file.flush()


def write_rows(path: str | None, rows: Sequence[Row]) -> None:
    if path:
        Path(path).write_text(json.dumps([asdict(r) for r in rows], indent=1))


def finish(rows: list[Row], json_out: str | None) -> list[Row]:
    """The end of every benchmark script: print its table, write its rows for bench/run.py, return them."""
    print_table(rows)
    write_rows(json_out, rows)
    return rows


def read_rows(path: str | Path) -> list[Row]:
    return [Row(**d) for d in json.loads(Path(path).read_text())]


def missed(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.status == "MISS"]


def load_text() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return ""
    return f"load average {one:.2f} / {five:.2f} on {os.cpu_count()} CPUs"


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 90 - len(text)), flush=True)
    print(f"    ({load_text()}; other processes running now disturb absolute times more than ratios)", flush=True)


def time_side_by_side(engine: Any, raw: Any, naive: Any, numbers: Sequence[str], event: str, actor: Any,
                      batch: int, rounds: int, durable: Any = None) -> dict[str, list[float]]:
    """Per-transition times of ``event`` for the engine, the raw baseline and the naive pattern (and the raw
    baseline doing the engine's durable work, ``durable``, when given), batch by batch in rotating order
    (each batch fires on its own slice of ``numbers``)."""
    def run_engine(r: int) -> int:
        for number in numbers[r * batch:(r + 1) * batch]:
            engine.fire(number, event, actor=actor)
        return batch

    def run_raw(r: int) -> int:
        return int(raw.run(event, r * batch, (r + 1) * batch))

    def run_naive(r: int) -> int:
        for number in numbers[r * batch:(r + 1) * batch]:
            naive.fire(number, event, actor)
        return batch

    runners = {"engine": run_engine, "raw": run_raw, "naive": run_naive}
    if durable is not None:
        runners["durable"] = lambda r: int(durable.run(event, r * batch, (r + 1) * batch))
    return interleaved(runners, rounds)


class SqliteTrace:
    """The statements sqlite3 runs, as run (values inlined), on connections opened while installed.

    Registered on SQLAlchemy's Pool class, so it sees the connection of any Engine made inside
    ``with trace.installed():``, including the statements casework sends straight to the driver.
    """

    def __init__(self) -> None:
        self.recording = False
        self.statements: list[str] = []

    def _connect(self, dbapi_conn: Any, _record: Any) -> None:
        import sqlite3

        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if self.recording:
            self.statements.append(sql)

    @contextmanager
    def installed(self) -> Iterator[SqliteTrace]:
        import sqlalchemy as sa

        sa.event.listen(sa.pool.Pool, "connect", self._connect)
        try:
            yield self
        finally:
            sa.event.remove(sa.pool.Pool, "connect", self._connect)

    @contextmanager
    def record(self) -> Iterator[list[str]]:
        """The statements run inside the block."""
        self.statements = []
        self.recording = True
        try:
            yield self.statements
        finally:
            self.recording = False
