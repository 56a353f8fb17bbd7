"""Simplification of generated line bodies (Python syntax trees): what the answers a
line class writes in decide, folded away (used by `dsl/specialize.py`)."""

from __future__ import annotations

import ast as py
from collections.abc import Mapping
from typing import Any


def evaluate(node: py.expr, ns: Mapping[str, Any], line: Any) -> Any:
    """The value of expression `node` with the names of `ns` and `line` bound."""
    code = compile(py.fix_missing_locations(py.Expression(node)), "<specialize>", "eval")
    return eval(code, dict(ns), {"line": line})


# ---- simplification ----------------------------------------------------------------------
#
# Rules (each holds for the code the compiler generates, where expressions have no effect
# but filling a memo or a temporary read in the same expression):
# - `and`/`or` chains are flattened; a constant that decides one cuts it short, one that
#   does not is dropped; `not` of a constant, `x if <constant> else y`, a comparison of
#   constants are worked out; `not (a is b)` becomes `a is not b` (and `in`);
# - after `x is None or ...`, `x is not None` is true in the rest of the chain (and after
#   `x is not None and ...`);
# - where only truth counts (an `if`, `not`, an `and`/`or` there), `len(x) > 0` is `x`
#   and `len(x) == 0` is `not x`;
# - `if <constant>` keeps the branch taken; an `if` with nothing left to do goes (its test
#   has no effect); a `let` (`_l_...`) or `_specific` set to a constant is written in
#   where it is read, and the assignment goes when nothing reads it, as does the reset of
#   a memo nothing reads;
# - consecutive `if`s whose tests start with the same condition test it once.


def simplify(stmts: list[py.stmt]) -> list[py.stmt]:
    body = _block(stmts, {})
    read = {
        n.id
        for stmt in body
        for n in py.walk(stmt)
        if isinstance(n, py.Name) and isinstance(n.ctx, py.Load)
    }
    return _merge_ifs(_drop_unread(body, read))


def _drop_unread(stmts: list[py.stmt], read: set[str]) -> list[py.stmt]:
    """Without the assignments of a constant to a name nothing reads any more."""
    out: list[py.stmt] = []
    for stmt in stmts:
        if (
            isinstance(stmt, py.Assign)
            and isinstance(stmt.targets[0], py.Name)
            and stmt.targets[0].id not in read
            and (
                (isinstance(stmt.value, py.Constant) and _propagates(stmt.targets[0].id))
                or _is_memo_reset(stmt)
            )
        ):
            continue
        if isinstance(stmt, py.If):
            stmt = py.If(
                test=stmt.test,
                body=_drop_unread(stmt.body, read) or [py.Pass()],
                orelse=_drop_unread(stmt.orelse, read),
            )
        out.append(stmt)
    return out


def _is_memo_reset(stmt: py.Assign) -> bool:
    """`_m... = _U`: a memo emptied for the next line (the compiler's memo form)."""
    target = stmt.targets[0]
    return (
        isinstance(target, py.Name)
        and target.id.startswith("_m")
        and isinstance(stmt.value, py.Name)
        and stmt.value.id == "_U"
    )


def _propagates(name: str) -> bool:
    return name.startswith("_l_") or name == "_specific"


def _block(stmts: list[py.stmt], env: dict[str, py.Constant]) -> list[py.stmt]:
    out: list[py.stmt] = []
    for stmt in stmts:
        if isinstance(stmt, py.If):
            test = _expr(stmt.test, True, env, frozenset())
            if isinstance(test, py.Constant):
                out.extend(_block(stmt.body if test.value else stmt.orelse, env))
                continue
            body = _block(stmt.body, dict(env))
            orelse = _block(stmt.orelse, dict(env))
            _forget_assigned(stmt, env)
            if not body and not orelse:
                continue
            if not body:
                out.append(py.If(test=_negate(test), body=orelse, orelse=[]))
            else:
                out.append(py.If(test=test, body=body, orelse=orelse))
        elif (
            isinstance(stmt, py.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], py.Name)
        ):
            value = _expr(stmt.value, False, env, frozenset())
            name = stmt.targets[0].id
            if _propagates(name) and isinstance(value, py.Constant):
                env[name] = value
            else:
                env.pop(name, None)
            out.append(py.Assign(targets=stmt.targets, value=value))
        elif isinstance(stmt, py.Expr):
            out.append(py.Expr(value=_expr(stmt.value, False, env, frozenset())))
        elif isinstance(stmt, py.Pass):
            continue
        else:
            _forget_assigned(stmt, env)
            out.append(stmt)
    return out


