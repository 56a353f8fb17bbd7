"""Policy lint: every error of the checker, plus warnings about policy quality.

`cleanclaim lint` runs the checker over a pack (so a pack that does not compile shows the
same located errors as `check`) and then the quality stages below, in order, over what the
checker learnt. Each problem carries a stable code (E… from the checker, W… from here), its
position, a one-line message and a hint; `docs/lint.md` has a page per code with a bad and
a good example.

What the quality stages detect, and what they do not:
- W101-W103 value sets: never used (for a library pack, by no pack that includes it
  either), holding a code twice (or a code a range or prefix of the same set already
  holds), holding no code at all;
- W201-W202 rules that can never fire: `applies to codes` with no code, or a scope that a
  plain top-level condition or filter rules out (`line.code in S` with S disjoint from the
  scope, `line.code not in S` with the scope inside S, `line.code == "X"` with X outside
  the scope, `when false`, `plan is "a"` and `plan is not "a"`, a place of service that is
  not two digits). Conditions are not solved: `line.units > 3 and line.units < 2` is not
  found;
- W207 an exception (`except when` / `except rule`) that can never apply;
- W203-W206 dated versions: every version ended before today, a version left no date by
  the versions that win over it, versions overlapping, gaps between versions;
- W301-W302 two rules of a pack (its includes too) that apply to the same lines (shared
  scope codes, or all lines), the same plan / place of service, on overlapping dates and
  with the same conditions, but a different outcome (W301) or the same one (W302).
  "The same conditions" is syntactic: the sets of `and`-ed conditions are equal once
  `let` names are replaced by what they stand for and positions are ignored. Conditions
  that are equivalent but written differently (`a < b` and `b > a`) are not found;
- W401 a rule (or a version) without a `reference`;
- W402 a rule that denies or rejects when a code is *not* found in a value set declared
  `partial` (pack.yaml): the engine gives such findings as `review` (dsl/valuesets.py
  `partial_notes`), so the written outcome is not what a claim gets until the list is
  complete (e.g. by `cleanclaim data import`);
- W403-W404 X12 usage of the outcome's codes: a CARC the X12 list allows only with another
  group (OA-18, PR-201, ...) or the group CR (corrections of adjudicated claims), and a CARC
  that X12 says needs a remark code given none (not for `info`);
- W405-W406 what rules read (dsl/lint_reads.py): a comparison of an optional field without
  `is present` (a claim without it gets a review), a plan name no case claim has.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanclaim.dsl import ast, lint_reads
from cleanclaim.dsl.checker import CheckedPack, CheckEnv, check_pack
from cleanclaim.dsl.codesets import adjustment
from cleanclaim.dsl.errors import ERROR_CODES, PolicyError
from cleanclaim.dsl.pack import (
    PackManifest,
    PackSources,
    all_tables,
    check_not_empty,
    display_path,
    list_packs,
    load_sources,
    pack_policy_files,
)
from cleanclaim.dsl.parser import parse_policy
from cleanclaim.dsl.static import conjuncts, static_set
from cleanclaim.dsl.valuesets import CodeSet, infer_kind, resolve_items

# code -> (short name, what it means in one line)
LINT_CODES: dict[str, tuple[str, str]] = {
    "W101": ("unused-value-set", "a value set that no rule and no other value set uses"),
    "W102": ("duplicate-code", "a code listed twice in one value set"),
    "W103": ("empty-value-set", "a value set that holds no code"),
    "W201": ("empty-scope", "a rule that applies to codes, but to no code at all"),
    "W202": ("unmatchable-scope", "a rule whose scope its own filters or conditions rule out"),
    "W203": ("expired-rule", "a rule whose every version ended before today"),
    "W204": ("shadowed-version", "a dated version that other versions leave no date"),
    "W205": ("overlapping-versions", "two dated versions in force on the same dates"),
    "W206": ("version-gap", "dates between two versions on which no version applies"),
    "W207": ("exception-never-applies", "an `except` that can never suppress the finding"),
    "W301": ("conflicting-rules", "two rules that fire together with different outcomes"),
    "W302": ("duplicate-rules", "two rules that fire together with the same outcome"),
    "W401": ("missing-reference", "a rule that does not say which policy text it encodes"),
    "W402": ("deny-over-partial-data",
             "a rule that denies because a code is not in a value set declared partial"),
    "W403": ("group-code-mismatch",
             "a CARC with a group code the X12 list does not allow for it"),
    "W404": ("remark-code-required", "a CARC that X12 says needs a remark code, given none"),
    "W405": ("unguarded-optional-read",
             "a comparison of a field that can be missing, without `is present`"),
    "W406": ("unknown-plan", "a plan name that no claim or roster of the pack's cases has"),
}

TableLoader = Callable[[Path], object]


# ---- problems -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LintProblem:
    """One problem found by lint: an error of the checker or a quality warning."""

    code: str
    message: str
    span: ast.Span
    hint: str | None = None

    @property
    def severity(self) -> str:
        return "error" if self.code.startswith("E") else "warning"

    @property
    def name(self) -> str:
        if self.code in LINT_CODES:
            return LINT_CODES[self.code][0]
        return ERROR_CODES.get(self.code, "error")

    @property
    def docs(self) -> str:
        """The anchor of the code's page in docs/lint.md."""
        return f"docs/lint.md#{self.code.lower()}-{self.name}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.file, self.span.line, self.span.column, self.code, self.message)

    @classmethod
    def from_error(cls, error: PolicyError) -> LintProblem:
        return cls(error.code, error.message, error.span, error.hint)

    def source_line(self, source: str | None) -> str | None:
        if source is None:
            return None
        lines = source.splitlines()
        if 1 <= self.span.line <= len(lines):
            return lines[self.span.line - 1].expandtabs(1)
        return None

    def caret(self, line: str) -> str:
        """`^^^` under the span on its first line (to the end of that line's text when the
        span runs on)."""
        start = max(1, self.span.column)
        if self.span.end_line == self.span.line:
            end = max(start + 1, self.span.end_column)
        else:
            end = max(start + 1, len(line.rstrip()) + 1)
        end = min(end, max(start + 1, len(line.rstrip()) + 1))
        return " " * (start - 1) + "^" * (end - start)

    def render(self, source: str | None = None) -> str:
        out = [f"{self.span.file}:{self.span.line}:{self.span.column}: "
               f"{self.severity} {self.code} {self.name}: {self.message}"]
        line = self.source_line(source)
        if line is not None:
            out.append(f"    {line}")
            out.append(f"    {self.caret(line)}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def to_json(self, source: str | None = None) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "message": self.message,
            "hint": self.hint,
            "source_line": self.source_line(source),
            "docs": self.docs,
        }


