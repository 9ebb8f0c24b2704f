"""The kernel's entry point: one call applies one batch of commands.

::

    commands (COMMAND[n]) ──▶ process_batch ──▶ events (EVENT[m], m >= n)
                                   │
                      for each command, in order:
                        ctx ← (seq, ts); route by kind
                        ├─ NEW_ORDER / CANCEL / MODIFY / MASS_CANCEL   order_entry
                        ├─ admin kinds, END_OF_DAY                     admin
                        └─ anything else                               REJECTED(UNKNOWN_COMMAND)

The event buffer is reused between calls and may be replaced by a larger one; the caller keeps
whichever buffer comes back.
"""
from ..codes import ResultCode
from ..enums import CommandKind as K
from . import admin, events, order_entry
from .jit import entry
from .state import Ctx, Sc


@entry
def process_batch(st, cmds, ev):
    """Apply ``cmds`` in order. Returns ``(event buffer, number of events written)``."""
    st.ctx[Ctx.EVENTS] = 0
    for k in range(cmds.shape[0]):
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
