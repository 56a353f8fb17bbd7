"""A whole policy text laid out: items and comment lines in source order, blank lines
between them, and the check that the result means what the input meant."""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree
from lark.exceptions import LarkError

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.fmt.doc import WIDTH, Comment, render
from cleanclaim.dsl.fmt.printer import Printer, first_last
from cleanclaim.dsl.fmt.tokens import parse_with_comments, tokens_of
from cleanclaim.dsl.parser import parse_policy

# Errors that leave a file without a usable syntax tree: such a file is not formatted.
_SYNTAX_ERRORS = frozenset({"E001", "E002", "E003", "E004", "E005"})


class LostComment(Exception):
    """The printer did not place every comment (a bug; the file is then left as is)."""


class FormatError(Exception):
    """A file cannot be formatted; `errors` says where and why."""

    def __init__(self, errors: Sequence[PolicyError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(e.message for e in self.errors))


@dataclass(slots=True)
class _Unit:
    """A top-level piece of the output: an item (the version line, a value set, a rule)
    or a comment line between items."""

    first_line: int
    last_line: int
    text: str
    is_block: bool = False  # a rule or a counter: a blank line before and after
    is_comment: bool = False
    is_version: bool = False


def format_policy(
    text: str, file: str = "<policy>", width: int = WIDTH, *, verify: bool = True
) -> str:
    """The canonical layout of a policy text; raises `FormatError` for a file that has
    syntax errors (it is left to the author) or, should the printer ever get one wrong, for
    output that would not mean what the input means. `verify=False` skips that last
    check (and the located errors): for text known to parse, such as fmt's own output."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return ""
    try:
        return _format(text, file, width, verify)
    except RecursionError as exc:  # hundreds of nested parentheses: not ours to lay out
        raise FormatError(
            [
                PolicyError(
                    "E001",
                    "the file nests expressions too deeply to be laid out; it was left as is",
                    ast.Span(file, 1, 1, 1, 2),
                )
            ]
        ) from exc


def _format(text: str, file: str, width: int, verify: bool) -> str:
    if not verify:
        try:
            return _layout(text, *parse_with_comments(text), width)
        except (LarkError, LostComment) as exc:
            raise FormatError(
                [PolicyError("E001", f"cannot format: {exc}", ast.Span(file, 1, 1, 1, 2))]
            ) from exc
    before, errors = parse_policy(text, file)
    syntax = [e for e in errors if e.code in _SYNTAX_ERRORS]
    if before is None or syntax:
        raise FormatError(syntax or errors)
    try:
        tree, comments = parse_with_comments(text)
    except LarkError as exc:
        # The whole text must parse: the parser recovers from a broken item (and reports
        # some syntax errors, a date such as 2026-1, with other codes), fmt does not.
        raise FormatError(
            errors or [PolicyError("E001", f"cannot format: {exc}", ast.Span(file, 1, 1, 1, 2))]
        ) from exc
    try:
        result = _layout(text, tree, comments, width)
    except LostComment:
        result = ""
    after, after_errors = parse_policy(result, file)
    if (
        not result
        or after is None
        or strip_spans(after) != strip_spans(before)
        or ({e.code for e in after_errors} - {e.code for e in errors})
    ):
        raise FormatError(
            [
                PolicyError(
                    "E001",
                    "the formatter would change this file's meaning or drop a comment; it "
                    "was left as is (please report this file)",
                    ast.Span(file, 1, 1, 1, 2),
                )
            ]
        )
    return result


def _layout(text: str, tree: Tree[Token], comments: list[Token], width: int) -> str:
    tokens = tokens_of(tree)
    starts = [t.start_pos or 0 for t in tokens]
    items = [c for c in tree.children if isinstance(c, Tree)]
    spans = [first_last(item) for item in items]

    firsts = [first.start_pos or 0 for first, _last in spans]

    def item_at(comment: Token) -> int | None:
        """The item a comment belongs in: one it stands inside, or whose last line it ends."""
        pos = comment.start_pos or 0
        index = bisect.bisect_right(firsts, pos) - 1
        if index < 0:
            return None
        last = spans[index][1]
        if pos < (last.end_pos or 0) or comment.line == last.end_line:
            return index
        return None

    comments_after: dict[int, list[Comment]] = {}
    units: list[_Unit] = []
    for comment in comments:
        if item_at(comment) is None:
            line = comment.line or 1
            units.append(_Unit(line, line, str(comment).rstrip(), is_comment=True))
            continue
        pos = comment.start_pos or 0
        anchor = tokens[bisect.bisect_right(starts, pos) - 1]
        line_start = text.rfind("\n", 0, pos) + 1
        own_line = not text[line_start:pos].strip()
        comments_after.setdefault(anchor.start_pos or 0, []).append(
            Comment(str(comment).rstrip(), own_line)
        )

    printer = Printer(comments_after)
    for item, (first, last) in zip(items, spans, strict=True):
        units.append(
            _Unit(
                first.line or 1,
                last.end_line or last.line or 1,
                render(printer.node(item), width),
                is_block=str(item.data) not in ("valueset", "version_decl"),
                is_version=str(item.data) == "version_decl",
            )
        )
    if set(comments_after) - printer.used:  # a token the printer skipped: never lose a comment
        raise LostComment
    units.sort(key=lambda u: u.first_line)
    return _join(units)


def _join(units: list[_Unit]) -> str:
    if not units:
        return ""
    blank = [0] * len(units)
    for i in range(1, len(units)):
        blank[i] = 1 if units[i].first_line - units[i - 1].last_line > 1 else 0
    for i, unit in enumerate(units):
        if unit.is_version and i + 1 < len(units):
            blank[i + 1] = 1
        if unit.is_block:
            j = i
            while j > 0 and units[j - 1].is_comment and blank[j] == 0:
                j -= 1
            if j > 0:
                blank[j] = 1
            if i + 1 < len(units):
                blank[i + 1] = 1
    out: list[str] = []
    for i, unit in enumerate(units):
        if i and blank[i]:
            out.append("")
        out.append(unit.text)
    return "\n".join(out) + "\n"


# ---- syntax trees without positions ---------------------------------------------------


def strip_spans(node: Any) -> Any:
    """A syntax tree as nested tuples without source positions: two trees are equal when
    they mean the same."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        if isinstance(node, ast.Span):
            return None
        return (
            type(node).__name__,
            *(
                strip_spans(getattr(node, f.name))
                for f in dataclasses.fields(node)
                if f.name not in ("span", "path")
            ),
        )
    if isinstance(node, (tuple, list)):
        return tuple(strip_spans(x) for x in node)
    return node
