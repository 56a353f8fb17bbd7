"""The type of every expression of a rule (`infer_type`), recorded in `CheckedPack.types`
for the compiler; type errors (E2xx) located at the expression."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.history import COUNTER
from cleanclaim.dsl.tables import infer_read
from cleanclaim.dsl.valuesets import CodeSet, infer_kind, resolve_items

if TYPE_CHECKING:
    from cleanclaim.dsl.checker import CheckedPack, CheckEnv


def _compatible(a: T.Type, b: T.Type) -> bool:
    if "any" in (a.name, b.name):
        return True
    if a.name == b.name and a.name not in ("list", "set"):
        return True
    if a.name in T.NUMERIC and b.name in T.NUMERIC:
        return True
    return a.name in T.CODE_LIKE and b.name in T.CODE_LIKE


_SET_KIND_OF = {"code": "codes", "icd10": "icd10", "modifier": "modifiers", "str": "str"}


def infer_type(
    checked: CheckedPack,
    env: CheckEnv,
    expr: ast.Expr,
    scope: dict[str, T.Type],
    scope_kind: str,
    template: bool = False,
    element_kind: str | None = None,
) -> T.Type:
    result = _infer_inner(checked, env, expr, scope, scope_kind, template, element_kind)
    checked.types[id(expr)] = result
    return result


def _infer_inner(
    checked: CheckedPack,
    env: CheckEnv,
    expr: ast.Expr,
    scope: dict[str, T.Type],
    scope_kind: str,
    template: bool,
    element_kind: str | None,
) -> T.Type:
    errors = checked.errors

    def infer(e: ast.Expr, kind: str | None = None) -> T.Type:
        return infer_type(checked, env, e, scope, scope_kind, template, kind)

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
        checked.literal_sets[id(expr)] = CodeSet("str", frozenset(i.text for i in expr.items), ())
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
            errors.append(
                PolicyError(
                    "E201",
                    f"`{expr.op}` needs numbers or dates, not {left}",
                    expr.span,
                    "compare codes with == or `in`",
                )
            )
        return T.BOOL
    if isinstance(expr, ast.Arith):
        # An inline code list on either side of `a + b` / `a - b` takes the kind of the
        # codes looked up, like a list that stands alone.
        left, right = infer(expr.left, element_kind), infer(expr.right, element_kind)
        if left.name in T.NUMERIC and right.name in T.NUMERIC:
            return T.Type(
                "money" if "money" in (left.name, right.name) else "number",
                nullable=left.nullable or right.nullable,
            )
        if left.name == "date" and right.name in T.NUMERIC:
            return T.Type("date", nullable=left.nullable or right.nullable)
        if left.name == "date" and right.name == "date" and expr.op == "-":
            return T.Type("number", nullable=left.nullable or right.nullable)
        if left.name == "set" and right.name == "set":
            # `a + b` joins two sets, `a - b` takes the codes of b out of a: one kind.
            if left.elem != right.elem:
                words = _kind_words(right), _kind_words(left)
                errors.append(
                    PolicyError(
                        "E201",
                        f"cannot join {words[0]} to a set of {words[1]}"
                        if expr.op == "+"
                        else f"cannot take {words[0]} out of a set of {words[1]}",
                        expr.span,
                        "a value set holds one kind of code",
                    )
                )
            return left
        errors.append(
            PolicyError(
                "E201",
                f"cannot compute {left} {expr.op} {right}",
                expr.span,
                "dates take a number of days: add_days(d, 30) or d + 30",
            )
        )
        return T.ANY
    if isinstance(expr, ast.Membership):
        element = infer(expr.element)
        _check_container(checked, env, expr.container, element, scope, scope_kind, template)
        return T.BOOL
    if isinstance(expr, ast.Presence):
        found = infer(expr.operand)
        if not isinstance(expr.operand, ast.Path | ast.Call | ast.Arith | ast.TableRead):
            errors.append(
                PolicyError(
                    "E201",
                    f"`is {'missing' if expr.missing else 'present'}` needs a field, a name "
                    f"or a function result, not {T.one(found)}",
                    expr.operand.span,
                    "only a value read from the claim can be missing, e.g. `line.units is missing`",
                )
            )
        return T.BOOL
    if isinstance(expr, ast.Quantified):
        coll = infer(expr.collection)
        if coll.name != "list":
            errors.append(
                PolicyError(
                    "E201", f"`{expr.quantifier}` needs a list, not {coll}", expr.collection.span
                )
            )
            elem = T.ANY
        else:
            elem = coll.elem or T.ANY
        inner = dict(scope)
        inner[expr.var] = elem
        cond = infer_type(checked, env, expr.condition, inner, scope_kind, template)
        _expect_bool(checked, cond, expr.condition)
        return T.NUMBER if expr.quantifier == "count" else T.BOOL
    if isinstance(expr, ast.TableRead):
        return infer_read(checked, env, expr, infer)
    if isinstance(expr, ast.QuantifiedIn):
        coll = infer(expr.collection)
        if coll.name != "list":
            errors.append(
                PolicyError(
                    "E201", f"`{expr.quantifier} of` needs a list, not {coll}", expr.collection.span
                )
            )
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
        checked.errors.append(
            PolicyError("E203", f"expected a condition (true or false), found {t}", expr.span)
        )


def _check_container(
    checked: CheckedPack,
    env: CheckEnv,
    container: ast.Expr,
    element: T.Type,
    scope: dict[str, T.Type],
    scope_kind: str,
    template: bool,
) -> None:
    kind = _SET_KIND_OF.get(element.name)
    t = infer_type(checked, env, container, scope, scope_kind, template, element_kind=kind)
    if t.name == "any" or element.name == "any":
        return
    if t.name == "table" and t.table_format == "lookup":
        assert isinstance(container, ast.Path)
        lookup = checked.lookups.get(container.parts[0])
        if lookup is not None and len(lookup.keys) != 1:
            checked.errors.append(
                PolicyError(
                    "E202",
                    f"`in {lookup.name}` asks for one key; the table is keyed by "
                    f"{len(lookup.keys)} ({', '.join(lookup.keys)})",
                    container.span,
                    f"read a column instead: `{lookup.name}[a, b].column is present`",
                )
            )
        if element.name not in (*T.CODE_LIKE, *T.NUMERIC, "date"):
            checked.errors.append(
                PolicyError("E201", f"{T.one(element)} is never a key of a table", container.span)
            )
        return
    if isinstance(container, ast.CodeList) and container.quoted:
        if element.name in ("code", "icd10", "modifier"):
            example = {"code": "[93000, 93005]", "icd10": "[R07.9, I20.*]", "modifier": "[26, TC]"}[
                element.name
            ]
            checked.errors.append(
                PolicyError(
                    "E201",
                    f"{T.one(element)} is looked up in a list of codes, not of quoted strings",
                    container.span,
                    f"write the codes without quotes: {example}",
                )
            )
        elif element.name != "str":
            checked.errors.append(
                PolicyError(
                    "E201",
                    f"{T.one(element)} is never in a list of strings",
                    container.span,
                    "a list of quoted strings holds text such as states or places of service; "
                    "compare numbers and dates with ==, < or >",
                )
            )
        return
    if t.name == "set":
        set_kind = t.elem.name if t.elem else "str"
        if element.name not in T.CODE_LIKE:
            checked.errors.append(
                PolicyError(
                    "E201", f"{T.one(element)} cannot be looked up in a code set", container.span
                )
            )
        elif kind not in (set_kind, "str") and set_kind != "str":
            checked.errors.append(
                PolicyError(
                    "E201",
                    f"{T.one(element)} is never in {T.one(t)}",
                    container.span,
                    "check the value set: diagnoses go in `icd10` sets, procedures in `codes` sets",
                )
            )
        return
    if t.name == "list":
        if t.elem is not None and not _compatible(t.elem, element):
            checked.errors.append(
                PolicyError("E201", f"{T.one(element)} is never in {T.one(t)}", container.span)
            )
        return
    checked.errors.append(
        PolicyError(
            "E201", f"`in` needs a value set, a code list or a list, not {t}", container.span
        )
    )


# How a rule's scope is written after `applies to`, by the kind of scope.
_SCOPE_WORDS = {"line": "lines", "claim": "claim", "diagnosis": "each diagnosis"}


def _infer_path(
    checked: CheckedPack,
    env: CheckEnv,
    expr: ast.Path,
    scope: dict[str, T.Type],
    scope_kind: str,
    template: bool,
) -> T.Type:
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
            message = (
                f"`{head}` cannot be used in a rule that applies to {_SCOPE_WORDS[scope_kind]}"
            )
            hint = (
                f"in this rule, names start with {roots}, a `let` name or a value set; "
                f"`{head}` is for rules that apply to "
                + " or ".join(_SCOPE_WORDS[k] for k in elsewhere)
            )
        else:
            message = f"unknown name `{head}`"
            hint = did_you_mean(
                head,
                [
                    *scope,
                    *checked.valueset_decls,
                    *checked.tables,
                    *checked.counters,
                    *checked.lookup_decls,
                ],
            ) or (f"names start with {roots}, a `let` name or a value set")
        checked.errors.append(PolicyError(code, message, expr.span, hint))
        return T.ANY
    for index, part in enumerate(expr.parts[1:], start=1):
        if current.name == "any":
            return T.ANY
        fields = T.RECORDS.get(current.name)
        if fields is None or part not in fields:
            where = ".".join(expr.parts[:index])
            checked.errors.append(
                PolicyError(
                    "E102",
                    f"`{where}` has no field `{part}`",
                    expr.span,
                    did_you_mean(part, fields or {})
                    or (f"fields of {where}: {', '.join(fields)}" if fields else None),
                )
            )
            return T.ANY
        nullable = current.nullable
        current = fields[part]
        if nullable:
            current = current.maybe()
    return current


def _infer_call(
    checked: CheckedPack,
    env: CheckEnv,
    expr: ast.Call,
    scope: dict[str, T.Type],
    scope_kind: str,
    template: bool,
) -> T.Type:
    spec = env.functions.get(expr.name)
    if spec is None:
        checked.errors.append(
            PolicyError(
                "E103",
                f"unknown function `{expr.name}`",
                expr.span,
                did_you_mean(expr.name, env.functions),
            )
        )
        for arg in expr.args:
            infer_type(checked, env, arg, scope, scope_kind, template)
        return T.ANY
    if scope_kind not in spec.scopes:
        checked.errors.append(
            PolicyError(
                "E103",
                f"`{expr.name}` cannot be used in a rule that applies to "
                f"{_SCOPE_WORDS[scope_kind]}",
                expr.span,
                "it works in rules that apply to "
                + " or ".join(_SCOPE_WORDS[s] for s in sorted(spec.scopes)),
            )
        )
    if len(expr.args) != len(spec.params):
        checked.errors.append(
            PolicyError(
                "E202",
                f"`{expr.name}` takes {len(spec.params)} argument(s), got {len(expr.args)}",
                expr.span,
                spec.doc,
            )
        )
    for arg, param in zip(expr.args, spec.params, strict=False):
        if param.name == "table":
            if not (
                isinstance(arg, ast.Path) and len(arg.parts) == 1 and arg.parts[0] in checked.tables
            ):
                checked.errors.append(
                    PolicyError(
                        "E107",
                        f"`{expr.name}` needs the name of a {param.table_format} table "
                        "from the pack manifest",
                        arg.span,
                        did_you_mean(arg.parts[0], checked.tables)
                        if isinstance(arg, ast.Path)
                        else None,
                    )
                )
                continue
            decl = checked.tables[arg.parts[0]]
            if decl.format != param.table_format:
                checked.errors.append(
                    PolicyError(
                        "E107",
                        f"table `{decl.name}` is a {decl.format} table; `{expr.name}` "
                        f"needs a {param.table_format} table",
                        arg.span,
                    )
                )
            checked.types[id(arg)] = T.table(decl.format)
            continue
        kind = _SET_KIND_OF.get(param.elem.name) if param.name == "set" and param.elem else None
        found = infer_type(checked, env, arg, scope, scope_kind, template, element_kind=kind)
        if param.name == "list" and found.name == "list":
            continue
        if not _compatible(found, param):
            checked.errors.append(
                PolicyError(
                    "E201",
                    f"argument of `{expr.name}` must be {param}, not {found}",
                    arg.span,
                    spec.doc,
                )
            )
    return spec.result
