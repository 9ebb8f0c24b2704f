"""Pieces of the gateway process tested in this process: reference data kept current from
events, including across a reference reply older than events already seen."""
from __future__ import annotations

import numpy as np

from core.enums import EventKind, InstrumentStatus
from core.records import EVENT
from gateways.keys import KeyStore
from gateways.order_gateway import GatewayConfig, OrderGateway


def instrument_added(seq: int, instrument: int, symbol: str, tick: int) -> np.ndarray:
    event = np.zeros(1, EVENT)
    event[0]["seq"], event[0]["kind"] = seq, EventKind.INSTRUMENT_ADDED
    event[0]["instrument"], event[0]["symbol"] = instrument, symbol.encode()
    event[0]["tick_size"], event[0]["lot_size"] = tick, 1
    return event


def halted(seq: int, instrument: int) -> np.ndarray:
    event = np.zeros(1, EVENT)
    event[0]["seq"], event[0]["kind"] = seq, EventKind.INSTRUMENT_STATUS_CHANGED
    event[0]["instrument"] = instrument
    event[0]["instrument_status"] = InstrumentStatus.HALTED
    return event


ACME = {"instrument": 0, "symbol": "ACME", "tick_size": 5, "lot_size": 10, "status": 1}


def test_reference_data_follows_events_even_past_an_older_reference_reply(tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    gateway = OrderGateway(GatewayConfig(listen="inproc://gateway-loop-test",
                                         nodes=["inproc://no-node"], keys=keys.path), keys)
    try:
        gateway._reference_events(instrument_added(20, 1, "NEW", 2))     # before any reply
        gateway._reference_reply({"seq": 15, "instruments": [ACME]})
        reference = gateway.validator.reference
        assert sorted(reference.by_symbol) == ["ACME", "NEW"]
        assert reference.by_id[1].tick_size == 2 and gateway._symbol_of(1) == "NEW"
        gateway._reference_events(halted(21, 0))
        assert reference.by_symbol["ACME"].status == InstrumentStatus.HALTED
        gateway._reference_reply({"seq": 30, "instruments": [ACME]})     # newer: taken as is
        assert sorted(gateway.validator.reference.by_symbol) == ["ACME"]
        gateway._reference_reply({"error": "nonsense"})                  # kept the last good
        assert sorted(gateway.validator.reference.by_symbol) == ["ACME"]
    finally:
        gateway.close()
