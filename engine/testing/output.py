"""A run as text, JSON or JUnit XML, and its exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from cleanclaim.dsl.pack import display_path
from cleanclaim.engine.testing.results import CaseResult, CaseRun, RuleCoverage
from cleanclaim.engine.testing.run import case_rules


def render_text(
    run: CaseRun, *, coverage: bool, verbose: bool = False, minimum: float | None = None
) -> str:
    out: list[str] = []
    by_file: dict[Path, list[CaseResult]] = {}
    for result in run.results:
        by_file.setdefault(result.case.file, []).append(result)
    for path, message in run.file_errors:
        out.append(f"ERROR {display_path(path)}: {message}")
    for path, results in by_file.items():
        failed = [r for r in results if not r.passed]
        out.append(
            f"{display_path(path)}: {len(results) - len(failed)} passed"
            + (f", {len(failed)} failed" if failed else "")
        )
        for result in results:
            if verbose and result.passed:
                out.append(f"  ok   {result.case.name}")
            if not result.passed:
                out.append(
                    f"FAIL {display_path(result.case.file)}:{result.case.line}: {result.case.name}"
                )
                out.append(result.report)
    if coverage:
        out.append(render_coverage(run))
    passed = len(run.results) - len(run.failed)
    summary = f"{passed} passed, {len(run.failed)} failed"
    if run.file_errors:
        errors = len(run.file_errors)
        summary += f", {errors} case file error{'s' if errors != 1 else ''}"
    out.append(f"{summary} in {run.seconds:.2f} s")
    if minimum is not None:
        for pack in run.below(minimum):
            out.append(
                f"coverage of {pack} is {run.coverage_percent(pack):.0f}%, "
                f"below the minimum of {minimum:g}%"
            )
    return "\n".join(out) + "\n"


def render_coverage(run: CaseRun) -> str:
    """Per pack: its own rules, then apart the rules of each library it includes (their
    coverage is the library's, not the pack's: a minimum applies to the own rules)."""
    out: list[str] = []
    for pack in sorted(run.coverage):
        for origin in run.origins(pack):
            rules = run.rules_of(pack, origin)
            if not rules:
                continue
            counts = {
                s: sum(1 for r in rules if r.status == s)
                for s in ("covered", "never passed", "never fired", "untouched")
            }
            what = (
                f"coverage of {pack}"
                if origin == pack
                else f"coverage of {origin}'s rules included in {pack} (not counted in {pack}'s)"
            )
            out.append(
                f"\n{what}: {counts['covered']} of {len(rules)} rules fired and passed "
                f"({run.coverage_percent(pack, origin):.0f}%); never fired "
                f"{counts['never fired']}, never passed {counts['never passed']}, "
                f"untouched {counts['untouched']}"
            )
            width = max(len(r.rule) for r in rules)
            out.append(f"  {'rule':<{width}}  {'fired':>5}  {'passed':>6}  status        source")
            for entry in sorted(rules, key=lambda r: (r.status == "covered", r.rule)):
                out.append(
                    f"  {entry.rule:<{width}}  {entry.fired:>5}  {entry.passed:>6}  "
                    f"{entry.status:<12}  {entry.file}:{entry.line}"
                )
                for index, label in enumerate(entry.version_labels if entry.dated else ()):
                    fired, passed = entry.versions.get(index, [0, 0])
                    out.append(
                        f"  {'':<{width}}  {fired:>5}  {passed:>6}  {'':<12}  version {label}"
                    )
    return "\n".join(out)


def _rules_json(rules: Iterable[RuleCoverage]) -> list[dict[str, Any]]:
    return [
        {
            "rule": r.rule,
            "fired": r.fired,
            "passed": r.passed,
            "status": r.status,
            "source": f"{r.file}:{r.line}",
        }
        for r in sorted(rules, key=lambda r: r.rule)
    ]


def render_json(run: CaseRun, *, coverage: bool, minimum: float | None = None) -> str:
    """`--format json`: one object - each case (name, file, line, rule, rules, passed,
    status, message), the case file errors, the totals, and with coverage each pack's."""
    cases = []
    for result in run.results:
        rules = case_rules(result.case)
        cases.append(
            {
                "name": result.case.name,
                "file": display_path(result.case.file),
                "line": result.case.line,
                "rule": rules[0] if rules else None,
                "rules": rules,
                "passed": result.passed,
                "status": result.decision.status if result.decision is not None else None,
                "message": "; ".join(result.problems) or None,
            }
        )
    out: dict[str, Any] = {
        "cases": cases,
        "file_errors": [{"file": display_path(p), "message": m} for p, m in run.file_errors],
        "totals": {
            "cases": len(run.results),
            "passed": len(run.results) - len(run.failed),
            "failed": len(run.failed),
            "file_errors": len(run.file_errors),
        },
    }
    if coverage:
        out["coverage"] = {
            pack: {
                "percent": round(run.coverage_percent(pack), 1),
                "below_minimum": minimum is not None and pack in run.below(minimum),
                "rules": _rules_json(run.rules_of(pack, pack)),
                # the rules of included libraries, apart (not in `percent`)
                "included": {
                    origin: {
                        "percent": round(run.coverage_percent(pack, origin), 1),
                        "rules": _rules_json(run.rules_of(pack, origin)),
                    }
                    for origin in run.origins(pack)[1:]
                },
            }
            for pack in sorted(run.coverage)
        }
    return json.dumps(out, indent=2) + "\n"


