"""Envelope integrity (ISA/IEA, GS/GE, ST/SE counts and control numbers), checked in a
pass of its own: a trailer comes after the claims it closes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cleanclaim.engine.formats.x12.syntax import _get, _where
from cleanclaim.engine.inputs import ReadProblem

# --------------------------------------------------------------------------- envelopes


@dataclass(slots=True)
class _Envelope:
    """An interchange (ISA), functional group (GS) or transaction set (ST) being checked."""

    sid: str
    no: int  # segment number of its header
    control: str  # ISA13, GS06 or ST02
    count: int = 0  # segments (ST, itself included), transaction sets (GS), groups (ISA)
    transactions: list[int] = field(default_factory=list)  # ST segment numbers inside

    def name(self) -> str:
        what = {"ST": "transaction set", "GS": "functional group", "ISA": "interchange"}
        return f"{what[self.sid]} {self.control or '(no control number)'}"


# Header -> (trailer, control number element, what the trailer's 01 counts, the
# acknowledgement that rejects it). The TR3 and the X12 acknowledgements reject the whole
# envelope for every one of these errors (TA1 codes 001/021 for the interchange; 999 AK9
# codes 4/5 for a group; 999 IK5 codes 3/4 for a transaction set, and a missing trailer
# likewise), so each is a reject of every claim inside, never only a warning.
_ENVELOPES: Final = {
    "ST": ("SE", "ST02", "segments", "999 IK5"),
    "GS": ("GE", "GS06", "transaction sets", "999 AK9"),
    "ISA": ("IEA", "ISA13", "functional groups", "TA1"),
}


class _EnvelopeCheck:
    """Envelope problems by ST segment number, from one pass over the segments."""

    def __init__(self) -> None:
        self.found: dict[int, list[ReadProblem]] = {}
        self.isa: _Envelope | None = None
        self.gs: _Envelope | None = None
        self.st: _Envelope | None = None

    def flag(self, envelope: _Envelope, where: str, message: str) -> None:
        problem = ReadProblem(
            where,
            f"{message}: the {envelope.name()} is rejected whole ({_ENVELOPES[envelope.sid][3]})",
        )
        for st in envelope.transactions if envelope.sid != "ST" else [envelope.no]:
            self.found.setdefault(st, []).append(problem)

    def unclosed(self, envelope: _Envelope | None, before: str) -> None:
        if envelope is not None:
            trailer = _ENVELOPES[envelope.sid][0]
            self.flag(
                envelope,
                _where(envelope.sid, envelope.no),
                f"the {envelope.name()} begun at {envelope.sid} segment {envelope.no}"
                f" has no {trailer} before {before}",
            )

    def close(self, envelope: _Envelope, no: int, els: list[str]) -> None:
        trailer, control_ref, counted, _ = _ENVELOPES[envelope.sid]
        count, control = _get(els, 1), _get(els, 2)
        if count != str(envelope.count):
            self.flag(
                envelope,
                _where(trailer, no, 1),
                f"{trailer}01 says {count or 'nothing'} {counted}, the"
                f" {envelope.name()} has {envelope.count}",
            )
        if control != envelope.control:
            self.flag(
                envelope,
                _where(trailer, no, 2),
                f"{trailer}02 ({control or 'empty'}) is not the {control_ref}"
                f" ({envelope.control or 'empty'}) of its header",
            )

    def segment(self, no: int, els: list[str]) -> None:
        sid = els[0]
        if self.st is not None:
            self.st.count += 1
        here = f"{sid} segment {no}"
        if sid == "ISA":
            for open_env in (self.st, self.gs, self.isa):
                self.unclosed(open_env, here)
            self.st = self.gs = None
            self.isa = _Envelope("ISA", no, _get(els, 13))
        elif sid == "GS":
            for open_env in (self.st, self.gs):
                self.unclosed(open_env, here)
            self.st = None
            self.gs = _Envelope("GS", no, _get(els, 6))
            if self.isa is not None:
                self.isa.count += 1
        elif sid == "ST":
            self.unclosed(self.st, here)
            self.st = _Envelope("ST", no, _get(els, 2), 1)
            for outer in (self.gs, self.isa):
                if outer is not None:
                    outer.transactions.append(no)
            if self.gs is not None:
                self.gs.count += 1
        elif sid == "SE" and self.st is not None:
            self.close(self.st, no, els)
            self.st = None
        elif sid == "GE" and self.gs is not None:
            self.unclosed(self.st, here)
            self.st = None
            self.close(self.gs, no, els)
            self.gs = None
        elif sid == "IEA" and self.isa is not None:
            for open_env in (self.st, self.gs):
                self.unclosed(open_env, here)
            self.st = self.gs = None
            self.close(self.isa, no, els)
            self.isa = None

    def end(self) -> dict[int, list[ReadProblem]]:
        for open_env in (self.st, self.gs, self.isa):
            self.unclosed(open_env, "the end of the file")
        return self.found
