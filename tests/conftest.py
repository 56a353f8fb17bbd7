"""Shared fixtures; the policy-case collector is the plugin `tests/policy_cases_plugin.py`,
loaded from pyproject (`-p`) so that it also collects `payer_policies/*/cases/*.yaml`."""

from tests.policy_cases_plugin import TODAY, engine, shared_engine

__all__ = ["TODAY", "engine", "shared_engine"]
