"""No text of a policy, a file name, a pack folder, a CSV or a plugin becomes code.

Generated Python (dsl/compiler.py, dsl/specialize.py, dsl/explain.py, dsl/history.py) may
carry such text only as a `repr` literal or a value of the namespace given to `exec`. These
tests feed hostile names and strings through every way into generated code and check that
nothing runs (a payload would set a builtin) and that the strings come back unchanged.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanclaim.dsl import types as T
from cleanclaim.dsl.compiler import source_name
from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.engine import Engine

TODAY = dt.date(2026, 11, 27)
_COUNTER = itertools.count()
SENTINEL = "CLEANCLAIM_PWNED"
# Python statements that would mark the builtins if they ever ran, each after a way of
# ending a comment or a string (newline, carriage return, quotes).
PAYLOAD = f'__import__("builtins").__dict__.__setitem__("{SENTINEL}", 1)'
PIECES = [
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\u2028",
    "\u2029",
    "\x0c",
    "\x0b",
    "'''",
    '"""',
    "'",
    '"',
    "\\",
    "\\n",
    "#",
    "x",
    "é",
    "}",
    ")",
    "    ",
    PAYLOAD,
    f"\n    {PAYLOAD}\n#",
    f"\r    {PAYLOAD}\r#",
    f"'; {PAYLOAD}; '",
    f'"; {PAYLOAD}; "',
    f"\\\n{PAYLOAD}",
]


def hostile(exclude: str = "", max_bytes: int | None = None) -> st.SearchStrategy[str]:
    pieces = [p for p in PIECES if not any(c in p for c in exclude)]
    texts = st.lists(st.sampled_from(pieces), min_size=1, max_size=6).map("".join)
    if max_bytes is None:
        return texts
    # A file name is at most 255 bytes on common file systems (ENAMETOOLONG beyond).
    return texts.filter(lambda text: len(text.encode("utf-8")) <= max_bytes)


@pytest.fixture(autouse=True)
def nothing_ran() -> Iterator[None]:
    yield
    assert not hasattr(builtins, SENTINEL), "policy text ran as code"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def policy_string(text: str) -> str:
    """`text` as a policy string literal (the language escapes `"` and `\\`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def claim(claim_id: str = "C-1", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "claim_id": claim_id,
        "payer": "t",
        "plan": "silver",
        "frequency": "original",
        "received_date": "2026-03-02",
        "member": {
            "id": "M1",
            "birth_date": "1951-04-12",
            "sex": "F",
            "coverage": [{"payer": "t", "start": "2016-04-01", "end": None}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["R07.9"],
        "authorizations": [],
        "lines": [
            {
                "line": 1,
                "code": "93000",
                "modifiers": [],
                "units": 1,
                "charge": "45.00",
                "service_date": "2026-02-10",
                "diagnosis_pointers": [1],
            },
            {
                "line": 2,
                "code": "93000",
                "modifiers": [],
                "units": 1,
                "charge": "45.00",
                "service_date": "2026-02-10",
                "diagnosis_pointers": [1],
            },
        ],
    }
    data.update(fields)
    return data


def make_pack(
    base: Path, files: dict[str, str], pack: str = "t", manifest: str | None = None
) -> Path:
    root = base / f"root{next(_COUNTER)}"
    folder = root / pack
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text(manifest or f"id: {pack}\nname: test\n", encoding="utf-8")
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return root


RULES = """version 1
valueset ecg = codes [93000]
rule "t/a"
  title {title}
  applies to codes ecg
  root cause coding
  when line.units > 0 and claim.claim_id == {claim_id}
  then deny CO-97
  message {message}
  reference {reference}
end
rule "t/b"
  applies to all lines
  root cause coding
  when days_between(line.service_date, claim.received_date) > 1
   and days_between(line.service_date, claim.received_date) < 1000
  then review CO-16
  message {message}
