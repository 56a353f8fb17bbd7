"""Documents and their renderer: a small Wadler-style pretty printer. A group prints on one
line when it fits in `WIDTH` columns and breaks otherwise; a fill puts as many items on
a line as fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 88


@dataclass(frozen=True, slots=True)
class Line:
    """A place that is `flat` in a group printed on one line, a line break otherwise."""

    flat: str = " "


@dataclass(frozen=True, slots=True)
class Hard:
    """A line break, always; own-line comments before it take `comment_indent`."""

    comment_indent: int | None = None


@dataclass(frozen=True, slots=True)
class Nest:
    indent: int
    doc: Doc


@dataclass(frozen=True, slots=True)
class Align:
    """Continuation lines of `doc` start at the column where `doc` starts; past column
    `limit` (a list after a very long name), 4 columns in from the start of the line."""

    doc: Doc
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """`doc` on one line if it fits, else with every `Line` of its own broken."""

    doc: Doc


@dataclass(frozen=True, slots=True)
class Fill:
    """Items separated by `sep` and a space, as many to a line as fit."""

    items: tuple[Doc, ...]
    sep: str
    tail: int  # width of what follows the last item on its line (a `]`)


@dataclass(frozen=True, slots=True)
class FillBreak:
    item: Doc
    sep: str
    tail: int


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment, printed when the current line ends (own line: on a line of its own)."""

    text: str
    own_line: bool


Doc = str | Line | Hard | Nest | Align | Group | Fill | FillBreak | Comment | tuple[Any, ...]
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
        elif isinstance(doc, (Nest, Align, Group)):
            cmds.append((indent, mode, doc.doc))
        elif isinstance(doc, Line):
            if mode == _BREAK:
                return True
            width -= len(doc.flat)
        elif isinstance(doc, Hard):
            return True
        elif isinstance(doc, Fill):
            for i, item in enumerate(doc.items):
                if i:
                    width -= len(doc.sep) + 1
                cmds.append((indent, _FLAT, item))
        elif isinstance(doc, FillBreak):
            if mode == _BREAK:
                return True
            width -= len(doc.sep) + 1
    return False


def render(doc: Doc, width: int = WIDTH) -> str:
    """Print a document: groups flat where they fit, comments kept at line ends."""
    out: list[str] = []
    col = 0
    line_indent = 0  # where the current line's text starts
    pending: list[Comment] = []
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
        elif isinstance(d, Nest):
            stack.append((max(0, indent + d.indent), mode, d.doc))
        elif isinstance(d, Align):
            aligned = col if d.limit is None or col <= d.limit else line_indent + 4
            stack.append((aligned, mode, d.doc))
        elif isinstance(d, Group):
            flat = mode == _FLAT or _fits((indent, _FLAT, d.doc), stack, width - col)
            stack.append((indent, _FLAT if flat else _BREAK, d.doc))
        elif isinstance(d, Line):
            # A comment must end its line, so a pending comment breaks even a flat group.
            if mode == _FLAT and not pending:
                out.append(d.flat)
                col += len(d.flat)
            else:
                newline(indent)
        elif isinstance(d, Hard):
            newline(indent, d.comment_indent)
        elif isinstance(d, Comment):
            pending.append(d)
        elif isinstance(d, Fill):
            if d.items:
                for i in range(len(d.items) - 1, 0, -1):
                    stack.append((indent, mode, d.items[i]))
                    tail = d.tail if i == len(d.items) - 1 else len(d.sep)
                    stack.append((indent, mode, FillBreak(d.items[i], d.sep, tail)))
                stack.append((indent, mode, d.items[0]))
        elif isinstance(d, FillBreak):
            room = width - col - len(d.sep) - 1 - d.tail
            if not pending and (mode == _FLAT or _fits((indent, _FLAT, d.item), [], room)):
                out.append(d.sep + " ")
                col += len(d.sep) + 1
            else:
                out.append(d.sep)
                newline(indent)
    flush(0)
    return "\n".join(line.rstrip() for line in "".join(out).split("\n"))
