"""cleanclaim's engine: claim model, decisions, evaluation, CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cleanclaim.engine.denials import build_report, denial_report, read_remittance
    from cleanclaim.engine.engine import Engine

__all__ = ["Engine", "build_report", "denial_report", "read_remittance"]
# After adjudication (docs/denials.md): an X12 835 read, the denial report built.
_DENIALS = frozenset({"build_report", "denial_report", "read_remittance"})


def __getattr__(name: str) -> Any:
    # `Engine` is imported when first asked for, so that importing any module of this
    # package (the CLI, decisions, hookspecs) does not load the policy compiler.
    if name == "Engine":
        from cleanclaim.engine.engine import Engine

        return Engine
    if name in _DENIALS:
        from cleanclaim.engine import denials

        return getattr(denials, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
