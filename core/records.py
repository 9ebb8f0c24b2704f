"""Command and event records: fixed-size, little-endian, one layout per kind.

A record is like a C union of structs: a common header, then a body whose layout depends on
``kind``. Each kind's layout is written out below with explicit byte offsets. The NumPy dtypes
``COMMAND`` and ``EVENT`` are the union of all layouts, so a whole batch is one array and the
kernel reads ``cmds[i].price`` directly. A field name means one thing everywhere; two kinds that
share a name share its offset and type (checked at import), and no field is ever reused for a
different meaning.

Command record, format version 1: 64 bytes
==========================================
Header (every kind): ``seq`` i8 @0 (sequence number, from the sequencer), ``ts`` i8 @8
(nanoseconds since the epoch, from the sequencer; the BLP never reads a clock), ``kind`` u1 @16.

=====================  =====================================================================
kind                   body fields (name type @offset)
=====================  =====================================================================
NEW_ORDER              side u1@17, order_type u1@18, time_in_force u1@19, account i4@20,
                       instrument i4@24, trail_ticks i4@28, client_order_id i8@32,
                       price i8@40, stop_price i8@48, quantity i8@56
CANCEL                 account i4@20, order_id i8@24, client_order_id i8@32
MODIFY                 account i4@20, order_id i8@24, client_order_id i8@32, price i8@40,
                       stop_price i8@48, quantity i8@56 (the new *total* quantity)
MASS_CANCEL            account i4@20, instrument i4@24 (-1: every instrument)
DEPOSIT_CASH           account i4@20, amount i8@40
WITHDRAW_CASH          account i4@20, amount i8@40
DEPOSIT_POSITION       account i4@20, instrument i4@24, amount i8@40 (cost basis of the units),
                       quantity i8@56
WITHDRAW_POSITION      account i4@20, instrument i4@24, quantity i8@56
SET_ACCOUNT_LIMITS     account i4@20, max_order_quantity i8@32, max_order_notional i8@40,
                       position_limit i8@48 (the account's default per instrument)
SET_POSITION_LIMIT     account i4@20, instrument i4@24, position_limit i8@48
ADD_INSTRUMENT         asset_class u1@17, collar_bps u2@18, maker_fee_bps i2@20,
                       taker_fee_bps i2@22, instrument i4@24, symbol S12@28, tick_size i8@40,
                       lot_size i8@48, reference_price i8@56
ADD_ACCOUNT            account_type u1@17, account i4@20
SET_ACCOUNT_STATUS     account_status u1@17, account i4@20
SET_INSTRUMENT_STATUS  instrument_status u1@17, instrument i4@24
END_OF_DAY             (header only)
=====================  =====================================================================

Event record, format version 1: 128 bytes
=========================================
Header: ``seq`` i8 @0 (the command that caused it), ``ts`` i8 @8 (that command's time),
``kind`` u1 @16. Every command produces at least one event, in order; one command's events
are contiguous.

See ``EVENT_LAYOUTS`` for every body; the names match the command fields they echo. Notable:
``TRADE`` carries both sides (order ids, accounts, fees, and each order's leaves after the
fill); ``BOOK_LEVEL`` is the new total quantity and order count of one price level after a
change (0 orders: the level is gone).
"""
from __future__ import annotations

import numpy as np

from .enums import CommandKind, EventKind

COMMAND_FORMAT_VERSION = 1
EVENT_FORMAT_VERSION = 1
COMMAND_SIZE = 64
EVENT_SIZE = 128

Layout = list[tuple[str, str, int]]

_HEADER: Layout = [("seq", "<i8", 0), ("ts", "<i8", 8), ("kind", "u1", 16)]

