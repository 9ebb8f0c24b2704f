"""Sessions and the per-session rate limit (token bucket), with a test clock."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.sessions import MISSED_HEARTBEATS, SessionTable, TokenBucket


def test_a_bucket_starts_full_refills_at_its_rate_and_never_exceeds_its_burst():
    bucket = TokenBucket(rate=100, burst=10, now=0.0)
    assert bucket.take(25, 0.0) == 10
    assert bucket.take(1, 0.0) == 0
    assert bucket.take(5, 0.05) == 5               # 50 ms at 100/s
    assert bucket.take(1, 0.05) == 0
    assert bucket.take(100, 10.0) == 10            # an hour of quiet still gives only a burst
    assert bucket.take(1, 9.0) == 0                # a clock that steps back adds nothing


def test_a_bucket_needs_a_positive_rate_and_burst():
    with pytest.raises(ValueError):
        TokenBucket(0, 10, 0.0)
    with pytest.raises(ValueError):
        TokenBucket(10, 0, 0.0)


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 10_000), st.integers(1, 1000),
       st.lists(st.tuples(st.floats(0, 2), st.integers(0, 500)), max_size=40))
def test_over_any_interval_a_bucket_grants_at_most_burst_plus_rate_times_time(rate, burst,
                                                                               steps):
    bucket = TokenBucket(rate, burst, 0.0)
    now = granted = 0.0
    for gap, wanted in steps:
        now += gap
        got = bucket.take(wanted, now)
        assert 0 <= got <= wanted
        granted += got
        assert granted <= burst + rate * now + 1e-6


def test_sessions_by_connection_and_account_and_their_default_account():
    table = SessionTable(rate=10, burst=10, default_heartbeat_ms=1000)
    a = table.open(b"a", "k1", frozenset({1}), 0.0)
    b = table.open(b"b", "k2", frozenset({1, 2}), 0.0, heartbeat_ms=200,
                   cancel_on_disconnect=True)
    assert table.get(b"a") is a and len(table) == 2
    assert table.for_account(1) == {a, b} and table.for_account(2) == {b}
    assert a.default_account == 1 and b.default_account is None
    assert b.heartbeat_s == 0.2 and a.heartbeat_s == 1.0 and b.cancel_on_disconnect
    with pytest.raises(ValueError):
        table.open(b"a", "k1", frozenset({1}), 0.0)
    table.close(b)
    table.close(b)                                  # idempotent
    assert not b.open and table.get(b"b") is None
    assert table.for_account(2) == set() and table.for_account(1) == {a}


def test_heartbeats_due_and_timeouts():
    table = SessionTable(rate=10, burst=10, default_heartbeat_ms=100)
    s = table.open(b"a", "k", frozenset({1}), 0.0)
    assert table.heartbeats_due(0.05) == [] and table.heartbeats_due(0.1) == [s]
    s.last_sent = 0.1
    assert table.heartbeats_due(0.15) == []
    limit = 0.1 * MISSED_HEARTBEATS
    assert table.timed_out(limit - 0.01) == [] and table.timed_out(limit + 0.01) == [s]
    s.last_received = 1.0
    assert table.timed_out(1.0 + limit - 0.01) == []


def test_sessions_whose_key_was_revoked():
    table = SessionTable(rate=10, burst=10, default_heartbeat_ms=100)
    a = table.open(b"a", "k1", frozenset({1}), 0.0)
    table.open(b"b", "k2", frozenset({1}), 0.0)
    assert table.revoked({"k2"}) == [a]
