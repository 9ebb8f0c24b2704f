"""Execution reports: the reference model produces real event streams, the router must send
every report to the right sessions (and only them), echo the ``req`` of the request it
answers, keep the order table right, and stay quiet about re-sends after a failover."""
from __future__ import annotations

from core import commands as C
from core.codes import ResultCode as R
from core.config import Capacities
from core.enums import AccountType, CommandKind as K
from core.model import ReferenceModel
from gateways.engine_link import pack
from gateways.reports import OrderTable, ReportRouter
from gateways.sessions import SessionTable
from gateways.validation import Command


def buy(account, clordid, quantity=10, price=100, **kw) -> Command:
    return Command(K.NEW_ORDER, account, 0, 1, kw.pop("order_type", 2),
                   kw.pop("time_in_force", 2), kw.pop("trail", 0), clordid, 0, price,
                   kw.pop("stop", 0), quantity)


def sell(account, clordid, quantity=10, price=100, **kw) -> Command:
    return buy(account, clordid, quantity, price, **kw)._replace(side=2)


class Desk:
    """A model engine, sessions, and a router wired to collect what each session gets."""

    def __init__(self) -> None:
        self.model = ReferenceModel(Capacities(instruments=4, accounts=8, orders=64,
                                               positions=32, client_order_ids=256))
        self.seq = 0
        self.run(C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1,
                                          reference_price=100),
                         *[C.add_account(a, AccountType.MARGIN) for a in (1, 2, 3)],
                         *[C.deposit_cash(a, 10**9) for a in (1, 2, 3)]))
        self.sessions = SessionTable(rate=100, burst=100, default_heartbeat_ms=1000)
        self.got: list[tuple] = []
        self.router = ReportRouter(self.sessions, lambda s, m: self.got.append((s, m)),
                                   {0: "ACME"}.get, OrderTable(done_kept=3))

    def session(self, name: bytes, *accounts, cod=False):
        return self.sessions.open(name, "k", frozenset(accounts), 0.0,
                                  cancel_on_disconnect=cod)

    def run(self, commands):
        events = self.model.process(C.stamp(commands, self.seq + 1))
        self.seq += len(commands)
        return events

    def send(self, session, command: Command, req=None, route=True):
        self.router.expect(command, session, req)
        events = self.run(pack([command]))
        if route:
            self.router.on_events(events)
        return events

    def other_producer(self, *commands):
        """Commands from elsewhere (another gateway, an admin tool): routed, not expected."""
        self.router.on_events(self.run(C.batch(*commands)))

    def take(self, session) -> list[dict]:
        mine = [m for s, m in self.got if s is session]
        self.got = [(s, m) for s, m in self.got if s is not session]
        return mine


def execs(messages):
    return [m["exec"] for m in messages]


def test_each_side_hears_only_of_its_own_orders():
    d = Desk()
    a, b, c = d.session(b"a", 1), d.session(b"b", 2), d.session(b"c", 3)
    d.send(a, sell(1, 7, 10), req=70)
    [accepted] = d.take(a)
    assert accepted["exec"] == "accepted" and accepted["req"] == 70
    assert (accepted["client_order_id"], accepted["symbol"], accepted["side"]) == \
        (7, "ACME", "sell")
    assert accepted["seq"] == d.seq and accepted["leaves"] == 10
    d.send(b, buy(2, 9, 4), req=90)
    maker, = d.take(a)
    taker = d.take(b)
    assert execs(taker) == ["accepted", "fill"] and taker[0]["req"] == 90
    assert "req" not in taker[1] and taker[1]["liquidity"] == "taker"
    assert maker["exec"] == "partial_fill" and maker["liquidity"] == "maker"
    assert (maker["fill_quantity"], maker["fill_price"], maker["leaves"], maker["cum"]) == \
        (4, 100, 6, 4)
    assert maker["trade_id"] == taker[1]["trade_id"] and maker["client_order_id"] == 7
    assert d.take(c) == []
    state = d.router.orders.find(1, 0, 7)
    assert (state.status, state.leaves, state.cum) == ("partially_filled", 6, 4)
    assert d.router.orders.find(2, 0, 9).status == "filled"
    assert d.router.orders.find(2, 0, 7) is None          # another account's client id


