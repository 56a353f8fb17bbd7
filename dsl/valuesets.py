"""Value sets: the code lists rules are written against, resolved and validated.

Kinds: `codes` (CPT / HCPCS Level II procedure codes; ranges such as `11400-11446`),
`icd10` (ICD-10-CM codes, billable, or a prefix such as `R07.*` for a code and all its
descendants), `modifiers` (two-character modifiers). ICD-10-CM codes are stored without
the dot, so `R07.9` and `R079` are the same code.

A value set may be declared **partial** (`partial:` in pack.yaml): the shipped copy holds
only part of the published list. A code found in it is as good as ever; a code *not*
found proves nothing, so a rule whose firing can rest on "not in a partial set" (or on a
sample table) never denies or rejects: the compiler makes its finding `review` and says
what to check (`partial_notes`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl.codesets import icd10cm, procedure
from cleanclaim.dsl.errors import PolicyError

_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")


@dataclass(frozen=True, slots=True)
class CodeSet:
    """A resolved value set: exact codes plus prefixes (ICD-10-CM `R07.*`)."""

    kind: str
    exact: frozenset[str]
    prefixes: tuple[str, ...] = ()
    # Set when the shipped list is known to be incomplete: where the complete list is.
    partial: str | None = None

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        return code in self.exact or (bool(self.prefixes) and code.startswith(self.prefixes))

    def union(self, other: CodeSet) -> CodeSet:
        return CodeSet(
            self.kind,
            self.exact | other.exact,
            tuple(dict.fromkeys(self.prefixes + other.prefixes)),
            _join_notes(self.partial, other.partial),
        )

    def declared_partial(self, source: str) -> CodeSet:
        """This set, declared partial: the complete list is at `source`."""
        return CodeSet(self.kind, self.exact, self.prefixes, _join_notes(self.partial, source))

    def difference(self, other: CodeSet) -> CodeSet:
        """The codes of this set that are not in `other` (`a - b` in a policy).

        A prefix of this set that `other` takes only some codes from is replaced by the
        billable codes under it, so the result is again exact codes plus prefixes."""
        exact = {c for c in self.exact if c not in other}
        prefixes: list[str] = []
        for prefix in self.prefixes:
            if other.prefixes and prefix.startswith(other.prefixes):
                continue  # all of it is taken away
            if any(c.startswith(prefix) for c in other.exact) or any(
                p.startswith(prefix) for p in other.prefixes
            ):
                exact.update(
                    code
                    for code in (icd10cm.normalize(d) for d in icd10cm.billable_codes_under(prefix))
                    if code not in other
                )
            else:
                prefixes.append(prefix)
        # Taking a partial list away leaves codes in that may belong to it: still partial.
        return CodeSet(
            self.kind, frozenset(exact), tuple(prefixes), _join_notes(self.partial, other.partial)
        )

    # The generated code computes `a - b` with this when the compiler cannot do it once
    # ahead of time (a `let` bound to a set, say).
    __sub__ = difference

    def describe(self) -> str:
        shown = sorted(self.exact)[:6]
        if self.kind == "icd10":
            shown = [icd10cm.dotted(c) for c in shown]
        shown += [prefix_text(p) for p in self.prefixes]
        more = len(self.exact) + len(self.prefixes) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _join_notes(a: str | None, b: str | None) -> str | None:
    if a is None or b is None or a == b:
        return a or b
    return f"{a}; {b}"


def prefix_text(code: str) -> str:
    """How a policy writes the ICD-10-CM prefix of `code` and its descendants: `R07.*` for
    a category, `R07.8*` below it (a code item has at most one dot)."""
    dotted = icd10cm.dotted(code)
    return dotted + ("*" if "." in dotted else ".*")


def infer_kind(texts: Iterable[str]) -> str | None:
    """The kind of an unmarked code list, from its items; None when it cannot be told."""
    items = [t.strip().upper() for t in texts if t.strip()]
    if not items:
        return None
    if any("." in t or t.endswith("*") for t in items):
        return "icd10"
    if all(_is_code_or_range(t) for t in items):
        return "codes"
    if all(_MODIFIER.match(t) for t in items):
        return "modifiers"
    if all(icd10cm.is_code(t) for t in items):
        return "icd10"
    return None


def _is_code_or_range(text: str) -> bool:
    if "-" in text:
        lo, _, hi = text.partition("-")
        return procedure.is_procedure_code(lo) and procedure.is_procedure_code(hi)
    return procedure.is_procedure_code(text)


def resolve_items(
    kind: str, items: Iterable[tuple[str, ast.Span]], errors: list[PolicyError]
) -> CodeSet:
    """Validate and resolve code-list items of a known kind; problems go to `errors`."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for text, span in items:
        text = text.strip().upper()
        if kind == "icd10":
            _resolve_icd(text, span, exact, prefixes, errors)
        elif kind == "codes":
            _resolve_procedure(text, span, exact, errors)
        elif kind == "modifiers":
            if _MODIFIER.match(text):
                exact.add(text)
            else:
                errors.append(
                    PolicyError(
                        "E302",
                        f"`{text}` is not a modifier",
                        span,
                        "modifiers are two letters or digits, e.g. 26, TC, GP",
                    )
                )
        else:
            exact.add(text)
    return CodeSet(kind, frozenset(exact), tuple(prefixes))


