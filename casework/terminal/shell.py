"""The CLI's contract with the shell: every error one line on stderr (and one JSON document on stdout with
``--json``), the exit codes (0 done, 1 refused by the rules, 2 bad input), and the global options
(``--db``, ``--policies``...) accepted after the command as well as before it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from casework import CaseworkError, Refused

try:  # typer >= 0.24 vendors click as typer._click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - older typer depends on click itself
    # (with click installed beside a typer that vendors it, as uvicorn does, mypy sees two distinct classes here)
    from click.exceptions import (  # type: ignore[no-redef,assignment,import-not-found,unused-ignore]
        ClickException,
        UsageError,
    )

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


# ---- error handling: one line on stderr, one JSON document on stdout with --json ---------------------
def emit_error(message: str, code: int, kind: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": {"type": kind, "message": message, "exit_code": code}}))
    sys.stderr.write(f"casework: error: {message}\n")
    sys.exit(code)


GLOBAL_OPTIONS = ("--db", "--policies", "--tz", "--audit-key-file", "--db-schema", "--db-prefix")


def _globals_first(argv: list[str]) -> list[str]:
    """``argv`` with the global options (``--db URL``, ``--policies FILE``) moved before the command, so
    that they may be written after it too: ``casework verify --db URL``. Nothing after ``--`` moves."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest.extend(argv[i:])
            break
        if token.partition("=")[0] in GLOBAL_OPTIONS and ("=" in token or i + 1 < len(argv)):
            taken = 1 if "=" in token else 2  # --db=URL, or --db URL
            front.extend(argv[i:i + taken])
            i += taken
        else:
            rest.append(token)
            i += 1
    return front + rest


class Group(TyperGroup):
    """Turns every error into one line and the contract's exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        as_json = "--json" in argv
        if not argv:  # bare `casework`: the help, as --help prints it
            argv = ["--help"]
        argv = _globals_first(argv)
        try:
            rv = super().main(argv, prog_name or "casework", complete_var, False, windows_expand_args, **extra)
        except UsageError as exc:
            hint = f" (see 'casework {exc.ctx.command_path.partition(' ')[2]} --help')".replace("  ", " ") \
                if exc.ctx is not None else ""
            emit_error(exc.format_message().replace("\n", " ") + hint.replace(" )", ")"), EXIT_BAD_INPUT,
                        "UsageError", as_json)
        except ClickException as exc:
            emit_error(exc.format_message().replace("\n", " "), EXIT_BAD_INPUT, "UsageError", as_json)
        except typer.Abort:
            emit_error("aborted", EXIT_REFUSED, "Aborted", as_json)
        except Refused as exc:
            emit_error(str(exc), EXIT_REFUSED, type(exc).__name__, as_json)
        except CaseworkError as exc:
            emit_error(str(exc), EXIT_BAD_INPUT, type(exc).__name__, as_json)
        except KeyboardInterrupt:
            emit_error("interrupted", 130, "Interrupted", as_json)
        except Exception as exc:  # a bug or a damaged store must still be one line, not a traceback
            emit_error(f"unexpected {type(exc).__name__}: {exc}", EXIT_BAD_INPUT, type(exc).__name__, as_json)
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code
