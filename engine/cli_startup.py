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

from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["defer_missing_values"]


class _Deferred:
    """Stands in for a parameter's runtime coercion until a value is given."""

    __slots__ = ("_build", "_owner")

    def __init__(self, owner: Any, build: Any) -> None:
        self._owner = owner
        self._build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multiple = param.multiple or param.nargs == -1
        if value is None:  # as typer's RuntimeParam.coerce answers a missing value
            return () if multiple else None
        if not (multiple and isinstance(value, str)):
            try:
                plain = _plain(self._owner.type_descriptor, value, param, ctx)
            except Exception:  # typer's own coercion says what is wrong, as before
                plain = _NOT_PLAIN
            if plain is not _NOT_PLAIN:
                return plain
        real = self._build(self._owner.type_descriptor)
        self._owner._runtime_param = real
        return real.coerce(value, param=param, ctx=ctx)


_NOT_PLAIN: Any = object()


def _plain(descriptor: Any, value: Any, param: Any, ctx: Any) -> Any:
    """The value typer's pydantic adapter gives, for the few plain cases where that adapter
    is a pass-through or typer's own path check, found without importing pydantic (~0.1 s
    of a cold check); `_NOT_PLAIN` for anything else, which goes to typer's adapter."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return _NOT_PLAIN
    annotation = descriptor.annotation
    if getattr(annotation, "__origin__", None) is list and isinstance(value, (list, tuple)):
        (item,) = annotation.__args__
        items = [_leaf(item, info, one, param, ctx) for one in value]
        return _NOT_PLAIN if any(one is _NOT_PLAIN for one in items) else items
    return _leaf(annotation, info, value, param, ctx)


def _leaf(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    kind = type(value)
    if annotation is str and kind is str:  # typer's _parse_cli_str: str(value)
        return value
    if (
        annotation is int
        and kind is str
        and value.isascii()
        and value.isdigit()
        and (value == "0" or value[0] != "0")
    ):
        value, kind = int(value), int  # plain decimal digits: what pydantic reads them as
    if (
        annotation is int
        and kind is int
        and (info.min is None or value >= info.min)
        and (info.max is None or value <= info.max)
    ):
        return value  # TypeAdapter(int) of an int within its bounds (ge/le, or clamped)
    if isinstance(annotation, type) and issubclass(annotation, Enum) and kind in (annotation, str):
        from typer._param_types import coerce_cli_choice

        # what typer's choice adapter calls (a name that is no choice raises: typer's error)
        return coerce_cli_choice(
            value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx
        )
    if annotation is Path and kind is str and value and info.path_type is None:
        from typer._param_types import coerce_cli_path

        # what TypeAdapter(Path) makes of a non-empty str, then typer's own path checks
        return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
    return _NOT_PLAIN


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
    if any(
        "coerce" in vars(kind) for kind in _subclasses(runtime)
    ) or "_runtime_param" not in getattr(parameter, "__annotations__", {}):
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
