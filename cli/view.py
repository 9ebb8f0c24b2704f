"""What ``ringex up`` shows: a live terminal view, or a plain status line, of one dict.

The supervisor gathers a *snapshot* (a plain dict, below) from the nodes' ``status`` control op,
the market-data client and the demo traffic; this module only renders it, so what the view says
is exactly what was measured, and it can be tested without any process. ``render`` builds a
``rich`` renderable for ``rich.live.Live``; ``status_line`` is one line for logs and pipes.

Snapshot keys (missing or None values are shown as ``-``)::

    uptime_s          float
    commands_per_s    float: the primary's journal sequence advance per second
    nodes             [{name, node_id, role, epoch, last_seq, alive}]
    primary           name of the primary node, or None
    standby           {node, state, lag_commands, lag_seconds, hash}  hash: "agree" |
                      "diverged" | "pending"; checks: checkpoints compared so far
    latency_us        {count, p50, p99, p999, max}: acknowledgement latency seen by clients
    instruments       [{symbol, bid, bid_size, ask, ask_size, last, trades: [{price,
                      quantity, side}] newest first}]   prices in 1/10,000 USD
    demo              {source, sent, rejected, day, error} or None
    notices           [str] recent events worth a line (failover, a process that exited)
"""
from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

MINOR_PER_USD = 10_000


def money(price: int | None) -> str:
    return "-" if price is None else f"{price / MINOR_PER_USD:,.2f}"


def _int(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _latency(latency: dict | None) -> str:
    if not latency or not latency.get("count"):
        return "-"
    return (f"p50 {latency['p50']:,.0f} µs  p99 {latency['p99']:,.0f} µs  "
            f"p99.9 {latency['p999']:,.0f} µs  max {latency['max']:,.0f} µs  "
            f"({latency['count']:,} acks)")


def _hash(standby: dict | None) -> str:
    if not standby or not standby.get("hash"):
        return "-"
    checks = standby.get("checks")
    suffix = f" ({checks} comparison{'s' if checks != 1 else ''})" if checks else ""
    return {"agree": "agree", "diverged": "DIVERGED", "pending": "pending"}.get(
        standby["hash"], standby["hash"]) + suffix


def status_line(snap: dict) -> str:
    """One line: primary, sequence, rate, lag, hash, latency, and each symbol's last price."""
    primary = next((n for n in snap.get("nodes", []) if n.get("name") == snap.get("primary")),
                   None)
    standby = snap.get("standby") or {}
    latency = snap.get("latency_us") or {}
    parts = [f"primary {primary['name']} epoch {primary['epoch']} seq {primary['last_seq']:,}"
             if primary else "no primary",
             f"{snap.get('commands_per_s') or 0:,.0f} cmd/s",
             f"standby {standby.get('state') or '-'} lag {_int(standby.get('lag_commands'))}",
             f"hash {_hash(standby)}"]
    if latency.get("count"):
        parts.append(f"ack p50 {latency['p50']:,.0f} µs p99 {latency['p99']:,.0f} µs")
    quotes = [f"{i['symbol']} {money(i.get('last'))}" for i in snap.get("instruments", [])]
    if quotes:
        parts.append(" ".join(quotes))
    return " | ".join(parts)


def render(snap: dict) -> Group:
    """The live view: cluster health, then one row per instrument, then notices."""
    health = Table.grid(padding=(0, 2))
    health.add_column(style="bold")
    health.add_column()
    for node in snap.get("nodes", []):
        role = node.get("role") or ("down" if not node.get("alive") else "?")
        style = {"primary": "green", "standby": "cyan"}.get(role, "yellow")
        health.add_row(f"node {node['name']} (id {node['node_id']})",
                       Text(f"{role}  epoch {_int(node.get('epoch'))}  "
                            f"journal seq {_int(node.get('last_seq'))}", style=style))
    standby = snap.get("standby") or {}
    health.add_row("commands/s", f"{snap.get('commands_per_s') or 0:,.0f}")
    health.add_row("ack latency", _latency(snap.get("latency_us")))
    health.add_row("standby", f"{standby.get('state') or '-'}  lag "
                              f"{_int(standby.get('lag_commands'))} commands, "
                              f"{standby.get('lag_seconds') or 0:.3f} s")
    health.add_row("state hash", Text(_hash(standby),
                                      style="bold red" if standby.get("hash") == "diverged"
                                      else ""))
    demo = snap.get("demo")
    if demo:
        health.add_row("demo traffic", f"{demo.get('source')}: day {demo.get('day', 1)}, "
                                       f"{_int(demo.get('sent'))} requests sent, "
                                       f"{_int(demo.get('rejected'))} rejected")
        if demo.get("error"):
            health.add_row("", Text(f"stopped: {demo['error']}", style="bold red"))

    market = Table(title=f"market  (up {snap.get('uptime_s') or 0:,.0f} s)", expand=False)
    for name, justify in (("symbol", "left"), ("bid size", "right"), ("bid", "right"),
                          ("ask", "right"), ("ask size", "right"), ("last", "right")):
        market.add_column(name, justify=justify, no_wrap=True)
    market.add_column("last trades (aggressor ▲ buy ▼ sell)", overflow="fold")
    for inst in snap.get("instruments", []):
        trades = Text("-")
        if inst.get("trades"):
            trades = Text(" ").join(
                Text(f"{t['quantity']:,}@{money(t['price'])}{'▲' if t['side'] == 1 else '▼'}",
                     style="green" if t["side"] == 1 else "red")
                for t in inst["trades"][:3])
        market.add_row(inst["symbol"], _int(inst.get("bid_size") if inst.get("bid") else None),
                       money(inst.get("bid")), money(inst.get("ask")),
                       _int(inst.get("ask_size") if inst.get("ask") else None),
                       money(inst.get("last")), trades)
    parts: list = [health, market]
    notices = snap.get("notices") or []
    if notices:
        parts.append(Text("\n".join(notices[-5:]), style="yellow"))
    parts.append(Text("Ctrl-C stops everything; ringex up again recovers from the journal.",
                      style="dim"))
    return Group(*parts)
