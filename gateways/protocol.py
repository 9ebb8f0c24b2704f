"""The order-entry wire protocol, version 1: framing, message shapes, encode and decode.

Written down for client authors in ``docs/protocol.md``; this module is its executable form.
Every message is ONE ZeroMQ frame holding ONE msgpack map with a version ``v`` (1) and a
``type``. A ``batch`` frame carries many requests (client to gateway, ``requests``) or many
messages (gateway to client, ``messages``) in one map.

``decode_frames`` turns what a client sent into ``Request`` objects whose fields have been
checked for presence, type and unknown names, and ``Rejection`` objects for what failed; it
never raises, whatever the bytes. Business ranges (price on tick, quantity on lot, ...) are
``gateways.validation``'s job. Nothing here recurses into client data or formats it, so deep
nesting and huge values cost nothing beyond msgpack's own limits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import msgpack

from .codes import GatewayCode as G
from .codes import describe

VERSION = 1
MAX_FRAME_BYTES = 1 << 20       #: larger frames close the connection (ZMQ_MAXMSGSIZE)
MAX_BATCH = 4096                #: requests in one batch frame
MAX_STRING = 256                #: characters in any string field
MAX_REQ = 2**63 - 1             #: ``req`` is a client-chosen integer in 0..MAX_REQ
MAX_MAP = 64                    #: entries in any map

INT, STR, BOOL = "int", "str", "bool"

#: Each request type: {field: type}, and the fields it requires. Every request may also carry
#: ``v`` (required at the top of a frame), ``type`` (required) and ``req``.
REQUESTS: dict[str, tuple[dict[str, str], frozenset[str]]] = {
    "logon": ({"key": STR, "heartbeat_ms": INT, "cancel_on_disconnect": BOOL},
              frozenset({"key"})),
    "logout": ({}, frozenset()),
    "heartbeat": ({}, frozenset()),
    "new_order": ({"account": INT, "symbol": STR, "side": STR, "order_type": STR,
                   "time_in_force": STR, "quantity": INT, "price": INT, "stop_price": INT,
                   "trail_ticks": INT, "client_order_id": INT},
                  frozenset({"symbol", "side", "quantity", "client_order_id"})),
    "cancel": ({"account": INT, "order_id": INT, "client_order_id": INT}, frozenset()),
    "modify": ({"account": INT, "order_id": INT, "client_order_id": INT, "quantity": INT,
                "price": INT, "stop_price": INT}, frozenset({"quantity"})),
    "mass_cancel": ({"account": INT, "symbol": STR}, frozenset()),
    "order_status": ({"account": INT, "order_id": INT, "client_order_id": INT}, frozenset()),
}
ENVELOPE = frozenset({"v", "type", "req"})


@dataclass(slots=True)
class Request:
    """A request whose fields are present, of the right types and all known."""
    type: str
    req: int | None
    body: dict


@dataclass(slots=True)
class Rejection:
    """A refusal to send back: ``message()`` is the ``reject`` map."""
    code: int
    detail: str = ""
    req: int | None = None
    request_type: str | None = None
    client_order_id: int | None = None

    def message(self) -> dict:
        reason, text = describe(self.code)
        out = {"type": "reject", "code": int(self.code), "reason": reason,
               "text": f"{text}: {self.detail}" if self.detail else text}
        if self.req is not None:
            out["req"] = self.req
        if self.request_type is not None:
            out["request_type"] = self.request_type
        if self.client_order_id is not None:
            out["client_order_id"] = self.client_order_id
        return out


Decoded = Union[Request, Rejection]


def is_int(value) -> bool:
    """msgpack integers arrive as ``int``; ``True``/``False`` are booleans, not integers."""
    return type(value) is int


def _unpack(frame: bytes):
    return msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True,
                           max_str_len=MAX_FRAME_BYTES, max_bin_len=MAX_FRAME_BYTES,
                           max_array_len=MAX_BATCH, max_map_len=MAX_MAP, max_ext_len=0)


def decode_frames(frames: list[bytes]) -> list[Decoded]:
    """What one client message asked for: one item per request, in order. Never raises."""
    if len(frames) != 1:
        return [Rejection(G.MALFORMED, f"a message is one frame, not {len(frames)}")]
    frame = frames[0]
    if len(frame) > MAX_FRAME_BYTES:
        return [Rejection(G.TOO_LARGE, f"a frame holds at most {MAX_FRAME_BYTES} bytes")]
    try:
        message = _unpack(frame)
    except ValueError as e:          # every msgpack decode error, UnicodeDecodeError included
        if "max_array_len" in str(e) or "max_map_len" in str(e):
            return [Rejection(G.TOO_LARGE, f"a batch holds at most {MAX_BATCH} requests and "
                                           f"a map at most {MAX_MAP} fields")]
        return [Rejection(G.MALFORMED, "not msgpack")]
    except Exception:                # msgpack's StackError (deep nesting) and the like
        return [Rejection(G.MALFORMED, "not msgpack, or nested too deeply")]
    if not isinstance(message, dict):
        return [Rejection(G.MALFORMED, "a message is a msgpack map")]
    if message.get("type") == "batch":
        return _decode_batch(message)
    return [_decode_one(message, top=True)]


def _decode_batch(message: dict) -> list[Decoded]:
    req, bad = _read_req(message)
    if bad is not None:
        return [bad]
    version = _check_version(message, top=True, req=req)
    if version is not None:
        return [version]
    unknown = sorted(str(k) for k in message if k not in ("v", "type", "req", "requests"))
    if unknown:
        return [Rejection(G.UNKNOWN_FIELD, f"batch has no field {unknown[0][:40]!r}", req,
                          "batch")]
    requests = message.get("requests")
    if requests is None:
        return [Rejection(G.MISSING_FIELD, "batch needs 'requests'", req, "batch")]
    if not isinstance(requests, list):
        return [Rejection(G.WRONG_TYPE, "'requests' is an array of maps", req, "batch")]
    if not requests:
        return [Rejection(G.OUT_OF_RANGE, "a batch holds at least one request", req, "batch")]
    out = []
    for item in requests:
        if not isinstance(item, dict):
            out.append(Rejection(G.MALFORMED, "each request in a batch is a map"))
        else:
            out.append(_decode_one(item, top=False))
    return out


def _read_req(message: dict) -> tuple[int | None, Rejection | None]:
    if "req" not in message:
        return None, None
    req = message["req"]
    if not is_int(req):
        return None, Rejection(G.WRONG_TYPE, "'req' is an integer")
    if not 0 <= req <= MAX_REQ:
        return None, Rejection(G.OUT_OF_RANGE, f"'req' is in 0..{MAX_REQ}")
    return req, None


def _check_version(message: dict, *, top: bool, req: int | None) -> Rejection | None:
    if "v" not in message:
        return Rejection(G.MISSING_FIELD, "'v' (the protocol version) is required", req) \
            if top else None
    version = message["v"]
    if not is_int(version):
        return Rejection(G.WRONG_TYPE, "'v' is an integer", req)
    if version != VERSION:
        return Rejection(G.UNSUPPORTED_VERSION, f"got v {version}", req)
    return None


def _decode_one(message: dict, *, top: bool) -> Decoded:
    req, bad = _read_req(message)
    if bad is not None:
        return bad
    version = _check_version(message, top=top, req=req)
    if version is not None:
        return version
    kind = message.get("type")
    if kind is None:
        return Rejection(G.MISSING_FIELD, "'type' is required", req)
    if type(kind) is not str:
        return Rejection(G.WRONG_TYPE, "'type' is a string", req)
    if kind == "batch":
        return Rejection(G.UNKNOWN_TYPE, "batch frames do not nest", req)
    schema = REQUESTS.get(kind)
    if schema is None:
        return Rejection(G.UNKNOWN_TYPE, f"no request type {kind[:40]!r}", req)
    fields, required = schema
    clordid = message.get("client_order_id")
    echo = clordid if is_int(clordid) and 0 <= clordid <= MAX_REQ else None
    for name in message:
        if name in ENVELOPE:
            continue
        expected = fields.get(name)
        if expected is None:
            return Rejection(G.UNKNOWN_FIELD, f"{kind} has no field {str(name)[:40]!r}", req,
                             kind, echo)
        value = message[name]
        if expected == INT:
            ok = type(value) is int
        elif expected == STR:
            ok = type(value) is str
            if ok and len(value) > MAX_STRING:
                return Rejection(G.OUT_OF_RANGE, f"{name} is longer than {MAX_STRING}", req,
                                 kind, echo)
        else:
            ok = type(value) is bool
        if not ok:
            article = "an" if expected == INT else "a"
            return Rejection(G.WRONG_TYPE, f"{name} is {article} {expected}", req, kind, echo)
    for name in required:
        if name not in message:
            return Rejection(G.MISSING_FIELD, f"{kind} needs {name}", req, kind, echo)
    return Request(kind, req, message)


def encode(messages: list[dict]) -> bytes:
    """One frame for a client: the message itself, or a batch of them. Each map needs no
    ``v``: it is added to the frame's top map."""
    if len(messages) == 1:
        return msgpack.packb({"v": VERSION, **messages[0]})
    return msgpack.packb({"v": VERSION, "type": "batch", "messages": messages})


def decode_incoming(frame: bytes) -> list[dict]:
    """The messages of one frame from a gateway (a batch is flattened). Raises ValueError on a
    frame that is not a version-1 message: that would be a gateway bug or the wrong server."""
    try:
        message = msgpack.unpackb(frame, raw=False)
    except Exception as e:
        raise ValueError(f"undecodable frame from the gateway: {e}") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise ValueError("the gateway sent something that is not a v1 message")
    if message.get("type") == "batch":
        messages = message.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("a batch from the gateway without its messages")
        return messages
    return [message]
