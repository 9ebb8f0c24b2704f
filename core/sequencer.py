"""The sequencer: one total order for commands from any number of producers.

Commands arrive from producers (gateways, admin tools) in requests of one or more validated
COMMAND records. The sequencer

* stamps each command with the time it arrived, never earlier than any command before it
  (a clock that steps back cannot make time run backwards in the journal);
* gathers arrivals into a batch, cut when it holds ``max_batch`` commands or its oldest command
  has waited ``max_delay_ns`` (natural batching: under load, batches fill up while the previous
  one is being made durable);
* assigns contiguous sequence numbers to the batch when it is cut.

It remembers which request each command came from, so the pipeline can route each
command's events back. It does no I/O and is not thread-safe.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np

from .records import COMMAND


@dataclass(frozen=True)
class Request:
    """Where commands of a batch came from: ``count`` commands from ``offset`` on."""
    producer: Hashable
    request_id: int
    offset: int
    count: int


@dataclass(frozen=True)
class Cut:
    """A sequenced batch and the requests it holds, in order."""
    commands: np.ndarray
    requests: tuple[Request, ...]

    @property
    def first_seq(self) -> int:
        return int(self.commands["seq"][0])

    @property
    def last_seq(self) -> int:
        return int(self.commands["seq"][-1])


class Sequencer:
    def __init__(self, next_seq: int = 1, last_ts: int = 0, *, max_batch: int = 4096,
                 max_delay_ns: int = 200_000,
                 clock: Callable[[], int] = time.time_ns,
                 monotonic: Callable[[], int] | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.next_seq = next_seq
        self.last_ts = last_ts
        self.max_batch = max_batch
        self.max_delay_ns = max_delay_ns
        self.clock = clock
        #: How long a batch has waited is measured on this clock, never on the stamps, which
        #: stand still while the wall clock is behind the journal's last stamp.
        self.monotonic = monotonic or (clock if clock is not time.time_ns else time.monotonic_ns)
        self._buffer = np.zeros(max_batch, COMMAND)
        self._pending = 0
        self._requests: list[Request] = []
        self._oldest_ns = 0

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def room(self) -> int:
        """How many more commands the next batch can take."""
        return self.max_batch - self._pending

    def offer(self, producer: Hashable, request_id: int, commands: np.ndarray) -> None:
        """Accept one request's commands (at most ``room`` of them) into the next batch."""
        n = len(commands)
        if commands.dtype != COMMAND:
            raise TypeError("commands must be COMMAND records")
        if n == 0 or n > self.room:
            raise ValueError(f"a request of {n} commands does not fit (room {self.room})")
        now = max(self.clock(), self.last_ts)
        if self._pending == 0:
            self._oldest_ns = self.monotonic()
        at = self._pending
        self._buffer[at:at + n] = commands
        self._buffer["ts"][at:at + n] = now
        self.last_ts = now
        self._requests.append(Request(producer, request_id, at, n))
        self._pending = at + n

    def due(self) -> bool:
        """Should the pending commands be cut into a batch now?"""
        return self._pending > 0 and (self._pending >= self.max_batch or
                                      self.monotonic() - self._oldest_ns >= self.max_delay_ns)

    def wait_ns(self) -> int | None:
        """How long until the pending commands are due (None when nothing is pending)."""
        if self._pending == 0:
            return None
        return max(0, self._oldest_ns + self.max_delay_ns - self.monotonic())

    def cut(self) -> Cut:
        """Sequence the pending commands into a batch (a copy) and start a new one."""
        n = self._pending
        batch = self._buffer[:n].copy()
        batch["seq"] = np.arange(self.next_seq, self.next_seq + n, dtype=np.int64)
        self.next_seq += n
        requests = tuple(self._requests)
        self._pending = 0
        self._requests = []
        return Cut(batch, requests)
