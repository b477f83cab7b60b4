"""Mutation testing of the modules that decide and prove (issue 16): run mutmut, then report the score per module.

    python mutation/run.py                      # a full run from scratch, one worker (README: time measured)
    python mutation/run.py --jobs 2             # two workers (a machine with nobody else on it)
    python mutation/run.py --module casework/audit.py --module casework/replay.py   # only these, again
    python mutation/run.py --survivors          # run again only what survived last time (after new tests)
    python mutation/run.py --resume             # run what an interrupted run left unrun (with --module: of those)
    python mutation/run.py --report             # only the report of the last run (nothing is run)
    python mutation/run.py --report --readme    # ... and write it into README's mutation section

The modules, the tests and mutmut's settings are in pyproject.toml (``[tool.mutmut]``). mutmut copies the
checkout to ``mutants/`` with every function of those modules replaced by a trampoline, runs the listed test
files once to learn which tests reach which function (the SQLite half: a mutated rule is the same on both
databases), then runs each mutant against the tests that reached its function only, stopping at the first
failure. A mutant is killed when a test fails (or it runs past its time limit), survives when they all pass.

Equivalent mutants (no observable difference) are listed in ``mutation/equivalent.txt``, one a line with the
reason, and left out of the score; nothing else is. A mutant no test reaches counts as a survivor. Needs the
``mutation`` extra (``pip install -e '.[test,mutation]'``) and a system with fork (Linux, macOS, WSL).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "mutation" / "equivalent.txt"
README = ROOT / "README.md"
BEGIN, END = "<!-- mutation-report:begin -->", "<!-- mutation-report:end -->"
GOAL = 0.90

# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code).
KILLED = {1, 3}
TIMEOUT = {36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}
NOT_RUN = {None, 2, 34}


@dataclass
class Score:
    module: str
    generated: int = 0
    killed: int = 0
    timeout: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: int = 0
    not_run: int = 0
    other: list[str] = field(default_factory=list)  # suspicious, segfault: counted as not killed

    @property
    def scored(self) -> int:
        return self.generated - self.equivalent - self.not_run

    @property
    def ratio(self) -> float:
        return (self.killed + self.timeout) / self.scored if self.scored else 1.0


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    return list(config["only_mutate"])


def equivalents() -> dict[str, str]:
    """``mutant name -> reason`` from mutation/equivalent.txt; a line without a reason is an error."""
    found: dict[str, str] = {}
    if not EQUIVALENT.exists():
        return found
    for n, line in enumerate(EQUIVALENT.read_text("utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if not reason.strip():
            sys.exit(f"{EQUIVALENT.name}:{n}: {name} has no reason; write NAME REASON")
        found[name] = reason.strip()
    return found


def module_glob(path: str) -> str:
    """The mutant names of a module file: casework/policies/guards.py -> casework.policies.guards.*"""
    return path.removesuffix(".py").replace("/", ".") + ".*"


def results() -> dict[str, dict[str, int | None]]:
    """``module path -> {mutant name: exit code}`` from mutmut's files in mutants/."""
    out: dict[str, dict[str, int | None]] = {}
    for path in modules():
        meta = ROOT / "mutants" / (path + ".meta")
        out[path] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"] if meta.exists() else {}
    return out


def scores() -> tuple[list[Score], list[str]]:
    """The score of each module, and the equivalent mutants listed that no longer exist."""
    equivalent = equivalents()
    seen: set[str] = set()
    out = []
    for path, codes in results().items():
        s = Score(path, generated=len(codes))
        for name, code in sorted(codes.items()):
            if name in equivalent:
                s.equivalent += 1
                seen.add(name)
            elif code in KILLED:
                s.killed += 1
            elif code in TIMEOUT:
                s.timeout += 1
            elif code in SURVIVED or code in NO_TESTS:
                s.survived.append(name)
            elif code in NOT_RUN:
                s.not_run += 1
            else:
                s.other.append(name)
        out.append(s)
    return out, sorted(set(equivalent) - seen)


