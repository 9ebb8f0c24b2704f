"""The market-data and drop-copy wire format, version 1 (``docs/market-data.md`` is the
prose version of this module; the two must agree).

Streams (ZeroMQ PUB, two frames: topic, msgpack body)::

    market data   topic "<SYMBOL> <channel>"   channel: quote, trades, depth, candles
                  topic " heartbeat"           (leading space: no symbol can be empty)
    drop copy     topic "dropcopy"
                  topic " heartbeat"

Every body is a msgpack array of exactly seven elements::

    [version, kind, session, topic_seq, seq, ts, payload]

``session`` identifies one run of the service's state (it changes when the service restarts or
rebuilds from the engine): numbers from different sessions are unrelated. ``topic_seq`` counts
the messages of one topic from 1 within a session, so a subscriber sees a gap as a jump;
``seq``/``ts`` are the engine sequence number and engine time of the last event the message
reflects. Snapshot requests and replies (a ROUTER) are msgpack maps.

Symbols are printable ASCII without spaces (the engine refuses others), which is what makes the
topics unambiguous under ZeroMQ's prefix matching: ``"ACME "`` matches every channel of ACME and
nothing of ACMEX.
"""
from __future__ import annotations

from enum import IntEnum
from operator import itemgetter

import msgpack
import numpy as np

from core.enums import CommandKind, EventKind, Side
from core.records import EVENT

VERSION = 1

CHANNELS = ("quote", "trades", "depth", "candles")   #: also the order of heartbeat arrays
QUOTE, TRADES, DEPTH, CANDLES = range(4)             #: channel indexes
HEARTBEAT_TOPIC = b" heartbeat"
DROP_COPY_TOPIC = b"dropcopy"
MAX_REPORTS_PER_MESSAGE = 4096
MAX_REQUEST_BYTES = 4096


class MsgKind(IntEnum):
    """Element 1 of every body: what the payload is."""
    QUOTE = 1
    TRADES = 2
    DEPTH = 3
    CANDLES = 4
    HEARTBEAT = 5
    DROP_COPY = 6
    DROP_COPY_HEARTBEAT = 7


CHANNEL_KIND = (MsgKind.QUOTE, MsgKind.TRADES, MsgKind.DEPTH, MsgKind.CANDLES)


class WireError(ValueError):
    """A message that is not a well-formed version-1 market-data message."""


def topic(symbol: str, channel: int | str) -> bytes:
    """The topic frame of a symbol's channel (an index into CHANNELS or its name)."""
    name = CHANNELS[channel] if isinstance(channel, int) else channel
    if name not in CHANNELS:
        raise ValueError(f"unknown channel {name!r}; channels are {', '.join(CHANNELS)}")
    return f"{symbol} {name}".encode("ascii")


def split_topic(frame: bytes) -> tuple[str, int]:
    """(symbol, channel index) of a market-data topic frame; raises WireError."""
    try:
        symbol, name = frame.decode("ascii").split(" ")
        return symbol, CHANNELS.index(name)
    except (UnicodeDecodeError, ValueError):
        raise WireError(f"not a market-data topic: {frame[:40]!r}") from None


_pack = msgpack.Packer(use_bin_type=True).pack


def encode(topic_frame: bytes, kind: int, session: int, topic_seq: int, seq: int, ts: int,
           payload) -> list[bytes]:
    """The two frames of one message."""
    return [topic_frame, _pack([VERSION, int(kind), session, topic_seq, seq, ts, payload])]


