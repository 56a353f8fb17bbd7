"""Policy cases: YAML files of claims in and expected decisions out.

```yaml
today: 2026-03-02            # optional: the date a claim without received_date is received
base:                        # optional: a claim every case starts from
  claim_id: C-1
  payer: medicare
  ...
cases:
  - name: day 365 is on time
    claim:                   # merged onto `base` (objects merge, lists replace)
      received_date: 2027-02-10
    expect:
      status: clean
      findings: []           # the complete list; omit it to check the status only
  - name: day 366 is late
    claim: {received_date: 2027-02-11}
    expect:
      status: deny
      findings:
        - {rule: medicare/timely-filing/one-year, line: 1, carc: "29"}
```
Each expected finding matches one actual finding on every field it lists (unlisted fields
are ignored); the lists must pair up one to one. pytest collects these files
(`tests/conftest.py`) and `cleanclaim test` runs them.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cleanclaim.engine.decision import Decision, Finding

FINDING_FIELDS = ("rule", "kind", "severity", "line", "group", "carc", "rarc", "root_cause",
                  "owner", "message", "reference")


class CaseFileError(Exception):
    """A case file cannot be read; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class PolicyCase:
    name: str
    file: Path
    claim: dict[str, Any]
    expect_status: str | None
    expect_findings: list[dict[str, Any]] | None
    today: dt.date | None
    line: int = 0


@dataclass(slots=True)
class CaseOutcome:
    case: PolicyCase
    decision: Decision
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def merge(base: Any, override: Any) -> Any:
    """Objects merge key by key; anything else (lists included) replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


class _DateSafeLoader(yaml.SafeLoader):
    """YAML without implicit dates: claim dates stay strings as in claim JSON."""


_DateSafeLoader.yaml_implicit_resolvers = {
    k: [(tag, regexp) for tag, regexp in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _as_date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise CaseFileError(f"{where}: `today` must be YYYY-MM-DD") from exc


def load_cases(path: Path) -> list[PolicyCase]:
    """Read one case file; raises `CaseFileError` naming the file for a malformed one."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=_DateSafeLoader)
        data = yaml.load(text, Loader=_DateSafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise CaseFileError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise CaseFileError(f"{path}: a case file needs a `cases:` list")
    lines: list[int] = []
    if node is not None and isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "cases" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    base = data.get("base") or {}
    today = _as_date(data.get("today"), str(path))
    cases = []
    for index, raw in enumerate(data["cases"]):
        where = f"{path}: case {index + 1}"
        if not isinstance(raw, dict) or "name" not in raw or "expect" not in raw:
            raise CaseFileError(f"{where}: a case needs `name` and `expect`")
        expect = raw["expect"]
        if not isinstance(expect, dict):
            raise CaseFileError(f"{where}: `expect` must be a mapping")
        findings = expect.get("findings")
        if findings is not None and not isinstance(findings, list):
            raise CaseFileError(f"{where}: `expect.findings` must be a list")
        for finding in findings or []:
            unknown = set(finding) - set(FINDING_FIELDS)
            if unknown:
                raise CaseFileError(f"{where}: unknown finding field(s) {sorted(unknown)}")
        claim = merge(base, raw.get("claim") or {})
        cases.append(PolicyCase(
            name=str(raw["name"]), file=path, claim=claim,
            expect_status=expect.get("status"), expect_findings=findings,
            today=_as_date(raw.get("today"), where) or today,
            line=lines[index] if index < len(lines) else 0))
    return cases


def _matches(expected: Mapping[str, Any], actual: Finding) -> bool:
    for key, value in expected.items():
        got = getattr(actual, key)
        if key == "rarc":
            want = [value] if isinstance(value, str) else list(value)
            if [str(v) for v in want] != got:
                return False
        elif key == "message":
            if str(value) not in got:  # a fragment of the message
                return False
        elif key == "line":
            if value != got:
                return False
        elif str(value) != str(got):
            return False
    return True


def compare(case: PolicyCase, decision: Decision) -> list[str]:
    """What differs between the expected and the actual decision (empty: the case passes)."""
    problems: list[str] = []
    if case.expect_status is not None and decision.status != case.expect_status:
        problems.append(f"status: expected {case.expect_status}, got {decision.status}")
    if case.expect_findings is None:
        return problems
    remaining = list(decision.findings)
    missing = []
    for expected in case.expect_findings:
        for i, actual in enumerate(remaining):
            if _matches(expected, actual):
                del remaining[i]
                break
        else:
            missing.append(expected)
    for expected in missing:
        problems.append(f"missing finding: {_show(expected)}")
    for actual in remaining:
        problems.append(f"unexpected finding: {_show_finding(actual)}")
    return problems


def _show(expected: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in expected.items())


def _show_finding(f: Finding) -> str:
    return (f"rule={f.rule}, line={f.line}, {f.group}-{f.carc} {' '.join(f.rarc)}, "
            f"root_cause={f.root_cause}: {f.message}")


def run_case(engine: Any, case: PolicyCase) -> CaseOutcome:
    decision = engine.check(case.claim, today=case.today)
    return CaseOutcome(case, decision, compare(case, decision))


def case_files(root: Path) -> list[Path]:
    """Case files under a folder: `cases/*.yaml` of each pack, or every YAML below it."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.yaml") if "cases" in p.parts)