def _resolve_icd(
    text: str, span: ast.Span, exact: set[str], prefixes: list[str], errors: list[PolicyError]
) -> None:
    if text.endswith("*"):
        stem = icd10cm.normalize(text[:-1].rstrip("."))
        if icd10cm.is_code(stem):
            prefixes.append(stem)
            return
        suggestions = icd10cm.suggest(stem)
        errors.append(
            PolicyError(
                "E301",
                f"`{text}` does not start any ICD-10-CM code",
                span,
                _suggest_hint(suggestions),
            )
        )
        return
    code = icd10cm.normalize(text)
    if icd10cm.is_billable(code):
        exact.add(code)
    elif icd10cm.is_code(code):
        errors.append(
            PolicyError(
                "E301",
                f"`{text}` is an ICD-10-CM category, not a billable code: no claim can carry it",
                span,
                f"did you mean `{prefix_text(code)}`?",
            )
        )
    else:
        errors.append(
            PolicyError(
                "E301",
                f"`{text}` is not a valid ICD-10-CM code",
                span,
                _suggest_hint(icd10cm.suggest(code)),
            )
        )


def _suggest_hint(suggestions: list[str]) -> str | None:
    if not suggestions:
        return None
    return "did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"


def _resolve_procedure(
    text: str, span: ast.Span, exact: set[str], errors: list[PolicyError]
) -> None:
    if "-" in text:
        lo, _, hi = text.partition("-")
        try:
            exact.update(procedure.expand_range(lo, hi))
        except ValueError as exc:
            errors.append(
                PolicyError(
                    "E303",
                    f"bad code range `{text}`: {exc}",
                    span,
                    "a range joins two codes of the same shape, e.g. 11400-11446 or J0100-J0150",
                )
            )
        return
    if procedure.is_procedure_code(text):
        exact.add(text)
        return
    errors.append(
        PolicyError(
            "E302",
            f"`{text}` is not a CPT or HCPCS Level II code",
            span,
            "CPT codes are 5 digits or 4 digits + F/T/U; HCPCS Level II codes are a letter and "
            "4 digits"
            + (
                "; ICD-10-CM codes belong in an `icd10` value set"
                if icd10cm.is_code(text.replace("*", ""))
                else ""
            ),
        )
    )


def read_csv_column(text: str, column: str) -> tuple[list[tuple[str, int, int]], str | None]:
    """The non-empty values of `column` with their 1-based line and column, or an error."""
    lines = io.StringIO(text).readlines()
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return [], "the file is empty"
    names = [h.strip() for h in header]
    if column not in names:
        return [], f"no column `{column}` (columns: {', '.join(names)})"
    index = names.index(column)
    values: list[tuple[str, int, int]] = []
    first_line = reader.line_num + 1
    for row in reader:
        if len(row) > index and row[index].strip():
            record = "".join(lines[first_line - 1 : reader.line_num])
            offset = _field_offset(record, index)
            line = first_line + record.count("\n", 0, offset)
            col = offset - (record.rfind("\n", 0, offset) + 1) + 1
            values.append((row[index].strip(), line, col))
        first_line = reader.line_num + 1
    return values, None


def _field_offset(record: str, index: int) -> int:
    """Where the value of field `index` starts in the text of one CSV record (after an
    opening quote and blanks); quoted fields may hold commas, `""` and newlines. As for
    `csv.reader`, a quote opens a quoted field only as the field's first character."""
    field, i, quoted, starting = 0, 0, False, True
    while i < len(record):
        char = record[i]
        if field == index:
            if char == '"':
                i += 1
            while i < len(record) and record[i] in " \t":
                i += 1
            return i
        if quoted:
            if char == '"' and record[i + 1 : i + 2] == '"':
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"' and starting:
            quoted = True
        elif char == ",":
            field += 1
            starting = True
            i += 1
            continue
        starting = False
        i += 1
    return 0


