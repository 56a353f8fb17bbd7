"""Policy functions that read the MPFS fee schedule (a `cms-mpfs` table of the pack),
and the CMS Order and Referring file (`cms-order-referring`, `orderer_part_b_status`).

    let allowed = fee_schedule_amount(mpfs)
    when global_days(mpfs) == "090" and ...

Each reads the line's code (with its modifier 26, TC or 53 when billed; those have rows
of their own in the PPRRVU file) in the version in force on the line's date of service,
and answers None when no imported version covers the code: a rule must then fall back
(to the integrator's expected amount, or to charges with a review). The medicare pack
declares the table over a placeholder that holds no rows (`tables/mpfs-not-shipped.csv`):
the fee schedule comes only from `cleanclaim data import mpfs`.
"""

from __future__ import annotations

from typing import Any, Final

from cleanclaim.dsl import types as T
from cleanclaim.engine.model import Claim, ServiceLine
from cleanclaim.engine.refdata.allowed import ALLOWED_FUNCTIONS

# Places of service paid at the facility rate (MCPM 100-04 ch.12 section 20.4.2: the
# facility setting is a hospital, SNF, ASC and the like; every other place, the office
# first, is paid at the non-facility rate).
FACILITY_POS: Final = frozenset(
    {"19", "21", "22", "23", "24", "26", "31", "34", "41", "42", "51", "52", "53", "56", "61"}
)
_OWN_ROW_MODIFIERS: Final = ("26", "TC", "53")


def _row(line: ServiceLine | None, table: Any) -> dict[str, Any] | None:
    if line is None or line.code is None or table is None:
        return None
    modifier = next((m for m in line.modifiers if m in _OWN_ROW_MODIFIERS), None)
    row: dict[str, Any] | None = table.row(line.code, line.service_date, modifier)
    return row


def fee_schedule_amount(claim: Claim, line: ServiceLine | None, table: Any) -> float | None:
    """The line's national MPFS amount: the facility amount in a facility place of
    service, else the non-facility amount, times the line's units; None when the code is
    not in the schedule for the date, or the amount does not apply in that setting."""
    row = _row(line, table)
    if row is None or line is None:
        return None
    amount = row["fac_amount"] if claim.place_of_service in FACILITY_POS else row["nonfac_amount"]
    if amount is None:
        return None
    units = 1.0 if line.units is None else float(line.units)
    return round(float(amount) * units, 2)


def _indicator(column: str) -> Any:
    def read(claim: Claim, line: ServiceLine | None, table: Any) -> str | None:
        row = _row(line, table)
        return None if row is None else str(row[column])

    read.__name__ = column
    return read


_INDICATORS: Final = (
    (
        "global_days",
        "global_days",
        "the MPFS global surgery days of the line's code (000, 010, 090, XXX, YYY, ZZZ, MMM)",
    ),
    ("pctc_indicator", "pctc", "the MPFS PC/TC indicator of the line's code (0-9)"),
    (
        "multiple_procedure_indicator",
        "mult_proc",
        "the MPFS multiple-procedure indicator of the line's code (0-9)",
    ),
    ("bilateral_indicator", "bilat", "the MPFS bilateral-surgery indicator (0-3, 9)"),
    (
        "assistant_surgeon_indicator",
        "asst_surg",
        "the MPFS assistant-at-surgery indicator (0, 1, 2, 9)",
    ),
    ("co_surgeon_indicator", "co_surg", "the MPFS co-surgeons indicator (0, 1, 2, 9)"),
)

_LINE = frozenset({"line"})


def orderer_part_b_status(claim: Claim, line: ServiceLine | None, table: Any) -> str | None:
    """Whether the claim's ordering/referring practitioner may order or refer Part B
    services, per the CMS Order and Referring file (engine/refdata/ordering.py):
    "eligible", "not_part_b" or "not_on_file"; None when not judged (the claim names no
    ordering/referring NPI that passes the check digit - the NPI rule's finding - or the
    table is the pack's sample and does not list it). The ordering provider is read when
    the claim names one with a valid NPI, else the referring provider."""
    if table is None:
        return None
    from cleanclaim.dsl.codesets.npi import is_valid_npi

    for provider in (claim.ordering_provider, claim.referring_provider):
        npi = provider.npi if provider is not None else None
        if npi is not None and is_valid_npi(npi):
            status: str | None = table.part_b_status(npi)
            return status
    return None


FEE_SCHEDULE_FUNCTIONS: Final[tuple[T.FunctionSpec, ...]] = (
    T.FunctionSpec(
        "fee_schedule_amount",
        (T.table("cms-mpfs"),),
        T.NUMBER.maybe(),
        fee_schedule_amount,
        "the line's national MPFS amount for its setting "
        "and units on its date of service (None: not in the imported schedule)",
        contextual=True,
        scopes=_LINE,
    ),
    *(
        T.FunctionSpec(
            name,
            (T.table("cms-mpfs"),),
            T.STR.maybe(),
            _indicator(column),
            doc,
            contextual=True,
            scopes=_LINE,
        )
        for name, column, doc in _INDICATORS
    ),
    T.FunctionSpec(
        "orderer_part_b_status",
        (T.table("cms-order-referring"),),
        T.STR.maybe(),
        orderer_part_b_status,
        "whether the claim's ordering/referring NPI may "
        "order Part B services per the CMS Order and Referring file: eligible, "
        "not_part_b, not_on_file (None: not judged)",
        contextual=True,
        scopes=frozenset({"line", "claim"}),
    ),
    *ALLOWED_FUNCTIONS,  # the KX threshold's allowed amounts (engine/refdata/allowed.py)
)
