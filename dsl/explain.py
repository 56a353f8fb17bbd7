"""Why a rule fired or not: a trace of every rule considered for a claim.

Tracing code is generated from the same syntax tree as the evaluator, but only when a
trace is asked for, and into functions of its own: the evaluator's generated code has no
trace hooks, so explaining costs nothing when it is not used.

For each rule considered (the claim and diagnosis rules once, each line's all-lines rules
and the rules indexed by its code), the trace says whether a version was in force on the
date of service, whether plan and place-of-service filters let the claim through, each
`when` condition in order with its result and the values it read, and the outcome.
Conditions are evaluated as the engine does: the first false one ends the rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl.codesets import icd10cm
from cleanclaim.dsl.compiler import (
    CompiledRule,
    Program,
    RuleVersion,
    source_name,
)
from cleanclaim.dsl.emit import Emitter
from cleanclaim.dsl.helpers import others
from cleanclaim.dsl.types import plan_key, plan_of
from cleanclaim.dsl.valuesets import CodeSet


@dataclass(slots=True)
class ValueSeen:
    """A value a condition read: its name in the policy, the value, a readable form."""

    label: str
    value: Any
    text: str


@dataclass(slots=True)
class ConditionTrace:
    source: str
    line: int
    result: bool | None  # None: not evaluated (an earlier condition was false)
    values: list[ValueSeen] = field(default_factory=list)


@dataclass(slots=True)
class RuleTrace:
    rule: str
    title: str | None
    file: str
    line: int
    target: str  # "claim", "diagnosis 2", "line 1"
    status: str  # fired | passed | not in force | filtered out | error
    reason: str
    version: str | None = None
    lets: list[ValueSeen] = field(default_factory=list)
    conditions: list[ConditionTrace] = field(default_factory=list)
    outcome: str | None = None
    message: str | None = None
    # The policy text the rule encodes (its version's `reference`), and our short labels
    # of the outcome's group, CARC and RARCs ("CO-197: ...").
    reference: str | None = None
    labels: list[str] = field(default_factory=list)
    # The services the rule's counters counted for this line (in a run with history):
    # "<counter>: claim C-0 line 1 97110 on 2026-01-05", each one.
    counted: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title,
            "source": {"file": self.file, "line": self.line},
            "target": self.target,
            "status": self.status,
            "reason": self.reason,
            "version": self.version,
            "lets": [{"name": v.label, "value": v.text} for v in self.lets],
            "conditions": [
                {
                    "source": c.source,
                    "line": c.line,
                    "result": c.result,
                    "values": [{"name": v.label, "value": v.text} for v in c.values],
                }
                for c in self.conditions
            ],
            "outcome": self.outcome,
            "message": self.message,
            "reference": self.reference,
            "labels": self.labels,
            "counted": self.counted,
        }


def describe(value: Any, kind: str | None = None) -> str:
    """A value as a biller reads it; ICD-10-CM codes with their descriptions."""
    if value is None:
        return "(missing)"
    if isinstance(value, CodeSet):
        return f"a list of {len(value.exact) + len(value.prefixes)} codes ({value.describe()})"
    if isinstance(value, (list, tuple)):
        if not value:
            return "(none)"
        return ", ".join(describe(v, kind) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    if kind == "icd10" and isinstance(value, str):
        label = icd10cm.description(value)
        code = icd10cm.dotted(value)
        return f"{code} ({label.lower() if label else 'not an ICD-10-CM code'})"
    if hasattr(value, "service_date") and hasattr(value, "code"):
        return f"line {value.line} ({value.code} on {value.service_date.isoformat()})"
    if hasattr(value, "__slots__") and not isinstance(value, str):
        return type(value).__name__.lower()
    return str(value)


_UNDECIDED = "a field it reads is missing, so it cannot be decided"


class Tracer:
    """Builds and runs tracing functions for one compiled pack."""

    def __init__(self, program: Program) -> None:
        if program.checked is None:
            raise ValueError("this program was compiled without its syntax tree")
        self.program = program
        self.checked = program.checked
        self.gen = Emitter(self.checked, program.functions, program.tables)
        self._fns: dict[tuple[int, int], Any] = {}
        self._rules = {rule.id: rule for _, rule in self.checked.rules}

    def _source(self, node: Any) -> str:
        span: ast.Span = node.span
        text = self.checked.sources.files.get(span.file, "")
        lines = text.splitlines()
        if not (1 <= span.line <= len(lines)):
            return "?"
        if span.end_line == span.line:
            return lines[span.line - 1][span.column - 1 : span.end_column - 1].strip()
        chunk = [lines[span.line - 1][span.column - 1 :]]
        chunk += lines[span.line : span.end_line - 1]
        chunk.append(lines[span.end_line - 1][: span.end_column - 1])
        return " ".join(part.strip() for part in chunk)

    def _leaves(self, expr: ast.Expr, bound: frozenset[str]) -> list[ast.Expr]:
        """Sub-expressions worth showing: fields, names and calls outside quantifier
        bodies' own variables, in source order, without repeats."""
        found: list[ast.Expr] = []

        def walk(e: ast.Expr, bound: frozenset[str]) -> None:
            if isinstance(e, ast.Path):
                if e.parts[0] not in bound:
                    found.append(e)
            elif isinstance(e, ast.Call):
                if not any(isinstance(a, ast.Path) and a.parts[0] in bound for a in e.args):
                    found.append(e)
                for a in e.args:
                    if not (isinstance(a, ast.Path) and a.parts[0] in self.checked.tables):
                        walk(a, bound)
            elif isinstance(e, ast.Not):
                walk(e.operand, bound)
            elif isinstance(e, (ast.BoolOp, ast.Compare, ast.Arith)):
                walk(e.left, bound)
                walk(e.right, bound)
            elif isinstance(e, ast.Membership):
                walk(e.element, bound)
                walk(e.container, bound)
            elif isinstance(e, ast.Presence):
                walk(e.operand, bound)
            elif isinstance(e, ast.Quantified):
                walk(e.collection, bound)
                walk(e.condition, bound | {e.var})
            elif isinstance(e, ast.QuantifiedIn):
                walk(e.collection, bound)
                walk(e.container, bound)
            elif isinstance(e, ast.TableRead):  # the value read, then its keys
                if not any(isinstance(k, ast.Path) and k.parts[0] in bound for k in e.keys):
                    found.append(e)
                for k in e.keys:
                    walk(k, bound)

        walk(expr, bound)
        seen: set[str] = set()
        unique = []
        for leaf in found:
            key = self._source(leaf)
            if key not in seen:
                seen.add(key)
                unique.append(leaf)
        return unique

    def _function(self, index: int, vindex: int) -> Any:
        key = (index, vindex)
        if key in self._fns:
            return self._fns[key]
        _, rule = self.checked.rules[index]
        version = rule.versions[vindex]
        env = {"claim": "claim", "member": "claim.member"}
        scope = rule.scope.kind if rule.scope else "all_lines"
        if scope in ("codes", "all_lines"):
            env.update({"line": "line", "other_lines": "_others(claim, line)"})
        elif scope == "diagnosis":
            env["diagnosis"] = "diagnosis"
        gen = self.gen
        body = ["def _trace(claim, line, diagnosis, lets, conds):"]
        for let in version.lets:
            var = f"_l_{let.name}"
            body.append(f"    {var} = {gen.expr(let.value, env)}")
            gen.bind(var, let.value)
            body.append(f"    lets.append(({let.name!r}, {var}, {self._kind(let.value)!r}))")
            env[let.name] = var
        for i, cond in enumerate(version.conditions):
            body.append("    seen = []")
            for leaf in self._leaves(cond, frozenset()):
                label = self._source(leaf)
                body.append(
                    f"    seen.append(({label!r}, {gen.expr(leaf, env)}, {self._kind(leaf)!r}))"
                )
            for part in _membership_parts(cond):
                s = gen.static_set(part.container)
                if s is None:
                    continue
                coll = gen.expr(part.collection, env)
                inside = gen.membership("_x", s, True)
                label = f"of {self._source(part.collection)}, in {self._source(part.container)}"
                body.append(
                    f"    seen.append(({label!r}, [_x for _x in {coll} if {inside}], "
                    f"{self._kind(part.collection)!r}))"
                )
            with gen.deciding(version):  # as evaluation decides it (dsl/missing.py)
                body.append(f"    result = bool({gen.expr(cond, env)})")
            body.append(f"    conds.append(({i}, result, seen))")
            body.append("    if not result:")
            body.append("        return False")
        message = gen.message(rule, version, env)
        body.append(f"    return {message}")
        undecided = gen.undecided(rule, version, env, version.conditions)
        if undecided is not None:  # `_undecided`: the review a missing value gives
            missing_test, possible, needs = undecided
            body.append("def _undecided(claim, line, diagnosis):")
            for let in version.lets:
                body.append(f"    _l_{let.name} = {gen.expr(let.value, env)}")
            body.append(f"    if ({missing_test}) and {possible}:")
            body.append(f"        return {needs}")
            body.append("    return None")
        namespace = gen.ns
        namespace.setdefault("_others", others)
        exec(compile("\n".join(body) + "\n", source_name("trace", rule.id), "exec"), namespace)
        fn = namespace["_trace"]
        fn.undecided = namespace.pop("_undecided", None) if undecided is not None else None
        self._fns[key] = fn
        return fn

    def _kind(self, expr: ast.Expr) -> str | None:
        t = self.checked.types.get(id(expr))
        if t is None:
            return None
        if t.name == "list" and t.elem is not None:
            return t.elem.name
        return t.name

    def counters_read(self, rule_id: str) -> list[Any]:
        """The claim-history counters a rule reads (in its lets and conditions)."""
        rule = self._rules.get(rule_id)
        if rule is None:
            return []
        found: dict[str, Any] = {}

        for version in rule.versions:
            for expr in (*version.conditions, *(let.value for let in version.lets)):
                for e in ast.nodes(expr):
                    if (
                        isinstance(e, ast.Path)
                        and len(e.parts) == 1
                        and e.parts[0] in self.checked.counters
                    ):
                        found.setdefault(e.parts[0], self.checked.counters[e.parts[0]])
        return list(found.values())

    # ---- running -----------------------------------------------------------------------

    def trace_rule(
        self, rule: CompiledRule, claim: Any, line: Any = None, diagnosis: Any = None
    ) -> RuleTrace:
        _, node = self.checked.rules[rule.index]
        target = (
            "claim"
            if rule.scope == "claim"
            else f"diagnosis {diagnosis.position}"
            if rule.scope == "diagnosis"
            else f"line {line.line}"
        )
        trace = RuleTrace(rule.id, rule.title, rule.file, rule.line, target, "passed", "")
        day = line.service_date if line is not None else claim.first_service_date
        for vf in node.filters:
            # the plan of the claim (T.plan_of), compared case-insensitively
            value = plan_of(claim, day) if vf.field == "plan" else claim.place_of_service
            inside = (
                plan_key(value) in {plan_key(v) for v in vf.values}
                if vf.field == "plan"
                else value in vf.values
            )
            if inside == vf.negated:
                what = "plan" if vf.field == "plan" else "place of service"
                trace.status = "filtered out"
                trace.reason = (
                    f"the claim's {what} is {describe(value)}; the rule applies "
                    f"when it is {'not ' if vf.negated else ''}"
                    f"{' or '.join(vf.values)}"
                )
                return trace
        day = line.service_date if line is not None else claim.first_service_date
        vindex = _version_in_force(rule.versions, day)
        if vindex is None:
            trace.status = "not in force"
            trace.reason = f"no version of the rule is in force on {day.isoformat()}"
            return trace
        version: RuleVersion = rule.versions[vindex]
        if version.start or version.end:
            trace.version = f"effective {version.start or 'any time'}" + (
                f" until {version.end}" if version.end else ""
            )
        lets: list[tuple[str, Any, str | None]] = []
        conds: list[tuple[int, bool, list[tuple[str, Any, str | None]]]] = []
        try:
            message = self._function(rule.index, vindex)(claim, line, diagnosis, lets, conds)
        except Exception as exc:  # same contract as evaluation: report, never raise
            trace.status = "error"
            trace.reason = f"the rule could not be applied ({type(exc).__name__})"
            return trace
        trace.lets = [ValueSeen(n, v, describe(v, k)) for n, v, k in lets]
        ast_version = node.versions[vindex]
        results = {i: (r, seen) for i, r, seen in conds}
        for i, cond in enumerate(ast_version.conditions):
            result, seen = results.get(i, (None, []))
            trace.conditions.append(
                ConditionTrace(
                    self._source(cond),
                    cond.span.line,
                    result,
                    [ValueSeen(label, v, describe(v, k)) for label, v, k in seen],
                )
            )
        undecided = getattr(self._function(rule.index, vindex), "undecided", None)
        try:
            needs = undecided(claim, line, diagnosis) if message is False and undecided else None
        except Exception:  # as evaluation: a rule failing here has failed above
            needs = None
        if needs is not None:
            trace.status = "fired"
            trace.reason = _UNDECIDED
            trace.outcome = "review CO-16"
            trace.message = needs
            trace.reference = version.reference
            trace.labels = outcome_labels("CO", "16", ())
            return trace
        if message is False:
            failed = next((c for c in trace.conditions if c.result is False), None)
            trace.status = "passed"
            trace.reason = f"`{failed.source}` is false" if failed else "a condition is false"
            return trace
        trace.status = "fired"
        trace.reason = "every condition is true"
        trace.outcome = f"{version.severity} {version.group}-{version.carc}" + "".join(
            f" {r}" for r in version.rarcs
        )
        trace.message = str(message)
        trace.reference = version.reference
        trace.labels = outcome_labels(version.group, version.carc, version.rarcs)
        return trace

    def trace_claim(
        self, claim: Any, only_rule: str | None = None, exceptions: bool = True
    ) -> list[RuleTrace]:
        """Every rule considered for the claim, claim rules first, then line by line."""
        traces: list[RuleTrace] = []
        rules = [r for r in self.program.rules if only_rule in (None, r.id)]
        for rule in rules:
            if rule.scope == "claim":
                traces.append(self.trace_rule(rule, claim))
            elif rule.scope == "diagnosis":
                for diagnosis in claim.diagnosis_items:
                    traces.append(self.trace_rule(rule, claim, diagnosis=diagnosis))
        for line in claim.lines:
            for rule in rules:
                if rule.scope == "all_lines" or (rule.scope == "codes" and line.code in rule.codes):
                    traces.append(self.trace_rule(rule, claim, line=line))
        if exceptions and self.program.excepts:  # `except rule`, as evaluation does
            self._apply_exceptions(claim, traces)
        return traces

    def _apply_exceptions(self, claim: Any, traces: list[RuleTrace]) -> None:
        """Mark `excepted` the fired traces whose finding an `except rule` suppresses."""
        by_id = {r.id: r for r in self.program.rules}
        others = {i for deps in self.program.excepts.values() for i in deps}
        seen = {t.rule for t in traces}
        # the excepting rules' own traces, when only one rule was asked for
        extra = [
            t
            for i in others
            if self.program.rules[i].id not in seen
            for t in self.trace_claim(claim, self.program.rules[i].id, False)
        ]
        fired: dict[str, set[str]] = {}
        for t in [*traces, *extra]:
            if t.status == "fired" and t.reason != _UNDECIDED:
                fired.setdefault(t.rule, set()).add(
                    t.target if t.target.startswith("line ") else "claim"
                )
        for t in traces:
            rule = by_id[t.rule]
            if t.status != "fired" or rule.index not in self.program.excepts:
                continue
            for i in self.program.excepts[rule.index]:
                other = self.program.rules[i].id
                where = fired.get(other, set())
                if where and (
                    not t.target.startswith("line ") or t.target in where or "claim" in where
                ):
                    t.status = "excepted"
                    t.reason = f"rule `{other}` applies (except rule)"
                    break


