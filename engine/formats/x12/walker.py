"""The 837P walk: envelopes and hierarchical loops one segment at a time, and the public
entry point `read_x12`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date

from cleanclaim.engine.formats.x12.building import _ClaimBuilder
from cleanclaim.engine.formats.x12.envelope import _EnvelopeCheck
from cleanclaim.engine.formats.x12.loops import (
    _SEXES,
    _Billing,
    _Claim,
    _Out,
    _Payer,
    _Person,
)
from cleanclaim.engine.formats.x12.segments import _ClaimSegments
from cleanclaim.engine.formats.x12.syntax import (
    Tokens,
    _ccyymmdd,
    _get,
    _state,
    _where,
)
from cleanclaim.engine.inputs import InputFileError, RawClaim, ReadProblem

# --------------------------------------------------------------------------- public API


def read_x12(
    text: str,
    source: str,
    payer_map: Mapping[str, str],
    today: date | None = None,
    undecodable: bool = False,
) -> Iterator[RawClaim]:
    """Yield every 837P claim in `text` as a `RawClaim` (claim format v1), in file order.

    `source` names the file in problems and in each claim's `source`; `payer_map` maps a
    payer id (2010BB NM109) or payer name to a policy pack name. The ISA is checked at
    once (`InputFileError` for a file that is not X12); later file-level failures raise
    from the iterator, and only when no complete claim could be read.
    """
    walker = _Walker(text, source, payer_map, today or date.today(), undecodable)
    return _emit(walker)


def _emit(walker: _Walker) -> Iterator[RawClaim]:
    """The walk's results as `RawClaim`s. Problems of no claim that come before the first
    claim wait for it; a file that holds no CLM at all raises `InputFileError` instead."""
    position = 0
    read_any = False
    pending: list[_Out] = []
    for out in walker.walk():
        if not read_any:
            if out.kind == "file":
                pending.append(out)
                continue
            read_any = True
            for held in pending:
                yield RawClaim(position, held.data, held.problems, held.claim_id, held.origin)
                position += 1
            pending.clear()
        yield RawClaim(position, out.data, out.problems, out.claim_id, out.origin)
        position += 1
    if not read_any and pending:
        raise InputFileError(
            walker.source,
            "; ".join(f"{p.where}: {p.message}" for p in _problems(pending))
            + "; no claim could be read",
        )


def _problems(outs: list[_Out]) -> list[ReadProblem]:
    return [p for out in outs for p in out.problems]


# --------------------------------------------------------------------------- the walk


class _Walker(Tokens, _ClaimSegments, _ClaimBuilder):
    """Walks the file's envelopes and loops, one segment at a time."""

    def __init__(
        self,
        text: str,
        source: str,
        payer_map: Mapping[str, str],
        today: date,
        undecodable: bool = False,
    ) -> None:
        super().__init__(text, source)
        self.undecodable = undecodable
        self.payer_map = payer_map
        self._payer_names: dict[str, str] | None = None
        self.today = today
        # Envelope integrity first (a pass of its own, tokenizing only): a trailer comes
        # after the claims it closes, and its verdict must reach each of them.
        check = _EnvelopeCheck()
        for no, els in self.segments():
            check.segment(no, els)
        self.envelope_problems = check.end()
        self.out: list[_Out] = []
        # envelopes
        self.isa: int | None = None
        self.gs: int | None = None
        self.st: int | None = None
        self.st_control = ""
        self.st_ok = False
        self.gs_version = ""
        # hierarchical loops
        self.level = ""  # HL03 of the current HL: "20", "22", "23" or other
        self.part = ""  # "2010AA", "2010BA", "2010BB", "2010CA" or "" (other / none)
        self.billing: _Billing | None = None
        self.subscriber: _Person | None = None
        self.payer: _Payer | None = None
        self.patient: _Person | None = None
        self.claim: _Claim | None = None

    # ----------------------------------------------------------------- walk

    def walk(self) -> Iterator[_Out]:
        out = self.out
        last_no, last_id = 0, ""
        undecodable = self.undecodable
        for no, els in self.segments():
            self.segment(no, els)
            if undecodable and any("\ufffd" in e for e in els):
                self.bad_text(no, els[0])
            last_no, last_id = no, els[0]
            if out:
                yield from out
                out.clear()
        self.end(last_no, last_id)
        yield from out
        out.clear()

    def end(self, last_no: int, last_id: str) -> None:
        missing = [
            name
            for name, open_no in (("SE", self.st), ("GE", self.gs), ("IEA", self.isa))
            if open_no is not None
        ]
        if not missing and self.cut is None:
            return
        if self.cut is not None:
            at = f"it ends in the middle of segment {last_no + 1} ({self.cut})"
        else:
            at = f"it ends after segment {last_no} ({last_id})"
        no_trailer = f" with no {', '.join(missing)}" if missing else ""
        where = _where(last_id or "ISA", last_no)
        claim = self.claim
        if claim is not None:
            self.claim = None
            data = self.build(claim)
            reason = ReadProblem(
                where,
                f"the file is truncated: {at}{no_trailer}, inside claim"
                f" {claim.claim_id or '(no CLM01)'} begun at CLM segment {claim.clm};"
                " the claim may be incomplete",
            )
            claim.problems.append(reason)
            self.out.append(
                _Out("partial", data, tuple(claim.problems), claim.claim_id, self.origin(claim))
            )
            return
        self.file_problem(
            where, f"the file is truncated: {at}{no_trailer}; claims after it are missing"
        )

    def segment(self, no: int, els: list[str]) -> None:
        sid = els[0]
        if sid == "ISA":
            self.close_envelopes(no, sid, ("SE", "GE", "IEA"))
            self.isa = no
        elif sid == "IEA":
            self.close_envelopes(no, sid, ("SE", "GE"))
            self.isa = None
        elif sid == "GS":
            self.close_envelopes(no, sid, ("SE", "GE"))
            self.gs = no
            self.gs_version = _get(els, 8)
        elif sid == "GE":
            self.close_envelopes(no, sid, ("SE",))
            self.gs = None
        elif sid == "ST":
            self.close_envelopes(no, sid, ("SE",))
            self.open_st(no, els)
        elif sid == "SE":
            self.close_claim()
            self.st = None
            self.st_ok = False
        elif not self.st_ok:
            if sid == "CLM":  # outside an 837P transaction set: not read, but reported
                self.lost(no, els)
            return
        elif sid == "HL":
            self.close_claim()
            self.hl(no, els)
        elif self.claim is not None:
            if sid == "CLM":
                self.close_claim()
                self.clm(no, els)
            elif sid == "LX":
                self.lx(no, els)
            elif self.claim.lines:
                self.in_line(no, sid, els)
            else:
                self.in_claim(no, sid, els)
        elif sid == "CLM":
            self.clm(no, els)
        else:
            self.in_hierarchy(no, sid, els)

    # ----------------------------------------------------------------- envelopes

    def close_envelopes(self, no: int, sid: str, trailers: tuple[str, ...]) -> None:
        """Before an envelope segment: report and close the envelopes it finds still open."""
        missing = [
            name
            for name, open_no in (("SE", self.st), ("GE", self.gs), ("IEA", self.isa))
            if open_no is not None and name in trailers
        ]
        if missing:
            what = (
                f"transaction set {self.st_control}"
                if self.st is not None
                else "functional group"
                if self.gs is not None
                else "interchange"
            )
            self.file_problem(
                _where(sid, no),
                f"no {', '.join(missing)} before this {sid}: the {what} before it is not closed",
            )
        self.close_claim()
        self.st = None
        self.st_ok = False
        if "GE" in trailers:
            self.gs = None

    def open_st(self, no: int, els: list[str]) -> None:
        self.st = no
        self.st_control = _get(els, 2)
        version = _get(els, 3) or self.gs_version
        kind = _get(els, 1)
        self.st_ok = kind == "837" and version.startswith("005010X222")
        self.level, self.part = "", ""
        self.billing = self.subscriber = self.payer = self.patient = None
        if not self.st_ok:
            self.file_problem(
                _where("ST", no),
                f"transaction set {self.st_control} is {kind or '?'} {version or '?'},"
                " not an 837P 005010X222; its claims were not read",
            )

    # ----------------------------------------------------------------- hierarchy

    def hl(self, no: int, els: list[str]) -> None:
        level = _get(els, 3)
        self.level, self.part = level, ""
        if level == "20":
            self.billing = _Billing(no)
            self.subscriber = self.payer = self.patient = None
        elif level == "22":
            self.subscriber = _Person(no)
            self.payer = self.patient = None
        elif level == "23":
            self.patient = _Person(no)

    def in_hierarchy(self, no: int, sid: str, els: list[str]) -> None:
        level = self.level
        if sid == "NM1":
            entity = _get(els, 1)
            if level == "20" and entity == "85" and self.billing is not None:
                self.part = "2010AA"
                if _get(els, 8) == "XX":
                    self.billing.npi = _get(els, 9) or None
            elif level == "22" and entity == "IL" and self.subscriber is not None:
                self.part = "2010BA"
                self.subscriber.id = _get(els, 9) or None
            elif level == "22" and entity == "PR":
                self.part = "2010BB"
                self.payer = _Payer(_get(els, 9) or None, _get(els, 3) or None)
            elif level == "23" and entity == "QC" and self.patient is not None:
                self.part = "2010CA"
                self.patient.id = _get(els, 9) or None
            else:
                self.part = ""
        elif sid == "N4" and self.part == "2010AA" and self.billing is not None:
            self.billing.state = _state(no, els, self.billing.problems)
        elif sid == "PRV" and level == "20" and self.billing is not None:
            if _get(els, 1) == "BI":
                self.billing.taxonomy = _get(els, 3) or None
        elif sid == "SBR" and level == "22" and self.subscriber is not None:
            self.subscriber.sbr = self.sbr(no, els, self.subscriber.problems)
        elif sid == "PAT":
            person = self.patient if level == "23" else self.subscriber
            if person is not None and level in ("22", "23"):
                self.pat(no, els, person)
        elif sid == "DMG":
            if self.part == "2010BA" and self.subscriber is not None:
                self.dmg(no, els, self.subscriber)
            elif self.part == "2010CA" and self.patient is not None:
                self.dmg(no, els, self.patient)

    def pat(self, no: int, els: list[str], person: _Person) -> None:
        """PAT05/PAT06: the patient's date of death (the value is never quoted)."""
        fmt, value = _get(els, 5), _get(els, 6)
        if not value:
            return
        if fmt != "D8":
            person.problems.append(
                ReadProblem(_where("PAT", no, 5), f'date format "{fmt}" is not D8 (CCYYMMDD)')
            )
            return
        death = _ccyymmdd(value)
        if death is None:
            person.problems.append(
                ReadProblem(_where("PAT", no, 6), "date of death is not a valid date (CCYYMMDD)")
            )
        else:
            person.death_date = death

    def dmg(self, no: int, els: list[str], person: _Person) -> None:
        fmt, value, sex = _get(els, 1), _get(els, 2), _get(els, 3)
        problems = person.problems
        if fmt != "D8":
            problems.append(
                ReadProblem(_where("DMG", no, 1), f'date format "{fmt}" is not D8 (CCYYMMDD)')
            )
        elif value:
            birth = _ccyymmdd(value)
            if birth is None:
                problems.append(
                    ReadProblem(_where("DMG", no, 2), "birth date is not a valid date (CCYYMMDD)")
                )
            elif birth > self.today.isoformat():
                problems.append(ReadProblem(_where("DMG", no, 2), "birth date is after today"))
            else:
                person.birth_date = birth
        if sex:
            if sex in _SEXES:
                person.sex = sex
            else:
                problems.append(ReadProblem(_where("DMG", no, 3), f'sex "{sex}" is not F, M or U'))
