"""Bulk import: ``Engine.open_many`` and ``casework import`` store exactly what ``open`` would."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import pytest
from cli_helpers import invoke
from conftest import EngineFactory

from casework import Actor, Engine, InvalidImportFile, InvalidInput, jsonl
from casework.bulk import InvalidRecord

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")


def refund(i: int) -> dict[str, object]:
    return {"kind": "refund", "facts": {"order_id": f"SO-{i}", "amount": "59.00", "paid": "59.00",
                                         "customer": "cust-1"}, "channel": "app"}


def ret(i: int) -> dict[str, object]:
    return {"kind": "return", "facts": {"order_id": f"SO-R{i}", "amount": "20.00",
                                         "delivered": "2026-11-20", "reason": "defective",
                                         "evidence": ["order_record", "photo=IMG_1.jpg"], "customer": "cust-1"}}


def seq_of(number: str) -> int:
    return int(number.rsplit("-", 1)[1])


@pytest.mark.parametrize("record", [refund(1), ret(1)], ids=["refund", "return"])
def test_open_many_is_indistinguishable_from_open(engine: Engine, record: dict) -> None:
    one = engine.open(record["kind"], record["facts"], actor=CUSTOMER, channel=record.get("channel"))
    report = engine.open_many([record], actor=CUSTOMER)
    assert report.count == 1 and report.first == report.last
    bulk = engine.get(report.numbers[0])
    assert bulk.number != one.number and bulk.number[:11] == one.number[:11]
    assert seq_of(bulk.number) == seq_of(one.number) + 1
    assert asdict(bulk) | {"number": ""} == asdict(engine.get(one.number)) | {"number": ""}
    [e1], [e2] = engine.history(one.number), engine.history(bulk.number)
    skip = {"number": "", "hash": ""}
    assert asdict(e2) | skip == asdict(e1) | skip
    assert e2.seq == 1 and e2.prev_hash == "0" * 64 and e2.event == "open"
    # the stored row agrees with the engine's view too: the store reads it back the same way
    stored_one, stored_bulk = engine.store.get(one.number), engine.store.get(bulk.number)
    assert stored_one is not None and stored_bulk is not None
    assert stored_bulk.last_seq == stored_one.last_seq == 1 and stored_bulk.last_hash == e2.hash
    # and it moves on like any other case
    assert engine.fire(bulk.number, "review", actor=AGENT).state == "under_review"
    report_v = engine.verify()
    assert report_v.ok, report_v.problems
    assert report_v.cases_checked == 2


def test_open_many_batches_numbers_and_progress(engine: Engine) -> None:
    records = [refund(i) if i % 3 else ret(i) for i in range(25)]
    seen: list[tuple[int, int | None]] = []
    report = engine.open_many(records, actor=AGENT, batch=10, progress=lambda d, t: seen.append((d, t)))
    assert report.count == 25 and len(set(report.numbers)) == 25
    assert seen == [(10, 25), (20, 25), (25, 25)]
    rf = [n for n in report.numbers if n.startswith("RF-")]
    rt = [n for n in report.numbers if n.startswith("RT-")]
    assert [seq_of(n) for n in rf] == list(range(1, len(rf) + 1))  # in record order, contiguous
    assert [seq_of(n) for n in rt] == list(range(1, len(rt) + 1))
    assert report.to_json()["by_prefix"] == {"RF": len(rf), "RT": len(rt)}
    assert engine.verify().ok


def test_bad_record_names_its_line_and_stops_before_its_batch(engine: Engine) -> None:
    records = [refund(1), refund(2), refund(3), {"kind": "refund", "facts": {"order_id": "X"}}, refund(5)]
    with pytest.raises(InvalidRecord) as caught:
        engine.open_many(records, actor=AGENT, batch=2)
    assert caught.value.line == 4
    assert isinstance(caught.value, InvalidInput)
    assert re.match(r"record 4: a refund case needs amount, paid", str(caught.value))
    assert len(engine.find(kind="refund")) == 2  # batch 1 was written; batch 2 (records 3-4) was not
    assert engine.verify().ok


@pytest.mark.parametrize(("record", "problem"), [
    ({"kind": "refund", "facts": {"order_id": "A", "amount": "1.00", "paid": "1.00"}, "key": "k1"},
     "idempotency keys"),
    ({"kind": "refnd", "facts": {}}, "refnd"),
    ({"kind": "refund", "facts": {}, "extra": 1}, "unknown key extra"),
    ({"kind": "refund", "facts": {"order_id": "A", "amount": 1.5, "paid": "1.00"}}, "amount"),
    (["not", "an", "object"], "expected an object"),
    ({"kind": "dispute", "facts": {"order_id": "A"}}, "record 1"),
])
def test_bad_records_are_refused_with_the_problem(sqlite_engine: Engine, record: object, problem: str) -> None:
    with pytest.raises(InvalidRecord, match=re.escape(problem)):
        sqlite_engine.open_many([record], actor=CUSTOMER)  # type: ignore[list-item]
    assert sqlite_engine.find() == []


def test_role_refusal_is_a_bad_record(sqlite_engine: Engine) -> None:
    with pytest.raises(InvalidRecord, match=r"record 1: refused: role system may not open"):
        sqlite_engine.open_many([refund(1)], actor=Actor("cron", "system"))


def test_numbers_stay_unique_and_contiguous_beside_concurrent_opens(make_engine: EngineFactory) -> None:
    bulk_engine, single_engine = make_engine(), make_engine()
    bulk_engine.policy  # noqa: B018  (store the policy before the race)
    errors: list[BaseException] = []
    result: dict[str, list[str]] = {}

    def bulk() -> None:
        try:
            result["bulk"] = bulk_engine.open_many([refund(i) for i in range(400)], actor=AGENT, batch=50).numbers
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def single() -> None:
        try:
            result["single"] = [single_engine.open("refund", refund(1000 + i)["facts"], actor=AGENT).number  # type: ignore[arg-type]
                                for i in range(40)]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=bulk), threading.Thread(target=single)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    every = result["bulk"] + result["single"]
    assert len(set(every)) == 440
    assert sorted(seq_of(n) for n in every) == list(range(1, 441))
    for i in range(0, 400, 50):  # each batch took one contiguous block of numbers
        block = [seq_of(n) for n in result["bulk"][i:i + 50]]
        assert block == list(range(block[0], block[0] + 50))
    report = bulk_engine.verify()
    assert report.ok and report.cases_checked == 440


def _write_jsonl(path: Path, records: list[object], blank_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in records]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- Engine.import_file: a JSON Lines file, each problem at its FILE:LINE ----------------------------
def test_import_file_opens_a_case_per_line_and_reports_progress_against_the_file(engine: Engine,
                                                                                 tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "cases.jsonl", [refund(1), ret(2)], blank_after=1)
    with path.open("a") as f:  # a number with a fraction stays exact: read as a Decimal, never a float
        f.write('{"kind": "refund", "facts": {"order_id": "SO-3", "amount": 59.00, "paid": "59.00",'
                ' "customer": "cust-3"}}\n')
    seen: list[tuple[int, int | None]] = []
    report = engine.import_file(path, actor=AGENT, batch=2, progress=lambda d, t: seen.append((d, t)))
    assert report.count == 3 and report.to_json()["by_prefix"] == {"RF": 2, "RT": 1}
    assert seen == [(0, 3), (2, 3), (3, 3)]  # the total is known before the first batch
    assert engine.get(report.last or "").facts["amount"] == "59.00"
    assert engine.verify().ok


def test_import_file_names_the_line_that_is_not_json(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(refund(1)) + "\n\n{oops\n")
    with pytest.raises(InvalidImportFile) as caught:
        sqlite_engine.import_file(path, actor=AGENT, batch=1)
    bad = caught.value
    assert isinstance(bad, InvalidInput) and (bad.file, bad.line, bad.field) == (str(path), 3, "file")
    assert str(bad) == f"{path}:3: not JSON: Expecting property name enclosed in double quotes (column 2)"
    assert len(sqlite_engine.find()) == 1  # the batch before it stays opened


def test_import_file_names_the_line_of_a_refused_record_and_what_was_opened(sqlite_engine: Engine,
                                                                            tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [refund(1), refund(2), {"kind": "refund", "facts": {"order_id": "X"}}],
                        blank_after=1)
    with pytest.raises(InvalidImportFile) as caught:
        sqlite_engine.import_file(path, actor=AGENT, batch=1)
    bad = caught.value
    assert (bad.file, bad.line) == (str(path), 4)  # the third record, after a blank line
    assert re.fullmatch(rf"{re.escape(str(path))}:4: a refund case needs amount, paid.* "
                        r"\(2 case\(s\) before it were opened\)", str(bad))
    with pytest.raises(InvalidImportFile, match=r":4: .*\(nothing was opened\)$"):
        sqlite_engine.import_file(path, actor=AGENT, batch=10)
    assert len(sqlite_engine.find()) == 2


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.jsonl", None, "cannot read {path}: No such file or directory"),
    ("folder", "dir", "cannot read {path}: Is a directory"),
    ("latin1.jsonl", b"\xff\xfe\n", "{path}: not UTF-8 text (invalid start byte)"),
])
def test_import_file_that_cannot_be_read_is_named(sqlite_engine: Engine, tmp_path: Path, name: str,
                                                  content: bytes | str | None, message: str) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(InvalidImportFile) as caught:
        sqlite_engine.import_file(path, actor=AGENT, progress=lambda d, t: None)
    assert str(caught.value) == message.format(path=path) and caught.value.line is None
    assert sqlite_engine.find() == []


def test_import_file_dash_reads_standard_input(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(refund(1)) + "\n\n" + json.dumps(ret(2)) + "\n"))
    seen: list[tuple[int, int | None]] = []
    report = sqlite_engine.import_file("-", actor=AGENT, progress=lambda d, t: seen.append((d, t)))
    assert report.count == 2 and seen == [(0, None), (2, None)]  # standard input is not counted ahead


def test_export_lines_read_back_as_the_records_written(tmp_path: Path) -> None:
    records = [{"number": "RF-1", "data": {"note": "退款"}, "seq": 1}, {"number": "RF-2", "a": None}]
    out = io.StringIO()
    assert jsonl.write(records, out) == 2
    assert out.getvalue().splitlines()[0] == '{"data": {"note": "退款"}, "number": "RF-1", "seq": 1}'
    path = tmp_path / "audit.jsonl"
    assert jsonl.write(iter(records), path) == 2 and path.read_text(encoding="utf-8") == out.getvalue()
    source = jsonl.RecordFile(path)
    assert list(source) == records and source.lines == [1, 2] and source.count() == 2


def test_cli_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "cli.db")
    good = _write_jsonl(tmp_path / "good.jsonl", [refund(1), ret(2), refund(3)], blank_after=1)
    run = invoke(["--db", db, "import", str(good), "--batch", "2", "--json", "--actor", "alice"])
    assert run.code == 0, run
    doc = run.json
    assert doc["count"] == 3 and doc["by_prefix"] == {"RF": 2, "RT": 1}
    shown = invoke(["--db", db, "show", doc["first"], "--json"])
    assert shown.code == 0 and shown.json["facts"]["order_id"] == "SO-1" and shown.json["facts"]["channel"] == "app"

    human = invoke(["--db", db, "import", str(good)])
    assert human.code == 0, human
    assert "imported 3 case(s)" in human.stdout

    # line 3 of the file is the second record (a blank line sits between them)
    bad = _write_jsonl(tmp_path / "bad.jsonl", [refund(4), {"kind": "refund", "facts": {"order_id": "X"}}],
                       blank_after=1)
    failed = invoke(["--db", db, "import", str(bad)])
    assert failed.code == 2, failed
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
    assert f"{bad}:3: a refund case needs amount, paid" in failed.stderr

    (tmp_path / "broken.jsonl").write_text(json.dumps(refund(5)) + "\n{oops\n")
    broken = invoke(["--db", db, "import", str(tmp_path / "broken.jsonl"), "--json"])
    assert broken.code == 2 and f"{tmp_path / 'broken.jsonl'}:2: not JSON" in broken.json["error"]["message"]

    verified = invoke(["--db", db, "verify", "--json"])
    assert verified.code == 0 and verified.json["cases_checked"] == 6


def test_cli_import_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import cli

    monkeypatch.chdir(tmp_path)
    complaint = {"kind": "complaint", "facts": {"order_id": "SO-9", "customer": "cust-9"}}
    text = json.dumps(refund(1)) + "\n\n" + json.dumps(complaint) + "\n"
    result = CliRunner().invoke(cli.app, ["--db", str(tmp_path / "s.db"), "import", "-", "--json"], input=text)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == 2 and doc["file"] == "-"
    bad = CliRunner().invoke(cli.app, ["--db", str(tmp_path / "s.db"), "import", "-"], input="\n\n" + text + "[1]\n")
    assert bad.exit_code == 2
    assert "-:6: expected an object" in bad.stderr
