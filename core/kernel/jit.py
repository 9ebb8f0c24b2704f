"""The one decorator every kernel function uses, and where its compiled code is cached.

``kernel`` is ``numba.njit(cache=True, nogil=True)``. Numba keys each function's on-disk cache
by its own source file only, so after an edit to a *callee* in another module a caller could
load stale machine code. To make that impossible, the cache lives in a directory named after a
hash of every kernel source file: any edit anywhere in the kernel starts a fresh cache. (An
explicit ``NUMBA_CACHE_DIR`` in the environment is respected and then this safety is the
user's.)
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_CORE = Path(__file__).parent.parent
#: Everything compiled code can depend on: the kernel package and the core modules it imports.
_KERNEL_SOURCES = sorted([*Path(__file__).parent.glob("*.py"),
                          *(_CORE / f"{name}.py" for name in
                            ("integers", "enums", "codes", "records", "config"))])


def _source_digest() -> str:
    h = hashlib.blake2b(digest_size=8)
    for path in _KERNEL_SOURCES:
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ringex" / "numba"


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = str(_cache_root() / _source_digest())

#: For functions called only from other kernel functions: no CPython wrapper is generated, which
#: matters because unboxing the whole ``State`` tuple in a wrapper costs seconds of compile time.
kernel = numba.njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)

#: For the few functions Python calls directly (the batch entry point, the hash tables).
entry = numba.njit(cache=True, nogil=True)
