"""The problems lint reports: the codes of its warnings, one located problem, and the
report of a run (text and JSON)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import ERROR_CODES, PolicyError

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
    "W402": (
        "deny-over-partial-data",
        "a rule that denies because a code is not in a value set declared partial",
    ),
    "W403": ("group-code-mismatch", "a CARC with a group code the X12 list does not allow for it"),
    "W404": ("remark-code-required", "a CARC that X12 says needs a remark code, given none"),
    "W405": (
        "unguarded-optional-read",
        "a comparison of a field that can be missing, without `is present`",
    ),
    "W406": ("unknown-plan", "a plan name that no claim or roster of the pack's cases has"),
}


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
        out = [
            f"{self.span.file}:{self.span.line}:{self.span.column}: "
            f"{self.severity} {self.code} {self.name}: {self.message}"
        ]
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
        return (
            f"{what}: {self.errors} error{'s' if self.errors != 1 else ''}, "
            f"{self.warnings} warning{'s' if self.warnings != 1 else ''}"
        )

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


def all_codes() -> dict[str, tuple[str, str]]:
    """Every code lint can report: code -> (name, severity)."""
    codes = {code: (name, "error") for code, name in ERROR_CODES.items()}
    codes.update({code: (name, "warning") for code, (name, _what) in LINT_CODES.items()})
    return codes
