"""``casework relay`` against a real NATS JetStream server.

The shared server is 127.0.0.1:4222 (override with ``CASEWORK_TEST_NATS``); the test that restarts a
broker runs a private ``nats-server`` of its own on a free port (so the shared one is never killed).
Without a reachable server (or without the ``nats-server`` binary, for the restart) the tests are
skipped with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import robust_workers
from typer.testing import CliRunner

import cli
from casework import Actor, BrokerUnavailable, Engine, FixedClock

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER, AGENT = Actor("cust-1", "customer"), Actor("alice", "agent")
SHARED = os.environ.get("CASEWORK_TEST_NATS", "nats://127.0.0.1:4222")
NATS_SERVER = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists()
                                              else None)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the broker tests must run)")
    pytest.skip(reason)


def _reachable(url: str) -> str | None:
    host, _, port = url.rpartition("//")[2].rpartition("@")[2].partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=2).close()
        return None
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="module")
def nats_url() -> str:
    problem = _reachable(SHARED)
    if problem is not None:
        _unavailable(f"NATS not reachable at {SHARED}: {problem}")
    return SHARED


class PrivateBroker:
    """A nats-server with JetStream of this test's own: its port, its store, and a way to restart it."""

    def __init__(self, store: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.store = store
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert NATS_SERVER is not None
        self.process = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd",
                                         str(self.store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while _reachable(self.url) is not None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"nats-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # no goodbye: the relay sees its connection drop
            self.process.wait(timeout=20)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    if NATS_SERVER is None:
        _unavailable("nats-server is not installed (needed to restart a broker of the test's own)")
    broker = PrivateBroker(tmp_path / "jetstream")
    broker.start()
    yield broker
    broker.kill()


def stream_messages(url: str, stream: str) -> list[tuple[str, dict[str, Any]]]:
    """Every message the stream holds, in stream order: ``(Nats-Msg-Id, payload)``."""
    import nats

    async def read() -> list[tuple[str, dict[str, Any]]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), json.loads(msg.data or b"{}")))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def delivered_once(messages: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The messages with copies (same id) dropped: the first of each id, in stream order."""
    seen: set[str] = set()
    out = []
    for msg_id, payload in messages:
        assert msg_id == str(payload["id"])  # the global id is the message id
        if msg_id not in seen:
            seen.add(msg_id)
            out.append(payload)
    return out


def relay_process(db_url: str, broker: str, stream: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "cli.py", "--db", db_url, "relay", "--nats", broker, "--stream", stream,
                             "--subject", stream.lower(), "--json"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(condition: Any, what: str, seconds: float = 120) -> None:
    """Poll ``condition`` until it holds (a deadline against a hang, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.1)


class Writers:
    """``processes`` worker processes firing ``fires`` events each at the same cases (see robust_workers)."""

    def __init__(self, db_url: str, numbers: list[str], processes: int, fires: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.results = ctx.Queue()
        self.barrier = ctx.Barrier(processes)  # kept: the children unpickle it after they start
        self.procs = [ctx.Process(target=robust_workers.fire_worker,
                                  args=(db_url, numbers, fires, seed, self.barrier, self.results))
                      for seed in range(processes)]
        for p in self.procs:
            p.start()

    def applied(self) -> int:
        """Wait for them; the fires applied."""
        try:
            reports = [self.results.get(timeout=240) for _ in self.procs]
        finally:
            for p in self.procs:
                p.join(timeout=60)
        assert [o for r in reports for o in r["other"]] == []
        return sum(r["ok"] for r in reports)


def test_every_applied_transition_is_delivered_exactly_once_in_per_case_order_across_a_broker_restart(
        db_url: str, private_broker: PrivateBroker) -> None:
    """Three processes fire at the same cases while the relay runs; the broker is killed in the middle of
    the run and comes back; after de-duplication by id the stream holds every applied transition once, each
    case's in order; SIGTERM stops the relay cleanly with its cursor stored."""
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    setup = Engine(db_url)
    numbers = [setup.open("refund", robust_workers.refund_facts(i), actor=CUSTOMER).number for i in range(8)]
    relay = relay_process(db_url, private_broker.url, stream)
    try:
        writers = Writers(db_url, numbers, processes=3, fires=30)
        wait_until(lambda: (setup.store.outbox.cursor("default") or 0) > 0, "the relay's first publications")
        private_broker.kill()  # in the middle of the run: the relay may be publishing
        while_down = [setup.open("complaint", {"order_id": f"SO-D{i}", "customer": "c-2"}, actor=AGENT).number
                      for i in range(5)]  # written while the broker is down (the writers may be, too)
        private_broker.start()
        applied = writers.applied()
        assert applied > 0
        last = setup.changes(after=0, limit=10000)[-1].id
        wait_until(lambda: setup.store.outbox.cursor("default") == last, "the relay to catch up")
        relay.send_signal(signal.SIGTERM)
        out, err = relay.communicate(timeout=60)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert relay.returncode == 0, err
    assert json.loads(out)["state"] == "stopped" and json.loads(out)["position"] == last

    changes = setup.changes(after=0, limit=10000)
    assert len(changes) == len(numbers) + len(while_down) + applied  # every applied fire, and the openings
    delivered = delivered_once(stream_messages(private_broker.url, stream))
    assert [m["id"] for m in delivered] == [c.id for c in changes]  # each once, in commit order
    assert delivered == [c.to_json() for c in changes]
    for number in numbers:  # and so, each case's changes in its order
        seqs = [m["seq"] for m in delivered if m["number"] == number]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    setup.close()


def test_relay_once_drains_stores_its_cursor_and_a_rewind_is_dropped_as_copies(
        sqlite_engine: Engine, tmp_path: Path, nats_url: str) -> None:
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    number = sqlite_engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"},
                                actor=CUSTOMER).number
    sqlite_engine.fire(number, "approve", actor=AGENT)
    runner = CliRunner()
    args = ["--db", f"sqlite:///{tmp_path}/t.db", "relay", "--once", "--nats", nats_url, "--stream", stream,
            "--subject", stream.lower(), "--json"]
    first = runner.invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["published"] == 2 and sqlite_engine.store.outbox.cursor("default") == 2
    again = runner.invoke(cli.app, args)
    assert json.loads(again.stdout)["published"] == 0  # the cursor is in the database
    rewound = runner.invoke(cli.app, [*args, "--from", "0"])
    assert json.loads(rewound.stdout)["published"] == 2  # published again ...
    messages = stream_messages(nats_url, stream)
    assert [m[0] for m in messages] == ["1", "2"]  # ... and dropped by the stream as copies of the same ids
    assert messages[1][1]["event"] == "approve" and messages[1][1]["facts"]["amount"] == "10.00"
    _delete_stream(nats_url, stream)


def test_an_unreachable_broker_is_waited_for_then_reported_in_one_line(sqlite_engine: Engine, tmp_path: Path,
                                                                      clock: FixedClock) -> None:
    sqlite_engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    result = CliRunner().invoke(cli.app, ["--db", f"sqlite:///{tmp_path}/t.db", "relay", "--once", "--nats",
                                          f"nats://user:secret@127.0.0.1:{port}", "--give-up-after", "0.5"])
    assert result.exit_code == 2
    assert "cannot publish to NATS at nats://user:***@127.0.0.1" in result.stderr
    assert "secret" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(BrokerUnavailable) as caught:
        from casework import Relay

        asyncio.run(Relay(sqlite_engine, servers=f"nats://127.0.0.1:{port}").run(once=True, give_up_after=0))
    assert caught.value.http_status == 503 and sqlite_engine.store.outbox.cursor("default") is None


def test_a_server_url_of_another_broker_is_refused_at_once_without_its_password(sqlite_engine: Engine,
                                                                                tmp_path: Path) -> None:
    from casework import InvalidInput, Relay

    with pytest.raises(InvalidInput, match=r"^servers 'amqp://guest:\*\*\*@127.0.0.1:5672': amqp:// is not a NATS "
                                           r"server; expected nats://, tls://, ws://, wss://") as refused:
        Relay(sqlite_engine, servers="nats://127.0.0.1:4222,amqp://guest:guest@127.0.0.1:5672")
    assert refused.value.field == "servers" and "guest:guest" not in str(refused.value.to_json())
    Relay(sqlite_engine, servers="127.0.0.1:4222, TLS://nats.example:4443")  # no scheme is nats://
    result = CliRunner().invoke(cli.app, ["relay", "--once", "--db", f"sqlite:///{tmp_path}/t.db", "--nats",
                                          "redis://127.0.0.1:6379"])
    assert result.exit_code == 2 and "redis:// is not a NATS server" in result.stderr
    assert "Traceback" not in result.output


def _delete_stream(url: str, stream: str) -> None:
    import nats

    async def delete() -> None:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(delete())


def test_the_cursor_moves_only_over_the_acknowledged_prefix_when_the_broker_refuses_a_message(
        sqlite_engine: Engine, nats_url: str) -> None:
    """A stream that takes five messages and refuses the rest (max_msgs, discard new): the relay publishes
    a window of twelve, the broker acknowledges the first five and refuses the others; the cursor stops at the
    fifth, and the relay, sending again from there, gives up on a broker that keeps refusing. (nats-py 2.16 never
    completes the acknowledgement of a message refused with a 503: the relay sees those as timeouts.)"""
    import nats
    from nats.js.api import DiscardPolicy, StreamConfig

    from casework import Relay

    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    for i in range(6):
        number = sqlite_engine.open("refund", {"order_id": f"SO-{i}", "amount": "10.00", "paid": "10.00"},
                                    actor=CUSTOMER).number
        sqlite_engine.fire(number, "approve", actor=AGENT)
    changes = sqlite_engine.changes(limit=100)
    assert len(changes) == 12

    async def limited() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"], max_msgs=5,
                                                         discard=DiscardPolicy.NEW, duplicate_window=60))
        finally:
            await nc.close()

    asyncio.run(limited())
    relay = Relay(sqlite_engine, servers=nats_url, stream=stream, subject=stream.lower(), batch=12, window=256,
                  backoff=(0.05, 0.1), timeout=1.0)
    seen: list[Any] = []
    with pytest.raises(BrokerUnavailable) as caught:
        asyncio.run(relay.run(once=True, give_up_after=0.3, progress=seen.append))
    assert f"published up to {changes[4].id}" in str(caught.value)
    assert relay.position() == changes[4].id  # the unbroken acknowledged prefix, no further
    assert any(p.state == "waiting" for p in seen)
    assert [m[0] for m in stream_messages(nats_url, stream)] == [str(c.id) for c in changes[:5]]
    _delete_stream(nats_url, stream)


