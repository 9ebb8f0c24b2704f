"""API keys: what a client logs on with, and the accounts each key may trade.

A key is ``<key_id>.<secret>``: ``key_id`` 16 lower-case hex digits (public: it names the key in
logs and in the key file), ``secret`` 43 characters of URL-safe base64 (32 random bytes from
``secrets``). The key file stores, per key id, only a salted SHA-256 of the secret, never the
secret itself, so a copy of the file lets no one log on. The secret carries 256 bits of
entropy, so a fast hash is as safe as a slow one here, and keeps a logon flood cheap.

Key file (JSON, written atomically with mode 0600)::

    {"version": 1,
     "keys": {"<key_id>": {"salt": "<32 hex>", "hash": "<64 hex>", "accounts": [1, 2],
                           "label": "desk A", "created": "2025-01-02T03:04:05+00:00"}}}

``verify`` compares in constant time and spends the same work on an unknown key id as on a
known one.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

FILE_VERSION = 1
MAX_ACCOUNT = 2**31 - 1
_KEY = re.compile(r"^([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
_DUMMY_SALT = bytes(16)
_DUMMY_HASH = hashlib.sha256(_DUMMY_SALT + b"x" * 43).digest()


class KeyFileError(ValueError):
    """The key file is missing, unreadable or not a version-1 key file."""


@dataclass(frozen=True)
class ApiKey:
    """One key as stored: what a successful logon is allowed to do."""
    key_id: str
    salt: bytes
    digest: bytes
    accounts: frozenset[int]
    label: str = ""
    created: str = ""


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


def parse_key(text: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    match = _KEY.match(text) if isinstance(text, str) else None
    return (match.group(1), match.group(2)) if match else None


class KeyStore:
    """The keys of one key file; ``reload_if_changed`` picks up keys added while running."""

    def __init__(self, path: Path, keys: dict[str, ApiKey] | None = None) -> None:
        self.path = Path(path)
        self.keys: dict[str, ApiKey] = dict(keys or {})
        self._stamp = self._file_stamp()

    # ------------------------------------------------------------ file
    @classmethod
    def load(cls, path: Path, *, missing_ok: bool = False) -> "KeyStore":
        """Read a key file; with ``missing_ok`` a missing file is an empty store."""
        path = Path(path)
        if not path.exists():
            if missing_ok:
                return cls(path)
            raise KeyFileError(f"no key file at {path} (create one with: ringex keys add)")
        return cls(path, _read(path))

    def save(self) -> None:
        """Write the file atomically (a reader sees the old or the new file, never half)."""
        body = {"version": FILE_VERSION, "keys": {
            k.key_id: {"salt": k.salt.hex(), "hash": k.digest.hex(),
                       "accounts": sorted(k.accounts), "label": k.label,
                       "created": k.created} for k in self.keys.values()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(body, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._stamp = self._file_stamp()

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed since we read or wrote it; True if it did. A file
        that became unreadable keeps the keys we had (and raises KeyFileError)."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self.keys = _read(self.path) if stamp is not None else {}
        return True

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    # ------------------------------------------------------------ keys
    def add(self, accounts: list[int], label: str = "") -> str:
        """Create a key for ``accounts`` and return it whole (the only time the secret is
        seen). Call ``save`` to keep it."""
        if not accounts:
            raise ValueError("a key needs at least one account")
        for account in accounts:
            if type(account) is not int or not 0 <= account <= MAX_ACCOUNT:
                raise ValueError(f"account {account!r} is not an integer in 0..{MAX_ACCOUNT}")
        key_id = secrets.token_hex(8)
        while key_id in self.keys:
            key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        self.keys[key_id] = ApiKey(key_id, salt, _digest(salt, secret), frozenset(accounts),
                                   label, datetime.now(timezone.utc).isoformat(
                                       timespec="seconds"))
        return f"{key_id}.{secret}"

    def revoke(self, key_id: str) -> bool:
        return self.keys.pop(key_id, None) is not None

    def verify(self, key: str) -> ApiKey | None:
        """The stored key ``key`` names, if its secret matches; else None (constant time)."""
        parsed = parse_key(key)
        key_id, secret = parsed if parsed else ("", "x" * 43)
        stored = self.keys.get(key_id)
        salt, expected = (stored.salt, stored.digest) if stored else (_DUMMY_SALT, _DUMMY_HASH)
        matches = hmac.compare_digest(_digest(salt, secret), expected)
        return stored if matches and stored is not None and parsed is not None else None


def _read(path: Path) -> dict[str, ApiKey]:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise KeyFileError(f"cannot read key file {path}: {e}") from None
    if not isinstance(body, dict) or body.get("version") != FILE_VERSION or \
            not isinstance(body.get("keys"), dict):
        raise KeyFileError(f"{path} is not a version-{FILE_VERSION} key file")
    out = {}
    for key_id, entry in body["keys"].items():
        try:
            accounts = entry["accounts"]
            if not re.fullmatch(r"[0-9a-f]{16}", key_id) or not isinstance(accounts, list) or \
                    not all(type(a) is int and 0 <= a <= MAX_ACCOUNT for a in accounts):
                raise ValueError("bad key id or accounts")
            out[key_id] = ApiKey(key_id, bytes.fromhex(entry["salt"]),
                                 bytes.fromhex(entry["hash"]), frozenset(accounts),
                                 str(entry.get("label", "")), str(entry.get("created", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise KeyFileError(f"{path}: key {key_id!r} is malformed ({e})") from None
    return out
