"""X12 adjustment code lists: group codes, CARCs (claim adjustment reason codes) and RARCs
(remittance advice remark codes), with our own short labels, for checking the outcome of a
rule (`then deny CO-97 with M15`) and for showing what a code means.

Sources, and what is taken from them (codes, status and dates are facts; the wording of
every label below is ours, X12 owns the official descriptions):

- Which codes exist and whether each is current or deactivated: the X12 external code lists
  139 (CARC, https://x12.org/codes/claim-adjustment-reason-codes) and 411 (RARC,
  https://x12.org/codes/remittance-advice-remark-codes) as published on 2026-08-17
  (`LIST_DATE`; 407 CARCs, 1216 RARCs), read from a machine-ingested copy in a public
  repository.
- Stop dates: the Washington Publishing Company CARC page
  (http://www.wpc-edi.com/reference/codelists/healthcare/claim-adjustment-reason-codes/,
  as downloaded on 2016-03-07) for the codes deactivated by then. A code deactivated later
  has no known stop date here; it counts as stopped by `LIST_DATE`.
- Which group a CARC may go with: the "(Use only with Group Code ...)" notes of the X12
  CARC list (`ONLY_WITH_GROUP`); the group codes' meaning: the WPC group code explanation
  (CO contractual, CR corrections and reversals of a prior claim, OA other, PI payer
  initiated, PR patient responsibility).
- Which CARCs need at least one remark code: the "At least one Remark Code must be provided"
  notes of the X12 list (`NEEDS_REMARK`).

Refresh: X12 updates CARCs about three times a year and RARCs more often; update the
ranges, the deactivated sets and `LIST_DATE` together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GROUPS",
    "LIST_DATE",
    "NEEDS_REMARK",
    "ONLY_WITH_GROUP",
    "AdjustmentCode",
    "OutcomeProblem",
    "carc",
    "check_outcome",
    "group_label",
    "known_carcs",
    "known_rarcs",
    "rarc",
]

LIST_DATE = dt.date(2026, 8, 17)

CodeKind = Literal["carc", "rarc"]

GROUPS: dict[str, str] = {
    "CO": "contractual obligation (provider writes it off)",
    "CR": "correction or reversal of a prior claim",
    "OA": "other adjustment",
    "PI": "payer-initiated reduction",
    "PR": "patient responsibility",
}


def _numbered(
    prefix: str, first: int, last: int, *, missing: Iterable[int] = (), width: int = 0
) -> set[str]:
    gaps = set(missing)
    return {f"{prefix}{n:0{width}d}" for n in range(first, last + 1) if n not in gaps}


def _split(text: str) -> set[str]:
    return set(text.split())


# ---- CARC (X12 list 139, status as of LIST_DATE) -----------------------------------------

_CARCS: frozenset[str] = frozenset(
    _numbered("", 1, 308)
    | _numbered("A", 0, 8)
    | _numbered("B", 1, 23)
    | _numbered("D", 1, 23)
    | _numbered("P", 1, 32)
    | _numbered("W", 1, 9)
    | _numbered("Y", 1, 3)
)

_CARC_DEACTIVATED: frozenset[str] = frozenset(
    _split("""
    15 17 25 28 30 36 37 38 41 42 43 46 47 48 52 57 62 63 64 65 67 68 71 72 73 77 79 80
    81 82 83 84 86 87 88 92 93 98 99 113 120 123 124 125 126 127 138 141 145 156 162 165
    168 191 196 214 217 218 220 221 230 244 255
    A2 A3 A4 A7 B2 B3 B5 B6 B17 B18 B19 B21
