"""The journal's batch record: format version 1, and the hash chain that links batches.

A batch is what the sequencer made durable in one commit: contiguous commands, each already
stamped with its sequence number and timestamp (they live in the 64-byte command records, see
``core.records``). Little-endian throughout::

    offset  size  field
    0       4     magic b"RXJB"
    4       2     format version (1)
    6       2     command record size (64)
    8       8     epoch              the leadership term that wrote it (replication)
    16      8     first_seq          sequence number of the first command
    24      4     count              number of commands (>= 1)
    28      4     reserved (0)
    32      32    prev_hash          hash of the previous batch (32 zero bytes for the first)
    64      32    hash               blake2b-256 of bytes [0, 64) followed by the commands
    96      64*n  commands           COMMAND records, seq = first_seq + i

In the journal a batch is stored under the big-endian ``first_seq``, so a key-ordered scan is
replay order. Any change to history changes a hash: to an edited batch's own (detected when it
is read) or, if its hash was recomputed too, to the next batch's ``prev_hash``.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from core.records import COMMAND, COMMAND_SIZE

MAGIC = b"RXJB"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHHqqII32s")          # everything before ``hash``
HASH_AT = HEADER.size                             # 64
COMMANDS_AT = HASH_AT + 32                        # 96
GENESIS_HASH = bytes(32)


class JournalError(Exception):
    """The journal cannot be used: I/O failure, wrong format, missing directory, full map."""


class ChainError(JournalError):
    """History is damaged: ``seq`` is the first sequence number that cannot be trusted."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"journal damaged at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def batch_key(first_seq: int) -> bytes:
    return first_seq.to_bytes(8, "big")


@dataclass(frozen=True)
class Batch:
    """One decoded batch. ``commands`` is a read-only view into ``raw``."""
    epoch: int
    first_seq: int
    count: int
    prev_hash: bytes
    hash: bytes
    raw: bytes

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1

    @property
    def commands(self) -> np.ndarray:
        return np.frombuffer(self.raw, COMMAND, self.count, COMMANDS_AT)


def _digest(head: bytes, commands: bytes | memoryview) -> bytes:
    h = hashlib.blake2b(head, digest_size=32)
    h.update(commands)
    return h.digest()


def encode(epoch: int, commands: np.ndarray, prev_hash: bytes) -> Batch:
    """A new batch record for stamped ``commands`` (seq contiguous from the first)."""
    if commands.dtype != COMMAND or len(commands) == 0:
        raise ValueError("a batch holds one or more COMMAND records")
    first = int(commands["seq"][0])
    if not np.array_equal(commands["seq"], np.arange(first, first + len(commands))):
        raise ValueError("a batch's sequence numbers must be contiguous")
    head = HEADER.pack(MAGIC, FORMAT_VERSION, COMMAND_SIZE, epoch, first, len(commands), 0,
                       prev_hash)
    body = np.ascontiguousarray(commands).tobytes()
    digest = _digest(head, body)
    return Batch(epoch, first, len(commands), prev_hash, digest, head + digest + body)


def decode(raw: bytes, expect_seq: int | None = None) -> Batch:
    """Decode and verify one stored batch. Raises ``ChainError`` naming the batch's first
    sequence number (or ``expect_seq``, the key it was stored under) on any damage."""
    at = expect_seq if expect_seq is not None else -1
    if len(raw) < COMMANDS_AT:
        raise ChainError(at, f"record truncated to {len(raw)} bytes")
    magic, version, size, epoch, first, count, _, prev = HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ChainError(at, "not a ringex journal batch (bad magic)")
    if version != FORMAT_VERSION:
        raise ChainError(at, f"batch format version {version}, this build reads "
                             f"{FORMAT_VERSION}")
    if size != COMMAND_SIZE:
        raise ChainError(at, f"command record size {size}, expected {COMMAND_SIZE}")
    if expect_seq is not None and first != expect_seq:
        raise ChainError(at, f"stored under seq {expect_seq} but says it starts at {first}")
    if count < 1 or len(raw) != COMMANDS_AT + count * COMMAND_SIZE:
        raise ChainError(first, f"length {len(raw)} does not hold {count} commands")
    view = memoryview(raw)
    if _digest(view[:HASH_AT], view[COMMANDS_AT:]) != raw[HASH_AT:COMMANDS_AT]:
        raise ChainError(first, "batch hash does not match its contents")
    batch = Batch(epoch, first, count, prev, raw[HASH_AT:COMMANDS_AT], raw)
    seqs = batch.commands["seq"]
    if seqs[0] != first or seqs[-1] != first + count - 1 or \
            (count > 1 and not np.all(np.diff(seqs) == 1)):
        raise ChainError(first, "command sequence numbers are not contiguous")
    return batch


def check_link(previous: Batch | None, batch: Batch) -> None:
    """Raise ``ChainError`` unless ``batch`` directly follows ``previous`` (None: genesis)."""
    if previous is None:
        if batch.first_seq != 1 or batch.prev_hash != GENESIS_HASH:
            raise ChainError(batch.first_seq, "the first batch must start at seq 1 "
                                              "with a zero previous hash")
        return
    if batch.first_seq != previous.last_seq + 1:
        raise ChainError(batch.first_seq, f"expected seq {previous.last_seq + 1} next")
    if batch.prev_hash != previous.hash:
        raise ChainError(batch.first_seq, "previous-hash link broken")
    if batch.epoch < previous.epoch:
        raise ChainError(batch.first_seq, f"epoch went back from {previous.epoch} to "
                                          f"{batch.epoch}")
