"""Procedure code shapes: CPT and HCPCS Level II, and value-set ranges such as ``11400-11446``.

Shapes only, no code list: whether a well-shaped code exists is the policy pack's business.
Letters are read case-insensitively; anything else (spaces, dots, modifiers) is not a code.

- CPT: five digits (Category I, ``99213``), or four digits and ``F`` (Category II, ``0001F``),
  ``T`` (Category III, ``0042T``) or ``U`` (Proprietary Laboratory Analyses, ``0001U``).
- HCPCS Level II: one letter and four digits (``J0100``, ``G0438``).
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = [
    "UPPER_CASE_CODE",
    "ProcedureKind",
    "code_kind",
    "expand_range",
    "is_cpt",
    "is_hcpcs_level2",
    "is_procedure_code",
]

ProcedureKind = Literal["cpt", "hcpcs"]

_CPT = re.compile(r"[0-9]{5}|[0-9]{4}[FTU]", re.ASCII)
_HCPCS_LEVEL2 = re.compile(r"[A-Z][0-9]{4}", re.ASCII)
# Either shape in upper case only: for readers of CMS files (engine/ncci.py,
# engine/refdata/), which upper-case a field first and match millions of them.
UPPER_CASE_CODE = re.compile(f"{_CPT.pattern}|{_HCPCS_LEVEL2.pattern}", re.ASCII)
# A range end splits into letter prefix, digits, letter suffix; both ends must agree on the
# letters and the digit count, so the digits alone are counted through.
_RANGE_END = re.compile(r"([A-Z]?)([0-9]+)([A-Z]?)", re.ASCII)


def is_cpt(code: str) -> bool:
    """Whether ``code`` has a CPT shape: ``99213``, ``0001F``, ``0042T`` or ``0001U``."""
    return _CPT.fullmatch(code.upper()) is not None


def is_hcpcs_level2(code: str) -> bool:
    """Whether ``code`` has a HCPCS Level II shape: one letter and four digits (``J0100``)."""
    return _HCPCS_LEVEL2.fullmatch(code.upper()) is not None


def is_procedure_code(code: str) -> bool:
    """Whether ``code`` has the shape of a CPT or HCPCS Level II code."""
    return code_kind(code) is not None


def code_kind(code: str) -> ProcedureKind | None:
    """Which code system ``code`` is shaped like, or None for neither."""
    if is_cpt(code):
        return "cpt"
    if is_hcpcs_level2(code):
        return "hcpcs"
    return None


def expand_range(lo: str, hi: str) -> list[str]:
    """Every code from ``lo`` to ``hi`` inclusive, keeping the zero padding and letters.

    ``expand_range("0001F", "0003F")`` is ``["0001F", "0002F", "0003F"]``. Both ends must be
    procedure codes of the same shape: the same letter prefix or suffix, the same length,
    and ``lo`` not after ``hi``. Otherwise ValueError says which rule the range breaks.
    """
    first, last = lo.upper(), hi.upper()
    written = f"{lo}-{hi}"
    for end in (first, last):
        if code_kind(end) is None:
            raise ValueError(
                f"range {written}: {end!r} is not a CPT code (99213, 0001F, 0042T, 0001U) "
                "or a HCPCS Level II code (J0100)"
            )
    first_parts = _RANGE_END.fullmatch(first)
    last_parts = _RANGE_END.fullmatch(last)
    assert first_parts is not None and last_parts is not None  # both are procedure codes
    prefix, low_digits, suffix = first_parts.groups()
    if (prefix, suffix) != (last_parts[1], last_parts[3]):
        raise ValueError(
            f"range {written}: both ends must be the same kind of code, but {first} is "
            f"{_describe(first)} and {last} is {_describe(last)}; split it into one range per kind"
        )
    high_digits = last_parts[2]
    if int(low_digits) > int(high_digits):
        raise ValueError(f"range {written}: {first} comes after {last}; write it as {hi}-{lo}")
    # One %-format mapped over the range: a comprehension of f-strings with a nested
    # width took ~8x as long (00100-99607: ~0.13 s of every start; issue 14, cold check).
    # The letters of a code are never `%`.
    pattern = f"{prefix}%0{len(low_digits)}d{suffix}"
    return list(map(pattern.__mod__, range(int(low_digits), int(high_digits) + 1)))


def _describe(code: str) -> str:
    """A code's kind for messages: "a CPT Category II code (9999F)", "a HCPCS J code"."""
    if is_hcpcs_level2(code):
        return f"a HCPCS {code[0]} code"
    kinds = {"F": "a CPT Category II code", "T": "a CPT Category III code", "U": "a CPT PLA code"}
    return f"{kinds.get(code[-1], 'a CPT code')} ({re.sub(r'[0-9]', '9', code)})"