@dataclass(slots=True)
class LintReport:
    """Every problem of the packs and files linted, deduplicated and sorted."""

    checked: list[str] = field(default_factory=list)  # what was linted, for the summary
    problems: list[LintProblem] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # display name -> text

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == "warning")

    def add(self, problems: Iterable[LintProblem]) -> None:
        seen = {p.sort_key() for p in self.problems}
        for problem in problems:
            if problem.sort_key() not in seen:
                seen.add(problem.sort_key())
                self.problems.append(problem)
        self.problems.sort(key=LintProblem.sort_key)

    def summary(self) -> str:
        what = ", ".join(self.checked) or "nothing"
        if not self.problems:
            return f"{what}: no problems"
        return (f"{what}: {self.errors} error{'s' if self.errors != 1 else ''}, "
                f"{self.warnings} warning{'s' if self.warnings != 1 else ''}")

    def render(self) -> str:
        parts = [p.render(self.sources.get(p.span.file)) for p in self.problems]
        parts.append(self.summary())
        return "\n".join(parts) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "errors": self.errors,
            "warnings": self.warnings,
            "problems": [p.to_json(self.sources.get(p.span.file)) for p in self.problems],
        }


# ---- linting a pack -----------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    checked: CheckedPack
    own_files: frozenset[str]  # quality warnings are reported for these files only
    today: dt.date
    used_elsewhere: frozenset[str]  # value set names that packs including this one use
    problems: list[LintProblem] = field(default_factory=list)

    def warn(self, code: str, message: str, span: ast.Span, hint: str | None = None) -> None:
        if span.file in self.own_files:
            self.problems.append(LintProblem(code, message, span, hint))


Stage = Callable[[_Context], None]


def lint_pack(
    sources: PackSources,
    env: CheckEnv,
    real_paths: Mapping[str, Path],
    *,
    today: dt.date,
    own_files: Iterable[str] | None = None,
    used_elsewhere: Iterable[str] = (),
    table_loaders: Mapping[str, TableLoader] | None = None,
) -> list[LintProblem]:
    """Check a pack and run the quality stages; every problem found, sorted.

    own_files: the files quality warnings are reported for (default: the files of the pack
    itself, not of the packs it includes; their errors are reported all the same, since
    they stop this pack from compiling).
    used_elsewhere: value set names used by packs that include this one.
    table_loaders: table format -> loader; a table that does not load is an E504 error.
    """
    checked = check_pack(sources, env, real_paths)
    if sources.manifest.manifest_file.is_file():  # a pack, not a loose policy file
        check_not_empty(checked)
    problems = [LintProblem.from_error(e) for e in checked.errors]
    problems.extend(_table_problems(sources, table_loaders or {}))
    if own_files is None:
        own_files = [name for name, pack in sources.file_pack.items()
                     if pack == sources.manifest.id]
    context = _Context(checked, frozenset(own_files), today, frozenset(used_elsewhere))
    for _name, stage in STAGES:
        try:
            stage(context)
        except RecursionError:  # an expression nested hundreds deep: skip the stage
            continue
    problems.extend(context.problems)
    return sorted(problems, key=LintProblem.sort_key)


