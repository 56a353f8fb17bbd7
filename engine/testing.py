"""`cleanclaim test`: run YAML policy cases, show failures side by side, measure rule
coverage, write JUnit XML.

Coverage says, for each rule of a pack the cases ran against, on how many targets (lines,
the claim, diagnoses) the cases made it **fire** and on how many it was in force (the
target was in its scope, its plan / place of service filters passed, a version covered
the date of service) but did **not** fire: it **passed**. A rule is covered when both
happened at least once; a rule no case put in force is **untouched**. The percentage
of a pack is its covered rules over all its rules. Whether a rule was in force is worked
out here from the claim and the rule's scope, filters and dates, so coverage costs the
engine nothing; the conditions themselves are not traced (that is `explain`).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cleanclaim.dsl import ast
from cleanclaim.dsl.compiler import CompiledRule
from cleanclaim.dsl.pack import display_path, find_pack, list_packs, load_sources
from cleanclaim.dsl.parser import parse_policy
from cleanclaim.dsl.types import plan_key, plan_of
from cleanclaim.engine.cases import (
    FINDING_FIELDS,
    CaseFileError,
    PolicyCase,
    case_files,
    compare,
    decide,
    invalid_claim,
    load_cases,
    match_findings,
)
from cleanclaim.engine.decision import Decision, Finding
from cleanclaim.engine.decoding import decode_claim
from cleanclaim.engine.model import Claim

# Called for a failing case with the engine, the case and a rule involved; returns the
# rule's trace as text (`explain`), or None. `run_cases(trace=...)` takes one.
RuleTrace = Callable[[Any, PolicyCase, str], str | None]


# ---- running cases ------------------------------------------------------------------------


@dataclass(slots=True)
class CaseResult:
    """One case run: its decision and what differed from the expectation."""

    case: PolicyCase
    decision: Decision | None
    problems: list[str]
    report: str = ""  # the failure, side by side (empty when the case passed)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class RuleCoverage:
    """How the cases exercised one rule of one pack."""

    pack: str
    rule: str
    file: str
    line: int
    fired: int = 0  # targets the rule fired on
    passed: int = 0  # targets the rule was in force for and did not fire on
    versions: dict[int, list[int]] = field(default_factory=dict)  # index -> [fired, passed]
    version_labels: tuple[str, ...] = ()  # "2026-01-01..", "..2025-12-31" per version

    @property
    def dated(self) -> bool:
        return any(label != ".." for label in self.version_labels)

    unconditional: bool = False  # `when true`: in force means fired, it cannot pass
    # The pack the rule is written in: `pack` itself, or a library it includes (`common`),
    # whose rules coverage reports apart from the pack's own.
    origin: str = ""

    @property
    def included(self) -> bool:
        return bool(self.origin) and self.origin != self.pack

    @property
    def status(self) -> str:
        if self.fired and (self.passed or self.unconditional):
            return "covered"
        if self.fired:
            return "never passed"
        if self.passed:
            return "never fired"
        return "untouched"


@dataclass(slots=True)
class CaseRun:
    """Everything `cleanclaim test` found."""

    results: list[CaseResult] = field(default_factory=list)
    file_errors: list[tuple[Path, str]] = field(default_factory=list)
    coverage: dict[str, dict[str, RuleCoverage]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def coverage_percent(self, pack: str, origin: str | None = None) -> float:
        """The share of the pack's own rules the cases covered (`origin`: of the rules of
        that included library instead). A minimum coverage applies to the own rules."""
        rules = self.rules_of(pack, origin or pack)
        if not rules:
            return 100.0
        return 100.0 * sum(1 for r in rules if r.status == "covered") / len(rules)

    def rules_of(self, pack: str, origin: str) -> list[RuleCoverage]:
        """The pack's rules written in `origin` (the pack itself or a library it includes)."""
        return [r for r in self.coverage.get(pack, {}).values()
                if (r.origin or pack) == origin]

    def origins(self, pack: str) -> list[str]:
        """The pack itself, then the libraries its rules come from, sorted."""
        found = {r.origin for r in self.coverage.get(pack, {}).values() if r.included}
        return [pack, *sorted(found)]

    def below(self, minimum: float) -> list[str]:
        """Packs whose coverage is below `minimum` percent."""
        return [p for p in sorted(self.coverage) if self.coverage_percent(p) < minimum]


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
    return list(dict.fromkeys(str(f["rule"]) for f in case.expect_findings or ()
                              if "rule" in f))


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


