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
  - name: the 21st therapy visit of the year is over the limit
    history:                 # optional: the member's earlier claims, each merged onto
      - {claim_id: C-0, lines: [...]}   # `base`; checked in one batch with `claim`
    claim: {...}
    expect: {status: deny}
  - name: a second ECG interpretation on the same date
    history: [...]           # optional, as above
    claims:                  # several claims checked in one batch, each merged onto `base`
      - claim: {claim_id: E-1}
        expect: {status: clean}          # one case per claim with an `expect`
      - claim: {claim_id: E-2, rendering_provider: {npi: "1245319599"}}
        expect: {status: deny}
```
A file may name the reference tables its cases run with, replacing the pack's table of
that format (as `cleanclaim check --ptp/--mue` or an imported file would), each path
relative to the case file: `tables: {cms-mpfs: fixtures/PPRRVU26_JAN.csv}`. A fixture is
no CMS data: say so in its first line.
Claims of a batch count against each other in the counting order (date of service, then
received date, then claim id), whatever their order in the file.
Each expected finding matches one actual finding on every field it lists (unlisted fields
are ignored); the lists must pair up one to one. pytest collects these files
(`tests/policy_cases_plugin.py`) and `cleanclaim test` runs them (`engine/testing/`:
side-by-side failures, rule coverage, JUnit XML).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cleanclaim.engine.decision import Decision, Finding

FINDING_FIELDS = (
    "rule",
    "kind",
    "severity",
    "line",
    "group",
    "carc",
    "rarc",
    "root_cause",
    "owner",
    "message",
    "reference",
)


# The keys a case file may use, as a tree: a mapping's known keys (each with the shape of
# its value), `"[]"` the shape of each item of a list, None a value not checked further.
# A claim knows the keys of claim format v1 (docs/design.md) and those the X12/FHIR readers
# add (engine/formats); `documentation`, `source`, `service_facility` and addresses are
# free-form. A real claim may carry more keys; a case claim may not (a typo is an error).
_Shape = dict[str, Any] | None
_PROVIDER: _Shape = {"npi": None, "taxonomy": None, "specialty": None, "address": None}
_CLAIM: _Shape = {
    "claim_id": None,
    "payer": None,
    "plan": None,
    "frequency": None,
    "replaces": None,
    "received_date": None,
    "place_of_service": None,
    "service_state": None,
    "clia_number": None,
    "insurance": {
        "[]": {"payer": None, "plan": None, "start": None, "end": None, "type": None, "order": None}
    },
    "service_facility": None,
    "source": None,
    "documentation": None,
    "diagnoses": None,
    "member": {
        "id": None,
        "birth_date": None,
        "sex": None,
        "date_of_death": None,
        "coverage": {
            "[]": {
                "payer": None,
                "plan": None,
                "start": None,
                "end": None,
                "type": None,
                "order": None,
            }
        },
        "therapy_ytd": {"pt_slp": None, "ot": None, "as_of": None},
    },
    "billing_provider": _PROVIDER,
    "rendering_provider": _PROVIDER,
    "referring_provider": _PROVIDER,
    "ordering_provider": _PROVIDER,
    "authorizations": {
        "[]": {
            "number": None,
            "codes": None,
            "start": None,
            "end": None,
            "units": None,
            "provider_npi": None,
        }
    },
    "lines": {
        "[]": {
            "line": None,
            "code": None,
            "modifiers": None,
            "units": None,
            "charge": None,
            "service_date": None,
            "diagnosis_pointers": None,
            "minutes": None,
            "place_of_service": None,
            "service_end_date": None,
            "expected_allowed": None,
            "clia_number": None,
        }
    },
}
_EXPECT: _Shape = {"status": None, "findings": None}  # findings: FINDING_FIELDS, checked apart
_CASE_FILE: _Shape = {
    "today": None,
    "plugins": None,
    "tables": None,
    "base": _CLAIM,
    "cases": {
        "[]": {
            "name": None,
            "today": None,
            "claim": _CLAIM,
            "expect": _EXPECT,
            "history": {"[]": _CLAIM},
            "claims": {"[]": {"claim": _CLAIM, "expect": _EXPECT}},
        }
    },
}
# The rule of the engine's findings for a claim it cannot read (engine/engine.py).
CLAIM_FORMAT_RULE = "engine/claim-format"


def unknown_keys(node: Any, shape: _Shape = _CASE_FILE, where: str = "") -> list[tuple[int, str]]:
    """(line, "unknown key `path`") for each key of a composed YAML document that its
    shape does not know (with the nearest known key as a hint)."""
    if shape is None:
        return []
    out: list[tuple[int, str]] = []
    if "[]" in shape:
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out.extend(unknown_keys(item, shape["[]"], f"{where}[{i}]"))
        return out
    if not isinstance(node, yaml.MappingNode):
        return out
    for key, value in node.value:
        name = str(key.value)
        path = f"{where}.{name}" if where else name
        if name == "<<":  # a YAML merge key: its mapping(s) hold this mapping's keys
            merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for item in merged:
                out.extend(unknown_keys(item, shape, where))
        elif name not in shape:
            close = difflib.get_close_matches(name, [k for k in shape if k != "[]"], 1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            out.append((key.start_mark.line + 1, f"unknown key `{path}`{hint}"))
        else:
            out.extend(unknown_keys(value, shape[name], path))
    return out


def invalid_claim(case: PolicyCase, decision: Decision) -> list[str]:
    """`the case's claim is not valid: <field>: <reason>` for each reason the engine could
    not read the case's claim, unless the case expects that reject (lists a matching
    finding, or expects status `reject` without listing findings)."""
    bad = [f for f in decision.findings if f.rule == CLAIM_FORMAT_RULE]
    if not bad:
        return []
    if case.expect_findings is None:
        if case.expect_status == "reject":
            return []
    else:
        unexpected = match_findings(case.expect_findings, decision.findings).unexpected
        bad = [f for f in bad if any(f is u for u in unexpected)]
    return [f"the case's claim is not valid: {f.message}" for f in bad]


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
    # A case of several claims (`claims:`): the claims checked together in one batch after
    # `history`; `claim` is `batch[batch_index]`.
    batch: tuple[dict[str, Any], ...] = ()
    batch_index: int = 0
    # Earlier claims of the member: the case's claim is checked after them, in one batch,
    # so counters of claim history count them.
    history: tuple[dict[str, Any], ...] = ()
    # The file's `tables:` - (table format, file) pairs the case runs with.
    tables: tuple[tuple[str, Path], ...] = ()


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
    unknown = unknown_keys(node)
    if unknown:
        raise CaseFileError("\n".join(f"{path}:{line}: {problem}" for line, problem in unknown))
    lines: list[int] = []
    if node is not None and isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "cases" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    base = data.get("base") or {}
    today = _as_date(data.get("today"), str(path))
    tables = _tables(data.get("tables"), path)
    cases: list[PolicyCase] = []
    for index, raw in enumerate(data["cases"]):
        where = f"{path}: case {index + 1}"
        if isinstance(raw, dict) and "claims" in raw:
            cases.extend(
                dataclasses.replace(c, tables=tables)
                for c in _batch_cases(
                    raw,
                    base,
                    path,
                    where,
                    _item_lines(node, index),
                    _as_date(raw.get("today"), where) or today,
                )
            )
            continue
        if not isinstance(raw, dict) or "name" not in raw or "expect" not in raw:
            raise CaseFileError(f"{where}: a case needs `name` and `expect`")
        expect = raw["expect"]
        findings = _expected_findings(expect, where)
        claim = merge(base, raw.get("claim") or {})
        history = raw.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise CaseFileError(f"{where}: `history` must be a list of claims")
        cases.append(
            PolicyCase(
                name=str(raw["name"]),
                file=path,
                claim=claim,
                expect_status=expect.get("status"),
                expect_findings=findings,
                today=_as_date(raw.get("today"), where) or today,
                line=lines[index] if index < len(lines) else 0,
                history=tuple(merge(base, h) for h in history),
                tables=tables,
            )
        )
    return cases


def _tables(raw: Any, path: Path) -> tuple[tuple[str, Path], ...]:
    """A case file's `tables:` (format -> file relative to the case file), checked."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise CaseFileError(
            f"{path}: `tables` maps a table format to a file "
            "(e.g. `cms-mpfs: fixtures/PPRRVU26_JAN.csv`)"
        )
    out = []
    for fmt, name in sorted(raw.items()):
        file = (path.parent / name).resolve()
        if not file.is_file():
            raise CaseFileError(f"{path}: tables.{fmt}: no such file {name}")
        out.append((fmt, file))
    return tuple(out)


