"""Target 6: wall time of ``casework show NUMBER`` vs importing the CLI's dependencies.

Figure:   ``python -m casework --db FILE show NUMBER`` (PYTHONPATH = this checkout; run from a
          temporary directory, so no ./policies.yaml is picked up);
baseline: ``python -c "import sqlmodel, typer, rich.console, transitions, yaml"``.
Both are run alternately (one untimed warm-up each); the figure is the median wall time.
``python -X importtime`` for the ``show`` command is summarised (largest cumulative imports).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, Row, banner, finish, fmt_time, median

from casework import Actor, Engine

BASELINE = "import sqlmodel, typer, rich.console, transitions, yaml"


def _time(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    return dt


def importtime(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, tuple[int, int, int]]:
    """``python -X importtime``: module -> (self us, cumulative us, nesting depth)."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=cwd, capture_output=True, text=True)
    out = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            out[m.group(4)] = (int(m.group(1)), int(m.group(2)), (len(m.group(3)) - 1) // 2)
    return out


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="5 runs each")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    runs = 5 if args.quick else args.runs
    banner(f"target 6: `casework show NUMBER` wall time vs importing its dependencies ({runs} runs each)")
    tmp = Path(tempfile.mkdtemp(prefix="casework-bench-"))
    try:
        db = tmp / "cli.db"
        with Engine(f"sqlite:///{db}") as engine:
            number = engine.open("refund", {"order_id": "SO-1", "amount": "59.00", "paid": "59.00"},
                                 actor=Actor("cust-1", "customer"), channel="app").number
        env = {k: v for k, v in os.environ.items() if k not in ("CASEWORK_DB", "CASEWORK_POLICIES")}
        env["PYTHONPATH"] = str(REPO)
        show = [sys.executable, "-m", "casework", "--db", str(db), "show", number]
        base = [sys.executable, "-c", BASELINE]
        cmds = {"show": show, "imports": base}
        times: dict[str, list[float]] = {k: [] for k in cmds}
        # Byte-compile the checkout as `pip install` does for an installed casework (and did for the
        # baseline's packages): with PYTHONDONTWRITEBYTECODE set, as on some machines, every run would
        # otherwise compile casework's sources anew, a cost no installed user pays.
        subprocess.run([sys.executable, "-m", "compileall", "-q", "casework", "cli.py"], cwd=REPO, check=True,
                       capture_output=True)
        for cmd in cmds.values():  # warm-up (page cache)
            _time(cmd, env, tmp)
        for i in range(runs):
            order = list(cmds) if i % 2 == 0 else list(reversed(cmds))
            for k in order:
                times[k].append(_time(cmds[k], env, tmp))
        t_show, t_base = median(times["show"]), median(times["imports"])
        print(f"casework show: median {fmt_time(t_show)} (min {fmt_time(min(times['show']))})   "
              f"imports only: median {fmt_time(t_base)} (min {fmt_time(min(times['imports']))})   "
              f"ratio {t_show / t_base:.2f}x")
        shown, based = importtime(show, env, tmp), importtime(base, env, tmp)
        extra = {m: v for m, v in shown.items() if m not in based}
        total = sum(v[0] for v in extra.values())
        print(f"`casework show` imports {len(extra)} modules the baseline does not, {total / 1e3:.0f} ms of import "
              f"self time (-X importtime, one run); largest by self time:")
        for name, (self_us, cum_us, depth) in sorted(extra.items(), key=lambda kv: -kv[1][0])[:15]:
            print(f"   {self_us / 1e3:7.1f} ms self {cum_us / 1e3:7.1f} ms cumulative  {'  ' * depth}{name}")
        heads = sorted({m.split(".")[0] for m in extra})
        print(f"   top-level packages among them: {', '.join(heads)}")
        rows = [Row("6", "CLI `casework show NUMBER` wall time", t_show, t_base, limit=1.3,
                    baseline_name="python -c import deps")]
        return finish(rows, args.json_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
