"""Benchmark of the BLP kernel (issue 2): throughput, latency, memory, compile time.

    .venv/bin/python bench/bench_kernel.py [--commands N] [--runs R] [--json PATH]

1. generates a deterministic stream shaped like exchange-core's benchmark mix (core/workload.py)
   and prints its mix; a verification run prints the engine's outcomes (accepted, rejected by
   code, trades, resting orders at the end), checks integrity and determinism;
2. kernel throughput: median of R runs, each on a fresh BLP over the same stream, batches of
   1,024, setup prefix timed separately;
3. the reference model over the same stream (or a stated prefix if the whole would take more
   than ~3 minutes), its events compared batch by batch with the kernel's;
4. per-batch latency percentiles;
5. memory: bytes per resting order, and a real 10,000-instrument / 10,000,000-order allocation;
6. numba compile time, cold and cached;
plus a profile by command type (bench/kinds.py) to show where the time goes.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numba  # noqa: E402
import numpy as np  # noqa: E402

from bench import compile_time, kinds, memory  # noqa: E402
from core.workload import StreamSpec, generate  # noqa: E402
from core.blp import BusinessLogicProcessor, warm_up  # noqa: E402
from core.codes import ResultCode  # noqa: E402
from core.config import Capacities  # noqa: E402
from core.enums import EventKind  # noqa: E402
from core.kernel.state import IN_STOP_LIST, Sc  # noqa: E402
from core.model.engine import ReferenceModel  # noqa: E402

BATCH = 1024
TARGET_THROUGHPUT = 5_000_000
TARGET_BYTES_PER_ORDER = 128
MODEL_FULL_LIMIT_S = 180        #: run the model on the whole stream only below this projection
MODEL_PREFIX_BUDGET_S = 120     #: otherwise, on the prefix that fits in this many seconds
LARGE = dict(instruments=10_000, orders=10_000_000, accounts=1_000_000, positions=4_000_000,
             client_order_ids=16_000_000)
LARGE_LEVELS = 2_000_000        #: 200 non-empty price levels per instrument on average


# ---------------------------------------------------------------------------------- printing
def table(title: str, header: list[str], rows: list[list], note: str | None = None) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("-" * len(title))
    for k, r in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    if note:
        print(note)


def rate(x: float) -> str:
    return f"{x:,.0f}"


def us(ns: float) -> str:
    return f"{ns / 1000:,.1f} us"


def machine() -> dict:
    model = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu_model": model, "cpus": os.cpu_count(), "python": platform.python_version(),
            "numba": numba.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "loadavg_start": os.getloadavg()}


# ---------------------------------------------------------------------------------- runs
def batches(commands: np.ndarray):
    for j in range(0, len(commands), BATCH):
        yield commands[j:j + BATCH]


def verification_run(cap: Capacities, stream) -> dict:
    """Untimed: outcome counts, per-batch event digests, integrity, the final state hash."""
    blp = BusinessLogicProcessor(cap)
    for b in batches(stream.setup):
        ev = blp.process_view(b)
        bad = ev[ev["kind"] == EventKind.REJECTED]
        if len(bad):
            raise SystemExit(f"setup command rejected: code {ResultCode(int(bad[0]['code'])).name}")
    kinds_count = np.zeros(256, np.int64)
    rejected = np.zeros(1000, np.int64)
    cancelled = np.zeros(1000, np.int64)
    trade_cmds = 0
    digests = []
    for b in batches(stream.main):
        ev = blp.process_view(b)
        kinds_count += np.bincount(ev["kind"], minlength=256)
        r = ev["kind"] == EventKind.REJECTED
        if r.any():
            rejected += np.bincount(ev["code"][r], minlength=1000)
        c = ev["kind"] == EventKind.ORDER_CANCELLED
        if c.any():
            cancelled += np.bincount(ev["code"][c], minlength=1000)
        t = ev["kind"] == EventKind.TRADE
        if t.any():
            trade_cmds += len(np.unique(ev["seq"][t]))
        digests.append(hashlib.blake2b(ev.tobytes(), digest_size=16).digest())
    st = blp.state
    resting = int(np.count_nonzero((st.orders.order_id != 0) & (st.orders.level >= 0)))
    dormant = int(np.count_nonzero((st.orders.order_id != 0) &
                                   (st.orders.level == IN_STOP_LIST)))
    t0 = time.perf_counter()
    integrity_error = None
    try:
        blp.check_integrity()
    except AssertionError as exc:   # IntegrityError
        integrity_error = str(exc)[:500]
    integrity_s = time.perf_counter() - t0
    n = len(stream.main)
    return {
        "events": int(kinds_count.sum()),
        "events_by_kind": {EventKind(k).name: int(v) for k, v in enumerate(kinds_count) if v},
        "rejected_by_code": {ResultCode(k).name: int(v) for k, v in enumerate(rejected) if v},
        "rejected": int(rejected.sum()), "rejected_share": float(rejected.sum() / n),
        "cancelled_by_code": {ResultCode(k).name: int(v) for k, v in enumerate(cancelled) if v},
        "accepted": int(kinds_count[EventKind.ORDER_ACCEPTED]),
        "trades": int(kinds_count[EventKind.TRADE]),
        "commands_with_trades": trade_cmds, "commands_with_trades_share": trade_cmds / n,
        "resting_orders_end": resting, "dormant_stops_end": dormant,
        "price_levels_end": int(st.scalars[Sc.LEVELS_USED]),
        "generator_expected": {"resting": stream.sim_resting_end,
                               "dormant": stream.sim_dormant_end, "trades": stream.sim_trades},
        "integrity_ok": integrity_error is None, "integrity_error": integrity_error,
        "integrity_check_s": integrity_s,
        "state_hash": blp.state_hash().hex(), "digests": digests,
    }


def timed_run(cap: Capacities, stream) -> dict:
    blp = BusinessLogicProcessor(cap)
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for b in batches(stream.setup):
            blp.process_view(b)
        setup_ns = time.perf_counter_ns() - t0
        main = stream.main
        lat = np.zeros((len(main) + BATCH - 1) // BATCH, np.int64)
        clock = time.perf_counter_ns
        process = blp.process_view
        k = 0
        t0 = clock()
        for j in range(0, len(main), BATCH):
            b = main[j:j + BATCH]
            t = clock()
            process(b)
            lat[k] = clock() - t
            k += 1
        wall_ns = clock() - t0
    finally:
        gc.enable()
    return {"setup_ns": setup_ns, "wall_ns": wall_ns, "latencies_ns": lat,
            "state_hash": blp.state_hash().hex()}


def model_run(cap: Capacities, stream, digests: list[bytes]) -> dict:
    """The reference model over the stream (or a prefix), events checked against the kernel's."""
    model = ReferenceModel(cap)
    t0 = time.perf_counter()
    for b in batches(stream.setup):
        model.process(b)
    setup_s = time.perf_counter() - t0
    n_batches = (len(stream.main) + BATCH - 1) // BATCH
    limit = n_batches
    probe = min(16, n_batches)
    spent = 0.0
    mismatches = 0
    first_mismatch = None
    projected = None
    k = 0
    for b in batches(stream.main):
        if k >= limit:
            break
        t = time.perf_counter()
        ev = model.process(b)
        spent += time.perf_counter() - t
        if hashlib.blake2b(ev.tobytes(), digest_size=16).digest() != digests[k]:
            mismatches += 1
            first_mismatch = k if first_mismatch is None else first_mismatch
        k += 1
        if k == probe and projected is None:
            projected = spent / probe * n_batches
            if projected > MODEL_FULL_LIMIT_S:
                limit = max(probe, int(MODEL_PREFIX_BUDGET_S / (spent / probe)))
    commands = min(k * BATCH, len(stream.main))
    return {"setup_s": setup_s, "main_s": spent, "commands": commands, "batches": k,
            "full_stream": k == n_batches, "projected_full_s": projected,
            "rate": commands / spent, "batch_mismatches": mismatches,
            "first_mismatch_batch": first_mismatch,
            "state_hash": model.state_hash().hex()}


