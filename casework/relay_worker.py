"""Where the relay's database work runs: on a thread of the relay's process, or in a process of its own.

The relay's event loop publishes; its database work (reading and encoding the next page of changes,
storing its cursor) runs beside it, as calls ``work(op, arg)`` that each return a future:

* :class:`ThreadWorker` runs each call on a thread (``asyncio.to_thread``). The reading and the publishing
  share one interpreter lock, so the relay's own work (about as much CPU a change as the client's
  publishing) is taken from the publishing rate.
* :class:`ProcessWorker` runs them in a child forked when the relay starts, which answers over a socket
  pair, one call at a time, in the order they were asked: the reading runs on another core, in parallel
  with the publishing (``casework relay`` runs so). The child is the relay's own copy of the process:
  its Engine opens connections of its own after the fork (see ``casework._store.driver``); it ignores
  Ctrl-C and SIGTERM (sent to the process group, they are the relay's to handle: it stores its cursor
  through the child, then closes the socket), and it ends when the relay closes the socket or dies. A fork
  copies only the thread that forks: start it where no other thread holds a lock the child's database
  code needs (the relay forks first thing, before it reads its cursor or connects to the broker).

A call the relay no longer wants is cancelled: its answer is read and dropped, so the answers of the calls
after it stay in step. If the child ends unexpectedly, every call in flight and every later one fails
with :class:`~casework.errors.StoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import pickle
import signal
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from casework.errors import StoreError

Work = Callable[[str, int], Any]  # (op, arg) -> result, in the relay's terms ("page", after), ("save", position)
_ASK = struct.Struct("!16sq")  # a call: its op (padded), its argument
_SIZE = struct.Struct("!I")  # an answer's length, before its pickle: (True, result) or (False, error)
READERS = ("thread", "process", "auto")  # where a relay works: see Relay


def can_fork() -> bool:
    """Whether this platform can start a :class:`ProcessWorker` (POSIX ``fork``)."""
    return hasattr(os, "fork") and hasattr(socket, "AF_UNIX")


class ThreadWorker:
    """Each call on a thread of this process."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def call(self, op: str, arg: int) -> asyncio.Future[Any]:
        return asyncio.ensure_future(asyncio.to_thread(self._work, op, arg))

    async def close(self) -> None:
        return None


class ProcessWorker:
    """Each call in a forked child, answered in order over a socket pair (see the module's doc)."""

    def __init__(self, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pid = pid
        self._asked: deque[asyncio.Future[Any]] = deque()
        self._failed: StoreError | None = None
        self._reader, self._writer = reader, writer
        self._answers = asyncio.ensure_future(self._read_answers())

    @classmethod
    async def start(cls, work: Work) -> ProcessWorker:
        """Fork a child that answers calls to ``work``; call it from the event loop that will ask them."""
        ours, theirs = socket.socketpair()
        try:
            pid = os.fork()
        except OSError as exc:  # no more processes, or no memory for one
            ours.close()
            theirs.close()
            raise StoreError(f"cannot start the relay's reading process: {exc}; try reader='thread'") from None
        if pid == 0:  # the child: serve, then leave without running anything of the parent's (no atexit, no flush)
            status = 1
            try:
                ours.close()
                status = _serve(theirs, work)
            finally:
                os._exit(status)
        theirs.close()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=ours)
        except BaseException:
            ours.close()  # the child reads the end of its socket and leaves
            await _ended(pid)
            raise
        return cls(pid, reader, writer)

    def call(self, op: str, arg: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._failed is not None:
            future.set_exception(self._failed)
            return future
        self._writer.write(_ASK.pack(op.encode(), arg))
        self._asked.append(future)
        return future

    async def _read_answers(self) -> None:
        try:
            while True:
                size = _SIZE.unpack(await self._reader.readexactly(_SIZE.size))[0]
                answer = await self._reader.readexactly(size)
                try:
                    ok, value = pickle.loads(answer)
                except Exception as exc:  # (the child sends only what it could read back; this is a last guard)
                    ok, value = False, StoreError(f"the relay's reading process sent an answer that does not read: "
                                                  f"{type(exc).__name__}: {exc}")
                future = self._asked.popleft()
                if future.cancelled():
                    continue  # not wanted any more; the answers after it stay in step
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            for _ in range(100):  # its socket closed as it exited: give it a moment to be reaped
                if (ended := _status(self.pid)) != "still running":
                    break
                await asyncio.sleep(0.01)
            self._failed = StoreError(f"the relay's reading process (pid {self.pid}) ended unexpectedly ({ended}; "
                                      f"{type(exc).__name__})")
            while self._asked:
                future = self._asked.popleft()
                if not future.done():
                    future.set_exception(self._failed)
        finally:  # closed (or failed): what is still asked is not wanted, and nothing more can be
            self._failed = self._failed or StoreError("the relay's reading process was stopped")
            while self._asked:
                self._asked.popleft().cancel()

    async def close(self) -> None:
        """End the child (it leaves when the socket closes; killed if it has not after two seconds)."""
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._answers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._answers
        await _ended(self.pid)


async def _ended(pid: int) -> None:
    """Wait for child ``pid`` to leave, as it does once its socket closes; killed if it has not after two seconds."""
    for _ in range(200):
        if _status(pid) != "still running":
            return
        await asyncio.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _serve(sock: socket.socket, work: Work) -> int:
    """The child's loop: each call read, run and answered, until the parent closes the socket (0) or dies."""
    gc.freeze()  # what the parent made is never traversed by the collector: not copied page by page (copy on write)
    for sig in (signal.SIGINT, signal.SIGTERM):  # sent to the whole group, they are the parent's to handle: it
        signal.signal(sig, signal.SIG_IGN)          # stores its cursor (through this child), then closes the socket
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)  # the parent's event loop's: never woken by the child's signals
    with sock, sock.makefile("rb") as calls:
        while True:
            asked = calls.read(_ASK.size)
            if len(asked) < _ASK.size:
                return 0
            op, arg = _ASK.unpack(asked)
            try:
                answer = pickle.dumps((True, work(op.rstrip(b"\0").decode(), arg)), pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # sent to the caller, who raises it
                answer = _error(exc)
            try:
                sock.sendall(_SIZE.pack(len(answer)) + answer)
            except OSError:
                return 0  # the parent has gone


def _error(exc: Exception) -> bytes:
    """The answer that carries ``exc``: the error itself if it reads back from its pickle, else a StoreError with
    its type and message."""
    try:
        answer = pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
        pickle.loads(answer)
        return answer
    except Exception:
        return pickle.dumps((False, StoreError(f"{type(exc).__name__}: {exc}")), pickle.HIGHEST_PROTOCOL)


def _status(pid: int) -> str:
    """How child ``pid`` ended, reaping it (or that it has not yet)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "already reaped"
    if done == 0:
        return "still running"
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


__all__ = ["READERS", "ProcessWorker", "ThreadWorker", "can_fork"]
