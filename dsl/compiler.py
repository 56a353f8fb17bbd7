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
comments carry numbers only, and the memo (`_memoize_split`) hides string literals before
it rewrites calls (tests/test_generated_code_safety.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.checker import CheckedPack
from cleanclaim.dsl.codesets import icd10cm
from cleanclaim.dsl.exceptions import apply_exceptions
from cleanclaim.dsl.history import Counter, bind_counters, counter_source, walk
from cleanclaim.dsl.missing import Read, guarded_paths, label, optional_reads, read_key
from cleanclaim.dsl.specialize import Specializer
from cleanclaim.dsl.static import conjuncts, date_minus, date_plus, static_set
from cleanclaim.dsl.tables import data_value, table_value
from cleanclaim.dsl.valuesets import CodeSet, partial_notes
from cleanclaim.dsl.vocabulary import DEFAULT_OWNER

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


@dataclass(slots=True)
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

    def run_rule(self, index: int, claim: Any, line: Any, out: list[Any]) -> None:
        """Apply one rule alone (slow path, used to isolate a failing rule)."""
        fn = self._single.get(index)
        if fn is None:
            code = compile(self._rule_sources[index],
                           source_name("rule", self.rules[index].id), "exec")
            exec(code, self._namespace)
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


# ---- runtime helpers the generated code calls ------------------------------------------


def _numbers(a: Any, b: Any) -> tuple[Any, Any]:
    """Decimal literals meet float units: compute in Decimal."""
    if isinstance(a, Decimal) and isinstance(b, float):
        return a, Decimal(repr(b))
    if isinstance(b, Decimal) and isinstance(a, float):
        return Decimal(repr(a)), b
    return a, b


def _add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _numbers(a, b)
    return a + b


def _sub(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _numbers(a, b)
    return a - b


def _missing(x: Any) -> bool:
    return x is None or x == "" or (isinstance(x, (list, tuple)) and not x)


def _in_set(x: Any, s: CodeSet) -> bool:
    return x in s


def _fmt(x: Any) -> str:
    if x is None:
        return "(missing)"
    if isinstance(x, (list, tuple)):
        return ", ".join(_fmt(i) for i in x) if x else "(none)"
    if isinstance(x, dt.date):
        return x.isoformat()
    return str(x)


def _fmt_icd(x: Any) -> str:
    if x is None:
        return "(missing)"
    if isinstance(x, (list, tuple)):
        return ", ".join(icd10cm.dotted(i) for i in x) if x else "(none)"
    return icd10cm.dotted(str(x))


def _others(claim: Any, line: Any) -> list[Any]:
    return [o for o in claim.lines if o is not line]


def _needs(reads: tuple[tuple[str, Any], ...], what: str) -> str:
    """The message of a rule that cannot be decided: the fields it needs that are missing
    (dsl/missing.py)."""
    missing = [name for name, value in reads if value is None]
    return f"needs {', '.join(missing)} to decide: {what}"


_HELPERS: dict[str, Any] = {
    "_add": _add, "_sub": _sub,
    "_date_add": date_plus, "_date_sub": date_minus, "_missing": _missing, "_in_set": _in_set,
    "_fmt": _fmt, "_fmt_icd": _fmt_icd, "_others": _others, "_needs": _needs,
    "_plan": T.plan_of, "_fold": T.plan_key,
    "_table_value": table_value, "_data_value": data_value,
    "_apply_exceptions": apply_exceptions,
}


# ---- code generation -------------------------------------------------------------------


class _Gen:
    """Generates Python source for one pack, collecting constants in a namespace."""

    def __init__(self, checked: CheckedPack, functions: Mapping[str, T.FunctionSpec],
                 tables: Mapping[str, Any]) -> None:
        self.checked = checked
        self.functions = functions
        self.ns: dict[str, Any] = dict(_HELPERS)
        self._const_ids: dict[tuple[str, Any], str] = {}
        self.tables = tables
        self._tmp = 0
        # Calls that depend only on the claim and the current line: when one appears in
        # several rules of a function it is computed once per line (see `_memoize`).
        self.memoizable: set[str] = set()
        # Of those, the calls that read at most the claim and the line's date of service:
        # the lines of a claim mostly share one date, so these are computed once per date.
        self.per_date: set[str] = set()
        # The types of `let` and quantifier variables (generated name -> type), so that a
        # path through a record that can be missing reads it safely.
        self.var_types: dict[str, T.Type] = {}
        # Missing values (dsl/missing.py): "classic" writes a comparison with a missing
        # value as false; "definite" / "possible" write an unknown one as what makes the
        # condition false / true (`positive`: not under an odd number of `not`s). The
        # version being written: its `let`s, the paths it tests with `is present`, and the
        # optional fields its comparisons read (filled while writing).
        self.mode = "classic"
        self.positive = True
        self.vlets: dict[str, ast.Expr] = {}
        self.guarded: frozenset[tuple[str, ...]] = frozenset()
        self.reads: dict[Any, Read] = {}
        # (rule index, version index) -> what its finding rests on that the shipped data
        # cannot prove (a partial value set, a sample table): see `partial_notes`.
        self.partial: dict[tuple[int, int], list[str]] = {}

    def const(self, value: Any, hint: str = "k") -> str:
        by_identity = isinstance(value, (CodeSet, dict))  # sets by object; memos unhashable
        key = (type(value).__name__, id(value) if by_identity else value)
        name = self._const_ids.get(key)
        if name is None:
            name = f"_{hint}{len(self._const_ids)}"
            self._const_ids[key] = name
            self.ns[name] = value
        return name

    def held(self, code: str) -> tuple[str, str]:
        """`code` to read twice: a plain path as is, anything else computed once into a
        temporary (first the assignment, then the name)."""
        if _SIMPLE.fullmatch(code):
            return code, code
        self._tmp += 1
        name = f"_w{self._tmp}"
        return name, f"({name} := {code})"

    def null_sides(self, left: str, right: str, left_null: bool, right_null: bool,
                   test: str) -> tuple[str, str, list[str]]:
        """A comparison's sides that can be missing, each read once (`held`), with the test
        `<side> is None` (`test` "is": unknown counts as true) or `is not None` ("is not")."""
        tests = []
        if left_null:
            left, held = self.held(left)
            tests.append(f"{held} {test} None")
        if right_null:
            right, held = self.held(right)
            tests.append(f"{held} {test} None")
        return left, right, tests

    def bind(self, var: str, value: ast.Expr) -> None:
        """Record the type of the variable `var` that holds `value` (a `let`)."""
        self.var_types[var] = self.type_of(value)

    def type_of(self, expr: ast.Expr) -> T.Type:
        return self.checked.types.get(id(expr), T.ANY)

    # Sets known at compile time: value set names, code lists and their unions.
    def static_set(self, expr: ast.Expr) -> CodeSet | None:
        return static_set(expr, self.checked.valuesets, self.checked.literal_sets)

    def membership(self, element: str, s: CodeSet, simple: bool) -> str:
        exact = self.const(s.exact, "s")
        if not s.prefixes:
            return f"({element} in {exact})"
        if simple:
            prefixes = self.const(s.prefixes, "p")
            return (f"({element} in {exact} or ({element} is not None and "
                    f"{element}.startswith({prefixes})))")
        return f"_in_set({element}, {self.const(s, 'c')})"

    def expr(self, e: ast.Expr, env: dict[str, str]) -> str:
        if self.mode == "classic":
            return self._expr(e, env)
        if isinstance(e, (ast.Quantified, ast.QuantifiedIn, ast.Call, ast.Membership,
                          ast.Presence)):
            mode, self.mode = self.mode, "classic"  # the plain rule inside these
            try:
                return self._expr(e, env)
            finally:
                self.mode = mode
        if isinstance(e, ast.Not):
            self.positive = not self.positive
            try:
                return f"(not {self.expr(e.operand, env)})"
            finally:
                self.positive = not self.positive
        if (isinstance(e, ast.Path) and len(e.parts) == 1 and e.parts[0] in self.vlets
                and (e.parts[0],) not in self.guarded):
            value = self.vlets[e.parts[0]]
            if self.type_of(value).name == "bool" and self._has_unknowns(value):
                return self.expr(value, env)  # a condition in a `let`: written in place
        return self._expr(e, env)

    @contextlib.contextmanager
    def deciding(self, version: ast.Version, mode: str = "definite") -> Iterator[None]:
        """Write the conditions of `version` as definitely (or possibly) true."""
        saved = self.mode, self.vlets, self.guarded
        self.mode = mode
        self.vlets = {let.name: let.value for let in version.lets}
        self.guarded = guarded_paths(version)
        try:
            yield
        finally:
            self.mode, self.vlets, self.guarded = saved

    def undecided(self, rule: ast.Rule, version: ast.Version, env: dict[str, str],
                  conditions: Sequence[ast.Expr]) -> tuple[str, str, str] | None:
        """For a version whose conditions read optional fields unguarded: the test that
        one is missing, the conditions as possibly true, and the finding's message (the
        three expressions the rule's `elif` is made of); else None."""
        self.reads = {}
        with self.deciding(version):
            for c in conditions:
                self.expr(c, env)
        reads = list(self.reads.values())
        if not reads:
            return None
        with self.deciding(version, "possible"):
            possible = " and ".join(self.expr(c, env) for c in conditions)
        read_codes = [(label(p), self.path(p, env) if isinstance(p, ast.Path)
                       else self._expr(p, env)) for p in reads]
        missing_test = " or ".join(f"{code} is None" for _, code in read_codes)
        what = rule.title.value if rule.title else rule.id
        pairs = "".join(f"({name!r}, {code}), " for name, code in read_codes)
        return missing_test, possible, f"_needs(({pairs}), {what!r})"

    def _has_unknowns(self, value: ast.Expr) -> bool:
        from cleanclaim.dsl.missing import compare_reads
        return bool(compare_reads(value, self.checked.types, self.vlets, self.guarded))

    def _expr(self, e: ast.Expr, env: dict[str, str]) -> str:
        if isinstance(e, ast.Literal_):
            v = e.value
            if isinstance(v, (bool, int, str)) and not isinstance(v, Decimal):
                return repr(v)
            return self.const(v)
        if isinstance(e, ast.Path):
            return self.path(e, env)
        if isinstance(e, ast.Not):
            return f"(not {self.expr(e.operand, env)})"
        if isinstance(e, ast.BoolOp):
            return f"({self.expr(e.left, env)} {e.op} {self.expr(e.right, env)})"
        if isinstance(e, ast.Compare):
            left, right = self.expr(e.left, env), self.expr(e.right, env)
            if _is_plan(e.left) or _is_plan(e.right):  # plan ids: case-insensitively
                left, right = self.folded(e.left, left), self.folded(e.right, right)
            left_null, right_null = self.type_of(e.left).nullable, self.type_of(e.right).nullable
            literal = isinstance(e.left, ast.Literal_) or isinstance(e.right, ast.Literal_)
            reads = (optional_reads(e, self.checked.types, self.vlets, self.guarded)
                     if self.mode != "classic" else [])
            for path in reads:
                self.reads.setdefault(read_key(path), path)
            if reads and (self.mode == "possible") == self.positive and (left_null
                                                                         or right_null):
                # Unknown, written as true: a missing side makes the comparison hold.
                left, right, tests = self.null_sides(left, right, left_null, right_null, "is")
                return f"({' or '.join(tests)} or {left} {e.op} {right})"
            if not (left_null or right_null) or (e.op == "==" and literal):
                # (a missing value never equals a literal: no test needed)
                return f"({left} {e.op} {right})"
            # Any comparison with a missing value is false, `!=` included (`is missing`
            # asks for a missing value). Written out inline: each side that can be missing is
            # tested first (read once, through a temporary when it is not a plain path).
            left, right, tests = self.null_sides(left, right, left_null, right_null, "is not")
            return f"({' and '.join(tests)} and {left} {e.op} {right})"
        if isinstance(e, ast.Arith):
            s = self.static_set(e)
            if s is not None:  # a union/difference of value sets: computed once, here
                return self.const(s, "c")
            left_t = self.type_of(e.left)
            left, right = self.expr(e.left, env), self.expr(e.right, env)
            if left_t.name == "date":
                return f"{'_date_add' if e.op == '+' else '_date_sub'}({left}, {right})"
            # The helpers handle missing values and mix Decimal literals with float units.
            return f"{'_add' if e.op == '+' else '_sub'}({left}, {right})"
        if isinstance(e, ast.Membership):
            element = self.expr(e.element, env)
            simple = isinstance(e.element, ast.Path)
            s = self.static_set(e.container)
            if s is not None and _is_plan(e.element):  # plan ids: case-insensitively
                folded = self.const(frozenset(T.plan_key(c) for c in s.exact), "s")
                test = f"(_fold({element}) in {folded})"
            elif s is not None:
                test = self.membership(element, s, simple)
            else:
                test = f"({element} in {self.expr(e.container, env)})"
            return f"(not {test})" if e.negated else test
        if isinstance(e, ast.Presence):
            value = self.expr(e.operand, env)
            t = self.type_of(e.operand)
            if t.name == "list" or t.name in T.CODE_LIKE:
                test = f"(not {value})"
            else:
                test = f"({value} is None)"
            return test if e.missing else f"(not {test})"
        if isinstance(e, ast.Quantified):
            var = f"_v_{e.var}"
            inner = dict(env)
            inner[e.var] = var
            elem = self.type_of(e.collection).elem
            if elem is not None:
                self.var_types[var] = elem
            coll = self.expr(e.collection, env)
            cond = self.expr(e.condition, inner)
            if e.quantifier == "any":
                return f"any({cond} for {var} in {coll})"
            if e.quantifier == "all":  # false on an empty list, like `all of`
                self._tmp += 1
                held = f"_q{self._tmp}"
                return f"(bool({held} := {coll}) and all({cond} for {var} in {held}))"
            if e.quantifier == "no":
                return f"(not any({cond} for {var} in {coll}))"
            return f"sum(1 for {var} in {coll} if {cond})"
        if isinstance(e, ast.QuantifiedIn):
            coll = self.expr(e.collection, env)
            s = self.static_set(e.container)
            self._tmp += 1
            var = f"_e{self._tmp}"
            if s is not None and not s.prefixes:
                exact = self.const(s.exact, "s")
                if e.quantifier == "any":
                    return f"(not {exact}.isdisjoint({coll}))"
                if e.quantifier == "no":
                    return f"{exact}.isdisjoint({coll})"
                if e.quantifier == "all":
                    return f"(bool({coll}) and {exact}.issuperset({coll}))"
                return f"sum(1 for {var} in {coll} if {var} in {exact})"
            test = (self.membership(var, s, True) if s is not None
                    else f"({var} in {self.expr(e.container, env)})")
            if e.quantifier == "any":
                return f"any({test} for {var} in {coll})"
            if e.quantifier == "no":
                return f"(not any({test} for {var} in {coll}))"
            if e.quantifier == "all":
                return f"(bool({coll}) and all({test} for {var} in {coll}))"
            return f"sum(1 for {var} in {coll} if {test})"
        if isinstance(e, ast.CodeList):
            s = self.static_set(e)
            return self.const(s, "c")
        if isinstance(e, ast.TableRead):
            return self.table_read(e, env)
        assert isinstance(e, ast.Call)
        if e.name == "count" and len(e.args) == 1 and not self.type_of(e.args[0]).nullable:
            return f"len({self.expr(e.args[0], env)})"  # the built-in, inlined
        spec = self.functions[e.name]
        fn = self.const(spec.impl, "f")
        args = []
        for arg, param in zip(e.args, spec.params, strict=True):
            if param.name == "table":
                assert isinstance(arg, ast.Path)
                args.append(self.const(self.tables[arg.parts[0]], "t"))
            elif param.name == "set":
                s = self.static_set(arg)
                args.append(self.const(s, "c") if s is not None else self.expr(arg, env))
            else:
                args.append(self.expr(arg, env))
        named = list(args)
        if spec.contextual:
            line = env.get("line", "None")
            args = [env["claim"], line, *args]
        text = f"{fn}({', '.join(args)})"
        if spec.inline is not None:
            text = self.inline(spec, text, named, env, list(e.args)) or text
        if not _LOCAL_NAME.search(", ".join(args)) and _CALLS.search(text):
            # Depends on the claim and line only, and calls a function: worth computing
            # once (an inline attribute or dict read is cheaper than a memo).
            self.memoizable.add(text)
            if ((spec.line_free or not spec.contextual)
                    and not _LINE_READ.search(_LINE_DATE.sub("", ", ".join(named)))):
                self.per_date.add(text)
        return text

    def table_read(self, e: ast.TableRead, env: dict[str, str]) -> str:
        """`t[k, ...].column` (dsl/tables.py): a declared table's row by its keys, or a
        data table's as of the date of service in scope."""
        keys = [self.expr(k, env) for k in e.keys]
        column = repr(e.column)
        lookup = self.checked.lookups.get(e.table)
        if lookup is not None:
            return f"_table_value({self.const(lookup, 't')}, {column}, {', '.join(keys)})"
        day = (f"{env['line']}.service_date" if "line" in env
               else f"{env['claim']}.first_service_date")
        table = self.const(self.tables.get(e.table), "t")
        return f"_data_value({table}, {column}, {day}, {', '.join(keys)})"

    def counter_test(self, counter: Any, line: str, member: str = "claim.member") -> str:
        """The counter's line filter as an expression over `line` and `member` (what its
        compiled `matches` computes)."""
        if counter.condition is not None:
            return self.expr(counter.condition, {"line": line, "member": member})
        if counter.codes is not None:
            return self.membership(f"{line}.code", counter.codes, True)
        return "True"

    def inline(self, spec: T.FunctionSpec, call: str, args: list[str],
               env: dict[str, str], exprs: list[ast.Expr]) -> str | None:
        """The function's inline form (`FunctionSpec.inline`) for these arguments, or
        None when an argument it reads twice is not a plain path."""
        template = spec.inline
        assert template is not None
        values: dict[str, str] = {"call": call, "claim": env["claim"],
                                  "line": env.get("line", "None")}
        if "{counts}" in template:  # the filter of the counter argument, inline
            counters = [self.checked.counters[a.parts[0]] for a in exprs
                        if isinstance(a, ast.Path) and a.parts[0] in self.checked.counters]
            if len(counters) != 1 or "line" not in env:
                return None
            # (a filter of "True" leaves `x if True else None`, which Python folds to `x`)
            values["counts"] = self.counter_test(counters[0], env["line"],
                                                 env.get("member", "claim.member"))
        for i, arg in enumerate(args):
            uses = template.count(f"{{{i}}}") + template.count("{call}")
            if uses > 1 and not _SIMPLE.fullmatch(arg):
                return None
        for name, value in spec.consts.items():
            values[name] = self.const(value, "i")
        return template.format(*args, **values)

    def folded(self, e: ast.Expr, code: str) -> str:
        """`code` (of `e`) as plan ids compare: case-insensitively."""
        if isinstance(e, ast.Literal_):
            return repr(T.plan_key(e.value)) if isinstance(e.value, str) else code
        return f"_fold({code})"

    def plan(self, env: dict[str, str]) -> str:
        """The plan of the claim (`T.plan_of`) on the date of service in scope."""
        day = (f"{env['line']}.service_date" if "line" in env
               else f"{env['claim']}.first_service_date")
        return f"_plan({env['claim']}, {day})"

    def path(self, e: ast.Path, env: dict[str, str]) -> str:
        head = e.parts[0]
        if e.parts == ("claim", "plan") and head in env:
            return self.plan(env)
        if head in env:
            base = env[head]
        elif head in self.checked.valuesets:
            return self.const(self.checked.valuesets[head], "c")
        elif head in self.checked.counters:  # a counter handed to a history function
            return self.const(self.checked.counters[head], "h")
        elif head in self.checked.lookups:  # `x in t`: a declared table's keys
            return self.const(self.checked.lookups[head], "t")
        else:  # a table name used as a value
            return self.const(self.tables.get(head), "t")
        # Through a record that can be missing (`claim.referring_provider.npi`), a field
        # of a missing record is missing.
        record = _ROOT_TYPES.get(head) if env.get(head) == head else self.var_types.get(base)
        code = base
        for part in e.parts[1:]:
            fields = T.RECORDS.get(record.name) if record is not None else None
            if record is not None and record.nullable and fields is not None:
                name, test = self.held(code)
                code = f"(None if {test} is None else {name}.{part})"
            else:
                code = f"{code}.{part}"
            record = fields.get(part) if fields is not None else None
        return code

    def message(self, rule: ast.Rule, version: ast.Version, env: dict[str, str]) -> str:
        text = version.message
        if text is None:
            default = rule.title.value if rule.title else rule.id
            return repr(default)
        places = self.checked.templates.get(id(text), [])
        parts: list[str] = []
        pos = 0
        for start, end, path, found in places:
            if start > pos:
                parts.append(repr(text.value[pos:start]))
            formatter = "_fmt_icd" if (found.name == "icd10" or (
                found.name == "list" and found.elem is not None and found.elem.name == "icd10"
            )) else "_fmt"
            shown = self.path(path, env) if isinstance(path, ast.Path) else self.expr(path, env)
            parts.append(f"{formatter}({shown})")
            pos = end
        if pos < len(text.value):
            parts.append(repr(text.value[pos:]))
        return " + ".join(parts) if parts else "''"


def _is_plan(e: ast.Expr) -> bool:
    return isinstance(e, ast.Path) and e.parts == ("claim", "plan")


# The record each name a rule starts a path with stands for.
_ROOT_TYPES: dict[str, T.Type] = {name: t for roots in T.ROOTS.values()
                                  for name, t in roots.items() if t.name in T.RECORDS}
_RESET = re.compile(r"\s*_ml[0-9]+ = _U")
_LOCAL_NAME = re.compile(r"\b_(?:v|l|e|w)[A-Za-z0-9_]*\b")
_CALLS = re.compile(r"\b_f[0-9]+\(")
_LINE_DATE = re.compile(r"\bline\.service_date\b")
_LINE_READ = re.compile(r"\bline\b")
# A name or attribute path: cheap and safe to read twice.
_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|-?[0-9]+")


class _Unset:
    """Marks a per-line memo not computed yet."""

    __slots__ = ()


_UNSET = _Unset()
_HELPERS["_U"] = _UNSET


def _memoize(body: list[str], candidates: AbstractSet[str], indent: str, prefix: str,
             per_date: AbstractSet[str] = frozenset()) -> list[str]:
    inits, memoized = _memoize_split(body, candidates, indent, prefix, per_date)
    return inits + memoized


def _memoize_split(body: list[str], candidates: AbstractSet[str], indent: str, prefix: str,
                   per_date: AbstractSet[str] = frozenset()) -> tuple[list[str], list[str]]:
    """Compute calls that several rules of `body` make with the same arguments once: the
    first use stores the value, later uses read it (functions are pure by contract).

    Calls in `per_date` (they read at most the claim and `line.service_date`) are kept
    from one line to the next while the date of service stays the same; the caller sets
    `_dprev = _U` before its loop over lines when the returned body uses it."""
    # Code and data are told apart by more than text: the string literals of the body
    # (messages, say, which may hold a call's very text) are hidden behind placeholders
    # no generated source can hold (a NUL: `repr` escapes it) while calls are replaced.
    literals: dict[str, str] = {}
    text = _mask_literals("\n".join(body), literals)
    masked = {c: _mask_literals(c, literals) for c in {*candidates, *per_date}}
    dated = [masked[c] for c in per_date if masked[c] in text]
    repeated = [masked[c] for c in candidates
                if c not in per_date and text.count(masked[c]) >= 2]
    if not repeated and not dated:
        return [], body
    inits = []
    memos = [(c, f"_md{k}") for k, c in enumerate(sorted(dated, key=len, reverse=True))]
    memos += [(c, f"_m{prefix}{k}") for k, c in enumerate(sorted(repeated, key=len,
                                                                  reverse=True))]
    for call, name in sorted(memos, key=lambda m: len(m[0]), reverse=True):
        text = text.replace(call, f"({name} if {name} is not _U else ({name} := {call}))")
    if dated:
        inits.append(f"{indent}if line.service_date != _dprev:")
        inits.append(f"{indent}    _dprev = line.service_date")
        inits.extend(f"{indent}    {name} = _U" for _, name in memos if name.startswith("_md"))
    inits.extend(f"{indent}{name} = _U" for _, name in memos if not name.startswith("_md"))
    return inits, _unmask_literals(text, literals).split("\n")


# A string literal of generated source (what `repr` writes: one line, quotes escaped).
# Outside literals generated code holds no quote, so the first quote met opens one.
_LITERAL = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
_PLACEHOLDER = re.compile("\x00([0-9]+)\x00")


def _mask_literals(code: str, literals: dict[str, str]) -> str:
    """`code` with each string literal replaced by `NUL n NUL` (`literals` maps each
    placeholder number back to its literal; equal literals share one)."""
    numbers = {text: n for n, text in literals.items()}

    def hide(match: re.Match[str]) -> str:
        number = numbers.get(match.group())
        if number is None:
            number = numbers[match.group()] = str(len(literals))
            literals[number] = match.group()
        return f"\x00{number}\x00"

    return _LITERAL.sub(hide, code)


def _unmask_literals(code: str, literals: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: literals[m.group(1)], code)


def _mentions(expr: ast.Expr, name: str) -> bool:
    """Whether `expr` reads `name` (a `let`) outside a quantifier that binds it."""
    return any(isinstance(e, ast.Path) and e.parts[0] == name and name not in bound
               for e, bound in walk(expr))


def _uses(code: str, var: str) -> bool:
    return re.search(rf"\b{re.escape(var)}\b", code) is not None


def _scope_kind(rule: ast.Rule) -> str:
    return rule.scope.kind if rule.scope is not None else "all_lines"


def _rule_block(gen: _Gen, index: int, rule: ast.Rule, indent: str) -> list[str]:
    """Python lines applying one rule (all its versions) to the current claim/line."""
    scope = _scope_kind(rule)
    if scope in ("codes", "all_lines"):
        env = {"claim": "claim", "line": "line", "member": "claim.member",
               "other_lines": "_others(claim, line)"}
        date_var, line_no = "line.service_date", "line.line"
    elif scope == "diagnosis":
        env = {"claim": "claim", "member": "claim.member", "diagnosis": "diagnosis"}
        date_var, line_no = "claim.first_service_date", "None"
    else:
        env = {"claim": "claim", "member": "claim.member"}
        date_var, line_no = "claim.first_service_date", "None"
    # Only numbers go into the comment: no text of the policy (its file name, say) may
    # reach generated source except as a `repr` literal or a namespace constant.
    out: list[str] = [f"{indent}# rule {index} (line {int(rule.span.line)})"]
    guards = []
    for vf in rule.filters:
        if vf.field == "plan":  # the claim's plan (T.plan_of), case-insensitively
            target = f"_fold({gen.plan(env)})"
            values = gen.const(frozenset(T.plan_key(v) for v in vf.values), "s")
        else:
            target = "claim.place_of_service"
            values = gen.const(frozenset(vf.values), "s")
        guards.append(f"{target} {'not in' if vf.negated else 'in'} {values}")
    # Leading conditions every version shares (the rule's own `when`, not a version's)
    # are tested before the date of service picks a version: a line they rule out costs
    # one test. Only those that read no version's `let` and call no function (a function
    # could fail on a line whose date no version covers; these cannot).
    parts = [[c for cond in v.conditions for c in conjuncts(cond)] for v in rule.versions]
    shared = 0
    if len(rule.versions) > 1:
        first_conds = parts[0]
        while shared < len(first_conds) and all(
                len(conds) > shared and conds[shared] is first_conds[shared]
                for conds in parts):
            code = gen.expr(first_conds[shared], env)
            if _LOCAL_NAME.search(code) or _CALLS.search(code) or any(
                    _mentions(first_conds[shared], let.name)
                    for v in rule.versions for let in v.lets) or optional_reads(
                    first_conds[shared], gen.checked.types, {}, frozenset()):
                break
            guards.append(code)
            shared += 1
    if guards:
        out.append(f"{indent}if {' and '.join(guards)}:")
        indent += "    "
    # Versions: the one in force on the date of service applies (latest start first).
    ordered = sorted(enumerate(rule.versions),
                     key=lambda iv: iv[1].start or dt.date.min, reverse=True)
    first = True
    for vindex, version in ordered:
        own = parts[vindex][shared:]
        conds = []
        if version.start is not None:
            conds.append(f"{gen.const(version.start)} <= {date_var}")
        if version.end is not None:
            conds.append(f"{date_var} <= {gen.const(version.end)}")
        keyword = "if" if first else "elif"
        if conds:
            out.append(f"{indent}{keyword} {' and '.join(conds)}:")
        elif first:
            out.append(f"{indent}if True:")
        else:
            out.append(f"{indent}else:")
        first = False
        body = indent + "    "
        venv = dict(env)
        lets: list[tuple[str, str]] = []
        for let in version.lets:
            var = f"_l_{let.name}"
            lets.append((var, gen.expr(let.value, venv)))
            gen.bind(var, let.value)
            venv[let.name] = var
        # Missing values (dsl/missing.py): the condition as definitely true, and, when it
        # reads optional fields unguarded, as possibly true (run only when one is missing).
        with gen.deciding(version):
            cond = (" and ".join(gen.expr(c, venv) for c in own)
                    or ("True" if version.conditions else "False"))
        undecided = gen.undecided(rule, version, venv, own)
        missing_test, possible, needs = undecided or ("", "", "")
        # A `let` the conditions need is computed before them; one only the message
        # shows is computed once the rule has fired (the hot path stays short).
        needed: set[str] = set()
        for var, _ in reversed(lets):
            if (_uses(cond, var) or _uses(possible, var) or _uses(missing_test, var)
                    or any(_uses(code, var) for v, code in lets if v in needed)):
                needed.add(var)
        for var, code in lets:
            if var in needed:
                out.append(f"{body}{var} = {code}")
        out.append(f"{body}if {cond}:")
        for var, code in lets:
            if var not in needed:
                out.append(f"{body}    {var} = {code}")
        message = gen.message(rule, version, venv)
        notes = gen.partial.get((index, vindex))
        if notes:  # the finding rests on partial data: say so (issue 11 section 1)
            message = f"{message} + {gen.const(' (review: ' + '; '.join(notes) + ')')}"
        out.append(f"{body}    out.append(({index}, {vindex}, {line_no}, {message}))")
        if undecided:  # undecided: a `review` (the rule's last template, NEEDS_VERSION)
            out.append(f"{body}elif ({missing_test}) and {possible}:")
            out.append(f"{body}    out.append(({index}, {len(rule.versions)}, {line_no}, "
                       f"{needs}))")
        if not conds:
            break
    return out


def _severity(version: ast.Version, on_partial_data: bool) -> str:
    """A version's severity; a deny or reject that may rest on partial data is a review."""
    severity = version.outcome.severity if version.outcome else "review"
    return "review" if on_partial_data and severity in ("deny", "reject") else severity


def compile_pack(checked: CheckedPack, functions: Mapping[str, T.FunctionSpec],
                 tables: Mapping[str, Any], digest: str, specialize: bool = True) -> Program:
    """Generate and compile the program of a pack that checked without errors.

    specialize: give the line loop copies specialised by procedure code as codes are met
    (`dsl/specialize.py`); False keeps the one general body (tests compare the two)."""
    gen = _Gen(checked, functions, tables)
    rules: list[CompiledRule] = []
    blocks: dict[int, tuple[str, list[str]]] = {}
    for index, (pack_id, rule) in enumerate(checked.rules):
        scope = _scope_kind(rule)
        root = rule.root_cause.value if rule.root_cause else "submission"
        for vindex, v in enumerate(rule.versions):
            notes = partial_notes(v.conditions, v.lets, checked.valuesets,
                                  checked.literal_sets, tables)
            if notes:
                gen.partial[(index, vindex)] = notes
        versions = tuple(
            RuleVersion(v.start, v.end, _severity(v, (index, vindex) in gen.partial),
                        v.outcome.group if v.outcome else "CO",
                        v.outcome.carc if v.outcome else "16",
                        v.outcome.rarcs if v.outcome else (),
                        v.reference.value if v.reference else None, v.span.line)
            for vindex, v in enumerate(rule.versions))
        rules.append(CompiledRule(
            index=index, id=rule.id, pack=pack_id,
            title=rule.title.value if rule.title else None, scope=scope,
            root_cause=root, owner=rule.owner.value if rule.owner else DEFAULT_OWNER[root],
            kind=rule.kind.value if rule.kind else root, file=rule.span.file,
            line=rule.span.line, versions=versions,
            codes=checked.scope_sets[rule.id].exact if rule.id in checked.scope_sets
            else frozenset()))
        blocks[index] = (scope, _rule_block(gen, index, rule, "    "))

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
    fused.extend(_memoize(claim_body, gen.memoizable, "    ", "c"))
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
    inits, line_body = _memoize_split(line_body, gen.memoizable, "        ", "l", gen.per_date)
    # The per-line memos are reset in the line body itself, where a specialised copy that
    # no longer uses one drops its reset; the per-date memos before it, for all copies.
    resets = [i for i in inits if _RESET.fullmatch(i)]
    inits = [i for i in inits if not _RESET.fullmatch(i)]
    if any("_dprev" in b for b in inits):
        fused.append("    _dprev = _U")
    fused.append("    for line in claim.lines:")
    fused.extend(inits)
    general = "\n".join([*(r.strip() for r in resets), *(b[4:] for b in line_body)])
    if checked.counters:  # claim-history counters: each one's line filter
        source_parts.append(counter_source(gen, checked))
    name = source_name("pack", checked.sources.manifest.id)
    namespace = gen.ns
    exec(compile("\n".join(source_parts), name, "exec"), namespace)
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

    def install(fn: Callable[..., None]) -> None:
        if installed:
            installed[0].evaluate_fn = fn

    if not line_body:  # no line rule: the loop has nothing to do
        evaluate_source = head + "\n        pass\n" + tail
    elif specialize:
        constant_fns = frozenset([*(id(f.impl) for f in functions.values()
                                    if f.constant and not f.contextual), id(table_value)])
        specializer = Specializer(
            namespace, general, constant_fns,
            lambda a, b, map_a, map_b: _line_loop(head, a, b, map_a, map_b, tail), install,
            name)
        specializer.build()
        evaluate_source = specializer.source
    else:
        namespace["_CA0"] = namespace["_CB0"] = _NoClasses()
        evaluate_source = _line_loop(head, [general], [general], "_CA0", "_CB0", tail)
    if not line_body or not specialize:
        exec(compile(evaluate_source, name, "exec"), namespace)
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
    return program


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


def _line_loop(head: str, with_modifiers: list[str], without: list[str], map_a: str,
               map_b: str, tail: str = "") -> str:
    """`_evaluate`: `head` (up to the loop over lines and its per-date memos), then each line
    goes to the body of its code's class (`dsl/specialize.py`), 0 being the general one."""
    def tree(bodies: list[str], lo: int, hi: int, indent: str) -> list[str]:
        if lo == hi:
            return [indent + ln for ln in bodies[lo].split("\n")]
        mid = (lo + hi + 1) // 2
        return [f"{indent}if _cls < {mid}:", *tree(bodies, lo, mid - 1, indent + "    "),
                f"{indent}else:", *tree(bodies, mid, hi, indent + "    ")]

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