COMMAND_LAYOUTS: dict[CommandKind, Layout] = {
    CommandKind.NEW_ORDER: [
        ("side", "u1", 17), ("order_type", "u1", 18), ("time_in_force", "u1", 19),
        ("account", "<i4", 20), ("instrument", "<i4", 24), ("trail_ticks", "<i4", 28),
        ("client_order_id", "<i8", 32), ("price", "<i8", 40), ("stop_price", "<i8", 48),
        ("quantity", "<i8", 56)],
    CommandKind.CANCEL: [
        ("account", "<i4", 20), ("order_id", "<i8", 24), ("client_order_id", "<i8", 32)],
    CommandKind.MODIFY: [
        ("account", "<i4", 20), ("order_id", "<i8", 24), ("client_order_id", "<i8", 32),
        ("price", "<i8", 40), ("stop_price", "<i8", 48), ("quantity", "<i8", 56)],
    CommandKind.MASS_CANCEL: [("account", "<i4", 20), ("instrument", "<i4", 24)],
    CommandKind.DEPOSIT_CASH: [("account", "<i4", 20), ("amount", "<i8", 40)],
    CommandKind.WITHDRAW_CASH: [("account", "<i4", 20), ("amount", "<i8", 40)],
    CommandKind.DEPOSIT_POSITION: [
        ("account", "<i4", 20), ("instrument", "<i4", 24), ("amount", "<i8", 40),
        ("quantity", "<i8", 56)],
    CommandKind.WITHDRAW_POSITION: [
        ("account", "<i4", 20), ("instrument", "<i4", 24), ("quantity", "<i8", 56)],
    CommandKind.SET_ACCOUNT_LIMITS: [
        ("account", "<i4", 20), ("max_order_quantity", "<i8", 32),
        ("max_order_notional", "<i8", 40), ("position_limit", "<i8", 48)],
    CommandKind.SET_POSITION_LIMIT: [
        ("account", "<i4", 20), ("instrument", "<i4", 24), ("position_limit", "<i8", 48)],
    CommandKind.ADD_INSTRUMENT: [
        ("asset_class", "u1", 17), ("collar_bps", "<u2", 18), ("maker_fee_bps", "<i2", 20),
        ("taker_fee_bps", "<i2", 22), ("instrument", "<i4", 24), ("symbol", "S12", 28),
        ("tick_size", "<i8", 40), ("lot_size", "<i8", 48), ("reference_price", "<i8", 56)],
    CommandKind.ADD_ACCOUNT: [("account_type", "u1", 17), ("account", "<i4", 20)],
    CommandKind.SET_ACCOUNT_STATUS: [("account_status", "u1", 17), ("account", "<i4", 20)],
    CommandKind.SET_INSTRUMENT_STATUS: [
        ("instrument_status", "u1", 17), ("instrument", "<i4", 24)],
    CommandKind.END_OF_DAY: [],
}

_ORDER_IDS: Layout = [
    ("account", "<i4", 20), ("instrument", "<i4", 24), ("order_id", "<i8", 32),
    ("client_order_id", "<i8", 40)]

EVENT_LAYOUTS: dict[EventKind, Layout] = {
    EventKind.ORDER_ACCEPTED: _ORDER_IDS + [
        ("side", "u1", 17), ("order_type", "u1", 18), ("time_in_force", "u1", 19),
        ("trail_ticks", "<i4", 28), ("price", "<i8", 48), ("stop_price", "<i8", 56),
        ("quantity", "<i8", 64)],
    EventKind.REJECTED: _ORDER_IDS + [("command_kind", "u1", 17), ("code", "<i2", 18)],
    EventKind.TRADE: [
        ("aggressor_side", "u1", 17), ("maker_account", "<i4", 20), ("instrument", "<i4", 24),
        ("taker_account", "<i4", 28), ("trade_id", "<i8", 88), ("maker_order_id", "<i8", 32),
        ("taker_order_id", "<i8", 40), ("price", "<i8", 48), ("quantity", "<i8", 64),
        ("maker_leaves", "<i8", 96), ("taker_leaves", "<i8", 104), ("maker_fee", "<i8", 112),
        ("taker_fee", "<i8", 120)],
    EventKind.ORDER_CANCELLED: _ORDER_IDS + [
        ("code", "<i2", 18), ("leaves_quantity", "<i8", 72), ("cum_quantity", "<i8", 80)],
    EventKind.ORDER_REPLACED: _ORDER_IDS + [
        ("priority_kept", "u1", 17), ("price", "<i8", 48), ("stop_price", "<i8", 56),
        ("quantity", "<i8", 64), ("leaves_quantity", "<i8", 72), ("cum_quantity", "<i8", 80)],
    EventKind.ORDER_EXPIRED: _ORDER_IDS + [
        ("leaves_quantity", "<i8", 72), ("cum_quantity", "<i8", 80)],
    EventKind.STOP_TRIGGERED: _ORDER_IDS + [
        ("stop_price", "<i8", 56), ("last_price", "<i8", 88)],
    EventKind.BOOK_LEVEL: [
        ("side", "u1", 17), ("instrument", "<i4", 24), ("order_count", "<i4", 28),
        ("price", "<i8", 48), ("level_quantity", "<i8", 64)],
    EventKind.DUPLICATE_ORDER: _ORDER_IDS + [
        ("live", "u1", 17), ("code", "<i2", 18), ("leaves_quantity", "<i8", 72),
        ("cum_quantity", "<i8", 80)],
    EventKind.MASS_CANCELLED: [
        ("account", "<i4", 20), ("instrument", "<i4", 24), ("order_count", "<i4", 28)],
    EventKind.INSTRUMENT_ADDED: [
        ("asset_class", "u1", 17), ("collar_bps", "<u2", 18), ("maker_fee_bps", "<i2", 20),
        ("taker_fee_bps", "<i2", 22), ("instrument", "<i4", 24), ("symbol", "S12", 112),
        ("tick_size", "<i8", 32), ("lot_size", "<i8", 40), ("reference_price", "<i8", 56)],
    EventKind.ACCOUNT_ADDED: [("account_type", "u1", 17), ("account", "<i4", 20)],
    EventKind.CASH_MOVED: [
        ("account", "<i4", 20), ("amount", "<i8", 32), ("cash_balance", "<i8", 40)],
    EventKind.POSITION_MOVED: [
        ("account", "<i4", 20), ("instrument", "<i4", 24), ("amount", "<i8", 32),
        ("quantity", "<i8", 64), ("position_quantity", "<i8", 72)],
    EventKind.ACCOUNT_LIMITS_SET: [
        ("account", "<i4", 20), ("max_order_quantity", "<i8", 32),
        ("max_order_notional", "<i8", 40), ("position_limit", "<i8", 96)],
    EventKind.POSITION_LIMIT_SET: [
        ("account", "<i4", 20), ("instrument", "<i4", 24), ("position_limit", "<i8", 96)],
    EventKind.INSTRUMENT_STATUS_CHANGED: [
        ("instrument_status", "u1", 17), ("instrument", "<i4", 24)],
    EventKind.ACCOUNT_STATUS_CHANGED: [("account_status", "u1", 17), ("account", "<i4", 20)],
    EventKind.DAY_ENDED: [("order_count", "<i4", 28), ("day", "<i8", 32)],
}


