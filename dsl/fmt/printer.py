"""The formatter's parse tree to a document, one method per grammar rule, each comment
attached after the token before it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from cleanclaim.dsl.fmt.doc import (
    WIDTH,
    Align,
    Comment,
    Doc,
    Fill,
    Group,
    Hard,
    Line,
    Nest,
)
from cleanclaim.dsl.fmt.tokens import tokens_of

_CHAIN_OPS = {"and_": "and", "or_": "or"}
_CLAUSES_AFTER_EFFECTIVE = 4
_CLAUSE_INDENT = 2


class Printer:
    """Builds the document of one item, attaching each comment after the token before it."""

    def __init__(self, comments_after: dict[int, list[Comment]]) -> None:
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
        return (
            self.tok(keyword),
            " ",
            self.tok(name),
            " ",
            self.tok(equal),
            " ",
            Align(self.node(union)),
        )

    def _set_union(self, c: list[Any]) -> Doc:
        parts: list[Doc] = [self.node(c[0])]
        for plus, term in zip(c[1::2], c[2::2], strict=True):
            parts.extend((Line(), self.tok(plus), " ", self.node(term)))
        return Group(tuple(parts))

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
            comma = [
                t
                for t in commas
                if (t.start_pos or 0) > after and (until is None or (t.start_pos or 0) < until)
            ]
            docs.append((self.tok(item), *(self.tok(t, "") for t in comma)))
        return (
            self.tok(open_),
            Align(Fill(tuple(docs), ",", 1), limit=WIDTH // 2),
            self.tok(close),
        )

    def _counter(self, c: list[Any]) -> Doc:
        keyword, name, *clauses, end = c
        parts: list[Doc] = [self.tok(keyword), " ", self.tok(name)]
        for clause in clauses:
            parts.append(Nest(_CLAUSE_INDENT, (Hard(), self.node(clause))))
        parts.extend((Hard(comment_indent=_CLAUSE_INDENT), self.tok(end)))
        return tuple(parts)

    def _table(self, c: list[Any]) -> Doc:
        keyword, name, equal, source = c
        return (
            self.tok(keyword),
            " ",
            self.tok(name),
            " ",
            self.tok(equal),
            " ",
            self.node(source),
        )

    def _table_inline(self, c: list[Any]) -> Doc:
        """`key ... columns ...`, then one `row` a line, then `end` under `table`."""
        keys, columns, *rows, end = c
        parts: list[Doc] = [self.node(keys), " ", self.node(columns)]
        for row in rows:
            parts.append(Nest(_CLAUSE_INDENT, (Hard(), self.node(row))))
        parts.extend((Hard(comment_indent=_CLAUSE_INDENT), self.tok(end)))
        return tuple(parts)

    def _counted_where(self, c: list[Any]) -> Doc:
        lines, where, condition = c
        return (self.tok(lines), " ", self.tok(where), " ", Align(self.top(condition)))

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
            parts.append(Nest(clause_indent, (Hard(), self.node(clause))))
            if is_effective:
                indent = _CLAUSES_AFTER_EFFECTIVE
        parts.extend((Hard(comment_indent=indent), self.tok(end)))
        return tuple(parts)

    # ---- clauses ------------------------------------------------------------------------
    def _let(self, c: list[Any]) -> Doc:
        keyword, name, equal, value = c
        return (
            self.tok(keyword),
            " ",
            self.tok(name),
            " ",
            self.tok(equal),
            " ",
            Align(self.top(value)),
        )

    def _when(self, c: list[Any]) -> Doc:
        keyword, condition = c
        return (self.tok(keyword), " ", Align(self.top(condition)))

    def _except_when(self, c: list[Any]) -> Doc:
        keyword, when, condition = c
        return (self.tok(keyword), " ", self.tok(when), " ", Align(self.top(condition)))

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
        return Align(Fill(tuple(items), ",", tail), limit=WIDTH // 2)

    def _scope_codes(self, c: list[Any]) -> Doc:
        return (self.tok(c[0]), " ", Align(self.node(c[1])))

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
            rest.extend((Line(), self.tok(operator), " ", self.node(operand)))
        return Group(Align((self.node(operands[0]), Nest(indent, tuple(rest)))))

    def _arith(self, c: list[Any]) -> Doc:
        """`a + b - c`: one line, or one term a line under the first."""
        terms, operators = _flatten(Tree("arith", c), "arith")
        rest: list[Doc] = []
        for operator, term in zip(operators, terms[1:], strict=True):
            rest.extend((Line(), self.tok(operator), " ", self.node(term)))
        return Group(Align((self.node(terms[0]), *rest)))

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
        return (self.tok(open_), Align(self.node(inner)), self.tok(close))

    def _call(self, c: list[Any]) -> Doc:
        name, open_, *args, close = c
        docs: list[Doc] = []
        for arg in args:
            if isinstance(arg, Token) and arg.type == "COMMA":
                docs.extend((self.tok(arg), Line()))
            else:
                docs.append(self.node(arg))
        return (self.tok(name), self.tok(open_), Group(Align(tuple(docs))), self.tok(close))

    def _count_call(self, c: list[Any]) -> Doc:
        return self._call(c)

    def _table_read(self, c: list[Any]) -> Doc:
        """`t[k1, k2].column`: no space before `[`, `.` and the column."""
        name, open_, *rest = c
        close_at = max(i for i, t in enumerate(rest) if isinstance(t, Token) and t.type == "RSQB")
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
        head = (
            self.node(quantifier),
            " ",
            self.tok(name),
            " ",
            self.tok(in_),
            " ",
            self.node(collection),
        )
        return Group(Align((head, Line(), self.tok(where), " ", Align(self.top(condition)))))


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


def first_last(tree: Tree[Token]) -> tuple[Token, Token]:
    tokens = tokens_of(tree)
    return tokens[0], tokens[-1]
