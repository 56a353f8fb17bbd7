"""Functions the policy language can call that read the claim or reference data.

The language's pure built-ins (date arithmetic, `count`) live in `dsl/types.py`; these
need the claim being checked (contextual functions get `claim, line` first) or the
engine's reference data (ICD-10-CM, NPI check digits, NCCI tables).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cleanclaim.dsl import types as T
from cleanclaim.dsl.codesets import icd10cm, icd10cm_notes, npi, procedure
from cleanclaim.dsl.history import covering_authorization
from cleanclaim.engine.model import Claim, ServiceLine
from cleanclaim.engine.ncci import MueTable, PtpTable

# Claims repeat the same codes and NPIs endlessly: remember each answer, within a budget
# of bytes per memo (a server lives long, and a client chooses the texts): the memo is
# emptied when its keys would pass CACHE_BYTES, and a text longer than LONGEST_KEY (no
# code or NPI is) is answered without being remembered.
CACHE_BYTES = 16 * 1024 * 1024
LONGEST_KEY = 64
_ENTRY_BYTES = 120  # a dict slot, the key's str header and the answer, roughly
_billable: dict[str, bool] = {}
_procedure: dict[str, bool] = {}
_npi: dict[str, bool] = {}
_digits: dict[tuple[Any, Any], bool] = {}
_held: dict[int, int] = {}  # id(memo) -> bytes its keys take


def _remember(cache: dict[Any, bool], key: Any, text: str, value: bool) -> bool:
    if len(text) > LONGEST_KEY:
        return value
    size = _held.get(id(cache), 0) + len(text) + _ENTRY_BYTES
    if size > CACHE_BYTES:
        cache.clear()
        size = len(text) + _ENTRY_BYTES
    _held[id(cache)] = size
    cache[key] = value
    return value


def cache_bytes() -> int:
    """Bytes the answer memos hold, as budgeted (tests/test_server_http.py)."""
    return sum(_held.values())


def billable_icd10(code: str | None) -> bool:
    if code is None:
        return False
    known = _billable.get(code)
    if known is None:
        return _remember(_billable, code, code, icd10cm.is_billable(code))
    return known


def _diagnosis_dates(claim: Claim, code: str) -> list[dt.date]:
    """The dates of service a diagnosis is judged on: those of the lines that point to it,
    else (pointed to by none) every line's."""
    dates = [ln.service_date for ln in claim.lines if code in ln.pointed_diagnoses]
    return dates or [ln.service_date for ln in claim.lines] or [claim.first_service_date]


def _first_date_judged(claim: Claim, code: str | None, verdict: str) -> dt.date | None:
    if code is None:
        return None if verdict == icd10cm.UNVERIFIED else claim.first_service_date
    if icd10cm.billable_in_every_release(code):  # nearly every code: no date matters
        return None
    for day in sorted(set(_diagnosis_dates(claim, code))):
        if icd10cm.verdict_on(code, day) == verdict:
            return day
    return None


def icd10_invalid_on(claim: Claim, line: ServiceLine | None, code: str | None) -> dt.date | None:
    """The first date of service on which the release in force does not bill `code`."""
    return _first_date_judged(claim, code, icd10cm.NOT_BILLABLE)


def icd10_unverified_on(claim: Claim, line: ServiceLine | None, code: str | None) -> dt.date | None:
    """The first date of service no shipped release can settle `code` for."""
    return _first_date_judged(claim, code, icd10cm.UNVERIFIED)


def icd10_manifestation(code: str | None) -> bool:
    """True for a manifestation code ("in diseases classified elsewhere")."""
    return code is not None and icd10cm_notes.is_manifestation(code)


