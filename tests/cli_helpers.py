"""Helpers shared by the CLI tests: run ``cli.app`` in-process (stdout and stderr kept apart) or as
a real ``python -m casework`` process, and check the error contract (one stderr line, no traceback,
one JSON document with ``--json``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

import cli

REPO = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = REPO / "policies.yaml"
POLICY_TZ = ZoneInfo("Asia/Shanghai")  # the timezone of the default policy
CASEWORK_VARS = ("CASEWORK_DB", "CASEWORK_POLICIES", "CASEWORK_ACTOR", "CASEWORK_ROLE")
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")
HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Run:
    """What one CLI invocation did."""

    argv: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:  # shown by pytest when an assertion on a Run fails
        return (f"casework {' '.join(self.argv)}\n-> exit {self.code}\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")


def invoke(argv: Sequence[str], env: Mapping[str, str | None] | None = None) -> Run:
    """Run ``cli.app`` in this process with the CASEWORK_* variables cleared (then ``env`` applied)."""
    full_env: dict[str, str | None] = dict.fromkeys(CASEWORK_VARS)
    full_env.update(env or {})
    result = CliRunner().invoke(cli.app, list(argv), env=full_env, catch_exceptions=True)
    stderr = result.stderr
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        # An exception escaped the CLI: the real process would print this traceback.
        stderr += "".join(traceback.format_exception(exc))
    return Run(list(argv), result.exit_code, result.stdout, stderr)


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
                timeout: float = 60) -> Run:
    """Run ``python -m casework ARGV`` as a real process in ``cwd``."""
    full_env = {k: v for k, v in os.environ.items() if k not in CASEWORK_VARS}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    full_env["PYTHONWARNINGS"] = "ignore"
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "casework", *argv], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return Run(list(argv), proc.returncode, proc.stdout, proc.stderr)


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.stdout, run
    assert "Traceback" not in run.stderr, run


def assert_one_stderr_line(run: Run) -> str:
    lines = run.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}\n{run}"
    assert lines[0].strip(), run
    return lines[0]


def assert_error_contract(run: Run, code: int, as_json: bool) -> None:
    """Exit ``code``, exactly one non-empty stderr line, no traceback, one JSON document with --json."""
    assert_no_traceback(run)
    assert run.code == code, run
    assert_one_stderr_line(run)
    if as_json:
        try:
            doc = json.loads(run.stdout)
        except ValueError as exc:
            raise AssertionError(f"stdout is not exactly one JSON document ({exc})\n{run}") from None
        assert isinstance(doc, dict), run
        if "error" in doc:
            err = doc["error"]
            assert set(err) >= {"type", "message", "exit_code"}, run
            assert err["exit_code"] == code, run
            assert isinstance(err["message"], str) and err["message"] and "\n" not in err["message"], run
        else:  # a refusal by the rules prints the decision
            assert code == 1, run
            assert doc["allowed"] is False, run
            assert doc["reasons"], run


def today() -> date:
    return datetime.now(POLICY_TZ).date()


def days_ago(n: int) -> str:
    """The ISO date ``n`` days ago in the default policy's timezone."""
    return (today() - timedelta(days=n)).isoformat()


def is_iso_with_offset(value: object) -> bool:
    if not isinstance(value, str) or not ISO_WITH_OFFSET.match(value):
        return False
    return datetime.fromisoformat(value).utcoffset() is not None


def policy_with_window(tmp: Path, days: int, name: str = "custom.yaml", label: str | None = None) -> Path:
    """A copy of the default policy whose no-reason return window is ``days`` days."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("within: 7d") == 1
    text = text.replace("within: 7d", f"within: {days}d")
    if label is not None:
        assert text.count('label: "default 2026-11"') == 1
        text = text.replace('label: "default 2026-11"', f'label: "{label}"')
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path