def outcome_labels(group: str, carc_code: str, rarcs: Sequence[str]) -> list[str]:
    """Our short labels of an outcome's codes: "CO-197: ...", "N54: ..."."""
    from cleanclaim.dsl.codesets import adjustment

    found = adjustment.carc(carc_code)
    out = [
        f"{group}-{carc_code}: {adjustment.group_label(group)}; "
        f"{found.label if found is not None and found.label else 'no label'}"
    ]
    for code in rarcs:
        remark = adjustment.rarc(code)
        out.append(f"{code}: {remark.label if remark is not None and remark.label else 'no label'}")
    return out


def counted_services(tracer: Tracer, claim: Any, traces: Sequence[RuleTrace], shown: Any) -> None:
    """Fill `counted` of the line traces whose rule reads a counter: the services each
    counter counted for that line (`shown`: (counter index, id(line)) -> (lines of other
    claims, this claim's earlier lines), kept by the claim's history while recording)."""
    lines = {f"line {ln.line}": ln for ln in claim.lines}
    for trace in traces:
        line = lines.get(trace.target)
        if line is None:
            continue
        for counter in tracer.counters_read(trace.rule):
            got = shown.get((counter.index, id(line)))
            if got is None:
                continue
            others, own = got
            items = [
                f"claim {e.claim_id} line {e.line} {e.code} on {e.service_date.isoformat()}"
                for e in others
            ]
            items += [
                f"this claim line {o.line} {o.code} on {o.service_date.isoformat()}" for o in own
            ]
            trace.counted.append(
                f"{counter.name}: " + ("; ".join(items) if items else "no earlier service")
            )