def run_cases(engine: Any, files: Iterable[Path], *, coverage: bool = False,
              trace: RuleTrace | None = None,
              select: Callable[[PolicyCase], bool] | None = None) -> CaseRun:
    """Run every case of the files (the `select`ed ones, given `select`); with
    `coverage`, record what each rule did."""
    run = CaseRun()
    started = time.perf_counter()
    rules_of = _RuleIndex(engine) if coverage else None
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
        return CaseResult(case, None, [f"the engine raised {type(exc).__name__}: {exc}"],
                          f"  the engine raised {type(exc).__name__}: {exc}",
                          time.perf_counter() - started)
    problems = compare(case, decision)
    report = "" if not problems else failure_report(engine, case, decision, trace)
    return CaseResult(case, decision, problems, report, time.perf_counter() - started)


# ---- failures, side by side ---------------------------------------------------------------

_SHOWN_FIELDS = ("rule", "line", "severity", "group", "carc", "rarc", "root_cause", "owner",
                 "message")
_COLUMN = 46


def _value(finding: Finding, name: str) -> str:
    value = getattr(finding, name)
    if name == "rarc":
        return "[" + ", ".join(value) + "]"
    return "-" if value is None else str(value)


def _expected_value(expected: Mapping[str, Any], name: str) -> str:
    value = expected[name]
    if name == "rarc":
        items = [value] if isinstance(value, str) else list(value)
        return "[" + ", ".join(str(v) for v in items) + "]"
    return str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _pair_rows(expected: Mapping[str, Any] | None, actual: Finding | None) -> list[str]:
    """Rows `field  expected | actual`, `≠` marking a field that differs."""
    # The fields the case lists; an actual finding nobody expected shows the usual ones.
    names = [n for n in FINDING_FIELDS if expected is not None and n in expected]
    if not names:
        names = list(_SHOWN_FIELDS)
    rows = []
    for name in names:
        left = _expected_value(expected, name) if expected is not None and name in expected \
            else ""
        right = _value(actual, name) if actual is not None else ""
        differs = expected is not None and actual is not None and name in expected and (
            not match_findings([{name: expected[name]}], [actual]).matched)
        mark = "≠" if differs else " "
        rows.append(f"    {name:<11}{_clip(left, _COLUMN):<{_COLUMN}} {mark} | "
                    f"{_clip(right, _COLUMN)}".rstrip())
    if expected is None:
        rows.insert(0, f"    {'':<11}{'(not expected)':<{_COLUMN}}   |")
    if actual is None:
        rows.insert(0, f"    {'':<11}{'':<{_COLUMN}}   | (no such finding)")
    return rows


def _pairs(missing: list[dict[str, Any]], unexpected: list[Finding]
           ) -> list[tuple[dict[str, Any] | None, Finding | None]]:
    """Missing and unexpected findings paired by rule (and line), so that the fields that
    differ stand side by side; the rest alone."""
    left = list(unexpected)
    pairs: list[tuple[dict[str, Any] | None, Finding | None]] = []
    for wanted in missing:
        candidates = [f for f in left if "rule" not in wanted or f.rule == str(wanted["rule"])]
        same_line = [f for f in candidates if "line" in wanted and f.line == wanted["line"]]
        chosen = (same_line or candidates)[0] if (same_line or candidates) else None
        if chosen is not None:
            left.remove(chosen)
        pairs.append((wanted, chosen))
    pairs.extend((None, f) for f in left)
    return pairs


