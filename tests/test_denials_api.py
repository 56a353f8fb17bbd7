"""The denial report through the Python API (`cleanclaim.engine`), over HTTP
(`POST /v1/denials` of `cleanclaim serve`), and its benchmark's generated 835."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cleanclaim.engine as api
from cleanclaim.engine.denials import bench
from cleanclaim.engine.formats.x835 import read_x835
from tests.test_server import call, running

DATA = Path(__file__).parent / "data" / "x835"
REMIT = DATA / "denials.835"
DECISION = {
    "claim_id": "C-1001",
    "status": "deny",
    "policy": {},
    "findings": [
        {
            "rule": "r/ncci",
            "kind": "coding",
            "severity": "deny",
            "line": 2,
            "group": "CO",
            "carc": "236",
            "rarc": [],
            "root_cause": "coding",
            "owner": "coding",
            "message": "m",
            "reference": None,
            "source": None,
        }
    ],
}


def test_the_engine_package_exposes_reading_and_the_report(tmp_path: Path) -> None:
    era = api.read_remittance(REMIT)
    assert [c.claim_id for c in era.claims()][:2] == ["C-1001", "C-1002"]
    decisions = tmp_path / "d.ndjson"
    decisions.write_text(json.dumps(DECISION) + "\n")
    report = api.denial_report([REMIT], decisions=decisions)
    assert report["checker"]["predicted"]["count"] == 1
    assert api.build_report([era])["totals"] == report["totals"]
    assert {"read_remittance", "denial_report", "build_report"} <= set(api.__all__)


def _post(srv: Any, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    status, _, answer = call(srv, "POST", "/v1/denials", body, {"Content-Type": content_type})
    return status, json.loads(answer)


def test_post_denials_takes_an_835_or_json_with_decisions() -> None:
    with running(max_body=1 << 20, timeout=5.0) as srv:
        status, report = _post(srv, REMIT.read_bytes(), "application/edi-x12")
        assert status == 200 and report["report"] == "cleanclaim-denials/1"
        assert report["totals"]["denials"] == 5 and report["checker"] is None
        assert "1EG4TE5MK73" not in json.dumps(report)
        body = json.dumps({"remittance": REMIT.read_text(), "decisions": [DECISION]})
        status, report = _post(srv, body.encode(), "application/json")
        assert status == 200 and report["checker"]["predicted"]["count"] == 1
        status, report = _post(srv, b'{"claim_id": "C-1"}', "text/plain")
        assert status == 200 and report["files"][0]["problems"][0]["message"].startswith(
            "not an X12 file"
        )
        status, report = _post(srv, b"{not json", "application/json")
        assert status == 200 and "not valid JSON" in report["files"][0]["problems"][0]["message"]
        status, _, _ = call(srv, "GET", "/v1/denials")
        assert status == 405
        _, _, doc = call(srv, "GET", "/openapi.json")
        assert "/v1/denials" in json.loads(doc)["paths"]
        _, records = srv[:2], srv[2]
        assert not any("C-1001" in line or "1EG4TE5MK73" in line for line in records.lines)


def test_post_denials_over_the_body_limit_is_413() -> None:
    with running(max_body=1000, timeout=5.0) as srv:
        status, _, answer = call(
            srv, "POST", "/v1/denials", REMIT.read_bytes(), {"Content-Type": "application/edi-x12"}
        )
        assert status == 413 and b"body-too-large" in answer


def test_the_benchmark_835_is_balanced_and_mixed(tmp_path: Path) -> None:
    text = bench.generate_835(2_000, seed=7)
    found = read_x835(text, "bench.835")
    assert found.service_count() == 2_000
    assert not any(c.damaged for c in found.claims())
    assert found.remittances[0].problems == []
    out = tmp_path / "bench.835"
    assert bench.main(["--lines", "2000", "--seed", "7", "--out", str(out)]) == 0
    result = bench.measure(out)
    assert result["service_lines"] == 2_000
    assert isinstance(result["denials"], int) and result["denials"] > 0
    assert result["unclassified_amount"] != "0.00"  # CO-16 with no remark code
