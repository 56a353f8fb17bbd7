"""Policy text to syntax tree.

The version line selects the grammar (`grammar/policy_v<N>.lark`). Lark's exceptions are
turned into `PolicyError`s here, and a syntax error does not stop the file: the broken
value set or rule is blanked out and parsing resumes at the next one, so every broken
item of a file is reported in one pass. The names of value sets blanked that way are
kept (`ParsedPolicy.broken_names`) so that their users are not reported as unknown too.

Common mistakes ("missing `then`", "unclosed code list", "date must be YYYY-MM-DD") are
named in the error's hint from the failing token, what the parser expected there and the
words before it (dsl/syntax_errors.py). The transformer from Lark's tree to `ast` nodes
is dsl/to_ast.py.

The checker parses through `parsed.parse_policy_file_cached`, which keeps the trees of
error-free files on disk (dsl/cache.py) and imports this module only for the others.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput
from lark.tree import Meta

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.parsed import ParsedPolicy
from cleanclaim.dsl.syntax_errors import syntax_error
from cleanclaim.dsl.to_ast import ToAst, span_of

SUPPORTED_VERSIONS = (1,)

_VERSION_LINE = re.compile(r"\A(?:\s|#[^\n]*)*version\s+([0-9]+)\b")
_ITEM_START = re.compile(r"^[ \t]*(rule|valueset|counter|table)\b", re.MULTILINE)


@cache
def _parser(version: int) -> Lark:
    grammar = resources.files("cleanclaim.dsl").joinpath(f"grammar/policy_v{version}.lark")
    return Lark(
        grammar.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )


@cache
def _expression_parser(version: int) -> Lark:
    """The same grammar started at `expr` (message templates: `{days_between(a, b)}`)."""
    grammar = resources.files("cleanclaim.dsl").joinpath(f"grammar/policy_v{version}.lark")
    return Lark(
        grammar.read_text(encoding="utf-8"),
        parser="lalr",
        start="expr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )


def parse_expression(
    text: str, file: str, line: int, column: int, version: int = 1
) -> tuple[ast.Expr | None, list[PolicyError]]:
    """Parse an expression that stands at `line`:`column` of `file` (inside a message's
    braces), with spans and errors located there."""
    padded = "\n" * (line - 1) + " " * (column - 1) + text
    try:
        tree = _expression_parser(version).parse(padded)
    except UnexpectedInput as err:
        return None, [syntax_error(file, padded, err, reserved_words(version))]
    builder = ToAst(file)
    node = builder.transform(tree)
    return (node if not isinstance(node, Token) else None), builder.errors


@cache
def reserved_words(version: int) -> frozenset[str]:
    """The keywords of a language version that cannot be names (its NAME terminal's
    negative lookahead)."""
    pattern = _parser(version).get_terminal("NAME").pattern.value
    match = re.match(r"\(\?!\(\?:([a-z0-9_|]+)\)", pattern)
    return frozenset(match.group(1).split("|")) if match else frozenset()


_VALUESET_NAME = re.compile(r"^[ \t]*valueset\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


def _valueset_names(text: str) -> frozenset[str]:
    return frozenset(m.group(1).lower() for m in _VALUESET_NAME.finditer(text))


def parse_policy(text: str, file: str) -> tuple[ast.PolicyFile | None, list[PolicyError]]:
    """Parse one policy file; returns the tree (None if unusable) and every error found."""
    parsed = parse_policy_file(text, file)
    return parsed.tree, parsed.errors


# How deep the tree of one value set or rule may nest. The transformer, the checker and
# the compiler walk expressions recursively, and Python's own parser takes at most 200
# nested parentheses in the generated code: deeper policies are refused here, located,
# instead of failing later with a RecursionError.
MAX_DEPTH = 64


def _too_deep(file: str, tree: Tree[Token]) -> list[tuple[Meta, PolicyError]]:
    """The items of a parsed file that nest deeper than `MAX_DEPTH`, each with its error
    (at the clause that holds the deepest part)."""
    found: list[tuple[Meta, PolicyError]] = []
    for item in tree.children:
        if not isinstance(item, Tree):
            continue
        stack: list[tuple[Tree[Token], int, Tree[Token]]] = [(item, 1, item)]
        while stack:
            node, depth, clause = stack.pop()
            if depth > MAX_DEPTH:
                span = span_of(file, clause.meta)
                found.append(
                    (
                        item.meta,
                        PolicyError(
                            "E007",
                            f"this clause nests more than {MAX_DEPTH} levels deep",
                            ast.Span(file, span.line, span.column, span.line, span.column + 1),
                            "split the condition with `let` names; put many codes in a value set",
                        ),
                    )
                )
                break
            stack.extend(
                (child, depth + 1, child if depth == 1 else clause)
                for child in node.children
                if isinstance(child, Tree)
            )
    return found


def parse_policy_file(text: str, file: str) -> ParsedPolicy:
    """Parse one policy file, every syntax error of it in one pass."""
    # A byte order mark is invisible in an editor: columns count from after it.
    text = text.removeprefix("\ufeff")
    match = _VERSION_LINE.match(text)
    if match is None:
        return ParsedPolicy(
            None,
            [
                PolicyError(
                    "E004",
                    "a policy file must start with a version line",
                    ast.Span(file, 1, 1, 1, 2),
                    "put `version 1` on the first line",
                )
            ],
            _valueset_names(text),
        )
    version = int(match.group(1))
    if version not in SUPPORTED_VERSIONS:
        line = text.count("\n", 0, match.start(1)) + 1
        return ParsedPolicy(
            None,
            [
                PolicyError(
                    "E005",
                    f"policy language version {version} is not supported",
                    ast.Span(file, line, 1, line, 2),
                    f"supported versions: {', '.join(map(str, SUPPORTED_VERSIONS))}",
                )
            ],
            _valueset_names(text),
        )
    parser = _parser(version)
    errors: list[PolicyError] = []
    broken: set[str] = set()
    work = text
    for _attempt in range(200):
        try:
            tree = parser.parse(work)
            break
        except UnexpectedInput as err:
            errors.append(syntax_error(file, text, err, reserved_words(version)))
            blanked = _blank_broken_item(work, err)
            if blanked is None:
                return ParsedPolicy(None, errors, _valueset_names(text))
            work, chunk = blanked
            broken |= _valueset_names(chunk)
    else:  # pragma: no cover - a file with more than 200 broken items
        return ParsedPolicy(None, errors, _valueset_names(text))
    for meta, error in _too_deep(file, tree):
        errors.append(error)
        tree.children = [c for c in tree.children if not (isinstance(c, Tree) and c.meta is meta)]
    transformer = ToAst(file)
    policy: ast.PolicyFile = transformer.transform(tree)
    return ParsedPolicy(policy, errors + transformer.errors, frozenset(broken))


def _blank_broken_item(text: str, err: UnexpectedInput) -> tuple[str, str] | None:
    """Blank out the value set or rule that holds a syntax error, keeping positions;
    returns the new text and the text blanked."""
    pos = getattr(err, "pos_in_stream", None)
    if pos is None:
        token = getattr(err, "token", None)
        pos = getattr(token, "start_pos", None)
    if pos is None or isinstance(err, UnexpectedEOF):
        pos = len(text)
    starts = [m.start() for m in _ITEM_START.finditer(text)]
    before = [s for s in starts if s <= pos]
    after = [s for s in starts if s > pos]
    if not before:
        return None
    begin = before[-1]
    if begin == pos:
        # The failing token starts the next item (a missing `end` or `]`): blank the item
        # before it, up to the failing token.
        earlier = [s for s in starts if s < begin]
        end = begin
        begin = earlier[-1] if earlier else begin
    else:
        end = after[0] if after else len(text)
    if end <= begin:
        return None
    chunk = text[begin:end]
    return text[:begin] + re.sub(r"[^\n]", " ", chunk) + text[end:], chunk
