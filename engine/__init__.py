"""cleanclaim's engine: claim model, decisions, evaluation, CLI."""

from cleanclaim.engine.engine import Engine

__all__ = ["Engine"]
