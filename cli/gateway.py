"""``ringex gateway`` runs the order-entry gateway; ``ringex keys`` manages its API keys and
its CURVE keypair."""
from __future__ import annotations

import os
from pathlib import Path

import click

from .node import setup_logging


@click.command()
@click.option("--listen", default="tcp://127.0.0.1:7100", show_default=True,
              help="Client endpoint (ROUTER) to bind.")
@click.option("--node", "nodes", multiple=True, required=True,
              help="An engine node's control endpoint; repeat for each node. The gateway "
                   "sends to whichever is the accepting primary, and follows failovers.")
@click.option("--keys", "keys_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="API key file (ringex keys add). Re-read when it changes.")
@click.option("--curve-secret-file", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path),
              help="Encrypt client connections with ZeroMQ CURVE using this secret "
                   "certificate (ringex keys curve); clients need its public key.")
@click.option("--rate-limit", default=50_000.0, show_default=True,
              help="Requests per second per session.")
@click.option("--burst", type=float, help="Requests a session may send at once "
                                          "[default: the rate limit].")
@click.option("--heartbeat-ms", default=1000, show_default=True,
              help="Default session heartbeat interval (a client may ask for 100..60000).")
@click.option("--max-batch", default=4096, show_default=True,
              help="Commands per request to the engine.")
@click.option("--reply-timeout-ms", default=2000, show_default=True,
              help="No reply from the primary for this long: look for a new primary.")
@click.option("--queue-timeout-ms", default=5000, show_default=True,
              help="Requests wait this long for a primary before they are rejected.")
@click.option("-v", "--verbose", is_flag=True)
def gateway(listen: str, nodes: tuple[str, ...], keys_path: Path,
            curve_secret_file: Path | None, rate_limit: float, burst: float | None,
            heartbeat_ms: int, max_batch: int, reply_timeout_ms: int, queue_timeout_ms: int,
            verbose: bool) -> None:
    """Run the order-entry gateway (protocol: docs/protocol.md)."""
    from gateways.keys import KeyFileError, KeyStore
    from gateways.order_gateway import GatewayConfig, OrderGateway
    from gateways.sessions import MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS
    setup_logging(verbose)
    if rate_limit <= 0 or (burst is not None and burst < 1):
        raise click.BadParameter("the rate limit must be > 0 and the burst >= 1")
    if not MIN_HEARTBEAT_MS <= heartbeat_ms <= MAX_HEARTBEAT_MS:
        raise click.BadParameter(f"--heartbeat-ms is in {MIN_HEARTBEAT_MS}..{MAX_HEARTBEAT_MS}")
    if not 1 <= max_batch <= 4096:
        raise click.BadParameter("--max-batch is in 1..4096")
    try:
        keys = KeyStore.load(keys_path)
    except KeyFileError as e:
        raise click.ClickException(str(e)) from e
    config = GatewayConfig(listen=listen, nodes=list(nodes), keys=keys_path,
                           curve_secret_file=curve_secret_file, rate_limit=rate_limit,
                           burst=burst, heartbeat_ms=heartbeat_ms, max_batch=max_batch,
                           reply_timeout_ms=reply_timeout_ms, queue_timeout_ms=queue_timeout_ms)
    try:
        server = OrderGateway(config, keys)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    server.run()


@click.group()
def keys() -> None:
    """Manage the gateway's API keys and CURVE keypair."""


@keys.command("add")
@click.option("--account", "accounts", type=click.IntRange(0, 2**31 - 1), multiple=True,
              required=True, help="An account the key may trade; repeat for several.")
@click.option("--keys", "keys_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The key file (created if missing).")
@click.option("--label", default="", help="A note stored with the key.")
def keys_add(accounts: tuple[int, ...], keys_path: Path, label: str) -> None:
    """Create an API key and print it: this is the only time its secret is shown."""
    from gateways.keys import KeyFileError, KeyStore
    try:
        store = KeyStore.load(keys_path, missing_ok=True)
        key = store.add(sorted(set(accounts)), label)
        store.save()
    except (KeyFileError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(key)


@keys.command("list")
@click.option("--keys", "keys_path", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path), required=True)
def keys_list(keys_path: Path) -> None:
    """List key ids, their accounts and labels (never secrets)."""
    from gateways.keys import KeyFileError, KeyStore
    try:
        store = KeyStore.load(keys_path)
    except KeyFileError as e:
        raise click.ClickException(str(e)) from e
    for key in sorted(store.keys.values(), key=lambda k: k.created):
        click.echo(f"{key.key_id}  accounts {','.join(map(str, sorted(key.accounts)))}  "
                   f"{key.created}  {key.label}")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--keys", "keys_path", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path), required=True)
def keys_revoke(key_id: str, keys_path: Path) -> None:
    """Remove a key; a running gateway ends its sessions within a second."""
    from gateways.keys import KeyFileError, KeyStore
    try:
        store = KeyStore.load(keys_path)
        if not store.revoke(key_id):
            raise click.ClickException(f"no key {key_id} in {keys_path}")
        store.save()
    except (KeyFileError, OSError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"revoked {key_id}")


@keys.command("curve")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory for server.key (public) and server.key_secret.")
def keys_curve(out_dir: Path) -> None:
    """Write a CURVE keypair for the gateway (ZeroMQ certificate files) and print the public
    key clients need."""
    import zmq
    import zmq.auth
    if not zmq.has("curve"):
        raise click.ClickException("this libzmq was built without CURVE")
    secret_path = out_dir / "server.key_secret"
    if secret_path.exists():
        raise click.ClickException(f"{secret_path} exists; not overwriting a keypair")
    out_dir.mkdir(parents=True, exist_ok=True)
    public_path, secret_path = zmq.auth.create_certificates(out_dir, "server")
    os.chmod(secret_path, 0o600)
    public, _ = zmq.auth.load_certificate(public_path)
    click.echo(f"wrote {public_path} and {secret_path}")
    click.echo(f"server public key: {public.decode()}")
