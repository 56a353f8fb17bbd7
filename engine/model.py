"""The claim model: claim format v1 (DESIGN.md) decoded into typed, slotted objects.

Decoding is lenient where a payer rule should judge the data (a missing diagnosis
pointer, a malformed procedure code, a missing NPI become findings of the pack's
required-data rules) and strict only where a claim cannot be read at all: wrong JSON
types, a missing claim id, payer or line list, a date that is not YYYY-MM-DD. Those
come back as `ReadProblem`s naming each field, and the claim is rejected.

The attribute names are the policy language's claim vocabulary (`dsl/types.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from cleanclaim.dsl.codesets.icd10cm import normalize as normalize_icd
from cleanclaim.engine.inputs import ReadProblem

FREQUENCIES = ("original", "replacement", "void")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

# Ranges of the numeric fields (docs/claims.md): a value outside is bad data, never
# checked as if real. A professional line bills a count of units (MUEs top out in the
# low thousands; X12 SV104 allows more digits than any real count), minutes of one
# line's service, and a charge in dollars.
UNITS_MAX = 99_999
MINUTES_MAX = 10_000
CHARGE_MAX = Decimal("9999999.99")
LINE_NUMBER_MAX = 9_999
ID_MAX = 80  # claim ids and the ids they name (X12 CLM01 holds 38 characters)
# Characters a claim id may not hold: controls (C0, DEL, C1).
_BAD_ID = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Fields holding patient data: never quoted in a message (`_Reader.date`).
_PATIENT_FIELDS = ("member.",)


def loads(text: str | bytes) -> Any:
    """`json.loads`, with nesting too deep for the parser a `ValueError` like any other
    malformed JSON (the C scanner raises RecursionError at about 1,000 levels)."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("nested too deeply to read") from exc


