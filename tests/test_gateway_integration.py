"""The order gateway as a real process in front of a real engine node, on loopback: clients
trade with each other through it, reports reach the right sessions and no others, sessions
end (cancel-on-disconnect, revoked keys), CURVE, the asyncio client, a gateway without an
engine. Each test trades its own instrument, so tests sharing the venue never meet."""
from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

import msgpack
import pytest

from core import commands as C
from gateways.client import AsyncOrderClient, LogonError, OrderClient, new_order
from gateways.keys import KeyStore, parse_key
from replication.command_port import CommandClient
from replication.control import control_request

from .gateway_processes import GatewayProcess, setup_venue
from .processes import NodeProcess

FAST_NODE = ("--replication", "none", "--durability", "async")


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    work = tmp_path_factory.mktemp("gateway")
    node = NodeProcess(work / "node", extra=FAST_NODE).start()
    try:
        setup_venue(node)
        gateway = GatewayProcess(work / "gw", [node.control_endpoint])
        keys = {"a1": gateway.add_key(1), "a1bis": gateway.add_key(1),
                "a2": gateway.add_key(2), "a3": gateway.add_key(3),
                "a4": gateway.add_key(4), "a5": gateway.add_key(5), "a6": gateway.add_key(6),
                "multi": gateway.add_key(4, 5)}
        gateway.start()
        yield node, gateway, keys
        assert gateway.alive, gateway.log.read_text()[-3000:]
        gateway.close()
    finally:
        node.close()


def collect(client: OrderClient, seconds: float = 0.3) -> list[dict]:
    return [m for m in client.reports(timeout=seconds) if m.get("type") != "logged_on"]


def live_orders(node: NodeProcess, account: int) -> dict[int, dict]:
    reply = control_request(node.control_endpoint, {"op": "orders", "account": account})
    return {o["order_id"]: o for o in reply["orders"]}


def test_orders_from_several_clients_match_and_reports_reach_only_their_owners(venue):
    node, gateway, keys = venue
    c1, c2, c3 = (OrderClient(gateway.endpoint, keys[k]) for k in ("a1", "a2", "a3"))
    colleague = OrderClient(gateway.endpoint, keys["a1bis"])
    try:
        s1 = c1.place("S1", "sell", 100, price=1000)
        s2 = c2.place("S1", "sell", 50, price=1001)
        b3 = c3.place("S1", "buy", 120, price=1001)
        assert [a["exec"] for a in (s1, s2, b3)] == ["accepted"] * 3
        time.sleep(0.2)
        assert [m["exec"] for m in collect(c1)] == ["accepted", "fill"]
        assert [m["exec"] for m in collect(c2)] == ["accepted", "partial_fill"]
        fills = [m for m in collect(c3) if m["exec"] in ("fill", "partial_fill")]
        assert [(f["fill_quantity"], f["fill_price"], f["leaves"]) for f in fills] == \
            [(100, 1000, 20), (20, 1001, 0)]
        cancelled = c2.cancel(order_id=s2["order_id"])
        assert (cancelled["exec"], cancelled["cancelled_quantity"], cancelled["cum"]) == \
            ("cancelled", 30, 20)
        replaced = c1.modify(20, client_order_id=c1.place("S1", "buy", 10, price=990)
                             ["client_order_id"], price=995)
        assert (replaced["exec"], replaced["price"], replaced["leaves"]) == ("replaced", 995,
                                                                             20)

        rng = random.Random(5)
        clients = {1: c1, 2: c2, 3: c3}
        placed: dict[int, dict[int, int]] = {a: {} for a in clients}     # clordid -> req
        for _ in range(150):
            account = rng.choice([1, 2, 3])
            side = rng.choice(["buy", "sell"])
            req = clients[account].place("S1", side, rng.randint(1, 30),
                                         price=rng.randint(990, 1010), wait=False)
            placed[account][req] = side
        answers = {a: [clients[a].wait_for(r) for r in placed[a]] for a in clients}
        assert all(x["exec"] == "accepted" for xs in answers.values() for x in xs)
        time.sleep(0.3)
        trades = defaultdict(list)
        for account, client in clients.items():
            mine = {x["order_id"] for x in answers[account]} | \
                {s1["order_id"], s2["order_id"], b3["order_id"], replaced["order_id"]}
            last_leaves = {}
            for report in collect(client):
                assert report["account"] == account, report
                assert report["order_id"] in mine, report
                if report["exec"] in ("fill", "partial_fill"):
                    trades[report["trade_id"]].append(report)
                last_leaves[report["order_id"]] = report["leaves"]
            for order_id, order in live_orders(node, account).items():
                if order_id in last_leaves:
                    assert order["leaves"] == last_leaves[order_id], order
        assert trades, "the random orders crossed"
        for trade_id, pair in trades.items():
            assert sorted(r["liquidity"] for r in pair) == ["maker", "taker"], pair
            assert pair[0]["fill_quantity"] == pair[1]["fill_quantity"]
        assert collect(colleague) == []          # account 1, but none of those were its own
    finally:
        for client in (c1, c2, c3, colleague):
            client.close()


