"""API keys: format, hashed storage, verification, reloading; and the ``ringex keys`` verbs."""
from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner

from cli.main import main
from gateways.keys import KeyFileError, KeyStore, parse_key


def test_a_new_key_verifies_and_names_its_accounts(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.add([3, 1], label="desk A")
    key_id, secret = parse_key(key)
    assert len(key_id) == 16 and len(secret) == 43
    found = store.verify(key)
    assert found.key_id == key_id and found.accounts == {1, 3} and found.label == "desk A"


def test_wrong_or_malformed_keys_do_not_verify(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.add([1])
    key_id, secret = parse_key(key)
    other = store.add([2])
    wrong_secret = f"{key_id}.{'A' * 43}"
    swapped = f"{key_id}.{parse_key(other)[1]}"
    for bad in (wrong_secret, swapped, f"{'0' * 16}.{secret}", key + "x", key[:-1], "",
                "no dot", f"{key_id.upper()}.{secret}", None, 12):
        assert store.verify(bad) is None, bad


def test_the_file_holds_only_salted_hashes_and_is_private(tmp_path):
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    key = store.add([1])
    store.add([1])                   # same account: different salt, different hash
    store.save()
    text = path.read_text()
    assert parse_key(key)[1] not in text
    body = json.loads(text)
    entries = list(body["keys"].values())
    assert body["version"] == 1 and len(entries) == 2
    assert entries[0]["salt"] != entries[1]["salt"] and entries[0]["hash"] != entries[1]["hash"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyStore.load(path).verify(key).accounts == {1}


def test_reload_picks_up_added_and_revoked_keys(tmp_path):
    path = tmp_path / "keys.json"
    running = KeyStore.load(path, missing_ok=True)
    assert not running.reload_if_changed()
    admin = KeyStore.load(path, missing_ok=True)
    key = admin.add([7])
    admin.save()
    assert running.reload_if_changed() and running.verify(key) is not None
    assert not running.reload_if_changed()
    admin.revoke(parse_key(key)[0])
    admin.save()
    assert running.reload_if_changed() and running.verify(key) is None


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"version": 2, "keys": {}}', '{"version": 1}',
    '{"version": 1, "keys": {"zz": {"salt": "00", "hash": "00", "accounts": [1]}}}',
    '{"version": 1, "keys": {"0123456789abcdef": {"salt": "00", "hash": "00", '
    '"accounts": [-1]}}}',
    '{"version": 1, "keys": {"0123456789abcdef": {"salt": "0g", "hash": "00", '
    '"accounts": [1]}}}',
    '{"version": 1, "keys": {"0123456789abcdef": {"hash": "00", "accounts": [1]}}}',
])
def test_a_damaged_key_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(KeyFileError):
        KeyStore.load(path)


def test_a_file_damaged_while_running_keeps_the_old_keys(tmp_path):
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    key = store.add([1])
    store.save()
    path.write_text("garbage that is longer than before to change the size")
    with pytest.raises(KeyFileError):
        store.reload_if_changed()
    assert store.verify(key) is not None


def test_bad_accounts_are_refused(tmp_path):
    store = KeyStore(tmp_path / "k.json")
    for accounts in ([], [-1], [2**31], ["1"], [True]):
        with pytest.raises(ValueError):
            store.add(accounts)
    with pytest.raises(KeyFileError):
        KeyStore.load(tmp_path / "missing.json")


def test_cli_add_list_revoke_and_curve(tmp_path):
    runner = CliRunner()
    path = tmp_path / "keys.json"
    added = runner.invoke(main, ["keys", "add", "--account", "4", "--account", "5",
                                 "--keys", str(path), "--label", "ops"])
    assert added.exit_code == 0, added.output
    key = added.output.strip()
    assert KeyStore.load(path).verify(key).accounts == {4, 5}
    listed = runner.invoke(main, ["keys", "list", "--keys", str(path)])
    assert parse_key(key)[0] in listed.output and "4,5" in listed.output
    assert parse_key(key)[1] not in listed.output
    bad = runner.invoke(main, ["keys", "add", "--account", "-3", "--keys", str(path)])
    assert bad.exit_code != 0
    revoked = runner.invoke(main, ["keys", "revoke", parse_key(key)[0], "--keys", str(path)])
    assert revoked.exit_code == 0 and KeyStore.load(path).verify(key) is None
    again = runner.invoke(main, ["keys", "revoke", parse_key(key)[0], "--keys", str(path)])
    assert again.exit_code != 0 and "no key" in again.output

    curve = runner.invoke(main, ["keys", "curve", "--out", str(tmp_path / "curve")])
    assert curve.exit_code == 0, curve.output
    secret = tmp_path / "curve" / "server.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    public = curve.output.strip().rsplit(" ", 1)[1]
    assert len(public) == 40
    twice = runner.invoke(main, ["keys", "curve", "--out", str(tmp_path / "curve")])
    assert twice.exit_code != 0 and "not overwriting" in twice.output