def rule_positions(engine: Any) -> dict[str, str]:
    """Rule id -> `file:line` over the engine's packs."""
    positions: dict[str, str] = {}
    for program in getattr(engine, "programs", {}).values():
        for rule in program.rules:
            positions.setdefault(rule.id, f"{rule.file}:{rule.line}")
    return positions


def failure_report(engine: Any, case: PolicyCase, decision: Decision,
                   trace: RuleTrace | None = None) -> str:
    """A failed case: status, expected and actual findings side by side, where the rules
    involved stand, and (given a `trace`) the trace of each."""
    lines = [f"  {problem}" for problem in invalid_claim(case, decision)]
    if case.expect_status is not None and decision.status != case.expect_status:
        lines.append(f"  status: expected {case.expect_status}, got {decision.status}")
    involved: list[str] = []
    if case.expect_findings is not None:
        match = match_findings(case.expect_findings, decision.findings)
        pairs = _pairs(match.missing, match.unexpected)
        if pairs:
            lines.append(f"  findings   {'expected':<{_COLUMN}}     | actual")
            for wanted, found in pairs:
                lines.extend(_pair_rows(wanted, found))
                lines.append("    " + "-" * (11 + _COLUMN + 3) + "+" + "-" * 20)
            for wanted, found in pairs:
                for rule_id in (str(wanted["rule"]) if wanted and "rule" in wanted else None,
                                found.rule if found else None):
                    if rule_id and rule_id not in involved:
                        involved.append(rule_id)
        if match.matched:
            lines.append(f"  ({len(match.matched)} expected finding"
                         f"{'s' if len(match.matched) != 1 else ''} found as listed)")
    positions = rule_positions(engine)
    for rule_id in involved:
        lines.append(f"  rule {rule_id}: {positions.get(rule_id, 'not in any loaded pack')}")
        if trace is not None:
            text = trace(engine, case, rule_id)
            if text:
                lines.extend("    " + t for t in text.splitlines())
    return "\n".join(lines)


# ---- coverage -----------------------------------------------------------------------------