def _table_problems(sources: PackSources, loaders: Mapping[str, TableLoader]) -> list[LintProblem]:
    problems = []
    for table in all_tables(sources).values():
        loader = loaders.get(table.format)
        if loader is None:
            continue
        try:
            loader(table.file)
        except Exception as exc:  # any loader failure is a problem of the table, not of lint
            manifest = next((p.manifest_file for p in sources.packs
                             if table in p.tables), sources.manifest.manifest_file)
            problems.append(LintProblem(
                "E504", f"table `{table.name}` ({table.format}): {exc}",
                ast.Span(display_path(manifest), 1, 1, 1, 2),
                "check the `file` of the table in pack.yaml"))
    return problems


_TEMPLATE_NAME = re.compile(r"\{\s*([a-z_][a-z0-9_]*)")


def used_names(files: Iterable[ast.PolicyFile]) -> set[str]:
    """Names that value sets, scopes, conditions and messages refer to."""
    names: set[str] = set()
    for tree in files:
        for node in ast.nodes(tree):
            if isinstance(node, ast.SetRef):
                names.add(node.name)
            elif isinstance(node, ast.Path):
                names.add(node.parts[0])
            elif isinstance(node, ast.Text):
                names.update(_TEMPLATE_NAME.findall(node.value))
    return names


def _name_span(span: ast.Span, keyword: str, name: str) -> ast.Span:
    """The span of `keyword name` at the start of an item (for a short caret)."""
    width = len(keyword) + 1 + len(name)
    return ast.Span(span.file, span.line, span.column, span.line, span.column + width)


def _rule_span(rule: ast.Rule) -> ast.Span:
    return _name_span(rule.span, "rule", f'"{rule.id}"')


# ---- stage: value sets --------------------------------------------------------------------


def _value_sets(ctx: _Context) -> None:
    used = used_names(ctx.checked.files)
    # A value set's own terms do not count as a use of it (`x = x + ...` is E108).
    for name, decl in ctx.checked.valueset_decls.items():
        span = _name_span(decl.span, "valueset", name)
        own_refs = {t.name for t in decl.terms if isinstance(t, ast.SetRef)}
        others_use = any(
            name in {t.name for t in d.terms if isinstance(t, ast.SetRef)}
            for n, d in ctx.checked.valueset_decls.items() if n != name)
        if name not in used - own_refs and not others_use and name not in ctx.used_elsewhere:
            ctx.warn("W101", f"value set `{name}` is never used", span,
                     f"delete it, or use it: `applies to codes {name}` or "
                     f"`line.code in {name}`")
        resolved = ctx.checked.valuesets.get(name)
        if (resolved is not None and not resolved.exact and not resolved.prefixes
                and not _bad_codes(ctx)):
            ctx.warn("W103", f"value set `{name}` holds no code", span,
                     "list its codes, or delete it and the conditions that use it")
        kind = resolved.kind if resolved is not None else None
        _duplicate_codes(ctx, decl.terms, kind)
    for _pack, rule in ctx.checked.rules:
        if rule.scope is not None and rule.scope.kind == "codes":
            _duplicate_codes(ctx, rule.scope.codes, "codes")


def _bad_codes(ctx: _Context) -> bool:
    """Whether the checker dropped codes it could not read: a set may then be empty only
    because of them, and saying so again would be noise."""
    return any(e.code.startswith("E30") for e in ctx.checked.errors)


def _duplicate_codes(ctx: _Context, terms: Sequence[ast.SetTerm], kind: str | None) -> None:
    seen_exact: dict[str, str] = {}  # code -> the item that brought it
    seen_prefixes: dict[str, str] = {}
    for term in terms:
        if not isinstance(term, ast.SetLiteral):
            continue
        term_kind = term.kind or kind or infer_kind(i.text for i in term.codes.items)
        if term_kind is None:
            continue
        for item in term.codes.items:
            scratch: list[PolicyError] = []
            alone = resolve_items(term_kind, [(item.text, item.span)], scratch)
            if scratch:
                continue  # the checker reports a bad code
            earlier = _covered_by(alone, seen_exact, seen_prefixes)
            if earlier is not None:
                same = earlier == item.text
                ctx.warn("W102", f"`{item.text}` is already in this value set" + (
                    "" if same else f" (through `{earlier}`)"), item.span,
                    "delete this one")
            for code in alone.exact:
                seen_exact.setdefault(code, item.text)
            for prefix in alone.prefixes:
                seen_prefixes.setdefault(prefix, item.text)


