"""Shared fixtures; the policy-case collector is the plugin `tests/policy_cases_plugin.py`,
loaded from pyproject (`-p`) so that it also collects `payer_policies/*/cases/*.yaml`."""

from tests.policy_cases_plugin import TODAY, engine, shared_engine

__all__ = ["TODAY", "engine", "shared_engine"]


# Every test run keeps the on-disk cache (dsl/cache.py) in a folder of its own, never in
# ~/.cache; the subprocesses tests start inherit it through the environment.
_CACHE_ENV = "CLEANCLAIM_CACHE_DIR"
_saved_cache_env: list[str | None] = []


def pytest_configure(config: object) -> None:
    import os
    import tempfile

    _saved_cache_env.append(os.environ.get(_CACHE_ENV))
    os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="cleanclaim-test-cache-")


def pytest_unconfigure(config: object) -> None:
    import os
    import shutil

    folder = os.environ.get(_CACHE_ENV)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    previous = _saved_cache_env.pop() if _saved_cache_env else None
    if previous is None:
        os.environ.pop(_CACHE_ENV, None)
    else:
        os.environ[_CACHE_ENV] = previous