def test_the_owner_not_its_account_colleague_gets_the_reports():
    d = Desk()
    owner, colleague = d.session(b"o", 1), d.session(b"c", 1)
    d.send(owner, sell(1, 1))
    d.other_producer(C.new_order(2, 0, 1, 10, 100, client_order_id=1))
    assert execs(d.take(owner)) == ["accepted", "fill"] and d.take(colleague) == []


def test_orders_entered_elsewhere_or_whose_owner_left_go_to_the_account():
    d = Desk()
    owner, colleague, stranger = d.session(b"o", 1), d.session(b"c", 1), d.session(b"s", 3)
    d.other_producer(C.new_order(1, 0, 2, 10, 100, client_order_id=5))
    assert execs(d.take(owner)) == ["accepted"] and execs(d.take(colleague)) == ["accepted"]
    d.send(owner, sell(1, 6))
    d.take(owner)
    d.sessions.close(owner)
    d.other_producer(C.new_order(2, 0, 1, 20, 100, client_order_id=1))
    assert execs(d.take(colleague)) == ["fill", "fill"] and d.take(owner) == []
    assert d.take(stranger) == []


def test_cancel_modify_and_mass_cancel_answers_carry_their_req():
    d = Desk()
    a, b = d.session(b"a", 1), d.session(b"b", 1)
    d.send(a, buy(1, 1, 10, 99))
    d.send(a, buy(1, 2, 10, 98))
    d.send(b, buy(1, 3, 10, 97))
    d.take(a), d.take(b)
    d.send(a, Command(K.MODIFY, 1, order_id=1, quantity=5, price=99), req=11)
    [replaced] = d.take(a)
    assert replaced["exec"] == "replaced" and replaced["req"] == 11 and replaced["priority_kept"]
    d.send(a, Command(K.CANCEL, 1, client_order_id=2), req=12)
    [cancelled] = d.take(a)
    assert (cancelled["exec"], cancelled["req"], cancelled["reason"]) == \
        ("cancelled", 12, "CANCELLED_BY_CLIENT")
    assert cancelled["cancelled_quantity"] == 10 and cancelled["leaves"] == 0
    d.send(a, Command(K.CANCEL, 1, order_id=2), req=13)
    [refused] = d.take(a)
    assert (refused["exec"], refused["req"], refused["code"], refused["request_type"]) == \
        ("rejected", 13, R.ORDER_NOT_LIVE, "cancel")
    d.send(a, Command(K.CANCEL, 1, order_id=999), req=14)
    assert d.take(a)[0]["reason"] == "UNKNOWN_ORDER"
    d.send(a, Command(K.MASS_CANCEL, 1, -1), req=15)
    mine = d.take(a)
    assert execs(mine) == ["cancelled", "mass_cancelled"]
    assert mine[0]["reason"] == "CANCELLED_BY_MASS_CANCEL" and "req" not in mine[0]
    assert mine[1]["req"] == 15 and mine[1]["order_count"] == 2 and "symbol" not in mine[1]
    assert execs(d.take(b)) == ["cancelled"]                   # b's own order, to b
    assert not d.router.pending


def test_a_rejected_new_order_reaches_its_sender_and_is_remembered():
    d = Desk()
    a = d.session(b"a", 1)
    d.send(a, buy(1, 4, 10, 500), req=3)                # outside the collar
    [refused] = d.take(a)
    assert (refused["exec"], refused["req"], refused["reason"], refused["request_type"]) == \
        ("rejected", 3, "PRICE_OUTSIDE_COLLAR", "new_order")
    assert refused["client_order_id"] == 4 and refused["text"]
    assert d.router.orders.outcomes[(1, 4)] == -R.PRICE_OUTSIDE_COLLAR