def _covered_by(alone: CodeSet, exact: Mapping[str, str],
                prefixes: Mapping[str, str]) -> str | None:
    """The earlier item that already holds every code of `alone`, if one item does."""
    owners: set[str] = set()
    for code in alone.exact:
        owner = exact.get(code) or next(
            (item for p, item in prefixes.items() if code.startswith(p)), None)
        if owner is None:
            return None
        owners.add(owner)
    for prefix in alone.prefixes:
        owner = next((item for p, item in prefixes.items() if prefix.startswith(p)), None)
        if owner is None:
            return None
        owners.add(owner)
    if not owners:
        return None
    return sorted(owners)[0] if len(owners) == 1 else ", ".join(sorted(owners))


# ---- stage: scopes ------------------------------------------------------------------------


def _static_set(ctx: _Context, expr: ast.Expr) -> CodeSet | None:
    """The codes of a value set name, a code list, or a union/difference of them (as the
    compiler reads them: dsl/static.py)."""
    return static_set(expr, ctx.checked.valuesets, ctx.checked.literal_sets)


def _is_line_code(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Path) and expr.parts == ("line", "code")


def _scopes(ctx: _Context) -> None:
    for _pack, rule in ctx.checked.rules:
        scope_codes: frozenset[str] | None = None
        if rule.scope is not None and rule.scope.kind == "codes":
            resolved = ctx.checked.scope_sets.get(rule.id)
            if resolved is None:
                continue  # the checker reported why
            if not resolved.exact and not _bad_codes(ctx):
                ctx.warn("W201", f"rule `{rule.id}` applies to codes, but its scope holds "
                         "no code: it never fires", rule.scope.span,
                         "list the codes it is about, or delete the rule")
                continue
            scope_codes = resolved.exact
        _filters(ctx, rule)
        for version in rule.versions:
            for condition in version.conditions:
                for part in conjuncts(condition):
                    reason = _never(ctx, part, scope_codes, rule)
                    if reason is not None:
                        ctx.warn("W202", f"rule `{rule.id}` never fires: {reason}", part.span,
                                 "check the condition against the rule's `applies to`")


def _never(ctx: _Context, part: ast.Expr, scope: frozenset[str] | None,
           rule: ast.Rule) -> str | None:
    """Why a top-level condition can never hold for a line in scope, or None."""
    if isinstance(part, ast.Literal_) and part.value is False:
        return "its condition is `false`"
    line_scoped = rule.scope is None or rule.scope.kind in ("codes", "all_lines")
    if isinstance(part, ast.Membership) and line_scoped and _is_line_code(part.element):
        found = _static_set(ctx, part.container)
        if found is None or found.kind != "codes" or found.prefixes:
            return None
        if not part.negated:
            if not found.exact:
                return "`line.code` is never in an empty set"
            if scope is not None and not (scope & found.exact):
                return "no code of its `applies to` is in this set"
        elif scope is not None and scope <= found.exact:
            return "every code of its `applies to` is in this set"
        return None
    if (isinstance(part, ast.Compare) and part.op == "==" and line_scoped
            and scope is not None):
        sides = (part.left, part.right)
        for this, other in (sides, sides[::-1]):
            if (_is_line_code(this) and isinstance(other, ast.Literal_)
                    and isinstance(other.value, str) and other.value.upper() not in scope):
                return f"`{other.value}` is not one of the codes it applies to"
    return None


_POS = re.compile(r"[0-9]{2}")


def _filters(ctx: _Context, rule: ast.Rule) -> None:
    by_field: dict[str, list[ast.ValueFilter]] = {}
    for vf in rule.filters:
        by_field.setdefault(vf.field, []).append(vf)
        if vf.field == "place_of_service":
            for value in vf.values:
                if not _POS.fullmatch(value):
                    ctx.warn("W202", f"place of service \"{value}\" never matches: place of "
                             "service codes are two digits", vf.span,
                             f"write \"{value.zfill(2)}\"" if value.isdigit() and len(value) < 2
                             else "use a CMS place of service code such as \"11\"")
    for name, filters in by_field.items():
        included: set[str] | None = None
        excluded: set[str] = set()
        for vf in filters:
            if vf.negated:
                excluded.update(vf.values)
            else:
                included = set(vf.values) if included is None else included & set(vf.values)
        if included is not None and not (included - excluded):
            label = "plan" if name == "plan" else "place of service"
            ctx.warn("W202", f"rule `{rule.id}` never fires: no {label} passes all of its "
                     f"`{label} is` filters", filters[-1].span,
                     f"keep one `{label} is` filter that lists the values it applies to")


