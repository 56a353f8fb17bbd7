"""Shared fixtures; the policy-case collector is the plugin `tests/policy_cases_plugin.py`,
loaded from pyproject (`-p`) so that it also collects `payer_policies/*/cases/*.yaml`."""

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.policy_cases_plugin import TODAY, engine, shared_engine
from tests.postgres_server import backends, postgres_url

__all__ = ["TODAY", "backends", "cli", "data_dir", "engine", "postgres_url", "shared_engine"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder of imported CMS files (engine/refdata/) for one test."""
    folder = tmp_path / "cms-data"
    monkeypatch.setenv("CLEANCLAIM_DATA_DIR", str(folder))
    return folder


def cli(*args: str) -> Any:
    """`cleanclaim ARGS...` run in this process (typer's runner): its result."""
    # Imported here, not when pytest loads this file: before `pytest_configure` has set
    # the test run's cache and data folders.
    from cleanclaim.engine.cli import app

    return CliRunner().invoke(app, list(args))


# Every test run keeps the on-disk cache (dsl/cache.py) in a folder of its own, never in
# ~/.cache; the subprocesses tests start inherit it through the environment.
# Likewise the data folder of imported CMS files (engine/refdata/): every run starts with an
# empty one of its own, so the user's imports never change a test's decisions.
_CACHE_ENV = "CLEANCLAIM_CACHE_DIR"
_DATA_ENV = "CLEANCLAIM_DATA_DIR"
_saved_env: list[tuple[str, str | None]] = []


def pytest_configure(config: object) -> None:
    import os
    import tempfile

    for name, prefix in (
        (_CACHE_ENV, "cleanclaim-test-cache-"),
        (_DATA_ENV, "cleanclaim-test-data-"),
    ):
        _saved_env.append((name, os.environ.get(name)))
        os.environ[name] = tempfile.mkdtemp(prefix=prefix)


def pytest_unconfigure(config: object) -> None:
    import os
    import shutil

    while _saved_env:
        name, previous = _saved_env.pop()
        folder = os.environ.get(name)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
