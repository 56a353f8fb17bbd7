"""Glue for the CLI: an `explain` trace for a failing case, and what `cleanclaim lint`
checks against."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cleanclaim.engine.cases import (
    PolicyCase,
)


def explain_trace(engine: Any, case: PolicyCase, rule_id: str) -> str | None:
    """The `explain` trace of one rule on a case's claim (a `RuleTrace` for `run_cases`)."""
    explain = getattr(engine, "explain", None)
    if explain is None:
        return None
    from cleanclaim.dsl.explain import render_text as render_trace

    saved = engine.today
    engine.today = case.today or saved
    try:
        if (case.history or case.batch) and hasattr(engine, "explain_in_run"):
            # As the case was decided (cases.decide): its history on file, its claims
            # checked in one run; the trace shows what the counters counted.
            from cleanclaim.engine.history import HistoryStore, put_on_file

            with HistoryStore.memory() as store:
                if case.history:
                    put_on_file(engine, store, case.history)
                found = engine.explain_in_run(
                    case.batch or (case.claim,),
                    rule=rule_id,
                    history=store,
                    position=case.batch_index,
                )
            if found is None:
                return "(the case's claim could not be read)"
            decision, traces = found
        else:
            decision, traces = explain(case.claim, rule_id)
    except Exception as exc:  # the trace is an aid; a failing one must not hide the failure
        return f"(no trace: {type(exc).__name__}: {exc})"
    finally:
        engine.today = saved
    if not traces:
        return "(the rule was not considered for this claim)"
    text = render_trace(decision.claim_id, traces)
    return "\n".join(text.splitlines()[1:]).strip("\n")


def lint_environment(
    policies: Sequence[Path] | None,
) -> tuple[Any, dict[str, Callable[[Path], object]], list[Path]]:
    """What `cleanclaim lint` checks against: the functions and tables an engine offers
    (built-ins, the engine's functions, the NCCI table loaders) and the policy roots."""
    from cleanclaim.dsl.checker import CheckEnv
    from cleanclaim.engine.engine import TABLE_LOADERS, shipped_policies
    from cleanclaim.engine.refdata.tables import TABLE_SCHEMAS
    from cleanclaim.engine.runtime import standard_functions

    functions = {f.name: f for f in standard_functions()}  # the engine's, without plugins
    env = CheckEnv(functions, frozenset(TABLE_LOADERS), table_schemas=TABLE_SCHEMAS)
    roots = list(policies) if policies else [shipped_policies()]
    return env, dict(TABLE_LOADERS), roots
