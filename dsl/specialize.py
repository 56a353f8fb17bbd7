"""Copies of a pack's line loop specialised by procedure code, built while checking.

Much of what the all-lines rules ask of a line's procedure code has the same answer
every time the code comes back: is it a well-formed code, has it an MUE, is it the
column-2 code of a PTP edit, does it fall in a value set. So is what they ask of a line
with no modifier at all. `LineClasses` sorts codes into classes by these answers (two
sets of classes: lines with modifiers, lines without) and gives each class its own
copy of the line body, the answers written in and what they rule out removed: a line
of a code with no MUE does not meet the MUE rule at all.

How an answer is found: a part of the line body is *fixed by the line* when it reads
only constants of the pack's namespace, `line.code` (and `line.modifiers`, for lines
without modifiers), through operations with no effects (comparisons, `and`/`or`/`not`,
membership, reading an attribute, `len`, the methods in `_PURE_METHODS`, and functions
declared `FunctionSpec.constant`). Reading the body in a fixed order, each such part is
worked out for a code: true, false or missing is written in, and the code's *key* records
it; any other value (an MUE of 3) stays to be computed at run time, the key records
`OTHER`, and its own parts are read next. Codes with the same key get the same copy, so
the copy is right for each of them. `simplify` then folds what the written-in answers
decide, and a few rewrites that hold for any line (see its rules).

Classes are built while claims are checked. The first time a line shows a code costs
one set insertion: the general body applies, as the compiler wrote it, so checking one
claim parses, analyses and compiles nothing more. The second time, the body is analysed
(once per pack), the code's key is worked out by a compiled key function and, when the
key is new, its class is built and the pack's `_evaluate` compiled again. Codes whose
key has no class (past `MAX_CLASSES` per set) or cannot be worked out get the general
body, simplified. Each compiled `_evaluate` reads its own pair of class maps, which only
answer with classes it was built with: a recompilation while a claim is being checked
cannot send a line to code that does not have its class.
"""

from __future__ import annotations

import ast as py
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

from cleanclaim.dsl.simplify import evaluate
from cleanclaim.dsl.simplify import simplify as simplify  # (its import path before the split)

OTHER = "<other>"  # in a key: a value that is neither true, false nor missing
MAX_CLASSES = 32  # per set (lines with modifiers, lines without)
MAX_CODES = 100_000  # codes remembered per class map; past it each sight classifies again
_WAITING_SIGHTINGS = 64

_SAFE_BUILTINS: dict[str, Any] = {"len": len, "bool": bool, "abs": abs, "min": min, "max": max}
# Methods with no effect of the types generated code calls them on (sets, dicts, text).
_PURE_METHODS = frozenset(
    {
        "get",
        "isdisjoint",
        "issuperset",
        "issubset",
        "startswith",
        "endswith",
        "isdigit",
        "isascii",
        "isalpha",
        "isalnum",
        "isdecimal",
        "upper",
        "lower",
        "strip",
    }
)
_SCALARS = (bool, int, float, str, type(None))
_NOT_CONST, _CONST, _BY_LINE = 0, 1, 2
_NO_VALUE = object()