def test_order_status_answers_from_the_gateway_and_from_the_engine(venue, tmp_path):
    node, gateway, keys = venue
    with OrderClient(gateway.endpoint, keys["a4"]) as client:
        placed = client.place("S2", "buy", 7, price=999)
        status = client.order_status(client_order_id=placed["client_order_id"])
        assert (status["type"], status["source"], status["order_id"], status["leaves"],
                status["status"], status["symbol"]) == \
            ("order_status", "gateway", placed["order_id"], 7, "new", "S2")
        refused = client.place("S2", "buy", 7, price=10_000)         # outside the collar
        assert refused["exec"] == "rejected" and refused["reason"] == "PRICE_OUTSIDE_COLLAR"
        status = client.order_status(client_order_id=refused["client_order_id"])
        assert (status["status"], status["reason"]) == ("rejected", "PRICE_OUTSIDE_COLLAR")
        missing = client.order_status(order_id=10**12)
        assert (missing["type"], missing["reason"]) == ("reject", "UNKNOWN_ORDER")
        other = client.order_status(order_id=placed["order_id"], account=5)
        assert other["reason"] == "ACCOUNT_NOT_AUTHORISED"
    late = GatewayProcess(tmp_path / "late", [node.control_endpoint])   # knows no orders
    key = late.add_key(4)
    with late.start(), OrderClient(late.endpoint, key) as client:
        status = client.order_status(order_id=placed["order_id"])
        assert (status["source"], status["leaves"], status["symbol"]) == ("engine", 7, "S2")


