"""Market-data benchmark (issue 5): trade -> subscriber latency, with 1 and with 100 subscribers.

    .venv/bin/python bench/bench_market_data.py [--rate 1000] [--seconds 10]
                                                [--subscribers 1,100] [--json FILE]

The path measured: load generator -> engine command port -> sequencer -> journal (fsync) ->
BLP -> event port -> ``ringex marketdata`` (one pass, publish) -> subscriber SUB sockets.

* The **load generator** is a separate process. Open loop: at ``t0 + i / rate`` it sends one
  request of two orders, a resting sell and a buy that crosses it (one trade per request), and
  never waits for replies before sending the next, so a stall delays every later trade and is
  charged to them (no coordinated omission). It records each request's *intended* send time
  against the engine sequence number its reply reports.
* **Subscribers** are SUB sockets on ``"ACME trades"``, spread over processes of
  ``--per-process`` sockets each (50: two processes for 100 subscribers); each stamps every
  message as it receives it.
* Two latencies per (trade, subscriber): **send -> receipt**, from the intended send time to
  the moment the subscriber has the message (``CLOCK_MONOTONIC``, system-wide); and **engine
  time -> receipt**, from the sequencer's timestamp (wall clock) to receipt (wall clock, same
  host). The first includes the fsync before the engine applies a batch, the second starts
  after the command was sequenced. The first ``--warmup`` seconds are left out.

Every process (engine, market data, load generator, subscribers) shares the machine's cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import msgpack  # noqa: E402
import numpy as np  # noqa: E402
import zmq  # noqa: E402

SYMBOL = "ACME"
PRICE = 10_000
CAPACITIES = {"instruments": 4, "accounts": 16, "orders": 1 << 16, "positions": 64,
              "client-ids": 1 << 21}


# ---------------------------------------------------------------- the load generator
def load_generator(command_endpoint: str, rate: int, seconds: float, out: Path) -> None:
    """Child process: one crossing pair per tick, open loop; saves (seq, intended_ns)."""
    from core import commands as C
    from core.enums import Side
    from replication.command_port import decode_reply, encode_request

    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(command_endpoint)
    total = int(rate * seconds)
    intended = np.zeros(total + 1, np.int64)
    seqs = np.zeros(total + 1, np.int64)
    pairs = [C.batch(C.new_order(2, 0, Side.SELL, 1, PRICE, client_order_id=i),
                     C.new_order(1, 0, Side.BUY, 1, PRICE, client_order_id=i))
             for i in range(1, total + 1)]
    interval = 1_000_000_000 // rate
    answered = 0
    t0 = time.monotonic_ns() + 50_000_000
    for i in range(1, total + 1):
        due = t0 + (i - 1) * interval
        while True:
            while socket.poll(0):
                reply = decode_reply(socket.recv_multipart())
                seqs[reply.request_id] = reply.first_seq + 1        # the buy made the trade
                answered += 1
            left = due - time.monotonic_ns()
            if left <= 0:
                break
            if left > 80_000:             # sleep (not spin: the cores are shared) until ~due
                time.sleep((left - 60_000) / 1e9)
        intended[i] = due
        socket.send_multipart(encode_request(i, pairs[i - 1]))
    deadline = time.monotonic() + 10
    while answered < total and time.monotonic() < deadline:
        if socket.poll(100):
            reply = decode_reply(socket.recv_multipart())
            seqs[reply.request_id] = reply.first_seq + 1
            answered += 1
    np.save(out, np.stack([seqs[1:], intended[1:]]))


# ---------------------------------------------------------------- subscribers
def subscriber_process(endpoint: str, sockets: int, out: Path, ready: Path) -> None:
    """Child process: ``sockets`` SUBs on the trades topic; stamps every message as it is
    received and decodes them only at the end (so that the stamps measure delivery, not this
    process's decoding); saves rows (socket, seq, engine_ts, recv_mono_ns, recv_wall_ns) on
    SIGTERM."""
    from gateways import md_protocol as P

    context = zmq.Context.instance()
    subs = []
    for _ in range(sockets):
        s = context.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, P.topic(SYMBOL, "trades"))
        s.setsockopt(zmq.SUBSCRIBE, P.HEARTBEAT_TOPIC)
        s.connect(endpoint)
        subs.append(s)
    poller = zmq.Poller()
    for s in subs:
        poller.register(s, zmq.POLLIN)
    received: list[tuple] = []
    heard: set[int] = set()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    index = {s: i for i, s in enumerate(subs)}
    heartbeat = P.HEARTBEAT_TOPIC
    while not stop:
        for s, _ in poller.poll(100):
            i = index[s]
            while True:
                try:
                    topic, body = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if topic != heartbeat:
                    received.append((i, time.monotonic_ns(), time.time_ns(), body))
                elif i not in heard:
                    heard.add(i)
                    if len(heard) == len(subs):
                        ready.write_text("ready")
    rows = [(i, trade[4], trade[5], mono, wall) for i, mono, wall, body in received
            for trade in msgpack.unpackb(body)[6]]
    np.save(out, np.array(rows, np.int64).reshape(-1, 5))


# ---------------------------------------------------------------- the run
def percentiles(values: np.ndarray) -> dict:
    if not len(values):
        return {}
    p = np.percentile(values, [50, 99, 99.9, 100]) / 1000
    return {"p50_us": round(p[0], 1), "p99_us": round(p[1], 1), "p99.9_us": round(p[2], 1),
            "max_us": round(p[3], 1), "samples": int(len(values))}


def run(base: Path, subscribers: int, rate: int, seconds: float, warmup: float,
        per_process: int, durability: str) -> dict:
    from core import commands as C
    from core.enums import AccountType
    from replication.command_port import CommandClient
    from tests.md_processes import MarketDataProcess
    from tests.processes import NodeProcess

    node = NodeProcess(base / "node", durability=durability, capacities=CAPACITIES,
                       extra=("--replication", "none"))
    children: list[subprocess.Popen] = []
    with node:
        client = CommandClient(node.command_endpoint)
        assert client.submit(C.batch(
            C.add_instrument(0, SYMBOL, tick_size=1, lot_size=1, reference_price=PRICE),
            C.add_account(1, AccountType.CASH), C.add_account(2, AccountType.CASH),
            C.deposit_cash(1, 10**15), C.deposit_position(2, 0, 10**7))).ok
        client.close()
        with MarketDataProcess([node.control_endpoint], base / "md.log",
                               heartbeat_ms=100) as md:
            try:
                outs, readies = [], []
                groups = [per_process] * (subscribers // per_process)
                if subscribers % per_process:
                    groups.append(subscribers % per_process)
                for g, count in enumerate(groups):
                    outs.append(base / f"sub{g}.npy")
                    readies.append(base / f"sub{g}.ready")
                    children.append(subprocess.Popen(
                        [sys.executable, __file__, "--role", "subscriber", "--endpoint",
                         md.publish_endpoint, "--sockets", str(count), "--out", str(outs[-1]),
                         "--ready", str(readies[-1])], cwd=ROOT))
                deadline = time.monotonic() + 30
                while not all(r.exists() for r in readies):
                    if time.monotonic() > deadline:
                        raise RuntimeError("subscribers never heard the service")
                    time.sleep(0.05)
                sent = base / "sent.npy"
                subprocess.run([sys.executable, __file__, "--role", "load", "--endpoint",
                                node.command_endpoint, "--rate", str(rate), "--seconds",
                                str(seconds), "--out", str(sent)], cwd=ROOT, check=True)
                time.sleep(0.5)
                for child in children:
                    child.send_signal(signal.SIGTERM)
                for child in children:
                    child.wait(30)
            finally:
                for child in children:
                    if child.poll() is None:
                        child.kill()
    seqs, intended = np.load(sent)
    due = dict(zip(seqs.tolist(), intended.tolist()))
    skip = int(warmup * rate)
    measured = set(seqs[skip:].tolist())
    received = np.concatenate([np.load(o) for o in outs])
    mine = received[np.isin(received[:, 1], list(measured))]
    send_to_receipt = mine[:, 3] - np.array([due[s] for s in mine[:, 1].tolist()], np.int64)
    engine_to_receipt = mine[:, 4] - mine[:, 2]
    expected = len(measured) * subscribers
    return {"subscribers": subscribers, "rate_trades_per_s": rate, "seconds": seconds,
            "durability": durability, "trades_expected": expected,
            "trades_received": int(len(mine)),
            "send_to_receipt": percentiles(send_to_receipt),
            "engine_ts_to_receipt": percentiles(engine_to_receipt)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=["main", "load", "subscriber"], default="main")
    parser.add_argument("--endpoint")
    parser.add_argument("--out")
    parser.add_argument("--ready")
    parser.add_argument("--sockets", type=int, default=1)
    parser.add_argument("--rate", type=int, default=1000, help="Trades per second offered.")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--subscribers", default="1,100")
    parser.add_argument("--per-process", type=int, default=50,
                        help="Subscriber sockets per subscriber process.")
    parser.add_argument("--durability", choices=["fsync", "async"], default="fsync")
    parser.add_argument("--json", help="Also write the results here.")
    args = parser.parse_args()
    if args.role == "load":
        return load_generator(args.endpoint, args.rate, args.seconds, Path(args.out))
    if args.role == "subscriber":
        return subscriber_process(args.endpoint, args.sockets, Path(args.out),
                                  Path(args.ready))
    results = []
    for count in (int(n) for n in args.subscribers.split(",")):
        base = Path(tempfile.mkdtemp(prefix="ringex-md-bench-"))
        try:
            result = run(base, count, args.rate, args.seconds, args.warmup, args.per_process,
                         args.durability)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        results.append(result)
        print(f"{count:>4} subscriber(s), {args.rate} trades/s for {args.seconds:g} s "
              f"({args.durability}): received {result['trades_received']:,} of "
              f"{result['trades_expected']:,}")
        for name in ("send_to_receipt", "engine_ts_to_receipt"):
            p = result[name]
            if not p:
                print(f"      {name:<21} no samples")
                continue
            print(f"      {name:<21} p50 {p['p50_us']:>8,.0f} us  p99 {p['p99_us']:>8,.0f} us"
                  f"  p99.9 {p['p99.9_us']:>8,.0f} us  max {p['max_us']:>8,.0f} us")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
