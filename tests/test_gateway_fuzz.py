"""Hostile and broken clients against a real gateway and engine: garbage bytes, wrong msgpack
types, huge arrays, deep nesting, unknown fields, wrong versions, requests before logon,
orders for another account, floods past the rate limit, random frames from hypothesis. Each
gets a clear rejection or is dropped with a log line; the gateway and the engine keep
running; and (the last test) the journal holds only valid order-flow commands of the one
account the fuzzing key may trade."""
from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.blp import BusinessLogicProcessor
from core.codes import ResultCode as R
from core.enums import CommandKind, EventKind
from core.records import COMMAND, EVENT, join
from gateways.protocol import MAX_BATCH, REQUESTS
from journal.lmdb_journal import LmdbJournal
from journal.recovery import journal_capacities

from .gateway_processes import GatewayProcess, setup_venue
from .processes import NodeProcess

SETUP_COMMANDS = 19                        # what setup_venue journals first
RATE, BURST = 4000, 400
STATELESS = {R.UNKNOWN_COMMAND, R.INVALID_CLIENT_ORDER_ID, R.UNKNOWN_INSTRUMENT,
             R.INVALID_SIDE, R.INVALID_ORDER_TYPE, R.INVALID_TIME_IN_FORCE,
             R.TIME_IN_FORCE_NOT_ALLOWED, R.INVALID_QUANTITY, R.QUANTITY_OFF_LOT,
             R.INVALID_PRICE, R.PRICE_OFF_TICK, R.INVALID_STOP_PRICE, R.STOP_PRICE_OFF_TICK,
             R.INVALID_ORDER_REFERENCE}
ORDER_FLOW = {CommandKind.NEW_ORDER, CommandKind.CANCEL, CommandKind.MODIFY,
              CommandKind.MASS_CANCEL}


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    node = NodeProcess(work / "node", extra=("--replication", "none", "--durability", "async"))
    node.start()
    try:
        setup_venue(node)
        gateway = GatewayProcess(work / "gw", [node.control_endpoint], extra=(
            "--rate-limit", str(RATE), "--burst", str(BURST)))
        key = gateway.add_key(1)
        with gateway.start():
            yield node, gateway, key
    finally:
        node.close()


