"""Finding case files and running them through an engine, with coverage counted as the
cases decide."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from cleanclaim.dsl.pack import find_pack, list_packs
from cleanclaim.engine.cases import (
    CaseFileError,
    PolicyCase,
    case_files,
    compare,
    decide,
    load_cases,
)
from cleanclaim.engine.testing.coverage import RuleIndex
from cleanclaim.engine.testing.failures import failure_report
from cleanclaim.engine.testing.results import CaseResult, CaseRun, RuleTrace


def discover(targets: Sequence[str], roots: Sequence[Path]) -> list[Path]:
    """Case files for the targets: pack ids (looked up in `roots`), folders (their `cases/`
    folders), YAML files. No target: the cases of every pack under `roots`."""
    files: list[Path] = []
    if not targets:
        for root in roots:
            for pack_id in list_packs([root]):
                files.extend(case_files(root / pack_id))
        return files
    for target in targets:
        path = Path(target)
        if path.exists():
            files.extend(case_files(path))
            continue
        folder = find_pack(roots, target)
        if folder is None:
            raise CaseFileError(f"{target}: no such pack, folder or case file")
        files.extend(case_files(folder))
    return list(dict.fromkeys(files))


def case_rules(case: PolicyCase) -> list[str]:
    """The rule ids a case's expected findings list, in order, once each."""
    return list(dict.fromkeys(str(f["rule"]) for f in case.expect_findings or () if "rule" in f))


def _pattern_matches(pattern: str, text: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(text, pattern)
    return pattern in text


def case_selector(patterns: Sequence[str]) -> Callable[[PolicyCase], bool]:
    """`--run`: a case is selected when a pattern matches its name or a rule id its
    expected findings list. A pattern with `*`, `?` or `[` is a glob over the whole name
    or id (case-sensitive), any other pattern a substring."""

    def selected(case: PolicyCase) -> bool:
        names = [case.name, *case_rules(case)]
        return any(_pattern_matches(p, n) for p in patterns for n in names)

    return selected


def run_cases(
    engine: Any,
    files: Iterable[Path],
    *,
    coverage: bool = False,
    trace: RuleTrace | None = None,
    select: Callable[[PolicyCase], bool] | None = None,
) -> CaseRun:
    """Run every case of the files (the `select`ed ones, given `select`); with
    `coverage`, record what each rule did."""
    run = CaseRun()
    started = time.perf_counter()
    rules_of = RuleIndex(engine) if coverage else None
    for path in files:
        try:
            cases = load_cases(path)
        except CaseFileError as exc:
            run.file_errors.append((path, str(exc)))
            continue
        for case in cases:
            if select is not None and not select(case):
                continue
            result = _run_one(engine, case, trace)
            run.results.append(result)
            if rules_of is not None and result.decision is not None:
                rules_of.record(case, result.decision, run.coverage)
    if rules_of is not None:
        rules_of.add_untouched(run.coverage)
    run.seconds = time.perf_counter() - started
    return run


def _run_one(engine: Any, case: PolicyCase, trace: RuleTrace | None) -> CaseResult:
    started = time.perf_counter()
    try:
        decision = decide(engine, case)
    except Exception as exc:  # a crash is a failed case with its reason, not a crashed run
        return CaseResult(
            case,
            None,
            [f"the engine raised {type(exc).__name__}: {exc}"],
            f"  the engine raised {type(exc).__name__}: {exc}",
            time.perf_counter() - started,
        )
    problems = compare(case, decision)
    report = "" if not problems else failure_report(engine, case, decision, trace)
    return CaseResult(case, decision, problems, report, time.perf_counter() - started)
