"""``ringex demo``: drive the business-logic processor with a generated market and show it.

Until the full cluster (``ringex up``) exists this is what ``make run`` starts: a synthetic,
exchange-core-shaped order flow (``core.workload``) through the numba kernel, then a summary,
the top of the book for a few instruments, the invariant check and the state hash.
"""
from __future__ import annotations

import time

import click

BATCH = 1024


def _money(price: int) -> str:
    return f"{price / 10_000:,.2f}" if price else "-"


@click.command()
@click.option("--commands", default=500_000, show_default=True, help="Order commands to run.")
@click.option("--instruments", default=20, show_default=True)
@click.option("--accounts", default=500, show_default=True)
@click.option("--seed", default=1, show_default=True, help="Same seed, same market.")
@click.option("--show", default=8, show_default=True, help="Instruments to show.")
def demo(commands: int, instruments: int, accounts: int, seed: int, show: int) -> None:
    """Run the business-logic processor over a generated market and show what it did."""
    import numpy as np

    from core.blp import BusinessLogicProcessor, warm_up
    from core.config import Capacities
    from core.describe import top_of_book
    from core.enums import EventKind
    from core.workload import TICK, StreamSpec, generate

    click.echo(f"generating {commands:,} order commands over {instruments} instruments ...")
    stream = generate(StreamSpec(commands=commands, instruments=instruments,
                                 accounts=accounts, target_orders=100 * instruments,
                                 seed=seed))
    click.echo("loading the kernel (compiles once, about 40 s, then cached) ...")
    warm_up()
    blp = BusinessLogicProcessor(Capacities(
        instruments=instruments, accounts=accounts, orders=1 << 16,
        positions=accounts * instruments + 1, client_order_ids=stream.new_orders + 1))
    for start in range(0, len(stream.setup), BATCH):
        blp.process_view(stream.setup[start:start + BATCH])
    kinds = np.zeros(256, np.int64)
    began = time.perf_counter()
    for start in range(0, len(stream.main), BATCH):
        events = blp.process_view(stream.main[start:start + BATCH])
        kinds += np.bincount(events["kind"], minlength=256)
    seconds = time.perf_counter() - began

    click.echo(f"\n{len(stream.main):,} commands in {seconds:.2f} s: "
               f"{len(stream.main) / seconds:,.0f} commands/s, one core, batches of {BATCH}")
    for kind in (EventKind.ORDER_ACCEPTED, EventKind.TRADE, EventKind.ORDER_REPLACED,
                 EventKind.ORDER_CANCELLED, EventKind.STOP_TRIGGERED, EventKind.REJECTED):
        click.echo(f"  {kind.name.lower():<16} {int(kinds[kind]):>10,}")

    state = blp.canonical_state()
    symbols = {int(r["instrument"]): r["symbol"].decode() for r in state.instruments}
    last = {int(r["instrument"]): int(r["last_price"]) for r in state.instruments}
    click.echo(f"\n{'symbol':<9}{'bid qty':>9}{'bid':>10}{'ask':>10}{'ask qty':>9}{'last':>10}")
    for i in sorted(symbols)[:show]:
        top = top_of_book(state, i)
        click.echo(f"{symbols[i]:<9}{top['bid_quantity']:>9,}{_money(top['bid']):>10}"
                   f"{_money(top['ask']):>10}{top['ask_quantity']:>9,}{_money(last[i]):>10}")
    blp.check_integrity()
    click.echo(f"\ninvariants hold; state hash {blp.state_hash().hex()}")
    click.echo(f"(prices in USD with a tick of {TICK / 10_000:.2f}; see README for what's next)")