def _union_dtype(layouts: dict, size: int, family: str) -> np.dtype:
    """Merge per-kind layouts into one union dtype, checking every rule stated above."""
    fields: dict[str, tuple[str, int]] = {}
    for kind, body in layouts.items():
        spans = []
        for name, fmt, offset in _HEADER + body:
            width = np.dtype(fmt).itemsize
            if offset % np.dtype(fmt).alignment or offset + width > size:
                raise AssertionError(f"{family} {kind.name}.{name}: misaligned or out of record")
            spans.append((offset, offset + width, name))
            if fields.setdefault(name, (fmt, offset)) != (fmt, offset):
                raise AssertionError(f"{family} field {name!r} has two layouts")
        spans.sort()
        for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
            if start < end:
                raise AssertionError(f"{family} {kind.name}: {a} overlaps {b}")
    names = list(fields)
    return np.dtype({"names": names, "formats": [fields[n][0] for n in names],
                     "offsets": [fields[n][1] for n in names], "itemsize": size})


def _kind_dtype(body: Layout, size: int) -> np.dtype:
    items = _HEADER + body
    return np.dtype({"names": [n for n, _, _ in items], "formats": [f for _, f, _ in items],
                     "offsets": [o for _, _, o in items], "itemsize": size})


COMMAND = _union_dtype(COMMAND_LAYOUTS, COMMAND_SIZE, "command")
EVENT = _union_dtype(EVENT_LAYOUTS, EVENT_SIZE, "event")

#: One dtype per kind, holding only that kind's fields: for documentation and for readers
#: that want to see exactly what a kind carries.
COMMAND_KIND_DTYPES = {k: _kind_dtype(v, COMMAND_SIZE) for k, v in COMMAND_LAYOUTS.items()}
EVENT_KIND_DTYPES = {k: _kind_dtype(v, EVENT_SIZE) for k, v in EVENT_LAYOUTS.items()}

EVENT_WORDS = EVENT_SIZE // 8


def join(parts, dtype: np.dtype) -> np.ndarray:
    """Concatenate record arrays of one dtype, keeping that dtype.

    (Not plain ``np.concatenate``: NumPy promotes these union dtypes to a packed layout.)"""
    return np.concatenate(list(parts), dtype=dtype) if parts else np.empty(0, dtype)


def command_fields(kind: CommandKind) -> tuple[str, ...]:
    """The body field names a command kind carries (header excluded)."""
    return tuple(name for name, _, _ in COMMAND_LAYOUTS[kind])


def event_fields(kind: EventKind) -> tuple[str, ...]:
    """The body field names an event kind carries (header excluded)."""
    return tuple(name for name, _, _ in EVENT_LAYOUTS[kind])


def event_as_dict(event: np.void) -> dict:
    """One event as a plain dict of its kind's fields (for logs, tests, audit output)."""
    kind = EventKind(int(event["kind"]))
    out = {"seq": int(event["seq"]), "ts": int(event["ts"]), "kind": kind.name}
    for name in event_fields(kind):
        value = event[name]
        out[name] = value.decode("ascii") if isinstance(value, bytes) else int(value)
    return out


def command_as_dict(command: np.void) -> dict:
    """One command as a plain dict of its kind's fields; unknown kinds show only the header."""
    raw_kind = int(command["kind"])
    out = {"seq": int(command["seq"]), "ts": int(command["ts"])}
    try:
        kind = CommandKind(raw_kind)
    except ValueError:
        out["kind"] = raw_kind
        return out
    out["kind"] = kind.name
    for name in command_fields(kind):
        value = command[name]
        out[name] = value.decode("ascii", "replace") if isinstance(value, bytes) else int(value)
    return out