def decode(frames: list[bytes]) -> tuple[bytes, MsgKind, int, int, int, int, object]:
    """(topic, kind, session, topic_seq, seq, ts, payload) of a message; raises WireError on
    anything but a well-formed version-1 message (the payload's shape is checked by whoever
    reads it)."""
    if len(frames) != 2:
        raise WireError(f"a message is two frames, not {len(frames)}")
    try:
        body = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise WireError(f"body is not msgpack: {e}") from None
    if not isinstance(body, list) or len(body) < 7:
        raise WireError("a body is an array of 7 elements")
    version, kind, session, topic_seq, seq, ts, payload = body[:7]
    if version != VERSION:
        raise WireError(f"unsupported version {version!r}")
    try:
        kind = MsgKind(kind)
    except ValueError:
        raise WireError(f"unknown message kind {kind!r}") from None
    for name, value in (("session", session), ("topic_seq", topic_seq), ("seq", seq),
                        ("ts", ts)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireError(f"{name} must be an integer")
    return frames[0], kind, session, topic_seq, seq, ts, payload


# ---------------------------------------------------------------- payloads
def quote_payload(top, last_price: int | None, status: int) -> list:
    """QUOTE: ``[bid, bid_size, ask, ask_size, last_price, status]``; a missing price is nil."""
    return [top.bid, top.bid_size, top.ask, top.ask_size, last_price, status]


def trade_row(trade) -> tuple[int, ...]:
    """One TRADES element: ``[trade_id, price, quantity, aggressor_side, seq, ts]``."""
    return (trade.trade_id, trade.price, trade.quantity, trade.aggressor_side, trade.seq,
            trade.ts)


def candle_row(candle) -> list:
    """One CANDLES element: ``[interval, start, open, high, low, close, volume, trades,
    closed]`` (interval and start in ns of engine time, closed a bool)."""
    return [candle.interval, candle.start, candle.open, candle.high, candle.low, candle.close,
            candle.volume, candle.trades, candle.closed]


# ---------------------------------------------------------------- drop copy
class ReportKind(IntEnum):
    """Drop-copy report kinds: the engine event kinds they come from (LOST is ours)."""
    LOST = 0
    ACCEPTED = int(EventKind.ORDER_ACCEPTED)
    REJECTED = int(EventKind.REJECTED)
    FILL = int(EventKind.TRADE)
    CANCELLED = int(EventKind.ORDER_CANCELLED)
    REPLACED = int(EventKind.ORDER_REPLACED)
    EXPIRED = int(EventKind.ORDER_EXPIRED)
    STOP_TRIGGERED = int(EventKind.STOP_TRIGGERED)
    DUPLICATE = int(EventKind.DUPLICATE_ORDER)
    MASS_CANCELLED = int(EventKind.MASS_CANCELLED)


#: Every report but LOST is ``[kind, seq, ts, account, instrument, order_id, *fields]``, the
#: fields named here; LOST is ``[0, first_lost_seq, last_lost_seq]``.
REPORT_FIELDS: dict[ReportKind, tuple[str, ...]] = {
    ReportKind.ACCEPTED: ("client_order_id", "side", "order_type", "time_in_force", "price",
                          "stop_price", "quantity", "trail_ticks"),
    ReportKind.REJECTED: ("client_order_id", "command_kind", "code"),
    ReportKind.FILL: ("side", "price", "quantity", "leaves", "fee", "liquidity", "trade_id"),
    ReportKind.CANCELLED: ("client_order_id", "code", "leaves", "cum"),
    ReportKind.REPLACED: ("client_order_id", "price", "stop_price", "quantity", "leaves", "cum",
                          "priority_kept"),
    ReportKind.EXPIRED: ("client_order_id", "leaves", "cum"),
    ReportKind.STOP_TRIGGERED: ("client_order_id", "stop_price", "last_price"),
    ReportKind.DUPLICATE: ("client_order_id", "live", "code", "leaves", "cum"),
    ReportKind.MASS_CANCELLED: ("order_count",),
}
REPORT_HEADER = ("kind", "seq", "ts", "account", "instrument", "order_id")
MAKER, TAKER = 1, 2           #: FILL ``liquidity``

#: where each report field comes from in the EVENT record (when its name differs)
_SOURCE = {"leaves": "leaves_quantity", "cum": "cum_quantity"}
_ORDER_COMMAND = np.zeros(256, bool)            #: command kinds whose rejections are reported
_ORDER_COMMAND[[CommandKind.NEW_ORDER, CommandKind.CANCEL, CommandKind.MODIFY,
                CommandKind.MASS_CANCEL]] = True
_REPORTED = np.zeros(256, bool)                 #: event kinds that make reports
_REPORTED[[k for k in ReportKind if k != ReportKind.LOST]] = True

_AT = {name: i for i, name in enumerate(EVENT.names)}    #: field -> index in a record tuple
#: for each report kind but FILL: what to take from the record tuple, in REPORT_FIELDS order
_TAKE = {int(kind): itemgetter(*[_AT[_SOURCE.get(name, name)] for name in fields])
         for kind, fields in REPORT_FIELDS.items() if kind != ReportKind.FILL}


def execution_reports(events: np.ndarray) -> list[tuple]:
    """The drop-copy reports of a batch of engine events, in event order: one per order event,
    two per TRADE (maker first, then taker), none for non-order events or for the rejections
    of non-order commands (deposits, admin). Each report is a tuple (an array on the wire;
    tuples of ints are not tracked by Python's garbage collector, which matters for the
    service's replay ring)."""
    keep = _REPORTED[events["kind"]]
    rejected = events["kind"] == EventKind.REJECTED
    if rejected.any():
        keep &= ~rejected | _ORDER_COMMAND[events["command_kind"]]
    mine = events[keep]
    if len(mine) == 0:
        return []
    k_kind, k_seq, k_ts, k_acc, k_ins, k_oid = (_AT[name] for name in REPORT_HEADER)
    fill = int(ReportKind.FILL)
    mass = int(ReportKind.MASS_CANCELLED)
    take = _TAKE
    out = []
    for row in mine.tolist():
        kind = row[k_kind]
        if kind == fill:
            out.extend(_fills(row))
            continue
        fields = take[kind](row)
        head = (kind, row[k_seq], row[k_ts], row[k_acc], row[k_ins],
                None if kind == mass else row[k_oid])
        out.append(head + fields if isinstance(fields, tuple) else head + (fields,))
    return out


_F = {name: _AT[name] for name in (
    "seq", "ts", "instrument", "price", "quantity", "trade_id", "aggressor_side",
    "maker_account", "maker_order_id", "maker_leaves", "maker_fee", "taker_account",
    "taker_order_id", "taker_leaves", "taker_fee")}


def _fills(row: tuple) -> tuple[tuple, tuple]:
    f = _F
    aggressor = row[f["aggressor_side"]]
    maker_side = int(Side.SELL) if aggressor == Side.BUY else int(Side.BUY)
    head = (int(ReportKind.FILL), row[f["seq"]], row[f["ts"]])
    price, quantity, instrument = row[f["price"]], row[f["quantity"]], row[f["instrument"]]
    trade_id = row[f["trade_id"]]
    return (head + (row[f["maker_account"]], instrument, row[f["maker_order_id"]], maker_side,
                    price, quantity, row[f["maker_leaves"]], row[f["maker_fee"]], MAKER,
                    trade_id),
            head + (row[f["taker_account"]], instrument, row[f["taker_order_id"]], aggressor,
                    price, quantity, row[f["taker_leaves"]], row[f["taker_fee"]], TAKER,
                    trade_id))


def lost_report(first_seq: int, last_seq: int) -> tuple[int, int, int]:
    """LOST: the engine events of seqs ``first_seq..last_seq`` have no reports (the service
    rebuilt from the engine's state and cannot replay them)."""
    return int(ReportKind.LOST), first_seq, last_seq
