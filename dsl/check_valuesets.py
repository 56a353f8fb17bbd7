"""Checker stage `value-sets`: every value set resolved to its codes (references, unions,
differences, CSV columns, `partial` sets), cycles and kind mismatches located."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.pack import (
    display_path,
)
from cleanclaim.dsl.valuesets import CodeSet, infer_kind, read_csv_column, resolve_items

if TYPE_CHECKING:
    from cleanclaim.dsl.checker import CheckedPack, CheckEnv


def check_value_sets(checked: CheckedPack, env: CheckEnv) -> None:
    resolving: list[str] = []
    # `partial:` in a manifest (content helper, issue 11 section 1): the named value sets
    # are marked partial as they resolve, so that sets built from them are partial too.
    partial: dict[str, str] = {}
    for pack in checked.sources.packs:
        for name, where, span in pack.partial:
            if name not in checked.valueset_decls:
                checked.errors.append(
                    PolicyError(
                        "E101",
                        f"`partial` names `{name}`, which no policy file of the pack defines",
                        span or ast.Span(display_path(pack.manifest_file), 1, 1, 1, 2),
                        did_you_mean(name, checked.valueset_decls),
                    )
                )
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
            checked.errors.append(
                PolicyError(
                    "E108",
                    f"value set `{name}` refers to itself: {' -> '.join([*resolving, name])}",
                    span,
                    "a value set cannot include itself, directly or through other value sets",
                )
            )
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
                if (
                    term.name not in checked.valueset_decls
                    and term.name not in checked.broken_names
                ):
                    checked.errors.append(
                        PolicyError(
                            "E101",
                            f"unknown value set `{term.name}`",
                            term.span,
                            did_you_mean(term.name, checked.valueset_decls),
                        )
                    )
                ok = False
                continue
            parts.append((found, term.span))
        elif isinstance(term, ast.SetLiteral):
            texts = [(i.text, i.span) for i in term.codes.items]
            kind = term.kind or expected_kind or infer_kind(t for t, _ in texts)
            if kind is None:
                checked.errors.append(
                    PolicyError(
                        "E305",
                        "cannot tell what kind of codes this list holds",
                        term.span,
                        "mark it: `codes [...]`, `icd10 [...]` or `modifiers [...]`",
                    )
                )
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
            checked.errors.append(
                PolicyError(
                    "E305",
                    f"cannot join {T.KIND_WORDS[part.kind]} to a set of "
                    f"{T.KIND_WORDS[result.kind]}",
                    span,
                    "a value set holds one kind of code",
                )
            )
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
        checked.errors.append(
            PolicyError("E304", f"cannot read `{term.file}`: {reason}", term.span)
        )
        return None
    values, problem = read_csv_column(text, term.column)
    if problem is not None:
        checked.errors.append(PolicyError("E304", f"`{term.file}`: {problem}", term.span))
        return None
    kind = term.kind or expected or infer_kind(v for v, _line, _column in values)
    if kind is None:
        checked.errors.append(
            PolicyError(
                "E305",
                f"cannot tell what kind of codes `{term.file}` holds",
                term.span,
                "mark it: `icd10 csv ...` or `codes csv ...`",
            )
        )
        return None
    # Problems inside the CSV are reported at the CSV's own lines and columns, and the
    # CSV's text goes with the sources so that they are shown with it.
    csv_name = (
        f"{term.span.file.rsplit('/', 1)[0]}/{term.file}" if "/" in term.span.file else term.file
    )
    checked.sources.extra_sources[csv_name] = text
    items = [
        (v, ast.Span(csv_name, line, column, line, column + len(v))) for v, line, column in values
    ]
    return resolve_items(kind, items, checked.errors)
