"""The venue ``ringex up`` sets up on its first start: instruments, accounts, money, keys.

Instruments are the tickers of the LOBSTER sample (NASDAQ, 2012-06-21) at about that day's
opening prices: AMZN and GOOG trade the real day when the data is there, the others a synthetic
flow. Prices are in 1/10,000 USD with a one-cent tick, quantities in shares.

Accounts 1..8 are the demo traffic's participants; account 100 is yours (the README's examples
trade it). All are margin accounts with $1bn of cash and 100,000 shares of every instrument, so
pre-trade risk never gets in a demo's way. One API key trades them all; it is written, in
clear, to ``demo-api-key`` in the data directory (mode 0600) so that later starts can print it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Where the LOBSTER sample lives, relative to the current directory (the repository's).
LOBSTER_FOLDER = Path("../shared/data/lobster")


@dataclass(frozen=True)
class DemoInstrument:
    symbol: str
    reference_price: int     #: 1/10,000 USD


INSTRUMENTS = (DemoInstrument("AMZN", 2_235_600), DemoInstrument("GOOG", 5_798_100),
               DemoInstrument("AAPL", 5_856_000), DemoInstrument("MSFT", 305_000),
               DemoInstrument("INTC", 268_000))
TICK = 100
DEMO_ACCOUNTS = tuple(range(1, 9))
YOUR_ACCOUNT = 100
CASH = 10_000_000_000_000        #: $1bn in 1/10,000 USD
SHARES = 100_000
COLLAR_BPS = 1_000
MAKER_FEE_BPS = 1
TAKER_FEE_BPS = 2


def setup_commands():
    """Every admin command of the first start, as one COMMAND batch (journaled atomically)."""
    from core import commands as C
    from core.enums import AccountType
    records = [C.add_instrument(i, inst.symbol, tick_size=TICK, lot_size=1,
                                reference_price=inst.reference_price, collar_bps=COLLAR_BPS,
                                maker_fee_bps=MAKER_FEE_BPS, taker_fee_bps=TAKER_FEE_BPS)
               for i, inst in enumerate(INSTRUMENTS)]
    for account in (*DEMO_ACCOUNTS, YOUR_ACCOUNT):
        records += [C.add_account(account, AccountType.MARGIN), C.deposit_cash(account, CASH)]
        records += [C.deposit_position(account, i, SHARES, SHARES * inst.reference_price)
                    for i, inst in enumerate(INSTRUMENTS)]
    return C.batch(*records)


def ensure_api_key(keys_file: Path, key_file: Path) -> str:
    """The demo API key: read from ``key_file``, or created in ``keys_file`` (the gateway's
    key store, which keeps only its hash) and written to ``key_file``."""
    if key_file.is_file():
        return key_file.read_text().strip()
    from gateways.keys import KeyStore
    store = KeyStore.load(keys_file, missing_ok=True)
    key = store.add(sorted((*DEMO_ACCOUNTS, YOUR_ACCOUNT)), "ringex up demo")
    store.save()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def ensure_curve(directory: Path) -> tuple[Path, str]:
    """(secret certificate file, public key) of the gateway's CURVE keypair, made once."""
    import zmq.auth
    secret = directory / "server.key_secret"
    if not secret.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        _, secret_path = zmq.auth.create_certificates(directory, "server")
        os.chmod(secret_path, 0o600)
    public, _ = zmq.auth.load_certificate(secret)
    return secret, public.decode()
