"""The processes of a ``ringex up`` cluster: start them, watch them, stop them, in order.

::

    ringex up (this supervisor)
      ├─ node a  ringex primary|standby   data/a    ports base+1..4  (commands, control,
      ├─ node b  ringex standby|primary   data/b    ports base+11..14  replication, events)
      ├─ ringex gateway      (order entry, CURVE)   follows whichever node is primary
      └─ ringex marketdata   (PUB, snapshots, drop copy)

Every child runs ``python -m cli.main ...`` in its own session (a Ctrl-C in the terminal
reaches only the supervisor, which then stops the children in order: clients' gateway and
market data first, then the primary, then the standby) and, on Linux, dies with the supervisor
(``PR_SET_PDEATHSIG``) if the supervisor itself is killed. Logs go to ``data/logs``.

**Roles on start.** The journals decide, never a guess: a node fenced by a higher epoch than its
own can only be a standby; otherwise the highest epoch wins, then the node that was primary when
the supervisor last looked (``data/cluster.json``), then the longer journal. The other node
follows it, and rejoins (dropping anything never replicated) if it was an old primary.

**While running**, ``watch`` asks both nodes for ``status``, records which one is primary, and
makes a node that a failover fenced rejoin the new primary as its standby, so the cluster is
back to a primary and a hot standby without anyone restarting anything.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from replication.control import control_request

HOST = "127.0.0.1"

#: Run the real command with PR_SET_PDEATHSIG, so a child never outlives a killed supervisor.
_LAUNCHER = ("import ctypes, os, signal, sys\n"
             "parent = int(sys.argv[1])\n"
             "try:\n"
             "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
             "except (AttributeError, OSError):\n"
             "    pass\n"
             "if os.getppid() != parent:\n"
             "    sys.exit(1)\n"
             "os.execv(sys.executable, [sys.executable, '-m', 'cli.main', *sys.argv[2:]])\n")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    node_id: int
    data_dir: Path
    commands: str
    control: str
    replication: str
    events: str


@dataclass(frozen=True)
class Layout:
    """Every endpoint and directory of a cluster. Ports are ``base_port`` + a fixed offset,
    so the default base (7000) gives each component its own default ports."""
    data_dir: Path
    base_port: int = 7000

    def _ep(self, offset: int) -> str:
        return f"tcp://{HOST}:{self.base_port + offset}"

    @property
    def nodes(self) -> tuple[NodeSpec, NodeSpec]:
        return tuple(NodeSpec(name, node_id, self.data_dir / name, self._ep(at + 1),
                              self._ep(at + 2), self._ep(at + 3), self._ep(at + 4))
                     for name, node_id, at in (("a", 1, 0), ("b", 2, 10)))

    @property
    def gateway(self) -> str:
        return self._ep(100)

    @property
    def market_data(self) -> str:
        return self._ep(101)

    @property
    def snapshots(self) -> str:
        return self._ep(102)

    @property
    def drop_copy(self) -> str:
        return self._ep(103)

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def keys(self) -> Path:
        return self.data_dir / "keys.json"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "cluster.json"

    def ports(self) -> list[int]:
        return [self.base_port + o for o in (1, 2, 3, 4, 11, 12, 13, 14, 100, 101, 102, 103)]


@dataclass(frozen=True)
class JournalFacts:
    exists: bool
    epoch: int = 0
    fenced_by: int = 0
    last_seq: int = 0


def journal_facts(node: NodeSpec) -> JournalFacts:
    """What a stopped node's journal says about its role (read-only)."""
    path = node.data_dir / "journal"
    if not (path / "data.mdb").is_file():
        return JournalFacts(False)
    from journal.lmdb_journal import LmdbJournal
    journal = LmdbJournal(path, readonly=True)
    try:
        return JournalFacts(True, journal.epoch, journal.fenced_by, journal.last_seq)
    finally:
        journal.close()


def choose_primary(layout: Layout) -> tuple[NodeSpec, NodeSpec]:
    """(primary, standby) for a start, from the journals and the last recorded primary."""
    a, b = layout.nodes
    recorded = read_state(layout).get("primary")
    facts = {n.name: journal_facts(n) for n in (a, b)}

    def rank(n: NodeSpec) -> tuple:
        f = facts[n.name]
        return (f.fenced_by <= f.epoch, f.epoch, n.name == recorded, f.last_seq,
                n.name == "a")
    primary = max((a, b), key=rank)
    return primary, (b if primary is a else a)


def market_data_status(endpoint: str, timeout_ms: int = 500) -> dict:
    """The market-data service's ``status`` (asked of its snapshot service; raises
    TimeoutError)."""
    import msgpack
    import zmq
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        socket.send(msgpack.packb({"op": "status"}))
        if not socket.poll(timeout_ms):
            raise TimeoutError(f"no answer from {endpoint}")
        return msgpack.unpackb(socket.recv_multipart()[-1], raw=False)
    finally:
        socket.close(0)


