"""What the Python a pack compiles to calls at run time (`HELPERS`, the base of every
pack's `exec` namespace): arithmetic and comparisons that treat a missing value as
missing, message formatting, and the marker of a memo not computed yet."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from cleanclaim.dsl import types as T
from cleanclaim.dsl.codesets import icd10cm
from cleanclaim.dsl.exceptions import apply_exceptions
from cleanclaim.dsl.static import date_minus, date_plus
from cleanclaim.dsl.tables import data_value, table_value
from cleanclaim.dsl.valuesets import CodeSet


def _numbers(a: Any, b: Any) -> tuple[Any, Any]:
    """Decimal literals meet float units: compute in Decimal."""
    if isinstance(a, Decimal) and isinstance(b, float):
        return a, Decimal(repr(b))
    if isinstance(b, Decimal) and isinstance(a, float):
        return Decimal(repr(a)), b
    return a, b


def _add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _numbers(a, b)
    return a + b


def _sub(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _numbers(a, b)
    return a - b


def _missing(x: Any) -> bool:
    return x is None or x == "" or (isinstance(x, (list, tuple)) and not x)


def _in_set(x: Any, s: CodeSet) -> bool:
    return x in s


def _fmt(x: Any) -> str:
    if x is None:
        return "(missing)"
    if isinstance(x, (list, tuple)):
        return ", ".join(_fmt(i) for i in x) if x else "(none)"
    if isinstance(x, dt.date):
        return x.isoformat()
    return str(x)


def _fmt_icd(x: Any) -> str:
    if x is None:
        return "(missing)"
    if isinstance(x, (list, tuple)):
        return ", ".join(icd10cm.dotted(i) for i in x) if x else "(none)"
    return icd10cm.dotted(str(x))


def others(claim: Any, line: Any) -> list[Any]:
    return [o for o in claim.lines if o is not line]


def _needs(reads: tuple[tuple[str, Any], ...], what: str) -> str:
    """The message of a rule that cannot be decided: the fields it needs that are missing
    (dsl/missing.py)."""
    missing = [name for name, value in reads if value is None]
    return f"needs {', '.join(missing)} to decide: {what}"


HELPERS: dict[str, Any] = {
    "_add": _add,
    "_sub": _sub,
    "_date_add": date_plus,
    "_date_sub": date_minus,
    "_missing": _missing,
    "_in_set": _in_set,
    "_fmt": _fmt,
    "_fmt_icd": _fmt_icd,
    "_others": others,
    "_needs": _needs,
    "_plan": T.plan_of,
    "_fold": T.plan_key,
    "_table_value": table_value,
    "_data_value": data_value,
    "_apply_exceptions": apply_exceptions,
}


class _Unset:
    """Marks a per-line memo not computed yet."""

    __slots__ = ()


_UNSET = _Unset()
HELPERS["_U"] = _UNSET
