"""Plugins: discovery through the entry-point group, selection, the facade, broken
plugins, an outside plugin package, and the CLI (`cleanclaim plugins`, `--plugin`).

Throwaway plugins are real distributions: a module and a `.dist-info` written into a
temporary folder put on `sys.path`, so they go through the same entry-point door as the
shipped plugins and an installed third-party package.
"""

from __future__ import annotations

import itertools
import json
import pickle
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.engine import Engine
from cleanclaim.engine.cli import app
from cleanclaim.engine.hookspecs import ENTRY_POINT_GROUP, ClaimContext, context_of
from cleanclaim.engine.model import decode_claim
from cleanclaim.engine.plugins import (
    EngineRecipe,
    PluginError,
    PluginSelection,
    installed_plugins,
    load_plugins,
)
from tests.policy_cases_plugin import TODAY

HERE = Path(__file__).resolve().parent
PLAIN = HERE / "plugins" / "packs"
EXAMPLE = HERE / "plugins" / "example-plugin"
_counter = itertools.count()

CLAIM: dict[str, Any] = {
    "claim_id": "P-1",
    "payer": "plain",
    "received_date": "2026-03-02",
    "member": {"id": "M1", "coverage": [{"payer": "plain", "start": "2020-01-01"}]},
    "billing_provider": {"npi": "1234567893"},
    "rendering_provider": {"npi": "1234567893"},
    "place_of_service": "11",
    "diagnoses": ["R07.9"],
    "lines": [
        {
            "line": 1,
            "code": "99213",
            "units": 1,
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        }
    ],
    "documentation": {},
}


def claim(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(CLAIM)), **changes}


# ---- throwaway distributions ------------------------------------------------------------

Install = Callable[..., str]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install a one-module plugin distribution; returns the module's (unique) name."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    made: list[str] = []

    def make(
        entry: str,
        source: str,
        *,
        dist: str | None = None,
        version: str = "0.3.0",
        files: dict[str, str] | None = None,
    ) -> str:
        module = f"cc_test_plugin_{next(_counter)}"
        made.append(module)
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        for name, text in (files or {}).items():
            path = site / module.replace("_", "-") / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        dist = dist or f"cc-test-{module}"
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n{entry} = {module}\n", encoding="utf-8"
        )
        return module

    yield make
    for module in made:
        sys.modules.pop(module, None)


# Indented as the plugin sources below are (they are dedented together).
HOOKS_HEADER = """
        from cleanclaim.engine.hookspecs import finding, hookimpl
"""


def problems_of(exc: pytest.ExceptionInfo[PluginError]) -> dict[str, str]:
    return {name: message for name, message in exc.value.problems}


# ---- discovery --------------------------------------------------------------------------


def test_the_shipped_plugins_register_through_the_entry_point_group() -> None:
    found, conflicts = installed_plugins()
    assert conflicts == []
    for name in ("cardiology", "dermatology", "therapy"):
        assert found[name].value == f"cleanclaim.plugins.{name}"
        assert found[name].distribution == "cleanclaim"


def test_loading_collects_what_each_plugin_contributes() -> None:
    host = load_plugins(["therapy", "cardiology"])
    assert [p.name for p in host.plugins] == ["cardiology", "therapy"]  # name order
    therapy = host.get("therapy")
    assert therapy is not None and therapy.tag == "therapy@0.1.0"
    assert [p.name for p in therapy.packs] == ["therapy"]
    assert [p.name for p in therapy.libraries] == ["therapy-codes"]
    assert {s.name for s in therapy.sections} == {"therapy"}
    assert "eight-minute-rule" in {r.id for r in therapy.rules}
    assert set(therapy.hooks) >= {"cleanclaim_derive_facts", "cleanclaim_check_claim"}
    cardiology = host.get("cardiology")
    assert cardiology is not None
    assert {f.name for f in cardiology.functions} >= {"cardiology_indication"}