def _forget_assigned(stmt: py.AST, env: dict[str, py.Constant]) -> None:
    """Drop from `env` the names `stmt` may assign (only lets and `_specific` are ever in
    it, so an empty one needs no look)."""
    if env:
        for n in py.walk(stmt):
            if isinstance(n, py.Name) and isinstance(n.ctx, py.Store):
                env.pop(n.id, None)


def _negate(test: py.expr) -> py.expr:
    if isinstance(test, py.UnaryOp) and isinstance(test.op, py.Not):
        return test.operand
    return py.UnaryOp(op=py.Not(), operand=test)


_FLIP: dict[type, type] = {py.Is: py.IsNot, py.IsNot: py.Is, py.In: py.NotIn, py.NotIn: py.In}


def _path(node: py.expr) -> str | None:
    """A name or attribute path (reading it twice gives the same value), as text."""
    if isinstance(node, py.Name):
        return None if node.id.startswith("_m") else node.id
    if isinstance(node, py.Attribute):
        base = _path(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _none_test(node: py.expr) -> tuple[str, bool] | None:
    """(path, True) for `path is None`, (path, False) for `path is not None`."""
    if (
        isinstance(node, py.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (py.Is, py.IsNot))
        and isinstance(node.comparators[0], py.Constant)
        and node.comparators[0].value is None
    ):
        path = _path(node.left)
        if path is not None:
            return path, isinstance(node.ops[0], py.Is)
    return None


def _expr(
    node: py.expr, truth: bool, env: dict[str, py.Constant], present: frozenset[str]
) -> py.expr:
    """`node` simplified; `truth`: only its truth counts; `present`: paths known not to
    be None here."""
    if isinstance(node, py.Name):
        if isinstance(node.ctx, py.Load) and node.id in env:
            return py.Constant(env[node.id].value)
        return node
    if isinstance(node, py.Constant):
        return node
    if isinstance(node, py.BoolOp):
        return _boolop(node, truth, env, present)
    if isinstance(node, py.UnaryOp) and isinstance(node.op, py.Not):
        operand = _expr(node.operand, True, env, present)
        if isinstance(operand, py.Constant):
            return py.Constant(not operand.value)
        if (
            isinstance(operand, py.Compare)
            and len(operand.ops) == 1
            and type(operand.ops[0]) in _FLIP
        ):
            return py.Compare(
                left=operand.left,
                ops=[_FLIP[type(operand.ops[0])]()],
                comparators=operand.comparators,
            )
        if truth and isinstance(operand, py.UnaryOp) and isinstance(operand.op, py.Not):
            return operand.operand
        return py.UnaryOp(op=py.Not(), operand=operand)
    if isinstance(node, py.IfExp):
        memo = _memo_of_constant(node)
        if memo is not None:  # a memo of a constant is that constant
            return memo
        test = _expr(node.test, True, env, present)
        if isinstance(test, py.Constant):
            return _expr(node.body if test.value else node.orelse, truth, env, present)
        return py.IfExp(
            test=test,
            body=_expr(node.body, truth, env, present),
            orelse=_expr(node.orelse, truth, env, present),
        )
    if isinstance(node, py.Compare):
        nulls = _none_test(node)
        if nulls is not None and nulls[0] in present:
            return py.Constant(not nulls[1])
        left = _expr(node.left, False, env, present)
        rights = [_expr(c, False, env, present) for c in node.comparators]
        if isinstance(left, py.Constant) and all(isinstance(r, py.Constant) for r in rights):
            folded = py.Compare(left=left, ops=node.ops, comparators=rights)
            try:
                return py.Constant(evaluate(folded, {}, None))
            except Exception:  # left for run time
                return folded
        if truth and len(node.ops) == 1:
            counted = _counted_truth(left, node.ops[0], rights[0])
            if counted is not None:
                return counted
        return py.Compare(left=left, ops=node.ops, comparators=rights)
    if isinstance(node, (py.GeneratorExp, py.ListComp, py.SetComp, py.Lambda)):
        present = frozenset()
    fields: dict[str, Any] = {}
    for name, value in py.iter_fields(node):
        if isinstance(value, list):
            fields[name] = [
                _expr(v, False, env, present) if isinstance(v, py.expr) else _any(v, env)
                for v in value
            ]
        elif isinstance(value, py.expr):
            fields[name] = _expr(value, False, env, present)
        else:
            fields[name] = value
    return type(node)(**fields)


def _memo_of_constant(node: py.IfExp) -> py.Constant | None:
    """`C` for `(_m if _m is not _U else (_m := C))` (the compiler's memo form)."""
    test, orelse = node.test, node.orelse
    if (
        isinstance(test, py.Compare)
        and isinstance(test.left, py.Name)
        and test.left.id.startswith("_m")
        and len(test.ops) == 1
        and isinstance(test.ops[0], py.IsNot)
        and isinstance(test.comparators[0], py.Name)
        and test.comparators[0].id == "_U"
        and isinstance(orelse, py.NamedExpr)
        and orelse.target.id == test.left.id
        and isinstance(orelse.value, py.Constant)
    ):
        return orelse.value
    return None


def _any(node: Any, env: dict[str, py.Constant]) -> Any:
    if isinstance(node, py.comprehension):
        return py.comprehension(
            target=node.target,
            iter=_expr(node.iter, False, env, frozenset()),
            ifs=[_expr(i, True, env, frozenset()) for i in node.ifs],
            is_async=node.is_async,
        )
    return node


def _counted_truth(left: py.expr, op: py.cmpop, right: py.expr) -> py.expr | None:
    """`len(x) > 0` as `x`, `len(x) == 0` as `not x` (where only truth counts)."""
    if not (
        isinstance(left, py.Call)
        and isinstance(left.func, py.Name)
        and left.func.id == "len"
        and len(left.args) == 1
        and not left.keywords
        and isinstance(right, py.Constant)
        and type(right.value) is int
    ):
        return None
    counted, n = left.args[0], right.value
    if (isinstance(op, (py.Gt, py.NotEq)) and n == 0) or (isinstance(op, py.GtE) and n == 1):
        return counted
    if (isinstance(op, py.Eq) and n == 0) or (isinstance(op, py.Lt) and n == 1):
        return py.UnaryOp(op=py.Not(), operand=counted)
    return None


def _boolop(
    node: py.BoolOp, truth: bool, env: dict[str, py.Constant], present: frozenset[str]
) -> py.expr:
    is_and = isinstance(node.op, py.And)
    flat: list[py.expr] = []
    stack = list(node.values)
    while stack:  # (a and b) and c -> a and b and c
        value = stack.pop(0)
        if isinstance(value, py.BoolOp) and type(value.op) is type(node.op):
            stack[:0] = value.values
        else:
            flat.append(value)
    kept: list[py.expr] = []
    known = set(present)
    for i, value in enumerate(flat):
        last = i == len(flat) - 1
        value = _expr(value, truth, env, frozenset(known))
        if isinstance(value, py.Constant):
            if bool(value.value) != is_and:  # decides the chain: it ends here
                if not kept:
                    return value
                if truth:  # (what came before has no effect)
                    return py.Constant(bool(value.value))
                kept.append(value)
                break
            if last and not truth:  # `a and True` is True, not a, when a is true
                kept.append(value)
            continue
        kept.append(value)
        test = _none_test(value)
        if test is not None and test[1] != is_and:  # `x is not None and`, `x is None or`
            known.add(test[0])
    if not kept:
        return py.Constant(is_and)
    if len(kept) == 1:
        return kept[0]
    return py.BoolOp(op=node.op, values=kept)


def _first(test: py.expr) -> py.expr:
    if isinstance(test, py.BoolOp) and isinstance(test.op, py.And):
        return test.values[0]
    return test


def _rest(test: py.expr) -> py.expr | None:
    if isinstance(test, py.BoolOp) and isinstance(test.op, py.And):
        rest = test.values[1:]
        return rest[0] if len(rest) == 1 else py.BoolOp(op=py.And(), values=rest)
    return None


def _merge_ifs(stmts: list[py.stmt]) -> list[py.stmt]:
    out: list[py.stmt] = []
    i = 0
    while i < len(stmts):
        stmt = stmts[i]
        if isinstance(stmt, py.If):
            stmt = py.If(test=stmt.test, body=_merge_ifs(stmt.body), orelse=_merge_ifs(stmt.orelse))
        if not (isinstance(stmt, py.If) and not stmt.orelse) or any(
            isinstance(n, py.Name) and n.id.startswith("_l_") for n in py.walk(_first(stmt.test))
        ):
            out.append(stmt)
            i += 1
            continue
        head = py.dump(_first(stmt.test))
        group = [stmt]
        j = i + 1
        while j < len(stmts):
            following = stmts[j]
            if not (
                isinstance(following, py.If)
                and not following.orelse
                and py.dump(_first(following.test)) == head
            ):
                break
            group.append(following)
            j += 1
        if len(group) == 1:
            out.append(stmt)
            i += 1
            continue
        inner: list[py.stmt] = []
        for member in group:
            rest = _rest(member.test)
            if rest is None:
                inner.extend(member.body)
            else:
                inner.append(py.If(test=rest, body=member.body, orelse=[]))
        out.append(py.If(test=_first(stmt.test), body=_merge_ifs(inner), orelse=[]))
        i = j
    return out
