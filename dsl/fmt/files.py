"""Formatting files: one in memory (`format_file`), or many, written back or diffed
(`format_paths`, `cleanclaim fmt`)."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.fmt.layout import FormatError, format_policy


@dataclass(frozen=True, slots=True)
class FileResult:
    """What `fmt` found for one file."""

    path: Path
    changed: bool
    formatted: str | None
    errors: tuple[PolicyError, ...] = ()


def format_file(path: Path, display: str | None = None) -> FileResult:
    """Format one file in memory (nothing is written)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return FileResult(
            path,
            False,
            None,
            (PolicyError("E503", f"cannot read policy file: {exc}", ast.Span(name, 1, 1, 1, 2)),),
        )
    try:
        formatted = format_policy(text, name)
    except FormatError as exc:
        return FileResult(path, False, None, tuple(exc.errors))
    return FileResult(path, formatted != text, formatted)


@dataclass(slots=True)
class FormatOutcome:
    """What `format_paths` did: files changed (or that would change), errors, a diff."""

    checked: int = 0
    changed: list[Path] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    diff: str = ""


def format_paths(paths: Iterable[Path], *, write: bool, diff: bool = False) -> FormatOutcome:
    """Format `.policy` files (folders: every `.policy` file below them). With `write`,
    changed files are rewritten; a file that does not parse is left as is and its errors
    are reported with the line and a caret."""
    outcome = FormatOutcome()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.policy")))
        elif path.is_file():
            files.append(path)
        else:
            outcome.errors.append(f"error: {path}: no such file or folder")
    for path in files:
        outcome.checked += 1
        result = format_file(path)
        if result.errors:
            source = _read(path)
            outcome.errors.extend(e.render(source) for e in result.errors)
            continue
        if not result.changed or result.formatted is None:
            continue
        outcome.changed.append(path)
        if diff:
            outcome.diff += "".join(
                difflib.unified_diff(
                    (_read(path) or "").splitlines(keepends=True),
                    result.formatted.splitlines(keepends=True),
                    fromfile=f"{path} (before)",
                    tofile=f"{path} (formatted)",
                )
            )
        if write:
            path.write_text(result.formatted, encoding="utf-8")
    return outcome


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
