"""Semantic checks over a pack's syntax trees, as an ordered table of named stages.

Every stage records errors and goes on, so one run reports every problem of a pack,
sorted by position. What the checks learn (the type of each expression, the resolved
value sets) is kept in a `CheckedPack` for the compiler.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.codesets import adjustment
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.exceptions import check_exceptions
from cleanclaim.dsl.history import COUNTER, Counter, check_counter_calls, check_counters
from cleanclaim.dsl.pack import (
    PackSources,
    TableDecl,
    all_tables,
    display_path,
)
from cleanclaim.dsl.parsed import parse_expression_cached, parse_policy_file_cached
from cleanclaim.dsl.tables import DataTableSchema, LookupTable, check_tables, infer_read
from cleanclaim.dsl.valuesets import CodeSet, infer_kind, read_csv_column, resolve_items
from cleanclaim.dsl.vocabulary import OWNERS, ROOT_CAUSES

_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
_FIELD_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


@dataclass(slots=True)
class CheckEnv:
    """What the language can see beyond its own text: functions and table formats, and
    value sets given from outside (the engine's imported CMS lists, engine/refdata/),
    which stand for the pack's declaration of the same name and everything built on it."""

    functions: Mapping[str, T.FunctionSpec]
    table_formats: frozenset[str] = frozenset()
    valuesets: Mapping[str, CodeSet] = field(default_factory=dict)
    # Data table formats whose rows rules read by key (`mpfs[line.code].global_days`):
    # format -> keys and columns (dsl/tables.py).
    table_schemas: Mapping[str, DataTableSchema] = field(default_factory=dict)


@dataclass(slots=True)
class CheckedPack:
    sources: PackSources
    files: list[ast.PolicyFile] = field(default_factory=list)
    valuesets: dict[str, CodeSet] = field(default_factory=dict)
    valueset_decls: dict[str, ast.ValueSet] = field(default_factory=dict)
    rules: list[tuple[str, ast.Rule]] = field(default_factory=list)  # (pack id, rule)
    types: dict[int, T.Type] = field(default_factory=dict)  # id(expr) -> type
    literal_sets: dict[int, CodeSet] = field(default_factory=dict)  # id(CodeList) -> set
    # id(message Text) -> the `{field}` places of its template: (start, end, path, type)
    templates: dict[int, list[tuple[int, int, ast.Expr, T.Type]]] = field(default_factory=dict)
    scope_sets: dict[str, CodeSet] = field(default_factory=dict)  # rule id -> codes
    tables: dict[str, TableDecl] = field(default_factory=dict)
    errors: list[PolicyError] = field(default_factory=list)
    real_paths: dict[str, Path] = field(default_factory=dict)
    # Value sets a syntax error blanked out: their users are not reported as unknown too.
    broken_names: set[str] = field(default_factory=set)
    # Claim-history counters by name (dsl/history.py).
    counters: dict[str, Counter] = field(default_factory=dict)
    # Lookup tables the policy files declare (`table NAME = ...`, dsl/tables.py): the
    # declarations, and the tables read without errors.
    lookup_decls: dict[str, ast.TableDef] = field(default_factory=dict)
    lookups: dict[str, LookupTable] = field(default_factory=dict)
    # `except rule`: rule index -> the indices of the rules whose findings suppress its
    # own (dsl/exceptions.py).
    excepts: dict[int, tuple[int, ...]] = field(default_factory=dict)


Stage = Callable[[CheckedPack, CheckEnv], None]


def check_pack(sources: PackSources, env: CheckEnv, real_paths: Mapping[str, Path]) -> CheckedPack:
    """Run every stage over the pack; `errors` of the result holds all problems found."""
    checked = CheckedPack(sources, real_paths=dict(real_paths))
    checked.errors.extend(sources.errors)
    for _name, stage in STAGES:
        stage(checked, env)
    checked.errors.sort(key=PolicyError.sort_key)
    return checked


# ---- stage: parse --------------------------------------------------------------------


def _parse(checked: CheckedPack, env: CheckEnv) -> None:
    for name, text in checked.sources.files.items():
        parsed = parse_policy_file_cached(text, name)
        checked.errors.extend(parsed.errors)
        checked.broken_names |= parsed.broken_names
        if parsed.tree is not None:
            checked.files.append(parsed.tree)


# ---- stage: declarations -------------------------------------------------------------


def _declarations(checked: CheckedPack, env: CheckEnv) -> None:
    checked.tables = all_tables(checked.sources)
    manifest = display_path(checked.sources.manifest.manifest_file)
    for table in checked.tables.values():
        if env.table_formats and table.format not in env.table_formats:
            checked.errors.append(PolicyError(
                "E501", f"table `{table.name}` has unknown format `{table.format}`",
                table.format_span or ast.Span(manifest, 1, 1, 1, 2),
                did_you_mean(table.format, env.table_formats)
                or "formats: " + ", ".join(sorted(env.table_formats))))
    seen_rules: dict[str, ast.Rule] = {}
    for tree in checked.files:
        pack_id = checked.sources.file_pack.get(tree.path, checked.sources.manifest.id)
        for vs in tree.valuesets:
            if vs.name in checked.valueset_decls:
                first = checked.valueset_decls[vs.name].span
                checked.errors.append(PolicyError(
                    "E105", f"value set `{vs.name}` is already defined at "
                    f"{first.file}:{first.line}", vs.span, "give one of them another name"))
                continue
            checked.valueset_decls[vs.name] = vs
        for rule in tree.rules:
            if rule.id in seen_rules:
                first = seen_rules[rule.id].span
                checked.errors.append(PolicyError(
                    "E106", f"rule `{rule.id}` is already defined at {first.file}:{first.line}",
                    rule.span, "rule ids must be unique within a pack and its includes"))
                continue
            seen_rules[rule.id] = rule
            checked.rules.append((pack_id, rule))


# ---- stage: value sets ---------------------------------------------------------------


def _value_sets(checked: CheckedPack, env: CheckEnv) -> None:
    resolving: list[str] = []
    # `partial:` in a manifest (content helper, issue 11 section 1): the named value sets
    # are marked partial as they resolve, so that sets built from them are partial too.
    partial: dict[str, str] = {}
    for pack in checked.sources.packs:
        for name, where, span in pack.partial:
            if name not in checked.valueset_decls:
                checked.errors.append(PolicyError(
                    "E101", f"`partial` names `{name}`, which no policy file of the pack "
                    "defines", span or ast.Span(display_path(pack.manifest_file), 1, 1, 1, 2),
                    did_you_mean(name, checked.valueset_decls)))
                continue
            partial[name] = where
    # Value sets that did not resolve: each problem is reported once, by the first
    # resolution (a cycle of two sets is one error, not one per member).
    failed: set[str] = set()
    for name, given in env.valuesets.items():
        if name in checked.valueset_decls:
            checked.valuesets[name] = given

    def resolve(name: str, span: ast.Span) -> CodeSet | None:
        if name in checked.valuesets:
            return checked.valuesets[name]
        decl = checked.valueset_decls.get(name)
        if decl is None or name in failed:
            return None
        if name in resolving:
            checked.errors.append(PolicyError(
                "E108", f"value set `{name}` refers to itself: "
                f"{' -> '.join([*resolving, name])}", span,
                "a value set cannot include itself, directly or through other value sets"))
            return None
        resolving.append(name)
        result = resolve_terms(checked, decl.terms, None, resolve)
        resolving.pop()
        if result is not None and name in partial:
            result = result.declared_partial(partial[name])
        if result is not None:
            checked.valuesets[name] = result
        else:
            failed.add(name)
        return result

    for name, decl in checked.valueset_decls.items():
        resolve(name, decl.span)


def resolve_terms(
    checked: CheckedPack,
    terms: tuple[ast.SetTerm, ...],
    expected_kind: str | None,
    resolve: Callable[[str, ast.Span], CodeSet | None],
) -> CodeSet | None:
    """Resolve the union `a + [b, c] + csv ...` into one code set of one kind."""
    parts: list[tuple[CodeSet, ast.Span]] = []
    ok = True
    for term in terms:
        if isinstance(term, ast.SetRef):
            found = resolve(term.name, term.span)
            if found is None:
                if (term.name not in checked.valueset_decls
                        and term.name not in checked.broken_names):
                    checked.errors.append(PolicyError(
                        "E101", f"unknown value set `{term.name}`", term.span,
                        did_you_mean(term.name, checked.valueset_decls)))
                ok = False
                continue
            parts.append((found, term.span))
        elif isinstance(term, ast.SetLiteral):
            texts = [(i.text, i.span) for i in term.codes.items]
            kind = term.kind or expected_kind or infer_kind(t for t, _ in texts)
            if kind is None:
                checked.errors.append(PolicyError(
                    "E305", "cannot tell what kind of codes this list holds", term.span,
                    "mark it: `codes [...]`, `icd10 [...]` or `modifiers [...]`"))
                ok = False
                continue
            parts.append((resolve_items(kind, texts, checked.errors), term.span))
        else:
            resolved = _resolve_csv(checked, term, expected_kind)
            if resolved is None:
                ok = False
                continue
            parts.append((resolved, term.span))
    if not ok or not parts:
        return None
    result = parts[0][0]
    for part, span in parts[1:]:
        if part.kind != result.kind:
            checked.errors.append(PolicyError(
                "E305", f"cannot join {T.KIND_WORDS[part.kind]} to a set of "
                f"{T.KIND_WORDS[result.kind]}", span, "a value set holds one kind of code"))
            return None
        result = result.union(part)
    return result


def _resolve_csv(checked: CheckedPack, term: ast.SetCsv, expected: str | None) -> CodeSet | None:
    real = checked.real_paths.get(term.span.file)
    base = real.parent if real is not None else Path(term.span.file).parent
    path = base / term.file
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        reason = getattr(exc, "strerror", None) or str(exc)
        checked.errors.append(PolicyError("E304", f"cannot read `{term.file}`: {reason}",
                                          term.span))
        return None
    values, problem = read_csv_column(text, term.column)
    if problem is not None:
        checked.errors.append(PolicyError("E304", f"`{term.file}`: {problem}", term.span))
        return None
    kind = term.kind or expected or infer_kind(v for v, _line, _column in values)
    if kind is None:
        checked.errors.append(PolicyError(
            "E305", f"cannot tell what kind of codes `{term.file}` holds", term.span,
            "mark it: `icd10 csv ...` or `codes csv ...`"))
        return None
    # Problems inside the CSV are reported at the CSV's own lines and columns, and the
    # CSV's text goes with the sources so that they are shown with it.
    csv_name = f"{term.span.file.rsplit('/', 1)[0]}/{term.file}" if "/" in term.span.file \
        else term.file
    checked.sources.extra_sources[csv_name] = text
    items = [(v, ast.Span(csv_name, line, column, line, column + len(v)))
             for v, line, column in values]
    return resolve_items(kind, items, checked.errors)


# ---- stage: rules --------------------------------------------------------------------


def _rules(checked: CheckedPack, env: CheckEnv) -> None:
    for pack_id, rule in checked.rules:
        _check_rule(checked, env, pack_id, rule)


def _check_rule(checked: CheckedPack, env: CheckEnv, pack_id: str, rule: ast.Rule) -> None:
    errors = checked.errors
    if not rule.id.startswith(pack_id + "/") or not re.fullmatch(r"[a-z0-9][a-z0-9_/.-]*", rule.id):
        errors.append(PolicyError(
            "E408", f"rule id `{rule.id}` must start with its pack id `{pack_id}/` and use "
            "lower-case letters, digits, `-`, `_` and `/`", rule.span,
            f"e.g. rule \"{pack_id}/{rule.id.split('/')[-1].lower()}\""))
    for what, span in rule.misplaced:
        errors.append(PolicyError(
            "E405", f"`{what}` cannot stand here", span,
            "title, applies to, plan, place of service, root cause, owner, kind and "
            "`except rule` come before the first `effective`"))
    if rule.scope is None:
        errors.append(PolicyError(
            "E404", f"rule `{rule.id}` says nothing about what it applies to", rule.span,
            "add `applies to codes <value set>`, `applies to all lines`, `applies to claim` "
            "or `applies to each diagnosis`"))
        scope_kind = "line"
    else:
        scope_kind = {"codes": "line", "all_lines": "line", "claim": "claim",
                      "diagnosis": "diagnosis"}[rule.scope.kind]
        if rule.scope.kind == "codes":
            found = resolve_terms(checked, rule.scope.codes, "codes",
                                  lambda n, s: checked.valuesets.get(n))
            if found is not None:
                if found.kind != "codes":
                    errors.append(PolicyError(
                        "E201", "a rule applies to procedure codes, not to "
                        f"{T.KIND_WORDS[found.kind]}", rule.scope.span,
                        "use a `codes` value set"))
                else:
                    checked.scope_sets[rule.id] = found
    if rule.root_cause is None:
        errors.append(PolicyError("E401", f"rule `{rule.id}` has no root cause", rule.span,
                                  "add e.g. `root cause coding`; one of: "
                                  + ", ".join(ROOT_CAUSES)))
    elif rule.root_cause.value not in ROOT_CAUSES:
        errors.append(PolicyError(
            "E401", f"unknown root cause `{rule.root_cause.value}`", rule.root_cause.span,
            did_you_mean(rule.root_cause.value, ROOT_CAUSES) or "one of: "
            + ", ".join(ROOT_CAUSES)))
    if rule.owner is not None and rule.owner.value not in OWNERS:
        errors.append(PolicyError(
            "E402", f"unknown owner `{rule.owner.value}`", rule.owner.span,
            did_you_mean(rule.owner.value, OWNERS) or "one of: " + ", ".join(OWNERS)))
    if rule.kind is not None and rule.kind.value not in ROOT_CAUSES:
        errors.append(PolicyError(
            "E401", f"unknown finding kind `{rule.kind.value}`", rule.kind.span,
            did_you_mean(rule.kind.value, ROOT_CAUSES)))
    for version in rule.versions:
        if version.start and version.end and version.end < version.start:
            errors.append(PolicyError(
                "E406", f"version ends ({version.end}) before it starts ({version.start})",
                version.span, "swap the dates"))
        if version.outcome is None:
            errors.append(PolicyError(
                "E403", f"rule `{rule.id}` has no outcome" + (
                    f" for the version effective {version.start}" if version.start else ""),
                version.span, "add e.g. `then deny CO-97 with M15`"))
        if rule.filters:
            for vf in rule.filters:
                if not vf.values:
                    errors.append(PolicyError("E001", "a filter needs values", vf.span))
        scope_env: dict[str, T.Type] = dict(T.ROOTS[scope_kind])
        for let in version.lets:
            scope_env[let.name] = _infer(checked, env, let.value, scope_env, scope_kind)
        if len(version.conditions) == len(version.exceptions):  # `except when`s only
            errors.append(PolicyError(
                "E403", f"rule `{rule.id}` has no `when` condition", version.span,
                "add `when <condition>`; a rule that always fires says `when true`"))
        for condition in version.conditions:
            found_type = _infer(checked, env, condition, scope_env, scope_kind)
            if found_type.name not in ("bool", "any"):
                errors.append(PolicyError(
                    "E203", f"a `when` condition must be true or false, not {found_type}",
                    _span_of(condition), "compare it, e.g. `line.units > 1`"))
        if version.message is not None:
            _check_template(checked, env, version.message, scope_env, scope_kind)
        if version.outcome is not None:
            _check_codes(checked, version)


def _check_codes(checked: CheckedPack, version: ast.Version) -> None:
    """E306/E307 (tools, issue 13.14): the outcome's CARC and RARCs exist and are current."""
    outcome = version.outcome
    assert outcome is not None
    for problem in adjustment.check_outcome(outcome.group, outcome.carc, outcome.rarcs,
                                            severity=outcome.severity,
                                            in_force_until=version.end):
        if problem.level != "error":
            continue  # usage warnings are lint's (W403/W404)
        spans = outcome.code_spans
        span = spans[problem.index] if problem.index < len(spans) else outcome.span
        checked.errors.append(PolicyError(problem.code, problem.message, span, problem.hint))


def _check_template(checked: CheckedPack, env: CheckEnv, message: ast.Text,
                    scope_env: dict[str, T.Type], scope_kind: str) -> None:
    if id(message) in checked.templates:
        return  # a message shared by several dated versions: its places are known
    offsets = _raw_offsets(checked, message)
    for match in _TEMPLATE_FIELD.finditer(message.value):
        text = match.group(1).strip()
        line = message.span.line
        span = ast.Span(message.span.file, line, message.span.column + offsets[match.start()],
                        line, message.span.column + offsets[match.end()])
        shown: ast.Expr
        if _FIELD_PATH.match(text):
            shown = ast.Path(tuple(text.split(".")), span)
        else:  # an expression: `{days_between(line.service_date, claim.received_date)}`
            # (through the parse cache: a warm start imports no parser)
            inner = match.group(1)
            at = offsets[match.start(1)] + len(inner) - len(inner.lstrip())
            parsed, problems = parse_expression_cached(text, message.span.file, line,
                                                       message.span.column + at)
            if parsed is None or problems:
                for problem in problems or [PolicyError("E109", "", span)]:
                    why = problem.message
                    if problem.code == "E002":  # the text in the braces ended, not the file
                        why = why.replace("unexpected end of file", "it ends early")
                    checked.errors.append(PolicyError(
                        "E109", f"`{{{text}}}` in the message is not a field, a name or an "
                        f"expression: {why}", problem.span,
                        (problem.hint if problem.code != "E002" else None)
                        or "a message shows values, e.g. {line.code}, {due} or "
                        "{days_between(line.service_date, claim.received_date)}"))
                continue
            shown = parsed
        found = _infer(checked, env, shown, scope_env, scope_kind, template=True)
        if not _showable(found):
            instead = ("name the value set in the text instead" if found.name == "set"
                       else "show one of its fields, e.g. {line.code}")
            checked.errors.append(PolicyError(
                "E109", f"`{{{text}}}` is {T.one(found)}, which a message cannot show", span,
                f"a message shows single values or lists of them; {instead}"))
            continue
        checked.templates.setdefault(id(message), []).append(
            (match.start(), match.end(), shown, found))


def _showable(t: T.Type) -> bool:
    """Whether a message can show a value of type `t`: a scalar or a list of scalars."""
    if t.name == "list":
        return t.elem is None or _showable(t.elem)
    return t.name not in T.RECORDS and t.name not in ("set", "table")


def _raw_offsets(checked: CheckedPack, text: ast.Text) -> list[int]:
    """For each character of a string clause's value (and its end), the offset from the
    opening quote in the source, where escapes such as \\" take two characters."""
    plain = list(range(1, len(text.value) + 2))
    source = checked.sources.files.get(text.span.file)
    if source is None or text.span.end_line != text.span.line:
        return plain
    lines = source.removeprefix("\ufeff").splitlines()
    if text.span.line > len(lines):
        return plain
    raw = lines[text.span.line - 1][text.span.column - 1:text.span.end_column - 1]
    offsets: list[int] = []
    i = 1
    while i < len(raw) - 1:
        offsets.append(i)
        i += 2 if raw[i] == "\\" else 1
    offsets.append(i)
    return offsets if len(offsets) == len(plain) else plain


def _span_of(expr: ast.Expr) -> ast.Span:
    return expr.span


# ---- expression types ----------------------------------------------------------------


def _compatible(a: T.Type, b: T.Type) -> bool:
    if "any" in (a.name, b.name):
        return True
    if a.name == b.name and a.name not in ("list", "set"):
        return True
    if a.name in T.NUMERIC and b.name in T.NUMERIC:
        return True
    return a.name in T.CODE_LIKE and b.name in T.CODE_LIKE


_SET_KIND_OF = {"code": "codes", "icd10": "icd10", "modifier": "modifiers", "str": "str"}


def _infer(checked: CheckedPack, env: CheckEnv, expr: ast.Expr, scope: dict[str, T.Type],
           scope_kind: str, template: bool = False, element_kind: str | None = None) -> T.Type:
    result = _infer_inner(checked, env, expr, scope, scope_kind, template, element_kind)
    checked.types[id(expr)] = result
    return result


def _infer_inner(checked: CheckedPack, env: CheckEnv, expr: ast.Expr, scope: dict[str, T.Type],
                 scope_kind: str, template: bool, element_kind: str | None) -> T.Type:
    errors = checked.errors

    def infer(e: ast.Expr, kind: str | None = None) -> T.Type:
        return _infer(checked, env, e, scope, scope_kind, template, kind)

    if isinstance(expr, ast.Literal_):
        v = expr.value
        if isinstance(v, bool):
            return T.BOOL
        if isinstance(v, str):
            return T.STR
        if isinstance(v, int) or v.__class__.__name__ == "Decimal":
            return T.NUMBER
        return T.DATE
    if isinstance(expr, ast.CodeList) and expr.quoted:  # text values, compared exactly
        checked.literal_sets[id(expr)] = CodeSet("str", frozenset(i.text for i in expr.items),
                                                 ())
        return T.set_of("str")
    if isinstance(expr, ast.CodeList):
        kind = element_kind or infer_kind(i.text for i in expr.items) or "str"
        resolved = resolve_items(kind, [(i.text, i.span) for i in expr.items], errors)
        checked.literal_sets[id(expr)] = resolved
        return T.set_of(kind)
    if isinstance(expr, ast.Path):
        return _infer_path(checked, env, expr, scope, scope_kind, template)
    if isinstance(expr, ast.Not):
        t = infer(expr.operand)
        _expect_bool(checked, t, expr.operand)
        return T.BOOL
    if isinstance(expr, ast.BoolOp):
        for side in (expr.left, expr.right):
            _expect_bool(checked, infer(side), side)
        return T.BOOL
    if isinstance(expr, ast.Compare):
        left, right = infer(expr.left), infer(expr.right)
        if not _compatible(left, right):
            errors.append(PolicyError("E201", f"cannot compare {left} with {right}", expr.span))
        elif expr.op not in ("==", "!=") and left.name in T.CODE_LIKE | {"bool"}:
            errors.append(PolicyError(
                "E201", f"`{expr.op}` needs numbers or dates, not {left}", expr.span,
                "compare codes with == or `in`"))
        return T.BOOL
    if isinstance(expr, ast.Arith):
        # An inline code list on either side of `a + b` / `a - b` takes the kind of the
        # codes looked up, like a list that stands alone.
        left, right = infer(expr.left, element_kind), infer(expr.right, element_kind)
        if left.name in T.NUMERIC and right.name in T.NUMERIC:
            return T.Type("money" if "money" in (left.name, right.name) else "number",
                          nullable=left.nullable or right.nullable)
        if left.name == "date" and right.name in T.NUMERIC:
            return T.Type("date", nullable=left.nullable or right.nullable)
        if left.name == "date" and right.name == "date" and expr.op == "-":
            return T.Type("number", nullable=left.nullable or right.nullable)
        if left.name == "set" and right.name == "set":
            # `a + b` joins two sets, `a - b` takes the codes of b out of a: one kind.
            if left.elem != right.elem:
                words = _kind_words(right), _kind_words(left)
                errors.append(PolicyError(
                    "E201", f"cannot join {words[0]} to a set of {words[1]}" if expr.op == "+"
                    else f"cannot take {words[0]} out of a set of {words[1]}",
                    expr.span, "a value set holds one kind of code"))
            return left
        errors.append(PolicyError("E201", f"cannot compute {left} {expr.op} {right}", expr.span,
                                  "dates take a number of days: add_days(d, 30) or d + 30"))
        return T.ANY
    if isinstance(expr, ast.Membership):
        element = infer(expr.element)
        _check_container(checked, env, expr.container, element, scope, scope_kind, template)
        return T.BOOL
    if isinstance(expr, ast.Presence):
        found = infer(expr.operand)
        if not isinstance(expr.operand, ast.Path | ast.Call | ast.Arith | ast.TableRead):
            errors.append(PolicyError(
                "E201", f"`is {'missing' if expr.missing else 'present'}` needs a field, a name "
                f"or a function result, not {T.one(found)}", expr.operand.span,
                "only a value read from the claim can be missing, e.g. `line.units is missing`"))
        return T.BOOL
    if isinstance(expr, ast.Quantified):
        coll = infer(expr.collection)
        if coll.name != "list":
            errors.append(PolicyError("E201", f"`{expr.quantifier}` needs a list, not {coll}",
                                      expr.collection.span))
            elem = T.ANY
        else:
            elem = coll.elem or T.ANY
        inner = dict(scope)
        inner[expr.var] = elem
        cond = _infer(checked, env, expr.condition, inner, scope_kind, template)
        _expect_bool(checked, cond, expr.condition)
        return T.NUMBER if expr.quantifier == "count" else T.BOOL
    if isinstance(expr, ast.TableRead):
        return infer_read(checked, env, expr, infer)
    if isinstance(expr, ast.QuantifiedIn):
        coll = infer(expr.collection)
        if coll.name != "list":
            errors.append(PolicyError("E201", f"`{expr.quantifier} of` needs a list, not {coll}",
                                      expr.collection.span))
            elem = T.ANY
        else:
            elem = coll.elem or T.ANY
        _check_container(checked, env, expr.container, elem, scope, scope_kind, template)
        return T.NUMBER if expr.quantifier == "count" else T.BOOL
    assert isinstance(expr, ast.Call)
    return _infer_call(checked, env, expr, scope, scope_kind, template)


def _kind_words(t: T.Type) -> str:
    """The codes of a set type, as messages name them: "ICD-10-CM codes"."""
    kind = t.elem.name if t.elem is not None else "str"
    return T.KIND_WORDS.get(kind, kind)


def _expect_bool(checked: CheckedPack, t: T.Type, expr: ast.Expr) -> None:
    if t.name not in ("bool", "any"):
        checked.errors.append(PolicyError(
            "E203", f"expected a condition (true or false), found {t}", expr.span))


def _check_container(checked: CheckedPack, env: CheckEnv, container: ast.Expr,
                     element: T.Type, scope: dict[str, T.Type], scope_kind: str,
                     template: bool) -> None:
    kind = _SET_KIND_OF.get(element.name)
    t = _infer(checked, env, container, scope, scope_kind, template, element_kind=kind)
    if t.name == "any" or element.name == "any":
        return
    if t.name == "table" and t.table_format == "lookup":
        assert isinstance(container, ast.Path)
        lookup = checked.lookups.get(container.parts[0])
        if lookup is not None and len(lookup.keys) != 1:
            checked.errors.append(PolicyError(
                "E202", f"`in {lookup.name}` asks for one key; the table is keyed by "
                f"{len(lookup.keys)} ({', '.join(lookup.keys)})", container.span,
                f"read a column instead: `{lookup.name}[a, b].column is present`"))
        if element.name not in (*T.CODE_LIKE, *T.NUMERIC, "date"):
            checked.errors.append(PolicyError(
                "E201", f"{T.one(element)} is never a key of a table", container.span))
        return
    if isinstance(container, ast.CodeList) and container.quoted:
        if element.name in ("code", "icd10", "modifier"):
            example = {"code": "[93000, 93005]", "icd10": "[R07.9, I20.*]",
                       "modifier": "[26, TC]"}[element.name]
            checked.errors.append(PolicyError(
                "E201", f"{T.one(element)} is looked up in a list of codes, not of quoted "
                "strings", container.span, f"write the codes without quotes: {example}"))
        elif element.name != "str":
            checked.errors.append(PolicyError(
                "E201", f"{T.one(element)} is never in a list of strings", container.span,
                "a list of quoted strings holds text such as states or places of service; "
                "compare numbers and dates with ==, < or >"))
        return
    if t.name == "set":
        set_kind = t.elem.name if t.elem else "str"
        if element.name not in T.CODE_LIKE:
            checked.errors.append(PolicyError(
                "E201", f"{T.one(element)} cannot be looked up in a code set", container.span))
        elif kind not in (set_kind, "str") and set_kind != "str":
            checked.errors.append(PolicyError(
                "E201", f"{T.one(element)} is never in {T.one(t)}", container.span,
                "check the value set: diagnoses go in `icd10` sets, procedures in `codes` "
                "sets"))
        return
    if t.name == "list":
        if t.elem is not None and not _compatible(t.elem, element):
            checked.errors.append(PolicyError(
                "E201", f"{T.one(element)} is never in {T.one(t)}", container.span))
        return
    checked.errors.append(PolicyError(
        "E201", f"`in` needs a value set, a code list or a list, not {t}", container.span))


# How a rule's scope is written after `applies to`, by the kind of scope.
_SCOPE_WORDS = {"line": "lines", "claim": "claim", "diagnosis": "each diagnosis"}


def _infer_path(checked: CheckedPack, env: CheckEnv, expr: ast.Path,
                scope: dict[str, T.Type], scope_kind: str, template: bool) -> T.Type:
    head = expr.parts[0]
    if head in scope:
        current = scope[head]
    elif head in checked.valueset_decls and len(expr.parts) == 1:
        found = checked.valuesets.get(head)
        return T.set_of(found.kind) if found else T.ANY
    elif head in checked.lookup_decls and len(expr.parts) == 1:
        return T.table("lookup")
    elif head in checked.tables and len(expr.parts) == 1:
        return T.table(checked.tables[head].format)
    elif head in checked.counters and len(expr.parts) == 1:
        return COUNTER
    elif head in checked.broken_names and head not in checked.valueset_decls:
        return T.ANY  # a value set with a syntax error, reported there
    else:
        code = "E109" if template else "E104"
        roots = ", ".join(T.ROOTS[scope_kind])
        elsewhere = [k for k, names in T.ROOTS.items() if head in names]
        if head in checked.valueset_decls:
            message, hint = f"value set `{head}` has no fields", None
        elif elsewhere:
            message = (f"`{head}` cannot be used in a rule that applies to "
                       f"{_SCOPE_WORDS[scope_kind]}")
            hint = (f"in this rule, names start with {roots}, a `let` name or a value set; "
                    f"`{head}` is for rules that apply to "
                    + " or ".join(_SCOPE_WORDS[k] for k in elsewhere))
        else:
            message = f"unknown name `{head}`"
            hint = did_you_mean(head, [*scope, *checked.valueset_decls, *checked.tables,
                                       *checked.counters, *checked.lookup_decls]) or (
                f"names start with {roots}, a `let` name or a value set")
        checked.errors.append(PolicyError(code, message, expr.span, hint))
        return T.ANY
    for index, part in enumerate(expr.parts[1:], start=1):
        if current.name == "any":
            return T.ANY
        fields = T.RECORDS.get(current.name)
        if fields is None or part not in fields:
            where = ".".join(expr.parts[:index])
            checked.errors.append(PolicyError(
                "E102", f"`{where}` has no field `{part}`", expr.span,
                did_you_mean(part, fields or {}) or (
                    f"fields of {where}: {', '.join(fields)}" if fields else None)))
            return T.ANY
        nullable = current.nullable
        current = fields[part]
        if nullable:
            current = current.maybe()
    return current


def _infer_call(checked: CheckedPack, env: CheckEnv, expr: ast.Call,
                scope: dict[str, T.Type], scope_kind: str, template: bool) -> T.Type:
    spec = env.functions.get(expr.name)
    if spec is None:
        checked.errors.append(PolicyError(
            "E103", f"unknown function `{expr.name}`", expr.span,
            did_you_mean(expr.name, env.functions)))
        for arg in expr.args:
            _infer(checked, env, arg, scope, scope_kind, template)
        return T.ANY
    if scope_kind not in spec.scopes:
        checked.errors.append(PolicyError(
            "E103", f"`{expr.name}` cannot be used in a rule that applies to "
            f"{_SCOPE_WORDS[scope_kind]}", expr.span, "it works in rules that apply to "
            + " or ".join(_SCOPE_WORDS[s] for s in sorted(spec.scopes))))
    if len(expr.args) != len(spec.params):
        checked.errors.append(PolicyError(
            "E202", f"`{expr.name}` takes {len(spec.params)} argument(s), got {len(expr.args)}",
            expr.span, spec.doc))
    for arg, param in zip(expr.args, spec.params, strict=False):
        if param.name == "table":
            if not (isinstance(arg, ast.Path) and len(arg.parts) == 1
                    and arg.parts[0] in checked.tables):
                checked.errors.append(PolicyError(
                    "E107", f"`{expr.name}` needs the name of a {param.table_format} table "
                    "from the pack manifest", arg.span,
                    did_you_mean(arg.parts[0], checked.tables) if isinstance(arg, ast.Path)
                    else None))
                continue
            decl = checked.tables[arg.parts[0]]
            if decl.format != param.table_format:
                checked.errors.append(PolicyError(
                    "E107", f"table `{decl.name}` is a {decl.format} table; `{expr.name}` "
                    f"needs a {param.table_format} table", arg.span))
            checked.types[id(arg)] = T.table(decl.format)
            continue
        kind = _SET_KIND_OF.get(param.elem.name) if param.name == "set" and param.elem else None
        found = _infer(checked, env, arg, scope, scope_kind, template, element_kind=kind)
        if param.name == "list" and found.name == "list":
            continue
        if not _compatible(found, param):
            checked.errors.append(PolicyError(
                "E201", f"argument of `{expr.name}` must be {param}, not {found}", arg.span,
                spec.doc))
    return spec.result


STAGES: tuple[tuple[str, Stage], ...] = (
    ("parse", _parse),
    ("declarations", _declarations),
    ("value-sets", _value_sets),
    ("tables", check_tables),
    ("counters", check_counters),
    ("rules", _rules),
    ("counter-calls", check_counter_calls),
    ("exceptions", check_exceptions),
)
