"""NCCI PTP and MUE readers (engine/ncci/) against fixtures in the CMS file layouts."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest

from cleanclaim.engine.ncci import (
    NCCI_PTP_MODIFIERS,
    MueEdit,
    MueTable,
    PtpHit,
    PtpTable,
    TableError,
    is_procedure_code,
    load_mue,
    load_ptp,
)

DATA = Path(__file__).parent / "data" / "ncci"
PTP_FIXTURE = DATA / "ptp-fixture.txt"
MUE_FIXTURE = DATA / "mue-fixture.csv"
TABLES = Path(__file__).parents[1] / "payer_policies" / "medicare" / "tables"
PTP_SAMPLE = TABLES / "ptp-practitioner-sample.txt"
MUE_SAMPLE = TABLES / "mue-practitioner-sample.csv"

D = date(2024, 6, 3)
MISUSE = "Misuse of column two code with column one code"

Other = tuple[str, Sequence[str], date]


@pytest.fixture(scope="module")
def ptp() -> PtpTable:
    return load_ptp(PTP_FIXTURE)


@pytest.fixture(scope="module")
def mue() -> MueTable:
    return load_mue(MUE_FIXTURE)


def conflict(
    table: PtpTable,
    code: str,
    other: str,
    on: date = D,
    mods: Sequence[str] = (),
    other_mods: Sequence[str] = (),
    other_on: date | None = None,
) -> PtpHit | None:
    return table.column1_conflict(code, mods, on, [(other, other_mods, other_on or on)])


def data_lines(path: Path) -> int:
    """Number of physical lines in a fixture (the next appended line is this + 1)."""
    return len(path.read_text().splitlines())


# --------------------------------------------------------------------------- PTP loading


def test_ptp_loads_every_row_and_skips_preamble_and_two_line_header(ptp: PtpTable) -> None:
    assert len(ptp) == 14
    assert ptp.source == str(PTP_FIXTURE)
    assert ptp.edits("93005") == [
        PtpHit(
            "93000",
            "93005",
            0,
            date(1996, 1, 1),
            None,
            "CPT Manual or CMS manual coding instructions",
        )
    ]
    assert ptp.has_column2("99213") and not ptp.has_column2("93000")


def test_ptp_keeps_duplicate_keys_in_file_order(ptp: PtpTable) -> None:
    rows = ptp.edits("20610")
    assert [(r.effective, r.deletion, r.indicator) for r in rows] == [
        (date(2017, 1, 1), date(2023, 1, 1), 0),
        (date(2023, 1, 1), None, 1),
    ]


def test_ptp_letter_and_category_iii_codes(ptp: PtpTable) -> None:
    assert conflict(ptp, "G0438", "G0439") is not None
    assert conflict(ptp, "76942", "0213T") is not None


def test_ptp_crlf_and_bom_give_the_same_table(tmp_path: Path, ptp: PtpTable) -> None:
    raw = PTP_FIXTURE.read_bytes()
    crlf = tmp_path / "crlf.TXT"
    crlf.write_bytes(b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n"))
    other = load_ptp(crlf)
    assert len(other) == len(ptp)
    for code in ("93005", "99213", "20610", "96374", "G0438"):
        assert other.edits(code) == ptp.edits(code)


def test_ptp_first_line_data_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "bare.txt"
    path.write_bytes(b"\xef\xbb\xbf93000\t93005\t*\t19960101\t*\t0\tx\n")
    assert len(load_ptp(path)) == 1


def test_ptp_several_files_zip_and_directory(tmp_path: Path) -> None:
    lines = PTP_FIXTURE.read_text().splitlines(keepends=True)
    head, rows = lines[:6], lines[6:]
    folder = tmp_path / "ptp"
    folder.mkdir()
    (folder / "ccipra-v1r0-f1.TXT").write_text("".join(head + rows[:5]))
    (folder / "ccipra-v1r0-f2.TXT").write_text("".join(head + rows[5:]))
    (folder / "readme.pdf").write_bytes(b"%PDF")
    assert len(load_ptp(folder)) == 14
    assert len(load_ptp(folder / "ccipra-v1r0-f1.TXT", folder / "ccipra-v1r0-f2.TXT")) == 14
    archive = tmp_path / "ccipra-v1r0-f1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "ccipra-v1r0-f1.TXT", "ccipra-v1r0-f1.TXT")
    assert len(load_ptp(archive)) == 5


@pytest.mark.parametrize(
    ("fixture", "line", "reason"),
    [
        (DATA / "ptp-bad-date.txt", 6, "effective date '20111301'"),
        (DATA / "ptp-bad-indicator.txt", 5, "modifier indicator '2'"),
    ],
)
def test_ptp_malformed_fixture_names_file_and_line(fixture: Path, line: int, reason: str) -> None:
    with pytest.raises(TableError) as err:
        load_ptp(fixture)
    assert err.value.file == str(fixture)
    assert err.value.line == line
    assert str(err.value).startswith(f"{fixture}:{line}: ")
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("93306\t93308\t\t20110230\t*\t0\tx", "effective date '20110230'"),
        ("93306\t93308\t\t2011-01-01\t*\t0\tx", "effective date '2011-01-01'"),
        ("93306\t93308\t\t\t*\t0\tx", "effective date ''"),
        ("93306\t93308\t\t20110101\t2012\t0\tx", "deletion date '2012'"),
        ("93306\t93308\t\t20110101\t*\t2\tx", "modifier indicator '2'"),
        ("93306\t93308\t\t20110101\t*\t\tx", "modifier indicator ''"),
        ("93306\t93308\t\t20110101\t*\tA\tx", "modifier indicator 'A'"),
        ("93306\t9330\t\t20110101\t*\t0\tx", "column 2 '9330' is not a procedure code"),
        ("9330X\t93308\t\t20110101\t*\t0\tx", "column 1 '9330X' is not a procedure code"),
        ("93306\t93308\t\t20110101", "fields, expected 7"),
        ("93306\t93308", "fields, expected 7"),
        ("93306\t93308\t\t20110101\t*\t0\tx\textra", "fields, expected 7"),
    ],
)
def test_ptp_malformed_row_raises(tmp_path: Path, row: str, reason: str) -> None:
    path = tmp_path / "ccipra.txt"
    path.write_text(PTP_FIXTURE.read_text() + row + "\n")
    line = data_lines(PTP_FIXTURE) + 1
    with pytest.raises(TableError) as err:
        load_ptp(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert reason in str(err.value)


def test_ptp_padded_fields_and_cp1252_text(tmp_path: Path) -> None:
    path = tmp_path / "ccipra.txt"
    path.write_bytes(b"\xa9 2024 preamble\n 93306 \t93308 \t\t 20110101 \t * \t 0 \tCMS\x92 rule\n")
    assert load_ptp(path).edits("93308") == [
        PtpHit("93306", "93308", 0, date(2011, 1, 1), None, "CMS\u2019 rule")
    ]


def test_ptp_trailing_empty_fields_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "ccipra.txt"
    path.write_text("93306\t93308\t\t20110101\t*\t0\tx\t\t\n")
    assert load_ptp(path).edits("93308")[0].rationale == "x"


def test_ptp_file_without_rows_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="no PTP rows"):
        load_ptp(MUE_FIXTURE)
    with pytest.raises(TableError, match="no such file"):
        load_ptp(tmp_path / "missing.txt")


# --------------------------------------------------------------------------- PTP semantics


def test_hit_fields(ptp: PtpTable) -> None:
    assert conflict(ptp, "99213", "11102") == PtpHit(
        "11102", "99213", 1, date(2019, 1, 1), None, MISUSE
    )


def test_direction_matters_and_unknown_codes(ptp: PtpTable) -> None:
    assert conflict(ptp, "93000", "93005") is None  # 93000 is column 1, not column 2
    assert conflict(ptp, "99999", "93000") is None
    assert conflict(ptp, "93005", "99999") is None
    assert ptp.column1_conflict("93005", [], D, []) is None


def test_effective_date_boundary(ptp: PtpTable) -> None:
    effective = date(2030, 1, 1)
    assert conflict(ptp, "97112", "97110", effective) is not None
    assert conflict(ptp, "97112", "97110", effective - timedelta(days=1)) is None


def test_deletion_date_boundary(ptp: PtpTable) -> None:
    deletion = date(2020, 1, 1)
    assert conflict(ptp, "97116", "97530", deletion) is None
    assert conflict(ptp, "97116", "97530", deletion - timedelta(days=1)) is not None


def test_different_dates_of_service_never_conflict(ptp: PtpTable) -> None:
    assert conflict(ptp, "93005", "93000", D, other_on=D + timedelta(days=1)) is None
    assert conflict(ptp, "93005", "93000", D, other_on=D - timedelta(days=1)) is None
    assert conflict(ptp, "93005", "93000", D, other_on=D) is not None


@pytest.mark.parametrize("modifier", sorted(NCCI_PTP_MODIFIERS))
def test_indicator_1_bypassed_by_any_ncci_modifier_on_either_line(
    ptp: PtpTable, modifier: str
) -> None:
    assert conflict(ptp, "99213", "11102", mods=[modifier]) is None
    assert conflict(ptp, "99213", "11102", other_mods=[modifier]) is None


def test_ncci_modifier_list() -> None:
    expected = {
        "E1",
        "E2",
        "E3",
        "E4",
        "FA",
        "F1",
        "F2",
        "F3",
        "F4",
        "F5",
        "F6",
        "F7",
        "F8",
        "F9",
        "TA",
        "T1",
        "T2",
        "T3",
        "T4",
        "T5",
        "T6",
        "T7",
        "T8",
        "T9",
        "LT",
        "RT",
        "LC",
        "LD",
        "RC",
        "LM",
        "RI",
        "24",
        "25",
        "57",
        "58",
        "78",
        "79",
        "27",
        "59",
        "91",
        "XE",
        "XS",
        "XP",
        "XU",
    }
    assert expected == NCCI_PTP_MODIFIERS


@pytest.mark.parametrize("modifier", ["22", "76", "77", "26", "TC", "50", "GP", "F0", "T0", "E5"])
def test_indicator_1_not_bypassed_by_other_modifiers(ptp: PtpTable, modifier: str) -> None:
    assert conflict(ptp, "99213", "11102", mods=[modifier]) is not None
    assert conflict(ptp, "99213", "11102", other_mods=[modifier]) is not None
    assert conflict(ptp, "99213", "11102", mods=[modifier], other_mods=[modifier]) is not None


def test_indicator_1_without_modifier_fires(ptp: PtpTable) -> None:
    hit = conflict(ptp, "99213", "11102")
    assert hit is not None and hit.indicator == 1 and hit.modifier_allowed


def test_indicator_1_with_bypass_among_several_modifiers(ptp: PtpTable) -> None:
    assert conflict(ptp, "99213", "11102", mods=["76", "25"]) is None
    assert conflict(ptp, "99213", "11102", other_mods=["GP", "xs"]) is None  # case-insensitive


@pytest.mark.parametrize("modifier", ["59", "XS", "25", "RT", "76"])
def test_indicator_0_is_never_bypassed(ptp: PtpTable, modifier: str) -> None:
    hit = conflict(ptp, "93005", "93000", mods=[modifier], other_mods=[modifier])
    assert hit is not None and hit.indicator == 0


def test_indicator_9_never_fires(ptp: PtpTable) -> None:
    assert ptp.edit_in_force("17000", "17111", D) is not None  # the row is in force...
    assert conflict(ptp, "17111", "17000") is None  # ...and still never fires
    assert conflict(ptp, "17111", "17000", mods=["76"]) is None


def test_duplicate_key_row_in_force_wins(ptp: PtpTable) -> None:
    before = conflict(ptp, "20610", "20611", date(2022, 12, 31), mods=["59"])
    assert before is not None and before.indicator == 0 and before.deletion == date(2023, 1, 1)
    assert conflict(ptp, "20610", "20611", date(2023, 1, 1), mods=["59"]) is None
    after = conflict(ptp, "20610", "20611", date(2023, 1, 1))
    assert after is not None and after.indicator == 1 and after.effective == date(2023, 1, 1)
    assert conflict(ptp, "20610", "20611", date(2016, 12, 31)) is None


def test_duplicate_key_both_in_force_latest_effective_wins(ptp: PtpTable) -> None:
    # 2012: only the indicator-0 row is in force; 59 cannot bypass it
    early = conflict(ptp, "96374", "96365", date(2012, 1, 1), mods=["59"])
    assert early is not None and early.indicator == 0
    # 2024: both rows are in force; the one effective 2015 (indicator 1) wins
    hit = conflict(ptp, "96374", "96365", D)
    assert hit is not None and hit.indicator == 1 and hit.effective == date(2015, 1, 1)
    assert conflict(ptp, "96374", "96365", D, mods=["59"]) is None


def test_duplicate_key_newest_row_with_indicator_9_suppresses(ptp: PtpTable) -> None:
    assert conflict(ptp, "99211", "96372", date(2017, 12, 31)) is not None
    assert conflict(ptp, "99211", "96372", date(2018, 1, 1)) is None


def test_first_applicable_edit_in_order_of_other_lines(ptp: PtpTable) -> None:
    a: Other = ("11102", [], D)  # indicator 1
    b: Other = ("17110", [], D)  # indicator 0
    first = ptp.column1_conflict("99213", [], D, [a, b])
    second = ptp.column1_conflict("99213", [], D, [b, a])
    assert first is not None and first.column1 == "11102"
    assert second is not None and second.column1 == "17110"
    # the bypassed edit is skipped, the next one applies
    bypassed: Other = ("11102", ["XS"], D)
    hit = ptp.column1_conflict("99213", [], D, iter([bypassed, b]))
    assert hit is not None and hit.column1 == "17110"
    # own-line 25 bypasses indicator 1 but not indicator 0
    hit = ptp.column1_conflict("99213", ["25"], D, [a, b])
    assert hit is not None and hit.column1 == "17110"
    # lines on other days and unrelated codes are passed over
    far: Other = ("11102", [], D + timedelta(days=1))
    unrelated: Other = ("93000", [], D)
    hit = ptp.column1_conflict("99213", [], D, [far, unrelated, b])
    assert hit is not None and hit.column1 == "17110"


def test_edit_in_force_lookup(ptp: PtpTable) -> None:
    row = ptp.edit_in_force("20611", "20610", date(2020, 5, 5))
    assert row is not None and row.indicator == 0 and row.in_force(date(2020, 5, 5))
    assert ptp.edit_in_force("20611", "20610", date(2016, 5, 5)) is None
    assert ptp.edit_in_force("20610", "20611", date(2020, 5, 5)) is None


# --------------------------------------------------------------------------- MUE


def test_mue_loads_quoted_rows_and_skips_multiline_preamble(mue: MueTable) -> None:
    assert len(mue) == 7
    assert mue.source == str(MUE_FIXTURE)
    assert mue.get("17003") == MueEdit("17003", 13, 2, "Code Descriptor / CPT Instruction")
    assert mue.get("97110") == MueEdit("97110", 6, 3, "Clinical: Data")
    assert mue.get("20610") == MueEdit("20610", 2, 1, "Anatomic Consideration")
    assert mue.get("93000") == MueEdit("93000", 1, 2, "CMS Policy, NCCI")
    assert mue.get("G0438") is not None and mue.get("0213T") is not None
    assert mue.get("99213") is None
    assert "J1885" in mue


def test_mue_indicator_1_compares_line_units(mue: MueTable) -> None:
    # 20610: value 2, line edit; the same-day sum does not matter
    assert mue.excess("20610", 2, 10) is None
    hit = mue.excess("20610", 3, 3)
    assert hit is not None and hit.per_line and hit.value == 2
    assert mue.excess("20610", 2.5, 2.5) is not None


@pytest.mark.parametrize(("code", "value"), [("17003", 13), ("97110", 6)])
def test_mue_indicators_2_and_3_compare_same_day_units(
    mue: MueTable, code: str, value: int
) -> None:
    assert mue.excess(code, 1, value) is None
    hit = mue.excess(code, 1, value + 1)
    assert hit is not None and not hit.per_line and hit.value == value
    # one line alone over the value, but the caller's same-day sum is what counts
    assert mue.excess(code, value + 1, value) is None


def test_mue_unknown_code(mue: MueTable) -> None:
    assert mue.excess("99213", 100, 100) is None


def test_mue_malformed_fixture_names_file_and_line() -> None:
    path = DATA / "mue-bad-indicator.csv"
    with pytest.raises(TableError) as err:
        load_mue(path)
    assert err.value.file == str(path) and err.value.line == 4
    assert str(err.value).startswith(f"{path}:4: ")
    assert "'4 Date of Service Edit: Other'" in str(err.value)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("17000,one,2 Date of Service Edit: Policy,x", "MUE value 'one'"),
        ("17000,,2 Date of Service Edit: Policy,x", "MUE value ''"),
        ("17000,1.5,2 Date of Service Edit: Policy,x", "MUE value '1.5'"),
        ("17000,1,Date of Service Edit: Policy,x", "adjudication indicator"),
        ("17000,1,,x", "adjudication indicator"),
        ("17000,1,12 Line Edit,x", "adjudication indicator"),
        ("17000,1", "fields, expected 4"),
        ("20610,3,1 Line Edit,x", "duplicate MUE row for 20610"),
    ],
)
def test_mue_malformed_row_raises(tmp_path: Path, row: str, reason: str) -> None:
    path = tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2025.csv"
    path.write_text(MUE_FIXTURE.read_text() + row + "\n")
    line = data_lines(MUE_FIXTURE) + 1
    with pytest.raises(TableError) as err:
        load_mue(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert reason in str(err.value)


def test_mue_bare_indicator_digit_and_zip(tmp_path: Path) -> None:
    path = tmp_path / "mue.csv"
    path.write_text("17000,1,2,x\r\n")
    assert load_mue(path).get("17000") == MueEdit("17000", 1, 2, "x")
    archive = tmp_path / "mue.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(MUE_FIXTURE, "MCR_MUE_PractitionerServices_Eff_01-01-2025.csv")
    assert len(load_mue(archive)) == 7


def test_mue_file_without_rows_is_an_error() -> None:
    with pytest.raises(TableError, match="no MUE rows"):
        load_mue(PTP_FIXTURE)


# --------------------------------------------------------------------------- shipped samples


def test_sample_tables_are_marked_as_samples() -> None:
    for path in (PTP_SAMPLE, MUE_SAMPLE):
        head = path.read_text().splitlines()[0]
        assert "SAMPLE" in head and "NOT CMS DATA" in head


def test_ptp_sample_exercises_every_case() -> None:
    table = load_ptp(PTP_SAMPLE)
    rows = [
        row
        for code in (
            "93005",
            "93010",
            "93308",
            "99213",
            "97597",
            "17110",
            "97116",
            "97140",
            "97112",
            "20610",
        )
        for row in table.edits(code)
    ]
    assert len(rows) == len(table)
    assert {row.indicator for row in rows} == {0, 1, 9}
    assert any(row.deletion and row.deletion <= D and row.indicator != 9 for row in rows)
    assert any(row.effective > date(2026, 12, 31) for row in rows)
    assert len(table.edits("20610")) == 2
    assert conflict(table, "93308", "93306", mods=["59"]) is not None
    # The ECG pairs stay out of the sample: the medicare ECG rule (CO-97 + M15) covers them.
    assert conflict(table, "93010", "93000") is None
    assert conflict(table, "99213", "11102", other_mods=["25"]) is None
    assert conflict(table, "99213", "11102") is not None


def test_mue_sample_has_all_three_indicators() -> None:
    table = load_mue(MUE_SAMPLE)
    indicators = {
        edit.indicator for code in ("20610", "17003", "93000") if (edit := table.get(code))
    }
    assert indicators == {1, 2, 3}
    assert table.excess("17003", 13, 13) is None
    assert table.excess("17003", 7, 14) is not None


def test_is_procedure_code() -> None:
    for good in ("93000", "0213T", "0001U", "3008F", "G0438", "J1885"):
        assert is_procedure_code(good)
    for bad in ("9300", "930000", "0213X", "GG438", "g0438", "93 00", "Column 1", ""):
        assert not is_procedure_code(bad)
