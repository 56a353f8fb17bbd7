"""Lint stage W101-W103: value sets never used, holding a code twice, holding no code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.lint.context import LintContext, bad_codes, name_span, used_names
from cleanclaim.dsl.valuesets import CodeSet, infer_kind, resolve_items


def value_sets(ctx: LintContext) -> None:
    used = used_names(ctx.checked.files)
    # A value set's own terms do not count as a use of it (`x = x + ...` is E108).
    for name, decl in ctx.checked.valueset_decls.items():
        span = name_span(decl.span, "valueset", name)
        own_refs = {t.name for t in decl.terms if isinstance(t, ast.SetRef)}
        others_use = any(
            name in {t.name for t in d.terms if isinstance(t, ast.SetRef)}
            for n, d in ctx.checked.valueset_decls.items()
            if n != name
        )
        if name not in used - own_refs and not others_use and name not in ctx.used_elsewhere:
            ctx.warn(
                "W101",
                f"value set `{name}` is never used",
                span,
                f"delete it, or use it: `applies to codes {name}` or `line.code in {name}`",
            )
        resolved = ctx.checked.valuesets.get(name)
        if (
            resolved is not None
            and not resolved.exact
            and not resolved.prefixes
            and not bad_codes(ctx)
        ):
            ctx.warn(
                "W103",
                f"value set `{name}` holds no code",
                span,
                "list its codes, or delete it and the conditions that use it",
            )
        kind = resolved.kind if resolved is not None else None
        _duplicate_codes(ctx, decl.terms, kind)
    for _pack, rule in ctx.checked.rules:
        if rule.scope is not None and rule.scope.kind == "codes":
            _duplicate_codes(ctx, rule.scope.codes, "codes")


def _duplicate_codes(ctx: LintContext, terms: Sequence[ast.SetTerm], kind: str | None) -> None:
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
                ctx.warn(
                    "W102",
                    f"`{item.text}` is already in this value set"
                    + ("" if same else f" (through `{earlier}`)"),
                    item.span,
                    "delete this one",
                )
            for code in alone.exact:
                seen_exact.setdefault(code, item.text)
            for prefix in alone.prefixes:
                seen_prefixes.setdefault(prefix, item.text)


def _covered_by(
    alone: CodeSet, exact: Mapping[str, str], prefixes: Mapping[str, str]
) -> str | None:
    """The earlier item that already holds every code of `alone`, if one item does."""
    owners: set[str] = set()
    for code in alone.exact:
        owner = exact.get(code) or next(
            (item for p, item in prefixes.items() if code.startswith(p)), None
        )
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
