"""Why the kernel is slow: sample it with perf, and count its reference-count operations.

    .venv/bin/python bench/profile_refcounts.py [--commands N] [--per-case K]

Needs ``perf`` and ``gdb`` (Linux, permission to attach to a child process). Not part of the
benchmark proper; BENCHMARKS.md quotes its output.

1. ``perf record`` samples a child process that runs the benchmark's mixed stream over and
   over; the hottest instruction addresses are named with gdb (numba registers its JIT code
   with gdb's JIT interface, which perf cannot read), and the samples are grouped by function.
2. the optimized LLVM IR of the kernel: static ``NRT_incref``/``NRT_decref`` call sites per
   function (compiled afresh in a temporary cache);
3. gdb breakpoints on ``NRT_incref`` / ``NRT_decref`` (numba's atomic reference counting, with
   an ignore count so they only count) measure how many of each one batch of K commands of each
   kind (bench/kinds.py) executes, from the same steady-state snapshot.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import os, signal, sys, time
sys.path.insert(0, {root!r})
import dataclasses
import numpy as np
from bench import kinds
from core.workload import StreamSpec, generate
from core.blp import BusinessLogicProcessor, warm_up
from core.config import Capacities
mode, workdir, n, per_case = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
stream = generate(StreamSpec(commands=n))
cap = Capacities(instruments=100, accounts=1000, orders=1 << 16, positions=100_000,
                 client_order_ids=stream.new_orders + 50_000)
warm_up()

def fresh():
    blp = BusinessLogicProcessor(cap)
    for j in range(0, len(stream.setup), 1024):
        blp.process_view(stream.setup[j:j + 1024])
    return blp

def wait_for(name):
    path = os.path.join(workdir, name)
    while not os.path.exists(path):
        time.sleep(0.01)

if mode == "perf":
    blp = fresh()
    open(os.path.join(workdir, "ready"), "w").write(str(os.getpid()))
    while True:
        for j in range(0, len(stream.main), 1024):
            blp.process_view(stream.main[j:j + 1024])
        blp = fresh()
else:
    blp = fresh()
    for j in range(0, len(stream.main), 1024):
        blp.process_view(stream.main[j:j + 1024])
    snapshot = kinds.clone_state(blp.state)
    cases = kinds.build_cases(snapshot, 100, 1000, n_new=per_case)
    names = list(cases)
    with open(os.path.join(workdir, "cases"), "w") as f:
        f.write("\n".join(names))
    open(os.path.join(workdir, "ready"), "w").write(str(os.getpid()))
    for k, name in enumerate(names):
        b = BusinessLogicProcessor(cap, state=kinds.clone_state(snapshot))
        cmds = cases[name][:per_case].copy()
        cmds["seq"] = np.arange(b.last_seq + 1, b.last_seq + 1 + len(cmds))
        wait_for(f"go{{k}}")
        b.process_view(cmds)
        os.kill(os.getpid(), signal.SIGUSR1)
    wait_for("done")
"""


