"""Located policy errors: file:line:column, the offending line with a caret, a stable code
and a hint.

Codes are stable: tools and tests match on them. E0xx are syntax errors, E1xx names and
references, E2xx types, E3xx codes and value sets, E4xx rule structure, E5xx packs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cleanclaim.dsl.ast import Span

# code -> short name; the name appears in every message after the code.
ERROR_CODES: dict[str, str] = {
    "E001": "syntax-error",
    "E002": "unexpected-end",
    "E003": "bad-character",
    "E004": "missing-version",
    "E005": "unsupported-version",
    "E006": "bad-date",
    "E007": "nested-too-deep",
    "E101": "unknown-value-set",
    "E102": "unknown-field",
    "E103": "unknown-function",
    "E104": "unknown-name",
    "E105": "duplicate-value-set",
    "E106": "duplicate-rule",
    "E107": "unknown-table",
    "E108": "value-set-cycle",
    "E109": "unknown-template-field",
    "E110": "duplicate-counter",
    "E111": "duplicate-table",
    "E112": "unknown-table-key",
    "E113": "unknown-table-column",
    "E201": "type-mismatch",
    "E202": "wrong-argument-count",
    "E203": "not-a-condition",
    "E301": "invalid-icd10-code",
    "E302": "malformed-procedure-code",
    "E303": "bad-code-range",
    "E304": "csv-error",
    "E305": "mixed-value-set",
    "E306": "unknown-adjustment-code",
    "E307": "retired-adjustment-code",
    "E308": "bad-table",
    "E401": "unknown-root-cause",
    "E402": "unknown-owner",
    "E403": "missing-outcome",
    "E404": "missing-scope",
    "E405": "misplaced-clause",
    "E406": "bad-effective-dates",
    "E407": "duplicate-clause",
    "E408": "bad-rule-id",
    "E409": "bad-exception",
    "E410": "incomplete-counter",
    "E411": "bad-counter-clause",
    "E412": "counter-reads-claim",
    "E413": "wrong-counter",
    "E501": "bad-manifest",
    "E502": "unknown-pack",
    "E503": "missing-policy-file",
    "E504": "table-error",
    "E505": "empty-pack",
    "E506": "no-pack-in-folder",
}


@dataclass(frozen=True, slots=True)
class PolicyError:
    """One problem in a policy pack, located in its source."""

    code: str
    message: str
    span: Span
    hint: str | None = None

    @property
    def name(self) -> str:
        return ERROR_CODES.get(self.code, "error")

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.column, self.code)

    def render(self, source: str | None = None) -> str:
        """The error as a compiler would print it, with the source line and a caret."""
        head = (
            f"{self.span.file}:{self.span.line}:{self.span.column}: "
            f"error {self.code} {self.name}: {self.message}"
        )
        lines = [head]
        if source is not None:
            text_lines = source.splitlines()
            if 1 <= self.span.line <= len(text_lines):
                text = text_lines[self.span.line - 1].expandtabs(1)
                width = 1
                if self.span.end_line == self.span.line:
                    width = max(1, self.span.end_column - self.span.column)
                lines.append(f"    {text}")
                lines.append("    " + " " * (self.span.column - 1) + "^" * width)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class PolicyCompileError(Exception):
    """A pack did not compile; carries every error found, sorted by position."""

    def __init__(self, errors: Sequence[PolicyError], sources: dict[str, str]) -> None:
        self.errors = sorted(errors, key=PolicyError.sort_key)
        self.sources = sources
        super().__init__(f"{len(self.errors)} error(s) in policy")

    def render(self) -> str:
        parts = [e.render(self.sources.get(e.span.file)) for e in self.errors]
        count = len(self.errors)
        parts.append(f"{count} error{'s' if count != 1 else ''}")
        return "\n".join(parts)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
