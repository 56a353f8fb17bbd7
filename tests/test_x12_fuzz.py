"""Damaged 837P files never lose a claim silently (issue 19.6): the sample files, truncated,
with segments deleted or duplicated and bytes flipped, give exactly one `RawClaim` (a claim
or a located problem) per CLM segment, or one located `InputFileError` when the file has no
usable ISA or no CLM at all; nothing else escapes."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from cleanclaim.engine.formats.x12.syntax import _delimiters
from cleanclaim.engine.formats.x12.walker import _Walker
from cleanclaim.engine.inputs import InputFileError
from cleanclaim.engine.reading import read_claims
from tests.conftest import shared_engine

DATA = Path(__file__).parent / "data" / "x12"
SAMPLES = sorted(DATA.glob("*.837"))
TODAY = date(2026, 3, 2)
ROUNDS = 25  # mutations per sample file and kind


def clm_segments(text: str) -> list[int] | None:
    """Segment numbers of the CLM segments as the reader's tokenizer sees them (None: the
    ISA is unusable, so the file is refused as a whole)."""
    try:
        _delimiters(text, len(text) - len(text.lstrip("\ufeff \t\r\n\x0b\x0c\x1a\x00")), "x")
        walker = _Walker(text, "x", {}, TODAY)
    except InputFileError:
        return None
    return [no for no, els in walker.segments() if els[0] == "CLM"]


def mutate(raw: bytes, rng: random.Random, kind: str) -> bytes:
    if kind == "truncate":
        return raw[: rng.randrange(len(raw))]
    if kind == "flip":
        out = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(len(out))] = rng.choice(
                [rng.randrange(256), ord("~"), ord("*"), ord(":"), ord(">"), 0xE9]
            )
        return bytes(out)
    terminator = raw[105:106] if raw.startswith(b"ISA") else b"~"
    segments = raw.split(terminator)
    at = rng.randrange(len(segments))
    if kind == "delete":
        del segments[at]
    else:
        segments.insert(at, segments[at])
    return terminator.join(segments)


@pytest.mark.parametrize("kind", ["truncate", "flip", "delete", "duplicate"])
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_clm_yields_one_claim_or_located_problem(
    tmp_path: Path, sample: Path, kind: str
) -> None:
    rng = random.Random(f"{sample.name}-{kind}")
    original = sample.read_bytes()
    engine = shared_engine()
    for round_no in range(ROUNDS):
        damaged = mutate(original, rng, kind)
        path = tmp_path / f"{round_no}.837"
        path.write_bytes(damaged)
        expected = clm_segments(damaged.decode("utf-8", errors="replace"))
        try:
            raws = list(read_claims(path))
        except InputFileError as exc:
            assert exc.message, "an InputFileError must say why"
            assert expected is None or expected == [], (
                f"{sample.name} {kind} round {round_no}: {len(expected)} CLM segment(s)"
                f" but the file was refused: {exc}"
            )
            continue
        assert expected is not None
        got = Counter(
            r.origin["segment"] for r in raws if r.origin is not None and "segment" in r.origin
        )
        assert got == Counter(expected), f"{sample.name} {kind} round {round_no}"
        for raw in raws:
            if raw.data is None:
                assert raw.problems and all(p.where for p in raw.problems)
            decision = engine.check_raw(raw)  # never raises
            assert decision.status in ("clean", "review", "deny", "reject")
