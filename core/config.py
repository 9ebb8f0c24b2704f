"""Capacities of the BLP's preallocated tables.

Every table is allocated once, at start, from these numbers; nothing grows during trading. A full
table is a business outcome with its own result code (5xx), never a crash. Both the kernel and
the reference model honour the same capacities, so they refuse the same commands.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Capacities:
    instruments: int = 256          #: instrument ids are 0 .. instruments-1
    accounts: int = 4096            #: account ids are 0 .. accounts-1
    orders: int = 1 << 17           #: live orders (resting, dormant stops, and the one matching)
    positions: int = 1 << 17        #: (account, instrument) pairs ever used
    client_order_ids: int = 1 << 19  #: client order ids remembered per trading day
    price_levels: int = 0           #: non-empty price levels over all books; 0 = as many as orders

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"capacity {f.name} must be a non-negative int, got {value!r}")
            if value == 0 and f.name != "price_levels":
                raise ValueError(f"capacity {f.name} must be positive")
            if value >= 2**31:
                raise ValueError(f"capacity {f.name} must be below 2**31, got {value}")

    @property
    def levels(self) -> int:
        """The effective price-level capacity."""
        return self.price_levels or self.orders

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Capacities":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown capacities: {sorted(unknown)}")
        return cls(**values)