class _RuleIndex:
    """The rules of the engine's packs with what coverage needs: scope, codes, versions
    (from the compiled rules) and plan / place of service filters (from the syntax tree)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.programs: Mapping[str, Any] = getattr(engine, "programs", {})
        self.filters: dict[str, tuple[ast.ValueFilter, ...]] = {}
        self.unconditional: set[str] = set()
        self.origin: dict[str, str] = {}  # file -> the pack it is of
        roots = getattr(engine, "roots", [])
        for pack_id in self.programs:
            sources = load_sources(roots, pack_id)
            if sources is None:
                continue
            self.origin.update(sources.file_pack)
            for name, text in sources.files.items():
                tree, _errors = parse_policy(text, name)
                for rule in tree.rules if tree is not None else ():
                    self.filters.setdefault(rule.id, rule.filters)
                    if all(isinstance(c, ast.Literal_) and c.value is True
                           for v in rule.versions for c in v.conditions):
                        self.unconditional.add(rule.id)

    def _entry(self, coverage: dict[str, dict[str, RuleCoverage]], pack: str,
               rule: CompiledRule) -> RuleCoverage:
        rules = coverage.setdefault(pack, {})
        entry = rules.get(rule.id)
        if entry is None:
            labels = tuple(f"{v.start or ''}..{v.end or ''}" for v in rule.versions)
            entry = RuleCoverage(pack, rule.id, rule.file, rule.line, version_labels=labels,
                                 unconditional=rule.id in self.unconditional,
                                 origin=self.origin.get(rule.file, pack))
            rules[rule.id] = entry
        return entry

    def record(self, case: PolicyCase, decision: Decision,
               coverage: dict[str, dict[str, RuleCoverage]]) -> None:
        claim = self._decode(case)
        if claim is None:
            return
        program = self.programs.get(claim.payer)
        if program is None:
            return
        fired_lines: dict[str, list[int | None]] = {}
        for finding in decision.findings:
            fired_lines.setdefault(finding.rule, []).append(finding.line)
        for rule in program.rules:
            entry = self._entry(coverage, claim.payer, rule)
            if not self._filters_pass(rule, claim):
                continue
            fired = fired_lines.get(rule.id, [])
            for target_line, day in _targets(rule, claim):
                version = version_in_force(rule, day)
                if version is None:
                    continue
                counts = entry.versions.setdefault(version, [0, 0])
                if target_line in fired:
                    fired.remove(target_line)
                    entry.fired += 1
                    counts[0] += 1
                else:
                    entry.passed += 1
                    counts[1] += 1

    def _decode(self, case: PolicyCase) -> Claim | None:
        today = case.today or getattr(self.engine, "today", None) or dt.date.today()
        claim, _problems = decode_claim(case.claim, today)
        return claim

    def _filters_pass(self, rule: CompiledRule, claim: Claim) -> bool:
        for vf in self.filters.get(rule.id, ()):
            if vf.field == "plan":  # the plan of the claim, case-insensitively (as rules)
                plan = plan_key(plan_of(claim, claim.first_service_date))
                inside = plan in {plan_key(v) for v in vf.values}
            else:
                inside = claim.place_of_service in vf.values
            if inside == vf.negated:
                return False
        return True

    def add_untouched(self, coverage: dict[str, dict[str, RuleCoverage]]) -> None:
        """Every rule of a pack some case ran against gets an entry, touched or not."""
        for pack in list(coverage):
            program = self.programs.get(pack)
            for rule in program.rules if program is not None else ():
                self._entry(coverage, pack, rule)


def _targets(rule: CompiledRule, claim: Claim) -> list[tuple[int | None, dt.date]]:
    """What a rule is applied to on a claim (line number, None for claim and diagnosis
    rules) with the date of service that picks its version."""
    if rule.scope == "codes":
        return [(ln.line, ln.service_date) for ln in claim.lines if ln.code in rule.codes]
    if rule.scope == "all_lines":
        return [(ln.line, ln.service_date) for ln in claim.lines]
    if rule.scope == "diagnosis":
        return [(None, claim.first_service_date) for _ in claim.diagnosis_items]
    return [(None, claim.first_service_date)]


def version_in_force(rule: CompiledRule, day: dt.date) -> int | None:
    """The index of the version that applies on `day` (the latest start wins, as the
    compiler orders them), or None when no version covers it."""
    order = sorted(range(len(rule.versions)),
                   key=lambda i: rule.versions[i].start or dt.date.min, reverse=True)
    for index in order:
        version = rule.versions[index]
        if (version.start is None or version.start <= day) and (
                version.end is None or day <= version.end):
            return index
    return None


# ---- output -------------------------------------------------------------------------------


def render_text(run: CaseRun, *, coverage: bool, verbose: bool = False,
                minimum: float | None = None) -> str:
    out: list[str] = []
    by_file: dict[Path, list[CaseResult]] = {}
    for result in run.results:
        by_file.setdefault(result.case.file, []).append(result)
    for path, message in run.file_errors:
        out.append(f"ERROR {display_path(path)}: {message}")
    for path, results in by_file.items():
        failed = [r for r in results if not r.passed]
        out.append(f"{display_path(path)}: {len(results) - len(failed)} passed"
                   + (f", {len(failed)} failed" if failed else ""))
        for result in results:
            if verbose and result.passed:
                out.append(f"  ok   {result.case.name}")
            if not result.passed:
                out.append(f"FAIL {display_path(result.case.file)}:{result.case.line}: "
                           f"{result.case.name}")
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
            out.append(f"coverage of {pack} is {run.coverage_percent(pack):.0f}%, "
                       f"below the minimum of {minimum:g}%")
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
            counts = {s: sum(1 for r in rules if r.status == s)
                      for s in ("covered", "never passed", "never fired", "untouched")}
            what = (f"coverage of {pack}" if origin == pack
                    else f"coverage of {origin}'s rules included in {pack} (not counted in "
                    f"{pack}'s)")
            out.append(f"\n{what}: {counts['covered']} of {len(rules)} rules fired and passed "
                       f"({run.coverage_percent(pack, origin):.0f}%); never fired "
                       f"{counts['never fired']}, never passed {counts['never passed']}, "
                       f"untouched {counts['untouched']}")
            width = max(len(r.rule) for r in rules)
            out.append(f"  {'rule':<{width}}  {'fired':>5}  {'passed':>6}  status        source")
            for entry in sorted(rules, key=lambda r: (r.status == "covered", r.rule)):
                out.append(f"  {entry.rule:<{width}}  {entry.fired:>5}  {entry.passed:>6}  "
                           f"{entry.status:<12}  {entry.file}:{entry.line}")
                for index, label in enumerate(entry.version_labels if entry.dated else ()):
                    fired, passed = entry.versions.get(index, [0, 0])
                    out.append(f"  {'':<{width}}  {fired:>5}  {passed:>6}  {'':<12}  "
                               f"version {label}")
    return "\n".join(out)


def _rules_json(rules: Iterable[RuleCoverage]) -> list[dict[str, Any]]:
    return [{"rule": r.rule, "fired": r.fired, "passed": r.passed, "status": r.status,
             "source": f"{r.file}:{r.line}"} for r in sorted(rules, key=lambda r: r.rule)]


def render_json(run: CaseRun, *, coverage: bool, minimum: float | None = None) -> str:
    """`--format json`: one object - each case (name, file, line, rule, rules, passed,
    status, message), the case file errors, the totals, and with coverage each pack's."""
    cases = []
    for result in run.results:
        rules = case_rules(result.case)
        cases.append({
            "name": result.case.name, "file": display_path(result.case.file),
            "line": result.case.line, "rule": rules[0] if rules else None, "rules": rules,
            "passed": result.passed,
            "status": result.decision.status if result.decision is not None else None,
            "message": "; ".join(result.problems) or None})
    out: dict[str, Any] = {
        "cases": cases,
        "file_errors": [{"file": display_path(p), "message": m} for p, m in run.file_errors],
        "totals": {"cases": len(run.results), "passed": len(run.results) - len(run.failed),
                   "failed": len(run.failed), "file_errors": len(run.file_errors)},
    }
    if coverage:
        out["coverage"] = {
            pack: {"percent": round(run.coverage_percent(pack), 1),
                   "below_minimum": minimum is not None and pack in run.below(minimum),
                   "rules": _rules_json(run.rules_of(pack, pack)),
                   # the rules of included libraries, apart (not in `percent`)
                   "included": {
                       origin: {"percent": round(run.coverage_percent(pack, origin), 1),
                                "rules": _rules_json(run.rules_of(pack, origin))}
                       for origin in run.origins(pack)[1:]}}
            for pack in sorted(run.coverage)}
    return json.dumps(out, indent=2) + "\n"


