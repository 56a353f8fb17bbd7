"""`cleanclaim data import/list` (engine/refdata/): fixtures in the CMS layouts
(tests/data/refdata/README.md) go into a temporary data folder and change decisions as
their rows say."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine.engine import Engine
from cleanclaim.engine.refdata.mcd import import_mcd
from cleanclaim.engine.refdata.mpfs import effective_from_name, open_fee_schedule
from cleanclaim.engine.refdata.store import DataStore, default_data_dir
from cleanclaim.engine.refdata.tables import open_mue, open_ptp
from tests.conftest import cli

DATA = Path(__file__).parent / "data" / "refdata"
PTP = DATA / "ccipra-v321r0-f1.TXT"
MUE = DATA / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"
COVERED = DATA / "article_x_icd10_covered.csv"
NONCOVERED = DATA / "article_x_icd10_noncovered.csv"
HCPC = DATA / "article_x_hcpc_code.csv"
PPRRVU = DATA / "PPRRVU26_JAN.csv"
TODAY = "2026-11-27"
TTE_RULE = "medicare/necessity/tte-lcd-l33577"


def tte_claim(diagnosis: str, code: str = "93306", units: int = 1) -> dict[str, Any]:
    return {
        "claim_id": "C-TTE",
        "payer": "medicare",
        "received_date": "2026-03-02",
        "member": {
            "id": "M1",
            "birth_date": "1951-04-12",
            "sex": "F",
            "coverage": [{"payer": "medicare", "start": "2016-04-01", "end": None}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "service_state": "IL",
        "place_of_service": "11",
        "diagnoses": [diagnosis],
        "lines": [
            {
                "line": 1,
                "code": code,
                "modifiers": [],
                "units": units,
                "charge": "210.00",
                "service_date": "2026-02-12",
                "diagnosis_pointers": [1],
            }
        ],
    }


def check(claim: dict[str, Any], *extra: str) -> dict[str, Any]:
    claims = default_data_dir().parent / "claim.json"
    claims.write_text(json.dumps(claim), encoding="utf-8")
    result = cli("check", str(claims), "--today", TODAY, *extra)
    assert result.exit_code in (0, 1), result.output
    decisions: list[dict[str, Any]] = json.loads(result.stdout)
    return decisions[0]


def rules(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["rule"]: f for f in decision["findings"]}


# ---------------------------------------------------------------------------- folder


def test_data_folder_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLEANCLAIM_DATA_DIR", str(tmp_path / "x"))
    assert default_data_dir() == tmp_path / "x"
    monkeypatch.delenv("CLEANCLAIM_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "cleanclaim"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "cleanclaim"


def test_list_of_an_empty_folder_says_nothing_is_imported(data_dir: Path) -> None:
    result = cli("data", "list")
    assert result.exit_code == 1
    assert "no CMS data imported" in result.output


# ---------------------------------------------------------------------------- MCD


def test_imported_a56781_row_makes_i48_91_pass_the_lcd_rule(data_dir: Path) -> None:
    # The shipped Group 1 list stops at I08.2: without the import, I48.91 is not found.
    before = rules(check(tte_claim("I48.91")))
    assert TTE_RULE in before
    result = cli("data", "import", "mcd", str(COVERED))
    assert result.exit_code == 0, result.output
    assert "imported mcd-covered: 6 rows" in result.output
    after = rules(check(tte_claim("I48.91")))
    assert TTE_RULE not in after  # covered outright by the imported list


def test_imported_list_replaces_the_partial_one(data_dir: Path) -> None:
    # I05.0 is in the shipped partial CSV but not in the imported (fixture) article: the
    # imported list is the whole list, so the rule fires, confidently.
    assert TTE_RULE not in rules(check(tte_claim("I05.0")))
    assert cli("data", "import", "mcd", str(COVERED)).exit_code == 0
    finding = rules(check(tte_claim("I05.0")))[TTE_RULE]
    assert finding["severity"] == "deny"


def test_mcd_lookup_uses_the_highest_version_and_the_group(data_dir: Path) -> None:
    store = DataStore()
    import_mcd(store, [COVERED, NONCOVERED, HCPC])
    assert store.article_codes("A56781", 1, "covered") == frozenset({"I082", "I4891", "R0602"})
    assert store.article_codes(56781, 2, "covered") == frozenset({"Z01818"})
    assert store.article_codes(56781, 1, "noncovered") == frozenset({"Z0000"})
    assert store.article_codes(56781, 1, "hcpc") == frozenset({"93306", "93307", "93308"})
    assert store.article_codes(56781, 7, "covered") is None
    assert store.article_codes(99999, 1, "covered") is None


def test_mcd_download_zip_is_read_and_other_members_skipped(data_dir: Path, tmp_path: Path) -> None:
    inner = tmp_path / "current_article_csv.zip"
    with zipfile.ZipFile(inner, "w") as z:
        for path in (COVERED, NONCOVERED, HCPC, DATA / "article.csv"):
            z.write(path, path.name)
        z.writestr("article_x_contractor.csv", '"article_id","article_version"\n"1","2"\n')
    outer = tmp_path / "current_article.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.write(inner, inner.name)
    result = cli("data", "import", "mcd", str(outer))
    assert result.exit_code == 0, result.output
    assert {r.table for r in DataStore().current()} == {
        "mcd-covered",
        "mcd-noncovered",
        "mcd-hcpc",
        "mcd-article",
    }


def test_damaged_mcd_file_is_located_and_imports_nothing(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "article_x_icd10_covered.csv"
    lines = COVERED.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace('"R06.02"', '"R06 02"')
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("data", "import", "mcd", str(HCPC), str(bad))
    assert result.exit_code == 2
    assert f"{bad}:4: icd10_code_id 'R06 02' is not an ICD-10-CM code" in result.output
    assert "nothing was imported" in result.output
    assert DataStore().current() == []  # not even the good hcpc file


# ---------------------------------------------------------------------------- NCCI


def test_imported_mue_row_changes_the_mue_finding(data_dir: Path) -> None:
    # The shipped sample allows 6 units of 97110 (date of service); the imported file 4
    # per line (indicator 1).
    claim = tte_claim("M62.81", code="97110", units=5)
    assert "medicare/ncci/mue" not in rules(check(claim))
    assert cli("data", "import", "mue", str(MUE)).exit_code == 0
    finding = rules(check(claim))["medicare/ncci/mue"]
    assert "exceed the MUE of 4" in finding["message"]
    table = open_mue(DataStore().path("mue"))
    edit = table.get("97110")
    assert edit is not None and (edit.value, edit.indicator) == (4, 1)
    assert [table.get(c).indicator for c in ("93306", "93000")] == [2, 3]  # type: ignore[union-attr]


def test_explicit_mue_option_wins_over_the_import(data_dir: Path) -> None:
    assert cli("data", "import", "mue", str(MUE)).exit_code == 0
    sample = (
        Path(__file__).parents[1]
        / "payer_policies"
        / "medicare"
        / "tables"
        / "mue-practitioner-sample.csv"
    )
    claim = tte_claim("M62.81", code="97110", units=5)
    assert "medicare/ncci/mue" not in rules(check(claim, "--mue", str(sample)))


def test_imported_ptp_keeps_dates_and_indicators(data_dir: Path) -> None:
    result = cli("data", "import", "ptp", str(PTP))
    assert result.exit_code == 0, result.output
    assert "comes in several files (-f1 to -f4)" in result.output  # one part alone
    table = open_ptp(DataStore().path("ptp"))
    assert len(table) == 3 and "93320" in table.column2 and "93306" not in table.column2
    hit = table.edit_in_force("93306", "93320", date(2026, 2, 12))
    assert hit is not None and hit.indicator == 0 and hit.deletion is None
    deleted = table.edit_in_force("97110", "97530", date(2025, 6, 1))
    assert deleted is not None and deleted.deletion == date(2026, 1, 1)
    assert table.edit_in_force("97110", "97530", date(2026, 1, 1)) is None
    assert (
        table.column1_conflict("97530", ["59"], date(2025, 6, 1), [("97110", [], date(2025, 6, 1))])
        is None
    )  # bypassed


def test_imported_ptp_edit_reaches_check(data_dir: Path) -> None:
    claim = tte_claim("I48.91")
    claim["lines"].append(
        {
            "line": 2,
            "code": "93320",
            "modifiers": [],
            "units": 1,
            "charge": "50.00",
            "service_date": "2026-02-12",
            "diagnosis_pointers": [1],
        }
    )
    assert cli("data", "import", "ptp", str(PTP)).exit_code == 0
    finding = rules(check(claim))["medicare/ncci/ptp"]
    assert finding["line"] == 2 and "bundled into 93306" in finding["message"]


def test_reimport_is_a_no_op_and_list_shows_versions(data_dir: Path) -> None:
    assert cli("data", "import", "ptp", str(PTP)).exit_code == 0
    first = DataStore().current()
    again = cli("data", "import", "ptp", str(PTP))
    assert again.exit_code == 0
    assert "ptp: already imported (same sha256); nothing to do" in again.output
    assert DataStore().current() == first
    assert len(DataStore().history()) == 1
    listed = cli("data", "list")
    assert listed.exit_code == 0
    assert "ccipra-v321r0-f1.TXT" in listed.output and "2020-01-01..2025-01-01" in listed.output
    shown = json.loads(cli("data", "list", "--json").output)
    assert shown["imports"][0]["sha256"] == first[0].sha256
    assert shown["imports"][0]["detail"].endswith("NCCI version 32.1r0")


def test_damaged_ptp_file_is_located_and_keeps_the_old_table(
    data_dir: Path, tmp_path: Path
) -> None:
    assert cli("data", "import", "ptp", str(PTP)).exit_code == 0
    before = DataStore().current()
    bad = tmp_path / "ccipra-v322r0-f1.TXT"
    bad.write_bytes(PTP.read_bytes().replace(b"20250101\t*\t0", b"2025-01-01\t*\t0", 1))
    result = cli("data", "import", "ptp", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:6: effective date '2025-01-01' is not a YYYYMMDD date" in result.output
    assert DataStore().current() == before
    assert not list(data_dir.glob("*.tmp"))


def test_store_tables_behave_like_the_file_tables(data_dir: Path) -> None:
    from cleanclaim.engine.ncci import load_ptp

    assert cli("data", "import", "ptp", str(PTP)).exit_code == 0
    stored, read = open_ptp(DataStore().path("ptp")), load_ptp(PTP)
    for column2 in read.column2:
        assert stored.edits(column2) == read.edits(column2)
    assert stored.edits("99999") == []


# ---------------------------------------------------------------------------- MPFS


def test_fee_schedule_per_code_modifier_and_date(data_dir: Path, tmp_path: Path) -> None:
    assert cli("data", "import", "mpfs", str(PPRRVU)).exit_code == 0
    april = tmp_path / "PPRRVU26_APR.csv"
    april.write_text(
        PPRRVU.read_text(encoding="utf-8")
        .replace("33.4009", "34.0000")
        .replace("January", "April"),
        encoding="utf-8",
    )
    assert cli("data", "import", "mpfs", str(april)).exit_code == 0
    store = DataStore()
    assert [r.effective_from for r in store.current()] == ["2026-01-01", "2026-04-01"]
    row = store.fee_schedule("93306", date(2026, 2, 12))
    assert row is not None
    assert (
        row["global_days"],
        row["pctc"],
        row["mult_proc"],
        row["bilat"],
        row["asst_surg"],
        row["co_surg"],
    ) == ("XXX", "1", "4", "0", "1", "0")
    assert row["nonfac_amount"] == round(5.54 * 33.4009, 2) and row["conv_factor"] == 33.4009
    later = store.fee_schedule("93306", date(2026, 5, 1))
    assert later is not None and later["conv_factor"] == 34.0
    tc = store.fee_schedule("93306", date(2026, 2, 12), "TC")
    assert (
        tc is not None
        and tc["fac_amount"] is None
        and tc["nonfac_amount"] == round(3.5 * 33.4009, 2)
    )
    lt = store.fee_schedule("27447", date(2026, 2, 12), "LT")  # no LT row: the code's own
    assert lt is not None and lt["global_days"] == "090" and lt["nonfac_amount"] is None
    assert store.fee_schedule("93306", date(2025, 12, 31)) is None  # before any version
    assert store.fee_schedule("12345", date(2026, 2, 12)) is None


def test_fee_schedule_reads_a_csv_directly() -> None:
    table = open_fee_schedule(PPRRVU)
    row = table.row("11042", date(2026, 1, 1))
    assert row is not None and row["global_days"] == "000"
    assert table.columns["global_days"] == "str" and table.columns["fac_amount"] == "number"


def test_damaged_pprrvu_is_located(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "PPRRVU26_JAN.csv"
    bad.write_text(PPRRVU.read_text(encoding="utf-8").replace(",090,", ",90 ,"), encoding="utf-8")
    result = cli("data", "import", "mpfs", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:9: GLOB DAYS '90' is not one of" in result.output
    assert not DataStore().has("mpfs")


def test_mpfs_needs_an_effective_date(data_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "rvu.csv"
    shutil.copyfile(PPRRVU, plain)
    result = cli("data", "import", "mpfs", str(plain))
    assert result.exit_code == 2 and "--effective" in result.output
    assert cli("data", "import", "mpfs", str(plain), "--effective", "2026-07-01").exit_code == 0
    assert effective_from_name("RVU26D.zip") == date(2026, 10, 1)
    assert effective_from_name("PPRRVU2026_Jan_nonQPP.csv") == date(2026, 1, 1)


# ---------------------------------------------------------------------------- engine


def test_engine_api_reads_the_store_through_table_overrides(data_dir: Path) -> None:
    store = DataStore()
    import_mcd(store, [COVERED])
    plain = Engine(today=date(2026, 11, 27), tables={})
    imported = Engine(today=date(2026, 11, 27), tables=store.table_overrides())
    claim = tte_claim("I48.91")
    assert TTE_RULE in {f.rule for f in plain.check(claim).findings}
    assert TTE_RULE not in {f.rule for f in imported.check(claim).findings}
    # Engine() uses what is imported, as `cleanclaim check` does (issue 18.1)
    assert TTE_RULE not in {f.rule for f in Engine(today=date(2026, 11, 27)).check(claim).findings}


def test_refdata_entry_naming_no_value_set_is_an_error(tmp_path: Path) -> None:
    from cleanclaim.dsl.errors import PolicyCompileError

    pack = tmp_path / "packs" / "p"
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        "id: p\nrefdata:\n  nosuch: {mcd_article: 56781, group: 1, list: covered}\n"
        "  bad: {mcd_article: A56781, group: one}\n",
        encoding="utf-8",
    )
    (pack / "r.policy").write_text("version 1\nvalueset v = codes [93306]\n", encoding="utf-8")
    with pytest.raises(PolicyCompileError) as err:
        Engine([tmp_path / "packs"])
    text = str(err.value.render() if hasattr(err.value, "render") else err.value)
    assert "refdata `bad` needs mcd_article" in text
    assert "`refdata` names `nosuch`, which no policy file of the pack defines" in text


def test_data_import_missing_file(data_dir: Path) -> None:
    result = cli("data", "import", "ptp", str(DATA / "nope.TXT"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_sets_built_on_an_imported_set_get_its_codes(data_dir: Path) -> None:
    # The shipped medicare pack builds tte_group1 = tte_group1_shipped (the refdata set)
    # + Z01.818/Z51.81/Z08 (the A56781 Group 1 paragraph): the union gets the imported codes.
    store = DataStore()
    import_mcd(store, [COVERED])
    engine = Engine(today=date(2026, 11, 27), tables=store.table_overrides())
    for diagnosis in ("I48.91", "Z08"):  # imported; added by the union
        assert TTE_RULE not in {f.rule for f in engine.check(tte_claim(diagnosis)).findings}
    assert TTE_RULE in {f.rule for f in engine.check(tte_claim("I05.0")).findings}


def test_damaged_store_file_is_a_located_error_and_can_be_reimported(data_dir: Path) -> None:
    assert cli("data", "import", "mcd", str(COVERED)).exit_code == 0
    assert cli("data", "import", "mue", str(MUE)).exit_code == 0
    for table in ("mcd-covered", "mue"):
        path = data_dir / f"{table}.sqlite"
        path.write_bytes(path.read_bytes()[:16] + b"\0" * 2000)  # the header, then junk
    listed = cli("data", "list")
    assert listed.exit_code == 2 and "mue.sqlite: cannot read the imported table" in listed.output
    result = cli("check", str(DATA / "README.md"), "--today", TODAY)
    assert result.exit_code == 2
    assert "mcd-covered.sqlite: cannot read the imported table" in result.output
    assert "mue.sqlite: cannot read the imported table" in result.output
    assert cli("data", "import", "mcd", str(COVERED)).exit_code == 0
    assert cli("data", "import", "mue", str(MUE)).exit_code == 0
    assert cli("data", "list").exit_code == 0


def test_ptp_zip_and_folder_import_as_one_table(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ptp"
    folder.mkdir()
    second = PTP.read_bytes().replace(b"93306\t93320", b"93306\t93321")
    (folder / PTP.name).write_bytes(PTP.read_bytes())
    (folder / "ccipra-v321r0-f2.TXT").write_bytes(second)
    archive = tmp_path / "ccipra-v321r0.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.iterdir()):
            z.write(path, path.name)
    assert cli("data", "import", "ptp", str(folder)).exit_code == 0
    record = DataStore().current()[0]
    assert record.rows == 6 and record.files == (PTP.name, "ccipra-v321r0-f2.TXT")
    assert cli("data", "import", "ptp", str(archive)).exit_code == 0  # other bytes: new
    table = open_ptp(DataStore().path("ptp"))
    assert {"93320", "93321"} <= set(table.column2)


def test_decisions_name_the_imported_data_they_read(data_dir: Path) -> None:
    assert "data" not in check(tte_claim("I48.91"))["policy"]  # nothing imported: as before
    assert cli("data", "import", "mcd", str(COVERED)).exit_code == 0
    assert cli("data", "import", "mue", str(MUE)).exit_code == 0
    shas = {r.table: r.sha256 for r in DataStore().current()}
    policy = check(tte_claim("I48.91"))["policy"]
    assert policy["data"] == {
        "mcd-covered": f"sha256:{shas['mcd-covered']}",
        "mue": f"sha256:{shas['mue']}",
    }
    sample = (
        Path(__file__).parents[1]
        / "payer_policies"
        / "medicare"
        / "tables"
        / "mue-practitioner-sample.csv"
    )
    assert "mue" not in check(tte_claim("I48.91"), "--mue", str(sample))["policy"]["data"]


FEE_POLICY = """version 1

