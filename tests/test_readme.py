"""The README's promises: it opens with the two commands, and its examples run as written.

Code blocks are found by the section they sit in (``section``, ``blocks``). Python blocks are
executed; ``sh`` blocks are run command by command (``ringex`` through ``python -m cli.main``)
in a scratch directory, with the default ports (7000 + n) moved to a free range, and a
comment's ``"key": value`` claims are checked against the command's JSON output.
"""
import json
import re
import shlex
from pathlib import Path

import pytest

from .up_process import UpProcess, free_base_port, ringex

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The text under the heading ``title`` (any level), up to the next heading of the same or
    a higher level."""
    heading = re.search(rf"^(#+) {re.escape(title)}$", README, re.M)
    assert heading, f"README has no section {title!r}"
    body = README[heading.end():]
    end = re.search(rf"^#{{1,{len(heading.group(1))}}} ", body, re.M)
    return body[:end.start()] if end else body


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def commands(text: str) -> list[tuple[str, str]]:
    """(command, comment) of every line of the ``sh`` blocks in ``text``."""
    out = []
    for block in blocks(text, "sh"):
        for line in block.strip().splitlines():
            command, _, comment = line.partition("#")
            out.append((command.strip(), comment.strip()))
    return out


def test_the_readme_opens_with_make_run_and_make_test():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def test_the_python_example_runs(capsys):
    [example] = blocks(section("Driving the BLP from Python"), "python")
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert "TRADE #1 x #2 200 @ 1000100" in printed
    assert re.fullmatch(r"[0-9a-f]{64}", printed[-1])


def test_make_run_is_ringex_up_with_demo_traffic():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run: setup\n\t(.*)$", makefile, re.M).group(1)
    assert recipe == "$(BIN)/ringex up --demo"
    assert commands(section("Run it")) == [("make run", "")]


@pytest.mark.timeout(240)
def test_the_first_ten_minutes_work_as_written(tmp_path, monkeypatch, capsys):
    base = free_base_port()
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "ringex-data"

    def run(command: str) -> str:
        """One README command line, here: its output (it must succeed)."""
        moved = re.sub(r"127\.0\.0\.1:7(\d{3})", lambda m: f"127.0.0.1:{base + int(m[1])}",
                       command)
        args = shlex.split(moved)
        assert args[0] == "ringex", command
        result = ringex(*args[1:], cwd=tmp_path)
        assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def claims_hold(output: str, comment: str) -> None:
        """A comment like ``"role": "primary", "epoch": 1`` is true of the JSON output."""
        reply = json.loads(output)
        for key, value in re.findall(r'"(\w+)": ("[^"]*"|\d+)', comment):
            assert reply[key] == json.loads(value), (key, reply[key], comment)

    def python(title: str) -> str:
        [example] = blocks(section(title), "python")
        exec(compile(example, f"README.md ({title})", "exec"), {})
        return capsys.readouterr().out

    up = UpProcess(data, base, "--demo")              # what make run runs
    try:
        up.start()
        placed = python("Place an order")
        assert "'exec': 'accepted'" in placed and "'account': 100" in placed, placed
        watched = python("Watch market data").splitlines()
        assert watched[0].startswith("Quote(symbol='AMZN'")
        assert len(watched) == 4 and all(t.startswith("Trade(symbol='AMZN'") for t in watched[1:])

        for command, comment in commands(section("Fail over")):
            output = run(command)
            if command.startswith("ringex status"):
                claims_hold(output, comment)
        up.wait_for_line("rejoining node b", 10)
        assert "'exec': 'accepted'" in python("Place an order")   # node b accepts it
        seqs = []                                   # and the demo traffic carries on
        while len(seqs) < 2:
            mark = len(up.lines)
            line = up.wait_for_line("primary b epoch 2 seq", 10, after=mark)
            seqs.append(int(re.search(r"seq ([\d,]+)", line)[1].replace(",", "")))
        assert seqs[1] > seqs[0]
        assert up.stop() == 0                                    # Ctrl-C

        history = commands(section("Replay and audit"))
        replay, audit = (run(c) for c, _ in history[:2])
        state_hash = re.search(r"state hash ([0-9a-f]{64})", replay).group(1)
        lines = [json.loads(line) for line in audit.splitlines()]
        assert any(r.get("kind") == "ORDER_ACCEPTED" and r["account"] == 100 for r in lines)
        (start, _), (status, claim) = history[2:]
        assert start == "ringex up"
        up = UpProcess(data, base)
        up.start()
        output = run(status)
        claims_hold(output, claim)
        assert json.loads(output)["state_hash"] == state_hash
        assert up.stop() == 0
    finally:
        up.kill()
