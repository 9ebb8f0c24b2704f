"""``ringex primary``, ``ringex status`` and ``ringex snapshot``: run a node and talk to it."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from core.config import Capacities
from journal.format import JournalError

CAPACITY_OPTIONS = [
    click.option("--instruments", default=Capacities.instruments, show_default=True),
    click.option("--accounts", default=Capacities.accounts, show_default=True),
    click.option("--orders", default=Capacities.orders, show_default=True,
                 help="Live orders at once."),
    click.option("--positions", default=Capacities.positions, show_default=True),
    click.option("--client-ids", "client_order_ids", default=Capacities.client_order_ids,
                 show_default=True, help="Client order ids remembered per trading day."),
    click.option("--levels", "price_levels", default=0, show_default=True,
                 help="Price levels over all books (0: as many as orders)."),
]


def capacity_options(function):
    for option in reversed(CAPACITY_OPTIONS):
        function = option(function)
    return function


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("var/primary"), show_default=True,
              help="Journal and snapshots live here.")
@click.option("--commands", "command_endpoint", default="tcp://127.0.0.1:7001",
              show_default=True, help="Command port (ROUTER) to bind.")
@click.option("--control", "control_endpoint", default="tcp://127.0.0.1:7002",
              show_default=True, help="Control port (REP) to bind.")
@click.option("--durability", type=click.Choice(["fsync", "async"]), default="fsync",
              show_default=True)
@click.option("--node-id", default=1, show_default=True)
@click.option("--snapshot-every", default=1_000_000, show_default=True,
              help="Commands between snapshots (0: never).")
@click.option("--max-batch", default=4096, show_default=True)
@capacity_options
def primary(data_dir: Path, command_endpoint: str, control_endpoint: str, durability: str,
            node_id: int, snapshot_every: int, max_batch: int, **capacities) -> None:
    """Run an engine node that accepts commands (single node: no standby yet)."""
    from replication.node import EngineNode, NodeConfig
    setup_logging()
    config = NodeConfig(data_dir=data_dir, command_endpoint=command_endpoint,
                        control_endpoint=control_endpoint, durability=durability,
                        node_id=node_id, snapshot_every=snapshot_every, max_batch=max_batch,
                        capacities=Capacities(**capacities))
    try:
        EngineNode(config).run()
    except JournalError as e:
        raise click.ClickException(f"journal: {e}") from e


@click.command()
@click.argument("control_endpoint", default="tcp://127.0.0.1:7002")
@click.option("--hash/--no-hash", "with_hash", default=False,
              help="Also compute the state hash (costs a pass over the state).")
def status(control_endpoint: str, with_hash: bool) -> None:
    """Show a running node's role, epoch, last sequence number and more."""
    from replication.node import control_request
    try:
        reply = control_request(control_endpoint, {"op": "status", "hash": with_hash})
    except TimeoutError as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(reply, indent=2))


@click.command()
@click.argument("target", default="tcp://127.0.0.1:7002")
@click.option("--snapshots", "snapshot_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Offline: where to write (default: DATA/snapshots beside the journal).")
def snapshot(target: str, snapshot_dir: Path | None) -> None:
    """Snapshot a running node (TARGET is its control endpoint), or, offline, rebuild the
    state from a data directory's journal and write a snapshot of it (TARGET is the data
    directory holding journal/)."""
    if "://" in target:
        from replication.node import control_request
        try:
            reply = control_request(target, {"op": "snapshot"}, timeout_ms=600_000)
        except TimeoutError as e:
            raise click.ClickException(str(e)) from e
        click.echo(json.dumps(reply))
        return
    from journal.offline import snapshot_offline
    try:
        path, seq, state_hash = snapshot_offline(Path(target), snapshot_dir)
    except JournalError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"snapshot at seq {seq} written to {path} (state hash {state_hash.hex()})")