end
"""


def check_strings_survive(engine: Engine, claim_id: str, message: str, reference: str) -> None:
    decision = engine.check(claim(claim_id))  # (claim fields are read stripped)
    found = {(f.rule, f.line): f for f in decision.findings}
    assert set(found) == {("t/a", 1), ("t/a", 2), ("t/b", 1), ("t/b", 2)}, decision.findings
    assert {f.message for f in decision.findings} == {message}
    assert found["t/a", 1].reference == reference
    program = engine.programs["t"]
    # every string of the policy is a literal or a constant of the generated source
    compile(program.source, "<check>", "exec")
    explained, traces = engine.explain(claim(claim_id))
    assert {(t.rule, t.message) for t in traces if t.status == "fired"} == {
        (f.rule, f.message) for f in explained.findings
    }


def test_a_policy_file_name_with_a_newline_does_not_run(base: Path) -> None:
    """The defect: the per-rule comment held the file name, whose newline ended it."""
    name = f"x\n    {PAYLOAD}\n#.policy"
    text = RULES.format(title='"T"', claim_id='"C-1"', message='"m"', reference='"R"')
    engine = Engine(policy_roots=[make_pack(base, {name: text})], today=TODAY, plugins=())
    check_strings_survive(engine, "C-1", "m", "R")
    assert name not in engine.programs["t"].source
    rule = engine.programs["t"].rules[0]
    assert rule.file.endswith(name)  # the finding's source keeps the real name


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    file_name=hostile(exclude="/\x00", max_bytes=200),
    pack=hostile(exclude="/\x00\n\r.#:'\"\\ "),
    title=hostile(exclude="\n\r{"),
    claim_id=hostile(exclude="\n\r"),
    message=hostile(exclude="\n\r{}"),
    reference=hostile(exclude="\n\r"),
)
def test_hostile_names_and_strings_never_run_and_survive(
    base: Path, file_name: str, pack: str, title: str, claim_id: str, message: str, reference: str
) -> None:
    del pack  # the pack id is fixed by rule ids (`t/...`); see the test below
    # Claim ids are at most 80 characters, none a control character (engine/model.py:
    # other ids are rejected when read, before any rule sees them).
    claim_id = "<" + re.sub(r"[\x00-\x1f\x7f-\x9f]", "", claim_id)[:70] + ">"
    text = RULES.format(
        title=policy_string(title),
        claim_id=policy_string(claim_id),
        message=policy_string(message),
        reference=policy_string(reference),
    )
    engine = Engine(
        policy_roots=[make_pack(base, {file_name + ".policy": text})], today=TODAY, plugins=()
    )
    check_strings_survive(engine, claim_id, message, reference)


@pytest.mark.parametrize("folder", ["t\nx", "t\rx", "t'x", 't"x', "t\u2028x", "t\\x"])
def test_a_hostile_pack_folder_name_is_an_error_not_code(base: Path, folder: str) -> None:
    text = RULES.format(title='"T"', claim_id='"C-1"', message='"m"', reference='"R"')
    root = make_pack(
        base, {"rules.policy": text}, pack=folder, manifest=f"id: {folder!r}\nname: x\n"
    )
    with pytest.raises(PolicyCompileError):  # its rules cannot start with its id
        Engine(policy_roots=[root], today=TODAY, plugins=())


@pytest.mark.parametrize("text", ["plain", "a\nb", "nul\x00", "line\u2028sep", "é"])
def test_source_names_are_one_printable_line(text: str) -> None:
    name = source_name("pack", text)
    assert name.isprintable() and name.isascii()
    compile("x = 1", name, "exec")  # `compile` refuses a NUL in a file name


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cell=hostile(exclude="\n\r\x00,"))
def test_csv_cells_are_data(base: Path, cell: str) -> None:
    """A CSV cell that is not a code is reported; one that is becomes a set member."""
    csv = "code,label\n93000," + cell.replace('"', "") + "\n"
    text = (
        'version 1\nvalueset v = codes csv "v.csv" column "code"\n'
        'rule "t/a"\n  applies to codes v\n  root cause coding\n  when true\n'
        '  then deny CO-97\n  message "m"\nend\n'
    )
    engine = Engine(
        policy_roots=[make_pack(base, {"rules.policy": text, "v.csv": csv})],
        today=TODAY,
        plugins=(),
    )
    assert {f.rule for f in engine.check(claim()).findings} == {"t/a"}
    bad = 'code\n"' + cell.replace('"', '""') + '"\n'
    root = make_pack(base, {"rules.policy": text, "v.csv": bad})
    with contextlib.suppress(PolicyCompileError):  # a cell that is no code: located error
        Engine(policy_roots=[root], today=TODAY, plugins=()).check(claim())


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=hostile(), name=hostile(exclude="\x00"))
def test_plugin_function_values_and_names_are_data(base: Path, value: str, name: str) -> None:
    """A function's answer is shown as data; a function's name never reaches the source."""
    spec = T.FunctionSpec(
        "hostile_text",
        (),
        T.STR,
        lambda: value,
        "hostile",
        scopes=frozenset({"line", "claim", "diagnosis"}),
    )
    odd = T.FunctionSpec(name, (), T.STR, lambda: value, "odd name")
    text = (
        'version 1\nrule "t/a"\n  applies to all lines\n  root cause coding\n'
        "  let v = hostile_text()\n  when v is present\n  then deny CO-97\n"
        '  message "<{v}>"\nend\n'
    )
    engine = Engine(
        policy_roots=[make_pack(base, {"rules.policy": text})],
        today=TODAY,
        functions=[spec, odd],
        plugins=(),
    )
    assert {f.message for f in engine.check(claim()).findings} == {f"<{value}>"}
    compile(engine.programs["t"].source, "<check>", "exec")


def test_a_message_holding_the_memo_s_own_text_is_left_unchanged(base: Path) -> None:
    """The defect: the memo replaced repeated calls by text, inside string literals too."""
    text = RULES.format(title='"T"', claim_id='"C-1"', message='"m"', reference='"R"')
    engine = Engine(policy_roots=[make_pack(base, {"rules.policy": text})], today=TODAY, plugins=())
    source = engine.programs["t"].source
    memo = re.search(r"\((_m\w+) if \1 is not _U else \(\1 := (.+?\))\)\)", source)
    assert memo is not None, source  # the two `days_between` calls share one memo
    call = memo.group(2)
    message = f"{call} and {call} again"
    text = RULES.format(
        title='"T"', claim_id='"C-1"', message=policy_string(message), reference='"R"'
    )
    engine = Engine(policy_roots=[make_pack(base, {"rules.policy": text})], today=TODAY, plugins=())
    assert call in engine.programs["t"].source  # the same call, memoised again
    check_strings_survive(engine, "C-1", message, "R")
