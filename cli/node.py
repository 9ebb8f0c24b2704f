"""``ringex primary``, ``ringex status`` and ``ringex snapshot``: run a node and talk to it."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from core.config import Capacities

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


NODE_OPTIONS = [
    click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
                 required=True, help="Journal and snapshots live here."),
    click.option("--commands", "command_endpoint", default="tcp://127.0.0.1:7001",
                 show_default=True, help="Command port (ROUTER) to bind."),
    click.option("--control", "control_endpoint", default="tcp://127.0.0.1:7002",
                 show_default=True, help="Control port (REP) to bind."),
    click.option("--replication-port", "replication_endpoint", default="tcp://127.0.0.1:7003",
                 show_default=True, help="Replication port (ROUTER) to bind: a standby "
                                         "connects here while this node is primary."),
    click.option("--events", "event_endpoint", default="tcp://127.0.0.1:7004",
                 show_default=True, help="Event port (PUB) to bind: the primary publishes "
                                         "every event here for gateways and feeds."),
    click.option("--event-history", default=262_144, show_default=True,
                 help="Recent events kept in memory for subscribers' gap recovery."),
    click.option("--replication", type=click.Choice(["sync", "async", "none"]),
                 default="sync", show_default=True,
                 help="sync: acknowledge only once the standby has journaled too."),
    click.option("--on-standby-loss", type=click.Choice(["async", "stop"]), default="async",
                 show_default=True, help="In sync mode without a live standby: carry on "
                                         "(with an alarm) or accept no orders."),
    click.option("--sync-timeout-ms", default=1000, show_default=True),
    click.option("--peer-timeout-ms", default=1500, show_default=True),
    click.option("--durability", type=click.Choice(["fsync", "async"]), default="fsync",
                 show_default=True),
    click.option("--node-id", default=1, show_default=True),
    click.option("--snapshot-every", default=1_000_000, show_default=True,
                 help="Snapshot at every multiple of this sequence number (0: never). "
                      "Primary and standby compare state hashes at these snapshots: give "
                      "both the same value."),
    click.option("--max-batch", default=4096, show_default=True),
    click.option("--witness", "witness_endpoint",
                 help="A witness (ringex witness) for automatic failover: the primary holds "
                      "its lease, a standby that loses the primary claims the next epoch."),
    click.option("--lease-ms", default=1000, show_default=True),
]


def node_options(function):
    for option in reversed(NODE_OPTIONS):
        function = option(function)
    return capacity_options(function)


def _run_node(role: str, primary_endpoint: str | None, options: dict) -> None:
    from replication.node import EngineNode, NodeConfig, NodeRefused
    setup_logging()
    names = set(NodeConfig.__dataclass_fields__)
    capacities = Capacities(**{k: options.pop(k) for k in list(options)
                               if k not in names})
    config = NodeConfig(role=role, primary_endpoint=primary_endpoint, capacities=capacities,
                        **options)
    from journal.format import JournalError
    try:
        EngineNode(config).run()
    except JournalError as e:
        raise click.ClickException(f"journal: {e}") from e
    except NodeRefused as e:
        raise click.ClickException(str(e)) from e


@click.command()
@node_options
def primary(**options) -> None:
    """Run an engine node as the primary: it accepts commands and streams every batch to its
    standby (if one connects)."""
    _run_node("primary", None, options)


@click.command()
@click.option("--primary", "primary_endpoint", required=True,
              help="The primary's replication port, e.g. tcp://127.0.0.1:7003.")
@node_options
def standby(primary_endpoint: str, **options) -> None:
    """Run an engine node as a hot standby of PRIMARY: it journals, acknowledges and applies
    every batch, stays silent, and can be promoted (ringex failover). Starting an old primary's
    data directory this way makes it rejoin, dropping what was never replicated."""
    _run_node("standby", primary_endpoint, options)


def _ask(endpoint: str, request: dict, timeout_ms: int = 5_000) -> dict:
    from replication.control import control_request
    try:
        return control_request(endpoint, request, timeout_ms)
    except TimeoutError as e:
        raise click.ClickException(str(e)) from e


@click.command()
@click.option("--standby", "standby_control", required=True,
              help="The standby's control port: it becomes the primary.")
@click.option("--old-primary", "old_control",
              help="The old primary's control port: fenced first, if it answers.")
def failover(standby_control: str, old_control: str | None) -> None:
    """Promote the standby to primary in a new epoch; fence the old primary if reachable."""
    from replication.control import control_request
    state = _ask(standby_control, {"op": "status"})
    if old_control:
        try:
            fenced = control_request(old_control, {"op": "fence", "epoch": state["epoch"] + 1},
                                     timeout_ms=250)
            click.echo(f"old primary: {fenced}")
        except TimeoutError:
            click.echo("old primary unreachable: not fenced (it fences itself when it hears "
                       "of the new epoch)")
    promoted = _ask(standby_control, {"op": "promote"})
    if "error" in promoted:
        raise click.ClickException(promoted["error"])
    click.echo(json.dumps(promoted))


@click.command()
@click.argument("control_endpoint")
@click.option("--primary", "primary_endpoint", required=True,
              help="The new primary's replication port.")
def rejoin(control_endpoint: str, primary_endpoint: str) -> None:
    """Make a running, fenced node follow PRIMARY as its standby (it drops whatever it
    journaled that was never replicated). A stopped node rejoins with ringex standby."""
    reply = _ask(control_endpoint, {"op": "rejoin", "primary": primary_endpoint})
    if "error" in reply:
        raise click.ClickException(reply["error"])
    click.echo(json.dumps(reply))


@click.command()
@click.argument("control_endpoint", default="tcp://127.0.0.1:7002")
@click.option("--hash/--no-hash", "with_hash", default=False,
              help="Also compute the state hash (costs a pass over the state).")
def status(control_endpoint: str, with_hash: bool) -> None:
    """Show a running node's role, epoch, last sequence number and more."""
    from replication.control import control_request
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
        from replication.control import control_request
        try:
            reply = control_request(target, {"op": "snapshot"}, timeout_ms=600_000)
        except TimeoutError as e:
            raise click.ClickException(str(e)) from e
        click.echo(json.dumps(reply))
        return
    from journal.format import JournalError
    from journal.offline import snapshot_offline
    try:
        path, seq, state_hash = snapshot_offline(Path(target), snapshot_dir)
    except JournalError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"snapshot at seq {seq} written to {path} (state hash {state_hash.hex()})")


@click.command()
@click.option("--bind", "endpoint", default="tcp://127.0.0.1:7009", show_default=True)
@click.option("--lease-ms", default=1000, show_default=True,
              help="How long a primary's lease lasts without renewal.")
def witness(endpoint: str, lease_ms: int) -> None:
    """Run a witness: it grants promotion so that two nodes are never both primary."""
    import signal

    from replication.witness import Witness
    setup_logging()
    server = Witness(endpoint, lease_ms)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    server.run()