def _membership_parts(expr: ast.Expr) -> list[ast.QuantifiedIn]:
    """The `any/all/no of LIST in SET` parts of a condition (outside quantifier bodies)."""
    if isinstance(expr, ast.QuantifiedIn):
        return [expr]
    if isinstance(expr, ast.Not):
        return _membership_parts(expr.operand)
    if isinstance(expr, ast.BoolOp):
        return _membership_parts(expr.left) + _membership_parts(expr.right)
    return []


def _version_in_force(versions: Sequence[RuleVersion], day: dt.date) -> int | None:
    best: int | None = None
    for i, v in enumerate(versions):
        in_force = (v.start is None or v.start <= day) and (v.end is None or day <= v.end)
        if in_force and (
            best is None or (v.start or dt.date.min) > (versions[best].start or dt.date.min)
        ):
            best = i
    return best


RENDER_MODES = ("short", "fails", "only-fired", "full")


def render_text(claim_id: str | None, traces: Sequence[RuleTrace], mode: str = "full") -> str:
    """The trace in plain English, grouped by what each rule looked at.

    `full`: every rule considered, each condition with the values it read. `short` (the
    default of `cleanclaim explain`): the rules that fired (or were excepted, or failed)
    in full, and per claim / line one line counting the others. `fails`: as short, plus
    one line per rule that did not fire naming the condition that was false (as
    `opa eval --explain=fails`). `only-fired`: the rules that fired, nothing else."""
    shown = [t for t in traces if mode == "full" or t.status in ("fired", "excepted", "error")]
    fired = sum(1 for t in traces if t.status == "fired")
    out = [f"Claim {claim_id or '(no id)'}: {len(traces)} rule checks, {fired} fired"]
    targets: dict[str, list[RuleTrace]] = {}
    for t in traces:
        targets.setdefault(t.target, []).append(t)
    for target, group in targets.items():
        mine = [t for t in group if t in shown]
        rest = [t for t in group if t not in shown]
        if not mine and mode == "only-fired":
            continue
        out.append("")
        if not mine and mode == "short":
            out.append(
                f"{target}: nothing found ({len(rest)} rules checked; --fails says "
                "why each did not fire)"
            )
            continue
        out.append(f"{target}:")
        for t in mine:
            out.extend(_render_rule(t, mode))
        if mode == "fails":
            for t in rest:
                out.append(f"  {_HEADS[t.status]} {t.rule}: {_why_not(t)}")
        elif mode == "short" and rest:
            counts: dict[str, int] = {}
            for t in rest:
                counts[t.status] = counts.get(t.status, 0) + 1
            out.append(
                "  ("
                + ", ".join(f"{n} {status}" for status, n in counts.items())
                + "; --fails says why, --full shows all)"
            )
    return "\n".join(out) + "\n"


