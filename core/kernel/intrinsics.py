"""Low-level helpers that numba does not offer: an unowned array view, and a cache prefetch."""
from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array


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
