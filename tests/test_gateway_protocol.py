"""The order-entry wire protocol: every shape of bad frame gets a clear rejection, never an
exception, and good frames decode to requests whose fields are present and well typed."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.codes import GATEWAY_TEXTS, GatewayCode as G, describe
from gateways.protocol import (MAX_BATCH, MAX_FRAME_BYTES, MAX_STRING, REQUESTS, Rejection,
                               Request, decode_frames, decode_incoming, encode)

ORDER = {"v": 1, "type": "new_order", "req": 7, "symbol": "ACME", "side": "buy",
         "quantity": 10, "price": 1000, "client_order_id": 5}


def one(message) -> Request | Rejection:
    out = decode_frames([msgpack.packb(message)])
    assert len(out) == 1
    return out[0]


def rejected(item, code: G) -> Rejection:
    assert isinstance(item, Rejection), item
    assert item.code == code, item.message()
    message = item.message()
    assert message["type"] == "reject" and message["reason"] == code.name
    assert message["text"].startswith(GATEWAY_TEXTS[code])
    return item


def test_a_good_request_decodes_with_its_req():
    item = one(ORDER)
    assert isinstance(item, Request)
    assert (item.type, item.req, item.body["price"]) == ("new_order", 7, 1000)


@pytest.mark.parametrize("frames", [
    [b"\xc1"],                                  # a byte msgpack never uses
    [b"\x93\x01"],                              # truncated array
    [b"\x81\xa1v\x01\xff\xff"],                 # trailing garbage
    [msgpack.packb(ORDER), msgpack.packb(ORDER)],   # two frames
    [],
    [b"\xa2\xff\xfe"],                          # a string that is not UTF-8
    [b"\xd4\x05\x00"],                          # an ext type
    [b"\x91" * 100_000 + b"\x01"],              # nested 100,000 deep
])
def test_garbage_is_malformed(frames):
    [item] = decode_frames(frames)
    rejected(item, G.MALFORMED)


@pytest.mark.parametrize("message", [[1, 2, 3], "new_order", 5, None, True, b"bytes"])
def test_a_message_must_be_a_map(message):
    rejected(one(message), G.MALFORMED)


def test_versions():
    rejected(one({k: v for k, v in ORDER.items() if k != "v"}), G.MISSING_FIELD)
    rejected(one({**ORDER, "v": 2}), G.UNSUPPORTED_VERSION)
    rejected(one({**ORDER, "v": 0}), G.UNSUPPORTED_VERSION)
    rejected(one({**ORDER, "v": "1"}), G.WRONG_TYPE)
    rejected(one({**ORDER, "v": True}), G.WRONG_TYPE)
    assert one({**ORDER, "v": 2}).req == 7        # the req is echoed even then


def test_types_and_names():
    rejected(one({"v": 1, "req": 1}), G.MISSING_FIELD)
    rejected(one({"v": 1, "type": 3}), G.WRONG_TYPE)
    rejected(one({"v": 1, "type": "buy_everything"}), G.UNKNOWN_TYPE)
    item = rejected(one({**ORDER, "colour": "red"}), G.UNKNOWN_FIELD)
    assert "colour" in item.message()["text"] and item.client_order_id == 5
    rejected(one({**ORDER, "price": 10.5}), G.WRONG_TYPE)
    rejected(one({**ORDER, "price": "1000"}), G.WRONG_TYPE)
    rejected(one({**ORDER, "quantity": True}), G.WRONG_TYPE)       # a bool is not an int
    rejected(one({**ORDER, "quantity": [10]}), G.WRONG_TYPE)
    rejected(one({**ORDER, "symbol": b"ACME"}), G.WRONG_TYPE)
    rejected(one({**ORDER, "symbol": "A" * (MAX_STRING + 1)}), G.OUT_OF_RANGE)
    rejected(one({"v": 1, "type": "logon", "key": "k", "cancel_on_disconnect": 1}),
             G.WRONG_TYPE)
    rejected(one({k: v for k, v in ORDER.items() if k != "side"}), G.MISSING_FIELD)
    rejected(one({**ORDER, "req": -1}), G.OUT_OF_RANGE)
    rejected(one({**ORDER, "req": 2**64 - 1}), G.OUT_OF_RANGE)
    rejected(one({**ORDER, "req": "seven"}), G.WRONG_TYPE)
    bytes_key = msgpack.packb({**ORDER, b"raw": 1}, use_bin_type=True)
    rejected(decode_frames([bytes_key])[0], G.UNKNOWN_FIELD)
    int_key = b"\x81\x01\x02"                   # {1: 2}: keys must be strings
    rejected(decode_frames([int_key])[0], G.MALFORMED)


def test_deep_nesting_inside_a_field_is_only_a_wrong_type():
    deep: list = [1]
    for _ in range(500):
        deep = [deep]
    item = rejected(one({**ORDER, "price": deep}), G.WRONG_TYPE)
    assert len(item.message()["text"]) < 200       # the value is never formatted


def test_batches():
    batch = {"v": 1, "type": "batch", "requests": [ORDER, {**ORDER, "price": "x"}, 5,
                                                   {"type": "heartbeat"},
                                                   {"type": "batch", "requests": []}]}
    items = decode_frames([msgpack.packb(batch)])
    assert isinstance(items[0], Request) and isinstance(items[3], Request)
    rejected(items[1], G.WRONG_TYPE)
    rejected(items[2], G.MALFORMED)
    rejected(items[4], G.UNKNOWN_TYPE)
    full = {"v": 1, "type": "batch", "requests": [ORDER] * MAX_BATCH}
    assert len(decode_frames([msgpack.packb(full)])) == MAX_BATCH
    too_many = {"v": 1, "type": "batch", "requests": [ORDER] * (MAX_BATCH + 1)}
    rejected(decode_frames([msgpack.packb(too_many)])[0], G.TOO_LARGE)
    rejected(one({"v": 1, "type": "batch", "requests": []}), G.OUT_OF_RANGE)
    rejected(one({"v": 1, "type": "batch"}), G.MISSING_FIELD)
    rejected(one({"v": 1, "type": "batch", "requests": {"a": 1}}), G.WRONG_TYPE)
    rejected(one({"v": 1, "type": "batch", "requests": [ORDER], "x": 1}), G.UNKNOWN_FIELD)
    rejected(one({"v": 3, "type": "batch", "requests": [ORDER]}), G.UNSUPPORTED_VERSION)
    inner_version = decode_frames([msgpack.packb(
        {"v": 1, "type": "batch", "requests": [{**ORDER, "v": 9}]})])
    rejected(inner_version[0], G.UNSUPPORTED_VERSION)


def test_size_limits():
    huge_array = b"\xdd\xff\xff\xff\xff"           # claims 4 billion elements
    rejected(decode_frames([huge_array])[0], G.TOO_LARGE)
    huge_map = b"\xdf\x00\x01\x00\x00"              # claims 65,536 entries
    rejected(decode_frames([huge_map])[0], G.TOO_LARGE)
    rejected(decode_frames([b"\x00" * (MAX_FRAME_BYTES + 1)])[0], G.TOO_LARGE)


def test_every_code_has_a_name_and_text_and_engine_codes_are_described():
    for code in G:
        assert describe(code) == (code.name, GATEWAY_TEXTS[code])
    assert describe(114)[0] == "PRICE_OFF_TICK"
    assert describe(777) == ("CODE_777", "engine code 777")


def test_outgoing_frames_round_trip_singly_and_in_batches():
    assert decode_incoming(encode([{"type": "heartbeat"}])) == [{"v": 1, "type": "heartbeat"}]
    messages = [{"type": "report", "exec": "fill"}, {"type": "heartbeat", "req": 3}]
    assert decode_incoming(encode(messages)) == messages
    with pytest.raises(ValueError):
        decode_incoming(b"\xc1")
    with pytest.raises(ValueError):
        decode_incoming(msgpack.packb({"v": 2, "type": "heartbeat"}))


# ---------------------------------------------------------------- hypothesis
def _check(items) -> None:
    assert items, "every frame gets at least one answer"
    for item in items:
        if isinstance(item, Rejection):
            message = item.message()
            assert 900 <= message["code"] < 1000 and message["text"]
            msgpack.packb(message)                      # always encodable
        else:
            fields, required = REQUESTS[item.type]
            assert required <= item.body.keys()
            for name, value in item.body.items():
                if name in fields:
                    assert {"int": int, "str": str, "bool": bool}[fields[name]] is type(value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    _check(decode_frames([data]))


values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() |
    st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
field_names = st.sampled_from(sorted({"v", "type", "req", "requests", *[
    name for fields, _ in REQUESTS.values() for name in fields]})) | st.text(max_size=8)
type_names = st.sampled_from([*REQUESTS, "batch"]) | st.text(max_size=8)


@st.composite
def messages(draw):
    body = draw(st.dictionaries(field_names, values, max_size=8))
    if draw(st.booleans()):
        body["type"] = draw(type_names)
    if draw(st.booleans()):
        body["v"] = draw(st.sampled_from([1, 1, 1, 2, "1", None]))
    if body.get("type") == "batch" and draw(st.booleans()):
        body["requests"] = draw(st.lists(st.dictionaries(field_names, values, max_size=6) |
                                         values, max_size=5))
    return body


@settings(max_examples=500, deadline=None)
@given(messages())
def test_random_maps_get_requests_or_clear_rejections(message):
    _check(decode_frames([msgpack.packb(message)]))