def read_state(layout: Layout) -> dict:
    try:
        return json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        return {}


def write_state(layout: Layout, state: dict) -> None:
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, layout.state_file)


@dataclass
class Child:
    """One child process and its log."""
    name: str
    args: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    reported_exit: bool = False

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *self.args],
                stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        finally:
            out.close()
        self.reported_exit = False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class StartError(RuntimeError):
    """A child did not come up; the message holds the end of its log."""


@dataclass
class Supervisor:
    layout: Layout
    node_args: list[str] = field(default_factory=list)      #: extra options for both nodes
    gateway_args: list[str] = field(default_factory=list)
    market_data_args: list[str] = field(default_factory=list)
    children: dict[str, Child] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    primary: str | None = None
    noted: int = 0

    # ------------------------------------------------------------ start
    def start_nodes(self, timeout: float = 120.0) -> tuple[NodeSpec, NodeSpec]:
        """Start both nodes in the roles the journals call for; wait until both answer."""
        self.layout.data_dir.mkdir(parents=True, exist_ok=True)
        primary, standby = choose_primary(self.layout)
        for node, role in ((primary, "primary"), (standby, "standby")):
            args = [role, "--data", str(node.data_dir), "--node-id", str(node.node_id),
                    "--commands", node.commands, "--control", node.control,
                    "--replication-port", node.replication, "--events", node.events,
                    *self.node_args]
            if role == "standby":
                args += ["--primary", primary.replication]
            child = Child(f"node {node.name}", args, self.layout.logs / f"node-{node.name}.log")
            self.children[node.name] = child
            child.start()
        for node in (primary, standby):
            self._wait(self.children[node.name], lambda n=node: self.node_status(n), timeout)
        self._record_primary(primary.name)
        return primary, standby

    def start_service(self, name: str, args: list[str], ready, timeout: float = 60.0) -> None:
        """Start a gateway or market-data child; ``ready()`` returns truthy once it serves."""
        child = Child(name, args, self.layout.logs / f"{name}.log")
        self.children[name] = child
        child.start()
        self._wait(child, ready, timeout)

    def _wait(self, child: Child, probe, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive:
                raise StartError(f"{child.name} exited with {child.proc.returncode}; "
                                 f"the end of {child.log}:\n{child.tail()}")
            try:
                if probe():
                    return
            except (TimeoutError, OSError):
                pass
            time.sleep(0.1)
        raise StartError(f"{child.name} not ready in {timeout:.0f} s; the end of {child.log}:\n"
                         f"{child.tail()}")

    # ------------------------------------------------------------ watch
    def node_status(self, node: NodeSpec, with_hash: bool = False,
                    timeout_ms: int = 500) -> dict:
        return control_request(node.control, {"op": "status", "hash": with_hash}, timeout_ms)

    def watch(self) -> dict[str, dict | None]:
        """Every node's status (None when it does not answer); records the primary, makes a
        fenced node rejoin the primary, and notes children that exited."""
        statuses: dict[str, dict | None] = {}
        for node in self.layout.nodes:
            try:
                statuses[node.name] = self.node_status(node)
            except TimeoutError:
                statuses[node.name] = None
        primaries = [n for n in self.layout.nodes
                     if (statuses[n.name] or {}).get("role") == "primary"]
        if len(primaries) == 1:
            primary = primaries[0]
            if primary.name != self.primary:
                self.note(f"node {primary.name} is primary "
                          f"(epoch {statuses[primary.name]['epoch']})")
                self._record_primary(primary.name)
            for node in self.layout.nodes:
                if (statuses[node.name] or {}).get("role") == "fenced":
                    reply = control_request(node.control, {"op": "rejoin",
                                                           "primary": primary.replication})
                    self.note(f"node {node.name} was fenced: rejoining node {primary.name} as "
                              f"its standby ({reply.get('role') or reply.get('error')})")
        for child in self.children.values():
            if child.proc is not None and not child.alive and not child.reported_exit:
                child.reported_exit = True
                self.note(f"{child.name} exited with code {child.proc.returncode} "
                          f"(log: {child.log})")
        return statuses

    def note(self, text: str) -> None:
        """Keep a notice for the view (the last 20; ``noted`` counts them all)."""
        self.notices.append(f"{time.strftime('%H:%M:%S')} {text}")
        del self.notices[:-20]
        self.noted += 1

    def _record_primary(self, name: str) -> None:
        self.primary = name
        write_state(self.layout, {"primary": name})

    # ------------------------------------------------------------ stop
    def stop(self) -> dict[str, int | None]:
        """Stop every child, services first, then the primary, then the standby; returns
        their exit codes."""
        names = [n for n in self.children if n not in ("a", "b")]
        nodes = sorted((n for n in self.children if n in ("a", "b")),
                       key=lambda n: n != self.primary)
        codes = {}
        for name in names + nodes:
            codes[name] = self.children[name].stop()
        return codes
