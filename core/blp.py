"""The business-logic processor: the numba kernel over preallocated arrays, behind a small API.

::

    blp = BusinessLogicProcessor(Capacities(instruments=8, accounts=100))
    events = blp.process(commands)      # COMMAND records in, EVENT records out
    blp.state_hash()                    # 32 bytes over the canonical logical state
    blp.check_integrity()               # raises IntegrityError listing every violation

Contract: ``process`` takes batches whose sequence numbers continue exactly where the last
batch ended (the first command of all is seq 1). A gap or a repeat is a bug upstream (a lost or
replayed command), never a business outcome, so it raises ``SequenceError`` and changes nothing.
The BLP is single-threaded and deterministic: its output depends only on the commands.
"""
from __future__ import annotations

import numpy as np

from .canonical import CanonicalState, check_invariants
from .config import Capacities
from .kernel import state as kernel_state
from .kernel.dispatch import process_batch
from .kernel.handle import kernel_handle
from .kernel.export import canonical_state
from .kernel.integrity import structural_problems
from .records import COMMAND, EVENT


class SequenceError(ValueError):
    """A batch does not continue the sequence: a command was lost or replayed upstream."""


class IntegrityError(AssertionError):
    """The state violates an invariant. ``problems`` lists each violation."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))
        self.problems = problems


class BusinessLogicProcessor:
    """The production BLP. Not thread-safe: one thread owns it."""

    def __init__(self, capacities: Capacities | None = None,
                 state: kernel_state.State | None = None) -> None:
        self.capacities = capacities or Capacities()
        self.state = state if state is not None else kernel_state.allocate(self.capacities)
        self._handle = kernel_handle(self.state)   # must not outlive self.state
        self._events = np.zeros(4096, EVENT)

    # ---------------------------------------------------------------- processing
    def process_view(self, commands: np.ndarray) -> np.ndarray:
        """Apply a batch; return its events as a view that is valid until the next call."""
        if commands.dtype != COMMAND:
            raise TypeError(f"commands must have the COMMAND dtype, not {commands.dtype}")
        if len(commands) == 0:
            return self._events[:0]
        seq = commands["seq"]
        expected = int(self.state.scalars[kernel_state.Sc.LAST_SEQ]) + 1
        if seq[0] != expected or (len(seq) > 1 and not np.all(np.diff(seq) == 1)):
            raise SequenceError(f"batch starts at seq {int(seq[0])} (expected {expected}) "
                                f"or is not contiguous")
        if not commands.flags.writeable or not commands.flags.c_contiguous:
            commands = np.ascontiguousarray(commands).copy()   # one compiled variant only
        events, n = process_batch(self._handle, commands, self._events)
        if events.ctypes.data != self._events.ctypes.data:
            # The kernel grew the buffer; numba's allocator owns it, and numba lists the
            # record's fields in its own order: same bytes, so view it as EVENT again.
            self._events = events.view(EVENT)
        return self._events[:n]

    def process(self, commands: np.ndarray) -> np.ndarray:
        """Apply a batch; return a copy of its events."""
        return self.process_view(commands).copy()

    @property
    def last_seq(self) -> int:
        """Sequence number of the last command applied (0 before any)."""
        return int(self.state.scalars[kernel_state.Sc.LAST_SEQ])

    # ---------------------------------------------------------------- state
    def canonical_state(self) -> CanonicalState:
        return canonical_state(self.state)

    def state_hash(self) -> bytes:
        return self.canonical_state().digest()

    def check_integrity(self) -> None:
        problems = structural_problems(self.state) + check_invariants(self.canonical_state())
        if problems:
            raise IntegrityError(problems)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every state array by dotted name: what a snapshot stores."""
        return kernel_state.state_arrays(self.state)

    @classmethod
    def from_arrays(cls, capacities: Capacities, arrays: dict[str, np.ndarray],
                    copy: bool = True) -> "BusinessLogicProcessor":
        """A BLP over a snapshot's arrays: copies by default; ``copy=False`` adopts them (they
        must be writeable and contiguous, and nothing else may use them afterwards)."""
        if copy:
            arrays = {name: np.array(a, copy=True) for name, a in arrays.items()}
        return cls(capacities, kernel_state.from_arrays(arrays))


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel, keeping that out of the first batch.

    Only one variant exists: ``process_view`` copies read-only command arrays (such as
    ``np.frombuffer`` over journal bytes), which numba would otherwise compile separately."""
    from .commands import add_account, stamp
    blp = BusinessLogicProcessor(Capacities(instruments=1, accounts=1, orders=2, positions=1,
                                            client_order_ids=1))
    blp.process(stamp(add_account(0), 1))