# Engines with a case file's tables, per (engine, tables): built once (compiling costs).
_WITH_TABLES: dict[tuple[int, tuple[tuple[str, Path], ...]], tuple[Any, Any]] = {}


def engine_with_tables(engine: Any, tables: tuple[tuple[str, Path], ...]) -> Any:
    """`engine` with these tables replacing its own of the same format (same packs, date,
    functions and plugins)."""
    if not tables:
        return engine
    key = (id(engine), tables)
    hit = _WITH_TABLES.get(key)
    if hit is None or hit[0] is not engine:
        from cleanclaim.engine.engine import Engine

        derived = Engine(
            engine.roots,
            tables={**engine.table_overrides, **dict(tables)},
            today=engine.today,
            functions=engine.extra_functions,
            plugins=engine.plugins if engine.plugins is not None else (),
        )
        hit = _WITH_TABLES[key] = (engine, derived)
    return hit[1]


def _expected_findings(expect: Any, where: str) -> list[dict[str, Any]] | None:
    """The findings an `expect:` mapping lists (None when it lists none), checked."""
    if not isinstance(expect, dict):
        raise CaseFileError(f"{where}: `expect` must be a mapping")
    findings = expect.get("findings")
    if findings is not None and not isinstance(findings, list):
        raise CaseFileError(f"{where}: `expect.findings` must be a list")
    for finding in findings or []:
        unknown = set(finding) - set(FINDING_FIELDS)
        if unknown:
            raise CaseFileError(f"{where}: unknown finding field(s) {sorted(unknown)}")
    return findings


