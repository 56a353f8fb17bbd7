"""Claim format v1 decoded fast: msgspec typed structs straight from the JSON bytes.

`engine/model.py`'s `decode_claim` is the reference reader: it takes any JSON value,
accepts the lenient forms (a number for a text field, a string for units) and names
*every* bad field with its path. It is also the slowest step of a check (~60 us a claim
on the issue-14 workload, more than evaluating the claim). This module is the fast path
in front of it:

1. msgspec decodes the bytes (or, from a dict, converts it) into the structs below, whose
   types are the *common, well-formed* shape of a claim (text as strings, counts as
   numbers, lists as lists). Validation happens in C while decoding (~3 us a claim).
2. `_build` applies the reference reader's rules to those values (trimming, upper-case,
   id limits, dates YYYY-MM-DD, numeric ranges, service state, diagnosis pointers) and
   builds the same `Claim`.
3. Anything the fast path does not accept - invalid JSON, a value of another type, any
   value the reference reader would report or convert - returns None, and the caller
   reads the claim with the reference reader, which then reports each bad field with its
   path exactly as before (or accepts a lenient form exactly as before).

So a claim decodes to the same `Claim` on both paths, and a damaged claim gets the same
messages: tests/test_decoding.py checks both on generated and damaged claims, and fails
when a field is added to one reader and not the other.

Why msgspec, not orjson + a validator: measured on the issue-14 workload (100,000 claims,
1-6 lines), orjson.loads to dicts alone costs about what msgspec costs to decode *and*
validate into structs; validating the dicts afterwards (by hand or with a compiled JSON
Schema) then costs Python calls per field. msgspec also encodes the decisions
(`encode_decision`), so one library does both ends (docs/performance.md).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from cleanclaim.dsl.codesets.icd10cm import normalize as normalize_icd
from cleanclaim.engine.inputs import ReadProblem
from cleanclaim.engine.model import (
    _BAD_ID,
    _STATE,
    CHARGE_MAX,
    COVERAGE_ORDERS,
    COVERAGE_TYPES,
    FREQUENCIES,
    ID_MAX,
    LINE_NUMBER_MAX,
    MINUTES_MAX,
    UNITS_MAX,
    Authorization,
    Claim,
    Coverage,
    Diagnosis,
    Member,
    Provider,
    ServiceLine,
    TherapyYearToDate,
)
from cleanclaim.engine.model import decode_claim as read_claim

__all__ = ["decode_claim", "decode_json", "read_claim"]

_Text = str | None
_Count = int | float | None
# msgspec reads exactly YYYY-MM-DD into a date (an empty string, a week date, a date
# with a time or a bad day fail validation: the reference reader names them).
_Date = dt.date | None


class _Address(msgspec.Struct):
    state: _Text = None


class _Provider(msgspec.Struct):
    npi: _Text = None
    taxonomy: _Text = None
    specialty: _Text = None
    address: _Address | None = None


class _Facility(msgspec.Struct):
    address: _Address | None = None


class _Coverage(msgspec.Struct):
    payer: _Text = None
    plan: _Text = None
    start: _Date = None
    end: _Date = None
    type: _Text = None
    order: _Text = None


class _TherapyYtd(msgspec.Struct):
    pt_slp: str | int | float | None = None
    ot: str | int | float | None = None
    as_of: _Date = None


class _Member(msgspec.Struct):
    id: _Text = None
    birth_date: _Date = None
    sex: _Text = None
    coverage: list[_Coverage] | None = None
    therapy_ytd: _TherapyYtd | None = None  # the KX threshold's year to date (11)
    date_of_death: _Date = None


class _Authorization(msgspec.Struct):
    number: _Text = None
    codes: list[str] | None = None
    start: _Date = None
    end: _Date = None
    units: _Count = None
    provider_npi: _Text = None  # the rendering provider it is for (13.11)


class _Line(msgspec.Struct):
    # Absent: the line's place in the list; null or anything but a whole number is a
    # problem the reference reader names.
    line: int | msgspec.UnsetType = msgspec.UNSET
    code: _Text = None
    modifiers: list[str] | None = None
    units: _Count = None
    charge: str | int | float | None = None
    service_date: _Date = None
    diagnosis_pointers: list[int] | None = None
    minutes: _Count = None
    expected_allowed: str | int | float | None = None  # the allowed amount expected (11)
    clia_number: _Text = None  # the line's laboratory (837P 2400 REF*X4)


class _Claim(msgspec.Struct):
    claim_id: _Text = None
    payer: _Text = None
    plan: _Text = None
    frequency: _Text = None
    replaces: _Text = None
    received_date: _Date = None
    place_of_service: _Text = None
    service_state: _Text = None
    clia_number: _Text = None
    insurance: list[_Coverage] | None = None  # the payers the claim names (12.6)
    member: _Member | None = None
    billing_provider: _Provider | None = None
    rendering_provider: _Provider | None = None
    referring_provider: _Provider | None = None
    ordering_provider: _Provider | None = None
    service_facility: _Facility | None = None
    diagnoses: list[str] | None = None
    authorizations: list[_Authorization] | None = None
    lines: list[_Line] | None = None
    documentation: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(_Claim)
_encoder = msgspec.json.Encoder()


class _Refer(Exception):
    """The fast path does not decide this claim: the reference reader reads it."""


def decode_json(text: bytes | str, today: dt.date) -> Claim | None:
    """The `Claim` of a claim-format-v1 JSON text, or None when the fast path does not
    accept it (not JSON, another shape, a value to report or convert): then read it
    with `model.loads` + `model.decode_claim`, which say why."""
    try:
        parsed = _decoder.decode(text)
        # Only a `\\u` escape can give a lone surrogate (raw bytes are checked UTF-8):
        # then encoding the structs finds it (the reference reader reports the field).
        if isinstance(text, str) or b"\\u" in text:
            _encoder.encode(parsed)
    except Exception:  # not JSON, another shape, too deep (RecursionError)...
        return None
    return _built(parsed, today)


def decode_claim(data: Any, today: dt.date) -> tuple[Claim | None, list[ReadProblem]]:
    """`model.decode_claim` (same claim, same problems), fast for claims of the common
    shape."""
    try:
        parsed = msgspec.convert(data, _Claim)
        _encoder.encode(parsed)  # a lone surrogate anywhere: the reference reader's
    except Exception:  # of another shape, too deep, a lone surrogate in a key...
        return read_claim(data, today)
    claim = _built(parsed, today)
    return (claim, []) if claim is not None else read_claim(data, today)


def _built(parsed: _Claim, today: dt.date) -> Claim | None:
    try:
        return _build(parsed, today)
    except (_Refer, ValueError, InvalidOperation, OverflowError):
        return None


# ---- the reference reader's rules, for values already of the right type -------------------
# Written out rather than one helper per field: a claim has ~20 text fields, and a
# Python call per field costs more than msgspec's whole decode of the claim.


# Diagnosis codes as written -> their keys ("r07.9" -> "R079"): a batch bills the same
# codes again and again.
_icd_keys: dict[str, str] = {}
_KEYS_KEPT = 100_000


def _ident(value: str | None, required: bool = False) -> str | None:
    text = (value and value.strip()) or None  # " C-1 " is C-1; " " is no value at all
    if text is None:
        if required:
            raise _Refer
        return None
    if len(text) > ID_MAX or _BAD_ID.search(text):
        raise _Refer
    return text


def _provider(value: _Provider | None) -> Provider:
    if value is None:
        return Provider()
    npi, taxonomy, specialty = value.npi, value.taxonomy, value.specialty
    return Provider(
        (npi and npi.strip()) or None,
        (taxonomy and taxonomy.strip()) or None,
        (specialty and specialty.strip()) or None,
    )


def _service_state(parsed: _Claim) -> str | None:
    """As `model._service_state`: `service_state`, else the service facility's, else the
    billing provider's address state; the first one given must be two letters."""
    candidates = [parsed.service_state]
    for holder in (parsed.service_facility, parsed.billing_provider):
        if holder is not None and holder.address is not None:
            candidates.append(holder.address.state)
    for value in candidates:
        text = value and value.strip()
        if not text:
            continue
        state = text.upper()
        if _STATE.match(state) is None:
            raise _Refer
        return state
    return None


