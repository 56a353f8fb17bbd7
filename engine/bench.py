"""`cleanclaim bench`: throughput of the engine on a seeded synthetic workload.

Prints, side by side in one run (shared machines are noisy: compare ratios):
- evaluation alone (claims already decoded) against the shipped packs;
- end to end: NDJSON line -> decode -> evaluate -> encode NDJSON;
- the same decode + encode with no evaluation, and end to end as a share of it;
- per-claim evaluation cost with 200, 2,000 and 20,000 synthetic rules;
- `cleanclaim check` of one claim from a cold start (a fresh process).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanclaim.engine.decision import Decision
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.model import Claim, decode_claim

TODAY = dt.date(2026, 6, 1)
CODES = ["99213", "99214", "93000", "93005", "93010", "93306", "93308", "82306", "72148",
         "70553", "97110", "97140", "97530", "11042", "17000", "17110", "20610", "15780",
         "36415", "85025", "80053", "J1100", "G0439", "0001F"]
DIAGNOSES = ["R07.9", "R06.02", "I48.91", "E55.9", "M54.50", "Z00.00", "I10", "E11.9",
             "N18.30", "J45.909", "A18.84", "I05.0", "R53.83", "K21.9"]
NPI = "1234567893"


def synthetic_claim(rng: random.Random, index: int, codes: list[str] | None = None,
                    payers: tuple[str, ...] = ("medicare", "acme-ppo")) -> dict[str, Any]:
    """One plausible professional claim; most are clean, some break a rule or two."""
    payer = payers[index % len(payers)]
    dos = TODAY - dt.timedelta(days=rng.randint(5, 120))
    pool = codes or CODES
    lines = []
    diagnoses = rng.sample(DIAGNOSES, rng.randint(1, 3))
    for n in range(rng.randint(1, 4)):
        lines.append({"line": n + 1, "code": rng.choice(pool),
                      "modifiers": rng.choice([[], [], [], ["59"], ["26"], ["GP"]]),
                      "units": rng.choice([1, 1, 1, 2]), "charge": "120.00",
                      "service_date": dos.isoformat(),
                      "diagnosis_pointers": list(range(1, len(diagnoses) + 1))[:2],
                      "minutes": None})
    return {
        "claim_id": f"B-{index}", "payer": payer, "plan": rng.choice([None, "gold", "silver"]),
        "frequency": "original", "replaces": None,
        "received_date": (dos + dt.timedelta(days=rng.randint(1, 100))).isoformat(),
        "member": {"id": f"M{index % 5000:06d}", "birth_date": "1950-01-01", "sex": "F",
                   "coverage": [{"payer": payer, "plan": None, "start": "2020-01-01",
                                 "end": None}]},
        "billing_provider": {"npi": NPI}, "rendering_provider": {"npi": NPI},
        "referring_provider": None, "place_of_service": "11", "diagnoses": diagnoses,
        "authorizations": [], "lines": lines, "documentation": {},
    }


def _rate(fn: Callable[[], int], min_seconds: float = 1.0) -> float:
    """Items per second of `fn` (which returns how many items it did), best of 3 rounds."""
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while True:
            done += fn()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds / 3:
                break
        best = max(best, done / elapsed)
    return best


def _decode(lines: list[bytes]) -> list[Claim]:
    claims = []
    for raw in lines:
        claim, _ = decode_claim(json.loads(raw), TODAY)
        assert claim is not None
        claims.append(claim)
    return claims


def run_bench(n_claims: int = 20_000, seed: int = 7, cold_start: bool = True) -> dict[str, float]:
    rng = random.Random(seed)
    engine = Engine(today=TODAY)
    payloads = [json.dumps(synthetic_claim(rng, i)).encode() for i in range(n_claims)]
    claims = _decode(payloads)
    results: dict[str, float] = {}

    def evaluate_only() -> int:
        for claim in claims:
            engine.evaluate(claim)
        return len(claims)

    def end_to_end() -> int:
        for raw in payloads:
            claim, _ = decode_claim(json.loads(raw), TODAY)
            assert claim is not None
            json.dumps(engine.evaluate(claim).to_json(), separators=(",", ":"))
        return len(payloads)

    def decode_encode_only() -> int:
        for raw in payloads:
            claim, _ = decode_claim(json.loads(raw), TODAY)
            assert claim is not None
            decision = Decision(claim.claim_id, "clean", [], {"packs": engine.packs})
            json.dumps(decision.to_json(), separators=(",", ":"))
        return len(payloads)

    results["evaluate_claims_per_s"] = _rate(evaluate_only)
    results["end_to_end_claims_per_s"] = _rate(end_to_end)
    results["decode_encode_only_claims_per_s"] = _rate(decode_encode_only)
    results["end_to_end_share"] = (results["end_to_end_claims_per_s"]
                                   / results["decode_encode_only_claims_per_s"])
    flagged = sum(1 for c in claims[:2000] if engine.evaluate(c).status != "clean")
    results["share_of_claims_with_findings"] = flagged / min(2000, len(claims))

    for n_rules in (200, 2_000, 20_000):
        results[f"us_per_claim_{n_rules}_rules"] = _rules_scaling(n_rules, seed)
    results["us_per_claim_20000_vs_200"] = (results["us_per_claim_20000_rules"]
                                            / results["us_per_claim_200_rules"])
    if cold_start:
        results["cold_start_check_one_claim_s"] = _cold_start()
    return results


def _rules_scaling(n_rules: int, seed: int) -> float:
    """Microseconds per claim against a pack of `n_rules` synthetic rules.

    Rules are scoped to codes drawn from a pool of 10,000 CPT-shaped codes (as a large
    real pack spreads over the code set) and claims bill codes from the same pool."""
    rng = random.Random(seed)
    pool = [f"{c:05d}" for c in range(10_000, 20_000)]
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "synthetic"
        pack.mkdir()
        (pack / "pack.yaml").write_text("id: synthetic\nname: synthetic rules\n")
        out = ["version 1\n"]
        for i in range(n_rules):
            code = rng.choice(pool)
            out.append(
                f'rule "synthetic/r{i}"\n  applies to codes [{code}]\n  root cause coding\n'
                f"  when line.units > {rng.randint(1, 4)} and any of line.modifiers in [59, XS]\n"
                f"  then deny CO-151 with N362\nend\n")
        (pack / "rules.policy").write_text("".join(out))
        engine = Engine([Path(tmp)], today=TODAY)
        claims = _decode([json.dumps(synthetic_claim(rng, i, pool, ("synthetic",))).encode()
                          for i in range(5_000)])

        def evaluate() -> int:
            for claim in claims:
                engine.evaluate(claim)
            return len(claims)

        return 1e6 / _rate(evaluate, 0.6)


def _cold_start() -> float:
    """Wall time of `cleanclaim check` on one claim in a fresh interpreter (best of 3)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claim.json"
        path.write_text(json.dumps(synthetic_claim(random.Random(1), 0)))
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cleanclaim.engine.cli", "check", str(path),
                            "--today", TODAY.isoformat()], capture_output=True, check=False)
            best = min(best, time.perf_counter() - start)
        return best


