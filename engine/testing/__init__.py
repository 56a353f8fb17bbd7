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

The modules, in the order a run goes: `run` (find and run cases), `coverage`, `failures`
(a failing case side by side), `results`, `output` (text, JSON, JUnit), `commands` (glue
for the CLI).
"""

from cleanclaim.engine.testing.commands import explain_trace, lint_environment
from cleanclaim.engine.testing.coverage import version_in_force
from cleanclaim.engine.testing.failures import failure_report, rule_positions
from cleanclaim.engine.testing.output import (
    exit_code,
    render_coverage,
    render_json,
    render_text,
    write_junit,
)
from cleanclaim.engine.testing.results import CaseResult, CaseRun, RuleCoverage, RuleTrace
from cleanclaim.engine.testing.run import case_rules, case_selector, discover, run_cases

__all__ = [
    "CaseResult",
    "CaseRun",
    "RuleCoverage",
    "RuleTrace",
    "case_rules",
    "case_selector",
    "discover",
    "exit_code",
    "explain_trace",
    "failure_report",
    "lint_environment",
    "render_coverage",
    "render_json",
    "render_text",
    "rule_positions",
    "run_cases",
    "version_in_force",
    "write_junit",
]
