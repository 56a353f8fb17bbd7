"""Every hook is documented in docs/plugins.md, with a worked example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cleanclaim.engine import hookspecs
from cleanclaim.engine.plugins import build_manager

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def _specs() -> set[str]:
    """Hook names the plugin manager knows from the hookspecs module."""
    pm = build_manager()
    return {
        name
        for name in dir(pm.hook)
        if name.startswith("cleanclaim_") and getattr(pm.hook, name).has_spec()
    }


def test_the_hook_list_is_the_hookspecs() -> None:
    assert _specs() == set(hookspecs.HOOK_NAMES)


def _sections() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^### (\S+)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("hook", sorted(_specs()))
def test_every_hook_is_documented_with_a_worked_example(hook: str) -> None:
    section = _sections().get(hook)
    assert section is not None, f"docs/plugins.md has no `### {hook}` section"
    assert f"`{hook}(" in section, "the section should show the hook's signature"
    assert "```python" in section, "the section should have a worked example"
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert "When:" in doc and "Combining:" in doc, (
        f"the hookspec of {hook} should say when it runs and how results combine"
    )
