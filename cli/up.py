"""``ringex up``: a whole exchange on this machine, from one command.

Starts on loopback a primary and a hot standby (sync replication, journals in DATA/a and
DATA/b), the order gateway (CURVE on) and the market-data service (``cli.supervisor``); on the
first start sets up the demo venue through the primary's command port (``cli.demo_venue``);
prints the endpoints and the demo API key (also written to DATA/connect.json for programs);
optionally plays demo traffic (``cli.demo_traffic``); and shows a live view of the market and
the cluster's health (``cli.monitor`` measures, ``cli.view`` draws; a plain status line when
stdout is not a terminal). Ctrl-C or SIGTERM stops everything cleanly; starting again recovers
both nodes from their journals, in the roles the journals call for.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from .demo_venue import LOBSTER_FOLDER

#: Node capacities for the demo venue. They are stored with the journal: keep them fixed.
NODE_CAPACITIES = ["--instruments", "16", "--accounts", "256", "--orders", str(1 << 16),
                   "--positions", "4096", "--client-ids", str(1 << 20)]
SNAPSHOT_EVERY = 10_000


class _Stop(Exception):
    """Raised in the main thread by the first SIGINT/SIGTERM."""


def _install_signals() -> None:
    def first(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stop(signal.Signals(signum).name)
    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _gateway_ready(endpoint: str, key: str, server_key: str) -> bool:
    from gateways.client import LogonError, OrderClient
    try:
        with OrderClient(endpoint, key, server_key=server_key, timeout=1.0) as client:
            return bool(client.session and client.session.get("engine_ready"))
    except (LogonError, TimeoutError):
        return False


def _setup_venue(command_endpoint: str) -> int:
    """Journal the demo venue's admin commands; returns how many."""
    from core.enums import EventKind
    from core.records import event_as_dict
    from replication.command_port import CommandClient

    from .demo_venue import setup_commands
    commands = setup_commands()
    client = CommandClient(command_endpoint, timeout_ms=30_000)
    try:
        reply = client.submit(commands)
    finally:
        client.close()
    if not reply.ok:
        raise click.ClickException(f"setting up the venue failed: {reply.message}")
    refused = reply.events[reply.events["kind"] == EventKind.REJECTED]
    if len(refused):
        raise click.ClickException(f"setting up the venue: {event_as_dict(refused[0])}")
    return len(commands)


def _end_of_day(supervisor) -> None:
    """Demo traffic finished a day: the engine ends it too (DAY orders expire, the day's
    client order ids are forgotten)."""
    from core import commands as C
    from replication.command_port import CommandClient
    node = next(n for n in supervisor.layout.nodes if n.name == supervisor.primary)
    client = CommandClient(node.commands, timeout_ms=10_000)
    try:
        reply = client.submit(C.end_of_day())
        supervisor.note("end of the trading day" if reply.ok else
                        f"end of day refused: {reply.message}")
    except TimeoutError:
        supervisor.note(f"end of day: no answer from node {node.name}")
    finally:
        client.close()


def _play(player, stop: threading.Event, supervisor) -> None:
    """The demo traffic thread: a failure stops the demo, not the exchange; it is noted."""
    try:
        player.run(stop)
    except Exception:
        supervisor.note(f"demo traffic stopped: {player.error}")


@click.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("ringex-data"), show_default=True,
              help="Journals, snapshots, keys and logs live here.")
@click.option("--base-port", default=7000, show_default=True, type=click.IntRange(1024, 65_000),
              help="Ports are this plus: 1-4 node a, 11-14 node b, 100 gateway, 101-103 "
                   "market data.")
@click.option("--demo/--no-demo", default=False, show_default=True,
              help="Play demo traffic: NASDAQ's day from LOBSTER files, synthetic elsewhere.")
@click.option("--speed", default=10.0, show_default=True,
              help="Demo traffic speed, times real time.")
@click.option("--lobster", "lobster_dir", type=click.Path(path_type=Path),
              default=LOBSTER_FOLDER, show_default=True, help="LOBSTER sample folder.")
@click.option("--view", type=click.Choice(["auto", "live", "plain"]), default="auto",
              show_default=True, help="auto: live when stdout is a terminal, else plain lines.")
@click.option("--interval", default=5.0, show_default=True,
              help="Seconds between plain status lines.")
@click.option("--durability", type=click.Choice(["fsync", "async"]), default="fsync",
              show_default=True, help="Journal commits (async: no fsync; for development).")
