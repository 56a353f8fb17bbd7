"""Test set-up: fixed dates, a shared engine, and YAML policy cases collected as tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine.cases import CaseFileError, PolicyCase, load_cases, run_case

REPO = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 27)
_ENGINES: dict[str, Any] = {}


def shared_engine() -> Any:
    """One engine over the shipped packs for the whole session (compiling costs ~0.3 s).
    Without plugins: a pack's cases test that pack alone (tests/plugins/ test plugins)."""
    if "shipped" not in _ENGINES:
        from cleanclaim.engine import Engine

        _ENGINES["shipped"] = Engine(today=TODAY, plugins=())
    return _ENGINES["shipped"]


@pytest.fixture(scope="session")
def engine() -> Any:
    return shared_engine()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    # Policy cases live in payer_policies/<pack>/cases/ and tests/cases/.
    # (A `cases` folder inside the repository: the checkout's own path may hold one.)
    root = parent.config.rootpath
    parts = file_path.relative_to(root).parts if file_path.is_relative_to(root) else ()
    if file_path.suffix == ".yaml" and "cases" in parts:
        return PolicyCaseFile.from_parent(parent, path=file_path)
    return None


class PolicyCaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            cases = load_cases(self.path)
        except CaseFileError as exc:
            raise self.CollectError(str(exc)) from exc
        for case in cases:
            yield PolicyCaseItem.from_parent(self, name=case.name, case=case)


class PolicyCaseItem(pytest.Item):
    def __init__(self, *, case: PolicyCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        outcome = run_case(shared_engine(), self.case)
        if not outcome.passed:
            raise PolicyCaseFailure(outcome.problems)

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, PolicyCaseFailure):
            return f"{self.case.file}:{self.case.line}: case '{self.case.name}'\n  " + "\n  ".join(
                excinfo.value.problems
            )
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line, f"case: {self.name}"


class PolicyCaseFailure(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