def icd10_excludes1_on_claim(
    claim: Claim, line: ServiceLine | None, code: str | None
) -> str | None:
    """The first diagnosis listed after `code` on the claim that an Excludes1 note keeps
    apart from it (a note of either code): each pair is reported once, on the first."""
    if code is None or code not in claim.diagnoses:
        return None
    for other in claim.diagnoses[claim.diagnoses.index(code) + 1 :]:
        if other != code and (
            icd10cm_notes.excluded_pair(code, other) or icd10cm_notes.excluded_pair(other, code)
        ):
            return other
    return None


def icd10_release(day: dt.date | None) -> str:
    return icd10cm.release_label(day)


def procedure_code(code: str | None) -> bool:
    if code is None:
        return False
    known = _procedure.get(code)
    if known is None:
        return _remember(_procedure, code, code, procedure.is_procedure_code(code))
    return known


def valid_npi(value: str | None) -> bool:
    if value is None:
        return False
    known = _npi.get(value)
    if known is None:
        return _remember(_npi, value, value, npi.is_valid_npi(value))
    return known


def valid_clia(value: str | None) -> bool:
    """True when `value` is shaped like a CLIA certificate number: 10 characters, digits
    with the letter D in the third position (Noridian JF "CLIA Certification Number -
    Missing/Invalid": "CLIA numbers are 10 digits with letter D in third position")."""
    return (
        value is not None
        and len(value) == 10
        and value.isascii()
        and value[:2].isdigit()
        and value[2] == "D"
        and value[3:].isdigit()
    )


def digits(value: str | None, n: Any) -> bool:
    """True when `value` is exactly `n` ASCII digits (remembered, as the others)."""
    answer = (
        value is not None
        and n is not None
        and len(value) == n
        and value.isdigit()
        and value.isascii()
    )
    return _remember(_digits, (value, n), value or "", answer)


def coverage_count(claim: Claim, line: ServiceLine | None) -> int:
    """Coverage spans the member has with the claim's payer."""
    return len(claim.payer_coverage)


def covered_on(claim: Claim, line: ServiceLine | None, day: dt.date | None) -> bool:
    """True when a coverage span with the claim's payer contains `day`."""
    if day is None:
        return False
    for s in claim.payer_coverage:
        if (s.start is None or s.start <= day) and (s.end is None or day <= s.end):
            return True
    return False


def coverage_start(claim: Claim, line: ServiceLine | None) -> dt.date | None:
    """The earliest start of the member's coverage with the claim's payer."""
    return claim.coverage_start


def ptp_conflict(claim: Claim, line: ServiceLine | None, table: PtpTable) -> str | None:
    """The column-1 code that an NCCI PTP edit bundles this line into, if any."""
    if line is None or line.code is None or len(claim.lines) < 2:
        return None
    column1s: Any = table.column2.get(line.code)
    if column1s is None:
        return None
    day = line.service_date
    for other in claim.lines:  # most lines meet none of their column-1 codes that day
        if other.service_date == day and other.code in column1s and other is not line:
            break
    else:
        return None
    others = [
        (o.code, o.modifiers, o.service_date)
        for o in claim.lines
        if o is not line and o.code is not None
    ]
    hit = table.column1_conflict(line.code, line.modifiers, line.service_date, others)
    return hit.column1 if hit is not None else None


def mue_units(claim: Claim, line: ServiceLine | None, table: MueTable) -> float | None:
    """Units the MUE counts for this line: the line's own (indicator 1), or the code's
    units summed over the claim's lines on the same date (indicators 2 and 3)."""
    if line is None or line.code is None:
        return None
    edit = table.get(line.code)
    if edit is None:
        return None
    if edit.indicator == 1:
        return line.units
    if len(claim.lines) == 1:
        return line.units or 0
    units: float = 0
    for other in claim.lines:
        if other.code == line.code and other.service_date == line.service_date:
            units += other.units or 0
    return units


def mue_limit(claim: Claim, line: ServiceLine | None, table: MueTable) -> int | None:
    """The MUE value of this line's code, or None when the code has no MUE."""
    if line is None or line.code is None:
        return None
    edit = table.get(line.code)
    return edit.value if edit is not None else None


