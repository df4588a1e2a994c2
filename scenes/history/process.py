"""The history mover in a child process of the server.

Moving reads rows into Python objects, builds Arrow tables and compresses files: CPU work that,
in the server's own process, would hold the GIL that the event loop needs for every WebSocket
send and make alerts wait (measured: seconds of alert latency while a batch moved). In a child
process (its own interpreter, the other core) it waits for nothing but SQLite's write lock,
which it holds a few milliseconds at a time. It runs at a lower CPU and I/O priority (nice
10, best-effort I/O class, lowest level): on a busy host a merge of an hour's files waits for
the server's ingest and WebSocket sends, not the other way round. The child stops when asked
or when the server dies (either closes the pipe it listens on); it ignores Ctrl+C, which the
server handles and passes on. A move it leaves half done (killed) is finished by the next mover
(see `scenes.history.manifest`).

The child writes its status after every pass to ``history/.status.json`` (atomically); the
server reads it for /healthz.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import signal
from contextlib import suppress
from multiprocessing.connection import Connection
from pathlib import Path

import psutil

from scenes.db import StoreUnavailable
from scenes.history.mover import HistoryMover, MoverStatus
from scenes.history.policy import HistoryPolicy
from scenes.store import LiveStore

log = logging.getLogger("twin.scenes")
STATUS_FILE = ".status.json"
STOP_TIMEOUT_S = 15.0
RETRY_S = 5.0
NICE = 10  # added to the child's CPU niceness


def _write_status(path: Path, status: MoverStatus) -> None:
    fields = {f.name: getattr(status, f.name) for f in dataclasses.fields(status)
              if not f.name.startswith("_")}  # fmt: skip
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(fields))
    os.replace(tmp, path)


def _child(
    workspace: str, store_target: str, policy: HistoryPolicy, stop: Connection, level: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s history: %(message)s")
    _lower_priority()
    ws = Path(workspace)
    store = _open_store(store_target, stop)
    if store is None:
        return
    mover = HistoryMover(store, ws / "history", ws, policy)
    status_path = ws / "history" / STATUS_FILE

    def wait(seconds: float) -> bool:
        return stop.poll(seconds)  # a message, or the server's end closed: stop

    try:
        mover.run_forever(wait, lambda status: _write_status(status_path, status))
    finally:
        store.close()


def _lower_priority() -> None:
    """Make the mover yield the CPU and the disk to the server (see the module docstring)."""
    os.nice(NICE)
    with suppress(AttributeError, OSError, psutil.Error):  # I/O classes: Linux only
        psutil.Process().ionice(psutil.IOPRIO_CLASS_BE, 7)


def _open_store(target: str, stop: Connection) -> LiveStore | None:
    """The live store, waiting (and retrying) while its database is unreachable; None when
    told to stop meanwhile."""
    while True:
        try:
            return LiveStore(target, checkpoints=False)
        except StoreUnavailable as exc:
            log.warning("history: %s; trying again in %.0f s", exc, RETRY_S)
            if stop.poll(RETRY_S):
                return None


class MoverProcess:
    """Runs a `HistoryMover` for workspace `workspace` and its live store at `store_target`
    (the workspace's SQLite file, or a PostgreSQL URL) in a child process (`start`/`stop`)
    and reads back what it reports (`status`)."""

    def __init__(self, workspace: Path, policy: HistoryPolicy, store_target: Path | str) -> None:
        self.workspace, self.policy, self.store_target = Path(workspace), policy, store_target
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stop: Connection | None = None
        self._status_path = self.workspace / "history" / STATUS_FILE

    def start(self) -> None:
        listen, self._stop = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=_child,
            args=(
                str(self.workspace),
                str(self.store_target),
                self.policy,
                listen,
                log.getEffectiveLevel(),
            ),
            name="twin-history",
            daemon=True,
        )
        self._process.start()
        listen.close()  # the child's end: only the child may hold it

    def stop(self) -> None:
        """Ask the child to stop after its current step and wait for it (then end it)."""
        if self._process is None or self._stop is None:
            return
        self._stop.close()  # the child sees the pipe end: it stops after its current step
        self._process.join(STOP_TIMEOUT_S)
        if self._process.is_alive():
            log.warning("history mover did not stop in %.0f s: terminated", STOP_TIMEOUT_S)
            self._process.terminate()
            self._process.join()
        self._process = None

    @property
    def status(self) -> MoverStatus:
        """The child's last report (a blank one before its first pass)."""
        try:
            fields = json.loads(self._status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return MoverStatus(budget_bytes=self.policy.disk_budget_bytes)
        return MoverStatus(**fields)
