"""The shipped plugins' policy cases (tests/plugins/policy-cases/*.yaml).

Same case format as the packs' `cases/` (engine/cases.py), plus a top-level `plugins:`
list: the plugins the cases run with. They run against `tests/plugins/packs/plain`, a
payer pack with no rules, so that a case lists exactly what its plugin finds. (The
folder is not called `cases/`: the pack-case collector would run them without plugins.)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from cleanclaim.dsl.checker import CheckEnv, check_pack
from cleanclaim.dsl.pack import load_sources
from cleanclaim.engine import Engine
from cleanclaim.engine.cases import PolicyCase, load_cases, run_case
from cleanclaim.engine.model import Claim
from cleanclaim.engine.plugins import load_plugins, rule_count
from cleanclaim.plugins.dermatology import lesions
from cleanclaim.plugins.therapy import PACKS as THERAPY_PACKS
from cleanclaim.plugins.therapy import rules as therapy
from tests.policy_cases_plugin import TODAY

HERE = Path(__file__).resolve().parent / "plugins"
CASE_DIR = HERE / "policy-cases"
PLAIN_PACKS = HERE / "packs"
SHIPPED = ("cardiology", "dermatology", "therapy")
_ENGINES: dict[tuple[str, ...], Engine] = {}


@functools.cache
def plugins_of(path: Path) -> tuple[str, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = data.get("plugins") if isinstance(data, dict) else None
    assert isinstance(names, list) and names, f"{path}: a plugin case file needs `plugins:`"
    return tuple(sorted(names))


def engine_for(plugins: tuple[str, ...]) -> Engine:
    if plugins not in _ENGINES:
        _ENGINES[plugins] = Engine([PLAIN_PACKS], today=TODAY, plugins=list(plugins))
    return _ENGINES[plugins]


CASE_FILES = sorted(CASE_DIR.glob("*.yaml"))
# Cases that read `claim.service_state`, which the `readers` helper adds to the claim model
# (INTERFACES.md): they run as soon as the model has the field.
NEEDS_SERVICE_STATE = {"dermatology-cosmetic-l35498.yaml"}
HAS_SERVICE_STATE = "service_state" in getattr(Claim, "__slots__", ())
CASES: list[tuple[Path, PolicyCase]] = [(p, c) for p in CASE_FILES for c in load_cases(p)]


@pytest.mark.parametrize(("path", "case"), CASES, ids=[f"{p.stem}::{c.name}" for p, c in CASES])
def test_plugin_case(path: Path, case: PolicyCase) -> None:
    if path.name in NEEDS_SERVICE_STATE and not HAS_SERVICE_STATE:
        pytest.skip("the claim model has no service_state yet (INTERFACES.md, readers)")
    outcome = run_case(engine_for(plugins_of(path)), case)
    assert outcome.passed, f"{path.name}:{case.line}: case '{case.name}'\n  " + "\n  ".join(
        outcome.problems
    )


def _expected_rules(plugin: str) -> tuple[set[str], int]:
    """Rule ids the plugin's cases expect, and how many of its cases expect a clean claim."""
    rules: set[str] = set()
    clean = 0
    for path, case in CASES:
        if plugin not in plugins_of(path):
            continue
        clean += case.expect_status == "clean"
        for finding in case.expect_findings or []:
            rules.add(str(finding.get("rule")))
    return rules, clean


@pytest.mark.parametrize("name", SHIPPED)
def test_every_rule_of_every_shipped_plugin_has_cases(name: str) -> None:
    info = load_plugins([name]).plugins[0]
    ids = {info.rule_id(r.id) for r in info.rules}
    for folder in info.packs:
        sources = load_sources([folder.parent, *[f.parent for f in info.libraries]], folder.name)
        assert sources is not None
        engine = engine_for((name,))
        checked = check_pack(sources, CheckEnv(engine.functions), {})
        ids |= {info.rule_id(rule.id) for pack, rule in checked.rules if pack == name}
    assert len(ids) == rule_count(info)
    expected, clean = _expected_rules(name)
    assert ids - expected == set(), "rules without a case that expects them"
    assert clean >= len(ids) // 2, "too few cases on the clean side of the rules"


def _library_sets() -> dict[str, Any]:
    sources = load_sources([THERAPY_PACKS], "therapy-codes")
    assert sources is not None
    checked = check_pack(sources, CheckEnv(engine_for(("therapy",)).functions), {})
    assert not checked.errors
    return {name: s.exact for name, s in checked.valuesets.items()}


def test_therapy_code_sets_in_python_match_the_library_pack() -> None:
    sets = _library_sets()
    assert sets["timed_therapy"] == therapy.TIMED
    assert sets["therapy_evaluations"] == therapy.EVALUATIONS
    assert sets["untimed_therapy"] == therapy.UNTIMED
    assert sets["always_therapy"] == therapy.ALWAYS_THERAPY


def test_excision_codes_in_python_are_the_packs_excision_set() -> None:
    engine = engine_for(("dermatology",))
    info = engine.plugins.plugins[0] if engine.plugins else None
    assert info is not None
    sources = load_sources([info.packs[0].parent], "dermatology")
    assert sources is not None
    checked = check_pack(sources, CheckEnv(engine.functions), {})
    excision = checked.valuesets["lesion_excision"].exact
    assert set(lesions.EXCISION_CODES) <= excision
    assert {c for c in excision if c.endswith("5") or c.endswith(("7", "8", "9"))}.isdisjoint(
        lesions.EXCISION_CODES
    )


@pytest.mark.parametrize(
    ("minutes", "units"),
    [
        (0, 0),
        (7, 0),
        (7.9, 0),
        (8, 1),
        (22, 1),
        (22.9, 1),
        (23, 2),
        (37, 2),
        (38, 3),
        (52, 3),
        (53, 4),
        (67, 4),
        (68, 5),
        (82, 5),
        (83, 6),
        (97, 6),
        (98, 7),
        (112, 7),
        (113, 8),
        (127, 8),
        (128, 9),
    ],
)
def test_eight_minute_table(minutes: float, units: int) -> None:
    assert therapy.units_for_minutes(minutes) == units


@pytest.mark.parametrize(
    ("behavior", "site", "diameter", "code"),
    [
        ("benign", "leg", 0.5, "11400"),
        ("benign", "leg", 0.55, "11401"),
        ("benign", "arm", 1.0, "11401"),
        ("benign", "trunk", 1.05, "11402"),
        ("benign", "neck", 2.0, "11422"),
        ("benign", "foot", 2.1, "11423"),
        ("benign", "genitalia", 3.0, "11423"),
        ("benign", "scalp", 3.1, "11424"),
        ("benign", "ear", 4.0, "11444"),
        ("benign", "lip", 4.1, "11446"),
        ("malignant", "trunk", 0.5, "11600"),
        ("malignant", "hand", 1.4, "11622"),
        ("malignant", "mucous_membrane", 9.0, "11646"),
    ],
)
def test_excision_code_table(behavior: str, site: str, diameter: float, code: str) -> None:
    assert lesions.supported_code(behavior, lesions.GROUP_OF_SITE[site], diameter) == code