class _Kinds:
    """Which nodes are constant (`_CONST`), fixed by the line's known attributes
    (`_BY_LINE`) or neither; and the values of constant ones, worked out on demand."""

    def __init__(
        self, ns: Mapping[str, Any], constant_fns: frozenset[int], known: frozenset[str]
    ) -> None:
        self.ns = ns
        self.constant_fns = constant_fns  # ids of functions declared constant
        self.known = known
        self._kind: dict[int, int] = {}
        self._values: dict[int, Any] = {}
        self._holds: dict[int, bool] = {}

    def kind(self, node: py.AST) -> int:
        found = self._kind.get(id(node))
        if found is None:
            found = self._kind[id(node)] = self._classify(node)
        return found

    def holds_answers(self, node: py.AST) -> bool:
        """Whether `node` or a node below it is fixed by the line, or a constant other than
        a literal (what `_fill` may write in)."""
        found = self._holds.get(id(node))
        if found is None:
            kind = self.kind(node) if isinstance(node, py.expr) else _NOT_CONST
            found = kind == _BY_LINE or (kind == _CONST and not isinstance(node, py.Constant))
            if not found:
                found = any([self.holds_answers(c) for c in py.iter_child_nodes(node)])
            self._holds[id(node)] = found
        return found

    def value(self, node: py.expr) -> Any:
        """The value of a constant node (`_NO_VALUE` when working it out fails)."""
        key = id(node)
        if key in self._values:
            return self._values[key]
        value: Any
        try:
            if isinstance(node, py.Constant):
                value = node.value
            elif isinstance(node, py.Name):
                value = self.ns[node.id] if node.id in self.ns else _SAFE_BUILTINS[node.id]
            elif isinstance(node, py.Attribute):
                base = self.value(node.value)
                value = _NO_VALUE if base is _NO_VALUE else getattr(base, node.attr)
            else:
                value = evaluate(node, self.ns, None)
        except Exception:  # then not worked out ahead of time
            value = _NO_VALUE
        self._values[key] = value
        return value

    def _classify(self, node: py.AST) -> int:
        if isinstance(node, py.Constant):
            return _CONST
        if isinstance(node, py.Name):
            if node.id in self.ns:
                return _CONST if not node.id.startswith("__") else _NOT_CONST
            return _CONST if node.id in _SAFE_BUILTINS else _NOT_CONST
        if isinstance(node, py.Attribute):
            if isinstance(node.value, py.Name) and node.value.id == "line":
                return _BY_LINE if node.attr in self.known else _NOT_CONST
            return self.kind(node.value)
        if isinstance(node, py.Call):
            if node.keywords or not self._pure_callee(node.func):
                return _NOT_CONST
            return self._all([node.func, *node.args])
        if isinstance(node, py.Compare):
            return self._all([node.left, *node.comparators])
        if isinstance(node, py.BoolOp):
            return self._all(node.values)
        if isinstance(node, py.UnaryOp):
            return self.kind(node.operand)
        if isinstance(node, py.IfExp):
            return self._all([node.test, node.body, node.orelse])
        if isinstance(node, py.Subscript):
            return self._all([node.value, node.slice])
        if isinstance(node, py.Tuple):
            return self._all(node.elts) if node.elts else _CONST
        return _NOT_CONST

    def _all(self, nodes: list[py.expr]) -> int:
        kinds = [self.kind(n) for n in nodes]
        return _NOT_CONST if _NOT_CONST in kinds else max(kinds)

    def _pure_callee(self, func: py.expr) -> bool:
        if isinstance(func, py.Name):
            if func.id in self.ns:
                return id(self.ns[func.id]) in self.constant_fns
            return func.id in _SAFE_BUILTINS
        return isinstance(func, py.Attribute) and func.attr in _PURE_METHODS


def _key_nodes(node: py.AST, kinds: _Kinds) -> list[py.expr]:
    """The parts of `node` fixed by the line and not inside another, in reading order."""
    found: list[py.expr] = []

    def visit(n: py.AST) -> None:
        if isinstance(n, py.expr) and kinds.kind(n) == _BY_LINE:
            found.append(n)
            return
        for child in py.iter_child_nodes(n):
            visit(child)

    visit(node)
    return found