def up(data_dir: Path, base_port: int, demo: bool, speed: float, lobster_dir: Path,
       view: str, interval: float, durability: str) -> None:
    """Start a primary, a hot standby, the order gateway and market data on this machine,
    with a live view. Ctrl-C stops everything; running it again recovers from the journal."""
    from .demo_venue import (DEMO_ACCOUNTS, INSTRUMENTS, YOUR_ACCOUNT, ensure_api_key,
                             ensure_curve)
    from .supervisor import Layout, StartError, Supervisor, market_data_status

    layout = Layout(data_dir.resolve(), base_port)
    live = view == "live" or (view == "auto" and sys.stdout.isatty())
    supervisor = Supervisor(layout, node_args=[*NODE_CAPACITIES, "--durability", durability,
                                                "--snapshot-every", str(SNAPSHOT_EVERY)])
    stop = threading.Event()
    player_thread = None
    monitor = None
    _install_signals()
    try:
        click.echo(f"starting ringex in {layout.data_dir} (logs in {layout.logs}) ...")
        primary, standby = supervisor.start_nodes()
        status = supervisor.node_status(primary)
        click.echo(f"  node {primary.name}: primary, epoch {status['epoch']}, journal at seq "
                   f"{status['last_seq']:,}; node {standby.name}: hot standby")
        if status["last_seq"] == 0:
            count = _setup_venue(primary.commands)
            click.echo(f"  first start: set up {len(INSTRUMENTS)} instruments and "
                       f"{len(DEMO_ACCOUNTS) + 1} funded accounts ({count} admin commands)")
        key = ensure_api_key(layout.keys, layout.data_dir / "demo-api-key")
        secret_file, server_key = ensure_curve(layout.data_dir / "curve")
        nodes = [a for n in layout.nodes for a in ("--node", n.control)]
        supervisor.start_service("gateway", ["gateway", "--listen", layout.gateway, *nodes,
                                             "--keys", str(layout.keys),
                                             "--curve-secret-file", str(secret_file)],
                                 lambda: _gateway_ready(layout.gateway, key, server_key))
        supervisor.start_service("marketdata", ["marketdata", *nodes, "--publish",
                                                layout.market_data, "--snapshot",
                                                layout.snapshots, "--drop-copy",
                                                layout.drop_copy],
                                 lambda: market_data_status(layout.snapshots).get("ready"))
        connect = {"gateway": layout.gateway, "server_key": server_key, "api_key": key,
                   "account": YOUR_ACCOUNT, "demo_accounts": list(DEMO_ACCOUNTS),
                   "market_data": layout.market_data, "snapshots": layout.snapshots,
                   "drop_copy": layout.drop_copy,
                   "nodes": {n.name: {"control": n.control, "commands": n.commands,
                                      "replication": n.replication, "data": str(n.data_dir)}
                             for n in layout.nodes}}
        _write_private(layout.data_dir / "connect.json", json.dumps(connect, indent=1) + "\n")
        a, b = layout.nodes
        click.echo("\n".join([
            "ringex is up",
            f"  order gateway   {layout.gateway}  (CURVE server key {server_key})",
            f"  market data     {layout.market_data}  snapshots {layout.snapshots}  "
            f"drop copy {layout.drop_copy}",
            f"  node a control  {a.control}   node b control {b.control}",
            f"  demo API key    {key}",
            f"                  (accounts {DEMO_ACCOUNTS[0]}-{DEMO_ACCOUNTS[-1]} for demo "
            f"traffic, {YOUR_ACCOUNT} for you)",
            f"  all of this is in {layout.data_dir / 'connect.json'}"]))
        from .monitor import LatencyRecorder, Monitor
        latency = LatencyRecorder()
        monitor = Monitor(supervisor, [i.symbol for i in INSTRUMENTS], latency)
        player = None
        if demo:
            from .flow import DemoFlow
            from .traffic import DemoTraffic
            flow = DemoFlow({i.symbol: i.reference_price for i in INSTRUMENTS}, lobster_dir,
                            accounts=len(DEMO_ACCOUNTS), loop=True)
            player = DemoTraffic(layout.gateway, key, flow, list(DEMO_ACCOUNTS), speed=speed,
                                 server_key=server_key, latency=latency,
                                 on_day_end=lambda: _end_of_day(supervisor))
            player_thread = threading.Thread(target=_play, args=(player, stop, supervisor),
                                             daemon=True, name="demo-traffic")
            player_thread.start()
            click.echo(f"  demo traffic at {speed:g}x: " +
                       "; ".join(str(s) for s in flow.sources))
        sys.stdout.flush()
        _watch(monitor, player, live, interval)
    except _Stop:
        pass
    except StartError as e:
        raise click.ClickException(str(e)) from e
    finally:
        stop.set()
        if player_thread is not None:
            player_thread.join(10)
        if monitor is not None:
            monitor.close()
        codes = supervisor.stop()
        if codes:
            click.echo("stopped: " + ", ".join(f"{name} (exit {code})"
                                               for name, code in codes.items()))


def _watch(monitor, player, live: bool, interval: float) -> None:
    """Refresh twice a second until a signal stops us (``_Stop``): the live view, or a plain
    status line every ``interval`` seconds and each notice as it happens. Every refresh also
    lets the supervisor act (a fenced node rejoins within half a second)."""
    from .view import render, status_line
    if live:
        from rich.live import Live
        with Live(render(monitor.snapshot()), refresh_per_second=4,
                  redirect_stdout=False) as screen:
            while True:
                time.sleep(0.5)
                monitor.demo = player.stats() if player else None
                screen.update(render(monitor.snapshot()))
    shown, next_line = 0, 0.0
    while True:
        monitor.demo = player.stats() if player else None
        snap = monitor.snapshot()
        supervisor = monitor.supervisor
        fresh = supervisor.noted - shown
        for notice in supervisor.notices[len(supervisor.notices) - min(fresh, 20):]:
            click.echo(notice)
        shown = supervisor.noted
        if time.monotonic() >= next_line:
            click.echo(status_line(snap))
            next_line = time.monotonic() + interval
        sys.stdout.flush()
        time.sleep(0.5)
