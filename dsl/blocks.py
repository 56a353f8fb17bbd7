"""The Python of one rule (`rule_block`: all its versions, the one in force on the date
of service applying) and the memo that computes a call several rules of a function make
once (`memoize_split`)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Set as AbstractSet

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.emit import CALLS, LOCAL_NAME, Emitter
from cleanclaim.dsl.history import walk
from cleanclaim.dsl.missing import optional_reads
from cleanclaim.dsl.static import conjuncts

RESET = re.compile(r"\s*_ml[0-9]+ = _U")


def memoize(
    body: list[str],
    candidates: AbstractSet[str],
    indent: str,
    prefix: str,
    per_date: AbstractSet[str] = frozenset(),
) -> list[str]:
    inits, memoized = memoize_split(body, candidates, indent, prefix, per_date)
    return inits + memoized


def memoize_split(
    body: list[str],
    candidates: AbstractSet[str],
    indent: str,
    prefix: str,
    per_date: AbstractSet[str] = frozenset(),
) -> tuple[list[str], list[str]]:
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
    repeated = [masked[c] for c in candidates if c not in per_date and text.count(masked[c]) >= 2]
    if not repeated and not dated:
        return [], body
    inits = []
    memos = [(c, f"_md{k}") for k, c in enumerate(sorted(dated, key=len, reverse=True))]
    memos += [(c, f"_m{prefix}{k}") for k, c in enumerate(sorted(repeated, key=len, reverse=True))]
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
    return any(
        isinstance(e, ast.Path) and e.parts[0] == name and name not in bound
        for e, bound in walk(expr)
    )


def _uses(code: str, var: str) -> bool:
    return re.search(rf"\b{re.escape(var)}\b", code) is not None


def scope_kind(rule: ast.Rule) -> str:
    return rule.scope.kind if rule.scope is not None else "all_lines"


def rule_block(gen: Emitter, index: int, rule: ast.Rule, indent: str) -> list[str]:
    """Python lines applying one rule (all its versions) to the current claim/line."""
    scope = scope_kind(rule)
    if scope in ("codes", "all_lines"):
        env = {
            "claim": "claim",
            "line": "line",
            "member": "claim.member",
            "other_lines": "_others(claim, line)",
        }
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

    def at(code: str, span: ast.Span) -> str:
        """A line of the rule, with the policy line it comes from (`line_map`)."""
        return f"{code}  # rule {index}, line {int(span.line)}"

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
            len(conds) > shared and conds[shared] is first_conds[shared] for conds in parts
        ):
            code = gen.expr(first_conds[shared], env)
            if (
                LOCAL_NAME.search(code)
                or CALLS.search(code)
                or any(
                    _mentions(first_conds[shared], let.name)
                    for v in rule.versions
                    for let in v.lets
                )
                or optional_reads(first_conds[shared], gen.checked.types, {}, frozenset())
            ):
                break
            guards.append(code)
            shared += 1
    if guards:
        out.append(at(f"{indent}if {' and '.join(guards)}:", rule.span))
        indent += "    "
    # Versions: the one in force on the date of service applies (latest start first).
    ordered = sorted(
        enumerate(rule.versions), key=lambda iv: iv[1].start or dt.date.min, reverse=True
    )
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
            out.append(at(f"{indent}{keyword} {' and '.join(conds)}:", version.span))
        elif first:
            out.append(at(f"{indent}if True:", version.span))
        else:
            out.append(at(f"{indent}else:", version.span))
        first = False
        body = indent + "    "
        venv = dict(env)
        lets: list[tuple[str, str]] = []
        let_spans: dict[str, ast.Span] = {}
        for let in version.lets:
            var = f"_l_{let.name}"
            lets.append((var, gen.expr(let.value, venv)))
            let_spans[var] = let.span
            gen.bind(var, let.value)
            venv[let.name] = var
        # Missing values (dsl/missing.py): the condition as definitely true, and, when it
        # reads optional fields unguarded, as possibly true (run only when one is missing).
        with gen.deciding(version):
            cond = " and ".join(gen.expr(c, venv) for c in own) or (
                "True" if version.conditions else "False"
            )
        undecided = gen.undecided(rule, version, venv, own)
        missing_test, possible, needs = undecided or ("", "", "")
        # A `let` the conditions need is computed before them; one only the message
        # shows is computed once the rule has fired (the hot path stays short).
        needed: set[str] = set()
        for var, _ in reversed(lets):
            if (
                _uses(cond, var)
                or _uses(possible, var)
                or _uses(missing_test, var)
                or any(_uses(code, var) for v, code in lets if v in needed)
            ):
                needed.add(var)
        for var, code in lets:
            if var in needed:
                out.append(at(f"{body}{var} = {code}", let_spans[var]))
        out.append(at(f"{body}if {cond}:", own[0].span if own else version.span))
        for var, code in lets:
            if var not in needed:
                out.append(at(f"{body}    {var} = {code}", let_spans[var]))
        message = gen.message(rule, version, venv)
        notes = gen.partial.get((index, vindex))
        if notes:  # the finding rests on partial data: say so (issue 11 section 1)
            message = f"{message} + {gen.const(' (review: ' + '; '.join(notes) + ')')}"
        said = version.message.span if version.message is not None else version.span
        out.append(at(f"{body}    out.append(({index}, {vindex}, {line_no}, {message}))", said))
        if undecided:  # undecided: a `review` (the rule's last template, NEEDS_VERSION)
            out.append(at(f"{body}elif ({missing_test}) and {possible}:", version.span))
            out.append(
                at(
                    f"{body}    out.append(({index}, {len(rule.versions)}, {line_no}, {needs}))",
                    version.span,
                )
            )
        if not conds:
            break
    return out


def severity_of(version: ast.Version, on_partial_data: bool) -> str:
    """A version's severity; a deny or reject that may rest on partial data is a review."""
    severity = version.outcome.severity if version.outcome else "review"
    return "review" if on_partial_data and severity in ("deny", "reject") else severity
