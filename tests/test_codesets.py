"""Code sets: ICD-10-CM validity and suggestions, procedure code shapes, NPI check digits."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from cleanclaim.dsl.codesets import icd10cm
from cleanclaim.dsl.codesets.npi import is_valid_npi, npi_check_digit
from cleanclaim.dsl.codesets.procedure import (
    code_kind,
    expand_range,
    is_cpt,
    is_hcpcs_level2,
    is_procedure_code,
)

# --- ICD-10-CM: validity and billability ------------------------------------------------

BILLABLE = [
    "R07.9",  # chest pain, unspecified
    "R06.02",  # shortness of breath
    "Z00.00",
    "Z00.01",
    "M54.50",  # low back pain, unspecified (M54.5 itself stopped being billable in FY2022)
    "E55.9",
    "I48.91",  # unspecified atrial fibrillation
    "I48.11",
    "A09",  # a three-character category with no children is billable
    "T36.0X1A",  # placeholder X and a seventh character
    "QA0.0101",  # second character a letter: chapter 17's QA0, in the 2026 code set
]
CODES_NOT_BILLABLE = [
    "I48",  # category: atrial fibrillation and flutter
    "I48.1",  # subcategory: persistent atrial fibrillation
    "I48.9",  # subcategory: I48.91 and I48.92 below it
    "M54.5",
    "R07",
    "T36.0X",  # placeholder level: a node of the tabular list, never a claim code
    "B99",  # a category that is also the name of the block holding it
]
NOT_CODES = [
    "786.50",  # ICD-9-CM chest pain
    "Z99.999",  # made up
    "R07.99",  # one character too many
    "I48.93",  # I48.91 and I48.92 exist, I48.93 does not
    "A00-A09",  # a block, not a code
    "1",  # a chapter, not a code
    "",
    "R0.79",  # the dot must follow the category
    "I48.",
    "I48..91",
    "I48.9.1",
]


@pytest.mark.parametrize("code", BILLABLE)
def test_billable_codes_are_codes_and_billable(code: str) -> None:
    assert icd10cm.is_code(code)
    assert icd10cm.is_billable(code)


@pytest.mark.parametrize("code", CODES_NOT_BILLABLE)
def test_categories_and_subcategories_are_codes_but_not_billable(code: str) -> None:
    assert icd10cm.is_code(code)
    assert not icd10cm.is_billable(code)


@pytest.mark.parametrize("code", NOT_CODES)
def test_not_codes(code: str) -> None:
    assert not icd10cm.is_code(code)
    assert not icd10cm.is_billable(code)


@pytest.mark.parametrize("written", ["R07.9", "R079", "r07.9", " R07.9 ", "r 079"])
def test_dotted_dotless_and_lowercase_are_the_same_code(written: str) -> None:
    assert icd10cm.normalize(written) == "R079"
    assert icd10cm.dotted(written) == "R07.9"
    assert icd10cm.is_billable(written)


@pytest.mark.parametrize(
    ("written", "display"),
    [("R079", "R07.9"), ("I48", "I48"), ("i4891", "I48.91"), ("T360X1A", "T36.0X1A")],
)
def test_dotted_display_form(written: str, display: str) -> None:
    assert icd10cm.dotted(written) == display


@pytest.mark.parametrize("prefix", ["R07.*", "R07*", "R07", "r07.*", "I48.1*", "R07.9*"])
def test_prefix_sets_that_name_a_code(prefix: str) -> None:
    assert icd10cm.has_descendants_or_is(prefix)


@pytest.mark.parametrize("prefix", ["R0*", "R0.7*", "Z99.99*", "786*", "*"])
def test_prefix_sets_that_name_no_code(prefix: str) -> None:
    assert not icd10cm.has_descendants_or_is(prefix)


def test_billable_codes_under_a_category() -> None:
    under = icd10cm.billable_codes_under("I48")
    assert under[:3] == ["I48.0", "I48.11", "I48.19"]
    assert "I48.91" in under
    assert "I48.1" not in under
    assert all(icd10cm.is_billable(code) for code in under)
    assert icd10cm.billable_codes_under("R07.9") == ["R07.9"]
    assert icd10cm.billable_codes_under("Z99.999") == []


def test_descriptions_are_read_on_demand() -> None:
    assert icd10cm.description("R07.9") == "Chest pain, unspecified"
    assert icd10cm.description("i4891") == "Unspecified atrial fibrillation"
    assert icd10cm.description("I48") == "Atrial fibrillation and flutter"
    assert icd10cm.description("Z99.999") is None
    assert icd10cm.description("R0.79") is None


def test_release_names_the_code_set() -> None:
    assert icd10cm.release() == "ICD-10-CM 2026-04-01"


def test_data_header_records_source_and_builder() -> None:
    header_line = (icd10cm.DATA_DIR / icd10cm.CODE_INDEX_FILE).read_text().splitlines()[0]
    assert "cdc.gov/nchs/icd/icd-10-cm" in header_line
    assert "built_with=simple_icd_10_cm " in header_line
    assert "release=2026-04-01" in header_line


# --- ICD-10-CM: suggestions -------------------------------------------------------------


def test_category_suggests_its_billable_children() -> None:
    suggestions = icd10cm.suggest("I48")
    assert suggestions == ["I48.0", "I48.11", "I48.19"]
    assert all(code.startswith("I48.") and icd10cm.is_billable(code) for code in suggestions)


def test_misplaced_dot_suggests_the_code_it_spells() -> None:
    assert icd10cm.suggest("R0.79") == ["R07.9"]


@pytest.mark.parametrize(
    ("bad", "first"),
    [
        ("I84.91", "I48.91"),  # swapped digits
        ("R07.99", "R07.9"),  # one character too many
        ("S72.001Z", "S72.001A"),  # no such seventh character
        ("E1165", "E11.65"),  # already right, dotless: suggests itself
        ("M54.5", "M54.50"),  # no longer billable: its children
    ],
)
def test_typos_suggest_the_nearest_billable_code_first(bad: str, first: str) -> None:
    suggestions = icd10cm.suggest(bad)
    assert suggestions[0] == first
    assert all(icd10cm.is_billable(code) for code in suggestions)


def test_made_up_code_suggests_codes_of_its_category() -> None:
    suggestions = icd10cm.suggest("Z99.999")
    assert suggestions and all(code.startswith("Z99.") for code in suggestions)
    assert all(icd10cm.is_billable(code) for code in suggestions)


@pytest.mark.parametrize("bad", ["786.50", "", "..."])
def test_no_suggestion_for_what_is_not_icd10(bad: str) -> None:
    assert icd10cm.suggest(bad) == []


def test_suggest_honours_the_limit() -> None:
    assert len(icd10cm.suggest("S72", limit=5)) == 5
    assert icd10cm.suggest("S72", limit=0) == []


def test_suggest_stays_fast_on_the_largest_category() -> None:
    # S82 has ~3,100 billable codes, the most of any category; "S82Q" makes suggest score
    # them all. 50 ms is the budget. CPU time of this process, not wall time, so that other
    # processes on a shared machine cannot fail it; the bound only catches a regression to
    # something far heavier (the speed figure itself belongs to `cleanclaim bench`).
    icd10cm.is_code("S82")
    started = time.process_time()
    icd10cm.suggest("S82Q", limit=7)
    assert time.process_time() - started < 0.5


# --- ICD-10-CM: start-up cost and drift from the source ---------------------------------

_LOAD_PROBE = """
import json, sys, time
started = time.perf_counter()
from cleanclaim.dsl.codesets import icd10cm
imported = time.perf_counter()
icd10cm.is_billable("R07.9")
loaded = time.perf_counter()
print(json.dumps({"import": imported - started, "load": loaded - imported,
                  "heavy": "simple_icd_10_cm" in sys.modules}))