def write_junit(run: CaseRun, out: TextIO, *, minimum: float | None = None) -> None:
    """JUnit XML: a test suite per case file, a test case per policy case (and, with a
    minimum coverage, a test case per pack for it)."""
    suites = ET.Element(
        "testsuites",
        name="cleanclaim policy cases",
        tests=str(len(run.results)),
        failures=str(len(run.failed)),
        errors=str(len(run.file_errors)),
        time=f"{run.seconds:.3f}",
    )
    by_file: dict[Path, list[CaseResult]] = {}
    for result in run.results:
        by_file.setdefault(result.case.file, []).append(result)
    for path, results in by_file.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=display_path(path),
            tests=str(len(results)),
            failures=str(sum(1 for r in results if not r.passed)),
            errors="0",
            time=f"{sum(r.seconds for r in results):.3f}",
        )
        for result in results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_classname(path),
                name=result.case.name,
                file=display_path(path),
                line=str(result.case.line),
                time=f"{result.seconds:.3f}",
            )
            if not result.passed:
                failure = ET.SubElement(
                    case, "failure", message=result.problems[0], type="PolicyCaseFailure"
                )
                failure.text = result.report
    for path, message in run.file_errors:
        suite = ET.SubElement(
            suites, "testsuite", name=display_path(path), tests="1", failures="0", errors="1"
        )
        case = ET.SubElement(suite, "testcase", classname=_classname(path), name="load")
        error = ET.SubElement(case, "error", message=message, type="CaseFileError")
        error.text = message
    if minimum is not None:
        below = set(run.below(minimum))
        suite = ET.SubElement(
            suites,
            "testsuite",
            name="coverage",
            tests=str(len(run.coverage)),
            failures=str(len(below)),
            errors="0",
        )
        for pack in sorted(run.coverage):
            case = ET.SubElement(
                suite, "testcase", classname="coverage", name=f"{pack} at least {minimum:g}%"
            )
            if pack in below:
                ET.SubElement(
                    case,
                    "failure",
                    type="CoverageBelowMinimum",
                    message=f"{run.coverage_percent(pack):.0f}% < {minimum:g}%",
                )
    ET.indent(suites)
    out.write(ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


def _classname(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    return ".".join(parts[-3:])


def exit_code(run: CaseRun, minimum: float | None) -> int:
    """0: every case passed (and coverage reached the minimum); 1 otherwise."""
    if run.failed or run.file_errors:
        return 1
    if minimum is not None and run.below(minimum):
        return 1
    return 0