# ---- stage: dated versions ----------------------------------------------------------------

_BEGIN, _END = dt.date.min, dt.date.max


def _range(version: ast.Version) -> tuple[dt.date, dt.date]:
    return (version.start or _BEGIN, version.end or _END)


def _show(start: dt.date, end: dt.date) -> str:
    if start == _BEGIN and end == _END:
        return "every date"
    if start == _BEGIN:
        return f"up to {end}"
    if end == _END:
        return f"from {start}"
    return f"{start} to {end}" if start != end else str(start)


def _subtract(ranges: list[tuple[dt.date, dt.date]],
              cut: tuple[dt.date, dt.date]) -> list[tuple[dt.date, dt.date]]:
    out = []
    one = dt.timedelta(days=1)
    for start, end in ranges:
        if cut[1] < start or end < cut[0]:
            out.append((start, end))
            continue
        if start < cut[0]:
            out.append((start, cut[0] - one))
        if cut[1] < end:
            out.append((cut[1] + one, end))
    return out


def _versions(ctx: _Context) -> None:
    for _pack, rule in ctx.checked.rules:
        dated = [v for v in rule.versions if v.start is not None or v.end is not None]
        valid = [v for v in dated if not (v.start and v.end and v.end < v.start)]
        if not dated:
            continue
        if all(v.end is not None and v.end < ctx.today for v in dated):
            last = max(v.end for v in dated if v.end is not None)
            ctx.warn("W203", f"every version of rule `{rule.id}` ended by {last}: it only "
                     "applies to services on or before that date", _rule_span(rule),
                     "if the policy continues, add a version `effective <date>`; if it is "
                     "retired, delete the rule once such claims can no longer be filed")
        # The version that applies on a date is the one that starts latest (the first
        # written of those that start on the same day): the compiler's order.
        order = sorted(valid, key=lambda v: v.start or _BEGIN, reverse=True)
        shadowed: set[int] = set()
        for position, version in enumerate(order):
            left = [_range(version)]
            for winner in order[:position]:
                left = _subtract(left, _range(winner))
            if not left:
                shadowed.add(id(version))
                ctx.warn("W204", f"the version {_show(*_range(version))} never applies: "
                         "versions that start later take every one of its dates",
                         version.span, "delete it, or correct its dates")
        for i, first in enumerate(valid):
            for second in valid[i + 1:]:
                if id(first) in shadowed or id(second) in shadowed:
                    continue
                a, b = _range(first), _range(second)
                start, end = max(a[0], b[0]), min(a[1], b[1])
                if start <= end:
                    winner = max((first, second), key=lambda v: v.start or _BEGIN)
                    ctx.warn("W205", f"this version and the one at line {first.span.line} "
                             f"are both in force {_show(start, end)}; there the version "
                             f"at line {winner.span.line} applies", second.span,
                             "make the earlier version end the day before the later starts")
        covered = sorted((_range(v), v) for v in valid if id(v) not in shadowed)
        reach: dt.date | None = None
        for (start, end), version in covered:
            if reach is not None and reach != _END and start > reach + dt.timedelta(days=1):
                gap = (reach + dt.timedelta(days=1), start - dt.timedelta(days=1))
                ctx.warn("W206", f"no version of rule `{rule.id}` applies to services "
                         f"{_show(*gap)}", version.span,
                         f"start this version on {gap[0]}, or end the one before on "
                         f"{gap[1]}, unless the gap is meant")
            reach = end if reach is None else max(reach, end)


# ---- stage: conflicting rules -------------------------------------------------------------


def normalize(expr: Any, lets: Mapping[str, Any]) -> Any:
    """An expression as a hashable value without positions, `let` names replaced by what
    they stand for."""
    if isinstance(expr, ast.Path) and expr.parts[0] in lets:
        head = lets[expr.parts[0]]
        return head if len(expr.parts) == 1 else ("field", head, expr.parts[1:])
    if isinstance(expr, ast.Quantified):
        inner = {k: v for k, v in lets.items() if k != expr.var}
        return ("Quantified", expr.quantifier, expr.var, normalize(expr.collection, lets),
                normalize(expr.condition, inner))
    if dataclasses.is_dataclass(expr) and not isinstance(expr, type):
        return (type(expr).__name__, *(
            normalize(getattr(expr, f.name), lets) for f in dataclasses.fields(expr)
            if f.name != "span"))
    if isinstance(expr, tuple):
        return tuple(normalize(x, lets) for x in expr)
    return expr