""")
    | _numbered("D", 1, 23)
    | _numbered("W", 1, 9)
    | _numbered("Y", 1, 3)
)

# Stop dates known from the WPC page of 2016-03-07 (first use no longer allowed after it).
_CARC_STOP: dict[str, dt.date] = {
    code: dt.date.fromisoformat(day)
    for code, day in {
        "17": "2009-07-01",
        "25": "2008-04-01",
        "28": "2003-10-16",
        "30": "2006-02-01",
        "36": "2003-10-16",
        "37": "2003-10-16",
        "38": "2013-01-01",
        "41": "2003-10-16",
        "42": "2007-06-01",
        "43": "2006-07-01",
        "46": "2003-10-16",
        "47": "2006-02-01",
        "48": "2003-10-16",
        "52": "2006-02-01",
    }.items()
}

# What the X12 list says to use instead of a deactivated code, where it says so.
_CARC_INSTEAD: dict[str, str] = {
    "28": "26 or 27",
    "38": "242 or 243",
    "42": "45",
    "46": "96",
    "48": "96",
    "156": "187",
}

# "(Use only with Group Code ...)" in the X12 CARC list.
ONLY_WITH_GROUP: dict[str, frozenset[str]] = {
    code: frozenset(groups.split())
    for code, groups in {
        "18": "OA",
        "23": "OA",
        "45": "CO PR",
        "85": "PR",
        "133": "OA",
        "136": "OA",
        "139": "CO",
        "201": "PR",
        "209": "OA",
        "229": "PR",
        "238": "PR",
        "249": "CO",
        "257": "OA",
        "271": "OA",
        "275": "PR",
        "277": "OA",
        "278": "CO PI",
        "281": "CO",
        "303": "CO",
        "P3": "PR",
        "P11": "OA",
        "P16": "CO OA",
        "P24": "CO",
        "P25": "CO",
        "P26": "CO",
    }.items()
}

# "At least one Remark Code must be provided" in the X12 CARC list.
NEEDS_REMARK: frozenset[str] = frozenset(
    _split("16 96 129 148 201 226 227 234 237 250 251 252 267 307 A1")
)

# ---- RARC (X12 list 411, status as of LIST_DATE) -----------------------------------------

_RARCS: frozenset[str] = frozenset(
    _numbered("M", 1, 144)
    | _numbered("MA", 1, 134, width=2)
    | _numbered("N", 1, 940, missing=(813, 814))
)

_RARC_DEACTIVATED: frozenset[str] = frozenset(
    _split("""
    M33 M34 M35 M43 M48 M57 M58 M63 M68 M72 M78 M88 M92 M98 M101 M106 M108 M110 M118 M120
    M128 M140
    MA03 MA05 MA06 MA11 MA29 MA38 MA49 MA51 MA52 MA78 MA82 MA85 MA86 MA87 MA95 MA98 MA101
    MA102 MA104 MA105 MA119 MA124 MA127 MA129
    N14 N17 N18 N29 N38 N41 N44 N60 N66 N73 N100 N101 N102 N145 N164 N165 N166 N168 N169
    N201 N225 N361 N365 N483 N484 N514 N515 N553 N627 N632 N735 N742 N793
