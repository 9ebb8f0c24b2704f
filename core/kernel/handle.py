"""How the kernel reaches the state's memory without paying for reference counting.

Numba reference-counts every array it touches: reading one column through a NamedTuple of
arrays increfs and decrefs every column of that table, out of line, and that had been most of
the kernel's time (hundreds of calls per command). So the kernel never sees the owner arrays:

* ``StateRef``: a numba StructRef built once per BLP, holding every column as a raw
  ``CPointer`` (indexing reads and writes exactly like an array: ``st.orders.price[o]``).
  Pointers are not reference-counted. The owner ``State`` (``core.kernel.state``) must outlive
  its StateRef; ``core.blp.BusinessLogicProcessor`` holds both.
* ``StateView``: within one kernel call, functions pass a view of the StateRef, a bare pointer
  to its data, so handing the state around costs nothing either.
* ``borrowed`` (``core.kernel.intrinsics``): the same array without an owner, for the command
  and event buffers the caller keeps alive during the call.

Capacities that arrays would carry as ``shape`` live in ``State.scalars`` instead.

With ``NUMBA_DISABLE_JIT=1`` the handle is simply the owner ``State`` with its two-dimensional
columns flattened, and ``view_of`` returns it unchanged: NumPy arrays index like the pointers,
so the same kernel code runs as plain Python (slowly; useful under a debugger).
"""
from __future__ import annotations

import operator

from numba.core import cgutils, imputils, types
from numba.core.typing.templates import AttributeTemplate
from numba.experimental import structref
from numba.extending import (infer_getattr, intrinsic, lower_getattr_generic, models,
                             overload, register_model)

from .intrinsics import JIT
from .jit import entry
from .state import State, state_arrays


@intrinsic
def _pointers(typingctx, value):
    """An array's data pointer, or a NamedTuple of arrays as the same NamedTuple of pointers."""
    if isinstance(value, types.Array):
        def codegen_array(context, builder, sig, args):
            return context.make_array(sig.args[0])(context, builder, args[0]).data
        return types.CPointer(value.dtype)(value), codegen_array

    pointer_types = [types.CPointer(member.dtype) for member in value.types]
    result = types.BaseTuple.from_types(pointer_types, value.instance_class)

    def codegen_table(context, builder, sig, args):
        data = [context.make_array(member)(context, builder,
                                           builder.extract_value(args[0], i)).data
                for i, member in enumerate(sig.args[0].types)]
        return context.make_tuple(builder, sig.return_type, data)
    return result(value), codegen_table


@overload(operator.getitem)
def _pointer_at_enum(pointer, index):
    """``st.scalars[Sc.LAST_SEQ]``: pointers indexed by IntEnum members, as arrays are."""
    if isinstance(pointer, types.CPointer) and isinstance(index, types.IntEnumMember):
        return lambda pointer, index: pointer[index.value]


@overload(operator.setitem)
def _pointer_set_enum(pointer, index, value):
    if isinstance(pointer, types.CPointer) and isinstance(index, types.IntEnumMember):
        def set_at(pointer, index, value):
            pointer[index.value] = value
        return set_at


@structref.register
class StateRefType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class StateRef(structref.StructRefProxy):
    """The kernel's handle on a ``State``: every column as a raw pointer."""

    def __new__(cls, *tables):
        return _new_state_ref(*tables)


structref.define_constructor(StateRef, StateRefType, list(State._fields))
structref.define_boxing(StateRefType, StateRef)


@entry
def _new_state_ref(scalars, ctx, instruments, accounts, positions, orders, levels, books,
                   order_index, client_ids, position_index):
    return StateRef(_pointers(scalars), _pointers(ctx), _pointers(instruments),
                    _pointers(accounts), _pointers(positions), _pointers(orders),
                    _pointers(levels), _pointers(books), _pointers(order_index),
                    _pointers(client_ids), _pointers(position_index))


def kernel_handle(state: State) -> StateRef:
    """The StateRef over ``state``'s arrays. Keep ``state`` alive while using it."""
    for name, array in state_arrays(state).items():
        if not (array.flags.c_contiguous and array.flags.writeable):
            raise ValueError(f"state array {name} must be C-contiguous and writeable")
    if not JIT:
        return _flattened(state)
    return StateRef(*state)


def _flattened(state: State) -> State:
    """The plain-Python handle: the same arrays, every column one-dimensional."""
    def flat(value):
        if hasattr(value, "_fields"):
            return type(value)(*(a.reshape(-1) for a in value))
        return value.reshape(-1)
    return State(*(flat(value) for value in state))


class StateViewType(types.Type):
    """A non-owning pointer to a StateRef's data: what kernel functions pass to each other.

    Valid only while the StateRef it was taken from is alive, i.e. within one kernel call."""

    def __init__(self, ref_type: StateRefType) -> None:
        self.ref_type = ref_type
        super().__init__(name=f"StateView({ref_type.name})")


@register_model(StateViewType)
class _StateViewModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        data = dmm.lookup(fe_type.ref_type.get_data_type()).get_value_type()
        super().__init__(dmm, fe_type, data.as_pointer())


@infer_getattr
class _StateViewAttributes(AttributeTemplate):
    key = StateViewType

    def generic_resolve(self, typ, attr):
        return typ.ref_type.field_dict.get(attr)


@lower_getattr_generic(StateViewType)
def _state_view_getattr(context, builder, typ, value, attr):
    data = cgutils.create_struct_proxy(typ.ref_type.get_data_type())(context, builder,
                                                                      ref=value)
    return imputils.impl_ret_borrowed(context, builder, typ.ref_type.field_dict[attr],
                                      getattr(data, attr))


@intrinsic
def view_of(typingctx, ref):
    """The StateView of a StateRef (see StateViewType)."""
    def codegen(context, builder, sig, args):
        handle = cgutils.create_struct_proxy(sig.args[0])(context, builder, value=args[0])
        data = context.nrt.meminfo_data(builder, handle.meminfo)
        model = context.data_model_manager[sig.args[0].get_data_type()]
        return builder.bitcast(data, model.get_value_type().as_pointer())
    return StateViewType(ref)(ref), codegen


if not JIT:
    def view_of(ref):   # noqa: F811 - the plain-Python twin
        return ref