class LineClasses:
    """Code classes of one pack for one set of lines (with modifiers, or without), and
    the key function that sorts a code into them."""

    def __init__(
        self,
        body: list[py.stmt],
        ns: Mapping[str, Any],
        constant_fns: frozenset[int],
        known: frozenset[str],
        modifiers: tuple[str, ...] | None,
    ) -> None:
        self.body = body
        self.kinds = _Kinds(ns, constant_fns, known)
        self.modifiers = modifiers
        self.ns = ns
        self.keys: dict[tuple[Any, ...], int] = {}  # key -> class number (from 1)
        self.bodies: list[str] = []  # class number - 1 -> its line body (Python source)
        self._key_fn: Callable[[Any], list[Any]] | None = None  # compiled on first use

    def _compile_key_fn(self) -> Callable[[Any], list[Any]]:
        """A function of a stand-in line giving the key: the same reading as `_fill`
        (each part fixed by the line: its value, or OTHER and then its own parts)."""
        lines = ["def _key(line):", "    k = []"]
        counter = itertools.count()

        def emit(node: py.expr, indent: str) -> None:
            v = f"_v{next(counter)}"
            lines.append(f"{indent}{v} = {py.unparse(node)}")
            lines.append(f"{indent}if {v} is None or {v} is True or {v} is False:")
            lines.append(f"{indent}    k.append({v})")
            lines.append(f"{indent}else:")
            lines.append(f"{indent}    k.append(_OTHER)")
            for child in py.iter_child_nodes(node):
                for inner in _key_nodes(child, self.kinds):
                    emit(inner, indent + "    ")

        for stmt in self.body:
            for node in _key_nodes(stmt, self.kinds):
                emit(node, "    ")
        lines.append("    return k")
        scope = {**self.ns, "_OTHER": OTHER}
        exec(compile("\n".join(lines), "<line key>", "exec"), scope)
        fn: Callable[[Any], list[Any]] = scope["_key"]
        return fn

    def key(self, code: Any) -> tuple[Any, ...] | None:
        """The key of a procedure code, or None when it cannot be worked out."""
        if self._key_fn is None:
            self._key_fn = self._compile_key_fn()
        try:
            return tuple(self._key_fn(_StandIn(code, self.modifiers)))
        except Exception:  # such a code gets the general body
            return None

    def class_body(self, key: tuple[Any, ...]) -> list[py.stmt]:
        """The line body with the answers of `key` written in, simplified."""
        answers = iter(key)
        filled = [self._fill(stmt, answers) for stmt in self.body]
        return simplify(filled)

    def _fill(self, node: Any, answers: Any) -> Any:
        if not self.kinds.holds_answers(node):
            return node  # nothing to write in below: shared, not copied
        if isinstance(node, py.expr):
            kind = self.kinds.kind(node)
            if kind == _BY_LINE:
                answer = next(answers)
                if answer is not OTHER:
                    return py.Constant(answer)
            elif kind == _CONST:
                value = self.kinds.value(node)
                if value is not _NO_VALUE and isinstance(value, _SCALARS):
                    return py.Constant(value)
                return node
        fields: dict[str, Any] = {}
        for name, value in py.iter_fields(node):
            if isinstance(value, list):
                fields[name] = [
                    self._fill(v, answers) if isinstance(v, py.AST) else v for v in value
                ]
            elif isinstance(value, py.AST):
                fields[name] = self._fill(value, answers)
            else:
                fields[name] = value
        return type(node)(**fields)


class _StandIn:
    """A line as the key function sees it: its code (and no modifiers)."""

    __slots__ = ("code", "modifiers")

    def __init__(self, code: Any, modifiers: tuple[str, ...] | None) -> None:
        self.code = code
        self.modifiers = modifiers


class ClassMap(dict[Any, int]):
    """Procedure code -> class number for one compiled `_evaluate` (0: the general body).
    A code missing is asked of the `Specializer` (`classify`); numbers past `limit`
    (classes built after this map's `_evaluate` was compiled) read as 0."""

    def __init__(
        self, owner: Specializer, which: int, limit: int, entries: Mapping[Any, int] | None = None
    ) -> None:
        super().__init__(entries or {})
        self.owner = owner
        self.which = which  # 0: lines with modifiers, 1: without
        self.limit = limit

    def __missing__(self, code: Any) -> int:
        number = self.owner.classify(self.which, code)
        if number < 0 or number > self.limit:  # no class yet, or none in this map
            return 0
        if len(self) < MAX_CODES:
            self[code] = number
        return number