""")
)

# ---- our own short labels ---------------------------------------------------------------

_CARC_LABELS: dict[str, str] = {
    "1": "deductible",
    "2": "coinsurance",
    "3": "copay",
    "4": "modifier does not fit the procedure, or one is missing",
    "5": "procedure does not fit the place of service",
    "6": "procedure does not fit the patient's age",
    "7": "procedure does not fit the patient's sex",
    "8": "procedure does not fit the provider's specialty",
    "9": "diagnosis does not fit the patient's age",
    "10": "diagnosis does not fit the patient's sex",
    "11": "diagnosis does not support the procedure",
    "13": "service dated after the date of death",
    "14": "service dated before birth",
    "15": "authorization number problem (retired code)",
    "16": "claim data missing or wrong; a remark code says what",
    "18": "exact duplicate",
    "19": "work injury: workers' compensation pays",
    "22": "another payer may be primary",
    "23": "effect of the prior payer's payment",
    "24": "covered under capitation",
    "26": "service before coverage began",
    "27": "service after coverage ended",
    "29": "filed too late",
    "31": "patient not found as a member",
    "32": "not an eligible dependent",
    "35": "lifetime maximum reached",
    "39": "authorization was denied",
    "40": "not emergent or urgent care",
    "45": "charge above the fee schedule",
    "49": "routine or screening service, not covered",
    "50": "not medically necessary for the payer",
    "51": "pre-existing condition",
    "54": "assistant or extra physician not covered",
    "55": "experimental or investigational",
    "56": "not proven effective",
    "58": "wrong place of service for the treatment",
    "59": "multiple or concurrent procedure reduction",
    "96": "not covered; a remark code says why",
    "97": "paid as part of another service",
    "107": "qualifying service missing from the claim",
    "109": "send the claim to another payer",
    "119": "benefit limit for the period reached",
    "146": "diagnosis not valid on the date of service",
    "149": "lifetime limit for the benefit reached",
    "150": "information does not support this level of service",
    "151": "information does not support this many services",
    "167": "diagnosis not covered",
    "170": "not paid for this provider type",
    "171": "not paid for this provider type in this type of facility",
    "181": "procedure code not valid on the date of service",
    "182": "modifier not valid on the date of service",
    "183": "ordering/referring provider not eligible to refer the service",
    "185": "rendering provider not eligible for the service",
    "189": "unlisted code billed where a specific code exists",
    "197": "authorization absent",
    "198": "authorization exceeded",
    "204": "not covered by the patient's current plan",
    "206": "NPI missing",
    "207": "NPI format invalid",
    "208": "NPI not matched",
    "226": "requested provider information not sent",
    "231": "mutually exclusive procedures",
    "234": "not paid separately; a remark code says why",
    "236": "NCCI or state pair edit: not with the other procedure",
    "242": "not by a network provider",
    "243": "not authorized by the network provider",
    "252": "an attachment is needed",
    "284": "authorization may be valid but not for these services",
    "288": "referral absent",
    "296": "authorization may be valid but not for this provider",
    "A1": "denied; a remark code says why",
    "B7": "provider not certified for the service on this date",
    "B12": "service not in the medical record",
    "B15": "needs a qualifying service that is not paid",
    "B20": "service furnished by another provider",
}

_RARC_LABELS: dict[str, str] = {
    "M15": "components of one procedure billed apart",
    "M97": "paid to the facility, not the practitioner, in this place of service",
    "M144": "pre- and post-operative care included in the surgery's allowance",
    "M20": "HCPCS code missing or invalid",
    "M51": "procedure code missing or invalid",
    "M53": "days or units missing or invalid",
    "M76": "diagnosis missing or invalid",
    "M77": "place of service missing or invalid",
    "M86": "same or similar service already paid in the period",
    "M141": "certified plan of care missing",
    "MA04": "primary payer information missing",
    "MA120": "CLIA certificate number missing or invalid",
    "MA130": "unprocessable: send a new, corrected claim",
    "N20": "not paid with the other service of the same day",
    "N54": "claim does not match the authorized services",
    "N56": "procedure code not right for the service or date",
    "N115": "decided by a local coverage determination",
    "N122": "add-on code billed without its primary",
    "N129": "not eligible at the patient's age",
    "N130": "see the plan's benefit rules",
    "N238": "certified plan of care incomplete",
    "N257": "billing provider identifier missing or invalid",
    "N265": "ordering provider identifier missing or invalid",
    "N290": "rendering provider identifier missing or invalid",
    "N362": "units above the payer's maximum",
    "N383": "not covered when cosmetic",
    "N386": "decided by a national coverage determination",
    "N393": "progress notes missing",
    "N429": "not covered when routine",
    "N443": "total or start/end time missing or invalid",
    "N574": "ordering/referring provider's type or specialty may not order or refer",
    "N640": "frequency limit exceeded",
    "N657": "bill with the right code for the service",
    "N706": "documentation missing",
    "N776": "not a covered telehealth service",
}


@dataclass(frozen=True, slots=True)
class AdjustmentCode:
    """One CARC or RARC as the lists know it."""

    kind: CodeKind
    code: str
    label: str  # ours; "" where we have not written one
    deactivated: bool
    stop: dt.date | None  # known stop date, else None

    def show(self) -> str:
        """`CARC 97 (paid as part of another service)`, the label only when we have one."""
        name = f"{self.kind.upper()} {self.code}"
        return f"{name} ({self.label})" if self.label else name


def carc(code: str) -> AdjustmentCode | None:
    """The CARC `code` (`"97"`, `"B15"`), or None when X12 never defined it."""
    if code not in _CARCS:
        return None
    return AdjustmentCode(
        "carc", code, _CARC_LABELS.get(code, ""), code in _CARC_DEACTIVATED, _CARC_STOP.get(code)
    )


def rarc(code: str) -> AdjustmentCode | None:
    """The RARC `code` (`"M15"`, `"MA130"`), or None when X12 never defined it."""
    if code not in _RARCS:
        return None
    return AdjustmentCode("rarc", code, _RARC_LABELS.get(code, ""), code in _RARC_DEACTIVATED, None)


def group_label(group: str) -> str:
    return GROUPS.get(group, "")


def known_carcs() -> frozenset[str]:
    return _CARCS


def known_rarcs() -> frozenset[str]:
    return _RARCS


@dataclass(frozen=True, slots=True)
class OutcomeProblem:
    """What is wrong with one code of an outcome; `index` is 0 for the CARC, i for the
    i-th RARC (1-based); `level` error = the code cannot be sent, warning = X12 usage."""

    level: Literal["error", "warning"]
    code: str  # the stable problem code (E306, E307, W403, W404)
    index: int
    message: str
    hint: str | None


def _closest(code: str, known: Iterable[str]) -> str | None:
    import difflib

    candidates = [c for c in known if c[:1].isalpha() == code[:1].isalpha()]
    close = difflib.get_close_matches(code, candidates, n=3, cutoff=0.6)
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?" if close else None


def _stopped(found: AdjustmentCode, in_force_until: dt.date | None) -> bool:
    """Whether a rule version in force until `in_force_until` (None: open) would send a
    code after it stopped. Without a known stop date the code stopped by LIST_DATE."""
    if not found.deactivated:
        return False
    stop = found.stop or LIST_DATE
    return in_force_until is None or in_force_until >= stop


def check_outcome(
    group: str,
    carc_code: str,
    rarcs: Iterable[str],
    *,
    severity: str,
    in_force_until: dt.date | None = None,
) -> list[OutcomeProblem]:
    """Every problem with the codes of `then <severity> GROUP-CARC with RARC, ...`."""
    problems: list[OutcomeProblem] = []
    found = carc(carc_code)
    if found is None:
        problems.append(
            OutcomeProblem(
                "error",
                "E306",
                0,
                f"CARC `{carc_code}` is not an X12 claim adjustment reason code",
                _closest(carc_code, _CARCS) or "see the X12 CARC list (code list 139)",
            )
        )
    elif _stopped(found, in_force_until):
        when = f"on {found.stop}" if found.stop else f"by {LIST_DATE}"
        instead = _CARC_INSTEAD.get(carc_code)
        problems.append(
            OutcomeProblem(
                "error",
                "E307",
                0,
                f"CARC `{carc_code}` was deactivated by X12 ({when}); a "
                "payer cannot send it on a new remittance",
                f"X12 says to use {instead} instead"
                if instead
                else "pick the current CARC that says the same, "
                "or end this version before the stop "
                "date with `until`",
            )
        )
    else:
        allowed = ONLY_WITH_GROUP.get(carc_code)
        if allowed is not None and group not in allowed:
            problems.append(
                OutcomeProblem(
                    "warning",
                    "W403",
                    0,
                    f"X12 allows CARC {carc_code} only with group "
                    + " or ".join(sorted(allowed))
                    + f", not {group}",
                    f"write `{sorted(allowed)[0]}-{carc_code}`",
                )
            )
        if group == "CR":
            problems.append(
                OutcomeProblem(
                    "warning",
                    "W403",
                    0,
                    "group CR is for correcting or reversing a claim the "
                    "payer already adjudicated, not for a finding on a claim before it is sent",
                    "use CO, PR, OA or PI",
                )
            )
    rarc_list = list(rarcs)
    for index, code in enumerate(rarc_list, start=1):
        remark = rarc(code)
        if remark is None:
            problems.append(
                OutcomeProblem(
                    "error",
                    "E306",
                    index,
                    f"RARC `{code}` is not an X12 remittance advice remark code",
                    _closest(code, _RARCS) or "see the X12 RARC list (code list 411)",
                )
            )
        elif _stopped(remark, in_force_until):
            problems.append(
                OutcomeProblem(
                    "error",
                    "E307",
                    index,
                    f"RARC `{code}` was deactivated by X12 (by "
                    f"{LIST_DATE}); a payer cannot send it on a new remittance",
                    "pick the current remark code that says the same",
                )
            )
    if found is not None and carc_code in NEEDS_REMARK and not rarc_list and severity != "info":
        problems.append(
            OutcomeProblem(
                "warning",
                "W404",
                0,
                f"X12 requires at least one remark code with CARC {carc_code}",
                f"add `with <RARC>`, e.g. `{group}-{carc_code} with N706`",
            )
        )
    return problems
