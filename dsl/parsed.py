"""What parsing one policy file gives (`ParsedPolicy`), and parsing through the on-disk
cache (dsl/cache.py) for the checker.

A file parsed before is served from the cache without importing the parser: a cold
`cleanclaim check` whose policy files have not changed builds no Lark parser and parses
nothing (neither the files nor the expressions their messages show). Only files without
any error are kept, so a broken file is parsed every time and reports exactly the
parser's errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from cleanclaim.dsl import ast
from cleanclaim.dsl.cache import PickleCache, module_source
from cleanclaim.dsl.errors import PolicyError


@dataclass(frozen=True, slots=True)
class ParsedPolicy:
    """One parsed file: the tree (None if unusable), its errors, and the value sets that
    a syntax error blanked out, so that their users are not reported as unknown as well."""

    tree: ast.PolicyFile | None
    errors: list[PolicyError]
    broken_names: frozenset[str] = frozenset()


# What shapes a tree: the grammar, the parser and its transformer (dsl/parser.py,
# dsl/to_ast.py) and the counter builder it calls (dsl/history.py), the node and error
# classes, and the Lark release.
_PARSED = PickleCache(
    "parsed",
    sources=(
        "grammar/*.lark",
        "parser.py",
        "to_ast.py",
        "history.py",
        "ast.py",
        "errors.py",
        "parsed.py",
    ),
    salt=lambda: module_source("lark"),
    allowed={"cleanclaim.dsl.ast": None},
)


def parse_policy_file_cached(text: str, file: str) -> ParsedPolicy:
    """`parser.parse_policy_file`, its tree taken from the on-disk cache when this file
    was parsed before (see the module docstring)."""
    entry = _PARSED.entry(file, text)
    if entry is not None:
        tree = _PARSED.load(entry)
        if isinstance(tree, ast.PolicyFile):
            return ParsedPolicy(tree, [])
    from cleanclaim.dsl import parser  # Lark and the grammar: only for a file not cached

    parsed = parser.parse_policy_file(text, file)
    if (
        entry is not None
        and parsed.tree is not None
        and not parsed.errors
        and not parsed.broken_names
    ):
        _PARSED.store(entry, parsed.tree)
    return parsed


def parse_expression_cached(
    text: str, file: str, line: int, column: int
) -> tuple[ast.Expr | None, list[PolicyError]]:
    """`parser.parse_expression` (an expression in a message's braces), served from the
    cache like a file's tree: the checker parses these after the file, so without it a
    policy whose message shows `{mpfs[line.code].pctc}` made every warm start import Lark.
    The entry is keyed by the position too, since the nodes carry their spans."""
    entry = _PARSED.entry("expression", file, str(line), str(column), text)
    if entry is not None:
        node = _PARSED.load(entry)
        if isinstance(node, ast.Expr):
            return node, []
    from cleanclaim.dsl import parser  # only for an expression not cached

    parsed, problems = parser.parse_expression(text, file, line, column)
    if entry is not None and parsed is not None and not problems:
        _PARSED.store(entry, parsed)
    return parsed, problems