def _child(mode: str, workdir: str, n: int, per_case: int) -> subprocess.Popen:
    code = _CHILD.format(root=_ROOT)
    return subprocess.Popen([sys.executable, "-c", code, mode, workdir, str(n), str(per_case)],
                            cwd=_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _wait_ready(workdir: str, proc: subprocess.Popen) -> int:
    path = os.path.join(workdir, "ready")
    while not os.path.exists(path) or not open(path).read():
        if proc.poll() is not None:
            raise SystemExit(f"child failed: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    return int(open(path).read())


def _demangle(name: str) -> str:
    """``_ZN4core6kernel6orders9find_liveB3v56...`` -> ``core.kernel.orders.find_live``."""
    if not name.startswith("_ZN"):
        return name
    parts, at = [], 3
    while at < len(name) and name[at].isdigit():
        digits = re.match(r"\d+", name[at:]).group(0)
        at += len(digits)
        parts.append(name[at:at + int(digits)])
        at += int(digits)
    return ".".join(parts) or name


def perf_profile(n: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        proc = _child("perf", workdir, n, 0)
        try:
            pid = _wait_ready(workdir, proc)
            data = os.path.join(workdir, "perf.data")
            subprocess.run(["perf", "record", "-q", "-p", str(pid), "-o", data, "--", "sleep",
                            str(seconds)], check=True, capture_output=True)
            script = subprocess.run(["perf", "script", "-i", data, "-F", "ip"],
                                    capture_output=True, text=True, check=True).stdout
            ips = collections.Counter(line.strip() for line in script.splitlines()
                                      if line.strip())
            total = sum(ips.values())
            top = ips.most_common(40)
            args = ["gdb", "-p", str(pid), "-batch"]
            for ip, _ in top:
                args += ["-ex", f"info symbol 0x{ip}"]
            out = subprocess.run(args, capture_output=True, text=True).stdout
        finally:
            proc.kill()
            proc.wait()
    names = [line for line in out.splitlines()
             if " in section " in line or line.startswith("No symbol matches")]
    by_function: collections.Counter = collections.Counter()
    for (ip, count), line in zip(top, names):
        match = re.match(r"(\S+)", line)
        name = match.group(1) if match and " in section " in line else f"0x{ip} (unnamed)"
        by_function[_demangle(re.sub(r"\+\d+$", "", name))] += count
    covered = sum(c for _, c in top)
    print(f"perf: {total:,} samples over {seconds:.0f} s of the mixed stream; the 40 hottest "
          f"addresses hold {covered / total:.1%} of them, grouped by function:")
    for name, count in by_function.most_common(12):
        print(f"  {count / total:7.2%}  {name}")


def count_refcounts(n: int, per_case: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        proc = _child("count", workdir, n, per_case)
        try:
            pid = _wait_ready(workdir, proc)
            names = open(os.path.join(workdir, "cases")).read().splitlines()
            args = ["gdb", "-p", str(pid), "-batch", "-ex", "handle SIGUSR1 stop print nopass"]
            for k in range(len(names)):
                inc, dec = 2 * k + 1, 2 * k + 2     # gdb numbers breakpoints in order
                args += ["-ex", "delete", "-ex", "break NRT_incref", "-ex", "break NRT_decref",
                         "-ex", f"ignore {inc} 1000000000", "-ex", f"ignore {dec} 1000000000",
                         "-ex", f"shell touch {workdir}/go{k}", "-ex", "continue",
                         "-ex", "info breakpoints"]
            args += ["-ex", f"shell touch {workdir}/done", "-ex", "detach"]
            out = subprocess.run(args, capture_output=True, text=True, timeout=3600).stdout
        finally:
            if proc.poll() is None:
                proc.wait(timeout=60)
    hits = [int(x) for x in re.findall(r"breakpoint already hit (\d+) time", out)]
    print(f"\ngdb: NRT_incref / NRT_decref calls per command, {per_case:,} commands per case "
          f"from the steady state after {n:,} commands:")
    print(f"  {'case':36s} {'incref':>8s} {'decref':>8s}")
    # Each round's table (after its batch) shows the incref hits, then the decref hits.
    rounds = [hits[i:i + 2] for i in range(0, len(hits), 2)]
    for name, pair in zip(names, rounds):
        if len(pair) == 2:
            print(f"  {name:36s} {pair[0] / per_case:8.1f} {pair[1] / per_case:8.1f}")
    if len(rounds) < len(names):
        print("  (gdb output incomplete)\n" + out[-3000:])


_IR_CHILD = r"""
import json, re
from core.blp import warm_up
from core.kernel import dispatch
warm_up()
ir = next(iter(dispatch.process_batch.inspect_llvm().values()))
rows = {}
for fn in re.split(r"\n(?=define )", ir):
    if fn.startswith("define"):
        name = re.search(r'@"?([^"(\s]+)', fn).group(1)
        rows[name] = (fn.count("@NRT_incref("), fn.count("@NRT_decref("))
print(json.dumps(rows))
"""


def ir_sites(top: int = 12) -> None:
    """Static NRT_incref/NRT_decref call sites per kernel function in the optimized LLVM IR
    (a fresh NUMBA_CACHE_DIR forces a compile, so the IR is available)."""
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", _IR_CHILD], cwd=_ROOT, capture_output=True,
                             text=True, env=dict(os.environ, NUMBA_CACHE_DIR=cache))
    if out.returncode != 0:
        print("IR inspection failed:", out.stderr[-1000:])
        return
    rows: dict[str, list[int]] = {}
    for name, (inc, dec) in json.loads(out.stdout.strip().splitlines()[-1]).items():
        short = _demangle(name)
        if short.startswith("core."):
            rows.setdefault(short, [inc, dec])   # specializations repeat: keep one
    print(f"\nLLVM IR: NRT_incref / NRT_decref call sites per kernel function "
          f"(static; {len(rows)} functions, {sum(r[0] for r in rows.values())} incref sites):")
    for name, (inc, dec) in sorted(rows.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {name:44s} {inc:5d} {dec:5d}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--commands", type=int, default=100_000,
                    help="main-stream commands before the measurements (default 100,000)")
    ap.add_argument("--per-case", type=int, default=500, help="commands per counted case")
    ap.add_argument("--seconds", type=float, default=3.0, help="perf sampling time")
    ap.add_argument("--skip-counts", action="store_true", help="skip the (slow) gdb counts")
    args = ap.parse_args()
    perf_profile(args.commands, args.seconds)
    ir_sites()
    if not args.skip_counts:
        count_refcounts(args.commands, args.per_case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