def test_expiry_and_stop_triggers_reach_the_owner():
    d = Desk()
    a, b = d.session(b"a", 1), d.session(b"b", 2)
    d.send(a, buy(1, 1, 10, 99, time_in_force=1))                      # DAY
    d.send(a, buy(1, 2, 5, 0, order_type=3, stop=101))                 # stop buy at 101
    d.take(a)
    d.send(b, sell(2, 1, 5, 101))
    d.send(b, buy(2, 2, 5, 101))
    d.take(b)
    triggered = d.take(a)                      # no liquidity left for its market order
    assert execs(triggered) == ["triggered", "cancelled"]
    assert (triggered[0]["stop_price"], triggered[0]["last_price"]) == (101, 101)
    assert triggered[1]["reason"] == "MARKET_REMAINDER"
    d.other_producer(C.end_of_day())
    mine = d.take(a)
    assert "expired" in execs(mine)
    expired = next(m for m in mine if m["exec"] == "expired")
    assert expired["expired_quantity"] == 10 and d.router.orders.find(1, 1, 0).status == \
        "expired"


def test_cancel_on_disconnect_orphans_are_handed_back_once_accepted():
    d = Desk()
    a = d.session(b"a", 1, cod=True)
    d.router.expect(buy(1, 1), a, 1)
    events = d.run(pack([buy(1, 1)]))
    d.sessions.close(a)                                  # gone before the accept arrived
    d.router.on_events(events)
    [orphan] = d.router.take_orphans()
    assert orphan.order_id == 1 and d.router.take_orphans() == []
    keep = d.session(b"k", 2)
    d.send(keep, buy(2, 1))
    d.sessions.close(keep)
    assert d.router.take_orphans() == []                 # no cancel-on-disconnect: kept


def test_resends_after_a_failover_are_no_news_but_a_clients_own_duplicate_is():
    d = Desk()
    a = d.session(b"a", 1)
    d.send(a, sell(1, 1), req=1)
    d.take(a)
    again = sell(1, 1)
    d.router.expect(again, a, 1)
    d.router.mark_resent(again)
    d.router.on_events(d.run(pack([again])))
    assert d.take(a) == [] and d.router.suppressed == 1
    d.send(a, sell(1, 1), req=2)                         # the client re-used the id itself
    [dup] = d.take(a)
    assert (dup["exec"], dup["req"], dup["order_id"], dup["live"]) == ("duplicate", 2, 1, True)

    cancel = Command(K.CANCEL, 1, order_id=1)
    d.send(a, cancel, req=3)
    assert execs(d.take(a)) == ["cancelled"]
    d.router.expect(cancel, a, 3)
    d.router.mark_resent(cancel)
    d.router.on_events(d.run(pack([cancel])))
    assert d.take(a) == [] and d.router.suppressed == 2
    d.send(a, cancel, req=4)                              # not a re-send: the client hears
    assert d.take(a)[0]["reason"] == "ORDER_NOT_LIVE"


def test_forgotten_commands_leave_no_expectation_behind():
    d = Desk()
    a = d.session(b"a", 1)
    command = buy(1, 1)
    d.router.expect(command, a, 1)
    d.router.forget(command, a)
    assert not d.router.pending
    d.router.on_events(d.run(pack([command])))
    [accepted] = d.take(a)                   # routed by account now, without a req
    assert "req" not in accepted


def test_the_order_table_keeps_only_the_newest_finished_orders():
    d = Desk()
    a = d.session(b"a", 1)
    for clordid in range(1, 6):
        d.send(a, buy(1, clordid, 10, 99))
        d.send(a, Command(K.CANCEL, 1, client_order_id=clordid))
    assert list(d.router.orders.done) == [3, 4, 5] and not d.router.orders.live
    assert d.router.orders.find(1, 0, 1) is None and d.router.orders.find(1, 0, 5).status == \
        "cancelled"
    assert a.owned == set()
