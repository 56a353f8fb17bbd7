"""Checker stage `rules`: each rule's id, clauses, dated versions, conditions (typed by
dsl/check_types.py), message templates and outcome codes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.check_types import infer_type
from cleanclaim.dsl.check_valuesets import resolve_terms
from cleanclaim.dsl.codesets import adjustment
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.parsed import parse_expression_cached
from cleanclaim.dsl.vocabulary import OWNERS, ROOT_CAUSES

if TYPE_CHECKING:
    from cleanclaim.dsl.checker import CheckedPack, CheckEnv


_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
_FIELD_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


def check_rules(checked: CheckedPack, env: CheckEnv) -> None:
    for pack_id, rule in checked.rules:
        _check_rule(checked, env, pack_id, rule)


def _check_rule(checked: CheckedPack, env: CheckEnv, pack_id: str, rule: ast.Rule) -> None:
    errors = checked.errors
    if not rule.id.startswith(pack_id + "/") or not re.fullmatch(r"[a-z0-9][a-z0-9_/.-]*", rule.id):
        errors.append(
            PolicyError(
                "E408",
                f"rule id `{rule.id}` must start with its pack id `{pack_id}/` and use "
                "lower-case letters, digits, `-`, `_` and `/`",
                rule.span,
                f'e.g. rule "{pack_id}/{rule.id.split("/")[-1].lower()}"',
            )
        )
    for what, span in rule.misplaced:
        errors.append(
            PolicyError(
                "E405",
                f"`{what}` cannot stand here",
                span,
                "title, applies to, plan, place of service, root cause, owner, kind and "
                "`except rule` come before the first `effective`",
            )
        )
    if rule.scope is None:
        errors.append(
            PolicyError(
                "E404",
                f"rule `{rule.id}` says nothing about what it applies to",
                rule.span,
                "add `applies to codes <value set>`, `applies to all lines`, `applies to claim` "
                "or `applies to each diagnosis`",
            )
        )
        scope_kind = "line"
    else:
        scope_kind = {
            "codes": "line",
            "all_lines": "line",
            "claim": "claim",
            "diagnosis": "diagnosis",
        }[rule.scope.kind]
        if rule.scope.kind == "codes":
            found = resolve_terms(
                checked, rule.scope.codes, "codes", lambda n, s: checked.valuesets.get(n)
            )
            if found is not None:
                if found.kind != "codes":
                    errors.append(
                        PolicyError(
                            "E201",
                            f"a rule applies to procedure codes, not to {T.KIND_WORDS[found.kind]}",
                            rule.scope.span,
                            "use a `codes` value set",
                        )
                    )
                else:
                    checked.scope_sets[rule.id] = found
    if rule.root_cause is None:
        errors.append(
            PolicyError(
                "E401",
                f"rule `{rule.id}` has no root cause",
                rule.span,
                "add e.g. `root cause coding`; one of: " + ", ".join(ROOT_CAUSES),
            )
        )
    elif rule.root_cause.value not in ROOT_CAUSES:
        errors.append(
            PolicyError(
                "E401",
                f"unknown root cause `{rule.root_cause.value}`",
                rule.root_cause.span,
                did_you_mean(rule.root_cause.value, ROOT_CAUSES)
                or "one of: " + ", ".join(ROOT_CAUSES),
            )
        )
    if rule.owner is not None and rule.owner.value not in OWNERS:
        errors.append(
            PolicyError(
                "E402",
                f"unknown owner `{rule.owner.value}`",
                rule.owner.span,
                did_you_mean(rule.owner.value, OWNERS) or "one of: " + ", ".join(OWNERS),
            )
        )
    if rule.kind is not None and rule.kind.value not in ROOT_CAUSES:
        errors.append(
            PolicyError(
                "E401",
                f"unknown finding kind `{rule.kind.value}`",
                rule.kind.span,
                did_you_mean(rule.kind.value, ROOT_CAUSES),
            )
        )
    for version in rule.versions:
        if version.start and version.end and version.end < version.start:
            errors.append(
                PolicyError(
                    "E406",
                    f"version ends ({version.end}) before it starts ({version.start})",
                    version.span,
                    "swap the dates",
                )
            )
        if version.outcome is None:
            errors.append(
                PolicyError(
                    "E403",
                    f"rule `{rule.id}` has no outcome"
                    + (f" for the version effective {version.start}" if version.start else ""),
                    version.span,
                    "add e.g. `then deny CO-97 with M15`",
                )
            )
        if rule.filters:
            for vf in rule.filters:
                if not vf.values:
                    errors.append(PolicyError("E001", "a filter needs values", vf.span))
        scope_env: dict[str, T.Type] = dict(T.ROOTS[scope_kind])
        for let in version.lets:
            scope_env[let.name] = infer_type(checked, env, let.value, scope_env, scope_kind)
        if len(version.conditions) == len(version.exceptions):  # `except when`s only
            errors.append(
                PolicyError(
                    "E403",
                    f"rule `{rule.id}` has no `when` condition",
                    version.span,
                    "add `when <condition>`; a rule that always fires says `when true`",
                )
            )
        for condition in version.conditions:
            found_type = infer_type(checked, env, condition, scope_env, scope_kind)
            if found_type.name not in ("bool", "any"):
                errors.append(
                    PolicyError(
                        "E203",
                        f"a `when` condition must be true or false, not {found_type}",
                        _span_of(condition),
                        "compare it, e.g. `line.units > 1`",
                    )
                )
        if version.message is not None:
            _check_template(checked, env, version.message, scope_env, scope_kind)
        if version.outcome is not None:
            _check_codes(checked, version)


def _check_codes(checked: CheckedPack, version: ast.Version) -> None:
    """E306/E307 (tools, issue 13.14): the outcome's CARC and RARCs exist and are current."""
    outcome = version.outcome
    assert outcome is not None
    for problem in adjustment.check_outcome(
        outcome.group,
        outcome.carc,
        outcome.rarcs,
        severity=outcome.severity,
        in_force_until=version.end,
    ):
        if problem.level != "error":
            continue  # usage warnings are lint's (W403/W404)
        spans = outcome.code_spans
        span = spans[problem.index] if problem.index < len(spans) else outcome.span
        checked.errors.append(PolicyError(problem.code, problem.message, span, problem.hint))


