"""One engine everywhere (issue 18.1): the same claims through `cleanclaim check`,
`Engine().check_many`, the HTTP server (`cleanclaim serve`, on loopback) and
`check --workers 2` give the same decision bytes - with the specialty plugins and the
history the shipped packs count across a batch."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine.loadtest import die_with_parent

REPO = Path(__file__).resolve().parent.parent
TODAY = "2026-11-27"
EXAMPLES = json.loads((REPO / "payer_policies/examples/claims.json").read_text())
# Plugin codes (cardiology ECG/echo/stress, therapy, dermatology excision/repair/
# destruction) mixed with office visits, so that plugin rules and counters fire.
CODES = [
    "93000",
    "93010",
    "93005",
    "93351",
    "93015",
    "93016",
    "99213",
    "99214",
    "97110",
    "97140",
    "97530",
    "97112",
    "11400",
    "11420",
    "12001",
    "12031",
    "17000",
    "17003",
    "17110",
    "99203",
]
MODIFIERS = [[], [], [], ["GP"], ["59"], ["25"], ["KX"], ["GO"]]


def generated(count: int, seed: int = 18) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    claims = []
    for n in range(count):
        payer = rng.choice(["medicare", "acme-ppo"])
        member = f"M{rng.randrange(40):03d}"  # few members: their visits add up
        lines = []
        for i in range(rng.randint(1, 4)):
            day = dt.date(2026, 1, 5) + dt.timedelta(days=rng.randrange(60))
            lines.append(
                {
                    "line": i + 1,
                    "code": rng.choice(CODES),
                    "modifiers": rng.choice(MODIFIERS),
                    "units": rng.randint(1, 4),
                    "charge": f"{rng.randint(20, 400)}.00",
                    "service_date": day.isoformat(),
                    "diagnosis_pointers": [1],
                    "minutes": rng.choice([None, 8, 15, 23, 38, 60]),
                }
            )
        documentation: dict[str, Any] = {}
        if rng.random() < 0.5:
            documentation = {
                "echo": {"report": {"signed": rng.random() < 0.5}},
                "ecg": {"indication": "R07.9"},
            }
        claims.append(
            {
                "claim_id": f"G-{n}",
                "payer": payer,
                "received_date": "2026-03-20",
                "member": {
                    "id": member,
                    "birth_date": "1950-06-01",
                    "sex": "F",
                    "coverage": [{"payer": payer, "start": "2020-01-01", "end": None}],
                },
                "billing_provider": {"npi": "1234567893"},
                "rendering_provider": {"npi": "1234567893"},
                "place_of_service": "11",
                "diagnoses": [rng.choice(["R07.9", "M54.50", "L82.1", "I10", "M25.511"])],
                "lines": lines,
                "documentation": documentation,
            }
        )
    return claims


# More than one chunk of engine/batch.py (500 claims), so that two workers really work.
CLAIMS = [*EXAMPLES, *generated(1100)]


def clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLEANCLAIM_PLUGINS"}
    env["PYTHONPATH"] = str(REPO)
    return env


def cli_check(path: Path, tmp: Path, *extra: str) -> list[bytes]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cleanclaim.engine.cli",
            "check",
            str(path),
            "--format",
            "ndjson",
            "--today",
            TODAY,
            *extra,
        ],
        capture_output=True,
        cwd=tmp,
        env=clean_env(tmp),
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.stdout.splitlines()


@contextmanager
def serve(tmp: Path) -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cleanclaim.engine.cli", "serve", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp,
        env=clean_env(tmp),
        preexec_fn=die_with_parent,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline().decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", first)
        assert match, first
        yield int(match.group(1))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post(port: int, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def encode(decision: Any) -> bytes:
    return json.dumps(decision.to_json(), separators=(",", ":")).encode()


def without_origin(lines: list[bytes], file: Path) -> list[bytes]:
    """The CLI's decision lines without their `origin` (the file and line a claim was
    read from: claims given as values, to the API or the server, have none); each line
    must carry the right one. Nothing else may differ."""
    out = []
    for number, line in enumerate(lines, start=1):
        decision = json.loads(line)
        assert decision.pop("origin") == {"file": str(file), "format": "ndjson", "line": number}
        out.append(json.dumps(decision, separators=(",", ":")).encode())
    return out


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("same")
    ndjson = tmp / "claims.ndjson"
    ndjson.write_text("".join(json.dumps(c) + "\n" for c in CLAIMS))
    out: dict[str, Any] = {"tmp": tmp, "file": ndjson}
    out["cli"] = cli_check(ndjson, tmp)
    out["workers"] = cli_check(ndjson, tmp, "--workers", "2")
    with serve(tmp) as port:
        status, _, body = post(port, "/v1/check/batch", ndjson.read_bytes())
        assert status == 200
        out["server"] = body.splitlines()
        out["single"] = [post(port, "/v1/check", json.dumps(c).encode())[2] for c in CLAIMS[:60]]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/v1/packs")
        out["packs"] = json.loads(connection.getresponse().read())
        connection.close()
    return out


def test_the_four_paths_give_the_same_decision_bytes(
    paths: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanclaim.engine import Engine

    monkeypatch.delenv("CLEANCLAIM_PLUGINS", raising=False)
    monkeypatch.chdir(paths["tmp"])  # no cleanclaim.toml: the default selection
    engine = Engine(today=dt.date.fromisoformat(TODAY))
    api = [encode(d) for d in engine.check_many(CLAIMS)]
    assert paths["workers"] == paths["cli"]  # both from the file: origins included
    cli = without_origin(paths["cli"], paths["file"])
    assert len(cli) == len(CLAIMS)
    assert api == cli
    assert paths["server"] == cli
    statuses = {json.loads(line)["status"] for line in cli}
    assert {"clean", "deny"} <= statuses
    # plugin rules and history counters really fired on this workload
    rules = {f["rule"] for line in cli for f in json.loads(line)["findings"]}
    assert {r.split("@")[0] for r in rules if "@" in r} >= {"cardiology", "therapy", "dermatology"}
    assert json.loads(cli[0])["policy"]["plugins"]


def test_the_server_loads_the_plugins_check_loads(paths: dict[str, Any]) -> None:
    names = [p["name"] for p in paths["packs"]["plugins"]]
    assert names == ["cardiology", "dermatology", "therapy"]


def test_one_claim_over_http_is_a_check_run_of_that_claim(
    paths: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanclaim.engine import Engine

    monkeypatch.delenv("CLEANCLAIM_PLUGINS", raising=False)
    monkeypatch.chdir(paths["tmp"])
    engine = Engine(today=dt.date.fromisoformat(TODAY))
    for claim, body in zip(CLAIMS[:60], paths["single"], strict=True):
        [decision] = engine.check_many([claim])
        decision.position = None
        assert body == encode(decision)


def test_workers_rebuild_from_the_parents_recipe() -> None:
    import pickle

    from cleanclaim.engine.engine import Engine, EngineRecipe

    engine = Engine(today=dt.date.fromisoformat(TODAY), plugins=["therapy"])
    recipe = pickle.loads(pickle.dumps(EngineRecipe.of(engine)))
    assert recipe.plugins == ("therapy",) and recipe.today == engine.today
    rebuilt = recipe.build()
    assert rebuilt.packs == engine.packs
    assert [p.name for p in rebuilt.plugins.plugins] == ["therapy"]
    plain = EngineRecipe.of(Engine(today=engine.today, plugins=()))
    assert plain.plugins == () and plain.build().plugins is None


def test_explain_explains_the_decision_check_gives(paths: dict[str, Any]) -> None:
    tmp = paths["tmp"]
    one = tmp / "one.json"
    one.write_text(json.dumps(EXAMPLES[0]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cleanclaim.engine.cli",
            "explain",
            str(one),
            "--format",
            "json",
            "--today",
            TODAY,
        ],
        capture_output=True,
        cwd=tmp,
        env=clean_env(tmp),
        timeout=120,
        check=True,
    )
    explained = json.loads(result.stdout)["decision"]
    explained.pop("position", None)
    checked = json.loads(paths["cli"][0])
    checked.pop("position")
    # each names the file it read the claim from
    assert checked.pop("origin")["file"] == str(paths["file"])
    assert explained.pop("origin", {"file": str(one)})["file"] == str(one)
    assert explained == checked
    assert any("@" in t["rule"] for t in json.loads(result.stdout)["trace"])
