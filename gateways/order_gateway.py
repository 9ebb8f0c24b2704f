"""The order-entry gateway process: clients in, validated commands to the engine, execution
reports back. Protocol: ``docs/protocol.md`` (``gateways.protocol``).

::

   client DEALERs ──frames──▶ ROUTER ─▶ decode (protocol) ─▶ session (sessions: logon, rate)
                                                          ─▶ validate (validation, reference)
                                                          ─▶ EngineLink.submit ─▶ primary
   client DEALERs ◀─one frame per session per loop─ outboxes ◀─ ReportRouter ◀─ EventFeed
                                                                 (reports)     (engine events)

One thread, one ``zmq.Poller`` loop over the client socket, the engine link's sockets and the
event feed. Each iteration reads everything that has arrived, sends the engine ONE request
carrying every command validated in it (``EngineLink.flush``), routes every event that arrived
(``ReportRouter``), and sends each session ONE frame holding all its messages. Per-message
overhead, not work, is what costs here (DESIGN.md section 7), so everything is batched.

Reports are built from the event stream only (never from command replies), so each is sent
once whatever path the command took, a failover's re-sends included.
"""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import zmq
import zmq.auth

from core.codes import ResultCode
from core.enums import CommandKind, EventKind, InstrumentStatus
from replication.control import control_request

from .codes import GatewayCode as G
from .engine_feed import EventFeed, FeedReset
from .engine_link import EngineLink
from .keys import KeyFileError, KeyStore, parse_key
from .protocol import (MAX_BATCH, MAX_FRAME_BYTES, Rejection, Request, decode_frames, encode)
from .reports import (OrderState, ReportRouter, rejected_status, state_from_engine,
                      status_message)
from .sessions import MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS, Session, SessionTable, TokenBucket
from .validation import ORDER_FLOW, Command, Instrument, ReferenceData, Validator

log = logging.getLogger("ringex.gateway")

DRAIN_LIMIT = 20_000          #: client frames read per loop iteration at most
FRAME_MESSAGES = 4096         #: messages per outgoing frame at most
HOUSEKEEPING_S = 0.05
REFERENCE_CHANGES_KEPT = 1000     #: instrument changes re-applied to a late reference reply


@dataclass
class GatewayConfig:
    listen: str = "tcp://127.0.0.1:7100"
    nodes: list[str] = field(default_factory=lambda: ["tcp://127.0.0.1:7002"])
    keys: Path = Path("keys.json")
    curve_secret_file: Path | None = None
    rate_limit: float = 50_000.0          #: requests per second per session
    burst: float | None = None            #: default: rate_limit
    heartbeat_ms: int = 1000              #: default session heartbeat interval
    anonymous_rate: float = 1000.0        #: frames per second from connections not logged on
    max_batch: int = MAX_BATCH            #: commands per engine request
    window: int = 8                       #: engine requests in flight
    reply_timeout_ms: int = 2000
    queue_timeout_ms: int = 5000
    status_queries_per_s: float = 20.0    #: order status look-ups sent on to the engine


class _Throttle:
    """Log at most ``per_second`` lines of one kind a second; say how many were left out."""

    def __init__(self, kind: str, per_second: int = 10) -> None:
        self.kind = kind
        self.per_second = per_second
        self.window = 0.0
        self.count = 0
        self.skipped = 0

    def __call__(self, now: float, message: str, *args) -> None:
        if now - self.window >= 1.0:
            if self.skipped:
                log.warning("... and %d more %s in that second", self.skipped, self.kind)
            self.window, self.count, self.skipped = now, 0, 0
        self.count += 1
        if self.count <= self.per_second:
            log.warning(message, *args)
        else:
            self.skipped += 1


