"""The X12 tokenizer and element helpers: delimiters from the ISA, segments with their
numbers, positions as messages name them (`CLM05-3`), composites and dates; shared by
the 837P reader and the 835 reader (engine/formats/x835.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Final

from cleanclaim.engine.inputs import InputFileError, ReadProblem

_NUMBER: Final = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)\Z", re.ASCII)
_INTEGER: Final = re.compile(r"\d+\Z", re.ASCII)
_ALT_COMPONENT_SEPARATORS: Final = (">", ":")
_CHUNK: Final = 1 << 20  # characters split at a time, so a huge file is never listed whole
# Around segments: line breaks, padding, and the DOS end-of-file and NUL characters.
_BLANK: Final = "\ufeff \t\r\n\x0b\x0c\x1a\x00"


# --------------------------------------------------------------------------- positions


def _element(seg_id: str, pos: int, comp: int | None = None) -> str:
    """X12 reference designator: CLM05-3, DMG02, SV1-04, SV1-01-2, HI01-2."""
    ref = f"{seg_id}{'-' if seg_id[-1:].isdigit() else ''}{pos:02d}"
    return ref if comp is None else f"{ref}-{comp}"


def _where(seg_id: str, no: int, pos: int | None = None, comp: int | None = None) -> str:
    where = f"{seg_id} segment {no}"
    return where if pos is None else f"{where}, element {_element(seg_id, pos, comp)}"


def _get(els: list[str], pos: int) -> str:
    return els[pos].strip() if pos < len(els) else ""


def _components(value: str, declared: str) -> list[str]:
    """Split a composite on the declared separator, or on '>'/':' when only that is used."""
    if declared in value:
        return value.split(declared)
    for alt in _ALT_COMPONENT_SEPARATORS:
        if alt in value:
            return value.split(alt)
    return [value]


def _ccyymmdd(value: str) -> str | None:
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        return None


def _number(value: str) -> int | float | None:
    if not _NUMBER.match(value):
        return None
    if "." not in value:
        return int(value)
    amount = Decimal(value)
    return int(amount) if amount == amount.to_integral_value() else float(amount)


class Tokens:
    """The segments of an X12 file, split with the delimiters its ISA declares; shared by
    the 837P reader and the 835 reader (engine/formats/x835.py)."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        start = 0
        while start < len(text) and text[start] in _BLANK:
            start += 1
        self.text = text
        self.start = start
        self.element, self.component, self.terminator = _delimiters(text, start, source)
        self.cut: str | None = None  # id of a segment the file ends in the middle of

    # ----------------------------------------------------------------- tokenizer

    def segments(self) -> Iterator[tuple[int, list[str]]]:
        """(1-based segment number, elements) of every complete segment, in order.

        A final piece with no terminator after it (a file cut mid-segment) is not
        yielded; `self.cut` then names it.
        """
        text, term, element = self.text, self.terminator, self.element
        end = len(text)
        pos = self.start
        no = 0
        self.cut = None
        while pos < end:
            stop = pos + _CHUNK
            if stop < end:
                cut = text.rfind(term, pos, stop)
                if cut < 0:
                    cut = text.find(term, stop)
                last = cut < 0
            else:
                cut, last = -1, True
            pieces = text[pos : end if last else cut].split(term)
            if last:
                tail = pieces.pop().strip(_BLANK)
                if tail:
                    self.cut = tail.split(element, 1)[0][:3]
            for piece in pieces:
                piece = piece.strip(_BLANK)
                if piece:
                    no += 1
                    yield no, piece.split(element)
            if last:
                break
            pos = cut + 1


def _state(no: int, els: list[str], problems: list[ReadProblem]) -> str | None:
    """N4-02, the state of a provider or facility address: two letters, or None (a foreign
    address has N4-04 instead). The value itself is never quoted (N4 is an address)."""
    value = _get(els, 2).upper()
    if not value:
        return None
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        problems.append(ReadProblem(_where("N4", no, 2), "state code is not two letters"))
        return None
    return value


def _norm(key: str) -> str:
    return " ".join(key.split()).upper()


def _delimiters(text: str, start: int, source: str) -> tuple[str, str, str]:
    """(element separator, component separator ISA16, segment terminator) from the ISA."""
    if start >= len(text):
        raise InputFileError(source, "the file is empty")
    if not text.startswith("ISA", start):
        hint = (
            " (it looks like JSON)"
            if text[start] in "{["
            else " (it looks like XML)"
            if text[start] == "<"
            else ""
        )
        raise InputFileError(
            source, f"not an X12 file: it does not begin with an ISA segment{hint}"
        )
    element = text[start + 3 : start + 4]
    if not element or element.isalnum() or element.isspace():
        raise InputFileError(
            source, "the ISA segment is too short: it has no element separator after 'ISA'"
        )
    # A standard ISA is 106 characters: ISA16 at 104 and the segment terminator at 105.
    # One whose padding was trimmed is accepted when it still has its 16 elements.
    too_short = "the ISA segment is too short (an ISA has 16 elements and is 106 characters long)"
    if text[start + 103 : start + 104] == element and text.count(element, start, start + 104) == 16:
        pos = start + 103
    else:
        pos = start + 3
        for _ in range(15):
            pos = text.find(element, pos + 1, start + 200)
            if pos < 0:
                raise InputFileError(source, too_short)
    if pos + 2 >= len(text):
        raise InputFileError(source, too_short)
    component, terminator = text[pos + 1], text[pos + 2]
    if terminator in text[start:pos]:
        raise InputFileError(source, too_short)  # the 16 "elements" run past the ISA's end
    if component.isalnum() or component.isspace() or component == element:
        raise InputFileError(
            source, f"ISA16 (component separator) {component!r} is not a separator character"
        )
    if terminator.isalnum() or terminator in (element, component):
        raise InputFileError(
            source,
            f"the ISA segment has no segment terminator after ISA16 (found {terminator!r})",
        )
    return element, component, terminator
