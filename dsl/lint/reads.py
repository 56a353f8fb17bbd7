"""Lint stages about what a rule reads from the claim: optional fields read unguarded
(W405) and plan names that no claim of the pack's cases has (W406).

- W405 is the lint side of the missing-value rule (dsl/missing.py): each comparison that
  reads an optional field (or a table row) the version does not test with `is present` /
  `is missing` is where a claim without the field gets a `review` ("needs member.sex ...")
  instead of the rule's outcome. The reads are found by `missing.compare_reads`, the same
  walk the compiler uses to build the review, so lint warns exactly where the engine can
  give that review: not inside quantifiers, function arguments or `in` / `not in`, and
  not for fields whose absence is an answer (no plan, an open coverage span), nor for a
  field that a rule of the pack (or its includes) rejects or denies every claim for
  lacking (`when line.units is missing or ...`, as `common` does): such a claim never
  gets past that rule, so the review would say nothing new.
- W406 compares the plan names a pack's rules name (`plan is "x"`, `claim.plan == "x"`,
  `claim.plan in ["x", "y"]`) with the plans of every claim, coverage span and roster
  file in the pack's `cases/` folder (any `plan` key of a YAML/JSON mapping, any `plan`
  column of a CSV), case-insensitively as the engine compares plans. A pack without case
  files is not checked: there is nothing to compare with.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.checker import CheckedPack
from cleanclaim.dsl.missing import compare_reads, guarded_paths, label
from cleanclaim.dsl.static import conjuncts

Warn = Callable[[str, str, ast.Span, "str | None"], None]


def _disjuncts(expr: ast.Expr) -> list[ast.Expr]:
    if isinstance(expr, ast.BoolOp) and expr.op == "or":
        return [*_disjuncts(expr.left), *_disjuncts(expr.right)]
    return [expr]


def rejected_when_missing(checked: CheckedPack) -> frozenset[tuple[str, ...]]:
    """The fields a rule of the pack (or of its includes) rejects or denies a claim for
    lacking, on every claim and date: `when line.units is missing or ...` in a rule of
    all lines (or the claim, for claim and member fields) with no filter and no date.
    A claim without such a field never gets past that rule, so another rule's review
    for the same missing field says nothing new (common/required-data.policy)."""
    found: set[tuple[str, ...]] = set()
    for _pack, rule in checked.rules:
        if rule.filters or rule.scope is None or rule.scope.kind not in ("all_lines", "claim"):
            continue
        for version in rule.versions:
            if (
                version.start
                or version.end
                or version.outcome is None
                or version.outcome.severity not in ("reject", "deny")
                or len(version.conditions) != 1
                or version.exceptions
            ):
                continue
            for part in _disjuncts(version.conditions[0]):
                if (
                    isinstance(part, ast.Presence)
                    and part.missing
                    and isinstance(part.operand, ast.Path)
                    and (rule.scope.kind == "all_lines" or part.operand.parts[0] != "line")
                ):
                    found.add(part.operand.parts)
    return frozenset(found)


def unguarded_reads(checked: CheckedPack, warn: Warn) -> None:
    """W405: each comparison that reads an optional field the version does not guard
    (and that no rule of the pack rejects a claim for lacking)."""
    settled = rejected_when_missing(checked)
    for _pack, rule in checked.rules:
        for version in rule.versions:
            lets = {let.name: let.value for let in version.lets}
            guarded = guarded_paths(version) | settled
            if rule.scope is not None and rule.scope.kind == "codes":
                guarded |= {("line", "code")}  # the line's code is one of the scope's
            rows = _rows_tested(checked, version)
            seen: set[tuple[int, int, str]] = set()
            for condition in version.conditions:
                for compare, read in compare_reads(condition, checked.types, lets, guarded):
                    if isinstance(read, ast.TableRead) and _row_exists(checked, read, rows):
                        continue
                    name = label(read)
                    key = (compare.span.line, compare.span.column, name)
                    if key in seen:
                        continue
                    seen.add(key)
                    field = name if isinstance(read, ast.Path) else f"the row {name}"
                    warn(
                        "W405",
                        f"rule `{rule.id}` reads {field}, which can be missing, "
                        f"without `is present`: a claim without it gets review CO-16 "
                        f'("needs {name}")',
                        compare.span,
                        f"if a review is what a missing value should give, keep it; else "
                        f"say what it means: `{name} is present and ...` (passes) or "
                        f"`{name} is missing or ...` (fires)",
                    )


def _rows_tested(checked: CheckedPack, version: ast.Version) -> set[tuple[str, Any]]:
    """(table, key) of each `KEY in TABLE` the version's conditions `and` together: the
    row of that key is there whenever the rest of the condition is asked."""
    from cleanclaim.dsl.fmt import strip_spans

    found: set[tuple[str, Any]] = set()
    for condition in version.conditions:
        for part in conjuncts(condition):
            if (
                isinstance(part, ast.Membership)
                and not part.negated
                and isinstance(part.container, ast.Path)
                and len(part.container.parts) == 1
                and part.container.parts[0] in checked.lookup_decls
            ):
                found.add((part.container.parts[0], strip_spans(part.element)))
    return found


def _row_exists(checked: CheckedPack, read: ast.TableRead, rows: set[tuple[str, Any]]) -> bool:
    """Whether the row a table read reads is always there: its keys are literals (the
    checker has found them in the pack's own table, dsl/tables.py) or the condition
    tests `KEY in TABLE` first."""
    from cleanclaim.dsl.fmt import strip_spans

    if read.table not in checked.lookup_decls:
        return False
    if all(isinstance(key, ast.Literal_) for key in read.keys):
        return True
    return len(read.keys) == 1 and (read.table, strip_spans(read.keys[0])) in rows


# ---- W406 ---------------------------------------------------------------------------------


def _is_plan(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Path) and expr.parts == ("claim", "plan")


def plan_names(rule: ast.Rule) -> list[tuple[str, ast.Span]]:
    """The plan names a rule writes, each with where it is written."""
    found: list[tuple[str, ast.Span]] = []
    for vf in rule.filters:
        if vf.field == "plan":
            found.extend((value, vf.span) for value in vf.values)
    for version in rule.versions:
        exprs = [
            *version.conditions,
            *(let.value for let in version.lets),
            *(e.condition for e in version.exceptions if e.condition is not None),
        ]
        for expr in exprs:
            for node in ast.nodes(expr):
                if isinstance(node, ast.Compare) and node.op in ("==", "!="):
                    for this, other in ((node.left, node.right), (node.right, node.left)):
                        if (
                            _is_plan(this)
                            and isinstance(other, ast.Literal_)
                            and isinstance(other.value, str)
                        ):
                            found.append((other.value, other.span))
                elif (
                    isinstance(node, ast.Membership)
                    and _is_plan(node.element)
                    and isinstance(node.container, ast.CodeList)
                ):
                    found.extend((item.text, item.span) for item in node.container.items)
    return found


def _plans_in(data: Any, into: set[Any]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "plan" and isinstance(value, str):
                into.add(T.plan_key(value))
            else:
                _plans_in(value, into)
    elif isinstance(data, list):
        for item in data:
            _plans_in(item, into)


def case_plans(folder: Path) -> set[Any] | None:
    """The plans (folded) of the claims, coverage spans and rosters in a pack's `cases/`
    folder; None when it has no case file."""
    cases = folder / "cases"
    files = (
        sorted(p for p in cases.rglob("*") if p.suffix in (".yaml", ".yml", ".json", ".csv"))
        if cases.is_dir()
        else []
    )
    if not files:
        return None
    plans: set[Any] = set()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8-sig")
            if path.suffix == ".csv":
                for row in csv.DictReader(text.splitlines()):
                    value = row.get("plan")
                    if value:
                        plans.add(T.plan_key(value.strip()))
            elif path.suffix == ".json":
                _plans_in(json.loads(text), plans)
            else:
                import yaml

                _plans_in(yaml.safe_load(text), plans)
        except Exception:  # a case file that does not read is `cleanclaim test`'s error
            continue
    return plans


def unused_plans(checked: CheckedPack, warn: Warn) -> None:
    """W406: a plan name that no claim, coverage span or roster of the cases has."""
    folder = checked.sources.manifest.root
    plans = case_plans(folder)
    if plans is None:
        return
    for _pack, rule in checked.rules:
        for name, span in plan_names(rule):
            if T.plan_key(name) not in plans:
                known = ", ".join(sorted(str(p) for p in plans)) or "none"
                warn(
                    "W406",
                    f'rule `{rule.id}` names plan "{name}", which no claim, '
                    f"coverage span or roster in {folder.name}/cases has (plans there: "
                    f"{known})",
                    span,
                    "check the spelling of the plan id, or add a case with a claim of that plan",
                )