def mue_indicator(claim: Claim, line: ServiceLine | None, table: MueTable) -> int | None:
    """The MUE adjudication indicator of this line's code: 1 line edit, 2 date-of-service
    edit (policy, absolute), 3 date-of-service edit (clinical, appealable with records)."""
    if line is None or line.code is None:
        return None
    return table.indicators.get(line.code)


def ptp_pair(claim: Claim, line: ServiceLine | None, table: PtpTable) -> bool:
    """True when the PTP table has an edit in force on this line's date of service whose
    column 2 is this line's code and whose column 1 is billed on another line of the claim
    that date, whatever the modifiers and the edit's indicator. A pack's own pair rule
    (CPT or manual based) stands down then: `medicare/ncci/ptp` reports the pair once, as
    the table says (issue 11 section 3; INTERFACES.md "pair rules and the PTP table")."""
    if line is None or line.code is None or line.code not in table.column2:
        return False
    for other in claim.lines:
        if (
            other is not line
            and other.code is not None
            and other.service_date == line.service_date
            and table.edit_in_force(other.code, line.code, line.service_date) is not None
        ):
            return True
    return False


# CMS A/B MAC jurisdictions (Part B) by state or territory of service: the contractor whose
# LCDs and articles apply. Source: CMS "Who are the MACs" / A/B MAC jurisdiction map
# (cms.gov, Medicare Administrative Contractors), as in force since the JJ/JM/JN and
# J5/J8 consolidations; the J6 and JK states are NGS's, as issue 11 names them. Checked
# (issue 11): J6 = IL, MN, WI, NGS (CMS "Jurisdiction 6 Fact Sheet"); J5 = IA, KS, MO, NE,
# WPS (Iowa Medical Society, J5 MAC page); JE/JF/JH/JK/JL/JJ/JM/JN as the consolidated
# former jurisdictions 1, 2+3, 4+7, 13+14, 12, 10, 11, 9 (CMS consolidation notice as
# reprinted publicly); Virginia's Arlington and Fairfax counties and Alexandria are JL.
AB_MAC_JURISDICTIONS: dict[str, tuple[str, ...]] = {
    "J5": ("IA", "KS", "MO", "NE"),  # WPS
    "J6": ("IL", "MN", "WI"),  # NGS
    "J8": ("IN", "MI"),  # WPS
    "J15": ("KY", "OH"),  # CGS
    "JE": ("CA", "HI", "NV", "AS", "GU", "MP"),  # Noridian
    "JF": ("AK", "AZ", "ID", "MT", "ND", "OR", "SD", "UT", "WA", "WY"),  # Noridian
    "JH": ("AR", "CO", "LA", "MS", "NM", "OK", "TX"),  # Novitas
    "JJ": ("AL", "GA", "TN"),  # Palmetto GBA
    "JK": ("CT", "ME", "MA", "NH", "NY", "RI", "VT"),  # NGS
    "JL": ("DE", "DC", "MD", "NJ", "PA"),  # Novitas
    "JM": ("NC", "SC", "VA", "WV"),  # Palmetto GBA
    "JN": ("FL", "PR", "VI"),  # First Coast
}
_JURISDICTION_OF_STATE = {
    state: jurisdiction for jurisdiction, states in AB_MAC_JURISDICTIONS.items() for state in states
}


def service_state(claim: Claim) -> str | None:
    """The two-letter state where the service was rendered (`claim.service_state`, read
    by the claim readers; INTERFACES.md), upper-cased, or None."""
    state = getattr(claim, "service_state", None)
    if not isinstance(state, str) or not state.strip():
        return None
    return state.strip().upper()


def mac_jurisdiction(claim: Claim, line: ServiceLine | None) -> str | None:
    """The A/B MAC jurisdiction (J6, JK, ...) of the claim's state of service; None when
    the claim names no state, or one that no jurisdiction lists."""
    state = service_state(claim)
    return None if state is None else _JURISDICTION_OF_STATE.get(state)


