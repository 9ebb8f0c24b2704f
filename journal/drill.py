"""The disaster-recovery drill: restore a node from a copy of its data and prove it.

1. Copy the journal (LMDB's consistent copy, safe while the node runs) and the snapshots to a
   fresh directory, as a restore from backup would.
2. Rebuild the state from the copy exactly as a node starts: newest valid snapshot, verified
   tail. The time this takes is the recovery time objective (RTO) figure.
3. Verify the copy's whole hash chain, and replay it from the first command, comparing the
   state hash with every hash the source node recorded (its checkpoints: at every snapshot and
   at every clean stop), and the final hash with the snapshot-based rebuild's. The drill passes
   when at least one recorded checkpoint was compared, none differs, and both rebuilds agree.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .lmdb_journal import LmdbJournal
from .offline import resolve
from .recovery import recover
from .replay import Checkpoint, replay
from .snapshots import SnapshotStore


@dataclass
class DrillReport:
    source: Path
    copy: Path
    copy_seconds: float
    rebuild_seconds: float
    verify_seconds: float
    last_seq: int
    state_hash: bytes
    snapshot_seq: int | None
    replayed_commands: int
    checkpoints: list[Checkpoint]
    rebuilds_agree: bool

    @property
    def compared(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.recorded is not None]

    @property
    def passed(self) -> bool:
        return bool(self.compared) and self.rebuilds_agree and \
            all(c.verdict == "match" for c in self.compared)

    def lines(self) -> list[str]:
        out = [f"DR drill of {self.source}",
               f"  copied journal and snapshots to {self.copy} in {self.copy_seconds:.2f} s",
               f"  rebuilt to seq {self.last_seq:,} in {self.rebuild_seconds:.3f} s "
               f"(RTO): snapshot {self.snapshot_seq if self.snapshot_seq is not None else 'none'}"
               f", {self.replayed_commands:,} commands replayed",
               f"  whole hash chain verified in {self.verify_seconds:.2f} s",
               f"  state hash {self.state_hash.hex()}",
               "  snapshot+tail and from-the-first-command rebuilds "
               + ("agree" if self.rebuilds_agree else "DISAGREE")]
        for c in self.compared:
            out.append(f"  checkpoint seq {c.seq:,}: {c.verdict}")
        if not self.compared:
            out.append("  no checkpoint recorded by the source at or below this seq: "
                       "nothing to compare (snapshot the node first)")
        out.append("  PASSED" if self.passed else "  FAILED")
        return out


def drill(source: str | Path, workdir: str | Path | None = None) -> DrillReport:
    """Run the drill; the copy goes to a new directory of its own (inside ``workdir`` when
    given), which is ``report.copy`` and is all a caller should ever remove."""
    where = resolve(source)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="ringex-drill-", dir=workdir))
    began = time.perf_counter()
    with LmdbJournal(where.journal, readonly=True) as original:
        original.copy_to(target / "journal")
    if where.snapshots.is_dir():
        shutil.copytree(where.snapshots, target / "snapshots", dirs_exist_ok=True)
    copied = time.perf_counter() - began

    with LmdbJournal(target / "journal", readonly=True) as journal:
        began = time.perf_counter()
        rebuilt = recover(journal, SnapshotStore(target / "snapshots"))
        rto = time.perf_counter() - began
        began = time.perf_counter()
        journal.verify()
        verified = time.perf_counter() - began
        full = replay(journal, None)
    return DrillReport(Path(source), target, copied, rto, verified, rebuilt.last_seq,
                       full.state_hash,
                       rebuilt.snapshot.seq if rebuilt.snapshot else None,
                       rebuilt.replayed_commands, full.checkpoints,
                       rebuilt.blp.state_hash() == full.state_hash)