# ---- rules that rest on partial data ---------------------------------------------------


def _import_hint(table: Any) -> str:
    """What to load in place of a sample table (the table says; NCCI tables by default)."""
    hint = getattr(table, "import_hint", None)
    return hint if isinstance(hint, str) else "load the CMS quarterly files with --ptp/--mue"


def partial_notes(
    conditions: Iterable[ast.Expr],
    lets: Iterable[ast.Let],
    valuesets: Mapping[str, CodeSet],
    literal_sets: Mapping[int, CodeSet],
    tables: Mapping[str, Any],
) -> list[str]:
    """What a rule's firing may rest on that the shipped data cannot prove, as notes.

    A membership test against a partial value set counts when the rule can fire because
    the test is *false* (the code was not found: `no of ... in s`, `x not in s`,
    `not (x in s)`); a test that fires the rule by finding a code is sound. A function
    called with a sample table (`ptp_conflict(ptp)` over the shipped NCCI sample) counts
    unless the rule fires only when its answer is false. Tests inside a `let` are taken
    both ways."""
    notes: list[str] = []

    def add(note: str) -> None:
        if note not in notes:
            notes.append(note)

    def partial_of(expr: ast.Expr) -> str | None:
        if isinstance(expr, ast.Path) and len(expr.parts) == 1:
            found = valuesets.get(expr.parts[0])
            return found.partial if found is not None else None
        if isinstance(expr, ast.CodeList):
            found = literal_sets.get(id(expr))
            return found.partial if found is not None else None
        if isinstance(expr, ast.Arith):
            return _join_notes(partial_of(expr.left), partial_of(expr.right))
        return None

    def walk(expr: ast.Expr, fires_when: bool | None) -> None:
        # fires_when: the rule fires when this expression is True (True), when it is
        # False (False), or either way (None).
        if isinstance(expr, ast.Not):
            walk(expr.operand, None if fires_when is None else not fires_when)
        elif isinstance(expr, ast.BoolOp):
            walk(expr.left, fires_when)
            walk(expr.right, fires_when)
        elif isinstance(expr, ast.Membership):
            note = partial_of(expr.container)
            found_when = fires_when if not expr.negated or fires_when is None else not fires_when
            if note is not None and found_when is not True:
                add(f"the shipped list is partial; check {note}")
            walk(expr.element, None)
        elif isinstance(expr, ast.QuantifiedIn):
            note = partial_of(expr.container)
            # any/all fire by finding codes; `no` fires by not finding them.
            fires_found: bool | None = None
            if expr.quantifier != "count" and fires_when is not None:
                fires_found = fires_when if expr.quantifier in ("any", "all") else not fires_when
            if note is not None and fires_found is not True:
                add(f"the shipped list is partial; check {note}")
            walk(expr.collection, None)
        elif isinstance(expr, ast.Quantified):
            inner = (
                None
                if expr.quantifier == "count" or fires_when is None
                else fires_when
                if expr.quantifier in ("any", "all")
                else not fires_when
            )
            walk(expr.collection, None)
            walk(expr.condition, inner)
        elif isinstance(expr, ast.Call):
            for arg in expr.args:
                if isinstance(arg, ast.Path) and len(arg.parts) == 1:
                    table = tables.get(arg.parts[0])
                    sample = getattr(table, "sample", None)
                    # `not ptp_pair(ptp)`: a rule that fires when the table lacks a row
                    # defers to the table, it does not rest on it.
                    if sample and fires_when is not False:
                        add(
                            f"it rests on the sample table `{arg.parts[0]}` ({sample}), "
                            f"not on CMS data: {_import_hint(table)}"
                        )
                walk(arg, None)
        elif isinstance(expr, (ast.Compare, ast.Arith)):
            walk(expr.left, None)
            walk(expr.right, None)
        elif isinstance(expr, ast.Presence):
            walk(expr.operand, None)
        elif isinstance(expr, ast.TableRead):
            table = tables.get(expr.table)
            sample = getattr(table, "sample", None)
            if sample:  # a data table read from a sample, as for its functions
                add(
                    f"it rests on the sample table `{expr.table}` ({sample}), not on CMS "
                    f"data: {_import_hint(table)}"
                )
            for key in expr.keys:
                walk(key, None)

    for let in lets:
        walk(let.value, None)
    for condition in conditions:
        walk(condition, True)
    return notes
