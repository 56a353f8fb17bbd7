"""The formatter's own parse of a policy text: every token kept (`keep_all_tokens`), and
the comments the grammar skips, collected by a lexer callback."""

from __future__ import annotations

from functools import cache
from importlib import resources

from lark import Lark, Token, Tree


class _CommentSink:
    """Receives the comments Lark's lexer skips; `parse_with_comments` empties it per call
    (the formatter is single-threaded, like the CLI that drives it)."""

    def __init__(self) -> None:
        self.items: list[Token] = []

    def __call__(self, token: Token) -> Token:
        self.items.append(token)
        return token


_SINK = _CommentSink()


@cache
def _parser() -> Lark:
    grammar = resources.files("cleanclaim.dsl").joinpath("grammar/policy_v1.lark")
    return Lark(
        grammar.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        keep_all_tokens=True,
        lexer_callbacks={"COMMENT": _SINK},
    )


def parse_with_comments(text: str) -> tuple[Tree[Token], list[Token]]:
    """The full-token parse tree of a policy text and its comments in source order.

    Raises lark's `UnexpectedInput` for text that does not parse; callers that want
    located errors run `parse_policy` first.
    """
    _SINK.items = []
    tree = _parser().parse(text)
    comments = sorted(_SINK.items, key=lambda t: t.start_pos or 0)
    _SINK.items = []
    return tree, comments


def tokens_of(tree: Tree[Token]) -> list[Token]:
    """Every token of a tree, in source order."""
    return [t for t in tree.scan_values(lambda v: isinstance(v, Token))]