def test_cancel_on_disconnect_cancels_the_sessions_orders_and_no_others(venue):
    node, gateway, keys = venue
    watcher = OrderClient(gateway.endpoint, keys["multi"])        # accounts 4 and 5
    keeper = OrderClient(gateway.endpoint, keys["a5"])
    quitter = OrderClient(gateway.endpoint, keys["a5"], cancel_on_disconnect=True,
                          heartbeat_ms=200)
    leaver = OrderClient(gateway.endpoint, keys["a5"], cancel_on_disconnect=True)
    try:
        kept = keeper.place("S3", "buy", 5, price=1000)["order_id"]
        doomed = {quitter.place("S3", "buy", 5, price=990 + i)["order_id"] for i in range(3)}
        left = leaver.place("S3", "sell", 5, price=1050)["order_id"]
        assert doomed | {kept, left} <= set(live_orders(node, 5))
        quitter.close()                           # gone without a logout
        deadline = time.monotonic() + 5
        while doomed & set(live_orders(node, 5)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not doomed & set(live_orders(node, 5))
        logout = leaver.logout()
        assert logout["type"] == "logged_out"
        time.sleep(0.3)
        live = set(live_orders(node, 5))
        assert kept in live and left not in live
        heard = collect(watcher)                  # the owners are gone: the account hears
        cancelled = {r["order_id"] for r in heard if r["exec"] == "cancelled"}
        assert cancelled == doomed | {left}
        assert all(r["reason"] == "CANCELLED_BY_CLIENT" for r in heard if r["exec"] ==
                   "cancelled")
        kept_heard = collect(keeper)              # account 5 too; its own order untouched
        assert {r["order_id"] for r in kept_heard if r["exec"] == "cancelled"} == \
            doomed | {left}
        late = leaver.place("S3", "buy", 5, price=1000)       # logged out: refused
        assert (late["type"], late["reason"]) == ("reject", "NOT_LOGGED_ON")
    finally:
        for client in (watcher, keeper, quitter, leaver):
            client.close()


def test_a_revoked_key_ends_its_session_and_cannot_log_on_again(venue):
    node, gateway, keys = venue
    key = gateway.add_key(6)
    time.sleep(1.2)                               # the gateway re-reads the key file
    client = OrderClient(gateway.endpoint, key)
    try:
        store = KeyStore.load(gateway.keys_path)
        store.revoke(parse_key(key)[0])
        store.save()
        ended = next((m for m in client.reports(timeout=3) if m["type"] == "logged_out"), None)
        assert ended is not None and ended["reason"] == "key_revoked"
        with pytest.raises(LogonError) as refused:
            client.logon()
        assert refused.value.answer["reason"] == "LOGON_FAILED"
    finally:
        client.close()


def test_batch_frames_carry_many_requests_each_answered(venue):
    node, gateway, keys = venue
    with OrderClient(gateway.endpoint, keys["a6"]) as client:
        requests = [new_order("S4", "buy" if i % 2 else "sell", 1, 1000,
                              client_order_id=10_000 + i, account=6) for i in range(2000)]
        requests.append({"type": "new_order", "symbol": "S4", "side": "buy", "quantity": 1,
                         "price": 1000})                              # no client_order_id
        reqs = client.send_batch(requests)
        answers = [client.wait_for(r) for r in reqs]
        assert [a["exec"] for a in answers[:-1]] == ["accepted"] * 2000
        assert answers[-1]["reason"] == "MISSING_FIELD"
        status = client.order_status(client_order_id=10_001)
        assert status["status"] == "filled"        # each buy met the sell before it


def test_curve_encrypts_and_a_client_without_the_server_key_gets_nowhere(venue, tmp_path):
    node, _, _ = venue
    from click.testing import CliRunner

    from cli.main import main
    out = CliRunner().invoke(main, ["keys", "curve", "--out", str(tmp_path / "curve")])
    public = out.output.strip().rsplit(" ", 1)[1]
    gateway = GatewayProcess(tmp_path / "gw", [node.control_endpoint], extra=(
        "--curve-secret-file", str(tmp_path / "curve" / "server.key_secret")))
    key = gateway.add_key(6)
    with gateway.start():
        with OrderClient(gateway.endpoint, key, server_key=public) as client:
            assert client.place("S5", "buy", 1, price=1000)["exec"] == "accepted"
        with pytest.raises(TimeoutError):
            OrderClient(gateway.endpoint, key, timeout=1.0)
        assert "CURVE on" in gateway.log.read_text()


def test_the_asyncio_client(venue):
    node, gateway, keys = venue

    async def trade() -> None:
        a = await AsyncOrderClient.connect(gateway.endpoint, keys["a2"])
        b = await AsyncOrderClient.connect(gateway.endpoint, keys["a3"])
        try:
            sold = await a.place("S6", "sell", 10, price=1000)
            bought = await b.place("S6", "buy", 4, price=1000)
            assert sold["exec"] == bought["exec"] == "accepted"
            seen = [r async for r in a.reports(timeout=0.5)]
            assert [r["exec"] for r in seen if r["type"] == "report"] == \
                ["accepted", "partial_fill"]
            reqs = await a.send_batch([{"type": "cancel", "order_id": sold["order_id"]}])
            cancelled = await a.wait_for(reqs[0])
            assert cancelled["exec"] == "cancelled" and cancelled["cancelled_quantity"] == 6
            status = await b.order_status(order_id=bought["order_id"])
            assert status["status"] == "filled"
        finally:
            await a.close()
            await b.close()

    asyncio.run(trade())


def test_an_instrument_listed_while_the_gateway_runs_trades_at_once(venue):
    node, gateway, keys = venue
    admin = CommandClient(node.command_endpoint)
    assert admin.submit(C.add_instrument(7, "LATE", tick_size=2, lot_size=1,
                                         reference_price=100)).ok
    admin.close()
    with OrderClient(gateway.endpoint, keys["a6"]) as trader:
        deadline = time.monotonic() + 3
        while True:
            answer = trader.place("LATE", "buy", 1, price=100)
            if answer.get("exec") == "accepted" or time.monotonic() > deadline:
                break
            assert answer["reason"] == "UNKNOWN_INSTRUMENT"       # not seen the event yet
            time.sleep(0.05)
        assert answer["exec"] == "accepted" and answer["symbol"] == "LATE"
        assert trader.place("LATE", "buy", 1, price=101)["reason"] == "PRICE_OFF_TICK"


def test_a_gateway_shutdown_ends_sessions_and_cancels_on_disconnect(venue, tmp_path):
    node, _, _ = venue
    gateway = GatewayProcess(tmp_path / "gw", [node.control_endpoint])
    key = gateway.add_key(6)
    with gateway.start(), OrderClient(gateway.endpoint, key,
                                      cancel_on_disconnect=True) as client:
        order_id = client.place("S5", "buy", 3, price=1000)["order_id"]
        assert order_id in live_orders(node, 6)
        assert gateway.stop() == 0
        bye = next(m for m in client.reports(timeout=3) if m["type"] == "logged_out")
        assert bye["reason"] == "gateway_shutdown"
    assert order_id not in live_orders(node, 6)


def test_a_gateway_without_an_engine_still_answers_clearly(tmp_path):
    dead = "tcp://127.0.0.1:1"                 # nothing listens there
    gateway = GatewayProcess(tmp_path / "gw", [dead])
    key = gateway.add_key(1)
    with gateway.start(wait_ready=False):
        with OrderClient(gateway.endpoint, key) as client:
            assert client.session["engine_ready"] is False
            refused = client.place("S1", "buy", 1, price=1000)
            assert (refused["type"], refused["reason"]) == ("reject", "ENGINE_UNAVAILABLE")
            assert client.ping() < 1.0
        socket = gateway.raw_socket()
        socket.send(msgpack.packb({"v": 1, "type": "heartbeat", "req": 1}))
        assert socket.poll(3000)
        assert msgpack.unpackb(socket.recv())["reason"] == "NOT_LOGGED_ON"
        socket.close(0)
        assert gateway.stop() == 0