# US federal holidays (observed dates included), by year, read once per year from the
# maintained `holidays` library and kept as plain dates.
_federal_holidays: dict[int, frozenset[dt.date]] = {}
_business_days: dict[dt.date, dt.date] = {}


def _is_federal_holiday(day: dt.date) -> bool:
    dates = _federal_holidays.get(day.year)
    if dates is None:
        # The years around the first date asked for, in one go: a run's dates of service
        # cluster, and the library's cost is in building a calendar, not in its years.
        first, last = (
            (day.year - 6, day.year + 6) if not _federal_holidays else (day.year, day.year)
        )
        _federal_holidays.update(_federal_calendar(first, last))
        dates = _federal_holidays[day.year]
    return day in dates


def _holidays_version() -> str:
    """The installed `holidays` release, read without importing it (its import loads
    every country's calendar: ~0.15 s, a third of a cold `check`)."""
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("holidays")
        origin = spec.origin if spec is not None else None
        return (
            (Path(origin).parent / "version.py").read_text(encoding="utf-8")
            if origin
            else "no holidays"
        )
    except (ImportError, OSError, ValueError):
        return "no holidays"


def _federal_calendar(first: int, last: int) -> dict[int, frozenset[dt.date]]:
    """US federal holidays (observed dates included) of the years `first`..`last`, from
    the `holidays` library; kept in the on-disk cache (dsl/cache.py) under the library's
    release, so that a cold run does not import the library."""
    from cleanclaim.dsl.cache import PickleCache

    cache = PickleCache("holidays", sources=(), salt=_holidays_version, allowed={})
    entry = cache.entry("US federal", str(first), str(last))
    if entry is not None:
        kept = cache.load(entry)
        if isinstance(kept, dict) and set(kept) == set(range(first, last + 1)):
            return kept
    import holidays

    years = range(first, last + 1)
    calendar = holidays.country_holidays("US", years=years)
    found = {year: frozenset(d for d in calendar if d.year == year) for year in years}
    if entry is not None:
        cache.store(entry, found)
    return found


def business_day_on_or_after(day: dt.date | None) -> dt.date | None:
    """`day`, or when it is a Saturday, Sunday or US federal holiday the next day that is
    none of them (MCPM 100-04 ch.1 section 70.7: a filing deadline on such a day moves to
    the next business day). Holidays come from the maintained `holidays` library (US
    federal calendar, observed dates included)."""
    if day is None:
        return None
    answer = day
    while answer.weekday() >= 5 or _is_federal_holiday(answer):
        answer += dt.timedelta(days=1)
    if len(_business_days) * _ENTRY_BYTES >= CACHE_BYTES:
        _business_days.clear()
    _business_days[day] = answer
    return answer


def _covering_authorization(claim: Claim, line: ServiceLine) -> Any:
    # the one rule of matching (dsl/history.py): code, dates, and the rendering provider
    # when the authorization names one (13.11); `per authorization` counters use it too
    return covering_authorization(claim, line)


def authorized(claim: Claim, line: ServiceLine | None) -> bool:
    """True when an authorization on the claim lists this line's code and covers its
    date of service."""
    return line is not None and _covering_authorization(claim, line) is not None


def authorized_units(claim: Claim, line: ServiceLine | None) -> float | None:
    """Units of the authorization that lists this line's code and covers its date."""
    if line is None:
        return None
    auth = _covering_authorization(claim, line)
    return auth.units if auth is not None else None


def authorized_units_used(claim: Claim, line: ServiceLine | None) -> float | None:
    """Units of this code billed under the same authorization, up to and including this
    line (claim line order): the line that goes past the authorized units is the one
    that exceeds it."""
    if line is None:
        return None
    auth = _covering_authorization(claim, line)
    if auth is None:
        return None
    used: float = 0
    for other in claim.lines:
        if other.code == line.code and auth.covers(other.service_date):
            used += other.units or 0
        if other is line:
            break
    return used


