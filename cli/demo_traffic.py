"""``ringex demo-traffic``: replay NASDAQ's (or a synthetic) order flow through the gateway.

The work is ``cli.traffic.DemoTraffic``; this is its command line. Imports are deferred so
that every other ``ringex`` command starts quickly.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import click

from .demo_venue import LOBSTER_FOLDER


def read_default(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


@click.command("demo-traffic")
@click.option("--gateway", default="tcp://127.0.0.1:7100", show_default=True,
              help="The order gateway's endpoint.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("ringex-data"), show_default=True,
              help="A ringex up data directory: the API key and the gateway's CURVE public "
                   "key are read from it unless given.")
@click.option("--key", help="API key [default: DATA/demo-api-key].")
@click.option("--server-key", help="The gateway's CURVE public key [default: from "
                                   "DATA/curve/server.key if present; none: no CURVE].")
@click.option("--lobster", "lobster_dir", type=click.Path(path_type=Path),
              default=LOBSTER_FOLDER, show_default=True,
              help="LOBSTER sample folder; symbols without a day there get synthetic flow.")
@click.option("--symbol", "symbols", multiple=True,
              help="Symbols to trade [default: the demo venue's AMZN GOOG AAPL MSFT INTC].")
@click.option("--account", "accounts", type=int, multiple=True,
              help="Accounts to trade [default: 1..8].")
@click.option("--speed", default=1.0, show_default=True,
              help="Times real time (0: as fast as the gateway answers).")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--loop/--no-loop", default=False, show_default=True,
              help="Replay day after day (mass cancel between days).")
def demo_traffic(gateway: str, data_dir: Path, key: str | None, server_key: str | None,
                 lobster_dir: Path, symbols: tuple[str, ...], accounts: tuple[int, ...],
                 speed: float, duration: float | None, loop: bool) -> None:
    """Replay NASDAQ order flow (LOBSTER), or a synthetic one, through the gateway as client
    orders from several accounts; print what happened."""
    from .demo_venue import DEMO_ACCOUNTS, INSTRUMENTS
    from .flow import DemoFlow
    from .traffic import DemoTraffic
    key = key or read_default(data_dir / "demo-api-key")
    if key is None:
        raise click.UsageError(f"no --key and no {data_dir / 'demo-api-key'}")
    if server_key is None and (data_dir / "curve" / "server.key").is_file():
        import zmq.auth
        server_key = zmq.auth.load_certificate(data_dir / "curve" / "server.key")[0].decode()
    known = {i.symbol: i.reference_price for i in INSTRUMENTS}
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise click.UsageError(f"no reference price for {', '.join(unknown)}; the demo venue "
                               f"has {', '.join(known)}")
    chosen = {s: known[s] for s in (symbols or known)}
    accounts = list(accounts or DEMO_ACCOUNTS)
    flow = DemoFlow(chosen, lobster_dir, accounts=len(accounts), loop=loop)
    for source in flow.sources:
        click.echo(f"  {source}")
    player = DemoTraffic(gateway, key, flow, accounts, speed=speed, server_key=server_key)
    stop = threading.Event()
    began = time.monotonic()
    try:
        player.run(stop, duration)
    except KeyboardInterrupt:
        stop.set()
    seconds = time.monotonic() - began
    s = player.stats()
    latency = player.latency.summary()
    click.echo(f"{s['sent']:,} requests in {seconds:.1f} s ({s['sent'] / seconds:,.0f}/s), "
               f"{s['answered']:,} answered, {s['fills']:,} fill reports, "
               f"{s['rejected']:,} rejected {s['reasons'] or ''}")
    if latency:
        click.echo(f"acknowledgement latency: p50 {latency['p50']:,.0f} µs, "
                   f"p99 {latency['p99']:,.0f} µs, max {latency['max']:,.0f} µs")
    counts = flow.counts
    click.echo(f"LOBSTER-format messages converted: {sum(counts.messages.values()):,}; "
               f"requests by origin: {dict(counts.requests)}")
