"""The allowed amount of a service line, and what the Medicare KX threshold accrues.

The therapy threshold (SSA section 1833(g), as amended by the Bipartisan Budget Act of
2018 section 50202; MCPM 100-04 ch.5 section 10.3) is reached by the beneficiary's
*incurred expenses*: the amounts Medicare allows for the therapy services of the year
(deductible and coinsurance included), from every provider. Billed charges are not that
amount: a practice that charges $130 a unit of 97110 is allowed about a quarter of it.

The allowed amount of a line, best first (`medicare/therapy-threshold.policy` writes it
with `first_present`):

1. ``expected_allowed`` on the line: what the integrator's contract or fee engine says the
   payer allows for the whole line (its units included). Claim history records it, so
   the lines of earlier claims keep it.
2. The imported Medicare fee schedule (`cleanclaim data import mpfs`, the PPRRVU file):
   the code's national non-facility amount (total RVUs times the conversion factor)
   times the line's units, read as of the line's date of service. It is an estimate: the
   MAC's amount adds the locality adjustment (GPCI) and the multiple-procedure reduction
   of "always therapy" services (50 % of the practice expense of every unit after the
   first of the day), so rules on it give a review, not a denial.
3. The billed charge: the last resort, said as such (a review whose message says the
   basis is charges).

Other providers' amounts come from the member's ``therapy_ytd`` (the amount applied
toward each threshold as of a date, as the MAC's eligibility answer shows it), sent on
the claim or imported with the eligibility roster (`cleanclaim members import`):
`kx_applied_to_date("pt_slp")` reads it for the line's calendar year.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Final

from cleanclaim.dsl import types as T
from cleanclaim.engine.model import Claim, ServiceLine, TherapyYearToDate

# The thresholds `therapy_ytd` reports amounts for: PT and speech-language pathology
# combined, occupational therapy separately (SSA 1833(g)(1) and (g)(3)).
THRESHOLDS: Final = ("pt_slp", "ot")


def amount_times_units(amount: Any, units: Any) -> Any:
    """A one-unit amount (a fee schedule amount) times the line's units; missing units
    count as one, a missing amount stays missing."""
    if amount is None:
        return None
    count = Decimal(1) if units is None else Decimal(str(units))
    return (Decimal(str(amount)) * count).quantize(Decimal("0.01"))


def allowed_amount(line: Any, table: Any) -> Any:
    """`allowed_amount(line, mpfs)`: the line's allowed amount, best basis first (see the
    module); `line` is a line of the claim or of claim history (both have the fields)."""
    if line is None:
        return None
    expected = getattr(line, "expected_allowed", None)
    if expected is not None:
        return expected
    row = None if table is None or not line.code else table.row(line.code, line.service_date)
    estimate = amount_times_units(None if row is None else row["nonfac_amount"], line.units)
    return line.charge if estimate is None else estimate


def kx_since(line: Any, member: Any, table: Any) -> Any:
    """`kx_since(line, member, mpfs)`: the line's allowed amount when the line is dated
    after the member's `therapy_ytd` as-of date (so not in the applied amount), else 0;
    without a year to date, every line's amount."""
    ytd = getattr(member, "therapy_ytd", None)
    if line is not None and ytd is not None and line.service_date <= ytd.as_of:
        return Decimal(0)
    return allowed_amount(line, table)


def applied_to_date(ytd: TherapyYearToDate | None, threshold: str, day: dt.date) -> Decimal | None:
    """The amount applied toward `threshold` (pt_slp, ot) in the calendar year of `day`
    as `ytd` reports it; None when nothing is reported for that year (an as-of date in
    another year)."""
    if ytd is None or ytd.as_of.year != day.year:
        return None
    amount: Decimal | None = ytd.pt_slp if threshold == "pt_slp" else ytd.ot
    return amount


def kx_applied_to_date(claim: Claim, line: ServiceLine | None, threshold: Any) -> Any:
    """`kx_applied_to_date("pt_slp")`: the member's amount applied toward the threshold in
    the line's calendar year, as of `member.therapy_ytd.as_of`; 0 when none is known (the
    rule then counts this practice's lines alone)."""
    if line is None or threshold not in THRESHOLDS:
        return None
    found = applied_to_date(claim.member.therapy_ytd, str(threshold), line.service_date)
    return Decimal(0) if found is None else found


def kx_applied_as_of(claim: Claim, line: ServiceLine | None) -> Any:
    """The as-of date of the member's `therapy_ytd` when it reports the line's calendar
    year, else missing."""
    ytd = claim.member.therapy_ytd
    if line is None or ytd is None or ytd.as_of.year != line.service_date.year:
        return None
    return ytd.as_of


_LINE: Final = frozenset({"line"})

ALLOWED_FUNCTIONS: Final[tuple[T.FunctionSpec, ...]] = (
    T.FunctionSpec(
        "amount_times_units",
        (T.NUMBER, T.NUMBER),
        T.NUMBER.maybe(),
        amount_times_units,
        "a one-unit amount (e.g. mpfs[line.code].nonfac_amount) times the units (missing units: 1)",
        constant=True,
    ),
    T.FunctionSpec(
        "allowed_amount",
        (T.Type("Line"), T.table("cms-mpfs")),
        T.NUMBER.maybe(),
        allowed_amount,
        "the line's allowed amount: its "
        "expected_allowed, else the fee schedule's national non-facility amount "
        "times the units on its date of service, else the charge; also in "
        "counters",
    ),
    T.FunctionSpec(
        "kx_since",
        (T.Type("Line"), T.Type("Member"), T.table("cms-mpfs")),
        T.NUMBER.maybe(),
        kx_since,
        "allowed_amount of a line dated after "
        "member.therapy_ytd_as_of (not yet in the applied amount), else 0; "
        "without a year to date, allowed_amount; also in counters",
    ),
    T.FunctionSpec(
        "kx_applied_to_date",
        (T.STR,),
        T.NUMBER,
        kx_applied_to_date,
        "line rules only: the member's amount applied toward the KX threshold "
        '("pt_slp" or "ot") in the line\'s calendar year as of '
        "member.therapy_ytd.as_of; 0 when none is reported for that year",
        contextual=True,
        scopes=_LINE,
    ),
    T.FunctionSpec(
        "kx_applied_as_of",
        (),
        T.DATE.maybe(),
        kx_applied_as_of,
        "line rules only: the as-of date of member.therapy_ytd when it reports "
        "the line's calendar year, else missing",
        contextual=True,
        scopes=_LINE,
    ),
)
