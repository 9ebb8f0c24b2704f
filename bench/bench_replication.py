"""Replication benchmarks (issue 4): the cost of a synchronous standby, and failover time.

    .venv/bin/python bench/bench_replication.py [--seconds 5] [--rates 1000,5000,10000]
                                                [--failovers 10] [--json FILE]

1. **Acknowledgement latency at fixed offered loads**, one order per request, through the whole
   path: client -> command port -> sequencer -> journal (fsync) -> standby (sync) -> BLP ->
   reply. The load is open-loop: request *i* is due at ``t0 + i / rate`` and its latency is
   measured from that intended time, not from when it was actually sent, so a stall is charged
   to every request it delayed (no coordinated omission). ``sync`` and ``none`` (a single node)
   run in the same invocation; their ratio is the price of replication.
2. **Saturation throughput**: a window of requests in flight (closed loop), one order per
   request and 100 orders per request.
3. **Failover**: under steady load the primary is SIGKILLed; a watcher waiting on the process
   runs ``ringex failover --standby ...`` (the real CLI, as a script would) the moment it sees
   it die; the client, meanwhile, retries its request on the standby's command port. The figure
   is the time from the kill to the first order acknowledged by the new primary. Target < 1 s.
   The dead node then rejoins as the new standby and the roles swap for the next round.

All processes share the machine's 2 cores with this load generator (a separate process).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import zmq  # noqa: E402

from core import commands as C  # noqa: E402
from core.enums import AccountType  # noqa: E402
from replication.command_port import CommandClient, decode_reply, encode_request  # noqa: E402
from tests.processes import NodeProcess  # noqa: E402

ACCOUNTS = 8
SETUP = C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1, reference_price=10_000,
                                 collar_bps=5000),
                *[C.add_account(a, AccountType.MARGIN) for a in range(ACCOUNTS)],
                *[C.deposit_cash(a, 10**15) for a in range(ACCOUNTS)])
CAPACITIES = {"instruments": 4, "accounts": 64, "orders": 1 << 18, "positions": 256,
              "client-ids": 1 << 23}


class Orders:
    """Crossing limit orders with unique client ids, pre-encoded in blocks."""

    def __init__(self) -> None:
        self.next = 0

    def block(self, n: int) -> np.ndarray:
        i = np.arange(self.next, self.next + n)
        self.next += n
        out = np.zeros(n, SETUP.dtype)
        out["kind"] = 1
        out["account"] = i % ACCOUNTS
        out["instrument"] = 0
        out["side"] = 1 + (i // 3) % 2
        out["order_type"] = 2
        out["time_in_force"] = 3          # IOC: trades or goes away, the book stays small
        out["quantity"] = 1 + i % 5
        out["price"] = 10_000 + np.where(out["side"] == 1, 1, -1) * (i % 3)
        out["client_order_id"] = 1 + i // ACCOUNTS
        return out


def cluster(base: Path, mode: str) -> list[NodeProcess]:
    extra = ("--replication", mode)
    primary = NodeProcess(base / f"{mode}-a", node_id=1, capacities=CAPACITIES,
                          extra=extra).start()
    nodes = [primary]
    if mode != "none":
        standby = NodeProcess(base / f"{mode}-b", role="standby", node_id=2,
                              primary=primary.replication_endpoint, capacities=CAPACITIES,
                              extra=extra).start()
        nodes.append(standby)
        deadline = time.monotonic() + 60
        while standby.status()["replication"].get("link") != "live":
            if time.monotonic() > deadline:
                raise TimeoutError("standby not live")
            time.sleep(0.05)
    CommandClient(primary.command_endpoint).submit(SETUP)
    return nodes


def fixed_rate(endpoint: str, orders: Orders, rate: int, seconds: float) -> dict:
    """Open-loop: one order per request, request i due at t0 + i / rate."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    total = int(rate * seconds)
    block = orders.block(total)
    frames = [encode_request(i, block[i:i + 1]) for i in range(total)]
    due = np.zeros(total)
    latency = np.full(total, np.nan)
    sent = received = 0
    t0 = time.perf_counter() + 0.05
    interval = 1.0 / rate
    while received < total:
        now = time.perf_counter()
        while sent < total and t0 + sent * interval <= now:
            due[sent] = t0 + sent * interval
            socket.send_multipart(frames[sent])
            sent += 1
        while True:
            try:
                reply = decode_reply(socket.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
            latency[reply.request_id] = time.perf_counter() - due[reply.request_id]
            received += 1
        if sent == total:
            if received < total and not socket.poll(2000):
                break                             # lost replies: stop waiting
            continue
        wait = t0 + sent * interval - time.perf_counter()
        if wait >= 0.001:
            socket.poll(int(wait * 1000))         # sleep until a reply or nearly due
        elif wait > 0:
            time.sleep(wait)                      # never spin: the engine needs the cores
    socket.close(0)
    elapsed = time.perf_counter() - t0
    done = latency[~np.isnan(latency)] * 1e6
    return {"offered_per_s": rate, "achieved_per_s": received / elapsed, "requests": total,
            "answered": int(received), "p50_us": float(np.percentile(done, 50)),
            "p99_us": float(np.percentile(done, 99)),
            "p999_us": float(np.percentile(done, 99.9)), "max_us": float(done.max())}


def saturate(endpoint: str, orders: Orders, per_request: int, window: int,
             seconds: float) -> dict:
    client = CommandClient(endpoint)
    done = 0
    inflight = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        while inflight < window:
            client.send(orders.block(per_request))
            inflight += 1
        client.receive()
        inflight -= 1
        done += per_request
    while inflight:
        client.receive()
        inflight -= 1
        done += per_request
    elapsed = time.perf_counter() - t0
    client.close()
    return {"per_request": per_request, "window": window, "orders_per_s": done / elapsed}


def failover_rounds(base: Path, rounds: int) -> list[float]:
    primary = NodeProcess(base / "f-a", node_id=1, capacities=CAPACITIES).start()
    standby = NodeProcess(base / "f-b", role="standby", node_id=2, capacities=CAPACITIES,
                          primary=primary.replication_endpoint).start()
    nodes = [primary, standby]
    orders = Orders()
    results = []
    try:
        CommandClient(primary.command_endpoint).submit(SETUP)
        for _ in range(rounds):
            while standby.status()["replication"].get("link") != "live":
                time.sleep(0.05)
            killed_at: list[float] = []

            def watch(dead=primary, successor=standby) -> None:
                dead.proc.wait()                        # the watcher sees the death ...
                subprocess.run([sys.executable, "-m", "cli.main", "failover", "--standby",
                                successor.control_endpoint], cwd=ROOT, check=True,
                               capture_output=True)      # ... and runs ringex failover
            watcher = threading.Thread(target=watch)
            watcher.start()
            client = CommandClient(primary.command_endpoint, timeout_ms=200)
            for _ in range(50):                          # steady load before the kill
                client.submit(orders.block(1))
            killed_at.append(time.perf_counter())
            primary.proc.kill()
            client.close()
            client = CommandClient(standby.command_endpoint, timeout_ms=50)
            while True:                                  # retry on the standby until acked
                try:
                    reply = client.submit(orders.block(1))
                except TimeoutError:
                    continue
                if reply.ok:
                    break
                time.sleep(0.002)
            results.append(time.perf_counter() - killed_at[0])
            client.close()
            watcher.join()
            primary._wait(10)
            old = primary
            primary, standby = standby, NodeProcess(old.data_dir, role="standby",
                                                   node_id=old.node_id, capacities=CAPACITIES,
                                                   primary=standby.replication_endpoint)
            nodes.append(standby.start())
    finally:
        for node in nodes:
            if node.alive:
                node.kill()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rates", default="1000,5000,10000,20000")
    ap.add_argument("--failovers", type=int, default=10)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-repl-", dir=args.dir or Path.cwd()))
    results: dict = {"latency": {}, "saturation": {}}
    try:
        for mode in ("none", "sync"):
            nodes = cluster(base, mode)
            orders = Orders()
            try:
                print(f"\nreplication {mode}")
                for rate in map(int, args.rates.split(",")):
                    r = fixed_rate(nodes[0].command_endpoint, orders, rate, args.seconds)
                    results["latency"][f"{mode}@{rate}"] = r
                    print(f"  offered {rate:>6,}/s  achieved {r['achieved_per_s']:>8,.0f}/s  "
                          f"ack p50 {r['p50_us']:>8,.0f} us  p99 {r['p99_us']:>9,.0f} us  "
                          f"p99.9 {r['p999_us']:>9,.0f} us")
                for per, window in ((1, 64), (100, 16)):
                    r = saturate(nodes[0].command_endpoint, orders, per, window, args.seconds)
                    results["saturation"][f"{mode}:{per}x{window}"] = r
                    print(f"  saturation, {per} order(s) per request, {window} in flight: "
                          f"{r['orders_per_s']:,.0f} orders/s")
            finally:
                for node in nodes:
                    node.kill()
        print("\nratio sync/none (p50 latency at the same offered load):")
        for rate in map(int, args.rates.split(",")):
            s, n = results["latency"][f"sync@{rate}"], results["latency"][f"none@{rate}"]
            print(f"  {rate:>6,}/s: p50 x{s['p50_us'] / n['p50_us']:.2f}, "
                  f"p99 x{s['p99_us'] / n['p99_us']:.2f}")
        if args.failovers:
            times = failover_rounds(base, args.failovers)
            results["failover_s"] = times
            print(f"\nfailover, kill -> first order acknowledged by the new primary "
                  f"({len(times)} rounds): median {np.median(times) * 1000:.0f} ms, "
                  f"max {max(times) * 1000:.0f} ms (target < 1000 ms)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results["loadavg"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