def encodable(text: str) -> bool:
    """Whether `text` can be written as UTF-8 (JSON's `\\ud800` escapes give strings
    with lone surrogates, which cannot)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def readable_id(value: Any) -> str | None:
    """A claim id as a decision may quote it: a trimmed, non-empty, writable string of at
    most ID_MAX characters without control characters; else None."""
    if not isinstance(value, str):
        return None
    text: str = value.strip()
    if not text or len(text) > ID_MAX or _BAD_ID.search(text) or not encodable(text):
        return None
    return text


class Provider:
    __slots__ = ("npi", "specialty", "taxonomy")

    def __init__(
        self, npi: str | None = None, taxonomy: str | None = None, specialty: str | None = None
    ) -> None:
        self.npi = npi
        self.taxonomy = taxonomy
        self.specialty = specialty


# What a coverage span is (`member.coverage[].type`) and where it stands in the order of
# benefits (`order`); another value is a located problem (docs/language.md, Coverage).
COVERAGE_TYPES = (
    "medicare",
    "medicare_advantage",
    "hospice",
    "medicaid",
    "commercial",
    "workers_compensation",
    "liability",
    "other_primary",
)
COVERAGE_ORDERS = ("primary", "secondary", "tertiary")


class Coverage:
    __slots__ = ("end", "order", "payer", "plan", "start", "type")

    def __init__(
        self,
        payer: str | None,
        plan: str | None,
        start: dt.date | None,
        end: dt.date | None,
        type: str | None = None,
        order: str | None = None,
    ) -> None:
        self.payer = payer
        self.plan = plan
        self.start = start
        self.end = end
        self.type = type  # one of COVERAGE_TYPES, or None (not said)
        self.order = order  # one of COVERAGE_ORDERS, or None (not said)

    def contains(self, day: dt.date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


class TherapyYearToDate:
    """The amounts applied toward the Medicare therapy (KX) thresholds in a calendar year
    as of a date, as the MAC's eligibility answer shows them (all providers): PT and
    speech-language pathology combined, occupational therapy apart. None: not reported."""

    __slots__ = ("as_of", "ot", "pt_slp")

    def __init__(self, pt_slp: Decimal | None, ot: Decimal | None, as_of: dt.date) -> None:
        self.pt_slp = pt_slp
        self.ot = ot
        self.as_of = as_of


class Member:
    __slots__ = (
        "birth_date",
        "coverage",
        "coverage_given",
        "coverage_known",
        "date_of_death",
        "id",
        "sex",
        "therapy_ytd",
    )

    def __init__(
        self,
        id: str | None = None,
        birth_date: dt.date | None = None,
        sex: str | None = None,
        coverage: tuple[Coverage, ...] = (),
        coverage_given: bool = False,
        therapy_ytd: TherapyYearToDate | None = None,
        date_of_death: dt.date | None = None,
    ) -> None:
        self.id = id
        self.birth_date = birth_date
        self.sex = sex
        self.date_of_death = date_of_death
        self.coverage = coverage
        # `member.therapy_ytd` (or the roster's): other providers' therapy amounts.
        self.therapy_ytd = therapy_ytd
        # False when the claim carried no `coverage` at all (a roster may supply it).
        self.coverage_given = coverage_given
        # True when there is coverage data to judge eligibility by: the claim's own
        # `member.coverage` (even an empty list: "covered by nothing"), or a loaded
        # roster's spans. False when there is none (an 837 carries no coverage spans):
        # the eligibility rules then say "not verified" instead of denying.
        self.coverage_known = coverage_given

    # The policy language reads the year to date flat (`member.therapy_ytd_as_of`): a
    # counter's condition compares it with each counted line's date.
    @property
    def therapy_ytd_pt_slp(self) -> Decimal | None:
        return None if self.therapy_ytd is None else self.therapy_ytd.pt_slp

    @property
    def therapy_ytd_ot(self) -> Decimal | None:
        return None if self.therapy_ytd is None else self.therapy_ytd.ot

    @property
    def therapy_ytd_as_of(self) -> dt.date | None:
        return None if self.therapy_ytd is None else self.therapy_ytd.as_of


class Authorization:
    __slots__ = ("codes", "end", "number", "provider_npi", "start", "units")

    def __init__(
        self,
        number: str | None,
        codes: tuple[str, ...],
        start: dt.date | None,
        end: dt.date | None,
        units: float | None,
        provider_npi: str | None = None,
    ) -> None:
        self.number = number
        self.codes = codes
        self.start = start
        self.end = end
        self.units = units
        # The rendering provider the authorization is for (None: any provider).
        self.provider_npi = provider_npi

    def covers(self, day: dt.date) -> bool:
        return (
            self.start is not None and self.start <= day and (self.end is None or day <= self.end)
        )


class Diagnosis:
    __slots__ = ("code", "position")

    def __init__(self, code: str, position: int) -> None:
        self.code = code
        self.position = position


class ServiceLine:
    __slots__ = (
        "charge",
        "clia_number",
        "code",
        "diagnosis_pointers",
        "expected_allowed",
        "line",
        "minutes",
        "modifiers",
        "pointed_diagnoses",
        "service_date",
        "units",
    )

    def __init__(
        self,
        line: int,
        code: str | None,
        modifiers: tuple[str, ...],
        units: float | None,
        charge: Decimal | None,
        service_date: dt.date,
        diagnosis_pointers: tuple[int, ...],
        minutes: float | None,
        pointed_diagnoses: tuple[str, ...],
        expected_allowed: Decimal | None = None,
        clia_number: str | None = None,
    ) -> None:
        # The CLIA number of the laboratory that performed this line's test (837P 2400
        # REF*X4), when it is not the claim's; None: the claim's number counts for it.
        self.clia_number = clia_number
        # The amount the integrator expects the payer to allow for the line (its units
        # included), when it sends one; the KX threshold accrues allowed amounts.
        self.expected_allowed = expected_allowed
        self.line = line
        self.code = code
        self.modifiers = modifiers
        self.units = units
        self.charge = charge
        self.service_date = service_date
        self.diagnosis_pointers = diagnosis_pointers
        self.minutes = minutes
        self.pointed_diagnoses = pointed_diagnoses


class Claim:
    __slots__ = (
        "authorizations",
        "billing_provider",
        "claim_id",
        "clia_number",
        "coverage_start",
        "diagnoses",
        "diagnosis_items",
        "documentation",
        "first_service_date",
        "frequency",
        "history",
        "insurance",
        "lines",
        "member",
        "ordering_provider",
        "payer",
        "payer_coverage",
        "place_of_service",
        "plan",
        "received_date",
        "referring_provider",
        "rendering_provider",
        "replaces",
        "service_state",
    )

    claim_id: str
    payer: str
    plan: str | None
    frequency: str
    replaces: str | None
    received_date: dt.date
    member: Member
    billing_provider: Provider
    rendering_provider: Provider
    referring_provider: Provider | None  # None: the claim names no referring provider
    ordering_provider: Provider | None  # None: the claim names no ordering provider
    place_of_service: str | None
    # Two-letter USPS code of the state where the service was rendered, or None.
    service_state: str | None
    # The CLIA certificate number of the laboratory (837P 2300 REF*X4), or None.
    clia_number: str | None
    # The payers the claim itself names for its services, with their type and order of
    # benefits (837P SBR of loops 2000B and 2320; FHIR Claim.insurance). Not eligibility
    # data: they carry no dates (they speak for the claim's own services) and never make
    # `member.coverage_known` true.
    insurance: tuple[Coverage, ...]
    diagnoses: tuple[str, ...]
    diagnosis_items: tuple[Diagnosis, ...]
    authorizations: tuple[Authorization, ...]
    lines: tuple[ServiceLine, ...]
    documentation: dict[str, Any]
    first_service_date: dt.date
    # Derived once: the member's coverage spans with this claim's payer (a span naming
    # no payer counts for any payer) and the earliest start among them.
    payer_coverage: tuple[Coverage, ...]
    coverage_start: dt.date | None
    # The member's claim history as the run sees it for this claim (engine/history.py's
    # `ClaimHistory`); None outside a run: history functions then count this claim alone.
    history: Any

    def set_coverage(self, spans: tuple[Coverage, ...], known: bool = True) -> None:
        """Replace the member's coverage (e.g. from a roster) and re-derive the facts.
        `known`: whether the spans are eligibility data (see `Member.coverage_known`)."""
        self.member.coverage = spans
        self.member.coverage_known = known
        payer = self.payer
        self.payer_coverage = tuple(s for s in spans if s.payer is None or s.payer == payer)
        starts = [s.start for s in self.payer_coverage if s.start is not None]
        self.coverage_start = min(starts) if starts else None


class _Reader:
    """Collects problems while reading one claim object."""

    __slots__ = ("problems",)

    def __init__(self) -> None:
        self.problems: list[ReadProblem] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(ReadProblem(where, message))

    def text(self, obj: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
        value = obj.get(key)
        if isinstance(value, str):
            value = value.strip()  # " C-1 " is C-1; " " is no value at all
            if not encodable(value):
                self.fail(
                    where,
                    "holds a character that is not valid Unicode "
                    "(a lone surrogate escape such as \\ud800)",
                )
                return None
        if value is None or value == "":
            if required:
                self.fail(
                    where,
                    "is required (blank or only spaces)"
                    if key in obj and obj[key] is not None
                    else "is required",
                )
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if where.startswith(_PATIENT_FIELDS):
                return str(value)
            if abs(value) < 10**20:
                return str(value)
            self._bad_number(where)
            return None
        self.fail(where, f"must be a string, not {json_type(value)}")
        return None

    def word(
        self, obj: dict[str, Any], key: str, where: str, allowed: tuple[str, ...]
    ) -> str | None:
        """A text that must be one of `allowed` (compared in lower case)."""
        value = self.text(obj, key, where)
        if value is None:
            return None
        word = value.lower()
        if word not in allowed:
            self.fail(
                where,
                f"`{value}` is not one of {', '.join(allowed)}"
                if len(value) <= 40 and value.isprintable()
                else f"is not one of {', '.join(allowed)}",
            )
            return None
        return word

    def _bad_number(self, where: str) -> None:
        self.fail(where, "is a number too long to be an identifier")

    def ident(
        self, obj: dict[str, Any], key: str, where: str, required: bool = False
    ) -> str | None:
        """A claim id (or one it names): trimmed; at most ID_MAX characters, none of
        them control characters."""
        value = self.text(obj, key, where, required)
        if value is None:
            return None
        if len(value) > ID_MAX:
            self.fail(where, f"is longer than {ID_MAX} characters")
            return None
        if _BAD_ID.search(value):
            self.fail(where, "holds a control character (tab, line break, ...)")
            return None
        return value

    def date(
        self, obj: dict[str, Any], key: str, where: str, required: bool = False
    ) -> dt.date | None:
        value = obj.get(key)
        if value is None or value == "":
            if required:
                self.fail(where, "is required (YYYY-MM-DD)")
            return None
        if not isinstance(value, str):
            self.fail(where, f"must be a date string YYYY-MM-DD, not {json_type(value)}")
            return None
        try:
            # Only YYYY-MM-DD: fromisoformat alone also takes ISO week dates (2026-W07-2).
            if _ISO_DATE.match(value) is None:
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            # A birth date is patient data: never quoted.
            shown = (
                ""
                if where.startswith(_PATIENT_FIELDS) or not encodable(value) or len(value) > 40
                else f"`{value}` "
            )
            self.fail(where, f"{shown}is not a date in the form YYYY-MM-DD")
            return None

    def number(
        self, obj: dict[str, Any], key: str, where: str, largest: float = UNITS_MAX
    ) -> float | None:
        """A count (units, minutes): a number, or a string of one, in 0..`largest`."""
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str) and len(value) <= 40:
                try:
                    number = float(value) if "." in value or "e" in value.lower() else int(value)
                    if math.isfinite(number):
                        return self._in_range(number, where, largest)
                except ValueError:
                    pass
            self.fail(where, f"must be a number, not {json_type(value)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(where, f"must be a finite number, not {value}")
            return None
        return self._in_range(value, where, largest)

    def _in_range(self, value: float, where: str, largest: float) -> float | None:
        # Zero and negative counts are the packs' to judge (M53); beyond any real count is
        # bad data.
        if -largest <= value <= largest:
            return value
        self.fail(where, f"must be at most {largest:,} (bad data: no real claim bills that many)")
        return None

    def amount(
        self, obj: dict[str, Any], key: str, where: str, negative: bool = True
    ) -> Decimal | None:
        """An amount of money (a charge, an allowed amount): a number or a string of
        one, at most CHARGE_MAX dollars either way (`negative=False`: at least zero)."""
        raw = obj.get(key)
        if raw is None:
            return None
        try:
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise InvalidOperation
            if isinstance(raw, str) and len(raw) > 40:
                raise InvalidOperation
            value = Decimal(str(raw))
            if not value.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            shown = (
                f"`{raw}` "
                if isinstance(raw, (int, float))
                and not isinstance(raw, bool)
                and len(str(raw)) <= 40
                else ""
            )
            self.fail(where, f"{shown}is not an amount")
            return None
        if not -CHARGE_MAX <= value <= CHARGE_MAX:
            self.fail(where, f"must be at most {CHARGE_MAX:,} dollars")
            return None
        if not negative and value < 0:
            self.fail(where, "must not be negative")
            return None
        return value

    def obj(self, parent: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(where, f"must be an object, not {json_type(value)}")
            return None
        return value

    def array(self, parent: dict[str, Any], key: str, where: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, f"must be a list, not {json_type(value)}")
            return []
        return value


def json_type(value: Any, show_text: bool = False) -> str:
    """What kind of JSON value `value` is, for an error message. Text is shown only when
    asked (`show_text`): claim fields carry patient data."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        # Shown only when asked, like text: a member id sent as a number is patient data.
        if not show_text:
            return "a number"
        shown = repr(value) if isinstance(value, float) or abs(value) < 10**20 else "..."
        return f"a number ({shown})"
    if isinstance(value, str):
        return f"the text `{value}`" if show_text else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _provider(r: _Reader, data: dict[str, Any], key: str) -> Provider:
    obj = r.obj(data, key, key)
    if obj is None:
        return Provider()
    return Provider(
        r.text(obj, "npi", f"{key}.npi"),
        r.text(obj, "taxonomy", f"{key}.taxonomy"),
        r.text(obj, "specialty", f"{key}.specialty"),
    )