def _batch_cases(
    raw: dict[str, Any],
    base: dict[str, Any],
    path: Path,
    where: str,
    lines: tuple[int, list[int]],
    today: dt.date | None,
) -> list[PolicyCase]:
    """The cases of `claims:` - several claims checked in one batch (after `history`), each
    `{claim: ..., expect: ...}`: one case per claim that has an `expect`."""
    items = raw["claims"]
    if "name" not in raw or not isinstance(items, list) or not items:
        raise CaseFileError(
            f"{where}: a case with `claims` needs `name` and a non-empty "
            "list of `{claim: ..., expect: ...}`"
        )
    history = raw.get("history") or []
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise CaseFileError(f"{where}: `history` must be a list of claims")
    claims: list[dict[str, Any]] = []
    expects: list[dict[str, Any] | None] = []
    for i, item in enumerate(items):
        at = f"{where}, claim {i + 1}"
        if not isinstance(item, dict) or not isinstance(item.get("claim"), dict):
            raise CaseFileError(f"{at}: each of `claims` is `{{claim: ..., expect: ...}}`")
        expect = item.get("expect")
        if expect is not None:
            _expected_findings(expect, at)
        claims.append(merge(base, item["claim"]))
        expects.append(expect)
    ids = [c.get("claim_id") for c in claims]
    if len(set(map(str, ids))) != len(ids):
        raise CaseFileError(f"{where}: the claims of a case need different claim ids")
    case_line, item_lines = lines
    out = []
    for i, (claim, expect) in enumerate(zip(claims, expects, strict=True)):
        if expect is None:
            continue
        out.append(
            PolicyCase(
                name=f"{raw['name']}: {claim.get('claim_id', i + 1)}",
                file=path,
                claim=claim,
                expect_status=expect.get("status"),
                expect_findings=expect.get("findings"),
                today=today,
                line=item_lines[i] if i < len(item_lines) else case_line,
                history=tuple(merge(base, h) for h in history),
                batch=tuple(claims),
                batch_index=i,
            )
        )
    return out


