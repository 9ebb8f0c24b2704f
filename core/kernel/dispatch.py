"""The kernel's entry point: one call applies one batch of commands.

::

    commands (COMMAND[n]) ──▶ process_batch ──▶ events (EVENT[m], m >= n)
                                   │
                      for each command, in order:
                        ctx ← (seq, ts); route by kind
                        ├─ NEW_ORDER / CANCEL / MODIFY / MASS_CANCEL   order_entry
                        ├─ admin kinds, END_OF_DAY                     admin
                        └─ anything else                               REJECTED(UNKNOWN_COMMAND)

The event buffer is reused between calls and may be replaced by a larger one; see
``process_batch``. While applying command k the loop prefetches the hash-table slots command
k + PREFETCH_AHEAD will probe, so their cache misses overlap with useful work (the client-id
table holds a whole day of orders and is far larger than the caches).
"""
from ..codes import ResultCode
from ..enums import CommandKind as K
from . import admin, events, order_entry, tables
from .jit import entry, kernel
from .handle import view_of
from .intrinsics import borrowed
from .state import Ctx, Sc


PREFETCH_AHEAD = 8   #: commands ahead: warm the hash-table slots a command will probe


@kernel
def _prefetch_lookups(st, c):
    """Warm the hash-table lines the command's lookups will read (a hint only)."""
    kind = c.kind
    if kind == K.NEW_ORDER:
        tables.prefetch_key(st.client_ids, c.account, c.client_order_id)
        tables.prefetch_key(st.position_index, order_entry.position_key(c.account,
                                                                        c.instrument), 0)
    elif kind == K.CANCEL or kind == K.MODIFY:
        if c.order_id == 0:
            tables.prefetch_key(st.client_ids, c.account, c.client_order_id)
        else:
            tables.prefetch_key(st.order_index, c.order_id, 0)


@entry
def process_batch(state_ref, cmds, ev):
    """Apply ``cmds`` in order. Returns ``(event buffer, number of events written)``.

    The caller keeps ``cmds`` and ``ev`` alive during the call, so both are borrowed (no
    reference counting). If ``ev`` fills up, a larger buffer owned by numba replaces it; the
    caller must then keep the returned buffer instead of its own."""
    st = view_of(state_ref)
    cmds = borrowed(cmds)
    ev = borrowed(ev)
    st.ctx[Ctx.EVENTS] = 0
    n = cmds.shape[0]
    for k in range(min(PREFETCH_AHEAD, n)):
        _prefetch_lookups(st, cmds[k])
    for k in range(n):
        if k + PREFETCH_AHEAD < n:
            _prefetch_lookups(st, cmds[k + PREFETCH_AHEAD])
        c = cmds[k]
        st.ctx[Ctx.SEQ] = c.seq
        st.ctx[Ctx.TS] = c.ts
        st.scalars[Sc.LAST_SEQ] = c.seq
        kind = c.kind
        if kind == K.NEW_ORDER:
            ev = order_entry.new_order(st, ev, c)
        elif kind == K.CANCEL:
            ev = order_entry.cancel(st, ev, c)
        elif kind == K.MODIFY:
            ev = order_entry.modify(st, ev, c)
        elif kind == K.MASS_CANCEL:
            ev = order_entry.mass_cancel(st, ev, c)
        elif kind == K.DEPOSIT_CASH:
            ev = admin.deposit_cash(st, ev, c)
        elif kind == K.WITHDRAW_CASH:
            ev = admin.withdraw_cash(st, ev, c)
        elif kind == K.DEPOSIT_POSITION:
            ev = admin.deposit_position(st, ev, c)
        elif kind == K.WITHDRAW_POSITION:
            ev = admin.withdraw_position(st, ev, c)
        elif kind == K.SET_ACCOUNT_LIMITS:
            ev = admin.set_account_limits(st, ev, c)
        elif kind == K.SET_POSITION_LIMIT:
            ev = admin.set_position_limit(st, ev, c)
        elif kind == K.ADD_INSTRUMENT:
            ev = admin.add_instrument(st, ev, cmds, k)
        elif kind == K.ADD_ACCOUNT:
            ev = admin.add_account(st, ev, c)
        elif kind == K.SET_ACCOUNT_STATUS:
            ev = admin.set_account_status(st, ev, c)
        elif kind == K.SET_INSTRUMENT_STATUS:
            ev = admin.set_instrument_status(st, ev, c)
        elif kind == K.END_OF_DAY:
            ev = admin.end_of_day(st, ev)
        else:
            ev = events.rejected(st, ev, c, ResultCode.UNKNOWN_COMMAND)
    return ev, st.ctx[Ctx.EVENTS]
