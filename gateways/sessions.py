"""Sessions: who is logged on over which connection, and what each may do.

A session is bound to one client connection (the ROUTER's routing id of the client's DEALER)
from ``logon`` to ``logout``, a heartbeat timeout, or the gateway noticing the peer is gone.
It knows

* the accounts its API key may trade;
* its heartbeat interval: the gateway sends a ``heartbeat`` when it has sent nothing for one
  interval, and ends a session it has heard nothing from for ``MISSED_HEARTBEATS`` intervals;
* its request rate limit (a token bucket: ``rate`` requests per second, ``burst`` at once);
* whether to cancel its orders when it ends (cancel-on-disconnect);
* the live orders it owns (entered through it), which cancel-on-disconnect cancels.

Times are ``time.monotonic()`` seconds, passed in so tests control the clock.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

MISSED_HEARTBEATS = 3
MIN_HEARTBEAT_MS = 100
MAX_HEARTBEAT_MS = 60_000


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, wanted: int, now: float) -> int:
        """Take up to ``wanted`` tokens; returns how many were granted (0..wanted)."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


@dataclass(eq=False)
class Session:
    identity: bytes                    #: the ROUTER routing id of the client's connection
    key_id: str
    accounts: frozenset[int]
    heartbeat_s: float
    cancel_on_disconnect: bool
    bucket: TokenBucket
    last_received: float
    last_sent: float
    session_id: str = field(default_factory=lambda: secrets.token_hex(8))
    owned: set[int] = field(default_factory=set)   #: live order ids entered through it
    open: bool = True

    @property
    def default_account(self) -> int | None:
        """The account a request that names none trades: the key's only account."""
        return next(iter(self.accounts)) if len(self.accounts) == 1 else None

    def timed_out(self, now: float) -> bool:
        return now - self.last_received > self.heartbeat_s * MISSED_HEARTBEATS

    def heartbeat_due(self, now: float) -> bool:
        return now - self.last_sent >= self.heartbeat_s


class SessionTable:
    """Every open session, by connection and by account."""

    def __init__(self, rate: float, burst: float, default_heartbeat_ms: int) -> None:
        self.rate = rate
        self.burst = burst
        self.default_heartbeat_ms = default_heartbeat_ms
        self.by_identity: dict[bytes, Session] = {}
        self.by_account: dict[int, set[Session]] = {}

    def __len__(self) -> int:
        return len(self.by_identity)

    def get(self, identity: bytes) -> Session | None:
        return self.by_identity.get(identity)

    def open(self, identity: bytes, key_id: str, accounts: frozenset[int], now: float, *,
             heartbeat_ms: int | None = None, cancel_on_disconnect: bool = False) -> Session:
        """Start a session on a connection that has none. ``heartbeat_ms`` must already be in
        MIN_HEARTBEAT_MS..MAX_HEARTBEAT_MS (the caller rejects others)."""
        if identity in self.by_identity:
            raise ValueError("this connection already has a session")
        beat = heartbeat_ms if heartbeat_ms is not None else self.default_heartbeat_ms
        session = Session(identity, key_id, accounts, beat / 1000, cancel_on_disconnect,
                          TokenBucket(self.rate, self.burst, now), now, now)
        self.by_identity[identity] = session
        for account in accounts:
            self.by_account.setdefault(account, set()).add(session)
        return session

    def close(self, session: Session) -> None:
        """End a session (idempotent). Its orders stay live unless the caller cancels them."""
        if not session.open:
            return
        session.open = False
        self.by_identity.pop(session.identity, None)
        for account in session.accounts:
            holders = self.by_account.get(account)
            if holders is not None:
                holders.discard(session)
                if not holders:
                    del self.by_account[account]

    def for_account(self, account: int) -> set[Session]:
        return self.by_account.get(account, set())

    def timed_out(self, now: float) -> list[Session]:
        return [s for s in self.by_identity.values() if s.timed_out(now)]

    def heartbeats_due(self, now: float) -> list[Session]:
        return [s for s in self.by_identity.values() if s.heartbeat_due(now)]

    def revoked(self, valid_key_ids) -> list[Session]:
        """Sessions whose key is no longer in the key file."""
        return [s for s in self.by_identity.values() if s.key_id not in valid_key_ids]
