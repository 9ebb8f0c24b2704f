"""Demo traffic: a market's order flow replayed through the gateway, as clients do.

``DemoTraffic`` plays a ``cli.flow.DemoFlow`` (NASDAQ days from LOBSTER files, synthetic days
where there are none) through the order-entry gateway with the client library: one
``OrderClient`` session (a broker's) trading several accounts, each request sent when its time
comes (``speed`` times faster than the recording; 0: as fast as the gateway answers), at most
``window`` requests unanswered. Requests due together go in one batch frame. It first cancels
whatever its accounts left in the book (the flow rebuilds the book from the day's opening),
and at the end of each day (when looping) it mass-cancels and calls ``on_day_end``.

It measures what a client sees: the acknowledgement latency of every request, from sending it
to the arrival of the gateway's answer (the session blocks on its socket between sends, so an
arrival is seen when it happens), and counts answers, fills and rejections by reason. Flow
accounts 0..n-1 map to ``accounts``; a flow client order id ``c`` is sent as ``base + c``,
where ``base`` is the microseconds since the epoch at start, so a later run never reuses one.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

from core.enums import Side, TimeInForce

from .flow import DemoFlow
from .lobster import CANCEL, DAY_END, MASS_CANCEL, MODIFY, NEW, Request
from .monitor import LatencyRecorder

SIDES = {Side.BUY: "buy", Side.SELL: "sell"}
TIFS = {TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc"}
UNANSWERED_AFTER_S = 30.0


class DemoTraffic:
    def __init__(self, gateway: str, key: str, flow: DemoFlow, accounts: list[int], *,
                 speed: float = 1.0, server_key: str | None = None,
                 latency: LatencyRecorder | None = None,
                 on_day_end: Callable[[], None] | None = None, window: int = 2_000) -> None:
        if len(accounts) < flow.accounts:
            raise ValueError(f"the flow has {flow.accounts} accounts, {len(accounts)} given")
        self.gateway, self.key, self.server_key = gateway, key, server_key
        self.flow = flow
        self.accounts = list(accounts[:flow.accounts])
        self.speed = speed
        self.latency = latency or LatencyRecorder()
        self.on_day_end = on_day_end
        self.window = window
        self.base = time.time_ns() // 1000
        self.sent = 0
        self.answered = 0
        self.fills = 0
        self.unanswered = 0
        self.rejections: Counter = Counter()
        self.error: str | None = None
        self.finished = False
        self._pending: dict[int, float] = {}       #: req -> when it was sent
        self._day_end: dict[int, set[int]] = {}     #: a day's end time -> its mass cancels
        self._day_of: dict[int, int] = {}           #: unanswered req -> its day's end time
        self._upcoming: Request | None = None

    # ------------------------------------------------------------ what it did
    def stats(self) -> dict:
        """{source, sent, answered, rejected, reasons, fills, unanswered, day, error}."""
        return {"source": ", ".join(f"{s.symbol} {s.kind}" for s in self.flow.sources),
                "sent": self.sent, "answered": self.answered,
                "rejected": sum(self.rejections.values()),
                "reasons": dict(self.rejections.most_common(5)), "fills": self.fills,
                "unanswered": self.unanswered, "day": self.flow.day + 1, "error": self.error}

    # ------------------------------------------------------------ playing
    def run(self, stop: threading.Event, duration: float | None = None) -> None:
        """Play until the flow ends, ``stop`` is set or ``duration`` seconds passed. An error
        ends the run; it is kept in ``error`` (for the view) and raised."""
        from gateways.client import OrderClient
        client = None
        try:
            client = OrderClient(self.gateway, self.key, server_key=self.server_key,
                                 timeout=30.0)
            for account in self.accounts:
                client.mass_cancel(account=account)
            self._play(client, stop, duration)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            raise
        finally:
            self.finished = True
            if client is not None:
                client.close()

    def _play(self, client, stop: threading.Event, duration: float | None) -> None:
        requests = iter(self.flow)
        upcoming = self._upcoming = next(requests, None)
        started = time.monotonic()
        while not stop.is_set() and (upcoming is not None or self._pending):
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            horizon = (now - started) * self.speed * 1e9 if self.speed else float("inf")
            due: list[Request] = []
            while upcoming is not None and upcoming.time_ns <= horizon and \
                    len(self._pending) + len(due) < self.window:
                due.append(upcoming)
                upcoming = self._upcoming = next(requests, None)
            if due:
                sent_at = time.monotonic()
                for req, request in zip(client.send_batch([self._message(r) for r in due]),
                                        due):
                    self._pending[req] = sent_at
                    if request.origin == DAY_END:
                        self._day_end.setdefault(request.time_ns, set()).add(req)
                        self._day_of[req] = request.time_ns
                self.sent += len(due)
            wait = 0.05
            if upcoming is not None and self.speed:
                wait = upcoming.time_ns / 1e9 / self.speed - (time.monotonic() - started)
            elif upcoming is not None:
                wait = 0.0 if len(self._pending) < self.window else 0.05
            self._collect(client, min(max(wait, 0.0), 0.05))

    def _message(self, r: Request) -> dict:
        account = self.accounts[r.account]
        if r.action == NEW:
            return {"type": "new_order", "symbol": r.symbol, "side": SIDES[r.side],
                    "quantity": r.quantity, "price": r.price, "order_type": "limit",
                    "time_in_force": TIFS[r.time_in_force],
                    "client_order_id": self.base + r.client_order_id, "account": account}
        if r.action == CANCEL:
            return {"type": "cancel", "client_order_id": self.base + r.client_order_id,
                    "account": account}
        if r.action == MODIFY:
            return {"type": "modify", "quantity": r.quantity, "price": r.price,
                    "client_order_id": self.base + r.client_order_id, "account": account}
        if r.action == MASS_CANCEL:
            return {"type": "mass_cancel", "symbol": r.symbol, "account": account}
        raise ValueError(f"unknown action {r.action!r}")

    def _collect(self, client, wait: float) -> None:
        """Wait up to ``wait`` seconds for the next message, then take every one that has
        arrived; note latencies and outcomes."""
        message = client.next_report(timeout=max(wait, 0.001))
        while True:
            if message is None:
                message = client.next_report(timeout=0)
                if message is None:
                    break
            self._take(client, message, time.monotonic())
            message = None
        now = time.monotonic()
        stale = [req for req, at in self._pending.items() if now - at > UNANSWERED_AFTER_S]
        for req in stale:
            del self._pending[req]
            self._answered_day_end(req)
            self.unanswered += 1

    def _take(self, client, message: dict, now: float) -> None:
        req = message.get("req")
        if req in self._pending:
            self.latency.add(now - self._pending.pop(req))
            self.answered += 1
            try:
                client.wait_for(req, 0)          # drop the answer the client filed
            except TimeoutError:
                pass
            self._answered_day_end(req)
        kind, exec_type = message.get("type"), message.get("exec")
        if kind == "reject" or exec_type == "rejected":
            self.rejections[message.get("reason", "unknown")] += 1
        elif exec_type in ("fill", "partial_fill"):
            self.fills += 1

    def _answered_day_end(self, req: int) -> None:
        """Once every mass cancel that closes a day is answered (and sent: the next request
        is not one of them), the day is over: ``on_day_end``."""
        end = self._day_of.pop(req, None)
        if end is None:
            return
        waiting = self._day_end[end]
        waiting.discard(req)
        upcoming = self._upcoming
        sealed = upcoming is None or upcoming.origin != DAY_END or upcoming.time_ns != end
        if not waiting and sealed:
            del self._day_end[end]
            if self.on_day_end is not None:
                self.on_day_end()