_HEADS = {
    "fired": "FIRED ",
    "passed": "passed",
    "not in force": "not in force",
    "filtered out": "skipped",
    "error": "ERROR ",
    "excepted": "excepted",
}


def _why_not(t: RuleTrace) -> str:
    if t.status != "passed":
        return t.reason
    failed = next((c for c in t.conditions if c.result is False), None)
    if failed is None:
        return t.reason
    values = ", ".join(f"{v.label} = {v.text}" for v in failed.values)
    return f"`{failed.source}` is false" + (f" ({values})" if values else "")


def _render_rule(t: RuleTrace, mode: str) -> list[str]:
    out = [f"  {_HEADS[t.status]} {t.rule}" + (f" - {t.title}" if t.title else "")]
    out.append(f"         {t.file}:{t.line}" + (f" ({t.version})" if t.version else ""))
    if t.status in ("not in force", "filtered out", "error"):
        out.append(f"         {t.reason}")
        return out
    for c in t.conditions:
        verdict = {True: "true", False: "false", None: "not checked"}[c.result]
        if mode != "full" and c.result is None:
            continue
        out.append(f"         when {c.source}  -> {verdict}")
        if c.result is not None:
            for v in c.values:
                out.append(f"           {v.label} = {v.text}")
    limit = None if mode == "full" else 5
    for entry in t.counted:
        name, _, items = entry.partition(": ")
        parts = items.split("; ")
        more = len(parts) - limit if limit is not None and len(parts) > limit else 0
        listed = "; ".join(parts[:limit] if limit is not None else parts)
        out.append(
            f"         counted by {name}: {listed}"
            + (f"; and {more} more (--full lists them)" if more else "")
        )
    if t.status in ("fired", "excepted"):
        out.append(f"         => {t.outcome}: {t.message}")
        for label in t.labels:
            out.append(f"            {label}")
        if t.reference:
            out.append(f"            reference: {t.reference}")
        if t.status == "excepted":
            out.append(f"            not reported: {t.reason}")
    else:
        out.append(f"         => no finding: {t.reason}")
    return out