@pytest.mark.parametrize("reader", ["thread", "process"])
def test_either_reader_delivers_every_change_as_published_and_stores_the_cursor(engine: Engine, nats_url: str,
                                                                              reader: str) -> None:
    """The same changes, bodies and headers whether the database work runs on a thread or in a forked child
    (which, on PostgreSQL, opens connections of its own and seals what waits for the chain); pages of three, so
    the next page is read while one is published."""
    from casework import Relay

    for i in range(4):
        number = engine.open("refund", {"order_id": f"SO-{i}", "amount": "10.00", "paid": "10.00",
                                        "phone": "13800138000"}, actor=CUSTOMER).number
        engine.fire(number, "approve", actor=AGENT)
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    relay = Relay(engine, servers=nats_url, stream=stream, subject=stream.lower(), name=stream, batch=3,
                  reader=reader)
    assert relay.reader == reader
    done = asyncio.run(relay.run(once=True, give_up_after=10))
    changes = engine.changes(limit=100)
    assert done.published == len(changes) == 8 and relay.position() == changes[-1].id
    delivered = stream_messages(nats_url, stream)
    assert [m[0] for m in delivered] == [str(c.id) for c in changes]
    assert [m[1] for m in delivered] == [c.to_json() for c in changes]  # personal facts masked, as changes() does
    assert "13800138000" not in json.dumps([m[1] for m in delivered])
    _delete_stream(nats_url, stream)


