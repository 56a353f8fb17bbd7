"""The X12 837P reader (engine/formats/x12/) on the LinuxForHealth samples and our fixture.

Expected values below were read off the files by hand; segment numbers count from ISA = 1.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine.formats.x12 import read_x12
from cleanclaim.engine.inputs import InputFileError, RawClaim

DATA = Path(__file__).parent / "data" / "x12"
SAMPLES = sorted(DATA.glob("demo.*.837"))
MULTI = "cleanclaim.multi.837"
ALL_IDS = ["C-1001", "C-1002", "C-1003", "C-1004", "C-2001", "C-1001"]  # claims in MULTI
TODAY = date(2026, 3, 2)
PAYERS = {"00430": "medicare", "ACME HEALTH": "acme", "999996666": "keyins"}


def text_of(name: str) -> str:
    return (DATA / name).read_text()


def read(
    text: str, source: str = "test.837", payers: dict[str, str] | None = None
) -> list[RawClaim]:
    return list(read_x12(text, source, PAYERS if payers is None else payers, today=TODAY))


def read_file(name: str) -> list[RawClaim]:
    return read(text_of(name), name)


def data(claim: RawClaim) -> dict[str, Any]:
    assert claim.data is not None
    return claim.data


def messages(claim: RawClaim) -> list[str]:
    return [f"{p.where}: {p.message}" for p in claim.problems]


def segments(text: str) -> list[str]:
    return [s.strip() for s in text.split("~") if s.strip()]


def join(segs: list[str]) -> str:
    """Segments as a file, each SE01 recounted (so that a test that removes or adds a
    segment tests that, not the envelope check: tests/test_x12_envelope.py does)."""
    out = list(segs)
    start: int | None = None
    for i, seg in enumerate(out):
        if seg.startswith("ST*"):
            start = i
        elif seg.startswith("SE*") and start is not None:
            parts = seg.split("*")
            parts[1] = str(i - start + 1)
            out[i] = "*".join(parts)
            start = None
    return "".join(s + "~\n" for s in out)


def replace_segment(text: str, old: str, new: str | None, after: str = "ISA") -> str:
    """The file with the first segment `old` after segment `after` replaced by `new` (or
    removed)."""
    segs = segments(text)
    start = next(i for i, seg in enumerate(segs) if seg.startswith(after))
    i = segs.index(old, start)
    return join(segs[:i] + ([new] if new is not None else []) + segs[i + 1 :])


# --------------------------------------------------------------------------- the samples


def test_all_twelve_sample_files_are_copied() -> None:
    names = {p.name for p in DATA.iterdir()}
    assert {"LICENSE", "NOTICE"} <= names
    assert len(SAMPLES) == 10


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_reads_one_clean_claim(path: Path) -> None:
    claims = read(path.read_text(), path.name)
    assert len(claims) == 1
    claim = claims[0]
    assert claim.problems == ()
    assert claim.position == 0
    d = data(claim)
    assert d["claim_id"] == claim.claim_id
    assert d["source"]["format"] == "x12" and d["source"]["file"] == path.name
    assert d["lines"] and all(line["code"] and line["service_date"] for line in d["lines"])
    assert "received_date" not in d and "coverage" not in d["member"]
    assert d["plan"] is None and d["documentation"] == {}


# name: (claim id, CLM segment, payer, member id, birth date, sex, POS, diagnoses, codes)
EXPECTED = {
    "demo.ambulance.example5.837": (
        "051068",
        23,
        "x12:123245",
        "012345678A",
        "1963-07-29",
        "F",
        "41",
        ["8628", "E8888", "9592", "8540"],
        ["A0427", "A0425", "A0422", "A0382"],
    ),
    "demo.autoaccident.837": (
        "900000032",
        25,
        "x12:999888777",
        "B99977791G",
        "1948-06-01",
        "M",
        "11",
        ["8540"],
        ["99201", "26010"],
    ),
    "demo.cob.2ndary.example4.837": (
        "125WILL",
        21,
        "x12:C12345",
        "123456789A",
        "1925-01-10",
        "M",
        "11",
        ["7215"],
        ["98940"],
    ),
    "demo.cob.example3.A.837": (
        "26407789",
        31,
        "keyins",
        "111223333",
        "1973-05-01",
        "M",
        "11",
        ["4779", "2724", "2780", "53081"],
        ["99213", "90782", "J3301"],
    ),
    "demo.cob.example4.837": (
        "101KEN6055",
        22,
        "x12:10234",
        "102200221B1",
        "1956-01-10",
        "M",
        "11",
        ["71516", "71906"],
        ["99203"],
    ),
    "demo.drug.example10.1.837": (
        "CLMNO12345",
        20,
        "x12:PLANID12345",
        "MBRID12345",
        "1943-05-01",
        "M",
        "11",
        ["03591"],
        ["90782", "J1550"],
    ),
    "demo.drug.example10.3.837": (
        "CLMNO12345",
        21,
        "x12:PLANID12345",
        "MBRID01234",
        "1943-05-01",
        "M",
        "12",
        ["4659"],
        ["S9500", "J0696", "J7051", "J3490", "J3490", "J3490"],
    ),
    "demo.example1.837": (
        "26463774",
        27,
        "keyins",
        "JS00111223333",
        "1973-05-01",
        "M",
        "11",
        ["0340", "V7389"],
        ["99213", "87070", "99214", "86663"],
    ),
    "demo.example11.837": (
        "ABC123-RI",
        21,
        "x12:12345",
        "00124A089",
        "1940-12-29",
        "F",
        "11",
        ["496", "25000"],
        ["E0570", "A7003"],
    ),
    "demo.example12.837": (
        "TS234H3",
        26,
        "x12:00123",
        "57976235C",
        "1996-08-07",
        "M",
        "23",
        ["9951"],
        ["99284"],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_fields_match_the_file(name: str) -> None:
    claim_id, clm, payer, member_id, birth, sex, pos, diagnoses, codes = EXPECTED[name]
    (claim,) = read_file(name)
    d = data(claim)
    assert (claim.claim_id, d["source"]["segment"], d["payer"]) == (claim_id, clm, payer)
    assert d["member"] == {"id": member_id, "birth_date": birth, "sex": sex}
    assert d["place_of_service"] == pos
    # ICD-9 qualifiers BK/BF: codes kept as they are (the engine's diagnosis rule rejects them)
    assert d["diagnoses"] == diagnoses
    assert [line["code"] for line in d["lines"]] == codes
    assert [line["line"] for line in d["lines"]] == list(range(1, len(codes) + 1))
    assert d["frequency"] == "original" and d["replaces"] is None


def test_ambulance_lines_in_detail() -> None:
    d = data(read_file("demo.ambulance.example5.837")[0])
    assert d["lines"][1] == {
        "line": 2,
        "code": "A0425",
        "modifiers": ["RH"],
        "units": 21,
        "charge": "8.20",
        "service_date": "2005-02-08",
        "diagnosis_pointers": [1, 2, 3, 4],
        "minutes": None,
        "place_of_service": "41",
    }
    # no NM1*82: the billing provider renders, with its PRV*BI taxonomy
    assert d["billing_provider"] == {"npi": "2366554859", "taxonomy": "3416L0300X"}
    assert d["rendering_provider"] == {
        "npi": "2366554859",
        "taxonomy": "3416L0300X",
        "specialty": None,
    }
    assert d["referring_provider"] is None and d["authorizations"] == []


def test_rendering_and_referring_providers() -> None:
    d = data(read_file("demo.example11.837")[0])
    assert d["referring_provider"] == {"npi": "9988776655"}
    assert d["rendering_provider"]["npi"] == "1122334455"
    d = data(read_file("demo.autoaccident.837")[0])
    assert d["rendering_provider"] == {
        "npi": "2366552595",
        "taxonomy": "208D00000X",
        "specialty": None,
    }
    # NM1*DN with no identifier: a referring provider without NPI
    assert data(read_file("demo.cob.example4.837")[0])["referring_provider"] == {"npi": None}


def test_other_payer_and_other_subscriber_loops_do_not_override_the_claim() -> None:
    # 2320/2330A/2330B: SBR*P, NM1*IL (COM188-404777) and NM1*PR (59999) after the 2310B
    d = data(read_file("demo.cob.example4.837")[0])
    assert d["payer"] == "x12:10234" and d["member"]["id"] == "102200221B1"
    assert d["rendering_provider"]["npi"] == "9090909090"
    assert d["lines"][0]["modifiers"] == ["25"]
    d = data(read_file("demo.example12.837")[0])
    assert d["payer"] == "x12:00123" and d["member"]["id"] == "57976235C"


def test_colon_declared_but_gt_used_is_tolerated() -> None:
    text = text_of("demo.example11.837")
    assert text[104] == ":"  # ISA16 declares ':'
    assert "SV1*HC>E0570>RR" in text
    (claim,) = read(text)
    d = data(claim)
    assert claim.problems == ()
    assert d["place_of_service"] == "11" and d["frequency"] == "original"
    assert d["diagnoses"] == ["496", "25000"]
    first = d["lines"][0]
    assert (first["code"], first["modifiers"], first["diagnosis_pointers"]) == (
        "E0570",
        ["RR"],
        [1, 2],
    )
    # the same file written with the declared separator reads the same
    fixed = text.replace(">", ":")
    assert data(read(fixed)[0]) == d


def test_rd8_service_dates_take_the_start() -> None:
    d = data(read_file("demo.drug.example10.3.837")[0])
    line = d["lines"][0]
    assert (line["service_date"], line["service_end_date"]) == ("2004-02-01", "2004-02-07")
    assert (line["units"], line["place_of_service"]) == (7, "12")
    # description component (SV1-01-7) is not a modifier
    assert d["lines"][3]["code"] == "J3490" and d["lines"][3]["modifiers"] == []
    # the line-level NM1*DK (ordering provider, 2420E) is not the rendering provider
    assert d["rendering_provider"]["npi"] == "1234567893"


# --------------------------------------------------------------------------- our fixture


def test_multi_groups_transactions_and_hierarchy() -> None:
    claims = read_file(MULTI)
    assert [c.claim_id for c in claims] == ALL_IDS
    assert [c.position for c in claims] == list(range(6))
    assert all(c.problems == () for c in claims)
    ds = [data(c) for c in claims]
    assert [d["source"]["segment"] for d in ds] == [19, 33, 47, 56, 80, 103]
    assert [d["source"]["transaction"] for d in ds] == ["0001"] * 4 + ["0002", "0003"]
    assert [d["payer"] for d in ds] == ["medicare", "medicare", "acme", "acme", "acme", "medicare"]
    # subscriber is the patient
    assert ds[0]["member"] == {"id": "1EG4TE5MK73", "birth_date": "1951-04-12", "sex": "F"}
    # two dependents (2000C) of one subscriber: subscriber's id, each patient's DMG
    assert ds[2]["member"] == {"id": "W123456789", "birth_date": "2015-06-07", "sex": "F"}
    assert ds[3]["member"] == {"id": "W123456789", "birth_date": "1980-01-01", "sex": "M"}
    # second transaction: another billing provider, no PRV*BI
    assert ds[4]["billing_provider"] == {"npi": "1987654328", "taxonomy": None}
    assert ds[4]["rendering_provider"]["npi"] == "1987654328"
    assert ds[4]["diagnoses"] == ["L821", "D485"]


def test_multi_first_claim_in_full() -> None:
    d = data(read_file(MULTI)[0])
    assert d == {
        "claim_id": "C-1001",
        "payer": "medicare",
        "plan": None,
        "frequency": "original",
        "replaces": None,
        "member": {"id": "1EG4TE5MK73", "birth_date": "1951-04-12", "sex": "F"},
        "billing_provider": {"npi": "1234567893", "taxonomy": "207RC0000X"},
        "rendering_provider": {"npi": "1666777887", "taxonomy": "207RC0000X", "specialty": None},
        "referring_provider": {"npi": "1555444334"},
        "place_of_service": "11",
        "service_state": "IL",
        "clia_number": None,
        # 2000B SBR*P ... MB: the claim's payer, primary, Medicare (SBR01 P, SBR09 MB)
        "insurance": [{"payer": "medicare", "type": "medicare", "order": "primary"}],
        "ordering_provider": None,
        "diagnoses": ["R079", "R0602"],
        "authorizations": [
            # claim level (2300): all lines' codes, first to last date of service
            {
                "number": "PA-77812",
                "codes": ["93000", "93306"],
                "start": "2026-02-10",
                "end": "2026-02-10",
                "units": None,
            },
            # line level (2400, line 2): that line's code and date
            {
                "number": "PA-77813",
                "codes": ["93306"],
                "start": "2026-02-10",
                "end": "2026-02-10",
                "units": None,
            },
        ],
        "lines": [
            {
                "line": 1,
                "code": "93000",
                "modifiers": [],
                "units": 1,
                "charge": "45.00",
                "service_date": "2026-02-10",
                "diagnosis_pointers": [1, 2],
                "minutes": None,
                "place_of_service": "11",
            },
            {
                "line": 2,
                "code": "93306",
                "modifiers": ["26"],
                "units": 1,
                "charge": "200.00",
                "service_date": "2026-02-10",
                "diagnosis_pointers": [1],
                "minutes": None,
                "place_of_service": "11",
            },
        ],
        "documentation": {},
        "source": {"format": "x12", "file": MULTI, "segment": 19, "transaction": "0001"},
    }


def test_frequency_replaces_minutes_and_line_place_of_service() -> None:
    claims = read_file(MULTI)
    replacement = data(claims[1])
    assert (replacement["frequency"], replacement["replaces"]) == ("replacement", "PAYERICN0001")
    line = replacement["lines"][0]
    assert (line["units"], line["minutes"], line["modifiers"]) == (30, 30, ["GP"])
    assert (line["service_date"], line["service_end_date"]) == ("2026-02-11", "2026-02-12")
    void = data(claims[5])
    assert (void["frequency"], void["replaces"]) == ("void", "PAYERICN0002")
    lines = data(claims[3])["lines"]
    assert [ln["place_of_service"] for ln in lines] == ["22", "11"]  # SV1-05 overrides
    assert data(claims[3])["place_of_service"] == "11"


def test_payer_lookup_by_id_then_name_then_raw_id() -> None:
    text = text_of(MULTI)
    by_name = read(text, payers={"medicare part b": "medicare"})
    assert data(by_name[0])["payer"] == "medicare"  # by name, case and spacing ignored
    assert data(by_name[2])["payer"] == "x12:ACME01"
    by_id = read(text, payers={"ACME01": "acme", "MEDICARE PART B": "other"})
    assert data(by_id[2])["payer"] == "acme"
    assert data(by_id[0])["payer"] == "other"


def test_line_breaks_and_terminators_do_not_matter() -> None:
    text = text_of(MULTI)
    expected = [c.data for c in read(text)]
    one_line = text.replace("\n", "")
    crlf = text.replace("\n", "\r\n")
    newline_terminated = one_line.replace("~", "\n")
    for variant in (one_line, crlf, newline_terminated, "\ufeff" + crlf + "\x1a"):
        assert [c.data for c in read(variant)] == expected


def test_trimmed_isa_padding_is_accepted() -> None:
    text = text_of(MULTI).replace("CLEANCLAIMTEST ", "CLEANCLAIMTEST").replace("   *", "*")
    assert not text.startswith("ISA*00*          *")
    assert [c.claim_id for c in read(text)] == [c.claim_id for c in read_file(MULTI)]


# --------------------------------------------------------------------------- damage


def test_damaged_claim_in_the_middle_others_still_read() -> None:
    good = read(text_of(MULTI))
    text = replace_segment(
        text_of(MULTI), "SV1*HC:99213*80.00*UN*1***1", "SV1*HC:99213*80.00*UN*x***1"
    )
    claims = read(text)
    assert [c.claim_id for c in claims] == [c.claim_id for c in good]
    bad = claims[2]
    assert messages(bad) == ['SV1 segment 50, element SV1-04: units "x" is not a number']
    assert bad.claim_id == "C-1003" and data(bad)["lines"][0]["units"] is None
    for i in (0, 1, 3, 4, 5):
        assert claims[i] == good[i]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "LX*2",
            None,
            ["SV1 segment 29: a second SV1 in the line begun at LX segment 26 (is an LX missing?)"],
        ),
        (
            "SV1*HC:93306:26*200.00*UN*1***1",
            None,
            ["LX segment 29: line 2 has no SV1 segment (professional service)"],
        ),
        (
            "CLM*C-1001*245.00***11:B:1*Y*A*Y*Y",
            "CLM**245.00***11:B:1*Y*A*Y*Y",
            ["CLM segment 19, element CLM01: patient control number (claim id) is missing"],
        ),
        (
            "CLM*C-1001*245.00***11:B:1*Y*A*Y*Y",
            "CLM*C-1001*245.00***11:B*Y*A*Y*Y",
            ["CLM segment 19, element CLM05-3: claim frequency code is missing"],
        ),
        (
            "CLM*C-1001*245.00***11:B:1*Y*A*Y*Y",
            "CLM*C-1001*245.00***11:B:6*Y*A*Y*Y",
            [
                'CLM segment 19, element CLM05-3: claim frequency code "6" is not 1 (original),'
                " 7 (replacement) or 8 (void)"
            ],
        ),
        (
            "CLM*C-1001*245.00***11:B:1*Y*A*Y*Y",
            "CLM*C-1001*abc",
            [
                'CLM segment 19, element CLM02: total claim charge "abc" is not a number',
                "CLM segment 19, element CLM05: place of service / frequency composite (CLM05)"
                " is missing",
            ],
        ),
        (
            "SV1*HC:93000*45.00*UN*1***1:2",
            "SV1*93000*4x*ZZ*1***1:a",
            [
                'SV1 segment 27, element SV1-01: "93000" is not a composite qualifier:code',
                'SV1 segment 27, element SV1-02: charge "4x" is not a number',
                'SV1 segment 27, element SV1-03: unit qualifier "ZZ" '
                "is not UN (units) or MJ (minutes)",
                'SV1 segment 27, element SV1-07-2: diagnosis pointer "a" is not a whole number',
            ],
        ),
        (
            "DTP*472*RD8*20260211-20260212",
            "DTP*472*RD8*20260212-20260211",
            [
                "DTP segment 38, element DTP03: service date is not a valid date range"
                " (CCYYMMDD-CCYYMMDD)"
            ],
        ),
        (
            "DTP*472*RD8*20260211-20260212",
            "DTP*472*D6*260211",
            [
                'DTP segment 38, element DTP02: date format "D6" is not D8 (CCYYMMDD) or RD8'
                " (CCYYMMDD-CCYYMMDD)"
            ],
        ),
        (
            "HI*ABK:I10",
            "HI*I10",
            ['HI segment 35, element HI01: "I10" is not a composite qualifier:code'],
        ),
        ("HI*ABK:I10", "HI*ABK", ["HI segment 35, element HI01-2: ABK diagnosis code is missing"]),
        (
            "HI*ABK:I10",
            "HI*ABK:*BG:01",
            ["HI segment 35, element HI01-2: ABK diagnosis code is missing"],
        ),
    ],
)
def test_damaged_segments_are_located(old: str, new: str | None, expected: list[str]) -> None:
    text = replace_segment(text_of(MULTI), old, new, after="CLM*C-1001*245.00***11:B:1*Y*A*Y*Y")
    claims = read(text)
    assert len(claims) == 6
    damaged = [c for c in claims if c.problems]
    assert len(damaged) == 1
    assert messages(damaged[0]) == expected


def test_line_without_service_date_and_bad_line_number() -> None:
    segs = segments(text_of(MULTI))
    assert segs[27] == "DTP*472*D8*20260210" and segs[25] == "LX*1"
    segs[25] = "LX*one"
    del segs[27]
    claims = read(join(segs))
    assert messages(claims[0]) == [
        'LX segment 26, element LX01: line number "one" is not a whole number',
        "LX segment 26: the line has no service date (DTP*472)",
    ]
    assert claims[0].claim_id == "C-1001" and all(not c.problems for c in claims[1:])


def test_bad_birth_date_is_reported_on_every_claim_of_that_person_without_the_value() -> None:
    text = replace_segment(text_of(MULTI), "DMG*D8*20150607*F", "DMG*D8*20151307*X")
    claims = read(text)
    assert messages(claims[2]) == [
        "DMG segment 46, element DMG02: birth date is not a valid date (CCYYMMDD)",
        'DMG segment 46, element DMG03: sex "X" is not F, M or U',
    ]
    assert all(not c.problems for i, c in enumerate(claims) if i != 2)
    assert "20151307" not in str(claims[2].problems)
    future = replace_segment(text_of(MULTI), "DMG*D8*20150607*F", "DMG*D8*20270101*F")
    assert messages(read(future)[2]) == ["DMG segment 46, element DMG02: birth date is after today"]


def test_problem_messages_carry_no_member_data() -> None:
    text = replace_segment(text_of(MULTI), "DMG*D8*19510412*F", "DMG*D8*1951041*F")
    assert text.count("DMG*D8*19510412*F") == 1  # the other claim of this member is intact
    claims = read(text)
    words = ("1EG4TE5MK73", "DOE", "ALEX", "1951041", "19510412")
    problems = str([c.problems for c in claims])
    assert "DMG segment 17" in problems
    assert not any(word in problems for word in words)


def test_missing_payer_is_a_problem() -> None:
    payer = "NM1*PR*2*ACME HEALTH*****PI*ACME01"
    text = replace_segment(text_of(MULTI), payer, None, after="HL*3*1*22*1")
    claims = read(text)
    expected = ["HL segment 39: the subscriber loop has no payer name (NM1*PR, loop 2010BB)"]
    assert messages(claims[2]) == expected and messages(claims[3]) == expected
    assert data(claims[2])["payer"] is None
    assert not claims[4].problems  # the other transaction has its own payer


# --------------------------------------------------------------------------- truncation


# A file that ends early has no SE, GE or IEA: the TR3 rejects the unclosed transaction set,
# group and interchange whole (999 IK5, 999 AK9, TA1), so every claim in them says so.
UNCLOSED = [
    "ST segment 3: the transaction set 0001 begun at ST segment 3 has no SE before the end"
    " of the file: the transaction set 0001 is rejected whole (999 IK5)",
    "GS segment 2: the functional group 1 begun at GS segment 2 has no GE before the end of"
    " the file: the functional group 1 is rejected whole (999 AK9)",
    "ISA segment 1: the interchange 000000001 begun at ISA segment 1 has no IEA before the"
    " end of the file: the interchange 000000001 is rejected whole (TA1)",
]


def test_truncated_mid_claim_yields_complete_claims_then_the_cut_one() -> None:
    text = text_of(MULTI)
    cut = text[: text.index("SV1*HC:99213*80.00") + 12]  # inside segment 50, claim C-1003
    claims = read(cut)
    assert [c.claim_id for c in claims] == ["C-1001", "C-1002", "C-1003"]
    assert claims[0].data == read(text)[0].data and messages(claims[1]) == UNCLOSED
    last = claims[2]
    assert last.data is not None and last.position == 2
    assert messages(last)[-1] == (
        "LX segment 49: the file is truncated: it ends in the middle of segment 50 (SV1)"
        " with no SE, GE, IEA, inside claim C-1003 begun at CLM segment 47; the claim may"
        " be incomplete"
    )


def test_truncated_between_claims_ends_with_a_file_problem() -> None:
    text = text_of(MULTI)
    cut = text[: text.index("CLM*C-1003")]  # in the 2000C loop before claim C-1003
    claims = read(cut)
    assert [c.claim_id for c in claims] == ["C-1001", "C-1002", None]
    assert messages(claims[1]) == UNCLOSED  # closed by HL*3: complete, envelope open
    assert claims[2].data is None
    assert messages(claims[2]) == [
        "DMG segment 46: the file is truncated: it ends after segment 46 (DMG) with no SE,"
        " GE, IEA; claims after it are missing"
    ]


def test_truncated_in_the_first_claim_yields_that_claim_with_the_reason() -> None:
    # Issue 18.5/19.6: it used to raise InputFileError and the claim had no decision.
    text = text_of("demo.example1.837")
    (claim,) = read(text[:900], "cut.837")
    assert claim.claim_id == "26463774" and claim.data is not None
    assert claim.origin == {
        "file": "cut.837",
        "format": "x12",
        "transaction": "0021",
        "segment": 27,
    }
    assert messages(claim)[-1] == (
        "SV1 segment 31: the file is truncated: it ends in the middle of segment 32 (DTP) with"
        " no SE, GE, IEA, inside claim 26463774 begun at CLM segment 27; the claim may be"
        " incomplete"
    )
    (claim,) = read(text[: text.index("SE*")])  # ends after the last line, no SE
    assert any("the file is truncated" in m for m in messages(claim))


def test_missing_trailers_mid_file() -> None:
    segs = segments(text_of(MULTI))
    se = segs.index("SE*62*0001")
    del segs[se]  # transaction 0001 runs into ST 0002
    claims = read(join(segs))
    assert [c.claim_id for c in claims] == ALL_IDS
    no_se = (
        "ST segment 3: the transaction set 0001 begun at ST segment 3 has no SE before ST"
        " segment 64: the transaction set 0001 is rejected whole (999 IK5)"
    )
    assert messages(claims[3]) == [
        "ST segment 64: no SE before this ST: the transaction set 0001 before it is not closed",
        no_se,
    ]
    # A missing SE flags every claim of that transaction (issue 18.6), not only the last.
    assert [messages(c) for c in claims[:3]] == [[no_se]] * 3
    assert not claims[4].problems
    no_trailers = [s for s in segments(text_of("demo.example1.837")) if s[:2] not in ("SE", "GE")]
    (claim,) = read(join(no_trailers))
    assert messages(claim) == [
        "IEA segment 42: no SE, GE before this IEA: the transaction set 0021 before it is not"
        " closed",
        "ST segment 3: the transaction set 0021 begun at ST segment 3 has no SE before IEA"
        " segment 42: the transaction set 0021 is rejected whole (999 IK5)",
        "GS segment 2: the functional group 1 begun at GS segment 2 has no GE before IEA"
        " segment 42: the functional group 1 is rejected whole (999 AK9)",
    ]


# --------------------------------------------------------------------------- not readable


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("  \n", "the file is empty"),
        (
            '{"claim_id": "C-1"}',
            "not an X12 file: it does not begin with an ISA segment (it looks like JSON)",
        ),
        ("hello, world\n", "not an X12 file: it does not begin with an ISA segment"),
        (
            "ISA*03*98765~GS*HC~",
            "the ISA segment is too short (an ISA has 16 elements and is 106 characters long)",
        ),
        ("ISA", "the ISA segment is too short: it has no element separator after 'ISA'"),
    ],
)
def test_not_x12_raises_at_call(text: str, message: str) -> None:
    with pytest.raises(InputFileError) as err:
        read_x12(text, "in.txt", PAYERS)  # raised before iterating
    assert err.value.source == "in.txt" and err.value.message == message


def test_isa_cut_before_its_terminator_raises() -> None:
    isa = text_of(MULTI)[:105]
    with pytest.raises(InputFileError, match="ISA segment is too short"):
        read_x12(isa, "in.txt", PAYERS)


def test_non_837p_transactions_are_reported_and_skipped() -> None:
    text = text_of(MULTI).replace("ST*837*0002*005010X222A2", "ST*837*0002*005010X223A2")
    claims = read(text)
    assert [c.claim_id for c in claims] == [
        "C-1001",
        "C-1002",
        "C-1003",
        "C-1004",
        None,
        "C-2001",
        "C-1001",
    ]
    assert messages(claims[4]) == [
        "ST segment 65: transaction set 0002 is 837 005010X223A2, not an 837P 005010X222; its"
        " claims were not read"
    ]
    # Each CLM in it still gets a located record (issue 19.6), with its claim id.
    assert claims[5].data is None and messages(claims[5]) == [
        "CLM segment 80: the claim was not read: it is in transaction set 0002, which is not"
        " an 837P 005010X222"
    ]
    only_835 = text_of("demo.example1.837").replace("ST*837*0021*005010X222A2", "ST*835*0021")
    assert [c.claim_id for c in read(only_835)] == [None, "26463774"]


def test_a_file_problem_before_the_first_claim_comes_out_first() -> None:
    text = text_of(MULTI).replace("ST*837*0001*005010X222A2", "ST*835*0001")
    claims = read(text)
    assert [c.claim_id for c in claims] == [
        None,
        "C-1001",
        "C-1002",
        "C-1003",
        "C-1004",
        "C-2001",
        "C-1001",
    ]
    assert [c.position for c in claims] == list(range(7))
    assert all(c.data is None for c in claims[:5])


# --------------------------------------------------------------------------- scale and model


def test_a_large_file_reads_every_claim() -> None:
    segs = segments(text_of(MULTI))
    head, claim = segs[:18], segs[18:32]  # envelope and HL loops; CLM C-1001 and its lines
    assert claim[0].startswith("CLM*C-1001") and claim[-1] == "REF*G1*PA-77813"
    tail = ["SE*62*0001", "GE*1*1", "IEA*1*000000001"]
    body = [s.replace("C-1001", f"C-{i:05d}") for i in range(3000) for s in claim]
    claims = read(join(head + body + tail))
    assert len(claims) == 3000 and all(not c.problems for c in claims)
    assert claims[-1].claim_id == "C-02999" and claims[-1].position == 2999


def test_claims_decode_with_the_claim_model() -> None:
    model = pytest.importorskip("cleanclaim.engine.model")
    for name in [MULTI, *(p.name for p in SAMPLES)]:
        for claim in read_file(name):
            decoded, problems = model.decode_claim(claim.data, TODAY)
            assert problems == [] and decoded is not None, (name, problems)


def test_other_delimiters_are_read_from_the_isa() -> None:
    text = text_of(MULTI).replace("~\n", "\n").replace("*", "|").replace(":", ">")
    assert text[3] == "|" and text[104:106] == ">\n"
    assert [c.data for c in read(text)] == [c.data for c in read(text_of(MULTI))]


def test_two_interchanges_in_one_file() -> None:
    text = text_of("demo.example1.837") + text_of("demo.example11.837")
    claims = read(text)
    assert [(c.position, c.claim_id, c.problems) for c in claims] == [
        (0, "26463774", ()),
        (1, "ABC123-RI", ()),
    ]
    assert data(claims[1])["source"]["segment"] == 44 + 21
