"""Messages between the workers of a run: non-blocking sends, draining, the final sync.

Workers never wait for each other while they search: every message (a flat float64 array, see
``messages``) goes out with a non-blocking send, and a worker takes in whatever has arrived
whenever it is about to breed. Only at the end do the workers agree on how many messages each
sent to each other and receive all of them, so that every worker of an island ends with the
same population. A run of one worker has nobody to talk to: ``NoTransport`` does nothing.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from shared_hpc.mpi import Comm

PROBE_MISSES = 3  # probes in a row that find nothing before a drain ends

Handler = Callable[[int, np.ndarray], None]


def idle(since: float) -> None:
    """Wait politely: yield the core at first (fast hand-over when ranks share cores), then
    sleep, so a worker waiting minutes for a slow peer's last candidate burns no energy.

    Args:
        since: ``time.monotonic()`` when the wait began.
    """
    if time.monotonic() - since < 0.05:
        os.sched_yield()
    else:
        time.sleep(0.002)


class Transport:
    """Non-blocking point-to-point messages among the workers' roots of a run (mpi4py).

    Args:
        comm: Communicator of the workers' roots (a duplicate, so that its messages never meet
            the user's).
        handle: Called with ``(tag, data)`` for every message received.

    Attributes:
        sent_to: Messages sent to each worker so far.
        received: Messages received so far.
    """

    def __init__(self, comm: Comm, handle: Handler) -> None:
        from mpi4py import MPI

        self.comm: Any = comm  # an mpi4py communicator: Isend and Improbe are not in Comm
        self.handle = handle
        self.sent_to = np.zeros(comm.Get_size(), dtype=np.int64)
        self.received = 0
        self._requests: deque[tuple[Any, np.ndarray]] = deque()
        self._mpi = MPI
        self._status = MPI.Status()

    def send(self, worker: int, tag: int, data: np.ndarray) -> None:
        """Start sending ``data`` (float64) to ``worker``; it completes in the background.

        Args:
            worker: Index of the receiving worker.
            tag: What the message is (``messages.TAG_*``).
            data: The message; it must not change until the send completes.
        """
        request = self.comm.Isend([data, self._mpi.DOUBLE], dest=worker, tag=tag)
        self._requests.append((request, data))  # the buffer must live until the send completes
        self.sent_to[worker] += 1

    def test_sends(self) -> None:
        """Forget completed sends, oldest first (they complete roughly in order)."""
        requests = self._requests
        while requests and requests[0][0].Test():
            requests.popleft()

    def drain(self, block_until: int | None = None) -> None:
        """Receive every message that has arrived (or, blocking, until ``block_until``).

        One unsuccessful probe does not mean that nothing is there: some MPI libraries (MPICH
        with UCX, for one) advance one message per progress call, so a single miss left
        messages waiting for ~100 ms. Only a few misses in a row end the drain.

        Args:
            block_until: Wait until this many messages have been received in all.
        """
        comm, status, mpi, handle = self.comm, self._status, self._mpi, self.handle
        waiting_since = time.monotonic()
        misses = 0
        while True:
            message = comm.Improbe(source=mpi.ANY_SOURCE, tag=mpi.ANY_TAG, status=status)
            if message is None:
                misses += 1
                if misses < PROBE_MISSES:
                    continue
                if block_until is None or self.received >= block_until:
                    return
                idle(waiting_since)
                continue
            misses = 0
            data = np.empty(status.Get_count(mpi.DOUBLE))
            message.Recv([data, mpi.DOUBLE])  # the probed message itself: no second matching
            self.received += 1
            handle(status.Get_tag(), data)

    def final_sync(self, replies_possible: bool) -> None:
        """Receive every message sent to this worker, then complete every send (collective).

        Args:
            replies_possible: Whether a received message can make this worker send more
                (immigrants replace individuals on islands): then count again until no worker
                sent anything new.
        """
        mpi, comm = self._mpi, self.comm
        while True:
            sent = self.sent_to.copy()
            incoming = np.zeros_like(sent)
            request = comm.Ialltoall([sent, mpi.INT64_T], [incoming, mpi.INT64_T])
            waiting_since = time.monotonic()
            while not request.Test():
                self.drain()
                self.test_sends()
                idle(waiting_since)  # leave the CPU to workers still evaluating
            self.drain(block_until=int(incoming.sum()))
            # one island has no immigrants, and its workers need not agree on that
            if not replies_possible:
                break
            if comm.allreduce(int(self.sent_to.sum() != sent.sum())) == 0:
                break
        mpi.Request.Waitall([r for r, _ in self._requests])
        self._requests.clear()


class NoTransport:
    """The transport of a run with one worker: nothing to send, nothing to receive."""

    def send(self, worker: int, tag: int, data: np.ndarray) -> None:
        """Refuse: a single worker has no peers (a defect if ever called).

        Args:
            worker: Index of the receiving worker.
            tag: What the message is.
            data: The message.
        """
        raise RuntimeError(f"a run with one worker cannot send to worker {worker}")

    def test_sends(self) -> None:
        """Nothing was sent."""

    def drain(self, block_until: int | None = None) -> None:
        """Nothing arrives.

        Args:
            block_until: Ignored: nothing is ever sent to a single worker.
        """

    def final_sync(self, replies_possible: bool) -> None:
        """Nobody to wait for.

        Args:
            replies_possible: Ignored.
        """
