"""One canonical layout for policy files (`cleanclaim fmt`).

The text is parsed by a Lark parser of our own, built from the same grammar file with
`keep_all_tokens=True` (every keyword, comma and parenthesis stays in the tree, so the
printer never has to guess where the author put parentheses) and a lexer callback that
collects the comments the grammar ignores. The tree is then printed with a small
Wadler-style pretty printer: groups print on one line when they fit in `WIDTH` columns and
break otherwise; code lists fill lines and wrap under their first code.

The layout:
- the version line, then one blank line; one blank line before and after every rule and
  counter; between value sets and comment blocks, a blank line where the author left one
  (more than one blank line becomes one);
- inside a rule or counter: one clause a line, indented 2; clauses after `effective`
  indented 4; `end` in column 0; no blank lines;
- a broken `and`/`or` chain puts each operand on its own line, the operator hanging left
  of the operands; `where` of a quantifier goes under the quantifier;
- code items upper-case, no trailing comma in a list.

A file that does not parse is refused with its located errors and left as is, and so is
one whose expressions nest hundreds of levels deep (the printer recurses).

Clauses stay in the order written and every comment is kept: a comment on its own line
stays on its own line (indented like the line after it), a comment after code stays after
that code. `format_policy` re-parses its output and compares syntax trees, so a layout
bug can never change what a file means: it raises `FormatError` instead.
"""

from __future__ import annotations

import bisect
import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.parser import parse_policy

WIDTH = 88
# Errors that leave a file without a usable syntax tree: such a file is not formatted.
_SYNTAX_ERRORS = frozenset({"E001", "E002", "E003", "E004", "E005"})


class _LostComment(Exception):
    """The printer did not place every comment (a bug; the file is then left as is)."""


