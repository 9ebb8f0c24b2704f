"""``ringex marketdata``: run the market-data and drop-copy service (``gateways.market_data``)."""
from __future__ import annotations

import click

from .node import setup_logging


@click.command()
@click.option("--node", "nodes", multiple=True, required=True,
              help="An engine node's control endpoint (repeat for the primary and its "
                   "standby: the service follows failovers).")
@click.option("--publish", "publish_endpoint", default="tcp://127.0.0.1:7101",
              show_default=True, help="Market-data PUB to bind.")
@click.option("--snapshot", "snapshot_endpoint", default="tcp://127.0.0.1:7102",
              show_default=True, help="Snapshot service (ROUTER) to bind.")
@click.option("--drop-copy", "drop_copy_endpoint", default="tcp://127.0.0.1:7103",
              show_default=True, help="Drop-copy PUB to bind.")
@click.option("--heartbeat-ms", default=1000, show_default=True, type=click.IntRange(10, 60_000),
              help="Heartbeats on both streams this often.")
@click.option("--candle", "candles", multiple=True, type=click.IntRange(1, 86_400),
              help="Candle interval in seconds of engine time (repeatable; default 1 and 60).")
@click.option("--report-history", default=100_000, show_default=True,
              type=click.IntRange(1, 10_000_000),
              help="Drop-copy reports kept for consumers' gap recovery.")
@click.option("--trade-history", default=1000, show_default=True,
              type=click.IntRange(1, 1_000_000),
              help="Recent trades kept per instrument for snapshots and gap recovery.")
@click.option("--send-hwm", default=100_000, show_default=True,
              type=click.IntRange(1, 10_000_000),
              help="Messages queued per subscriber before the PUBs drop (the subscriber then "
                   "sees a gap and resyncs).")
@click.option("-v", "--verbose", is_flag=True)
def marketdata(nodes: tuple[str, ...], publish_endpoint: str, snapshot_endpoint: str,
               drop_copy_endpoint: str, heartbeat_ms: int, candles: tuple[int, ...],
               report_history: int, trade_history: int, send_hwm: int, verbose: bool) -> None:
    """Publish market data (top of book, trades, L2 depth, candles) and the drop copy of every
    execution report, following the engine's event stream; serve snapshots for late joiners
    and gap recovery. Wire format: docs/market-data.md."""
    import signal

    import zmq

    from gateways.market_data import SECOND, MarketDataConfig, MarketDataService
    setup_logging(verbose)
    config = MarketDataConfig(
        nodes=list(nodes), publish_endpoint=publish_endpoint,
        snapshot_endpoint=snapshot_endpoint, drop_copy_endpoint=drop_copy_endpoint,
        heartbeat_ms=heartbeat_ms, report_history=report_history, trade_history=trade_history,
        send_hwm=send_hwm,
        candle_intervals=tuple(c * SECOND for c in sorted(set(candles))) or
        MarketDataConfig.candle_intervals)
    try:
        service = MarketDataService(config)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    except zmq.ZMQError as e:
        raise click.ClickException(f"cannot bind {publish_endpoint}, {snapshot_endpoint} or "
                                   f"{drop_copy_endpoint}: {e}") from e
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    service.run()
