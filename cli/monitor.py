"""What ``ringex up`` measures for its view: one snapshot dict (``cli.view``) per call.

Sources, and nothing else: the nodes' ``status`` control op (roles, epochs, journal sequence,
standby lag, hash checkpoints; ``hash: true`` every few seconds for a direct state-hash
comparison), a market-data client subscribed to every symbol (top of book, trades), and the
acknowledgement latencies that clients of this process recorded in a ``LatencyRecorder``.
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from gateways.market_data_client import MarketDataClient, Quote, Trade

from .supervisor import Supervisor

HASH_EVERY_S = 5.0


class LatencyRecorder:
    """Acknowledgement latencies (seconds) of the last ``keep`` acknowledgements; thread-safe."""

    def __init__(self, keep: int = 20_000) -> None:
        self._samples: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)
            self.count += 1

    def summary(self) -> dict | None:
        """{count, p50, p99, p999, max} in microseconds over the kept window, or None."""
        with self._lock:
            if not self._samples:
                return None
            values = np.fromiter(self._samples, float) * 1e6
            count = self.count
        p50, p99, p999 = np.percentile(values, [50, 99, 99.9])
        return {"count": count, "p50": float(p50), "p99": float(p99), "p999": float(p999),
                "max": float(values.max())}


class Monitor:
    def __init__(self, supervisor: Supervisor, symbols: list[str],
                 latency: LatencyRecorder | None = None, trades_kept: int = 5) -> None:
        self.supervisor = supervisor
        self.symbols = symbols
        self.latency = latency
        layout = supervisor.layout
        self.md = MarketDataClient(layout.market_data, layout.snapshots)
        for symbol in symbols:
            self.md.subscribe(symbol)
        self.trades = {s: deque(maxlen=trades_kept) for s in symbols}
        self.quotes: dict[str, Quote] = {}
        self.started = time.monotonic()
        self._rate_mark: tuple[float, int] | None = None
        self.commands_per_s = 0.0
        self._next_hash = 0.0
        self.hash_result: dict | None = None     #: the last direct state-hash comparison
        self.hash_agreements = 0
        self.demo: dict | None = None            #: set by whoever runs demo traffic

    def _market(self) -> list[dict]:
        for update in self.md.poll(0):
            if isinstance(update, Trade) and update.symbol in self.trades:
                self.trades[update.symbol].appendleft(update)
            elif isinstance(update, Quote):
                self.quotes[update.symbol] = update
        out = []
        for symbol in self.symbols:
            quote = self.quotes.get(symbol)
            trades = self.trades[symbol]
            out.append({"symbol": symbol,
                        "bid": quote.bid if quote else None,
                        "bid_size": quote.bid_size if quote else None,
                        "ask": quote.ask if quote else None,
                        "ask_size": quote.ask_size if quote else None,
                        "last": (quote.last_price if quote and quote.last_price else
                                 trades[0].price if trades else None),
                        "trades": [{"price": t.price, "quantity": t.quantity,
                                    "side": t.aggressor_side} for t in trades]})
        return out

    def _hashes(self, primary: str | None, standby: str | None) -> None:
        """Every HASH_EVERY_S: both nodes' state hashes; compared when they are at the same
        sequence number (else the result says pending)."""
        now = time.monotonic()
        if primary is None or standby is None or now < self._next_hash:
            return
        self._next_hash = now + HASH_EVERY_S
        nodes = {n.name: n for n in self.supervisor.layout.nodes}
        try:
            first = self.supervisor.node_status(nodes[primary], with_hash=True, timeout_ms=2000)
            second = self.supervisor.node_status(nodes[standby], with_hash=True,
                                                 timeout_ms=2000)
        except TimeoutError:
            return
        if first["applied_seq"] != second["applied_seq"]:
            return
        agree = first["state_hash"] == second["state_hash"]
        self.hash_result = {"seq": first["applied_seq"], "agree": agree}
        self.hash_agreements += agree

    def snapshot(self) -> dict:
        statuses = self.supervisor.watch()
        nodes, primary, standby = [], None, None
        for node in self.supervisor.layout.nodes:
            s = statuses[node.name]
            child = self.supervisor.children.get(node.name)
            nodes.append({"name": node.name, "node_id": node.node_id,
                          "role": s.get("role") if s else None,
                          "epoch": s.get("epoch") if s else None,
                          "last_seq": s.get("last_seq") if s else None,
                          "alive": bool(child and child.alive)})
            if s and s.get("role") == "primary":
                primary = node.name
            elif s:
                standby = node.name
        now = time.monotonic()
        if primary is not None:
            seq = statuses[primary]["last_seq"]
            if self._rate_mark is not None and now > self._rate_mark[0]:
                self.commands_per_s = max(0, seq - self._rate_mark[1]) / (now - self._rate_mark[0])
            self._rate_mark = (now, seq)
        self._hashes(primary, standby)
        return {"uptime_s": now - self.started, "commands_per_s": self.commands_per_s,
                "nodes": nodes, "primary": primary,
                "standby": self._standby(statuses, primary, standby),
                "latency_us": self.latency.summary() if self.latency else None,
                "instruments": self._market(), "demo": self.demo,
                "notices": list(self.supervisor.notices)}

    def _standby(self, statuses: dict, primary: str | None, standby: str | None) -> dict:
        if primary is None:
            return {"state": "no primary"}
        link = statuses[primary].get("replication") or {}
        out = {"node": standby, "state": link.get("standby"),
               "lag_commands": link.get("lag_commands"), "lag_seconds": link.get("lag_seconds")}
        follower = (statuses.get(standby) or {}).get("replication") or {}
        checks = follower.get("hash_checks_passed") or 0
        diverged = link.get("diverged") or follower.get("diverged")
        direct = self.hash_result
        if diverged or (direct and not direct["agree"]):
            out["hash"] = "diverged"
        elif checks or direct:
            out["hash"] = "agree"
        else:
            out["hash"] = "pending"
        out["checks"] = checks + self.hash_agreements
        if direct:
            out["hash_seq"] = direct["seq"]
        return out

    def close(self) -> None:
        self.md.close()