def test_an_outside_plugin_is_discovered_and_run(example_site: Path) -> None:
    found, _ = installed_plugins()
    assert found["example"].distribution == "cleanclaim-example-plugin"
    assert found["example"].version == "1.2.0"
    engine = Engine([PLAIN], today=TODAY, plugins=["example"])
    lines = [
        {
            "line": n,
            "code": "99213",
            "modifiers": ["95"],
            "units": 1,
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        }
        for n in (1, 2, 3, 4)
    ]
    decision = engine.check(claim(lines=lines))
    rules = sorted({f.rule for f in decision.findings})
    assert rules == ["example@1.2.0/no-telehealth-modifier", "example@1.2.0/too-many-lines"]
    assert decision.policy["plugins"]["example"]["version"] == "1.2.0"
    telehealth = engine.check(claim(lines=lines, documentation={"visit": {"telehealth": True}}))
    assert [f.rule for f in telehealth.findings] == ["example@1.2.0/too-many-lines"]
    assert telehealth.status == "clean"  # an `info` finding leaves the claim clean


def test_cleanclaim_plugins_lists_name_version_hooks_and_rule_count(
    example_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLEANCLAIM_PLUGINS", raising=False)
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = {p["name"]: p for p in json.loads(result.output)}
    assert listing["example"] == {
        "name": "example",
        "version": "1.2.0",
        "distribution": "cleanclaim-example-plugin",
        "enabled": True,
        "rules": 2,
        "error": None,
        "hooks": [
            "cleanclaim_check_claim",
            "cleanclaim_documentation_sections",
            "cleanclaim_functions",
            "cleanclaim_policy_packs",
            "cleanclaim_rules",
        ],
    }
    assert listing["therapy"]["rules"] == 12  # eight-minute-distribution (issue 11)
    # biopsy-with-removal, shave-with-excision, shave-with-excision-unmarked (issue 11)
    assert listing["dermatology"]["rules"] == 13
    assert listing["cardiology"]["rules"] == 5
    table = CliRunner().invoke(app, ["plugins"])
    assert table.exit_code == 0
    assert "example      1.2.0    yes   2      check_claim, documentation_sections" in table.output


@pytest.fixture(scope="session")
def example_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugins/example-plugin installed into a folder, as pip would lay it out: the
    package and a .dist-info written from the package's own pyproject.toml."""
    target = tmp_path_factory.mktemp("example-site")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    for package in (EXAMPLE / "src").iterdir():
        shutil.copytree(package, target / package.name)
    info = target / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (info / "INSTALLER").write_text("tests\n")
    return target


@pytest.fixture
def example_site(example_package: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(example_package))
    return example_package


# ---- selection --------------------------------------------------------------------------


def test_selection_from_file_environment_and_command_line(tmp_path: Path) -> None:
    assert PluginSelection.from_config(tmp_path, {}) == PluginSelection()
    (tmp_path / "cleanclaim.toml").write_text(
        '[plugins]\nenable = ["therapy", "cardiology"]\ndisable = ["cardiology"]\n'
    )
    from_file = PluginSelection.from_config(tmp_path, {})
    assert from_file.chosen(["cardiology", "dermatology", "therapy"]) == (["therapy"], [])
    from_env = PluginSelection.from_config(tmp_path, {"CLEANCLAIM_PLUGINS": "all,-therapy"})
    assert from_env.chosen(["cardiology", "therapy"]) == (["cardiology"], [])
    none = PluginSelection.from_config(tmp_path, {"CLEANCLAIM_PLUGINS": "none"})
    assert none.chosen(["cardiology"]) == ([], [])
    flags = from_file.narrowed(["dermatology"], ["therapy"])
    assert flags.chosen(["cardiology", "dermatology", "therapy"]) == (["dermatology"], [])


def test_a_bad_config_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "cleanclaim.toml").write_text("[plugins]\nenabled = ['therapy']\n")
    with pytest.raises(PluginError, match=r"unknown setting.*plugins\.enabled"):
        PluginSelection.from_config(tmp_path, {})


def test_an_unknown_plugin_name_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(PluginError) as exc:
        load_plugins(["theraphy"])
    assert "is not installed (did you mean `therapy`?)" in problems_of(exc)["theraphy"]


