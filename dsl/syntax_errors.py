"""Lark's syntax errors as located `PolicyError`s (E001-E003, E006), each with a hint
that names the common mistake when it can ("missing `then`", "unclosed code list", "date
must be YYYY-MM-DD"): judged from the failing token, what the parser expected there and
the words before it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.vocabulary import SEVERITIES

_TERMINAL_WORDS = {
    "NAME": "a name",
    "FIELD": "a field name",
    "STRING": "a quoted string",
    "DATE": "a date",
    "NUMBER": "a number",
    "CODE_ITEM": "a code",
    "CARC": "a CARC like CO-97",
    "RARC": "a RARC like M15",
    "INT": "a number",
    "COMP_OP": "a comparison",
    "MINUS": "`-`",
    "RSQB": "`]`",
    "LSQB": "`[`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "DOT": "`.`",
    "PLUS": "`+`",
    "$END": "the end of the file",
}


def _describe_expected(expected: set[str]) -> str:
    names = sorted(expected)
    pretty = []
    for name in names[:8]:
        if name.isupper() and not name.startswith("__"):
            pretty.append(_TERMINAL_WORDS.get(name, f"`{name.lower()}`"))
        else:
            pretty.append(name)
    more = ", ..." if len(names) > 8 else ""
    return ", ".join(pretty) + more


# ---- named syntax hints ----------------------------------------------------------------
#
# The common mistakes are named from the failing token, what the parser expected there and
# the words before it. (lark's `match_examples` compares whole parser states, stack depth
# included, so an example written for the first item of a file never matches a later one.)


@dataclass(frozen=True, slots=True)
class _Failure:
    """Where the parser stopped: the token it met, what it expected, the words before."""

    kind: str  # the token's terminal, `$END` at the end of the file
    token: str
    expected: frozenset[str]
    before: tuple[str, ...]
    is_keyword: bool = False

    @property
    def previous(self) -> str:
        return self.before[-1] if self.before else ""

    @property
    def at_clause(self) -> bool:
        """The parser is between two clauses of a rule."""
        return {"WHEN", "THEN", "END"} <= self.expected

    @property
    def wants_operand(self) -> bool:
        """The parser needs the operand of an expression."""
        return {"NAME", "NUMBER"} <= self.expected


# Words after which a name is being given (not used): a keyword there is a bad name.
_NAMING_WORDS = frozenset(
    {"let", "valueset", "any", "all", "no", "count", "cause", "owner", "kind"}
)
_SEVERITIES = frozenset(SEVERITIES)
_CLAUSES = (
    "title",
    "applies",
    "plan",
    "place",
    "root",
    "owner",
    "kind",
    "effective",
    "let",
    "except",
    "when",
    "then",
    "message",
    "reference",
    "end",
)
_OPERAND_START = frozenset(
    {
        "NAME",
        "FIELD",
        "NUMBER",
        "INT",
        "STRING",
        "DATE",
        "LPAR",
        "LSQB",
        "NOT",
        "ANY",
        "ALL",
        "NO",
        "COUNT",
        "TRUE",
        "FALSE",
        "CLAIM",
        "DIAGNOSIS",
    }
)
_CODE_LIKE = frozenset({"CODE_ITEM", "NUMBER", "INT", "NAME", "FIELD", "DATE", "RARC"})
_NAME_SHAPE = re.compile(r"[a-z_][a-z0-9_]*")
_WORDS = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z0-9_.*-]+|\S')


def _words_before(text: str, pos: int, count: int = 3) -> tuple[str, ...]:
    """The last `count` words and symbols of `text[:pos]`, comments left out."""
    words = [w for w in _WORDS.findall(text, 0, pos) if not w.startswith("#")]
    return tuple(words[-count:])


def _after_last_word(text: str) -> tuple[int, int]:
    """The line and column just after the last word of `text` (comments left out)."""
    end = 0
    for match in _WORDS.finditer(text):
        if not match.group(0).startswith("#"):
            end = match.end()
    line_start = text.rfind("\n", 0, end) + 1
    return text.count("\n", 0, end) + 1, end - line_start + 1


def _hint(f: _Failure) -> str | None:
    """The name of a common mistake, judged from where the parser stopped."""
    if f.kind == "$END":
        # (`]` also follows an expression, which may be a table read's key: a rule's
        # clause expected too means the rule, not a list, is unfinished)
        if "RSQB" in f.expected and "END" not in f.expected:
            return "unclosed code list: a `]` is missing"
        if "END" in f.expected:
            return "missing `end` after the rule (each rule runs from `rule` to `end`)"
        return "the file ends in the middle of a value set or rule"
    if f.token in _SEVERITIES and "THEN" in f.expected:
        return f"missing `then` before `{f.token}`: an outcome reads `then deny CO-97`"
    if f.kind in ("RULE", "VALUESET", "COUNTER") and "END" in f.expected:
        return "missing `end` after the rule (each rule runs from `rule` to `end`)"
    if "NAME" in f.expected and f.is_keyword:
        if f.previous in _NAMING_WORDS:
            return f"`{f.token}` is a keyword of the policy language; choose another name"
        what = "expression" if f.wants_operand else "value set"
        return f"the {what} is not finished: something must follow `{f.previous}`"
    if "RSQB" in f.expected and not f.at_clause and "END" not in f.expected:
        if f.kind in _CODE_LIKE:
            return "separate the codes of a list with `,`"
        return "unclosed code list: a `]` is missing"
    if f.expected == {"STRING"} and f.previous == "rule":
        return 'a rule id must be a quoted string, e.g. rule "medicare/ecg/bundling"'
    if "CARC" in f.expected:
        return "the outcome needs a group code and CARC, e.g. `then deny CO-97 with M15`"
    if "RARC" in f.expected:
        return "`with` is followed by RARCs such as M15; leave `with` out when there is none"
    lower = f.token.lower()
    if "NAME" in f.expected and lower != f.token and _NAME_SHAPE.fullmatch(lower):
        return (
            f"names of value sets, fields and functions are lower case: `{lower}`; "
            "codes go in a code list such as [R07.9]"
        )
    if f.at_clause and f.kind in _OPERAND_START | _CODE_LIKE:
        close = did_you_mean(lower, _CLAUSES)
        if close is not None and lower not in ("claim", "diagnosis"):
            return close
        if "AND" in f.expected:
            return "two conditions are joined with `and` or `or` (or each gets its `when`)"
        return "missing `when` before the condition? A condition reads `when <condition>`"
    if f.kind == "END" and {"RULE", "VALUESET"} <= f.expected:
        return "this `end` closes no rule: is an `end` above it too early, or a `rule` missing?"
    return None


_DATE_ATTEMPT = re.compile(r"[0-9]+(-[0-9]*)*")


def syntax_error(
    file: str, text: str, err: UnexpectedInput, reserved: frozenset[str]
) -> PolicyError:
    line = getattr(err, "line", 1) or 1
    column = getattr(err, "column", 1) or 1
    hint: str | None = None
    if isinstance(err, UnexpectedEOF):
        code, message = "E002", "unexpected end of file"
        before = _words_before(text, len(text))
        hint = _hint(_Failure("$END", "", frozenset(err.expected), before))
        line, column = _after_last_word(text)
    elif isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        code, message = "E003", f"unexpected character `{char}`"
        if char == "'":
            hint = 'strings are written in double quotes: "..."'
        elif char.isupper():
            hint = (
                "names of value sets, fields and functions are lower case; codes go in a "
                "code list such as [R07.9]"
            )
        else:
            hint = _hint(_Failure("", char, frozenset(err.allowed or ()), _words_before(text, pos)))
    else:
        assert isinstance(err, UnexpectedToken)
        token = err.token
        expected = frozenset(err.expected)
        failure = _Failure(
            token.type,
            str(token),
            expected,
            _words_before(text, token.start_pos or 0),
            str(token) in reserved,
        )
        if token.type == "$END":
            # The end-of-file token borrows the position of the last token: point after it.
            line = token.end_line or line
            column = token.end_column or column
            code = "E002"
            message = f"unexpected end of file; expected {_describe_expected(set(expected))}"
        elif "DATE" in expected and _DATE_ATTEMPT.fullmatch(str(token)):
            return PolicyError(
                "E006",
                f"`{token}` is not a date: date must be YYYY-MM-DD",
                ast.Span(file, line, column, line, column + len(str(token))),
                "dates are written YYYY-MM-DD, e.g. 2026-01-01",
            )
        else:
            code = "E001"
            message = f"unexpected `{token}`; expected {_describe_expected(set(expected))}"
        hint = _hint(failure)
    return PolicyError(code, message, ast.Span(file, line, column, line, column + 1), hint)