def test_a_damaged_change_read_by_the_child_stops_the_relay_with_unreadable(sqlite_engine: Engine, tmp_path: Path,
                                                                          nats_url: str) -> None:
    """The forked reader finds the damage and says so; the relay raises it, its cursor before the damaged change."""
    import sqlite3

    from casework import Relay, Unreadable

    first = sqlite_engine.open("refund", {"order_id": "SO-1", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER)
    second = sqlite_engine.open("refund", {"order_id": "SO-2", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER)
    with sqlite3.connect(tmp_path / "t.db") as db:
        db.execute("UPDATE outbox SET facts = 'not json' WHERE seq = 1 AND case_id = "
                   "(SELECT id FROM cases WHERE number = ?)", (second.number,))
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    relay = Relay(sqlite_engine, servers=nats_url, stream=stream, subject=stream.lower(), batch=1, reader="process")
    with pytest.raises(Unreadable, match=f"case {second.number}: unreadable change of audit entry 1"):
        asyncio.run(relay.run(once=True, give_up_after=10))
    assert relay.position() == sqlite_engine.changes(limit=1)[0].id  # the first went out; the damaged one did not
    assert [m[1]["number"] for m in stream_messages(nats_url, stream)] == [first.number]
    _delete_stream(nats_url, stream)


def test_sigterm_to_the_relays_whole_process_group_stops_it_cleanly_with_its_cursor_stored(
        tmp_path: Path, nats_url: str) -> None:
    """As a service manager stops it (SIGTERM to every process of the group), in the middle of a backlog: the
    reading child ignores the signal, the relay finishes the acknowledgements in flight, stores its cursor
    through the child, stops it, and exits 0."""
    db_url = f"sqlite:///{tmp_path}/t.db"
    engine = Engine(db_url)
    engine.open_many([{"kind": "refund", "facts": {"order_id": f"SO-{i}", "amount": "10.00", "paid": "10.00"}}
                      for i in range(20_000)], actor=CUSTOMER)
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    relay = subprocess.Popen([sys.executable, "cli.py", "--db", db_url, "relay", "--nats", nats_url, "--stream",
                              stream, "--subject", stream.lower(), "--json"], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until(lambda: (engine.store.outbox.cursor("default") or 0) > 0, "the relay's first publications")
        os.killpg(relay.pid, signal.SIGTERM)
        out, err = relay.communicate(timeout=60)
    finally:
        if relay.poll() is None:
            os.killpg(relay.pid, signal.SIGKILL)
            relay.wait()
    assert relay.returncode == 0, err
    final = json.loads(out)
    assert final["state"] == "stopped" and 0 < final["position"] < 20_000  # stopped in the middle, ...
    assert engine.store.outbox.cursor("default") == final["position"]  # ... with where it got stored
    engine.close()
    _delete_stream(nats_url, stream)
