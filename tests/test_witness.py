"""The witness: leases that let a standby promote itself, never two primaries at once."""
from __future__ import annotations

import signal
import time

from core import commands as C
from core.enums import AccountType, Side
from replication.command_port import CommandClient, Status
from replication.witness import Witness

from .processes import NodeProcess, WitnessProcess


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def witness_at(clock: Clock, lease_ms: int = 1000) -> Witness:
    witness = Witness("inproc://witness-test-%d" % id(clock), lease_ms, clock)
    clock.now += 1.0                       # past the start-up hold
    return witness


def test_the_lease_goes_to_one_node_and_a_claim_waits_for_it_to_expire():
    clock = Clock()
    w = witness_at(clock)
    assert w.answer({"op": "renew", "node": 1, "epoch": 1})["ok"]
    assert not w.answer({"op": "renew", "node": 2, "epoch": 1})["ok"]     # node 1 holds it
    assert not w.answer({"op": "claim", "node": 2, "epoch": 2})["ok"]     # not expired
    clock.now += 0.9
    assert w.answer({"op": "renew", "node": 1, "epoch": 1})["ok"]         # renewed in time
    clock.now += 0.9
    assert not w.answer({"op": "claim", "node": 2, "epoch": 2})["ok"]
    clock.now += 0.2                                                     # lapsed
    assert not w.answer({"op": "claim", "node": 2, "epoch": 1})["ok"]     # must be a new epoch
    granted = w.answer({"op": "claim", "node": 2, "epoch": 2})
    assert granted == {"ok": True, "lease_ms": 1000, "epoch": 2}
    refused = w.answer({"op": "renew", "node": 1, "epoch": 1})            # the old primary
    assert not refused["ok"] and refused["epoch"] == 2
    assert w.answer({"op": "renew", "node": 2, "epoch": 2})["ok"]
    assert w.answer({"op": "status"})["holder"] == 2
    w.socket.close(0)


def test_a_restarted_witness_grants_no_claim_for_one_lease():
    clock = Clock()
    w = Witness("inproc://witness-restart", 1000, clock)
    assert not w.answer({"op": "claim", "node": 2, "epoch": 2})["ok"]
    clock.now += 1.0
    assert w.answer({"op": "claim", "node": 2, "epoch": 2})["ok"]
    w.socket.close(0)


def test_malformed_requests_are_refused():
    w = witness_at(Clock())
    assert not w.answer({"op": "renew"})["ok"]
    assert not w.answer({"op": "dance", "node": 1, "epoch": 1})["ok"]
    w.socket.close(0)


SETUP = C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1, reference_price=100),
                C.add_account(1, AccountType.MARGIN), C.deposit_cash(1, 10**12))
TIMING = ("--lease-ms", "600", "--peer-timeout-ms", "400", "--sync-timeout-ms", "400")


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("condition not reached")


def pair(tmp_path, witness):
    extra = ("--witness", witness.endpoint, *TIMING)
    primary = NodeProcess(tmp_path / "a", node_id=1, extra=extra).start()
    standby = NodeProcess(tmp_path / "b", role="standby", primary=primary.replication_endpoint,
                          node_id=2, extra=extra).start()
    wait_for(lambda: standby.status()["replication"].get("link") == "live")
    return primary, standby


def test_the_standby_promotes_itself_when_the_primary_dies(tmp_path):
    with WitnessProcess(tmp_path / "witness.log") as witness:
        primary, standby = pair(tmp_path, witness)
        with primary, standby:
            client = CommandClient(primary.command_endpoint)
            assert client.submit(SETUP).ok
            primary.kill()
            killed = time.monotonic()
            wait_for(lambda: standby.status()["role"] == "primary")
            took = time.monotonic() - killed
            assert took < 5
            status = standby.status()
            assert status["epoch"] == 2 and status["accepting"]
            after = CommandClient(standby.command_endpoint).submit(
                C.new_order(1, 0, Side.BUY, 1, 100, client_order_id=1))
            assert after.ok and after.first_seq == len(SETUP) + 1


def test_a_frozen_primary_that_wakes_up_finds_itself_fenced(tmp_path):
    """SIGSTOP stands for a primary cut off by the network: the standby takes over, and the
    old primary, once it runs again, must not acknowledge anything."""
    with WitnessProcess(tmp_path / "witness.log") as witness:
        primary, standby = pair(tmp_path, witness)
        with primary, standby:
            client = CommandClient(primary.command_endpoint, timeout_ms=3000)
            assert client.submit(SETUP).ok
            primary.proc.send_signal(signal.SIGSTOP)
            wait_for(lambda: standby.status()["role"] == "primary")
            late = client.send(C.new_order(1, 0, Side.BUY, 1, 100, client_order_id=7))
            primary.proc.send_signal(signal.SIGCONT)
            reply = client.receive()
            assert reply.request_id == late and not reply.ok
            assert reply.status == Status.NOT_PRIMARY
            assert wait_for(lambda: primary.status()["role"] == "fenced")
            assert primary.status()["last_seq"] == len(SETUP)     # nothing more journaled
