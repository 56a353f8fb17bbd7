"""From generated Python back to the policy: which rule and policy line each generated
line comes from, and `linecache` entries so that a traceback points at the rule.

Every line the compiler writes for a rule ends with `# rule <index>, line <policy line>`
(numbers only: no text of a policy reaches generated source as code or comment). From
those comments:

- `register_pack` puts the generated source of a pack in `linecache` under its compiled
  name (`<pack medicare #3>`), each rule line's comment spelt out with the policy file
  (`# rule 61: payer_policies/medicare/ncci.policy:14`): a traceback through the pack's
  functions shows the generated line and the policy file:line it encodes. The entry holds
  text that is shown, never compiled, and is dropped with its program (`release`).
- `compile_rule` compiles the function of one rule alone (the slow path that finds a
  failing rule) under `<policy payer_policies/medicare/ncci.policy>` with the positions
  of its code set to the policy lines, and registers the policy file's text under that
  name: a traceback shows the policy file, line and the policy's own line.
"""

from __future__ import annotations

import ast as py
import linecache
import re
from collections.abc import Callable, Mapping, Sequence
from types import CodeType

# The comment `rule_block` (dsl/blocks.py) ends each line of a rule with.
_ORIGIN = re.compile(r"  # rule ([0-9]+), line ([0-9]+)$")


def origins(source: str) -> dict[int, tuple[int, int]]:
    """Generated line number (from 1) -> (rule index, policy line) for the lines of
    `source` that come from a rule."""
    found = {}
    for number, text in enumerate(source.splitlines(), start=1):
        match = _ORIGIN.search(text)
        if match:
            found[number] = (int(match.group(1)), int(match.group(2)))
    return found


def shown_file(file: str) -> str:
    """A policy file name as it may appear in a traceback line or a compiled name: every
    control and non-ASCII character escaped (no name can break a line)."""
    return ascii(file)[1:-1]


def register_pack(name: str, source: str, files: Sequence[str]) -> None:
    """Put `source` (compiled as `name`) in `linecache`, each rule line's comment naming
    the policy file of its rule (`files`: rule index -> its policy file)."""

    def spelt(match: re.Match[str]) -> str:
        index = int(match.group(1))
        file = shown_file(files[index]) if index < len(files) else "?"
        return f"  # rule {index}: {file}:{match.group(2)}"

    lines = [_ORIGIN.sub(spelt, text) + "\n" for text in source.splitlines()]
    linecache.cache[name] = (len(source), None, lines, name)


def release(name: str) -> None:
    """Drop the `linecache` entry of a program no longer in use."""
    linecache.cache.pop(name, None)


def policy_name(file: str) -> str:
    """The name a rule's code is compiled under: `<policy FILE>`."""
    return f"<policy {shown_file(file)}>"


def compile_rule(source: str, file: str, rule_line: int, texts: Mapping[str, str]) -> CodeType:
    """Compile the source of one rule's function with each statement and expression at
    the policy line it comes from (the rule's own line where no comment says), under
    `policy_name(file)`, with the policy file's text (from `texts`, or read from disk by
    `linecache`) registered under that name."""
    name = policy_name(file)
    text = texts.get(file)
    lines = linecache.getlines(file) if text is None else text.splitlines(keepends=True)
    if lines:
        linecache.cache[name] = (sum(map(len, lines)), None, lines, name)
    where = origins(source)
    tree = py.parse(source)
    widths: dict[int, int] = {}

    def width(line: int) -> int:
        # The whole policy line, so that a traceback marks no part of it with carets
        # (its columns are the generated code's, not the policy's).
        if line not in widths:
            shown = lines[line - 1].rstrip("\n") if 0 < line <= len(lines) else ""
            widths[line] = len(shown.encode("utf-8"))
        return widths[line]

    for node in py.walk(tree):
        if isinstance(node, (py.stmt, py.expr, py.excepthandler, py.arg, py.keyword)):
            line = where.get(node.lineno, (0, rule_line))[1]
            node.lineno = node.end_lineno = line
            node.col_offset, node.end_col_offset = 0, width(line)
    return compile(tree, name, "exec")


def finalizer(name: str) -> Callable[[], None]:
    """What drops `name` from `linecache` (for `weakref.finalize`)."""
    return lambda: release(name)
