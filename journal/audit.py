"""Audit trails from the journal: the whole life of an order, an account's activity.

Both replay the journal from its first command (events are derived, never stored, so this is
how they are recovered exactly) and keep, batch by batch, the commands and events that concern
the subject, each with its sequence number and time. Rows are plain dicts ready for JSON lines
or CSV (``write_jsonl`` / ``write_csv``).
"""
from __future__ import annotations

import csv
import json
from typing import IO, Iterator

import numpy as np

from core.blp import BusinessLogicProcessor
from core.enums import CommandKind as K
from core.enums import EventKind as E
from core.records import command_as_dict, event_as_dict

from .base import Journal
from .recovery import journal_capacities

#: Event kinds that name one order in ``order_id``.
_ORDER_EVENTS = [E.ORDER_ACCEPTED, E.ORDER_CANCELLED, E.ORDER_REPLACED, E.ORDER_EXPIRED,
                 E.STOP_TRIGGERED]
#: Event kinds that concern an account in ``account``.
_ACCOUNT_EVENTS = [E.ORDER_ACCEPTED, E.REJECTED, E.ORDER_CANCELLED, E.ORDER_REPLACED,
                   E.ORDER_EXPIRED, E.STOP_TRIGGERED, E.DUPLICATE_ORDER, E.CASH_MOVED,
                   E.POSITION_MOVED, E.ACCOUNT_ADDED, E.ACCOUNT_LIMITS_SET,
                   E.POSITION_LIMIT_SET, E.ACCOUNT_STATUS_CHANGED, E.MASS_CANCELLED]
_ACCOUNT_COMMANDS = [K.NEW_ORDER, K.CANCEL, K.MODIFY, K.MASS_CANCEL, K.DEPOSIT_CASH,
                     K.WITHDRAW_CASH, K.DEPOSIT_POSITION, K.WITHDRAW_POSITION,
                     K.SET_ACCOUNT_LIMITS, K.SET_POSITION_LIMIT, K.ADD_ACCOUNT,
                     K.SET_ACCOUNT_STATUS]


def _rows(kind: str, records: np.ndarray, describe) -> list[dict]:
    return [{"type": kind, **describe(r)} for r in records]


def _replay(journal: Journal) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(commands, events) of each batch, in order, from the first command."""
    blp = BusinessLogicProcessor(journal_capacities(journal))
    for batch in journal.batches():
        commands = batch.commands
        yield commands, blp.process_view(commands)


def order_history(journal: Journal, *, order_id: int | None = None,
                  account: int | None = None, client_order_id: int | None = None) -> list[dict]:
    """Every command and event of one order, named by order id, or by account and client
    order id: its entry (and any re-sends of it), cancels and modifies, its trades on either
    side, cancellation, replacement, expiry and stop trigger. An order named by id learns its
    account and client order id from its own acceptance (any others given are not used)."""
    if order_id is None and (account is None or client_order_id is None):
        raise ValueError("name the order by order_id, or by account and client_order_id")
    if order_id is not None:
        account = client_order_id = None
    nothing = -2        # an id no record carries: matches nothing until the real one is known
    rows: list[dict] = []
    for commands, events in _replay(journal):
        accepted = events[events["kind"] == E.ORDER_ACCEPTED]
        if order_id is None:
            mine = accepted[(accepted["account"] == account) &
                            (accepted["client_order_id"] == client_order_id)]
            if len(mine):
                order_id = int(mine["order_id"][0])
        elif account is None:
            mine = accepted[accepted["order_id"] == order_id]
            if len(mine):
                account = int(mine["account"][0])
                client_order_id = int(mine["client_order_id"][0])
        oid = nothing if order_id is None else order_id
        acct = nothing if account is None else account
        cid = nothing if client_order_id is None else client_order_id

        kind = commands["kind"]
        by_client = (commands["account"] == acct) & (commands["client_order_id"] == cid)
        entry = (kind == K.NEW_ORDER) & by_client
        reference = ((kind == K.CANCEL) | (kind == K.MODIFY)) & (
            (commands["order_id"] == oid) | (by_client & (commands["order_id"] == 0)))
        rows += _rows("command", commands[entry | reference], command_as_dict)

        ek = events["kind"]
        mine = (np.isin(ek, _ORDER_EVENTS) & (events["order_id"] == oid)) | \
            ((ek == E.TRADE) & ((events["maker_order_id"] == oid) |
                                (events["taker_order_id"] == oid))) | \
            (np.isin(ek, [E.REJECTED, E.DUPLICATE_ORDER]) & (events["account"] == acct) &
             (events["client_order_id"] == cid))
        rows += _rows("event", events[mine], event_as_dict)
    rows.sort(key=lambda r: (r["seq"], r["type"] != "command"))
    return rows


def account_activity(journal: Journal, account: int, *, since_ns: int = 0,
                     until_ns: int = 2**63 - 1) -> list[dict]:
    """An account's commands, and its orders, trades, cash and holdings movements, between
    two times (nanoseconds since the epoch, inclusive)."""
    rows: list[dict] = []
    for commands, events in _replay(journal):
        when = (commands["ts"] >= since_ns) & (commands["ts"] <= until_ns)
        mine = when & np.isin(commands["kind"], _ACCOUNT_COMMANDS) & \
            (commands["account"] == account)
        rows += _rows("command", commands[mine], command_as_dict)
        when = (events["ts"] >= since_ns) & (events["ts"] <= until_ns)
        ek = events["kind"]
        concerns = (np.isin(ek, _ACCOUNT_EVENTS) & (events["account"] == account)) | \
            ((ek == E.TRADE) & ((events["maker_account"] == account) |
                                (events["taker_account"] == account)))
        rows += _rows("event", events[when & concerns], event_as_dict)
    rows.sort(key=lambda r: (r["seq"], r["type"] != "command"))
    return rows


def write_jsonl(rows: list[dict], out: IO[str]) -> None:
    for row in rows:
        out.write(json.dumps(row) + "\n")


def write_csv(rows: list[dict], out: IO[str]) -> None:
    """One CSV with the union of all rows' columns (empty where a row has none)."""
    columns: dict[str, None] = {"type": None, "seq": None, "ts": None, "kind": None}
    for row in rows:
        columns.update(dict.fromkeys(row))
    writer = csv.DictWriter(out, fieldnames=list(columns), restval="")
    writer.writeheader()
    writer.writerows(rows)
