"""The BLP is deterministic: its output depends only on the commands, never on how they were
batched, and two runs of the same stream are byte-identical."""
from __future__ import annotations

import numpy as np
import pytest

from core.workload import StreamSpec, generate
from core.blp import BusinessLogicProcessor
from core.config import Capacities
from core.enums import EventKind
from core.model import ReferenceModel


@pytest.fixture(scope="module")
def stream():
    """A realistic stream (core/workload.py): a market set up, then 30,000 order commands."""
    made = generate(StreamSpec(commands=30_000, accounts=200, instruments=20,
                               target_orders=2_000, seed=7))
    commands = np.zeros(len(made.setup) + len(made.main), made.setup.dtype)
    commands[:len(made.setup)] = made.setup
    commands[len(made.setup):] = made.main
    return commands


CAPACITIES = Capacities(instruments=20, accounts=200, orders=1 << 14, positions=8_000,
                        client_order_ids=1 << 16)


def run(commands: np.ndarray, batch: int, engine=None) -> tuple[bytes, bytes]:
    engine = engine or BusinessLogicProcessor(CAPACITIES)
    out = [engine.process(commands[i:i + batch]).tobytes()
           for i in range(0, len(commands), batch)]
    return b"".join(out), engine.state_hash()


def test_the_stream_trades_and_mostly_succeeds(stream):
    engine = BusinessLogicProcessor(CAPACITIES)
    events = engine.process(stream)
    kinds = np.bincount(events["kind"], minlength=32)
    assert kinds[EventKind.TRADE] > 1000
    assert kinds[EventKind.REJECTED] < len(stream) * 0.05
    engine.check_integrity()


def test_the_same_stream_twice_gives_identical_bytes(stream):
    assert run(stream, 1024) == run(stream, 1024)


@pytest.mark.parametrize("batch", [1, 7, 4096])
def test_batch_boundaries_do_not_matter(stream, batch):
    assert run(stream, batch) == run(stream, 1024)


def test_the_reference_model_agrees_on_a_realistic_stream(stream):
    prefix = stream[:12_000]
    assert run(prefix, 512, ReferenceModel(CAPACITIES)) == run(prefix, 512)