def condition_key(version: ast.Version) -> frozenset[Any]:
    """The `and`-ed conditions of a version, normalized: equal keys, same conditions."""
    lets: dict[str, Any] = {}
    for let in version.lets:
        lets[let.name] = normalize(let.value, lets)
    return frozenset(normalize(part, lets) for condition in version.conditions
                     for part in conjuncts(condition))


@dataclass(frozen=True, slots=True)
class _Firing:
    """When and where one version of a rule can fire: what two rules must share to
    fire on the same line."""

    rule: ast.Rule
    version: ast.Version
    target: str  # line | claim | diagnosis
    codes: frozenset[str] | None  # None: any code
    filters: tuple[tuple[str, frozenset[str] | None, frozenset[str]], ...]


def _filter_sets(rule: ast.Rule) -> tuple[tuple[str, frozenset[str] | None, frozenset[str]], ...]:
    out = []
    for name in ("plan", "place_of_service"):
        included: set[str] | None = None
        excluded: set[str] = set()
        for vf in rule.filters:
            if vf.field != name:
                continue
            if vf.negated:
                excluded.update(vf.values)
            else:
                included = set(vf.values) if included is None else included & set(vf.values)
        out.append((name, None if included is None else frozenset(included),
                    frozenset(excluded)))
    return tuple(out)


def _meet(a: _Firing, b: _Firing) -> str | None:
    """What two firings share (a description), or None when they can never meet."""
    if a.target != b.target:
        return None
    shared = "every line"
    if a.target == "line":
        if a.codes is not None and b.codes is not None:
            common = a.codes & b.codes
            if not common:
                return None
            shown = sorted(common)
            shared = "code " + ", ".join(shown[:4]) + (" ..." if len(shown) > 4 else "")
        elif a.codes is not None or b.codes is not None:
            codes = a.codes if a.codes is not None else b.codes
            assert codes is not None
            shown = sorted(codes)
            shared = "code " + ", ".join(shown[:4]) + (" ..." if len(shown) > 4 else "")
    else:
        shared = "the claim" if a.target == "claim" else "every diagnosis"
    for (_n, inc_a, exc_a), (_m, inc_b, exc_b) in zip(a.filters, b.filters, strict=True):
        excluded = exc_a | exc_b
        if inc_a is not None and inc_b is not None and not ((inc_a & inc_b) - excluded):
            return None
        if (inc_a is not None) != (inc_b is not None):
            inc = inc_a if inc_a is not None else inc_b
            assert inc is not None
            if not inc - excluded:
                return None
    ra, rb = _range(a.version), _range(b.version)
    if max(ra[0], rb[0]) > min(ra[1], rb[1]):
        return None
    return shared


def _outcome(version: ast.Version) -> tuple[str, str, str, tuple[str, ...]] | None:
    o = version.outcome
    return None if o is None else (o.severity, o.group, o.carc, o.rarcs)


def _show_outcome(version: ast.Version) -> str:
    o = version.outcome
    if o is None:
        return "no outcome"
    return f"{o.severity} {o.group}-{o.carc}" + (f" with {', '.join(o.rarcs)}" if o.rarcs else "")


def _conflicts(ctx: _Context) -> None:
    groups: dict[frozenset[Any], list[_Firing]] = {}
    for _pack, rule in ctx.checked.rules:
        if rule.scope is None:
            continue
        target = {"codes": "line", "all_lines": "line"}.get(rule.scope.kind, rule.scope.kind)
        codes = None
        if rule.scope.kind == "codes":
            resolved = ctx.checked.scope_sets.get(rule.id)
            if resolved is None:
                continue
            codes = resolved.exact
        for version in rule.versions:
            if not version.conditions:
                continue
            firing = _Firing(rule, version, target, codes, _filter_sets(rule))
            groups.setdefault(condition_key(version), []).append(firing)
    reported: set[tuple[str, str]] = set()
    for firings in groups.values():
        for i, first in enumerate(firings):
            for second in firings[i + 1:]:
                pair = (first.rule.id, second.rule.id)
                if first.rule is second.rule or pair in reported:
                    continue
                shared = _meet(first, second)
                if shared is None:
                    continue
                reported.add(pair)
                _report_pair(ctx, first, second, shared)


