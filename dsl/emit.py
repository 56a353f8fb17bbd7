"""The expression emitter: policy expressions to Python source for one pack, the values
they need (value sets, tables, functions, dates, decimals) collected as constants of the
pack's `exec` namespace, never written into the source."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.checker import CheckedPack
from cleanclaim.dsl.helpers import HELPERS
from cleanclaim.dsl.missing import Read, guarded_paths, label, optional_reads, read_key
from cleanclaim.dsl.static import static_set
from cleanclaim.dsl.valuesets import CodeSet


class Emitter:
    """Generates Python source for one pack, collecting constants in a namespace."""

    def __init__(
        self,
        checked: CheckedPack,
        functions: Mapping[str, T.FunctionSpec],
        tables: Mapping[str, Any],
    ) -> None:
        self.checked = checked
        self.functions = functions
        self.ns: dict[str, Any] = dict(HELPERS)
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

    def null_sides(
        self, left: str, right: str, left_null: bool, right_null: bool, test: str
    ) -> tuple[str, str, list[str]]:
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
            return (
                f"({element} in {exact} or ({element} is not None and "
                f"{element}.startswith({prefixes})))"
            )
        return f"_in_set({element}, {self.const(s, 'c')})"

    def expr(self, e: ast.Expr, env: dict[str, str]) -> str:
        if self.mode == "classic":
            return self._expr(e, env)
        if isinstance(
            e, (ast.Quantified, ast.QuantifiedIn, ast.Call, ast.Membership, ast.Presence)
        ):
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
        if (
            isinstance(e, ast.Path)
            and len(e.parts) == 1
            and e.parts[0] in self.vlets
            and (e.parts[0],) not in self.guarded
        ):
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

    def undecided(
        self,
        rule: ast.Rule,
        version: ast.Version,
        env: dict[str, str],
        conditions: Sequence[ast.Expr],
    ) -> tuple[str, str, str] | None:
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
        read_codes = [
            (label(p), self.path(p, env) if isinstance(p, ast.Path) else self._expr(p, env))
            for p in reads
        ]
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
            reads = (
                optional_reads(e, self.checked.types, self.vlets, self.guarded)
                if self.mode != "classic"
                else []
            )
            for path in reads:
                self.reads.setdefault(read_key(path), path)
            if reads and (self.mode == "possible") == self.positive and (left_null or right_null):
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
            test = (
                self.membership(var, s, True)
                if s is not None
                else f"({var} in {self.expr(e.container, env)})"
            )
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
        if not LOCAL_NAME.search(", ".join(args)) and CALLS.search(text):
            # Depends on the claim and line only, and calls a function: worth computing
            # once (an inline attribute or dict read is cheaper than a memo).
            self.memoizable.add(text)
            if (spec.line_free or not spec.contextual) and not _LINE_READ.search(
                _LINE_DATE.sub("", ", ".join(named))
            ):
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
        day = (
            f"{env['line']}.service_date" if "line" in env else f"{env['claim']}.first_service_date"
        )
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

    def inline(
        self,
        spec: T.FunctionSpec,
        call: str,
        args: list[str],
        env: dict[str, str],
        exprs: list[ast.Expr],
    ) -> str | None:
        """The function's inline form (`FunctionSpec.inline`) for these arguments, or
        None when an argument it reads twice is not a plain path."""
        template = spec.inline
        assert template is not None
        values: dict[str, str] = {
            "call": call,
            "claim": env["claim"],
            "line": env.get("line", "None"),
        }
        if "{counts}" in template:  # the filter of the counter argument, inline
            counters = [
                self.checked.counters[a.parts[0]]
                for a in exprs
                if isinstance(a, ast.Path) and a.parts[0] in self.checked.counters
            ]
            if len(counters) != 1 or "line" not in env:
                return None
            # (a filter of "True" leaves `x if True else None`, which Python folds to `x`)
            values["counts"] = self.counter_test(
                counters[0], env["line"], env.get("member", "claim.member")
            )
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
        day = (
            f"{env['line']}.service_date" if "line" in env else f"{env['claim']}.first_service_date"
        )
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
            formatter = (
                "_fmt_icd"
                if (
                    found.name == "icd10"
                    or (
                        found.name == "list"
                        and found.elem is not None
                        and found.elem.name == "icd10"
                    )
                )
                else "_fmt"
            )
            shown = self.path(path, env) if isinstance(path, ast.Path) else self.expr(path, env)
            parts.append(f"{formatter}({shown})")
            pos = end
        if pos < len(text.value):
            parts.append(repr(text.value[pos:]))
        return " + ".join(parts) if parts else "''"


def _is_plan(e: ast.Expr) -> bool:
    return isinstance(e, ast.Path) and e.parts == ("claim", "plan")


# The record each name a rule starts a path with stands for.
_ROOT_TYPES: dict[str, T.Type] = {
    name: t for roots in T.ROOTS.values() for name, t in roots.items() if t.name in T.RECORDS
}
LOCAL_NAME = re.compile(r"\b_(?:v|l|e|w)[A-Za-z0-9_]*\b")
CALLS = re.compile(r"\b_f[0-9]+\(")
_LINE_DATE = re.compile(r"\bline\.service_date\b")
_LINE_READ = re.compile(r"\bline\b")
# A name or attribute path: cheap and safe to read twice.
_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|-?[0-9]+")
