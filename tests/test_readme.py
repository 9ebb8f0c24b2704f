"""The README's promises: it opens with the two commands, and its Python example runs."""
import re
from pathlib import Path

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_readme_opens_with_make_run_and_make_test():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def test_the_python_example_runs(capsys):
    example = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert "TRADE #1 x #2 200 @ 1000100" in printed
    assert re.fullmatch(r"[0-9a-f]{64}", printed[-1])
