"""Line bodies specialised by procedure code (dsl/specialize.py): the same decisions as the
general body, for every code, with and without modifiers."""

from __future__ import annotations

import ast as py
import dataclasses
import json
import random
from typing import Any

import pytest

import cleanclaim.engine.engine as engine_module
from cleanclaim.dsl import specialize as S
from cleanclaim.dsl.compiler import compile_pack
from cleanclaim.engine.bench import CODES, synthetic_claim
from cleanclaim.engine.decision import Decision, Finding, new_decision
from cleanclaim.engine.engine import Engine
from tests.policy_cases_plugin import TODAY


def _specializers(engine: Engine) -> dict[str, S.Specializer]:
    found = {}
    for pack_id, program in engine.programs.items():
        ns = program._namespace
        maps = [v for k, v in ns.items() if k.startswith("_CA") and isinstance(v, S.ClassMap)]
        if maps:
            found[pack_id] = maps[0].owner
    return found


@pytest.fixture(scope="module")
def plain() -> Engine:
    """The shipped packs compiled with the general line body only."""

    def general(*args: Any, **kwargs: Any) -> Any:
        return compile_pack(*args, **{**kwargs, "specialize": False})

    original = engine_module.__dict__["compile_pack"]
    setattr(engine_module, "compile_pack", general)  # noqa: B010 - a private name
    try:
        return Engine(today=TODAY, plugins=())
    finally:
        setattr(engine_module, "compile_pack", original)  # noqa: B010


def _workload(seed: int, n: int) -> list[dict[str, Any]]:
    """Bench claims, plus codes no table knows, malformed codes, modifiers that bypass or
    trigger rules, bad units and pointers."""
    rng = random.Random(seed)
    codes = [
        *CODES,
        "99999",
        "J3490",
        "0591T",
        "1234",
        "ABCDE",
        "",
        "93351",
        "15780",
        "93005",
        "93010",
        "93307",
    ]
    claims = []
    for i in range(n):
        claim = synthetic_claim(rng, i, codes=codes)
        for line in claim["lines"]:
            r = rng.random()
            if r < 0.15:
                line["modifiers"] = rng.choice(
                    [["GP", "KX"], ["GO"], ["GN"], ["26", "59"], ["TC"], ["25"], ["76"], ["XU"]]
                )
            if r > 0.93:
                line["units"] = rng.choice([0, -1, 7, 3, 40, None])
            if 0.88 < r < 0.9:
                line["diagnosis_pointers"] = rng.choice([[], [5], [1, 9]])
        claims.append(claim)
    return claims


def test_specialised_bodies_decide_as_the_general_body(engine: Engine, plain: Engine) -> None:
    claims = _workload(5, 4000)
    for claim in claims:
        assert engine.check(claim).to_json() == plain.check(claim).to_json(), json.dumps(claim)
    # ... and classes were really built and used: they are what this test checks.
    for owner in _specializers(engine).values():
        assert owner.generation > 1 and owner.classes is not None
        assert all(classes.bodies for classes in owner.classes)
        assert "_cls <" in owner.source
    assert not _specializers(plain)


def test_a_code_gets_its_class_the_second_time_a_line_shows_it() -> None:
    engine = Engine(today=TODAY, plugins=())
    owner = _specializers(engine)["medicare"]
    claim = synthetic_claim(random.Random(1), 0, codes=["99213"])
    claim["lines"] = claim["lines"][:1]
    claim["lines"][0]["modifiers"] = []
    first = owner.generation
    engine.check(claim)
    # one sighting: the general body, nothing analysed or compiled
    assert owner.generation == first and owner.classes is None
    engine.check(claim)
    assert owner.generation == first + 1
    assert owner.classes is not None and len(owner.classes[1].bodies) == 1
    maps = owner.maps
    assert maps is not None and maps[1]["99213"] == 1


def test_an_older_map_never_answers_a_class_its_code_does_not_have() -> None:
    engine = Engine(today=TODAY, plugins=())
    owner = _specializers(engine)["medicare"]
    old = owner.maps
    assert old is not None
    old_b = old[1]
    assert old_b["99213"] == 0  # first sighting
    assert old_b["99213"] == 0  # the class is built now, but this map predates it
    assert owner.classes is not None and owner.classes[1].keys and owner.maps is not old
    assert owner.maps is not None and owner.maps[1]["99213"] == 1


def test_a_code_whose_key_cannot_be_worked_out_gets_the_general_body(
    plain: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(today=TODAY, plugins=())
    owner = _specializers(engine)["medicare"]
    classes = owner._analysed()[1]

    def broken(line: Any) -> list[Any]:
        raise RuntimeError("a value set that fails on this code")

    monkeypatch.setattr(classes, "_key_fn", broken)
    assert classes.key("99213") is None
    claim = synthetic_claim(random.Random(4), 0, codes=["99213"])
    for line in claim["lines"]:
        line["modifiers"] = []
    generation = owner.generation
    for _ in range(3):
        assert engine.check(claim).to_json() == plain.check(claim).to_json()
    assert owner.generation == generation and not classes.bodies
    assert owner.maps is not None and owner.maps[1]["99213"] == 0


def test_classes_stop_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "MAX_CLASSES", 1)
    engine = Engine(today=TODAY, plugins=())
    owner = _specializers(engine)["medicare"]
    for code in ["99213", "99213", "93000", "93000", "J1100", "J1100"]:
        claim = synthetic_claim(random.Random(2), 0, codes=[code])
        claim["lines"] = claim["lines"][:1]
        claim["lines"][0]["modifiers"] = []
        engine.check(claim)
    assert owner.classes is not None and len(owner.classes[1].bodies) == 1
    assert owner.maps is not None
    assert owner.maps[1]["93000"] == 0  # past the limit: the general body, for good