def write_junit(run: CaseRun, out: TextIO, *, minimum: float | None = None) -> None:
    """JUnit XML: a test suite per case file, a test case per policy case (and, with a
    minimum coverage, a test case per pack for it)."""
    suites = ET.Element("testsuites", name="cleanclaim policy cases",
                        tests=str(len(run.results)), failures=str(len(run.failed)),
                        errors=str(len(run.file_errors)), time=f"{run.seconds:.3f}")
    by_file: dict[Path, list[CaseResult]] = {}
    for result in run.results:
        by_file.setdefault(result.case.file, []).append(result)
    for path, results in by_file.items():
        suite = ET.SubElement(suites, "testsuite", name=display_path(path),
                              tests=str(len(results)),
                              failures=str(sum(1 for r in results if not r.passed)),
                              errors="0", time=f"{sum(r.seconds for r in results):.3f}")
        for result in results:
            case = ET.SubElement(suite, "testcase", classname=_classname(path),
                                 name=result.case.name, file=display_path(path),
                                 line=str(result.case.line), time=f"{result.seconds:.3f}")
            if not result.passed:
                failure = ET.SubElement(case, "failure", message=result.problems[0],
                                        type="PolicyCaseFailure")
                failure.text = result.report
    for path, message in run.file_errors:
        suite = ET.SubElement(suites, "testsuite", name=display_path(path), tests="1",
                              failures="0", errors="1")
        case = ET.SubElement(suite, "testcase", classname=_classname(path), name="load")
        error = ET.SubElement(case, "error", message=message, type="CaseFileError")
        error.text = message
    if minimum is not None:
        below = set(run.below(minimum))
        suite = ET.SubElement(suites, "testsuite", name="coverage",
                              tests=str(len(run.coverage)), failures=str(len(below)),
                              errors="0")
        for pack in sorted(run.coverage):
            case = ET.SubElement(suite, "testcase", classname="coverage",
                                 name=f"{pack} at least {minimum:g}%")
            if pack in below:
                ET.SubElement(case, "failure", type="CoverageBelowMinimum",
                              message=f"{run.coverage_percent(pack):.0f}% < {minimum:g}%")
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