class FormatError(Exception):
    """A file cannot be formatted; `errors` says where and why."""

    def __init__(self, errors: Sequence[PolicyError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(e.message for e in self.errors))


# ---- the parser of our own: all tokens, and the comments ------------------------------


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


# ---- documents and their renderer -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    """A place that is `flat` in a group printed on one line, a line break otherwise."""

    flat: str = " "


@dataclass(frozen=True, slots=True)
class _Hard:
    """A line break, always; own-line comments before it take `comment_indent`."""

    comment_indent: int | None = None


@dataclass(frozen=True, slots=True)
class _Nest:
    indent: int
    doc: Doc


@dataclass(frozen=True, slots=True)
class _Align:
    """Continuation lines of `doc` start at the column where `doc` starts; past column
    `limit` (a list after a very long name), 4 columns in from the start of the line."""

    doc: Doc
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class _Group:
    """`doc` on one line if it fits, else with every `_Line` of its own broken."""

    doc: Doc


@dataclass(frozen=True, slots=True)
class _Fill:
    """Items separated by `sep` and a space, as many to a line as fit."""

    items: tuple[Doc, ...]
    sep: str
    tail: int  # width of what follows the last item on its line (a `]`)


@dataclass(frozen=True, slots=True)
class _FillBreak:
    item: Doc
    sep: str
    tail: int


@dataclass(frozen=True, slots=True)
class _Comment:
    """A comment, printed when the current line ends (own line: on a line of its own)."""

    text: str
    own_line: bool


Doc = (str | _Line | _Hard | _Nest | _Align | _Group | _Fill | _FillBreak | _Comment
       | tuple[Any, ...])
_FLAT, _BREAK = 0, 1
_Cmd = tuple[int, int, Doc]


def _fits(next_cmd: _Cmd, rest: list[_Cmd], width: int) -> bool:
    """Whether `next_cmd` printed flat, and what follows it up to the next line break,
    fits in `width` columns."""
    cmds: list[_Cmd] = [next_cmd]
    rest_index = len(rest)
    while width >= 0:
        if not cmds:
            if rest_index == 0:
                return True
            rest_index -= 1
            cmds.append(rest[rest_index])
            continue
        indent, mode, doc = cmds.pop()
        if isinstance(doc, str):
            width -= len(doc)
        elif isinstance(doc, tuple):
            cmds.extend((indent, mode, d) for d in reversed(doc))
        elif isinstance(doc, (_Nest, _Align, _Group)):
            cmds.append((indent, mode, doc.doc))
        elif isinstance(doc, _Line):
            if mode == _BREAK:
                return True
            width -= len(doc.flat)
        elif isinstance(doc, _Hard):
            return True
        elif isinstance(doc, _Fill):
            for i, item in enumerate(doc.items):
                if i:
                    width -= len(doc.sep) + 1
                cmds.append((indent, _FLAT, item))
        elif isinstance(doc, _FillBreak):
            if mode == _BREAK:
                return True
            width -= len(doc.sep) + 1
    return False


def render(doc: Doc, width: int = WIDTH) -> str:
    """Print a document: groups flat where they fit, comments kept at line ends."""
    out: list[str] = []
    col = 0
    line_indent = 0  # where the current line's text starts
    pending: list[_Comment] = []
    stack: list[_Cmd] = [(0, _BREAK, doc)]

    def flush(indent: int) -> None:
        # One comment can end a line; any more go on lines of their own (two comments on
        # one line would read back as one).
        ended = False
        for comment in pending:
            if comment.own_line or ended:
                out.append("\n" + " " * indent + comment.text)
            else:
                out.append("  " + comment.text)
                ended = True
        pending.clear()

    def newline(indent: int, comment_indent: int | None = None) -> None:
        nonlocal col, line_indent
        flush(indent if comment_indent is None else comment_indent)
        out.append("\n" + " " * indent)
        col = line_indent = indent

    while stack:
        indent, mode, d = stack.pop()
        if isinstance(d, str):
            out.append(d)
            col += len(d)
        elif isinstance(d, tuple):
            stack.extend((indent, mode, x) for x in reversed(d))
        elif isinstance(d, _Nest):
            stack.append((max(0, indent + d.indent), mode, d.doc))
        elif isinstance(d, _Align):
            aligned = col if d.limit is None or col <= d.limit else line_indent + 4
            stack.append((aligned, mode, d.doc))
        elif isinstance(d, _Group):
            flat = mode == _FLAT or _fits((indent, _FLAT, d.doc), stack, width - col)
            stack.append((indent, _FLAT if flat else _BREAK, d.doc))
        elif isinstance(d, _Line):
            # A comment must end its line, so a pending comment breaks even a flat group.
            if mode == _FLAT and not pending:
                out.append(d.flat)
                col += len(d.flat)
            else:
                newline(indent)
        elif isinstance(d, _Hard):
            newline(indent, d.comment_indent)
        elif isinstance(d, _Comment):
            pending.append(d)
        elif isinstance(d, _Fill):
            if d.items:
                for i in range(len(d.items) - 1, 0, -1):
                    stack.append((indent, mode, d.items[i]))
                    tail = d.tail if i == len(d.items) - 1 else len(d.sep)
                    stack.append((indent, mode, _FillBreak(d.items[i], d.sep, tail)))
                stack.append((indent, mode, d.items[0]))
        elif isinstance(d, _FillBreak):
            room = width - col - len(d.sep) - 1 - d.tail
            if not pending and (mode == _FLAT or _fits((indent, _FLAT, d.item), [], room)):
                out.append(d.sep + " ")
                col += len(d.sep) + 1
            else:
                out.append(d.sep)
                newline(indent)
    flush(0)
    return "\n".join(line.rstrip() for line in "".join(out).split("\n"))


# ---- the tree to a document -------------------------------------------------------------

_CHAIN_OPS = {"and_": "and", "or_": "or"}
_CLAUSES_AFTER_EFFECTIVE = 4
_CLAUSE_INDENT = 2


class _Printer:
    """Builds the document of one item, attaching each comment after the token before it."""

    def __init__(self, comments_after: dict[int, list[_Comment]]) -> None:
        self.comments_after = comments_after
        self.used: set[int] = set()

    def tok(self, token: Token, text: str | None = None) -> Doc:
        shown = str(token) if text is None else text
        if token.type == "CODE_ITEM":
            shown = shown.upper()
        after = self.comments_after.get(token.start_pos or 0, [])
        if after:
            self.used.add(token.start_pos or 0)
            return (shown, *after)
        return shown

    def words(self, children: Iterable[Any]) -> Doc:
        """Children separated by single spaces, no space before `,` `.` `)` nor after `.`
        `(` (the layout of any node without a method of its own)."""
        parts: list[Doc] = []
        glue = True
        for child in children:
            kind = child.type if isinstance(child, Token) else ""
            if parts and not glue and kind not in ("COMMA", "DOT", "RPAR", "RSQB"):
                parts.append(" ")
            parts.append(self.node(child))
            glue = kind in ("DOT", "LPAR", "LSQB")
        return tuple(parts)

    def node(self, n: Any) -> Doc:
        if isinstance(n, Token):
            return self.tok(n)
        method = getattr(self, f"_{n.data}", None)
        if method is None:
            return self.words(n.children)
        result: Doc = method(n.children)
        return result

    # ---- items --------------------------------------------------------------------------
    def _version_decl(self, c: list[Any]) -> Doc:
        return self.words(c)

    def _valueset(self, c: list[Any]) -> Doc:
        keyword, name, equal, union = c
        return (self.tok(keyword), " ", self.tok(name), " ", self.tok(equal), " ",
                _Align(self.node(union)))

    def _set_union(self, c: list[Any]) -> Doc:
        parts: list[Doc] = [self.node(c[0])]
        for plus, term in zip(c[1::2], c[2::2], strict=True):
            parts.extend((_Line(), self.tok(plus), " ", self.node(term)))
        return _Group(tuple(parts))

    def _string_list(self, c: list[Any]) -> Doc:
        return self._code_list(c)

    def _code_list(self, c: list[Any]) -> Doc:
        open_, *middle, close = c
        items = [t for t in middle if t.type in ("CODE_ITEM", "STRING")]
        commas = [t for t in middle if t.type not in ("CODE_ITEM", "STRING")]
        if not items:
            return (self.tok(open_), *(self.tok(t, "") for t in commas), self.tok(close))
        # Each item carries the comments after it and after the comma that follows it.
        docs: list[Doc] = []
        for i, item in enumerate(items):
            after = item.start_pos or 0
            until = items[i + 1].start_pos or 0 if i + 1 < len(items) else None
            comma = [t for t in commas if (t.start_pos or 0) > after
                     and (until is None or (t.start_pos or 0) < until)]
            docs.append((self.tok(item), *(self.tok(t, "") for t in comma)))
        return (self.tok(open_), _Align(_Fill(tuple(docs), ",", 1), limit=WIDTH // 2),
                self.tok(close))

    def _counter(self, c: list[Any]) -> Doc:
        keyword, name, *clauses, end = c
        parts: list[Doc] = [self.tok(keyword), " ", self.tok(name)]
        for clause in clauses:
            parts.append(_Nest(_CLAUSE_INDENT, (_Hard(), self.node(clause))))
        parts.extend((_Hard(comment_indent=_CLAUSE_INDENT), self.tok(end)))
        return tuple(parts)

    def _table(self, c: list[Any]) -> Doc:
        keyword, name, equal, source = c
        return (self.tok(keyword), " ", self.tok(name), " ", self.tok(equal), " ",
                self.node(source))

    def _table_inline(self, c: list[Any]) -> Doc:
        """`key ... columns ...`, then one `row` a line, then `end` under `table`."""
        keys, columns, *rows, end = c
        parts: list[Doc] = [self.node(keys), " ", self.node(columns)]
        for row in rows:
            parts.append(_Nest(_CLAUSE_INDENT, (_Hard(), self.node(row))))
        parts.extend((_Hard(comment_indent=_CLAUSE_INDENT), self.tok(end)))
        return tuple(parts)

    def _counted_where(self, c: list[Any]) -> Doc:
        lines, where, condition = c
        return (self.tok(lines), " ", self.tok(where), " ", _Align(self.top(condition)))

    def _counted_codes(self, c: list[Any]) -> Doc:
        return self._scope_codes(c)

    def _rule(self, c: list[Any]) -> Doc:
        keyword, rule_id, *clauses, end = c
        parts: list[Doc] = [self.tok(keyword), " ", self.tok(rule_id)]
        indent = _CLAUSE_INDENT
        for clause in clauses:
            data = str(clause.data) if isinstance(clause, Tree) else ""
            is_effective = data in ("effective", "effective_until")
            clause_indent = _CLAUSE_INDENT if is_effective else indent
            parts.append(_Nest(clause_indent, (_Hard(), self.node(clause))))
            if is_effective:
                indent = _CLAUSES_AFTER_EFFECTIVE
        parts.extend((_Hard(comment_indent=indent), self.tok(end)))
        return tuple(parts)

    # ---- clauses ------------------------------------------------------------------------
    def _let(self, c: list[Any]) -> Doc:
        keyword, name, equal, value = c
        return (self.tok(keyword), " ", self.tok(name), " ", self.tok(equal), " ",
                _Align(self.top(value)))

    def _when(self, c: list[Any]) -> Doc:
        keyword, condition = c
        return (self.tok(keyword), " ", _Align(self.top(condition)))

    def _except_when(self, c: list[Any]) -> Doc:
        keyword, when, condition = c
        return (self.tok(keyword), " ", self.tok(when), " ", _Align(self.top(condition)))

    def _then(self, c: list[Any]) -> Doc:
        head = self.words(c[:2])
        carc = c[2]
        if len(c) == 3:
            return (head, " ", self.tok(carc))
        with_, *rarcs = c[3:]
        return (head, " ", self.tok(carc), " ", self.tok(with_), " ", self._list(rarcs, 0))

    def _plan_scope(self, c: list[Any]) -> Doc:
        return (self.tok(c[0]), " ", self.node(c[1]), " ", self._list(c[2:], 0))

    def _pos_scope(self, c: list[Any]) -> Doc:
        return (self.words(c[:4]), " ", self._list(c[4:], 0))

    def _list(self, c: Sequence[Any], tail: int) -> Doc:
        """`a, b, c` (commas among the children) as a fill."""
        items: list[Doc] = []
        for child in c:
            if isinstance(child, Token) and child.type == "COMMA":
                items[-1] = (items[-1], self.tok(child, ""))
            else:
                items.append(self.node(child))
        return _Align(_Fill(tuple(items), ",", tail), limit=WIDTH // 2)

    def _scope_codes(self, c: list[Any]) -> Doc:
        return (self.tok(c[0]), " ", _Align(self.node(c[1])))

    # ---- expressions ---------------------------------------------------------------------
    def top(self, n: Any) -> Doc:
        """An expression that starts a clause or a `where`: a broken `and`/`or` chain hangs
        its operators left of its operands. Elsewhere (in parentheses, inside another chain)
        operators line up with the operands, so they never look like the outer level's."""
        if isinstance(n, Tree) and str(n.data) in _CHAIN_OPS:
            return self._chain(n, hang=True)
        return self.node(n)

    def _chain(self, n: Tree[Token], hang: bool = False) -> Doc:
        op = str(n.data)
        operands, operators = _flatten(n, op)
        indent = -(len(_CHAIN_OPS[op]) + 1) if hang else 0
        rest: list[Doc] = []
        for operator, operand in zip(operators, operands[1:], strict=True):
            rest.extend((_Line(), self.tok(operator), " ", self.node(operand)))
        return _Group(_Align((self.node(operands[0]), _Nest(indent, tuple(rest)))))

    def _arith(self, c: list[Any]) -> Doc:
        """`a + b - c`: one line, or one term a line under the first."""
        terms, operators = _flatten(Tree("arith", c), "arith")
        rest: list[Doc] = []
        for operator, term in zip(operators, terms[1:], strict=True):
            rest.extend((_Line(), self.tok(operator), " ", self.node(term)))
        return _Group(_Align((self.node(terms[0]), *rest)))

    def _and_(self, c: list[Any]) -> Doc:
        return self._chain(Tree("and_", c))

    def _or_(self, c: list[Any]) -> Doc:
        return self._chain(Tree("or_", c))

    def _path(self, c: list[Any]) -> Doc:
        return tuple(self.tok(t) for t in c)

    def _atom(self, c: list[Any]) -> Doc:  # "(" expr ")"
        if len(c) != 3:
            return self.words(c)
        open_, inner, close = c
        return (self.tok(open_), _Align(self.node(inner)), self.tok(close))

    def _call(self, c: list[Any]) -> Doc:
        name, open_, *args, close = c
        docs: list[Doc] = []
        for arg in args:
            if isinstance(arg, Token) and arg.type == "COMMA":
                docs.extend((self.tok(arg), _Line()))
            else:
                docs.append(self.node(arg))
        return (self.tok(name), self.tok(open_), _Group(_Align(tuple(docs))), self.tok(close))

    def _count_call(self, c: list[Any]) -> Doc:
        return self._call(c)

    def _table_read(self, c: list[Any]) -> Doc:
        """`t[k1, k2].column`: no space before `[`, `.` and the column."""
        name, open_, *rest = c
        close_at = max(i for i, t in enumerate(rest)
                       if isinstance(t, Token) and t.type == "RSQB")
        keys, tail = rest[:close_at], rest[close_at:]
        docs: list[Doc] = []
        for key in keys:
            if isinstance(key, Token) and key.type == "COMMA":
                docs.extend((self.tok(key), " "))
            else:
                docs.append(self.node(key))
        return (self.tok(name), self.tok(open_), *docs, *(self.tok(t) for t in tail))

    def _measure_sum(self, c: list[Any]) -> Doc:  # `counts sum(AMOUNT)`
        return self._call(c)

    def _codes(self, c: list[Any]) -> Doc:
        return self.node(c[0])

    def _quantified(self, c: list[Any]) -> Doc:
        quantifier, name, in_, collection, where, condition = c
        head = (self.node(quantifier), " ", self.tok(name), " ", self.tok(in_), " ",
                self.node(collection))
        return _Group(_Align((head, _Line(), self.tok(where), " ",
                              _Align(self.top(condition)))))


def _flatten(tree: Tree[Token], data: str) -> tuple[list[Any], list[Token]]:
    """The operands and operators of a left-nested chain of one kind of binary node
    (`a and b and c`), without recursion: chains can be long."""
    operands: list[Any] = []
    operators: list[Token] = []
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Tree) and str(node.data) == data:
            left, operator, right = node.children
            assert isinstance(operator, Token)
            stack.extend((right, _Operator(operator), left))
        elif isinstance(node, _Operator):
            operators.append(node.token)
        else:
            operands.append(node)
    return operands, operators


@dataclass(frozen=True, slots=True)
class _Operator:
    token: Token


def _first_last(tree: Tree[Token]) -> tuple[Token, Token]:
    tokens = tokens_of(tree)
    return tokens[0], tokens[-1]


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


def format_policy(text: str, file: str = "<policy>", width: int = WIDTH, *,
                  verify: bool = True) -> str:
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
        raise FormatError([PolicyError(
            "E001", "the file nests expressions too deeply to be laid out; it was left "
            "as is", ast.Span(file, 1, 1, 1, 2))]) from exc


def _format(text: str, file: str, width: int, verify: bool) -> str:
    if not verify:
        try:
            return _layout(text, *parse_with_comments(text), width)
        except (LarkError, _LostComment) as exc:
            raise FormatError([PolicyError("E001", f"cannot format: {exc}",
                                           ast.Span(file, 1, 1, 1, 2))]) from exc
    before, errors = parse_policy(text, file)
    syntax = [e for e in errors if e.code in _SYNTAX_ERRORS]
    if before is None or syntax:
        raise FormatError(syntax or errors)
    try:
        tree, comments = parse_with_comments(text)
    except LarkError as exc:
        # The whole text must parse: the parser recovers from a broken item (and reports
        # some syntax errors, a date such as 2026-1, with other codes), fmt does not.
        raise FormatError(errors or [PolicyError(
            "E001", f"cannot format: {exc}", ast.Span(file, 1, 1, 1, 2))]) from exc
    try:
        result = _layout(text, tree, comments, width)
    except _LostComment:
        result = ""
    after, after_errors = parse_policy(result, file)
    if not result or after is None or strip_spans(after) != strip_spans(before) or (
            {e.code for e in after_errors} - {e.code for e in errors}):
        raise FormatError([PolicyError(
            "E001", "the formatter would change this file's meaning or drop a comment; it "
            "was left as is (please report this file)", ast.Span(file, 1, 1, 1, 2))])
    return result


def _layout(text: str, tree: Tree[Token], comments: list[Token], width: int) -> str:
    tokens = tokens_of(tree)
    starts = [t.start_pos or 0 for t in tokens]
    items = [c for c in tree.children if isinstance(c, Tree)]
    spans = [_first_last(item) for item in items]

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

    comments_after: dict[int, list[_Comment]] = {}
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
            _Comment(str(comment).rstrip(), own_line))

    printer = _Printer(comments_after)
    for item, (first, last) in zip(items, spans, strict=True):
        units.append(_Unit(first.line or 1, last.end_line or last.line or 1,
                           render(printer.node(item), width),
                           is_block=str(item.data) not in ("valueset", "version_decl"),
                           is_version=str(item.data) == "version_decl"))
    if set(comments_after) - printer.used:  # a token the printer skipped: never lose a comment
        raise _LostComment
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
        return (type(node).__name__, *(
            strip_spans(getattr(node, f.name)) for f in dataclasses.fields(node)
            if f.name not in ("span", "path")))
    if isinstance(node, (tuple, list)):
        return tuple(strip_spans(x) for x in node)
    return node


# ---- files ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileResult:
    """What `fmt` found for one file."""

    path: Path
    changed: bool
    formatted: str | None
    errors: tuple[PolicyError, ...] = ()


def format_file(path: Path, display: str | None = None) -> FileResult:
    """Format one file in memory (nothing is written)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return FileResult(path, False, None, (PolicyError(
            "E503", f"cannot read policy file: {exc}", ast.Span(name, 1, 1, 1, 2)),))
    try:
        formatted = format_policy(text, name)
    except FormatError as exc:
        return FileResult(path, False, None, tuple(exc.errors))
    return FileResult(path, formatted != text, formatted)


@dataclass(slots=True)
class FormatOutcome:
    """What `format_paths` did: files changed (or that would change), errors, a diff."""

    checked: int = 0
    changed: list[Path] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    diff: str = ""


def format_paths(paths: Iterable[Path], *, write: bool, diff: bool = False) -> FormatOutcome:
    """Format `.policy` files (folders: every `.policy` file below them). With `write`,
    changed files are rewritten; a file that does not parse is left as is and its errors
    are reported with the line and a caret."""
    outcome = FormatOutcome()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.policy")))
        elif path.is_file():
            files.append(path)
        else:
            outcome.errors.append(f"error: {path}: no such file or folder")
    for path in files:
        outcome.checked += 1
        result = format_file(path)
        if result.errors:
            source = _read(path)
            outcome.errors.extend(e.render(source) for e in result.errors)
            continue
        if not result.changed or result.formatted is None:
            continue
        outcome.changed.append(path)
        if diff:
            outcome.diff += "".join(difflib.unified_diff(
                (_read(path) or "").splitlines(keepends=True),
                result.formatted.splitlines(keepends=True),
                fromfile=f"{path} (before)", tofile=f"{path} (formatted)"))
        if write:
            path.write_text(result.formatted, encoding="utf-8")
    return outcome


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
