"""Node roles: an explicit state machine (after the zguide's Binary Star).

Every role change a node can make is one row of ``TRANSITIONS``; anything else is refused with
``IllegalTransition``. Two primaries in the same epoch is ``SplitBrain``, a fatal error: the
node that detects it stops rather than risk accepting orders beside another primary.

::

    STARTING ──start_primary──▶ PRIMARY ──higher_epoch_seen / lease_lost──▶ FENCED ──rejoin──▶ CATCHING_UP
        │                          ▲                                                  │
        └──start_standby──▶ CATCHING_UP ──caught_up──▶ STANDBY ──fell_behind──────────┘
                                                         │  │
                                             promote ────┘  └──primary_lost──▶ (stays STANDBY;
                                                                              failover decides)
    any state ──stop──▶ STOPPED

A PRIMARY accepts commands and replicates them; a STANDBY journals and applies what the
primary streams and may be promoted; CATCHING_UP is a standby still receiving history from the
primary's journal; FENCED refuses commands because it learned of a higher epoch.
"""
from __future__ import annotations

from enum import Enum


class Role(Enum):
    STARTING = "starting"
    PRIMARY = "primary"
    CATCHING_UP = "catching_up"
    STANDBY = "standby"
    FENCED = "fenced"
    STOPPED = "stopped"


class Event(Enum):
    START_PRIMARY = "start_primary"
    START_STANDBY = "start_standby"
    CAUGHT_UP = "caught_up"
    FELL_BEHIND = "fell_behind"
    PROMOTE = "promote"
    HIGHER_EPOCH_SEEN = "higher_epoch_seen"
    LEASE_LOST = "lease_lost"      #: the witness refused or let lapse a primary's lease
    REJOIN = "rejoin"
    STOP = "stop"


TRANSITIONS: dict[tuple[Role, Event], Role] = {
    (Role.STARTING, Event.START_PRIMARY): Role.PRIMARY,
    (Role.STARTING, Event.START_STANDBY): Role.CATCHING_UP,
    (Role.CATCHING_UP, Event.CAUGHT_UP): Role.STANDBY,
    (Role.STANDBY, Event.FELL_BEHIND): Role.CATCHING_UP,
    (Role.STANDBY, Event.PROMOTE): Role.PRIMARY,
    (Role.PRIMARY, Event.HIGHER_EPOCH_SEEN): Role.FENCED,
    (Role.PRIMARY, Event.LEASE_LOST): Role.FENCED,
    (Role.STANDBY, Event.HIGHER_EPOCH_SEEN): Role.STANDBY,
    (Role.CATCHING_UP, Event.HIGHER_EPOCH_SEEN): Role.CATCHING_UP,
    (Role.FENCED, Event.HIGHER_EPOCH_SEEN): Role.FENCED,
    (Role.FENCED, Event.REJOIN): Role.CATCHING_UP,
    (Role.PRIMARY, Event.REJOIN): Role.CATCHING_UP,
    **{(role, Event.STOP): Role.STOPPED for role in Role if role is not Role.STOPPED},
}


class IllegalTransition(RuntimeError):
    def __init__(self, role: Role, event: Event) -> None:
        super().__init__(f"a {role.value} node cannot {event.value}")
        self.role = role
        self.event = event


class SplitBrain(RuntimeError):
    """Two nodes act as primary in the same epoch. Fatal: the detecting node stops."""


class RoleMachine:
    def __init__(self) -> None:
        self.role = Role.STARTING
        self.history: list[tuple[Role, Event, Role]] = []

    def can(self, event: Event) -> bool:
        return (self.role, event) in TRANSITIONS

    def fire(self, event: Event) -> Role:
        """Apply ``event``; returns the new role, or raises IllegalTransition."""
        try:
            after = TRANSITIONS[(self.role, event)]
        except KeyError:
            raise IllegalTransition(self.role, event) from None
        self.history.append((self.role, event, after))
        self.role = after
        return after

    @property
    def accepts_commands(self) -> bool:
        return self.role is Role.PRIMARY


def check_peer_primary(own_role: Role, own_epoch: int, peer_epoch: int) -> Event | None:
    """What a node must do on hearing from a node that claims to be primary.

    Returns HIGHER_EPOCH_SEEN when the peer's epoch is higher (fence ourselves / follow), None
    when ours is higher (the peer will fence itself), and raises SplitBrain when both are
    primary in the same epoch."""
    if peer_epoch > own_epoch:
        return Event.HIGHER_EPOCH_SEEN
    if peer_epoch == own_epoch and own_role is Role.PRIMARY:
        raise SplitBrain(f"another node is primary in epoch {own_epoch} too")
    return None
