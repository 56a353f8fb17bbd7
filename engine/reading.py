"""Input files to `RawClaim`s: claim JSON (one object, an array, or NDJSON), X12 837P and
FHIR R4, chosen by extension and, failing that, by content.

NDJSON streams: one line is read, checked and written at a time, so a file of any size
runs in constant memory. A line that is not valid JSON becomes a rejected claim naming
its line number; the lines after it are read normally.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cleanclaim.engine.inputs import InputFileError, RawClaim, ReadProblem
from cleanclaim.engine.model import loads, readable_id

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
X12_SUFFIXES = (".837", ".x12", ".edi")

# X12 payer ids (NM1*PR NM109) and FHIR payer identifiers -> pack ids. Extend with
# `--payer-map FILE` (YAML or JSON mapping).
DEFAULT_PAYER_MAP: dict[str, str] = {"medicare": "medicare", "acme-ppo": "acme-ppo"}


_X12_START = re.compile(rb"(?:ISA|GS|ST|BHT|NM1|HL|CLM)[^A-Za-z0-9\s]")


def _sniff(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in NDJSON_SUFFIXES:
        return "ndjson"
    if suffix in X12_SUFFIXES:
        return "x12"
    if suffix == ".xml":
        return "fhir"
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    # An X12 file begins with ISA; one that lost its ISA (or begins at GS/ST) is still X12,
    # and is reported as malformed X12 rather than as "not valid JSON".
    if _X12_START.match(head):
        return "x12"
    if b'"resourceType"' in head:
        return "fhir"
    return "json"


def read_claims(path: Path, payer_map: Mapping[str, str] | None = None) -> Iterator[RawClaim]:
    """Every claim of an input file, in order; raises `InputFileError` only for a file
    that cannot be read at all."""
    payers = {**DEFAULT_PAYER_MAP, **(payer_map or {})}
    try:
        kind = _sniff(path)
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    if kind == "ndjson":
        yield from _read_ndjson(path)
    elif kind == "x12":
        from cleanclaim.engine.formats.x12 import read_x12

        text, undecodable = _x12_text(path)
        yield from read_x12(text, str(path), payers, undecodable=undecodable)
    elif kind == "fhir":
        from cleanclaim.engine.formats.fhir import read_fhir

        yield from read_fhir(_text(path), str(path), payers)
    else:
        yield from _read_json(path)


def _x12_text(path: Path) -> tuple[str, bool]:
    """An X12 file's text, and whether some bytes were not UTF-8. One bad byte must not
    refuse the whole file: undecodable bytes become U+FFFD, and the reader reports each
    segment that holds one as a located problem of the claim (or loop) it belongs to."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InputFileError(str(path), f"not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read: {exc.strerror or exc}") from exc


def _claim_id(data: Any) -> str | None:
    if isinstance(data, dict):
        return readable_id(data.get("claim_id"))
    return None


def ndjson_origin(file: str, line: int) -> dict[str, Any]:
    """The origin of the claim on NDJSON line `line` (1-based) of `file`."""
    return {"file": file, "format": "ndjson", "line": line}


def json_origin(file: str, index: int | None) -> dict[str, Any]:
    """The origin of a claim of a JSON file: `index` in its array (0-based), None for a
    file that is one claim (or that is not valid JSON)."""
    return {"file": file, "format": "json", "index": index}


def _read_ndjson(path: Path) -> Iterator[RawClaim]:
    position = 0
    file = str(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            origin = ndjson_origin(file, number)
            try:
                data = loads(raw)
            except ValueError as exc:
                yield RawClaim(
                    position,
                    None,
                    (ReadProblem(f"line {number}", f"not valid JSON: {exc}"),),
                    None,
                    origin,
                )
            else:
                yield RawClaim(position, data, (), _claim_id(data), origin)
            position += 1


def _read_json(path: Path) -> Iterator[RawClaim]:
    text = _text(path)
    file = str(path)
    try:
        data = loads(text)
    except ValueError as exc:
        # The claims in a broken JSON document cannot be told apart: one rejected
        # decision stands for the file, naming where the JSON breaks.
        yield RawClaim(
            0, None, (ReadProblem(file, f"not valid JSON: {exc}"),), None, json_origin(file, None)
        )
        return
    if isinstance(data, list):
        for position, item in enumerate(data):
            yield RawClaim(position, item, (), _claim_id(item), json_origin(file, position))
    else:
        yield RawClaim(0, data, (), _claim_id(data), json_origin(file, None))


def iter_inputs(
    paths: list[Path], payer_map: Mapping[str, str] | None = None
) -> Iterator[RawClaim | InputFileError]:
    """Claims of several files in order; a file that cannot be read yields its error
    in place, and the next file is read."""
    offset = 0
    for path in paths:
        count = 0
        try:
            for raw in read_claims(path, payer_map):
                count += 1
                yield RawClaim(
                    offset + raw.position, raw.data, raw.problems, raw.claim_id, raw.origin
                )
        except InputFileError as exc:
            yield exc
        offset += count