# ---- glue for the CLI ---------------------------------------------------------------------


def explain_trace(engine: Any, case: PolicyCase, rule_id: str) -> str | None:
    """The `explain` trace of one rule on a case's claim (a `RuleTrace` for `run_cases`)."""
    explain = getattr(engine, "explain", None)
    if explain is None:
        return None
    from cleanclaim.dsl.explain import render_text as render_trace

    saved = engine.today
    engine.today = case.today or saved
    try:
        if (case.history or case.batch) and hasattr(engine, "explain_in_run"):
            # As the case was decided (cases.decide): its history on file, its claims
            # checked in one run; the trace shows what the counters counted.
            from cleanclaim.engine.history import HistoryStore, put_on_file

            with HistoryStore.memory() as store:
                if case.history:
                    put_on_file(engine, store, case.history)
                found = engine.explain_in_run(case.batch or (case.claim,), rule=rule_id,
                                              history=store, position=case.batch_index)
            if found is None:
                return "(the case's claim could not be read)"
            decision, traces = found
        else:
            decision, traces = explain(case.claim, rule_id)
    except Exception as exc:  # the trace is an aid; a failing one must not hide the failure
        return f"(no trace: {type(exc).__name__}: {exc})"
    finally:
        engine.today = saved
    if not traces:
        return "(the rule was not considered for this claim)"
    text = render_trace(decision.claim_id, traces)
    return "\n".join(text.splitlines()[1:]).strip("\n")


def lint_environment(policies: Sequence[Path] | None
                     ) -> tuple[Any, dict[str, Callable[[Path], object]], list[Path]]:
    """What `cleanclaim lint` checks against: the functions and tables an engine offers
    (built-ins, the engine's functions, the NCCI table loaders) and the policy roots."""
    from cleanclaim.dsl.checker import CheckEnv
    from cleanclaim.engine.engine import TABLE_LOADERS, shipped_policies
    from cleanclaim.engine.refdata.tables import TABLE_SCHEMAS
    from cleanclaim.engine.runtime import standard_functions

    functions = {f.name: f for f in standard_functions()}  # the engine's, without plugins
    env = CheckEnv(functions, frozenset(TABLE_LOADERS), table_schemas=TABLE_SCHEMAS)
    roots = list(policies) if policies else [shipped_policies()]
    return env, dict(TABLE_LOADERS), roots
