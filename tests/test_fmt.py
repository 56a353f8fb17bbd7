"""`cleanclaim fmt` (dsl/fmt/): one layout, every comment kept, idempotent, meaning
unchanged; on every shipped policy file and on the awkward inputs in tests/fmt/
(`tests/fmt/expected/` holds what each must become; `tests/fmt/refused/` files that do not
parse and must be left alone)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl.fmt import (
    WIDTH,
    FormatError,
    format_file,
    format_paths,
    format_policy,
    parse_with_comments,
    strip_spans,
)
from cleanclaim.dsl.parser import parse_policy
from cleanclaim.engine.cli import app

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fmt"
SHIPPED = sorted((REPO / "payer_policies").glob("*/*.policy"))
AWKWARD = sorted(CORPUS.glob("*.policy"))
REFUSED = sorted((CORPUS / "refused").glob("*.policy"))
ALL = SHIPPED + AWKWARD


def read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as f:  # keep \r\n: a corpus file has them
        return f.read()


def comments(text: str) -> Counter[str]:
    if not text.strip():
        return Counter()
    _tree, found = parse_with_comments(text.replace("\r\n", "\n"))
    return Counter(str(c).rstrip() for c in found)


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


def test_the_corpus_is_there() -> None:
    assert len(SHIPPED) >= 8 and len(AWKWARD) >= 12 and len(REFUSED) >= 3
    names = {p.name for p in AWKWARD}
    assert {
        "empty.policy",
        "only-version-line.policy",
        "comments-everywhere.policy",
        "long-code-lists.policy",
    } <= names


@pytest.mark.parametrize("path", AWKWARD, ids=ids(AWKWARD))
def test_the_awkward_inputs_format_as_expected(path: Path) -> None:
    expected = (CORPUS / "expected" / path.name).read_text(encoding="utf-8")
    assert format_policy(read(path), str(path)) == expected


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_formatting_twice_changes_nothing(path: Path) -> None:
    once = format_policy(read(path), str(path))
    assert format_policy(once, str(path)) == once


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_formatting_never_changes_the_meaning(path: Path) -> None:
    text = read(path)
    if not text.strip():
        assert format_policy(text) == ""
        return
    before, before_errors = parse_policy(text.replace("\r\n", "\n"), "p.policy")
    after, after_errors = parse_policy(format_policy(text, str(path)), "p.policy")
    assert before is not None and after is not None
    assert strip_spans(after) == strip_spans(before)
    assert [e.code for e in after_errors] == [e.code for e in before_errors]


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_every_comment_is_kept(path: Path) -> None:
    text = read(path)
    assert comments(format_policy(text, str(path))) == comments(text)


@pytest.mark.parametrize("path", SHIPPED, ids=ids(SHIPPED))
def test_shipped_lines_are_short_unless_a_string_or_comment_makes_them_long(path: Path) -> None:
    for line in format_policy(read(path)).splitlines():
        assert len(line) <= WIDTH or '"' in line or "#" in line, line


def test_long_code_lists_wrap_under_their_first_code() -> None:
    out = format_policy(read(CORPUS / "long-code-lists.policy"))
    lines = out.splitlines()
    assert lines[2] == (
        "valueset many = codes [10000, 10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008,"
    )
    assert lines[3].startswith(" " * len("valueset many = codes [") + "10009,")
    # A list far to the right wraps 4 columns in instead of in a narrow column.
    assert lines[7] == "    93005, 93010, 93306-93308]"
    assert all(len(line) <= WIDTH for line in lines if "a_very_long" not in line)


def test_the_layout_of_one_rule() -> None:
    text = (
        'version 1 rule "p/r" applies to codes [93000,93005] root cause coding '
        'when line.units>1 and(line.code=="93000"or line.modifiers is missing) '
        'then deny CO-4 with M15,N115 reference "r" end'
    )
    assert format_policy(text) == (
        "version 1\n\n"
        'rule "p/r"\n'
        "  applies to codes [93000, 93005]\n"
        "  root cause coding\n"
        '  when line.units > 1 and (line.code == "93000" or line.modifiers is missing)\n'
        "  then deny CO-4 with M15, N115\n"
        '  reference "r"\n'
        "end\n"
    )


def test_a_long_condition_breaks_before_each_and_with_operators_hanging() -> None:
    condition = " and ".join(f"line.units > {n}" for n in range(1, 9))
    text = f'version 1\nrule "p/r"\n when {condition} or line.code in [93000]\nend\n'
    assert format_policy(text) == (
        'version 1\n\nrule "p/r"\n'
        "  when line.units > 1\n"
        "       and line.units > 2\n"
        "       and line.units > 3\n"
        "       and line.units > 4\n"
        "       and line.units > 5\n"
        "       and line.units > 6\n"
        "       and line.units > 7\n"
        "       and line.units > 8\n"
        "    or line.code in [93000]\n"
        "end\n"
    )


@pytest.mark.parametrize("path", REFUSED, ids=ids(REFUSED))
def test_a_file_that_does_not_parse_is_refused_with_located_errors(path: Path) -> None:
    with pytest.raises(FormatError) as caught:
        format_policy(read(path), str(path))
    assert caught.value.errors and all(e.code.startswith("E00") for e in caught.value.errors)
    result = format_file(path)
    assert result.formatted is None and not result.changed and result.errors


def test_crlf_becomes_lf() -> None:
    assert format_policy("version 1\r\n\r\nvalueset x = [93000]\r\n") == (
        "version 1\n\nvalueset x = [93000]\n"
    )


# ---- files and the command -----------------------------------------------------------------


def test_format_paths_rewrites_only_what_changes(tmp_path: Path) -> None:
    ugly = tmp_path / "a.policy"
    ugly.write_text("version 1\nvalueset x=[93000]\n", encoding="utf-8")
    tidy = tmp_path / "sub" / "b.policy"
    tidy.parent.mkdir()
    tidy.write_text("version 1\n", encoding="utf-8")
    outcome = format_paths([tmp_path], write=True)
    assert (outcome.checked, outcome.changed, outcome.errors) == (2, [ugly], [])
    assert ugly.read_text(encoding="utf-8") == "version 1\n\nvalueset x = [93000]\n"


def test_check_lists_files_that_would_change_and_exits_1(tmp_path: Path) -> None:
    ugly = tmp_path / "a.policy"
    ugly.write_text("version 1\nvalueset x=[93000]\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["fmt", "--check", str(tmp_path)])
    assert result.exit_code == 1 and result.output == f"would reformat {ugly}\n"
    assert ugly.read_text(encoding="utf-8") == "version 1\nvalueset x=[93000]\n"
    diff = runner.invoke(app, ["fmt", "--diff", str(ugly)])
    assert diff.exit_code == 1 and "+valueset x = [93000]" in diff.output
    assert runner.invoke(app, ["fmt", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["fmt", "--check", str(tmp_path)])
    assert again.exit_code == 0 and again.output == "1 file already formatted\n"


def test_a_broken_file_is_reported_left_alone_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.policy"
    broken.write_text('version 1\nrule "p/r"\n  when true\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["fmt", str(broken)])
    assert result.exit_code == 2
    assert f"{broken}:3:12: error E002 unexpected-end" in result.output
    assert broken.read_text(encoding="utf-8") == 'version 1\nrule "p/r"\n  when true\n'
    assert CliRunner().invoke(app, ["fmt", str(tmp_path / "nothing")]).exit_code == 2


def test_shipped_policy_files_are_formatted() -> None:
    """Every shipped policy file is in the canonical layout (`cleanclaim fmt --check`)."""
    from typer.testing import CliRunner

    from cleanclaim.engine.cli import app

    root = Path(__file__).resolve().parent.parent / "payer_policies"
    result = CliRunner().invoke(app, ["fmt", "--check", str(root)])
    assert result.exit_code == 0, result.output
