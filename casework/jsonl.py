"""JSON Lines files: the records of a bulk-import file, each with its line, and the lines of an export.

A record file is read lazily, one line at a time; ``-`` reads standard input (as :mod:`fileinput`
does). Blank lines are skipped, and numbers with a fraction are read as ``Decimal``, so ``59.00``
stays exact and never becomes a float. A file that cannot be opened, is not UTF-8 text, or has a line
that is not JSON raises :class:`~casework.errors.InvalidImportFile` naming the file (and the line).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "cases.jsonl"
>>> _ = path.write_text('{"kind": "refund", "facts": {"amount": 59.00}}\\n\\n{"kind": "complaint"}\\n')
>>> source = RecordFile(path)
>>> [r["kind"] for r in source], source.lines, source.count()
(['refund', 'complaint'], [1, 3], 2)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from casework.errors import InvalidImportFile

STDIN = "-"


class RecordFile:
    """The records of a JSON Lines file (``-``: standard input), read lazily, one pass per iteration.

    ``lines`` holds the file line of each record read so far, so a problem found with the n-th record
    can be reported at its line (:meth:`line`): blank lines are skipped, so the two differ.
    """

    def __init__(self, path: str | Path) -> None:
        self.name = str(path)
        self.lines: list[int] = []

    def __iter__(self) -> Iterator[Any]:
        self.lines = []
        try:
            stream = sys.stdin if self.name == STDIN else open(self.name, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise InvalidImportFile(f"cannot read {self.name}: {exc.strerror or exc}", file=self.name) from None
        try:
            for n, text in enumerate(stream, 1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text, parse_float=Decimal)
                except json.JSONDecodeError as exc:
                    raise InvalidImportFile(f"{self.name}:{n}: not JSON: {exc.msg} (column {exc.colno})",
                                            file=self.name, line=n) from None
                self.lines.append(n)
                yield record
        except UnicodeDecodeError as exc:
            raise InvalidImportFile(f"{self.name}: not UTF-8 text ({exc.reason})", file=self.name) from None
        finally:
            if stream is not sys.stdin:
                stream.close()

    def line(self, position: int) -> int:
        """The file line of the record at 1-based ``position`` (``position`` itself if no such record was read)."""
        return self.lines[position - 1] if 0 < position <= len(self.lines) else position

    def count(self) -> int | None:
        """How many records the file holds (its non-blank lines), for a progress total: one quick pass that
        parses nothing. None for standard input (it can be read only once) or a path that is not a file."""
        if self.name == STDIN or not Path(self.name).is_file():
            return None
        with open(self.name, encoding="utf-8", errors="replace") as f:
            return sum(1 for text in f if text.strip())


def dumps(record: Mapping[str, Any]) -> str:
    """One line of JSON Lines: keys sorted, text as it is (not ``\\u`` escaped), ending in a newline."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


def write(records: Iterable[Mapping[str, Any]], out: str | Path | TextIO) -> int:
    """Write ``records`` one per line to ``out``, a text stream or a file path (created or replaced);
    returns how many lines were written."""
    if not isinstance(out, str | Path):
        return _write_lines(records, out)
    with open(out, "w", encoding="utf-8") as stream:
        return _write_lines(records, stream)


def _write_lines(records: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    count = 0
    for record in records:
        stream.write(dumps(record))
        count += 1
    return count
