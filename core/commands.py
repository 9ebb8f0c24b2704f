"""Builders for command records, and ``stamp`` to play the sequencer in tests and tools.

Each builder returns a one-record ``COMMAND`` array with ``seq`` and ``ts`` left at 0; the
sequencer (or ``stamp``) assigns them. Builders take keyword arguments named exactly as the
record's fields (see ``core.records``) and check nothing beyond what NumPy's integer types
enforce: validation is the gateway's and the BLP's job.
"""
from __future__ import annotations

import numpy as np

from .enums import AccountType, AssetClass, CommandKind, InstrumentStatus, OrderType, \
    TimeInForce, AccountStatus
from .integers import NO_ID
from .records import COMMAND


def _record(kind: CommandKind, **fields) -> np.ndarray:
    out = np.zeros(1, COMMAND)
    out["kind"] = kind
    for name, value in fields.items():
        out[name] = value
    return out


def new_order(account: int, instrument: int, side: int, quantity: int, price: int = 0, *,
              client_order_id: int, order_type: int = OrderType.LIMIT,
              time_in_force: int = TimeInForce.GTC, stop_price: int = 0,
              trail_ticks: int = 0) -> np.ndarray:
    return _record(CommandKind.NEW_ORDER, account=account, instrument=instrument, side=side,
                   quantity=quantity, price=price, client_order_id=client_order_id,
                   order_type=order_type, time_in_force=time_in_force, stop_price=stop_price,
                   trail_ticks=trail_ticks)


def cancel(account: int, order_id: int = 0, client_order_id: int = 0) -> np.ndarray:
    """Cancel by engine order id, or (order_id=0) by the client order id it was entered with."""
    return _record(CommandKind.CANCEL, account=account, order_id=order_id,
                   client_order_id=client_order_id)


def modify(account: int, order_id: int = 0, *, quantity: int, price: int = 0,
           stop_price: int = 0, client_order_id: int = 0) -> np.ndarray:
    """Replace an order: ``quantity`` is the new *total* (filled + open), as in FIX."""
    return _record(CommandKind.MODIFY, account=account, order_id=order_id,
                   client_order_id=client_order_id, quantity=quantity, price=price,
                   stop_price=stop_price)


def mass_cancel(account: int, instrument: int = NO_ID) -> np.ndarray:
    return _record(CommandKind.MASS_CANCEL, account=account, instrument=instrument)


def deposit_cash(account: int, amount: int) -> np.ndarray:
    return _record(CommandKind.DEPOSIT_CASH, account=account, amount=amount)


def withdraw_cash(account: int, amount: int) -> np.ndarray:
    return _record(CommandKind.WITHDRAW_CASH, account=account, amount=amount)


def deposit_position(account: int, instrument: int, quantity: int,
                     cost_basis: int = 0) -> np.ndarray:
    return _record(CommandKind.DEPOSIT_POSITION, account=account, instrument=instrument,
                   quantity=quantity, amount=cost_basis)


def withdraw_position(account: int, instrument: int, quantity: int) -> np.ndarray:
    return _record(CommandKind.WITHDRAW_POSITION, account=account, instrument=instrument,
                   quantity=quantity)


def set_account_limits(account: int, *, max_order_quantity: int, max_order_notional: int,
                       position_limit: int) -> np.ndarray:
    return _record(CommandKind.SET_ACCOUNT_LIMITS, account=account,
                   max_order_quantity=max_order_quantity,
                   max_order_notional=max_order_notional, position_limit=position_limit)


def set_position_limit(account: int, instrument: int, position_limit: int) -> np.ndarray:
    return _record(CommandKind.SET_POSITION_LIMIT, account=account, instrument=instrument,
                   position_limit=position_limit)


def add_instrument(instrument: int, symbol: str | bytes, *, tick_size: int, lot_size: int,
                   reference_price: int, collar_bps: int = 1000,
                   asset_class: int = AssetClass.EQUITY, maker_fee_bps: int = 0,
                   taker_fee_bps: int = 0) -> np.ndarray:
    raw = symbol.encode("ascii") if isinstance(symbol, str) else symbol
    return _record(CommandKind.ADD_INSTRUMENT, instrument=instrument, symbol=raw,
                   tick_size=tick_size, lot_size=lot_size, reference_price=reference_price,
                   collar_bps=collar_bps, asset_class=asset_class,
                   maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps)


def add_account(account: int, account_type: int = AccountType.CASH) -> np.ndarray:
    return _record(CommandKind.ADD_ACCOUNT, account=account, account_type=account_type)


def set_account_status(account: int, status: int = AccountStatus.SUSPENDED) -> np.ndarray:
    return _record(CommandKind.SET_ACCOUNT_STATUS, account=account, account_status=status)


def halt(instrument: int) -> np.ndarray:
    return _record(CommandKind.SET_INSTRUMENT_STATUS, instrument=instrument,
                   instrument_status=InstrumentStatus.HALTED)


def resume(instrument: int) -> np.ndarray:
    return _record(CommandKind.SET_INSTRUMENT_STATUS, instrument=instrument,
                   instrument_status=InstrumentStatus.TRADING)


def end_of_day() -> np.ndarray:
    return _record(CommandKind.END_OF_DAY)


def batch(*records: np.ndarray) -> np.ndarray:
    """Concatenate one-record arrays (or batches) into one batch.

    (Not ``np.concatenate``: NumPy promotes overlapping-field dtypes to a packed layout.)"""
    out = np.zeros(sum(len(r) for r in records), COMMAND)
    at = 0
    for r in records:
        out[at:at + len(r)] = r
        at += len(r)
    return out


def stamp(commands: np.ndarray, first_seq: int, ts: int = 0, ts_step: int = 1) -> np.ndarray:
    """Assign contiguous sequence numbers and increasing timestamps, as the sequencer does."""
    commands["seq"] = np.arange(first_seq, first_seq + len(commands), dtype=np.int64)
    commands["ts"] = ts + ts_step * np.arange(len(commands), dtype=np.int64)
    return commands