def kernel_state_hash_after(cap: Capacities, stream, n_batches: int) -> str:
    blp = BusinessLogicProcessor(cap)
    for b in batches(stream.setup):
        blp.process_view(b)
    for k, b in enumerate(batches(stream.main)):
        if k >= n_batches:
            break
        blp.process_view(b)
    return blp.state_hash().hex()


# ---------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--commands", type=int, default=2_000_000,
                    help="order commands after the setup prefix (default 2,000,000)")
    ap.add_argument("--runs", type=int, default=5, help="timed kernel runs (default 5)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    ap.add_argument("--seed", type=int, default=StreamSpec.seed)
    ap.add_argument("--no-model", action="store_true", help="skip the reference model")
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time probe")
    ap.add_argument("--no-large", action="store_true", help="skip the 10M-order allocation")
    args = ap.parse_args(argv)
    results: dict = {"command": " ".join([os.path.relpath(sys.executable, _ROOT)] + sys.argv),
                     "machine": machine(), "batch": BATCH}
    m = results["machine"]
    print(f"ringex BLP kernel benchmark: {m['cpu_model']}, {m['cpus']} CPUs, Python "
          f"{m['python']}, numba {m['numba']}, numpy {m['numpy']}")
    print(f"load average at start: {m['loadavg_start'][0]:.2f} {m['loadavg_start'][1]:.2f} "
          f"{m['loadavg_start'][2]:.2f}  (a shared 2-core machine: other processes may run)")

    # 1. the stream ------------------------------------------------------------------------
    spec = StreamSpec(commands=args.commands, seed=args.seed)
    stream = generate(spec)
    results["stream"] = {"spec": spec.describe(), "setup_commands": len(stream.setup),
                         "main_commands": len(stream.main), "new_orders": stream.new_orders,
                         "generation_s": stream.seconds,
                         "mix": {name: count for name, count, _ in stream.mix()}}
    n = len(stream.main)
    admin = int(np.count_nonzero(stream.setup_categories == 255))
    table(f"1. Stream: {n:,} order commands after a setup prefix of {len(stream.setup):,} "
          f"({admin:,} admin/deposit + {len(stream.setup) - admin:,} book-building GTC orders); "
          f"{spec.accounts:,} accounts, {spec.instruments} instruments, seed {spec.seed}, "
          f"generated in {stream.seconds:.1f} s",
          ["command (main stream)", "count", "share"],
          [[name, f"{count:,}", f"{share:.2%}"] for name, count, share in stream.mix()])

    cap = Capacities(instruments=spec.instruments, accounts=spec.accounts, orders=1 << 16,
                     positions=spec.accounts * spec.instruments,
                     client_order_ids=stream.new_orders, price_levels=0)
    results["capacities"] = cap.as_dict()
    t0 = time.perf_counter()
    warm_up()
    results["warm_up_in_process_s"] = time.perf_counter() - t0

    ver = verification_run(cap, stream)
    digests = ver.pop("digests")
    results["outcomes"] = ver
    rows = [["commands (main stream)", f"{n:,}"],
            ["events", f"{ver['events']:,}"],
            ["orders accepted", f"{ver['accepted']:,}"],
            ["rejected (all codes)", f"{ver['rejected']:,} ({ver['rejected_share']:.3%})"]]
    rows += [[f"  rejected {code}", f"{v:,}"] for code, v in ver["rejected_by_code"].items()]
    rows += [[f"  cancelled {code}", f"{v:,}"] for code, v in ver["cancelled_by_code"].items()]
    rows += [["order replaced (modify)", f"{ver['events_by_kind'].get('ORDER_REPLACED', 0):,}"],
             ["trades (fills)", f"{ver['trades']:,}"],
             ["commands that traded", f"{ver['commands_with_trades']:,} "
                                      f"({ver['commands_with_trades_share']:.2%})"],
             ["stops triggered", f"{ver['events_by_kind'].get('STOP_TRIGGERED', 0):,}"],
             ["resting orders at end", f"{ver['resting_orders_end']:,} (generator expected "
                                       f"{stream.sim_resting_end:,})"],
             ["dormant stops at end", f"{ver['dormant_stops_end']:,} (generator expected "
                                      f"{stream.sim_dormant_end:,})"],
             ["non-empty price levels at end", f"{ver['price_levels_end']:,}"],
             ["check_integrity() at end", ("ok" if ver["integrity_ok"] else "FAILED")
              + f" ({ver['integrity_check_s']:.1f} s)"]]
    table("   Outcomes (untimed verification run; aim: rejections < 5 %)", ["outcome", "count"],
          rows)

    # 2. kernel throughput ---------------------------------------------------------------
    runs = []
    for r in range(args.runs):
        runs.append(timed_run(cap, stream))
        print(f"   run {r + 1}/{args.runs}: {n / (runs[-1]['wall_ns'] / 1e9):,.0f} commands/s")
    rates = [n / (x["wall_ns"] / 1e9) for x in runs]
    setup_rates = [len(stream.setup) / (x["setup_ns"] / 1e9) for x in runs]
    hashes = {x["state_hash"] for x in runs} | {ver["state_hash"]}
    median_rate = float(np.median(rates))
    results["kernel"] = {
        "rates": rates, "median_rate": median_rate, "min_rate": min(rates),
        "max_rate": max(rates), "setup_rates": setup_rates,
        "median_setup_rate": float(np.median(setup_rates)),
        "deterministic": len(hashes) == 1, "state_hash": ver["state_hash"],
        "target": TARGET_THROUGHPUT, "target_met": median_rate >= TARGET_THROUGHPUT}
    table(f"2. Kernel throughput ({args.runs} runs, fresh BLP each, batches of {BATCH:,}, "
          f"gc disabled while timing)", ["figure", "value"],
          [["median commands/s (main stream)", rate(median_rate)],
           ["min .. max commands/s", f"{rate(min(rates))} .. {rate(max(rates))}"],
           ["median ns per command", f"{1e9 / median_rate:,.0f}"],
           ["setup prefix, commands/s (timed separately)",
            rate(float(np.median(setup_rates)))],
           ["target", f">= {rate(TARGET_THROUGHPUT)} commands/s on one core"],
           ["target met", "yes" if median_rate >= TARGET_THROUGHPUT else "NO"],
           ["state hash identical over all runs", "yes" if len(hashes) == 1 else "NO"]])

    # 4. latency (printed after the model, computed here) --------------------------------
    pct = []
    for x in runs:
        lat = x["latencies_ns"]
        full = lat[:n // BATCH]   # full batches only
        pct.append(np.percentile(full, [50, 99, 99.9]).tolist() + [float(full.max())])
    med = np.median(np.array(pct), axis=0)
    results["latency_ns"] = {"per_run_p50_p99_p999_max": pct, "p50": med[0], "p99": med[1],
                             "p999": med[2], "max": med[3],
                             "per_command_p50": med[0] / BATCH, "per_command_p99": med[1] / BATCH,
                             "per_command_p999": med[2] / BATCH}

    # 3. model -----------------------------------------------------------------------------
    if not args.no_model:
        mod = model_run(cap, stream, digests)
        median_run = runs[int(np.argsort(rates)[len(rates) // 2])]
        kernel_same = mod["commands"] / (median_run["latencies_ns"][:mod["batches"]].sum() / 1e9)
        mod["kernel_rate_same_commands"] = kernel_same
        mod["speed_ratio"] = kernel_same / mod["rate"]
        kernel_hash = ver["state_hash"] if mod["full_stream"] else \
            kernel_state_hash_after(cap, stream, mod["batches"])
        mod["state_hash_matches_kernel"] = mod["state_hash"] == kernel_hash
        results["model"] = mod
        scope = ("the whole stream" if mod["full_stream"] else
                 f"a PREFIX of {mod['commands']:,} commands (full stream projected at "
                 f"{mod['projected_full_s']:.0f} s > {MODEL_FULL_LIMIT_S} s)")
        table(f"3. Reference model (plain Python) on {scope}", ["figure", "value"],
              [["model commands/s", rate(mod["rate"])],
               ["model time", f"{mod['main_s']:.1f} s (+ setup {mod['setup_s']:.1f} s)"],
               ["kernel commands/s on the same commands (median run)", rate(kernel_same)],
               ["kernel / model speed ratio", f"{mod['speed_ratio']:.1f}x"],
               ["event batches differing from the kernel's",
                f"{mod['batch_mismatches']} of {mod['batches']}"],
               ["state hash after the same commands equals the kernel's",
                "yes" if mod["state_hash_matches_kernel"] else "NO"]])

    lat = results["latency_ns"]
    table(f"4. Latency per process_view call of {BATCH:,} commands (median over runs of each "
          f"run's percentile; includes the wrapper's sequence check)",
          ["percentile", "per batch", "per command"],
          [["p50", us(lat["p50"]), f"{lat['p50'] / BATCH:,.0f} ns"],
           ["p99", us(lat["p99"]), f"{lat['p99'] / BATCH:,.0f} ns"],
           ["p99.9", us(lat["p999"]), f"{lat['p999'] / BATCH:,.0f} ns"],
           ["max", us(lat["max"]), f"{lat['max'] / BATCH:,.0f} ns"]])

    # 5. memory -----------------------------------------------------------------------------
    configs = [("this benchmark", cap),
               ("10M orders, price_levels = orders (default)",
                Capacities(**LARGE, price_levels=0)),
               (f"10M orders, price_levels = {LARGE_LEVELS:,}",
                Capacities(**LARGE, price_levels=LARGE_LEVELS))]
    per = [(label, memory.per_order_bytes(c)) for label, c in configs]
    results["memory_per_order"] = {label: p for label, p in per}
    table("5. Memory by what it scales with (nbytes / that capacity): per resting order (orders "
          "table + order-id index), per price level (levels + book arena), per client order id "
          "of the day; 'all-in' = orders, index, levels and arena over the order capacity",
          ["configuration", "orders", "levels"] + list(memory.PER_ORDER)
          + ["per order", "target", "met"] + list(memory.PER_LEVEL)
          + ["per level", "per client id", "all-in/order"],
          [[label, f"{p['capacities']['orders']:,}", f"{p['levels']:,}"]
           + [f"{p['bytes_per_order'][k]:.1f}" for k in memory.PER_ORDER]
           + [f"{p['per_resting_order']:.1f}", f"<= {TARGET_BYTES_PER_ORDER}",
              "yes" if p["per_resting_order"] <= TARGET_BYTES_PER_ORDER else "NO"]
           + [f"{p['bytes_per_level'][k]:.1f}" for k in memory.PER_LEVEL]
           + [f"{p['per_price_level']:.1f}", f"{p['per_client_order_id']:.1f}",
              f"{p['all_in_per_order']:.1f}"]
           for label, p in per])
    if not args.no_large:
        large = []
        for label, c in configs[1:]:
            out = memory.allocate_large(c)
            out["label"] = label
            large.append(out)
        results["memory_large"] = large
        rows = []
        for out in large:
            if "error" in out:
                rows.append([out["label"], "error", out["error"][-80:], "", "", ""])
                continue
            rows.append([out["label"], memory.fmt_bytes(out["total_bytes"]),
                         memory.fmt_bytes(out["rss_increase_allocate_bytes"]),
                         memory.fmt_bytes(out["rss_increase_touched_bytes"]),
                         "yes" if out["fits_4gib"] else "NO",
                         ", ".join(f"{k} {memory.fmt_bytes(v)}" for k, v in
                                   sorted(out["tables"].items(), key=lambda kv: -kv[1])[:5])])
        table(f"   Large venue, really allocated in a child process: instruments "
              f"{LARGE['instruments']:,}, orders {LARGE['orders']:,}, accounts "
              f"{LARGE['accounts']:,}, positions {LARGE['positions']:,}, client_order_ids "
              f"{LARGE['client_order_ids']:,}",
              ["configuration", "total nbytes", "RSS +allocate", "RSS +every page touched",
               "fits 4 GiB", "largest tables"], rows,
              note="   (NumPy zeroed arrays are mapped lazily: RSS grows only as pages are "
                   "written, so the touched figure is what a full state would occupy)")

    # profile: where the time goes ---------------------------------------------------------
    prof_cap = dataclasses.replace(cap, client_order_ids=stream.new_orders + 50_000)
    blp = BusinessLogicProcessor(prof_cap)
    for b in batches(stream.setup):
        blp.process_view(b)
    warm = min(n, 200_000)
    for b in batches(stream.main[:warm]):
        blp.process_view(b)
    snapshot = kinds.clone_state(blp.state)
    cases = kinds.build_cases(snapshot, spec.instruments, spec.accounts, n_new=10_000)
    gc.collect()
    gc.disable()
    try:
        prof = kinds.time_cases(prof_cap, snapshot, cases)
    finally:
        gc.enable()
    results["profile_by_kind"] = prof
    mixed = 1e9 / median_rate
    table(f"   Where the time goes: homogeneous batches from the steady state after "
          f"{warm:,} commands (median of 3)",
          ["case", "commands", "ns/command", "events/command", "rejected", "trades"],
          [[p["case"], f"{p['commands']:,}", f"{p['ns_per_command']:,.0f}",
            f"{p['events_per_command']:.2f}", f"{p['rejected_share']:.1%}",
            f"{p['trades']:,}"] for p in prof]
          + [["(the mixed stream, median run)", f"{n:,}", f"{mixed:,.0f}",
              f"{ver['events'] / n:.2f}", f"{ver['rejected_share']:.1%}",
              f"{ver['trades']:,}"]])

    # 6. compile time -------------------------------------------------------------------------
    if not args.no_compile:
        ct = compile_time.measure()
        results["compile"] = ct
        rows = []
        for label in ("cold", "cached"):
            x = ct[label]
            if "error" in x:
                rows.append([label, "error", x["error"][-80:], ""])
            else:
                rows.append([label, f"{x['import_s']:.2f} s", f"{x['warm_up_s']:.2f} s",
                             f"{x['process_wall_s']:.2f} s"])
        table("6. numba compile time (fresh process, fresh empty NUMBA_CACHE_DIR; then a second "
              "process with the same cache)", ["cache", "import core.blp", "warm_up()",
                                               "whole process"], rows)

    results["machine"]["loadavg_end"] = os.getloadavg()
    summary = [["kernel throughput (median)", rate(median_rate) + " commands/s",
                f">= {rate(TARGET_THROUGHPUT)}",
                "yes" if median_rate >= TARGET_THROUGHPUT else "NO"],
               ["bytes per resting order (this config)",
                f"{per[0][1]['per_resting_order']:.1f}", f"<= {TARGET_BYTES_PER_ORDER}",
                "yes" if per[0][1]["per_resting_order"] <= TARGET_BYTES_PER_ORDER else "NO"]]
    if "memory_large" in results and "error" not in results["memory_large"][-1]:
        big = results["memory_large"][-1]
        summary.append([f"10k instruments / 10M orders in 4 GiB ({big['label']})",
                        memory.fmt_bytes(big["rss_increase_touched_bytes"]), "<= 4 GiB",
                        "yes" if big["fits_4gib"] else "NO"])
    table("Summary", ["figure", "measured", "target", "met"], summary,
          note=f"load average at end: {results['machine']['loadavg_end'][0]:.2f}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=_jsonable)
        print(f"\nwrote {args.json}")
    return 0


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, bytes):
        return x.hex()
    raise TypeError(type(x))


if __name__ == "__main__":
    sys.exit(main())
