"""A folder of broken policy packs, each with the located errors it must produce.

Each case is `tests/policies/broken/<case>/`: the folder is a policy root holding the pack
`<case>/` (pack.yaml and .policy files, sometimes a library pack beside it) and
`expect.yaml`:

```yaml
errors:                  # every error the pack must produce
  - code: E101
    file: rules.policy   # relative to the pack folder; default: its only .policy file
    line: 5              # optional
    column: 20           # optional
    message: "unknown value set `x`"   # fragment (or a list of fragments)
    hint: "did you mean `y`?"          # fragment
only: true               # default: no error beyond those listed
ordered: true            # the errors come in exactly this order
xfail: "reason"          # a known bug: the errors are not (yet) as listed
xfail_render: "reason"   # a known bug in how the errors are rendered
```
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from cleanclaim.dsl.errors import ERROR_CODES, PolicyCompileError, PolicyError
from cleanclaim.engine import Engine

BROKEN = Path(__file__).resolve().parent / "policies" / "broken"
TODAY = dt.date(2026, 11, 27)


@dataclass(frozen=True)
class BrokenCase:
    name: str
    root: Path
    expect: dict[str, Any]

    @property
    def pack(self) -> Path:
        return self.root / self.name

    def file(self, relative: str | None) -> Path:
        if relative is not None:
            return self.pack / relative
        policies = sorted(self.pack.glob("*.policy"))
        assert len(policies) == 1, f"{self.name}: name the `file` of each error"
        return policies[0]

    @property
    def expected(self) -> list[dict[str, Any]]:
        return list(self.expect["errors"])


def _cases() -> list[BrokenCase]:
    cases = []
    for folder in sorted(p for p in BROKEN.iterdir() if p.is_dir()):
        expect = yaml.safe_load((folder / "expect.yaml").read_text(encoding="utf-8"))
        cases.append(BrokenCase(folder.name, folder, expect))
    return cases


CASES = _cases()


def _params() -> list[Any]:
    params = []
    for case in CASES:
        reason = case.expect.get("xfail")
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@cache
def _compile(name: str) -> PolicyCompileError | None:
    case = next(c for c in CASES if c.name == name)
    try:
        Engine(policy_roots=[case.root], today=TODAY)
    except PolicyCompileError as exc:
        return exc
    return None


def _errors_of(case: BrokenCase) -> PolicyCompileError:
    error = _compile(case.name)
    if error is None:
        if case.expect.get("xfail"):
            pytest.skip("the pack compiles; see test_broken_policy_reports_its_errors")
        pytest.fail(f"{case.name}: the pack compiled without errors")
    return error


def _fragments(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _matches(case: BrokenCase, want: dict[str, Any], got: PolicyError) -> bool:
    if got.code != want["code"]:
        return False
    if got.span.file != str(case.file(want.get("file"))):
        return False
    if "line" in want and got.span.line != want["line"]:
        return False
    if "column" in want and got.span.column != want["column"]:
        return False
    if not all(f in got.message for f in _fragments(want.get("message"))):
        return False
    return all(f in (got.hint or "") for f in _fragments(want.get("hint")))


def _describe(errors: list[PolicyError]) -> str:
    return "\n".join(
        f"  {e.code} {e.span.file}:{e.span.line}:{e.span.column} {e.message!r} hint={e.hint!r}"
        for e in errors
    )


def test_every_case_is_well_formed() -> None:
    assert len(CASES) >= 40
    for case in CASES:
        assert (case.pack / "pack.yaml").is_file(), case.name
        assert case.expected, f"{case.name}: no errors listed"
        for want in case.expected:
            assert want["code"] in ERROR_CODES, f"{case.name}: unknown code {want['code']}"
            assert set(want) <= {"code", "file", "line", "column", "message", "hint"}, case.name
        assert set(case.expect) <= {"errors", "only", "ordered", "xfail", "xfail_render"}


@pytest.mark.parametrize("case", _params())
def test_broken_policy_reports_its_errors(case: BrokenCase) -> None:
    error = _compile(case.name)
    assert error is not None, f"{case.name}: the pack compiled without errors"
    remaining = list(error.errors)
    for want in case.expected:
        found = next((e for e in remaining if _matches(case, want, e)), None)
        assert found is not None, (
            f"{case.name}: expected {want}\nbut the errors were:\n{_describe(error.errors)}"
        )
        remaining.remove(found)
    if case.expect.get("only", True):
        assert not remaining, f"{case.name}: unexpected errors:\n{_describe(remaining)}"
    if case.expect.get("ordered"):
        got = [(e.code, e.span.line, e.span.column) for e in error.errors]
        want_order = [(w["code"], w["line"], w["column"]) for w in case.expected]
        assert got == want_order


def _render_params() -> list[Any]:
    params = []
    for case in CASES:
        reason = case.expect.get("xfail_render")
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.parametrize("case", _render_params())
def test_broken_policy_renders_file_line_column_source_and_caret(case: BrokenCase) -> None:
    """Every error of the pack: `file:line:column: error CODE name: message`, then the
    source line, then a caret under the column."""
    error = _errors_of(case)
    rendered = error.render().splitlines()
    for found in error.errors:
        span = found.span
        head = (
            f"{span.file}:{span.line}:{span.column}: "
            f"error {found.code} {found.name}: {found.message.splitlines()[0]}"
        )
        assert head in rendered, f"no {head!r} in:\n" + "\n".join(rendered)
        at = rendered.index(head)
        source = Path(span.file).read_text(encoding="utf-8").splitlines()[span.line - 1]
        assert rendered[at + 1 : at + 2] == ["    " + source.expandtabs(1)], (
            f"{case.name}: the source line is not shown under {head!r}"
        )
        caret = rendered[at + 2]
        assert caret.startswith("    " + " " * (span.column - 1) + "^")
        assert set(caret.strip()) == {"^"}
        if found.hint:
            assert rendered[at + 3] == f"  hint: {found.hint.splitlines()[0]}"
    count = len(error.errors)
    assert rendered[-1] == f"{count} error{'s' if count != 1 else ''}"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_errors_come_sorted_by_position(case: BrokenCase) -> None:
    error = _errors_of(case)
    keys = [e.sort_key() for e in error.errors]
    assert keys == sorted(keys)
    # Each error at most once, even though a library pack is also compiled on its own.
    assert len({(e.code, e.span, e.message) for e in error.errors}) == len(error.errors)
