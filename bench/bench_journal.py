"""Journal benchmarks (issue 3): append with fsync, replay through the BLP, recovery time.

    .venv/bin/python bench/bench_journal.py [--commands 10000000] [--append 2000000]
                                            [--dir /path/on/the/real/disk] [--json FILE]

1. **Append**: batches of 1,000 commands from a realistic stream (core/workload.py) appended
   to an LMDB journal with the ``fsync`` policy (and ``async`` for comparison); commands/s and
   commit latency p50/p99/p99.9 per batch. Target >= 1,000,000 commands/s with fsync.
2. **Replay**: the whole journal read back, every hash and link verified, through the BLP;
   commands/s. Target >= 2,000,000 commands/s.
3. **Recovery** of a 10,000,000-command journal: from its newest snapshot (taken 50,000
   commands before the end, as a node taking one every 1,000,000 would leave it at worst
   950,000 behind; both are reported) and from scratch. Target < 5 s from the snapshot.

The journal lives in ``--dir`` (default: a temporary directory under the current directory, so
on the same disk as the repository). Each figure is the median of ``--runs`` runs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent.parent))

import numpy as np  # noqa: E402

from core.blp import BusinessLogicProcessor, warm_up  # noqa: E402
from core.config import Capacities  # noqa: E402
from core.workload import StreamSpec, generate  # noqa: E402
from journal.lmdb_journal import LmdbJournal  # noqa: E402
from journal.recovery import recover  # noqa: E402
from journal.snapshots import SnapshotStore, capture, state_hash_of  # noqa: E402

BATCH = 1000


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def stream_commands(total: int, seed: int):
    """A realistic stream of ``total`` commands (setup included), and capacities for it."""
    stream = generate(StreamSpec(commands=total, seed=seed))
    commands = np.zeros(len(stream.setup) + len(stream.main), stream.setup.dtype)
    commands[:len(stream.setup)] = stream.setup
    commands[len(stream.setup):] = stream.main
    capacities = Capacities(instruments=100, accounts=1000, orders=1 << 16, positions=100_000,
                            client_order_ids=stream.new_orders + 1)
    return commands[:total], capacities


def append(directory: Path, commands: np.ndarray, durability: str) -> dict:
    shutil.rmtree(directory, ignore_errors=True)
    latencies = []
    with LmdbJournal(directory, durability=durability, map_size=1 << 33) as journal:
        began = time.perf_counter()
        for start in range(0, len(commands), BATCH):
            t = time.perf_counter()
            journal.append(commands[start:start + BATCH])
            latencies.append(time.perf_counter() - t)
        seconds = time.perf_counter() - began
    return {"commands_per_s": len(commands) / seconds, "seconds": seconds,
            "p50_us": percentile(latencies, 50) * 1e6, "p99_us": percentile(latencies, 99) * 1e6,
            "p999_us": percentile(latencies, 99.9) * 1e6, "batches": len(latencies)}


def build(directory: Path, commands: np.ndarray, capacities: Capacities,
          snapshot_behind: list[int]) -> dict[int, Path]:
    """A journal of ``commands`` (async writes: this is setup, not a measurement) and snapshot
    directories, one per distance from the end."""
    shutil.rmtree(directory, ignore_errors=True)
    blp = BusinessLogicProcessor(capacities)
    wanted = {len(commands) - behind: behind for behind in snapshot_behind}
    stores: dict[int, Path] = {}
    with LmdbJournal(directory / "journal", durability="async", map_size=1 << 34) as journal:
        journal.set_config({"capacities": capacities.as_dict()})
        for start in range(0, len(commands), BATCH):
            batch = commands[start:start + BATCH]
            journal.append(batch)
            blp.process_view(batch)
            if blp.last_seq in wanted:
                arrays = capture(blp.arrays())
                where = directory / f"snapshots-{wanted[blp.last_seq]}"
                SnapshotStore(where).write(blp.last_seq, journal.epoch, journal.last_hash,
                                           state_hash_of(arrays), capacities, arrays)
                stores[wanted[blp.last_seq]] = where
        journal.flush()
    return stores


def timed_recovery(directory: Path, snapshots: Path | None) -> dict:
    with LmdbJournal(directory / "journal", readonly=True) as journal:
        began = time.perf_counter()
        recovered = recover(journal, SnapshotStore(snapshots) if snapshots else None)
        seconds = time.perf_counter() - began
    return {"seconds": seconds, "replayed": recovered.replayed_commands,
            "snapshot_seq": recovered.snapshot.seq if recovered.snapshot else None,
            "commands_per_s": recovered.replayed_commands / seconds,
            "state_hash": recovered.blp.state_hash().hex()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commands", type=int, default=10_000_000)
    ap.add_argument("--append", type=int, default=2_000_000, help="commands per append run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-journal-", dir=args.dir or Path.cwd()))
    results: dict = {"commands": args.commands, "runs": args.runs, "dir": str(work)}
    try:
        print(f"generating {args.commands:,} commands ...", flush=True)
        commands, capacities = stream_commands(args.commands, args.seed)
        warm_up()

        print("\n1. append, batches of 1,000 commands")
        for durability in ("fsync", "async"):
            runs = [append(work / "append", commands[:args.append], durability)
                    for _ in range(args.runs)]
            best = sorted(runs, key=lambda r: r["commands_per_s"])[len(runs) // 2]
            results[f"append_{durability}"] = best
            print(f"   {durability:>5}: {best['commands_per_s']:>12,.0f} commands/s   commit "
                  f"p50 {best['p50_us']:7.0f} us  p99 {best['p99_us']:7.0f} us  p99.9 "
                  f"{best['p999_us']:7.0f} us   (median of {args.runs} runs of "
                  f"{args.append:,})")
        fsync = results["append_fsync"]["commands_per_s"]
        print(f"   target >= 1,000,000 commands/s with fsync: "
              f"{'met' if fsync >= 1_000_000 else 'NOT met'}")

        print(f"\n   building a {len(commands):,}-command journal with snapshots ...", flush=True)
        stores = build(work / "node", commands, capacities, [50_000, 950_000])

        print("\n2. replay from the journal through the BLP (hashes verified)")
        runs = [timed_recovery(work / "node", None) for _ in range(args.runs)]
        scratch = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        results["replay_from_scratch"] = scratch
        print(f"   {scratch['commands_per_s']:,.0f} commands/s "
              f"({scratch['replayed']:,} commands in {scratch['seconds']:.2f} s); target >= "
              f"2,000,000: {'met' if scratch['commands_per_s'] >= 2_000_000 else 'NOT met'}")

        print(f"\n3. recovery of the {len(commands):,}-command journal")
        for behind, store in sorted(stores.items()):
            runs = [timed_recovery(work / "node", store) for _ in range(args.runs)]
            mid = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
            results[f"recovery_snapshot_{behind}_behind"] = mid
            assert mid["state_hash"] == scratch["state_hash"]
            print(f"   from a snapshot {behind:>7,} commands before the end: "
                  f"{mid['seconds']:.2f} s (target < 5 s: "
                  f"{'met' if mid['seconds'] < 5 else 'NOT met'})")
        print(f"   from scratch: {scratch['seconds']:.2f} s; all rebuilds give state hash "
              f"{scratch['state_hash'][:16]}...")
        results["loadavg"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
