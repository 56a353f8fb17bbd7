"""The TextMate grammar in docs/editor/ against the real parser: every token of every
shipped policy file (and of the formatter's awkward inputs) gets the scope its kind
should have. The grammar is run by a small interpreter of TextMate `match` and
`begin`/`end` rules (Python's `re` stands in for Oniguruma; the grammar keeps to patterns
both understand)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lark import Token

from cleanclaim.dsl.fmt import parse_with_comments, tokens_of

REPO = Path(__file__).resolve().parent.parent
EDITOR = REPO / "docs" / "editor"
GRAMMAR = json.loads((EDITOR / "cleanclaim-policy.tmLanguage.json").read_text("utf-8"))
FILES = sorted((REPO / "payer_policies").glob("*/*.policy")) + [
    p
    for p in sorted((REPO / "tests" / "fmt").glob("*.policy"))
    if p.read_text(encoding="utf-8").strip()
]


# ---- a TextMate interpreter, just enough for our grammar ---------------------------------


@dataclass
class _Rule:
    raw: dict[str, Any]
    match: re.Pattern[str] | None = None
    begin: re.Pattern[str] | None = None
    end: re.Pattern[str] | None = None


def _compile(raw: dict[str, Any]) -> _Rule:
    rule = _Rule(raw)
    if "match" in raw:
        rule.match = re.compile(raw["match"])
    if "begin" in raw:
        rule.begin = re.compile(raw["begin"])
        rule.end = re.compile(raw["end"])
    return rule


def _patterns(patterns: list[dict[str, Any]]) -> list[_Rule]:
    """Flatten `include`s into the list of rules tried at a position, in order."""
    out: list[_Rule] = []
    for raw in patterns:
        if "include" in raw:
            name = raw["include"]
            assert name.startswith("#"), name
            included = GRAMMAR["repository"][name[1:]]
            if "patterns" in included and "begin" not in included:
                out.extend(_patterns(included["patterns"]))
            else:
                out.append(_compile(included))
        elif "patterns" in raw and "begin" not in raw:
            out.extend(_patterns(raw["patterns"]))
        else:
            out.append(_compile(raw))
    return out


def _captured(
    match: re.Match[str], captures: dict[str, Any], base: list[str], scopes: dict[int, list[str]]
) -> None:
    for index, capture in captures.items():
        group = int(index)
        if match.group(group) is None:
            continue
        for pos in range(match.start(group), match.end(group)):
            scopes[pos] = [*base, capture["name"]]


def tokenize(text: str) -> dict[tuple[int, int], list[str]]:
    """(line, column) (1-based) -> the scopes there, for every character of the text."""
    top = _patterns(GRAMMAR["patterns"])
    stack: list[tuple[_Rule, list[_Rule], list[str]]] = []  # open begin/end rules
    result: dict[tuple[int, int], list[str]] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        scopes: dict[int, list[str]] = {}
        pos = 0
        while pos <= len(line):
            base = stack[-1][2] if stack else []
            candidates = stack[-1][1] if stack else top
            best: tuple[int, int, _Rule | None, re.Match[str]] | None = None
            if stack:
                end_rule = stack[-1][0]
                assert end_rule.end is not None
                found = end_rule.end.search(line, pos)
                if found is not None:
                    best = (found.start(), -1, None, found)
            for order, rule in enumerate(candidates):
                pattern = rule.match or rule.begin
                assert pattern is not None
                found = pattern.search(line, pos)
                if found is not None and (best is None or found.start() < best[0]):
                    best = (found.start(), order, rule, found)
            if best is None:
                for p in range(pos, len(line)):
                    scopes[p] = base
                break
            start, _order, chosen, found = best
            for p in range(pos, start):
                scopes[p] = base
            if chosen is None:  # the end of the open begin/end rule
                closing, _inner, outer = stack.pop()
                for p in range(found.start(), found.end()):
                    scopes[p] = outer
                _captured(found, closing.raw.get("endCaptures", {}), outer, scopes)
            elif chosen.match is not None:
                name = [*base, chosen.raw["name"]] if "name" in chosen.raw else base
                for p in range(found.start(), found.end()):
                    scopes[p] = name
                _captured(found, chosen.raw.get("captures", {}), name, scopes)
            else:
                name = [*base, chosen.raw["name"]] if "name" in chosen.raw else base
                for p in range(found.start(), found.end()):
                    scopes[p] = name
                _captured(found, chosen.raw.get("beginCaptures", {}), name, scopes)
                stack.append((chosen, _patterns(chosen.raw.get("patterns", [])), name))
            if found.end() == pos and chosen is not None and chosen.match is not None:
                pos += 1  # an empty match must not stall the scan
            else:
                pos = max(found.end(), pos + (1 if found.end() == found.start() else 0))
        for col, names in scopes.items():
            result[(number, col + 1)] = names
    return result


# ---- what each token of the parser must be --------------------------------------------

NAMED = {
    "NAME",
    "FIELD",
    "STRING",
    "DATE",
    "NUMBER",
    "INT",
    "CODE_ITEM",
    "CARC",
    "RARC",
    "COMP_OP",
    "ADD_OP",
    "COMMENT",
}


def expected_scope(token: Token) -> str | None:
    """The scope (prefix) a token's first character must carry; None: not checked."""
    kind = token.type
    if kind == "COMMENT":
        return "comment.line"
    if kind == "STRING":
        return "string.quoted.double"
    if kind == "DATE":
        return "constant.other.date"
    if kind == "CARC":
        return "constant.other.carc"
    if kind == "RARC":
        return "constant.other.rarc"
    if kind == "CODE_ITEM":
        return "constant.other.code"
    if kind in ("NUMBER", "INT"):
        return "constant.numeric"
    if kind == "FIELD":
        return "variable.other.member"
    if kind in ("COMP_OP", "ADD_OP"):
        return "keyword.operator"
    if kind not in NAMED and re.fullmatch(r"[a-z][a-z0-9]*", str(token)):
        return "constant.language.boolean" if str(token) in ("true", "false") else "keyword"
    return None