_STATE = re.compile(r"[A-Z]{2}\Z")


def _service_state(r: _Reader, data: dict[str, Any]) -> str | None:
    """`service_state`, else the service facility's, else the billing provider's address
    state (docs/formats.md): two letters, any case; anything else is a located problem."""
    candidates: list[tuple[dict[str, Any], str, str]] = [(data, "service_state", "service_state")]
    for key in ("service_facility", "billing_provider"):
        holder = data.get(key)
        address = holder.get("address") if isinstance(holder, dict) else None
        if isinstance(address, dict):
            candidates.append((address, "state", f"{key}.address.state"))
        elif address is not None:
            r.fail(f"{key}.address", f"must be an object, not {json_type(address)}")
    for obj, key, where in candidates:
        value = r.text(obj, key, where)
        if value is None:
            continue
        state = value.upper()
        if _STATE.match(state) is None:
            r.fail(where, "must be a two-letter USPS state code")
            return None
        return state
    return None


def _spans(r: _Reader, obj: dict[str, Any], key: str, where: str) -> list[Coverage]:
    """Coverage spans (`member.coverage`, `insurance`): payer, plan, start, end, type, order."""
    spans: list[Coverage] = []
    for i, span in enumerate(r.array(obj, key, where)):
        at = f"{where}[{i}]"
        if not isinstance(span, dict):
            r.fail(at, f"must be an object, not {json_type(span)}")
            continue
        spans.append(
            Coverage(
                r.text(span, "payer", f"{at}.payer"),
                r.text(span, "plan", f"{at}.plan"),
                r.date(span, "start", f"{at}.start"),
                r.date(span, "end", f"{at}.end"),
                r.word(span, "type", f"{at}.type", COVERAGE_TYPES),
                r.word(span, "order", f"{at}.order", COVERAGE_ORDERS),
            )
        )
    return spans