def table(rows: list[Score]) -> str:
    lines = ["| module | generated | killed | survived | equivalent | not run | killed % of those run |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    total = Score("**all**")
    for s in rows:
        score = "not run" if not s.scored else f"{100 * s.ratio:.1f}{'' if s.ratio >= GOAL else ' ✗'}"
        lines.append(f"| {s.module} | {s.generated} | {s.killed + s.timeout} | {len(s.survived) + len(s.other)} | "
                     f"{s.equivalent} | {s.not_run} | {score} |")
        total.generated += s.generated
        total.killed += s.killed + s.timeout
        total.survived += s.survived + s.other
        total.equivalent += s.equivalent
        total.not_run += s.not_run
    lines.append(f"| **all** | {total.generated} | {total.killed} | {len(total.survived)} | {total.equivalent} | "
                 f"{total.not_run} | {100 * total.ratio:.1f} |")
    return "\n".join(lines)


def report(write_readme: bool, elapsed: float | None) -> int:
    rows, stale = scores()
    text = table(rows)
    print(text)
    for s in rows:
        for name in s.survived + s.other:
            print(f"survived: {name}   (mutmut show {name})")
    for name in stale:
        print(f"{EQUIVALENT.name}: {name} is not a mutant of this run (the code changed?)")
    if write_readme:
        when = time.strftime("%Y-%m-%d %H:%M %Z")
        took = f", {elapsed / 60:.0f} minutes" if elapsed is not None else ""
        block = f"{BEGIN}\nLatest run: {when}{took}.\n\n{text}\n{END}"
        readme = README.read_text("utf-8")
        if BEGIN not in readme or END not in readme:
            sys.exit(f"README.md has no {BEGIN} ... {END} section to write the report into")
        head, rest = readme.split(BEGIN, 1)
        README.write_text(head + block + rest.split(END, 1)[1], "utf-8")
    return 0 if all(s.scored and s.ratio >= GOAL and not s.not_run for s in rows) else 1


def keep_results_when_tests_are_added() -> None:
    """Let the last run's results stand when test files were added to ``pytest_add_cli_args_test_selection``.

    mutmut discards every result when the test selection changes (a full run again: half an hour). Adding tests
    can only kill more mutants, never revive one, so before re-running the survivors the selection's fingerprint
    in mutmut's stats is set to today's; mutmut then runs its stats for the new tests only (it finds them itself).
    A changed ``pytest_add_cli_args`` (how every test runs) still means a full run.
    """
    stats = ROOT / "mutants" / "mutmut-stats.json"
    if not stats.exists():
        return
    import os

    from mutmut.configuration import config  # the mutation extra

    here = Path.cwd()
    os.chdir(ROOT)
    try:
        fingerprint = config().config_fingerprint()
    finally:
        os.chdir(here)
    data = json.loads(stats.read_text("utf-8"))
    data.setdefault("config_fingerprint", {})["test_selection"] = fingerprint["test_selection"]
    stats.write_text(json.dumps(data), "utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    ap.add_argument("--module", action="append", default=[], help="run only this module (a path in [tool.mutmut])")
    ap.add_argument("--survivors", action="store_true", help="run again only the mutants that survived last time")
    ap.add_argument("--resume", action="store_true", help="run the mutants an interrupted run left unrun")
    ap.add_argument("--report", action="store_true", help="print the report of the last run; run nothing")
    ap.add_argument("--readme", action="store_true", help="write the report into README.md")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: give 1 or more")
    unknown = [m for m in args.module if m not in modules()]
    if unknown:
        ap.error(f"--module {unknown[0]} is not in [tool.mutmut] only_mutate; one of: {', '.join(modules())}")
    elapsed = None
    if not args.report:
        names: list[str] = [module_glob(m) for m in args.module]
        if args.survivors or args.resume:
            rows, _ = scores()
            codes = results()
            picked = [n for s in rows for n in s.survived + s.other] if args.survivors else [
                n for path in codes for n, code in codes[path].items() if code in NOT_RUN]
            names = [n for n in picked
                     if not args.module or any(fnmatch.fnmatch(n, module_glob(m)) for m in args.module)]
            if not names:
                print("nothing to run")
                return report(args.readme, None)
            keep_results_when_tests_are_added()
        elif not args.module:
            shutil.rmtree(ROOT / "mutants", ignore_errors=True)  # a full run starts from scratch
        mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"
        started = time.monotonic()
        done = subprocess.run([mutmut, "run", "--max-children", str(args.jobs), *names], cwd=ROOT, check=False)
        elapsed = time.monotonic() - started
        print(f"mutmut exited {done.returncode} after {elapsed / 60:.1f} minutes")
    return report(args.readme, elapsed)


if __name__ == "__main__":
    sys.exit(main())
