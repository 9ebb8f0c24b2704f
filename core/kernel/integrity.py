"""Structural invariants of the kernel's arrays (the canonical ones live in core.canonical).

Checks that every linked structure agrees with every other: book runs sorted and pointing at
their levels, level totals equal to their queues, queue links consistent both ways,
every live order reachable exactly once from a level or a stop list and from its account's
list, indexes consistent, free lists whole. (Queue order itself is compared through the
canonical state.) Plain Python: used by tests and after replays.
"""
from __future__ import annotations

import numpy as np

from ..enums import OrderPhase, OrderType
from .state import IN_STOP_LIST, Sc, State
from .tables import entries, pack


def structural_problems(st: State) -> list[str]:
    problems: list[str] = []
    orders, levels, books, sc = st.orders, st.levels, st.books, st.scalars
    live = set(int(o) for o in np.flatnonzero(orders.order_id))
    seen: dict[int, str] = {}

    if len(live) != sc[Sc.LIVE_ORDERS]:
        problems.append(f"live order rows {len(live)} != LIVE_ORDERS {sc[Sc.LIVE_ORDERS]}")
    index = {int(k): int(v) for k, v in entries(st.order_index)}
    if len(index) != len(live) or st.order_index.meta[0] != len(live):
        problems.append(f"order index holds {len(index)} ids for {len(live)} orders")
    for o in live:
        found = index.get(int(orders.order_id[o]))
        if found != o:
            problems.append(f"order id {orders.order_id[o]} indexes row {found}, not {o}")
    for account, client_id, outcome, row in entries(st.client_ids):
        if outcome > 0 and row >= 0 and orders.order_id[row] == outcome and \
                (orders.account[row], orders.client_order_id[row]) != (account, client_id):
            problems.append(f"client id ({account}, {client_id}) points at row {row} of "
                            f"another order")

    total_levels = 0
    for b in range(len(books.offset)):
        n, base = int(books.length[b]), int(books.offset[b])
        if n > books.capacity[b]:
            problems.append(f"book {b} run longer than its capacity")
        keys = books.keys[base:base + n]
        if n > 1 and not np.all(np.diff(keys) > 0):
            problems.append(f"book {b} run not strictly sorted")
        total_levels += n
        instrument, side = b >> 1, (b & 1) + 1
        for lv in books.levels[base:base + n]:
            lv = int(lv)
            key = levels.price[lv] if side == 1 else -levels.price[lv]
            if levels.book[lv] != b or key not in keys:
                problems.append(f"level {lv} does not belong to book {b}")
            o, prev, qty, count = int(levels.head[lv]), -1, 0, 0
            while o >= 0:
                where = f"level {lv}"
                if o in seen:
                    problems.append(f"order row {o} reached twice ({seen[o]}, {where})")
                    break
                seen[o] = where
                if orders.level[o] != lv or orders.prev[o] != prev:
                    problems.append(f"order row {o} links disagree with {where}")
                if (orders.instrument[o], orders.side[o], orders.price[o]) != \
                        (instrument, side, levels.price[lv]):
                    problems.append(f"order row {o} in the wrong level {lv}")
                if orders.phase[o] != OrderPhase.RESTING:
                    problems.append(f"order row {o} in {where} is not resting")
                qty += int(orders.leaves[o])
                count += 1
                prev, o = o, int(orders.next[o])
            if levels.tail[lv] != prev or qty != levels.quantity[lv] or \
                    count != levels.count[lv] or count == 0:
                problems.append(f"level {lv} totals/tail disagree with its queue")
    if total_levels != sc[Sc.LEVELS_USED]:
        problems.append(f"{total_levels} levels in books != LEVELS_USED {sc[Sc.LEVELS_USED]}")

    inst = st.instruments
    for i in np.flatnonzero(inst.exists):
        o, prev, trailing = int(inst.stop_head[i]), -1, 0
        while o >= 0:
            if o in seen:
                problems.append(f"order row {o} reached twice (stop list {i})")
                break
            seen[o] = f"stop list {i}"
            if orders.level[o] != IN_STOP_LIST or orders.prev[o] != prev or \
                    orders.instrument[o] != i or orders.phase[o] != OrderPhase.DORMANT:
                problems.append(f"order row {o} wrong in stop list {i}")
            trailing += orders.order_type[o] == OrderType.TRAILING_STOP
            prev, o = o, int(orders.next[o])
        if inst.stop_tail[i] != prev or inst.trailing_stops[i] != trailing:
            problems.append(f"stop list {i} tail or trailing count wrong")
    if set(seen) != live:
        problems.append(f"orders not reachable from any book or stop list: {live - set(seen)}")

    acc = st.accounts
    reached = 0
    for a in np.flatnonzero(acc.exists):
        o, prev, last_id = int(acc.order_head[a]), -1, 0
        while o >= 0:
            reached += 1
            if orders.account[o] != a or orders.account_prev[o] != prev or \
                    orders.order_id[o] <= last_id:
                problems.append(f"account {a} order list broken at row {o}")
                break
            last_id = int(orders.order_id[o])
            prev, o = o, int(orders.account_next[o])
        if acc.order_tail[a] != prev:
            problems.append(f"account {a} order list tail wrong")
    if reached != len(live):
        problems.append(f"account lists reach {reached} orders, {len(live)} are live")

    free, o = 0, int(sc[Sc.ORDER_FREE])
    while o >= 0 and free <= len(orders.order_id):
        free += 1
        o = int(orders.next[o])
    if free + len(live) != len(orders.order_id):
        problems.append(f"order free list {free} + live {len(live)} != capacity")

    used = int(sc[Sc.POSITIONS_USED])
    pos = st.positions
    position_rows = {int(k): int(v) for k, v in entries(st.position_index)}
    for p in range(used):
        if position_rows.get(pack(int(pos.account[p]), int(pos.instrument[p]))) != p:
            problems.append(f"position row {p} not indexed")
    for o in live:
        p = int(orders.position[o])
        if (pos.account[p], pos.instrument[p]) != (orders.account[o], orders.instrument[o]):
            problems.append(f"order row {o} points at the wrong position row {p}")
    return problems
