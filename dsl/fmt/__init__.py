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

The modules: `tokens` (the parse of our own), `printer` (a tree to a document), `doc` (the
document and its renderer), `layout` (a whole text, and the meaning check), `files`.
"""

from cleanclaim.dsl.fmt.doc import WIDTH, Doc, render
from cleanclaim.dsl.fmt.files import FileResult, FormatOutcome, format_file, format_paths
from cleanclaim.dsl.fmt.layout import FormatError, format_policy, strip_spans
from cleanclaim.dsl.fmt.tokens import parse_with_comments, tokens_of

__all__ = [
    "WIDTH",
    "Doc",
    "FileResult",
    "FormatError",
    "FormatOutcome",
    "format_file",
    "format_paths",
    "format_policy",
    "parse_with_comments",
    "render",
    "strip_spans",
    "tokens_of",
]
