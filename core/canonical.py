"""The canonical form of the BLP's logical state, its hash, and the invariants over it.

Two implementations (the numba kernel and the reference model) hold the same *logical* state in
very different structures. Both export it into the tables below: packed NumPy structured arrays,
rows in a fixed order, no padding, so equal logical states give equal bytes and therefore equal
``state_hash`` values, independent of batch boundaries or of how memory was laid out.

Queue order is part of the state: every live order carries ``priority``, its position in its
queue (0 = first): in its price level's FIFO queue when resting, in its instrument's stop list
when dormant.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .enums import AccountType, OrderPhase, Side
from .integers import BPS, MAX_CASH

CANONICAL_VERSION = 1


def _packed(*items: tuple[str, str]) -> np.dtype:
    return np.dtype(list(items), align=False)


HEADER = _packed(
    ("last_seq", "<i8"), ("next_order_id", "<i8"), ("next_trade_id", "<i8"),
    ("day", "<i8"), ("fee_income", "<i8"),
    ("cash_deposited", "<i8"), ("cash_withdrawn", "<i8"))

INSTRUMENT = _packed(
    ("instrument", "<i4"), ("symbol", "S12"), ("asset_class", "u1"), ("status", "u1"),
    ("collar_bps", "<i4"), ("maker_fee_bps", "<i4"), ("taker_fee_bps", "<i4"),
    ("tick_size", "<i8"), ("lot_size", "<i8"), ("reference_price", "<i8"),
    ("last_price", "<i8"), ("units_deposited", "<i8"))

ACCOUNT = _packed(
    ("account", "<i4"), ("account_type", "u1"), ("status", "u1"), ("cash", "<i8"),
    ("reserved", "<i8"), ("max_order_quantity", "<i8"), ("max_order_notional", "<i8"),
    ("position_limit", "<i8"))

POSITION = _packed(
    ("account", "<i4"), ("instrument", "<i4"), ("quantity", "<i8"), ("cost_basis", "<i8"),
    ("realized_pnl", "<i8"), ("open_buy", "<i8"), ("open_sell", "<i8"), ("fees_paid", "<i8"),
    ("position_limit", "<i8"))

ORDER = _packed(
    ("order_id", "<i8"), ("client_order_id", "<i8"), ("account", "<i4"), ("instrument", "<i4"),
    ("side", "u1"), ("order_type", "u1"), ("time_in_force", "u1"), ("phase", "u1"),
    ("price", "<i8"), ("stop_price", "<i8"), ("trail_ticks", "<i4"), ("reserve_price", "<i8"),
    ("leaves", "<i8"), ("cum", "<i8"), ("priority", "<i8"))

CLIENT_ORDER_ID = _packed(
    ("account", "<i4"), ("client_order_id", "<i8"), ("outcome", "<i8"))
"""``outcome`` > 0 is the order id it created; < 0 is minus the rejection code."""


@dataclass
class CanonicalState:
    """The logical state, table by table, each sorted by its key (orders by order id)."""
    header: np.ndarray       # one row of HEADER
    instruments: np.ndarray  # INSTRUMENT, by instrument id
    accounts: np.ndarray     # ACCOUNT, by account id
    positions: np.ndarray    # POSITION, by (account, instrument)
    orders: np.ndarray       # ORDER, by order id
    client_order_ids: np.ndarray  # CLIENT_ORDER_ID, by (account, client_order_id)

    TABLES = ("header", "instruments", "accounts", "positions", "orders", "client_order_ids")

    def digest(self) -> bytes:
        """blake2b-256 over the version and every table's name, row count and bytes."""
        h = hashlib.blake2b(digest_size=32)
        h.update(b"ringex-state-v%d" % CANONICAL_VERSION)
        for name in self.TABLES:
            table = np.ascontiguousarray(getattr(self, name))
            h.update(name.encode() + len(table).to_bytes(8, "little"))
            h.update(table.tobytes())
        return h.digest()

    def equals(self, other: "CanonicalState") -> bool:
        return all(np.array_equal(getattr(self, n), getattr(other, n)) for n in self.TABLES)


def buy_reservation(reserve_price: int, quantity: int, max_fee_bps: int) -> int:
    """Plain-Python twin of the kernel's reservation rule (see ``core.integers``)."""
    notional = reserve_price * quantity
    return notional + notional * max_fee_bps // BPS


