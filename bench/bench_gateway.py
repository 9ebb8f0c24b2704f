"""Order entry through the gateway: throughput and acknowledgement latency (issue 5).

    .venv/bin/python bench/bench_gateway.py [--seconds 5] [--clients 8] [--rates 5000,10000,20000]

The path measured: client (DEALER) -> gateway (validation, sessions) -> primary (sequencer,
fsync journal, ``sync`` replication to a standby's fsync journal, BLP) -> event stream ->
gateway -> the client's ``accepted`` report. Everything is a real process on loopback: a
primary, a standby, the gateway, and load generators in processes of their own.

Three measurements:

* **fixed offered load** (open loop): every order has an intended send time on a fixed
  schedule, and its latency is counted from that time, not from when it was actually sent, so
  a stall is charged to every order it delayed (no coordinated omission). One order per
  message, ``--clients`` sessions spread over ``--generators`` processes.
* **saturation**, one order per message: each session keeps ``--window`` orders in flight;
  the figure is orders acknowledged per second.
* **batch frames**: each session sends frames of ``--batch`` orders, two frames in flight.

Latencies go into HdrHistograms (``hdrhistogram``, 1 µs .. 60 s, 3 significant digits), one per
generator process, merged here; that is what the library is for. The orders are buy/sell
pairs at one price, so they trade and the books stay small.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgpack  # noqa: E402
import zmq  # noqa: E402
from hdrh.histogram import HdrHistogram  # noqa: E402

from core import commands as C  # noqa: E402
from core.enums import AccountType  # noqa: E402
from replication.command_port import CommandClient  # noqa: E402
from tests.gateway_processes import GatewayProcess  # noqa: E402
from tests.processes import NodeProcess  # noqa: E402

SYMBOLS = ("B0", "B1", "B2", "B3")
PRICE = 10_000
CAPACITIES = {"instruments": 8, "accounts": 64, "orders": 1 << 16, "positions": 512,
              "client-ids": 1 << 23}


def histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)          # microseconds


def logon(socket: zmq.Socket, key: str) -> None:
    socket.send(msgpack.packb({"v": 1, "type": "logon", "req": 0, "key": key,
                               "heartbeat_ms": 60_000}))
    if not socket.poll(10_000):
        raise TimeoutError("no logon answer")
    answer = msgpack.unpackb(socket.recv(), raw=False)
    if answer.get("type") != "logged_on":
        raise RuntimeError(f"logon refused: {answer}")


def order(req: int, client_order_id: int) -> dict:
    return {"type": "new_order", "req": req, "symbol": SYMBOLS[client_order_id % len(SYMBOLS)],
            "side": "buy" if client_order_id // len(SYMBOLS) % 2 else "sell", "quantity": 1, "price": PRICE,
            "client_order_id": client_order_id}


def answers(frame: bytes):
    """(req, accepted?) of each order answer in one frame from the gateway."""
    message = msgpack.unpackb(frame, raw=False)
    for m in message["messages"] if message.get("type") == "batch" else (message,):
        if m.get("type") in ("report", "reject") and m.get("req"):
            yield m["req"], m.get("exec") == "accepted"


def generator(endpoint: str, keys: list[str], mode: str, rate: float, seconds: float,
              window: int, batch: int, first_id: int, out) -> None:
    """One load-generator process: its sessions, its schedule, its histogram."""
    context = zmq.Context()
    sockets = []
    for key in keys:
        s = context.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.connect(endpoint)
        logon(s, key)
        sockets.append(s)
    poller = zmq.Poller()
    for s in sockets:
        poller.register(s, zmq.POLLIN)
    hist = histogram()
    sent_at: dict[int, int] = {}
    inflight = [0] * len(sockets)
    counts = {"sent": 0, "accepted": 0, "refused": 0}
    next_req = 1
    client_order_id = first_id
    interval = 1e9 / rate if mode == "open" else 0
    start = time.perf_counter_ns()
    end = start + int(seconds * 1e9)
    due = start

    def receive(timeout_ms: int) -> None:
        for s, _ in poller.poll(timeout_ms):
            index = sockets.index(s)
            while True:
                try:
                    frame = s.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                now = time.perf_counter_ns()
                for req, accepted in answers(frame):
                    sent = sent_at.pop(req, None)
                    if sent is None:
                        continue
                    inflight[index] -= 1
                    counts["accepted" if accepted else "refused"] += 1
                    hist.record_value(max(1, (now - sent) // 1000))

    while True:
        now = time.perf_counter_ns()
        if now >= end:
            break
        if mode == "open":
            while due <= now and due < end:          # catch up: every due order goes out
                s = next_req % len(sockets)
                sent_at[next_req] = due               # latency from the INTENDED time
                sockets[s].send(msgpack.packb({"v": 1, **order(next_req, client_order_id)}))
                inflight[s] += 1
                next_req += 1
                client_order_id += 1
                counts["sent"] += 1
                due += interval
            wait_ms = max(0, int((due - time.perf_counter_ns()) / 1e6))
            receive(min(wait_ms, 5))
        else:
            for s, socket in enumerate(sockets):
                per_frame = batch if mode == "batch" else 1
                limit = 2 * batch if mode == "batch" else window
                while inflight[s] + per_frame <= limit:
                    requests = []
                    stamp = time.perf_counter_ns()
                    for _ in range(per_frame):
                        sent_at[next_req] = stamp
                        requests.append(order(next_req, client_order_id))
                        next_req += 1
                        client_order_id += 1
                    message = {"v": 1, "type": "batch", "requests": requests} \
                        if mode == "batch" else {"v": 1, **requests[0]}
                    socket.send(msgpack.packb(message))
                    inflight[s] += per_frame
                    counts["sent"] += per_frame
            receive(1)
    measured_ns = time.perf_counter_ns() - start
    drain_until = time.perf_counter_ns() + 10_000_000_000
    while sent_at and time.perf_counter_ns() < drain_until:
        receive(50)
    counts["unanswered"] = len(sent_at)
    counts["seconds"] = measured_ns / 1e9
    out.put((counts, hist.encode()))
    for s in sockets:
        s.close(0)
    context.term()


def run(endpoint: str, keys: list[str], generators: int, mode: str, rate: float,
        seconds: float, window: int, batch: int, base_id: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    per = [keys[i::generators] for i in range(generators)]
    procs = [ctx.Process(target=generator, args=(
        endpoint, per[i], mode, rate / generators, seconds, window, batch,
        base_id + i * 10_000_000, queue)) for i in range(generators)]
    for p in procs:
        p.start()
    merged, totals = histogram(), {}
    for _ in procs:
        counts, encoded = queue.get(timeout=seconds + 120)
        merged.decode_and_add(encoded)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v if k != "seconds" else max(totals.get(k, 0), v)
    for p in procs:
        p.join(30)
    q = {p: merged.get_value_at_percentile(p) for p in (50, 99, 99.9)}
    return {"mode": mode, "offered": rate, "sent": totals["sent"],
            "accepted": totals["accepted"], "refused": totals["refused"],
            "unanswered": totals["unanswered"],
            "throughput": totals["accepted"] / totals["seconds"],
            "p50_us": q[50], "p99_us": q[99], "p999_us": q[99.9],
            "max_us": merged.get_max_value()}


def setup(node: NodeProcess, accounts: int) -> None:
    client = CommandClient(node.command_endpoint)
    reply = client.submit(C.batch(
        *[C.add_instrument(i, s, tick_size=1, lot_size=1, reference_price=PRICE, collar_bps=5000)
          for i, s in enumerate(SYMBOLS)],
        *[C.add_account(a, AccountType.MARGIN) for a in range(1, accounts + 1)],
        *[C.deposit_cash(a, 10**15) for a in range(1, accounts + 1)]))
    client.close()
    assert reply.ok, reply.message


def show(result: dict) -> None:
    offered = f"{result['offered']:>9,.0f}/s" if result["mode"] == "open" else "      max"
    print(f"{result['mode']:>6} {offered}  acked {result['throughput']:>11,.0f}/s  "
          f"p50 {result['p50_us']:>7,} µs  p99 {result['p99_us']:>8,} µs  "
          f"p99.9 {result['p999_us']:>8,} µs  max {result['max_us']:>9,} µs  "
          f"refused {result['refused']}  unanswered {result['unanswered']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument("--rates", default="5000,10000,20000")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--replication", default="sync", choices=["sync", "none"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ringex-bench-gw-") as tmp:
        base = Path(tmp)
        primary = NodeProcess(base / "a", node_id=1, capacities=CAPACITIES,
                              extra=("--replication", args.replication)).start()
        nodes = [primary]
        if args.replication == "sync":
            nodes.append(NodeProcess(base / "b", role="standby", node_id=2,
                                     capacities=CAPACITIES,
                                     primary=primary.replication_endpoint).start())
        setup(primary, args.clients)
        gateway = GatewayProcess(base / "gw", [n.control_endpoint for n in nodes],
                                 extra=("--rate-limit", "1000000")).start()
        keys = [gateway.add_key(a) for a in range(1, args.clients + 1)]
        time.sleep(1.5)                                 # the gateway re-reads its key file
        try:
            print(f"gateway -> primary (fsync) -> {args.replication} standby; "
                  f"{args.clients} sessions in {args.generators} generator processes, "
                  f"{args.seconds:g} s each, cpus {os.cpu_count()}")
            base_id = 1
            run(gateway.endpoint, keys, args.generators, "open", 1000, 2.0, args.window,
                args.batch, base_id)                  # warm-up: connections, caches
            base_id += 100_000_000
            for rate in [float(r) for r in args.rates.split(",") if r]:
                show(run(gateway.endpoint, keys, args.generators, "open", rate, args.seconds,
                         args.window, args.batch, base_id))
                base_id += 100_000_000
            show(run(gateway.endpoint, keys, args.generators, "window", 0, args.seconds,
                     args.window, args.batch, base_id))
            base_id += 100_000_000
            show(run(gateway.endpoint, keys, args.generators, "batch", 0, args.seconds,
                     args.window, args.batch, base_id))
        finally:
            gateway.close()
            for node in reversed(nodes):
                node.close()


if __name__ == "__main__":
    main()
