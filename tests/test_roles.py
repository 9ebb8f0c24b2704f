"""The node role state machine (``replication.roles``), on its own: no processes, no sockets.

Every (role, event) pair is tried: the rows of ``TRANSITIONS`` lead where the table says and are
recorded in the history; every other pair raises ``IllegalTransition`` and leaves the machine as
it was. The expected table is written out here independently of the module, so a row added to or
dropped from ``TRANSITIONS`` by mistake fails a test.
"""
from __future__ import annotations

import itertools

import pytest

from replication.roles import (TRANSITIONS, Event, IllegalTransition, Role, RoleMachine,
                               SplitBrain, check_peer_primary)

R, E = Role, Event

#: The documented diagram, spelled out (independently of ``roles.TRANSITIONS``).
EXPECTED = {
    (R.STARTING, E.START_PRIMARY): R.PRIMARY,
    (R.STARTING, E.START_STANDBY): R.CATCHING_UP,
    (R.CATCHING_UP, E.CAUGHT_UP): R.STANDBY,
    (R.STANDBY, E.FELL_BEHIND): R.CATCHING_UP,
    (R.STANDBY, E.PROMOTE): R.PRIMARY,
    (R.PRIMARY, E.HIGHER_EPOCH_SEEN): R.FENCED,
    (R.PRIMARY, E.LEASE_LOST): R.FENCED,
    (R.STANDBY, E.HIGHER_EPOCH_SEEN): R.STANDBY,
    (R.CATCHING_UP, E.HIGHER_EPOCH_SEEN): R.CATCHING_UP,
    (R.FENCED, E.HIGHER_EPOCH_SEEN): R.FENCED,
    (R.FENCED, E.REJOIN): R.CATCHING_UP,
    (R.PRIMARY, E.REJOIN): R.CATCHING_UP,
    (R.STARTING, E.STOP): R.STOPPED,
    (R.PRIMARY, E.STOP): R.STOPPED,
    (R.CATCHING_UP, E.STOP): R.STOPPED,
    (R.STANDBY, E.STOP): R.STOPPED,
    (R.FENCED, E.STOP): R.STOPPED,
}

#: Shortest event paths from STARTING to each role, to put a fresh machine in that role.
PATH_TO = {
    R.STARTING: [],
    R.PRIMARY: [E.START_PRIMARY],
    R.CATCHING_UP: [E.START_STANDBY],
    R.STANDBY: [E.START_STANDBY, E.CAUGHT_UP],
    R.FENCED: [E.START_PRIMARY, E.HIGHER_EPOCH_SEEN],
    R.STOPPED: [E.STOP],
}

ALL_PAIRS = list(itertools.product(Role, Event))


def machine_in(role: Role) -> RoleMachine:
    machine = RoleMachine()
    for event in PATH_TO[role]:
        machine.fire(event)
    assert machine.role is role
    return machine


def test_the_transition_table_is_the_documented_one():
    assert TRANSITIONS == EXPECTED


def test_the_parametrisation_covers_every_role_and_event():
    assert len(ALL_PAIRS) == len(Role) * len(Event) == 6 * 9
    assert set(EXPECTED) <= set(ALL_PAIRS)


@pytest.mark.parametrize("role, event", ALL_PAIRS,
                         ids=[f"{r.value}-{e.value}" for r, e in ALL_PAIRS])
def test_each_role_and_event(role, event):
    machine = machine_in(role)
    history = list(machine.history)
    if (role, event) in EXPECTED:
        after = EXPECTED[(role, event)]
        assert machine.can(event)
        assert machine.fire(event) is after
        assert machine.role is after
        assert machine.history == history + [(role, event, after)]
    else:
        assert not machine.can(event)
        with pytest.raises(IllegalTransition) as raised:
            machine.fire(event)
        assert raised.value.role is role and raised.value.event is event
        assert role.value in str(raised.value) and event.value in str(raised.value)
        assert machine.role is role                 # a refused event changes nothing
        assert machine.history == history


def test_stopped_is_final():
    machine = machine_in(R.STOPPED)
    for event in Event:
        assert not machine.can(event)
        with pytest.raises(IllegalTransition):
            machine.fire(event)
    assert machine.role is R.STOPPED