class Raw:
    """A bare DEALER speaking bytes to the gateway."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.socket = gateway.raw_socket(ROUTING_ID=b"r" + random.randbytes(8))
        self.marker = 10**12
        self.key = ""

    def send(self, message: dict) -> None:
        self.socket.send(msgpack.packb(message))

    def exchange(self, *messages: list[bytes], timeout_ms: int = 5000) -> list[dict]:
        """Send each message (a list of frames), then a heartbeat with a marker ``req``;
        everything the gateway answered before the marker came back, flattened."""
        for frames in messages:
            self.socket.send_multipart(frames)
        self.marker += 1
        self.send({"v": 1, "type": "heartbeat", "req": self.marker})
        out = []
        while True:
            assert self.socket.poll(timeout_ms), "the gateway stopped answering"
            top = msgpack.unpackb(self.socket.recv(), raw=False)
            assert isinstance(top, dict) and top["v"] == 1, top
            items = top["messages"] if top["type"] == "batch" else [top]
            for item in items:
                assert isinstance(item, dict) and isinstance(item.get("type"), str), item
                if item.get("req") == self.marker:
                    return out
                out.append(item)

    def logon(self, key: str, **options) -> dict:
        [answer] = self.exchange([msgpack.packb({"v": 1, "type": "logon", "key": key,
                                                 "req": 1, **options})])
        return answer

    def close(self) -> None:
        self.socket.close(0)


def rejects(messages: list[dict]) -> list[str]:
    return [m["reason"] for m in messages if m["type"] == "reject"]


def packed(message) -> list[bytes]:
    return [msgpack.packb(message)]


ORDER = {"v": 1, "type": "new_order", "symbol": "ACME", "side": "buy", "quantity": 10,
         "price": 1000, "client_order_id": 1}


def test_requests_before_logon_and_bad_logons(venue):
    node, gateway, key = venue
    raw = Raw(gateway)
    try:
        assert rejects(raw.exchange(packed(ORDER), packed({"v": 1, "type": "logout"}))) == \
            ["NOT_LOGGED_ON", "NOT_LOGGED_ON"]
        assert raw.logon("0123456789abcdef." + "A" * 43)["reason"] == "LOGON_FAILED"
        assert raw.logon("nonsense")["reason"] == "LOGON_FAILED"
        assert raw.logon(key, heartbeat_ms=5)["reason"] == "OUT_OF_RANGE"
        assert raw.logon(key, heartbeat_ms=10**9)["reason"] == "OUT_OF_RANGE"
        assert raw.logon(key)["type"] == "logged_on"
        assert raw.logon(key)["reason"] == "ALREADY_LOGGED_ON"
    finally:
        raw.close()


def test_malformed_frames_each_get_a_clear_rejection(venue):
    node, gateway, key = venue
    raw = Raw(gateway)
    raw.logon(key)
    deep: list = [1]
    for _ in range(300):
        deep = [deep]
    cases = [
        ([b"\xc1\x00garbage"], "MALFORMED"),
        ([random.Random(1).randbytes(500)], "MALFORMED"),
        ([b"\x91" * 5000 + b"\x01"], "MALFORMED"),                # nested past msgpack's stack
        ([msgpack.packb(ORDER), b"second frame"], "MALFORMED"),
        (packed([1, 2, 3]), "MALFORMED"),
        (packed("new_order"), "MALFORMED"),
        ([b"\xdd\x7f\xff\xff\xff"], "TOO_LARGE"),                 # an array claiming 2**31
        (packed({"v": 1, "type": "batch", "requests": [ORDER] * (MAX_BATCH + 1)}),
         "TOO_LARGE"),
        (packed({**ORDER, "price": deep}), "WRONG_TYPE"),
        (packed({**ORDER, "price": 10.0}), "WRONG_TYPE"),
        (packed({**ORDER, "quantity": "10"}), "WRONG_TYPE"),
        (packed({**ORDER, "side": True}), "WRONG_TYPE"),
        (packed({**ORDER, "surprise": 1}), "UNKNOWN_FIELD"),
        (packed({**ORDER, "v": 2}), "UNSUPPORTED_VERSION"),
        (packed({k: v for k, v in ORDER.items() if k != "v"}), "MISSING_FIELD"),
        (packed({**ORDER, "type": "drop_tables"}), "UNKNOWN_TYPE"),
        (packed({**ORDER, "account": 2}), "ACCOUNT_NOT_AUTHORISED"),
        (packed({"v": 1, "type": "cancel", "account": 3, "order_id": 1}),
         "ACCOUNT_NOT_AUTHORISED"),
        (packed({"v": 1, "type": "mass_cancel", "account": 2}), "ACCOUNT_NOT_AUTHORISED"),
        (packed({**ORDER, "price": 1001}), "PRICE_OFF_TICK"),
        (packed({**ORDER, "quantity": 2**64 - 1}), "INVALID_QUANTITY"),
        (packed({**ORDER, "symbol": "X" * 10_000}), "OUT_OF_RANGE"),
    ]
    try:
        for frames, reason in cases:
            assert rejects(raw.exchange(frames)) == [reason], reason
        answers = raw.exchange(packed({"v": 1, "type": "batch", "requests": [
            {**ORDER, "account": 2}, {**ORDER, "client_order_id": 0}, 7]}))
        assert rejects(answers) == ["ACCOUNT_NOT_AUTHORISED", "INVALID_CLIENT_ORDER_ID",
                                    "MALFORMED"]
    finally:
        raw.close()


def test_a_frame_past_the_size_limit_costs_only_its_connection(venue):
    node, gateway, key = venue
    raw = Raw(gateway)
    raw.logon(key)
    try:
        raw.socket.send(b"\x00" * (3 << 20))
        assert raw.exchange() == []             # reconnected (same routing id) and answered
    finally:
        raw.close()


def test_a_flood_past_the_rate_limit_is_refused_and_then_the_session_goes_on(venue):
    node, gateway, key = venue
    raw = Raw(gateway)
    raw.logon(key)
    try:
        flood = {"v": 1, "type": "batch", "requests": [
            {"type": "order_status", "order_id": 1} for _ in range(3 * BURST)]}
        answers = rejects(raw.exchange(packed(flood)))
        limited = answers.count("RATE_LIMITED")
        assert 2 * BURST - 50 <= limited <= 2 * BURST and len(answers) >= limited
        assert "rejected a request" in gateway.log.read_text()
        status = raw.exchange(packed({"v": 1, "type": "order_status", "order_id": 1,
                                      "req": 5}))
        assert [m.get("reason") for m in status] != ["RATE_LIMITED"]
    finally:
        raw.close()


def test_an_anonymous_flood_is_dropped_with_a_log_line_and_the_gateway_goes_on(venue):
    node, gateway, key = venue
    raw = Raw(gateway)
    try:
        for _ in range(3000):
            raw.socket.send(b"\xc1")
        got = 0
        while raw.socket.poll(500):
            top = msgpack.unpackb(raw.socket.recv())
            got += len(top["messages"]) if top["type"] == "batch" else 1
        assert 0 < got < 3000
        assert "not logged on, and past the rate" in gateway.log.read_text()
        assert raw.logon(key)["type"] == "logged_on"
    finally:
        raw.close()


values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() |
    st.text(max_size=12) | st.binary(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)
ints = st.integers(-5, 3000) | st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64 - 1, -2**63])
good = {"symbol": st.sampled_from(["ACME", "S1", "NOPE"]),
        "side": st.sampled_from(["buy", "sell", "short"]),
        "order_type": st.sampled_from(["limit", "market", "stop", "stop_limit",
                                       "trailing_stop", "x"]),
        "time_in_force": st.sampled_from(["day", "gtc", "ioc", "fok", "x"]),
        "account": st.sampled_from([1, 1, 1, 2, -1]), "key": st.text(max_size=8),
        "cancel_on_disconnect": st.booleans(), "heartbeat_ms": ints}


@st.composite
def requests(draw):
    kind = draw(st.sampled_from([k for k in REQUESTS if k not in ("logon", "logout")] +
                                ["nonsense"]))
    fields = REQUESTS.get(kind, ({"price": "int"}, frozenset()))[0]
    body = {"type": kind}
    for name in fields:
        if draw(st.integers(0, 3)):
            body[name] = draw(good.get(name, ints))
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=6))] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.sampled_from(sorted(fields) or ["price"]))] = draw(values)
    return body


small_ids = st.integers(1, 300)
valid_requests = st.one_of(
    st.fixed_dictionaries({
        "type": st.just("new_order"), "symbol": st.just("S1"),
        "side": st.sampled_from(["buy", "sell"]), "quantity": st.integers(1, 50),
        "price": st.integers(990, 1010), "client_order_id": st.integers(1, 10**6),
        "time_in_force": st.sampled_from(["day", "gtc", "ioc", "fok"])}),
    st.fixed_dictionaries({"type": st.just("cancel"), "order_id": small_ids}),
    st.fixed_dictionaries({"type": st.just("cancel"), "client_order_id": small_ids}),
    st.fixed_dictionaries({"type": st.just("modify"), "order_id": small_ids,
                           "quantity": st.integers(1, 60), "price": st.integers(990, 1010)}),
    st.fixed_dictionaries({"type": st.just("mass_cancel"),
                           "symbol": st.sampled_from(["S1", "ACME"])}))


@st.composite
def frames(draw):
    choice = draw(st.integers(0, 9))
    if choice >= 7:
        return [msgpack.packb({"v": 1, "type": "batch", "requests": draw(st.lists(
            valid_requests | requests(), min_size=1, max_size=30))})]
    if choice == 0:
        return [draw(st.binary(max_size=200))]
    if choice == 1:
        return [msgpack.packb(draw(values))]
    if choice == 2:
        return [msgpack.packb({"v": 1, "type": "batch",
                               "requests": draw(st.lists(requests(), max_size=20))})]
    version = draw(st.sampled_from([1] * 8 + [0, 2]))
    return [msgpack.packb({"v": version, **draw(requests())})]


@pytest.fixture(scope="module")
def fuzzer(venue):
    node, gateway, key = venue
    raw = Raw(gateway)
    assert raw.logon(key)["type"] == "logged_on"
    raw.key = key
    yield raw
    raw.close()


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=frames())
def test_random_frames_get_answers_and_nothing_stops(fuzzer, message):
    for item in fuzzer.exchange(message):
        if item["type"] == "reject":
            assert 100 <= item["code"] < 1000 and item["reason"] and item["text"]
        else:
            assert item["type"] in ("report", "order_status", "heartbeat", "logged_out",
                                    "logged_on"), item
            if item["type"] == "logged_out":
                fuzzer.logon(fuzzer.key)


def test_zz_the_journal_holds_only_valid_commands_of_the_fuzzing_account(venue):
    node, gateway, key = venue
    assert gateway.alive and node.status()["role"] == "primary"
    assert node.stop() == 0
    with LmdbJournal(node.data_dir / "journal", readonly=True) as journal:
        blp = BusinessLogicProcessor(journal_capacities(journal))
        commands, events = [], []
        for batch in journal.batches():
            commands.append(batch.commands.copy())
            events.append(blp.process_view(batch.commands).copy())
    commands = join(commands, COMMAND)[SETUP_COMMANDS:]
    events = join(events, EVENT)
    events = events[events["seq"] > SETUP_COMMANDS]
    assert len(commands) > 50, "some fuzzed orders were valid and went through"
    assert set(commands["kind"].tolist()) <= ORDER_FLOW
    assert set(commands["account"].tolist()) == {1}
    refused = events[events["kind"] == EventKind.REJECTED]
    codes = {R(int(c)).name for c in refused["code"]}
    assert not codes & {c.name for c in STATELESS}, codes
