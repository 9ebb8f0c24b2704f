"""Memory figures: bytes per resting order, and whether a large venue fits in 4 GiB.

``per_order_bytes`` splits the state by what each table's size follows, and divides by that
capacity: per resting order (the orders table and the order-id index), per price level (the
levels table and the book arena; ``Capacities.price_levels``, which defaults to the order
capacity but can be set on its own), and per client order id remembered for the day.

``allocate_large`` really allocates a state in a child process (so this process's memory stays
clean) and reads the child's RSS from ``/proc/self/status``: after ``allocate`` (NumPy zeroed
arrays are lazily mapped, so untouched pages cost nothing yet) and after writing one byte per
page of every array (what a fully used state would occupy).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from core.config import Capacities
from core.kernel import state as kernel_state

GIB = 1 << 30

#: What each table's size follows.
PER_ORDER = ("orders", "order_index")
PER_LEVEL = ("levels", "books.keys", "books.levels")
PER_CLIENT_ID = ("client_ids",)


def rss_kib() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB, from /proc/self/status."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0])
    return out


def table_bytes(state: kernel_state.State) -> dict[str, int]:
    """nbytes per table (``books.keys`` and ``books.levels``, the arena, listed apart)."""
    out: dict[str, int] = {}
    for name, array in kernel_state.state_arrays(state).items():
        table = name if name.startswith("books.") and name.split(".")[1] in ("keys", "levels") \
            else name.split(".")[0]
        out[table] = out.get(table, 0) + int(array.nbytes)
    return out


def per_order_bytes(capacities: Capacities) -> dict:
    state = kernel_state.allocate(capacities)
    tables = table_bytes(state)
    per_order = {name: tables[name] / capacities.orders for name in PER_ORDER}
    per_level = {name: tables[name] / capacities.levels for name in PER_LEVEL}
    return {"capacities": capacities.as_dict(), "levels": capacities.levels,
            "arena_slots": kernel_state.arena_size(capacities),
            "order_index_slots": int(state.order_index.meta[2]),
            "bytes_per_order": per_order, "per_resting_order": sum(per_order.values()),
            "bytes_per_level": per_level, "per_price_level": sum(per_level.values()),
            "per_client_order_id": tables["client_ids"] / capacities.client_order_ids,
            "all_in_per_order": (sum(tables[n] for n in PER_ORDER + PER_LEVEL)
                                 / capacities.orders)}


_CHILD = r"""
import json, sys, numpy as np
sys.path.insert(0, {root!r})
from bench.memory import rss_kib, table_bytes
from core.config import Capacities
from core.kernel import state as kernel_state
cap = Capacities(**json.loads(sys.argv[1]))
before = rss_kib()
st = kernel_state.allocate(cap)
after = rss_kib()
for a in kernel_state.state_arrays(st).values():     # one written byte per page
    v = a.reshape(-1).view(np.uint8)
    v[::4096] = v[::4096].copy()
touched = rss_kib()
tables = table_bytes(st)
print(json.dumps({{"tables": tables, "total_bytes": sum(tables.values()),
                  "rss_before_kib": before["VmRSS"], "rss_after_allocate_kib": after["VmRSS"],
                  "rss_after_touch_kib": touched["VmRSS"], "hwm_kib": touched["VmHWM"]}}))
"""


def allocate_large(capacities: Capacities) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(root=root),
                           json.dumps(capacities.as_dict())],
                          capture_output=True, text=True, cwd=root)
    if proc.returncode != 0:
        return {"capacities": capacities.as_dict(), "error": proc.stderr.strip()[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["capacities"] = capacities.as_dict()
    out["rss_increase_allocate_bytes"] = \
        (out["rss_after_allocate_kib"] - out["rss_before_kib"]) * 1024
    out["rss_increase_touched_bytes"] = (out["rss_after_touch_kib"] - out["rss_before_kib"]) * 1024
    out["fits_4gib"] = out["total_bytes"] <= 4 * GIB and \
        out["rss_increase_touched_bytes"] <= 4 * GIB
    return out


def fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,.0f} B"


if __name__ == "__main__":   # quick look: python -m bench.memory
    print(json.dumps(per_order_bytes(Capacities(orders=1 << 16)), indent=1))
