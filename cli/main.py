"""The ``ringex`` command.

Each verb lives in its own module under ``cli/``; this one only assembles the group. The
process-wide settings the engine wants are made here, before NumPy is imported anywhere:
OpenBLAS's worker threads spin on an idle core, which a 2-core venue cannot spare.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from .demo import demo  # noqa: E402
from .demo_traffic import demo_traffic  # noqa: E402
from .gateway import gateway, keys  # noqa: E402
from .history import audit, drill, replay  # noqa: E402
from .marketdata import marketdata  # noqa: E402
from .node import failover, primary, rejoin, snapshot, standby, status, witness  # noqa: E402
from .up import up  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ringex")
def main() -> None:
    """ringex: an LMAX-style exchange, a replicated deterministic state machine in Python."""


for command in (demo, primary, standby, status, failover, rejoin, witness, snapshot, replay,
                audit, drill, marketdata, gateway, keys, up, demo_traffic):
    main.add_command(command)

if __name__ == "__main__":
    main()
