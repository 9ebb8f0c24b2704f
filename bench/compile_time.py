"""numba compile time of the kernel: cold (empty cache) and cached (second process, same cache).

Each measurement is a fresh Python process with ``NUMBA_CACHE_DIR`` pointing at one new empty
temporary directory, timing ``import core.blp`` and ``core.blp.warm_up()`` separately.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import json, time
t0 = time.perf_counter()
import core.blp
t1 = time.perf_counter()
core.blp.warm_up()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "warm_up_s": t2 - t1}))
"""


def _run(cache_dir: str, cwd: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def measure() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cache_dir = tempfile.mkdtemp(prefix="ringex-numba-cache-")
    try:
        cold = _run(cache_dir, root)
        cached = _run(cache_dir, root)
        files = sum(len(f) for _, _, f in os.walk(cache_dir))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return {"cold": cold, "cached": cached, "cache_files": files}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