def test_engine_runs_what_check_runs_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Engine() is `cleanclaim check` with no option: the configured plugins (issue 18.1)
    monkeypatch.delenv("CLEANCLAIM_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    engine = Engine([PLAIN], today=TODAY)
    assert engine.plugins is not None
    assert [p.name for p in engine.plugins.plugins] == ["cardiology", "dermatology", "therapy"]
    monkeypatch.setenv("CLEANCLAIM_PLUGINS", "none")
    assert Engine([PLAIN], today=TODAY).plugins is None
    plain = Engine([PLAIN], today=TODAY, plugins=[])
    assert plain.plugins is None
    decision = plain.check(
        claim(
            lines=[
                {"line": 1, "code": "97110", "units": 9, "service_date": "2026-02-10", "minutes": 5}
            ]
        )
    )
    assert decision.status == "clean"
    assert "plugins" not in decision.policy


def test_building_an_engine_without_plugins_never_imports_the_plugin_machinery() -> None:
    code = (
        "import sys; from cleanclaim.engine import Engine; "
        "Engine(plugins=()).check({'claim_id': 'X', 'payer': 'medicare', 'lines': []}); "
        "print('cleanclaim.engine.plugins' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


# ---- broken plugins: a clear error naming the plugin ------------------------------------


def test_an_import_error_names_the_plugin_and_others_still_load(install: Install) -> None:
    install("broken", "import no_such_module_anywhere\n")
    with pytest.raises(PluginError) as exc:
        load_plugins(["broken", "therapy"])
    message = problems_of(exc)["broken"]
    assert "cannot be imported" in message and "no_such_module_anywhere" in message
    assert list(problems_of(exc)) == ["broken"]
    # Deselected, it is never imported, and the others run.
    host = load_plugins(PluginSelection(enable=None, disable=("broken",)))
    assert "broken" not in {p.name for p in host.plugins}
    assert "therapy" in {p.name for p in host.plugins}


def test_a_hook_with_a_bad_signature_names_the_plugin(install: Install) -> None:
    install(
        "badsig",
        HOOKS_HEADER
        + """
        @hookimpl
        def cleanclaim_check_line(claim, line, context, payer):
            return None
    """,
    )
    with pytest.raises(PluginError) as exc:
        load_plugins(["badsig"])
    message = problems_of(exc)["badsig"]
    assert "does not fit its specification" in message and "payer" in message


def test_a_misspelt_hook_is_reported_with_a_suggestion(install: Install) -> None:
    install(
        "typo",
        HOOKS_HEADER
        + """
        @hookimpl
        def cleanclaim_check_lines(claim, line, context):
            return None
    """,
    )
    with pytest.raises(PluginError) as exc:
        load_plugins(["typo"])
    assert problems_of(exc)["typo"] == (
        "`cleanclaim_check_lines` is not a cleanclaim hook (did you mean `cleanclaim_check_line`?)"
    )


def test_a_hook_without_hookimpl_is_reported(install: Install) -> None:
    install(
        "unmarked",
        """
        def cleanclaim_check_claim(claim, context):
            return None
    """,
    )
    with pytest.raises(PluginError) as exc:
        load_plugins(["unmarked"])
    assert "`cleanclaim_check_claim` is not marked with @hookimpl" in problems_of(exc)["unmarked"]


def test_bad_contributions_are_reported(install: Install, tmp_path: Path) -> None:
    install(
        "badstuff",
        HOOKS_HEADER
        + f"""
        from pathlib import Path
        from cleanclaim.dsl import types as T

        @hookimpl
        def cleanclaim_policy_packs():
            return [Path({str(tmp_path / "nowhere")!r}), "not a path"]

        @hookimpl
        def cleanclaim_functions():
            return [T.FunctionSpec("days_between", (), T.NUMBER, lambda: 1, "clash")]

        @hookimpl
        def cleanclaim_rules():
            raise RuntimeError("rules went missing")
    """,
    )
    with pytest.raises(PluginError) as exc:
        load_plugins(["badstuff"])
    messages = [m for name, m in exc.value.problems if name == "badstuff"]
    text = "\n".join(messages)
    assert "has no readable pack.yaml" in text
    assert "returned 'not a path', not a Path" in text
    assert "function `days_between` is already defined by cleanclaim (built-in)" in text
    assert "`cleanclaim_rules` raised RuntimeError: rules went missing" in text


def test_two_plugins_declaring_one_documentation_section_is_an_error(install: Install) -> None:
    install(
        "lesions2",
        HOOKS_HEADER
        + """
        from cleanclaim.engine.hookspecs import DocumentationSection, Text

        @hookimpl
        def cleanclaim_documentation_sections():
            return [DocumentationSection("lesions", Text(), "mine")]
    """,
    )
    with pytest.raises(PluginError) as exc:
        load_plugins(["dermatology", "lesions2"])
    assert problems_of(exc)["lesions2"] == (
        "documentation section `lesions` is already declared by plugin `dermatology`"
    )


def test_one_name_from_two_distributions_is_an_error(install: Install) -> None:
    install("therapy", "", dist="someone-elses-therapy")
    with pytest.raises(PluginError) as exc:
        load_plugins(["therapy"])
    assert "registered by two distributions" in problems_of(exc)["therapy"]


def test_a_plugin_pack_that_does_not_compile_fails_with_its_location(
    install: Install, tmp_path: Path
) -> None:
    module = install(
        "badpack",
        HOOKS_HEADER
        + """
        from pathlib import Path

        @hookimpl
        def cleanclaim_policy_packs():
            return [Path(__file__).parent / __name__.replace("_", "-") / "badpack"]
    """,
        files={
            "badpack/pack.yaml": "id: badpack\nname: bad\n",
            "badpack/rules.policy": """\
                    version 1
                    rule "badpack/x"
                      applies to codes [99213]
                      root cause coding
                      when line.unitz > 1
                      then deny CO-151
                    end
                    """,
        },
    )
    with pytest.raises(PolicyCompileError) as exc:
        Engine([PLAIN], today=TODAY, plugins=["badpack"])
    rendered = exc.value.render()
    assert f"{module.replace('_', '-')}/badpack/rules.policy:5" in rendered
    assert "unitz" in rendered


def test_a_plugin_pack_must_carry_the_plugins_name(install: Install) -> None:
    install(
        "named",
        HOOKS_HEADER
        + """
        from pathlib import Path

        @hookimpl
        def cleanclaim_policy_packs():
            return [Path(__file__).parent / __name__.replace("_", "-") / "other"]
    """,
        files={"other/pack.yaml": "id: other\nname: other\n"},
    )
    with pytest.raises(PluginError) as exc:
        load_plugins(["named"])
    assert "must have the plugin's name `named`" in problems_of(exc)["named"]


# ---- failures at check time: a review finding naming the plugin, the batch goes on -------


def test_an_exception_in_a_check_hook_is_a_review_finding_naming_the_plugin(
    install: Install,
) -> None:
    install(
        "flaky",
        HOOKS_HEADER
        + """
        @hookimpl
        def cleanclaim_check_line(claim, line, context):
            if line.code == "99999":
                raise ZeroDivisionError("oops")
            return [finding("seen", f"saw {line.code}", severity="info", carc="16",
                            root_cause="submission")]
    """,
    )
    engine = Engine([PLAIN], today=TODAY, plugins=["flaky", "therapy"])
    bad = claim(
        claim_id="BAD",
        lines=[
            {"line": 1, "code": "99999", "units": 1, "service_date": "2026-02-10"},
            {
                "line": 2,
                "code": "97110",
                "units": 1,
                "service_date": "2026-02-10",
                "modifiers": [],
                "minutes": 15,
            },
        ],
    )
    good = claim(claim_id="GOOD")
    decisions = list(engine.check_many([bad, good]))
    assert [d.claim_id for d in decisions] == ["BAD", "GOOD"]
    failure = next(f for f in decisions[0].findings if f.rule == "flaky@0.3.0/plugin-error")
    assert failure.severity == "review" and failure.line == 1
    assert (
        "plugin flaky@0.3.0 failed in cleanclaim_check_line (ZeroDivisionError: oops)"
        in failure.message
    )
    rules = {f.rule for f in decisions[0].findings}
    assert {"flaky@0.3.0/seen", "therapy@0.1.0/discipline-modifier"} <= rules
    assert decisions[1].status == "clean"
    seen = decisions[1].findings[0]
    assert seen.rule == "flaky@0.3.0/seen" and seen.line == 1
    assert seen.source is not None
    assert seen.source == {"file": f"{seen.source['file']}", "line": 4}
    assert seen.source["file"].startswith("cc_test_plugin_")


def test_a_malformed_finding_is_reported_against_its_plugin(install: Install) -> None:
    install(
        "sloppy",
        HOOKS_HEADER
        + """
        @hookimpl
        def cleanclaim_check_claim(claim, context):
            return [finding("x", "bad", severity="fatal", carc="16", root_cause="coding"),
                    "not a finding"]
    """,
    )
    decision = Engine([PLAIN], today=TODAY, plugins=["sloppy"]).check(claim())
    messages = [f.message for f in decision.findings]
    assert decision.status == "review"
    assert [f.rule for f in decision.findings] == ["sloppy@0.3.0/plugin-error"] * 2
    assert "severity `fatal` is not one of" in messages[0]
    assert "returned str, not a Finding" in messages[1]


def test_a_failing_derive_hook_is_reported_and_the_rules_still_run(install: Install) -> None:
    install(
        "derive",
        HOOKS_HEADER
        + """
        @hookimpl
        def cleanclaim_derive_facts(claim, context):
            raise KeyError("minutes")
    """,
    )
    engine = Engine([PLAIN], today=TODAY, plugins=["derive", "therapy"])
    decision = engine.check(
        claim(
            lines=[
                {
                    "line": 1,
                    "code": "97110",
                    "units": 1,
                    "service_date": "2026-02-10",
                    "minutes": 15,
                }
            ]
        )
    )
    rules = [f.rule for f in decision.findings]
    assert "derive@0.3.0/plugin-error" in rules
    assert "therapy@0.1.0/discipline-modifier" in rules


def test_a_failing_language_function_names_its_plugin(install: Install) -> None:
    install(
        "fn",
        HOOKS_HEADER
        + """
        from pathlib import Path
        from cleanclaim.dsl import types as T

        def explode(claim, line):
            raise ValueError("no such lesion")

        @hookimpl
        def cleanclaim_functions():
            return [T.FunctionSpec("explode", (), T.BOOL, explode, "fails",
                                   contextual=True, scopes=frozenset({"line"}))]

        @hookimpl
        def cleanclaim_policy_packs():
            return [Path(__file__).parent / __name__.replace("_", "-") / "fn"]
    """,
        files={
            "fn/pack.yaml": "id: fn\nname: fn\n",
            "fn/rules.policy": """\
        version 1
        rule "fn/explodes"
          applies to codes [99213]
          root cause coding
          when explode()
          then deny CO-4
        end
        """,
        },
    )
    decision = Engine([PLAIN], today=TODAY, plugins=["fn"]).check(claim())
    (failure,) = decision.findings
    assert failure.rule == "fn@0.3.0/explodes" and failure.severity == "review"
    assert (
        "function `explode` of plugin fn@0.3.0 failed: ValueError: no such lesion"
        in failure.message
    )


# ---- what plugins add to the engine -----------------------------------------------------


def test_payer_packs_may_include_plugin_libraries_and_call_plugin_functions(tmp_path: Path) -> None:
    pack = tmp_path / "derm-payer"
    pack.mkdir()
    (pack / "pack.yaml").write_text("id: derm-payer\nname: t\ninclude: [therapy-codes]\n")
    (pack / "rules.policy").write_text(
        textwrap.dedent("""\
        version 1
        rule "derm-payer/big-excision"
          applies to codes [11400-11446]
          root cause coding
          let diameter = lesion_excised_diameter()
          when lesion_excised_diameter() > 3
          then review CO-16
          message "excised diameter {diameter} cm"
        end
        rule "derm-payer/therapy-minutes"
          applies to codes timed_therapy
          root cause documentation
          when line.minutes is missing
          then review CO-16 with N443
        end
        """)
    )
    engine = Engine([tmp_path], today=TODAY, plugins=["dermatology", "therapy"])
    lesion = {
        "line": 1,
        "site": "leg",
        "size": "3 cm",
        "margin": "1 mm",
        "pathology": "benign",
        "symptoms": ["pain"],
    }
    decision = engine.check(
        claim(
            payer="derm-payer",
            lines=[
                {"line": 1, "code": "11404", "units": 1, "service_date": "2026-02-10"},
                {
                    "line": 2,
                    "code": "97110",
                    "units": 1,
                    "service_date": "2026-02-10",
                    "modifiers": ["GP"],
                },
            ],
            documentation={
                "lesions": [lesion],
                "therapy": {
                    "plan_of_care": {"start": "2026-02-10", "certified": "2026-02-10"},
                    "minutes": [{"code": "97110", "date": "2026-02-10", "minutes": 15}],
                },
            },
        )
    )
    # The minutes derived from the documentation reach the payer pack's rule: no finding.
    assert [(f.rule, f.message) for f in decision.findings] == [
        ("derm-payer/big-excision", "excised diameter 3.2 cm")
    ]
    # Without the therapy plugin its library is unknown: the pack does not compile.
    with pytest.raises(PolicyCompileError) as exc:
        Engine([tmp_path], today=TODAY, plugins=["dermatology"])
    assert "includes unknown pack `therapy-codes`" in exc.value.render()


def test_plugin_findings_name_plugin_and_version_and_their_source() -> None:
    engine = Engine([PLAIN], today=TODAY, plugins=["therapy"])
    decision = engine.check(
        claim(
            lines=[
                {
                    "line": 1,
                    "code": "97110",
                    "units": 3,
                    "service_date": "2026-02-10",
                    "minutes": 20,
                }
            ]
        )
    )
    by_rule = {f.rule: f for f in decision.findings}
    assert by_rule["therapy@0.1.0/discipline-modifier"].source == {
        "file": "therapy/modifiers.policy",
        "line": 12,
    }
    source = by_rule["therapy@0.1.0/eight-minute-rule"].source
    assert source is not None and source["file"] == "cleanclaim/plugins/therapy/__init__.py"
    assert decision.policy["plugins"]["therapy"]["packs"]["therapy"].startswith("sha256:")


def test_documentation_is_validated_once_and_seen_through_context_of() -> None:
    engine = Engine([PLAIN], today=TODAY, plugins=["cardiology"])
    host = engine.plugins
    assert host is not None
    decoded, _ = decode_claim(
        claim(
            documentation={
                "ecg": {
                    "indication": "syncope",
                    "report": {"signed": True, "signed_on": "2026-02-10"},
                },
                "somebody_elses": {"x": 1},
            }
        ),
        TODAY,
    )
    assert decoded is not None
    context, findings = host.prepare(decoded)
    assert findings == []
    assert context.documentation["ecg"][0]["report"]["signed_on"].isoformat() == "2026-02-10"
    assert "somebody_elses" not in context.documentation
    assert context_of(decoded).documentation == {}  # outside a check: nothing
    token = host.activate(context)
    try:
        assert context_of(decoded) is context
    finally:
        host.deactivate(token)
    assert isinstance(context, ClaimContext)


def test_worker_processes_rebuild_the_engine_with_the_same_plugins() -> None:
    engine = Engine([PLAIN], today=TODAY, plugins=["therapy", "cardiology"])
    recipe = pickle.loads(pickle.dumps(EngineRecipe.of(engine)))
    rebuilt = recipe.build()
    assert rebuilt.plugins is not None
    assert [p.tag for p in rebuilt.plugins.plugins] == ["cardiology@0.1.0", "therapy@0.1.0"]
    sample = claim(
        lines=[
            {"line": 1, "code": "97110", "units": 3, "service_date": "2026-02-10", "minutes": 20}
        ]
    )
    assert rebuilt.check(sample).to_json() == engine.check(sample).to_json()


# ---- the command line --------------------------------------------------------------------


@pytest.fixture
def claim_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLEANCLAIM_PLUGINS", raising=False)
    path = tmp_path / "claims.json"
    path.write_text(
        json.dumps(
            [
                claim(
                    lines=[
                        {
                            "line": 1,
                            "code": "97110",
                            "units": 3,
                            "service_date": "2026-02-10",
                            "minutes": 20,
                        },
                        {"line": 2, "code": "93000", "units": 1, "service_date": "2026-02-10"},
                    ]
                )
            ]
        )
    )
    return path


def _rules(output: str) -> set[str]:
    return {f["rule"].split("/")[0] for d in json.loads(output) for f in d["findings"]}


def test_check_runs_every_installed_plugin_by_default(claim_file: Path) -> None:
    result = CliRunner().invoke(app, ["check", str(claim_file), "--policies", str(PLAIN)])
    assert result.exit_code == 1, result.output
    assert _rules(result.stdout) == {"therapy@0.1.0", "cardiology@0.1.0"}


def test_check_plugin_and_no_plugin_choose_which_run(claim_file: Path) -> None:
    only = CliRunner().invoke(
        app, ["check", str(claim_file), "--policies", str(PLAIN), "--plugin", "cardiology"]
    )
    assert _rules(only.stdout) == {"cardiology@0.1.0"}
    without = CliRunner().invoke(
        app, ["check", str(claim_file), "--policies", str(PLAIN), "--no-plugin", "cardiology"]
    )
    assert _rules(without.stdout) == {"therapy@0.1.0"}


def test_the_config_file_selects_plugins_and_flags_win(claim_file: Path) -> None:
    (claim_file.parent / "cleanclaim.toml").write_text('[plugins]\nenable = ["therapy"]\n')
    result = CliRunner().invoke(app, ["check", str(claim_file), "--policies", str(PLAIN)])
    assert _rules(result.stdout) == {"therapy@0.1.0"}
    result = CliRunner().invoke(
        app, ["check", str(claim_file), "--policies", str(PLAIN), "--plugin", "cardiology"]
    )
    assert _rules(result.stdout) == {"cardiology@0.1.0"}


def test_a_broken_plugin_stops_check_with_exit_2_naming_it(
    claim_file: Path, install: Install
) -> None:
    install("broken", "raise RuntimeError('half installed')\n")
    result = CliRunner().invoke(app, ["check", str(claim_file), "--policies", str(PLAIN)])
    assert result.exit_code == 2
    assert (
        "error: plugin `broken` cannot be imported from" in result.stderr
        and "RuntimeError: half installed" in result.stderr
    )
    assert "--no-plugin NAME" in result.stderr
    result = CliRunner().invoke(
        app, ["check", str(claim_file), "--policies", str(PLAIN), "--no-plugin", "broken"]
    )
    assert result.exit_code == 1
    listing = CliRunner().invoke(app, ["plugins"])
    assert listing.exit_code == 1
    assert "broken" in listing.stdout and "ERROR: cannot be imported" in listing.stdout


# ---- name clashes -----------------------------------------------------------------------


def test_a_plugin_function_named_like_a_history_function_is_a_clash(install: Install) -> None:
    install(
        "counts",
        HOOKS_HEADER
        + """
        from cleanclaim.dsl import types as T

        @hookimpl
        def cleanclaim_functions():
            return [T.FunctionSpec("visit_number", (), T.NUMBER, lambda: 1, "mine")]
    """,
    )
    with pytest.raises(PluginError) as exc:
        load_plugins(["counts"])
    assert problems_of(exc)["counts"] == (
        "function `visit_number` is already defined by cleanclaim (built-in)"
    )
