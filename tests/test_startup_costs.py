"""What a cold start no longer does (issue 14), held equal to what it did: the code index
of a pack built group by group, code ranges written by one %-format, typer's coercion of
options that were not given left unbuilt."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl.codesets.procedure import expand_range
from cleanclaim.dsl.compiler import CompiledRule, _codes_by_rules
from cleanclaim.engine.cli import app
from cleanclaim.engine.cli_startup import defer_missing_values
from cleanclaim.engine.engine import Engine


def _rule(index: int, scope: str, codes: set[str]) -> CompiledRule:
    return CompiledRule(
        index=index,
        id=f"r{index}",
        pack="p",
        title=None,
        scope=scope,
        root_cause="coding",
        owner="coding",
        kind="coding",
        file="f",
        line=1,
        versions=(),
        codes=frozenset(codes),
    )


def _code_by_code(rules: list[CompiledRule]) -> dict[str, tuple[int, ...]]:
    """The index as the compiler built it before: a loop over every code of every rule."""
    by_code: dict[str, list[int]] = {}
    for rule in rules:
        if rule.scope == "codes":
            for code in rule.codes:
                by_code.setdefault(code, []).append(rule.index)
    return {code: tuple(indices) for code, indices in by_code.items()}


@pytest.mark.parametrize("seed", range(30))
def test_codes_grouped_by_rules_are_the_code_by_code_index(seed: int) -> None:
    rng = random.Random(seed)
    pool = [f"{n:05d}" for n in range(60)]
    rules = [
        _rule(
            i,
            rng.choice(["codes", "codes", "codes", "all_lines", "claim"]),
            set(rng.sample(pool, rng.randint(0, 40))),
        )
        for i in range(rng.randint(1, 12))
    ]
    groups = _codes_by_rules(rules)
    flat = {code: key for key, codes in groups.items() for code in codes}
    assert flat == _code_by_code(rules)
    assert sum(len(codes) for codes in groups.values()) == len(flat)  # each code once
    assert list(groups) == sorted(groups) and all(groups.values())


def test_the_shipped_packs_index_each_code_to_its_rules() -> None:
    engine = Engine(plugins=())
    for program in engine.programs.values():
        expected = _code_by_code(list(program.rules))
        assert set(program.lines_by_code) == set(expected)
        # codes of the same rules share one function; codes of other rules never do
        by_function: dict[Any, set[tuple[int, ...]]] = {}
        for code, fn in program.lines_by_code.items():
            by_function.setdefault(fn, set()).add(expected[code])
        assert all(len(keys) == 1 for keys in by_function.values())


def test_ranges_are_written_as_before() -> None:
    def before(lo: str, hi: str, prefix: str, suffix: str, width: int) -> list[str]:
        return [f"{prefix}{n:0{width}d}{suffix}" for n in range(int(lo), int(hi) + 1)]

    assert expand_range("00100", "99607") == before("00100", "99607", "", "", 5)
    assert expand_range("0001F", "0120F") == before("0001", "0120", "", "F", 4)
    assert expand_range("J0100", "J9999") == before("0100", "9999", "J", "", 4)
    assert expand_range("0042T", "0042T") == ["0042T"]


def test_options_not_given_build_no_coercion_and_given_ones_are_still_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer import _coercion

    assert defer_missing_values()  # in place (cli.py installs it at import)
    built: list[Any] = []
    real = _coercion.build_runtime_param

    def counting(descriptor: Any) -> Any:
        built.append(descriptor.annotation)
        return real(descriptor)

    # the deferral calls the builder it found; count through it
    monkeypatch.setattr(_coercion, "build_runtime_param", counting)
    from cleanclaim.engine import cli_startup

    monkeypatch.setattr(cli_startup, "_Deferred", _counting_deferred(counting))
    claim = tmp_path / "claim.json"
    claim.write_text('{"claim_id": "C-1"}')
    run = CliRunner().invoke(app, ["check", str(claim), "--format", "ndjson"])
    assert run.exit_code == 1, run.output  # a claim without a payer: rejected
    assert '"claim_id":"C-1"' in run.output
    assert built == [], built  # `check` has 16; the plain values given build none either
    # A value that is given is coerced by typer's adapter as before: a bad one is refused.
    bad = CliRunner().invoke(app, ["check", str(claim), "--workers", "many"])
    assert bad.exit_code == 2 and "--workers" in bad.output and "integer" in bad.output


def _counting_deferred(build: Any) -> Any:
    from cleanclaim.engine.cli_startup import _Deferred

    class Counting(_Deferred):
        __slots__ = ()

        def __init__(self, owner: Any, _build: Any) -> None:
            super().__init__(owner, build)

    return Counting


_NO_PYDANTIC_PROBE = """
import atexit, sys
atexit.register(lambda: print("IMPORTED", *sorted(
    m for m in ("pydantic", "pydantic_core", "typer._adapters") if m in sys.modules),
    file=sys.stderr))
sys.argv = ["cleanclaim", "check", {path!r}, "--today", "2026-06-01", "--workers", "1",
            "--format", "ndjson"]
from cleanclaim.engine.cli import main
main()
"""


def test_a_warm_check_imports_no_pydantic(tmp_path: Path) -> None:
    """typer's pydantic adapters (~0.1 s to import) are not needed for the values a check
    is given - a file, a date, a format, a number of workers - nor for its defaults."""
    import json
    import os
    import subprocess
    import sys

    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"claim_id": "C-1"}))
    env = {**os.environ, "CLEANCLAIM_CACHE_DIR": str(tmp_path / "cache")}
    outputs = []
    for _ in range(2):  # the first run fills the cache
        done = subprocess.run(
            [sys.executable, "-c", _NO_PYDANTIC_PROBE.format(path=str(claim))],
            capture_output=True,
            env=env,
            check=False,
            timeout=120,
        )
        line = [x for x in done.stderr.decode().splitlines() if x.startswith("IMPORTED")][-1]
        outputs.append(done.stdout)
    assert b'"claim_id":"C-1"' in outputs[1] and outputs[0] == outputs[1]
    assert line.split()[1:] == [], line


def test_values_given_are_coerced_as_typer_coerces_them(tmp_path: Path) -> None:
    """The plain cases answered without pydantic give what typer's adapter gives; the rest
    (a number out of bounds, a name that is not a choice, an empty path) still go to it."""
    from cleanclaim.engine import cli_startup

    claim = tmp_path / "claim.json"
    claim.write_text('{"claim_id": "C-1"}')
    given: dict[str, Any] = {}
    real = cli_startup._plain

    def recording(descriptor: Any, value: Any, param: Any, ctx: Any) -> Any:
        got = real(descriptor, value, param, ctx)
        given[param.name] = got
        return got

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli_startup, "_plain", recording)
        run = CliRunner().invoke(
            app,
            ["check", str(claim), "--format", "ndjson", "--workers", "1", "--today", "2026-06-01"],
        )
    assert run.exit_code == 1, run.output
    assert given["paths"] == [claim] and type(given["paths"][0]) is type(claim)
    assert given["today"] == "2026-06-01" and given["workers"] == 1
    for args, expected in (
        (["--workers", "-5"], "--workers"),
        (["--format", "xml"], "--format"),
        (["--workers", "many"], "integer"),
    ):
        bad = CliRunner().invoke(app, ["check", str(claim), *args])
        assert bad.exit_code == 2 and expected in bad.output, bad.output
    missing = CliRunner().invoke(app, ["check", str(tmp_path / "absent.json")])
    assert missing.exit_code != 0
