"""`cleanclaim check` on a path that is not a claim file: a located error, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli


@pytest.mark.parametrize("argument", ["", "{folder}"])
def test_a_folder_or_an_empty_path_is_an_error_not_a_traceback(
    tmp_path: Path, argument: str
) -> None:
    result = cli("check", argument.format(folder=tmp_path), "--today", "2026-06-01")
    assert result.exit_code == 2, result.output
    assert "a folder, not a claim file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_missing_file_is_still_named(tmp_path: Path) -> None:
    result = cli("check", str(tmp_path / "none.json"), "--today", "2026-06-01")
    assert result.exit_code == 2 and "none.json: no such file" in result.output
