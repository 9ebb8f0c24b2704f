"""End to end: ``ringex up`` as a user runs it, then a client, market data, demo traffic, a
failover, Ctrl-C, and a restart that recovers the same state.

One test, because each step needs the state the previous ones left: the order placed before
the failover is the one that trades after it, and the hash compared after the restart is the
hash of everything before. Processes are stopped (SIGINT) or, on failure, killed, and their
children follow (``tests.up_process``).
"""
from __future__ import annotations

import json
import re
import signal
import time

import pytest

from gateways.client import OrderClient
from gateways.market_data_client import MarketDataClient, Trade

from .up_process import UpProcess, free_base_port, ringex

pytestmark = pytest.mark.timeout(240)


def trades_seen(md: MarketDataClient, symbol: str, want: int, timeout: float = 15.0) -> list:
    """Trades of ``symbol`` arriving on market data until ``want`` have come."""
    seen, deadline = [], time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        seen += [u for u in md.poll(200) if isinstance(u, Trade) and u.symbol == symbol]
    return seen


def node_status(endpoint: str, with_hash: bool = False) -> dict:
    args = ["status", endpoint] + (["--hash"] if with_hash else [])
    result = ringex(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_role(endpoint: str, role: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = node_status(endpoint)
        if status["role"] == role or time.monotonic() > deadline:
            assert status["role"] == role, status
            return status
        time.sleep(0.2)


def test_up_trades_fails_over_stops_and_recovers_the_same_state(tmp_path):
    data = tmp_path / "ringex-data"
    up = UpProcess(data, free_base_port())
    try:
        started = time.monotonic()
        connect = up.start()
        assert "first start: set up 5 instruments" in up.output()
        a, b = connect["nodes"]["a"], connect["nodes"]["b"]
        account = connect["account"]

        # a client and a market-data subscriber, as the README shows them
        client = OrderClient(connect["gateway"], connect["api_key"],
                             server_key=connect["server_key"])
        md = MarketDataClient(connect["market_data"], connect["snapshots"])
        try:
            md.subscribe("AMZN")
            assert md.wait_synced("AMZN", 10)
            sell = client.place("AMZN", "sell", 10, price=2_240_000, account=account,
                                time_in_force="gtc")
            assert sell["exec"] == "accepted", sell
            buy = client.place("AMZN", "buy", 4, price=2_240_000, account=account,
                               time_in_force="gtc")
            assert buy["exec"] == "accepted", buy
            [trade] = trades_seen(md, "AMZN", 1)
            assert (trade.price, trade.quantity) == (2_240_000, 4)
            assert md.book("AMZN").asks(1) == [[2_240_000, 6, 1]]

            # demo traffic through the gateway, as another client
            demo = ringex("demo-traffic", "--data", str(data), "--gateway", connect["gateway"],
                          "--symbol", "MSFT", "--speed", "20", "--duration", "4")
            assert demo.returncode == 0, demo.stdout + demo.stderr
            summary = re.search(r"([\d,]+) requests in .* ([\d,]+) answered, .* ([\d,]+) "
                                r"rejected", demo.stdout)
            sent, answered, rejected = (int(g.replace(",", "")) for g in summary.groups())
            assert sent > 50 and answered == sent and rejected == 0, demo.stdout

            # fail over: b becomes primary in epoch 2, a is fenced and then rejoins
            failover = ringex("failover", "--standby", b["control"],
                              "--old-primary", a["control"])
            assert failover.returncode == 0, failover.stdout + failover.stderr
            assert json.loads(failover.stdout.splitlines()[-1])["ok"] is True
            assert wait_role(b["control"], "primary")["epoch"] == 2
            up.wait_for_line("node b is primary", 10)

            # trading continues: the rest of the resting sell trades on the new primary
            after = client.place("AMZN", "buy", 6, price=2_240_000, account=account,
                                 time_in_force="gtc")
            assert after["exec"] == "accepted", after
            [trade] = trades_seen(md, "AMZN", 1)
            assert (trade.price, trade.quantity) == (2_240_000, 6)
            resting = client.place("GOOG", "buy", 3, price=5_700_000, account=account,
                                   time_in_force="gtc")
            assert resting["exec"] == "accepted", resting
            wait_role(a["control"], "standby")
            up.wait_for_line("rejoining node b", 5)
        finally:
            client.close()
            md.close()

        # Ctrl-C: everything stops cleanly, no process is left
        assert up.stop() == 0, up.output()[-3000:]
        assert re.search(r"stopped: gateway \(exit 0\), marketdata \(exit 0\), "
                         r"[ab] \(exit 0\), [ab] \(exit 0\)", up.output())
        assert up.ports_free()

        # what the journal says, offline
        replay = ringex("replay", str(data / "b"), "--verify")
        assert replay.returncode == 0, replay.stdout + replay.stderr
        state_hash = re.search(r"state hash ([0-9a-f]{64})", replay.stdout).group(1)
        last_seq = int(re.search(r"to seq ([\d,]+)", replay.stdout).group(1).replace(",", ""))

        # start again: no new setup, b is still primary, both nodes hold the same state
        again = UpProcess(data, up.layout.base_port)
        up = again
        connect = again.start()
        assert "first start" not in again.output()
        primary = node_status(b["control"], with_hash=True)
        standby = node_status(a["control"], with_hash=True)
        assert (primary["role"], primary["epoch"]) == ("primary", 2)
        assert primary["last_seq"] == standby["applied_seq"] == last_seq
        assert primary["state_hash"] == standby["state_hash"] == state_hash
        with OrderClient(connect["gateway"], connect["api_key"],
                         server_key=connect["server_key"]) as client:
            status = client.order_status(account=account, order_id=resting["order_id"])
            assert status["leaves"] == 3, status
        assert again.stop(signal.SIGTERM) == 0                     # as a service manager does
        assert again.ports_free()
        assert time.monotonic() - started < 120
    finally:
        up.kill()


# ---------------------------------------------------------------- the parts, without processes
def make_journal(path, *, epoch: int = 1, fenced_by: int = 0, commands: int = 0) -> None:
    from core import commands as C
    from journal.lmdb_journal import LmdbJournal
    journal = LmdbJournal(path / "journal", durability="async")
    try:
        if commands:
            journal.append(C.stamp(C.batch(*[C.add_account(i) for i in range(commands)]), 1))
        journal.set_epoch(epoch)
        if fenced_by:
            journal.mark_fenced(fenced_by)
    finally:
        journal.close()


@pytest.mark.parametrize("a, b, recorded, primary", [
    (None, None, None, "a"),                                      # first start
    (dict(epoch=1, fenced_by=2), dict(epoch=2), "a", "b"),        # a was fenced: never primary
    (dict(epoch=2), dict(epoch=2), "b", "b"),                     # rejoined: the record decides
    (dict(epoch=2), dict(epoch=2), "a", "a"),
    (dict(epoch=1, commands=3), dict(epoch=1, commands=5), None, "b"),   # then the longer one
    (dict(epoch=3), dict(epoch=2, commands=9), "b", "a"),         # a higher epoch first
])
def test_the_journals_choose_the_primary(tmp_path, a, b, recorded, primary):
    from cli.supervisor import Layout, choose_primary, write_state
    layout = Layout(tmp_path, 7000)
    for spec, node in ((a, layout.nodes[0]), (b, layout.nodes[1])):
        if spec is not None:
            make_journal(node.data_dir, **spec)
    if recorded:
        write_state(layout, {"primary": recorded})
    first, second = choose_primary(layout)
    assert (first.name, second.name) == (primary, "b" if primary == "a" else "a")


SNAPSHOT = {
    "uptime_s": 42.0, "commands_per_s": 123.4, "primary": "b",
    "nodes": [{"name": "a", "node_id": 1, "role": "standby", "epoch": 2, "last_seq": 1500,
               "alive": True},
              {"name": "b", "node_id": 2, "role": "primary", "epoch": 2, "last_seq": 1502,
               "alive": True}],
    "standby": {"node": "a", "state": "live", "lag_commands": 2, "lag_seconds": 0.001,
                "hash": "agree", "checks": 3},
    "latency_us": {"count": 1000, "p50": 412.0, "p99": 900.5, "p999": 1200.0, "max": 5000.0},
    "instruments": [{"symbol": "AMZN", "bid": 2_238_400, "bid_size": 22, "ask": 2_241_300,
                     "ask_size": 8, "last": 2_240_500,
                     "trades": [{"price": 2_240_500, "quantity": 100, "side": 1}]},
                    {"symbol": "MSFT", "bid": None, "bid_size": 0, "ask": None, "ask_size": 0,
                     "last": None, "trades": []}],
    "demo": {"source": "AMZN lobster", "sent": 5000, "rejected": 0, "day": 1},
    "notices": ["12:00:00 node b is primary (epoch 2)"],
}


def test_the_view_shows_what_the_snapshot_holds():
    from rich.console import Console

    from cli.view import render, status_line
    console = Console(width=120, record=True, color_system=None)
    console.print(render(SNAPSHOT))
    text = console.export_text()
    for expected in ("node b (id 2)  primary  epoch 2  journal seq 1,502", "commands/s     123",
                     "p50 412 µs  p99 900 µs  p99.9 1,200 µs  max 5,000 µs  (1,000 acks)",
                     "live  lag 2 commands, 0.001 s", "agree (3 comparisons)",
                     "5,000 requests sent, 0 rejected", "12:00:00 node b is primary",
                     "100@224.05▲"):
        assert expected in text, expected
    amzn = next(line for line in text.splitlines() if line.startswith("│ AMZN"))
    assert re.search(r"22 .* 223\.84 .* 224\.13 .* 8 .* 224\.05", amzn)
    msft = next(line for line in text.splitlines() if line.startswith("│ MSFT"))
    assert re.findall(r"[\d.]+", msft) == []                      # an empty book shows dashes
    assert status_line(SNAPSHOT) == (
        "primary b epoch 2 seq 1,502 | 123 cmd/s | standby live lag 2 | hash agree "
        "(3 comparisons) | ack p50 412 µs p99 900 µs | AMZN 224.05 MSFT -")


def test_the_latency_recorder_reports_percentiles_of_its_window():
    from cli.monitor import LatencyRecorder
    recorder = LatencyRecorder(keep=1000)
    assert recorder.summary() is None
    for i in range(1, 2001):
        recorder.add(i / 1e6)                                     # 1 .. 2000 µs
    summary = recorder.summary()
    assert summary["count"] == 2000                               # all counted,
    assert summary["max"] == pytest.approx(2000)                  # the last 1000 kept
    assert summary["p50"] == pytest.approx(1500.5)
