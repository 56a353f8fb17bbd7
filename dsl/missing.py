"""Missing values: which claim fields a comparison reads that can be missing, unguarded.

The rule of the language (docs/language.md, "Missing values"): a comparison that reads a
claim field that can be missing (dsl/types.py says which: `T.optional`), when the
field is missing, is *unknown*. `and`, `or` and `not` follow Kleene's three-valued logic:
`unknown and false` is false, `unknown or true` is true, `not unknown` is unknown. A rule
whose condition is true fires; one whose condition is unknown gives a `review` finding
"needs member.sex ..." instead (a person must look); one whose condition is false passes.
So `member.sex != "F"` and `not (member.sex == "F")` agree: both are unknown when the sex
is missing.

A rule that tests a field itself with `is present` / `is missing` (anywhere in the
version's `let`s and conditions) has said what a missing value means: comparisons of
that field keep the plain rule of version 1 (a comparison with a missing value is false).
Inside a quantifier (`any o in other_lines where ...`) and in function arguments the plain
rule holds too.

The compiler writes each condition twice: *definite* (unknown counts as what makes the
condition false) and *possible* (unknown counts as what makes it true); the second runs
only when the first is false and a field it reads is missing. `lint` reports the
unguarded reads (`optional_reads`) so that an analyst sees where a review can come from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T

# The names a path to a field of the claim being checked starts with.
ROOTS = frozenset({"claim", "member", "line", "diagnosis"})

# A value read that can be missing: a claim field, or a column of a table row
# (`visit_limits[claim.plan].visits`, missing when the table has no such row).
Read = ast.Path | ast.TableRead


def guard_key(read: ast.TableRead) -> tuple[str, ...]:
    """How `guarded_paths` records a table read tested with `is present`: by its table
    and column (whatever the key)."""
    return (f"{read.table}[]", read.column)


def guarded_paths(version: ast.Version) -> frozenset[tuple[str, ...]]:
    """The paths the version tests with `is present` / `is missing`."""
    found: set[tuple[str, ...]] = set()
    exprs = [*version.conditions, *(let.value for let in version.lets)]
    for expr in exprs:
        for node in ast.nodes(expr):
            if isinstance(node, ast.Presence) and isinstance(node.operand, ast.Path):
                found.add(node.operand.parts)
            elif isinstance(node, ast.Presence) and isinstance(node.operand, ast.TableRead):
                found.add(guard_key(node.operand))
    return frozenset(found)


def optional_reads(
    expr: ast.Expr,
    types: Mapping[int, T.Type],
    lets: Mapping[str, ast.Expr],
    guarded: frozenset[tuple[str, ...]],
    _seen: frozenset[str] = frozenset(),
) -> list[Read]:
    """The paths to claim fields that can be missing which `expr` reads (through `let`s),
    outside quantifiers, not tested by the rule with `is present` / `is missing`; and the
    table reads it makes (a row the table lacks is missing)."""
    found: list[Read] = []
    if isinstance(expr, ast.TableRead):
        return [] if guard_key(expr) in guarded else [expr]
    if isinstance(expr, ast.Path):
        head = expr.parts[0]
        if expr.parts in guarded:
            return found
        if head in lets and head not in _seen:
            if len(expr.parts) == 1:
                found.extend(optional_reads(lets[head], types, lets, guarded, _seen | {head}))
            return found
        if head in ROOTS and len(expr.parts) > 1 and _optional_path(expr.parts):
            found.append(expr)
        return found
    if isinstance(
        expr, (ast.Quantified, ast.QuantifiedIn, ast.Presence, ast.Literal_, ast.CodeList)
    ):
        return found
    if isinstance(expr, ast.Not):
        return optional_reads(expr.operand, types, lets, guarded, _seen)
    if isinstance(expr, (ast.BoolOp, ast.Compare, ast.Arith)):
        return [
            *optional_reads(expr.left, types, lets, guarded, _seen),
            *optional_reads(expr.right, types, lets, guarded, _seen),
        ]
    if isinstance(expr, ast.Membership):
        return []  # a missing value is in no list (`not in`: true), as in version 1
    if isinstance(expr, ast.Call):
        # `first_present(a, b)` is missing only when its last argument is: what the
        # first ones read cannot leave it unknown.
        args = expr.args[-1:] if expr.name == "first_present" else expr.args
        for arg in args:
            found.extend(optional_reads(arg, types, lets, guarded, _seen))
    return found


def _optional_path(parts: tuple[str, ...]) -> bool:
    """Whether a path from a root reads a field that can be missing, unknown when it is
    (its own field or a record on the way: `claim.referring_provider.npi`)."""
    current = T.ROOTS["line"].get(parts[0]) or T.ROOTS["diagnosis"].get(parts[0])
    for part in parts[1:]:
        if current is None or current.name not in T.RECORDS:
            return False
        if (current.name, part) in T.ABSENT_IS_AN_ANSWER:
            return False
        if T.optional(current.name, part):
            return True
        current = T.RECORDS[current.name].get(part)
    return False


def compare_reads(
    expr: ast.Expr,
    types: Mapping[int, T.Type],
    lets: Mapping[str, ast.Expr],
    guarded: frozenset[tuple[str, ...]],
) -> list[tuple[ast.Compare, Read]]:
    """Each comparison of `expr` (through boolean `let`s, outside quantifiers) with each
    unguarded optional field it reads: what `lint` reports."""
    found: list[tuple[ast.Compare, Read]] = []

    def visit(e: ast.Expr, seen: frozenset[str]) -> None:
        if isinstance(e, ast.Compare):
            for path in optional_reads(e, types, lets, guarded):
                found.append((e, path))
        elif isinstance(e, ast.Not):
            visit(e.operand, seen)
        elif isinstance(e, ast.BoolOp):
            visit(e.left, seen)
            visit(e.right, seen)
        elif (
            isinstance(e, ast.Path)
            and len(e.parts) == 1
            and e.parts[0] in lets
            and e.parts[0] not in seen
            and (e.parts[0],) not in guarded
        ):
            visit(lets[e.parts[0]], seen | {e.parts[0]})

    visit(expr, frozenset())
    return found


def read_key(read: Read) -> Any:
    """What tells two reads apart (a path's parts; a table read's table, keys, column)."""
    if isinstance(read, ast.Path):
        return read.parts
    return ("[]", read.table, label(read))


def label(read: Read) -> str:
    """How a "needs ..." message names a read: `member.sex`, `limits[claim.plan].visits`."""
    if isinstance(read, ast.Path):
        return ".".join(read.parts)
    return f"{read.table}[{', '.join(_key_text(k) for k in read.keys)}].{read.column}"


def _key_text(key: ast.Expr) -> str:
    if isinstance(key, ast.Path):
        return ".".join(key.parts)
    if isinstance(key, ast.Literal_):
        return f'"{key.value}"' if isinstance(key.value, str) else str(key.value)
    if isinstance(key, ast.Call):
        return f"{key.name}(...)"
    return "..."