def _report_pair(ctx: _Context, first: _Firing, second: _Firing, shared: str) -> None:
    # Reported at the rule written later, or at the one in this pack's own files.
    here, there = second, first
    if here.rule.span.file not in ctx.own_files:
        here, there = first, second
    where = f"{there.rule.span.file}:{there.rule.span.line}"
    if _outcome(first.version) != _outcome(second.version):
        ctx.warn("W301", f"rules `{here.rule.id}` ({_show_outcome(here.version)}) and "
                 f"`{there.rule.id}` ({_show_outcome(there.version)}, {where}) fire on the "
                 f"same conditions for {shared}: a line gets both outcomes",
                 _rule_span(here.rule),
                 "decide which outcome the policy means and delete or narrow the other rule")
    else:
        ctx.warn("W302", f"rules `{here.rule.id}` and `{there.rule.id}` ({where}) fire on "
                 f"the same conditions for {shared} with the same outcome: the line gets "
                 "the finding twice", _rule_span(here.rule), "delete one of them")


# ---- stage: references --------------------------------------------------------------------


def _references(ctx: _Context) -> None:
    hint = ('add `reference "..."` naming the policy text the rule encodes (manual '
            "chapter, LCD, contract section)")
    for _pack, rule in ctx.checked.rules:
        missing = [v for v in rule.versions if v.reference is None]
        if not missing:
            continue
        if len(missing) == len(rule.versions):
            ctx.warn("W401", f"rule `{rule.id}` has no reference", _rule_span(rule), hint)
        else:
            for version in missing:
                ctx.warn("W401", f"the version of rule `{rule.id}` "
                         f"{_show(*_range(version))} has no reference", version.span, hint)


def _partial_data(ctx: _Context) -> None:
    """W402 (content helper, issue 11 section 1): deny/reject resting on a partial list."""
    from cleanclaim.dsl.valuesets import partial_notes

    for _pack, rule in ctx.checked.rules:
        for version in rule.versions:
            if version.outcome is None or version.outcome.severity not in ("deny", "reject"):
                continue
            notes = partial_notes(version.conditions, version.lets, ctx.checked.valuesets,
                                  ctx.checked.literal_sets, {})
            if notes:
                ctx.warn("W402", f"rule `{rule.id}` {version.outcome.severity}s when a code is "
                         f"not found in partial data: {'; '.join(notes)}", _rule_span(rule),
                         "its findings are reviews until the list is complete; complete the "
                         "list (e.g. `cleanclaim data import`), or write the outcome as "
                         "`review`")


def _adjustment_usage(ctx: _Context) -> None:
    """W403/W404 (issue 13.14): X12 usage notes of the outcome's codes (unknown or retired
    codes are the checker's E306/E307)."""
    for _pack, rule in ctx.checked.rules:
        for version in rule.versions:
            outcome = version.outcome
            if outcome is None:
                continue
            for problem in adjustment.check_outcome(
                    outcome.group, outcome.carc, outcome.rarcs, severity=outcome.severity,
                    in_force_until=version.end):
                if problem.level == "warning":
                    spans = outcome.code_spans
                    span = spans[problem.index] if problem.index < len(spans) else outcome.span
                    ctx.warn(problem.code, problem.message, span, problem.hint)


def _exceptions(ctx: _Context) -> None:
    """W207 (issue 13.9, lang): exceptions that can never apply (dsl/exceptions.py)."""
    from cleanclaim.dsl.exceptions import never_apply

    for span, message in never_apply(ctx.checked):
        ctx.warn("W207", message, span, "drop the exception, or name what it should be")


STAGES: tuple[tuple[str, Stage], ...] = (
    ("value-sets", _value_sets),
    ("scopes", _scopes),
    ("versions", _versions),
    ("exceptions", _exceptions),
    ("conflicts", _conflicts),
    ("references", _references),
    ("partial-data", _partial_data),
    ("adjustment-codes", _adjustment_usage),
    ("optional-reads", lambda ctx: lint_reads.unguarded_reads(ctx.checked, ctx.warn)),
    ("plans", lambda ctx: lint_reads.unused_plans(ctx.checked, ctx.warn)),
)


# ---- what to lint: packs, folders, files --------------------------------------------------


class LintTargetError(Exception):
    """A lint target that is neither a pack, a folder of packs nor a policy file."""


def _real_paths(sources: PackSources) -> dict[str, Path]:
    return {display_path(p): p for pack in sources.packs
            for p in pack_policy_files(pack.root)}


def _read_sources(report: LintReport, sources: PackSources) -> None:
    report.sources.update(sources.files)
    for pack in sources.packs:
        for csv in pack.root.glob("*.csv"):
            try:
                report.sources[display_path(csv)] = csv.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                continue