def check_invariants(state: CanonicalState) -> list[str]:
    """The invariants of DESIGN.md section 3 over a canonical state. Returns the violations.

    * money: total account cash plus fee income equals net deposits; no cash is negative;
      reserved cash is covered by cash and equals what the open buy orders need;
    * units: for every instrument the positions sum to the units deposited; open order
      quantities on each position equal the leaves of its open orders; cash accounts are
      never short;
    * books: no crossed book at rest; no dormant stop whose trigger condition already holds;
    * identity: every live order is reachable through its (account, client order id).
    """
    problems: list[str] = []
    header = state.header[0]
    inst = {int(r["instrument"]): r for r in state.instruments}
    accounts = {int(r["account"]): r for r in state.accounts}

    cash_total = int(state.accounts["cash"].sum(dtype=object)) + int(header["fee_income"])
    net = int(header["cash_deposited"]) - int(header["cash_withdrawn"])
    if cash_total != net:
        problems.append(f"cash not conserved: accounts+fees={cash_total}, net deposits={net}")
    if net > MAX_CASH:
        problems.append(f"venue cash {net} above MAX_CASH")

    need_cash: dict[int, int] = {}
    need_units: dict[tuple[int, int], list[int]] = {}
    for o in state.orders:
        a, i = int(o["account"]), int(o["instrument"])
        side = int(o["side"])
        slot = need_units.setdefault((a, i), [0, 0])
        slot[0 if side == Side.BUY else 1] += int(o["leaves"])
        if side == Side.BUY:
            fee = max(int(inst[i]["maker_fee_bps"]), int(inst[i]["taker_fee_bps"]))
            need_cash[a] = need_cash.get(a, 0) + buy_reservation(
                int(o["reserve_price"]), int(o["leaves"]), fee)
        if int(o["leaves"]) <= 0:
            problems.append(f"live order {int(o['order_id'])} has leaves {int(o['leaves'])}")

    for a, row in accounts.items():
        cash, reserved = int(row["cash"]), int(row["reserved"])
        if cash < 0:
            problems.append(f"account {a} cash {cash} < 0")
        if reserved > cash:
            problems.append(f"account {a} reserved {reserved} > cash {cash}")
        if reserved != need_cash.get(a, 0):
            problems.append(
                f"account {a} reserved {reserved} != open buys need {need_cash.get(a, 0)}")

    units: dict[int, int] = {}
    for p in state.positions:
        a, i = int(p["account"]), int(p["instrument"])
        units[i] = units.get(i, 0) + int(p["quantity"])
        want = need_units.pop((a, i), [0, 0])
        if [int(p["open_buy"]), int(p["open_sell"])] != want:
            problems.append(f"position {a}/{i} open qty {int(p['open_buy'])}/"
                            f"{int(p['open_sell'])} != orders {want[0]}/{want[1]}")
        if accounts[a]["account_type"] == AccountType.CASH and int(p["quantity"]) < 0:
            problems.append(f"cash account {a} is short {int(p['quantity'])} of {i}")
    for key in need_units:
        problems.append(f"orders of {key} have no position row")
    for i, row in inst.items():
        if units.get(i, 0) != int(row["units_deposited"]):
            problems.append(f"instrument {i} units {units.get(i, 0)} != deposited "
                            f"{int(row['units_deposited'])}")

    resting = state.orders[state.orders["phase"] == OrderPhase.RESTING]
    dormant = state.orders[state.orders["phase"] == OrderPhase.DORMANT]
    for i, row in inst.items():
        mine = resting[resting["instrument"] == i]
        bids = mine[mine["side"] == Side.BUY]["price"]
        asks = mine[mine["side"] == Side.SELL]["price"]
        if len(bids) and len(asks) and bids.max() >= asks.min():
            problems.append(f"instrument {i} book crossed: bid {bids.max()} >= ask {asks.min()}")
        market = int(row["last_price"]) or int(row["reference_price"])
        for o in dormant[dormant["instrument"] == i]:
            stop = int(o["stop_price"])
            if (market >= stop) if o["side"] == Side.BUY else (market <= stop):
                problems.append(f"dormant stop {int(o['order_id'])} at {stop} should have "
                                f"triggered at {market}")

    ids = {(int(r["account"]), int(r["client_order_id"])): int(r["outcome"])
           for r in state.client_order_ids}
    for o in state.orders:
        key = (int(o["account"]), int(o["client_order_id"]))
        if ids.get(key) != int(o["order_id"]):
            problems.append(f"live order {int(o['order_id'])} not reachable by client id {key}")
    return problems