def _check_template(
    checked: CheckedPack,
    env: CheckEnv,
    message: ast.Text,
    scope_env: dict[str, T.Type],
    scope_kind: str,
) -> None:
    if id(message) in checked.templates:
        return  # a message shared by several dated versions: its places are known
    offsets = _raw_offsets(checked, message)
    for match in _TEMPLATE_FIELD.finditer(message.value):
        text = match.group(1).strip()
        line = message.span.line
        span = ast.Span(
            message.span.file,
            line,
            message.span.column + offsets[match.start()],
            line,
            message.span.column + offsets[match.end()],
        )
        shown: ast.Expr
        if _FIELD_PATH.match(text):
            shown = ast.Path(tuple(text.split(".")), span)
        else:  # an expression: `{days_between(line.service_date, claim.received_date)}`
            # (through the parse cache: a warm start imports no parser)
            inner = match.group(1)
            at = offsets[match.start(1)] + len(inner) - len(inner.lstrip())
            parsed, problems = parse_expression_cached(
                text, message.span.file, line, message.span.column + at
            )
            if parsed is None or problems:
                for problem in problems or [PolicyError("E109", "", span)]:
                    why = problem.message
                    if problem.code == "E002":  # the text in the braces ended, not the file
                        why = why.replace("unexpected end of file", "it ends early")
                    checked.errors.append(
                        PolicyError(
                            "E109",
                            f"`{{{text}}}` in the message is not a field, a name or an "
                            f"expression: {why}",
                            problem.span,
                            (problem.hint if problem.code != "E002" else None)
                            or "a message shows values, e.g. {line.code}, {due} or "
                            "{days_between(line.service_date, claim.received_date)}",
                        )
                    )
                continue
            shown = parsed
        found = infer_type(checked, env, shown, scope_env, scope_kind, template=True)
        if not _showable(found):
            instead = (
                "name the value set in the text instead"
                if found.name == "set"
                else "show one of its fields, e.g. {line.code}"
            )
            checked.errors.append(
                PolicyError(
                    "E109",
                    f"`{{{text}}}` is {T.one(found)}, which a message cannot show",
                    span,
                    f"a message shows single values or lists of them; {instead}",
                )
            )
            continue
        checked.templates.setdefault(id(message), []).append(
            (match.start(), match.end(), shown, found)
        )


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
    raw = lines[text.span.line - 1][text.span.column - 1 : text.span.end_column - 1]
    offsets: list[int] = []
    i = 1
    while i < len(raw) - 1:
        offsets.append(i)
        i += 2 if raw[i] == "\\" else 1
    offsets.append(i)
    return offsets if len(offsets) == len(plain) else plain


def _span_of(expr: ast.Expr) -> ast.Span:
    return expr.span
