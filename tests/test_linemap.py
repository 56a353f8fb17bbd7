"""Generated code points back at the policy (dsl/linemap.py): a traceback from a rule
names the policy file and line, and `cleanclaim compile` prints a pack's generated Python."""

from __future__ import annotations

import datetime as dt
import gc
import linecache
import traceback
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl import types as T
from cleanclaim.dsl.checker import CheckEnv, check_pack
from cleanclaim.dsl.compiler import Program, compile_pack
from cleanclaim.dsl.linemap import origins
from cleanclaim.dsl.pack import PackManifest, PackSources
from cleanclaim.engine.cli import app
from cleanclaim.engine.model import Claim, decode_claim
from cleanclaim.engine.runtime import ENGINE_FUNCTIONS


def _boom(code: Any) -> bool:
    raise ZeroDivisionError("a plugin function failed")


BOOM = T.FunctionSpec("boom", (T.STR,), T.BOOL, _boom, "test")
FUNCTIONS = {f.name: f for f in (*T.BUILTINS, *ENGINE_FUNCTIONS, BOOM)}
# The failing call is on line 15 of the file, in the `when` clause that starts on line 14.
POLICY = """version 1

rule "t/quiet"
  applies to all lines
  root cause coding
  when line.units > 100
  then deny CO-97
  message "quiet"
end

rule "t/loud"
  applies to all lines
  root cause coding
  when line.units > 0
    and boom(line.code)
  then deny CO-97
  message "loud"
end
"""
WHEN_LINE = 14


def _program(specialize: bool = True, file: str = "t/rules.policy") -> Program:
    nowhere = Path("/nonexistent/t")
    manifest = PackManifest("t", "t", "1", False, (), (), nowhere, nowhere / "pack.yaml")
    sources = PackSources(manifest, [manifest], {file: POLICY}, {file: "t"})
    checked = check_pack(sources, CheckEnv(FUNCTIONS), {})
    assert checked.errors == []
    return compile_pack(checked, FUNCTIONS, {}, sources.digest(), specialize=specialize)


def _claim() -> Claim:
    claim, problems = decode_claim(
        {
            "claim_id": "C1",
            "payer": "t",
            "diagnoses": ["R07.9"],
            "member": {"id": "M1", "birth_date": "1950-01-01", "sex": "F", "coverage": []},
            "lines": [
                {
                    "line": 1,
                    "code": "93000",
                    "modifiers": [],
                    "units": 1,
                    "charge": "45.00",
                    "service_date": "2026-02-10",
                    "diagnosis_pointers": [1],
                }
            ],
        },
        dt.date(2026, 3, 1),
    )
    assert claim is not None and not problems
    return claim


def _traceback_of(call: Any) -> list[traceback.FrameSummary]:
    with pytest.raises(ZeroDivisionError) as info:
        call()
    return traceback.extract_tb(info.tb)


def test_a_rule_applied_alone_fails_at_its_policy_file_and_line() -> None:
    program, claim = _program(), _claim()
    index = next(r.index for r in program.rules if r.id == "t/loud")
    frames = _traceback_of(lambda: program.run_rule(index, claim, claim.lines[0], []))
    rule_frame = next(f for f in frames if f.name == f"_rule_{index}")
    assert rule_frame.filename == "<policy t/rules.policy>"
    assert rule_frame.lineno == WHEN_LINE
    assert rule_frame.line == "when line.units > 0"  # the policy's own text
    shown = "".join(traceback.format_list([rule_frame]))
    assert "^" not in shown  # no carets from the generated code's columns


@pytest.mark.parametrize("specialize", [True, False])
def test_the_whole_pack_failing_shows_the_generated_line_and_its_policy_line(
    specialize: bool,
) -> None:
    program, claim = _program(specialize), _claim()
    frames = _traceback_of(lambda: program.evaluate_fn(claim, []))
    frame = next(f for f in frames if f.name == "_evaluate")
    assert frame.filename.startswith("<evaluate t #")
    assert frame.line is not None and "_f" in frame.line  # the generated call
    index = next(r.index for r in program.rules if r.id == "t/loud")
    assert frame.line.endswith(f"# rule {index}: t/rules.policy:{WHEN_LINE}")


def test_every_rule_line_of_the_source_says_its_rule_and_policy_line() -> None:
    program = _program(specialize=False)
    found = origins(program.source)
    lines: dict[str, set[int]] = {program.rules[i].id: set() for i, _line in found.values()}
    for index, line in found.values():
        lines[program.rules[index].id].add(line)
    # The rule's line, the `when` line, the message's line.
    assert lines == {"t/quiet": {3, 6, 8}, "t/loud": {11, WHEN_LINE, 17}}


def test_a_policy_file_name_cannot_break_a_traceback_line() -> None:
    name = "t/odd\nname\x00.policy"
    program, claim = _program(file=name), _claim()
    index = next(r.index for r in program.rules if r.id == "t/loud")
    frames = _traceback_of(lambda: program.run_rule(index, claim, claim.lines[0], []))
    frame = next(f for f in frames if f.name == f"_rule_{index}")
    assert frame.filename == "<policy t/odd\\nname\\x00.policy>"
    assert frame.line == "when line.units > 0"


def test_the_source_of_a_program_leaves_linecache_with_the_program() -> None:
    program = _program()
    names = [
        n
        for n in list(linecache.cache)
        if isinstance(n, str) and n.startswith(("<pack t #", "<evaluate t #"))
    ]
    serial = max(int(n.rsplit("#", 1)[1].rstrip(">")) for n in names)
    mine = {f"<pack t #{serial}>", f"<evaluate t #{serial}>"}
    assert mine <= set(linecache.cache)
    del program
    gc.collect()
    assert not mine & set(linecache.cache)


def test_compile_prints_the_generated_python_of_a_shipped_pack() -> None:
    result = CliRunner().invoke(app, ["compile", "medicare"])
    assert result.exit_code == 0, result.output
    source = result.output
    compile(source, "<printed>", "exec")  # what is printed is Python
    assert "def _evaluate(claim, out):" in source
    assert "payer_policies/medicare/" not in source  # the compiled text, not annotated
    assert origins(source)  # with its rule lines' origins


def test_compile_names_an_unknown_pack() -> None:
    result = CliRunner().invoke(app, ["compile", "no-such-payer"])
    assert result.exit_code == 2
    assert "no pack `no-such-payer`" in result.output