def _item_lines(node: Any, index: int) -> tuple[int, list[int]]:
    """The line of case `index` and of each item of its `claims` (0 when unknown)."""
    if not isinstance(node, yaml.MappingNode):
        return 0, []
    for key, value in node.value:
        if (
            key.value == "cases"
            and isinstance(value, yaml.SequenceNode)
            and (index < len(value.value))
        ):
            case = value.value[index]
            if isinstance(case, yaml.MappingNode):
                for k, v in case.value:
                    if k.value == "claims" and isinstance(v, yaml.SequenceNode):
                        return case.start_mark.line + 1, [i.start_mark.line + 1 for i in v.value]
            return case.start_mark.line + 1, []
    return 0, []


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


@dataclass(slots=True)
class FindingMatch:
    """How the expected findings of a case pair up with the actual ones."""

    matched: list[tuple[dict[str, Any], Finding]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)  # expected, not found
    unexpected: list[Finding] = field(default_factory=list)  # found, not expected


def match_findings(expected: list[dict[str, Any]], actual: list[Finding]) -> FindingMatch:
    """Pair each expected finding with the first unpaired actual finding it matches."""
    result = FindingMatch()
    remaining = list(actual)
    for wanted in expected:
        for i, found in enumerate(remaining):
            if _matches(wanted, found):
                result.matched.append((wanted, found))
                del remaining[i]
                break
        else:
            result.missing.append(wanted)
    result.unexpected = remaining
    return result


def compare(case: PolicyCase, decision: Decision) -> list[str]:
    """What differs between the expected and the actual decision (empty: the case passes)."""
    invalid = invalid_claim(case, decision)
    problems = list(invalid)
    if case.expect_status is not None and decision.status != case.expect_status:
        problems.append(f"status: expected {case.expect_status}, got {decision.status}")
    if case.expect_findings is None:
        return problems
    match = match_findings(case.expect_findings, decision.findings)
    for expected in match.missing:
        problems.append(f"missing finding: {_show(expected)}")
    for actual in match.unexpected:
        if not (invalid and actual.rule == CLAIM_FORMAT_RULE):  # shown as not valid above
            problems.append(f"unexpected finding: {_show_finding(actual)}")
    return problems


def _show(expected: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in expected.items())


def _show_finding(f: Finding) -> str:
    codes = " ".join([f"{f.group}-{f.carc}", *f.rarc])  # no blank before the comma
    return f"rule={f.rule}, line={f.line}, {codes}, root_cause={f.root_cause}: {f.message}"


def decide(engine: Any, case: PolicyCase) -> Decision:
    """The engine's decision for the case's claim (after its history, if it has one)."""
    engine = engine_with_tables(engine, case.tables)
    if not case.history and not case.batch:
        return engine.check(case.claim, today=case.today)  # type: ignore[no-any-return]
    saved = engine.today
    engine.today = case.today or saved
    batch = case.batch or (case.claim,)
    from cleanclaim.engine.history import HistoryStore, put_on_file

    try:
        # The history is what the payer has on file (as given, not checked), from an
        # earlier run; the case's claims are checked in a run of their own.
        with HistoryStore.memory() as store:
            if case.history:
                put_on_file(engine, store, case.history)
            decisions = list(engine.check_many(batch, history=store))
    finally:
        engine.today = saved
    return decisions[case.batch_index]  # type: ignore[no-any-return]


def run_case(engine: Any, case: PolicyCase) -> CaseOutcome:
    decision = decide(engine, case)
    return CaseOutcome(case, decision, compare(case, decision))


def case_files(root: Path) -> list[Path]:
    """Case files under a folder: the YAML files in `cases/` folders below it (every YAML
    file below it when it is a `cases` folder itself)."""
    if root.is_file():
        return [root]
    # A `cases` folder, or a folder inside a pack's `cases` folder (not merely below some
    # folder named `cases`, such as a checkout in /work/cases).
    inside = root.name == "cases" or any(
        p.name == "cases" and (p.parent / "pack.yaml").is_file() for p in root.parents
    )
    return sorted(
        p for p in root.rglob("*.yaml") if inside or "cases" in p.relative_to(root).parts[:-1]
    )
