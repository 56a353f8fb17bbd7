"""docs/language.md describes every field of the claim vocabulary and every standard
function, with the types the language itself gives them (dsl/types.py, the engine's
standard functions): a field or function added without its documentation fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cleanclaim.dsl import types as T
from cleanclaim.engine.runtime import standard_functions

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "language.md"


def _sections(text: str) -> dict[str, str]:
    """`### Heading` -> the text up to the next heading."""
    parts = re.split(r"^#{2,3} (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _rows(section: str) -> dict[str, list[str]]:
    """The rows of the section's tables, by their first cell (backquotes removed)."""
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def _type_words(t: T.Type) -> str:
    return str(t)


def signature(spec: T.FunctionSpec) -> str:
    return f"{spec.name}({', '.join(str(p) for p in spec.params)})"


def result_words(spec: T.FunctionSpec) -> str:
    return str(spec.result) + ("?" if spec.result.nullable else "")


TEXT = DOC.read_text(encoding="utf-8")
SECTIONS = _sections(TEXT)


@pytest.mark.parametrize("record", sorted(T.RECORDS))
def test_every_field_is_documented_with_its_type_and_optionality(record: str) -> None:
    assert record in SECTIONS, f"docs/language.md has no `### {record}` section"
    rows = _rows(SECTIONS[record])
    for name, typ in T.RECORDS[record].items():
        assert name in rows, f"field `{record}.{name}` is missing from docs/language.md"
        documented_type, optional = rows[name][0], rows[name][1]
        assert documented_type == _type_words(typ.definite()), (
            f"`{record}.{name}` is documented as {documented_type}, but is {typ.definite()}"
        )
        want = (
            "no"
            if not typ.nullable
            else "absent is an answer"
            if (record, name) in T.ABSENT_IS_AN_ANSWER
            else "yes"
        )
        assert optional == want, (
            f"`{record}.{name}`: optional is `{optional}`, the language says `{want}`"
        )


def test_every_root_name_of_every_scope_is_documented() -> None:
    rows = _rows(SECTIONS["Fields"])
    documented = " ".join(" ".join(cells) for cells in rows.values())
    for names in T.ROOTS.values():
        for name in names:
            assert f"`{name}`" in documented, f"root name `{name}` is not in the scope table"
    assert "`other_lines` is the claim's other lines" in SECTIONS["Fields"]


@pytest.mark.parametrize("spec", standard_functions(), ids=lambda s: s.name)
def test_every_standard_function_is_documented_with_its_signature(spec: T.FunctionSpec) -> None:
    rows = _rows(SECTIONS["Functions"])
    sig = signature(spec)
    assert sig in rows, f"function `{sig}` is missing from docs/language.md (Functions)"
    assert rows[sig][0] == result_words(spec), (
        f"`{sig}` is documented to give {rows[sig][0]}, but gives {result_words(spec)}"
    )
    line_only = spec.scopes == frozenset({"line"})
    assert ("line rules only" in rows[sig][1]) == line_only, (
        f"`{sig}`: say `line rules only` exactly when it can be called in line rules only"
    )


def test_every_grammar_keyword_appears_in_the_reference() -> None:
    grammar = re.sub(
        r"//[^\n]*", "", (REPO / "dsl" / "grammar" / "policy_v1.lark").read_text(encoding="utf-8")
    )
    keywords = set(re.findall(r'"([a-z][a-z0-9]*)"', grammar))
    missing = sorted(k for k in keywords if not re.search(rf"\b{k}\b", TEXT))
    assert not missing, f"keywords not described in docs/language.md: {missing}"


def test_readme_links_the_language_reference_and_the_design() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/language.md" in readme
    assert "docs/design.md" in readme
    assert (REPO / "docs" / "design.md").is_file()
    for link in re.findall(r"\]\(([^)#]+\.md)", readme):
        assert (REPO / link).is_file(), f"README links {link}, which does not exist"