def test_a_fresh_machine_is_starting_with_no_history():
    machine = RoleMachine()
    assert machine.role is R.STARTING and machine.history == []
    assert not machine.accepts_commands


def test_history_records_a_whole_failover_cycle_in_order():
    machine = RoleMachine()
    events = [E.START_STANDBY, E.CAUGHT_UP, E.FELL_BEHIND, E.CAUGHT_UP, E.PROMOTE,
              E.HIGHER_EPOCH_SEEN, E.REJOIN, E.CAUGHT_UP, E.STOP]
    for event in events:
        machine.fire(event)
    assert machine.history == [
        (R.STARTING, E.START_STANDBY, R.CATCHING_UP),
        (R.CATCHING_UP, E.CAUGHT_UP, R.STANDBY),
        (R.STANDBY, E.FELL_BEHIND, R.CATCHING_UP),
        (R.CATCHING_UP, E.CAUGHT_UP, R.STANDBY),
        (R.STANDBY, E.PROMOTE, R.PRIMARY),
        (R.PRIMARY, E.HIGHER_EPOCH_SEEN, R.FENCED),
        (R.FENCED, E.REJOIN, R.CATCHING_UP),
        (R.CATCHING_UP, E.CAUGHT_UP, R.STANDBY),
        (R.STANDBY, E.STOP, R.STOPPED),
    ]
    # each entry starts where the previous one ended
    for (_, _, before), (after, _, _) in zip(machine.history, machine.history[1:]):
        assert before is after


def test_history_is_per_machine():
    a, b = RoleMachine(), RoleMachine()
    a.fire(E.START_PRIMARY)
    assert b.history == [] and b.role is R.STARTING


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_only_a_primary_accepts_commands(role):
    assert machine_in(role).accepts_commands is (role is R.PRIMARY)


@pytest.mark.parametrize("fencing", [E.HIGHER_EPOCH_SEEN, E.LEASE_LOST])
def test_accepts_commands_follows_the_role(fencing):
    machine = RoleMachine()
    machine.fire(E.START_PRIMARY)
    assert machine.accepts_commands
    machine.fire(fencing)
    assert machine.role is R.FENCED and not machine.accepts_commands
    machine.fire(E.REJOIN)
    assert not machine.accepts_commands
    machine.fire(E.CAUGHT_UP)
    assert not machine.accepts_commands          # a standby again
    machine.fire(E.PROMOTE)
    assert machine.accepts_commands


def test_only_a_primary_can_lose_its_lease():
    for role in Role:
        assert machine_in(role).can(E.LEASE_LOST) is (role is R.PRIMARY)


# ---------------------------------------------------------------- check_peer_primary
@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
@pytest.mark.parametrize("own, peer", [(1, 2), (1, 7), (5, 6), (0, 1)])
def test_a_peer_primary_with_a_higher_epoch_means_we_must_fence_or_follow(role, own, peer):
    assert check_peer_primary(role, own, peer) is E.HIGHER_EPOCH_SEEN


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
@pytest.mark.parametrize("own, peer", [(2, 1), (7, 1), (6, 5), (1, 0)])
def test_a_peer_primary_with_a_lower_epoch_is_ignored(role, own, peer):
    assert check_peer_primary(role, own, peer) is None      # never SplitBrain, even as primary


@pytest.mark.parametrize("epoch", [1, 2, 42])
def test_two_primaries_in_the_same_epoch_is_split_brain(epoch):
    with pytest.raises(SplitBrain, match=str(epoch)):
        check_peer_primary(R.PRIMARY, epoch, epoch)


@pytest.mark.parametrize("role", [r for r in Role if r is not R.PRIMARY],
                         ids=[r.value for r in Role if r is not R.PRIMARY])
def test_a_non_primary_hearing_a_primary_of_its_own_epoch_just_follows(role):
    assert check_peer_primary(role, 3, 3) is None


def test_the_event_returned_for_a_higher_epoch_fences_a_primary():
    machine = machine_in(R.PRIMARY)
    event = check_peer_primary(machine.role, 1, 2)
    assert machine.fire(event) is R.FENCED
    assert not machine.accepts_commands


def test_split_brain_is_not_an_illegal_transition():
    # a caller catching IllegalTransition must not swallow a split brain
    assert not issubclass(SplitBrain, IllegalTransition)
    assert not issubclass(IllegalTransition, SplitBrain)
