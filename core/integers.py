"""The integer rules of the BLP: units, hard bounds, and the exact arithmetic helpers.

Units
-----
* **price**: an integer count of the money minor unit per unit of quantity (with a minor unit of
  1/10,000 USD, $91.14 is 911400, as in the LOBSTER files). It must be a multiple of the
  instrument's ``tick_size`` (its price increment).
* **quantity**: an integer count of units (shares, contracts, bond units); a multiple of the
  instrument's ``lot_size``.
* **money**: an integer count of the minor unit. Notional = price x quantity.

Bounds (why these numbers)
--------------------------
The bounds are chosen so that no accepted command can ever overflow a signed 64-bit value anywhere
in the state, so the numba kernel (wrapping int64) and the reference model (unbounded Python ints)
can never disagree:

* a notional is at most ``MAX_PRICE * MAX_QUANTITY`` < 2**62;
* a position is at most ``MAX_POSITION`` units including all open orders, so a cost basis is
  below 2**62 as well;
* the venue's total cash is at most ``MAX_CASH`` = 2**60, and cash accounts never go negative;
* fees are at most ``MAX_FEE_BPS`` (10 %), so notional plus fee stays below 2**63.

No float ever enters ``core/``.
"""
from .kernel.jit import entry

MAX_PRICE = 2**32 - 1
MAX_QUANTITY = 2**30 - 1
MAX_POSITION = 2**30 - 1
MAX_NOTIONAL = MAX_PRICE * MAX_QUANTITY
MAX_CASH = 2**60
MAX_TRAIL_TICKS = 2**20
MAX_FEE_BPS = 1_000
MAX_COLLAR_BPS = 10_000
BPS = 10_000

NO_ID = -1   #: "no instrument" / "no account" in events and in MASS_CANCEL (all instruments)


@entry
def mul_div(a: int, b: int, c: int) -> int:
    """``floor(a * b / c)`` without overflowing int64.

    Contract: ``0 <= a < 2**63``, ``0 <= b < 2**31``, ``0 < c < 2**31`` and the true result fits
    in int64. Exact under those bounds: ``a = q*c + r`` so ``a*b/c = q*b + r*b/c`` with
    ``r*b < 2**62``.
    """
    return (a // c) * b + (a % c) * b // c


@entry
def fee_for(notional: int, fee_bps: int) -> int:
    """The fee on a notional at ``fee_bps`` basis points, rounded down."""
    return mul_div(notional, fee_bps, BPS)


@entry
def buy_reservation(reserve_price: int, quantity: int, max_fee_bps: int) -> int:
    """Cash a buy of ``quantity`` needs reserved: its worst-case notional plus worst-case fee.

    Because ``fee_for`` rounds down it is superadditive, so filling part of an order at or below
    ``reserve_price`` always costs no more than the drop in this reservation.
    """
    notional = reserve_price * quantity
    return notional + fee_for(notional, max_fee_bps)


@entry
def collar_band(reference_price: int, collar_bps: int) -> int:
    """Half-width of the price collar around ``reference_price``, rounded down."""
    return reference_price * collar_bps // BPS


@entry
def collar_high(reference_price: int, collar_bps: int) -> int:
    """Highest price a buy may trade at or be entered at: reference + band, capped at MAX_PRICE."""
    return min(reference_price + collar_band(reference_price, collar_bps), MAX_PRICE)


@entry
def collar_low(reference_price: int, collar_bps: int) -> int:
    """Lowest price a sell may trade at or be entered at: reference - band, at least 1."""
    return max(reference_price - collar_band(reference_price, collar_bps), 1)
