"""Fuzzing the policy language: the parser, the checker, the compiler and the formatter
never raise on any text; they report located errors.

```sh
python -m cleanclaim.engine.tools.fuzz --count 100000 --seed 1 [--out DIR] [--seconds N]
```
Each input is a shipped policy file with a few random mutations (a span deleted or
repeated, a token inserted or replaced, lines swapped, the text cut short, deep nesting),
or a policy generated from the grammar (value sets, counters, rules with random
expressions), itself sometimes mutated. For each input:

- `parse_policy` and the checker run; every problem must be a `PolicyError` with a known
  code, a position inside the text (or inside a CSV file it reads), and must render;
- a pack without errors must compile;
- a text that parses must format (`dsl/fmt/`), the result must mean the same and
  formatting it again must change nothing.

Anything else is a failure: it is printed, and with `--out` written to a file that
reproduces it. `tests/test_fuzz.py` runs the same checks on a fixed-seed sample and on
hypothesis strategies, quickly; this command is for long runs.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cleanclaim.dsl.checker import CheckEnv, check_pack
from cleanclaim.dsl.compiler import compile_pack
from cleanclaim.dsl.errors import ERROR_CODES, PolicyError
from cleanclaim.dsl.fmt import FormatError, format_policy
from cleanclaim.dsl.pack import PackManifest, PackSources, TableDecl


class FuzzFailure(Exception):
    """An input made the language do something other than report located errors."""


# ---- the harness ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Harness:
    """What an input is checked with: the functions and tables of the engine, and the
    folder CSV files are read from."""

    env: CheckEnv
    tables: Mapping[str, Any]
    table_decls: tuple[TableDecl, ...]
    folder: Path


@cache
def default_harness() -> Harness:
    """The engine's functions and the medicare pack's sample tables: what a shipped pack
    is checked with."""
    from cleanclaim.engine.engine import TABLE_LOADERS, shipped_policies
    from cleanclaim.engine.refdata.tables import TABLE_SCHEMAS
    from cleanclaim.engine.runtime import standard_functions

    functions = {f.name: f for f in standard_functions()}
    folder = shipped_policies() / "medicare"
    tables: dict[str, Any] = {}
    decls: list[TableDecl] = []
    for name, fmt, file in (
        ("ptp", "ncci-ptp", "tables/ptp-practitioner-sample.txt"),
        ("mue", "ncci-mue", "tables/mue-practitioner-sample.csv"),
    ):
        path = folder / file
        if path.is_file():
            decls.append(TableDecl(name, fmt, path))
            tables[name] = TABLE_LOADERS[fmt](path)
    return Harness(
        CheckEnv(functions, frozenset(TABLE_LOADERS), table_schemas=TABLE_SCHEMAS),
        tables,
        tuple(decls),
        folder,
    )


def _validate(error: object, text: str, files: Sequence[str]) -> None:
    if not isinstance(error, PolicyError):
        raise FuzzFailure(f"not a PolicyError: {error!r}")
    if error.code not in ERROR_CODES:
        raise FuzzFailure(f"unknown error code {error.code}: {error}")
    span = error.span
    if span.file not in files and not span.file.endswith((".csv", "pack.yaml")):
        raise FuzzFailure(f"error located in an unknown file: {error}")
    if span.file in files:
        lines = text.count("\n") + 1
        if not (1 <= span.line <= lines + 1) or span.column < 1:
            raise FuzzFailure(f"error outside the text ({lines} lines): {error}")
    if not error.message:
        raise FuzzFailure(f"error without a message: {error}")
    error.render(text)


def check_text(text: str, pack_id: str = "fuzz", harness: Harness | None = None) -> int:
    """Run one input through the parser, checker, compiler and formatter; raises
    `FuzzFailure` (with the cause chained) when anything but located errors comes out.
    Returns the number of errors reported."""
    harness = harness or default_harness()
    name = f"{pack_id}/rules.policy"
    try:
        manifest = PackManifest(
            pack_id,
            pack_id,
            "0",
            False,
            (),
            harness.table_decls,
            harness.folder,
            harness.folder / "pack.yaml",
        )
        sources = PackSources(manifest, [manifest], {name: text}, {name: pack_id})
        checked = check_pack(sources, harness.env, {name: harness.folder / "rules.policy"})
        for error in checked.errors:
            _validate(error, text, [name])
        if not checked.errors:
            compile_pack(checked, harness.env.functions, harness.tables, "fuzz")
        syntax = any(e.code.startswith("E00") and e.span.file == name for e in checked.errors)
        _check_format(text, name, parses=bool(checked.files) and not syntax)
        return len(checked.errors)
    except FuzzFailure:
        raise
    except RecursionError as exc:
        raise FuzzFailure("RecursionError (deeply nested input)") from exc
    except Exception as exc:
        raise FuzzFailure(f"{type(exc).__name__}: {exc}") from exc


def _check_format(text: str, name: str, parses: bool) -> None:
    """fmt formats what parses (checking itself that the meaning stays the same: a
    `FormatError` saying so is a failure), refuses what does not, and a second run changes
    nothing."""
    try:
        once = format_policy(text, name)
    except FormatError as exc:
        # Refusing what does not parse is right; so is refusing an expression nested
        # hundreds deep (a located error, documented in dsl/fmt/).
        if parses and "too deeply" not in str(exc):
            raise FuzzFailure(f"fmt refused a file that parses: {exc}") from exc
        return
    if format_policy(once, name, verify=False) != once:
        raise FuzzFailure("fmt is not idempotent on this input")


# ---- inputs: mutations ------------------------------------------------------------------------

VOCABULARY = (
    "version",
    "1",
    "2",
    "valueset",
    "rule",
    "end",
    "title",
    "applies",
    "to",
    "codes",
    "icd10",
    "modifiers",
    "csv",
    "column",
    "all",
    "lines",
    "claim",
    "each",
    "diagnosis",
    "plan",
    "place",
    "of",
    "service",
    "is",
    "not",
    "effective",
    "until",
    "let",
    "when",
    "then",
    "with",
    "root",
    "cause",
    "owner",
    "kind",
    "message",
    "reference",
    "reject",
    "deny",
    "review",
    "info",
    "and",
    "or",
    "in",
    "missing",
    "present",
    "true",
    "false",
    "any",
    "no",
    "count",
    "where",
    "counter",
    "counts",
    "per",
    "by",
    "visits",
    "units",
    "calendar",
    "year",
    "lifetime",
    "line",
    "line.code",
    "line.units",
    "claim.plan",
    "line.service_date",
    "other_lines",
    "member.birth_date",
    "line.pointed_diagnoses",
    "coverage_count()",
    "add_days(",
    "days_between(",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    '"',
    '"x"',
    '"{line.code}"',
    '"{"',
    '"\\"',
    "#",
    "# comment",
    "\n",
    "\t",
    " ",
    "2026-01-01",
    "2026-02-30",
    "2026-13-01",
    "1999-1-1",
    "0000-00-00",
    "93000",
    "93306-93308",
    "9300",
    "11446-11400",
    "R07.9",
    "R07.*",
    "R07",
    "I48.9*",
    "Z00.00",
    "A0A0",
    "J0100-J0150",
    "26",
    "TC",
    "CO-97",
    "PR-204",
    "XX-1",
    "M15",
    "MA130",
    "0",
    "-1",
    "1.5",
    "99999999999999999999",
    "ecg",
    "tte_group1",
    "x",
    "_",
    "é",
    "\u00a0",
    "\x00",
    "'",
    ";",
    "{",
    "}",
    "\\",
    "@",
    "$",
)


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')
_OPERATOR = re.compile(r"\(|\b(?:and|or|not)\b|(?<![0-9A-Z])[+-]")  # not 93306-93308
# Inputs with more operators and parentheses than this stay below the nesting limits the
# long runs found (compile_pack ~200 levels, the parser's transformer ~1000): quick tests
# keep to them, long runs do not.
QUICK_OPERATORS = 80


def operator_count(text: str) -> int:
    """Parentheses and operators outside strings and comments: a bound on how deep any
    expression of the text can nest."""
    return len(_OPERATOR.findall(_STRING_OR_COMMENT.sub("", text)))


# How deep `_nest` nests a condition. Hundreds of levels find the limits of the
# recursive parts (lark's transformer, the checker, Python's own compiler); the quick
# test stays below them, `DEEP` runs go past.
SHALLOW = (5, 50)
DEEP = (5, 50, 400)


def mutate(
    text: str, rng: random.Random, times: int | None = None, depths: Sequence[int] = DEEP
) -> str:
    """`text` with 1-4 random edits."""
    for _ in range(times if times is not None else rng.randint(1, 4)):
        index = rng.randrange(len(_MUTATIONS))
        if _MUTATIONS[index] is _nest:
            text = _nest(text, rng, depths)
        else:
            text = _MUTATIONS[index](text, rng)
    return text


def _span(text: str, rng: random.Random) -> tuple[int, int]:
    if not text:
        return 0, 0
    start = rng.randrange(len(text))
    return start, min(len(text), start + rng.randint(1, 40))


def _delete(text: str, rng: random.Random) -> str:
    a, b = _span(text, rng)
    return text[:a] + text[b:]


def _repeat(text: str, rng: random.Random) -> str:
    a, b = _span(text, rng)
    return text[:b] + text[a:b] + text[b:]


def _insert(text: str, rng: random.Random) -> str:
    at = rng.randint(0, len(text))
    word = rng.choice(VOCABULARY)
    return text[:at] + rng.choice(("", " ")) + word + rng.choice(("", " ")) + text[at:]


def _replace_word(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    if len(words) > 1:
        words[rng.randrange(len(words))] = rng.choice(VOCABULARY)
    return " ".join(words)


def _swap_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    if len(lines) > 1:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randint(0, len(text))]


def _flip_char(text: str, rng: random.Random) -> str:
    if not text:
        return text
    at = rng.randrange(len(text))
    char = text[at]
    new = char.swapcase() if char.isalpha() and rng.random() < 0.5 else chr(rng.randrange(32, 127))
    return text[:at] + new + text[at + 1 :]


def _nest(text: str, rng: random.Random, depths: Sequence[int] = DEEP) -> str:
    depth = rng.choice(depths)
    at = text.find("when ")
    if at < 0:
        return text
    at += 5
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    kind = rng.random()
    if kind < 0.4:
        middle = "(" * depth + text[at:end] + ")" * depth
    elif kind < 0.7:
        middle = "not " * depth + text[at:end]
    else:
        middle = "line.units > 0 and " * depth + text[at:end]
    return text[:at] + middle + text[end:]


_MUTATIONS: tuple[Callable[[str, random.Random], str], ...] = (
    _delete,
    _repeat,
    _insert,
    _replace_word,
    _swap_lines,
    _truncate,
    _flip_char,
    _nest,
)


def shipped_policies() -> list[tuple[str, str]]:
    """(pack id, text) of every shipped policy file."""
    from cleanclaim.engine.engine import shipped_policies as root

    return [
        (p.parent.name, p.read_text(encoding="utf-8")) for p in sorted(root().glob("*/*.policy"))
    ]


# ---- inputs: generated from the grammar -----------------------------------------------------

_NAMES = ("ecg", "tte", "dx", "mods", "limit", "due", "n", "x1")
_PATHS = (
    "line.code",
    "line.units",
    "line.service_date",
    "line.charge",
    "line.modifiers",
    "line.pointed_diagnoses",
    "claim.received_date",
    "claim.plan",
    "claim.payer",
    "claim.place_of_service",
    "member.birth_date",
    "claim.diagnoses",
    "line.unit",
    "nope",
    "claim.member.sex",
)
_CODES = (
    "93000",
    "93005",
    "93306-93308",
    "R07.9",
    "R07.*",
    "Z00.00",
    "26",
    "TC",
    "J0100",
    "9300",
    "R07",
    "0001F",
)


def generate(rng: random.Random) -> str:
    """A policy file from the grammar: mostly well-formed, with random names, types and
    codes (so the checker has plenty to say)."""
    parts = ["version 1", ""]
    for i in range(rng.randint(0, 3)):
        parts.append(f"valueset {_NAMES[i]} = {_set(rng)}")
    if rng.random() < 0.3:
        measure = rng.choice(("visits", "units", "lines", "charges", "hugs"))
        counted = rng.choice(("all lines", "codes ecg", "lines where " + _expr(rng, 2)))
        window = rng.choice(("calendar year", "12 months", "lifetime", "day", "fortnight"))
        parts.append(
            f"counter c{rng.randint(0, 9)}\n  counts {measure} of {counted}\n  per {window}\nend"
        )
    for i in range(rng.randint(1, 3)):
        parts.append(_rule(rng, i))
    return "\n".join(parts) + "\n"


def _set(rng: random.Random) -> str:
    kind = rng.choice(("codes ", "icd10 ", "modifiers ", ""))
    codes = ", ".join(rng.choice(_CODES) for _ in range(rng.randint(0, 4)))
    term = f"{kind}[{codes}]"
    if rng.random() < 0.2:
        term += f" + {rng.choice(_NAMES)}"
    return term


def _expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(
            (*_PATHS, "true", "false", "1", "2026-01-01", '"gold"', "[93000]", *_NAMES[:3])
        )
    left, right = _expr(rng, depth - 1), _expr(rng, depth - 1)
    return rng.choice(
        (
            f"{left} and {right}",
            f"{left} or {right}",
            f"not {left}",
            f"({left})",
            f"{left} {rng.choice(('==', '!=', '<', '<=', '>', '>='))} {right}",
            f"{left} in {right}",
            f"{left} not in {right}",
            f"{left} is missing",
            f"{left} is present",
            f"{left} + {right}",
            f"{left} - {right}",
            f"any o in {rng.choice(('other_lines', 'claim.authorizations', left))} where {right}",
            f"{rng.choice(('all', 'no', 'any', 'count'))} of {left} in {right}",
            f"count({left})",
            f"days_between({left}, {right})",
            f"add_days({left})",
            "coverage_count()",
            f"nosuch({left})",
        )
    )


def _rule(rng: random.Random, index: int) -> str:
    scope = rng.choice(
        ("all lines", "claim", "each diagnosis", "codes ecg", "codes [93000]", "codes tte + ecg")
    )
    clauses = [f'rule "fuzz/r{index}"', f'  title "rule {index}"', f"  applies to {scope}"]
    if rng.random() < 0.2:
        clauses.append(f'  plan is {rng.choice(("", "not "))}"gold", "silver"')
    clauses.append(f"  root cause {rng.choice(('coding', 'submission', 'codng'))}")
    versions = rng.choice(
        (
            [""],
            ["effective 2026-01-01", "effective until 2025-12-31"],
            ["effective 2025-01-01 until 2025-06-30"],
        )
    )
    shared_then = rng.random() < 0.5
    if shared_then:
        clauses.append("  then deny CO-97 with M15")
    for version in versions:
        indent = "  "
        if version:
            clauses.append(f"  {version}")
            indent = "    "
        if rng.random() < 0.4:
            clauses.append(f"{indent}let due = {_expr(rng, 2)}")
        clauses.append(f"{indent}when {_expr(rng, 3)}")
        if not shared_then:
            clauses.append(
                f"{indent}then {rng.choice(('reject', 'deny', 'review', 'info'))} "
                f"{rng.choice(('CO-16', 'PR-204', 'OA-18'))}"
            )
        if rng.random() < 0.5:
            clauses.append(f'{indent}message "{{line.code}} {{due}} {{{rng.choice(_PATHS)}}}"')
    clauses.append('  reference "fuzz"')
    clauses.append("end")
    return "\n".join(clauses)


# ---- the long run -------------------------------------------------------------------------------


@dataclass(slots=True)
class FuzzRun:
    tried: int = 0
    with_errors: int = 0  # inputs the checker reported errors for (the usual case)
    clean: int = 0  # inputs that checked, compiled and formatted without an error
    failures: list[tuple[str, str]] = field(default_factory=list)  # (reason, input)
    seconds: float = 0.0


def next_input(
    rng: random.Random, corpus: Sequence[tuple[str, str]], depths: Sequence[int] = DEEP
) -> tuple[str, str]:
    """(pack id, text) of the next input: a mutated shipped file, or a generated one."""
    roll = rng.random()
    if roll < 0.6:
        pack_id, text = corpus[rng.randrange(len(corpus))]
        return pack_id, mutate(text, rng, depths=depths)
    text = generate(rng)
    return "fuzz", mutate(text, rng, depths=depths) if roll < 0.8 else text


def run(
    count: int,
    seed: int,
    seconds: float | None = None,
    out: Path | None = None,
    echo: Callable[[str], None] = print,
) -> FuzzRun:
    """Try `count` inputs (or as many as fit in `seconds`)."""
    rng = random.Random(seed)
    corpus = shipped_policies()
    harness = default_harness()
    result = FuzzRun()
    started = time.perf_counter()
    limit = started + seconds if seconds else None
    while result.tried < count and (limit is None or time.perf_counter() < limit):
        pack_id, text = next_input(rng, corpus)
        result.tried += 1
        try:
            errors = check_text(text, pack_id, harness)
        except FuzzFailure as exc:
            result.failures.append((str(exc), text))
            echo(f"FAILURE {len(result.failures)} (input {result.tried}): {exc}")
            if exc.__cause__ is not None:
                echo("".join(traceback.format_exception(exc.__cause__))[-1500:])
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                reason = "".join(f"# {line}\n" for line in str(exc).splitlines())
                (out / f"failure-{len(result.failures):04d}.policy").write_text(
                    f"{reason}# pack id: {pack_id}\n{text}", encoding="utf-8"
                )
            continue
        if errors:
            result.with_errors += 1
        else:
            result.clean += 1
        if result.tried % 10_000 == 0:
            echo(
                f"{result.tried} inputs, {len(result.failures)} failures, "
                f"{time.perf_counter() - started:.0f} s"
            )
    result.seconds = time.perf_counter() - started
    return result


def _worker(job: tuple[int, int, float | None, Path | None]) -> FuzzRun:
    count, seed, seconds, out = job
    return run(count, seed, seconds, out / f"seed-{seed}" if out is not None else None)


def run_parallel(
    count: int, seed: int, jobs: int, seconds: float | None = None, out: Path | None = None
) -> FuzzRun:
    """`run` in `jobs` processes, each with its own seed (seed * 1000 + job number)."""
    if jobs <= 1:
        return run(count, seed, seconds, out)
    from concurrent.futures import ProcessPoolExecutor

    shares = [count // jobs + (1 if i < count % jobs else 0) for i in range(jobs)]
    started = time.perf_counter()
    total = FuzzRun()
    with ProcessPoolExecutor(jobs) as pool:
        for part in pool.map(
            _worker, [(n, seed * 1000 + i, seconds, out) for i, n in enumerate(shares)]
        ):
            total.tried += part.tried
            total.with_errors += part.with_errors
            total.clean += part.clean
            total.failures.extend(part.failures)
    total.seconds = time.perf_counter() - started
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cleanclaim.engine.tools.fuzz",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--count", type=int, default=10_000, help="inputs to try")
    parser.add_argument("--seed", type=int, default=1, help="random seed (runs repeat)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument(
        "--out", type=Path, default=None, help="write each failing input to a file in this folder"
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes to run in")
    args = parser.parse_args(argv)
    # Generated inputs are throw-away: keep them out of the on-disk parse cache (the
    # worker processes inherit the setting).
    os.environ["CLEANCLAIM_NO_CACHE"] = "1"
    result = run_parallel(args.count, args.seed, args.jobs, args.seconds, args.out)
    print(
        f"{result.tried} inputs in {result.seconds:.1f} s "
        f"({result.tried / max(result.seconds, 1e-9):.0f}/s): {result.with_errors} with "
        f"located errors, {result.clean} clean, {len(result.failures)} failures "
        f"(seed {args.seed})"
    )
    return 1 if result.failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