class OrderGateway:
    def __init__(self, config: GatewayConfig, keys: KeyStore,
                 context: zmq.Context | None = None) -> None:
        self.config = config
        self.keys = keys
        self.context = context or zmq.Context.instance()
        self.client = self._bind_client()
        burst = config.burst if config.burst is not None else config.rate_limit
        self.sessions = SessionTable(config.rate_limit, burst, config.heartbeat_ms)
        self.validator = Validator(None, self._order_instrument)
        self.router = ReportRouter(self.sessions, self._deliver, self._symbol_of)
        self.link = EngineLink(config.nodes, self.context, on_failed=self._failed,
                               on_resent=self._resent, on_primary=self._new_primary,
                               max_batch=config.max_batch, window=config.window,
                               reply_timeout_s=config.reply_timeout_ms / 1000,
                               queue_timeout_s=config.queue_timeout_ms / 1000)
        self.feed: EventFeed | None = None
        now = time.monotonic()
        self.anonymous = TokenBucket(config.anonymous_rate, config.anonymous_rate, now)
        self.status_queries = TokenBucket(config.status_queries_per_s,
                                          config.status_queries_per_s, now)
        self.outbox: dict[bytes, list[dict]] = {}
        self._orders_waiting: dict[int, list[tuple]] = {}
        self._reference_changes: list[tuple[int, Callable]] = []
        self._log_reject = _Throttle("rejections")
        self._log_drop = _Throttle("dropped frames")
        self._log_feed = _Throttle("engine errors")
        self._next_housekeeping = 0.0
        self._next_key_check = 0.0
        self._stopping = False
        self._ready_logged = False
        self.counters = {"frames": 0, "requests": 0, "rejected": 0, "dropped": 0,
                         "forwarded": 0, "reports": 0}

    def _bind_client(self) -> zmq.Socket:
        socket = self.context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES + 1024)
        socket.setsockopt(zmq.SNDHWM, 100_000)
        socket.setsockopt(zmq.RCVHWM, 100_000)
        if self.config.curve_secret_file is not None:
            public, secret = zmq.auth.load_certificate(self.config.curve_secret_file)
            if secret is None:
                raise ValueError(f"{self.config.curve_secret_file} holds no CURVE secret key")
            socket.curve_secretkey = secret
            socket.curve_publickey = public
            socket.curve_server = True
        socket.bind(self.config.listen)
        return socket

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        log.info("order gateway on %s (CURVE %s), engine nodes %s", self.config.listen,
                 "on" if self.config.curve_secret_file else "off", self.config.nodes)
        try:
            while not self._stopping:
                self.step()
            self._shut_down()
        finally:
            self.close()

    def stop(self) -> None:
        self._stopping = True

    def step(self, timeout_ms: int = 50) -> None:
        """One loop iteration: wait for input, handle all of it, send what it produced."""
        poller = zmq.Poller()
        poller.register(self.client, zmq.POLLIN)
        for socket in self.link.sockets():
            poller.register(socket, zmq.POLLIN)
        if self.feed is not None:
            poller.register(self.feed.socket, zmq.POLLIN)
        ready = {s for s, _ in poller.poll(timeout_ms)}
        now = time.monotonic()
        if self.client in ready and not self._stopping:
            self._read_clients(now)
        self.link.on_readable(ready)
        if self.feed is not None and (self.feed.socket in ready or
                                      now >= self._next_housekeeping):
            self._read_feed(now)
        if now >= self._next_housekeeping:
            self._housekeeping(now)
        self.link.flush(now)
        self._flush_outboxes(now)

    def close(self) -> None:
        self.link.close()
        if self.feed is not None:
            self.feed.close()
        self.client.close(0)

    def _shut_down(self) -> None:
        """End every session (cancel-on-disconnect applies), then give the engine up to two
        seconds to take what is queued and in flight."""
        for session in list(self.sessions.by_identity.values()):
            self._end_session(session, "gateway_shutdown", notify=True)
        self._flush_outboxes(time.monotonic())
        deadline = time.monotonic() + 2.0
        while (self.link.queue or self.link.inflight) and time.monotonic() < deadline:
            self.step(20)
        log.info("gateway stopped: %s", self.counters)

    # ------------------------------------------------------------ clients
    def _read_clients(self, now: float) -> None:
        for _ in range(DRAIN_LIMIT):
            try:
                frames = self.client.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.counters["frames"] += 1
            identity, body = frames[0], frames[1:]
            session = self.sessions.get(identity)
            if session is None and not self.anonymous.take(1, now):
                self.counters["dropped"] += 1
                self._log_drop(now, "dropped a frame from %s: not logged on, and past the "
                                    "rate for such connections", identity.hex())
                continue
            if session is not None:
                session.last_received = now
            try:
                for item in decode_frames(body):
                    self._handle(identity, item, now)
            except Exception:
                log.exception("internal error handling a frame from %s", identity.hex())
                self._reply(identity, Rejection(G.INTERNAL_ERROR).message())

    def _handle(self, identity: bytes, item: Request | Rejection, now: float) -> None:
        session = self.sessions.get(identity)
        if isinstance(item, Rejection):
            self._refuse(identity, item, now)
            return
        self.counters["requests"] += 1
        kind = item.type
        if kind == "logon":
            self._logon(identity, session, item, now)
        elif session is None:
            self._refuse(identity, Rejection(G.NOT_LOGGED_ON, "", item.req, kind), now)
        elif kind == "heartbeat":
            if item.req is not None:
                self._reply(identity, {"type": "heartbeat", "req": item.req})
        elif kind == "logout":
            self._reply(identity, {"type": "logged_out", "reason": "logout",
                                   **({"req": item.req} if item.req is not None else {})})
            self._end_session(session, "logout", notify=False)
        elif not session.bucket.take(1, now):
            self._refuse(identity, Rejection(G.RATE_LIMITED, f"{self.sessions.rate:g}/s",
                                             item.req, kind), now)
        elif kind in ORDER_FLOW:
            self._order_flow(session, item, now)
        elif kind == "order_status":
            self._order_status(session, item, now)

    def _refuse(self, identity: bytes, rejection: Rejection, now: float) -> None:
        self.counters["rejected"] += 1
        message = rejection.message()
        self._log_reject(now, "rejected a request from %s: %s %s", identity.hex(),
                         message["reason"], message["text"])
        self._reply(identity, message)

    def _reply(self, identity: bytes, message: dict) -> None:
        self.outbox.setdefault(identity, []).append(message)

    def _deliver(self, session: Session, message: dict) -> None:
        self.counters["reports"] += 1
        self.outbox.setdefault(session.identity, []).append(message)

    def _logon(self, identity: bytes, session: Session | None, item: Request,
               now: float) -> None:
        if session is not None:
            self._refuse(identity, Rejection(G.ALREADY_LOGGED_ON, "", item.req, "logon"), now)
            return
        beat = item.body.get("heartbeat_ms", self.config.heartbeat_ms)
        if not MIN_HEARTBEAT_MS <= beat <= MAX_HEARTBEAT_MS:
            self._refuse(identity, Rejection(G.OUT_OF_RANGE, f"heartbeat_ms is in "
                                             f"{MIN_HEARTBEAT_MS}..{MAX_HEARTBEAT_MS}",
                                             item.req, "logon"), now)
            return
        key = self.keys.verify(item.body["key"])
        if key is None:
            parsed = parse_key(item.body["key"])
            self._refuse(identity, Rejection(G.LOGON_FAILED, "", item.req, "logon"), now)
            log.warning("failed logon from %s (key id %s)", identity.hex(),
                        parsed[0] if parsed else "malformed")
            return
        session = self.sessions.open(
            identity, key.key_id, key.accounts, now, heartbeat_ms=beat,
            cancel_on_disconnect=item.body.get("cancel_on_disconnect", False))
        log.info("session %s logged on: key %s, accounts %s, cancel-on-disconnect %s",
                 session.session_id, key.key_id, sorted(key.accounts),
                 session.cancel_on_disconnect)
        reply = {"type": "logged_on", "session": session.session_id,
                 "accounts": sorted(key.accounts), "heartbeat_ms": beat,
                 "cancel_on_disconnect": session.cancel_on_disconnect,
                 "rate_limit": self.sessions.rate, "burst": self.sessions.burst,
                 "max_batch": MAX_BATCH, "engine_ready": self.validator.reference is not None
                 and self.link.connected}
        if item.req is not None:
            reply["req"] = item.req
        self._reply(identity, reply)

    def _end_session(self, session: Session, reason: str, *, notify: bool) -> None:
        """End a session; with cancel-on-disconnect, cancel every live order it owns (those
        still on their way are cancelled when accepted: ``ReportRouter.take_orphans``)."""
        if not session.open:
            return
        self.sessions.close(session)
        log.info("session %s ended: %s", session.session_id, reason)
        if notify:
            self._reply(session.identity, {"type": "logged_out", "reason": reason})
        if session.cancel_on_disconnect:
            doomed = [self.router.orders.live[o] for o in sorted(session.owned)
                      if o in self.router.orders.live]
            self._cancel_orders(doomed, time.monotonic())
            if doomed:
                log.info("cancel-on-disconnect: cancelling %d orders of session %s",
                         len(doomed), session.session_id)

    def _cancel_orders(self, orders: list[OrderState], now: float) -> None:
        for state in orders:
            command = Command(CommandKind.CANCEL, state.account, order_id=state.order_id)
            if self.link.submit(command, (None, None, "cancel"), now):
                self.router.expect(command, None, None)
            else:
                log.error("cancel-on-disconnect could not queue a cancel of order %d: the "
                          "engine link is full", state.order_id)

    # ------------------------------------------------------------ requests
    def _order_flow(self, session: Session, item: Request, now: float) -> None:
        command = self.validator.command(item, session)
        if isinstance(command, Rejection):
            self._refuse(session.identity, command, now)
            return
        self.router.expect(command, session, item.req)
        if not self.link.submit(command, (session, item.req, item.type), now):
            self.router.forget(command, session)
            self._refuse(session.identity, Rejection(
                G.ENGINE_BUSY, "", item.req, item.type,
                command.client_order_id if item.type == "new_order" else None), now)
            return
        self.counters["forwarded"] += 1

    def _failed(self, commands: list[Command], tags: list, code: int, text: str) -> None:
        """The engine link gave these commands up: tell their sessions."""
        for command, (session, req, request_type) in zip(commands, tags):
            self.router.forget(command, session)
            if session is not None and session.open:
                clordid = command.client_order_id if request_type == "new_order" else None
                self._reply(session.identity,
                            Rejection(code, text, req, request_type, clordid).message())

    def _resent(self, commands: list[Command], tags: list) -> None:
        for command in commands:
            self.router.mark_resent(command)

    def _order_status(self, session: Session, item: Request, now: float) -> None:
        ref = self.validator.order_reference(item, session)
        if isinstance(ref, Rejection):
            self._refuse(session.identity, ref, now)
            return
        account, order_id, clordid = ref
        state = self.router.orders.find(account, order_id, clordid)
        if state is not None:
            self._reply(session.identity,
                        status_message(state, self._symbol_of(state.instrument), item.req))
            return
        outcome = self.router.orders.outcomes.get((account, clordid)) if clordid else None
        if outcome is not None and outcome < 0:
            self._reply(session.identity, rejected_status(account, clordid, -outcome,
                                                          item.req))
            return
        channel = self.link.primary_channel
        if channel is None or not self.status_queries.take(1, now):
            self._refuse(session.identity, Rejection(
                ResultCode.UNKNOWN_ORDER, "not known to this gateway (and the engine cannot "
                                          "be asked now)", item.req, "order_status"), now)
            return
        waiting = self._orders_waiting.setdefault(account, [])
        waiting.append((session, item.req, order_id, clordid))
        if len(waiting) == 1 and not channel.ask(
                {"op": "orders", "account": account},
                lambda reply, account=account: self._engine_orders(account, reply)):
            self._engine_orders(account, None)

    def _engine_orders(self, account: int, reply: dict | None) -> None:
        """The engine's answer to an ``orders`` query: answer everyone who waited for it."""
        waiting = self._orders_waiting.pop(account, [])
        entries = reply.get("orders") if isinstance(reply, dict) else None
        for session, req, order_id, clordid in waiting:
            if not session.open:
                continue
            if not isinstance(entries, list):
                self._reply(session.identity, Rejection(
                    G.ENGINE_UNAVAILABLE, "the engine did not answer an order look-up", req,
                    "order_status").message())
                continue
            found = next((e for e in entries if isinstance(e, dict) and (
                e.get("order_id") == order_id if order_id else
                e.get("client_order_id") == clordid)), None)
            if found is None:
                self._reply(session.identity, Rejection(
                    ResultCode.UNKNOWN_ORDER, "neither live in the engine nor known to this "
                                              "gateway", req, "order_status").message())
                continue
            try:
                state = state_from_engine(account, found)
            except (KeyError, TypeError, ValueError):
                log.error("malformed order in the engine's orders reply")
                self._reply(session.identity, Rejection(
                    G.ENGINE_UNAVAILABLE, "the engine's answer was malformed", req,
                    "order_status").message())
                continue
            self._reply(session.identity, status_message(
                state, self._symbol_of(state.instrument), req, source="engine"))

    # ------------------------------------------------------------ engine events
    def _read_feed(self, now: float) -> None:
        try:
            batches = self.feed.drain()
        except FeedReset as e:
            self._feed_reset(e)
            return
        except (RuntimeError, TimeoutError) as e:
            self._log_feed(now, "event feed: %s", e)
            return
        for batch in batches:
            events = batch.events
            if not len(events):
                continue
            self.router.on_events(events)
            self._reference_events(events)
        orphans = self.router.take_orphans()
        if orphans:
            self._cancel_orders(orphans, now)

    def _feed_reset(self, reset: FeedReset) -> None:
        """Events were lost for good: say so to every session, and carry on from now."""
        try:
            status = control_request(self.link.primary["endpoints"]["control"],
                                     {"op": "status"}, timeout_ms=1000) \
                if self.link.primary else None
        except TimeoutError:
            status = None
        if status is None or "applied_seq" not in status:
            log.error("%s; no primary to restart from yet", reset)
            return
        restart = status["applied_seq"] + 1
        log.error("%s; restarting the feed at seq %d", reset, restart)
        self.feed.restart(restart)
        for session in self.sessions.by_identity.values():
            self._deliver(session, {"type": "gap", "from_seq": reset.next_seq,
                                    "to_seq": restart - 1,
                                    "text": "execution reports of these engine sequence "
                                            "numbers were lost; ask order_status for the "
                                            "orders you care about"})
        self._ask_reference()

    def _reference_events(self, events) -> None:
        """Keep reference data current from the events that change it. The changes are also
        remembered for a while: a ``reference`` reply describes the state at its ``seq``,
        and the changes after that are applied to it again when it arrives."""
        kinds = events["kind"]
        for e in events[(kinds == EventKind.INSTRUMENT_ADDED) |
                        (kinds == EventKind.INSTRUMENT_STATUS_CHANGED)]:
            if int(e["kind"]) == EventKind.INSTRUMENT_ADDED:
                item = Instrument(int(e["instrument"]),
                                  e["symbol"].decode("ascii", "replace"), int(e["tick_size"]),
                                  int(e["lot_size"]), InstrumentStatus.TRADING)
                change = (lambda ref, item=item: ref.add(item))
            else:
                change = (lambda ref, i=int(e["instrument"]), status=int(
                    e["instrument_status"]): ref.set_status(i, status))
            self._reference_changes.append((int(e["seq"]), change))
            if self.validator.reference is not None:
                change(self.validator.reference)
        del self._reference_changes[:-REFERENCE_CHANGES_KEPT]

    # ------------------------------------------------------------ the engine side
    def _new_primary(self, status: dict) -> None:
        if self.feed is None:
            self.feed = EventFeed(self.config.nodes, status.get("applied_seq", 0) + 1,
                                  context=self.context, control_timeout_ms=400)
        else:
            self.feed.follow(status)
        self._ask_reference()

    def _ask_reference(self) -> None:
        channel = self.link.primary_channel
        if channel is not None:
            channel.ask({"op": "reference"}, self._reference_reply)

    def _reference_reply(self, reply: dict | None) -> None:
        if reply is None:
            if self.validator.reference is None:       # without it no order can pass
                self._log_feed(time.monotonic(), "no answer to a reference data request; "
                                                 "asking again")
                self._ask_reference()
            return
        try:
            reference = ReferenceData.from_reply(reply)
        except ValueError as e:
            log.error("%s", e)
            return
        for seq, change in self._reference_changes:
            if seq > reference.seq:
                change(reference)
        self.validator.reference = reference
        log.info("reference data: %d instruments as of seq %d", len(reference.by_id),
                 reference.seq)
        if not self._ready_logged:
            self._ready_logged = True
            log.info("gateway ready")

    def _symbol_of(self, instrument: int) -> str | None:
        reference = self.validator.reference
        item = reference.by_id.get(instrument) if reference is not None else None
        return item.symbol if item is not None else None

    def _order_instrument(self, account: int, order_id: int, clordid: int) -> int | None:
        state = self.router.orders.find(account, order_id, clordid)
        return state.instrument if state is not None else None

    # ------------------------------------------------------------ housekeeping and output
    def _housekeeping(self, now: float) -> None:
        self._next_housekeeping = now + HOUSEKEEPING_S
        self.link.tick(now)
        for session in self.sessions.timed_out(now):
            self._end_session(session, "heartbeat_timeout", notify=True)
        for session in self.sessions.heartbeats_due(now):
            if session.identity not in self.outbox:
                self._reply(session.identity, {"type": "heartbeat"})
        if now >= self._next_key_check:
            self._next_key_check = now + 1.0
            try:
                if self.keys.reload_if_changed():
                    log.info("key file reloaded: %d keys", len(self.keys.keys))
                    for session in self.sessions.revoked(self.keys.keys):
                        self._end_session(session, "key_revoked", notify=True)
            except KeyFileError as e:
                log.error("%s (keeping the keys loaded before)", e)

    def _flush_outboxes(self, now: float) -> None:
        outbox, self.outbox = self.outbox, {}
        for identity, messages in outbox.items():
            session = self.sessions.get(identity)
            for start in range(0, len(messages), FRAME_MESSAGES):
                frame = encode(messages[start:start + FRAME_MESSAGES])
                try:
                    self.client.send_multipart([identity, frame], zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    if session is not None:
                        log.warning("session %s is not reading: ending it",
                                    session.session_id)
                        self._end_session(session, "slow_consumer", notify=False)
                    break
                except zmq.ZMQError as e:
                    if e.errno != zmq.EHOSTUNREACH:
                        raise
                    if session is not None:
                        self._end_session(session, "disconnected", notify=False)
                    break
            if session is not None:
                session.last_sent = now
