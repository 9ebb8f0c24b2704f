"""A failover of the engine while clients keep trading through the gateway.

A primary and a hot standby in sync replication; a gateway that knows both nodes' control
ports; two clients sending crossing orders without waiting. Midway, ``ringex failover``
fences the primary and promotes the standby; or (``kill``) the primary is SIGKILLed first,
so that requests it had journaled and replicated but not acknowledged are re-sent and come
back DUPLICATE_ORDER, which the gateway must not pass on as news. The gateway must find the
new primary, re-send what was in flight with the same client order ids, and keep reporting
from the new primary's event stream. In the end every order was answered exactly once, executed exactly once (the
new primary's journal, replayed), and every trade in the journal was reported to both of
its sides, once.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from core.blp import BusinessLogicProcessor
from core.enums import EventKind
from core.records import EVENT, join
from gateways.client import OrderClient
from journal.lmdb_journal import LmdbJournal
from journal.recovery import journal_capacities

from .gateway_processes import GatewayProcess, setup_venue
from .processes import ROOT, NodeProcess
from .test_failover_chaos import wait_live

FAST = ("--peer-timeout-ms", "600", "--sync-timeout-ms", "600", "--durability", "async")
ROUNDS = 300
FAILOVER_AT = 100


@pytest.mark.parametrize("how", ["fence", "kill"])
def test_trading_through_a_failover_executes_and_reports_everything_once(tmp_path, how):
    primary = NodeProcess(tmp_path / "a", node_id=1, extra=FAST).start()
    standby = NodeProcess(tmp_path / "b", role="standby", primary=primary.replication_endpoint,
                          node_id=2, extra=FAST)
    gateway = GatewayProcess(tmp_path / "gw", [primary.control_endpoint,
                                               standby.control_endpoint],
                             extra=("--reply-timeout-ms", "1000"))
    clients: list[OrderClient] = []
    try:
        standby.start()
        wait_live(standby)
        setup_venue(primary)
        keys = gateway.add_key(1), gateway.add_key(2)
        gateway.start()
        seller, buyer = (OrderClient(gateway.endpoint, k, timeout=30) for k in keys)
        clients += [seller, buyer]

        def fail_over() -> None:
            if how == "kill":
                primary.kill()
            subprocess.run([sys.executable, "-m", "cli.main", "failover", "--standby",
                            standby.control_endpoint, "--old-primary",
                            primary.control_endpoint],
                           cwd=ROOT, check=True, capture_output=True, timeout=60)

        failover = threading.Thread(target=fail_over)
        sent = {seller: [], buyer: []}
        for i in range(ROUNDS):
            if i == FAILOVER_AT:
                failover.start()
            sent[seller].append(seller.place("S1", "sell", 5, price=1000 + i % 3, wait=False))
            sent[buyer].append(buyer.place("S1", "buy", 5, price=1002 - i % 3, wait=False))
            if i % 10 == 0:
                time.sleep(0.02)
        failover.join()
        answers = {client: [client.wait_for(req) for req in reqs]
                   for client, reqs in sent.items()}
        time.sleep(1.5)                        # the last fills of the stream
        reports = {client: list(client.reports(timeout=0.5)) for client in sent}

        assert standby.status()["role"] == "primary" and standby.status()["epoch"] == 2
        assert how == "kill" or primary.status()["role"] == "fenced"
        log = gateway.log.read_text()
        assert "sending to the primary: node 2, epoch 2" in log, log[-3000:]
        assert standby.stop() == 0
    finally:
        for client in clients:
            client.close()
        gateway.close()
        primary.close()
        standby.close()

    answered: dict[tuple[int, int], str] = {}
    for client, account in ((seller, 1), (buyer, 2)):
        for answer in answers[client]:
            assert answer["type"] == "report" and answer["exec"] == "accepted", answer
            answered[(account, answer["client_order_id"])] = answer["exec"]
    assert len(answered) == 2 * ROUNDS

    with LmdbJournal(standby.data_dir / "journal", readonly=True) as journal:
        replay = BusinessLogicProcessor(journal_capacities(journal))
        events = join([replay.process_view(b.commands).copy() for b in journal.batches()],
                      EVENT)
    accepted = Counter(zip(*(events[events["kind"] == EventKind.ORDER_ACCEPTED][f].tolist()
                             for f in ("account", "client_order_id"))))
    assert set(accepted) == set(answered) and max(accepted.values()) == 1
    trades = events[events["kind"] == EventKind.TRADE]
    journal_fills = Counter()
    for trade in trades:
        journal_fills[(int(trade["trade_id"]), int(trade["maker_account"]))] += 1
        journal_fills[(int(trade["trade_id"]), int(trade["taker_account"]))] += 1
    reported_fills = Counter()
    for client, account in ((seller, 1), (buyer, 2)):
        for report in reports[client]:
            if report.get("exec") in ("fill", "partial_fill"):
                assert report["account"] == account
                reported_fills[(report["trade_id"], account)] += 1
            assert report.get("exec") != "duplicate", report      # re-sends were no news
    assert len(trades) > ROUNDS // 2
    assert reported_fills == journal_fills
