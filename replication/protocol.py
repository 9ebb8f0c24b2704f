"""The replication link between a primary and its standby. Protocol version 1.

Transport: ZeroMQ. The primary binds a ROUTER on its replication endpoint; the standby connects
a DEALER. Every message is one msgpack map (frame 1), plus the raw batch record (frame 2) for
``batch``. Every map carries ``t`` (its type) and ``epoch`` (the sender's epoch).

standby -> primary
  ``hello``      {node, last_seq, last_hash}: on connecting, and again until welcomed
  ``ack``        {seq}: everything through ``seq`` is in the standby's journal, fsynced
  ``hb``         {seq, applied}: heartbeat (journaled and applied sequence numbers)
  ``diverged``   {seq, ours, theirs}: the standby's state hash differs from the primary's

primary -> standby
  ``welcome``    {node, keep_seq, keep_hash}: keep your journal through ``keep_seq`` (whose
                 batch must hash to ``keep_hash``), drop anything after it (a tail that was
                 never replicated), and expect batches from ``keep_seq + 1`` on
  ``refuse``     {reason}: the standby's history cannot be reconciled; it must be rebuilt
  ``batch``      {live} + the batch record (``journal.format``), in sequence order; ``live``
                 is false while the standby is still catching up from the primary's journal
  ``checkpoint`` {seq, hash}: the primary's state hash after applying ``seq``
  ``hb``         {seq, live}: heartbeat (the primary's last seq; is the standby live?)

Epochs: a message with a higher epoch than the receiver's tells it a promotion happened; a
primary that hears of one fences itself (``replication.roles``).
"""
from __future__ import annotations

import msgpack

VERSION = 1

HELLO, ACK, HEARTBEAT, DIVERGED = "hello", "ack", "hb", "diverged"
WELCOME, REFUSE, BATCH, CHECKPOINT = "welcome", "refuse", "batch", "checkpoint"

_FIELDS = {
    HELLO: ("node", "last_seq", "last_hash"),
    ACK: ("seq",),
    HEARTBEAT: ("seq",),
    DIVERGED: ("seq", "ours", "theirs"),
    WELCOME: ("node", "keep_seq", "keep_hash"),
    REFUSE: ("reason",),
    BATCH: ("live",),
    CHECKPOINT: ("seq", "hash"),
}


class ProtocolError(ValueError):
    """A malformed replication message (logged and dropped by the receiver)."""


def encode(kind: str, epoch: int, raw: bytes | None = None, **fields) -> list[bytes]:
    frames = [msgpack.packb({"t": kind, "v": VERSION, "epoch": epoch, **fields})]
    if raw is not None:
        frames.append(raw)
    return frames


def decode(frames: list[bytes]) -> tuple[dict, bytes | None]:
    """(message map, raw record or None); raises ProtocolError on anything malformed."""
    if not 1 <= len(frames) <= 2:
        raise ProtocolError(f"{len(frames)} frames")
    try:
        message = msgpack.unpackb(frames[0], raw=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise ProtocolError(f"undecodable header: {e}") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise ProtocolError("not a version-1 replication message")
    kind = message.get("t")
    if kind not in _FIELDS or not isinstance(message.get("epoch"), int) or \
            any(name not in message for name in _FIELDS[kind]):
        raise ProtocolError(f"bad {kind!r} message")
    if (kind == BATCH) != (len(frames) == 2):
        raise ProtocolError("only a batch carries a record")
    return message, frames[1] if len(frames) == 2 else None
