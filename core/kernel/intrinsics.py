"""Low-level helpers that numba does not offer: an unowned array view, a cache prefetch, and
an array over a raw pointer.

With ``NUMBA_DISABLE_JIT=1`` the kernel runs as plain Python on the owner arrays (see
``core.kernel.handle``); these helpers then have trivial Python equivalents.
"""
from __future__ import annotations

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from .jit import kernel

JIT = not numba.config.DISABLE_JIT


@intrinsic
def borrowed(typingctx, array):
    """The same array without an owner: no reference counting. The caller guarantees that
    something else keeps the memory alive while the result is used."""
    def codegen(context, builder, sig, args):
        source = context.make_array(sig.args[0])(context, builder, args[0])
        bare = context.make_array(sig.args[0])(context, builder)
        populate_array(bare, data=source.data, shape=source.shape, strides=source.strides,
                       itemsize=source.itemsize, meminfo=None)
        return bare._getvalue()
    return array(array), codegen


@intrinsic
def prefetch(typingctx, pointer, index):
    """Ask the CPU to start loading ``pointer[index]`` into cache (a hint; no effect on
    results). The batch loop uses it to overlap the next commands' cache misses."""
    def codegen(context, builder, sig, args):
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        llvm_prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0")
        address = builder.bitcast(builder.gep(args[0], [args[1]]), byte_pointer)
        builder.call(llvm_prefetch, [address, i32(0), i32(3), i32(1)])  # read, keep, data
        return context.get_dummy_value()
    return types.void(pointer, index), codegen


@kernel
def column(pointer, length):
    """A state column as an array of ``length`` items (for NumPy functions like argsort)."""
    return numba.carray(pointer, length)


@kernel
def as_records(array):
    """The array itself (plain Python: a ``np.recarray`` view, so ``r[i].price`` works)."""
    return array


if not JIT:
    import numpy as np

    np.seterr(over="ignore")   # the hash mixing wraps on purpose, as it does compiled

    def as_records(array):   # noqa: F811 - the plain-Python twins
        return array.view(np.recarray) if array.dtype.names else array

    def borrowed(array):   # noqa: F811
        return as_records(array)

    def prefetch(pointer, index):   # noqa: F811
        return None

    def column(pointer, length):   # noqa: F811
        return pointer[:length]