def _charge(value: str | float | None) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) > 40:
        raise _Refer
    charge = Decimal(str(value))
    if not charge.is_finite() or not -CHARGE_MAX <= charge <= CHARGE_MAX:
        raise _Refer
    return charge


def _allowed(value: str | float | None) -> Decimal | None:
    """An amount that may not be negative (`expected_allowed`, `therapy_ytd`)."""
    amount = _charge(value)
    if amount is not None and amount < 0:
        raise _Refer
    return amount


def _therapy_ytd(value: _TherapyYtd | None) -> TherapyYearToDate | None:
    if value is None:
        return None
    if value.as_of is None:
        raise _Refer
    return TherapyYearToDate(_allowed(value.pt_slp), _allowed(value.ot), value.as_of)


def _word(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """As `model._Reader.word`: trimmed, lower case, one of `allowed`; else the
    reference reader names the problem."""
    text = (value and value.strip().lower()) or None
    if text is not None and text not in allowed:
        raise _Refer
    return text


def _coverage(spans: list[_Coverage]) -> tuple[Coverage, ...]:
    return tuple(
        Coverage(
            (s.payer and s.payer.strip()) or None,
            (s.plan and s.plan.strip()) or None,
            s.start,
            s.end,
            _word(s.type, COVERAGE_TYPES),
            _word(s.order, COVERAGE_ORDERS),
        )
        for s in spans
    )


def _authorizations(auths: list[_Authorization]) -> tuple[Authorization, ...]:
    found = []
    for a in auths:
        units = a.units
        if units is not None and not -UNITS_MAX <= units <= UNITS_MAX:
            raise _Refer
        found.append(
            Authorization(
                (a.number and a.number.strip()) or None,
                tuple(c.strip().upper() for c in a.codes or ()),
                a.start,
                a.end,
                units,
                (a.provider_npi and a.provider_npi.strip()) or None,
            )
        )
    return tuple(found)


def _build(parsed: _Claim, today: dt.date) -> Claim:
    """The `Claim` `model.decode_claim` builds from the same values; `_Refer` (or a
    ValueError) wherever the reference reader would report a problem."""
    claim = Claim()
    claim.history = None
    claim.claim_id = _ident(parsed.claim_id, required=True) or ""
    payer = parsed.payer and parsed.payer.strip()
    if not payer:
        raise _Refer
    claim.payer = payer
    plan = parsed.plan
    claim.plan = (plan and plan.strip()) or None
    frequency = (parsed.frequency and parsed.frequency.strip()) or "original"
    if frequency not in FREQUENCIES:
        raise _Refer
    claim.frequency = frequency
    claim.replaces = _ident(parsed.replaces) if parsed.replaces is not None else None
    claim.received_date = parsed.received_date or today
    pos = parsed.place_of_service
    claim.place_of_service = (pos and pos.strip()) or None

    member = parsed.member
    spans: tuple[Coverage, ...] = ()
    given = False
    if member is not None:
        if member.coverage is not None:
            given = True
            spans = _coverage(member.coverage)
        member_id, sex = member.id, member.sex
        claim.member = Member(
            (member_id and member_id.strip()) or None,
            member.birth_date,
            (sex and sex.strip()) or None,
            spans,
            given,
            _therapy_ytd(member.therapy_ytd),
            member.date_of_death,
        )
    else:
        claim.member = Member(None, None, None, (), False)
    claim.set_coverage(spans, known=given)
    claim.billing_provider = _provider(parsed.billing_provider)
    claim.rendering_provider = _provider(parsed.rendering_provider)
    claim.referring_provider = (
        _provider(parsed.referring_provider) if parsed.referring_provider is not None else None
    )
    claim.ordering_provider = (
        _provider(parsed.ordering_provider) if parsed.ordering_provider is not None else None
    )
    claim.service_state = _service_state(parsed)
    clia = parsed.clia_number
    claim.clia_number = (clia and clia.strip()) or None
    claim.insurance = _coverage(parsed.insurance) if parsed.insurance else ()

    diagnoses: list[str] = []
    for code in parsed.diagnoses or ():
        key = _icd_keys.get(code)
        if key is None:
            if not code.strip():
                raise _Refer
            key = normalize_icd(code)
            if len(_icd_keys) >= _KEYS_KEPT:
                _icd_keys.clear()
            _icd_keys[code] = key
        diagnoses.append(key)
    claim.diagnoses = tuple(diagnoses)
    claim.diagnosis_items = tuple(Diagnosis(c, i + 1) for i, c in enumerate(diagnoses))
    claim.authorizations = _authorizations(parsed.authorizations) if parsed.authorizations else ()

    raw_lines = parsed.lines
    if not raw_lines:
        raise _Refer
    count = len(diagnoses)
    lines: list[ServiceLine] = []
    first: dt.date | None = None
    for i, raw in enumerate(raw_lines):
        written = raw.line
        if isinstance(written, msgspec.UnsetType):
            number = i + 1
        elif 1 <= written <= LINE_NUMBER_MAX:
            number = written
        else:
            raise _Refer
        procedure = raw.code and raw.code.strip()
        service_date = raw.service_date
        units, minutes = raw.units, raw.minutes
        if (
            service_date is None
            or (units is not None and not -UNITS_MAX <= units <= UNITS_MAX)
            or (minutes is not None and not -MINUTES_MAX <= minutes <= MINUTES_MAX)
        ):
            raise _Refer
        if first is None or service_date < first:
            first = service_date
        pointers = tuple(raw.diagnosis_pointers) if raw.diagnosis_pointers else ()
        modifiers = tuple(m.strip().upper() for m in raw.modifiers) if raw.modifiers else ()
        lines.append(
            ServiceLine(
                number,
                procedure.upper() if procedure else None,
                modifiers,
                units,
                _charge(raw.charge),
                service_date,
                pointers,
                minutes,
                tuple(diagnoses[p - 1] for p in pointers if 1 <= p <= count),
                _allowed(raw.expected_allowed) if raw.expected_allowed is not None else None,
                (raw.clia_number and raw.clia_number.strip()) or None,
            )
        )
    claim.lines = tuple(lines)
    assert first is not None
    claim.first_service_date = first
    claim.documentation = parsed.documentation or {}
    return claim
