"""Talking to a node's control port: one msgpack request, one msgpack reply.

Kept apart from ``replication.node`` so that tools like ``ringex failover`` start in a tenth of
a second: they need ZeroMQ and msgpack, not the engine.
"""
from __future__ import annotations

import msgpack
import zmq


def best_primary(statuses) -> dict | None:
    """Of nodes' ``status`` replies (None for a node that did not answer), the one to send
    commands to: an accepting primary with the highest epoch; None when there is none."""
    best = None
    for status in statuses:
        if status and status.get("role") == "primary" and status.get("accepting") and \
                isinstance(status.get("endpoints"), dict) and \
                (best is None or status.get("epoch", 0) > best.get("epoch", 0)):
            best = status
    return best


def control_request(endpoint: str, request: dict, timeout_ms: int = 5_000) -> dict:
    """Send one control request to a node and return its reply (raises TimeoutError)."""
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        socket.send(msgpack.packb(request))
        if not socket.poll(timeout_ms):
            raise TimeoutError(f"no answer from {endpoint}")
        return msgpack.unpackb(socket.recv(), raw=False)
    finally:
        socket.close(0)
