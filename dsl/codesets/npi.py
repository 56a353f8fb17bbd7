"""National Provider Identifier check digit, per the CMS NPI standard.

An NPI is ten digits whose last digit is the Luhn check digit of the first nine prefixed
with ``80840`` (the ISO 7812 card-issuer prefix for US health). Adding that prefix to the
Luhn sum always adds 24, so the check runs on the nine digits alone.
"""

from __future__ import annotations

import re

__all__ = ["is_valid_npi", "npi_check_digit"]

_NPI = re.compile(r"[0-9]{10}", re.ASCII)
_PREFIX_80840_LUHN_SUM = 24


def npi_check_digit(first_nine: str) -> int:
    """The check digit that completes the nine-digit NPI body ``first_nine``."""
    if len(first_nine) != 9 or not first_nine.isascii() or not first_nine.isdigit():
        raise ValueError(f"an NPI body is nine digits, got {first_nine!r}")
    total = _PREFIX_80840_LUHN_SUM
    # Luhn doubles every second digit counting leftwards from the check digit: here the
    # 1st, 3rd, 5th, 7th and 9th digits of the body.
    for position, character in enumerate(first_nine):
        digit = int(character)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def is_valid_npi(npi: str) -> bool:
    """Whether ``npi`` is ten digits with a correct check digit ("1234567893" is valid)."""
    if _NPI.fullmatch(npi) is None:
        return False
    return npi_check_digit(npi[:9]) == int(npi[9])
