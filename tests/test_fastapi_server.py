"""The worked example (examples/fastapi_shop) under a real server: uvicorn with two worker processes on a
free port, driven by httpx over TCP, on SQLite and PostgreSQL.

``tests/test_fastapi_example.py`` drives the same app in process (FastAPI's TestClient); this one runs it
as README says to run it (``uvicorn --factory examples.fastapi_shop.app:create_app``, ``$SHOP_DB``), with
concurrent requests from several client threads, so both workers (each with its own Engine on the same
database) open, fire, race and consume the outbox at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from casework import Engine
from examples.fastapi_shop.app import metadata

pytest.importorskip("uvicorn", reason="uvicorn is in the test extras: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = {"X-Actor": "cust-1", "X-Role": "customer"}
AGENT = {"X-Actor": "alice", "X-Role": "agent"}
REFUND = {"amount": "59.00", "paid": "59.00", "reason": "not_delivered"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    """The shop under ``uvicorn --workers 2`` on ``db_url``; yields its base URL. The database is migrated
    before the server starts (the shop's tables, casework's), as a deployment does."""
    host = sa.create_engine(db_url)
    metadata.drop_all(host)
    metadata.create_all(host)
    host.dispose()
    Engine(db_url).close()  # casework's tables (its migrations), before any worker starts
    port = _free_port()
    log = (tmp_path / "uvicorn.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "examples.fastapi_shop.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "SHOP_DB": db_url}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # against a hang, not a timing assertion
        while True:
            try:
                if httpx.get(f"{base}/outbox/consumed", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"uvicorn did not start (exit {process.poll()}): {log.read()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()  # uvicorn's supervisor stops its workers (their lifespan closes the Engine)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.seek(0)
        output = log.read()
        log.close()
        metadata.drop_all(sa.create_engine(db_url, poolclass=sa.pool.NullPool))
    assert "Traceback" not in output, output[-3000:]  # no server error, in either worker


def test_the_shop_under_uvicorn_with_two_workers_over_tcp(server: str, db_url: str):
    with httpx.Client(base_url=server, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        def open_case(i: int) -> dict[str, Any]:
            response = client.post("/cases", headers=CUSTOMER, json={
                "kind": "refund", "facts": REFUND, "order": {"id": f"SO-{i}", "total": "59.00"}})
            assert response.status_code == 201, response.text
            return dict(response.json())

        numbers = [c["number"] for c in pool.map(open_case, range(12))]
        assert len(set(numbers)) == 12
        assert {client.get(f"/orders/SO-{i}").json()["case_number"] for i in range(12)} == set(numbers)

        # Every case approved by two callers at once: one wins, the other is refused or loses the race.
        def approve(number: str) -> int:
            return client.post(f"/cases/{number}/events/approve", json={}, headers=AGENT).status_code

        statuses = list(pool.map(approve, numbers + numbers))
        assert all(s in (200, 409) for s in statuses), statuses
        assert statuses.count(200) == 12  # the second approve of each case is not available from approved
        assert {client.get(f"/cases/{n}").json()["state"] for n in numbers} == {"approved"}

        # The error mapping over the wire.
        assert client.post(f"/cases/{numbers[0]}/events/approve", json={}, headers=AGENT).json()["type"] == \
            "EventNotAvailable"
        assert client.get("/cases/RF-20000101-999999").status_code == 404
        bad = client.post("/cases", headers=CUSTOMER, json={"kind": "refund", "facts": {**REFUND, "paid": 59.0}})
        assert bad.status_code == 400 and "59.0" in bad.json()["message"]
        duplicate = client.post("/cases", headers=CUSTOMER, json={
            "kind": "refund", "facts": REFUND, "order": {"id": "SO-0", "total": "59.00"}})
        assert duplicate.status_code == 409  # the order exists: its new case rolled back with it
        assert len(client.get("/cases", params={"limit": 100}).json()) == 12

        # The outbox consumer, called by several clients at once (each served by either worker).
        def consume(_: int) -> list[dict[str, Any]]:
            taken: list[dict[str, Any]] = []
            for _ in range(50):
                response = client.post("/outbox/consume", params={"limit": 5})
                if response.status_code == 409:  # another consumer took the same page first
                    continue
                assert response.status_code == 200, response.text
                if not response.json():
                    return taken
                taken += response.json()
            return taken

        seen = [c for batch in pool.map(consume, range(4)) for c in batch]
        histories = {n: client.get(f"/cases/{n}/history").json() for n in numbers}
        applied = sorted((n, e["event"]) for n, h in histories.items() for e in h if e["outcome"] == "applied")
        assert sorted((c["number"], c["event"]) for c in seen) == applied  # every applied transition, once
        recorded = client.get("/outbox/consumed").json()
        ids = [r["change_id"] for r in recorded]
        assert ids == sorted(ids) and len(ids) == len(set(ids)) == len(applied) == 24
        for number in numbers:  # each case's changes recorded in its order
            assert [r["event"] for r in recorded if r["case_number"] == number] == ["open", "approve"]

    checker = Engine(db_url)
    report = checker.verify()  # both workers' writes: sound trails, one sound global chain
    checker.close()
    assert report.ok and report.cases_checked == 12, report.problems