def _scopes_of(table: dict[tuple[int, int], list[str]], token: Token) -> list[str]:
    return table.get((token.line or 0, token.column or 0), [])


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_every_token_of_a_policy_gets_its_scope(path: Path) -> None:
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    tree, comments = parse_with_comments(text)
    table = tokenize(text)
    wrong = []
    kinds = set()
    for token in [*tokens_of(tree), *comments]:
        scopes = _scopes_of(table, token)
        want = expected_scope(token)
        if want is not None:
            kinds.add(want)
            if not any(s.startswith(want) for s in scopes):
                wrong.append(
                    f"{token.line}:{token.column} {token.type} {str(token)!r}: "
                    f"wanted {want}, got {scopes}"
                )
        if token.type in ("NAME", "FIELD") and any(s.startswith("keyword") for s in scopes):
            wrong.append(f"{token.line}:{token.column} name {str(token)!r} scoped {scopes}")
    assert wrong == [], "\n".join(wrong)
    assert "keyword" in kinds


def test_the_shipped_policies_show_every_kind_of_token() -> None:
    """Dates, codes, CARCs, RARCs, comments and placeholders all occur in what is tested."""
    seen: set[str] = set()
    for path in FILES:
        for scopes in tokenize(path.read_text(encoding="utf-8")).values():
            seen.update(s.rsplit(".", 1)[0] for s in scopes)
    for scope in (
        "comment.line.number-sign",
        "string.quoted.double",
        "constant.other.date",
        "constant.other.code",
        "constant.other.carc",
        "constant.other.rarc",
        "keyword.other.clause",
        "keyword.operator.word",
        "constant.numeric",
        "variable.other.placeholder",
        "variable.other.member",
        "variable.language.record",
        "support.function",
    ):
        assert scope in seen, scope


def test_a_message_placeholder_and_an_escape_inside_a_string() -> None:
    table = tokenize('message "{line.code} is \\"late\\""\n')
    assert table[(1, 10)][-1].startswith("variable.other.placeholder")
    assert table[(1, 26)][-1].startswith("constant.character.escape")
    assert table[(1, 9)][-1].startswith("punctuation.definition.string.begin")


def test_every_keyword_of_the_language_grammar_is_in_the_editor_grammar() -> None:
    lark_grammar = (REPO / "dsl" / "grammar" / "policy_v1.lark").read_text(encoding="utf-8")
    rules = "\n".join(
        line for line in lark_grammar.splitlines() if not line.lstrip().startswith("//")
    )
    keywords = set(re.findall(r'"([a-z][a-z0-9]*)"', rules))
    assert {"rule", "end", "valueset", "icd10", "where"} <= keywords
    table_text = json.dumps(GRAMMAR["repository"])
    missing = sorted(k for k in keywords if not re.search(rf"\b{k}\b", table_text))
    assert missing == []


def test_the_vs_code_extension_points_at_the_grammar() -> None:
    manifest = json.loads((EDITOR / "package.json").read_text(encoding="utf-8"))
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"]
    assert (EDITOR / grammar["path"]).is_file()
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".policy"]
    assert (EDITOR / language["configuration"]).is_file()
    json.loads((EDITOR / language["configuration"]).read_text(encoding="utf-8"))
