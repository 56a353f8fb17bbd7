"""The CMS Order and Referring file (engine/refdata/ordering.py): `cleanclaim data import
order-referring` and the PECOS rule medicare/provider/orderer-not-eligible, which denies
only on an imported file and judges nothing the shipped sample does not list."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.engine.cli import app
from cleanclaim.engine.ncci import TableError
from cleanclaim.engine.refdata.ordering import open_order_referring, read_order_referring
from cleanclaim.engine.refdata.store import DataStore, default_data_dir

FILE = Path(__file__).parent / "data" / "refdata" / "OrderReferring.csv"
SAMPLE = (
    Path(__file__).parent.parent
    / "payer_policies"
    / "medicare"
    / "tables"
    / "order-referring-sample.csv"
)
RULE = "medicare/provider/orderer-not-eligible"
NPI_RULE = "medicare/provider/ordering-npi-missing"
HEADER = "NPI,LAST_NAME,FIRST_NAME,PARTB,DME,HHA,PMD,HOSPICE\n"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cms-data"
    monkeypatch.setenv("CLEANCLAIM_DATA_DIR", str(folder))
    return folder


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def mri(referring: str | None, ordering: str | None = None) -> dict[str, Any]:
    return {
        "claim_id": "C-ORD",
        "payer": "medicare",
        "received_date": "2026-04-01",
        "member": {
            "id": "M1",
            "birth_date": "1951-04-12",
            "sex": "F",
            "coverage": [{"payer": "medicare", "start": "2016-01-01", "end": None}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "referring_provider": None if referring is None else {"npi": referring},
        "ordering_provider": None if ordering is None else {"npi": ordering},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": 1,
                "code": "72148",
                "modifiers": [],
                "units": 1,
                "charge": "900.00",
                "service_date": "2026-03-10",
                "diagnosis_pointers": [1],
            }
        ],
    }


def findings(claim: dict[str, Any]) -> dict[str, dict[str, Any]]:
    path = default_data_dir().parent / "claim.json"
    path.write_text(json.dumps(claim), encoding="utf-8")
    result = cli("check", str(path), "--today", "2026-11-27")
    assert result.exit_code in (0, 1), result.output
    return {f["rule"]: f for f in json.loads(result.stdout)[0]["findings"]}


def test_the_cms_layout_is_read_by_column_name() -> None:
    rows, sample = read_order_referring("f.csv", FILE.read_bytes())
    assert not sample
    assert rows == {"1245319599": "YYNNN", "1245319607": "NYNNN", "1234567893": "YNYNY"}
    # Columns reordered, and an older release without HOSPICE.
    older = b"LAST_NAME,NPI,FIRST_NAME,DME,PARTB,HHA,PMD\nDOE,1245319599,JO,N,Y,N,N\n"
    assert read_order_referring("o.csv", older)[0] == {"1245319599": "YNNNN"}


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("NPI,LAST_NAME,FIRST_NAME,DME\n", 1, "header lacks PARTB"),
        (
            HEADER + "1245319599,A,B,Y,Y,N,N,N\n1245319598,C,D,Y,N,N,N,N\n",
            3,
            "'1245319598' is not a valid NPI",
        ),
        (HEADER + "1245319599,A,B,YES,Y,N,N,N\n", 2, "PARTB 'YES' is neither Y nor N"),
        (
            HEADER + "1245319599,A,B,Y,Y,N,N,N\n1245319599,A,B,N,N,N,N,N\n",
            3,
            "listed twice (first at line 2)",
        ),
        (HEADER + "1245319599,A,B,Y\n", 2, "row has 4 fields, the header 8"),
        (HEADER, None, "no data rows"),
    ],
)
def test_a_damaged_file_is_a_located_error(text: str, where: int | None, says: str) -> None:
    with pytest.raises(TableError) as exc:
        read_order_referring("bad.csv", text.encode())
    assert exc.value.line == where
    assert says in str(exc.value)


def test_import_list_and_reimport(data_dir: Path) -> None:
    result = cli("data", "import", "order-referring", str(FILE))
    assert result.exit_code == 0, result.output
    assert "imported order-referring: 3 rows from OrderReferring.csv" in result.output
    [record] = DataStore().current()
    assert record.table == "order-referring"
    assert record.detail == "2 NPIs eligible to order/refer Part B services"
    again = cli("data", "import", "order-referring", str(FILE))
    assert again.exit_code == 0 and "already imported" in again.output
    assert (
        DataStore().table_overrides()["cms-order-referring"] == data_dir / "order-referring.sqlite"
    )
    stored = open_order_referring(data_dir / "order-referring.sqlite")
    assert stored.flags("1245319607") == "NYNNN" and stored.flags("1999999992") is None


def test_a_zip_holding_the_file_imports(data_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "order_referring.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(FILE, "OrderReferring.csv")
    assert cli("data", "import", "order-referring", str(archive)).exit_code == 0
    assert open_order_referring(data_dir / "order-referring.sqlite").flags("1245319599") == "YYNNN"


def test_a_damaged_file_imports_nothing(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "OrderReferring.csv"
    bad.write_text(HEADER + "1245319599,A,B,Y,Y,N,N,N\n12345,C,D,Y,N,N,N,N\n")
    result = cli("data", "import", "order-referring", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:3" in result.output and "not a valid NPI" in result.output
    assert not (data_dir / "order-referring.sqlite").exists()


def test_the_shipped_sample_is_refused_as_an_import(data_dir: Path) -> None:
    result = cli("data", "import", "order-referring", str(SAMPLE))
    assert result.exit_code == 2 and "a cleanclaim sample" in result.output


def test_without_an_import_only_the_samples_npis_are_judged_and_only_reviews(
    data_dir: Path,
) -> None:
    # An NPI the sample does not list: no finding (nothing loaded to say it is not enrolled).
    assert findings(mri("1999999992")) == {}
    # Listed with PARTB N in the sample: a review naming the import, never a denial.
    finding = findings(mri("1245319607"))[RULE]
    assert finding["severity"] == "review"
    assert (finding["carc"], finding["rarc"]) == ("183", ["N574"])
    assert "order-referring" in finding["message"]


def test_with_the_cms_file_imported_the_edit_denies(data_dir: Path) -> None:
    assert cli("data", "import", "order-referring", str(FILE)).exit_code == 0
    not_listed = findings(mri("1999999992"))[RULE]
    assert (not_listed["severity"], not_listed["carc"], not_listed["rarc"]) == (
        "deny",
        "183",
        ["N574"],
    )
    assert "not_on_file" in not_listed["message"]
    not_part_b = findings(mri("1245319607"))[RULE]
    assert not_part_b["severity"] == "deny" and "not_part_b" in not_part_b["message"]
    assert findings(mri("1245319599")) == {}  # PARTB Y
    # The line's ordering provider is looked up first; the referring one stands in.
    assert findings(mri("1999999992", ordering="1245319599")) == {}
    assert RULE in findings(mri(None, ordering="1999999992"))
    # No NPI, or one failing the check digit: the NPI rule's reject, not a PECOS finding.
    for claim in (mri(None), mri("1245319598")):
        found = findings(claim)
        assert NPI_RULE in found and RULE not in found
    # Not an ordered test: not looked up.
    visit = mri("1999999992")
    visit["lines"][0]["code"] = "99213"
    assert findings(visit) == {}