class Specializer:
    """Builds a pack's `_evaluate` with its line classes, and again as classes appear.

    `render(bodies_a, bodies_b, map_a, map_b)` returns the source of `_evaluate` alone
    (the rest of the pack is compiled once, apart) given the class bodies (Python
    source, general body first) and the names of the class maps; `install(fn)` puts a
    compiled `_evaluate` in service."""

    def __init__(
        self,
        ns: dict[str, Any],
        body: str,
        constant_fns: frozenset[int],
        render: Callable[[list[str], list[str], str, str], str],
        install: Callable[[Callable[..., None]], None],
        name: str,
    ) -> None:
        self.ns = ns
        self.body = body
        self.constant_fns = constant_fns
        self.render = render
        self.install = install
        self.name = name
        # Until a code comes back the body stays as the compiler wrote it: checking one
        # claim parses, analyses and simplifies nothing (a cold start stays as fast).
        self.general = body
        self.classes: tuple[LineClasses, LineClasses] | None = None
        self.seen: tuple[set[Any], set[Any]] = (set(), set())
        self.generation = 0
        self.broken = False  # set if building a class failed: the general body from then on
        self.compiled = 0  # classes in the `_evaluate` in service
        self.waiting_sightings = 0  # sightings of codes whose class waits to be compiled in
        self._lock = threading.RLock()
        self.maps: tuple[ClassMap, ClassMap] | None = None
        self.source = ""

    def _analysed(self) -> tuple[LineClasses, LineClasses]:
        if self.classes is None:
            tree = py.parse(self.body).body
            # The general body with what holds for every line written in (constants).
            self.general = _source(
                LineClasses(tree, self.ns, self.constant_fns, frozenset(), None).class_body(())
            )
            self.classes = (
                LineClasses(tree, self.ns, self.constant_fns, frozenset({"code"}), None),
                LineClasses(tree, self.ns, self.constant_fns, frozenset({"code", "modifiers"}), ()),
            )
        return self.classes

    def build(self) -> Callable[..., None]:
        """Compile `_evaluate` with the classes there are now and put it in service."""
        with self._lock:
            self.generation += 1
            bodies: tuple[list[str], list[str]] = ([self.general], [self.general])
            if self.classes is not None:
                for which, classes in enumerate(self.classes):
                    bodies[which].extend(classes.bodies)
            self.compiled = len(bodies[0]) + len(bodies[1]) - 2
            self.waiting_sightings = 0
            old = self.maps
            maps = (
                ClassMap(self, 0, len(bodies[0]) - 1, old[0] if old else None),
                ClassMap(self, 1, len(bodies[1]) - 1, old[1] if old else None),
            )
            names = (f"_CA{self.generation}", f"_CB{self.generation}")
            source = self.render(bodies[0], bodies[1], *names)
            self.ns[names[0]], self.ns[names[1]] = maps
            exec(compile(source, self.name, "exec"), self.ns)
            self.maps, self.source = maps, source
            fn: Callable[..., None] = self.ns["_evaluate"]
            self.install(fn)
            return fn

    def classify(self, which: int, code: Any) -> int:
        """The class of `code` for lines with modifiers (`which` 0) or without (1): its
        number, 0 for the general body, -1 for the general body this time (the code's
        first sighting: nothing is worked out for a code that does not come back)."""
        seen = self.seen[which]
        if code not in seen:
            if len(seen) < MAX_CODES:
                seen.add(code)
            return -1
        if self.broken:
            return 0
        with self._lock:
            try:
                return self._class_of(which, code)
            except Exception:  # a defect here must not stop checking: no more classes
                self.broken = True
                return 0

    def _class_of(self, which: int, code: Any) -> int:
        classes = self._analysed()[which]
        key = classes.key(code)
        if key is None:
            return 0
        number = classes.keys.get(key)
        if number is None:
            if len(classes.bodies) >= MAX_CLASSES:
                return 0
            classes.bodies.append(_source(classes.class_body(key)))
            number = classes.keys[key] = len(classes.bodies)
            # Compiling `_evaluate` again costs more as classes add up: new classes wait
            # (their codes take the general body) until they are half as many as those
            # compiled in, or their codes have come back `_WAITING_SIGHTINGS` times.
            if self._waiting() >= max(1, self.compiled // 2):
                self.build()
        elif self._waiting():
            self.waiting_sightings += 1
            if self.waiting_sightings >= _WAITING_SIGHTINGS:
                self.build()
        return number

    def _waiting(self) -> int:
        """Classes built since `_evaluate` was last compiled."""
        assert self.classes is not None
        return sum(len(c.bodies) for c in self.classes) - self.compiled


def _source(stmts: list[py.stmt]) -> str:
    if not stmts:
        return "pass"
    return py.unparse(py.fix_missing_locations(py.Module(body=stmts, type_ignores=[])))