def format_results(results: dict[str, float]) -> str:
    rows = [
        ("evaluation alone (shipped packs)", f"{results['evaluate_claims_per_s']:,.0f} claims/s",
         "target >= 100,000"),
        ("end to end (decode, evaluate, encode)",
         f"{results['end_to_end_claims_per_s']:,.0f} claims/s", ""),
        ("decode + encode, no evaluation",
         f"{results['decode_encode_only_claims_per_s']:,.0f} claims/s", ""),
        ("end to end / decode+encode", f"{results['end_to_end_share']:.0%}", "target >= 40%"),
        ("claims with at least one finding", f"{results['share_of_claims_with_findings']:.0%}",
         ""),
        ("per claim, 200 rules", f"{results['us_per_claim_200_rules']:.1f} us", ""),
        ("per claim, 2,000 rules", f"{results['us_per_claim_2000_rules']:.1f} us", ""),
        ("per claim, 20,000 rules", f"{results['us_per_claim_20000_rules']:.1f} us", ""),
        ("20,000 vs 200 rules", f"{results['us_per_claim_20000_vs_200']:.2f}x",
         "target <= 10x"),
    ]
    if "cold_start_check_one_claim_s" in results:
        rows.append(("check one claim, cold start",
                     f"{results['cold_start_check_one_claim_s']:.2f} s", "target < 1 s"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a.ljust(width)}  {b:>22}  {c}" for a, b, c in rows)