def decode_claim(data: Any, today: dt.date) -> tuple[Claim | None, list[ReadProblem]]:
    """Build a `Claim` from a claim-format-v1 object; problems name each bad field."""
    if not isinstance(data, dict):
        return None, [ReadProblem("claim", f"must be a JSON object, not {json_type(data)}")]
    r = _Reader()
    claim = Claim()
    claim.history = None
    claim.claim_id = r.ident(data, "claim_id", "claim_id", required=True) or ""
    claim.payer = r.text(data, "payer", "payer", required=True) or ""
    claim.plan = r.text(data, "plan", "plan")
    frequency = r.text(data, "frequency", "frequency") or "original"
    if frequency not in FREQUENCIES:
        r.fail("frequency", f"`{frequency}` is not one of {', '.join(FREQUENCIES)}")
    claim.frequency = frequency
    claim.replaces = r.ident(data, "replaces", "replaces")
    claim.received_date = r.date(data, "received_date", "received_date") or today
    claim.place_of_service = r.text(data, "place_of_service", "place_of_service")

    member_obj = r.obj(data, "member", "member") or {}
    raw_coverage = member_obj.get("coverage")
    spans = _spans(r, member_obj, "coverage", "member.coverage")
    therapy_ytd: TherapyYearToDate | None = None
    ytd_obj = r.obj(member_obj, "therapy_ytd", "member.therapy_ytd")
    if ytd_obj is not None:
        pt_slp = r.amount(ytd_obj, "pt_slp", "member.therapy_ytd.pt_slp", negative=False)
        ot = r.amount(ytd_obj, "ot", "member.therapy_ytd.ot", negative=False)
        as_of = r.date(ytd_obj, "as_of", "member.therapy_ytd.as_of", required=True)
        if as_of is not None:
            therapy_ytd = TherapyYearToDate(pt_slp, ot, as_of)
    claim.member = Member(
        r.text(member_obj, "id", "member.id"),
        r.date(member_obj, "birth_date", "member.birth_date"),
        r.text(member_obj, "sex", "member.sex"),
        tuple(spans),
        raw_coverage is not None,
        therapy_ytd,
        r.date(member_obj, "date_of_death", "member.date_of_death"),
    )
    claim.set_coverage(tuple(spans), known=raw_coverage is not None)
    claim.billing_provider = _provider(r, data, "billing_provider")
    claim.rendering_provider = _provider(r, data, "rendering_provider")
    # An absent referring provider is missing (`claim.referring_provider is missing`),
    # not an empty one; billing and rendering providers are always there to read.
    claim.referring_provider = (
        _provider(r, data, "referring_provider")
        if data.get("referring_provider") is not None
        else None
    )
    claim.ordering_provider = (
        _provider(r, data, "ordering_provider")
        if data.get("ordering_provider") is not None
        else None
    )
    claim.service_state = _service_state(r, data)
    claim.clia_number = r.text(data, "clia_number", "clia_number")
    claim.insurance = tuple(_spans(r, data, "insurance", "insurance"))

    diagnoses: list[str] = []
    for i, code in enumerate(r.array(data, "diagnoses", "diagnoses")):
        if isinstance(code, str) and code.strip() and encodable(code):
            diagnoses.append(normalize_icd(code))
        else:
            r.fail(f"diagnoses[{i}]", f"must be a non-empty string, not {json_type(code)}")
    claim.diagnoses = tuple(diagnoses)
    claim.diagnosis_items = tuple(Diagnosis(c, i + 1) for i, c in enumerate(diagnoses))

    auths: list[Authorization] = []
    for i, auth in enumerate(r.array(data, "authorizations", "authorizations")):
        where = f"authorizations[{i}]"
        if not isinstance(auth, dict):
            r.fail(where, f"must be an object, not {json_type(auth)}")
            continue
        codes = tuple(
            str(c).strip().upper()
            for c in r.array(auth, "codes", f"{where}.codes")
            if not isinstance(c, str) or encodable(c)
        )
        auths.append(
            Authorization(
                r.text(auth, "number", f"{where}.number"),
                codes,
                r.date(auth, "start", f"{where}.start"),
                r.date(auth, "end", f"{where}.end"),
                r.number(auth, "units", f"{where}.units"),
                r.text(auth, "provider_npi", f"{where}.provider_npi"),
            )
        )
    claim.authorizations = tuple(auths)

    lines: list[ServiceLine] = []
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        r.fail(
            "lines",
            "is required: a non-empty list of service lines"
            if raw_lines in (None, [])
            else f"must be a list, not {json_type(raw_lines)}",
        )
        raw_lines = []
    for i, raw in enumerate(raw_lines):
        where = f"lines[{i}]"
        if not isinstance(raw, dict):
            r.fail(where, f"must be an object, not {json_type(raw)}")
            continue
        number = raw.get("line", i + 1)
        if isinstance(number, bool) or not isinstance(number, int):
            r.fail(f"{where}.line", f"must be a whole number, not {json_type(number)}")
            number = i + 1
        elif not 1 <= number <= LINE_NUMBER_MAX:
            r.fail(f"{where}.line", f"must be between 1 and {LINE_NUMBER_MAX:,}")
            number = i + 1
        code = r.text(raw, "code", f"{where}.code")
        modifiers = []
        for j, m in enumerate(r.array(raw, "modifiers", f"{where}.modifiers")):
            if (
                isinstance(m, (str, int))
                and not isinstance(m, bool)
                and (not isinstance(m, str) or encodable(m))
            ):
                modifiers.append(str(m).strip().upper())
            else:
                r.fail(f"{where}.modifiers[{j}]", f"must be a string, not {json_type(m)}")
        charge: Decimal | None = None
        raw_charge = raw.get("charge")
        if raw_charge is not None:
            try:
                if isinstance(raw_charge, bool):
                    raise InvalidOperation
                if isinstance(raw_charge, str) and len(raw_charge) > 40:
                    raise InvalidOperation
                charge = Decimal(str(raw_charge))
                if not charge.is_finite():
                    raise InvalidOperation
                if not -CHARGE_MAX <= charge <= CHARGE_MAX:
                    r.fail(f"{where}.charge", f"must be at most {CHARGE_MAX:,} dollars")
                    charge = None
            except (InvalidOperation, ValueError):
                shown = (
                    f"`{raw_charge}` "
                    if isinstance(raw_charge, (int, float)) and len(str(raw_charge)) <= 40
                    else ""
                )
                r.fail(f"{where}.charge", f"{shown}is not an amount")
        pointers: list[int] = []
        for j, p in enumerate(r.array(raw, "diagnosis_pointers", f"{where}.diagnosis_pointers")):
            if isinstance(p, bool) or not isinstance(p, int):
                r.fail(
                    f"{where}.diagnosis_pointers[{j}]",
                    f"must be a whole number, not {json_type(p)}",
                )
            else:
                pointers.append(p)
        service_date = r.date(raw, "service_date", f"{where}.service_date", required=True)
        count = len(diagnoses)
        pointed = tuple(diagnoses[p - 1] for p in pointers if 1 <= p <= count)
        lines.append(
            ServiceLine(
                number,
                code.upper() if code else code,
                tuple(modifiers),
                r.number(raw, "units", f"{where}.units"),
                charge,
                service_date or today,
                tuple(pointers),
                r.number(raw, "minutes", f"{where}.minutes", MINUTES_MAX),
                pointed,
                r.amount(raw, "expected_allowed", f"{where}.expected_allowed", negative=False),
                r.text(raw, "clia_number", f"{where}.clia_number"),
            )
        )
    claim.lines = tuple(lines)
    claim.first_service_date = min((ln.service_date for ln in lines), default=today)
    documentation = data.get("documentation")
    if documentation is not None and not isinstance(documentation, dict):
        r.fail("documentation", f"must be an object, not {json_type(documentation)}")
        documentation = None
    claim.documentation = documentation or {}
    if r.problems:
        return None, r.problems
    return claim, []