"""


def test_runtime_never_imports_simple_icd_10_cm_and_loads_fast() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE], capture_output=True, text=True, check=True
    )
    measured = json.loads(probe.stdout)
    assert measured["heavy"] is False
    # ~17 ms measured; the bound only catches a regression to something heavy (the package
    # itself costs ~1.8 s), with room for a loaded shared machine.
    assert measured["load"] < 0.5


def test_shipped_index_matches_simple_icd_10_cm() -> None:
    """Catches drift: a newer simple_icd_10_cm (new CDC release) needs a rebuild."""
    source = pytest.importorskip("simple_icd_10_cm")
    rebuild = "rebuild with `python -m cleanclaim.dsl.codesets.icd10cm build`"
    index = icd10cm._index()
    released, _ = icd10cm._source_release(source)
    assert index.header["release"] == released, rebuild

    # Chapters are numbers and blocks have a dash; every other name is a code.
    names = {name for name in source.get_all_codes(True) if "-" not in name}
    codes = {name for name in names if not name.isdigit()}
    shipped = index.billable | index.non_billable
    assert {icd10cm.normalize(code) for code in codes} == shipped, rebuild

    for code in random.Random(20260401).sample(sorted(codes), 3000):
        assert icd10cm.is_billable(code) == source.is_leaf(code), code
        assert icd10cm.description(code) == " ".join(source.get_description(code).split())


# --- procedure codes --------------------------------------------------------------------


@pytest.mark.parametrize("code", ["99213", "00100", "0001F", "0042T", "0001U", "0001f"])
def test_cpt_shapes(code: str) -> None:
    assert is_cpt(code)
    assert not is_hcpcs_level2(code)
    assert code_kind(code) == "cpt"
    assert is_procedure_code(code)


@pytest.mark.parametrize("code", ["J0100", "G0438", "A0021", "j0100", "D0120"])
def test_hcpcs_level2_shapes(code: str) -> None:
    assert is_hcpcs_level2(code)
    assert not is_cpt(code)
    assert code_kind(code) == "hcpcs"


@pytest.mark.parametrize(
    "code",
    [
        "9921",  # four digits
        "992133",  # six digits
        "0001X",  # not a CPT suffix letter
        "001F",
        "J010",
        "J01000",
        "JJ100",
        " 99213",
        "99213-25",  # modifier attached
        "\uff19\uff19\uff12\uff11\uff13",  # full-width digits are digits to str.isdigit
        "",
    ],
)
def test_not_procedure_codes(code: str) -> None:
    assert not is_procedure_code(code)
    assert code_kind(code) is None


def test_expand_numeric_cpt_range_keeps_every_code() -> None:
    codes = expand_range("11400", "11446")
    assert len(codes) == 47
    assert codes[0] == "11400" and codes[-1] == "11446" and "11423" in codes


def test_expand_range_keeps_zero_padding_and_letters() -> None:
    assert expand_range("0001F", "0003F") == ["0001F", "0002F", "0003F"]
    assert expand_range("00100", "00102") == ["00100", "00101", "00102"]
    assert expand_range("J0100", "J0150")[:2] == ["J0100", "J0101"]
    assert len(expand_range("J0100", "J0150")) == 51
    assert expand_range("0015F", "0015F") == ["0015F"]


@pytest.mark.parametrize(
    ("lo", "hi", "message"),
    [
        ("11446", "11400", "11446 comes after 11400"),
        ("J0100", "K0150", "same kind of code"),
        ("0001F", "0015T", "CPT Category II code"),
        ("99213", "0001F", "same kind of code"),
        ("1140", "11446", "'1140' is not a CPT code"),
        ("J0100", "J01500", "'J01500' is not a CPT code"),
    ],
)
def test_bad_ranges_say_what_is_wrong(lo: str, hi: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_range(lo, hi)


# --- NPI --------------------------------------------------------------------------------


@pytest.mark.parametrize("npi", ["1234567893", "1912301953", "1245319599"])
def test_valid_npis(npi: str) -> None:
    assert is_valid_npi(npi)


@pytest.mark.parametrize(
    "npi",
    [
        "1234567890",  # wrong check digit
        "1234567894",
        "1912301954",
        "123456789",  # nine digits
        "12345678931",  # eleven digits
        "123456789A",
        " 1234567893",
        "\uff11234567893",  # a full-width 1
        "",
    ],
)
def test_invalid_npis(npi: str) -> None:
    assert not is_valid_npi(npi)


def test_npi_check_digit_is_luhn_over_80840_prefix() -> None:
    def luhn_valid(digits: str) -> bool:
        total = 0
        for position, character in enumerate(reversed(digits)):
            value = int(character) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        return total % 10 == 0

    generator = random.Random(80840)
    for _ in range(2000):
        body = "".join(generator.choice("0123456789") for _ in range(9))
        npi = body + str(npi_check_digit(body))
        assert luhn_valid("80840" + npi)
        assert is_valid_npi(npi)
    with pytest.raises(ValueError, match="nine digits"):
        npi_check_digit("12345678")
