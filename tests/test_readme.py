"""The README's Python example runs and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_python_api_example_prints_what_the_readme_shows() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(from cleanclaim\.engine import Engine.*?)```", text, re.S)
    assert block is not None, "the README lost its Python API example"
    code = block.group(1)
    expected = [line[2:] for line in code.splitlines() if line.startswith("# ")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().splitlines() == expected
