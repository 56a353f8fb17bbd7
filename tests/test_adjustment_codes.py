"""CARC, RARC and group codes of outcomes are checked against the X12 lists (issue 13.14):
`then deny CO-999 with N9999` used to pass lint and emit CARC 999."""

from __future__ import annotations

import ast as pyast
import datetime as dt
from pathlib import Path

import pytest

from cleanclaim.dsl.codesets import adjustment
from cleanclaim.dsl.lint import lint
from cleanclaim.engine.testing import lint_environment

REPO = Path(__file__).resolve().parents[1]
ENV, _LOADERS, _ROOTS = lint_environment(None)


def _pack(tmp_path: Path, outcome: str, *, until: str = "") -> Path:
    pack = tmp_path / "demo"
    pack.mkdir()
    (pack / "pack.yaml").write_text("id: demo\nname: Demo\n")
    dates = f"  effective 2001-01-01 until {until}\n" if until else ""
    (pack / "rules.policy").write_text(
        "version 1\n\n"
        'rule "demo/units"\n'
        "  applies to all lines\n"
        "  root cause submission\n"
        f"{dates}"
        "  when line.units is present and line.units > 99\n"
        f"  then {outcome}\n"
        '  reference "payer manual 4.2"\n'
        "end\n"
    )
    return pack


def _problems(pack: Path) -> list[tuple[str, int, int, str]]:
    report = lint([str(pack)], ENV, roots=[pack.parent], today=dt.date(2026, 12, 7))
    return [
        (p.code, p.span.line, p.span.column, p.message + " " + (p.hint or ""))
        for p in report.problems
    ]


def test_an_unknown_carc_and_rarc_are_located_errors_with_the_closest_codes(tmp_path: Path) -> None:
    found = _problems(_pack(tmp_path, "deny CO-999 with N9999"))
    line = 8 - 1  # the `then` line
    assert [(c, ln, col) for c, ln, col, _ in found] == [("E306", line, 13), ("E306", line, 25)]
    assert "CARC `999`" in found[0][3] and "`99`" in found[0][3]
    assert "RARC `N9999`" in found[1][3] and "did you mean" in found[1][3]


def test_a_deactivated_code_is_an_error_unless_the_version_ended_before_it_stopped(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    found = _problems(_pack(tmp_path / "a", "deny CO-46"))
    assert [c for c, *_ in found] == ["E307"] and "use 96 instead" in found[0][3]
    (tmp_path / "b").mkdir()
    # CARC 46 stopped on 2003-10-16: a version that ended before is history, not an error.
    assert [c for c, *_ in _problems(_pack(tmp_path / "b", "deny CO-46", until="2003-01-01"))] == [
        "W203"
    ]  # expired only
    (tmp_path / "c").mkdir()
    assert [c for c, *_ in _problems(_pack(tmp_path / "c", "deny CO-16 with M58"))] == ["E307"]


def test_x12_usage_notes_are_warnings(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert [c for c, *_ in _problems(_pack(tmp_path / "a", "deny CO-18"))] == ["W403"]
    (tmp_path / "b").mkdir()
    assert _problems(_pack(tmp_path / "b", "deny OA-18")) == []
    (tmp_path / "c").mkdir()
    assert [c for c, *_ in _problems(_pack(tmp_path / "c", "deny CR-97"))] == ["W403"]
    (tmp_path / "d").mkdir()
    assert [c for c, *_ in _problems(_pack(tmp_path / "d", "reject CO-16"))] == ["W404"]
    (tmp_path / "e").mkdir()
    assert _problems(_pack(tmp_path / "e", "info CO-16")) == []


def test_the_lists_hold_what_x12_published() -> None:
    # 407 CARCs and 1216 RARCs on the X12 lists of 2026-08-17 (current and deactivated).
    assert len(adjustment.known_carcs()) == 407
    assert len(adjustment.known_rarcs()) == 1216
    ninety_seven, fifteen = adjustment.carc("97"), adjustment.carc("15")
    assert ninety_seven is not None and not ninety_seven.deactivated
    assert fifteen is not None and fifteen.deactivated
    assert adjustment.rarc("N813") is None and adjustment.rarc("N812") is not None
    assert adjustment.carc("97").show() == "CARC 97 (paid as part of another service)"  # type: ignore[union-attr]


def _emitted_codes(path: Path) -> list[tuple[str, int, str, str]]:
    """(file, line, kind, code) for each literal CARC/RARC/group a Python file emits:
    keyword arguments `carc=`, `rarc=[...]`, `group=`, and `Finding(...)`'s positions."""
    tree = pyast.parse(path.read_text())
    found: list[tuple[str, int, str, str]] = []

    def add(kind: str, node: pyast.expr) -> None:
        items = node.elts if isinstance(node, (pyast.List, pyast.Tuple)) else [node]
        for item in items:
            if isinstance(item, pyast.Constant) and isinstance(item.value, str):
                found.append((str(path.relative_to(REPO)), item.lineno, kind, item.value))

    for node in pyast.walk(tree):
        if not isinstance(node, pyast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg in ("carc", "rarc", "group"):
                add(keyword.arg, keyword.value)
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name == "Finding" and len(node.args) >= 7:
            add("group", node.args[4])
            add("carc", node.args[5])
            add("rarc", node.args[6])
    return found


def _emitting_files() -> list[Path]:
    return sorted([*(REPO / "plugins").rglob("*.py"), *(REPO / "engine").rglob("*.py")])


@pytest.mark.parametrize("path", _emitting_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_and_the_engine_emit_only_known_current_codes(path: Path) -> None:
    bad = []
    for file, line, kind, code in _emitted_codes(path):
        if code == "":  # an info finding without codes (engine/void)
            continue
        if kind == "group":
            ok = code in adjustment.GROUPS
        else:
            entry = adjustment.carc(code) if kind == "carc" else adjustment.rarc(code)
            ok = entry is not None and not entry.deactivated
        if not ok:
            bad.append(f"{file}:{line}: {kind} {code}")
    assert bad == []


def test_the_scan_sees_plugin_codes() -> None:
    codes = {c for p in _emitting_files() for _, _, _, c in _emitted_codes(p)}
    assert {"96", "N383", "151", "N362", "16", "MA130", "PR"} <= codes