# ---- simplification ------------------------------------------------------------------------


def simplified(source: str) -> str:
    return S._source(S.simplify(py.parse(source).body))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a constant that decides a chain cuts it short; one that does not is dropped
        ("if a and False and b:\n    x()", "pass"),
        ("if a and True and b:\n    x()", "if a and b:\n    x()"),
        ("if a or True:\n    x()", "x()"),
        ("if (a and b) and c:\n    x()", "if a and b and c:\n    x()"),
        # only truth counts in a test: len(x) > 0 is x
        ("if len(a) > 0:\n    x()", "if a:\n    x()"),
        ("if len(a) == 0:\n    x()", "if not a:\n    x()"),
        # ... but a value keeps its len
        ("v = len(a) > 0", "v = len(a) > 0"),
        # after `x is None or`, x is present
        (
            "if u is None or (u is not None and u <= 0):\n    x()",
            "if u is None or u <= 0:\n    x()",
        ),
        (
            "if u is not None and (u is not None and u > 1):\n    x()",
            "if u is not None and u > 1:\n    x()",
        ),
        # not of a comparison flips it
        ("if not (a is None):\n    x()", "if a is not None:\n    x()"),
        # a let set to a constant is written in where it is read, then goes
        ("_l_c = None\nif _l_c:\n    x(_l_c)\ny()", "y()"),
        ("_l_t = 5\nif a > _l_t:\n    x(_l_t)", "if a > 5:\n    x(5)"),
        # a memo of a constant is the constant
        ("v = _ml0 if _ml0 is not _U else (_ml0 := None)", "v = None"),
        # consecutive ifs starting with the same test make it once
        (
            "if a and b:\n    x()\nif a and c:\n    y()",
            "if a:\n    if b:\n        x()\n    if c:\n        y()",
        ),
        (
            "if _l_a and b:\n    x()\nif _l_a and c:\n    y()",
            "if _l_a and b:\n    x()\nif _l_a and c:\n    y()",
        ),
        # a value chain keeps the value of its last operand
        ("v = a and True", "v = a and True"),
        ("v = None if False else w", "v = w"),
    ],
)
def test_simplify(source: str, expected: str) -> None:
    assert simplified(source) == expected


def test_a_let_read_after_a_branch_that_sets_it_is_kept() -> None:
    source = "_l_x = 1\nif a:\n    _l_x = b()\ny(_l_x)"
    assert simplified(source) == source


# ---- decisions and findings built without __init__ -------------------------------------------


def test_new_decision_is_a_decision() -> None:
    finding = Finding(
        "r",
        "k",
        "deny",
        1,
        "CO",
        "4",
        ["M15"],
        "coding",
        "coding",
        "m",
        None,
        {"file": "f", "line": 1},
    )
    fast = new_decision("C-1", "deny", [finding], {"packs": {}})
    assert fast == Decision("C-1", "deny", [finding], {"packs": {}})
    assert fast.position is None


def test_findings_built_from_templates_set_every_field(engine: Engine) -> None:
    claim = synthetic_claim(random.Random(3), 0, codes=["93005"])
    claim["diagnoses"] = ["I48"]  # not billable: a finding
    decision = engine.check(claim)
    assert decision.findings
    names = [f.name for f in dataclasses.fields(Finding)]
    for finding in decision.findings:
        for name in names:
            getattr(finding, name)  # raises AttributeError if a slot was left unset
        assert Finding(*[getattr(finding, n) for n in names]) == finding


def _one_line(code: str, modifiers: list[str] | None = None) -> dict[str, Any]:
    claim = synthetic_claim(random.Random(6), 0, codes=[code])
    claim["lines"] = claim["lines"][:1]
    claim["lines"][0]["modifiers"] = modifiers or []
    return claim


def test_new_classes_are_compiled_in_batches_and_all_in_the_end() -> None:
    engine = Engine(today=TODAY, plugins=())
    owner = _specializers(engine)["medicare"]
    for _ in range(2):
        for code in CODES:
            engine.check(_one_line(code))
    assert owner.classes is not None
    built = sum(len(c.bodies) for c in owner.classes)
    assert built >= 5
    # fewer compilations than classes: later classes wait for company
    assert owner.generation - 1 < built
    for _ in range(S._WAITING_SIGHTINGS):  # their codes coming back compiles them in
        for code in CODES:
            engine.check(_one_line(code))
    assert owner.compiled == sum(len(c.bodies) for c in owner.classes)


def test_a_failure_while_building_a_class_leaves_the_general_body(
    plain: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(today=TODAY, plugins=())
    owner = _specializers(engine)["medicare"]

    def failing(self: S.LineClasses, key: tuple[Any, ...]) -> list[py.stmt]:
        raise RuntimeError("a defect in the specialiser")

    monkeypatch.setattr(S.LineClasses, "class_body", failing)
    claim = _one_line("93000")
    for _ in range(3):
        assert engine.check(claim).to_json() == plain.check(claim).to_json()
    assert owner.broken and owner.generation == 1