def _includers_use(roots: Sequence[Path], library: str) -> set[str]:
    """Names used by the packs (under `roots`) that include the library `library`."""
    names: set[str] = set()
    for pack_id in list_packs(roots):
        if pack_id == library:
            continue
        sources = load_sources(roots, pack_id)
        if sources is None or library not in {p.id for p in sources.packs}:
            continue
        trees = []
        for name, text in sources.files.items():
            if sources.file_pack.get(name) != library:
                tree, _errors = parse_policy(text, name)
                if tree is not None:
                    trees.append(tree)
        names |= used_names(trees)
    return names


def lint(
    targets: Sequence[Path | str],
    env: CheckEnv,
    *,
    roots: Sequence[Path],
    today: dt.date,
    table_loaders: Mapping[str, TableLoader] | None = None,
) -> LintReport:
    """Lint packs and policy files.

    A target is a pack id (looked up in `roots`), a pack folder (with pack.yaml), a folder
    of pack folders, or a `.policy` file: a file in a pack folder is linted with its pack
    and only its own problems are shown; a file outside any pack is linted alone, as a
    pack named after its folder. No target: every pack under `roots`.
    Raises `LintTargetError` for a target that is none of these.
    """
    report = LintReport()
    jobs: list[tuple[Sequence[Path], str, str | None]] = []  # (roots, pack id, only file)
    loose: list[Path] = []
    for target in targets:
        jobs_for, files = _resolve(target, roots)
        jobs.extend(jobs_for)
        loose.extend(files)
    if not targets:
        jobs = [(roots, pack_id, None) for pack_id in list_packs(roots)]
        if not jobs:  # never "no problems" for folders that hold no pack
            raise LintTargetError("no policy pack in " + ", ".join(map(str, roots)))
    for pack_roots, pack_id, only in jobs:
        sources = load_sources(pack_roots, pack_id)
        if sources is None:
            raise LintTargetError(f"no pack `{pack_id}`")
        used = _includers_use(pack_roots, pack_id) if sources.manifest.library else set()
        problems = lint_pack(sources, env, _real_paths(sources), today=today,
                             used_elsewhere=used, table_loaders=table_loaders)
        if only is not None:
            problems = [p for p in problems if p.span.file == only]
        _read_sources(report, sources)
        report.add(problems)
        report.checked.append(only or pack_id)
    for path in loose:
        sources = _loose_file(path)
        problems = lint_pack(sources, env, {display_path(path): path}, today=today,
                             table_loaders=table_loaders)
        report.sources.update(sources.files)
        report.add(problems)
        report.checked.append(display_path(path))
    return report


def _resolve(target: Path | str, roots: Sequence[Path]
             ) -> tuple[list[tuple[Sequence[Path], str, str | None]], list[Path]]:
    path = Path(target)
    if path.is_file():
        if path.suffix != ".policy":
            raise LintTargetError(f"{path}: not a .policy file")
        folder = _named(path.parent)
        if (folder / "pack.yaml").is_file():
            return [([folder.parent], folder.name, display_path(folder / path.name))], []
        return [], [path]
    if path.is_dir():
        folder = _named(path)
        if (folder / "pack.yaml").is_file():
            return [([folder.parent], folder.name, None)], []
        packs = list_packs([folder])
        if packs:
            return [([folder], pack_id, None) for pack_id in packs], []
        files = sorted(path.rglob("*.policy"))
        if files:
            return [], files
        raise LintTargetError(f"{path}: no pack, pack folder or .policy file here")
    if isinstance(target, str) and "/" not in target and target in list_packs(roots):
        return [(roots, target, None)], []
    raise LintTargetError(f"{target}: no such pack, folder or file")


def _named(folder: Path) -> Path:
    """A folder as given when it has a name (paths in messages stay as the user wrote
    them), else resolved (`.` has no name, and a pack is named after its folder)."""
    return folder if folder.name else folder.resolve()


def _loose_file(path: Path) -> PackSources:
    """A policy file outside any pack, as a pack of one file named after its folder."""
    folder = path.resolve().parent
    pack_id = folder.name
    manifest = PackManifest(pack_id, pack_id, "0", False, (), (), folder, folder / "pack.yaml")
    name = display_path(path)
    sources = PackSources(manifest, [manifest])
    try:
        sources.files[name] = path.read_text(encoding="utf-8")
        sources.file_pack[name] = pack_id
    except (OSError, UnicodeDecodeError) as exc:
        sources.errors.append(PolicyError("E503", f"cannot read policy file: {exc}",
                                          ast.Span(name, 1, 1, 1, 2)))
    return sources


def all_codes() -> dict[str, tuple[str, str]]:
    """Every code lint can report: code -> (name, severity)."""
    codes = {code: (name, "error") for code, name in ERROR_CODES.items()}
    codes.update({code: (name, "warning") for code, (name, _what) in LINT_CODES.items()})
    return codes
