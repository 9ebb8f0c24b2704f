"""``ringex replay``, ``ringex audit``, ``ringex drill``: working with recorded history.

Each takes a node's data directory (holding ``journal/`` and ``snapshots/``) or a journal
directory, opens it read-only, and exits non-zero with a clear message on any damage.
"""
from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from journal.format import ChainError, JournalError

DATA = click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _time_ns(text: str) -> int:
    """An ISO-8601 time (UTC when no zone is given) or integer nanoseconds, as nanoseconds.

    Exact to the microsecond (no float on the way); a malformed time is a usage error."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither an ISO-8601 time nor nanoseconds") \
            from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _fail(error: JournalError) -> click.ClickException:
    if isinstance(error, ChainError):
        return click.ClickException(f"journal damaged: first bad seq {error.seq}: "
                                    f"{error.reason}")
    return click.ClickException(str(error))


@click.command()
@DATA
@click.option("--to-seq", type=int, help="Stop after this sequence number.")
@click.option("--to-time", help="Stop after the last command at or before this time "
                                "(ISO 8601, UTC by default, or nanoseconds).")
@click.option("--from-snapshot/--from-start", default=True, show_default=True,
              help="Start from the newest valid snapshot, or from the first command.")
@click.option("--verify", is_flag=True, help="Check the whole hash chain first.")
@click.option("--checkpoint-every", default=0, help="Also print the state hash every N "
                                                     "commands.")
@click.option("--show-book", "books", multiple=True, help="Print this symbol's book at the "
                                                          "end (repeatable).")
@click.option("--show-accounts", is_flag=True, help="Print every account at the end.")
def replay(data: Path, to_seq: int | None, to_time: str | None, from_snapshot: bool,
           verify: bool, checkpoint_every: int, books: tuple[str, ...],
           show_accounts: bool) -> None:
    """Rebuild the state from a journal, comparing state hashes with recorded checkpoints."""
    from core.describe import describe_book
    from journal.offline import open_readonly
    from journal.replay import replay as run_replay
    try:
        journal, snapshots = open_readonly(data)
        with journal:
            total = journal.last_seq if to_seq is None else min(to_seq, journal.last_seq)
            with click.progressbar(length=total, label="replaying", file=sys.stderr,
                                   show_pos=True) as bar:
                report = run_replay(journal, snapshots if from_snapshot else None,
                                    to_seq=to_seq,
                                    to_time_ns=_time_ns(to_time) if to_time else None,
                                    verify=verify, checkpoint_every=checkpoint_every,
                                    on_progress=bar.update)
    except JournalError as e:
        raise _fail(e) from e
    if report.chain_verified_to is not None:
        click.echo(f"hash chain verified through seq {report.chain_verified_to:,}")
    for path, why in report.skipped_snapshots:
        click.echo(f"snapshot {path.name} not used: {why}")
    start = f"snapshot at seq {report.snapshot_seq:,}" if report.snapshot_seq is not None \
        else "the first command"
    click.echo(f"replayed {report.replayed_commands:,} commands from {start} to seq "
               f"{report.last_seq:,} in {report.seconds:.3f} s")
    for c in report.checkpoints:
        recorded = "" if c.recorded is None else f" recorded {c.recorded.hex()[:16]}…"
        click.echo(f"  seq {c.seq:>12,}  state {c.computed.hex()[:16]}…{recorded}  {c.verdict}")
    click.echo(f"state hash {report.state_hash.hex()}")
    state = report.blp.canonical_state()
    symbols = {r["symbol"].decode(): int(r["instrument"]) for r in state.instruments}
    for symbol in books:
        if symbol not in symbols:
            raise click.ClickException(f"no instrument {symbol!r}")
        click.echo(f"\nbook {symbol}:")
        for line in describe_book(state, symbols[symbol]) or ["(empty)"]:
            click.echo(f"  {line}")
    if show_accounts:
        click.echo(f"\n{'account':>8} {'type':>5} {'cash':>20} {'reserved':>20}")
        for a in state.accounts:
            click.echo(f"{int(a['account']):>8} {int(a['account_type']):>5} "
                       f"{int(a['cash']):>20,} {int(a['reserved']):>20,}")
    if report.mismatches:
        raise click.ClickException(f"{len(report.mismatches)} checkpoint(s) differ")


@click.command()
@DATA
@click.option("--order-id", type=int, help="The order's engine id.")
@click.option("--account", type=int, help="With --client-order-id: the order's account; "
                                          "alone: the account's activity.")
@click.option("--client-order-id", type=int)
@click.option("--since", help="Account activity from this time (ISO 8601 or ns).")
@click.option("--until", help="Account activity up to this time (ISO 8601 or ns).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@click.option("--output", type=click.File("w"), default="-", help="Default: stdout.")
def audit(data: Path, order_id: int | None, account: int | None,
          client_order_id: int | None, since: str | None, until: str | None, fmt: str,
          output) -> None:
    """The life of an order (--order-id, or --account and --client-order-id), or an
    account's orders, trades and cash movements over a time range (--account alone)."""
    from journal import audit as trails
    from journal.offline import open_readonly
    try:
        journal, _ = open_readonly(data)
        with journal:
            if order_id is not None or client_order_id is not None:
                rows = trails.order_history(journal, order_id=order_id, account=account,
                                            client_order_id=client_order_id)
            elif account is not None:
                rows = trails.account_activity(
                    journal, account, since_ns=_time_ns(since) if since else 0,
                    until_ns=_time_ns(until) if until else 2**63 - 1)
            else:
                raise click.UsageError("give --order-id, --account and --client-order-id, "
                                       "or --account")
    except JournalError as e:
        raise _fail(e) from e
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    (trails.write_csv if fmt == "csv" else trails.write_jsonl)(rows, output)
    if not rows:
        click.echo("nothing found", err=True)


@click.command()
@DATA
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Restore the copy into a new directory inside this one (default: the "
                   "system's temporary directory). Only that new directory is removed.")
@click.option("--keep/--remove", default=False, help="Keep the restored copy afterwards.")
def drill(data: Path, workdir: Path | None, keep: bool) -> None:
    """Disaster-recovery drill: copy the data, rebuild from the copy, compare, report RTO."""
    import shutil

    from journal.drill import drill as run_drill
    try:
        report = run_drill(data, workdir)
    except JournalError as e:
        raise _fail(e) from e
    for line in report.lines():
        click.echo(line)
    if not keep:
        shutil.rmtree(report.copy, ignore_errors=True)
    if not report.passed:
        raise SystemExit(1)
