"""The default group's watchdog: a rank that dies or stops calling collectives must not leave
the others waiting in NCCL forever.

Every collective of the default group records an event on its stream after it is enqueued
(after the group, inside ``group()``). A thread polls the oldest pending event and the
communicator's asynchronous error; when a collective has not completed within the group's
timeout, or NCCL reports an error, it aborts the communicator (``ncclCommAbort``), which makes
NCCL's kernels stop waiting, so a host blocked reading a result returns. The failure is kept:
the next call of the group raises ``RuntimeError`` with it. As in torch, what the aborted
collectives wrote is undefined; the process should end (or rebuild its group).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

#: Seconds between the watchdog's looks.
INTERVAL = 0.05

#: Completed events kept for reuse (recording a reused event costs less than making one).
SPARE_EVENTS = 64


class Watchdog:
    """Watches the collectives of one communicator ``comm`` (with ``check()`` and
    ``destroy(abort=True)``) of rank ``rank``; ``record(device, event)`` records an event
    (with ``query()``) on ``device``'s current stream: ``event``, a completed one given back
    for reuse, or a new one when it is ``None``."""

    def __init__(self, comm, rank: int, timeout: float, record: Callable) -> None:
        self.comm, self.rank, self.timeout, self.record = comm, rank, timeout, record
        self.failure: str | None = None
        self._pending: collections.deque = collections.deque()
        self._spare: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pocaflow-nccl-watchdog")
        self._thread.daemon = True
        self._thread.start()

    def watch(self, op: str, device) -> None:
        """Notes that ``op`` was just enqueued on ``device``'s current stream."""
        with self._lock:
            spare = self._spare.pop() if self._spare else None
        event = self.record(device, spare)
        with self._lock:
            self._pending.append((event, op, time.monotonic()))

    def raise_if_failed(self) -> None:
        """Raises the failure the watchdog found, if any."""
        if self.failure is not None:
            raise RuntimeError(self.failure)

    def close(self) -> None:
        """Stops the thread."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _oldest_late(self) -> str | None:
        with self._lock:
            while self._pending and self._pending[0][0].query():
                event = self._pending.popleft()[0]
                if len(self._spare) < SPARE_EVENTS:
                    self._spare.append(event)
            if not self._pending:
                return None
            _, op, start = self._pending[0]
        waited = time.monotonic() - start
        if waited <= self.timeout:
            return None
        return (
            f"{op} did not complete within the group's timeout of {self.timeout:g} s (a rank "
            "died or stopped calling collectives?)"
        )

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                reason = self._oldest_late()
                if reason is None:
                    self.comm.check()
            except RuntimeError as e:
                reason = f"NCCL reported an error: {e}"
            if reason is not None:
                self.failure = f"rank {self.rank}: {reason}; the communicator was aborted"
                self.comm.destroy(abort=True)
                return
