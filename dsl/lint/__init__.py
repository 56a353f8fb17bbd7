"""Policy lint: every error of the checker, plus warnings about policy quality.

`cleanclaim lint` runs the checker over a pack (so a pack that does not compile shows the
same located errors as `check`) and then the quality stages below, in order, over what the
checker learnt. Each problem carries a stable code (E… from the checker, W… from here), its
position, a one-line message and a hint; `docs/lint.md` has a page per code with a bad and
a good example.

What the quality stages detect, and what they do not:
- W101-W103 value sets: never used (for a library pack, by no pack that includes it
  either), holding a code twice (or a code a range or prefix of the same set already
  holds), holding no code at all;
- W201-W202 rules that can never fire: `applies to codes` with no code, or a scope that a
  plain top-level condition or filter rules out (`line.code in S` with S disjoint from the
  scope, `line.code not in S` with the scope inside S, `line.code == "X"` with X outside
  the scope, `when false`, `plan is "a"` and `plan is not "a"`, a place of service that is
  not two digits). Conditions are not solved: `line.units > 3 and line.units < 2` is not
  found;
- W207 an exception (`except when` / `except rule`) that can never apply;
- W203-W206 dated versions: every version ended before today, a version left no date by
  the versions that win over it, versions overlapping, gaps between versions;
- W301-W302 two rules of a pack (its includes too) that apply to the same lines (shared
  scope codes, or all lines), the same plan / place of service, on overlapping dates and
  with the same conditions, but a different outcome (W301) or the same one (W302).
  "The same conditions" is syntactic: the sets of `and`-ed conditions are equal once
  `let` names are replaced by what they stand for and positions are ignored. Conditions
  that are equivalent but written differently (`a < b` and `b > a`) are not found;
- W401 a rule (or a version) without a `reference`;
- W402 a rule that denies or rejects when a code is *not* found in a value set declared
  `partial` (pack.yaml): the engine gives such findings as `review` (dsl/valuesets.py
  `partial_notes`), so the written outcome is not what a claim gets until the list is
  complete (e.g. by `cleanclaim data import`);
- W403-W404 X12 usage of the outcome's codes: a CARC the X12 list allows only with another
  group (OA-18, PR-201, ...) or the group CR (corrections of adjudicated claims), and a CARC
  that X12 says needs a remark code given none (not for `info`);
- W405-W406 what rules read (reads.py): a comparison of an optional field without
  `is present` (a claim without it gets a review), a plan name no case claim has.

The modules, in the order a run goes: `run` (the targets, and the ordered table of stages
over one pack), `context` (what a stage works on), one module per group of stages
(`valuesets`, `scopes`, `versions`, `conflicts`, `outcomes`, `reads`), and `problems` (the
codes, a located problem, the report).
"""

from cleanclaim.dsl.lint.conflicts import condition_key, normalize
from cleanclaim.dsl.lint.context import LintContext, used_names
from cleanclaim.dsl.lint.problems import LINT_CODES, LintProblem, LintReport, all_codes
from cleanclaim.dsl.lint.run import STAGES, LintTargetError, TableLoader, lint, lint_pack

__all__ = [
    "LINT_CODES",
    "STAGES",
    "LintContext",
    "LintProblem",
    "LintReport",
    "LintTargetError",
    "TableLoader",
    "all_codes",
    "condition_key",
    "lint",
    "lint_pack",
    "normalize",
    "used_names",
]