rule "p/fee/shown"
  title "The fee schedule as a rule reads it"
  applies to all lines
  root cause coding
  let allowed = fee_schedule_amount(mpfs)
  let days = global_days(mpfs)
  when allowed is present and pctc_indicator(mpfs) is present
  then review CO-45
  message "{line.code} {days} {allowed}"
  reference "MPFS PPRRVU"
end
"""


def fee_engine(tmp_path: Path, tables: dict[str, Path]) -> Engine:
    pack = tmp_path / "packs" / "p"
    pack.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        Path(__file__).parents[1]
        / "payer_policies"
        / "medicare"
        / "tables"
        / "mpfs-not-shipped.csv",
        pack / "mpfs.csv",
    )
    (pack / "pack.yaml").write_text(
        "id: p\ntables:\n  mpfs: {format: cms-mpfs, file: mpfs.csv}\n", encoding="utf-8"
    )
    (pack / "fee.policy").write_text(FEE_POLICY, encoding="utf-8")
    return Engine([tmp_path / "packs"], today=date(2026, 11, 27), tables=tables)


def fee_messages(engine: Engine, pos: str = "11", modifiers: tuple[str, ...] = ()) -> list[str]:
    claim = tte_claim("I48.91", units=2)
    claim["payer"], claim["place_of_service"] = "p", pos
    claim["lines"][0]["modifiers"] = list(modifiers)
    return [f.message for f in engine.check(claim).findings if f.rule == "p/fee/shown"]


def test_rules_read_the_imported_fee_schedule(data_dir: Path, tmp_path: Path) -> None:
    assert fee_messages(fee_engine(tmp_path, {})) == []  # the placeholder: nothing known
    assert cli("data", "import", "mpfs", str(PPRRVU)).exit_code == 0
    engine = fee_engine(tmp_path, DataStore().table_overrides())
    office = round(round(5.54 * 33.4009, 2) * 2, 2)
    assert fee_messages(engine) == [f"93306 XXX {office}"]
    # Inpatient hospital (21) is a facility setting: the facility amount; TC has none.
    assert fee_messages(engine, pos="21", modifiers=("TC",)) == []
    assert fee_messages(engine, pos="11", modifiers=("TC",)) == [
        f"93306 XXX {round(round(3.5 * 33.4009, 2) * 2, 2)}"
    ]


def test_article_dates_choose_the_version_in_force(data_dir: Path) -> None:
    result = cli("data", "import", "mcd", str(COVERED), str(DATA / "article.csv"))
    assert result.exit_code == 0, result.output
    store = DataStore()
    assert store.article_codes(56781, 1, "covered", date(2026, 8, 1)) == frozenset({"Q211"})
    assert store.article_codes(56781, 1, "covered", date(2026, 11, 1)) == frozenset(
        {"I082", "I4891", "R0602"}
    )
    assert store.article_codes(56781, 1, "covered", date(2026, 1, 1)) is None  # none yet
    assert store.article_codes(56781, 1, "covered") == frozenset({"I082", "I4891", "R0602"})
    record = next(r for r in store.current() if r.table == "mcd-article")
    assert (record.rows, record.effective_from, record.effective_to) == (
        3,
        "2026-01-01",
        "2026-09-30",
    )
    bad = data_dir.parent / "article.csv"
    bad.write_text(
        (DATA / "article.csv").read_text(encoding="utf-8").replace("10/01/2026", "2026/13/01"),
        encoding="utf-8",
    )
    failed = cli("data", "import", "mcd", str(bad))
    assert failed.exit_code == 2 and f"{bad}:3: date '2026/13/01'" in failed.output


def test_module_level_loaders(data_dir: Path) -> None:
    from cleanclaim.engine.refdata import fee_schedule, load_article_codes

    assert load_article_codes("A56781", 1) is None
    assert cli("data", "import", "mcd", str(COVERED)).exit_code == 0
    assert cli("data", "import", "mpfs", str(PPRRVU)).exit_code == 0
    assert load_article_codes("A56781", 2) == frozenset({"Z01818"})
    row = fee_schedule("11042", date(2026, 3, 1))
    assert row is not None and row["global_days"] == "000"


def test_imported_ncci_tables_are_not_samples(data_dir: Path) -> None:
    claim = tte_claim("M62.81", code="97110", units=7)  # above the sample's 6 too
    claims = data_dir.parent / "claim.json"
    claims.write_text(json.dumps(claim), encoding="utf-8")
    before = cli("check", str(claims), "--today", TODAY)
    assert "NCCI sample tables in use" in before.stderr
    assert rules(json.loads(before.stdout)[0])["medicare/ncci/mue"]["severity"] == "review"
    assert cli("data", "import", "mue", str(MUE)).exit_code == 0
    assert cli("data", "import", "ptp", str(PTP)).exit_code == 0
    after = cli("check", str(claims), "--today", TODAY)
    assert "NCCI sample tables" not in after.stderr
    finding = rules(json.loads(after.stdout)[0])["medicare/ncci/mue"]
    assert finding["severity"] == "deny" and "MAI 1" in finding["message"]
