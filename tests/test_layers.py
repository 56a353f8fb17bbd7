"""The layer rules of docs/architecture.md, checked on the source: every import, at module
level or inside a function, read with `ast` (so a lazy import counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import statement in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _violations(folder: str, forbidden: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, name in _imports(path)
        if name == forbidden or name.startswith(forbidden + ".")
    ]


def test_the_language_imports_nothing_from_the_engine() -> None:
    assert _violations("dsl", "cleanclaim.engine") == []


def test_the_policy_packs_hold_no_code_that_imports_the_engine() -> None:
    assert _violations("payer_policies", "cleanclaim.engine") == []


def test_the_check_finds_a_lazy_import(tmp_path: Path) -> None:
    """The test above could not fail if `_imports` missed imports inside functions."""
    source = tmp_path / "lazy.py"
    source.write_text(
        "def f():\n    from cleanclaim.engine.engine import Engine\n", encoding="utf-8"
    )
    assert _imports(source) == [(2, "cleanclaim.engine.engine.Engine")]


def test_one_vocabulary() -> None:
    """The enums, the tuples, the ranks and the default owners say the same thing, and the
    HTTP schema lists exactly it."""
    from cleanclaim.dsl import vocabulary as v
    from cleanclaim.engine import openapi

    assert set(v.SEVERITY_RANK) == set(v.SEVERITIES)
    assert set(v.STATUS_BY_RANK.values()) == set(v.STATUSES)
    assert set(v.DEFAULT_OWNER) == set(v.ROOT_CAUSES)
    assert set(v.DEFAULT_OWNER.values()) <= set(v.OWNERS)
    assert all(type(x) is str for x in (*v.DEFAULT_OWNER, *v.DEFAULT_OWNER.values()))
    finding = openapi.schemas()["Finding"]["properties"]
    assert finding["root_cause"]["enum"] == list(v.ROOT_CAUSES)
    assert finding["owner"]["enum"] == list(v.OWNERS)
    assert finding["severity"]["enum"] == list(v.SEVERITIES)


def test_the_plugin_api_does_not_import_the_checker() -> None:
    """Importing the plugin API stays cheap: not the checker, not lark (issue 17.6)."""
    import subprocess
    import sys

    code = (
        "import sys, cleanclaim.engine.hookspecs; "
        "print(sorted(m for m in ('cleanclaim.dsl.checker', 'lark') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_plugins_import_only_the_plugin_api() -> None:
    """Layer rule 3: a shipped plugin imports the plugin API and its own modules, nothing
    else of cleanclaim (not the language, not the engine's internals)."""
    allowed = ("cleanclaim.engine.hookspecs", "cleanclaim.plugins")
    bad = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted((ROOT / "plugins").rglob("*.py"))
        for line, name in _imports(path)
        if name.startswith("cleanclaim.") and not name.startswith(allowed)
    ]
    assert bad == []
