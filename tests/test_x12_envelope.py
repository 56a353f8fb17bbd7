"""Envelope integrity (issue 18.6) and claims never dropped (19.6): SE/GE/IEA counts and
control numbers, CLM outside ST/SE, non-UTF-8 bytes, X12 without ISA; and damaged files
never quote patient values (18.9)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cleanclaim.engine.formats.x12 import read_x12
from cleanclaim.engine.inputs import InputFileError, RawClaim
from cleanclaim.engine.reading import read_claims

DATA = Path(__file__).parent / "data" / "x12"
MULTI = (DATA / "cleanclaim.multi.837").read_text()
TODAY = date(2026, 3, 2)
TX1 = ["C-1001", "C-1002", "C-1003", "C-1004"]  # transaction set 0001 of MULTI


def read(text: str) -> list[RawClaim]:
    return list(read_x12(text, "t.837", {}, today=TODAY))


def flagged(claims: list[RawClaim], fragment: str) -> list[str | None]:
    return [
        c.claim_id for c in claims if any(fragment in f"{p.where}: {p.message}" for p in c.problems)
    ]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.837")), ids=lambda p: p.name)
def test_the_samples_have_sound_envelopes(path: Path) -> None:
    for claim in read(path.read_text()):
        assert not any("rejected whole" in p.message for p in claim.problems)


def test_se01_count_rejects_every_claim_of_that_transaction_only() -> None:
    claims = read(MULTI.replace("SE*62*0001", "SE*61*0001"))
    assert flagged(claims, "rejected whole") == TX1
    (problem,) = claims[0].problems
    assert problem.where == "SE segment 64, element SE01"
    assert problem.message == (
        "SE01 says 61 segments, the transaction set 0001 has 62: the"
        " transaction set 0001 is rejected whole (999 IK5)"
    )


def test_se02_must_match_st02() -> None:
    claims = read(MULTI.replace("SE*62*0001", "SE*62*0009"))
    assert flagged(claims, "SE02 (0009) is not the ST02 (0001)") == TX1


def test_ge_and_iea_counts_and_control_numbers() -> None:
    ge = next(s.strip() for s in MULTI.split("~") if s.strip().startswith("GE*"))
    iea = next(s.strip() for s in MULTI.split("~") if s.strip().startswith("IEA*"))
    group = read(MULTI.replace(ge + "~", "GE*9*" + ge.split("*")[2] + "~", 1))
    assert flagged(group, "GE01 says 9 transaction sets") == [*TX1, "C-2001"]
    group = read(MULTI.replace(ge + "~", "GE*" + ge.split("*")[1] + "*77~", 1))
    assert flagged(group, "GE02 (77) is not the GS06") == [*TX1, "C-2001"]
    every = read(MULTI.replace(iea, "IEA*" + iea.split("*")[1] + "*000000099"))
    assert flagged(every, "(TA1)") == [*TX1, "C-2001", "C-1001"]
    every = read(MULTI.replace(iea, "IEA*7*" + iea.split("*")[2]))
    assert flagged(every, "IEA01 says 7 functional groups") == [*TX1, "C-2001", "C-1001"]


def test_a_clm_after_se_is_a_located_record_not_dropped() -> None:
    text = MULTI.replace("SE*62*0001~", "SE*62*0001~\nCLM*LOST-1*10.00***11:B:1*Y*A*Y*Y~", 1)
    claims = read(text)
    lost = [c for c in claims if c.claim_id == "LOST-1"]
    assert len(lost) == 1 and lost[0].data is None
    assert lost[0].problems[0].where == "CLM segment 65"
    assert "outside any transaction set" in lost[0].problems[0].message


def test_one_non_utf8_byte_rejects_only_its_claim(tmp_path: Path) -> None:
    path = tmp_path / "latin1.837"
    path.write_bytes(
        MULTI.replace("NM1*IL*1*DOE*ALEX", "NM1*IL*1*DO\xc9*ALEX", 1).encode("latin-1")
    )
    claims = list(read_claims(path))
    assert len(claims) == 6  # before: the whole file was refused ("not UTF-8 text")
    bad = flagged(claims, "not UTF-8")
    assert bad == ["C-1001", "C-1002"]  # the subscriber loop of both claims
    assert claims[0].problems[0].where == "NM1 segment 16"


def test_x12_without_isa_is_malformed_x12_not_json(tmp_path: Path) -> None:
    path = tmp_path / "claims.txt"
    path.write_text(MULTI[MULTI.index("GS*") :])
    with pytest.raises(InputFileError) as err:
        list(read_claims(path))
    assert "not an X12 file: it does not begin with an ISA segment" in err.value.message
    assert "JSON" not in err.value.message


PATIENT_VALUES = [
    "DOE",
    "ALEX",
    "1EG4TE5MK73",
    "19510412",
    "ROE",
    "KIM",
    "W123456789",
    "20150607",
    "SPRINGFIELD",
]


@pytest.mark.parametrize(
    "damage",
    [
        ("DMG*D8*19510412*F", "DMG*D8*19511312*X"),  # bad birth date and sex
        ("NM1*IL*1*DOE*ALEX****MI*1EG4TE5MK73", "NM1*IL*1*DOE*ALEX****MI*1EG4TE5MK73*X*Y*Z"),
        ("SE*62*0001", "SE*1*0001"),
        ("N4*SPRINGFIELD*IL*627010000", "N4*SPRINGFIELD*ILLINOIS*627010000"),
        ("HL*4*3*23*0", "HL*4*3*99*0"),
    ],
)
def test_error_messages_never_quote_patient_values(damage: tuple[str, str]) -> None:
    claims = read(MULTI.replace(*damage))
    text = " ".join(f"{p.where} {p.message}" for c in claims for p in c.problems)
    for value in PATIENT_VALUES:
        assert value not in text
