"""What the command line costs before it does anything, cut without changing what it
accepts (issue 14: a cold `cleanclaim check` of one claim).

typer (0.29) coerces each parameter of the command that runs through a pydantic
`TypeAdapter` it builds on first use, and asks for it for every parameter, given or not:
`check` has 16, so a one-claim check built 16 adapters (~0.11 s of ~0.87 s, cProfile,
idle machine) to coerce mostly missing values. `defer_missing_values` hands a missing
value (None) the answer typer's own `RuntimeParam.coerce` gives one - `()` for a
parameter that takes several values, else None - without building the adapter; a value
that is given goes through typer's own adapter as before. It changes nothing when typer
is laid out differently (another release): the command line then runs as typer has it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["defer_missing_values"]


class _Deferred:
    """Stands in for a parameter's runtime coercion until a value is given."""

    __slots__ = ("_build", "_owner")

    def __init__(self, owner: Any, build: Any) -> None:
        self._owner = owner
        self._build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # as typer's RuntimeParam.coerce answers a missing value
            return () if (param.multiple or param.nargs == -1) else None
        real = self._build(self._owner.type_descriptor)
        self._owner._runtime_param = real
        return real.coerce(value, param=param, ctx=ctx)


def defer_missing_values() -> bool:
    """Install the deferral on typer's parameter class; True when it is in place."""
    try:
        from typer import _coercion, core
    except ImportError:  # pragma: no cover - typer without these modules
        return False
    parameter = getattr(core, "_TyperParameter", None)
    runtime = getattr(_coercion, "RuntimeParam", None)
    build = getattr(_coercion, "build_runtime_param", None)
    if parameter is None or runtime is None or build is None:
        return False
    if getattr(parameter.get_runtime_param, "_cleanclaim_deferred", False):
        return True
    # Only where every kind of runtime coercion answers a missing value in the base
    # class (the one behaviour reproduced above) and the parameter keeps its coercion
    # in `_runtime_param`.
    if any("coerce" in vars(kind) for kind in _subclasses(runtime)) or \
            "_runtime_param" not in getattr(parameter, "__annotations__", {}):
        return False

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            return _Deferred(self, build)
        return self._runtime_param

    get_runtime_param._cleanclaim_deferred = True  # type: ignore[attr-defined]
    parameter.get_runtime_param = get_runtime_param
    return True


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        found.append(sub)
        found.extend(_subclasses(sub))
    return found