LINE = frozenset({"line"})
ANYWHERE = frozenset({"line", "claim", "diagnosis"})

# Inline forms (see `FunctionSpec.inline`): answers already remembered are read from
# the memo without a call; the NCCI functions answer "no edit" without a call for the
# codes their table does not list (most lines).
_MEMO = "({memo}.get({0}) or {call})"

ENGINE_FUNCTIONS: tuple[T.FunctionSpec, ...] = (
    T.FunctionSpec(
        "billable_icd10",
        (T.ICD10,),
        T.BOOL,
        billable_icd10,
        "true when the code is a valid, billable ICD-10-CM code",
        inline=_MEMO,
        consts={"memo": _billable},
        constant=True,
    ),
    T.FunctionSpec(
        "icd10_invalid_on",
        (T.ICD10,),
        T.DATE.maybe(),
        icd10_invalid_on,
        "the first date of service (of the lines pointing to the diagnosis) on "
        "which the ICD-10-CM release in force does not bill the code",
        contextual=True,
    ),
    T.FunctionSpec(
        "icd10_unverified_on",
        (T.ICD10,),
        T.DATE.maybe(),
        icd10_unverified_on,
        "the first date of service no shipped ICD-10-CM release can settle the "
        "code for (before the oldest, after the newest)",
        contextual=True,
    ),
    T.FunctionSpec(
        "icd10_manifestation",
        (T.ICD10,),
        T.BOOL,
        icd10_manifestation,
        "true for a manifestation code (its title or its category's says \"in "
        'diseases classified elsewhere"): never first-listed',
        constant=True,
    ),
    T.FunctionSpec(
        "icd10_excludes1_on_claim",
        (T.ICD10,),
        T.ICD10.maybe(),
        icd10_excludes1_on_claim,
        "the first diagnosis listed after the code that an Excludes1 note (of "
        "either code, or of its category, block or chapter) keeps apart from it",
        contextual=True,
    ),
    T.FunctionSpec(
        "icd10_release",
        (T.DATE.maybe(),),
        T.STR,
        icd10_release,
        "the ICD-10-CM release in force on a date, as a message names it",
        constant=True,
    ),
    T.FunctionSpec(
        "procedure_code",
        (T.CODE,),
        T.BOOL,
        procedure_code,
        "true when the code is shaped like a CPT or HCPCS Level II code",
        inline=_MEMO,
        consts={"memo": _procedure},
        constant=True,
    ),
    T.FunctionSpec(
        "valid_npi",
        (T.STR,),
        T.BOOL,
        valid_npi,
        "true when the NPI has 10 digits and a valid check digit",
        inline=_MEMO,
        consts={"memo": _npi},
        constant=True,
    ),
    T.FunctionSpec(
        "valid_clia",
        (T.STR,),
        T.BOOL,
        valid_clia,
        "true when the text is shaped like a CLIA number (10 characters: 2 digits, D, 7 digits)",
        constant=True,
    ),
    T.FunctionSpec(
        "digits",
        (T.STR, T.NUMBER),
        T.BOOL,
        digits,
        "true when the text is exactly N digits",
        inline="({memo}.get(({0}, {1})) or {call})",
        consts={"memo": _digits},
        constant=True,
    ),
    T.FunctionSpec(
        "coverage_count",
        (),
        T.NUMBER,
        coverage_count,
        "coverage spans the member has with the claim's payer",
        contextual=True,
        inline="len({claim}.payer_coverage)",
        line_free=True,
    ),
    T.FunctionSpec(
        "covered_on",
        (T.DATE,),
        T.BOOL,
        covered_on,
        "true when coverage with the claim's payer includes the date",
        contextual=True,
        line_free=True,
    ),
    T.FunctionSpec(
        "coverage_start",
        (),
        T.DATE.maybe(),
        coverage_start,
        "first day of the member's coverage with the claim's payer",
        contextual=True,
        inline="{claim}.coverage_start",
        line_free=True,
    ),
    T.FunctionSpec(
        "ptp_conflict",
        (T.table("ncci-ptp"),),
        T.CODE.maybe(),
        ptp_conflict,
        "the column-1 code an NCCI PTP edit bundles this line into",
        contextual=True,
        scopes=LINE,
        inline="({call} if {line}.code in {0}.column2 and len({claim}.lines) > 1 else None)",
    ),
    T.FunctionSpec(
        "mue_units",
        (T.table("ncci-mue"),),
        T.NUMBER.maybe(),
        mue_units,
        "units the MUE counts for this line (line, or code and date)",
        contextual=True,
        scopes=LINE,
        inline="(None if {line}.code not in {0}.values else {line}.units "
        "if {line}.code in {0}.per_line else ({line}.units or 0) "
        "if len({claim}.lines) == 1 else {call})",
    ),
    T.FunctionSpec(
        "mue_limit",
        (T.table("ncci-mue"),),
        T.NUMBER.maybe(),
        mue_limit,
        "the MUE value of this line's code",
        contextual=True,
        scopes=LINE,
        inline="{0}.values.get({line}.code)",
    ),
    T.FunctionSpec(
        "mue_indicator",
        (T.table("ncci-mue"),),
        T.NUMBER.maybe(),
        mue_indicator,
        "the MUE adjudication indicator (1, 2, 3) of this line's code",
        contextual=True,
        scopes=LINE,
        inline="{0}.indicators.get({line}.code)",
    ),
    T.FunctionSpec(
        "ptp_pair",
        (T.table("ncci-ptp"),),
        T.BOOL,
        ptp_pair,
        "true when the PTP table carries an edit pairing this line (column 2) "
        "with another line's code that date (a pack's pair rule then stands down)",
        contextual=True,
        scopes=LINE,
        inline="({call} if {line}.code in {0}.column2 else False)",
    ),
    T.FunctionSpec(
        "mac_jurisdiction",
        (),
        T.STR.maybe(),
        mac_jurisdiction,
        "the A/B MAC jurisdiction (J6, JK, ...) of the claim's state of service",
        contextual=True,
        line_free=True,
    ),
    T.FunctionSpec(
        "business_day_on_or_after",
        (T.DATE,),
        T.DATE.maybe(),
        business_day_on_or_after,
        "the date, or the next day that is not a weekend day or US federal holiday",
        inline="({memo}.get({0}) or {call})",
        consts={"memo": _business_days},
        constant=True,
    ),
    T.FunctionSpec(
        "authorized_units",
        (),
        T.NUMBER.maybe(),
        authorized_units,
        "units of the authorization covering this line",
        contextual=True,
        scopes=LINE,
    ),
    T.FunctionSpec(
        "authorized_units_used",
        (),
        T.NUMBER.maybe(),
        authorized_units_used,
        "units of this code billed under its authorization through this line",
        contextual=True,
        scopes=LINE,
    ),
    T.FunctionSpec(
        "authorized",
        (),
        T.BOOL,
        authorized,
        "true when an authorization on the claim lists this line's code and "
        "covers its date of service",
        contextual=True,
        scopes=LINE,
    ),
)


def standard_functions() -> tuple[T.FunctionSpec, ...]:
    """Every function a pack may call without plugins: the language's built-ins, the
    engine's own and the claim-history functions. The engine, `lint`, `test` and the
    fuzzer all check packs against this one list."""
    from cleanclaim.engine.history import HISTORY_FUNCTIONS
    from cleanclaim.engine.refdata.functions import FEE_SCHEDULE_FUNCTIONS

    _is_federal_holiday(dt.date.today())  # the calendar, built before any claim

    return (*T.BUILTINS, *ENGINE_FUNCTIONS, *HISTORY_FUNCTIONS, *FEE_SCHEDULE_FUNCTIONS)
