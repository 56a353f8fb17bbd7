"""Checked pack to executable program: generated Python, compiled once.

Each rule becomes a block of straight-line Python. Rules that apply to all lines are
joined into one function; rules scoped to procedure codes are joined per distinct rule
combination and indexed by code, so a line meets only the rules that can apply to it.
A fired rule appends `(rule index, version index, line number, message)` to `out`.

Evaluation never raises on bad claim data: comparisons and arithmetic with a missing
value are false / missing. Should a generated block raise anyway (a plugin function
failing, say), the caller re-runs each rule alone through `Program.run_rule` to find
and report the one that failed.

No text of a policy, a file name, a manifest, a CSV or a plugin becomes code: values enter
generated source only as `repr` literals or as constants of the `exec` namespace (`const`),
comments carry numbers only, and the memo (`blocks.memoize_split`) hides string literals before
it rewrites calls (tests/test_generated_code_safety.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cleanclaim.dsl import types as T
from cleanclaim.dsl.blocks import RESET, memoize, memoize_split, rule_block, scope_kind, severity_of
from cleanclaim.dsl.checker import CheckedPack
from cleanclaim.dsl.emit import Emitter
from cleanclaim.dsl.exceptions import apply_exceptions
from cleanclaim.dsl.helpers import HELPERS, others
from cleanclaim.dsl.history import Counter, bind_counters, counter_source
from cleanclaim.dsl.linemap import compile_rule, register_pack, release
from cleanclaim.dsl.specialize import Specializer
from cleanclaim.dsl.tables import table_value
from cleanclaim.dsl.valuesets import partial_notes
from cleanclaim.dsl.vocabulary import DEFAULT_OWNER

# Kept importable from here (the emitter and helpers moved to their own modules).
_Gen = Emitter
_HELPERS = HELPERS
_others = others

LineFn = Callable[[Any, Any, list[Any]], None]
ClaimFn = Callable[[Any, list[Any]], None]


@dataclass(frozen=True, slots=True)
class RuleVersion:
    start: dt.date | None
    end: dt.date | None
    severity: str
    group: str
    carc: str
    rarcs: tuple[str, ...]
    reference: str | None
    line: int


# The outcome of a rule a missing value leaves undecided (dsl/missing.py): its finding
# uses the template after the rule's versions (index `len(versions)`).
NEEDS_VERSION = RuleVersion(None, None, "review", "CO", "16", (), None, 0)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """What a finding needs to know about the rule that produced it."""

    index: int
    id: str
    pack: str
    title: str | None
    scope: str  # codes | all_lines | claim | diagnosis
    root_cause: str
    owner: str
    kind: str
    file: str
    line: int
    versions: tuple[RuleVersion, ...]
    codes: frozenset[str] = frozenset()


@dataclass(slots=True, weakref_slot=True)
class Program:
    """A compiled pack: rule metadata and the generated functions that apply them."""

    pack_id: str
    rules: tuple[CompiledRule, ...]
    lines_any: LineFn | None
    lines_by_code: dict[str, LineFn]
    claim_fn: ClaimFn | None
    diagnosis_fn: ClaimFn | None
    evaluate_fn: ClaimFn  # the whole pack applied to one claim
    digest: str
    source: str
    # What `explain` needs to build its tracing code on demand (never on the hot path).
    checked: CheckedPack | None = None
    functions: Mapping[str, T.FunctionSpec] = field(default_factory=dict)
    tables: Mapping[str, Any] = field(default_factory=dict)
    # Claim-history counters the pack declares: a run records its claims' facts when
    # there is any (engine/history.py).
    counters: tuple[Counter, ...] = ()
    # `except rule` (dsl/exceptions.py): rule index -> the rules whose findings suppress
    # its own; rule index -> the version index of its "needs ..." review.
    excepts: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    needs: Mapping[int, int] = field(default_factory=dict)
    _rule_sources: dict[int, str] = field(default_factory=dict)
    _namespace: dict[str, Any] = field(default_factory=dict)
    _single: dict[int, Callable[..., None]] = field(default_factory=dict)

    def apply_exceptions(self, out: list[Any]) -> None:
        """Take out the findings an `except rule` suppresses (`_evaluate` does it itself;
        the slow path that applies rules one at a time calls this)."""
        if self.excepts and out:
            apply_exceptions(out, self.excepts, self.needs)

    def rule_source(self, index: int) -> str:
        """The Python source of the function applying rule `index` alone (`run_rule`)."""
        return self._rule_sources[index]

    def run_rule(self, index: int, claim: Any, line: Any, out: list[Any]) -> None:
        """Apply one rule alone (slow path, used to isolate a failing rule)."""
        fn = self._single.get(index)
        if fn is None:
            # Compiled at the rule's policy lines: a traceback names the policy file:line.
            rule = self.rules[index]
            texts = self.checked.sources.files if self.checked is not None else {}
            exec(
                compile_rule(self._rule_sources[index], rule.file, rule.line, texts),
                self._namespace,
            )
            fn = self._namespace[f"_rule_{index}"]
            self._single[index] = fn
        rule = self.rules[index]
        if rule.scope in ("claim", "diagnosis"):
            fn(claim, out)
        else:
            fn(claim, line, out)


def source_name(kind: str, text: str) -> str:
    """The file name generated code is compiled under (`<pack medicare>`): `text` with
    every control and non-ASCII character escaped, so that no name can break a traceback
    line or `compile` (which refuses a NUL)."""
    return f"<{kind} {ascii(text)[1:-1]}>"


def compile_pack(
    checked: CheckedPack,
    functions: Mapping[str, T.FunctionSpec],
    tables: Mapping[str, Any],
    digest: str,
    specialize: bool = True,
) -> Program:
    """Generate and compile the program of a pack that checked without errors.

    specialize: give the line loop copies specialised by procedure code as codes are met
    (`dsl/specialize.py`); False keeps the one general body (tests compare the two)."""
    gen = Emitter(checked, functions, tables)
    rules: list[CompiledRule] = []
    blocks: dict[int, tuple[str, list[str]]] = {}
    for index, (pack_id, rule) in enumerate(checked.rules):
        scope = scope_kind(rule)
        root = rule.root_cause.value if rule.root_cause else "submission"
        for vindex, v in enumerate(rule.versions):
            notes = partial_notes(
                v.conditions, v.lets, checked.valuesets, checked.literal_sets, tables
            )
            if notes:
                gen.partial[(index, vindex)] = notes
        versions = tuple(
            RuleVersion(
                v.start,
                v.end,
                severity_of(v, (index, vindex) in gen.partial),
                v.outcome.group if v.outcome else "CO",
                v.outcome.carc if v.outcome else "16",
                v.outcome.rarcs if v.outcome else (),
                v.reference.value if v.reference else None,
                v.span.line,
            )
            for vindex, v in enumerate(rule.versions)
        )
        rules.append(
            CompiledRule(
                index=index,
                id=rule.id,
                pack=pack_id,
                title=rule.title.value if rule.title else None,
                scope=scope,
                root_cause=root,
                owner=rule.owner.value if rule.owner else DEFAULT_OWNER[root],
                kind=rule.kind.value if rule.kind else root,
                file=rule.span.file,
                line=rule.span.line,
                versions=versions,
                codes=checked.scope_sets[rule.id].exact
                if rule.id in checked.scope_sets
                else frozenset(),
            )
        )
        blocks[index] = (scope, rule_block(gen, index, rule, "    "))

    source_parts: list[str] = []
    rule_sources: dict[int, str] = {}
    for index, (scope, body) in blocks.items():
        params = "claim, out" if scope in ("claim", "diagnosis") else "claim, line, out"
        if scope == "diagnosis":
            inner = ["    for diagnosis in claim.diagnosis_items:"] + ["    " + b for b in body]
        else:
            inner = body
        rule_sources[index] = "\n".join([f"def _rule_{index}({params}):", *inner]) + "\n"

    def join(name: str, params: str, indices: list[int], loop: bool = False) -> str:
        lines = [f"def {name}({params}):"]
        if loop:
            lines.append("    for diagnosis in claim.diagnosis_items:")
        for i in indices:
            lines.extend(("    " + b) if loop else b for b in blocks[i][1])
        return "\n".join(lines) + "\n"

    any_lines = [i for i, (s, _) in blocks.items() if s == "all_lines"]
    claim_rules = [i for i, (s, _) in blocks.items() if s == "claim"]
    diag_rules = [i for i, (s, _) in blocks.items() if s == "diagnosis"]
    groups = _codes_by_rules(rules)
    if any_lines:
        source_parts.append(join("_lines_any", "claim, line, out", any_lines))
    if claim_rules:
        source_parts.append(join("_claim", "claim, out", claim_rules))
    if diag_rules:
        source_parts.append(join("_diagnoses", "claim, out", diag_rules, loop=True))
    combos: dict[tuple[int, ...], str] = {}
    for key in groups:
        combos[key] = f"_lines_{len(combos)}"
        source_parts.append(join(combos[key], "claim, line, out", list(key)))
    # One function applies the whole pack to a claim: claim rules, diagnosis rules, then
    # each line meets the all-lines rules inline and its code's rules through the index.
    fused = ["def _evaluate(claim, out):"]
    claim_body: list[str] = []
    for i in claim_rules:
        claim_body.extend(blocks[i][1])
    fused.extend(memoize(claim_body, gen.memoizable, "    ", "c"))
    if diag_rules:
        fused.append("    for diagnosis in claim.diagnosis_items:")
        for i in diag_rules:
            fused.extend("    " + b for b in blocks[i][1])
    line_body: list[str] = []
    for i in any_lines:
        line_body.extend(blocks[i][1])
    if combos:
        line_body.append("    _specific = _BY_CODE.get(line.code)")
        line_body.append("    if _specific is not None:")
        line_body.append("        _specific(claim, line, out)")
    inits, line_body = memoize_split(line_body, gen.memoizable, "        ", "l", gen.per_date)
    # The per-line memos are reset in the line body itself, where a specialised copy that
    # no longer uses one drops its reset; the per-date memos before it, for all copies.
    resets = [i for i in inits if RESET.fullmatch(i)]
    inits = [i for i in inits if not RESET.fullmatch(i)]
    if any("_dprev" in b for b in inits):
        fused.append("    _dprev = _U")
    fused.append("    for line in claim.lines:")
    fused.extend(inits)
    general = "\n".join([*(r.strip() for r in resets), *(b[4:] for b in line_body)])
    if checked.counters:  # claim-history counters: each one's line filter
        source_parts.append(counter_source(gen, checked))
    # Each compiled program has names of its own: `linecache` holds its source under them
    # (dsl/linemap.py) while it lives.
    serial = next(_SERIALS)
    name = source_name("pack", f"{checked.sources.manifest.id} #{serial}")
    evaluate_name = source_name("evaluate", f"{checked.sources.manifest.id} #{serial}")
    files = [rule.span.file for _pack, rule in checked.rules]
    namespace = gen.ns
    pack_source = "\n".join(source_parts)
    exec(compile(pack_source, name, "exec"), namespace)
    register_pack(name, pack_source, files)
    bind_counters(checked, namespace)
    lines_by_code: dict[str, LineFn] = {}
    for key, codes in groups.items():
        lines_by_code.update(dict.fromkeys(codes, namespace[combos[key]]))
    namespace["_BY_CODE"] = lines_by_code
    # `_evaluate` is compiled on its own, and again (only it) as line classes appear.
    head = "\n".join(fused)
    needs = {index: len(rule.versions) for index, (_p, rule) in enumerate(checked.rules)}
    tail = ""
    if checked.excepts:  # `except rule`: once every rule has been applied
        gen.ns["_EXC"], gen.ns["_NEEDS"] = dict(checked.excepts), needs
        tail = "    if out:\n        _apply_exceptions(out, _EXC, _NEEDS)\n"
    installed: list[Program] = []

    specializers: list[Specializer] = []

    def install(fn: Callable[..., None]) -> None:
        if specializers:  # the source `fn` was compiled from, for tracebacks
            register_pack(evaluate_name, specializers[0].source, files)
        if installed:
            installed[0].evaluate_fn = fn

    if not line_body:  # no line rule: the loop has nothing to do
        evaluate_source = head + "\n        pass\n" + tail
    elif specialize:
        constant_fns = frozenset(
            [
                *(id(f.impl) for f in functions.values() if f.constant and not f.contextual),
                id(table_value),
            ]
        )
        specializer = Specializer(
            namespace,
            general,
            constant_fns,
            lambda a, b, map_a, map_b: _line_loop(head, a, b, map_a, map_b, tail),
            install,
            evaluate_name,
        )
        specializers.append(specializer)
        specializer.build()
        evaluate_source = specializer.source
    else:
        namespace["_CA0"] = namespace["_CB0"] = _NoClasses()
        evaluate_source = _line_loop(head, [general], [general], "_CA0", "_CB0", tail)
    if not line_body or not specialize:
        exec(compile(evaluate_source, evaluate_name, "exec"), namespace)
        register_pack(evaluate_name, evaluate_source, files)
    program = Program(
        pack_id=checked.sources.manifest.id,
        rules=tuple(rules),
        lines_any=namespace.get("_lines_any"),
        lines_by_code=lines_by_code,
        claim_fn=namespace.get("_claim"),
        diagnosis_fn=namespace.get("_diagnoses"),
        evaluate_fn=namespace["_evaluate"],
        digest=digest,
        source="\n".join([*source_parts, evaluate_source]),
        checked=checked,
        functions=functions,
        tables=tables,
        counters=tuple(checked.counters.values()),
        excepts=dict(checked.excepts),
        needs=needs,
        _rule_sources=rule_sources,
        _namespace=namespace,
    )
    installed.append(program)
    weakref.finalize(program, release, name)
    weakref.finalize(program, release, evaluate_name)
    return program


_SERIALS = itertools.count(1)


def _codes_by_rules(rules: list[CompiledRule]) -> dict[tuple[int, ...], set[str]]:
    """The codes of the code-scoped rules grouped by the rules (indices, ascending) that
    name them, in key order. Built with set operations, group by group, not code by code:
    the shipped packs name ~180,000 codes (ranges such as 00100-99607) and a loop over
    them was ~0.2 s of every start (issue 14, cold check)."""
    groups: dict[tuple[int, ...], set[str]] = {}
    for compiled in rules:
        if compiled.scope != "codes" or not compiled.codes:
            continue
        rest = set(compiled.codes)
        for key in list(groups):
            members = groups[key]
            common = members & rest
            if not common:
                continue
            rest -= common
            if len(common) == len(members):  # the whole group is this rule's too
                groups[(*key, compiled.index)] = groups.pop(key)
            else:
                members -= common
                groups[(*key, compiled.index)] = common
            if not rest:
                break
        if rest:
            groups[(compiled.index,)] = rest
    return dict(sorted(groups.items()))


class _NoClasses(dict[Any, int]):
    """Every code in the general line body (a pack compiled without specialising)."""

    def __missing__(self, code: Any) -> int:
        return 0


def _line_loop(
    head: str, with_modifiers: list[str], without: list[str], map_a: str, map_b: str, tail: str = ""
) -> str:
    """`_evaluate`: `head` (up to the loop over lines and its per-date memos), then each line
    goes to the body of its code's class (`dsl/specialize.py`), 0 being the general one."""

    def tree(bodies: list[str], lo: int, hi: int, indent: str) -> list[str]:
        if lo == hi:
            return [indent + ln for ln in bodies[lo].split("\n")]
        mid = (lo + hi + 1) // 2
        return [
            f"{indent}if _cls < {mid}:",
            *tree(bodies, lo, mid - 1, indent + "    "),
            f"{indent}else:",
            *tree(bodies, mid, hi, indent + "    "),
        ]

    lines = [head]
    if len(with_modifiers) == 1 and len(without) == 1:
        lines.append(f"        _cls = ({map_a} if line.modifiers else {map_b})[line.code]")
        lines.extend(tree(with_modifiers, 0, 0, "        "))
    else:
        lines.append("        if line.modifiers:")
        lines.append(f"            _cls = {map_a}[line.code]")
        lines.extend(tree(with_modifiers, 0, len(with_modifiers) - 1, "            "))
        lines.append("        else:")
        lines.append(f"            _cls = {map_b}[line.code]")
        lines.extend(tree(without, 0, len(without) - 1, "            "))
    return "\n".join(lines) + "\n" + tail
