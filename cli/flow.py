"""The demo order flow: every symbol's day of requests, merged by time, day after day.

Each symbol gets the NASDAQ day that the LOBSTER folder holds for it (``cli.lobster``), or,
when the folder has none (or is missing), a synthetic day around its reference price
(``cli.synthetic``), converted the same way. The requests of all symbols are merged in time
order; times count from the session's start (09:30 for LOBSTER files), so AMZN and GOOG keep
their real relative timing. When ``loop`` is set, a day is followed by a mass cancel of every
account in every symbol (origin ``day_end``) and then the next day: the same LOBSTER day again,
or a new synthetic one. A synthetic day spreads its messages over as long as the LOBSTER
session beside it lasts, so that no symbol falls silent while another still trades. Client
order ids keep rising across days, so none is ever reused.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .demo_venue import LOBSTER_FOLDER
from .lobster import (DAY_END, MASS_CANCEL, ClientIds, Converter, Counts, DayFiles, Request,
                      find_days, read_day, steps)
from .synthetic import SyntheticSpec, synthetic_day

DAY_GAP_NS = 1_000_000_000      #: between the end of a day and the next day's opening


@dataclass(frozen=True)
class Source:
    """Where one symbol's flow comes from."""
    symbol: str
    kind: str             #: "lobster" or "synthetic"
    detail: str           #: the message file's name, or the synthetic spec in brief

    def __str__(self) -> str:
        return f"{self.symbol}: {self.kind} ({self.detail})"


class DemoFlow:
    """Iterating yields ``Request``s in time order (``time_ns`` from the first day's start).

    ``symbols`` maps each symbol to its reference price (1/10,000 USD), which centres a
    synthetic day. ``accounts`` participants share the flow (request accounts are 0 ..
    accounts-1). ``synthetic_messages`` is the length of a synthetic day. ``counts`` adds up
    what every day converted so far saw and did."""

    def __init__(self, symbols: dict[str, int], folder: Path | None = LOBSTER_FOLDER, *,
                 accounts: int = 8, loop: bool = False, synthetic_messages: int = 20_000,
                 seed: int = 1) -> None:
        self.symbols = dict(symbols)
        self.accounts = accounts
        self.loop = loop
        self.synthetic_messages = synthetic_messages
        self.seed = seed
        found = find_days(folder) if folder is not None else {}
        self.days: dict[str, DayFiles] = {s: found[s] for s in self.symbols if s in found}
        self.sources = [
            Source(s, "lobster", self.days[s].messages.name) if s in self.days else
            Source(s, "synthetic", f"{synthetic_messages:,} messages around "
                                   f"{price / 10_000:,.2f}")
            for s, price in self.symbols.items()]
        #: a synthetic day lasts as long as the LOBSTER session beside it, if any
        session_ns = max((d.end_ns - d.start_ns for d in self.days.values()), default=0)
        self.synthetic_gap_ms = session_ns / 1e6 / synthetic_messages if session_ns else \
            SyntheticSpec.mean_gap_ms
        self.ids = ClientIds(accounts)
        self.day = 0
        self._finished = Counts()
        self._converters: list[Converter] = []
        self._cache: dict[str, tuple] = {}

    @property
    def counts(self) -> Counts:
        out = Counts()
        out.merge(self._finished)
        for c in self._converters:
            out.merge(c.counts)
        return out

    def _day_of(self, symbol: str) -> tuple[list, list, int, int]:
        """(messages, rows, session start, depth) of the symbol's next day."""
        day = self.days.get(symbol)
        if day is not None:
            if symbol not in self._cache:
                self._cache[symbol] = read_day(day)
            messages, rows = self._cache[symbol]
            return messages, rows, day.start_ns, day.levels
        spec = SyntheticSpec(symbol, self.symbols[symbol], messages=self.synthetic_messages,
                             seed=self.seed + self.day, mean_gap_ms=self.synthetic_gap_ms)
        messages, rows = synthetic_day(spec)
        return messages, rows, 0, spec.levels

    def _one_day(self) -> Iterator[Request]:
        streams = []
        for symbol in self.symbols:
            messages, rows, start, depth = self._day_of(symbol)
            converter = Converter(symbol, self.ids, start, depth)
            self._converters.append(converter)
            streams.append(r for step in steps(converter, messages, rows)
                           for r in step.requests)
        return heapq.merge(*streams, key=lambda r: r.time_ns)

    def __iter__(self) -> Iterator[Request]:
        offset = 0
        while True:
            last = 0
            for request in self._one_day():
                last = request.time_ns
                yield request._replace(time_ns=request.time_ns + offset)
            for c in self._converters:
                self._finished.merge(c.counts)
            self._converters = []
            if not self.loop:
                return
            end = offset + last + DAY_GAP_NS
            for symbol in self.symbols:
                for account in range(self.accounts):
                    yield Request(end, symbol, MASS_CANCEL, account, 0, 0, 0, 0, 0, DAY_END)
            offset = end + DAY_GAP_NS
            self.day += 1
